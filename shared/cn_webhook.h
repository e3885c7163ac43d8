/* cn_webhook.h: Standard Webhooks signatures: webhook-id, webhook-timestamp, webhook-signature (v1, HMAC-SHA256). */
#ifndef CN_WEBHOOK_H
#define CN_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

/* The signed content is "<webhook-id>.<webhook-timestamp>.<body>"; the header value is
 * "v1,<base64 of the HMAC>" (several, space-separated, while a secret is being rotated). */

#define CN_WEBHOOK_KEY_MIN 24
#define CN_WEBHOOK_KEY_MAX 64
#define CN_WEBHOOK_SIG_LEN 48      /* "v1," + 44 base64 characters + NUL */
#define CN_WEBHOOK_SECRET_LEN 80   /* "whsec_" + base64 of a 32-byte key + NUL, rounded up */
#define CN_WEBHOOK_MAX_ID 256

struct cn_webhook_key {
	uint8_t key[CN_WEBHOOK_KEY_MAX];
	size_t len;
};

/* "whsec_<base64>" (the prefix is optional) holding 24..64 key bytes. */
int cn_webhook_key_parse(const char *secret, struct cn_webhook_key *out, char *err, size_t errcap);
/* A new random 32-byte secret as "whsec_<base64>". */
int cn_webhook_secret_new(char *out, size_t cap);
/* Writes "v1,<base64>" into out (CN_WEBHOOK_SIG_LEN bytes suffice). msg_id is 1..256
 * printable characters without '.' being special (it is signed as is); ts in seconds. */
int cn_webhook_sign(const struct cn_webhook_key *k, const char *msg_id, int64_t ts,
		    const uint8_t *body, size_t len, char *out, size_t cap);
/* For receivers and tests: 0 when one "v1," signature of sig_header matches and ts_header
 * is within tolerance_s of now; CN_E_BAD_SIG, CN_E_EXPIRED (too old), CN_E_NOT_YET (too
 * far ahead) or CN_E_MALFORMED otherwise, with the reason in err. */
int cn_webhook_verify(const struct cn_webhook_key *k, const char *msg_id, const char *ts_header,
		      const char *sig_header, const uint8_t *body, size_t len, int64_t now,
		      int64_t tolerance_s, char *err, size_t errcap);

#endif
