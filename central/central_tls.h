/* central_tls.h: central's small CA (shared by all instances through the database) and this instance's server certificate. */
#ifndef CENTRAL_TLS_H
#define CENTRAL_TLS_H

#include <stddef.h>

#include <libpq-fe.h>

#include "central.h"

/* Loads (or, first of all instances, creates) the CA, issues this instance's server
 * certificate for conf->tls_names, writes ca.pem, tls.crt and tls.key into data_dir and
 * points c->tls at them. */
int central_tls_prepare(PGconn *pg, struct central *c, char *err, size_t cap);

#endif
