/* edge_relay.c: the edge's outbound registrations to relays: proves its identity, takes viewers' WHEP requests over them, reports what became of the sessions. */
#include "edge_relay.h"

#include <errno.h>
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
#include "edge.h"
#include "edge_uplink.h"
#include "edge_whep.h"

#define REG_SIG_LABEL "canopy-relay-v1\n" /* relay_broker.c checks the same bytes */
#define MAX_RELAYS 8
#define MAX_MSG (256 * 1024)
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define STATUS_EVERY_MS 20000 /* keeps the registration alive at the relay (edge_idle) */

enum link_state { RL_WAITING, RL_CONNECTING, RL_REGISTERED };
static const char *const state_names[] = { "waiting", "connecting", "registered" };

struct relay_link {
	struct edge_relay *er;
	char id[40];
	char url[512];
	struct cn_ws_conn *ws;
	uint64_t origin; /* names this connection in edge_whep's remote callbacks */
	enum link_state state;
	bool wanted;   /* in central's latest list */
	bool draining; /* the relay drains: not dialled again once it closes */
	bool orphan;   /* edge_relay_stop left it to its closing connection to free */
	int64_t backoff_ms;
	guint retry_id;
	uint64_t seq, connects, failures;
	char error[200];
};

struct edge_relay {
	struct edge *e;
	struct relay_link *links[MAX_RELAYS];
	int nlinks;
	char *token; /* registration token from central */
	struct cn_ed25519 *keys[EDGE_RELAY_MAX_KEYS];
	size_t nkeys;
	uint64_t next_origin;
	guint status_id;
	uint64_t requests;
};

static struct cn_metric m_requests = CN_METRIC_INIT(
	"canopy_edge_relay_requests_total", CN_METRIC_COUNTER,
	"WHEP requests (offers, trickle, deletes) that came through relays");
static struct cn_metric m_refused = CN_METRIC_INIT(
	"canopy_edge_relay_refusals_total", CN_METRIC_COUNTER,
	"registrations a relay refused or that failed before completing");

static void link_connect(struct relay_link *l);

static int link_send(struct relay_link *l, const char *type, cJSON *body)
{
	struct cn_envelope env;
	struct cn_buf out;
	int rc;

	if (!l->ws) {
		cJSON_Delete(body);
		return -ENOTCONN;
	}
	if ((rc = cn_envelope_make(&env, type, ++l->seq, body)) < 0) {
		cJSON_Delete(body);
		return rc;
	}
	cn_buf_init(&out, CN_ENV_MAX_BYTES);
	if ((rc = cn_envelope_encode(&env, &out)) == 0)
		rc = cn_ws_send(l->ws, (const char *)out.data, out.len);
	cn_envelope_clear(&env);
	cn_buf_free(&out);
	return rc;
}

static struct relay_link *by_origin(struct edge_relay *er, uint64_t origin)
{
	for (int i = 0; i < er->nlinks; i++)
		if (er->links[i]->origin == origin && er->links[i]->state == RL_REGISTERED)
			return er->links[i];
	return NULL;
}

/* ---- answers going back to the relay ------------------------------------------------ */

static int send_response(struct relay_link *l, uint64_t id, struct cn_http_resp *resp)
{
	cJSON *o = cJSON_CreateObject();
	int rc;

	if (!o) {
		cn_buf_free(&resp->body);
		return -ENOMEM;
	}
	cn_json_add_i64(o, "rid", (int64_t)id);
	cn_json_add_i64(o, "status", resp->status ? resp->status : 200);
	cJSON_AddStringToObject(o, "content_type", resp->content_type);
	for (int i = 0; i < resp->nhdr; i++) {
		static const char *const keep[][2] = {
			{ "location", "location" }, { "etag", "etag" },
			{ "retry-after", "retry_after" }, { "www-authenticate", "www_authenticate" },
		};
		for (size_t k = 0; k < 4; k++)
			if (!strcasecmp(resp->hdr[i].name, keep[k][0]))
				cJSON_AddStringToObject(o, keep[k][1], resp->hdr[i].value);
	}
	/* Text frames must be UTF-8: a body that is not (it never should be) is not sent. */
	if (resp->body.len && g_utf8_validate((const char *)resp->body.data, (gssize)resp->body.len, NULL))
		cJSON_AddStringToObject(o, "body", (const char *)resp->body.data);
	cn_buf_free(&resp->body);
	rc = link_send(l, "whep.response", o);
	return rc == -ENOTCONN ? -ENOENT : rc;
}

