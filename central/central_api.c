/* central_api.c: REST dispatch: match an operation, validate on the loop, run it on a database worker. */
#include "central_api.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "central.h"
#include "central_auth.h"
#include "cn_buf.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_time.h"

#define API_PREFIX "/api/v1/"
#define API_MAX_RESPONSE (32u << 20)

struct api_job {
	struct central_job job;
	struct api_call call;
	struct cn_http_server *server;
	uint64_t req_id;
	char authz[CENTRAL_AUTHZ_MAX];
};

static struct cn_metric m_requests = CN_METRIC_INIT(
	"canopy_central_api_requests_total", CN_METRIC_COUNTER, "REST API requests dispatched");
static struct cn_metric m_rejected = CN_METRIC_INIT(
	"canopy_central_api_invalid_total", CN_METRIC_COUNTER,
	"REST API requests refused before reaching the database (bad path, body or query)");
static struct cn_metric m_busy = CN_METRIC_INIT(
	"canopy_central_api_busy_total", CN_METRIC_COUNTER,
	"REST API requests answered 503 because the database queue was full");

int api_problem(struct api_call *call, int status, const char *fmt, ...)
{
	static const struct {
		int status;
		const char *title;
	} titles[] = {
		{ 400, "Bad Request" },	      { 401, "Unauthorized" },
		{ 403, "Forbidden" },	      { 404, "Not Found" },
		{ 405, "Method Not Allowed" }, { 409, "Conflict" },
		{ 412, "Precondition Failed" }, { 422, "Unprocessable Content" },
		{ 428, "Precondition Required" }, { 429, "Too Many Requests" },
		{ 500, "Internal Server Error" }, { 503, "Service Unavailable" },
	};
	const char *title = "Error";
	char detail[900];
	va_list ap;
	size_t i;

	for (i = 0; i < sizeof(titles) / sizeof(titles[0]); i++)
		if (titles[i].status == status)
			title = titles[i].title;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return cn_http_problem(&call->resp, status, title, "%s", detail);
}

int api_json(struct api_call *call, int status, cJSON *body)
{
	call->resp.status = status;
	cn_strlcpy(call->resp.content_type, "application/json", sizeof(call->resp.content_type));
	cn_buf_reset(&call->resp.body);
	return cn_json_print(body, &call->resp.body);
}

int api_audit(PGconn *pg, struct api_call *call, const char *tenant, const char *actor_id,
	      const char *actor_name, const char *action, const char *object_type,
	      const char *object_id, const char *result, const char *detail_json)
{
	const char *p[10] = { tenant && *tenant ? tenant : NULL,
			      actor_id && *actor_id ? actor_id : NULL,
			      actor_name ? actor_name : "",
			      call->auth.client_type,
			      call->peer,
			      action,
			      object_type ? object_type : "",
			      object_id ? object_id : "",
			      result,
			      detail_json ? detail_json : "{}" };
	char err[256];
	int rc = central_db_run(pg,
				"INSERT INTO audit_log (tenant_id, actor_id, actor_name, client_type,"
				" source_addr, action, object_type, object_id, result, detail)"
				" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)",
				10, p, err, sizeof(err));

	if (rc < 0)
		cn_log_error("api", "audit row for %s not written: %s", action, err);
	return rc;
}

/* ---- matching ---------------------------------------------------------------------- */

/* Matches path against pattern; fills id/sub. A non-UUID where one is expected is a
 * match failure, so it ends in 404 like an unknown id. */
static bool match(const char *pattern, struct cn_str path, char *id, char *sub)
{
	const char *p = pattern, *s = path.p, *end = path.p + path.len;

	while (*p && s <= end) {
		if (*p == '{') {
			const char *close = strchr(p, '}');
			const char *seg = s;
			char *dst;

			while (s < end && *s != '/')
				s++;
			if (!cn_fields_is_uuid(seg, (size_t)(s - seg)))
				return false;
			dst = strncmp(p, "{id}", 4) == 0 ? id : sub;
			memcpy(dst, seg, 36);
			dst[36] = '\0';
			p = close + 1;
			continue;
		}
		if (s == end || *p != *s)
			return false;
		p++;
		s++;
	}
	return *p == '\0' && s == end;
}

