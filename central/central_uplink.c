/* central_uplink.c: children's uplinks (edges, relays, child centrals): enrolment, heartbeats, config push, inventory, events. */
#include "central_uplink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>

#include "central_alarms.h"
#include "central_auth.h"
#include "central_db.h"
#include "central_relay.h"
#include "central_webhook.h"
#include "cn_base64.h"
#include "cn_buf.h"
#include "cn_crypto.h"
#include "cn_envelope.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_time.h"
#include "cn_uplink.h"
#include "cn_ws.h"

#define HELLO_TIMEOUT_MS 10000
#define HEARTBEAT_S 10
#define FLUSH_MS 2000
#define MAX_MSG CN_ENV_MAX_BYTES

enum link_state { L_CHALLENGED, L_AUTHING, L_READY, L_CLOSING };

struct link {
	struct central_uplink *u;
	struct cn_ws_conn *ws; /* NULL once closed: jobs find the link gone by gen */
	uint64_t gen;
	enum link_state state;
	int64_t opened_ms;
	uint64_t seq;
	char nonce[48];
	char node_id[40], tenant_id[40], site_id[40];
	char kind[16];
	char name[128];
	char peer[64];
	int64_t sent_version; /* configuration version pushed last; -1 none */
	bool counted;         /* in m_links */
	bool down_busy;       /* child central: alarm states sent, ack awaited (or reading) */
	bool down_again;      /* more were queued meanwhile */
};

struct central_uplink {
	struct central *c;
	GHashTable *by_gen;  /* gen -> link (owned) */
	GHashTable *by_node; /* node id -> link */
	uint64_t next_gen;
	/* heartbeats since the last flush: node id -> clock offset (ms) */
	GHashTable *beats;
	guint flush_id, sweep_id, recheck_id, listen_retry_id;
	PGconn *listen_pg;
	guint listen_watch;
	/* Waking the instances that serve streams and deliver webhooks after events were
	 * stored: one NOTIFY per WAKE_GAP_MS at most, off the events' ack path. */
	struct {
		int alarms, hooks; /* raised since the last NOTIFY */
		bool busy;
		guint timer;
		int64_t last_ms;
	} wake;
	bool stopping;
};

#define WAKE_GAP_MS 20

static struct cn_metric m_links = CN_METRIC_INIT(
	"canopy_central_uplinks", CN_METRIC_GAUGE, "children's uplinks held by this instance (authenticated)");
static struct cn_metric m_refused = CN_METRIC_INIT(
	"canopy_central_uplink_refused_total", CN_METRIC_COUNTER,
	"uplinks refused: bad or used enrolment token, wrong key or signature, revoked node");
static struct cn_metric m_bad_msgs = CN_METRIC_INIT(
	"canopy_central_uplink_bad_messages_total", CN_METRIC_COUNTER,
	"uplink messages refused as malformed or out of order (the link is closed)");
static struct cn_metric m_heartbeats = CN_METRIC_INIT(
	"canopy_central_uplink_heartbeats_total", CN_METRIC_COUNTER, "heartbeats received");
static struct cn_metric m_configs = CN_METRIC_INIT(
	"canopy_central_uplink_configs_sent_total", CN_METRIC_COUNTER,
	"configuration documents pushed to children");
static struct cn_metric m_events = CN_METRIC_INIT(
	"canopy_central_uplink_events_total", CN_METRIC_COUNTER, "events received from children");
static struct cn_metric m_alarms_in = CN_METRIC_INIT(
	"canopy_central_uplink_alarms_received_total", CN_METRIC_COUNTER,
	"alarms (and their changes) forwarded by child centrals");
static struct cn_metric m_alarm_states_out = CN_METRIC_INIT(
	"canopy_central_uplink_alarm_states_sent_total", CN_METRIC_COUNTER,
	"alarm state changes made here sent down to the child central that forwarded the alarm");
static struct cn_metric m_offline = CN_METRIC_INIT(
	"canopy_central_nodes_marked_offline_total", CN_METRIC_COUNTER,
	"nodes this instance marked offline after the silence window");

/* ---- sending -------------------------------------------------------------------- */

static int link_send(struct link *l, const char *type, cJSON *body)
{
	struct cn_envelope env;
	struct cn_buf out;
	int rc;

	if (!l->ws) {
		cJSON_Delete(body);
		return -ENOTCONN;
	}
	cn_buf_init(&out, MAX_MSG);
	if ((rc = cn_envelope_make(&env, type, ++l->seq, body)) < 0) {
		cJSON_Delete(body);
		return rc;
	}
	if ((rc = cn_envelope_encode(&env, &out)) == 0)
		rc = cn_ws_send(l->ws, (const char *)out.data, out.len);
	if (rc == -ENOBUFS) {
		cn_log_warn("uplink", "%s (%s): send queue full; closing the link", l->name, l->peer);
		cn_ws_close_status(l->ws, 4013, "send queue full");
	}
	cn_envelope_clear(&env);
	cn_buf_free(&out);
	return rc;
}

struct close_later {
	struct central_uplink *u;
	uint64_t gen;
	int status;
	char reason[32];
};

static gboolean close_later_cb(gpointer arg)
{
	struct close_later *cl = arg;
	struct link *l = cl->u->stopping ? NULL : g_hash_table_lookup(cl->u->by_gen, &cl->gen);

	if (l && l->ws)
		cn_ws_close_status(l->ws, cl->status, cl->reason);
	free(cl);
	return G_SOURCE_REMOVE;
}

/* Closing drops what is still queued, so the error message gets a moment to leave first. */
static void link_close_soon(struct link *l, int status, const char *reason)
{
	struct close_later *cl = calloc(1, sizeof(*cl));

	if (!cl) {
		if (l->ws)
			cn_ws_close_status(l->ws, status, reason);
		return;
	}
	cl->u = l->u;
	cl->gen = l->gen;
	cl->status = status;
	cn_strlcpy(cl->reason, reason, sizeof(cl->reason));
	l->state = L_CLOSING; /* nothing more is handled on it */
	g_timeout_add(300, close_later_cb, cl);
}

