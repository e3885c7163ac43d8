/* central_migrate.c: applies the compiled-in schema migrations at start-up, newest-schema guard included. */
#include "central_migrations.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "central_db.h"
#include "cn_err.h"
#include "cn_log.h"

/* Any constant: instances starting together queue on it instead of racing. */
#define MIGRATE_LOCK_KEY "7215530871"

int central_migrate(PGconn *pg, int *from, int *to, char *err, size_t cap)
{
	PGresult *r = NULL;
	int rc, current = 0, newest = 0;
	unsigned i;

	for (i = 0; i < central_nmigrations; i++)
		if (central_migrations[i].version > newest)
			newest = central_migrations[i].version;
	if ((rc = central_db_run(pg, "BEGIN", 0, NULL, err, cap)) < 0)
		return rc;
	if ((rc = central_db_run(pg, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")", 0, NULL,
				 err, cap)) < 0 ||
	    (rc = central_db_run(pg,
				 "CREATE TABLE IF NOT EXISTS schema_migrations ("
				 " version integer PRIMARY KEY, name text NOT NULL,"
				 " applied_at timestamptz NOT NULL DEFAULT now())",
				 0, NULL, err, cap)) < 0 ||
	    (rc = central_db_exec(pg, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0,
				  NULL, &r, err, cap)) < 0)
		goto out_rollback;
	current = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (current > newest) {
		rc = cn_fail(CN_E_CONFIG, err, cap,
			     "database schema is version %d, newer than this canopy-central knows "
			     "(%d): upgrade canopy-central before starting it on this database",
			     current, newest);
		goto out_rollback;
	}
	for (i = 0; i < central_nmigrations; i++) {
		const struct central_migration *m = &central_migrations[i];
		char ver[16];
		const char *params[2] = { ver, m->name };
		PGresult *res;

		if (m->version <= current)
			continue;
		/* Simple query protocol: a migration file holds several statements. */
		res = PQexec(pg, m->sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = cn_fail(-EIO, err, cap, "migration %s failed: %s", m->name,
				     PQresultErrorMessage(res));
			PQclear(res);
			goto out_rollback;
		}
		PQclear(res);
		snprintf(ver, sizeof(ver), "%d", m->version);
		if ((rc = central_db_run(pg,
					 "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
					 2, params, err, cap)) < 0)
			goto out_rollback;
		cn_log_info("db", "applied migration %s", m->name);
	}
	if ((rc = central_db_run(pg, "COMMIT", 0, NULL, err, cap)) < 0)
		return rc;
	*from = current;
	*to = newest > current ? newest : current;
	return 0;
out_rollback:
	PQclear(PQexec(pg, "ROLLBACK"));
	return rc;
}
