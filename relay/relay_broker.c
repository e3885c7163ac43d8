/* relay_broker.c: edges' outbound registrations (/relay/edge) and the WHEP endpoint (/whep/) that brokers viewers' offers, answers and trickle to them. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_base64.h"
#include "cn_envelope.h"
#include "cn_err.h"
#include "cn_http.h"
#include "cn_json.h"
#include "cn_jwt.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_time.h"
#include "cn_ws.h"
#include "relay.h"
#include "relay_sfu.h"

/* Signed by the edge with its node key: label + nonce + "\n" + its node id. */
#define REG_SIG_LABEL "canopy-relay-v1\n"
#define REG_PATH "/relay/edge"
#define RECORDINGS_PATH "/edge/recordings/"
#define REG_MAX_MSG (256 * 1024) /* an SDP offer or answer with room to spare */
/* A viewer's body forwarded to an edge: well under the edge's message limit, so no viewer
 * can make the edge drop its registration with an oversize message. */
#define FORWARD_MAX_BODY (64 * 1024)
#define HELLO_TIMEOUT_MS 10000
#define PENDING_TIMEOUT_MS 15000
#define RETRY_AFTER_S "5"
/* PATCH and DELETE name a session whose URL is a capability; their token may have
 * expired since the POST (a viewer watches longer than a token lives). */
#define LATE_LEEWAY_S (24 * 3600)

enum path { PATH_P2P, PATH_TURN, PATH_SFU, PATH_COUNT, PATH_PENDING = -1 };
static const char *const path_names[PATH_COUNT] = { "p2p", "turn", "sfu" };

enum reject {
	REJ_BAD_REQUEST,
	REJ_UNAUTHORIZED,
	REJ_FORBIDDEN,
	REJ_NOT_FOUND,
	REJ_NO_EDGE,
	REJ_DRAINING,
	REJ_LIMIT,
	REJ_TIMEOUT,
	REJ_UNCONFIGURED,
	REJ_COUNT,
};
static const char *const reject_names[REJ_COUNT] = {
	"bad_request", "unauthorized", "forbidden", "not_found", "edge_unreachable",
	"draining", "session_limit", "edge_timeout", "not_configured",
};

struct edge_reg {
	struct relay_broker *b;
	struct cn_ws_conn *ws;
	uint64_t gen;
	uint64_t seq;
	bool registered;
	bool refused; /* closing soon: nothing more is handled */
	char nonce[48];
	char node_id[40];
	char tenant_id[40];
	char peer[64];
	int64_t opened_ms, last_rx_ms;
	int64_t token_exp; /* wall seconds: the registration ends unless a fresh token comes */
	int sessions;
};

/* A viewer's request forwarded to an edge, waiting for the edge's response. */
struct pending {
	uint64_t rid;
	uint64_t http_id;
	enum cn_http_method method;
	char node_id[40];
	char camera_id[40];
	char camera_key[64];
	char tenant[40];
	char session[64];
	int64_t deadline_ms;
	uint64_t ticket; /* the SFU's upstream offer this carries; 0: a viewer's request */
};

struct bsession {
	char id[64]; /* the edge's session id, also ours in the Location URL */
	char node_id[40];
	char camera_id[40];
	char camera_key[64];
	char tenant[40];
	int path;
	bool sfu; /* a viewer of the SFU (id is the SFU's viewer id) */
	int64_t created_ms;
};

/* An SFU upstream the edge answered: what closing it at the edge needs. */
struct upstream {
	uint64_t ticket;
	char node_id[40];
	char camera_key[64];
	char session[64];
	char *authz;
};

struct tenant_stats {
	int64_t now[PATH_COUNT];
	uint64_t total[PATH_COUNT];
};

struct relay_broker {
	struct relay *r;
	GHashTable *by_gen;   /* gen -> edge_reg (owned) */
	GHashTable *edges;    /* node id -> registered edge_reg */
	GHashTable *pending;  /* rid -> pending (owned) */
	GHashTable *sessions; /* id -> bsession (owned) */
	GHashTable *tenants;  /* tenant id -> tenant_stats (owned) */
	GHashTable *upstreams; /* SFU ticket -> upstream (owned) */
	GHashTable *sfu_authz; /* "<node>/<camera>" -> the token of the viewer who last joined */
	uint64_t next_gen, next_rid;
	guint tick_id;
	uint64_t rejected[REJ_COUNT];
	uint64_t reg_ok, reg_refused, answered, edge_errors;
};

/* ---- viewer side helpers ---------------------------------------------------------------- */

static int reject(struct relay_broker *b, struct cn_http_resp *resp, enum reject why, int status,
		  const char *title, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int reject(struct relay_broker *b, struct cn_http_resp *resp, enum reject why, int status,
		  const char *title, const char *fmt, ...)
{
	char detail[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	b->rejected[why]++;
	cn_http_problem(resp, status, title, "%s", detail);
	cn_http_cors(resp);
	if (status == 401)
		cn_http_resp_header(resp, "www-authenticate", "Bearer realm=\"canopy-relay\"");
	if (status == 503)
		cn_http_resp_header(resp, "retry-after", RETRY_AFTER_S);
	cn_log_info("broker", "refused %d: %s", status, detail);
	return 0;
}

struct viewer {
	char authz[CN_JWT_MAX_TOKEN + 16];
	char cam[64];  /* the edge's camera key */
	char node[40]; /* the edge */
	char tenant[40];
};

/* The bearer token must be a viewer token central signed for this camera (cid) and a
 * tenant this relay serves. 1 with resp filled on refusal. */
static int check_token(struct relay_broker *b, const struct cn_http_req *req,
		       struct cn_http_resp *resp, const char *cid, int64_t leeway, struct viewer *v)
{
	struct relay *r = b->r;
	struct cn_jwt_claims c;
	cJSON *payload = NULL;
	char err[256];
	int rc;

	if (!r->configured)
		return reject(b, resp, REJ_UNCONFIGURED, 503, "Service Unavailable",
			      "this relay has not been configured by central yet") + 1;
	rc = cn_http_req_header(req, "authorization", v->authz, sizeof(v->authz));
	if (rc < 0 || strncmp(v->authz, "Bearer ", 7) != 0)
		return reject(b, resp, REJ_UNAUTHORIZED, 401, "Unauthorized",
			      rc == -ENOSPC ? "authorization header too long"
					    : "a bearer token from central's live call is required") + 1;
	if (cn_jwt_verify(v->authz + 7, strlen(v->authz + 7), r->central_keys, r->ncentral_keys,
			  cn_time_wall_ms() / 1000, leeway, &c, &payload, err, sizeof(err)) < 0)
		return reject(b, resp, REJ_UNAUTHORIZED, 401, "Unauthorized", "token refused: %s",
			      err) + 1;
	const char *typ = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(payload, "typ"));
	const char *tcid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(payload, "cid"));
	rc = 0;
	if (!typ || strcmp(typ, "viewer") != 0 || !cn_jwt_has_scope(&c, "edge:view"))
		rc = reject(b, resp, REJ_FORBIDDEN, 403, "Forbidden", "not a viewer token") + 1;
	else if (!tcid || strcmp(tcid, cid) != 0)
		rc = reject(b, resp, REJ_FORBIDDEN, 403, "Forbidden",
			    "token is for camera '%s', not '%s'", tcid ? tcid : "(none)", cid) + 1;
	else if (!r->shared && strcmp(c.tenant, r->tenant_id) != 0)
		rc = reject(b, resp, REJ_FORBIDDEN, 403, "Forbidden",
			    "this relay does not serve the token's tenant") + 1;
	else if (cn_json_copy_str(payload, "cam", v->cam, sizeof(v->cam)) < 0 ||
		 cn_json_copy_str(payload, "node", v->node, sizeof(v->node)) < 0)
		rc = reject(b, resp, REJ_FORBIDDEN, 403, "Forbidden",
			    "token lacks its camera and edge (cam, node)") + 1;
	cn_strlcpy(v->tenant, c.tenant, sizeof(v->tenant));
	cJSON_Delete(payload);
	return rc;
}