static void link_error(struct link *l, const char *code, const char *why)
{
	cJSON *b = cJSON_CreateObject();

	if (b && cJSON_AddStringToObject(b, "code", code) && cJSON_AddStringToObject(b, "message", why))
		link_send(l, "error", b);
	else
		cJSON_Delete(b);
}

static void link_refuse(struct link *l, const char *code, const char *why)
{
	cn_metric_add(&m_refused, 1);
	cn_log_warn("uplink", "refused %s from %s: %s", l->node_id[0] ? l->node_id : "hello",
		    l->peer, why);
	link_error(l, code, why);
	link_close_soon(l, 4003, code);
}

static void link_bad(struct link *l, const char *why)
{
	cn_metric_add(&m_bad_msgs, 1);
	cn_log_warn("uplink", "%s (%s): %s; closing", l->name[0] ? l->name : "link", l->peer, why);
	link_error(l, "bad_message", why);
	link_close_soon(l, 1008, "bad message");
}

/* ---- database jobs ------------------------------------------------------------------ */

/* A job about one link; the link may be gone when it completes. */
struct ljob {
	struct central_job job;
	struct central_uplink *u;
	uint64_t gen;
	char node_id[40];
	char kind[16];
	char *text;  /* JSON parameter, or the result document */
	char *text2;
	int64_t num;
	bool ok;
	char out[3][40];
	char why[256];
};

static struct link *ljob_link(struct ljob *j)
{
	return j->u->stopping ? NULL : g_hash_table_lookup(j->u->by_gen, &j->gen);
}

static void ljob_free(struct ljob *j)
{
	free(j->text);
	free(j->text2);
	free(j);
}

static struct ljob *ljob_new(struct link *l, int (*run)(PGconn *, struct central_job *),
			     void (*done)(struct central_job *))
{
	struct ljob *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->job.run = run;
	j->job.done = done;
	if (l) {
		j->u = l->u;
		j->gen = l->gen;
		cn_strlcpy(j->node_id, l->node_id, sizeof(j->node_id));
		cn_strlcpy(j->kind, l->kind, sizeof(j->kind));
	}
	return j;
}

static void ljob_submit(struct central_uplink *u, struct ljob *j)
{
	j->u = u;
	if (central_db_submit(u->c->db, &j->job) < 0) {
		cn_log_warn("uplink", "database queue full: dropped an uplink job");
		ljob_free(j);
	}
}

/* -- configuration push -- */

