/* central_auth.c: password logins with lockout, sessions and token issue/verification for the REST API. */
#include "central_auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "central.h"
#include "cn_base64.h"
#include "cn_buf.h"
#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_jwt.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_password.h"
#include "cn_time.h"

#define SECRET_BYTES 32

static struct cn_metric m_login_ok = CN_METRIC_INIT(
	"canopy_central_logins_total", CN_METRIC_COUNTER, "successful password logins");
static struct cn_metric m_login_failed = CN_METRIC_INIT(
	"canopy_central_login_failures_total", CN_METRIC_COUNTER,
	"refused password logins (bad credentials, lockout, session limit)");

/* A hash computed for unknown users, so "no such user" costs as much as a wrong password. */
static char dummy_hash[CN_PASSWORD_HASH_MAX];

int central_auth_hash_secret(const char *secret, char out[65])
{
	uint8_t h[CN_SHA256_LEN];
	int i, rc;

	if ((rc = cn_sha256(secret, strlen(secret), h)) < 0)
		return rc;
	for (i = 0; i < CN_SHA256_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
	return 0;
}

static int make_secret(const char *prefix, char *out, size_t cap)
{
	uint8_t raw[SECRET_BYTES];
	size_t plen = strlen(prefix), n;
	int rc;

	if ((rc = cn_random_bytes(raw, sizeof(raw))) < 0)
		return rc;
	if (cap < plen + 1)
		return -ENOSPC;
	memcpy(out, prefix, plen);
	return cn_base64_encode(CN_B64_URL, raw, sizeof(raw), out + plen, cap - plen, &n);
}

int central_auth_prepare_secret(struct api_call *call, const char *prefix)
{
	char secret[96], hash[65];
	int rc;

	if ((rc = make_secret(prefix, secret, sizeof(secret))) < 0 ||
	    (rc = central_auth_hash_secret(secret, hash)) < 0)
		return rc;
	if (!(call->extra[0] = strdup(hash)) || !(call->post_secret = strdup(secret)))
		return -ENOMEM;
	return 0;
}

bool central_auth_scope_has(const struct api_auth *auth, const char *perm)
{
	size_t n = strlen(perm);
	const char *p = auth->scopes;

	while ((p = strstr(p, perm))) {
		if ((p == auth->scopes || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
		p += n;
	}
	return false;
}

static int unauthorized(struct api_call *call, const char *why)
{
	api_problem(call, 401, "%s", why);
	cn_http_resp_header(&call->resp, "www-authenticate", "Bearer realm=\"canopy\"");
	return 1;
}

static int check_api_token(PGconn *pg, const char *token, struct api_call *call,
			   struct api_auth *auth)
{
	static const char sql[] =
		"WITH t AS (SELECT t.id, t.tenant_id, t.user_id, u.username,"
		"  array_to_string(t.scopes, ' ') AS scopes, t.last_used_at"
		"  FROM api_tokens t JOIN users u ON u.id = t.user_id"
		"  WHERE t.token_hash = decode($1, 'hex') AND t.revoked_at IS NULL"
		"  AND t.expires_at > now() AND NOT u.disabled),"
		" touch AS (UPDATE api_tokens SET last_used_at = now() WHERE id IN"
		"  (SELECT id FROM t WHERE last_used_at IS NULL OR last_used_at < now() - interval '60 s'))"
		" SELECT id, tenant_id, user_id, username, scopes FROM t";
	char hash[65], err[256];
	const char *p[1] = { hash };
	PGresult *r;
	int rc;

	if ((rc = central_auth_hash_secret(token, hash)) < 0)
		return rc;
	if ((rc = central_db_exec(pg, sql, 1, p, &r, err, sizeof(err))) < 0) {
		cn_log_error("auth", "API token lookup: %s", err);
		return rc;
	}
	if (PQntuples(r) != 1) {
		PQclear(r);
		return unauthorized(call, "API token unknown, expired or revoked");
	}
	cn_strlcpy(auth->token_id, PQgetvalue(r, 0, 0), sizeof(auth->token_id));
	cn_strlcpy(auth->tenant_id, PQgetvalue(r, 0, 1), sizeof(auth->tenant_id));
	cn_strlcpy(auth->user_id, PQgetvalue(r, 0, 2), sizeof(auth->user_id));
	cn_strlcpy(auth->username, PQgetvalue(r, 0, 3), sizeof(auth->username));
	cn_strlcpy(auth->scopes, PQgetvalue(r, 0, 4), sizeof(auth->scopes));
	cn_strlcpy(auth->client_type, "api-token", sizeof(auth->client_type));
	PQclear(r);
	return 0;
}

int central_auth_check(PGconn *pg, struct central *c, const char *authz, struct api_call *call,
		       struct api_auth *auth)
{
	/* The session must be alive: not revoked, not past its refresh expiry, and active
	 * within the idle window. Activity is written at most every 15 s per session, and at
	 * least every half idle window, so that a session in use never looks idle. */
	static const char sql[] =
		"WITH s AS (SELECT s.id, s.last_active_at, u.username, s.client_type"
		"  FROM sessions s JOIN users u ON u.id = s.user_id"
		"  WHERE s.id = $1 AND s.user_id = $2 AND s.tenant_id = $3 AND s.revoked_at IS NULL"
		"  AND s.expires_at > now() AND s.last_active_at > now() - make_interval(secs => $4)"
		"  AND NOT u.disabled),"
		" touch AS (UPDATE sessions SET last_active_at = now() WHERE id IN"
		"  (SELECT id FROM s WHERE last_active_at < now() - make_interval(secs => least(15, $4 / 2))))"
		" SELECT username, client_type FROM s";
	struct cn_jwt_claims cl;
	cJSON *payload = NULL;
	char err[256], idle[24];
	const char *p[4];
	PGresult *r;
	int rc;

	memset(auth, 0, sizeof(*auth));
	if (strncmp(authz, "Bearer ", 7) != 0 || !authz[7])
		return unauthorized(call, "an 'Authorization: Bearer <token>' header is required");
	authz += 7;
	if (strncmp(authz, "cnt_", 4) == 0)
		return check_api_token(pg, authz, call, auth);
	rc = cn_jwt_verify(authz, strlen(authz), &c->sign_key, 1, cn_time_wall_ms() / 1000, 5, &cl,
			   &payload, err, sizeof(err));
	if (rc < 0) {
		char why[300];

		snprintf(why, sizeof(why), "access token refused: %s", err);
		return unauthorized(call, why);
	}
	if (cn_json_copy_str(payload, "sid", auth->session_id, sizeof(auth->session_id)) < 0 ||
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(payload, "typ")) ?: "", "access") != 0) {
		cJSON_Delete(payload);
		return unauthorized(call, "not an access token");
	}
	cJSON_Delete(payload);
	cn_strlcpy(auth->user_id, cl.sub, sizeof(auth->user_id));
	cn_strlcpy(auth->tenant_id, cl.tenant, sizeof(auth->tenant_id));
	snprintf(idle, sizeof(idle), "%lld", (long long)c->conf->session_idle / 1000);
	p[0] = auth->session_id;
	p[1] = auth->user_id;
	p[2] = auth->tenant_id;
	p[3] = idle;
	if ((rc = central_db_exec(pg, sql, 4, p, &r, err, sizeof(err))) < 0) {
		cn_log_error("auth", "session lookup: %s", err);
		return rc;
	}
	if (PQntuples(r) != 1) {
		PQclear(r);
		return unauthorized(call, "session ended (logged out, revoked, expired or idle)");
	}
	cn_strlcpy(auth->username, PQgetvalue(r, 0, 0), sizeof(auth->username));
	cn_strlcpy(auth->client_type, PQgetvalue(r, 0, 1), sizeof(auth->client_type));
	PQclear(r);
	return 0;
}

/* Signs an access token for a session; archive depth (seconds) rides along so edges and
 * relays can enforce it offline. */
static int issue_access(struct central *c, const char *user, const char *tenant,
			const char *username, const char *sid, int64_t depth_s, struct cn_buf *out)
{
	struct cn_jwt_claims cl = { 0 };
	int64_t now = cn_time_wall_ms() / 1000;
	cJSON *extra = cJSON_CreateObject();
	int rc;

	if (!extra)
		return -ENOMEM;
	cn_strlcpy(cl.iss, "canopy-central", sizeof(cl.iss));
	cn_strlcpy(cl.sub, user, sizeof(cl.sub));
	cn_strlcpy(cl.tenant, tenant, sizeof(cl.tenant));
	cn_strlcpy(cl.scope, "api", sizeof(cl.scope));
	if ((rc = cn_random_id(cl.jti, sizeof(cl.jti))) < 0)
		goto out;
	cl.iat = now;
	cl.nbf = now;
	cl.exp = now + c->conf->access_token_ttl / 1000;
	if (!cJSON_AddStringToObject(extra, "typ", "access") ||
	    !cJSON_AddStringToObject(extra, "sid", sid) ||
	    !cJSON_AddStringToObject(extra, "usr", username) ||
	    !cn_json_add_i64(extra, "adepth", depth_s)) {
		rc = -ENOMEM;
		goto out;
	}
	rc = cn_jwt_sign(c->sign_key, c->sign_kid, &cl, extra, out);
out:
	cJSON_Delete(extra);
	return rc;
}

static int token_response(struct api_call *call, const char *access, const char *refresh,
			  const char *sid, int64_t depth_s, int status)
{
	cJSON *o = cJSON_CreateObject();
	int rc = -ENOMEM;

	if (o && cJSON_AddStringToObject(o, "token_type", "Bearer") &&
	    cJSON_AddStringToObject(o, "access_token", access) &&
	    cn_json_add_i64(o, "expires_in", call->c->conf->access_token_ttl / 1000) &&
	    cJSON_AddStringToObject(o, "refresh_token", refresh) &&
	    cJSON_AddStringToObject(o, "session_id", sid) &&
	    cn_json_add_i64(o, "archive_depth_s", depth_s))
		rc = api_json(call, status, o);
	cJSON_Delete(o);
	/* Tokens must not be cached (RFC 6749 5.1): the HTTP layer marks every answer no-store. */
	return rc;
}

/* Session limit and archive depth come from the roles the user holds (the most
 * generous one wins); a user with no grant may hold one session and see no archive. */
static const char limits_sql[] =
	"SELECT coalesce(max(r.max_sessions), 1),"
	" coalesce(max(r.archive_depth * CASE r.archive_depth_unit WHEN 'minutes' THEN 60"
	"  WHEN 'hours' THEN 3600 ELSE 86400 END), 0)"
	" FROM grants g JOIN roles r ON r.id = g.role_id WHERE g.user_id = $1";

static int record_failure(PGconn *pg, struct central *c, const char *key, int64_t limit)
{
	static const char sql[] =
		"INSERT INTO login_failures AS f (key, failures, first_at) VALUES ($1, 1, now())"
		" ON CONFLICT (key) DO UPDATE SET"
		"  failures = CASE WHEN f.first_at < now() - make_interval(mins => $2::int)"
		"   THEN 1 ELSE f.failures + 1 END,"
		"  first_at = CASE WHEN f.first_at < now() - make_interval(mins => $2::int)"
		"   THEN now() ELSE f.first_at END"
		" RETURNING failures";
	static const char lock_sql[] =
		"UPDATE login_failures SET locked_until = now() + make_interval(mins => $2::int),"
		" failures = 0, first_at = now() WHERE key = $1";
	char mins[24], err[256];
	const char *p[2] = { key, mins };
	PGresult *r;
	int rc;

	snprintf(mins, sizeof(mins), "%lld", (long long)c->conf->lockout_minutes);
	if ((rc = central_db_exec(pg, sql, 2, p, &r, err, sizeof(err))) < 0) {
		cn_log_error("auth", "login failure not recorded: %s", err);
		return rc;
	}
	if (strtoll(PQgetvalue(r, 0, 0), NULL, 10) >= limit) {
		rc = central_db_run(pg, lock_sql, 2, p, err, sizeof(err));
		cn_log_warn("auth", "login locked for %lld minutes: %s",
			    (long long)c->conf->lockout_minutes, key);
	}
	PQclear(r);
	return rc;
}

int central_auth_login(PGconn *pg, struct api_call *call)
{
	struct central *c = call->c;
	const cJSON *b = call->body;
	const char *username = cJSON_GetStringValue(cJSON_GetObjectItem(b, "username"));
	const char *password = cJSON_GetStringValue(cJSON_GetObjectItem(b, "password"));
	const char *client = cJSON_GetStringValue(cJSON_GetObjectItem(b, "client_type"));
	char ukey[96], akey[96], err[256], lname[72], refresh[96], rhash[65], ttl[24], sid[40];
	char user_id[40], tenant_id[40], detail[80];
	const char *p[6];
	struct cn_buf access;
	PGresult *r = NULL;
	int64_t max_sessions, depth_s;
	int rc, i, vrc;
	bool found;

	cn_strlcpy(call->auth.client_type, client ? client : "api", sizeof(call->auth.client_type));
	for (i = 0; username[i] && i < (int)sizeof(lname) - 1; i++)
		lname[i] = (char)((username[i] >= 'A' && username[i] <= 'Z') ? username[i] + 32
									      : username[i]);
	lname[i] = '\0';
	snprintf(ukey, sizeof(ukey), "user:%s", lname);
	snprintf(akey, sizeof(akey), "addr:%s", call->peer);
	cn_buf_init(&access, CN_JWT_MAX_TOKEN);

	/* Locked (account or address: the answer does not say which) before any check. */
	p[0] = ukey;
	p[1] = akey;
	if ((rc = central_db_exec(pg,
				  "SELECT count(*) FROM login_failures WHERE key IN ($1, $2)"
				  " AND locked_until > now()",
				  2, p, &r, err, sizeof(err))) < 0)
		goto out_dberr;
	found = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
	PQclear(r);
	if (found) {
		/* The refusal goes to the named user's tenant (NULL only for unknown names). */
		bool known = false;

		p[0] = username;
		if (central_db_exec(pg, "SELECT id, tenant_id FROM users WHERE lower(username) = lower($1)",
				    1, p, &r, err, sizeof(err)) == 0) {
			if ((known = PQntuples(r) == 1)) {
				cn_strlcpy(user_id, PQgetvalue(r, 0, 0), sizeof(user_id));
				cn_strlcpy(tenant_id, PQgetvalue(r, 0, 1), sizeof(tenant_id));
			}
			PQclear(r);
		}
		cn_metric_add(&m_login_failed, 1);
		api_audit(pg, call, known ? tenant_id : NULL, known ? user_id : NULL, username, "login",
			  "user", known ? user_id : "", "denied", "{\"reason\":\"locked\"}");
		rc = api_problem(call, 429,
				 "too many failed logins; try again in up to %lld minutes",
				 (long long)c->conf->lockout_minutes);
		goto out;
	}
	p[0] = username;
	if ((rc = central_db_exec(pg,
				  "SELECT id, tenant_id, password_hash, disabled FROM users"
				  " WHERE lower(username) = lower($1)",
				  1, p, &r, err, sizeof(err))) < 0)
		goto out_dberr;
	found = PQntuples(r) == 1;
	vrc = cn_password_verify(password, strlen(password),
				 found ? PQgetvalue(r, 0, 2) : dummy_hash);
	if (found) {
		cn_strlcpy(user_id, PQgetvalue(r, 0, 0), sizeof(user_id));
		cn_strlcpy(tenant_id, PQgetvalue(r, 0, 1), sizeof(tenant_id));
		if (strcmp(PQgetvalue(r, 0, 3), "t") == 0)
			vrc = -EACCES;
	}
	PQclear(r);
	if (!found || vrc != 0) {
		cn_metric_add(&m_login_failed, 1);
		record_failure(pg, c, ukey, c->conf->lockout_failures);
		record_failure(pg, c, akey, c->conf->lockout_addr_failures);
		api_audit(pg, call, found ? tenant_id : NULL, found ? user_id : NULL, username,
			  "login", "user", found ? user_id : "", "failed",
			  found ? "{\"reason\":\"bad credentials\"}" : "{\"reason\":\"unknown user\"}");
		rc = api_problem(call, 401, "invalid user name or password");
		goto out;
	}
	p[0] = ukey;
	central_db_run(pg, "DELETE FROM login_failures WHERE key = $1", 1, p, err, sizeof(err));

	/* Session limit: count live sessions under a row lock on the user, so two logins at
	 * once cannot both take the last slot. */
	if ((rc = central_db_run(pg, "BEGIN", 0, NULL, err, sizeof(err))) < 0)
		goto out_dberr;
	p[0] = user_id;
	if ((rc = central_db_run(pg, "SELECT 1 FROM users WHERE id = $1 FOR UPDATE", 1, p, err,
				 sizeof(err))) < 0 ||
	    (rc = central_db_exec(pg, limits_sql, 1, p, &r, err, sizeof(err))) < 0)
		goto out_dberr;
	max_sessions = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	depth_s = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	PQclear(r);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)c->conf->session_idle / 1000);
	p[1] = ttl;
	if ((rc = central_db_exec(pg,
				  "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL"
				  " AND expires_at > now()"
				  " AND last_active_at > now() - make_interval(secs => $2::int)",
				  2, p, &r, err, sizeof(err))) < 0)
		goto out_dberr;
	if (strtoll(PQgetvalue(r, 0, 0), NULL, 10) >= max_sessions) {
		PQclear(r);
		PQclear(PQexec(pg, "ROLLBACK"));
		cn_metric_add(&m_login_failed, 1);
		api_audit(pg, call, tenant_id, user_id, username, "login", "user", user_id, "denied",
			  "{\"reason\":\"session limit\"}");
		rc = api_problem(call, 409,
				 "session limit reached: %lld simultaneous sessions allowed; log out "
				 "elsewhere or wait for an idle session to expire (%lld s)",
				 (long long)max_sessions, (long long)c->conf->session_idle / 1000);
		goto out;
	}
	PQclear(r);
	if ((rc = make_secret("cnr_", refresh, sizeof(refresh))) < 0 ||
	    (rc = central_auth_hash_secret(refresh, rhash)) < 0)
		goto out;
	snprintf(ttl, sizeof(ttl), "%lld", (long long)c->conf->refresh_token_ttl / 1000);
	p[0] = tenant_id;
	p[1] = user_id;
	p[2] = rhash;
	p[3] = call->auth.client_type;
	p[4] = call->peer;
	p[5] = ttl;
	if ((rc = central_db_exec(pg,
				  "INSERT INTO sessions (tenant_id, user_id, refresh_hash, client_type,"
				  " source_addr, expires_at) VALUES ($1, $2, decode($3, 'hex'), $4, $5,"
				  " now() + make_interval(secs => $6::int)) RETURNING id",
				  6, p, &r, err, sizeof(err))) < 0)
		goto out_dberr;
	cn_strlcpy(sid, PQgetvalue(r, 0, 0), sizeof(sid));
	PQclear(r);
	p[0] = user_id;
	if ((rc = central_db_run(pg, "UPDATE users SET last_login_at = now() WHERE id = $1", 1, p,
				 err, sizeof(err))) < 0)
		goto out_dberr;
	snprintf(detail, sizeof(detail), "{\"session\":\"%s\"}", sid);
	api_audit(pg, call, tenant_id, user_id, username, "login", "user", user_id, "ok", detail);
	if ((rc = central_db_run(pg, "COMMIT", 0, NULL, err, sizeof(err))) < 0)
		goto out_dberr;
	cn_metric_add(&m_login_ok, 1);
	if ((rc = issue_access(c, user_id, tenant_id, username, sid, depth_s, &access)) < 0 ||
	    (rc = cn_buf_append(&access, "", 1)) < 0)
		goto out;
	rc = token_response(call, access.data, refresh, sid, depth_s, 200);
	goto out;
