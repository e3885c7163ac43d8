/* edge_analytics.c: analytics workers over nanomsg: detections in (PULL), outbox events out (PUB). */
#include "edge_analytics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <nanomsg/pubsub.h>

#include "cn_base64.h"
#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_time.h"
#include "edge_index.h"

#define RECV_TIMEOUT_MS 250
#define MAX_EMBEDDING 4096

static const char *const result_names[] = { "accepted", "malformed", "unknown_camera" };

static int find_cam(struct edge_analytics *a, const char *id)
{
	for (int i = 0; i < a->ncams; i++)
		if (strcmp(a->cams[i].id, id) == 0)
			return i;
	return -1;
}

void edge_analytics_set_cameras(struct edge_analytics *a, const struct edge_camcfg *cfg)
{
	if (!a->started)
		return;
	g_mutex_lock(&a->lock);
	for (int i = 0; i < a->ncams; i++)
		a->cams[i].known = false;
	for (int j = 0; j < cfg->ncameras; j++) {
		int i = find_cam(a, cfg->cameras[j].id);
		if (i < 0 && a->ncams < EDGE_MAX_CAMERAS) {
			i = a->ncams++;
			memset(&a->cams[i], 0, sizeof(a->cams[i]));
			cn_strlcpy(a->cams[i].id, cfg->cameras[j].id, sizeof(a->cams[i].id));
		}
		if (i >= 0)
			a->cams[i].known = true;
	}
	g_mutex_unlock(&a->lock);
}

bool edge_analytics_fallback(struct edge_analytics *a, const char *camera)
{
	bool fb = false;
	int i;

	if (!a || !a->started || a->pull_sock < 0)
		return false;
	g_mutex_lock(&a->lock);
	if ((i = find_cam(a, camera)) >= 0)
		fb = a->cams[i].fallback;
	g_mutex_unlock(&a->lock);
	return fb;
}

static void add_event(struct edge_index *ix, const char *camera, const char *type, int64_t time_ms,
		      cJSON *o)
{
	char id[24], ts[40];
	char *text;

	cn_random_id(id, sizeof(id));
	cn_time_format_rfc3339(time_ms, ts, sizeof(ts));
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "camera", camera);
	cJSON_AddStringToObject(o, "type", type);
	cJSON_AddStringToObject(o, "time", ts);
	if ((text = cJSON_PrintUnformatted(o))) {
		int rc = edge_index_event_add(ix, id, camera, type, time_ms, text, NULL);
		if (rc == CN_E_FULL) /* counted and reported by the outbox */
			cn_log_debug("analytics", "%s event of camera '%s' dropped: outbox full", type, camera);
		else if (rc < 0)
			cn_log_error("analytics", "cannot store %s event of camera '%s': %s", type, camera,
				     cn_strerror(rc));
		cJSON_free(text);
	}
}

/* Marks camera i as heard from (worker w); announces the end of a silence. */
static void heard(struct edge_analytics *a, struct edge_index *ix, int i, const char *worker)
{
	bool back;

	g_mutex_lock(&a->lock);
	back = a->cams[i].fallback;
	a->cams[i].fallback = false;
	a->cams[i].bound = true;
	a->cams[i].last_mono = cn_time_mono_ms();
	cn_strlcpy(a->cams[i].worker, worker, sizeof(a->cams[i].worker));
	char cam[64];
	cn_strlcpy(cam, a->cams[i].id, sizeof(cam));
	g_mutex_unlock(&a->lock);
	if (back) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "state", "active");
		cJSON_AddStringToObject(o, "worker", worker);
		add_event(ix, cam, "analytics.worker_back", cn_time_wall_ms(), o);
		cJSON_Delete(o);
		cn_log_info("analytics", "camera '%s': worker '%s' is back", cam, worker);
	}
}

static int check_silence(struct edge_analytics *a, struct edge_index *ix)
{
	int64_t now = cn_time_mono_ms();

	for (int i = 0; i < a->ncams; i++) {
		char cam[64], worker[64];
		g_mutex_lock(&a->lock);
		bool lost = a->cams[i].known && a->cams[i].bound && !a->cams[i].fallback &&
			    now - a->cams[i].last_mono > a->silence_ms;
		if (lost)
			a->cams[i].fallback = true;
		cn_strlcpy(cam, a->cams[i].id, sizeof(cam));
		cn_strlcpy(worker, a->cams[i].worker, sizeof(worker));
		g_mutex_unlock(&a->lock);
		if (!lost)
			continue;
		cn_log_warn("analytics", "camera '%s': worker '%s' silent for %lld s, recording continuously",
			    cam, worker, (long long)(a->silence_ms / 1000));
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "state", "inactive");
		cJSON_AddStringToObject(o, "worker", worker);
		cJSON_AddStringToObject(o, "reason", "no message from the worker; recording continuously until it is back");
		add_event(ix, cam, "analytics.worker_lost", cn_time_wall_ms(), o);
		cJSON_Delete(o);
	}
	return 0;
}