static int run_config(PGconn *pg, struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	const char *p[1] = { j->node_id };
	PGresult *r;
	int rc;

	if ((rc = central_db_exec(pg, "SELECT version, doc FROM uplink_config($1)", 1, p, &r,
				  job->err, sizeof(job->err))) < 0)
		return rc;
	if (PQntuples(r) == 1) {
		j->num = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		j->text = strdup(PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	return j->text ? 0 : -ENOENT;
}

static void done_config(struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	struct link *l = ljob_link(j);
	cJSON *body, *doc = NULL;

	if (job->rc < 0 || !l || l->state != L_READY || j->num == l->sent_version) {
		if (job->rc < 0 && job->rc != -ECANCELED && job->rc != -ENOENT)
			cn_log_warn("uplink", "configuration for %s not loaded: %s", j->node_id,
				    job->err);
		ljob_free(j);
		return;
	}
	if (cn_json_parse(j->text, strlen(j->text), MAX_MSG, CN_ENV_MAX_DEPTH - 4, &doc) == 0 &&
	    (body = cJSON_CreateObject()) && cn_json_add_i64(body, "version", j->num)) {
		cJSON_AddItemToObject(body, "doc", doc);
		doc = NULL;
		if (link_send(l, "config", body) == 0) {
			l->sent_version = j->num;
			cn_metric_add(&m_configs, 1);
			cn_log_info("uplink", "pushed configuration version %lld to %s",
				    (long long)j->num, l->name);
		}
	}
	cJSON_Delete(doc);
	ljob_free(j);
}

static void push_config(struct link *l)
{
	struct ljob *j = ljob_new(l, run_config, done_config);

	if (j)
		ljob_submit(l->u, j);
}

/* -- alarms shared with a child central: its alarms come up, our changes go down -- */

static int run_down_read(PGconn *pg, struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	const char *p[1] = { j->node_id };
	PGresult *r;
	int rc;

	if ((rc = central_db_exec(pg,
				  "SELECT coalesce(max(seq), 0), coalesce(json_agg(body ORDER BY seq), '[]')"
				  " FROM (SELECT seq, body FROM child_outbox WHERE node_id = $1"
				  " ORDER BY seq LIMIT 100) x",
				  1, p, &r, job->err, sizeof(job->err))) < 0)
		return rc;
	j->num = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	j->text = strdup(PQgetvalue(r, 0, 1));
	PQclear(r);
	return j->text ? 0 : -ENOMEM;
}

static void drain_down(struct link *l);
static void done_log(struct central_job *job);

static void done_down_read(struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	struct link *l = ljob_link(j);
	cJSON *items = NULL, *b;

	if (!l) {
		ljob_free(j);
		return;
	}
	if (job->rc < 0 || j->num == 0 ||
	    cn_json_parse(j->text, strlen(j->text), MAX_MSG, 16, &items) < 0 ||
	    !(b = cJSON_CreateObject())) {
		if (job->rc < 0 && job->rc != -ECANCELED)
			cn_log_warn("uplink", "alarm states for %s not read: %s", l->name, job->err);
		cJSON_Delete(items);
		l->down_busy = false;
		if (l->down_again && job->rc == 0 && j->num) {
			l->down_again = false;
			drain_down(l);
		}
		ljob_free(j);
		return;
	}
	cn_metric_add(&m_alarm_states_out, cJSON_GetArraySize(items));
	cn_json_add_i64(b, "seq", j->num);
	cJSON_AddItemToObject(b, "items", items);
	/* Stays busy until the child acknowledges (a lost link starts over with a new one). */
	if (link_send(l, "alarms.state", b) < 0)
		l->down_busy = false;
	ljob_free(j);
}

static void drain_down(struct link *l)
{
	struct ljob *j;

	if (l->down_busy) {
		l->down_again = true;
		return;
	}
	if (!(j = ljob_new(l, run_down_read, done_down_read)))
		return;
	l->down_busy = true;
	l->down_again = false;
	ljob_submit(l->u, j);
}

static int run_down_ack(PGconn *pg, struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	char v[24];
	const char *p[2] = { j->node_id, v };

	snprintf(v, sizeof(v), "%lld", (long long)j->num);
	return central_db_run(pg, "DELETE FROM child_outbox WHERE node_id = $1 AND seq <= $2::bigint",
			      2, p, job->err, sizeof(job->err));
}

static void done_down_ack(struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	struct link *l = ljob_link(j);

	if (l) {
		l->down_busy = false;
		drain_down(l); /* the next batch, if any */
	}
	ljob_free(j);
}

static int run_alarms_in(PGconn *pg, struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	const char *p[2] = { j->node_id, j->text };

	return central_db_run(pg, "SELECT uplink_alarms($1, $2::jsonb)", 2, p, job->err,
			      sizeof(job->err));
}

static void done_alarms_in(struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	struct link *l = ljob_link(j);
	cJSON *b;

	if (job->rc < 0) {
		done_log(job);
		return;
	}
	/* Acked once stored: the child keeps them until then. */
	if (l && (b = cJSON_CreateObject())) {
		cn_json_add_i64(b, "seq", j->num);
		link_send(l, "alarms.ack", b);
	}
	central_alarms_kick(j->u->c);
	ljob_free(j);
}

static void handle_alarm_links(struct link *l, const struct cn_envelope *env)
{
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(env->body, "items");
	struct ljob *j;
	int64_t seq;

	if (strcmp(l->kind, "central") != 0) {
		link_bad(l, "only a child central shares alarms");
		return;
	}
	if (cn_json_get_i64(env->body, "seq", 1, CN_JSON_MAX_SAFE_INT, &seq) < 0) {
		link_bad(l, "alarm messages need seq (positive integer)");
		return;
	}
	if (strcmp(env->type, "alarms.state.ack") == 0) {
		if ((j = ljob_new(l, run_down_ack, done_down_ack))) {
			j->num = seq;
			ljob_submit(l->u, j);
		}
		return;
	}
	if (!cJSON_IsArray(items) || cJSON_GetArraySize(items) > 1000) {
		link_bad(l, "alarms needs items: an array of at most 1000 alarms");
		return;
	}
	cn_metric_add(&m_alarms_in, cJSON_GetArraySize(items));
	if (!(j = ljob_new(l, run_alarms_in, done_alarms_in)))
		return;
	j->num = seq;
	if (!(j->text = cJSON_PrintUnformatted(items))) {
		ljob_free(j);
		return;
	}
	ljob_submit(l->u, j);
}

/* -- hello: enrolment or key check, then online -- */

static int run_hello(PGconn *pg, struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	/* text: token (enrolment) or NULL; text2: public key hex; out[0]: key id; why: peer,
	 * out[1]: software, out[2] instance */
	PGresult *r;
	int rc;

	if (j->text) {
		char hash[65];
		const char *p[6] = { hash, j->text2, j->out[0], j->kind, j->out[1], j->why };

		if ((rc = central_auth_hash_secret(j->text, hash)) < 0)
			return rc;
		if ((rc = central_db_exec(pg,
					  "SELECT node_id, tenant_id, site_id, error FROM"
					  " uplink_enrol($1, decode($2, 'hex'), $3, $4, $5, $6)",
					  6, p, &r, job->err, sizeof(job->err))) < 0)
			return rc;
		if (!PQgetisnull(r, 0, 3)) {
			cn_strlcpy(job->err, PQgetvalue(r, 0, 3), sizeof(job->err));
			PQclear(r);
			return 0; /* ok stays false */
		}
		cn_strlcpy(j->node_id, PQgetvalue(r, 0, 0), sizeof(j->node_id));
	} else {
		const char *p[1] = { j->node_id };

		if ((rc = central_db_exec(pg,
					  "SELECT tenant_id, site_id, kind, state,"
					  " encode(public_key, 'hex') FROM nodes WHERE id = $1",
					  1, p, &r, job->err, sizeof(job->err))) < 0)
			return rc;
		if (PQntuples(r) != 1)
			cn_strlcpy(job->err, "unknown node", sizeof(job->err));
		else if (strcmp(PQgetvalue(r, 0, 3), "revoked") == 0)
			cn_strlcpy(job->err, "node is revoked", sizeof(job->err));
		else if (strcmp(PQgetvalue(r, 0, 2), j->kind) != 0)
			cn_strlcpy(job->err, "node kind does not match", sizeof(job->err));
		else if (PQgetisnull(r, 0, 4) || strcmp(PQgetvalue(r, 0, 4), j->text2) != 0)
			cn_strlcpy(job->err, "key does not match the enrolled key", sizeof(job->err));
		if (job->err[0]) {
			PQclear(r);
			return 0;
		}
	}
	PQclear(r);
	{
		const char *p[4] = { j->node_id, j->u->c->instance_id, j->out[1], j->why };

		if ((rc = central_db_exec(pg,
					  "SELECT n.tenant_id, n.site_id, n.name FROM"
					  " (SELECT uplink_online($1, $2, $3, $4)) x, nodes n WHERE n.id = $1",
					  4, p, &r, job->err, sizeof(job->err))) < 0)
			return rc;
		if (PQntuples(r) == 1) {
			cn_strlcpy(j->out[0], PQgetvalue(r, 0, 0), sizeof(j->out[0]));
			cn_strlcpy(j->out[1], PQgetvalue(r, 0, 1), sizeof(j->out[1]));
			free(j->text2);
			j->text2 = strdup(PQgetvalue(r, 0, 2));
			j->ok = true;
		}
		PQclear(r);
	}
	return 0;
}

static void done_hello(struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	struct link *l = ljob_link(j), *old;
	cJSON *b;

	if (!l) {
		ljob_free(j);
		return;
	}
	if (job->rc < 0) {
		link_refuse(l, "unavailable", "central cannot reach its database; retry later");
		ljob_free(j);
		return;
	}
	if (!j->ok) {
		link_refuse(l, "refused", job->err[0] ? job->err : "refused");
		ljob_free(j);
		return;
	}
	cn_strlcpy(l->node_id, j->node_id, sizeof(l->node_id));
	cn_strlcpy(l->tenant_id, j->out[0], sizeof(l->tenant_id));
	cn_strlcpy(l->site_id, j->out[1], sizeof(l->site_id));
	if (j->text2)
		cn_strlcpy(l->name, j->text2, sizeof(l->name));
	/* A node has one link: a newer one replaces a stale one (e.g. after a network cut). */
	if ((old = g_hash_table_lookup(l->u->by_node, l->node_id)) && old != l) {
		g_hash_table_remove(l->u->by_node, l->node_id);
		if (old->ws)
			cn_ws_close_status(old->ws, 4009, "replaced by a newer link");
		old->state = L_CLOSING;
	}
	g_hash_table_insert(l->u->by_node, l->node_id, l);
	l->state = L_READY;
	l->counted = true;
	cn_metric_add(&m_links, 1);
	cn_log_info("uplink", "%s %s (%s) connected from %s", l->kind, l->name, l->node_id, l->peer);
	if ((b = cJSON_CreateObject()) && cJSON_AddStringToObject(b, "node_id", l->node_id) &&
	    cJSON_AddStringToObject(b, "tenant_id", l->tenant_id) &&
	    cJSON_AddStringToObject(b, "site_id", l->site_id) &&
	    cJSON_AddStringToObject(b, "instance", l->u->c->instance_id) &&
	    cn_json_add_i64(b, "heartbeat_s", HEARTBEAT_S))
		link_send(l, "welcome", b);
	else
		cJSON_Delete(b);
	push_config(l);
	if (strcmp(l->kind, "central") == 0)
		drain_down(l);
	central_relay_link_ready(l->u->c, l->node_id, l->kind);
	ljob_free(j);
}

static void handle_hello(struct link *l, const cJSON *b)
{
	const char *node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "node_id"));
	const char *token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "enrol_token"));
	const char *pub64 = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "public_key"));
	const char *sig64 = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "signature"));
	const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "kind"));
	const char *sw = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "software"));
	uint8_t pub[CN_ED25519_PUB_LEN + 2], sig[CN_ED25519_SIG_LEN + 2];
	size_t publen, siglen;
	struct cn_ed25519 *key = NULL;
	struct cn_buf msg;
	struct ljob *j;
	char hex[2 * CN_ED25519_PUB_LEN + 1];
	int i;

	if (!pub64 || !sig64 || !kind || (!node == !token)) {
		link_bad(l, "hello needs public_key, signature, kind and exactly one of node_id, "
			    "enrol_token");
		return;
	}
	if (strcmp(kind, "edge") && strcmp(kind, "relay") && strcmp(kind, "central")) {
		link_bad(l, "hello: kind must be edge, relay or central");
		return;
	}
	if (cn_base64_decode(CN_B64_URL, pub64, strlen(pub64), pub, sizeof(pub), &publen) < 0 ||
	    publen != CN_ED25519_PUB_LEN ||
	    cn_base64_decode(CN_B64_URL, sig64, strlen(sig64), sig, sizeof(sig), &siglen) < 0 ||
	    siglen != CN_ED25519_SIG_LEN) {
		link_bad(l, "hello: public_key (32 bytes) and signature (64 bytes) must be base64url");
		return;
	}
	if ((node && strlen(node) != 36) || (token && strlen(token) > 128)) {
		link_bad(l, "hello: node_id must be a UUID and enrol_token at most 128 characters");
		return;
	}
	/* The key signs this link's challenge, bound to the identity it claims. */
	cn_buf_init(&msg, 512);
	cn_buf_printf(&msg, "%s%s\n%s", CN_UPLINK_SIG_LABEL, l->nonce, node ? node : token);
	if (cn_ed25519_from_public(pub, &key) < 0 ||
	    cn_ed25519_verify(key, msg.data, msg.len, sig, siglen) != 0) {
		cn_ed25519_free(key);
		cn_buf_free(&msg);
		link_refuse(l, "bad_signature", "hello signature does not verify with public_key");
		return;
	}
	cn_buf_free(&msg);
	if (!(j = ljob_new(l, run_hello, done_hello))) {
		cn_ed25519_free(key);
		return;
	}
	for (i = 0; i < CN_ED25519_PUB_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", pub[i]);
	cn_strlcpy(j->kind, kind, sizeof(j->kind));
	cn_strlcpy(l->kind, kind, sizeof(l->kind));
	if (node)
		cn_strlcpy(j->node_id, node, sizeof(j->node_id));
	j->text = token ? strdup(token) : NULL;
	j->text2 = strdup(hex);
	cn_ed25519_key_id(key, j->out[0], sizeof(j->out[0]));
	cn_strlcpy(j->out[1], sw ? sw : "", sizeof(j->out[1]));
	cn_strlcpy(j->why, l->peer, sizeof(j->why));
	cn_ed25519_free(key);
	l->state = L_AUTHING;
	ljob_submit(l->u, j);
}

