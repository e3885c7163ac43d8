/* edge_analyze.c: motion analysis: sub stream (own RTSP session) or the recorder's packets -> decode -> downscale -> edge_motion -> events. */
#include "edge_analyze.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

#include "cn_err.h"
#include "cn_log.h"
#include "cn_queue.h"
#include "cn_time.h"
#include "edge_ingest.h"
#include "edge_motion.h"

#define ANALYSIS_WIDTH 320
#define START_FRAMES 2
#define STOP_MS 3000
#define TAP_POP_MS 300

/* ---- the tap: ingest thread -> analysis thread ---- */

struct edge_mtap {
	struct cn_queue *q;
	atomic_bool wanted;
	atomic_llong bytes;           /* queued packet bytes, bounded by EDGE_MTAP_BYTES */
	GMutex lock;                  /* guards par, tb, gen */
	AVCodecParameters *par;
	AVRational tb;
	uint64_t gen;                 /* stream session; items of an older one are stale */
	bool need_key;                /* producer only: dropped something, resume on a keyframe */
};

struct mtap_item {
	AVPacket *pkt;
	uint64_t gen;
};

static void mtap_item_free(void *p)
{
	struct mtap_item *it = p;

	av_packet_free(&it->pkt);
	free(it);
}

int edge_mtap_new(struct edge_mtap **out)
{
	struct edge_mtap *t = calloc(1, sizeof(*t));
	int rc;

	if (!t || !(t->par = avcodec_parameters_alloc())) {
		free(t);
		return -ENOMEM;
	}
	if ((rc = cn_queue_new("motion-tap", EDGE_MTAP_PACKETS, NULL, NULL, NULL, mtap_item_free, &t->q)) < 0) {
		avcodec_parameters_free(&t->par);
		free(t);
		return rc;
	}
	g_mutex_init(&t->lock);
	*out = t;
	return 0;
}

void edge_mtap_free(struct edge_mtap *t)
{
	if (!t)
		return;
	cn_queue_free(t->q);
	avcodec_parameters_free(&t->par);
	g_mutex_clear(&t->lock);
	free(t);
}

void edge_mtap_begin(struct edge_mtap *t, const AVCodecParameters *par, AVRational tb)
{
	g_mutex_lock(&t->lock);
	if (avcodec_parameters_copy(t->par, par) < 0)
		t->par->codec_id = AV_CODEC_ID_NONE; /* the analyser waits for the next session */
	t->tb = tb;
	t->gen++;
	g_mutex_unlock(&t->lock);
	t->need_key = true;
}

void edge_mtap_feed(struct edge_mtap *t, const AVPacket *pkt)
{
	struct mtap_item *it;

	if (!atomic_load(&t->wanted)) {
		t->need_key = true;
		return;
	}
	if (t->need_key && !(pkt->flags & AV_PKT_FLAG_KEY))
		return;
	if (atomic_load(&t->bytes) + pkt->size > EDGE_MTAP_BYTES || !(it = calloc(1, sizeof(*it)))) {
		t->need_key = true;
		return;
	}
	/* A reference to the same buffer: no copy of the picture. */
	if (!(it->pkt = av_packet_clone(pkt))) {
		free(it);
		t->need_key = true;
		return;
	}
	g_mutex_lock(&t->lock);
	it->gen = t->gen;
	g_mutex_unlock(&t->lock);
	atomic_fetch_add(&t->bytes, pkt->size);
	if (cn_queue_push(t->q, it) < 0) {
		/* The analyser is behind: skip to the next keyframe rather than wait for it. */
		atomic_fetch_sub(&t->bytes, pkt->size);
		mtap_item_free(it);
		t->need_key = true;
		return;
	}
	t->need_key = false;
}

static void mtap_drain(struct edge_mtap *t)
{
	void *p;

	while (cn_queue_pop(t->q, 0, &p) == 0) {
		struct mtap_item *it = p;
		atomic_fetch_sub(&t->bytes, it->pkt->size);
		mtap_item_free(it);
	}
}

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
	/* tap mode */
	uint64_t gen;           /* stream session the decoder was opened for */
	AVRational tb;
	bool skip_to_key;       /* the rest of this GOP holds no analysis sample */
	int64_t key_ms, gop_ms; /* last keyframe's media time, last GOP's length */
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
static int64_t analysis_interval_ms(const struct analyzer *a)
{
	return 1000 / (a->cfg.motion.fps > 0 ? a->cfg.motion.fps : 5);
}

