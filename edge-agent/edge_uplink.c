/* edge_uplink.c: the edge's link to central: applies pushed camera configuration, reports inventory, drains the event outbox. */
#include "edge_uplink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cn_err.h"
#include "cn_file.h"
#include "cn_json.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_uplink.h"
#include "cn_version.h"
#include "edge.h"
#include "edge_camcfg.h"
#include "edge_index.h"
#include "edge_relay.h"

#define POLL_MS 1000
#define EVENTS_BATCH 100

struct edge_uplink {
	struct edge *e;
	struct cn_uplink *link;
	char state_path[1100];
	char seq_path[1100];
	char *last_inventory;
	guint poll_id;
	int64_t acked_seq;    /* outbox events central has stored */
	int64_t batch_max_seq; /* of the batch in flight; 0: none */
	int batch_n;
};

static struct cn_metric m_cfg_applied = CN_METRIC_INIT(
	"canopy_edge_central_configs_applied_total", CN_METRIC_COUNTER,
	"camera configuration documents from central applied");
static struct cn_metric m_cfg_refused = CN_METRIC_INIT(
	"canopy_edge_central_configs_refused_total", CN_METRIC_COUNTER,
	"camera configuration documents from central refused (kept the previous one)");
static struct cn_metric m_events_sent = CN_METRIC_INIT(
	"canopy_edge_uplink_events_delivered_total", CN_METRIC_COUNTER,
	"outbox events central acknowledged");

static void load_seq(struct edge_uplink *eu)
{
	struct edge_outbox_stats st;
	char buf[32];
	ssize_t n;
	int fd = open(eu->seq_path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			while (n > 0 && (buf[n - 1] == '\n'))
				buf[--n] = '\0';
			if (cn_str_to_i64(cn_str_from(buf), 0, INT64_MAX, &eu->acked_seq) < 0)
				eu->acked_seq = 0;
		}
	}
	/* The index keeps the position too (pruning needs it in the same transaction as the
	 * totals). Neither copy is fsynced: the further one is the truth, since a position is
	 * only ever written after central stored the batch. */
	if (edge_index_outbox_stats(eu->e->ix, &st) == 0 && st.acked_seq > eu->acked_seq)
		eu->acked_seq = st.acked_seq;
	edge_index_outbox_acked(eu->e->ix, eu->acked_seq);
}

static void save_seq(struct edge_uplink *eu)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%lld\n", (long long)eu->acked_seq);

	/* Not fsynced (it runs on the loop, often): after a power cut the position may be
	 * older, and central ignores the events it already has. The index's copy lets
	 * delivered events be pruned as history. */
	edge_index_outbox_acked(eu->e->ix, eu->acked_seq);
	if (cn_file_write_atomic(eu->seq_path, buf, (size_t)n, 0600, false) < 0)
		cn_log_warn("uplink", "cannot save '%s': events may be sent twice", eu->seq_path);
}

/* ---- configuration ------------------------------------------------------------------- */

static void ack(struct edge_uplink *eu, int64_t version, bool ok, const char *why)
{
	cJSON *b = cJSON_CreateObject();

	if (b && cn_json_add_i64(b, "version", version) && cJSON_AddBoolToObject(b, "ok", ok) &&
	    cJSON_AddStringToObject(b, "error", why))
		cn_uplink_send(eu->link, "config.ack", b);
	else
		cJSON_Delete(b);
}

/* The document is checked before it replaces cameras_file, so a refused one never becomes
 * the configuration the edge restarts with. */
static void apply_config(struct edge_uplink *eu, const cJSON *body)
{
	struct edge *e = eu->e;
	const cJSON *doc = cJSON_GetObjectItemCaseSensitive(body, "doc");
	struct edge_camcfg *cfg = NULL;
	char err[512], *text = NULL;
	int64_t version;
	int rc;

	if (cn_json_get_i64(body, "version", 0, INT32_MAX, &version) < 0 || !cJSON_IsObject(doc)) {
		cn_log_warn("uplink", "config message without version and doc: ignored");
		return;
	}
	if (!(text = cJSON_Print(doc)) || !(cfg = calloc(1, sizeof(*cfg)))) {
		ack(eu, version, false, "out of memory");
		goto out;
	}
	if ((rc = edge_camcfg_parse(text, strlen(text), cfg, err, sizeof(err))) < 0) {
		cn_metric_add(&m_cfg_refused, 1);
		cn_log_error("uplink", "configuration %lld from central refused: %s",
			     (long long)version, err);
		ack(eu, version, false, err);
		goto out;
	}
	/* Durable: this document is what the edge restarts with when central is away. */
	if ((rc = cn_file_write_atomic(e->cameras_file, text, strlen(text), 0600, true)) < 0) {
		snprintf(err, sizeof(err), "cannot write '%.400s': %s", e->cameras_file,
			 cn_strerror(rc));
		cn_log_error("uplink", "%s", err);
		ack(eu, version, false, err);
		goto out;
	}
	edge_cameras_reload(&e->cams);
	if (e->cams.config_error[0]) {
		cn_metric_add(&m_cfg_refused, 1);
		ack(eu, version, false, e->cams.config_error);
		goto out;
	}
	cn_metric_add(&m_cfg_applied, 1);
	cn_log_info("uplink", "applied configuration %lld from central (%d cameras)",
		    (long long)version, cfg->ncameras);
	ack(eu, version, true, "");
out:
	free(cfg);
	cJSON_free(text);
}