/* -- simple writes: inventory, config acks, events -- */

static int run_sql_text(PGconn *pg, struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	const char *p[4] = { j->node_id, j->text, j->text2, NULL };
	char v[24];
	int rc;

	if (j->num != INT64_MIN) {
		snprintf(v, sizeof(v), "%lld", (long long)j->num);
		p[2] = v;
		p[3] = j->ok ? "true" : "false";
		return central_db_run(pg, "SELECT uplink_config_ack($1, $3::bigint, $4::boolean, $2)",
				      4, p, job->err, sizeof(job->err));
	}
	rc = central_db_run(pg, j->text2, 2, p, job->err, sizeof(job->err));
	return rc;
}

/* Events: stored with the alarms and webhook messages they raise in one transaction; the
 * counts go back to the loop, which wakes the other instances (wake_others). The webhook
 * messages come back leased to this instance, and go straight to its webhook engine. */
static int run_events(PGconn *pg, struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	const char *owner = central_webhook_owner(j->u->c);
	char lease[24];
	const char *p[4] = { j->node_id, j->text, owner, lease };
	PGresult *r;
	int rc, i, rows, adopted = 0;

	snprintf(lease, sizeof(lease), "%lld", (long long)j->u->c->conf->webhook_lease);
	rc = central_db_exec(pg,
			     "SELECT id, tenant_id, subscription_id, msg_id, type, payload, attempts,"
			     " from_ms, url, secret, old_secret, max_in_flight, n_alarms, n_hooks"
			     " FROM uplink_store_events($1, $2::jsonb, $3, $4::int)",
			     4, p, &r, job->err, sizeof(job->err));
	if (rc < 0)
		return rc;
	rows = PQntuples(r);
	for (i = 0; i < rows; i++) {
		if (PQgetisnull(r, i, 12)) {
			adopted++;
			continue;
		}
		cn_strlcpy(j->out[0], PQgetvalue(r, i, 12), sizeof(j->out[0]));
		cn_strlcpy(j->out[1], PQgetvalue(r, i, 13), sizeof(j->out[1]));
	}
	/* What the engine takes is not announced: the other instances would find it leased. */
	if (adopted > 0 && central_webhook_adopt(j->u->c, r) == 0)
		snprintf(j->out[1], sizeof(j->out[1]), "%lld",
			 strtoll(j->out[1], NULL, 10) - adopted);
	else
		PQclear(r);
	return 0;
}

