/* edge_outbox.c: the event outbox's loop side: overflow reports on a timer, metrics, status for the API. */
#include "edge_outbox.h"

#include <stdio.h>

#include "cn_err.h"
#include "cn_json.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_time.h"
#include "edge.h"
#include "edge_index.h"

/* Drops that stop are still reported within this of the minute's end. */
#define REPORT_CHECK_MS 5000

static const char *const policy_names[] = { "drop_oldest", "drop_newest" };

static gboolean report_tick(gpointer arg)
{
	struct edge *e = arg;
	bool written;

	/* Appends happen on every thread; only this timer notices that drops have stopped. */
	edge_index_outbox_report(e->ix, cn_time_wall_ms(), &written);
	return G_SOURCE_CONTINUE;
}

static int outbox_metrics(struct cn_buf *out, void *arg)
{
	struct edge *e = arg;
	struct edge_outbox_stats s;
	int rc;

	if (!e->ix || edge_index_outbox_stats(e->ix, &s) < 0)
		return 0; /* the rest of /metrics is still worth serving */
	rc = cn_metrics_family(out, "canopy_edge_outbox_bytes", "gauge",
			       "Bytes of event payloads in the outbox, delivered history included.");
	rc |= cn_buf_printf(out, "canopy_edge_outbox_bytes %lld\n", (long long)s.bytes);
	rc |= cn_metrics_family(out, "canopy_edge_outbox_max_bytes", "gauge",
				"The outbox bound (event_outbox_max).");
	rc |= cn_buf_printf(out, "canopy_edge_outbox_max_bytes %lld\n", (long long)s.max_bytes);
	rc |= cn_metrics_family(out, "canopy_edge_outbox_events", "gauge",
				"Events in the outbox, delivered history included.");
	rc |= cn_buf_printf(out, "canopy_edge_outbox_events %lld\n", (long long)s.events);
	rc |= cn_metrics_family(out, "canopy_edge_outbox_undelivered", "gauge",
				"Events central has not acknowledged yet.");
	rc |= cn_buf_printf(out, "canopy_edge_outbox_undelivered %lld\n", (long long)s.undelivered);
	rc |= cn_metrics_family(out, "canopy_edge_outbox_dropped_total", "counter",
				"Undelivered events lost to event_outbox_overflow (kept in the index: "
				"survives restarts).");
	rc |= cn_buf_printf(out, "canopy_edge_outbox_dropped_total{reason=\"overflow\"} %lld\n",
			    (long long)s.dropped_total);
	rc |= cn_metrics_family(out, "canopy_edge_outbox_pruned_total", "counter",
				"Delivered events deleted from the outbox history to make room.");
	rc |= cn_buf_printf(out, "canopy_edge_outbox_pruned_total %lld\n", (long long)s.pruned_total);
	rc |= cn_metrics_family(out, "canopy_edge_outbox_overflow_reports_total", "counter",
				"outbox.overflow events written.");
	rc |= cn_buf_printf(out, "canopy_edge_outbox_overflow_reports_total %lld\n",
			    (long long)s.reports_total);
	return rc ? -ENOBUFS : 0;
}

int edge_outbox_start(struct edge *e)
{
	int rc;

	if ((rc = edge_index_outbox_configure(e->ix, e->conf->event_outbox_max,
					      (enum edge_outbox_policy)e->conf->event_outbox_overflow,
					      e->conf->central_url[0] != '\0')) < 0) {
		cn_log_error("edge", "cannot configure the event outbox: %s", cn_strerror(rc));
		return rc;
	}
	if ((rc = cn_metrics_add_collector(outbox_metrics, e)) < 0)
		return rc;
	e->outbox_timer = cn_loop_every(&e->d->loop, REPORT_CHECK_MS, report_tick, e);
	return 0;
}

int edge_outbox_describe(struct edge *e, cJSON *obj)
{
	struct edge_outbox_stats s;
	char ts[40];
	cJSON *o;
	int rc;

	if ((rc = edge_index_outbox_stats(e->ix, &s)) < 0)
		return rc;
	if (!(o = cJSON_AddObjectToObject(obj, "outbox")))
		return -ENOMEM;
	cn_json_add_i64(o, "bytes", s.bytes);
	cn_json_add_i64(o, "max_bytes", s.max_bytes);
	cn_json_add_i64(o, "events", s.events);
	cn_json_add_i64(o, "undelivered", s.undelivered);
	if (s.oldest_undelivered_ms && cn_time_format_rfc3339(s.oldest_undelivered_ms, ts, sizeof(ts)) == 0)
		cJSON_AddStringToObject(o, "oldest_undelivered", ts);
	else
		cJSON_AddNullToObject(o, "oldest_undelivered");
	cn_json_add_i64(o, "acked_seq", s.acked_seq);
	cn_json_add_i64(o, "last_seq", s.last_seq);
	cJSON_AddStringToObject(o, "overflow", policy_names[s.policy]);
	cJSON_AddBoolToObject(o, "delivering", s.delivering);
	cn_json_add_i64(o, "dropped", s.dropped_total);
	cn_json_add_i64(o, "dropped_unreported", s.pending_dropped);
	cn_json_add_i64(o, "pruned", s.pruned_total);
	cn_json_add_i64(o, "overflow_reports", s.reports_total);
	return 0;
}

void edge_outbox_stop(struct edge *e)
{
	cn_metrics_remove_collector(outbox_metrics, e);
	if (e->outbox_timer)
		g_source_remove(e->outbox_timer);
	e->outbox_timer = 0;
}
