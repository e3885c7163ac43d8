/* edge_cameras.c: camera set management on the main loop; the ingest threads do the blocking work. */
#include "edge_cameras.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cn_err.h"
#include "cn_log.h"
#include "cn_metrics.h"

#define POLL_MS 1000

/* Reads the cameras document. -ENOENT when the file does not exist. */
static int read_doc(struct edge_cameras *c, struct edge_camcfg *out, char *err, size_t cap)
{
	struct cn_buf text;
	char chunk[8192];
	struct stat st;
	ssize_t n;
	int fd = open(c->cameras_file, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0) {
		rc = -errno;
		snprintf(err, cap, "cannot open '%.400s': %s", c->cameras_file, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) == 0) {
		c->file_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		c->file_size = st.st_size;
		c->file_ino = (int64_t)st.st_ino;
	}
	cn_buf_init(&text, EDGE_CAMCFG_MAX_BYTES);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (cn_buf_append(&text, chunk, (size_t)n) < 0) {
			snprintf(err, cap, "'%.400s' is larger than %d bytes", c->cameras_file,
				 EDGE_CAMCFG_MAX_BYTES);
			rc = CN_E_TOO_BIG;
			goto out_close;
		}
	}
	if (n < 0) {
		rc = -errno;
		snprintf(err, cap, "cannot read '%.400s': %s", c->cameras_file, strerror(errno));
		goto out_close;
	}
	char why[400];
	rc = edge_camcfg_parse(text.data ? text.data : "", text.len, out, why, sizeof(why));
	if (rc < 0)
		snprintf(err, cap, "%.200s: %.300s", c->cameras_file, why);
out_close:
	close(fd);
	cn_buf_free(&text);
	return rc;
}

struct edge_ingest *edge_cameras_find(struct edge_cameras *c, const char *id)
{
	for (int i = 0; i < c->ncams; i++)
		if (strcmp(c->cams[i]->cfg.id, id) == 0)
			return c->cams[i];
	return NULL;
}

static void retire(struct edge_cameras *c, int i)
{
	edge_ingest_request_stop(c->cams[i]);
	g_ptr_array_add(c->stopping, c->cams[i]);
	c->cams[i] = c->cams[--c->ncams];
}

/* Makes the running set match doc. */
static void apply(struct edge_cameras *c, const struct edge_camcfg *doc)
{
	for (int i = c->ncams - 1; i >= 0; i--) {
		const struct edge_camera_cfg *want = NULL;
		for (int j = 0; j < doc->ncameras && !want; j++)
			if (strcmp(doc->cameras[j].id, c->cams[i]->cfg.id) == 0)
				want = &doc->cameras[j];
		if (!want) {
			cn_log_info("cameras", "camera '%s' removed", c->cams[i]->cfg.id);
			retire(c, i);
		} else if (!edge_camcfg_same_ingest(want, &c->cams[i]->cfg)) {
			cn_log_info("cameras", "camera '%s': stream settings changed, reconnecting", want->id);
			retire(c, i);
		} else {
			edge_ingest_update(c->cams[i], want);
		}
	}
	int64_t delay = 0;
	for (int j = 0; j < doc->ncameras; j++) {
		struct edge_ingest *g;
		if (edge_cameras_find(c, doc->cameras[j].id))
			continue;
		/* A camera restarted for new settings may still be closing its segment;
		 * both write distinct files, so they can overlap briefly. */
		if (edge_ingest_start(&doc->cameras[j], &c->opts, delay, &g) == 0) {
			delay += 50;
			c->cams[c->ncams++] = g;
			cn_log_info("cameras", "camera '%s' (%s) added", doc->cameras[j].id,
				    doc->cameras[j].name);
		}
	}
	*c->cfg = *doc;
	if (c->on_apply)
		c->on_apply(doc, c->on_apply_arg);
}