/* ---- sending to edges ------------------------------------------------------------------- */

static int reg_send(struct edge_reg *e, const char *type, cJSON *body)
{
	struct cn_envelope env;
	struct cn_buf out;
	int rc;

	if (!e->ws) {
		cJSON_Delete(body);
		return -ENOTCONN;
	}
	if ((rc = cn_envelope_make(&env, type, ++e->seq, body)) < 0) {
		cJSON_Delete(body);
		return rc;
	}
	cn_buf_init(&out, CN_ENV_MAX_BYTES);
	if ((rc = cn_envelope_encode(&env, &out)) == 0)
		rc = cn_ws_send(e->ws, (const char *)out.data, out.len);
	if (rc == -ENOBUFS)
		cn_ws_close_status(e->ws, 4013, "send queue full");
	cn_envelope_clear(&env);
	cn_buf_free(&out);
	return rc;
}

struct close_later {
	struct relay_broker *b;
	uint64_t gen;
	int status;
	char reason[32];
};

static gboolean close_later_cb(gpointer arg)
{
	struct close_later *cl = arg;
	struct edge_reg *e = g_hash_table_lookup(cl->b->by_gen, &cl->gen);

	if (e && e->ws)
		cn_ws_close_status(e->ws, cl->status, cl->reason);
	free(cl);
	return G_SOURCE_REMOVE;
}

/* Closing drops what is queued: the error message gets a moment to leave first. */
static void reg_close_soon(struct edge_reg *e, int status, const char *reason)
{
	struct close_later *cl = calloc(1, sizeof(*cl));

	if (!cl) {
		cn_ws_close_status(e->ws, status, reason);
		return;
	}
	cl->b = e->b;
	cl->gen = e->gen;
	cl->status = status;
	cn_strlcpy(cl->reason, reason, sizeof(cl->reason));
	g_timeout_add(300, close_later_cb, cl);
}

/* ---- sessions and per-tenant paths ------------------------------------------------------------ */

static struct tenant_stats *tstats(struct relay_broker *b, const char *tenant)
{
	struct tenant_stats *t = g_hash_table_lookup(b->tenants, tenant);

	if (!t && (t = calloc(1, sizeof(*t))))
		g_hash_table_insert(b->tenants, g_strdup(tenant), t);
	return t;
}

static void session_set_path(struct relay_broker *b, struct bsession *s, int path)
{
	struct tenant_stats *t = tstats(b, s->tenant);

	if (s->path == path || !t)
		return;
	if (s->path >= 0)
		t->now[s->path]--;
	s->path = path;
	if (path >= 0) {
		t->now[path]++;
		t->total[path]++;
	}
}

static void session_remove(struct relay_broker *b, struct bsession *s)
{
	struct edge_reg *e = s->sfu ? NULL : g_hash_table_lookup(b->edges, s->node_id);

	session_set_path(b, s, PATH_PENDING);
	if (e && e->sessions > 0)
		e->sessions--;
	g_hash_table_remove(b->sessions, s->id); /* frees s */
	relay_uplink_report_soon(b->r);
}

static int viewers_of(struct relay_broker *b, const char *node, const char *cam)
{
	GHashTableIter it;
	gpointer k, v;
	int n = 0;

	g_hash_table_iter_init(&it, b->sessions);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct bsession *s = v;

		if (!strcmp(s->node_id, node) && !strcmp(s->camera_key, cam))
			n++;
	}
	return n;
}

/* ---- WHEP endpoint ------------------------------------------------------------------------------ */

static struct pending *pending_new(struct relay_broker *b, const struct cn_http_req *req,
				   const char *cid, const struct viewer *v, const char *session)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->rid = ++b->next_rid;
	p->http_id = req->id;
	p->method = req->method;
	cn_strlcpy(p->node_id, v->node, sizeof(p->node_id));
	cn_strlcpy(p->camera_id, cid, sizeof(p->camera_id));
	cn_strlcpy(p->camera_key, v->cam, sizeof(p->camera_key));
	cn_strlcpy(p->tenant, v->tenant, sizeof(p->tenant));
	cn_strlcpy(p->session, session ? session : "", sizeof(p->session));
	p->deadline_ms = cn_time_mono_ms() + PENDING_TIMEOUT_MS;
	g_hash_table_insert(b->pending, &p->rid, p);
	return p;
}

/* Builds the message for the edge: the request as the edge's WHEP endpoint would see it. */
static cJSON *forward_body(const struct pending *p, const struct viewer *v,
			   const struct cn_http_req *req)
{
	cJSON *o = cJSON_CreateObject();
	char ct[128];

	if (!o)
		return NULL;
	cn_json_add_i64(o, "rid", (int64_t)p->rid);
	cJSON_AddStringToObject(o, "camera", v->cam);
	cJSON_AddStringToObject(o, "authorization", v->authz);
	if (p->session[0])
		cJSON_AddStringToObject(o, "session", p->session);
	if (cn_http_req_header(req, "content-type", ct, sizeof(ct)) == 0)
		cJSON_AddStringToObject(o, "content_type", ct);
	if (req->body.len) {
		char *body = g_strndup(req->body.p, req->body.len);

		cJSON_AddStringToObject(o, "body", body ? body : "");
		g_free(body);
	}
	if (req->method == CN_HTTP_POST || req->method == CN_HTTP_GET) {
		/* POST: a WHEP offer's query; GET: a recordings listing's */
		static const char *const names[] = { "stream", "start", "speed", "from", "to" };
		size_t i0 = req->method == CN_HTTP_GET ? 3 : 0, i1 = req->method == CN_HTTP_GET ? 5 : 3;
		char val[64];

		for (size_t i = i0; i < i1; i++)
			if (cn_http_query_get(req, names[i], val, sizeof(val)) == 0)
				cJSON_AddStringToObject(o, names[i], val);
	}
	return o;
}