/* ---- running on the worker --------------------------------------------------------- */

/* Secrets never reach the audit log: any member named password (at any depth, of any
 * type) is masked. Fails only without memory; the caller then logs no detail at all. */
static int redact(cJSON *v)
{
	cJSON *it;

	cJSON_ArrayForEach(it, v) {
		if (it->string && strcmp(it->string, "password") == 0) {
			cJSON *mask = cJSON_CreateString("***");

			/* Replacing in the object (not via the pointer) keeps the member's name. */
			if (!mask || !cJSON_ReplaceItemInObjectCaseSensitive(v, "password", mask)) {
				cJSON_Delete(mask);
				return -ENOMEM;
			}
			it = mask;
		} else if ((cJSON_IsObject(it) || cJSON_IsArray(it)) && redact(it) < 0) {
			return -ENOMEM;
		}
	}
	return 0;
}

static char *audit_detail(const struct api_call *call)
{
	cJSON *copy;
	char *out;

	if (!call->body || !(copy = cJSON_Duplicate(call->body, true)))
		return NULL;
	out = redact(copy) < 0 ? NULL : cJSON_PrintUnformatted(copy);
	cJSON_Delete(copy);
	return out;
}

static int map_sql_error(struct api_call *call, const char *state, const char *err)
{
	if (strcmp(state, "23505") == 0)
		return api_problem(call, 409, "conflicts with an existing item: %s", err);
	if (strcmp(state, "23503") == 0)
		return api_problem(call, 409, "refers to a missing item or is still referred to: %s",
				   err);
	if (strcmp(state, "23514") == 0 || strcmp(state, "22P02") == 0 ||
	    strcmp(state, "22007") == 0 || strcmp(state, "22008") == 0 ||
	    strcmp(state, "23502") == 0 || strcmp(state, "22023") == 0)
		return api_problem(call, 400, "invalid value: %s", err);
	if (strcmp(state, "P0001") == 0) {
		/* Our own RAISE: "NNN message" carries the status. */
		int status = (int)strtol(err, NULL, 10);

		if (status >= 400 && status < 600 && strlen(err) > 4)
			return api_problem(call, status, "%s", err + 4);
	}
	cn_log_error("api", "%s %s: %s (SQLSTATE %s)", cn_http_method_name(call->op->method),
		     call->op->pattern, err, state);
	return api_problem(call, 500, "internal error (logged)");
}