static int remote_answer(void *arg, uint64_t origin, uint64_t id, struct cn_http_resp *resp)
{
	struct relay_link *l = by_origin(arg, origin);

	if (!l) {
		cn_buf_free(&resp->body);
		return -ENOENT;
	}
	return send_response(l, id, resp);
}

static void remote_session(void *arg, uint64_t origin, const char *session, const char *state,
			   const char *path)
{
	struct relay_link *l = by_origin(arg, origin);
	cJSON *o;

	if (!l || !(o = cJSON_CreateObject()))
		return;
	cJSON_AddStringToObject(o, "session", session);
	cJSON_AddStringToObject(o, "state", state);
	if (path)
		cJSON_AddStringToObject(o, "path", path);
	link_send(l, "whep.session", o);
}

/* whep.offer / whep.patch / whep.delete: fed to edge_whep as if they came over HTTP. */
static void on_request(struct relay_link *l, const struct cn_envelope *env)
{
	struct edge *e = l->er->e;
	const cJSON *b = env->body;
	struct edge_whep_request r = { 0 };
	struct cn_http_resp resp;
	int64_t rid;
	int rc;

#define S(name) cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, name))
	if (cn_json_get_i64(b, "rid", 1, INT64_MAX / 2, &rid) < 0 || !S("camera")) {
		cn_log_warn("relay", "relay %s: %s without rid or camera: ignored", l->id, env->type);
		return;
	}
	l->er->requests++;
	cn_metric_add(&m_requests, 1);
	r.method = !strcmp(env->type, "whep.offer")   ? CN_HTTP_POST
		   : !strcmp(env->type, "whep.patch") ? CN_HTTP_PATCH
						      : CN_HTTP_DELETE;
	r.camera = S("camera");
	r.session = S("session");
	r.authorization = S("authorization");
	r.content_type = S("content_type");
	r.stream = S("stream");
	r.start = S("start");
	r.speed = S("speed");
	r.body = S("body");
	r.body_len = r.body ? strlen(r.body) : 0;
#undef S
	r.origin = l->origin;
	r.id = (uint64_t)rid;
	cn_http_resp_init(&resp);
	rc = edge_whep_request(e->whep, &r, &resp);
	if (rc == CN_HTTP_DEFER)
		return; /* answered through remote_answer */
	if (rc < 0) {
		cn_buf_free(&resp.body);
		cn_http_resp_init(&resp);
		cn_http_problem(&resp, 500, "Internal Server Error", "%s", cn_strerror(rc));
	}
	send_response(l, r.id, &resp);
}

/* recordings {rid, camera, authorization, from, to}: the camera's recorded ranges, for a
 * viewer token of that camera, as GET /api/v1/recordings lists them, cut to the token's
 * archive depth (adepth). */
static void on_recordings(struct relay_link *l, const struct cn_envelope *env)
{
	struct edge *e = l->er->e;
	const cJSON *b = env->body;
	struct cn_http_resp resp;
	int64_t rid, depth_s;
	int rc;

#define S(name) cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, name))
	if (cn_json_get_i64(b, "rid", 1, INT64_MAX / 2, &rid) < 0 || !S("camera")) {
		cn_log_warn("relay", "relay %s: recordings without rid or camera: ignored", l->id);
		return;
	}
	l->er->requests++;
	cn_metric_add(&m_requests, 1);
	cn_http_resp_init(&resp);
	if (edge_whep_authorize(e->whep, S("authorization"), S("camera"), &resp, &depth_s) == 0 &&
	    (rc = edge_api_recordings(e, S("camera"), S("from"), S("to"), depth_s, &resp)) < 0) {
		cn_buf_free(&resp.body);
		cn_http_resp_init(&resp);
		cn_http_problem(&resp, 500, "Internal Server Error", "%s", cn_strerror(rc));
	}
#undef S
	send_response(l, (uint64_t)rid, &resp);
}

/* ---- registration ---------------------------------------------------------------------------- */

