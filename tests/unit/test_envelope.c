/* test_envelope.c: uplink envelope encode/decode and the rejections the schema promises. */
#include <stdlib.h>

#include "cn_envelope.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_test.h"

static int decode(const char *s, struct cn_envelope *e, char *err, size_t cap)
{
	return cn_envelope_decode(s, strlen(s), e, err, cap);
}

TEST(envelope_roundtrip)
{
	struct cn_envelope a, b;
	struct cn_buf out;
	cJSON *body = cJSON_CreateObject();
	char err[256];
	int64_t n;

	cJSON_AddNumberToObject(body, "cameras", 4);
	CHECK_INT(cn_envelope_make(&a, "status.heartbeat", 17, body), 0);
	CHECK(strlen(a.id) == 16);
	cn_buf_init(&out, CN_ENV_MAX_BYTES);
	CHECK_INT(cn_envelope_encode(&a, &out), 0);
	CHECK_INT(cn_envelope_decode(out.data, out.len, &b, err, sizeof(err)), 0);
	CHECK_STR(b.type, "status.heartbeat");
	CHECK_STR(b.id, a.id);
	CHECK(b.seq == 17);
	CHECK_INT(b.time_ms, a.time_ms);
	CHECK_INT(cn_json_get_i64(b.body, "cameras", 0, 100, &n), 0);
	CHECK_INT(n, 4);
	cn_envelope_clear(&a);
	cn_envelope_clear(&b);
	cn_buf_free(&out);

	/* The documented example decodes. */
	CHECK_INT(decode("{\"v\":1,\"type\":\"event.batch\",\"id\":\"e-1\",\"seq\":9007199254740991,"
			 "\"time\":\"2026-11-21T08:00:00.5+01:00\",\"body\":{\"events\":[]}}",
			 &b, err, sizeof(err)),
		  0);
	CHECK_INT(b.time_ms, 1795244400500LL);
	cn_envelope_clear(&b);
}

TEST(envelope_rejects)
{
	static const struct {
		const char *json, *why;
	} bad[] = {
		{ "[]", "not a JSON object" },
		{ "{\"v\":1", "not one JSON document" },
		{ "{\"v\":2,\"type\":\"a\",\"id\":\"i\",\"seq\":0,\"time\":\"2026-01-01T00:00:00Z\",\"body\":{}}", "'v' must be 1" },
		{ "{\"type\":\"a\",\"id\":\"i\",\"seq\":0,\"time\":\"2026-01-01T00:00:00Z\",\"body\":{}}", "'v' must be 1" },
		{ "{\"v\":1,\"type\":\"A\",\"id\":\"i\",\"seq\":0,\"time\":\"2026-01-01T00:00:00Z\",\"body\":{}}", "'type'" },
		{ "{\"v\":1,\"type\":\"a..b\",\"id\":\"i\",\"seq\":0,\"time\":\"2026-01-01T00:00:00Z\",\"body\":{}}", "'type'" },
		{ "{\"v\":1,\"type\":\"a.\",\"id\":\"i\",\"seq\":0,\"time\":\"2026-01-01T00:00:00Z\",\"body\":{}}", "'type'" },
		{ "{\"v\":1,\"type\":\"a\",\"id\":\"\",\"seq\":0,\"time\":\"2026-01-01T00:00:00Z\",\"body\":{}}", "'id'" },
		{ "{\"v\":1,\"type\":\"a\",\"id\":\"a b\",\"seq\":0,\"time\":\"2026-01-01T00:00:00Z\",\"body\":{}}", "'id'" },
		{ "{\"v\":1,\"type\":\"a\",\"id\":\"i\",\"seq\":-1,\"time\":\"2026-01-01T00:00:00Z\",\"body\":{}}", "'seq'" },
		{ "{\"v\":1,\"type\":\"a\",\"id\":\"i\",\"seq\":1.5,\"time\":\"2026-01-01T00:00:00Z\",\"body\":{}}", "'seq'" },
		{ "{\"v\":1,\"type\":\"a\",\"id\":\"i\",\"seq\":9007199254740993,\"time\":\"2026-01-01T00:00:00Z\",\"body\":{}}", "'seq'" },
		{ "{\"v\":1,\"type\":\"a\",\"id\":\"i\",\"seq\":\"1\",\"time\":\"2026-01-01T00:00:00Z\",\"body\":{}}", "'seq'" },
		{ "{\"v\":1,\"type\":\"a\",\"id\":\"i\",\"seq\":1,\"time\":\"2026-02-30T00:00:00Z\",\"body\":{}}", "'time'" },
		{ "{\"v\":1,\"type\":\"a\",\"id\":\"i\",\"seq\":1,\"time\":1767225600,\"body\":{}}", "'time'" },
		{ "{\"v\":1,\"type\":\"a\",\"id\":\"i\",\"seq\":1,\"time\":\"2026-01-01T00:00:00Z\",\"body\":[]}", "'body'" },
		{ "{\"v\":1,\"type\":\"a\",\"id\":\"i\",\"seq\":1,\"time\":\"2026-01-01T00:00:00Z\"}", "'body'" },
		{ "{\"v\":1,\"type\":\"a\",\"id\":\"i\",\"seq\":1,\"time\":\"2026-01-01T00:00:00Z\",\"body\":{},\"extra\":1}", "unknown member 'extra'" },
		{ "{\"v\":1,\"v\":1,\"type\":\"a\",\"id\":\"i\",\"seq\":1,\"time\":\"2026-01-01T00:00:00Z\",\"body\":{}}", "repeated key" },
	};
	struct cn_envelope e;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		err[0] = '\0';
		int rc = decode(bad[i].json, &e, err, sizeof(err));
		if (rc != CN_E_MALFORMED || !strstr(err, bad[i].why))
			cn_test_fail(__FILE__, __LINE__, "case %zu: rc %d err '%s', wanted '%s'", i, rc,
				     err, bad[i].why);
		CHECK(e.body == NULL);
	}
}

