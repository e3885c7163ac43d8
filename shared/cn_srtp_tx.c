/* cn_srtp_tx.c: SRTP for outgoing RTP, AES_CM_128_HMAC_SHA1_80 (RFC 3711) on OpenSSL with per-session contexts. */
/* The low-level SHA-1 API lets the HMAC's keyed inner and outer states be copied per
 * packet as plain structs (EVP would allocate); it is deprecated, not gone. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "cn_srtp_tx.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "cn_err.h"
#include "cn_rtp.h"

#define TAG_LEN 10

struct roc_entry {
	bool used;
	uint32_t ssrc;
	uint64_t index; /* highest packet index sent (ROC << 16 | seq), libsrtp's way */
};

struct cn_srtp_tx {
	EVP_CIPHER_CTX *aes;
	uint8_t salt[14]; /* k_s */
	SHA_CTX inner, outer; /* SHA-1 after the ipad / opad block of k_a */
	struct roc_entry roc[CN_SRTP_TX_MAX_SSRC];
};

/* RFC 3711 4.3: session key of label from the master key and salt (kdr 0), AES-CM PRF. */
static int derive(const uint8_t key[16], const uint8_t salt[14], uint8_t label, uint8_t *out,
		  size_t n)
{
	uint8_t iv[16] = { 0 }, zero[32] = { 0 };
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ol = 0, ok;

	memcpy(iv, salt, 14);
	iv[7] ^= label;
	ok = c && EVP_EncryptInit_ex(c, EVP_aes_128_ctr(), NULL, key, iv) == 1 &&
	     EVP_EncryptUpdate(c, out, &ol, zero, (int)n) == 1 && (size_t)ol == n;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -EINVAL;
}

int cn_srtp_tx_new(const struct cn_srtp_keys *keys, struct cn_srtp_tx **out)
{
	struct cn_srtp_tx *t;
	uint8_t ke[16], ka[20], pad[64];
	int rc = -EINVAL;

	if (keys->profile != CN_SRTP_AES128_CM_SHA1_80 || keys->salt_len != 14)
		return -ENOTSUP;
	if (!(t = calloc(1, sizeof(*t))))
		return -ENOMEM;
	if (derive(keys->local_key, keys->local_salt, 0, ke, sizeof(ke)) < 0 ||
	    derive(keys->local_key, keys->local_salt, 1, ka, sizeof(ka)) < 0 ||
	    derive(keys->local_key, keys->local_salt, 2, t->salt, sizeof(t->salt)) < 0)
		goto out_free;
	if (!(t->aes = EVP_CIPHER_CTX_new()) ||
	    EVP_EncryptInit_ex(t->aes, EVP_aes_128_ctr(), NULL, ke, NULL) != 1)
		goto out_free;
	/* HMAC (RFC 2104) with a 20-byte key: the key padded to a block, XOR ipad / opad. */
	memset(pad, 0x36, sizeof(pad));
	for (int i = 0; i < 20; i++)
		pad[i] ^= ka[i];
	SHA1_Init(&t->inner);
	SHA1_Update(&t->inner, pad, sizeof(pad));
	memset(pad, 0x5c, sizeof(pad));
	for (int i = 0; i < 20; i++)
		pad[i] ^= ka[i];
	SHA1_Init(&t->outer);
	SHA1_Update(&t->outer, pad, sizeof(pad));
	rc = 0;
	*out = t;
out_free:
	OPENSSL_cleanse(ke, sizeof(ke));
	OPENSSL_cleanse(ka, sizeof(ka));
	OPENSSL_cleanse(pad, sizeof(pad));
	if (rc < 0)
		cn_srtp_tx_free(t);
	return rc;
}

/* The packet index libsrtp's sender would use (srtp_rdbx_estimate_index and
 * srtp_index_guess), and the same update, so both write identical packets. */
static uint64_t packet_index(struct roc_entry *e, uint16_t s)
{
	uint64_t guess;
	int32_t delta;

	if (e->index > 32768) {
		uint32_t roc = (uint32_t)(e->index >> 16);
		uint16_t seq = (uint16_t)e->index;
		if (seq < 32768) {
			if ((int)s - (int)seq > 32768) {
				roc -= 1;
				delta = (int)s - (int)seq - 65536;
			} else {
				delta = (int)s - (int)seq;
			}
		} else if ((int)seq - 32768 > (int)s) {
			roc += 1;
			delta = (int)s - (int)seq + 65536;
		} else {
			delta = (int)s - (int)seq;
		}
		guess = ((uint64_t)roc << 16) | s;
	} else {
		guess = s;
		delta = (int32_t)(guess - e->index);
	}
	if (delta > 0)
		e->index += (uint64_t)delta;
	return guess;
}

int cn_srtp_tx_protect(struct cn_srtp_tx *t, uint8_t *buf, size_t *len, size_t cap)
{
	struct cn_rtp_hdr h;
	struct roc_entry *e = NULL;
	uint8_t iv[16], md[SHA_DIGEST_LENGTH], roc_be[4];
	SHA_CTX c;
	int ol;

	if (cn_rtp_parse(buf, *len, &h) < 0)
		return CN_E_MALFORMED;
	if (*len + TAG_LEN > cap)
		return -ENOBUFS;
	for (int i = 0; i < CN_SRTP_TX_MAX_SSRC && !e; i++)
		if (t->roc[i].used && t->roc[i].ssrc == h.ssrc)
			e = &t->roc[i];
	for (int i = 0; i < CN_SRTP_TX_MAX_SSRC && !e; i++)
		if (!t->roc[i].used) {
			e = &t->roc[i];
			e->used = true;
			e->ssrc = h.ssrc;
			e->index = 0;
		}
	if (!e)
		return -ENOSPC;
	uint64_t index = packet_index(e, h.seq);
	/* IV = k_s * 2^16 XOR SSRC * 2^64 XOR index * 2^16 (RFC 3711 4.1.1) */
	memcpy(iv, t->salt, 14);
	iv[14] = iv[15] = 0;
	for (int i = 0; i < 4; i++)
		iv[4 + i] ^= (uint8_t)(h.ssrc >> (24 - 8 * i));
	for (int i = 0; i < 6; i++)
		iv[8 + i] ^= (uint8_t)(index >> (40 - 8 * i));
	/* padding, if any, is encrypted with the payload (RFC 3711 3.1) */
	size_t off = h.header_len, plen = *len - off;
	if (EVP_EncryptInit_ex(t->aes, NULL, NULL, NULL, iv) != 1 ||
	    (plen && (EVP_EncryptUpdate(t->aes, buf + off, &ol, buf + off, (int)plen) != 1 ||
		      (size_t)ol != plen)))
		return -EPROTO;
	uint32_t roc = (uint32_t)(index >> 16);
	roc_be[0] = (uint8_t)(roc >> 24);
	roc_be[1] = (uint8_t)(roc >> 16);
	roc_be[2] = (uint8_t)(roc >> 8);
	roc_be[3] = (uint8_t)roc;
	c = t->inner;
	SHA1_Update(&c, buf, *len);
	SHA1_Update(&c, roc_be, 4);
	SHA1_Final(md, &c);
	c = t->outer;
	SHA1_Update(&c, md, sizeof(md));
	SHA1_Final(md, &c);
	memcpy(buf + *len, md, TAG_LEN);
	*len += TAG_LEN;
	return 0;
}

void cn_srtp_tx_free(struct cn_srtp_tx *t)
{
	if (!t)
		return;
	EVP_CIPHER_CTX_free(t->aes);
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}