static void on_challenge(struct relay_link *l, const cJSON *b)
{
	struct edge_relay *er = l->er;
	const char *nonce = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "nonce"));
	const char *node = edge_uplink_node_id(er->e);
	uint8_t sig[CN_ED25519_SIG_LEN];
	char sig64[128];
	struct cn_buf msg;
	size_t n;
	cJSON *o;

	if (!nonce || !er->token || !node[0]) {
		cn_strlcpy(l->error, "no challenge nonce, or no registration token from central yet",
			   sizeof(l->error));
		cn_ws_close(l->ws);
		return;
	}
	cn_buf_init(&msg, 512);
	cn_buf_printf(&msg, "%s%s\n%s", REG_SIG_LABEL, nonce, node);
	if (cn_ed25519_sign(er->e->d->node_key, msg.data, msg.len, sig) < 0 ||
	    cn_base64_encode(CN_B64_URL, sig, sizeof(sig), sig64, sizeof(sig64), &n) < 0 ||
	    !(o = cJSON_CreateObject())) {
		cn_buf_free(&msg);
		cn_ws_close(l->ws);
		return;
	}
	cn_buf_free(&msg);
	cJSON_AddStringToObject(o, "token", er->token);
	cJSON_AddStringToObject(o, "signature", sig64);
	link_send(l, "register", o);
}

static void on_open(struct cn_ws_conn *ws, void *arg)
{
	(void)ws;
	(void)arg; /* the relay speaks first (challenge) */
}

static void on_message(struct cn_ws_conn *ws, const char *data, size_t len, void *arg)
{
	struct relay_link *l = arg;
	struct cn_envelope env;
	char err[256];

	(void)ws;
	if (cn_envelope_decode(data, len, &env, err, sizeof(err)) < 0) {
		cn_log_warn("relay", "relay %s: %s; closing", l->id, err);
		cn_ws_close_status(l->ws, 1008, "bad message");
		return;
	}
	if (!strcmp(env.type, "challenge")) {
		on_challenge(l, env.body);
	} else if (!strcmp(env.type, "registered")) {
		l->state = RL_REGISTERED;
		l->backoff_ms = BACKOFF_MIN_MS;
		l->error[0] = '\0';
		cn_log_info("relay", "registered with relay %s (%s)", l->id, l->url);
	} else if (!strcmp(env.type, "error")) {
		const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(env.body, "message"));
		snprintf(l->error, sizeof(l->error), "refused: %.180s", m ? m : "?");
		cn_metric_add(&m_refused, 1);
		cn_log_warn("relay", "relay %s: %s", l->id, l->error);
	} else if (!strcmp(env.type, "drain")) {
		l->draining = true;
		cn_log_info("relay", "relay %s drains: sessions carry on, no new registration", l->id);
	} else if (l->state == RL_REGISTERED &&
		   (!strcmp(env.type, "whep.offer") || !strcmp(env.type, "whep.patch") ||
		    !strcmp(env.type, "whep.delete"))) {
		on_request(l, &env);
	} else if (l->state == RL_REGISTERED && !strcmp(env.type, "recordings")) {
		on_recordings(l, &env);
	}
	cn_envelope_clear(&env);
}

static gboolean retry_cb(gpointer arg)
{
	struct relay_link *l = arg;

	l->retry_id = 0;
	link_connect(l);
	return G_SOURCE_REMOVE;
}

static void link_free(struct relay_link *l)
{
	if (l->retry_id)
		g_source_remove(l->retry_id);
	free(l);
}

static void link_remove(struct relay_link *l)
{
	struct edge_relay *er = l->er;

	for (int i = 0; i < er->nlinks; i++) {
		if (er->links[i] == l) {
			er->links[i] = er->links[--er->nlinks];
			break;
		}
	}
	link_free(l);
}

static void on_close(struct cn_ws_conn *ws, void *arg)
{
	struct relay_link *l = arg;
	int code = cn_ws_close_code(ws);
	int64_t d;

	if (l->orphan) {
		free(l);
		return;
	}
	l->ws = NULL;
	if (l->state == RL_REGISTERED)
		cn_log_info("relay", "registration with relay %s ended (code %d)", l->id, code);
	else
		l->failures++;
	if (!l->error[0])
		snprintf(l->error, sizeof(l->error), "connection closed (code %d)", code);
	l->state = RL_WAITING;
	if (!l->wanted || l->draining) {
		link_remove(l);
		return;
	}
	/* Capped exponential backoff with jitter (+-20%), like the uplink. */
	d = l->backoff_ms + (int64_t)g_random_int_range(-(gint32)(l->backoff_ms / 5),
							(gint32)(l->backoff_ms / 5) + 1);
	l->backoff_ms = l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
	l->retry_id = g_timeout_add((guint)d, retry_cb, l);
}

