/* central_relay.c: relays at central: configuration and load over the uplink, edges told where to register, live/playback broker calls. */
#include "central_relay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "central_api.h"
#include "central_uplink.h"
#include "cn_base64.h"
#include "cn_buf.h"
#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_jwt.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_time.h"

static struct cn_metric m_reports = CN_METRIC_INIT(
	"canopy_central_relay_reports_total", CN_METRIC_COUNTER, "load reports received from relays");
static struct cn_metric m_live = CN_METRIC_INIT(
	"canopy_central_live_grants_total", CN_METRIC_COUNTER,
	"live and playback calls answered with a relay, a viewer token and TURN credentials");
static bool metrics_done;

static void register_metrics(void)
{
	if (metrics_done)
		return;
	metrics_done = true;
	cn_metrics_register(&m_reports);
	cn_metrics_register(&m_live);
}

struct rjob {
	struct central_job job;
	struct central *c;
	char node_id[40];
	char *text;   /* parameter or result */
	char out[2][80];
	bool changed;
};

static struct rjob *rjob_new(struct central *c, const char *node_id,
			     int (*run)(PGconn *, struct central_job *), void (*done)(struct central_job *))
{
	struct rjob *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->job.run = run;
	j->job.done = done;
	j->c = c;
	cn_strlcpy(j->node_id, node_id, sizeof(j->node_id));
	return j;
}

static void rjob_free(struct rjob *j)
{
	free(j->text);
	free(j);
}

static void rjob_submit(struct rjob *j)
{
	if (central_db_submit(j->c->db, &j->job) < 0) {
		cn_log_warn("relay", "database queue full: dropped a relay job for %s", j->node_id);
		rjob_free(j);
	}
}

/* Central's token verification keys: [{kid, alg, public_key (base64url, 32 bytes)}]. */
static cJSON *keys_json(struct central *c)
{
	uint8_t raw[CN_ED25519_PUB_LEN];
	char b64[64];
	size_t n;
	cJSON *arr = cJSON_CreateArray(), *k;

	if (!arr || cn_ed25519_public(c->sign_key, raw) < 0 ||
	    cn_base64_encode(CN_B64_URL, raw, sizeof(raw), b64, sizeof(b64), &n) < 0 ||
	    !(k = cJSON_CreateObject())) {
		cJSON_Delete(arr);
		return NULL;
	}
	cJSON_AddItemToArray(arr, k);
	cJSON_AddStringToObject(k, "kid", c->sign_kid);
	cJSON_AddStringToObject(k, "alg", "EdDSA");
	cJSON_AddStringToObject(k, "public_key", b64);
	return arr;
}

/* ---- relay links: configuration ----------------------------------------------------- */

static int run_relay_config(PGconn *pg, struct central_job *job)
{
	struct rjob *j = (struct rjob *)job;
	uint8_t raw[32];
	char secret[64];
	size_t n;
	const char *p[2] = { j->node_id, secret };
	PGresult *r;
	int rc;

	/* Drawn here, kept only if the relay has no secret yet. */
	if ((rc = cn_random_bytes(raw, sizeof(raw))) < 0 ||
	    (rc = cn_base64_encode(CN_B64_URL, raw, sizeof(raw), secret, sizeof(secret), &n)) < 0)
		return rc;
	if ((rc = central_db_exec(pg, "SELECT relay_config($1, $2)", 2, p, &r, job->err,
				  sizeof(job->err))) < 0)
		return rc;
	j->text = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return j->text ? 0 : -ENOMEM;
}

static void done_relay_config(struct central_job *job)
{
	struct rjob *j = (struct rjob *)job;
	cJSON *body = NULL, *keys;

	if (job->rc < 0) {
		if (job->rc != -ECANCELED)
			cn_log_warn("relay", "configuration for relay %s not loaded: %s", j->node_id,
				    job->err);
	} else if (cn_json_parse(j->text, strlen(j->text), 65536, 8, &body) == 0 &&
		   (keys = keys_json(j->c))) {
		cJSON_AddItemToObject(body, "keys", keys);
		if (central_uplink_send_node(j->c, j->node_id, "relay.config", body) == 0)
			cn_log_info("relay", "sent relay %s its configuration", j->node_id);
		body = NULL;
	}
	cJSON_Delete(body);
	rjob_free(j);
}

/* ---- relay links: load reports -------------------------------------------------------- */

static int run_relay_report(PGconn *pg, struct central_job *job)
{
	struct rjob *j = (struct rjob *)job;
	const char *p[2] = { j->node_id, j->text };
	PGresult *r;
	int rc;

	if ((rc = central_db_exec(pg, "SELECT relay_report($1, $2::jsonb)", 2, p, &r, job->err,
				  sizeof(job->err))) < 0)
		return rc;
	j->changed = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return 0;
}