static bool name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

/* One worker message (schemas/analytics-message.schema.json). Returns a result index. */
static int handle(struct edge_analytics *a, struct edge_index *ix, const char *msg, size_t len,
		  char *err, size_t cap)
{
	static const char *const members[] = { "v", "type", "worker", "camera", "cameras", "time", "kind",
					       "label", "confidence", "box", "plate", "embedding", "model", NULL };
	cJSON *root = NULL;
	char type[16], worker[64], camera[64], kind[16];
	int64_t v;
	int result = EDGE_AN_MALFORMED;

	if (cn_json_parse(msg, len, EDGE_ANALYTICS_MAX_MSG, 8, &root) < 0 || !cJSON_IsObject(root)) {
		cn_fail(0, err, cap, "not one JSON object (or over 64 KiB, too deep, a repeated key)");
		goto out_free;
	}
	for (const cJSON *c = root->child; c; c = c->next) {
		bool ok = false;
		for (int i = 0; members[i] && !ok; i++)
			ok = strcmp(c->string, members[i]) == 0;
		if (!ok) {
			cn_fail(0, err, cap, "unknown member '%.40s'", c->string);
			goto out_free;
		}
	}
	if (cn_json_get_i64(root, "v", 1, 1, &v) < 0 ||
	    cn_json_copy_str(root, "type", type, sizeof(type)) < 0 ||
	    cn_json_copy_str(root, "worker", worker, sizeof(worker)) < 0 || !name_ok(worker, 63)) {
		cn_fail(0, err, cap, "'v' must be 1; 'type' and 'worker' ([A-Za-z0-9._-]) are required");
		goto out_free;
	}
	if (strcmp(type, "heartbeat") == 0) {
		const cJSON *cams = cJSON_GetObjectItemCaseSensitive(root, "cameras"), *c;
		if (!cJSON_IsArray(cams) || cJSON_GetArraySize(cams) > EDGE_MAX_CAMERAS) {
			cn_fail(0, err, cap, "heartbeat needs 'cameras': the ids the worker analyses");
			goto out_free;
		}
		result = EDGE_AN_ACCEPTED;
		cJSON_ArrayForEach(c, cams) {
			g_mutex_lock(&a->lock);
			int i = cJSON_IsString(c) ? find_cam(a, c->valuestring) : -1;
			bool known = i >= 0 && a->cams[i].known;
			g_mutex_unlock(&a->lock);
			if (!known) {
				cn_fail(0, err, cap, "heartbeat names an unknown camera");
				result = EDGE_AN_UNKNOWN_CAMERA;
				continue;
			}
			heard(a, ix, i, worker);
		}
		goto out_free;
	}
	if (strcmp(type, "detection") != 0) {
		cn_fail(0, err, cap, "'type' must be heartbeat or detection");
		goto out_free;
	}
	struct cn_str ts;
	int64_t time_ms;
	if (cn_json_copy_str(root, "camera", camera, sizeof(camera)) < 0 ||
	    cn_json_copy_str(root, "kind", kind, sizeof(kind)) < 0 ||
	    (strcmp(kind, "face") && strcmp(kind, "plate") && strcmp(kind, "object")) ||
	    cn_json_get_str(root, "time", &ts) < 0 || cn_time_parse_rfc3339(ts.p, ts.len, &time_ms) < 0) {
		cn_fail(0, err, cap, "detection needs 'camera', 'kind' (face, plate, object) and an RFC 3339 'time'");
		goto out_free;
	}
	const cJSON *conf = cJSON_GetObjectItemCaseSensitive(root, "confidence");
	const cJSON *box = cJSON_GetObjectItemCaseSensitive(root, "box");
	const cJSON *emb = cJSON_GetObjectItemCaseSensitive(root, "embedding");
	if (!cJSON_IsNumber(conf) || conf->valuedouble < 0 || conf->valuedouble > 1) {
		cn_fail(0, err, cap, "'confidence' must be a number 0..1");
		goto out_free;
	}
	if (box && (!cJSON_IsArray(box) || cJSON_GetArraySize(box) != 4)) {
		cn_fail(0, err, cap, "'box' must be [x, y, w, h], fractions of the frame");
		goto out_free;
	}
	for (const cJSON *b = box ? box->child : NULL; b; b = b->next) {
		if (!cJSON_IsNumber(b) || b->valuedouble < 0 || b->valuedouble > 1) {
			cn_fail(0, err, cap, "'box' must be [x, y, w, h], fractions of the frame");
			goto out_free;
		}
	}
	if (strcmp(kind, "face") == 0 &&
	    (!cJSON_IsArray(emb) || cJSON_GetArraySize(emb) < 1 || cJSON_GetArraySize(emb) > MAX_EMBEDDING ||
	     !cJSON_GetObjectItemCaseSensitive(root, "model"))) {
		cn_fail(0, err, cap, "a face needs 'embedding' (1..%d numbers) and 'model'", MAX_EMBEDDING);
		goto out_free;
	}
	if (strcmp(kind, "plate") == 0 && !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "plate"))) {
		cn_fail(0, err, cap, "a plate detection needs 'plate'");
		goto out_free;
	}
	g_mutex_lock(&a->lock);
	int i = find_cam(a, camera);
	bool known = i >= 0 && a->cams[i].known;
	g_mutex_unlock(&a->lock);
	if (!known) {
		cn_fail(0, err, cap, "no camera '%s' on this edge", camera);
		result = EDGE_AN_UNKNOWN_CAMERA;
		goto out_free;
	}
	heard(a, ix, i, worker);
	/* The event keeps what an operator and central need; embeddings are matched against
	 * watchlists where they arrive and are not copied into every event. */
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "state", "active");
	cJSON_AddStringToObject(o, "worker", worker);
	cJSON_AddStringToObject(o, "kind", kind);
	cJSON_AddNumberToObject(o, "confidence", conf->valuedouble);
	const cJSON *label = cJSON_GetObjectItemCaseSensitive(root, "label");
	if (cJSON_IsString(label))
		cJSON_AddStringToObject(o, "label", label->valuestring);
	const cJSON *plate = cJSON_GetObjectItemCaseSensitive(root, "plate");
	if (cJSON_IsString(plate))
		cJSON_AddStringToObject(o, "plate", plate->valuestring);
	const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
	if (cJSON_IsString(model))
		cJSON_AddStringToObject(o, "model", model->valuestring);
	if (emb)
		cJSON_AddNumberToObject(o, "embedding_dim", cJSON_GetArraySize(emb));
	if (box)
		cJSON_AddItemToObject(o, "box", cJSON_Duplicate(box, true));
	char etype[32];
	snprintf(etype, sizeof(etype), "analytics.%s", kind);
	add_event(ix, camera, etype, time_ms, o);
	cJSON_Delete(o);
	result = EDGE_AN_ACCEPTED;