static const struct cn_ws_ops link_ops = {
	.on_open = on_open,
	.on_message = on_message,
	.on_close = on_close,
};

static void link_connect(struct relay_link *l)
{
	struct edge *e = l->er->e;
	char url[600];
	struct cn_ws_client_opts o = { 0 };
	int rc;

	/* http(s)://host:port -> ws(s)://host:port/relay/edge */
	if (!strncmp(l->url, "https://", 8))
		snprintf(url, sizeof(url), "wss://%s/relay/edge", l->url + 8);
	else if (!strncmp(l->url, "http://", 7))
		snprintf(url, sizeof(url), "ws://%s/relay/edge", l->url + 7);
	else {
		snprintf(l->error, sizeof(l->error), "relay URL must be http:// or https://");
		return;
	}
	o.url = url;
	o.ca_path = e->conf->central_ca; /* wss: relays' certificates come from central's CA */
	o.max_msg = MAX_MSG;
	o.ping_interval_s = 20;
	l->origin = ++l->er->next_origin;
	l->state = RL_CONNECTING;
	l->error[0] = '\0';
	l->connects++;
	if ((rc = cn_ws_connect(&e->d->loop, &o, &link_ops, l, &l->ws)) < 0) {
		snprintf(l->error, sizeof(l->error), "cannot connect: %s", cn_strerror(rc));
		l->state = RL_WAITING;
		l->ws = NULL;
		l->retry_id = g_timeout_add((guint)l->backoff_ms, retry_cb, l);
	}
}

/* ---- central's list ------------------------------------------------------------------------------ */

void edge_relay_update(struct edge *e, const cJSON *body)
{
	struct edge_relay *er = e->relay;
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(body, "relays");
	const cJSON *keys = cJSON_GetObjectItemCaseSensitive(body, "keys");
	const char *tok = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "token"));
	const cJSON *it;

	if (!er || !cJSON_IsArray(list) || !tok || !cJSON_IsArray(keys)) {
		if (er)
			cn_log_warn("relay", "relays message without relays, token or keys: ignored");
		return;
	}
	free(er->token);
	er->token = strdup(tok);
	/* Registrations live as long as central keeps vouching for us. */
	for (int i = 0; i < er->nlinks; i++) {
		cJSON *o;

		if (er->links[i]->state == RL_REGISTERED && (o = cJSON_CreateObject())) {
			cJSON_AddStringToObject(o, "token", tok);
			link_send(er->links[i], "register.refresh", o);
		}
	}
	/* Central's keys: viewer tokens it signs are good here too (edge_whep.c). */
	for (size_t i = 0; i < er->nkeys; i++)
		cn_ed25519_free(er->keys[i]);
	er->nkeys = 0;
	cJSON_ArrayForEach(it, keys) {
		const char *pub = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "public_key"));
		uint8_t raw[CN_ED25519_PUB_LEN + 2];
		size_t n;

		if (er->nkeys < EDGE_RELAY_MAX_KEYS && pub &&
		    cn_base64_decode(CN_B64_URL, pub, strlen(pub), raw, sizeof(raw), &n) == 0 &&
		    n == CN_ED25519_PUB_LEN && cn_ed25519_from_public(raw, &er->keys[er->nkeys]) == 0)
			er->nkeys++;
	}
	for (int i = 0; i < er->nlinks; i++)
		er->links[i]->wanted = false;
	cJSON_ArrayForEach(it, list) {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "id"));
		const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "url"));
		struct relay_link *l = NULL;

		if (!id || !url || strlen(id) >= sizeof(l->id) || strlen(url) >= sizeof(l->url))
			continue;
		for (int i = 0; i < er->nlinks; i++)
			if (!strcmp(er->links[i]->id, id))
				l = er->links[i];
		if (l && strcmp(l->url, url) != 0) {
			/* moved: the old registration goes, a new one follows */
			l->wanted = false;
			if (l->ws)
				cn_ws_close(l->ws);
			else
				link_remove(l);
			l = NULL;
		}
		if (l) {
			l->wanted = true;
			continue;
		}
		if (er->nlinks == MAX_RELAYS || !(l = calloc(1, sizeof(*l))))
			continue;
		l->er = er;
		cn_strlcpy(l->id, id, sizeof(l->id));
		cn_strlcpy(l->url, url, sizeof(l->url));
		l->wanted = true;
		l->backoff_ms = BACKOFF_MIN_MS;
		er->links[er->nlinks++] = l;
		cn_log_info("relay", "central names relay %s at %s: registering", id, url);
		link_connect(l);
	}
	/* Relays no longer named are left, except draining ones: their sessions still
	 * signal through them until they close. */
	for (int i = er->nlinks - 1; i >= 0; i--) {
		struct relay_link *l = er->links[i];

		if (l->wanted || l->draining)
			continue;
		if (l->ws)
			cn_ws_close(l->ws); /* on_close removes it */
		else
			link_remove(l);
	}
}

