/* central_db.h: a small pool of libpq connections on worker threads; jobs in, results back on the loop. */
#ifndef CENTRAL_DB_H
#define CENTRAL_DB_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "cn_loop.h"

struct central_db;

/* One unit of database work. run executes on a worker thread with a connection that is
 * open (or it is not called: rc is then -ECONNREFUSED); done runs on the loop afterwards
 * and owns the job. */
struct central_job {
	int (*run)(PGconn *pg, struct central_job *j);
	void (*done)(struct central_job *j);
	int rc;
	char err[256]; /* why run failed, for logs and problem details */
};

int central_db_open(struct cn_loop *l, const char *conninfo, int nworkers, size_t queue_cap,
		    struct central_db **out);
/* Never blocks. CN_E_FULL when the queue is full (caller answers 503); the caller keeps j then. */
int central_db_submit(struct central_db *db, struct central_job *j);
/* Stops the workers (finishing jobs in hand) and frees the pool; jobs still queued get
 * done with rc -ECANCELED. */
void central_db_close(struct central_db *db);

/* Helpers for run functions. */

/* Runs sql with text parameters (NULL = SQL NULL). On success *res holds the result
 * (PGRES_TUPLES_OK or PGRES_COMMAND_OK) for the caller to PQclear; on failure returns a
 * negative error with the server's message in err. */
int central_db_exec(PGconn *pg, const char *sql, int nparams, const char *const *params,
		    PGresult **res, char *err, size_t cap);
/* The same for statements whose result is not needed. */
int central_db_run(PGconn *pg, const char *sql, int nparams, const char *const *params,
		   char *err, size_t cap);
/* Opens a blocking connection (start-up work, tests); logs and returns NULL on failure. */
PGconn *central_db_connect(const char *conninfo, char *err, size_t cap);

/* SQLSTATE of a failed result, "" when none. */
const char *central_db_sqlstate(const PGresult *res);

#endif
