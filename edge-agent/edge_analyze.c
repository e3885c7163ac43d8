/* edge_analyze.c: motion analysis: RTSP (own session) -> decode -> downscale -> edge_motion -> events. */
#include "edge_analyze.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

#include "cn_err.h"
#include "cn_log.h"
#include "cn_time.h"
#include "edge_ingest.h"
#include "edge_motion.h"

#define ANALYSIS_WIDTH 320
#define START_FRAMES 2
#define STOP_MS 3000

struct analyzer {
	struct edge_ingest *g;
	struct edge_index *ix;
	AVFormatContext *ic;
	AVCodecContext *dec;
	struct SwsContext *sws;
	struct edge_motion *det;
	struct edge_camera_cfg cfg; /* the settings the detector was built with */
	uint8_t *luma;
	int w, h;
	int64_t last_ms;
};

static int interrupt_cb(void *arg)
{
	struct edge_ingest *g = arg;

	return atomic_load(&g->stop) || cn_time_mono_ms() > atomic_load(&g->analyze_deadline_mono);
}

static void close_session(struct analyzer *a)
{
	avcodec_free_context(&a->dec);
	avformat_close_input(&a->ic);
	sws_freeContext(a->sws);
	a->sws = NULL;
	edge_motion_free(a->det);
	a->det = NULL;
	free(a->luma);
	a->luma = NULL;
}

static bool motion_cfg_changed(const struct edge_camera_cfg *a, const struct edge_camera_cfg *b)
{
	return a->motion.grid_cols != b->motion.grid_cols || a->motion.grid_rows != b->motion.grid_rows ||
	       memcmp(a->motion.mask, b->motion.mask, sizeof(a->motion.mask)) != 0 ||
	       a->motion.sensitivity != b->motion.sensitivity ||
	       a->motion.min_area_permille != b->motion.min_area_permille;
}

static int build_detector(struct analyzer *a)
{
	struct edge_motion_cfg mc;
	char err[200];
	int rc;

	edge_motion_free(a->det);
	a->det = NULL;
	edge_motion_cfg_defaults(&mc);
	mc.width = a->w;
	mc.height = a->h;
	mc.grid_cols = a->cfg.motion.grid_cols;
	mc.grid_rows = a->cfg.motion.grid_rows;
	memcpy(mc.mask, a->cfg.motion.mask, sizeof(mc.mask));
	mc.sensitivity = a->cfg.motion.sensitivity;
	mc.min_area_permille = a->cfg.motion.min_area_permille;
	mc.start_frames = START_FRAMES;
	mc.stop_ms = STOP_MS;
	if ((rc = edge_motion_cfg_check(&mc, err, sizeof(err))) < 0) {
		cn_log_error("motion", "camera '%s': motion settings refused: %s", a->cfg.id, err);
		return rc;
	}
	return edge_motion_new(&mc, &a->det);
}

static int open_session(struct analyzer *a)
{
	struct edge_ingest *g = a->g;
	AVDictionary *o = NULL;
	char url[1200];
	const AVCodec *codec;
	int rc, vi;

	g_mutex_lock(&g->lock);
	a->cfg = g->cfg;
	g_mutex_unlock(&g->lock);
	edge_ingest_url(&a->cfg, a->cfg.sub_url[0] ? a->cfg.sub_url : a->cfg.main_url, url, sizeof(url));
	a->ic = avformat_alloc_context();
	if (!a->ic)
		return -ENOMEM;
	a->ic->interrupt_callback.callback = interrupt_cb;
	a->ic->interrupt_callback.opaque = g;
	if (a->cfg.transport != EDGE_TRANSPORT_AUTO)
		av_dict_set(&o, "rtsp_transport", edge_transport_name(a->cfg.transport), 0);
	av_dict_set_int(&o, "analyzeduration", 1000000, 0);
	av_dict_set_int(&o, "probesize", 512 * 1024, 0);
	atomic_store(&g->analyze_deadline_mono, cn_time_mono_ms() + g->opts.timeout_ms);
	rc = avformat_open_input(&a->ic, url, NULL, &o);
	av_dict_free(&o);
	memset(url, 0, sizeof(url));
	if (rc < 0)
		return rc;
	atomic_store(&g->analyze_deadline_mono, cn_time_mono_ms() + g->opts.timeout_ms);
	if ((rc = avformat_find_stream_info(a->ic, NULL)) < 0)
		return rc;
	if ((vi = av_find_best_stream(a->ic, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0)) < 0)
		return vi;
	for (unsigned i = 0; i < a->ic->nb_streams; i++)
		a->ic->streams[i]->discard = (int)i == vi ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
	a->dec = avcodec_alloc_context3(codec);
	if (!a->dec)
		return -ENOMEM;
	if ((rc = avcodec_parameters_to_context(a->dec, a->ic->streams[vi]->codecpar)) < 0)
		return rc;
	a->dec->thread_count = 1; /* many cameras share few cores */
	if ((rc = avcodec_open2(a->dec, codec, NULL)) < 0)
		return rc;
	return vi;
}