static int run_sql(PGconn *pg, struct api_call *call)
{
	const struct api_op *op = call->op;
	const char *p[9] = {
		call->auth.tenant_id, call->auth.user_id, call->id[0] ? call->id : NULL,
		call->body_json,      call->if_match[0] ? call->if_match : NULL,
		call->query_json,     call->sub[0] ? call->sub : NULL,
		call->extra[0],	      call->extra[1],
	};
	PGresult *r = PQexecParams(pg, op->sql, 9, NULL, p, NULL, NULL, 0);
	int status, rc = 0;
	cJSON *body = NULL;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

		rc = map_sql_error(call, central_db_sqlstate(r), msg ? msg : PQerrorMessage(pg));
		PQclear(r);
		return rc < 0 ? rc : 1;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		return api_problem(call, 404, "no such item (or not visible to you)") < 0 ? -ENOMEM : 1;
	}
	status = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
	if (status >= 400) {
		rc = api_problem(call, status, "%s", PQgetvalue(r, 0, 3));
		PQclear(r);
		return rc < 0 ? rc : 1;
	}
	call->resp.status = status;
	cn_strlcpy(call->resp.content_type, "application/json", sizeof(call->resp.content_type));
	if (!PQgetisnull(r, 0, 1)) {
		char etag[48];

		snprintf(etag, sizeof(etag), "\"%s\"", PQgetvalue(r, 0, 1));
		cn_http_resp_header(&call->resp, "etag", etag);
	}
	if (status != 204 && (op->post || op->action)) {
		const char *txt = PQgetvalue(r, 0, 2);

		if (cn_json_parse(txt, strlen(txt), API_MAX_RESPONSE, 64, &body) < 0)
			body = NULL;
	}
	if (op->post && body && (rc = op->post(call, body)) < 0)
		goto out;
	if (status == 204)
		rc = 0; /* no body, but a change all the same: audited below */
	else if (body && op->post)
		rc = cn_json_print(body, &call->resp.body);
	else
		rc = cn_buf_append(&call->resp.body, PQgetvalue(r, 0, 2),
				   (size_t)PQgetlength(r, 0, 2));
	if (rc == 0 && op->action) {
		/* The object is the sub-item named in the path, else the item created, else the
		 * item in the path (POST /nodes/{id}/enrolment-tokens creates a token). */
		const cJSON *oid = body ? cJSON_GetObjectItemCaseSensitive(body, "id") : NULL;
		const char *object = "";
		const char *dot = strchr(op->action, '.');
		char type[32], *detail;

		if (call->sub[0])
			object = call->sub;
		else if (status == 201 && cJSON_IsString(oid))
			object = oid->valuestring;
		else if (call->id[0])
			object = call->id;
		else if (cJSON_IsString(oid))
			object = oid->valuestring;
		detail = audit_detail(call);

		snprintf(type, sizeof(type), "%.*s", dot ? (int)(dot - op->action) : 0, op->action);
		rc = api_audit(pg, call, call->auth.tenant_id, call->auth.user_id,
			       call->auth.username, op->action, type, object, "ok", detail);
		free(detail);
	}
out:
	cJSON_Delete(body);
	PQclear(r);
	return rc;
}

/* Refused changes are audited too (after the rollback, on their own): who tried what on
 * which item, and why it was refused. Passwords stay masked. */
static void audit_refusal(PGconn *pg, struct api_call *call)
{
	const struct api_op *op = call->op;
	const char *dot = strchr(op->action, '.');
	char type[32], *body = audit_detail(call), *detail = NULL;
	cJSON *d = cJSON_CreateObject(), *b = NULL;
	cJSON *prob = NULL;

	if (d && call->resp.body.len &&
	    cn_json_parse((const char *)call->resp.body.data, call->resp.body.len,
			  call->resp.body.len, 4, &prob) == 0)
		cJSON_AddItemToObject(d, "refusal", prob);
	cn_json_add_i64(d, "status", call->resp.status);
	/* A 404 means the ids named are not the caller's to know about: they are not echoed
	 * into the caller's own audit log either. */
	if (call->resp.status != 404 && body &&
	    cn_json_parse(body, strlen(body), strlen(body), 32, &b) == 0)
		cJSON_AddItemToObject(d, "request", b);
	detail = d ? cJSON_PrintUnformatted(d) : NULL;
	snprintf(type, sizeof(type), "%.*s", dot ? (int)(dot - op->action) : 0, op->action);
	api_audit(pg, call, call->auth.tenant_id, call->auth.user_id, call->auth.username, op->action,
		  type, call->resp.status == 404 ? "" : call->id,
		  call->resp.status == 403 || call->resp.status == 404 ? "denied" : "failed",
		  detail);
	cJSON_Delete(d);
	free(detail);
	free(body);
}

