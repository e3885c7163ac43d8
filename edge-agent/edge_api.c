/* edge_api.c: the edge's local REST API (/api/v1), every request checked against a bearer token. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cn_base64.h"
#include "cn_err.h"
#include "cn_file.h"
#include "cn_json.h"
#include "cn_jwt.h"
#include "edge_whep.h"
#include "cn_log.h"
#include "cn_time.h"
#include "edge.h"
#include "edge_outbox.h"
#include "edge_relay.h"
#include "edge_uplink.h"

#define ADMIN_TOKEN_DAYS 30
#define DEFAULT_SPAN_MS (24LL * 3600 * 1000)
#define GAP_TOLERANCE_MS 1500

int edge_api_write_admin_token(struct edge *e)
{
	struct cn_jwt_claims c;
	struct cn_buf tok;
	char path[1200];
	int64_t now = cn_time_wall_ms() / 1000;
	int rc;

	memset(&c, 0, sizeof(c));
	cn_strlcpy(c.iss, e->d->base->node_name, sizeof(c.iss));
	cn_strlcpy(c.sub, "local-admin", sizeof(c.sub));
	cn_strlcpy(c.tenant, "local", sizeof(c.tenant));
	cn_strlcpy(c.scope, EDGE_SCOPE_ADMIN, sizeof(c.scope));
	cn_random_id(c.jti, sizeof(c.jti));
	c.iat = now;
	c.exp = now + ADMIN_TOKEN_DAYS * 86400;
	cn_buf_init(&tok, CN_JWT_MAX_TOKEN);
	if ((rc = cn_jwt_sign(e->d->node_key, e->d->node_key_id, &c, NULL, &tok)) < 0)
		goto out_free_tok;
	snprintf(path, sizeof(path), "%s/admin.token", e->d->base->data_dir);
	if ((rc = cn_buf_append(&tok, "\n", 1)) == 0)
		rc = cn_file_write_atomic(path, tok.data, tok.len, 0600, true);
	if (rc == 0)
		cn_log_info("api", "local admin token written to '%s' (valid %d days)", path, ADMIN_TOKEN_DAYS);
out_free_tok:
	cn_buf_free(&tok);
	return rc;
}

int edge_api_token(struct edge *e, const struct cn_http_req *req, struct cn_http_resp *resp,
		   struct cn_jwt_claims *c, cJSON **payload)
{
	char hdr[CN_JWT_MAX_TOKEN + 16], err[256];
	int rc = cn_http_req_header(req, "authorization", hdr, sizeof(hdr));

	if (rc < 0 || strncmp(hdr, "Bearer ", 7) != 0) {
		cn_http_problem(resp, 401, "Unauthorized",
				rc == -ENOSPC ? "authorization header too long"
					      : "a bearer token is required (Authorization: Bearer <token>)");
		cn_http_resp_header(resp, "www-authenticate", "Bearer realm=\"canopy-edge\"");
		return 1;
	}
	rc = cn_jwt_verify(hdr + 7, strlen(hdr + 7), &e->d->node_key, 1, cn_time_wall_ms() / 1000, 30,
			   c, payload, err, sizeof(err));
	if (rc < 0) {
		cn_http_problem(resp, 401, "Unauthorized", "%s", err);
		cn_http_resp_header(resp, "www-authenticate",
				    "Bearer realm=\"canopy-edge\", error=\"invalid_token\"");
		return 1;
	}
	return 0;
}

int edge_api_authorize(struct edge *e, const struct cn_http_req *req, struct cn_http_resp *resp)
{
	struct cn_jwt_claims c;

	if (edge_api_token(e, req, resp, &c, NULL))
		return 1;
	if (!cn_jwt_has_scope(&c, EDGE_SCOPE_ADMIN)) {
		cn_http_problem(resp, 403, "Forbidden", "token lacks scope '%s'", EDGE_SCOPE_ADMIN);
		return 1;
	}
	return 0;
}

static int reply_json(struct cn_http_resp *resp, cJSON *o)
{
	int rc;

	if (!o)
		return -ENOMEM;
	cn_strlcpy(resp->content_type, "application/json", sizeof(resp->content_type));
	rc = cn_json_print(o, &resp->body);
	cJSON_Delete(o);
	return rc;
}

static cJSON *time_string(int64_t ms)
{
	char ts[40];

	if (cn_time_format_rfc3339(ms, ts, sizeof(ts)) < 0)
		return cJSON_CreateNull();
	return cJSON_CreateString(ts);
}

static int get_cameras(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct edge *e = arg;
	cJSON *root, *arr;

	if (edge_api_authorize(e, req, resp))
		return 0;
	root = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(root, "cameras");
	cJSON_AddNumberToObject(root, "config_version", e->cams.cfg ? e->cams.cfg->version : 0);
	if (e->cams.config_error[0])
		cJSON_AddStringToObject(root, "config_error", e->cams.config_error);
	else
		cJSON_AddNullToObject(root, "config_error");
	/* where the configuration comes from, and whether that link is up */
	edge_uplink_describe(e, root);
	/* the relays it is registered with, so viewers reach it from outside */
	edge_relay_describe(e, root);
	/* what waits for central, and what was lost to the outbox bound */
	edge_outbox_describe(e, root);
	for (int i = 0; i < e->cams.ncams; i++) {
		struct edge_ingest *g = e->cams.cams[i];
		struct edge_ingest_status st;
		struct edge_camera_cfg cfg;
		cJSON *o = cJSON_CreateObject(), *s, *r;

		g_mutex_lock(&g->lock);
		cfg = g->cfg;
		g_mutex_unlock(&g->lock);
		edge_ingest_status(g, &st);
		cJSON_AddItemToArray(arr, o);
		cJSON_AddStringToObject(o, "id", cfg.id);
		cJSON_AddStringToObject(o, "name", cfg.name);
		cJSON_AddStringToObject(o, "main_url", cfg.main_url);
		if (cfg.sub_url[0])
			cJSON_AddStringToObject(o, "sub_url", cfg.sub_url);
		cJSON_AddBoolToObject(o, "has_credentials", cfg.username[0] != '\0');
		cJSON_AddStringToObject(o, "transport", edge_transport_name(cfg.transport));
		cJSON_AddStringToObject(o, "recording", edge_recmode_name(cfg.recording));
		cJSON_AddNumberToObject(o, "retention_days", cfg.retention_days);
		s = cJSON_AddObjectToObject(o, "status");
		cJSON_AddStringToObject(s, "state", edge_cam_state_name(st.state));
		cJSON_AddStringToObject(s, "reason", st.reason);
		cJSON_AddItemToObject(s, "since", time_string(st.since_ms));
		cJSON_AddBoolToObject(s, "recording", st.recording);
		cJSON_AddBoolToObject(s, "disk_full", st.disk_full);
		if (st.retry_in_ms > 0 && st.state != EDGE_CAM_ONLINE)
			cJSON_AddNumberToObject(s, "retry_in_s", (double)st.retry_in_ms / 1000.0);
		cJSON_AddStringToObject(s, "codec", st.codec);
		cJSON_AddNumberToObject(s, "width", st.width);
		cJSON_AddNumberToObject(s, "height", st.height);
		cJSON_AddNumberToObject(s, "fps", (double)(int)(st.fps * 100) / 100);
		cJSON_AddNumberToObject(s, "bitrate_kbps", (double)(int)(st.kbps * 10) / 10);
		r = cJSON_AddObjectToObject(s, "counters");
		cn_json_add_i64(r, "reconnects", (int64_t)st.reconnects);
		cn_json_add_i64(r, "packets", (int64_t)st.packets);
		cn_json_add_i64(r, "corrupt_packets", (int64_t)st.corrupt_packets);
		cn_json_add_i64(r, "packets_lost", (int64_t)st.packets_lost);
		cn_json_add_i64(r, "segments", (int64_t)st.segments);
		cn_json_add_i64(r, "recorded_bytes", (int64_t)st.bytes_recorded);
		edge_whep_describe(e->whep, cfg.id, o);
	}
	return reply_json(resp, root);
}

