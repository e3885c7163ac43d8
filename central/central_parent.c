/* central_parent.c: this central as a child of a parent central: mirrors its tree upwards, applies configuration from above. */
#include "central_uplink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "central_alarms.h"
#include "central_db.h"
#include "cn_json.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_uplink.h"
#include "cn_version.h"

#define INVENTORY_POLL_MS 1000

struct central_parent {
	struct central *c;
	struct cn_uplink *link;
	char state_path[1100];
	char *last_inventory; /* what the parent has, to send only changes */
	bool inventory_busy;
	int64_t applied_version;
	guint poll_id;
	bool up_busy; /* alarms sent up, ack awaited (or being read) */
	bool stopping;
};

struct pjob {
	struct central_job job;
	struct central_parent *p;
	char *text;
	int64_t version;
	bool force;
};

static void pjob_free(struct pjob *j)
{
	free(j->text);
	free(j);
}

/* ---- alarms shared with the parent: ours go up (escalation), its changes come down ---- */

static struct cn_metric m_alarms_up = CN_METRIC_INIT(
	"canopy_central_parent_alarms_sent_total", CN_METRIC_COUNTER,
	"alarms (and their later changes) forwarded to the parent central");
static struct cn_metric m_states_down = CN_METRIC_INIT(
	"canopy_central_parent_alarm_states_total", CN_METRIC_COUNTER,
	"alarm state changes received from the parent central");

static int run_up_read(PGconn *pg, struct central_job *job)
{
	struct pjob *j = (struct pjob *)job;
	PGresult *r;
	int rc;

	if ((rc = central_db_exec(pg,
				  "SELECT coalesce(max(seq), 0), coalesce(json_agg(body ORDER BY seq), '[]')"
				  " FROM (SELECT seq, body FROM parent_outbox ORDER BY seq LIMIT 200) x",
				  0, NULL, &r, job->err, sizeof(job->err))) < 0)
		return rc;
	j->version = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	j->text = strdup(PQgetvalue(r, 0, 1));
	PQclear(r);
	return j->text ? 0 : -ENOMEM;
}

static void done_up_read(struct central_job *job)
{
	struct pjob *j = (struct pjob *)job;
	struct central_parent *p = j->p;
	cJSON *items = NULL, *b = NULL;

	if (p->stopping) {
		pjob_free(j);
		return;
	}
	if (job->rc < 0 || j->version == 0 || !cn_uplink_ready(p->link) ||
	    cn_json_parse(j->text, strlen(j->text), CN_ENV_MAX_BYTES, 16, &items) < 0 ||
	    !(b = cJSON_CreateObject())) {
		if (job->rc < 0 && job->rc != -ECANCELED)
			cn_log_warn("parent", "alarms for the parent not read: %s", job->err);
		cJSON_Delete(items);
		p->up_busy = false;
		pjob_free(j);
		return;
	}
	cn_metric_add(&m_alarms_up, cJSON_GetArraySize(items));
	cn_json_add_i64(b, "seq", j->version);
	cJSON_AddItemToObject(b, "items", items);
	/* Busy until the parent acknowledges; a lost link starts over (on_down). */
	if (cn_uplink_send(p->link, "alarms", b) < 0)
		p->up_busy = false;
	pjob_free(j);
}

static void drain_up(struct central_parent *p)
{
	struct pjob *j;

	if (p->up_busy || !cn_uplink_ready(p->link) || !(j = calloc(1, sizeof(*j))))
		return;
	j->job.run = run_up_read;
	j->job.done = done_up_read;
	j->p = p;
	p->up_busy = true;
	if (central_db_submit(p->c->db, &j->job) < 0) {
		p->up_busy = false;
		pjob_free(j);
	}
}

/* text: the SQL; version: the sequence acknowledged or to acknowledge. */
static int run_seq_sql(PGconn *pg, struct central_job *job)
{
	struct pjob *j = (struct pjob *)job;
	char v[24];
	const char *prm[1] = { v };

	snprintf(v, sizeof(v), "%lld", (long long)j->version);
	return central_db_run(pg, j->text, 1, prm, job->err, sizeof(job->err));
}

static void done_up_ack(struct central_job *job)
{
	struct pjob *j = (struct pjob *)job;
	struct central_parent *p = j->p;

	if (!p->stopping) {
		p->up_busy = false;
		if (job->rc == 0)
			drain_up(p);
	}
	pjob_free(j);
}

static int run_states(PGconn *pg, struct central_job *job)
{
	struct pjob *j = (struct pjob *)job;
	const char *prm[1] = { j->text };

	return central_db_run(pg, "SELECT parent_alarm_states($1::jsonb)", 1, prm, job->err,
			      sizeof(job->err));
}

