/* fuzz_jwt.c: libFuzzer harness for the JWT decoder: raw, signed-payload, signed-header tokens. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cn_base64.h"
#include "cn_buf.h"
#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_jwt.h"
#include "fuzz_check.h"

/* Fixed clock for the checks that do not pick their own. */
#define NOW 1795000000LL
#define LEEWAY 60LL
/* get_claim_time's upper bound: 9999-12-31T23:59:59Z. */
#define MAX_TIME 253402300799LL

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char hdr_plain[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}";

/* key signs everything; decoy is tried first and never matches. */
static struct cn_ed25519 *key, *decoy;
static char key_id[32];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (cn_ed25519_generate(&key) < 0 || cn_ed25519_generate(&decoy) < 0 ||
	    cn_ed25519_key_id(key, key_id, sizeof(key_id)) < 0) {
		fprintf(stderr, "fuzz_jwt: cannot make the Ed25519 keys\n");
		abort();
	}
	return 0;
}

/* header.payload.sig over raw header and payload bytes, signed with key. Caller frees. */
static char *make_token(const void *hdr, size_t hlen, const void *pay, size_t plen, size_t *len)
{
	size_t cap = cn_base64_encoded_len(CN_B64_URL, hlen) +
		     cn_base64_encoded_len(CN_B64_URL, plen) +
		     cn_base64_encoded_len(CN_B64_URL, CN_ED25519_SIG_LEN) + 4;
	uint8_t sig[CN_ED25519_SIG_LEN];
	char *tok = malloc(cap);
	size_t n = 0, m;

	CHECK(tok != NULL);
	CHECK(cn_base64_encode(CN_B64_URL, hdr, hlen, tok, cap, &m) == 0);
	n += m;
	tok[n++] = '.';
	CHECK(cn_base64_encode(CN_B64_URL, pay, plen, tok + n, cap - n, &m) == 0);
	n += m;
	CHECK(cn_ed25519_sign(key, tok, n, sig) == 0);
	tok[n++] = '.';
	CHECK(cn_base64_encode(CN_B64_URL, sig, sizeof(sig), tok + n, cap - n, &m) == 0);
	n += m;
	*len = n;
	return tok;
}

static bool terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* What every accepted claim set must look like. */
static void check_claims(const struct cn_jwt_claims *c)
{
	CHECK(terminated(c->iss, sizeof(c->iss)));
	CHECK(terminated(c->sub, sizeof(c->sub)) && c->sub[0]);
	CHECK(terminated(c->tenant, sizeof(c->tenant)) && c->tenant[0]);
	CHECK(terminated(c->jti, sizeof(c->jti)) && c->jti[0]);
	CHECK(terminated(c->scope, sizeof(c->scope)));
	CHECK(c->exp > 0 && c->exp <= MAX_TIME);
	CHECK(c->iat >= 0 && c->iat <= MAX_TIME);
	CHECK(c->nbf >= 0 && c->nbf <= MAX_TIME);

	/* Every word of scope is found by cn_jwt_has_scope; the empty word never is. */
	CHECK(!cn_jwt_has_scope(c, ""));
	for (const char *p = c->scope; *p;) {
		const char *sp = strchr(p, ' ');
		size_t n = sp ? (size_t)(sp - p) : strlen(p);
		char word[sizeof(c->scope)];
		if (n) {
			memcpy(word, p, n);
			word[n] = '\0';
			CHECK(cn_jwt_has_scope(c, word));
		}
		if (!sp)
			break;
		p = sp + 1;
	}
}

static bool same_claims(const struct cn_jwt_claims *a, const struct cn_jwt_claims *b)
{
	return strcmp(a->iss, b->iss) == 0 && strcmp(a->sub, b->sub) == 0 &&
	       strcmp(a->tenant, b->tenant) == 0 && strcmp(a->jti, b->jti) == 0 &&
	       strcmp(a->scope, b->scope) == 0 && a->iat == b->iat && a->nbf == b->nbf &&
	       a->exp == b->exp;
}

/* Equal trees, compared as printed text: cJSON_Compare calls inf != inf, and a number
 * too large for a double (1e600) parses as inf. */
static bool same_json(const cJSON *a, const cJSON *b)
{
	char *sa = cJSON_PrintUnformatted(a), *sb = cJSON_PrintUnformatted(b);
	bool same = sa && sb && strcmp(sa, sb) == 0;

	cJSON_free(sa);
	cJSON_free(sb);
	return same;
}

