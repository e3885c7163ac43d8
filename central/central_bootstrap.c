/* central_bootstrap.c: first-start work on the database: signing key, system tenant, first administrator. */
#include "central_bootstrap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "central_db.h"
#include "cn_base64.h"
#include "cn_buf.h"
#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_log.h"
#include "cn_password.h"

#define SYSTEM_ADMIN_ROLE "00000000-0000-0000-0000-00000000a001"

/* A secret shared by every instance: the first to start creates it, the rest read it. */
int central_secret_get_or_create(PGconn *pg, const char *name, const char *fresh, char **out,
				 char *err, size_t cap)
{
	const char *p[2] = { name, fresh };
	PGresult *r;
	int rc;

	if ((rc = central_db_run(pg,
				 "INSERT INTO central_secrets (name, value) VALUES ($1, $2)"
				 " ON CONFLICT (name) DO NOTHING",
				 2, p, err, cap)) < 0 ||
	    (rc = central_db_exec(pg, "SELECT value FROM central_secrets WHERE name = $1", 1, p, &r,
				  err, cap)) < 0)
		return rc;
	*out = PQntuples(r) == 1 ? strdup(PQgetvalue(r, 0, 0)) : NULL;
	PQclear(r);
	return *out ? 0 : -ENOMEM;
}

static int load_signing_key(PGconn *pg, struct central *c, char *err, size_t cap)
{
	struct cn_ed25519 *fresh = NULL;
	char *fresh_pem = NULL, *pem = NULL;
	int rc;

	if ((rc = cn_ed25519_generate(&fresh)) < 0 ||
	    (rc = cn_ed25519_to_pem(fresh, true, &fresh_pem)) < 0)
		goto out;
	if ((rc = central_secret_get_or_create(pg, "token_signing_key", fresh_pem, &pem, err, cap)) < 0)
		goto out;
	if ((rc = cn_ed25519_from_pem(pem, strlen(pem), &c->sign_key)) < 0) {
		cn_fail(rc, err, cap, "stored token signing key unusable: %s", cn_strerror(rc));
		goto out;
	}
	rc = cn_ed25519_key_id(c->sign_key, c->sign_kid, sizeof(c->sign_kid));
out:
	if (fresh_pem)
		explicit_bzero(fresh_pem, strlen(fresh_pem));
	if (pem)
		explicit_bzero(pem, strlen(pem));
	free(fresh_pem);
	free(pem);
	cn_ed25519_free(fresh);
	return rc;
}

static int read_password_file(const char *path, char *out, size_t cap, char *err, size_t ecap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return cn_fail(-errno, err, ecap, "bootstrap_password_file '%s': %s", path,
			       strerror(errno));
	n = read(fd, out, cap - 1);
	close(fd);
	if (n < 0)
		return cn_fail(-EIO, err, ecap, "bootstrap_password_file '%s': read failed", path);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	out[n] = '\0';
	return 0;
}

/* A random password meeting the policy (all four classes, well over 8 characters). */
static int random_password(char *out, size_t cap)
{
	uint8_t raw[12];
	size_t n;
	int rc;

	if ((rc = cn_random_bytes(raw, sizeof(raw))) < 0 ||
	    (rc = cn_base64_encode(CN_B64_URL, raw, sizeof(raw), out, cap - 5, &n)) < 0)
		return rc;
	memcpy(out + n, "-7aZ", 5);
	return 0;
}

/* With no user at all, makes the system tenant's administrator "admin". Its password comes
 * from bootstrap_password_file or is random, and is written to data_dir/initial-admin-password. */
static int bootstrap_admin(PGconn *pg, struct central *c, char *err, size_t cap)
{
	char pw[128], hash[CN_PASSWORD_HASH_MAX], why[256], path[1100], tenant[40];
	const char *p[3];
	PGresult *r;
	int rc, fd;
	bool empty;

	if ((rc = central_db_exec(pg, "SELECT NOT EXISTS (SELECT 1 FROM users)", 0, NULL, &r, err,
				  cap)) < 0)
		return rc;
	empty = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!empty)
		return 0;
	if (c->conf->bootstrap_password_file[0])
		rc = read_password_file(c->conf->bootstrap_password_file, pw, sizeof(pw), err, cap);
	else
		rc = random_password(pw, sizeof(pw));
	if (rc < 0)
		return rc;
	if (cn_password_policy(pw, strlen(pw), "admin", why, sizeof(why)) < 0)
		return cn_fail(CN_E_CONFIG, err, cap, "bootstrap password refused: %s", why);
	if ((rc = cn_password_hash(pw, strlen(pw), &cn_password_default, hash, sizeof(hash))) < 0)
		return cn_fail(rc, err, cap, "cannot hash the bootstrap password");
	if ((rc = central_db_exec(pg, "SELECT id FROM tenants WHERE is_system", 0, NULL, &r, err,
				  cap)) < 0)
		return rc;
	cn_strlcpy(tenant, PQgetvalue(r, 0, 0), sizeof(tenant));
	PQclear(r);
	p[0] = tenant;
	p[1] = hash;
	p[2] = SYSTEM_ADMIN_ROLE;
	if ((rc = central_db_run(pg,
				 "WITH nu AS (INSERT INTO users (tenant_id, username, display_name,"
				 " password_hash) VALUES ($1, 'admin', 'Administrator', $2)"
				 " ON CONFLICT DO NOTHING RETURNING id)"
				 " INSERT INTO grants (tenant_id, user_id, role_id)"
				 " SELECT $1, id, $3::uuid FROM nu",
				 3, p, err, cap)) < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/initial-admin-password", c->d->base->data_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, pw, strlen(pw)) != (ssize_t)strlen(pw) || write(fd, "\n", 1) != 1)
		cn_log_warn("central", "could not write '%s': %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	explicit_bzero(pw, sizeof(pw));
	cn_log_info("central", "created user 'admin' in the system tenant; password in %s", path);
	return 0;
}

int central_bootstrap(PGconn *pg, struct central *c, char *err, size_t cap)
{
	int rc;

	/* One instance at a time, so two first starts do not both make an admin. */
	if ((rc = central_db_run(pg, "BEGIN", 0, NULL, err, cap)) < 0)
		return rc;
	if ((rc = central_db_run(pg, "SELECT pg_advisory_xact_lock(7215530872)", 0, NULL, err,
				 cap)) < 0 ||
	    (rc = central_db_run(pg,
				 "INSERT INTO tenants (name, is_system) SELECT 'system', true"
				 " WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE is_system)",
				 0, NULL, err, cap)) < 0 ||
	    (rc = load_signing_key(pg, c, err, cap)) < 0 ||
	    (rc = bootstrap_admin(pg, c, err, cap)) < 0) {
		PQclear(PQexec(pg, "ROLLBACK"));
		return rc;
	}
	return central_db_run(pg, "COMMIT", 0, NULL, err, cap);
}