static void done_states(struct central_job *job)
{
	struct pjob *j = (struct pjob *)job;
	struct central_parent *p = j->p;
	cJSON *b;

	if (p->stopping) {
		pjob_free(j);
		return;
	}
	if (job->rc < 0) {
		/* Not acknowledged: the parent sends them again. */
		cn_log_warn("parent", "alarm states from the parent not applied: %s", job->err);
	} else if ((b = cJSON_CreateObject())) {
		cn_json_add_i64(b, "seq", j->version);
		cn_uplink_send(p->link, "alarms.state.ack", b);
		central_alarms_kick(p->c);
	}
	pjob_free(j);
}

static void submit_pjob(struct central_parent *p, int (*run)(PGconn *, struct central_job *),
			void (*done)(struct central_job *), int64_t seq, char *text)
{
	struct pjob *j = calloc(1, sizeof(*j));

	if (!j || !text) {
		free(j);
		free(text);
		return;
	}
	j->job.run = run;
	j->job.done = done;
	j->p = p;
	j->version = seq;
	j->text = text;
	if (central_db_submit(p->c->db, &j->job) < 0)
		pjob_free(j);
}

static void alarm_message(struct central_parent *p, const struct cn_envelope *env)
{
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(env->body, "items");
	int64_t seq;

	if (cn_json_get_i64(env->body, "seq", 1, CN_JSON_MAX_SAFE_INT, &seq) < 0) {
		cn_log_warn("parent", "%s without seq: ignored", env->type);
		return;
	}
	if (strcmp(env->type, "alarms.ack") == 0) {
		submit_pjob(p, run_seq_sql, done_up_ack, seq,
			    strdup("DELETE FROM parent_outbox WHERE seq <= $1::bigint"));
		return;
	}
	if (!cJSON_IsArray(items)) {
		cn_log_warn("parent", "alarms.state without items: ignored");
		return;
	}
	cn_metric_add(&m_states_down, cJSON_GetArraySize(items));
	submit_pjob(p, run_states, done_states, seq, cJSON_PrintUnformatted(items));
}

static int run_inventory(PGconn *pg, struct central_job *job)
{
	struct pjob *j = (struct pjob *)job;
	PGresult *r;
	int rc;

	if ((rc = central_db_exec(pg, "SELECT uplink_my_inventory()", 0, NULL, &r, job->err,
				  sizeof(job->err))) < 0)
		return rc;
	j->text = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return j->text ? 0 : -ENOMEM;
}

static void done_inventory(struct central_job *job)
{
	struct pjob *j = (struct pjob *)job;
	struct central_parent *p = j->p;
	cJSON *doc = NULL;

	if (p->stopping) {
		pjob_free(j);
		return;
	}
	p->inventory_busy = false;
	if (job->rc < 0) {
		cn_log_warn("parent", "inventory not read: %s", job->err);
	} else if (cn_uplink_ready(p->link) &&
		   (j->force || !p->last_inventory || strcmp(p->last_inventory, j->text) != 0) &&
		   cn_json_parse(j->text, strlen(j->text), CN_ENV_MAX_BYTES, 16, &doc) == 0 &&
		   cn_uplink_send(p->link, "inventory", doc) == 0) {
		free(p->last_inventory);
		p->last_inventory = j->text;
		j->text = NULL;
	}
	pjob_free(j);
}

static void inventory(struct central_parent *p, bool force)
{
	struct pjob *j;

	if (p->inventory_busy || !cn_uplink_ready(p->link) || !(j = calloc(1, sizeof(*j))))
		return;
	j->job.run = run_inventory;
	j->job.done = done_inventory;
	j->p = p;
	j->force = force;
	p->inventory_busy = true;
	if (central_db_submit(p->c->db, &j->job) < 0) {
		p->inventory_busy = false;
		pjob_free(j);
	}
}

static gboolean poll_cb(gpointer arg)
{
	inventory(arg, false);
	drain_up(arg);
	return G_SOURCE_CONTINUE;
}

static int run_apply(PGconn *pg, struct central_job *job)
{
	struct pjob *j = (struct pjob *)job;
	const char *p[1] = { j->text };
	int rc;

	if ((rc = central_db_run(pg, "BEGIN", 0, NULL, job->err, sizeof(job->err))) < 0 ||
	    (rc = central_db_run(pg, "SELECT uplink_apply_parent_config($1::jsonb)", 1, p, job->err,
				 sizeof(job->err))) < 0)
		return rc;
	return central_db_run(pg, "COMMIT", 0, NULL, job->err, sizeof(job->err));
}