/* The time verdict cn_jwt_verify must give once the signature and claims are good. */
static int time_verdict(const struct cn_jwt_claims *c, int64_t now, int64_t leeway)
{
	if (now - leeway >= c->exp)
		return CN_E_EXPIRED;
	if (c->nbf && now + leeway < c->nbf)
		return CN_E_NOT_YET;
	return 0;
}

static bool documented_verify_error(int rc)
{
	return rc == CN_E_TOO_BIG || rc == CN_E_MALFORMED || rc == CN_E_BAD_ALG ||
	       rc == CN_E_BAD_SIG || rc == CN_E_EXPIRED || rc == CN_E_NOT_YET;
}

/* Runs cn_jwt_verify and checks what holds for any outcome. */
static int verify(const char *tok, size_t len, struct cn_ed25519 *const *keys, size_t nkeys,
		  int64_t now, int64_t leeway, struct cn_jwt_claims *c, cJSON **payload)
{
	char err[256];
	int rc;

	err[0] = '\0';
	if (payload)
		*payload = (cJSON *)(uintptr_t)1; /* must be reset whatever happens */
	rc = cn_jwt_verify(tok, len, keys, nkeys, now, leeway, c, payload, err, sizeof(err));
	if (rc == 0) {
		check_claims(c);
		CHECK(now - leeway < c->exp);
		CHECK(!c->nbf || now + leeway >= c->nbf);
		if (payload)
			CHECK(cJSON_IsObject(*payload));
	} else {
		CHECK(documented_verify_error(rc));
		CHECK(err[0] != '\0' && terminated(err, sizeof(err)));
		if (payload)
			CHECK(*payload == NULL);
	}
	return rc;
}

/* Our own reading of a header: true when it is JSON whose "alg" is exactly "EdDSA". */
static bool header_says_eddsa(const void *json, size_t len)
{
	cJSON *h = cJSON_ParseWithLength(json, len);
	const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
	bool ok = cJSON_IsString(alg) && alg->valuestring && strcmp(alg->valuestring, "EdDSA") == 0;

	cJSON_Delete(h);
	return ok;
}

static bool header_kid_ok(const void *json, size_t len)
{
	cJSON *h = cJSON_ParseWithLength(json, len);
	const cJSON *kid = cJSON_GetObjectItemCaseSensitive(h, "kid");
	bool ok = !kid || (cJSON_IsString(kid) && kid->valuestring &&
			   (kid->valuestring[0] == '\0' || strcmp(kid->valuestring, key_id) == 0));

	cJSON_Delete(h);
	return ok;
}

/* (a) The input as a whole token: no key we hold signed it, so it never verifies. */
static void fuzz_raw_token(const uint8_t *data, size_t size)
{
	struct cn_ed25519 *keys[2] = { decoy, key };
	struct cn_jwt_claims c;
	cJSON *payload;
	int rc;

	rc = verify((const char *)data, size, keys, 2, NOW, LEEWAY, &c, &payload);
	cJSON_Delete(payload);
	CHECK(rc != 0);
	CHECK(verify((const char *)data, size, keys, 2, NOW, LEEWAY, &c, NULL) == rc);
	/* With no keys nothing can verify. */
	rc = verify((const char *)data, size, NULL, 0, NOW, LEEWAY, &c, NULL);
	CHECK(rc != 0);
}

/* (c) Sign the claims again with cn_jwt_sign (payload's other members as extras) and
 * verify: the claims must survive the trip. */
