/* cn_jwt.c: EdDSA-only JWT codec; refuses every other alg before touching the payload. */
#include "cn_jwt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cn_base64.h"
#include "cn_err.h"
#include "cn_json.h"

static const char *const std_claims[] = { "iss", "sub", "tenant", "jti", "scope",
					   "iat", "nbf", "exp" };

static int b64url_append(struct cn_buf *out, const void *p, size_t n)
{
	char tmp[CN_JWT_MAX_TOKEN];
	size_t len;
	int rc = cn_base64_encode(CN_B64_URL, p, n, tmp, sizeof(tmp), &len);

	return rc < 0 ? CN_E_TOO_BIG : cn_buf_append(out, tmp, len);
}

static int add_str(cJSON *o, const char *k, const char *v)
{
	return cJSON_AddStringToObject(o, k, v) ? 0 : -ENOMEM;
}

static int add_num(cJSON *o, const char *k, int64_t v)
{
	return cn_json_add_i64(o, k, v) ? 0 : -ENOMEM;
}

int cn_jwt_sign(const struct cn_ed25519 *key, const char *kid, const struct cn_jwt_claims *c,
		const cJSON *extra, struct cn_buf *out)
{
	struct cn_buf hdr, pay;
	cJSON *h = NULL, *p = NULL;
	uint8_t sig[CN_ED25519_SIG_LEN];
	size_t start = out->len;
	int rc = -ENOMEM;

	if (!c->sub[0] || !c->tenant[0] || !c->jti[0] || c->exp <= 0)
		return -EINVAL;
	cn_buf_init(&hdr, CN_JWT_MAX_HEADER);
	cn_buf_init(&pay, CN_JWT_MAX_PAYLOAD);
	h = cJSON_CreateObject();
	p = cJSON_CreateObject();
	if (!h || !p)
		goto out_free_json;
	if (add_str(h, "alg", "EdDSA") || add_str(h, "typ", "JWT") ||
	    (kid && add_str(h, "kid", kid)))
		goto out_free_json;
	if ((c->iss[0] && add_str(p, "iss", c->iss)) || add_str(p, "sub", c->sub) ||
	    add_str(p, "tenant", c->tenant) || add_str(p, "jti", c->jti) ||
	    (c->scope[0] && add_str(p, "scope", c->scope)) || (c->iat && add_num(p, "iat", c->iat)) ||
	    (c->nbf && add_num(p, "nbf", c->nbf)) || add_num(p, "exp", c->exp))
		goto out_free_json;
	if (extra) {
		rc = -EINVAL;
		if (!cJSON_IsObject(extra))
			goto out_free_json;
		for (const cJSON *e = extra->child; e; e = e->next) {
			for (size_t i = 0; i < sizeof(std_claims) / sizeof(*std_claims); i++) {
				if (strcmp(e->string, std_claims[i]) == 0) {
					rc = -EINVAL;
					goto out_free_json;
				}
			}
			rc = -ENOMEM;
			if (!cJSON_AddItemToObject(p, e->string, cJSON_Duplicate(e, true)))
				goto out_free_json;
		}
	}
	if ((rc = cn_json_print(h, &hdr)) < 0 || (rc = cn_json_print(p, &pay)) < 0) {
		rc = rc == -ENOBUFS ? CN_E_TOO_BIG : rc;
		goto out_free_json;
	}
	if ((rc = b64url_append(out, hdr.data, hdr.len)) < 0 || (rc = cn_buf_append(out, ".", 1)) < 0 ||
	    (rc = b64url_append(out, pay.data, pay.len)) < 0)
		goto out_truncate;
	if ((rc = cn_ed25519_sign(key, out->data + start, out->len - start, sig)) < 0)
		goto out_truncate;
	if ((rc = cn_buf_append(out, ".", 1)) < 0 || (rc = b64url_append(out, sig, sizeof(sig))) < 0)
		goto out_truncate;
	rc = 0;
	goto out_free_json;

out_truncate:
	out->len = start;
	if (out->data)
		out->data[start] = '\0';
out_free_json:
	cJSON_Delete(h);
	cJSON_Delete(p);
	cn_buf_free(&hdr);
	cn_buf_free(&pay);
	return rc;
}