static void report(struct analyzer *a, const struct edge_motion_result *r)
{
	char region[96];

	snprintf(region, sizeof(region), "%.3f,%.3f,%.3f,%.3f", r->x, r->y, r->w, r->h);
	edge_ingest_emit(a->g, a->ix, "motion", r->started ? "active" : "inactive",
			 r->started ? region : NULL);
	cn_log_info("motion", "camera '%s': motion %s%s%s", a->cfg.id, r->started ? "started" : "stopped",
		    r->started ? " at " : "", r->started ? region : "");
}

/* Decodes one frame's worth; analyses it when the analysis interval has passed. */
static int analyse_frame(struct analyzer *a, AVFrame *f)
{
	struct edge_ingest *g = a->g;
	struct edge_motion_result res;
	int64_t now = cn_time_mono_ms();

	if (now - a->last_ms < 1000 / (a->cfg.motion.fps > 0 ? a->cfg.motion.fps : 5))
		return 0;
	a->last_ms = now;
	if (!a->sws || f->width * a->h != a->w * f->height) {
		/* First frame (or a new size): pick the analysis size from its aspect. */
		a->w = ANALYSIS_WIDTH;
		a->h = (f->height * ANALYSIS_WIDTH / (f->width ? f->width : 1)) & ~1;
		if (a->h < EDGE_MOTION_MIN_DIM)
			return -EINVAL;
		sws_freeContext(a->sws);
		free(a->luma);
		a->luma = malloc((size_t)a->w * (size_t)a->h);
		a->sws = sws_getContext(f->width, f->height, f->format, a->w, a->h, AV_PIX_FMT_GRAY8,
					SWS_FAST_BILINEAR, NULL, NULL, NULL);
		if (!a->sws || !a->luma || build_detector(a) < 0)
			return -ENOMEM;
	}
	uint8_t *dst[4] = { a->luma };
	int dst_stride[4] = { a->w };
	sws_scale(a->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dst_stride);
	if (edge_motion_feed(a->det, a->luma, a->w, now, &res) < 0)
		return 0;
	if (res.started || res.stopped)
		report(a, &res);
	if (res.active) {
		atomic_store(&g->motion_active, true);
		atomic_store(&g->motion_until_mono, now + (int64_t)a->cfg.post_record_s * 1000);
	} else {
		atomic_store(&g->motion_active, false);
	}
	return 0;
}

void *edge_analyze_thread(void *ingest)
{
	struct analyzer a = { .g = ingest };
	struct edge_ingest *g = ingest;
	AVPacket *pkt = av_packet_alloc();
	AVFrame *frame = av_frame_alloc();
	int64_t backoff = 1000;

	if (!pkt || !frame) {
		cn_log_error("motion", "camera '%s': cannot start motion analysis", g->cfg.id);
		goto out_free;
	}
	while (!atomic_load(&g->stop)) {
		bool enabled;
		g_mutex_lock(&g->lock);
		enabled = g->cfg.motion.enabled;
		g_mutex_unlock(&g->lock);
		if (!enabled) {
			atomic_store(&g->motion_active, false);
			g_usleep(300000);
			continue;
		}
		/* The index connection only for cameras that analyse (events to write). */
		if (!a.ix && edge_index_open(g->opts.index_path, &a.ix) < 0) {
			g_usleep(1000000);
			continue;
		}
		int vi = open_session(&a);
		if (vi < 0) {
			close_session(&a);
			for (int64_t t = 0; t < backoff && !atomic_load(&g->stop); t += 100)
				g_usleep(100000);
			backoff = backoff * 2 > g->opts.backoff_max_ms ? g->opts.backoff_max_ms : backoff * 2;
			continue;
		}
		backoff = 1000;
		a.last_ms = 0;
		while (!atomic_load(&g->stop)) {
			atomic_store(&g->analyze_deadline_mono, cn_time_mono_ms() + g->opts.timeout_ms);
			if (av_read_frame(a.ic, pkt) < 0)
				break;
			if (pkt->stream_index == vi && avcodec_send_packet(a.dec, pkt) == 0) {
				while (avcodec_receive_frame(a.dec, frame) == 0) {
					analyse_frame(&a, frame);
					av_frame_unref(frame);
				}
			}
			av_packet_unref(pkt);
			/* Settings edited live: rebuild the detector, or stop if disabled. */
			g_mutex_lock(&g->lock);
			bool still = g->cfg.motion.enabled;
			bool changed = motion_cfg_changed(&g->cfg, &a.cfg);
			if (changed)
				a.cfg = g->cfg;
			g_mutex_unlock(&g->lock);
			if (!still)
				break;
			if (changed && a.det)
				build_detector(&a);
		}
		if (atomic_load(&g->motion_active)) {
			/* The analysis stream went away mid-event: close the event. */
			struct edge_motion_result r = { .stopped = true };
			report(&a, &r);
			atomic_store(&g->motion_active, false);
		}
		close_session(&a);
	}
out_free:
	close_session(&a);
	edge_index_close(a.ix);
	av_packet_free(&pkt);
	av_frame_free(&frame);
	return NULL;
}