/* Everything forwarded rides in a WebSocket text frame: invalid UTF-8 (or a NUL) from a
 * viewer would make the edge close its registration (1007), so it is refused here. */
static bool forwardable(const struct cn_http_req *req, char *why, size_t cap)
{
	static const char *const names[] = { "stream", "start", "speed", "from", "to" };
	char val[64], ct[128];

	if (req->body.len > FORWARD_MAX_BODY) {
		snprintf(why, cap, "the body is larger than %d bytes", FORWARD_MAX_BODY);
		return false;
	}
	if (req->body.len && !g_utf8_validate(req->body.p, (gssize)req->body.len, NULL)) {
		snprintf(why, cap, "the body is not UTF-8 text");
		return false;
	}
	if (cn_http_req_header(req, "content-type", ct, sizeof(ct)) == 0 &&
	    !g_utf8_validate(ct, -1, NULL)) {
		snprintf(why, cap, "the Content-Type is not UTF-8 text");
		return false;
	}
	for (size_t i = 0; i < 5; i++) {
		int rc = cn_http_query_get(req, names[i], val, sizeof(val));

		if (rc == -ENOSPC || (rc == 0 && !g_utf8_validate(val, -1, NULL))) {
			snprintf(why, cap, "query parameter %s is too long or not UTF-8", names[i]);
			return false;
		}
	}
	return true;
}

static int forward(struct relay_broker *b, const struct cn_http_req *req,
		   struct cn_http_resp *resp, const char *cid, const struct viewer *v,
		   const char *session, const char *type)
{
	struct edge_reg *e = g_hash_table_lookup(b->edges, v->node);
	struct pending *p;
	cJSON *body;
	char why[120];

	if (!forwardable(req, why, sizeof(why)))
		return reject(b, resp, REJ_BAD_REQUEST, req->body.len > FORWARD_MAX_BODY ? 413 : 400,
			      req->body.len > FORWARD_MAX_BODY ? "Content Too Large" : "Bad Request",
			      "%s", why);
	if (!e)
		return reject(b, resp, REJ_NO_EDGE, 503, "Service Unavailable",
			      "the camera's edge is not registered with this relay (ask central "
			      "for a fresh live call)");
	if (!(p = pending_new(b, req, cid, v, session)))
		return -ENOMEM;
	if (!(body = forward_body(p, v, req)) || reg_send(e, type, body) < 0) {
		g_hash_table_remove(b->pending, &p->rid);
		return reject(b, resp, REJ_NO_EDGE, 503, "Service Unavailable",
			      "the camera's edge could not be reached");
	}
	return CN_HTTP_DEFER;
}

/* ---- the SFU: past sfu_threshold viewers of one camera, new ones go through it ------ */

static bool wants_sfu(struct relay_broker *b, const struct viewer *v)
{
	struct relay *r = b->r;

	return r->sfu && r->conf->sfu_threshold > 0 &&
	       viewers_of(b, v->node, v->cam) >= r->conf->sfu_threshold;
}

struct sfu_join {
	struct relay_broker *b;
	uint64_t http_id;
	char node[40], cid[40], cam[64], tenant[40];
};

/* The SFU's answer to a viewer (or its refusal), passed on as the WHEP answer. */
static void sfu_done(void *arg, int status, const char *answer, size_t len, const char *viewer_id,
		     const char *err)
{
	struct sfu_join *j = arg;
	struct relay_broker *b = j->b;
	struct cn_http_resp resp;
	struct bsession *s = NULL;
	char loc[200];

	cn_http_resp_init(&resp);
	if (status == 201 && viewer_id && strlen(viewer_id) < sizeof(s->id) &&
	    !g_hash_table_contains(b->sessions, viewer_id) && (s = calloc(1, sizeof(*s)))) {
		cn_strlcpy(s->id, viewer_id, sizeof(s->id));
		cn_strlcpy(s->node_id, j->node, sizeof(s->node_id));
		cn_strlcpy(s->camera_id, j->cid, sizeof(s->camera_id));
		cn_strlcpy(s->camera_key, j->cam, sizeof(s->camera_key));
		cn_strlcpy(s->tenant, j->tenant, sizeof(s->tenant));
		s->sfu = true;
		s->path = PATH_PENDING;
		s->created_ms = cn_time_mono_ms();
		g_hash_table_insert(b->sessions, s->id, s);
		session_set_path(b, s, PATH_SFU);
		b->answered++;
		resp.status = 201;
		cn_strlcpy(resp.content_type, "application/sdp", sizeof(resp.content_type));
		cn_buf_append(&resp.body, answer, len);
		snprintf(loc, sizeof(loc), "/whep/%s/%s", j->cid, s->id);
		cn_http_resp_header(&resp, "location", loc);
		cn_log_info("broker", "session %s: camera %s through the SFU", s->id, j->cid);
	} else if (status == 201) {
		relay_sfu_leave(b->r->sfu, viewer_id);
		cn_http_problem(&resp, 503, "Service Unavailable", "the SFU's viewer could not be recorded");
	} else {
		b->rejected[REJ_NO_EDGE]++;
		cn_http_problem(&resp, status >= 400 && status < 600 ? status : 502,
				status == 406 ? "Not Acceptable" : status == 400 ? "Bad Request" : "Bad Gateway",
				"%s", err && err[0] ? err : "the SFU could not take this viewer");
	}
	cn_http_cors(&resp);
	if (cn_http_respond(b->r->d->http, j->http_id, &resp) == -ENOENT && s) {
		relay_sfu_leave(b->r->sfu, s->id);
		session_remove(b, s);
	}
	relay_uplink_report_soon(b->r);
	free(j);
}

/* 0 when the SFU took the viewer (the answer follows through sfu_done); 1 when it refused
 * at once: the viewer is then brokered peer to peer. */
static int sfu_join(struct relay_broker *b, const struct cn_http_req *req, const char *cid,
		    const struct viewer *v)
{
	struct sfu_join *j = calloc(1, sizeof(*j));
	char key[120], err[300];
	int rc;

	if (!j)
		return 1;
	j->b = b;
	j->http_id = req->id;
	cn_strlcpy(j->node, v->node, sizeof(j->node));
	cn_strlcpy(j->cid, cid, sizeof(j->cid));
	cn_strlcpy(j->cam, v->cam, sizeof(j->cam));
	cn_strlcpy(j->tenant, v->tenant, sizeof(j->tenant));
	snprintf(key, sizeof(key), "%s/%s", v->node, v->cam);
	/* The upstream offer (if this viewer opens one) goes to the edge with this viewer's
	 * token: the edge checks it like any other. */
	g_hash_table_replace(b->sfu_authz, g_strdup(key), g_strdup(v->authz));
	rc = relay_sfu_join(b->r->sfu, key, req->body.p, req->body.len, sfu_done, j, err, sizeof(err));
	if (rc != 0) {
		cn_log_info("broker", "camera %s: the SFU refused a viewer (%d: %s); brokering peer to peer",
			    cid, rc, err);
		free(j);
		return 1;
	}
	return 0;
}