/* ts_ms: the frame's time (media time from the tap, arrival otherwise); returns 1 when the
 * frame was analysed. */
static int analyse_frame(struct analyzer *a, AVFrame *f, int64_t ts_ms)
{
	struct edge_ingest *g = a->g;
	struct edge_motion_result res;
	int64_t now = cn_time_mono_ms();

	/* A little slack: frames of a 15 fps camera are 66/67 ms apart. */
	if (a->last_ms != INT64_MIN && ts_ms - a->last_ms < analysis_interval_ms(a) - 5)
		return 0;
	a->last_ms = ts_ms;
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
	if (edge_motion_feed(a->det, a->luma, a->w, ts_ms, &res) < 0)
		return 1;
	if (res.started || res.stopped)
		report(a, &res);
	if (res.active) {
		atomic_store(&g->motion_active, true);
		atomic_store(&g->motion_until_mono, now + (int64_t)a->cfg.post_record_s * 1000);
	} else {
		atomic_store(&g->motion_active, false);
	}
	return 1;
}

/* Motion may have been open when the analysed stream went away: close the event. */
static void end_event(struct analyzer *a)
{
	if (atomic_load(&a->g->motion_active)) {
		struct edge_motion_result r = { .stopped = true };
		report(a, &r);
		atomic_store(&a->g->motion_active, false);
	}
}

/* Settings edited live: rebuilds the detector; false when analysis must leave this mode
 * (motion disabled, or sub_url added or removed). */
static bool still_wanted(struct analyzer *a, bool tap)
{
	struct edge_ingest *g = a->g;

	g_mutex_lock(&g->lock);
	bool still = g->cfg.motion.enabled && (g->cfg.sub_url[0] == '\0') == tap;
	bool changed = motion_cfg_changed(&g->cfg, &a->cfg);
	if (changed)
		a->cfg = g->cfg;
	g_mutex_unlock(&g->lock);
	if (still && changed && a->det)
		build_detector(a);
	return still && !atomic_load(&g->stop);
}

/* sub_url: the analyser's own RTSP session on the sub stream. */
static void run_own_session(struct analyzer *a, AVPacket *pkt, AVFrame *frame, int64_t *backoff)
{
	struct edge_ingest *g = a->g;
	int vi = open_session(a);

	if (vi < 0) {
		close_session(a);
		for (int64_t t = 0; t < *backoff && !atomic_load(&g->stop); t += 100)
			g_usleep(100000);
		*backoff = *backoff * 2 > g->opts.backoff_max_ms ? g->opts.backoff_max_ms : *backoff * 2;
		return;
	}
	*backoff = 1000;
	a->last_ms = INT64_MIN;
	while (!atomic_load(&g->stop)) {
		atomic_store(&g->analyze_deadline_mono, cn_time_mono_ms() + g->opts.timeout_ms);
		if (av_read_frame(a->ic, pkt) < 0)
			break;
		if (pkt->stream_index == vi && avcodec_send_packet(a->dec, pkt) == 0) {
			while (avcodec_receive_frame(a->dec, frame) == 0) {
				analyse_frame(a, frame, cn_time_mono_ms());
				av_frame_unref(frame);
			}
		}
		av_packet_unref(pkt);
		if (!still_wanted(a, false))
			break;
	}
	end_event(a);
	close_session(a);
}

/* (Re)opens the decoder for the tap's current stream session; false while there is none
 * usable (the item is then dropped). */