/* A NOTIFY takes a database-wide lock until its commit is flushed, so it is sent from a
 * transaction of its own, never with the events, and at most every WAKE_GAP_MS. */
static void wake_others(struct central_uplink *u, int alarms, int hooks);

static int run_wake(PGconn *pg, struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	const char *p[2] = { j->out[0], j->out[1] };

	return central_db_run(pg, "SELECT canopy_events_notify($1::int, $2::int)", 2, p, job->err,
			      sizeof(job->err));
}

static void done_wake(struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	struct central_uplink *u = j->u;

	if (job->rc < 0 && job->rc != -ECANCELED)
		/* The rows are stored all the same; other instances find them at their next poll. */
		cn_log_warn("uplink", "waking other instances: %s", job->err);
	ljob_free(j);
	u->wake.busy = false;
	u->wake.last_ms = cn_time_mono_ms();
	if (!u->stopping && (u->wake.alarms > 0 || u->wake.hooks > 0))
		wake_others(u, 0, 0);
}

static gboolean wake_timer(gpointer arg)
{
	struct central_uplink *u = arg;

	u->wake.timer = 0;
	wake_others(u, 0, 0);
	return G_SOURCE_REMOVE;
}

static void wake_others(struct central_uplink *u, int alarms, int hooks)
{
	int64_t since = cn_time_mono_ms() - u->wake.last_ms;
	struct ljob *j;

	u->wake.alarms += alarms;
	u->wake.hooks += hooks;
	if (u->stopping || u->wake.busy || u->wake.timer ||
	    (u->wake.alarms == 0 && u->wake.hooks == 0))
		return;
	if (since < WAKE_GAP_MS) {
		u->wake.timer = g_timeout_add((guint)(WAKE_GAP_MS - since), wake_timer, u);
		return;
	}
	if (!(j = ljob_new(NULL, run_wake, done_wake)))
		return;
	j->u = u;
	snprintf(j->out[0], sizeof(j->out[0]), "%d", u->wake.alarms);
	snprintf(j->out[1], sizeof(j->out[1]), "%d", u->wake.hooks);
	u->wake.alarms = u->wake.hooks = 0;
	u->wake.busy = true;
	if (central_db_submit(u->c->db, &j->job) < 0) {
		cn_log_warn("uplink", "database queue full: other instances not woken now");
		ljob_free(j);
		u->wake.busy = false;
	}
}

static void done_log(struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;

	if (job->rc < 0 && job->rc != -ECANCELED)
		cn_log_warn("uplink", "%s: %s", j->node_id, job->err);
	ljob_free(j);
}

static void submit_sql(struct link *l, const char *sql, const cJSON *body)
{
	struct ljob *j = ljob_new(l, run_sql_text, done_log);

	if (!j)
		return;
	j->num = INT64_MIN;
	j->text = cJSON_PrintUnformatted(body);
	j->text2 = strdup(sql);
	if (!j->text || !j->text2) {
		ljob_free(j);
		return;
	}
	ljob_submit(l->u, j);
}

static void done_events(struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	struct link *l = ljob_link(j);
	cJSON *ids = NULL, *b;

	if (job->rc == 0)
		wake_others(j->u, (int)strtol(j->out[0], NULL, 10), (int)strtol(j->out[1], NULL, 10));
	if (job->rc < 0 || !l) {
		done_log(job);
		return;
	}
	/* Acks name the ids stored (or already there): the child deletes exactly those. */
	if (cn_json_parse(j->text, strlen(j->text), MAX_MSG, 8, &ids) == 0 &&
	    (b = cJSON_CreateObject())) {
		cJSON *list = cJSON_AddArrayToObject(b, "ids");
		const cJSON *e;

		cJSON_ArrayForEach(e, ids) {
			const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "id"));

			if (id && list)
				cJSON_AddItemToArray(list, cJSON_CreateString(id));
		}
		link_send(l, "events.ack", b);
	}
	cJSON_Delete(ids);
	/* Webhook messages not taken by this instance's engine wait for a claim (escalations
	 * notify by themselves). */
	if (strtol(j->out[1], NULL, 10) > 0)
		central_alarms_kick(j->u->c);
	ljob_free(j);
}

