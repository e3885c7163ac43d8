/* edge_main.c: canopy-edge entry point and its configuration table (site agent: records cameras, keeps working offline). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cn_err.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "edge.h"
#include "edge_recover.h"

static const struct cn_conf_directive edge_directives[] = {
	CN_DAEMON_DIRECTIVES(struct edge_conf, "edge", "/var/lib/canopy-edge", "8480"),
	{ "cameras_file", CN_CONF_STRING, offsetof(struct edge_conf, cameras_file), 0, 1000, "", NULL,
	  "cameras document (JSON, schemas/edge-cameras.schema.json), re-read when it changes; empty: data_dir/cameras.json" },
	{ "archive_dir", CN_CONF_STRING, offsetof(struct edge_conf, archive_dir), 0, 400, "", NULL,
	  "where segment files go, <camera>/<date>/<time>.mp4; empty: data_dir/archive" },
	{ "segment_duration", CN_CONF_DURATION, offsetof(struct edge_conf, segment_duration), 2000,
	  3600000, "60s", NULL, "length of a segment file (cut at the next keyframe)" },
	{ "rtsp_timeout", CN_CONF_DURATION, offsetof(struct edge_conf, rtsp_timeout), 1000, 120000,
	  "10s", NULL, "a camera silent this long (connect, describe or between packets) is unreachable" },
	{ "reconnect_max", CN_CONF_DURATION, offsetof(struct edge_conf, reconnect_max), 1000, 600000,
	  "30s", NULL, "cap of the exponential reconnect backoff" },
};

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
	if ((rc = edge_api_write_admin_token(e)) < 0) {
		cn_log_error("edge", "cannot write the admin token: %s", cn_strerror(rc));
		return rc;
	}
	if ((rc = edge_api_register(e)) < 0)
		return rc;
	memset(&opts, 0, sizeof(opts));
	snprintf(opts.archive_dir, sizeof(opts.archive_dir), "%s", e->archive_dir);
	snprintf(opts.index_path, sizeof(opts.index_path), "%s", e->index_path);
	opts.segment_ms = e->conf->segment_duration;
	opts.timeout_ms = e->conf->rtsp_timeout;
	opts.backoff_max_ms = e->conf->reconnect_max;
	if ((rc = edge_cameras_start(&e->cams, &d->loop, e->cameras_file, &opts)) < 0)
		return rc;
	return cn_metrics_add_collector(edge_cameras_metrics, &e->cams);
}

static void edge_stop(struct cn_daemon *d)
{
	struct edge *e = d->app;

	cn_metrics_remove_collector(edge_cameras_metrics, &e->cams);
	edge_cameras_stop(&e->cams);
	edge_index_close(e->ix);
	e->ix = NULL;
}

int main(int argc, char **argv)
{
	struct edge_conf conf = { 0 };
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