static void done_relay_report(struct central_job *job)
{
	struct rjob *j = (struct rjob *)job;

	if (job->rc < 0 && job->rc != -ECANCELED)
		cn_log_warn("relay", "load report of relay %s not stored: %s", j->node_id, job->err);
	rjob_free(j);
}

/* ---- edge links: which relays to register with ----------------------------------------- */

static int run_edge_relays(PGconn *pg, struct central_job *job)
{
	struct rjob *j = (struct rjob *)job;
	const char *p[1] = { j->node_id };
	PGresult *r;
	int rc;

	if ((rc = central_db_exec(pg,
				  "SELECT tenant_id, encode(public_key, 'hex'), relays_for_edge(id)"
				  " FROM nodes WHERE id = $1 AND kind = 'edge'",
				  1, p, &r, job->err, sizeof(job->err))) < 0)
		return rc;
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 1)) {
		PQclear(r);
		return -ENOENT;
	}
	cn_strlcpy(j->out[0], PQgetvalue(r, 0, 0), sizeof(j->out[0]));
	cn_strlcpy(j->out[1], PQgetvalue(r, 0, 1), sizeof(j->out[1]));
	j->text = strdup(PQgetvalue(r, 0, 2));
	PQclear(r);
	return j->text ? 0 : -ENOMEM;
}

/* The edge proves itself to a relay with this token (central vouches for its node id and
 * key) plus a signature of the relay's challenge with that key (docs/relay.md). */
