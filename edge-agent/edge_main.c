/* edge_main.c: canopy-edge entry point and its configuration table (site agent: records cameras, keeps working offline). */
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cn_err.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "edge.h"
#include "edge_outbox.h"
#include "edge_uplink.h"
#include "edge_relay.h"
#include "edge_whep.h"
#include "edge_avlog.h"
#include "edge_recover.h"

static const char *const turn_transports[] = { "udp", "tcp", NULL };
/* In the order of enum edge_outbox_policy. */
static const char *const outbox_policies[] = { "drop_oldest", "drop_newest", NULL };

static const struct cn_conf_directive edge_directives[] = {
	CN_DAEMON_DIRECTIVES(struct edge_conf, "edge", "/var/lib/canopy-edge", "8480"),
	{ "cameras_file", CN_CONF_STRING, offsetof(struct edge_conf, cameras_file), 0, 1000, "", NULL,
	  "cameras document (JSON, schemas/edge-cameras.schema.json), re-read when it changes; empty: data_dir/cameras.json" },
	{ "archive_dir", CN_CONF_STRING, offsetof(struct edge_conf, archive_dir), 0, 400, "", NULL,
	  "where segment files go, <camera>/<date>/<time>.mp4; empty: data_dir/archive" },
	{ "archive_direct_io", CN_CONF_BOOL, offsetof(struct edge_conf, archive_direct_io), 0, 0, "true",
	  NULL, "write segments with O_DIRECT, past the page cache: a fraction of the CPU, and footage "
	  "does not push everything else out of memory (off, or a filesystem without it: buffered)" },
	{ "segment_duration", CN_CONF_DURATION, offsetof(struct edge_conf, segment_duration), 2000,
	  3600000, "60s", NULL, "length of a segment file (cut at the next keyframe)" },
	{ "rtsp_timeout", CN_CONF_DURATION, offsetof(struct edge_conf, rtsp_timeout), 1000, 120000,
	  "10s", NULL, "a camera silent this long (connect, describe or between packets) is unreachable" },
	{ "ingest_batch", CN_CONF_DURATION, offsetof(struct edge_conf, ingest_batch), 0, 100, "20ms",
	  NULL, "RTSP over TCP: after a read that found little, wait this long before the next, so one "
	  "wakeup carries many RTP packets (CPU) at the cost of this much latency; 0: read at once" },
	{ "ingest_batch_idle", CN_CONF_DURATION, offsetof(struct edge_conf, ingest_batch_idle), 0, 500,
	  "250ms", NULL, "ingest_batch for a camera nobody watches live (recording and motion only, where "
	  "latency does not matter): fewer, larger reads; shortened by itself so the socket buffer never fills" },
	{ "reconnect_max", CN_CONF_DURATION, offsetof(struct edge_conf, reconnect_max), 1000, 600000,
	  "30s", NULL, "cap of the exponential reconnect backoff" },
	{ "archive_quota", CN_CONF_SIZE, offsetof(struct edge_conf, archive_quota), 0, 1LL << 50, "0",
	  NULL, "most bytes of footage to keep, oldest (by share of retention) deleted first; 0: no byte quota" },
	{ "archive_max_percent", CN_CONF_INT, offsetof(struct edge_conf, archive_max_percent), 1, 99,
	  "90", NULL, "keep the archive's filesystem below this use, deleting the oldest footage" },
	{ "retention_interval", CN_CONF_DURATION, offsetof(struct edge_conf, retention_interval), 1000,
	  3600000, "10s", NULL, "how often retention checks ages and quotas" },
	{ "analytics_listen", CN_CONF_STRING, offsetof(struct edge_conf, analytics_listen), 0, 250, "",
	  NULL, "nanomsg endpoint (ipc:// or tcp://) where analytics workers push detections; empty: off" },
	{ "analytics_publish", CN_CONF_STRING, offsetof(struct edge_conf, analytics_publish), 0, 250, "",
	  NULL, "nanomsg endpoint where events are published to workers (\"event.<camera> <json>\"); empty: off" },
	{ "analytics_silence", CN_CONF_DURATION, offsetof(struct edge_conf, analytics_silence), 1000,
	  3600000, "30s", NULL, "a camera's worker silent this long: the camera records continuously until it is back" },
	{ "central_url", CN_CONF_STRING, offsetof(struct edge_conf, central_url), 0, 512, "", NULL,
	  "wss://.../uplink of the central this edge reports to; its camera configuration then "
	  "comes from central (written to cameras_file, so it survives restarts)" },
	{ "central_ca", CN_CONF_STRING, offsetof(struct edge_conf, central_ca), 0, 1024, "", NULL,
	  "central's CA certificate (PEM file) its TLS certificate must chain to" },
	{ "enrol_token", CN_CONF_STRING, offsetof(struct edge_conf, enrol_token), 0, 128, "", NULL,
	  "one-time enrolment token from central (used once; the node key is kept)" },
	{ "webrtc_addresses", CN_CONF_STRING, offsetof(struct edge_conf, webrtc_addresses), 0, 250, "",
	  NULL, "local IP addresses (comma-separated) offered to WebRTC viewers as ICE candidates; empty: every interface" },
	{ "webrtc_port_min", CN_CONF_INT, offsetof(struct edge_conf, webrtc_port_min), 0, 65535, "0",
	  NULL, "lowest UDP port for WebRTC media (with webrtc_port_max, for firewalls); 0: any" },
	{ "webrtc_port_max", CN_CONF_INT, offsetof(struct edge_conf, webrtc_port_max), 0, 65535, "0",
	  NULL, "highest UDP port for WebRTC media; 0: any" },
	{ "webrtc_stun", CN_CONF_STRING, offsetof(struct edge_conf, webrtc_stun), 0, 64, "", NULL,
	  "STUN server (IP:port) for a server-reflexive candidate; empty: none" },
	{ "webrtc_turn", CN_CONF_STRING, offsetof(struct edge_conf, webrtc_turn), 0, 64, "", NULL,
	  "TURN server (IP:port) for a relayed candidate, for viewers no direct path reaches; empty: none" },
	{ "webrtc_turn_transport", CN_CONF_ENUM, offsetof(struct edge_conf, webrtc_turn_transport), 0, 0,
	  "udp", turn_transports, "how to reach the TURN server: udp, or tcp where UDP is blocked" },
	{ "webrtc_turn_user", CN_CONF_STRING, offsetof(struct edge_conf, webrtc_turn_user), 0, 256, "",
	  NULL, "TURN user name (for time-limited credentials: expiry:subject)" },
	{ "webrtc_turn_password", CN_CONF_STRING, offsetof(struct edge_conf, webrtc_turn_password), 0,
	  256, "", NULL, "TURN password" },
	{ "webrtc_relay_only", CN_CONF_BOOL, offsetof(struct edge_conf, webrtc_relay_only), 0, 0, "false",
	  NULL, "offer viewers only the TURN-relayed candidate (local addresses stay hidden)" },
	{ "whep_max_viewers", CN_CONF_INT, offsetof(struct edge_conf, whep_max_viewers), 1, 1000, "16",
	  NULL, "WebRTC sessions (live and playback) per camera; more get 503" },
	{ "whep_session_timeout", CN_CONF_DURATION, offsetof(struct edge_conf, whep_session_timeout),
	  2000, 600000, "30s", NULL,
	  "a viewer not heard from (DTLS, RTCP) this long is dropped, as if it had sent DELETE" },
	/* At least 1M: an event is at most 64K (the uplink's limit), so a full outbox still
	 * holds a useful backlog; at most 64G, far beyond any site's event rate. */
	{ "event_outbox_max", CN_CONF_SIZE, offsetof(struct edge_conf, event_outbox_max), 1LL << 20,
	  1LL << 36, "256M", NULL,
	  "bytes of event payloads the outbox keeps in index.db; events central has stored are "
	  "pruned first (oldest first), then event_outbox_overflow applies to undelivered ones" },
	{ "event_outbox_overflow", CN_CONF_ENUM, offsetof(struct edge_conf, event_outbox_overflow), 0, 0,
	  "drop_oldest", outbox_policies,
	  "when undelivered events fill event_outbox_max: drop_oldest deletes the oldest undelivered "
	  "events, drop_newest refuses new ones; either way counted and reported (outbox.overflow event)" },
};

