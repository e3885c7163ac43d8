/* central_tls.c: central's node CA kept in PostgreSQL, and the per-instance server certificate it signs. */
#include "central_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "central_bootstrap.h"
#include "cn_err.h"
#include "cn_log.h"
#include "cn_x509.h"

#define CA_DAYS 3650
#define SERVER_DAYS 397 /* the longest life browsers accept; re-issued at every start */
#define MAX_NAMES 16

static int split_names(char *list, const char **names, size_t *n)
{
	char *save = NULL, *tok;

	*n = 0;
	for (tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (*n == MAX_NAMES)
			return -E2BIG;
		names[(*n)++] = tok;
	}
	return *n ? 0 : -EINVAL;
}

int central_tls_prepare(PGconn *pg, struct central *c, char *err, size_t cap)
{
	struct cn_x509_pair fresh = { 0 }, ca = { 0 }, leaf = { 0 };
	const char *names[MAX_NAMES];
	char list[512], path[1100];
	const char *dir = c->d->base->data_dir;
	size_t n;
	int rc;

	cn_strlcpy(list, c->conf->tls_names, sizeof(list));
	if ((rc = split_names(list, names, &n)) < 0)
		return cn_fail(CN_E_CONFIG, err, cap, "'tls_names': needs 1 to %d names", MAX_NAMES);
	/* A fresh CA is offered; the database keeps whichever instance's came first. */
	if ((rc = cn_x509_ca_create("Canopy central CA", CA_DAYS, &fresh)) < 0) {
		cn_fail(rc, err, cap, "cannot create a CA: %s", cn_strerror(rc));
		goto out;
	}
	if ((rc = central_db_run(pg, "BEGIN", 0, NULL, err, cap)) < 0)
		goto out;
	if ((rc = central_secret_get_or_create(pg, "ca_cert", fresh.cert_pem, &ca.cert_pem, err,
					       cap)) < 0 ||
	    (rc = central_secret_get_or_create(pg, "ca_key", fresh.key_pem, &ca.key_pem, err,
					       cap)) < 0) {
		PQclear(PQexec(pg, "ROLLBACK"));
		goto out;
	}
	if ((rc = central_db_run(pg, "COMMIT", 0, NULL, err, cap)) < 0)
		goto out;
	if ((rc = cn_x509_issue(&ca, c->d->base->node_name, names, n, SERVER_DAYS, &leaf)) < 0) {
		cn_fail(rc, err, cap, "cannot issue the server certificate (tls_names '%s'): %s",
			c->conf->tls_names, cn_strerror(rc));
		goto out;
	}
	snprintf(c->ca_path, sizeof(c->ca_path), "%s/ca.pem", dir);
	snprintf(c->cert_path, sizeof(c->cert_path), "%s/tls.crt", dir);
	snprintf(path, sizeof(path), "%s/tls.key", dir);
	cn_strlcpy(c->key_path, path, sizeof(c->key_path));
	if ((rc = cn_x509_write_pem(c->ca_path, ca.cert_pem, 0644)) < 0 ||
	    (rc = cn_x509_write_pem(c->cert_path, leaf.cert_pem, 0644)) < 0 ||
	    (rc = cn_x509_write_pem(c->key_path, leaf.key_pem, 0600)) < 0) {
		cn_fail(rc, err, cap, "cannot write TLS files into '%s': %s", dir, cn_strerror(rc));
		goto out;
	}
	if (!(c->ca_pem = strdup(ca.cert_pem))) {
		rc = -ENOMEM;
		goto out;
	}
	c->tls.cert_path = c->cert_path;
	c->tls.key_path = c->key_path;
	c->d->tls = &c->tls;
	cn_log_info("central", "TLS on: certificate for '%s' from the node CA (%s)",
		    c->conf->tls_names, c->ca_path);
out:
	cn_x509_pair_free(&fresh);
	cn_x509_pair_free(&ca);
	cn_x509_pair_free(&leaf);
	return rc;
}
