/* central_api.h: the REST API's machinery: routing, authentication, validation, SQL-backed operations. */
#ifndef CENTRAL_API_H
#define CENTRAL_API_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "cn_fields.h"
#include "cn_http.h"

struct central;
struct api_call;

/* Who is calling, established on the worker before the operation runs. */
struct api_auth {
	char user_id[40];
	char tenant_id[40];
	char username[72];
	char session_id[40];  /* empty for API tokens */
	char token_id[40];    /* integrator token id, empty for sessions */
	char scopes[1024];    /* integrator token scopes (space-separated); empty: all */
	char client_type[64];
};

/* One REST operation. Unless custom is set, sql runs with these parameters and returns
 * one row (status int, etag text, body json text, detail text):
 *   $1 tenant id, $2 user id, $3 path {id}, $4 body (validated JSON), $5 If-Match version,
 *   $6 query (validated JSON), $7 path {sub}, $8 and $9 values from the prepare hook.
 * Writes (action set) run in a transaction with their audit row. */
struct api_op {
	enum cn_http_method method;
	const char *pattern; /* "/api/v1/sites/{id}"; {id} and {sub} take UUIDs */
	const char *perm;    /* permission an integrator token's scopes must include; NULL: none */
	const char *action;  /* audit action for writes ("site.create"); NULL for reads */
	const struct cn_field *body;  /* NULL: no body accepted */
	const struct cn_field *query; /* NULL: no query parameters */
	const char *sql;
	bool anonymous; /* no bearer token needed (login, refresh) */
	/* Runs before sql on the worker; may set extra[0..1] ($8, $9) or answer itself
	 * (return 1 after filling the response). */
	int (*prepare)(PGconn *pg, struct api_call *call);
	/* Runs after a 2xx result; may add to the response body (e.g. a secret shown once). */
	int (*post)(struct api_call *call, cJSON *body);
	/* Does everything itself (login, refresh). */
	int (*custom)(PGconn *pg, struct api_call *call);
	const char *summary; /* for the OpenAPI document's operation summary */
};

struct api_call {
	struct central *c;
	const struct api_op *op;
	struct api_auth auth;
	char id[40];
	char sub[40];
	char peer[64];
	char user_agent[128];
	char if_match[32];
	char *body_json;  /* validated body, re-serialised */
	cJSON *body;      /* the same, parsed */
	char *query_json; /* validated query parameters as a JSON object */
	char *extra[2];   /* $8, $9 */
	char *post_secret; /* handed from prepare to post */
	struct cn_http_resp resp;
};

int central_api_init(struct central *c);

/* Response helpers for custom operations and hooks. */
int api_problem(struct api_call *call, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int api_json(struct api_call *call, int status, cJSON *body);
/* Appends an audit row (outside or inside the caller's transaction). */
int api_audit(PGconn *pg, struct api_call *call, const char *tenant, const char *actor_id,
	      const char *actor_name, const char *action, const char *object_type,
	      const char *object_id, const char *result, const char *detail_json);

extern const struct api_op central_ops[];
extern const unsigned central_nops;

#endif