static int get_claim_str(const cJSON *p, const char *k, bool required, char *dst, size_t cap,
			 char *err, size_t errcap)
{
	int rc = cn_json_copy_str(p, k, dst, cap);

	if (rc == -ENOENT && !required) {
		dst[0] = '\0';
		return 0;
	}
	if (rc == -ENOENT)
		return cn_fail(CN_E_MALFORMED, err, errcap, "token claim '%s' missing", k);
	if (rc == -ENOSPC)
		return cn_fail(CN_E_MALFORMED, err, errcap, "token claim '%s' longer than %zu bytes", k,
			    cap - 1);
	if (rc < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap, "token claim '%s' is not a string", k);
	if (required && !dst[0])
		return cn_fail(CN_E_MALFORMED, err, errcap, "token claim '%s' is empty", k);
	return 0;
}

static int get_claim_time(const cJSON *p, const char *k, bool required, int64_t *out, char *err,
			  size_t errcap)
{
	/* Up to year 9999: enough, and keeps later arithmetic far from overflow. */
	int rc = cn_json_get_i64(p, k, 1, 253402300799LL, out);

	if (rc == -ENOENT && !required) {
		*out = 0;
		return 0;
	}
	if (rc == -ENOENT)
		return cn_fail(CN_E_MALFORMED, err, errcap, "token claim '%s' missing", k);
	if (rc < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap,
			    "token claim '%s' is not a positive integer time", k);
	return 0;
}

int cn_jwt_claims_parse(const char *json, size_t len, struct cn_jwt_claims *c, cJSON **payload,
			char *err, size_t errcap)
{
	cJSON *p = NULL;
	int rc = cn_json_parse(json, len, CN_JWT_MAX_PAYLOAD, 16, &p);

	if (rc < 0)
		return cn_fail(rc == CN_E_TOO_BIG ? CN_E_TOO_BIG : CN_E_MALFORMED, err, errcap,
			    "token payload is not a valid JSON document");
	memset(c, 0, sizeof(*c));
	if (!cJSON_IsObject(p)) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "token payload is not a JSON object");
		goto out_free_payload;
	}
	if ((rc = get_claim_str(p, "iss", false, c->iss, sizeof(c->iss), err, errcap)) < 0 ||
	    (rc = get_claim_str(p, "sub", true, c->sub, sizeof(c->sub), err, errcap)) < 0 ||
	    (rc = get_claim_str(p, "tenant", true, c->tenant, sizeof(c->tenant), err, errcap)) < 0 ||
	    (rc = get_claim_str(p, "jti", true, c->jti, sizeof(c->jti), err, errcap)) < 0 ||
	    (rc = get_claim_str(p, "scope", false, c->scope, sizeof(c->scope), err, errcap)) < 0 ||
	    (rc = get_claim_time(p, "iat", false, &c->iat, err, errcap)) < 0 ||
	    (rc = get_claim_time(p, "nbf", false, &c->nbf, err, errcap)) < 0 ||
	    (rc = get_claim_time(p, "exp", true, &c->exp, err, errcap)) < 0)
		goto out_free_payload;
	if (payload) {
		*payload = p;
		return 0;
	}
	rc = 0;
out_free_payload:
	cJSON_Delete(p);
	return rc;
}

static int check_header(const uint8_t *json, size_t len, char *kid, size_t kidcap, char *err,
			size_t errcap)
{
	cJSON *h = NULL;
	struct cn_str s;
	int rc = cn_json_parse((const char *)json, len, CN_JWT_MAX_HEADER, 4, &h);

	if (rc < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap, "token header is not a valid JSON document");
	if (!cJSON_IsObject(h)) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "token header is not a JSON object");
		goto out_free_header;
	}
	rc = cn_json_get_str(h, "alg", &s);
	if (rc == -ENOENT) {
		rc = cn_fail(CN_E_BAD_ALG, err, errcap, "token header has no 'alg'");
		goto out_free_header;
	}
	if (rc < 0 || !cn_str_eq_cstr(s, "EdDSA")) {
		rc = cn_fail(CN_E_BAD_ALG, err, errcap, "token alg '%.32s' not accepted (only EdDSA)",
			  rc < 0 ? "?" : s.p);
		goto out_free_header;
	}
	rc = cn_json_get_str(h, "typ", &s);
	if (rc != -ENOENT && (rc < 0 || !cn_str_eq_cstr(s, "JWT"))) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "token typ is not 'JWT'");
		goto out_free_header;
	}
	/* RFC 7515 4.1.11: we understand no extensions, so any crit makes it unusable. */
	if (cJSON_GetObjectItemCaseSensitive(h, "crit")) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "token header has unsupported 'crit'");
		goto out_free_header;
	}
	kid[0] = '\0';
	rc = cn_json_copy_str(h, "kid", kid, kidcap);
	if (rc < 0 && rc != -ENOENT) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "token kid is not a short string");
		goto out_free_header;
	}
	rc = 0;
