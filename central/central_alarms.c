/* central_alarms.c: alarm timers (missed, auto-acknowledge, escalation) and retention of events, alarms and delivery logs. */
#include "central_alarms.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "central_db.h"
#include "central_webhook.h"
#include "cn_log.h"
#include "cn_metrics.h"

/* Rows one tick handles per kind; a full tick runs again at once. */
#define TICK_BATCH 500
#define RETENTION_MS (3600 * 1000)

struct central_alarms {
	struct central *c;
	guint tick_id, retention_id;
	bool tick_busy, tick_again;
	bool stopping;
};

struct ajob {
	struct central_job job;
	struct central_alarms *a;
	int64_t n;
	bool retention;
};

static struct cn_metric m_timer_changes = CN_METRIC_INIT(
	"canopy_central_alarm_timer_changes_total", CN_METRIC_COUNTER,
	"alarms changed by timers: missed, acknowledged automatically, escalated");
static struct cn_metric m_tick_failures = CN_METRIC_INIT(
	"canopy_central_alarm_tick_failures_total", CN_METRIC_COUNTER,
	"alarm timer passes that failed (database unreachable or full queue); retried next tick");
static struct cn_metric m_retention = CN_METRIC_INIT(
	"canopy_central_retention_deleted_total", CN_METRIC_COUNTER,
	"events, closed alarms and delivery log rows deleted by retention");

int central_alarms_prepare(PGconn *pg, struct central *c, char *err, size_t cap)
{
	const char *p[1] = { c->conf->parent_url };

	/* The SQL side forwards alarms up only when this central has somewhere to send them. */
	return central_db_run(pg,
			      "INSERT INTO central_secrets (name, value) VALUES ('parent_url', $1)"
			      " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
			      1, p, err, cap);
}

void central_alarms_kick(struct central *c)
{
	central_webhook_kick(c);
}

static int run_tick(PGconn *pg, struct central_job *job)
{
	struct ajob *j = (struct ajob *)job;
	char a[24], b[24];
	const char *p[2] = { a, b };
	PGresult *r;
	int rc;

	if (j->retention) {
		snprintf(a, sizeof(a), "%lld", (long long)j->a->c->conf->events_retention / 1000);
		snprintf(b, sizeof(b), "%lld", (long long)j->a->c->conf->delivery_log_retention / 1000);
		rc = central_db_exec(pg, "SELECT alarm_retention($1::bigint, $2::bigint)", 2, p, &r,
				     job->err, sizeof(job->err));
	} else {
		snprintf(a, sizeof(a), "%d", TICK_BATCH);
		rc = central_db_exec(pg, "SELECT alarm_tick($1::int)", 1, p, &r, job->err,
				     sizeof(job->err));
	}
	if (rc < 0)
		return rc;
	j->n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return 0;
}

static void tick(struct central_alarms *a);

static void done_tick(struct central_job *job)
{
	struct ajob *j = (struct ajob *)job;
	struct central_alarms *a = j->a;
	bool full = job->rc == 0 && !j->retention && j->n >= TICK_BATCH;

	if (a->stopping) {
		free(j);
		return;
	}
	if (j->retention) {
		if (job->rc < 0)
			cn_log_warn("alarms", "retention pass failed: %s", job->err);
		else if (j->n > 0)
			cn_metric_add(&m_retention, j->n);
		free(j);
		return;
	}
	a->tick_busy = false;
	if (job->rc < 0) {
		cn_metric_add(&m_tick_failures, 1);
		cn_log_warn("alarms", "alarm timers not run: %s", job->err);
	} else if (j->n > 0) {
		cn_metric_add(&m_timer_changes, j->n);
		central_alarms_kick(a->c);
	}
	free(j);
	if (full)
		a->tick_again = true;
	if (a->tick_again) {
		a->tick_again = false;
		tick(a);
	}
}

static int submit(struct central_alarms *a, bool retention)
{
	struct ajob *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->job.run = run_tick;
	j->job.done = done_tick;
	j->a = a;
	j->retention = retention;
	if (central_db_submit(a->c->db, &j->job) < 0) {
		free(j);
		return -EBUSY;
	}
	return 0;
}

static void tick(struct central_alarms *a)
{
	if (a->tick_busy) {
		a->tick_again = true;
		return;
	}
	if (submit(a, false) < 0) {
		cn_metric_add(&m_tick_failures, 1);
		return;
	}
	a->tick_busy = true;
}

static gboolean tick_cb(gpointer arg)
{
	tick(arg);
	return G_SOURCE_CONTINUE;
}

static gboolean retention_cb(gpointer arg)
{
	submit(arg, true);
	return G_SOURCE_CONTINUE;
}

int central_alarms_start(struct central *c)
{
	struct central_alarms *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->c = c;
	c->alarms = a;
	cn_metrics_register(&m_timer_changes);
	cn_metrics_register(&m_tick_failures);
	cn_metrics_register(&m_retention);
	a->tick_id = g_timeout_add((guint)c->conf->alarm_tick, tick_cb, a);
	a->retention_id = g_timeout_add(RETENTION_MS, retention_cb, a);
	submit(a, true); /* once at start: a central that was down catches up */
	return 0;
}

void central_alarms_quiesce(struct central *c)
{
	struct central_alarms *a = c->alarms;

	if (!a)
		return;
	a->stopping = true;
	if (a->tick_id)
		g_source_remove(a->tick_id);
	if (a->retention_id)
		g_source_remove(a->retention_id);
	a->tick_id = a->retention_id = 0;
}

void central_alarms_stop(struct central *c)
{
	central_alarms_quiesce(c);
	free(c->alarms);
	c->alarms = NULL;
}