static void handle_ready(struct link *l, const struct cn_envelope *env)
{
	const cJSON *b = env->body;

	if (strcmp(env->type, "heartbeat") == 0) {
		int64_t off = env->time_ms - cn_time_wall_ms();

		cn_metric_add(&m_heartbeats, 1);
		g_hash_table_insert(l->u->beats, g_strdup(l->node_id), g_memdup2(&off, sizeof(off)));
	} else if (strcmp(env->type, "inventory") == 0) {
		submit_sql(l,
			   strcmp(l->kind, "central") == 0
				   ? "SELECT uplink_inventory_central($1, $2::jsonb)"
				   : "SELECT uplink_inventory_edge($1, $2::jsonb)",
			   b);
	} else if (strcmp(env->type, "config.ack") == 0) {
		int64_t v;
		bool ok = true;
		struct ljob *j;

		if (cn_json_get_i64(b, "version", 0, CN_JSON_MAX_SAFE_INT, &v) < 0 ||
		    cn_json_get_bool(b, "ok", &ok) < 0) {
			link_bad(l, "config.ack needs version (integer) and ok (boolean)");
			return;
		}
		if (!(j = ljob_new(l, run_sql_text, done_log)))
			return;
		j->num = v;
		j->ok = ok;
		j->text = strdup(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "error")) ?: "");
		if (!ok)
			cn_log_warn("uplink", "%s refused configuration %lld: %s", l->name,
				    (long long)v, j->text ? j->text : "");
		ljob_submit(l->u, j);
	} else if (strcmp(env->type, "events") == 0) {
		const cJSON *evs = cJSON_GetObjectItemCaseSensitive(b, "events");
		struct ljob *j;

		if (!cJSON_IsArray(evs)) {
			link_bad(l, "events needs an events array");
			return;
		}
		cn_metric_add(&m_events, cJSON_GetArraySize(evs));
		if (!(j = ljob_new(l, run_events, done_events)))
			return;
		j->text = cJSON_PrintUnformatted(evs);
		if (!j->text) {
			ljob_free(j);
			return;
		}
		ljob_submit(l->u, j);
	} else if (strcmp(env->type, "alarms") == 0 || strcmp(env->type, "alarms.state.ack") == 0) {
		handle_alarm_links(l, env);
	} else if (central_relay_message(l->u->c, l->node_id, l->kind, env)) {
		/* relay.load (central_relay.c) */
	} else {
		/* Unknown types are skipped, so newer children can talk to older parents. */
		cn_log_debug("uplink", "%s: ignoring message type '%s'", l->name, env->type);
	}
}

/* ---- WebSocket callbacks -------------------------------------------------------------- */

static void on_open(struct cn_ws_conn *ws, void *arg)
{
	struct central_uplink *u = arg;
	struct link *l = calloc(1, sizeof(*l));
	uint8_t raw[32];
	size_t n;
	cJSON *b;

	if (!l) {
		cn_ws_close(ws);
		return;
	}
	l->u = u;
	l->ws = ws;
	l->gen = ++u->next_gen;
	l->opened_ms = cn_time_mono_ms();
	l->sent_version = -1;
	cn_strlcpy(l->peer, cn_ws_peer(ws), sizeof(l->peer));
	cn_ws_set_user(ws, l);
	g_hash_table_insert(u->by_gen, &l->gen, l);
	if (cn_random_bytes(raw, sizeof(raw)) < 0 ||
	    cn_base64_encode(CN_B64_URL, raw, sizeof(raw), l->nonce, sizeof(l->nonce), &n) < 0) {
		cn_ws_close(ws);
		return;
	}
	if ((b = cJSON_CreateObject()) && cJSON_AddStringToObject(b, "nonce", l->nonce) &&
	    cJSON_AddStringToObject(b, "instance", u->c->instance_id))
		link_send(l, "challenge", b);
	else
		cJSON_Delete(b);
}

static void on_message(struct cn_ws_conn *ws, const char *data, size_t len, void *arg)
{
	struct link *l = cn_ws_user(ws);
	struct cn_envelope env;
	char err[256];

	(void)arg;
	if (!l)
		return;
	if (cn_envelope_decode(data, len, &env, err, sizeof(err)) < 0) {
		link_bad(l, err);
		return;
	}
	if (l->state == L_CHALLENGED && strcmp(env.type, "hello") == 0)
		handle_hello(l, env.body);
	else if (l->state == L_READY)
		handle_ready(l, &env);
	else if (l->state == L_CHALLENGED)
		link_bad(l, "the first message must be hello");
	/* L_AUTHING: the child should wait for welcome; anything else is dropped */
	cn_envelope_clear(&env);
}

static void on_close(struct cn_ws_conn *ws, void *arg)
{
	struct link *l = cn_ws_user(ws);
	struct central_uplink *u = arg;

	if (!l)
		return;
	if (l->counted) {
		cn_metric_add(&m_links, -1);
		cn_log_info("uplink", "%s %s (%s) disconnected (code %d)", l->kind, l->name,
			    l->node_id, cn_ws_close_code(ws));
	}
	if (l->node_id[0] && g_hash_table_lookup(u->by_node, l->node_id) == l)
		g_hash_table_remove(u->by_node, l->node_id);
	l->ws = NULL;
	g_hash_table_remove(u->by_gen, &l->gen); /* frees l */
}

static const struct cn_ws_ops uplink_ops = {
	.on_open = on_open,
	.on_message = on_message,
	.on_close = on_close,
};

/* ---- timers: heartbeat flush, offline sweep, config re-check, hello timeout ----------- */

struct bjob {
	struct central_job job;
	char *ids, *offsets;
	int64_t warn_ms, offline_s;
	int marked;
};

static int run_beats(PGconn *pg, struct central_job *job)
{
	struct bjob *b = (struct bjob *)job;
	char warn[24];
	const char *p[3] = { b->ids, b->offsets, warn };

	snprintf(warn, sizeof(warn), "%lld", (long long)b->warn_ms);
	return central_db_run(pg, "SELECT uplink_heartbeats($1::uuid[], $2::bigint[], $3)", 3, p,
			      job->err, sizeof(job->err));
}

static void done_bjob(struct central_job *job)
{
	struct bjob *b = (struct bjob *)job;

	if (job->rc < 0 && job->rc != -ECANCELED)
		cn_log_warn("uplink", "presence update failed: %s", job->err);
	if (b->marked > 0) {
		cn_metric_add(&m_offline, b->marked);
		cn_log_warn("uplink", "%d node(s) marked offline (silent for %lld s)", b->marked,
			    (long long)b->offline_s);
	}
	free(b->ids);
	free(b->offsets);
	free(b);
}

