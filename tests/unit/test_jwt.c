/* test_jwt.c: EdDSA tokens: round trip, and every rejection the foundation promises. */
#include <stdlib.h>

#include "cn_base64.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_jwt.h"
#include "cn_test.h"

#define NOW 1795000000LL

static struct cn_jwt_claims sample(void)
{
	struct cn_jwt_claims c;

	memset(&c, 0, sizeof(c));
	cn_strlcpy(c.iss, "central-1", sizeof(c.iss));
	cn_strlcpy(c.sub, "user:alice", sizeof(c.sub));
	cn_strlcpy(c.tenant, "t-acme", sizeof(c.tenant));
	cn_strlcpy(c.jti, "tok-0001", sizeof(c.jti));
	cn_strlcpy(c.scope, "camera:view archive:read", sizeof(c.scope));
	c.iat = NOW;
	c.nbf = NOW;
	c.exp = NOW + 900;
	return c;
}

static char *make_token(struct cn_ed25519 *k, const struct cn_jwt_claims *c)
{
	struct cn_buf b;

	cn_buf_init(&b, CN_JWT_MAX_TOKEN);
	if (cn_jwt_sign(k, NULL, c, NULL, &b) < 0) {
		cn_buf_free(&b);
		return NULL;
	}
	return cn_buf_take(&b, NULL);
}

/* Builds header.payload.sig from raw JSON texts, signed with k (the alg is whatever the
 * header says: that is what an attacker controls). */
static char *forge(struct cn_ed25519 *k, const char *hdr, const char *pay)
{
	static char tok[16384];
	uint8_t sig[64];
	size_t n, m;

	cn_base64_encode(CN_B64_URL, (const uint8_t *)hdr, strlen(hdr), tok, sizeof(tok), &n);
	tok[n++] = '.';
	cn_base64_encode(CN_B64_URL, (const uint8_t *)pay, strlen(pay), tok + n, sizeof(tok) - n, &m);
	n += m;
	cn_ed25519_sign(k, tok, n, sig);
	tok[n++] = '.';
	cn_base64_encode(CN_B64_URL, sig, 64, tok + n, sizeof(tok) - n, &m);
	return tok;
}

static int verify(struct cn_ed25519 *k, const char *tok, int64_t now, char *err, size_t cap)
{
	struct cn_jwt_claims c;

	return cn_jwt_verify(tok, strlen(tok), &k, 1, now, 0, &c, NULL, err, cap);
}

static const char good_payload[] =
	"{\"sub\":\"u\",\"tenant\":\"t\",\"jti\":\"j\",\"exp\":1795000900}";

TEST(jwt_roundtrip)
{
	struct cn_ed25519 *k = NULL;
	struct cn_jwt_claims in = sample(), out;
	char err[256] = "";
	char *tok;

	CHECK_INT(cn_ed25519_generate(&k), 0);
	tok = make_token(k, &in);
	CHECK(tok != NULL);
	CHECK_INT(cn_jwt_verify(tok, strlen(tok), &k, 1, NOW + 10, 0, &out, NULL, err, sizeof(err)), 0);
	CHECK_STR(out.sub, "user:alice");
	CHECK_STR(out.tenant, "t-acme");
	CHECK_STR(out.jti, "tok-0001");
	CHECK_STR(out.iss, "central-1");
	CHECK_INT(out.exp, NOW + 900);
	CHECK_INT(out.nbf, NOW);
	CHECK(cn_jwt_has_scope(&out, "camera:view"));
	CHECK(cn_jwt_has_scope(&out, "archive:read"));
	CHECK(!cn_jwt_has_scope(&out, "archive"));
	CHECK(!cn_jwt_has_scope(&out, "camera:view archive:read"));
	CHECK(!cn_jwt_has_scope(&out, ""));
	free(tok);
	/* Missing required claims cannot even be signed. */
	in.tenant[0] = '\0';
	CHECK(make_token(k, &in) == NULL);
	cn_ed25519_free(k);
}