/* A from/to value as RFC 3339 (NULL: def); 1 (and a 400 filled in) when it is bad. */
static int time_value(const char *v, struct cn_http_resp *resp, const char *name, int64_t def,
		      int64_t *out)
{
	if (!v) {
		*out = def;
		return 0;
	}
	if (cn_time_parse_rfc3339(v, strlen(v), out) < 0) {
		cn_http_problem(resp, 400, "Bad Request",
				"'%s' must be an RFC 3339 time such as 2026-11-21T08:00:00Z", name);
		return 1;
	}
	return 0;
}

/* from/to query parameters as RFC 3339; 1 (and a 400 filled in) when one is bad. */
static int time_param(const struct cn_http_req *req, struct cn_http_resp *resp, const char *name,
		      int64_t def, int64_t *out)
{
	char v[64];
	int rc = cn_http_query_get(req, name, v, sizeof(v));

	if (rc < 0 && rc != -ENOENT) {
		cn_http_problem(resp, 400, "Bad Request",
				"'%s' must be an RFC 3339 time such as 2026-11-21T08:00:00Z", name);
		return 1;
	}
	return time_value(rc ? NULL : v, resp, name, def, out);
}

struct ranges_out {
	cJSON *ranges, *gaps;
	int64_t prev_end, total;
};