size_t edge_relay_keys(struct edge *e, struct cn_ed25519 **keys, size_t cap)
{
	struct edge_relay *er = e->relay;
	size_t n = 0;

	for (; er && n < er->nkeys && n < cap; n++)
		keys[n] = er->keys[n];
	return n;
}

void edge_relay_describe(struct edge *e, cJSON *obj)
{
	struct edge_relay *er = e->relay;
	cJSON *arr = cJSON_AddArrayToObject(obj, "relays");

	for (int i = 0; er && arr && i < er->nlinks; i++) {
		struct relay_link *l = er->links[i];
		cJSON *o = cJSON_CreateObject();

		if (!o)
			break;
		cJSON_AddItemToArray(arr, o);
		cJSON_AddStringToObject(o, "id", l->id);
		cJSON_AddStringToObject(o, "url", l->url);
		cJSON_AddStringToObject(o, "state", state_names[l->state]);
		if (l->error[0])
			cJSON_AddStringToObject(o, "error", l->error);
		else
			cJSON_AddNullToObject(o, "error");
		cn_json_add_i64(o, "connects", (int64_t)l->connects);
		cJSON_AddBoolToObject(o, "draining", l->draining);
	}
}

static int relay_metrics(struct cn_buf *out, void *arg)
{
	struct edge_relay *er = arg;
	int n[3] = { 0 }, rc;

	for (int i = 0; i < er->nlinks; i++)
		n[er->links[i]->state]++;
	if ((rc = cn_metrics_family(out, "canopy_edge_relay_links", "gauge",
				    "registrations to relays, by state")) < 0)
		return rc;
	for (int i = 0; i < 3; i++)
		if ((rc = cn_buf_printf(out, "canopy_edge_relay_links{state=\"%s\"} %d\n", state_names[i],
					n[i])) < 0)
			return rc;
	return 0;
}

static gboolean status_tick(gpointer arg)
{
	struct edge_relay *er = arg;

	for (int i = 0; i < er->nlinks; i++) {
		cJSON *o;

		if (er->links[i]->state != RL_REGISTERED || !(o = cJSON_CreateObject()))
			continue;
		cn_json_add_i64(o, "requests", (int64_t)er->requests);
		link_send(er->links[i], "edge.status", o);
	}
	return G_SOURCE_CONTINUE;
}

int edge_relay_start(struct edge *e)
{
	struct edge_relay *er = calloc(1, sizeof(*er));
	struct edge_whep_remote rem = { remote_answer, remote_session, NULL };

	if (!er)
		return -ENOMEM;
	e->relay = er;
	er->e = e;
	rem.arg = er;
	edge_whep_set_remote(e->whep, &rem);
	cn_metrics_register(&m_requests);
	cn_metrics_register(&m_refused);
	er->status_id = g_timeout_add(STATUS_EVERY_MS, status_tick, er);
	return cn_metrics_add_collector(relay_metrics, er);
}

void edge_relay_stop(struct edge *e)
{
	struct edge_relay *er = e->relay;
	struct edge_whep_remote none = { 0 };

	if (!er)
		return;
	edge_whep_set_remote(e->whep, &none);
	cn_metrics_remove_collector(relay_metrics, er);
	if (er->status_id)
		g_source_remove(er->status_id);
	/* Open connections close with the lws context; their callbacks must find nothing. */
	for (int i = 0; i < er->nlinks; i++) {
		struct relay_link *l = er->links[i];

		if (l->ws) {
			l->orphan = true;
			if (l->retry_id)
				g_source_remove(l->retry_id);
			cn_ws_close(l->ws);
		} else {
			link_free(l);
		}
	}
	for (size_t i = 0; i < er->nkeys; i++)
		cn_ed25519_free(er->keys[i]);
	free(er->token);
	free(er);
	e->relay = NULL;
}