out_free:
	cJSON_Delete(root);
	return result;
}

static int publish_one(int64_t seq, const char *payload, void *arg)
{
	struct edge_analytics *a = arg;
	cJSON *ev = cJSON_Parse(payload);
	struct cn_buf msg;
	const cJSON *cam = ev ? cJSON_GetObjectItemCaseSensitive(ev, "camera") : NULL;

	a->published_seq = seq;
	if (!ev)
		return 0;
	/* "event.<camera> {json}": subscribers filter by prefix ("event." for all). */
	cn_json_add_i64(ev, "seq", seq);
	cn_buf_init(&msg, EDGE_ANALYTICS_MAX_MSG * 4);
	if (cn_buf_printf(&msg, "event.%s ", cJSON_IsString(cam) ? cam->valuestring : "-") == 0 &&
	    cn_json_print(ev, &msg) == 0)
		nn_send(a->pub_sock, msg.data, msg.len, NN_DONTWAIT);
	cn_buf_free(&msg);
	cJSON_Delete(ev);
	return 0;
}

static gpointer analytics_thread(gpointer data)
{
	struct edge_analytics *a = data;
	struct edge_index *ix = NULL;
	char err[200];
	int64_t last_check = 0;

	if (edge_index_open(a->index_path, &ix) < 0) {
		cn_log_error("analytics", "cannot open the index: analytics endpoint stopped");
		return NULL;
	}
	while (!atomic_load(&a->stop)) {
		if (a->pull_sock >= 0) {
			char *buf = NULL;
			int n = nn_recv(a->pull_sock, &buf, NN_MSG, 0);
			if (n >= 0) {
				err[0] = '\0';
				int r = handle(a, ix, buf, (size_t)n, err, sizeof(err));
				atomic_fetch_add(&a->results[r], 1);
				if (r != EDGE_AN_ACCEPTED)
					cn_log_debug("analytics", "worker message refused: %s", err);
				nn_freemsg(buf);
			} else if (nn_errno() != ETIMEDOUT && nn_errno() != EAGAIN && nn_errno() != EINTR) {
				g_usleep(RECV_TIMEOUT_MS * 1000);
			}
		} else {
			g_usleep(RECV_TIMEOUT_MS * 1000);
		}
		int64_t now = cn_time_mono_ms();
		if (now - last_check >= RECV_TIMEOUT_MS) {
			last_check = now;
			check_silence(a, ix);
			if (a->pub_sock >= 0)
				edge_index_events_since(ix, a->published_seq, 500, publish_one, a);
		}
	}
	edge_index_close(ix);
	return NULL;
}

