/* central_auth.h: logins, lockout, sessions with refresh tokens, access and integrator tokens. */
#ifndef CENTRAL_AUTH_H
#define CENTRAL_AUTH_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "central_api.h"

/* "Bearer " + a token: access tokens are JWTs under CN_JWT_MAX_TOKEN. */
#define CENTRAL_AUTHZ_MAX 8300

struct central;

/* Establishes who calls from the Authorization header. 0: auth filled in; 1: refused
 * (401 filled into call's response); negative: database failure. */
int central_auth_check(PGconn *pg, struct central *c, const char *authz, struct api_call *call,
		       struct api_auth *auth);
bool central_auth_scope_has(const struct api_auth *auth, const char *perm);

/* Registers the metrics and prepares the hash unknown users are checked against. */
int central_auth_init(void);

/* Custom operations. */
int central_auth_login(PGconn *pg, struct api_call *call);
int central_auth_refresh(PGconn *pg, struct api_call *call);
/* Hashes a new password after the policy check; for user create/update (prepare hook).
 * Sets call->extra[0] to the hash, or answers 400. */
int central_auth_prepare_password(PGconn *pg, struct api_call *call);
/* Makes a random secret with prefix ("cnt_", "cne_"): the hash (hex) goes to extra[0]
 * for SQL, the secret to post_secret to be shown once. */
int central_auth_prepare_secret(struct api_call *call, const char *prefix);
/* hex SHA-256 of a secret, as stored. */
int central_auth_hash_secret(const char *secret, char out[65]);

#endif
