/* edge_push.c: the camera "alarm server" endpoint: POST /push/<camera> from the camera itself. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cn_base64.h"
#include "cn_camevent.h"
#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_time.h"
#include "edge.h"

enum { PUSH_OK, PUSH_MALFORMED, PUSH_TOO_BIG, PUSH_UNKNOWN_CAMERA, PUSH_FORBIDDEN, PUSH_OUTBOX_FULL,
       PUSH_NREASONS };
static const char *const push_reasons[] = { "accepted", "malformed", "too_big", "unknown_camera",
					    "forbidden", "outbox_full" };
static uint64_t push_counts[PUSH_NREASONS];

/* Cameras cannot send bearer tokens; a push is accepted only from the address the
 * camera's own URL names (when that is an IP literal). */
static bool from_camera(const struct edge_camera_cfg *cfg, const char *peer)
{
	const char *host = strstr(cfg->main_url, "://") + 3;
	char ip[64];
	size_t n = strcspn(host, ":/");
	struct in_addr a;

	if (n >= sizeof(ip))
		return false;
	memcpy(ip, host, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1)
		return true; /* a DNS name: nothing cheap to compare against */
	return strcmp(ip, peer) == 0;
}

/* Saves the push's JPEG under data_dir/snapshots/<camera>/<date>/<id>.jpg; returns the
 * path relative to data_dir in rel, or "" when there was none or it could not be saved. */
static void save_snapshot(struct edge *e, const struct cn_camevent *ev, const char *cam,
			  const char *id, char *rel, size_t cap)
{
	struct cn_str jpeg;
	uint8_t *buf = NULL;
	char dir[900], path[1000];
	time_t t = (time_t)(ev->utc_ms / 1000);
	struct tm tm;
	int fd;

	rel[0] = '\0';
	if (ev->snapshot_kind == CN_CAMEV_SNAP_NONE)
		return;
	if (ev->snapshot_bytes && !(buf = malloc(ev->snapshot_bytes)))
		return;
	if (cn_camevent_snapshot_jpeg(ev, buf, ev->snapshot_bytes, &jpeg) < 0)
		goto out_free;
	gmtime_r(&t, &tm);
	snprintf(rel, cap, "snapshots/%s/%04d-%02d-%02d/%s.jpg", cam, tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, id);
	snprintf(path, sizeof(path), "%.500s/%s", e->d->base->data_dir, rel);
	cn_strlcpy(dir, path, sizeof(dir));
	*strrchr(dir, '/') = '\0';
	fd = g_mkdir_with_parents(dir, 0750) == 0 ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640) : -1;
	if (fd < 0 || write(fd, jpeg.p, jpeg.len) != (ssize_t)jpeg.len) {
		cn_log_warn("push", "camera '%s': cannot save snapshot '%s': %s", cam, path, strerror(errno));
		rel[0] = '\0';
	}
	if (fd >= 0)
		close(fd);
out_free:
	free(buf);
}

static int reject(struct cn_http_resp *resp, int reason, int status, const char *title, const char *detail)
{
	push_counts[reason]++;
	return cn_http_problem(resp, status, title, "%s", detail);
}