out_dberr:
	PQclear(PQexec(pg, "ROLLBACK"));
	cn_log_error("auth", "login: %s", err);
	rc = api_problem(call, 503, "database error; try again");
out:
	cn_buf_free(&access);
	return rc < 0 ? rc : 0;
}

int central_auth_refresh(PGconn *pg, struct api_call *call)
{
	/* Rotation: the presented refresh token is replaced; the old one stops working. */
	static const char sql[] =
		"UPDATE sessions s SET refresh_hash = decode($2, 'hex'), last_active_at = now()"
		" FROM users u WHERE s.refresh_hash = decode($1, 'hex') AND u.id = s.user_id"
		" AND s.revoked_at IS NULL AND s.expires_at > now() AND NOT u.disabled"
		" AND s.last_active_at > now() - make_interval(secs => $3::int)"
		" RETURNING s.id, s.user_id, s.tenant_id, u.username, s.client_type";
	const char *token = cJSON_GetStringValue(cJSON_GetObjectItem(call->body, "refresh_token"));
	char oldh[65], newh[65], refresh[96], idle[24], err[256], sid[40], user[40], tenant[40];
	char username[72];
	const char *p[3] = { oldh, newh, idle };
	struct cn_buf access;
	PGresult *r;
	int64_t depth_s;
	int rc;

	cn_buf_init(&access, CN_JWT_MAX_TOKEN);
	snprintf(idle, sizeof(idle), "%lld", (long long)call->c->conf->session_idle / 1000);
	if ((rc = central_auth_hash_secret(token, oldh)) < 0 ||
	    (rc = make_secret("cnr_", refresh, sizeof(refresh))) < 0 ||
	    (rc = central_auth_hash_secret(refresh, newh)) < 0)
		goto out;
	if ((rc = central_db_exec(pg, sql, 3, p, &r, err, sizeof(err))) < 0)
		goto out_dberr;
	if (PQntuples(r) != 1) {
		PQclear(r);
		rc = unauthorized(call, "refresh token unknown, used, revoked or expired");
		goto out;
	}
	cn_strlcpy(sid, PQgetvalue(r, 0, 0), sizeof(sid));
	cn_strlcpy(user, PQgetvalue(r, 0, 1), sizeof(user));
	cn_strlcpy(tenant, PQgetvalue(r, 0, 2), sizeof(tenant));
	cn_strlcpy(username, PQgetvalue(r, 0, 3), sizeof(username));
	PQclear(r);
	p[0] = user;
	if ((rc = central_db_exec(pg, limits_sql, 1, p, &r, err, sizeof(err))) < 0)
		goto out_dberr;
	depth_s = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	PQclear(r);
	if ((rc = issue_access(call->c, user, tenant, username, sid, depth_s, &access)) < 0 ||
	    (rc = cn_buf_append(&access, "", 1)) < 0)
		goto out;
	rc = token_response(call, access.data, refresh, sid, depth_s, 200);
	goto out;
out_dberr:
	cn_log_error("auth", "refresh: %s", err);
	rc = api_problem(call, 503, "database error; try again");
out:
	cn_buf_free(&access);
	return rc < 0 ? rc : 0;
}

