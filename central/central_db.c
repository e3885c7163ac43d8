/* central_db.c: libpq connection pool: worker threads take jobs from a bounded queue. */
#include "central_db.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_queue.h"

#define DB_MAX_WORKERS 64

struct central_db {
	char *conninfo;
	struct cn_queue *jobs; /* loop -> workers */
	struct cn_queue *done; /* workers -> loop */
	pthread_t threads[DB_MAX_WORKERS];
	int nthreads;
};

static struct cn_metric m_jobs = CN_METRIC_INIT(
	"canopy_central_db_jobs_total", CN_METRIC_COUNTER, "database jobs run by the pool");
static struct cn_metric m_job_errors = CN_METRIC_INIT(
	"canopy_central_db_job_errors_total", CN_METRIC_COUNTER,
	"database jobs that failed (connection lost, SQL error)");
static struct cn_metric m_connect_errors = CN_METRIC_INIT(
	"canopy_central_db_connect_errors_total", CN_METRIC_COUNTER,
	"failed attempts to connect to PostgreSQL");
static struct cn_metric m_busy = CN_METRIC_INIT(
	"canopy_central_db_rejected_total", CN_METRIC_COUNTER,
	"jobs refused because the database queue was full");

PGconn *central_db_connect(const char *conninfo, char *err, size_t cap)
{
	PGconn *pg = PQconnectdb(conninfo);

	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		const char *msg = pg ? PQerrorMessage(pg) : "out of memory";
		size_t n = strlen(msg);

		while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			n--;
		cn_metric_add(&m_connect_errors, 1);
		if (err && cap)
			snprintf(err, cap, "cannot connect to PostgreSQL: %.*s", (int)n, msg);
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

const char *central_db_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s ? s : "";
}

int central_db_exec(PGconn *pg, const char *sql, int nparams, const char *const *params,
		    PGresult **res, char *err, size_t cap)
{
	PGresult *r = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		*res = r;
		return 0;
	}
	{
		const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;

		if (!msg)
			msg = PQerrorMessage(pg);
		cn_fail(-EIO, err, cap, "%s", msg ? msg : "query failed");
	}
	*res = NULL;
	PQclear(r);
	return -EIO;
}

int central_db_run(PGconn *pg, const char *sql, int nparams, const char *const *params,
		   char *err, size_t cap)
{
	PGresult *r;
	int rc = central_db_exec(pg, sql, nparams, params, &r, err, cap);

	if (rc == 0)
		PQclear(r);
	return rc;
}

/* A server restart closes idle connections; libpq only notices at the next query, which
 * would then fail. The socket of an idle connection is readable only then (a FATAL
 * message or end of file), so look before sending: a query is never sent twice. */
static bool idle_conn_lost(PGconn *pg)
{
	struct pollfd p = { .fd = PQsocket(pg), .events = POLLIN };

	if (p.fd < 0)
		return true;
	if (poll(&p, 1, 0) <= 0)
		return false;
	return !PQconsumeInput(pg) || PQstatus(pg) != CONNECTION_OK;
}

static void *worker(void *arg)
{
	struct central_db *db = arg;
	PGconn *pg = NULL;
	void *item;

	while (cn_queue_pop(db->jobs, -1, &item) == 0) {
		struct central_job *j = item;

		if (pg && (PQstatus(pg) != CONNECTION_OK || idle_conn_lost(pg))) {
			PQreset(pg);
			if (PQstatus(pg) != CONNECTION_OK) {
				PQfinish(pg);
				pg = NULL;
			}
		}
		if (!pg)
			pg = central_db_connect(db->conninfo, j->err, sizeof(j->err));
		if (!pg) {
			j->rc = -ECONNREFUSED;
		} else {
			j->err[0] = '\0';
			j->rc = j->run(pg, j);
			/* A job that failed inside a transaction must not leave it open. */
			if (PQtransactionStatus(pg) != PQTRANS_IDLE) {
				PGresult *r = PQexec(pg, "ROLLBACK");

				PQclear(r);
			}
		}
		cn_metric_add(&m_jobs, 1);
		if (j->rc < 0)
			cn_metric_add(&m_job_errors, 1);
		while (cn_queue_push(db->done, j) == CN_E_FULL)
			g_usleep(1000); /* the loop drains; dropping a finished job would leak it */
	}
	PQfinish(pg);
	return NULL;
}

static void deliver(void *item, void *arg)
{
	struct central_job *j = item;

	(void)arg;
	j->done(j);
}

static void cancel_job(void *item)
{
	struct central_job *j = item;

	j->rc = -ECANCELED;
	j->done(j);
}

int central_db_open(struct cn_loop *l, const char *conninfo, int nworkers, size_t queue_cap,
		    struct central_db **out)
{
	struct central_db *db;
	int rc, i;

	if (nworkers < 1 || nworkers > DB_MAX_WORKERS)
		return -EINVAL;
	if (!(db = calloc(1, sizeof(*db))) || !(db->conninfo = strdup(conninfo))) {
		free(db);
		return -ENOMEM;
	}
	if ((rc = cn_queue_new("db_jobs", queue_cap, NULL, NULL, NULL, cancel_job, &db->jobs)) < 0)
		goto out_free;
	/* Room for every job that can be in flight, so workers never wait on the loop long. */
	rc = cn_queue_new("db_done", queue_cap + (size_t)nworkers, l->ctx, deliver, db, cancel_job,
			  &db->done);
	if (rc < 0)
		goto out_free_jobs;
	for (i = 0; i < nworkers; i++) {
		if (pthread_create(&db->threads[i], NULL, worker, db) != 0) {
			rc = -EAGAIN;
			goto out_stop;
		}
		db->nthreads++;
	}
	cn_metrics_register(&m_jobs);
	cn_metrics_register(&m_job_errors);
	cn_metrics_register(&m_connect_errors);
	cn_metrics_register(&m_busy);
	*out = db;
	return 0;
out_stop:
	cn_queue_close(db->jobs);
	for (i = 0; i < db->nthreads; i++)
		pthread_join(db->threads[i], NULL);
	cn_queue_free(db->done);
out_free_jobs:
	cn_queue_free(db->jobs);
out_free:
	free(db->conninfo);
	free(db);
	return rc;
}

int central_db_submit(struct central_db *db, struct central_job *j)
{
	int rc = cn_queue_push(db->jobs, j);

	if (rc == CN_E_FULL)
		cn_metric_add(&m_busy, 1);
	return rc;
}

void central_db_close(struct central_db *db)
{
	int i;

	if (!db)
		return;
	cn_queue_close(db->jobs);
	for (i = 0; i < db->nthreads; i++)
		pthread_join(db->threads[i], NULL);
	cn_queue_free(db->jobs); /* cancels what was never taken */
	cn_queue_free(db->done); /* finished jobs the loop did not deliver: done with -ECANCELED */
	free(db->conninfo);
	free(db);
}