/* relay_sfu_signal.offer: the SFU's upstream offer for "<node>/<camera>" goes to that edge
 * as a WHEP offer over its registration. */
static int sfu_offer(void *arg, const char *camera_key, uint64_t ticket, const char *sdp,
		     size_t len, char *err, size_t errcap)
{
	struct relay_broker *b = arg;
	const char *slash = strchr(camera_key, '/');
	const char *authz = g_hash_table_lookup(b->sfu_authz, camera_key);
	char node[40];
	struct edge_reg *e;
	struct pending *p;
	cJSON *o;

	if (!slash || (size_t)(slash - camera_key) >= sizeof(node) || !authz) {
		snprintf(err, errcap, "no viewer token for '%s'", camera_key);
		return -EINVAL;
	}
	snprintf(node, sizeof(node), "%.*s", (int)(slash - camera_key), camera_key);
	if (!(e = g_hash_table_lookup(b->edges, node))) {
		snprintf(err, errcap, "edge %s is not registered with this relay", node);
		return -ENOTCONN;
	}
	if (!(p = calloc(1, sizeof(*p))) || !(o = cJSON_CreateObject())) {
		free(p);
		return -ENOMEM;
	}
	p->rid = ++b->next_rid;
	p->method = CN_HTTP_POST;
	p->ticket = ticket;
	cn_strlcpy(p->node_id, node, sizeof(p->node_id));
	cn_strlcpy(p->camera_key, slash + 1, sizeof(p->camera_key));
	p->deadline_ms = cn_time_mono_ms() + PENDING_TIMEOUT_MS;
	g_hash_table_insert(b->pending, &p->rid, p);
	cn_json_add_i64(o, "rid", (int64_t)p->rid);
	cJSON_AddStringToObject(o, "camera", slash + 1);
	cJSON_AddStringToObject(o, "authorization", authz);
	cJSON_AddStringToObject(o, "content_type", "application/sdp");
	{
		char *body = g_strndup(sdp, len);

		cJSON_AddStringToObject(o, "body", body ? body : "");
		g_free(body);
	}
	if (reg_send(e, "whep.offer", o) < 0) {
		g_hash_table_remove(b->pending, &p->rid);
		snprintf(err, errcap, "edge %s could not be reached", node);
		return -EPIPE;
	}
	return 0;
}

/* relay_sfu_signal.close: the upstream ended at the SFU; end it at the edge too. */
static void sfu_close(void *arg, const char *camera_key, uint64_t ticket)
{
	struct relay_broker *b = arg;
	struct upstream *u = g_hash_table_lookup(b->upstreams, &ticket);
	struct edge_reg *e = u ? g_hash_table_lookup(b->edges, u->node_id) : NULL;
	cJSON *o;

	(void)camera_key;
	if (e && (o = cJSON_CreateObject())) {
		/* The edge's answer to this one is not awaited (no pending: dropped). */
		cn_json_add_i64(o, "rid", (int64_t)++b->next_rid);
		cJSON_AddStringToObject(o, "camera", u->camera_key);
		cJSON_AddStringToObject(o, "session", u->session);
		cJSON_AddStringToObject(o, "authorization", u->authz);
		reg_send(e, "whep.delete", o);
	}
	if (u)
		g_hash_table_remove(b->upstreams, &ticket);
}

/* The edge's response to an SFU upstream offer. */
static void upstream_response(struct relay_broker *b, struct pending *p, int status,
			      const char *loc, const char *text)
{
	struct upstream *u;
	const char *sid = loc ? strrchr(loc, '/') : NULL;
	const char *authz = NULL;
	char key[120];

	snprintf(key, sizeof(key), "%s/%s", p->node_id, p->camera_key);
	authz = g_hash_table_lookup(b->sfu_authz, key);
	if (status == 201 && sid && sid[1] && strlen(sid + 1) < sizeof(u->session) &&
	    (u = calloc(1, sizeof(*u)))) {
		u->ticket = p->ticket;
		cn_strlcpy(u->node_id, p->node_id, sizeof(u->node_id));
		cn_strlcpy(u->camera_key, p->camera_key, sizeof(u->camera_key));
		cn_strlcpy(u->session, sid + 1, sizeof(u->session));
		u->authz = strdup(authz ? authz : "");
		g_hash_table_insert(b->upstreams, &u->ticket, u);
		relay_sfu_upstream_answer(b->r->sfu, p->ticket, 201, text, text ? strlen(text) : 0, NULL);
	} else {
		relay_sfu_upstream_answer(b->r->sfu, p->ticket, status == 201 ? 502 : status, NULL, 0,
					  text && text[0] ? text : "the edge refused the SFU's offer");
	}
	g_hash_table_remove(b->pending, &p->rid);
}

static void upstream_free(gpointer arg)
{
	struct upstream *u = arg;

	free(u->authz);
	free(u);
}

static int post_whep(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct relay_broker *b = arg;
	struct relay *r = b->r;
	struct viewer v;
	char cid[64], sid[64], ct[128];

	if (cn_http_split_path(req->path, "/whep/", cid, sizeof(cid), sid, sizeof(sid)) < 0 || sid[0])
		return reject(b, resp, REJ_NOT_FOUND, sid[0] ? 405 : 404,
			      sid[0] ? "Method Not Allowed" : "Not Found",
			      sid[0] ? "POST goes to /whep/<camera>; a session URL takes PATCH and DELETE"
				     : "no such WHEP endpoint");
	if (r->draining)
		return reject(b, resp, REJ_DRAINING, 503, "Service Unavailable",
			      "this relay is draining for a restart: ask central for another");
	if (cn_http_req_header(req, "content-type", ct, sizeof(ct)) < 0 ||
	    strncasecmp(ct, "application/sdp", 15) != 0)
		return reject(b, resp, REJ_BAD_REQUEST, 415, "Unsupported Media Type",
			      "the offer must be sent as Content-Type: application/sdp");
	if (check_token(b, req, resp, cid, 30, &v))
		return 0;
	if ((int64_t)g_hash_table_size(b->sessions) + (int64_t)g_hash_table_size(b->pending) >=
	    r->conf->max_sessions)
		return reject(b, resp, REJ_LIMIT, 503, "Service Unavailable",
			      "this relay brokers %lld sessions already (max_sessions)",
			      (long long)r->conf->max_sessions);
	if (wants_sfu(b, &v) && sfu_join(b, req, cid, &v) == 0)
		return CN_HTTP_DEFER;
	return forward(b, req, resp, cid, &v, NULL, "whep.offer");
}

static struct bsession *session_for(struct relay_broker *b, const struct cn_http_req *req,
				    struct cn_http_resp *resp, char *cid, size_t cidcap,
				    struct viewer *v)
{
	char sid[64];
	struct bsession *s;