int central_auth_prepare_password(PGconn *pg, struct api_call *call)
{
	const char *pw = cJSON_GetStringValue(cJSON_GetObjectItem(call->body, "password"));
	const char *user = cJSON_GetStringValue(cJSON_GetObjectItem(call->body, "username"));
	char why[256], hash[CN_PASSWORD_HASH_MAX], err[256];
	PGresult *r;
	int rc;

	if (!pw)
		return 0;
	if (!user && call->id[0]) {
		/* Changing the password of an existing user: the policy needs the name. */
		const char *p[2] = { call->id, call->auth.tenant_id };

		if ((rc = central_db_exec(pg, "SELECT username FROM users WHERE id = $1 AND tenant_id = $2",
					  2, p, &r, err, sizeof(err))) < 0)
			return rc;
		if (PQntuples(r) == 1 &&
		    cn_password_policy(pw, strlen(pw), PQgetvalue(r, 0, 0), why, sizeof(why)) < 0) {
			PQclear(r);
			return api_problem(call, 400, "%s", why) < 0 ? -ENOMEM : 1;
		}
		PQclear(r);
	} else if (cn_password_policy(pw, strlen(pw), user ? user : "", why, sizeof(why)) < 0) {
		return api_problem(call, 400, "%s", why) < 0 ? -ENOMEM : 1;
	}
	if ((rc = cn_password_hash(pw, strlen(pw), &cn_password_default, hash, sizeof(hash))) < 0)
		return rc;
	/* The clear password must not reach SQL or the audit log. */
	cJSON_DeleteItemFromObject(call->body, "password");
	free(call->body_json);
	if (!(call->body_json = cJSON_PrintUnformatted(call->body)) ||
	    !(call->extra[0] = strdup(hash)))
		return -ENOMEM;
	return 0;
}

int central_auth_init(void)
{
	cn_metrics_register(&m_login_ok);
	cn_metrics_register(&m_login_failed);
	return cn_password_hash("not a password", 14, &cn_password_default, dummy_hash,
				sizeof(dummy_hash));
}