static void reap(struct edge_cameras *c)
{
	for (guint i = 0; i < c->stopping->len;) {
		struct edge_ingest *g = g_ptr_array_index(c->stopping, i);
		if (edge_ingest_exited(g)) {
			edge_ingest_free(g);
			g_ptr_array_remove_index_fast(c->stopping, i);
		} else {
			i++;
		}
	}
}

void edge_cameras_reload(struct edge_cameras *c)
{
	struct edge_camcfg *doc = calloc(1, sizeof(*doc));
	char err[512];
	int rc;

	if (!doc)
		return;
	rc = read_doc(c, doc, err, sizeof(err));
	if (rc == -ENOENT) {
		doc->ncameras = 0;
		rc = 0;
	}
	if (rc < 0) {
		c->config_errors++;
		if (strcmp(err, c->config_error) != 0)
			cn_log_error("cameras", "cameras document refused, keeping the previous one: %s", err);
		cn_strlcpy(c->config_error, err, sizeof(c->config_error));
	} else {
		c->config_error[0] = '\0';
		c->config_loads++;
		apply(c, doc);
	}
	free(doc);
}

static gboolean poll_file(gpointer data)
{
	struct edge_cameras *c = data;
	struct stat st;

	reap(c);
	if (stat(c->cameras_file, &st) < 0) {
		if (c->file_ino != 0 || c->file_size != 0) {
			c->file_ino = 0;
			c->file_size = 0;
			c->file_mtime_ns = 0;
			edge_cameras_reload(c);
		}
		return G_SOURCE_CONTINUE;
	}
	if ((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != c->file_mtime_ns ||
	    st.st_size != c->file_size || (int64_t)st.st_ino != c->file_ino)
		edge_cameras_reload(c);
	return G_SOURCE_CONTINUE;
}

int edge_cameras_start(struct edge_cameras *c, struct cn_loop *l, const char *cameras_file,
		       const struct edge_ingest_opts *opts,
		       void (*on_apply)(const struct edge_camcfg *doc, void *arg), void *arg)
{
	char err[512];
	int rc;

	memset(c, 0, sizeof(*c));
	c->on_apply = on_apply;
	c->on_apply_arg = arg;
	c->opts = *opts;
	cn_strlcpy(c->cameras_file, cameras_file, sizeof(c->cameras_file));
	c->stopping = g_ptr_array_new();
	c->cfg = calloc(1, sizeof(*c->cfg));
	if (!c->cfg)
		return -ENOMEM;
	struct edge_camcfg *doc = calloc(1, sizeof(*doc));
	if (!doc)
		return -ENOMEM;
	rc = read_doc(c, doc, err, sizeof(err));
	if (rc < 0 && rc != -ENOENT) {
		cn_log_error("cameras", "%s", err);
		free(doc);
		return CN_E_CONFIG;
	}
	if (rc == -ENOENT)
		cn_log_warn("cameras", "no cameras document at '%s' yet: recording nothing", cameras_file);
	c->config_loads++;
	apply(c, doc);
	free(doc);
	c->poll_id = cn_loop_every(l, POLL_MS, poll_file, c);
	return 0;
}

void edge_cameras_stop(struct edge_cameras *c)
{
	if (c->poll_id)
		g_source_remove(c->poll_id);
	c->poll_id = 0;
	for (int i = 0; i < c->ncams; i++)
		edge_ingest_request_stop(c->cams[i]);
	for (int i = 0; i < c->ncams; i++)
		edge_ingest_free(c->cams[i]);
	c->ncams = 0;
	if (c->stopping) {
		for (guint i = 0; i < c->stopping->len; i++)
			edge_ingest_free(g_ptr_array_index(c->stopping, i));
		g_ptr_array_free(c->stopping, TRUE);
		c->stopping = NULL;
	}
	free(c->cfg);
	c->cfg = NULL;
}

int edge_cameras_metrics(struct cn_buf *out, void *arg)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{ "canopy_camera_up", "gauge", "1 when the camera's stream is being received." },
		{ "canopy_camera_state", "gauge", "Camera state: 1 for the current state label." },
		{ "canopy_camera_recording", "gauge", "1 while a segment is being written." },
		{ "canopy_camera_disk_full", "gauge", "1 while recording is paused for lack of disk space." },
		{ "canopy_camera_fps", "gauge", "Frames per second received, over the last seconds." },
		{ "canopy_camera_bitrate_kbps", "gauge", "Received bitrate in kbit/s, over the last seconds." },
		{ "canopy_camera_reconnects_total", "counter", "Reconnection attempts." },
		{ "canopy_camera_packets_total", "counter", "Video packets received." },
		{ "canopy_camera_corrupt_packets_total", "counter", "Packets flagged corrupt (lost RTP data)." },
		{ "canopy_camera_packets_lost_total", "counter", "RTP packets missing from the camera's sequence." },
		{ "canopy_camera_recorded_bytes_total", "counter", "Bytes written to complete fragments." },
		{ "canopy_camera_segments_total", "counter", "Segment files started." },
	};
	struct edge_cameras *c = arg;
	int rc = 0;

	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		rc |= cn_metrics_family(out, fam[f].name, fam[f].type, fam[f].help);
		for (int i = 0; i < c->ncams; i++) {
			struct edge_ingest_status st;
			const char *id = c->cams[i]->cfg.id; /* ids are [a-z0-9_-]: no escaping */
			edge_ingest_status(c->cams[i], &st);
			switch (f) {
			case 0: rc |= cn_buf_printf(out, "%s{camera=\"%s\"} %d\n", fam[f].name, id, st.state == EDGE_CAM_ONLINE); break;
			case 1:
				for (int s = 0; s <= EDGE_CAM_STOPPED; s++)
					rc |= cn_buf_printf(out, "%s{camera=\"%s\",state=\"%s\"} %d\n", fam[f].name, id,
							    edge_cam_state_name((enum edge_cam_state)s), (int)st.state == s);
				break;
			case 2: rc |= cn_buf_printf(out, "%s{camera=\"%s\"} %d\n", fam[f].name, id, st.recording); break;
			case 3: rc |= cn_buf_printf(out, "%s{camera=\"%s\"} %d\n", fam[f].name, id, st.disk_full); break;
			case 4: rc |= cn_buf_printf(out, "%s{camera=\"%s\"} %.2f\n", fam[f].name, id, st.fps); break;
			case 5: rc |= cn_buf_printf(out, "%s{camera=\"%s\"} %.1f\n", fam[f].name, id, st.kbps); break;
			case 6: rc |= cn_buf_printf(out, "%s{camera=\"%s\"} %llu\n", fam[f].name, id, (unsigned long long)st.reconnects); break;
			case 7: rc |= cn_buf_printf(out, "%s{camera=\"%s\"} %llu\n", fam[f].name, id, (unsigned long long)st.packets); break;
			case 8: rc |= cn_buf_printf(out, "%s{camera=\"%s\"} %llu\n", fam[f].name, id, (unsigned long long)st.corrupt_packets); break;
			case 9: rc |= cn_buf_printf(out, "%s{camera=\"%s\"} %llu\n", fam[f].name, id, (unsigned long long)st.packets_lost); break;
			case 10: rc |= cn_buf_printf(out, "%s{camera=\"%s\"} %llu\n", fam[f].name, id, (unsigned long long)st.bytes_recorded); break;
			case 11: rc |= cn_buf_printf(out, "%s{camera=\"%s\"} %llu\n", fam[f].name, id, (unsigned long long)st.segments); break;
			}
		}
	}
	rc |= cn_metrics_family(out, "canopy_edge_config_errors_total", "counter",
				"Cameras documents refused (the previous one stays in force).");
	rc |= cn_buf_printf(out, "canopy_edge_config_errors_total %llu\n", (unsigned long long)c->config_errors);
	return rc ? -ENOBUFS : 0;
}