static void add_gap(cJSON *gaps, int64_t start, int64_t end)
{
	cJSON *g = cJSON_CreateObject();

	cJSON_AddItemToObject(g, "start", time_string(start));
	cJSON_AddItemToObject(g, "end", time_string(end));
	cJSON_AddItemToArray(gaps, g);
}

static int add_range(int64_t start, int64_t end, void *arg)
{
	struct ranges_out *r = arg;
	cJSON *o = cJSON_CreateObject();

	if (start - r->prev_end >= GAP_TOLERANCE_MS)
		add_gap(r->gaps, r->prev_end, start);
	cJSON_AddItemToObject(o, "start", time_string(start));
	cJSON_AddItemToObject(o, "end", time_string(end));
	cJSON_AddNumberToObject(o, "duration_s", (double)(end - start) / 1000.0);
	cJSON_AddItemToArray(r->ranges, o);
	r->prev_end = end;
	r->total += end - start;
	return 0;
}

int edge_api_recordings(struct edge *e, const char *camera, const char *from_s, const char *to_s,
			int64_t depth_s, struct cn_http_resp *resp)
{
	int64_t now = cn_time_wall_ms(), from, to;
	struct ranges_out r;
	cJSON *root;
	int rc;

	if (time_value(to_s, resp, "to", now, &to) ||
	    time_value(from_s, resp, "from", to - DEFAULT_SPAN_MS, &from))
		return 0;
	if (from >= to) {
		cn_http_problem(resp, 400, "Bad Request", "'from' must be before 'to'");
		return 0;
	}
	/* What the token may not play is not listed either. */
	if (depth_s >= 0 && from < now - depth_s * 1000)
		from = now - depth_s * 1000 < to ? now - depth_s * 1000 : to;
	/* A camera no longer configured is still listed: its footage stays until retention. */
	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "camera", camera);
	cJSON_AddItemToObject(root, "from", time_string(from));
	cJSON_AddItemToObject(root, "to", time_string(to));
	r.ranges = cJSON_AddArrayToObject(root, "ranges");
	r.gaps = cJSON_AddArrayToObject(root, "gaps");
	r.prev_end = from;
	r.total = 0;
	rc = from < to ? edge_index_ranges(e->ix, camera, from, to, GAP_TOLERANCE_MS, add_range, &r) : 0;
	if (rc < 0) {
		cJSON_Delete(root);
		return rc;
	}
	/* While the camera records, the fragment in flight is not a gap. */
	struct edge_ingest *g = edge_cameras_find(&e->cams, camera);
	struct edge_ingest_status st = { 0 };
	if (g)
		edge_ingest_status(g, &st);
	cJSON_AddBoolToObject(root, "recording", st.recording);
	if (to - r.prev_end >= GAP_TOLERANCE_MS && !(st.recording && to >= now - 1000))
		add_gap(r.gaps, r.prev_end, to);
	cJSON_AddNumberToObject(root, "recorded_s", (double)r.total / 1000.0);
	if (depth_s >= 0)
		cn_json_add_i64(root, "archive_depth_s", depth_s);
	return reply_json(resp, root);
}

static int get_recordings(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct edge *e = arg;
	char camera[64], from[64], to[64];
	int rf, rt;

	if (edge_api_authorize(e, req, resp))
		return 0;
	if (cn_http_query_get(req, "camera", camera, sizeof(camera)) < 0) {
		cn_http_problem(resp, 400, "Bad Request", "'camera' is required");
		return 0;
	}
	rf = cn_http_query_get(req, "from", from, sizeof(from));
	rt = cn_http_query_get(req, "to", to, sizeof(to));
	if ((rf < 0 && rf != -ENOENT) || (rt < 0 && rt != -ENOENT)) {
		cn_http_problem(resp, 400, "Bad Request", "'%s' is too long", rf < 0 && rf != -ENOENT ? "from" : "to");
		return 0;
	}
	return edge_api_recordings(e, camera, rf ? NULL : from, rt ? NULL : to, -1, resp);
}