static int open_socket(int proto, const char *url, int *out)
{
	int s, timeout = RECV_TIMEOUT_MS, max = EDGE_ANALYTICS_MAX_MSG;

	*out = -1;
	if (!url[0])
		return 0;
	if ((s = nn_socket(AF_SP, proto)) < 0)
		return -nn_errno();
	nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &timeout, sizeof(timeout));
	nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max, sizeof(max));
	if (nn_bind(s, url) < 0) {
		int rc = -nn_errno();
		cn_log_error("analytics", "cannot bind '%s': %s", url, nn_strerror(-rc));
		nn_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

int edge_analytics_start(struct edge_analytics *a, const char *pull_url, const char *pub_url,
			 const char *index_path, int64_t silence_ms)
{
	struct edge_index *ix;
	int rc;

	memset(a, 0, sizeof(*a));
	a->pull_sock = a->pub_sock = -1;
	g_mutex_init(&a->lock);
	a->started = true;
	cn_strlcpy(a->pull_url, pull_url, sizeof(a->pull_url));
	cn_strlcpy(a->pub_url, pub_url, sizeof(a->pub_url));
	cn_strlcpy(a->index_path, index_path, sizeof(a->index_path));
	a->silence_ms = silence_ms;
	if (!pull_url[0] && !pub_url[0])
		return 0;
	if ((rc = open_socket(NN_PULL, pull_url, &a->pull_sock)) < 0 ||
	    (rc = open_socket(NN_PUB, pub_url, &a->pub_sock)) < 0)
		return rc;
	/* Events already in the outbox are history (GET /api/v1/events); publish new ones. */
	if (edge_index_open(index_path, &ix) == 0) {
		edge_index_last_event_seq(ix, &a->published_seq);
		edge_index_close(ix);
	}
	a->thread = g_thread_new("analytics", analytics_thread, a);
	cn_log_info("analytics", "workers: detections to %s, events from %s", pull_url[0] ? pull_url : "(off)",
		    pub_url[0] ? pub_url : "(off)");
	return 0;
}

void edge_analytics_stop(struct edge_analytics *a)
{
	if (!a->started)
		return;
	a->started = false;
	atomic_store(&a->stop, true);
	if (a->thread)
		g_thread_join(a->thread);
	a->thread = NULL;
	if (a->pull_sock >= 0)
		nn_close(a->pull_sock);
	if (a->pub_sock >= 0)
		nn_close(a->pub_sock);
	a->pull_sock = a->pub_sock = -1;
	g_mutex_clear(&a->lock);
}

int edge_analytics_metrics(struct cn_buf *out, void *arg)
{
	struct edge_analytics *a = arg;
	if (!a->started)
		return 0;
	int rc = cn_metrics_family(out, "canopy_analytics_messages_total", "counter",
				   "Messages from analytics workers, by result.");

	for (int i = 0; i < EDGE_AN_NRESULTS; i++)
		rc |= cn_buf_printf(out, "canopy_analytics_messages_total{result=\"%s\"} %lld\n", result_names[i],
				    (long long)atomic_load(&a->results[i]));
	rc |= cn_metrics_family(out, "canopy_analytics_worker_silent", "gauge",
				"1 while a camera's analytics worker is silent (the camera records continuously).");
	g_mutex_lock(&a->lock);
	for (int i = 0; i < a->ncams; i++)
		if (a->cams[i].known)
			rc |= cn_buf_printf(out, "canopy_analytics_worker_silent{camera=\"%s\"} %d\n", a->cams[i].id,
					    a->cams[i].fallback);
	g_mutex_unlock(&a->lock);
	return rc ? -ENOBUFS : 0;
}