static int registration_token(struct central *c, const char *node_id, const char *tenant,
			      const char *pub_hex, struct cn_buf *out, int64_t *exp)
{
	struct cn_jwt_claims cl = { 0 };
	uint8_t raw[CN_ED25519_PUB_LEN];
	char b64[64];
	size_t n;
	int64_t now = cn_time_wall_ms() / 1000;
	cJSON *extra;
	int rc;

	if (strlen(pub_hex) != 2 * CN_ED25519_PUB_LEN)
		return -EINVAL;
	for (size_t i = 0; i < CN_ED25519_PUB_LEN; i++) {
		int hi = g_ascii_xdigit_value(pub_hex[2 * i]), lo = g_ascii_xdigit_value(pub_hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		raw[i] = (uint8_t)(hi << 4 | lo);
	}
	if ((rc = cn_base64_encode(CN_B64_URL, raw, sizeof(raw), b64, sizeof(b64), &n)) < 0)
		return rc;
	if (!(extra = cJSON_CreateObject()))
		return -ENOMEM;
	cn_strlcpy(cl.iss, "canopy-central", sizeof(cl.iss));
	cn_strlcpy(cl.sub, node_id, sizeof(cl.sub));
	cn_strlcpy(cl.tenant, tenant, sizeof(cl.tenant));
	cn_strlcpy(cl.scope, "relay:register", sizeof(cl.scope));
	cn_random_id(cl.jti, sizeof(cl.jti));
	cl.iat = now;
	cl.exp = *exp = now + CENTRAL_RELAY_REG_TTL_S;
	if (!cJSON_AddStringToObject(extra, "typ", "relay-reg") ||
	    !cJSON_AddStringToObject(extra, "pub", b64))
		rc = -ENOMEM;
	else
		rc = cn_jwt_sign(c->sign_key, c->sign_kid, &cl, extra, out);
	cJSON_Delete(extra);
	return rc;
}

static void done_edge_relays(struct central_job *job)
{
	struct rjob *j = (struct rjob *)job;
	cJSON *body = NULL, *relays = NULL, *keys;
	struct cn_buf tok;
	char ts[40];
	int64_t exp = 0;

	cn_buf_init(&tok, CN_JWT_MAX_TOKEN);
	if (job->rc < 0) {
		if (job->rc != -ECANCELED && job->rc != -ENOENT)
			cn_log_warn("relay", "relays for edge %s not read: %s", j->node_id, job->err);
		goto out;
	}
	/* An edge no relay serves gets nothing (it has nothing to register with; an edge that
	 * had relays finds out from their closing, and a draining one says so itself). */
	if (cn_json_parse(j->text, strlen(j->text), 1 << 20, 8, &relays) < 0 ||
	    cJSON_GetArraySize(relays) == 0 ||
	    registration_token(j->c, j->node_id, j->out[0], j->out[1], &tok, &exp) < 0 ||
	    !(body = cJSON_CreateObject()) || !(keys = keys_json(j->c)))
		goto out;
	cJSON_AddItemToObject(body, "relays", relays);
	relays = NULL;
	cJSON_AddStringToObject(body, "token", (const char *)tok.data);
	cn_time_format_rfc3339(exp * 1000, ts, sizeof(ts));
	cJSON_AddStringToObject(body, "expires_at", ts);
	cJSON_AddItemToObject(body, "keys", keys);
	central_uplink_send_node(j->c, j->node_id, "relays", body);
	body = NULL;
out:
	cJSON_Delete(relays);
	cJSON_Delete(body);
	cn_buf_free(&tok);
	rjob_free(j);
}

static void push_edge(struct central *c, const char *node_id, void *arg)
{
	struct rjob *j = rjob_new(c, node_id, run_edge_relays, done_edge_relays);

	(void)arg;
	if (j)
		rjob_submit(j);
}

void central_relay_recheck(struct central *c)
{
	central_uplink_each(c, "edge", push_edge, NULL);
}

void central_relay_link_ready(struct central *c, const char *node_id, const char *kind)
{
	struct rjob *j;

	register_metrics();
	if (strcmp(kind, "edge") == 0) {
		push_edge(c, node_id, NULL);
	} else if (strcmp(kind, "relay") == 0) {
		if ((j = rjob_new(c, node_id, run_relay_config, done_relay_config)))
			rjob_submit(j);
	}
}

bool central_relay_message(struct central *c, const char *node_id, const char *kind,
			   const struct cn_envelope *env)
{
	struct rjob *j;

	if (strcmp(env->type, "relay.load") != 0)
		return false;
	if (strcmp(kind, "relay") != 0) {
		cn_log_warn("relay", "node %s (%s) sent relay.load: ignored", node_id, kind);
		return true;
	}
	if (!cJSON_IsObject(env->body))
		return true;
	cn_metric_add(&m_reports, 1);
	if (!(j = rjob_new(c, node_id, run_relay_report, done_relay_report)))
		return true;
	if (!(j->text = cJSON_PrintUnformatted(env->body))) {
		rjob_free(j);
		return true;
	}
	rjob_submit(j);
	return true;
}

/* ---- REST: live and playback --------------------------------------------------------- */

int central_relay_prepare_live(PGconn *pg, struct api_call *call)
{
	(void)pg;
	return (call->extra[0] = strdup("live")) ? 0 : -ENOMEM;
}

int central_relay_prepare_playback(PGconn *pg, struct api_call *call)
{
	(void)pg;
	return (call->extra[0] = strdup("playback")) ? 0 : -ENOMEM;
}

int central_relay_turn_password(const char *secret, const char *username, char *out, size_t cap)
{
	uint8_t mac[20];
	size_t n;
	int rc;

	if ((rc = cn_hmac_sha1(secret, strlen(secret), username, strlen(username), mac)) < 0)
		return rc;
	return cn_base64_encode(CN_B64_STD, mac, sizeof(mac), out, cap, &n);
}

static int viewer_token(struct api_call *call, const cJSON *b, int64_t exp, struct cn_buf *out)
{
	struct central *c = call->c;
	struct cn_jwt_claims cl = { 0 };
	bool playback = strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(b, "mode")) ?: "", "playback") == 0;
	int64_t depth = 0;
	cJSON *extra = cJSON_CreateObject();
	int rc = -ENOMEM;

	if (!extra)
		return -ENOMEM;
	cn_json_get_i64(b, "archive_depth_s", 0, INT64_MAX / 2000, &depth);
	cn_strlcpy(cl.iss, "canopy-central", sizeof(cl.iss));
	cn_strlcpy(cl.sub, call->auth.user_id, sizeof(cl.sub));
	cn_json_copy_str(b, "tenant_id", cl.tenant, sizeof(cl.tenant));
	cn_strlcpy(cl.scope, "edge:view", sizeof(cl.scope));
	cn_random_id(cl.jti, sizeof(cl.jti));
	cl.iat = cl.nbf = cn_time_wall_ms() / 1000;
	cl.exp = exp;
	/* cam is the edge's key (what the edge checks), cid central's id (what the relay's URL
	 * names), node the edge the relay forwards to. Live tokens carry no archive depth. */
	if (cJSON_AddStringToObject(extra, "typ", "viewer") &&
	    cJSON_AddStringToObject(extra, "cam", cJSON_GetStringValue(cJSON_GetObjectItem(b, "camera_key")) ?: "") &&
	    cJSON_AddStringToObject(extra, "cid", cJSON_GetStringValue(cJSON_GetObjectItem(b, "camera_id")) ?: "") &&
	    cJSON_AddStringToObject(extra, "node", cJSON_GetStringValue(cJSON_GetObjectItem(b, "node_id")) ?: "") &&
	    cJSON_AddStringToObject(extra, "usr", call->auth.username) &&
	    cn_json_add_i64(extra, "adepth", playback ? depth : 0))
		rc = cn_jwt_sign(c->sign_key, c->sign_kid, &cl, extra, out);
	cJSON_Delete(extra);
	return rc;
}

/* ice_servers for RTCPeerConnection: STUN URLs as they are, TURN URLs with ephemeral
 * credentials (username "expiry:tenant/user", the TURN REST convention). */