struct events_out {
	cJSON *arr;
	int64_t last;
};

static int add_event(int64_t seq, const char *payload, void *arg)
{
	struct events_out *o = arg;
	cJSON *ev = cJSON_Parse(payload);

	o->last = seq;
	if (!ev)
		return 0;
	cn_json_add_i64(ev, "seq", seq);
	cJSON_AddItemToArray(o->arr, ev);
	return 0;
}

static int get_events(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct edge *e = arg;
	char v[32];
	int64_t since = 0, limit = 100;
	cJSON *root, *arr;
	int rc;

	if (edge_api_authorize(e, req, resp))
		return 0;
	if (cn_http_query_get(req, "since", v, sizeof(v)) == 0 &&
	    cn_str_to_i64(cn_str_from(v), 0, INT64_MAX, &since) < 0) {
		cn_http_problem(resp, 400, "Bad Request", "'since' must be a non-negative event sequence number");
		return 0;
	}
	if (cn_http_query_get(req, "limit", v, sizeof(v)) == 0 &&
	    cn_str_to_i64(cn_str_from(v), 1, 1000, &limit) < 0) {
		cn_http_problem(resp, 400, "Bad Request", "'limit' must be 1..1000");
		return 0;
	}
	root = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(root, "events");
	struct events_out out = { arr, since };
	rc = edge_index_events_since(e->ix, since, (int)limit, add_event, &out);
	if (rc < 0) {
		cJSON_Delete(root);
		return rc;
	}
	/* Pass "next" back as "since" to continue after the last event returned. */
	cn_json_add_i64(root, "next", out.last);
	return reply_json(resp, root);
}

static int add_protected(int64_t id, const char *camera, int64_t from_ms, int64_t to_ms,
			 const char *reason, void *arg)
{
	cJSON *o = cJSON_CreateObject();

	cn_json_add_i64(o, "id", id);
	cJSON_AddStringToObject(o, "camera", camera);
	cJSON_AddItemToObject(o, "from", time_string(from_ms));
	cJSON_AddItemToObject(o, "to", time_string(to_ms));
	cJSON_AddStringToObject(o, "reason", reason ? reason : "");
	cJSON_AddItemToArray(arg, o);
	return 0;
}

static int get_protected(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct edge *e = arg;
	char camera[64];
	cJSON *root;
	int rc;

	if (edge_api_authorize(e, req, resp))
		return 0;
	root = cJSON_CreateObject();
	rc = cn_http_query_get(req, "camera", camera, sizeof(camera));
	rc = edge_index_protect_list(e->ix, rc == 0 ? camera : NULL, add_protected,
				     cJSON_AddArrayToObject(root, "protected"));
	if (rc < 0) {
		cJSON_Delete(root);
		return rc;
	}
	return reply_json(resp, root);
}

/* Body: {"camera", "from", "to", "reason"?}: footage overlapping it is never deleted. */
static int post_protected(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	static const char *const members[] = { "camera", "from", "to", "reason" };
	struct edge *e = arg;
	char camera[64], from_s[48], to_s[48], reason[256] = "", loc[64];
	int64_t from, to, id;
	cJSON *body = NULL, *out;
	int rc;

	if (edge_api_authorize(e, req, resp))
		return 0;
	if (cn_json_parse(req->body.p, req->body.len, 64 * 1024, 4, &body) < 0 || !cJSON_IsObject(body)) {
		cJSON_Delete(body);
		cn_http_problem(resp, 400, "Bad Request", "body must be a JSON object {camera, from, to, reason}");
		return 0;
	}
	for (const cJSON *c = body->child; c; c = c->next) {
		bool known = false;
		for (size_t i = 0; i < 4; i++)
			known |= strcmp(c->string, members[i]) == 0;
		if (!known) {
			cn_http_problem(resp, 400, "Bad Request", "unknown member '%.40s'", c->string);
			goto out_free_body;
		}
	}
	if (cn_json_copy_str(body, "camera", camera, sizeof(camera)) < 0 || !camera[0]) {
		cn_http_problem(resp, 400, "Bad Request", "'camera' must be a camera id");
		goto out_free_body;
	}
	if (cn_json_copy_str(body, "from", from_s, sizeof(from_s)) < 0 ||
	    cn_time_parse_rfc3339(from_s, strlen(from_s), &from) < 0 ||
	    cn_json_copy_str(body, "to", to_s, sizeof(to_s)) < 0 ||
	    cn_time_parse_rfc3339(to_s, strlen(to_s), &to) < 0 || from >= to) {
		cn_http_problem(resp, 400, "Bad Request", "'from' and 'to' must be RFC 3339 times, from < to");
		goto out_free_body;
	}
	rc = cn_json_copy_str(body, "reason", reason, sizeof(reason));
	if (rc < 0 && rc != -ENOENT) {
		cn_http_problem(resp, 400, "Bad Request", "'reason' must be a string of at most 255 bytes");
		goto out_free_body;
	}
	if ((rc = edge_index_protect_add(e->ix, camera, from, to, reason, &id)) < 0) {
		cJSON_Delete(body);
		return rc;
	}
	out = cJSON_CreateArray();
	add_protected(id, camera, from, to, reason, out);
	snprintf(loc, sizeof(loc), "/api/v1/protected/%lld", (long long)id);
	cn_http_resp_header(resp, "location", loc);
	resp->status = 201;
	cJSON_Delete(body);
	cJSON *one = cJSON_DetachItemFromArray(out, 0);
	cJSON_Delete(out);
	return reply_json(resp, one);
out_free_body:
	cJSON_Delete(body);
	return 0;
}