static gboolean flush_beats(gpointer arg)
{
	struct central_uplink *u = arg;
	GHashTableIter it;
	gpointer k, v;
	struct cn_buf ids, offs;
	struct bjob *b;

	if (g_hash_table_size(u->beats) == 0)
		return G_SOURCE_CONTINUE;
	cn_buf_init(&ids, 64u << 20);
	cn_buf_init(&offs, 64u << 20);
	cn_buf_append_str(&ids, "{");
	cn_buf_append_str(&offs, "{");
	g_hash_table_iter_init(&it, u->beats);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		cn_buf_printf(&ids, "%s%s", ids.len > 1 ? "," : "", (const char *)k);
		cn_buf_printf(&offs, "%s%lld", offs.len > 1 ? "," : "", *(long long *)v);
	}
	cn_buf_append(&ids, "}", 2);
	cn_buf_append(&offs, "}", 2);
	g_hash_table_remove_all(u->beats);
	if (!(b = calloc(1, sizeof(*b)))) {
		cn_buf_free(&ids);
		cn_buf_free(&offs);
		return G_SOURCE_CONTINUE;
	}
	b->job.run = run_beats;
	b->job.done = done_bjob;
	b->ids = (char *)ids.data; /* handed over */
	b->offsets = (char *)offs.data;
	b->warn_ms = u->c->conf->clock_warn_ms;
	if (central_db_submit(u->c->db, &b->job) < 0) {
		cn_log_warn("uplink", "database queue full: heartbeats of this period not recorded");
		done_bjob(&b->job);
	}
	return G_SOURCE_CONTINUE;
}

/* Any instance may sweep; a transaction-level advisory lock keeps it to one at a time. */
static int run_sweep(PGconn *pg, struct central_job *job)
{
	struct bjob *b = (struct bjob *)job;
	char secs[24];
	const char *p[1] = { secs };
	PGresult *r;
	int rc;

	snprintf(secs, sizeof(secs), "%lld", (long long)b->offline_s);
	if ((rc = central_db_run(pg, "BEGIN", 0, NULL, job->err, sizeof(job->err))) < 0)
		return rc;
	if ((rc = central_db_exec(pg,
				  "SELECT CASE WHEN pg_try_advisory_xact_lock(7215530873)"
				  " THEN uplink_sweep($1::int) ELSE 0 END",
				  1, p, &r, job->err, sizeof(job->err))) < 0)
		return rc;
	b->marked = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return central_db_run(pg, "COMMIT", 0, NULL, job->err, sizeof(job->err));
}

static gboolean sweep(gpointer arg)
{
	struct central_uplink *u = arg;
	struct bjob *b = calloc(1, sizeof(*b));
	GHashTableIter it;
	gpointer k, v;
	int64_t now = cn_time_mono_ms();

	/* Links that never said hello are dropped. */
	g_hash_table_iter_init(&it, u->by_gen);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct link *l = v;

		if (l->state == L_CHALLENGED && l->ws && now - l->opened_ms > HELLO_TIMEOUT_MS) {
			cn_metric_add(&m_bad_msgs, 1);
			cn_ws_close_status(l->ws, 1008, "no hello");
			l->opened_ms = now; /* once */
		}
	}
	if (!b)
		return G_SOURCE_CONTINUE;
	b->job.run = run_sweep;
	b->job.done = done_bjob;
	b->offline_s = u->c->conf->node_offline_after / 1000;
	if (central_db_submit(u->c->db, &b->job) < 0)
		done_bjob(&b->job);
	return G_SOURCE_CONTINUE;
}

/* Re-pushes wherever the version moved without a notification reaching us. */
static gboolean recheck(gpointer arg)
{
	struct central_uplink *u = arg;
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, u->by_node);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct link *l = v;

		push_config(l);
		if (strcmp(l->kind, "central") == 0)
			drain_down(l); /* alarm states a lost notification left behind */
	}
	central_relay_recheck(u->c); /* fresh relay registration tokens for edges */
	return G_SOURCE_CONTINUE;
}

/* ---- LISTEN: configuration changes and revocations from any instance ----------------- */

static void listen_connect(struct central_uplink *u);

static gboolean listen_retry(gpointer arg)
{
	struct central_uplink *u = arg;

	u->listen_retry_id = 0;
	listen_connect(u);
	return G_SOURCE_REMOVE;
}

static void listen_lost(struct central_uplink *u, const char *why)
{
	cn_log_warn("uplink", "notification connection lost (%s); reconnecting in 2 s", why);
	if (u->listen_watch)
		g_source_remove(u->listen_watch);
	u->listen_watch = 0;
	PQfinish(u->listen_pg);
	u->listen_pg = NULL;
	if (!u->stopping && !u->listen_retry_id)
		u->listen_retry_id = g_timeout_add(2000, listen_retry, u);
}

static gboolean on_notify(gint fd, GIOCondition cond, gpointer arg)
{
	struct central_uplink *u = arg;
	PGnotify *n;

	(void)fd;
	(void)cond;
	if (!PQconsumeInput(u->listen_pg)) {
		u->listen_watch = 0; /* returning REMOVE drops it */
		listen_lost(u, PQerrorMessage(u->listen_pg));
		return G_SOURCE_REMOVE;
	}
	while ((n = PQnotifies(u->listen_pg))) {
		struct link *l = g_hash_table_lookup(u->by_node, n->extra);

		if (l && strcmp(n->relname, "canopy_config") == 0) {
			push_config(l);
		} else if (l && strcmp(n->relname, "canopy_child_outbox") == 0) {
			drain_down(l);
		} else if (strcmp(n->relname, "canopy_relays") == 0) {
			central_relay_recheck(u->c); /* a relay came, went or moved */
		} else if (l && strcmp(n->relname, "canopy_revoke") == 0) {
			cn_log_warn("uplink", "%s %s revoked: closing its link", l->kind, l->name);
			link_refuse(l, "revoked", "node revoked");
		}
		PQfreemem(n);
	}
	return G_SOURCE_CONTINUE;
}