TEST(jwt_rejects_alg)
{
	static const char *const headers[] = {
		"{\"alg\":\"none\",\"typ\":\"JWT\"}",   "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
		"{\"alg\":\"RS256\"}",                  "{\"alg\":\"ES256\"}",
		"{\"alg\":\"eddsa\"}",                  "{\"alg\":\"Ed25519\"}",
		"{\"typ\":\"JWT\"}",                    "{\"alg\":null}",
		"{\"alg\":[\"EdDSA\"]}",     "{}",
	};
	struct cn_ed25519 *k = NULL;
	char err[256];

	CHECK_INT(cn_ed25519_generate(&k), 0);
	for (size_t i = 0; i < sizeof(headers) / sizeof(*headers); i++) {
		err[0] = '\0';
		int rc = verify(k, forge(k, headers[i], good_payload), NOW, err, sizeof(err));
		if (rc != CN_E_BAD_ALG)
			cn_test_fail(__FILE__, __LINE__, "header %s gave %d (%s)", headers[i], rc, err);
	}
	/* alg none with an empty signature, the classic attack. */
	CHECK_INT(verify(k, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.", NOW, err, sizeof(err)),
		  CN_E_MALFORMED);
	/* The header is checked: EdDSA plus crit or a wrong typ is refused. */
	CHECK_INT(verify(k, forge(k, "{\"alg\":\"EdDSA\",\"crit\":[\"x\"]}", good_payload), NOW, err,
			 sizeof(err)),
		  CN_E_MALFORMED);
	CHECK_INT(verify(k, forge(k, "{\"alg\":\"EdDSA\",\"typ\":\"JOSE+JSON\"}", good_payload), NOW,
			 err, sizeof(err)),
		  CN_E_MALFORMED);
	CHECK_INT(verify(k, forge(k, "{\"alg\":\"EdDSA\"}", good_payload), NOW, err, sizeof(err)), 0);
	cn_ed25519_free(k);
}

TEST(jwt_rejects_bad_signature)
{
	struct cn_ed25519 *k = NULL, *other = NULL;
	struct cn_jwt_claims c = sample();
	char err[256];
	char *tok;

	CHECK_INT(cn_ed25519_generate(&k), 0);
	CHECK_INT(cn_ed25519_generate(&other), 0);
	tok = make_token(k, &c);
	CHECK_INT(verify(other, tok, NOW, err, sizeof(err)), CN_E_BAD_SIG);
	CHECK(strstr(err, "signature") != NULL);
	/* Flip one payload character: the signature no longer covers it. */
	char *dot = strchr(tok, '.');
	dot[3] = dot[3] == 'A' ? 'B' : 'A';
	CHECK_INT(verify(k, tok, NOW, err, sizeof(err)), CN_E_BAD_SIG);
	free(tok);
	/* A truncated signature is malformed before any crypto runs. */
	tok = make_token(k, &c);
	tok[strlen(tok) - 4] = '\0';
	CHECK_INT(verify(k, tok, NOW, err, sizeof(err)), CN_E_MALFORMED);
	free(tok);
	cn_ed25519_free(k);
	cn_ed25519_free(other);
}

TEST(jwt_time_checks)
{
	struct cn_ed25519 *k = NULL;
	struct cn_jwt_claims c = sample(), out;
	char err[256];
	char *tok;

	CHECK_INT(cn_ed25519_generate(&k), 0);
	tok = make_token(k, &c);
	CHECK_INT(verify(k, tok, NOW + 899, err, sizeof(err)), 0);
	CHECK_INT(verify(k, tok, NOW + 900, err, sizeof(err)), CN_E_EXPIRED);
	CHECK(strstr(err, "expired") != NULL);
	CHECK_INT(verify(k, tok, NOW - 1, err, sizeof(err)), CN_E_NOT_YET);
	/* Leeway absorbs small clock skew both ways. */
	CHECK_INT(cn_jwt_verify(tok, strlen(tok), &k, 1, NOW - 20, 30, &out, NULL, err, sizeof(err)), 0);
	CHECK_INT(cn_jwt_verify(tok, strlen(tok), &k, 1, NOW + 920, 30, &out, NULL, err, sizeof(err)), 0);
	CHECK_INT(cn_jwt_verify(tok, strlen(tok), &k, 1, NOW + 930, 30, &out, NULL, err, sizeof(err)),
		  CN_E_EXPIRED);
	free(tok);
	/* exp must be a positive integer. */
	CHECK_INT(verify(k, forge(k, "{\"alg\":\"EdDSA\"}",
				  "{\"sub\":\"u\",\"tenant\":\"t\",\"jti\":\"j\",\"exp\":1.5e9}"),
			 NOW, err, sizeof(err)),
		  CN_E_EXPIRED);
	CHECK_INT(verify(k, forge(k, "{\"alg\":\"EdDSA\"}",
				  "{\"sub\":\"u\",\"tenant\":\"t\",\"jti\":\"j\",\"exp\":\"2099\"}"),
			 NOW, err, sizeof(err)),
		  CN_E_MALFORMED);
	CHECK_INT(verify(k, forge(k, "{\"alg\":\"EdDSA\"}",
				  "{\"sub\":\"u\",\"tenant\":\"t\",\"jti\":\"j\",\"exp\":1795000900.5}"),
			 NOW, err, sizeof(err)),
		  CN_E_MALFORMED);
	CHECK_INT(verify(k, forge(k, "{\"alg\":\"EdDSA\"}",
				  "{\"sub\":\"u\",\"tenant\":\"t\",\"jti\":\"j\",\"exp\":1e300}"),
			 NOW, err, sizeof(err)),
		  CN_E_MALFORMED);
	CHECK_INT(verify(k, forge(k, "{\"alg\":\"EdDSA\"}",
				  "{\"sub\":\"u\",\"tenant\":\"t\",\"jti\":\"j\"}"),
			 NOW, err, sizeof(err)),
		  CN_E_MALFORMED);
	CHECK(strstr(err, "'exp' missing") != NULL);
	cn_ed25519_free(k);
}

TEST(jwt_malformed)
{
	static const char *const bad[] = {
		"", ".", "..", "...", "a.b", "a.b.c.d", "abc", "a..c", ".b.c", "a.b.",
		"!!!.e30.AAAA", "eyJhbGciOiJFZERTQSJ9.e30=.AAAA",
	};
	struct cn_ed25519 *k = NULL;
	char err[256];

	CHECK_INT(cn_ed25519_generate(&k), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		int rc = verify(k, bad[i], NOW, err, sizeof(err));
		if (rc != CN_E_MALFORMED)
			cn_test_fail(__FILE__, __LINE__, "'%s' gave %d, not malformed", bad[i], rc);
	}
	/* Non-object JSON, repeated claims and wrong claim types, even when signed. */
	static const char *const payloads[] = {
		"[]", "\"x\"", "{", "{\"sub\":\"u\",\"sub\":\"v\",\"tenant\":\"t\",\"jti\":\"j\",\"exp\":1795000900}",
		"{\"sub\":1,\"tenant\":\"t\",\"jti\":\"j\",\"exp\":1795000900}",
		"{\"sub\":\"\",\"tenant\":\"t\",\"jti\":\"j\",\"exp\":1795000900}",
		"{\"sub\":\"u\",\"tenant\":\"t\",\"jti\":\"j\",\"exp\":1795000900} x",
	};
	for (size_t i = 0; i < sizeof(payloads) / sizeof(*payloads); i++) {
		int rc = verify(k, forge(k, "{\"alg\":\"EdDSA\"}", payloads[i]), NOW, err, sizeof(err));
		if (rc != CN_E_MALFORMED)
			cn_test_fail(__FILE__, __LINE__, "payload '%s' gave %d", payloads[i], rc);
	}
	cn_ed25519_free(k);
}

TEST(jwt_oversized)
{
	struct cn_ed25519 *k = NULL;
	char err[256];
	char *big = malloc(CN_JWT_MAX_TOKEN + 2);
	char *pay = malloc(CN_JWT_MAX_PAYLOAD + 100);

	CHECK_INT(cn_ed25519_generate(&k), 0);
	memset(big, 'A', CN_JWT_MAX_TOKEN + 1);
	big[10] = '.';
	big[20] = '.';
	big[CN_JWT_MAX_TOKEN + 1] = '\0';
	CHECK_INT(verify(k, big, NOW, err, sizeof(err)), CN_E_TOO_BIG);
	/* A payload past its own bound inside a token under the total bound. */
	int n = snprintf(pay, CN_JWT_MAX_PAYLOAD + 100, "{\"sub\":\"u\",\"tenant\":\"t\",\"jti\":\"j\",\"exp\":1795000900,\"pad\":\"");
	memset(pay + n, 'x', CN_JWT_MAX_PAYLOAD - n);
	memcpy(pay + CN_JWT_MAX_PAYLOAD, "\"}", 3);
	CHECK(verify(k, forge(k, "{\"alg\":\"EdDSA\"}", pay), NOW, err, sizeof(err)) < 0);
	/* Claim longer than its field is refused, not cut. */
	struct cn_jwt_claims c;
	char lp[400];
	snprintf(lp, sizeof(lp), "{\"sub\":\"%0200d\",\"tenant\":\"t\",\"jti\":\"j\",\"exp\":1795000900}", 0);
	CHECK_INT(cn_jwt_claims_parse(lp, strlen(lp), &c, NULL, err, sizeof(err)), CN_E_MALFORMED);
	CHECK(strstr(err, "'sub' longer") != NULL);
	free(big);
	free(pay);
	cn_ed25519_free(k);
}

TEST(jwt_kid_selects_key)
{
	struct cn_ed25519 *a = NULL, *b = NULL, *keys[2];
	struct cn_jwt_claims c = sample(), out;
	struct cn_buf tok;
	char kid[32], err[256];

	CHECK_INT(cn_ed25519_generate(&a), 0);
	CHECK_INT(cn_ed25519_generate(&b), 0);
	cn_ed25519_key_id(b, kid, sizeof(kid));
	cn_buf_init(&tok, CN_JWT_MAX_TOKEN);
	CHECK_INT(cn_jwt_sign(b, kid, &c, NULL, &tok), 0);
	keys[0] = a;
	keys[1] = b;
	CHECK_INT(cn_jwt_verify(tok.data, tok.len, keys, 2, NOW, 0, &out, NULL, err, sizeof(err)), 0);
	/* With only the other key, the named kid is not found. */
	CHECK_INT(cn_jwt_verify(tok.data, tok.len, keys, 1, NOW, 0, &out, NULL, err, sizeof(err)),
		  CN_E_BAD_SIG);
	CHECK(strstr(err, kid) != NULL);
	cn_buf_free(&tok);
	cn_ed25519_free(a);
	cn_ed25519_free(b);
}

TEST(jwt_extra_claims)
{
	struct cn_ed25519 *k = NULL;
	struct cn_jwt_claims c = sample(), out;
	cJSON *extra = cJSON_CreateObject(), *payload = NULL;
	struct cn_buf tok;
	char err[256];
	int64_t depth = 0;

	CHECK_INT(cn_ed25519_generate(&k), 0);
	cJSON_AddNumberToObject(extra, "archive_depth_s", 86400);
	cn_buf_init(&tok, CN_JWT_MAX_TOKEN);
	CHECK_INT(cn_jwt_sign(k, NULL, &c, extra, &tok), 0);
	CHECK_INT(cn_jwt_verify(tok.data, tok.len, &k, 1, NOW, 0, &out, &payload, err, sizeof(err)), 0);
	CHECK(payload != NULL);
	CHECK_INT(cn_json_get_i64(payload, "archive_depth_s", 0, INT64_MAX, &depth), 0);
	CHECK_INT(depth, 86400);
	cJSON_Delete(payload);
	/* An extra claim may not override a standard one. */
	cJSON_AddStringToObject(extra, "tenant", "t-other");
	cn_buf_reset(&tok);
	CHECK_INT(cn_jwt_sign(k, NULL, &c, extra, &tok), -EINVAL);
	cJSON_Delete(extra);
	cn_buf_free(&tok);
	cn_ed25519_free(k);
}
