/* central_bootstrap.h: first-start work on the database shared by all central instances. */
#ifndef CENTRAL_BOOTSTRAP_H
#define CENTRAL_BOOTSTRAP_H

#include <stddef.h>

#include <libpq-fe.h>

#include "central.h"

/* System tenant, token signing key (loaded into c), first administrator. */
int central_bootstrap(PGconn *pg, struct central *c, char *err, size_t cap);
/* Value of secret name, created from fresh when absent (first instance wins). */
int central_secret_get_or_create(PGconn *pg, const char *name, const char *fresh, char **out,
				 char *err, size_t cap);

#endif