static int run_listen(PGconn *pg, struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	PGconn *own;

	(void)pg;
	/* A connection of its own: the pool's are busy with jobs. */
	if (!(own = central_db_connect(j->u->c->conf->db, job->err, sizeof(job->err))))
		return -ECONNREFUSED;
	if (central_db_run(own, "LISTEN canopy_config", 0, NULL, job->err, sizeof(job->err)) < 0 ||
	    central_db_run(own, "LISTEN canopy_revoke", 0, NULL, job->err, sizeof(job->err)) < 0 ||
	    central_db_run(own, "LISTEN canopy_child_outbox", 0, NULL, job->err, sizeof(job->err)) < 0 ||
	    central_db_run(own, "LISTEN canopy_relays", 0, NULL, job->err, sizeof(job->err)) < 0 ||
	    PQsetnonblocking(own, 1) != 0) {
		PQfinish(own);
		return -EIO;
	}
	j->text = (char *)own; /* handed to the loop */
	return 0;
}

static void done_listen(struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	struct central_uplink *u = j->u;
	PGconn *pg = (PGconn *)j->text;

	j->text = NULL;
	if (job->rc < 0 || u->stopping) {
		PQfinish(pg);
		if (!u->stopping)
			listen_lost(u, job->err);
		ljob_free(j);
		return;
	}
	u->listen_pg = pg;
	u->listen_watch = g_unix_fd_add(PQsocket(pg), G_IO_IN, on_notify, u);
	cn_log_info("uplink", "listening for configuration changes and revocations");
	recheck(u); /* anything missed while not listening */
	ljob_free(j);
}

static void listen_connect(struct central_uplink *u)
{
	struct ljob *j = ljob_new(NULL, run_listen, done_listen);

	if (!j)
		return;
	j->u = u;
	if (central_db_submit(u->c->db, &j->job) < 0) {
		ljob_free(j);
		listen_lost(u, "database queue full");
	}
}

int central_uplink_send_node(struct central *c, const char *node_id, const char *type,
			     cJSON *body)
{
	struct link *l = c->uplink && !c->uplink->stopping
				 ? g_hash_table_lookup(c->uplink->by_node, node_id)
				 : NULL;

	if (!l || l->state != L_READY) {
		cJSON_Delete(body);
		return -ENOENT;
	}
	return link_send(l, type, body);
}

void central_uplink_each(struct central *c, const char *kind,
			 void (*fn)(struct central *c, const char *node_id, void *arg), void *arg)
{
	GHashTableIter it;
	gpointer k, v;

	if (!c->uplink || c->uplink->stopping)
		return;
	g_hash_table_iter_init(&it, c->uplink->by_node);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct link *l = v;

		if (l->state == L_READY && strcmp(l->kind, kind) == 0)
			fn(c, l->node_id, arg);
	}
}

static int uplink_metrics(struct cn_buf *out, void *arg)
{
	struct central_uplink *u = arg;
	int rc;

	if ((rc = cn_metrics_family(out, "canopy_central_uplink_links_open", "gauge",
				    "uplink WebSocket connections open, any state")) < 0)
		return rc;
	return cn_buf_printf(out, "canopy_central_uplink_links_open %u\n",
			     g_hash_table_size(u->by_gen));
}

int central_uplink_start(struct central *c)
{
	struct central_uplink *u = calloc(1, sizeof(*u));
	int rc;

	if (!u)
		return -ENOMEM;
	c->uplink = u;
	u->c = c;
	u->by_gen = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, free);
	u->by_node = g_hash_table_new(g_str_hash, g_str_equal);
	u->beats = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	if ((rc = cn_ws_serve(c->d->http, "/uplink", MAX_MSG, &uplink_ops, u)) < 0)
		return rc;
	cn_metrics_register(&m_links);
	cn_metrics_register(&m_refused);
	cn_metrics_register(&m_bad_msgs);
	cn_metrics_register(&m_heartbeats);
	cn_metrics_register(&m_configs);
	cn_metrics_register(&m_events);
	cn_metrics_register(&m_offline);
	cn_metrics_register(&m_alarms_in);
	cn_metrics_register(&m_alarm_states_out);
	cn_metrics_add_collector(uplink_metrics, u);
	cn_metrics_add_collector(cn_ws_metrics, NULL);
	u->flush_id = g_timeout_add(FLUSH_MS, flush_beats, u);
	u->sweep_id = g_timeout_add((guint)(c->conf->node_offline_after / 10 < 5000
					     ? c->conf->node_offline_after / 10 + 1
					     : 5000),
				    sweep, u);
	u->recheck_id = g_timeout_add((guint)c->conf->config_recheck, recheck, u);
	listen_connect(u);
	return 0;
}

void central_uplink_quiesce(struct central *c)
{
	struct central_uplink *u = c->uplink;
	guint *ids[6];
	size_t i;

	if (!u || u->stopping)
		return;
	u->stopping = true;
	ids[0] = &u->flush_id;
	ids[1] = &u->sweep_id;
	ids[2] = &u->recheck_id;
	ids[3] = &u->listen_retry_id;
	ids[4] = &u->listen_watch;
	ids[5] = &u->wake.timer;
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		if (*ids[i])
			g_source_remove(*ids[i]);
		*ids[i] = 0;
	}
	PQfinish(u->listen_pg);
	u->listen_pg = NULL;
}

void central_uplink_stop(struct central *c)
{
	struct central_uplink *u = c->uplink;

	if (!u)
		return;
	central_uplink_quiesce(c);
	/* Links still open are closed with the lws context after this; their memory goes now
	 * and on_close finds no user. */
	{
		GHashTableIter it;
		gpointer k, v;

		g_hash_table_iter_init(&it, u->by_gen);
		while (g_hash_table_iter_next(&it, &k, &v)) {
			struct link *l = v;

			if (l->ws)
				cn_ws_set_user(l->ws, NULL);
		}
	}
	cn_metrics_remove_collector(uplink_metrics, u);
	g_hash_table_destroy(u->by_node);
	g_hash_table_destroy(u->by_gen);
	g_hash_table_destroy(u->beats);
	free(u);
	c->uplink = NULL;
}
