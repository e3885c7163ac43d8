/* cn_dtls.h: DTLS-SRTP (RFC 5764) over any datagram transport: OpenSSL handshake, fingerprint check, SRTP keys. */
#ifndef CN_DTLS_H
#define CN_DTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* No I/O of its own: datagrams come in through cn_dtls_input and go out through the send
 * callback, so the same code runs over libnice, a TURN allocation or a test socket. */

#define CN_DTLS_FINGERPRINT_LEN 32 /* SHA-256 */

/* A self-signed ECDSA P-256 certificate (what WebRTC peers expect), made once per
 * process: its fingerprint goes into every SDP answer. */
struct cn_dtls_cert;

int cn_dtls_cert_new(struct cn_dtls_cert **out);
void cn_dtls_cert_fingerprint(const struct cn_dtls_cert *c, uint8_t fp[CN_DTLS_FINGERPRINT_LEN]);
void cn_dtls_cert_free(struct cn_dtls_cert *c);

enum cn_srtp_profile {
	CN_SRTP_NONE,
	CN_SRTP_AES128_CM_SHA1_80, /* RFC 5764 */
	CN_SRTP_AEAD_AES_128_GCM,  /* RFC 7714 */
};

/* Keying material exported after the handshake (RFC 5764 4.2): ours and the peer's. */
struct cn_srtp_keys {
	enum cn_srtp_profile profile;
	uint8_t local_key[16], remote_key[16];
	uint8_t local_salt[14], remote_salt[14];
	size_t salt_len; /* 14 for AES-CM, 12 for GCM */
};

typedef void (*cn_dtls_send_fn)(void *arg, const uint8_t *p, size_t n);

struct cn_dtls;

/* active: we send the ClientHello (a=setup:active); otherwise we wait for one.
 * peer_fp/peer_fp_len with peer_alg ("sha-256", "sha-1", "sha-384", "sha-512", "sha-224"):
 * the fingerprint from the peer's SDP, which its certificate must match. */
int cn_dtls_new(const struct cn_dtls_cert *cert, bool active, const char *peer_alg,
		const uint8_t *peer_fp, size_t peer_fp_len, cn_dtls_send_fn send, void *arg,
		struct cn_dtls **out);
/* Starts the handshake when active (sends the first flight); a no-op when passive. */
int cn_dtls_start(struct cn_dtls *d);
/* Feeds one received datagram (RFC 7983: first byte 20..63). Returns 1 when this
 * datagram completed the handshake (keys are ready), 0 to go on, or a negative error with
 * the reason in err (handshake failure, fingerprint mismatch, alert received). */
int cn_dtls_input(struct cn_dtls *d, const uint8_t *p, size_t n, char *err, size_t errcap);
/* Milliseconds until cn_dtls_timeout must be called (retransmission), -1 for none. */
int64_t cn_dtls_next_timeout_ms(struct cn_dtls *d);
/* Retransmits a lost flight when due; negative when the handshake gave up. */
int cn_dtls_timeout(struct cn_dtls *d);
bool cn_dtls_connected(const struct cn_dtls *d);
/* After completion: the negotiated profile and keys. */
int cn_dtls_srtp_keys(struct cn_dtls *d, struct cn_srtp_keys *out);
/* Sends close_notify if connected, then frees. */
void cn_dtls_free(struct cn_dtls *d);

/* ---- SRTP (libsrtp) ---------------------------------------------------------------- */

struct cn_srtp;

int cn_srtp_new(const struct cn_srtp_keys *keys, struct cn_srtp **out);
/* Protects in place: buf holds *len bytes of plain RTP/RTCP and has room for cap
 * (the tag and SRTCP index need up to CN_SRTP_OVERHEAD more bytes). */
#define CN_SRTP_OVERHEAD 32
int cn_srtp_protect_rtp(struct cn_srtp *s, uint8_t *buf, size_t *len, size_t cap);
int cn_srtp_protect_rtcp(struct cn_srtp *s, uint8_t *buf, size_t *len, size_t cap);
/* Unprotects in place; CN_E_BAD_SIG for an authentication failure, CN_E_MALFORMED for
 * a replayed or truncated packet. */
int cn_srtp_unprotect_rtp(struct cn_srtp *s, uint8_t *buf, size_t *len);
int cn_srtp_unprotect_rtcp(struct cn_srtp *s, uint8_t *buf, size_t *len);
void cn_srtp_free(struct cn_srtp *s);

#endif
