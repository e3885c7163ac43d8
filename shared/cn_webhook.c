/* cn_webhook.c: Standard Webhooks signing and verification with OpenSSL's HMAC-SHA256 (pure: no I/O). */
#include "cn_webhook.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "cn_base64.h"
#include "cn_buf.h"
#include "cn_crypto.h"
#include "cn_err.h"

#define PREFIX "whsec_"

int cn_webhook_key_parse(const char *secret, struct cn_webhook_key *out, char *err, size_t errcap)
{
	const char *b = secret;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (!strncmp(b, PREFIX, strlen(PREFIX)))
		b += strlen(PREFIX);
	if (cn_base64_decode(CN_B64_STD, b, strlen(b), out->key, sizeof(out->key), &n) < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap,
			       "webhook secret must be whsec_ followed by padded base64");
	if (n < CN_WEBHOOK_KEY_MIN)
		return cn_fail(CN_E_MALFORMED, err, errcap,
			       "webhook secret holds %zu bytes; at least %d are needed", n,
			       CN_WEBHOOK_KEY_MIN);
	out->len = n;
	return 0;
}

int cn_webhook_secret_new(char *out, size_t cap)
{
	uint8_t key[32];
	size_t n;
	int rc;

	if (cap < strlen(PREFIX) + 1)
		return -ENOSPC;
	if ((rc = cn_random_bytes(key, sizeof(key))) < 0)
		return rc;
	memcpy(out, PREFIX, strlen(PREFIX));
	rc = cn_base64_encode(CN_B64_STD, key, sizeof(key), out + strlen(PREFIX), cap - strlen(PREFIX), &n);
	memset(key, 0, sizeof(key));
	return rc;
}

static int valid_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > CN_WEBHOOK_MAX_ID)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (id[i] <= 0x20 || id[i] >= 0x7f)
			return 0;
	return 1;
}

static int hmac(const struct cn_webhook_key *k, const char *msg_id, const char *ts, const uint8_t *body,
		size_t len, uint8_t mac[CN_SHA256_LEN])
{
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t outl = 0;
	int rc = -EIO;

	/* id.ts.body, fed in pieces: the body is never copied. */
	if (c && EVP_MAC_init(c, k->key, k->len, params) == 1 &&
	    EVP_MAC_update(c, (const uint8_t *)msg_id, strlen(msg_id)) == 1 &&
	    EVP_MAC_update(c, (const uint8_t *)".", 1) == 1 &&
	    EVP_MAC_update(c, (const uint8_t *)ts, strlen(ts)) == 1 &&
	    EVP_MAC_update(c, (const uint8_t *)".", 1) == 1 &&
	    (len == 0 || EVP_MAC_update(c, body, len) == 1) &&
	    EVP_MAC_final(c, mac, &outl, CN_SHA256_LEN) == 1 && outl == CN_SHA256_LEN)
		rc = 0;
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
	return rc;
}

int cn_webhook_sign(const struct cn_webhook_key *k, const char *msg_id, int64_t ts,
		    const uint8_t *body, size_t len, char *out, size_t cap)
{
	uint8_t mac[CN_SHA256_LEN];
	char tss[24];
	size_t n;
	int rc;

	if (!valid_id(msg_id) || ts < 0 || k->len < CN_WEBHOOK_KEY_MIN)
		return -EINVAL;
	if (cap < CN_WEBHOOK_SIG_LEN)
		return -ENOSPC;
	snprintf(tss, sizeof(tss), "%lld", (long long)ts);
	if ((rc = hmac(k, msg_id, tss, body, len, mac)) < 0)
		return rc;
	memcpy(out, "v1,", 3);
	return cn_base64_encode(CN_B64_STD, mac, sizeof(mac), out + 3, cap - 3, &n);
}

int cn_webhook_verify(const struct cn_webhook_key *k, const char *msg_id, const char *ts_header,
		      const char *sig_header, const uint8_t *body, size_t len, int64_t now,
		      int64_t tolerance_s, char *err, size_t errcap)
{
	uint8_t mac[CN_SHA256_LEN], got[CN_SHA256_LEN + 4];
	int64_t ts;
	size_t n;
	bool any_v1 = false;

	if (!valid_id(msg_id))
		return cn_fail(CN_E_MALFORMED, err, errcap, "webhook-id is empty, too long or not printable");
	if (cn_str_to_i64(cn_str_from(ts_header), 0, INT64_MAX / 2, &ts) < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap, "webhook-timestamp is not whole seconds");
	if (ts < now - tolerance_s)
		return cn_fail(CN_E_EXPIRED, err, errcap, "webhook-timestamp is %lld s old",
			       (long long)(now - ts));
	if (ts > now + tolerance_s)
		return cn_fail(CN_E_NOT_YET, err, errcap, "webhook-timestamp is %lld s ahead",
			       (long long)(ts - now));
	if (hmac(k, msg_id, ts_header, body, len, mac) < 0)
		return cn_fail(-EIO, err, errcap, "HMAC failed");
	/* "v1,<b64> v1,<b64> ..."; other versions are skipped, as the scheme says. */
	for (const char *p = sig_header; *p;) {
		while (*p == ' ')
			p++;
		const char *end = strchr(p, ' ');
		size_t l = end ? (size_t)(end - p) : strlen(p);
		if (l > 3 && !strncmp(p, "v1,", 3)) {
			any_v1 = true;
			if (cn_base64_decode(CN_B64_STD, p + 3, l - 3, got, sizeof(got), &n) == 0 &&
			    n == CN_SHA256_LEN && cn_ct_equal(got, mac, CN_SHA256_LEN))
				return 0;
		}
		p += l;
	}
	return cn_fail(any_v1 ? CN_E_BAD_SIG : CN_E_MALFORMED, err, errcap,
		       any_v1 ? "no v1 signature matches" : "webhook-signature has no v1 signature");
}
