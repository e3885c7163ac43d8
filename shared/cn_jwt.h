/* cn_jwt.h: JWT compact tokens signed with Ed25519 (alg EdDSA) and nothing else. */
#ifndef CN_JWT_H
#define CN_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cn_buf.h"
#include "cn_crypto.h"

#define CN_JWT_MAX_TOKEN 8192   /* whole compact token, bytes */
#define CN_JWT_MAX_HEADER 1024  /* decoded header JSON */
#define CN_JWT_MAX_PAYLOAD 6000 /* decoded payload JSON */

struct cn_jwt_claims {
	char iss[128];    /* issuer node id; optional */
	char sub[128];    /* user, node or integrator id; required */
	char tenant[64];  /* tenant id; required */
	char jti[64];     /* token id, for revocation; required */
	char scope[1024]; /* space-separated scopes ("camera:view archive:read") */
	int64_t iat;      /* issued at, seconds; 0 when absent */
	int64_t nbf;      /* not before, seconds; 0 when absent */
	int64_t exp;      /* expiry, seconds; required */
};

/* Signs claims (plus the members of extra, if given, which must not repeat a standard
 * claim) and appends the compact token to out. kid is put in the header when non-NULL. */
int cn_jwt_sign(const struct cn_ed25519 *key, const char *kid, const struct cn_jwt_claims *c,
		const cJSON *extra, struct cn_buf *out);

/* Verifies tok against one of keys (chosen by kid when the header has one) at time now
 * (seconds) with leeway seconds of clock skew. On success fills *c and, if payload is
 * non-NULL, hands over the parsed payload (caller frees). On failure returns
 * CN_E_TOO_BIG, CN_E_MALFORMED, CN_E_BAD_ALG, CN_E_BAD_SIG, CN_E_EXPIRED or
 * CN_E_NOT_YET and writes a precise reason into err. */
int cn_jwt_verify(const char *tok, size_t len, struct cn_ed25519 *const *keys, size_t nkeys,
		  int64_t now, int64_t leeway, struct cn_jwt_claims *c, cJSON **payload,
		  char *err, size_t errcap);

/* Claims from a payload JSON text, without any signature check (fuzzing, tests). */
int cn_jwt_claims_parse(const char *json, size_t len, struct cn_jwt_claims *c, cJSON **payload,
			char *err, size_t errcap);

/* True when scope (a single word) is one of the token's scopes. */
bool cn_jwt_has_scope(const struct cn_jwt_claims *c, const char *scope);

#endif