static int delete_protected(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct edge *e = arg;
	struct cn_str idpart = { req->path.p + strlen("/api/v1/protected/"),
				 req->path.len - strlen("/api/v1/protected/") };
	int64_t id;
	int rc;

	if (edge_api_authorize(e, req, resp))
		return 0;
	if (cn_str_to_i64(idpart, 1, INT64_MAX, &id) < 0) {
		cn_http_problem(resp, 404, "Not Found", "no protected range '%.*s'", (int)idpart.len, idpart.p);
		return 0;
	}
	rc = edge_index_protect_delete(e->ix, id);
	if (rc == -ENOENT) {
		cn_http_problem(resp, 404, "Not Found", "no protected range %lld", (long long)id);
		return 0;
	}
	if (rc < 0)
		return rc;
	resp->status = 204;
	return 0;
}

/* GET /api/v1/export?camera=&from=&to=: an MP4 of the range, made on a worker thread. */
static int get_export(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct edge *e = arg;
	char camera[64];
	int64_t from, to;
	int rc;

	if (edge_api_authorize(e, req, resp))
		return 0;
	if (cn_http_query_get(req, "camera", camera, sizeof(camera)) < 0) {
		cn_http_problem(resp, 400, "Bad Request", "'camera' is required");
		return 0;
	}
	if (time_param(req, resp, "from", INT64_MIN, &from) || time_param(req, resp, "to", INT64_MIN, &to))
		return 0;
	if (from == INT64_MIN || to == INT64_MIN) {
		cn_http_problem(resp, 400, "Bad Request", "'from' and 'to' are required");
		return 0;
	}
	if (from >= to || to - from > 24LL * 3600 * 1000) {
		cn_http_problem(resp, 400, "Bad Request", "'from' must be before 'to', at most 24 h apart");
		return 0;
	}
	rc = edge_export_start(&e->exporter, req->id, camera, from, to);
	if (rc == -EBUSY) {
		cn_http_problem(resp, 503, "Service Unavailable", "%d exports are already running; retry shortly",
				EDGE_EXPORT_MAX_RUNNING);
		cn_http_resp_header(resp, "retry-after", "5");
		return 0;
	}
	return rc < 0 ? rc : CN_HTTP_DEFER;
}

int edge_api_register(struct edge *e)
{
	struct cn_http_server *s = e->d->http;
	int rc;

	if ((rc = cn_http_route(s, CN_HTTP_GET, "/api/v1/cameras", get_cameras, e)) < 0 ||
	    (rc = cn_http_route(s, CN_HTTP_GET, "/api/v1/recordings", get_recordings, e)) < 0 ||
	    (rc = cn_http_route(s, CN_HTTP_GET, "/api/v1/events", get_events, e)) < 0 ||
	    (rc = cn_http_route(s, CN_HTTP_GET, "/api/v1/export", get_export, e)) < 0 ||
	    (rc = cn_http_route(s, CN_HTTP_GET, "/api/v1/protected", get_protected, e)) < 0 ||
	    (rc = cn_http_route(s, CN_HTTP_POST, "/api/v1/protected", post_protected, e)) < 0 ||
	    (rc = cn_http_route(s, CN_HTTP_DELETE, "/api/v1/protected/", delete_protected, e)) < 0)
		return rc;
	return 0;
}