out_free_header:
	cJSON_Delete(h);
	return rc;
}

int cn_jwt_verify(const char *tok, size_t len, struct cn_ed25519 *const *keys, size_t nkeys,
		  int64_t now, int64_t leeway, struct cn_jwt_claims *c, cJSON **payload,
		  char *err, size_t errcap)
{
	uint8_t hdr[CN_JWT_MAX_HEADER], pay[CN_JWT_MAX_PAYLOAD], sig[CN_ED25519_SIG_LEN + 3];
	size_t hlen, plen, slen, d1, d2;
	const char *dot1, *dot2;
	char kid[64];
	int rc;

	if (payload)
		*payload = NULL;
	if (len > CN_JWT_MAX_TOKEN)
		return cn_fail(CN_E_TOO_BIG, err, errcap, "token longer than %d bytes",
			    CN_JWT_MAX_TOKEN);
	dot1 = memchr(tok, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok)) : NULL;
	if (!dot1 || !dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - tok)))
		return cn_fail(CN_E_MALFORMED, err, errcap, "token does not have three segments");
	d1 = (size_t)(dot1 - tok);
	d2 = (size_t)(dot2 - tok);
	if (d1 == 0 || d2 == d1 + 1 || d2 + 1 == len)
		return cn_fail(CN_E_MALFORMED, err, errcap, "token has an empty segment");
	if (cn_base64_decode(CN_B64_URL, tok, d1, hdr, sizeof(hdr), &hlen) < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap, "token header is not base64url");
	if ((rc = check_header(hdr, hlen, kid, sizeof(kid), err, errcap)) < 0)
		return rc;
	if (cn_base64_decode(CN_B64_URL, dot2 + 1, len - d2 - 1, sig, sizeof(sig), &slen) < 0 ||
	    slen != CN_ED25519_SIG_LEN)
		return cn_fail(CN_E_MALFORMED, err, errcap, "token signature is not 64 base64url bytes");
	rc = CN_E_BAD_SIG;
	for (size_t i = 0; i < nkeys && rc < 0; i++) {
		char id[32];
		if (kid[0] && (cn_ed25519_key_id(keys[i], id, sizeof(id)) < 0 || strcmp(id, kid)))
			continue;
		rc = cn_ed25519_verify(keys[i], tok, d2, sig, slen);
	}
	if (rc < 0)
		return cn_fail(CN_E_BAD_SIG, err, errcap,
			    kid[0] ? "token signature does not verify with key '%s'"
				   : "token signature does not verify%s",
			    kid);
	if (cn_base64_decode(CN_B64_URL, dot1 + 1, d2 - d1 - 1, pay, sizeof(pay), &plen) < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap, "token payload is not base64url");
	if ((rc = cn_jwt_claims_parse((const char *)pay, plen, c, payload, err, errcap)) < 0)
		return rc;
	if (now - leeway >= c->exp)
		rc = cn_fail(CN_E_EXPIRED, err, errcap, "token expired %lld s ago",
			  (long long)(now - c->exp));
	else if (c->nbf && now + leeway < c->nbf)
		rc = cn_fail(CN_E_NOT_YET, err, errcap, "token not valid for another %lld s",
			  (long long)(c->nbf - now));
	if (rc < 0 && payload) {
		cJSON_Delete(*payload);
		*payload = NULL;
	}
	return rc;
}

bool cn_jwt_has_scope(const struct cn_jwt_claims *c, const char *scope)
{
	size_t n = strlen(scope);
	const char *p = c->scope;

	if (n == 0)
		return false;
	while (*p) {
		const char *sp = strchr(p, ' ');
		size_t len = sp ? (size_t)(sp - p) : strlen(p);
		if (len == n && memcmp(p, scope, n) == 0)
			return true;
		if (!sp)
			break;
		p = sp + 1;
	}
	return false;
}