/* ---- inventory ------------------------------------------------------------------------- */

static cJSON *inventory(struct edge_uplink *eu)
{
	struct edge *e = eu->e;
	cJSON *root = cJSON_CreateObject(), *arr, *st;
	int i;

	if (!root || !(arr = cJSON_AddArrayToObject(root, "cameras")) ||
	    !(st = cJSON_AddObjectToObject(root, "status"))) {
		cJSON_Delete(root);
		return NULL;
	}
	cn_json_add_i64(st, "config_version", e->cams.cfg ? e->cams.cfg->version : 0);
	cJSON_AddStringToObject(st, "config_error", e->cams.config_error);
	cn_json_add_i64(st, "cameras", e->cams.ncams);
	for (i = 0; i < e->cams.ncams; i++) {
		struct edge_ingest *g = e->cams.cams[i];
		struct edge_ingest_status s;
		struct edge_camera_cfg cfg;
		cJSON *o = cJSON_CreateObject();

		if (!o)
			break;
		g_mutex_lock(&g->lock);
		cfg = g->cfg;
		g_mutex_unlock(&g->lock);
		edge_ingest_status(g, &s);
		cJSON_AddItemToArray(arr, o);
		cJSON_AddStringToObject(o, "key", cfg.id);
		cJSON_AddStringToObject(o, "name", cfg.name);
		cJSON_AddStringToObject(o, "state", edge_cam_state_name(s.state));
		cJSON_AddStringToObject(o, "reason", s.reason);
		cJSON_AddBoolToObject(o, "recording", s.recording);
		cJSON_AddBoolToObject(o, "disk_full", s.disk_full);
		cJSON_AddStringToObject(o, "recording_mode", edge_recmode_name(cfg.recording));
		/* Rates move every second; only what describes the stream rides in inventory. */
		cJSON_AddStringToObject(o, "codec", s.codec);
		cJSON_AddNumberToObject(o, "width", s.width);
		cJSON_AddNumberToObject(o, "height", s.height);
		/* the streams the edge pulls (URLs never carry credentials) */
		cJSON_AddStringToObject(o, "main_url", cfg.main_url);
		if (cfg.sub_url[0])
			cJSON_AddStringToObject(o, "sub_url", cfg.sub_url);
	}
	return root;
}

static void send_inventory(struct edge_uplink *eu, bool force)
{
	cJSON *doc;
	char *text;

	if (!cn_uplink_ready(eu->link) || !(doc = inventory(eu)))
		return;
	if (!(text = cJSON_PrintUnformatted(doc))) {
		cJSON_Delete(doc);
		return;
	}
	if (!force && eu->last_inventory && strcmp(text, eu->last_inventory) == 0) {
		cJSON_Delete(doc);
		cJSON_free(text);
		return;
	}
	if (cn_uplink_send(eu->link, "inventory", doc) == 0) {
		cJSON_free(eu->last_inventory);
		eu->last_inventory = text;
	} else {
		cJSON_free(text);
	}
}

/* ---- events ------------------------------------------------------------------------------ */

struct batch {
	cJSON *events;
	int64_t max_seq;
	int n;
};

static int add_event(int64_t seq, const char *payload, void *arg)
{
	struct batch *b = arg;
	cJSON *ev = NULL;

	if (cn_json_parse(payload, strlen(payload), 65536, 16, &ev) == 0) {
		cn_json_add_i64(ev, "seq", seq);
		cJSON_AddItemToArray(b->events, ev);
		b->n++;
	}
	b->max_seq = seq; /* an unreadable record is skipped, not retried forever */
	return 0;
}

static void drain_events(struct edge_uplink *eu)
{
	struct batch b = { 0 };
	cJSON *body;

	if (!cn_uplink_ready(eu->link) || eu->batch_max_seq)
		return;
	if (!(body = cJSON_CreateObject()) || !(b.events = cJSON_AddArrayToObject(body, "events"))) {
		cJSON_Delete(body);
		return;
	}
	if (edge_index_events_since(eu->e->ix, eu->acked_seq, EVENTS_BATCH, add_event, &b) < 0 ||
	    b.max_seq == 0) {
		cJSON_Delete(body);
		return;
	}
	if (b.n == 0) { /* only unreadable records: step over them */
		eu->acked_seq = b.max_seq;
		save_seq(eu);
		cJSON_Delete(body);
		return;
	}
	if (cn_uplink_send(eu->link, "events", body) == 0) {
		eu->batch_max_seq = b.max_seq;
		eu->batch_n = b.n;
		/* central may store it any moment now: an overflow must not count it lost */
		edge_index_outbox_inflight(eu->e->ix, b.max_seq);
	}
}