static int api_run(PGconn *pg, struct central_job *j)
{
	struct api_job *aj = (struct api_job *)j;
	struct api_call *call = &aj->call;
	const struct api_op *op = call->op;
	char err[256];
	int rc;

	if (!op->anonymous) {
		rc = central_auth_check(pg, call->c, aj->authz, call, &call->auth);
		if (rc != 0)
			return rc < 0 ? rc : 0; /* 1: the response (401) is filled in */
		if (call->auth.token_id[0] && op->perm && !central_auth_scope_has(&call->auth, op->perm))
			return api_problem(call, 403,
					   "this API token's scopes do not include '%s'", op->perm);
	}
	if (op->custom)
		return op->custom(pg, call) < 0 ? -EIO : 0;
	if (op->action && (rc = central_db_run(pg, "BEGIN", 0, NULL, err, sizeof(err))) < 0)
		return rc;
	if (op->prepare && (rc = op->prepare(pg, call)) != 0) {
		if (op->action) {
			PQclear(PQexec(pg, "ROLLBACK"));
			if (rc > 0)
				audit_refusal(pg, call);
		}
		return rc < 0 ? rc : 0;
	}
	rc = run_sql(pg, call);
	if (op->action) {
		if (rc == 0 && call->resp.status < 300) {
			rc = central_db_run(pg, "COMMIT", 0, NULL, err, sizeof(err));
		} else {
			PQclear(PQexec(pg, "ROLLBACK"));
			if (call->resp.status >= 400 && call->resp.status < 500)
				audit_refusal(pg, call);
		}
	}
	return rc < 0 ? rc : 0;
}

static void call_free(struct api_call *call)
{
	cJSON_Delete(call->body);
	free(call->body_json);
	free(call->query_json);
	free(call->extra[0]);
	free(call->extra[1]);
	free(call->post_secret);
	cn_buf_free(&call->resp.body);
}

static void api_done(struct central_job *j)
{
	struct api_job *aj = (struct api_job *)j;
	struct api_call *call = &aj->call;

	if (j->rc == -ECANCELED) {
		call_free(call);
		free(aj);
		return;
	}
	if (j->rc < 0) {
		cn_buf_reset(&call->resp.body);
		call->resp.nhdr = 0;
		if (j->rc == -ECONNREFUSED) {
			cn_log_error("api", "%s", j->err);
			api_problem(call, 503, "database unavailable; try again shortly");
			cn_http_resp_header(&call->resp, "retry-after", "5");
		} else {
			if (j->err[0])
				cn_log_error("api", "%s %s: %s", cn_http_method_name(call->op->method),
					     call->op->pattern, j->err);
			api_problem(call, 500, "internal error (logged)");
		}
	}
	cn_http_respond(aj->server, aj->req_id, &call->resp); /* takes the body buffer */
	call_free(call);
	free(aj);
}

/* ---- dispatch on the loop ---------------------------------------------------------- */

static int reject(struct cn_http_resp *resp, int status, const char *title, const char *detail)
{
	cn_metric_add(&m_rejected, 1);
	return cn_http_problem(resp, status, title, "%s", detail);
}