static cJSON *ice_servers(const cJSON *b, const char *user, int64_t now)
{
	const cJSON *urls = cJSON_GetObjectItem(b, "ice_urls"), *u;
	const char *secret = cJSON_GetStringValue(cJSON_GetObjectItem(b, "turn_secret"));
	const char *tenant = cJSON_GetStringValue(cJSON_GetObjectItem(b, "tenant_id"));
	cJSON *arr = cJSON_CreateArray(), *stun = NULL, *turn = NULL;
	char uname[160], pw[64];

	if (!arr)
		return NULL;
	snprintf(uname, sizeof(uname), "%lld:%s/%s", (long long)(now + CENTRAL_TURN_TTL_S),
		 tenant ? tenant : "", user);
	cJSON_ArrayForEach(u, urls) {
		const char *s = cJSON_GetStringValue(u);
		cJSON **into;

		if (!s)
			continue;
		into = strncmp(s, "turn", 4) == 0 ? &turn : &stun;
		if (!*into) {
			*into = cJSON_CreateObject();
			cJSON_AddItemToArray(arr, *into);
			cJSON_AddArrayToObject(*into, "urls");
		}
		cJSON_AddItemToArray(cJSON_GetObjectItem(*into, "urls"), cJSON_CreateString(s));
	}
	if (turn && secret && central_relay_turn_password(secret, uname, pw, sizeof(pw)) == 0) {
		cJSON_AddStringToObject(turn, "username", uname);
		cJSON_AddStringToObject(turn, "credential", pw);
	}
	return arr;
}

int central_relay_live_post(struct api_call *call, cJSON *body)
{
	const char *relay_url = cJSON_GetStringValue(
		cJSON_GetObjectItem(cJSON_GetObjectItem(body, "relay"), "url"));
	const char *cid = cJSON_GetStringValue(cJSON_GetObjectItem(body, "camera_id"));
	const char *mode = cJSON_GetStringValue(cJSON_GetObjectItem(body, "mode"));
	const char *stream = cJSON_GetStringValue(cJSON_GetObjectItem(body, "stream"));
	int64_t now = cn_time_wall_ms() / 1000, exp = now + CENTRAL_VIEWER_TOKEN_TTL_S;
	int64_t start_ms = 0, speed = 1;
	struct cn_buf tok, url;
	cJSON *ice;
	char ts[40];
	int rc;

	if (!relay_url || !cid || !mode)
		return -EINVAL;
	cn_buf_init(&tok, CN_JWT_MAX_TOKEN);
	cn_buf_init(&url, 2048);
	if ((rc = viewer_token(call, body, exp, &tok)) < 0)
		goto out;
	size_t ulen = strlen(relay_url);

	while (ulen > 0 && relay_url[ulen - 1] == '/')
		ulen--;
	cn_buf_printf(&url, "%.*s/whep/%s", (int)ulen, relay_url, cid);
	if (strcmp(mode, "playback") == 0) {
		cn_json_get_i64(body, "start_ms", 0, INT64_MAX / 2, &start_ms);
		cn_json_get_i64(body, "speed", 1, 4, &speed);
		cn_buf_printf(&url, "?start=%lld&speed=%lld", (long long)start_ms, (long long)speed);
	} else if (stream && strcmp(stream, "sub") == 0) {
		cn_buf_append_str(&url, "?stream=sub");
	}
	if (!(ice = ice_servers(body, call->auth.user_id, now))) {
		rc = -ENOMEM;
		goto out;
	}
	/* The secret never leaves central; internal fields go too. */
	cJSON_DeleteItemFromObjectCaseSensitive(body, "turn_secret");
	cJSON_DeleteItemFromObjectCaseSensitive(body, "ice_urls");
	cJSON_DeleteItemFromObjectCaseSensitive(body, "tenant_id");
	cJSON_DeleteItemFromObjectCaseSensitive(body, "start_ms");
	cJSON_AddItemToObject(body, "ice_servers", ice);
	cJSON_AddStringToObject(body, "whep_url", (const char *)url.data);
	/* The camera's recordings at the same relay, for the same token (docs/relay.md). */
	if (strcmp(mode, "playback") == 0) {
		cn_buf_reset(&url);
		cn_buf_printf(&url, "%.*s/edge/recordings/%s", (int)ulen, relay_url, cid);
		cJSON_AddStringToObject(body, "recordings_url", (const char *)url.data);
	}
	cJSON_AddStringToObject(body, "token", (const char *)tok.data);
	cn_time_format_rfc3339(exp * 1000, ts, sizeof(ts));
	cJSON_AddStringToObject(body, "expires_at", ts);
	cn_metric_add(&m_live, 1); /* registered on the loop (link_ready) */
	rc = 0;
out:
	cn_buf_free(&tok);
	cn_buf_free(&url);
	return rc;
}