	if (cn_http_split_path(req->path, "/whep/", cid, cidcap, sid, sizeof(sid)) < 0 || !sid[0]) {
		reject(b, resp, REJ_NOT_FOUND, 404, "Not Found", "not a WHEP session URL");
		return NULL;
	}
	if (check_token(b, req, resp, cid, LATE_LEEWAY_S, v))
		return NULL;
	s = g_hash_table_lookup(b->sessions, sid);
	if (!s || strcmp(s->camera_id, cid) != 0 || strcmp(s->node_id, v->node) != 0) {
		reject(b, resp, REJ_NOT_FOUND, 404, "Not Found", "no session '%s' of camera '%s'", sid,
		       cid);
		return NULL;
	}
	return s;
}

static int patch_whep(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct relay_broker *b = arg;
	struct bsession *s;
	struct viewer v;
	char cid[64];

	if (!(s = session_for(b, req, resp, cid, sizeof(cid), &v)))
		return 0;
	if (s->sfu) {
		char err[300];
		int st = relay_sfu_trickle(b->r->sfu, s->id, req->body.p, req->body.len, err, sizeof(err));

		if (st)
			return reject(b, resp, REJ_BAD_REQUEST, st, st == 404 ? "Not Found" : "Bad Request",
				      "%s", err);
		resp->status = 204;
		cn_http_cors(resp);
		return 0;
	}
	return forward(b, req, resp, cid, &v, s->id, "whep.patch");
}

static int delete_whep(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct relay_broker *b = arg;
	struct bsession *s;
	struct viewer v;
	char cid[64];

	if (!(s = session_for(b, req, resp, cid, sizeof(cid), &v)))
		return 0;
	if (s->sfu) {
		relay_sfu_leave(b->r->sfu, s->id);
		session_remove(b, s);
		resp->status = 200;
		cn_http_cors(resp);
		return 0;
	}
	return forward(b, req, resp, cid, &v, s->id, "whep.delete");
}

static int options_whep(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	(void)req;
	(void)arg;
	return cn_http_preflight(resp, "POST, PATCH, DELETE, OPTIONS",
				 "Authorization, Content-Type, If-Match");
}

/* GET /edge/recordings/<camera>?from=&to=: the camera's recorded ranges, asked of its edge
 * over the registration with the playback token (the edge cuts them to its adepth). */
static int get_recordings(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct relay_broker *b = arg;
	const size_t pre = sizeof(RECORDINGS_PATH) - 1;
	struct viewer v;
	char cid[64];

	if (req->path.len <= pre || req->path.len - pre >= sizeof(cid) ||
	    memchr(req->path.p + pre, '/', req->path.len - pre))
		return reject(b, resp, REJ_NOT_FOUND, 404, "Not Found",
			      "recordings are at " RECORDINGS_PATH "<camera>");
	memcpy(cid, req->path.p + pre, req->path.len - pre);
	cid[req->path.len - pre] = '\0';
	if (check_token(b, req, resp, cid, 30, &v))
		return 0;
	return forward(b, req, resp, cid, &v, NULL, "recordings");
}

static int options_recordings(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	(void)req;
	(void)arg;
	return cn_http_preflight(resp, "GET, OPTIONS", "Authorization");
}

/* ---- edge messages ----------------------------------------------------------------------------- */

static void answer_pending(struct relay_broker *b, struct pending *p, struct cn_http_resp *resp)
{
	cn_http_cors(resp);
	if (cn_http_respond(b->r->d->http, p->http_id, resp) == -ENOENT)
		cn_log_info("broker", "viewer left before the edge answered request %llu",
			    (unsigned long long)p->rid);
	g_hash_table_remove(b->pending, &p->rid);
}

/* whep.response {rid, status, content_type, location, etag, retry_after, body}: the edge's
 * answer to a forwarded request, passed on to the viewer with our URLs. */
static void on_response(struct edge_reg *e, const cJSON *body)
{
	struct relay_broker *b = e->b;
	struct cn_http_resp resp;
	struct pending *p;
	int64_t rid, status;
	const char *ct = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "content_type"));
	const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "body"));
	const char *loc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "location"));
	const char *etag = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "etag"));
	const char *ra = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "retry_after"));
	const char *wa = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "www_authenticate"));
	char hdr[200];

	if (cn_json_get_i64(body, "rid", 1, INT64_MAX / 2, &rid) < 0 ||
	    cn_json_get_i64(body, "status", 100, 599, &status) < 0) {
		b->edge_errors++;
		cn_log_warn("broker", "edge %s: whep.response without rid and status: ignored",
			    e->node_id);
		return;
	}
	uint64_t urid = (uint64_t)rid;
	if (!(p = g_hash_table_lookup(b->pending, &urid)) || strcmp(p->node_id, e->node_id) != 0)
		return; /* timed out already, or not this edge's */
	if (p->ticket) {
		upstream_response(b, p, (int)status, loc, text);
		return;
	}
	cn_http_resp_init(&resp);
	resp.status = (int)status;
	cn_strlcpy(resp.content_type, ct ? ct : "", sizeof(resp.content_type));
	if (text)
		cn_buf_append(&resp.body, text, strlen(text));
	if (etag)
		cn_http_resp_header(&resp, "etag", etag);
	if (ra)
		cn_http_resp_header(&resp, "retry-after", ra);
	if (wa)
		cn_http_resp_header(&resp, "www-authenticate", wa);
	if (p->method == CN_HTTP_POST && status == 201) {
		const char *sid = loc ? strrchr(loc, '/') : NULL;
		struct bsession *s;

		if (!sid || !sid[1] || strlen(sid + 1) >= sizeof(s->id) ||
		    g_hash_table_contains(b->sessions, sid + 1) || !(s = calloc(1, sizeof(*s)))) {
			cn_buf_free(&resp.body);
			cn_http_resp_init(&resp);
			b->edge_errors++;
			cn_http_problem(&resp, 502, "Bad Gateway", "the edge answered without a usable session URL");
			answer_pending(b, p, &resp);
			return;
		}
		cn_strlcpy(s->id, sid + 1, sizeof(s->id));
		cn_strlcpy(s->node_id, p->node_id, sizeof(s->node_id));
		cn_strlcpy(s->camera_id, p->camera_id, sizeof(s->camera_id));
		cn_strlcpy(s->camera_key, p->camera_key, sizeof(s->camera_key));
		cn_strlcpy(s->tenant, p->tenant, sizeof(s->tenant));
		s->path = PATH_PENDING;
		s->created_ms = cn_time_mono_ms();
		g_hash_table_insert(b->sessions, s->id, s);
		e->sessions++;
		b->answered++;
		snprintf(hdr, sizeof(hdr), "/whep/%s/%s", p->camera_id, s->id);
		cn_http_resp_header(&resp, "location", hdr);
		relay_uplink_report_soon(b->r);
		cn_log_info("broker", "session %s: camera %s of edge %s, answer brokered", s->id,
			    p->camera_id, e->node_id);
	} else if (p->method == CN_HTTP_DELETE && status < 300) {
		struct bsession *s = g_hash_table_lookup(b->sessions, p->session);

		if (s)
			session_remove(b, s);
	}
	answer_pending(b, p, &resp);
}