static void events_acked(struct edge_uplink *eu, const cJSON *body)
{
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(body, "ids");

	if (!eu->batch_max_seq || !cJSON_IsArray(ids))
		return;
	/* Central stores a batch whole (one statement) or not at all. */
	if (cJSON_GetArraySize(ids) == eu->batch_n) {
		cn_metric_add(&m_events_sent, eu->batch_n);
		eu->acked_seq = eu->batch_max_seq;
		save_seq(eu); /* also ends the batch in flight */
	}
	eu->batch_max_seq = 0;
	eu->batch_n = 0;
	drain_events(eu);
}

/* ---- link callbacks ----------------------------------------------------------------------- */

static void on_ready(struct cn_uplink *u, void *arg)
{
	struct edge_uplink *eu = arg;

	(void)u;
	eu->batch_max_seq = 0;
	send_inventory(eu, true);
	drain_events(eu);
}

static void on_message(struct cn_uplink *u, const struct cn_envelope *env, void *arg)
{
	struct edge_uplink *eu = arg;

	(void)u;
	if (strcmp(env->type, "config") == 0) {
		apply_config(eu, env->body);
		send_inventory(eu, false);
	} else if (strcmp(env->type, "events.ack") == 0) {
		events_acked(eu, env->body);
	} else if (strcmp(env->type, "relays") == 0) {
		edge_relay_update(eu->e, env->body); /* relays to register with (edge_relay.c) */
	}
}

static void on_down(struct cn_uplink *u, void *arg)
{
	struct edge_uplink *eu = arg;

	(void)u;
	/* Resent on the next link: central ignores duplicates. The index still marks the
	 * batch in flight (central may have stored it): an overflow leaves it alone until an
	 * ack settles it, so no event central has is ever reported lost. */
	eu->batch_max_seq = 0;
	cJSON_free(eu->last_inventory);
	eu->last_inventory = NULL;
}

static void heartbeat(struct cn_uplink *u, cJSON *body, void *arg)
{
	struct edge_uplink *eu = arg;

	(void)u;
	cn_json_add_i64(body, "applied_version", eu->e->cams.cfg ? eu->e->cams.cfg->version : 0);
}

static gboolean poll_cb(gpointer arg)
{
	struct edge_uplink *eu = arg;

	send_inventory(eu, false);
	drain_events(eu);
	return G_SOURCE_CONTINUE;
}

static const struct cn_uplink_ops edge_uplink_ops = {
	.on_ready = on_ready,
	.on_message = on_message,
	.on_down = on_down,
	.heartbeat = heartbeat,
};

int edge_uplink_start(struct edge *e)
{
	struct edge_uplink *eu = calloc(1, sizeof(*eu));
	struct cn_uplink_conf uc = {
		.url = e->conf->central_url,
		.ca_path = e->conf->central_ca,
		.enrol_token = e->conf->enrol_token,
		.kind = "edge",
		.name = e->d->base->node_name,
		.software = "canopy-edge " CANOPY_VERSION,
		.key = e->d->node_key,
	};
	int rc;

	if (!eu)
		return -ENOMEM;
	e->uplink = eu;
	eu->e = e;
	snprintf(eu->state_path, sizeof(eu->state_path), "%.1000s/uplink.json",
		 e->d->base->data_dir);
	snprintf(eu->seq_path, sizeof(eu->seq_path), "%.1000s/uplink-events.seq",
		 e->d->base->data_dir);
	uc.state_path = eu->state_path;
	load_seq(eu);
	cn_metrics_register(&m_cfg_applied);
	cn_metrics_register(&m_cfg_refused);
	cn_metrics_register(&m_events_sent);
	if ((rc = cn_uplink_start(&e->d->loop, &uc, &edge_uplink_ops, eu, &eu->link)) < 0)
		return rc;
	cn_metrics_add_collector(cn_uplink_metrics, eu->link);
	eu->poll_id = g_timeout_add(POLL_MS, poll_cb, eu);
	return 0;
}

int edge_uplink_describe(struct edge *e, cJSON *obj)
{
	if (!e->uplink || !e->uplink->link)
		return cJSON_AddNullToObject(obj, "uplink") ? 0 : -ENOMEM;
	return cn_uplink_describe(e->uplink->link, obj);
}

const char *edge_uplink_node_id(struct edge *e)
{
	return e->uplink && e->uplink->link ? cn_uplink_node_id(e->uplink->link) : "";
}

void edge_uplink_stop(struct edge *e)
{
	struct edge_uplink *eu = e->uplink;

	if (!eu)
		return;
	if (eu->poll_id)
		g_source_remove(eu->poll_id);
	if (eu->link) {
		cn_metrics_remove_collector(cn_uplink_metrics, eu->link);
		cn_uplink_stop(eu->link);
	}
	cJSON_free(eu->last_inventory);
	free(eu);
	e->uplink = NULL;
}
