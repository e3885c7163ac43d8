/* cn_crypto.c: thin, checked wrappers over OpenSSL 3 EVP. */
#include "cn_crypto.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "cn_base64.h"
#include "cn_err.h"
#include "cn_file.h"

struct cn_ed25519 {
	EVP_PKEY *pkey;
	bool priv;
};

int cn_random_bytes(void *out, size_t n)
{
	if (n > INT32_MAX)
		return -EINVAL;
	return RAND_bytes(out, (int)n) == 1 ? 0 : -EIO;
}

int cn_random_id(char *out, size_t cap)
{
	uint8_t rnd[12];
	int rc = cn_random_bytes(rnd, sizeof(rnd));

	return rc < 0 ? rc : cn_base64_encode(CN_B64_URL, rnd, sizeof(rnd), out, cap, NULL);
}

static int hmac(const EVP_MD *md, const void *key, size_t klen, const void *msg, size_t mlen,
		uint8_t *out, unsigned want)
{
	unsigned len = 0;

	if (klen > INT32_MAX)
		return -EINVAL;
	if (!HMAC(md, key, (int)klen, msg, mlen, out, &len) || len != want)
		return -EIO;
	return 0;
}

int cn_hmac_sha1(const void *key, size_t klen, const void *msg, size_t mlen,
		 uint8_t out[CN_SHA1_LEN])
{
	return hmac(EVP_sha1(), key, klen, msg, mlen, out, CN_SHA1_LEN);
}

int cn_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
		   uint8_t out[CN_SHA256_LEN])
{
	return hmac(EVP_sha256(), key, klen, msg, mlen, out, CN_SHA256_LEN);
}

int cn_sha256(const void *msg, size_t mlen, uint8_t out[CN_SHA256_LEN])
{
	unsigned len = 0;

	if (EVP_Digest(msg, mlen, out, &len, EVP_sha256(), NULL) != 1 || len != CN_SHA256_LEN)
		return -EIO;
	return 0;
}

bool cn_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

static int wrap(EVP_PKEY *pkey, bool priv, struct cn_ed25519 **out)
{
	struct cn_ed25519 *k = calloc(1, sizeof(*k));

	if (!k) {
		EVP_PKEY_free(pkey);
		return -ENOMEM;
	}
	k->pkey = pkey;
	k->priv = priv;
	*out = k;
	return 0;
}

int cn_ed25519_generate(struct cn_ed25519 **out)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	EVP_PKEY *pkey = NULL;
	int rc = -EIO;

	if (!ctx)
		return -ENOMEM;
	if (EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &pkey) == 1)
		rc = wrap(pkey, true, out);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

int cn_ed25519_load(const char *path, struct cn_ed25519 **out)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *pkey;
	bool priv = true;

	if (!f)
		return -errno;
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	if (!pkey) {
		rewind(f);
		pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
		priv = false;
	}
	fclose(f);
	if (!pkey)
		return CN_E_MALFORMED;
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		return CN_E_BAD_ALG;
	}
	return wrap(pkey, priv, out);
}

int cn_ed25519_from_pem(const char *pem, size_t len, struct cn_ed25519 **out)
{
	BIO *b;
	EVP_PKEY *pkey;
	bool priv = true;

	if (len > INT_MAX || !(b = BIO_new_mem_buf(pem, (int)len)))
		return -ENOMEM;
	pkey = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	if (!pkey) {
		(void)BIO_reset(b);
		pkey = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
		priv = false;
	}
	BIO_free(b);
	ERR_clear_error();
	if (!pkey)
		return CN_E_MALFORMED;
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		return CN_E_BAD_ALG;
	}
	return wrap(pkey, priv, out);
}

int cn_ed25519_to_pem(const struct cn_ed25519 *k, bool priv, char **out)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int ok;

	if (!b)
		return -ENOMEM;
	if (priv && !k->priv) {
		BIO_free(b);
		return -EINVAL;
	}
	ok = priv ? PEM_write_bio_PrivateKey(b, k->pkey, NULL, NULL, 0, NULL, NULL)
		  : PEM_write_bio_PUBKEY(b, k->pkey);
	n = BIO_get_mem_data(b, &data);
	if (!ok || n <= 0 || !(*out = malloc((size_t)n + 1))) {
		BIO_free(b);
		return ok ? -ENOMEM : -EIO;
	}
	memcpy(*out, data, (size_t)n);
	(*out)[n] = '\0';
	BIO_free(b);
	return 0;
}

static int save_pem(const struct cn_ed25519 *k, const char *path, bool priv)
{
	char *pem = NULL;
	int rc;

	if ((rc = cn_ed25519_to_pem(k, priv, &pem)) < 0)
		return rc;
	rc = cn_file_write_atomic(path, pem, strlen(pem), priv ? 0600 : 0644, true);
	explicit_bzero(pem, strlen(pem));
	free(pem);
	return rc;
}

int cn_ed25519_save_private(const struct cn_ed25519 *k, const char *path)
{
	if (!k->priv)
		return -EINVAL;
	return save_pem(k, path, true);
}

int cn_ed25519_save_public(const struct cn_ed25519 *k, const char *path)
{
	return save_pem(k, path, false);
}

int cn_ed25519_from_public(const uint8_t raw[CN_ED25519_PUB_LEN], struct cn_ed25519 **out)
{
	EVP_PKEY *pkey =
		EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, CN_ED25519_PUB_LEN);

	if (!pkey)
		return CN_E_MALFORMED;
	return wrap(pkey, false, out);
}

int cn_ed25519_public(const struct cn_ed25519 *k, uint8_t raw[CN_ED25519_PUB_LEN])
{
	size_t len = CN_ED25519_PUB_LEN;

	if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &len) != 1 || len != CN_ED25519_PUB_LEN)
		return -EIO;
	return 0;
}

bool cn_ed25519_has_private(const struct cn_ed25519 *k)
{
	return k && k->priv;
}

int cn_ed25519_sign(const struct cn_ed25519 *k, const void *msg, size_t mlen,
		    uint8_t sig[CN_ED25519_SIG_LEN])
{
	EVP_MD_CTX *ctx;
	size_t len = CN_ED25519_SIG_LEN;
	int rc = -EIO;

	if (!k->priv)
		return -EINVAL;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
	    EVP_DigestSign(ctx, sig, &len, msg, mlen) == 1 && len == CN_ED25519_SIG_LEN)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	return rc;
}

int cn_ed25519_verify(const struct cn_ed25519 *k, const void *msg, size_t mlen,
		      const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *ctx;
	int rc = CN_E_BAD_SIG;

	if (siglen != CN_ED25519_SIG_LEN)
		return CN_E_BAD_SIG;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
	    EVP_DigestVerify(ctx, sig, siglen, msg, mlen) == 1)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	return rc;
}

int cn_ed25519_key_id(const struct cn_ed25519 *k, char *out, size_t cap)
{
	uint8_t raw[CN_ED25519_PUB_LEN], digest[CN_SHA256_LEN];
	int rc = cn_ed25519_public(k, raw);

	if (rc == 0)
		rc = cn_sha256(raw, sizeof(raw), digest);
	if (rc == 0)
		rc = cn_base64_encode(CN_B64_URL, digest, 12, out, cap, NULL);
	return rc;
}

void cn_ed25519_free(struct cn_ed25519 *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}