static bool tap_open(struct analyzer *a, uint64_t gen)
{
	struct edge_mtap *t = a->g->mtap;
	const AVCodec *codec;
	bool ok = false;

	end_event(a);
	close_session(a);
	a->gen = gen;
	a->last_ms = INT64_MIN;
	a->skip_to_key = false;
	a->key_ms = INT64_MIN;
	a->gop_ms = 0;
	g_mutex_lock(&t->lock);
	if (t->gen == gen && (codec = avcodec_find_decoder(t->par->codec_id)) &&
	    (a->dec = avcodec_alloc_context3(codec)) &&
	    avcodec_parameters_to_context(a->dec, t->par) >= 0) {
		a->tb = t->tb;
		ok = true;
	}
	g_mutex_unlock(&t->lock);
	if (!ok) {
		avcodec_free_context(&a->dec);
		return false;
	}
	a->dec->thread_count = 1; /* many cameras share few cores */
	/* Frames no other frame refers to are never needed to decode the ones we analyse. */
	a->dec->skip_frame = AVDISCARD_NONREF;
	if (avcodec_open2(a->dec, codec, NULL) < 0) {
		avcodec_free_context(&a->dec);
		return false;
	}
	return true;
}

/* One packet from the tap: decoded only when an analysis sample may still fall before
 * the next keyframe. P-frames need every frame since the keyframe, so what can be saved
 * is the tail of each GOP after its last sample (the GOP's length is guessed from the
 * previous one); the decoder state stays right because decoding resumes on a keyframe. */
static void tap_packet(struct analyzer *a, AVPacket *pkt, AVFrame *frame)
{
	int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
	int64_t ms = av_rescale_q(ts, a->tb, (AVRational){ 1, 1000 });

	if (pkt->flags & AV_PKT_FLAG_KEY) {
		if (a->key_ms != INT64_MIN && ms > a->key_ms && ms - a->key_ms < 60000)
			a->gop_ms = ms - a->key_ms;
		a->key_ms = ms;
		a->skip_to_key = false;
	} else if (a->key_ms == INT64_MIN || a->skip_to_key) {
		return;
	}
	if (avcodec_send_packet(a->dec, pkt) < 0)
		return;
	while (avcodec_receive_frame(a->dec, frame) == 0) {
		int64_t fts = frame->best_effort_timestamp != AV_NOPTS_VALUE ? frame->best_effort_timestamp : ts;
		int64_t fms = av_rescale_q(fts, a->tb, (AVRational){ 1, 1000 });
		if (analyse_frame(a, frame, fms) == 1 && a->gop_ms > 0 &&
		    fms + analysis_interval_ms(a) - 5 >= a->key_ms + a->gop_ms)
			a->skip_to_key = true;
		av_frame_unref(frame);
	}
}

/* No sub_url: the recorder's packets, so the camera serves a single RTSP session. */
static void run_tap(struct analyzer *a, AVFrame *frame)
{
	struct edge_ingest *g = a->g;
	struct edge_mtap *t = g->mtap;
	void *p;

	g_mutex_lock(&g->lock);
	a->cfg = g->cfg;
	g_mutex_unlock(&g->lock);
	a->gen = 0;
	atomic_store(&t->wanted, true);
	int64_t last_item = cn_time_mono_ms();
	while (still_wanted(a, true)) {
		if (cn_queue_pop(t->q, TAP_POP_MS, &p) < 0) {
			/* The recorder lost the camera: an open event ends, as with a lost session. */
			if (cn_time_mono_ms() - last_item > g->opts.timeout_ms)
				end_event(a);
			continue;
		}
		last_item = cn_time_mono_ms();
		struct mtap_item *it = p;
		atomic_fetch_sub(&t->bytes, it->pkt->size);
		if (it->gen != a->gen && !tap_open(a, it->gen))
			a->gen = 0; /* no decoder: try again with the next item */
		if (a->dec && it->gen == a->gen)
			tap_packet(a, it->pkt, frame);
		mtap_item_free(it);
	}
	atomic_store(&t->wanted, false);
	mtap_drain(t);
	end_event(a);
	close_session(a);
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
		bool enabled, tap;
		g_mutex_lock(&g->lock);
		enabled = g->cfg.motion.enabled;
		tap = g->cfg.sub_url[0] == '\0';
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
		if (tap)
			run_tap(&a, frame);
		else
			run_own_session(&a, pkt, frame, &backoff);
	}
out_free:
	close_session(&a);
	edge_index_close(a.ix);
	av_packet_free(&pkt);
	av_frame_free(&frame);
	return NULL;
}