static int dispatch(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct central *c = arg;
	const struct api_op *op = NULL;
	char id[40] = "", sub[40] = "", why[512], allow[128] = "";
	bool path_known = false;
	cJSON *body = NULL, *query = NULL;
	struct api_job *aj;
	unsigned i;
	int rc;

	cn_metric_add(&m_requests, 1);
	for (i = 0; i < central_nops; i++) {
		char id2[40] = "", sub2[40] = "";

		if (!match(central_ops[i].pattern, req->path, id2, sub2))
			continue;
		path_known = true;
		if (!strstr(allow, cn_http_method_name(central_ops[i].method)))
			snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
				 allow[0] ? ", " : "", cn_http_method_name(central_ops[i].method));
		if (central_ops[i].method == req->method ||
		    (req->method == CN_HTTP_HEAD && central_ops[i].method == CN_HTTP_GET)) {
			op = &central_ops[i];
			memcpy(id, id2, sizeof(id));
			memcpy(sub, sub2, sizeof(sub));
		}
	}
	if (!op && path_known) {
		cn_http_resp_header(resp, "allow", allow);
		snprintf(why, sizeof(why), "%s is not allowed here (allowed: %s)",
			 cn_http_method_name(req->method), allow);
		return reject(resp, 405, "Method Not Allowed", why);
	}
	if (!op)
		return reject(resp, 404, "Not Found", "no such API resource");
	if ((rc = cn_fields_query(op->query, req->query.p, req->query.len, &query, why,
				  sizeof(why))) < 0)
		return rc == -ENOMEM ? rc : reject(resp, 400, "Bad Request", why);
	if ((rc = cn_fields_body(op->body, op->method == CN_HTTP_PATCH, req->body.p, req->body.len,
				 &body, why, sizeof(why))) < 0) {
		cJSON_Delete(query);
		return reject(resp, 400, "Bad Request", why);
	}
	if (!(aj = calloc(1, sizeof(*aj)))) {
		rc = -ENOMEM;
		goto out_free;
	}
	aj->job.run = api_run;
	aj->job.done = api_done;
	aj->server = req->server;
	aj->req_id = req->id;
	aj->call.c = c;
	aj->call.op = op;
	aj->call.body = body;
	memcpy(aj->call.id, id, sizeof(id));
	memcpy(aj->call.sub, sub, sizeof(sub));
	cn_strlcpy(aj->call.peer, req->peer, sizeof(aj->call.peer));
	cn_http_resp_init(&aj->call.resp);
	rc = cn_http_req_header(req, "authorization", aj->authz, sizeof(aj->authz));
	if (rc == -ENOSPC) {
		free(aj);
		rc = reject(resp, 401, "Unauthorized", "Authorization header too long");
		goto out_free;
	}
	if (cn_http_req_header(req, "user-agent", aj->call.user_agent,
			       sizeof(aj->call.user_agent)) < 0)
		aj->call.user_agent[0] = '\0';
	if (cn_http_req_header(req, "if-match", why, sizeof(why)) == 0) {
		size_t n = strlen(why);
		int64_t v;

		/* An ETag is "N" (our version); "*" matches any current version (no check);
		 * anything else can never match. */
		if (strcmp(why, "*") == 0)
			aj->call.if_match[0] = '\0';
		else if (n < 3 || why[0] != '"' || why[n - 1] != '"' ||
		    cn_str_to_i64((struct cn_str){ why + 1, n - 2 }, 1, INT64_MAX, &v) < 0)
			cn_strlcpy(aj->call.if_match, "0", sizeof(aj->call.if_match));
		else
			snprintf(aj->call.if_match, sizeof(aj->call.if_match), "%lld", (long long)v);
	}
	body = NULL;
	if ((aj->call.body && !(aj->call.body_json = cJSON_PrintUnformatted(aj->call.body))) ||
	    !(aj->call.query_json = cJSON_PrintUnformatted(query))) {
		call_free(&aj->call);
		free(aj);
		rc = -ENOMEM;
		goto out_free;
	}
	if ((rc = central_db_submit(c->db, &aj->job)) < 0) {
		call_free(&aj->call);
		free(aj);
		cn_metric_add(&m_busy, 1);
		cn_http_resp_header(resp, "retry-after", "1");
		rc = cn_http_problem(resp, 503, "Service Unavailable",
				     "too many requests in progress; try again shortly");
		goto out_free;
	}
	rc = CN_HTTP_DEFER;
out_free:
	cJSON_Delete(body);
	cJSON_Delete(query);
	return rc;
}

int central_api_init(struct central *c)
{
	static const enum cn_http_method methods[] = { CN_HTTP_GET,   CN_HTTP_HEAD, CN_HTTP_POST,
						       CN_HTTP_PUT,   CN_HTTP_PATCH,
						       CN_HTTP_DELETE };
	size_t i;
	int rc;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if ((rc = cn_http_route(c->d->http, methods[i], API_PREFIX, dispatch, c)) < 0)
			return rc;
	cn_metrics_register(&m_requests);
	cn_metrics_register(&m_rejected);
	cn_metrics_register(&m_busy);
	return 0;
}