/* whep.session {session, state: connected|closed, path: p2p|turn}: what became of a
 * session (the path is the ICE pair the edge selected). */
static void on_session(struct edge_reg *e, const cJSON *body)
{
	struct relay_broker *b = e->b;
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "session"));
	const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "state"));
	const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "path"));
	struct bsession *s = id ? g_hash_table_lookup(b->sessions, id) : NULL;

	if (!s || strcmp(s->node_id, e->node_id) != 0 || !state)
		return;
	if (strcmp(state, "closed") == 0) {
		cn_log_info("broker", "session %s ended at the edge", s->id);
		session_remove(b, s);
	} else if (strcmp(state, "connected") == 0 && path) {
		session_set_path(b, s, strcmp(path, "turn") == 0 ? PATH_TURN : PATH_P2P);
		cn_log_info("broker", "session %s: media flowing %s", s->id, path);
	}
}

/* register {token, signature}: central vouches for the edge's node id and key (token), the
 * edge proves it holds that key (signature of our challenge). */
/* register.refresh {token}: central's newer token for the same edge keeps the
 * registration going past the first one's expiry (a revoked edge gets none). */
static void on_refresh(struct edge_reg *e, const cJSON *body)
{
	struct relay *r = e->b->r;
	const char *tok = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "token"));
	struct cn_jwt_claims c;
	cJSON *payload = NULL;
	char err[256];
	const char *typ;

	if (!tok || cn_jwt_verify(tok, strlen(tok), r->central_keys, r->ncentral_keys,
				  cn_time_wall_ms() / 1000, 30, &c, &payload, err, sizeof(err)) < 0) {
		cn_log_warn("broker", "edge %s: refresh token refused: %s", e->node_id,
			    tok ? err : "no token");
		return;
	}
	typ = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(payload, "typ"));
	if (typ && !strcmp(typ, "relay-reg") && !strcmp(c.sub, e->node_id) && c.exp > e->token_exp)
		e->token_exp = c.exp;
	cJSON_Delete(payload);
}

static void on_register(struct edge_reg *e, const cJSON *body)
{
	struct relay_broker *b = e->b;
	struct relay *r = b->r;
	const char *tok = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "token"));
	const char *sig64 = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "signature"));
	struct cn_jwt_claims c;
	cJSON *payload = NULL, *ok;
	struct cn_ed25519 *key = NULL;
	uint8_t pub[CN_ED25519_PUB_LEN + 2], sig[CN_ED25519_SIG_LEN + 2];
	size_t publen, siglen;
	struct cn_buf msg;
	struct edge_reg *old;
	char err[256];
	const char *why = NULL, *pub64, *typ;

	cn_buf_init(&msg, 512);
	if (!r->configured) {
		why = "this relay has not been configured by central yet";
		goto refuse;
	}
	if (!tok || !sig64) {
		why = "register needs token and signature";
		goto refuse;
	}
	if (cn_jwt_verify(tok, strlen(tok), r->central_keys, r->ncentral_keys,
			  cn_time_wall_ms() / 1000, 30, &c, &payload, err, sizeof(err)) < 0) {
		why = err;
		goto refuse;
	}
	typ = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(payload, "typ"));
	pub64 = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(payload, "pub"));
	if (!typ || strcmp(typ, "relay-reg") != 0 || !cn_jwt_has_scope(&c, "relay:register") || !pub64) {
		why = "not a relay registration token";
		goto refuse;
	}
	if (!r->shared && strcmp(c.tenant, r->tenant_id) != 0) {
		why = "this relay does not serve the edge's tenant";
		goto refuse;
	}
	cn_buf_printf(&msg, "%s%s\n%s", REG_SIG_LABEL, e->nonce, c.sub);
	if (cn_base64_decode(CN_B64_URL, pub64, strlen(pub64), pub, sizeof(pub), &publen) < 0 ||
	    publen != CN_ED25519_PUB_LEN ||
	    cn_base64_decode(CN_B64_URL, sig64, strlen(sig64), sig, sizeof(sig), &siglen) < 0 ||
	    siglen != CN_ED25519_SIG_LEN || cn_ed25519_from_public(pub, &key) < 0 ||
	    cn_ed25519_verify(key, msg.data, msg.len, sig, siglen) != 0) {
		why = "the signature does not verify with the key central vouches for";
		goto refuse;
	}
	cn_strlcpy(e->node_id, c.sub, sizeof(e->node_id));
	cn_strlcpy(e->tenant_id, c.tenant, sizeof(e->tenant_id));
	e->token_exp = c.exp;
	if ((old = g_hash_table_lookup(b->edges, e->node_id)) && old != e) {
		g_hash_table_remove(b->edges, e->node_id);
		old->registered = false;
		if (old->ws)
			cn_ws_close_status(old->ws, 4009, "replaced by a newer registration");
	}
	e->registered = true;
	g_hash_table_insert(b->edges, e->node_id, e);
	b->reg_ok++;
	cn_log_info("broker", "edge %s registered from %s", e->node_id, e->peer);
	if ((ok = cJSON_CreateObject())) {
		cJSON_AddStringToObject(ok, "relay_id", r->relay_id);
		cJSON_AddStringToObject(ok, "node_id", e->node_id);
		cJSON_AddBoolToObject(ok, "draining", r->draining);
		reg_send(e, "registered", ok);
	}
	relay_uplink_report_soon(r);
	goto out;
refuse:
	b->reg_refused++;
	cn_log_warn("broker", "registration from %s refused: %s", e->peer, why);
	if ((ok = cJSON_CreateObject())) {
		cJSON_AddStringToObject(ok, "code", r->configured ? "refused" : "not_configured");
		cJSON_AddStringToObject(ok, "message", why);
		reg_send(e, "error", ok);
	}
	/* 1013 (try again later) when we only lack central's configuration. */
	reg_close_soon(e, r->configured ? 4003 : 1013, r->configured ? "refused" : "not configured");
	e->refused = true;
out:
	cn_ed25519_free(key);
	cJSON_Delete(payload);
	cn_buf_free(&msg);
}

static void reg_on_open(struct cn_ws_conn *ws, void *arg)
{
	struct relay_broker *b = arg;
	struct edge_reg *e = calloc(1, sizeof(*e));
	uint8_t raw[32];
	size_t n;
	cJSON *body;

	if (!e) {
		cn_ws_close(ws);
		return;
	}
	e->b = b;
	e->ws = ws;
	e->gen = ++b->next_gen;
	e->opened_ms = e->last_rx_ms = cn_time_mono_ms();
	cn_strlcpy(e->peer, cn_ws_peer(ws), sizeof(e->peer));
	cn_ws_set_user(ws, e);
	g_hash_table_insert(b->by_gen, &e->gen, e);
	if (cn_random_bytes(raw, sizeof(raw)) < 0 ||
	    cn_base64_encode(CN_B64_URL, raw, sizeof(raw), e->nonce, sizeof(e->nonce), &n) < 0) {
		cn_ws_close(ws);
		return;
	}
	if ((body = cJSON_CreateObject())) {
		cJSON_AddStringToObject(body, "nonce", e->nonce);
		cJSON_AddStringToObject(body, "relay_id", b->r->relay_id);
		reg_send(e, "challenge", body);
	}
}