static void done_apply(struct central_job *job)
{
	struct pjob *j = (struct pjob *)job;
	struct central_parent *p = j->p;
	cJSON *b;

	if (p->stopping) {
		pjob_free(j);
		return;
	}
	if ((b = cJSON_CreateObject()) && cn_json_add_i64(b, "version", j->version) &&
	    cJSON_AddBoolToObject(b, "ok", job->rc == 0) &&
	    cJSON_AddStringToObject(b, "error", job->rc == 0 ? "" : job->err)) {
		if (job->rc == 0)
			p->applied_version = j->version;
		else
			cn_log_error("parent", "configuration %lld from the parent not applied: %s",
				     (long long)j->version, job->err);
		cn_uplink_send(p->link, "config.ack", b);
	} else {
		cJSON_Delete(b);
	}
	pjob_free(j);
}

static void on_ready(struct cn_uplink *u, void *arg)
{
	struct central_parent *p = arg;

	(void)u;
	inventory(p, true);
	drain_up(p);
}

static void on_message(struct cn_uplink *u, const struct cn_envelope *env, void *arg)
{
	struct central_parent *p = arg;
	const cJSON *doc = cJSON_GetObjectItemCaseSensitive(env->body, "doc");
	struct pjob *j;
	int64_t v;

	(void)u;
	if (strcmp(env->type, "alarms.ack") == 0 || strcmp(env->type, "alarms.state") == 0) {
		alarm_message(p, env);
		return;
	}
	if (strcmp(env->type, "config") != 0)
		return;
	if (cn_json_get_i64(env->body, "version", 0, CN_JSON_MAX_SAFE_INT, &v) < 0 ||
	    !cJSON_IsObject(doc)) {
		cn_log_warn("parent", "config message without version and doc: ignored");
		return;
	}
	if (!(j = calloc(1, sizeof(*j))))
		return;
	j->job.run = run_apply;
	j->job.done = done_apply;
	j->p = p;
	j->version = v;
	if (!(j->text = cJSON_PrintUnformatted(doc)) || central_db_submit(p->c->db, &j->job) < 0)
		pjob_free(j);
}

static void on_down(struct cn_uplink *u, void *arg)
{
	struct central_parent *p = arg;

	(void)u;
	free(p->last_inventory); /* the next link starts with a full inventory */
	p->last_inventory = NULL;
	p->up_busy = false; /* unacknowledged alarms are sent again on the next link */
}

static void heartbeat(struct cn_uplink *u, cJSON *body, void *arg)
{
	struct central_parent *p = arg;

	(void)u;
	cn_json_add_i64(body, "applied_version", p->applied_version);
}

static const struct cn_uplink_ops parent_ops = {
	.on_ready = on_ready,
	.on_message = on_message,
	.on_down = on_down,
	.heartbeat = heartbeat,
};

int central_parent_start(struct central *c)
{
	struct central_parent *p = calloc(1, sizeof(*p));
	struct cn_uplink_conf uc = {
		.url = c->conf->parent_url,
		.ca_path = c->conf->parent_ca,
		.enrol_token = c->conf->parent_enrol_token,
		.kind = "central",
		.name = c->d->base->node_name,
		.software = "canopy-central " CANOPY_VERSION,
		.key = c->d->node_key,
	};
	int rc;

	if (!p)
		return -ENOMEM;
	c->parent = p;
	p->c = c;
	snprintf(p->state_path, sizeof(p->state_path), "%s/uplink.json", c->d->base->data_dir);
	uc.state_path = p->state_path;
	if ((rc = cn_uplink_start(&c->d->loop, &uc, &parent_ops, p, &p->link)) < 0)
		return rc;
	cn_metrics_add_collector(cn_uplink_metrics, p->link);
	cn_metrics_register(&m_alarms_up);
	cn_metrics_register(&m_states_down);
	p->poll_id = g_timeout_add(INVENTORY_POLL_MS, poll_cb, p);
	return 0;
}

void central_parent_quiesce(struct central *c)
{
	struct central_parent *p = c->parent;

	if (!p)
		return;
	p->stopping = true;
	if (p->poll_id)
		g_source_remove(p->poll_id);
	p->poll_id = 0;
}

void central_parent_stop(struct central *c)
{
	struct central_parent *p = c->parent;

	if (!p)
		return;
	central_parent_quiesce(c);
	if (p->link) {
		cn_metrics_remove_collector(cn_uplink_metrics, p->link);
		cn_uplink_stop(p->link);
	}
	free(p->last_inventory);
	free(p);
	c->parent = NULL;
}
