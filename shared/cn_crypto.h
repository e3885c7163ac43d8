/* cn_crypto.h: the few primitives Canopy uses, on OpenSSL: random, HMAC, SHA-256, Ed25519. */
#ifndef CN_CRYPTO_H
#define CN_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CN_SHA1_LEN 20
#define CN_SHA256_LEN 32
#define CN_ED25519_PUB_LEN 32
#define CN_ED25519_SIG_LEN 64

int cn_random_bytes(void *out, size_t n);
/* A random id: base64url of 12 random bytes, 16 characters; cap >= 17. */
#define CN_RANDOM_ID_LEN 16
int cn_random_id(char *out, size_t cap);
int cn_hmac_sha1(const void *key, size_t klen, const void *msg, size_t mlen,
		 uint8_t out[CN_SHA1_LEN]);
int cn_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
		   uint8_t out[CN_SHA256_LEN]);
int cn_sha256(const void *msg, size_t mlen, uint8_t out[CN_SHA256_LEN]);
/* Time depends on n only, never on where a and b differ. */
bool cn_ct_equal(const void *a, const void *b, size_t n);

/* An Ed25519 key, private (can sign) or public only. Opaque; free with cn_ed25519_free. */
struct cn_ed25519;

int cn_ed25519_generate(struct cn_ed25519 **out);
/* PEM file: PKCS#8 private key or SubjectPublicKeyInfo public key. */
int cn_ed25519_load(const char *path, struct cn_ed25519 **out);
/* Writes the private key as PKCS#8 PEM, mode 0600, atomically (temp file + rename). */
int cn_ed25519_save_private(const struct cn_ed25519 *k, const char *path);
int cn_ed25519_save_public(const struct cn_ed25519 *k, const char *path);
/* The same from PEM text in memory (keys kept in a database). */
int cn_ed25519_from_pem(const char *pem, size_t len, struct cn_ed25519 **out);
/* PEM text of the private (priv) or public key, NUL-terminated; caller frees. */
int cn_ed25519_to_pem(const struct cn_ed25519 *k, bool priv, char **out);
int cn_ed25519_from_public(const uint8_t raw[CN_ED25519_PUB_LEN], struct cn_ed25519 **out);
int cn_ed25519_public(const struct cn_ed25519 *k, uint8_t raw[CN_ED25519_PUB_LEN]);
bool cn_ed25519_has_private(const struct cn_ed25519 *k);
int cn_ed25519_sign(const struct cn_ed25519 *k, const void *msg, size_t mlen,
		    uint8_t sig[CN_ED25519_SIG_LEN]);
/* 0 when sig is a valid signature of msg, CN_E_BAD_SIG otherwise. */
int cn_ed25519_verify(const struct cn_ed25519 *k, const void *msg, size_t mlen,
		      const uint8_t *sig, size_t siglen);
/* A short printable key id: base64url of the first 12 bytes of SHA-256(public key). */
int cn_ed25519_key_id(const struct cn_ed25519 *k, char *out, size_t cap);
void cn_ed25519_free(struct cn_ed25519 *k);

#endif