TEST(envelope_limits)
{
	struct cn_envelope e;
	struct cn_buf big;
	char err[256];
	char *deep;
	size_t n = 0;

	/* Over the frame limit. */
	cn_buf_init(&big, CN_ENV_MAX_BYTES + 1024);
	cn_buf_append_str(&big, "{\"v\":1,\"type\":\"a\",\"id\":\"i\",\"seq\":1,\"time\":\"2026-01-01T00:00:00Z\",\"body\":{\"p\":\"");
	while (big.len < CN_ENV_MAX_BYTES)
		cn_buf_append_str(&big, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	cn_buf_append_str(&big, "\"}}");
	CHECK_INT(cn_envelope_decode(big.data, big.len, &e, err, sizeof(err)), CN_E_TOO_BIG);
	cn_buf_free(&big);
	/* Nesting deeper than allowed. */
	deep = malloc(4096);
	n += (size_t)snprintf(deep, 4096, "{\"v\":1,\"type\":\"a\",\"id\":\"i\",\"seq\":1,\"time\":\"2026-01-01T00:00:00Z\",\"body\":{\"d\":");
	for (int i = 0; i < 100; i++)
		deep[n++] = '[';
	for (int i = 0; i < 100; i++)
		deep[n++] = ']';
	memcpy(deep + n, "}}", 3);
	CHECK_INT(decode(deep, &e, err, sizeof(err)), CN_E_MALFORMED);
	CHECK(strstr(err, "nesting") != NULL);
	free(deep);
	/* Encoding refuses what decoding would refuse. */
	struct cn_envelope bad;
	CHECK_INT(cn_envelope_make(&bad, "Bad Type", 1, NULL), -EINVAL);
	CHECK_INT(cn_envelope_make(&bad, "ok", 1, NULL), 0);
	bad.seq = (uint64_t)CN_JSON_MAX_SAFE_INT + 1;
	cn_buf_init(&big, 1024);
	CHECK_INT(cn_envelope_encode(&bad, &big), -EINVAL);
	cn_buf_free(&big);
	cn_envelope_clear(&bad);
}
