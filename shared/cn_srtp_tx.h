/* cn_srtp_tx.h: SRTP protection of outgoing RTP (RFC 3711 AES_CM_128_HMAC_SHA1_80) with OpenSSL, for forwarding at high packet rates. */
#ifndef CN_SRTP_TX_H
#define CN_SRTP_TX_H

#include <stddef.h>
#include <stdint.h>

#include "cn_dtls.h"

/* Debian's libsrtp is built on NSS, which makes a cipher and an HMAC context for every
 * packet; an SFU sending each packet to every viewer spends most of its time there. This
 * keeps one AES-CTR context and the HMAC's inner and outer SHA-1 states per session, so a
 * packet costs a CTR pass and two SHA-1 finishes. Output is byte for byte what libsrtp
 * writes (tests/unit/test_srtp_tx.c checks it). RTP only; RTCP and receiving stay with
 * cn_srtp. */

#define CN_SRTP_TX_MAX_SSRC 4

struct cn_srtp_tx;

/* The local (outgoing) master key and salt of keys. -ENOTSUP for a profile other than
 * CN_SRTP_AES128_CM_SHA1_80 (the caller then uses cn_srtp). */
int cn_srtp_tx_new(const struct cn_srtp_keys *keys, struct cn_srtp_tx **out);
/* Protects in place: buf holds *len bytes of plain RTP (a parsed header's length is
 * needed: CSRCs and extension are skipped), room for cap (10 more bytes). Tracks the
 * rollover counter per SSRC (at most CN_SRTP_TX_MAX_SSRC: -ENOSPC past that); a sequence
 * number sent again (a retransmission) gets the same index. CN_E_MALFORMED for a
 * packet that is not RTP, -ENOBUFS without room. */
int cn_srtp_tx_protect(struct cn_srtp_tx *t, uint8_t *buf, size_t *len, size_t cap);
void cn_srtp_tx_free(struct cn_srtp_tx *t);

#endif