static void cameras_applied(const struct edge_camcfg *doc, void *arg)
{
	edge_analytics_set_cameras(arg, doc);
}

/* Hands the retention worker a copy of what it needs: it never reads live config. */
static gboolean retention_tick(gpointer data)
{
	struct edge *e = data;
	struct edge_retention_job *job = calloc(1, sizeof(*job));

	if (!job)
		return G_SOURCE_CONTINUE;
	for (int i = 0; i < e->cams.ncams; i++) {
		struct edge_ingest *g = e->cams.cams[i];
		g_mutex_lock(&g->lock);
		snprintf(job->cams[i].id, sizeof(job->cams[i].id), "%s", g->cfg.id);
		job->cams[i].retention_ms = (int64_t)g->cfg.retention_days * 86400000;
		g_mutex_unlock(&g->lock);
	}
	job->ncams = e->cams.ncams;
	job->quota_bytes = e->conf->archive_quota;
	job->max_percent = (int)e->conf->archive_max_percent;
	edge_retention_submit(&e->retention, job);
	/* Fragment and probe buffers freed by the camera threads stay in malloc's arenas;
	 * give the untouched pages back now and then (a few ms, on the loop). */
	malloc_trim(0);
	return G_SOURCE_CONTINUE;
}

static int edge_start(struct cn_daemon *d)
{
	struct edge *e = d->app;
	struct edge_ingest_opts opts;
	int rc;

	e->d = d;
	e->conf = d->conf;
	if (e->conf->archive_dir[0])
		snprintf(e->archive_dir, sizeof(e->archive_dir), "%s", e->conf->archive_dir);
	else
		snprintf(e->archive_dir, sizeof(e->archive_dir), "%.500s/archive", d->base->data_dir);
	if (e->conf->cameras_file[0])
		snprintf(e->cameras_file, sizeof(e->cameras_file), "%s", e->conf->cameras_file);
	else
		snprintf(e->cameras_file, sizeof(e->cameras_file), "%.1000s/cameras.json", d->base->data_dir);
	snprintf(e->index_path, sizeof(e->index_path), "%.490s/index.db", d->base->data_dir);
	if (g_mkdir_with_parents(e->archive_dir, 0750) < 0) {
		cn_log_error("edge", "cannot create archive_dir '%s': %s", e->archive_dir, strerror(errno));
		return -errno;
	}
	if ((rc = edge_index_open(e->index_path, &e->ix)) < 0)
		return rc;
	struct edge_recover_stats rs;
	if ((rc = edge_recover(e->archive_dir, e->ix, &rs)) < 0) {
		cn_log_error("edge", "archive recovery failed: %s", cn_strerror(rc));
		return rc;
	}
	/* Before any thread appends an event: the bound, and the position central has acked
	 * (the uplink's), decide what may be pruned. */
	if ((rc = edge_outbox_start(e)) < 0)
		return rc;
	if (e->conf->central_url[0] && (rc = edge_uplink_start(e)) < 0)
		return rc;
	if ((rc = edge_api_write_admin_token(e)) < 0) {
		cn_log_error("edge", "cannot write the admin token: %s", cn_strerror(rc));
		return rc;
	}
	char tmp[600];
	snprintf(tmp, sizeof(tmp), "%.500s/tmp", d->base->data_dir);
	if ((rc = edge_export_init(&e->exporter, &d->loop, d->http, e->archive_dir, e->index_path, tmp)) < 0)
		return rc;
	if ((rc = edge_api_register(e)) < 0 || (rc = edge_push_register(e)) < 0 ||
	    (rc = edge_whep_start(e, &e->whep)) < 0 || (rc = edge_relay_start(e)) < 0)
		return rc;
	memset(&opts, 0, sizeof(opts));
	snprintf(opts.archive_dir, sizeof(opts.archive_dir), "%s", e->archive_dir);
	snprintf(opts.index_path, sizeof(opts.index_path), "%s", e->index_path);
	opts.segment_ms = e->conf->segment_duration;
	opts.direct_io = e->conf->archive_direct_io;
	opts.timeout_ms = e->conf->rtsp_timeout;
	opts.backoff_max_ms = e->conf->reconnect_max;
	opts.batch_ms = e->conf->ingest_batch;
	opts.batch_idle_ms = e->conf->ingest_batch_idle;
	opts.analytics = &e->analytics;
	if ((rc = edge_analytics_start(&e->analytics, e->conf->analytics_listen, e->conf->analytics_publish,
				       e->index_path, e->conf->analytics_silence)) < 0)
		return rc;
	if ((rc = edge_retention_start(&e->retention, e->archive_dir, e->index_path)) < 0)
		return rc;
	if ((rc = edge_cameras_start(&e->cams, &d->loop, e->cameras_file, &opts, cameras_applied,
				     &e->analytics)) < 0)
		return rc;
	if ((rc = cn_metrics_add_collector(edge_analytics_metrics, &e->analytics)) < 0)
		return rc;
	retention_tick(e);
	e->retention_timer = cn_loop_every(&d->loop, (unsigned)e->conf->retention_interval,
					   retention_tick, e);
	if ((rc = cn_metrics_add_collector(edge_retention_metrics, &e->retention)) < 0)
		return rc;
	return cn_metrics_add_collector(edge_cameras_metrics, &e->cams);
}