static int post_push(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct edge *e = arg;
	struct cn_str cam = { req->path.p + strlen("/push/"), req->path.len - strlen("/push/") };
	struct cn_camevent *ev = calloc(1, sizeof(*ev));
	struct edge_camera_cfg cfg;
	char camid[64], ctype[CN_CAMEVENT_MAX_CONTENT_TYPE], err[300], detail[400], id[24], snap[300];
	cJSON *json = NULL;
	char *text = NULL;
	int64_t seq;
	int rc;

	if (!ev)
		return -ENOMEM;
	if (cam.len == 0 || cn_str_copy(camid, sizeof(camid), cam) < 0 || !edge_cameras_find(&e->cams, camid)) {
		snprintf(detail, sizeof(detail), "no camera '%.*s' on this edge", (int)(cam.len > 64 ? 64 : cam.len), cam.p);
		rc = reject(resp, PUSH_UNKNOWN_CAMERA, 404, "Not Found", detail);
		goto out_free;
	}
	struct edge_ingest *g = edge_cameras_find(&e->cams, camid);
	g_mutex_lock(&g->lock);
	cfg = g->cfg;
	g_mutex_unlock(&g->lock);
	if (!from_camera(&cfg, req->peer)) {
		snprintf(detail, sizeof(detail), "pushes for camera '%s' must come from its own address, not %s",
			 camid, req->peer);
		rc = reject(resp, PUSH_FORBIDDEN, 403, "Forbidden", detail);
		goto out_free;
	}
	if (cn_http_req_header(req, "content-type", ctype, sizeof(ctype)) < 0)
		ctype[0] = '\0';
	rc = cn_camevent_parse(ctype, (const uint8_t *)req->body.p, req->body.len, ev, err, sizeof(err));
	if (rc < 0) {
		cn_log_debug("push", "camera '%s': push refused: %s", camid, err);
		rc = reject(resp, rc == CN_E_TOO_BIG ? PUSH_TOO_BIG : PUSH_MALFORMED,
			    rc == CN_E_TOO_BIG ? 413 : 400, rc == CN_E_TOO_BIG ? "Payload Too Large" : "Bad Request", err);
		goto out_free;
	}
	if (!ev->offset_known)
		cn_camevent_set_offset(ev, cn_time_local_offset_min(ev->utc_ms));
	cn_random_id(id, sizeof(id));
	save_snapshot(e, ev, camid, id, snap, sizeof(snap));
	if ((rc = cn_camevent_to_json(ev, &json)) < 0)
		goto out_free;
	/* The edge's camera id replaces whatever the camera calls itself (a channel number). */
	cJSON_DeleteItemFromObjectCaseSensitive(json, "id");
	cJSON_DeleteItemFromObjectCaseSensitive(json, "camera");
	cJSON_AddStringToObject(json, "id", id);
	cJSON_AddStringToObject(json, "camera", camid);
	if (snap[0])
		cJSON_AddStringToObject(json, "snapshot", snap);
	if (!(text = cJSON_PrintUnformatted(json))) {
		rc = -ENOMEM;
		goto out_free;
	}
	rc = edge_index_event_add(e->ix, id, camid, ev->type_name, ev->utc_ms, text, &seq);
	if (rc == CN_E_FULL) {
		/* event_outbox_overflow = drop_newest: counted, and reported to central; the
		 * picture of an event that does not exist would never be found or deleted */
		if (snap[0]) {
			char path[1000];
			snprintf(path, sizeof(path), "%.500s/%s", e->d->base->data_dir, snap);
			unlink(path);
		}
		rc = reject(resp, PUSH_OUTBOX_FULL, 503, "Service Unavailable",
			    "the event outbox is full of undelivered events (event_outbox_overflow = "
			    "drop_newest): this event was dropped and counted");
		cn_http_resp_header(resp, "retry-after", "60");
		goto out_free;
	}
	if (rc < 0)
		goto out_free;
	push_counts[PUSH_OK]++;
	/* Events recording mode: an active push records post_record_s from now (the
	 * pre-record ring supplies what came before). */
	if (ev->active)
		atomic_store(&g->event_until_mono, cn_time_mono_ms() + (int64_t)(cfg.post_record_s > 0 ? cfg.post_record_s : 1) * 1000);
	cn_log_info("push", "camera '%s': %s %s%s%s", camid, ev->type_name, ev->active ? "active" : "inactive",
		    ev->plate[0] ? " plate " : "", ev->plate);
	cJSON *ack = cJSON_CreateObject();
	cJSON_AddStringToObject(ack, "id", id);
	cn_json_add_i64(ack, "seq", seq);
	cn_strlcpy(resp->content_type, "application/json", sizeof(resp->content_type));
	rc = cn_json_print(ack, &resp->body);
	cJSON_Delete(ack);
out_free:
	cJSON_free(text);
	cJSON_Delete(json);
	free(ev);
	return rc;
}

static int push_metrics(struct cn_buf *out, void *arg)
{
	int rc = cn_metrics_family(out, "canopy_camera_pushes_total", "counter",
				   "Camera alarm-server pushes, by outcome.");

	(void)arg;
	for (int i = 0; i < PUSH_NREASONS; i++)
		rc |= cn_buf_printf(out, "canopy_camera_pushes_total{result=\"%s\"} %llu\n", push_reasons[i],
				    (unsigned long long)push_counts[i]);
	return rc ? -ENOBUFS : 0;
}

int edge_push_register(struct edge *e)
{
	int rc = cn_http_route(e->d->http, CN_HTTP_POST, "/push/", post_push, e);

	return rc < 0 ? rc : cn_metrics_add_collector(push_metrics, NULL);
}