static void reg_on_message(struct cn_ws_conn *ws, const char *data, size_t len, void *arg)
{
	struct edge_reg *e = cn_ws_user(ws);
	struct cn_envelope env;
	char err[256];

	(void)arg;
	if (!e)
		return;
	e->last_rx_ms = cn_time_mono_ms();
	if (cn_envelope_decode(data, len, &env, err, sizeof(err)) < 0) {
		e->b->edge_errors++;
		cn_log_warn("broker", "edge %s (%s): %s; closing", e->node_id, e->peer, err);
		cn_ws_close_status(ws, 1008, "bad message");
		return;
	}
	if (e->refused) {
		/* closing */
	} else if (!e->registered) {
		if (strcmp(env.type, "register") == 0)
			on_register(e, env.body);
		else
			cn_ws_close_status(ws, 1008, "register first");
	} else if (strcmp(env.type, "whep.response") == 0) {
		on_response(e, env.body);
	} else if (strcmp(env.type, "whep.session") == 0) {
		on_session(e, env.body);
	} else if (strcmp(env.type, "register.refresh") == 0) {
		on_refresh(e, env.body);
	} /* edge.status and unknown types: kept alive, nothing else */
	cn_envelope_clear(&env);
}

static void reg_on_close(struct cn_ws_conn *ws, void *arg)
{
	struct edge_reg *e = cn_ws_user(ws);
	struct relay_broker *b = arg;
	GHashTableIter it;
	gpointer k, v;

	if (!e)
		return;
	e->ws = NULL;
	if (e->registered && g_hash_table_lookup(b->edges, e->node_id) == e) {
		cn_log_info("broker", "edge %s unregistered (code %d)", e->node_id, cn_ws_close_code(ws));
		g_hash_table_remove(b->edges, e->node_id);
		/* Its sessions go on peer to peer, but nothing here can signal them any more. */
		g_hash_table_iter_init(&it, b->sessions);
		while (g_hash_table_iter_next(&it, &k, &v)) {
			struct bsession *s = v;

			if (!s->sfu && strcmp(s->node_id, e->node_id) == 0) {
				session_set_path(b, s, PATH_PENDING);
				g_hash_table_iter_remove(&it);
			}
		}
		g_hash_table_iter_init(&it, b->pending);
		while (g_hash_table_iter_next(&it, &k, &v)) {
			struct pending *p = v;
			struct cn_http_resp resp;

			if (strcmp(p->node_id, e->node_id) != 0)
				continue;
			if (p->ticket) {
				relay_sfu_upstream_answer(b->r->sfu, p->ticket, -ECONNRESET, NULL, 0,
							  "the edge went away");
				g_hash_table_iter_remove(&it);
				continue;
			}
			cn_http_resp_init(&resp);
			b->rejected[REJ_NO_EDGE]++;
			cn_http_problem(&resp, 502, "Bad Gateway", "the edge went away before it answered");
			cn_http_cors(&resp);
			cn_http_respond(b->r->d->http, p->http_id, &resp);
			g_hash_table_iter_remove(&it);
		}
		relay_uplink_report_soon(b->r);
	}
	g_hash_table_remove(b->by_gen, &e->gen); /* frees e */
}

static const struct cn_ws_ops reg_ops = {
	.on_open = reg_on_open,
	.on_message = reg_on_message,
	.on_close = reg_on_close,
};

/* ---- timers, reports, metrics ---------------------------------------------------------------- */

static gboolean tick(gpointer arg)
{
	struct relay_broker *b = arg;
	int64_t now = cn_time_mono_ms();
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, b->pending);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct pending *p = v;
		struct cn_http_resp resp;

		if (now < p->deadline_ms)
			continue;
		if (p->ticket) {
			relay_sfu_upstream_answer(b->r->sfu, p->ticket, -ETIMEDOUT, NULL, 0,
						  "the edge did not answer the SFU's offer");
			g_hash_table_iter_remove(&it);
			continue;
		}
		cn_http_resp_init(&resp);
		b->rejected[REJ_TIMEOUT]++;
		cn_http_problem(&resp, 504, "Gateway Timeout", "the edge did not answer within %d s",
				PENDING_TIMEOUT_MS / 1000);
		cn_http_cors(&resp);
		cn_http_respond(b->r->d->http, p->http_id, &resp);
		g_hash_table_iter_remove(&it);
	}
	g_hash_table_iter_init(&it, b->by_gen);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct edge_reg *e = v;

		if (!e->ws)
			continue;
		if (!e->registered && !e->refused && now - e->opened_ms > HELLO_TIMEOUT_MS) {
			b->reg_refused++;
			cn_ws_close_status(e->ws, 1008, "no register");
			e->opened_ms = now;
		} else if (e->registered && cn_time_wall_ms() / 1000 > e->token_exp + 30) {
			cn_log_warn("broker", "edge %s: registration token expired, no fresh one: dropped",
				    e->node_id);
			cn_ws_close_status(e->ws, 4001, "registration expired");
			e->token_exp = INT64_MAX / 2;
		} else if (e->registered && now - e->last_rx_ms > b->r->conf->edge_idle) {
			cn_log_warn("broker", "edge %s silent for %lld ms: dropped", e->node_id,
				    (long long)(now - e->last_rx_ms));
			cn_ws_close_status(e->ws, 4008, "idle");
			e->last_rx_ms = now;
		}
	}
	return G_SOURCE_CONTINUE;
}

void relay_broker_report(struct relay *r, cJSON *body)
{
	struct relay_broker *b = r->broker;
	GHashTableIter it;
	gpointer k, v;
	cJSON *edges, *tenants;

	if (!b)
		return;
	cn_json_add_i64(body, "sessions", g_hash_table_size(b->sessions));
	edges = cJSON_AddArrayToObject(body, "edges");
	g_hash_table_iter_init(&it, b->edges);
	while (edges && g_hash_table_iter_next(&it, &k, &v))
		cJSON_AddItemToArray(edges, cJSON_CreateString(k));
	tenants = cJSON_AddObjectToObject(body, "tenants");
	g_hash_table_iter_init(&it, b->tenants);
	while (tenants && g_hash_table_iter_next(&it, &k, &v)) {
		struct tenant_stats *t = v;
		cJSON *o = cJSON_AddObjectToObject(tenants, k);

		for (int i = 0; o && i < PATH_COUNT; i++)
			cn_json_add_i64(o, path_names[i], t->now[i]);
	}
}