static void edge_stop(struct cn_daemon *d)
{
	struct edge *e = d->app;

	edge_relay_stop(e);
	edge_uplink_stop(e);
	edge_whep_stop(e->whep);
	e->whep = NULL;
	cn_metrics_remove_collector(edge_cameras_metrics, &e->cams);
	cn_metrics_remove_collector(edge_retention_metrics, &e->retention);
	if (e->retention_timer)
		g_source_remove(e->retention_timer);
	e->retention_timer = 0;
	cn_metrics_remove_collector(edge_analytics_metrics, &e->analytics);
	edge_cameras_stop(&e->cams);
	edge_analytics_stop(&e->analytics);
	edge_retention_stop(&e->retention);
	edge_export_shutdown(&e->exporter);
	edge_outbox_stop(e);
	edge_index_close(e->ix);
	e->ix = NULL;
}

int main(int argc, char **argv)
{
	struct edge_conf conf = { 0 };

	/* Two threads per camera would each get a malloc arena holding freed buffers;
	 * a few shared arenas keep the resident size per camera small. */
	mallopt(M_ARENA_MAX, 4);
	edge_avlog_install();
	struct edge e = { 0 };
	struct cn_daemon d = {
		.component = "edge",
		.table = edge_directives,
		.ntable = sizeof(edge_directives) / sizeof(edge_directives[0]),
		.conf = &conf,
		.start = edge_start,
		.stop = edge_stop,
		.app = &e,
	};

	return cn_daemon_main(&d, argc, argv);
}