static void fuzz_resign(const struct cn_jwt_claims *c, cJSON *payload)
{
	static const char *const std[] = { "iss", "sub", "tenant", "jti", "scope",
					   "iat", "nbf", "exp" };
	struct cn_ed25519 *keys[2] = { decoy, key };
	struct cn_jwt_claims back;
	struct cn_buf tok;
	cJSON *extra = cJSON_Duplicate(payload, true), *p2 = NULL;
	int64_t now = c->exp - 1;
	int rc;

	CHECK(extra != NULL);
	for (size_t i = 0; i < sizeof(std) / sizeof(*std); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(extra, std[i]);
	cn_buf_init(&tok, 4 * CN_JWT_MAX_TOKEN);
	rc = cn_jwt_sign(key, key_id, c, extra, &tok);
	/* Re-printing may grow the payload past its bound (numbers, escapes): refused, fine. */
	CHECK(rc == 0 || rc == CN_E_TOO_BIG);
	if (rc == 0) {
		CHECK(tok.len <= CN_JWT_MAX_TOKEN);
		rc = verify(tok.data, tok.len, keys, 2, now, 0, &back, &p2);
		CHECK(rc == time_verdict(c, now, 0));
		if (rc == 0) {
			CHECK(same_claims(c, &back));
			/* The extras came back too (a number too large for a double is printed,
			 * and so comes back, as null). */
			for (const cJSON *e = extra->child; e; e = e->next) {
				const cJSON *g = cJSON_GetObjectItemCaseSensitive(p2, e->string);
				CHECK(g != NULL);
				CHECK((g->type & 0xff) == (e->type & 0xff) ||
				      (cJSON_IsNumber(e) && cJSON_IsNull(g)));
			}
		}
		cJSON_Delete(p2);
	}
	cn_buf_free(&tok);
	cJSON_Delete(extra);
}

/* (b) The input as the payload of a token we sign: verify must agree with
 * cn_jwt_claims_parse on the same bytes. */
static void fuzz_payload(const uint8_t *data, size_t size)
{
	struct cn_ed25519 *keys[2] = { decoy, key };
	struct cn_jwt_claims cv, cp;
	cJSON *pv = NULL, *pp = NULL;
	char err[256];
	size_t len;
	char *tok = make_token(hdr_plain, sizeof(hdr_plain) - 1, data, size, &len);
	int rv, rp;

	rv = verify(tok, len, keys, 2, NOW, LEEWAY, &cv, &pv);
	free(tok);

	err[0] = '\0';
	rp = cn_jwt_claims_parse((const char *)data, size, &cp, &pp, err, sizeof(err));
	if (rp == 0) {
		check_claims(&cp);
		CHECK(cJSON_IsObject(pp));
	} else {
		CHECK(rp == CN_E_MALFORMED || rp == CN_E_TOO_BIG);
		CHECK(err[0] != '\0');
		CHECK(rp == CN_E_TOO_BIG ? size > CN_JWT_MAX_PAYLOAD : size <= CN_JWT_MAX_PAYLOAD);
	}

	if (len > CN_JWT_MAX_TOKEN)
		CHECK(rv == CN_E_TOO_BIG);
	else if (size == 0 || size > CN_JWT_MAX_PAYLOAD)
		CHECK(rv == CN_E_MALFORMED);
	else if (rp < 0)
		CHECK(rv == rp);
	else
		CHECK(rv == time_verdict(&cp, NOW, LEEWAY));
	if (rv == 0) {
		CHECK(same_claims(&cv, &cp));
		CHECK(same_json(pv, pp));
	}

	/* Without a payload out-parameter the verdict is the same. */
	if (rp == 0) {
		struct cn_jwt_claims c2;
		CHECK(cn_jwt_claims_parse((const char *)data, size, &c2, NULL, err, sizeof(err)) == 0);
		CHECK(same_claims(&c2, &cp));
		fuzz_resign(&cp, pp);
	}
	cJSON_Delete(pv);
	cJSON_Delete(pp);
}

/* (d) The input as the header of a token we sign over good claims: only an "alg" of
 * exactly EdDSA may get past the header, and the signature is checked before anything
 * else about the token is believed. */
static void fuzz_header(const uint8_t *data, size_t size)
{
	static const char pay[] = "{\"sub\":\"user:fuzz\",\"tenant\":\"t-fuzz\",\"jti\":\"j-1\","
				  "\"scope\":\"camera:view\",\"exp\":1795003600}";
	struct cn_ed25519 *keys[2] = { decoy, key };
	struct cn_jwt_claims c;
	cJSON *p = NULL;
	size_t len;
	char *tok;
	int rc;

	if (size > CN_JWT_MAX_HEADER + 16)
		return;
	tok = make_token(data, size, pay, sizeof(pay) - 1, &len);
	rc = verify(tok, len, keys, 2, NOW, LEEWAY, &c, &p);
	free(tok);
	cJSON_Delete(p);
	if (!header_says_eddsa(data, size))
		CHECK(rc == CN_E_BAD_ALG || rc == CN_E_MALFORMED || rc == CN_E_TOO_BIG);
	if (rc == 0) {
		CHECK(header_says_eddsa(data, size));
		CHECK(header_kid_ok(data, size));
		CHECK(strcmp(c.sub, "user:fuzz") == 0 && c.exp == 1795003600LL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!key)
		LLVMFuzzerInitialize(NULL, NULL);
	fuzz_raw_token(data, size);
	fuzz_payload(data, size);
	fuzz_header(data, size);
	return 0;
}
