/* test_webhook.c: Standard Webhooks signatures against the scheme's published example, and refusals. */
#include <string.h>

#include "cn_err.h"
#include "cn_test.h"
#include "cn_webhook.h"

/* The example of the Standard Webhooks specification (computed independently with
 * Python's hmac when this test was written). */
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define MSG_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define TS 1614265330
#define BODY "{\"test\": 2432232314}"
#define SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

TEST(webhook_sign_matches_the_specification_example)
{
	struct cn_webhook_key k;
	char sig[CN_WEBHOOK_SIG_LEN], err[128];

	CHECK_INT(cn_webhook_key_parse(SECRET, &k, err, sizeof(err)), 0);
	CHECK_INT(k.len, 24);
	CHECK_INT(cn_webhook_sign(&k, MSG_ID, TS, (const uint8_t *)BODY, strlen(BODY), sig, sizeof(sig)), 0);
	CHECK_STR(sig, SIG);
	/* the prefix is optional */
	struct cn_webhook_key k2;
	CHECK_INT(cn_webhook_key_parse(SECRET + 6, &k2, err, sizeof(err)), 0);
	CHECK(k2.len == k.len && memcmp(k2.key, k.key, k.len) == 0);
}

TEST(webhook_verify)
{
	struct cn_webhook_key k, other;
	char err[128], fresh[CN_WEBHOOK_SECRET_LEN];
	const uint8_t *b = (const uint8_t *)BODY;
	size_t n = strlen(BODY);

	cn_webhook_key_parse(SECRET, &k, err, sizeof(err));
	CHECK_INT(cn_webhook_verify(&k, MSG_ID, "1614265330", SIG, b, n, TS, 300, err, sizeof(err)), 0);
	/* several signatures (secret rotation), an unknown version skipped */
	CHECK_INT(cn_webhook_verify(&k, MSG_ID, "1614265330",
				    "v2,AAAA v1,bm90IGl0 " SIG, b, n, TS, 300, err, sizeof(err)), 0);
	/* another body, id or timestamp does not verify */
	CHECK_INT(cn_webhook_verify(&k, MSG_ID, "1614265330", SIG, b, n - 1, TS, 300, err, sizeof(err)),
		  CN_E_BAD_SIG);
	CHECK_INT(cn_webhook_verify(&k, "msg_other", "1614265330", SIG, b, n, TS, 300, err, sizeof(err)),
		  CN_E_BAD_SIG);
	CHECK_INT(cn_webhook_verify(&k, MSG_ID, "1614265331", SIG, b, n, TS, 300, err, sizeof(err)),
		  CN_E_BAD_SIG);
	/* replay window */
	CHECK_INT(cn_webhook_verify(&k, MSG_ID, "1614265330", SIG, b, n, TS + 301, 300, err, sizeof(err)),
		  CN_E_EXPIRED);
	CHECK(strstr(err, "301 s old") != NULL);
	CHECK_INT(cn_webhook_verify(&k, MSG_ID, "1614265330", SIG, b, n, TS - 301, 300, err, sizeof(err)),
		  CN_E_NOT_YET);
	/* malformed headers */
	CHECK_INT(cn_webhook_verify(&k, MSG_ID, "16142x", SIG, b, n, TS, 300, err, sizeof(err)),
		  CN_E_MALFORMED);
	CHECK_INT(cn_webhook_verify(&k, MSG_ID, "1614265330", "v2,abc", b, n, TS, 300, err, sizeof(err)),
		  CN_E_MALFORMED);
	CHECK_INT(cn_webhook_verify(&k, "", "1614265330", SIG, b, n, TS, 300, err, sizeof(err)),
		  CN_E_MALFORMED);
	/* a new secret is another key */
	CHECK_INT(cn_webhook_secret_new(fresh, sizeof(fresh)), 0);
	CHECK(strncmp(fresh, "whsec_", 6) == 0);
	CHECK_INT(cn_webhook_key_parse(fresh, &other, err, sizeof(err)), 0);
	CHECK_INT(other.len, 32);
	CHECK_INT(cn_webhook_verify(&other, MSG_ID, "1614265330", SIG, b, n, TS, 300, err, sizeof(err)),
		  CN_E_BAD_SIG);
}

TEST(webhook_refusals)
{
	struct cn_webhook_key k;
	char err[128], sig[CN_WEBHOOK_SIG_LEN];

	CHECK_INT(cn_webhook_key_parse("whsec_not base64!", &k, err, sizeof(err)), CN_E_MALFORMED);
	CHECK_INT(cn_webhook_key_parse("whsec_c2hvcnQ=", &k, err, sizeof(err)), CN_E_MALFORMED);
	CHECK(strstr(err, "at least 24") != NULL);
	cn_webhook_key_parse(SECRET, &k, err, sizeof(err));
	CHECK_INT(cn_webhook_sign(&k, "with space", TS, NULL, 0, sig, sizeof(sig)), -EINVAL);
	CHECK_INT(cn_webhook_sign(&k, "", TS, NULL, 0, sig, sizeof(sig)), -EINVAL);
	CHECK_INT(cn_webhook_sign(&k, MSG_ID, -1, NULL, 0, sig, sizeof(sig)), -EINVAL);
	CHECK_INT(cn_webhook_sign(&k, MSG_ID, TS, NULL, 0, sig, 10), -ENOSPC);
	/* an empty body signs fine */
	CHECK_INT(cn_webhook_sign(&k, MSG_ID, TS, NULL, 0, sig, sizeof(sig)), 0);
	CHECK_INT(strlen(sig), 47);
}
