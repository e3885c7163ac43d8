/* central_migrations.h: the SQL migrations compiled into canopy-central (generated table). */
#ifndef CENTRAL_MIGRATIONS_H
#define CENTRAL_MIGRATIONS_H

#include <libpq-fe.h>

struct central_migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct central_migration central_migrations[];
extern const unsigned central_nmigrations;

/* Brings the database to the newest schema this binary knows, in one transaction under an
 * advisory lock (several instances may start at once). Refuses (CN_E_CONFIG, reason in
 * err) a database whose schema is newer than this binary. *from and *to get the versions before and after. */
int central_migrate(PGconn *pg, int *from, int *to, char *err, size_t cap);

#endif