void relay_broker_drain(struct relay *r)
{
	struct relay_broker *b = r->broker;
	GHashTableIter it;
	gpointer k, v;

	if (!b)
		return;
	g_hash_table_iter_init(&it, b->edges);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		cJSON *o = cJSON_CreateObject();

		if (o && cn_json_add_i64(o, "timeout_ms", r->conf->drain_timeout))
			reg_send(v, "drain", o);
		else
			cJSON_Delete(o);
	}
}

int relay_broker_sessions(const struct relay *r)
{
	return r->broker ? (int)g_hash_table_size(r->broker->sessions) : 0;
}

int relay_broker_edges(const struct relay *r)
{
	return r->broker ? (int)g_hash_table_size(r->broker->edges) : 0;
}

static int broker_metrics(struct cn_buf *out, void *arg)
{
	struct relay_broker *b = arg;
	GHashTableIter it;
	gpointer k, v;
	int rc;

	if ((rc = cn_metrics_family(out, "canopy_relay_edges", "gauge",
				    "edges registered with this relay")) < 0 ||
	    (rc = cn_buf_printf(out, "canopy_relay_edges %u\n", g_hash_table_size(b->edges))) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_relay_edge_registrations_total", "counter",
				    "edge registrations, accepted and refused")) < 0 ||
	    (rc = cn_buf_printf(out,
				"canopy_relay_edge_registrations_total{result=\"ok\"} %llu\n"
				"canopy_relay_edge_registrations_total{result=\"refused\"} %llu\n",
				(unsigned long long)b->reg_ok, (unsigned long long)b->reg_refused)) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_relay_brokered_sessions", "gauge",
				    "WHEP sessions brokered here and not ended, any path")) < 0 ||
	    (rc = cn_buf_printf(out, "canopy_relay_brokered_sessions %u\n",
				g_hash_table_size(b->sessions))) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_relay_sessions", "gauge",
				    "sessions with media flowing, by tenant and path (p2p, turn, sfu)")) < 0)
		return rc;
	g_hash_table_iter_init(&it, b->tenants);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct tenant_stats *t = v;

		for (int i = 0; i < PATH_COUNT; i++)
			if ((rc = cn_buf_printf(out, "canopy_relay_sessions{tenant=\"%s\",path=\"%s\"} %lld\n",
						(const char *)k, path_names[i], (long long)t->now[i])) < 0)
				return rc;
	}
	if ((rc = cn_metrics_family(out, "canopy_relay_sessions_total", "counter",
				    "sessions whose media started, by tenant and path")) < 0)
		return rc;
	g_hash_table_iter_init(&it, b->tenants);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct tenant_stats *t = v;

		for (int i = 0; i < PATH_COUNT; i++)
			if ((rc = cn_buf_printf(out,
						"canopy_relay_sessions_total{tenant=\"%s\",path=\"%s\"} %llu\n",
						(const char *)k, path_names[i],
						(unsigned long long)t->total[i])) < 0)
				return rc;
	}
	if ((rc = cn_metrics_family(out, "canopy_relay_whep_answers_total", "counter",
				    "WHEP offers answered by an edge through this relay")) < 0 ||
	    (rc = cn_buf_printf(out, "canopy_relay_whep_answers_total %llu\n",
				(unsigned long long)b->answered)) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_relay_edge_bad_messages_total", "counter",
				    "malformed messages from registered edges")) < 0 ||
	    (rc = cn_buf_printf(out, "canopy_relay_edge_bad_messages_total %llu\n",
				(unsigned long long)b->edge_errors)) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_relay_whep_rejected_total", "counter",
				    "WHEP requests refused, by reason")) < 0)
		return rc;
	for (int i = 0; i < REJ_COUNT; i++)
		if ((rc = cn_buf_printf(out, "canopy_relay_whep_rejected_total{reason=\"%s\"} %llu\n",
					reject_names[i], (unsigned long long)b->rejected[i])) < 0)
			return rc;
	return 0;
}

/* ---- life cycle --------------------------------------------------------------------------------- */

static void reg_free(gpointer p)
{
	free(p);
}

int relay_broker_start(struct relay *r)
{
	struct relay_broker *b = calloc(1, sizeof(*b));
	struct cn_http_server *h = r->d->http;
	int rc;

	if (!b)
		return -ENOMEM;
	r->broker = b;
	b->r = r;
	b->by_gen = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, reg_free);
	b->edges = g_hash_table_new(g_str_hash, g_str_equal);
	b->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, free);
	b->sessions = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, free);
	b->tenants = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, free);
	b->upstreams = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, upstream_free);
	b->sfu_authz = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	if ((rc = cn_ws_serve(h, REG_PATH, REG_MAX_MSG, &reg_ops, b)) < 0 ||
	    (rc = cn_http_route(h, CN_HTTP_POST, "/whep/", post_whep, b)) < 0 ||
	    (rc = cn_http_route(h, CN_HTTP_PATCH, "/whep/", patch_whep, b)) < 0 ||
	    (rc = cn_http_route(h, CN_HTTP_DELETE, "/whep/", delete_whep, b)) < 0 ||
	    (rc = cn_http_route(h, CN_HTTP_OPTIONS, "/whep/", options_whep, b)) < 0 ||
	    (rc = cn_http_route(h, CN_HTTP_GET, RECORDINGS_PATH, get_recordings, b)) < 0 ||
	    (rc = cn_http_route(h, CN_HTTP_OPTIONS, RECORDINGS_PATH, options_recordings, b)) < 0 ||
	    (rc = cn_metrics_add_collector(broker_metrics, b)) < 0 ||
	    (rc = cn_metrics_add_collector(cn_ws_metrics, NULL)) < 0)
		return rc;
	b->tick_id = g_timeout_add(1000, tick, b);
	return 0;
}

void relay_broker_stop(struct relay *r)
{
	struct relay_broker *b = r->broker;
	GHashTableIter it;
	gpointer k, v;

	if (!b)
		return;
	if (b->tick_id)
		g_source_remove(b->tick_id);
	cn_metrics_remove_collector(broker_metrics, b);
	cn_metrics_remove_collector(cn_ws_metrics, NULL);
	/* Connections close with the lws context after this: they find no user. */
	g_hash_table_iter_init(&it, b->by_gen);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct edge_reg *e = v;

		if (e->ws)
			cn_ws_set_user(e->ws, NULL);
	}
	g_hash_table_destroy(b->edges);
	g_hash_table_destroy(b->by_gen);
	g_hash_table_destroy(b->pending);
	g_hash_table_destroy(b->sessions);
	g_hash_table_destroy(b->tenants);
	g_hash_table_destroy(b->upstreams);
	g_hash_table_destroy(b->sfu_authz);
	free(b);
	r->broker = NULL;
}

void relay_broker_attach_sfu(struct relay *r)
{
	struct relay_sfu_signal sig = { sfu_offer, sfu_close, NULL };

	if (!r->broker || !r->sfu)
		return;
	sig.arg = r->broker;
	relay_sfu_set_signal(r->sfu, &sig);
}
