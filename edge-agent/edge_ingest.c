/* edge_ingest.c: the camera thread: connect with timeouts, back off, record, report state as events. */
#include "edge_ingest.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <libavutil/avutil.h>

#include "cn_base64.h"
#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_log.h"
#include "cn_time.h"
#include "edge_analyze.h"
#include "edge_avlog.h"
#include "edge_rtsp.h"

#define BACKOFF_MIN_MS 1000
#define RATE_WINDOW_MS 2000

static const char *const state_names[] = { "connecting", "online", "unauthorized", "unreachable",
					   "stopped" };

const char *edge_cam_state_name(enum edge_cam_state s)
{
	return (unsigned)s <= EDGE_CAM_STOPPED ? state_names[s] : "?";
}

/* libavformat calls this often while blocked; non-zero aborts the operation. */
static int interrupt_cb(void *arg)
{
	struct edge_ingest *g = arg;

	return atomic_load(&g->stop) || cn_time_mono_ms() > atomic_load(&g->op_deadline_mono);
}

static void arm_deadline(struct edge_ingest *g)
{
	atomic_store(&g->op_deadline_mono, cn_time_mono_ms() + g->opts.timeout_ms);
}

/* Percent-encodes credentials for the userinfo part of a URL (RFC 3986 3.2.1). */
static void userinfo_escape(const char *in, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *in && o + 4 < cap; in++) {
		unsigned char c = (unsigned char)*in;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

void edge_ingest_url(const struct edge_camera_cfg *c, const char *url, char *out, size_t cap)
{
	const char *rest = strstr(url, "://") + 3;
	char user[200], pass[400];

	if (!c->username[0]) {
		cn_strlcpy(out, url, cap);
		return;
	}
	userinfo_escape(c->username, user, sizeof(user));
	userinfo_escape(c->password, pass, sizeof(pass));
	snprintf(out, cap, "%.*s://%s:%s@%s", (int)(strstr(url, "://") - url), url, user, pass, rest);
}

void edge_ingest_emit(struct edge_ingest *g, struct edge_index *ix, const char *type,
		      const char *state, const char *reason)
{
	char id[24], ts[40];
	cJSON *o = cJSON_CreateObject();
	char *json = NULL;
	int64_t now = cn_time_wall_ms();
	int rc;

	cn_random_id(id, sizeof(id));
	cn_time_format_rfc3339(now, ts, sizeof(ts));
	if (!o || !cJSON_AddStringToObject(o, "id", id) ||
	    !cJSON_AddStringToObject(o, "camera", g->cfg.id) ||
	    !cJSON_AddStringToObject(o, "type", type) || !cJSON_AddStringToObject(o, "time", ts) ||
	    !cJSON_AddStringToObject(o, "state", state) ||
	    (reason && !cJSON_AddStringToObject(o, strcmp(type, "motion") == 0 ? "region" : "reason", reason)) ||
	    !(json = cJSON_PrintUnformatted(o))) {
		cn_log_error("ingest", "camera '%s': cannot build %s event", g->cfg.id, type);
	} else if ((rc = edge_index_event_add(ix, id, g->cfg.id, type, now, json, NULL)) == CN_E_FULL) {
		/* counted and reported by the outbox; one log line per event would flood */
		cn_log_debug("ingest", "camera '%s': %s event dropped: outbox full", g->cfg.id, type);
	} else if (rc < 0) {
		cn_log_error("ingest", "camera '%s': cannot store %s event: %s", g->cfg.id, type,
			     cn_strerror(rc));
	}
	cJSON_free(json);
	cJSON_Delete(o);
}

/* Records the state for the API; emits an event when the camera's reported state
 * changes (connecting is transient and never reported), so an offline period that
 * retries many times is one event, not one per attempt. */
static void set_state(struct edge_ingest *g, struct edge_index *ix, enum edge_cam_state s,
		      const char *reason)
{
	bool changed;

	g_mutex_lock(&g->lock);
	/* A retry of a failed camera is not news: keep showing why it failed (the API
	 * shows the retry delay separately). */
	if (s == EDGE_CAM_CONNECTING && g->reported != EDGE_CAM_CONNECTING &&
	    g->reported != EDGE_CAM_ONLINE) {
		g_mutex_unlock(&g->lock);
		return;
	}
	changed = s != EDGE_CAM_CONNECTING && s != g->reported;
	if (g->st.state != s && (changed || s == EDGE_CAM_CONNECTING))
		g->st.since_ms = cn_time_wall_ms();
	g->st.state = s;
	cn_strlcpy(g->st.reason, reason ? reason : "", sizeof(g->st.reason));
	if (changed)
		g->reported = s;
	g_mutex_unlock(&g->lock);
	if (!changed)
		return;
	if (s == EDGE_CAM_ONLINE)
		cn_log_info("ingest", "camera '%s' online", g->cfg.id);
	else if (s != EDGE_CAM_STOPPED)
		cn_log_warn("ingest", "camera '%s' %s: %s", g->cfg.id, edge_cam_state_name(s), reason);
	if (ix && s != EDGE_CAM_STOPPED)
		edge_ingest_emit(g, ix, s == EDGE_CAM_ONLINE ? "camera.online" : "camera.offline",
			   edge_cam_state_name(s), reason);
}

/* Sleeps up to ms, in small steps so a stop request is seen quickly. */
static void nap(struct edge_ingest *g, int64_t ms)
{
	int64_t end = cn_time_mono_ms() + ms;

	while (!atomic_load(&g->stop) && cn_time_mono_ms() < end)
		g_usleep(50000);
}

static const char *describe_error(int err, char *buf, size_t cap)
{
	av_strerror(err, buf, cap);
	return buf;
}

static void set_recording(struct edge_ingest *g, const struct edge_segw *w)
{
	g_mutex_lock(&g->lock);
	g->st.recording = w->oc != NULL;
	g->st.segments = w->segments;
	g->st.fragments = w->fragments;
	g->st.bytes_recorded = w->bytes + (uint64_t)(w->oc ? w->valid_bytes : 0);
	g_mutex_unlock(&g->lock);
}

/* Pre-record: the last pre_record_s seconds of packets while not recording, starting on a
 * keyframe and bounded in bytes, flushed into the segment when motion starts recording. */
#define PREREC_MAX_PACKETS 4096
#define PREREC_MAX_BYTES (16 * 1024 * 1024)

struct prerec {
	AVPacket *pkts[PREREC_MAX_PACKETS];
	int64_t recv_ms[PREREC_MAX_PACKETS];
	int head, count;
	int64_t bytes;
};

static AVPacket *pr_at(struct prerec *r, int i)
{
	return r->pkts[(r->head + i) % PREREC_MAX_PACKETS];
}

static void pr_drop_head(struct prerec *r)
{
	AVPacket *p = r->pkts[r->head];

	r->bytes -= p->size;
	av_packet_free(&r->pkts[r->head]);
	r->head = (r->head + 1) % PREREC_MAX_PACKETS;
	r->count--;
}

static void pr_clear(struct prerec *r)
{
	while (r->count)
		pr_drop_head(r);
}

/* Drops whole GOPs from the front while the next GOP still covers the window (or the
 * bytes or slots are over their bounds), so the buffer always starts on a keyframe. */
static void pr_trim(struct prerec *r, int64_t window_ms, AVRational tb)
{
	for (;;) {
		int next_key = -1;
		for (int i = 1; i < r->count; i++) {
			if (pr_at(r, i)->flags & AV_PKT_FLAG_KEY) {
				next_key = i;
				break;
			}
		}
		if (next_key < 0)
			break;
		int64_t newest = pr_at(r, r->count - 1)->dts;
		int64_t span_ms = av_rescale_q(newest - pr_at(r, next_key)->dts, tb, (AVRational){ 1, 1000 });
		bool over = r->bytes > PREREC_MAX_BYTES || r->count > PREREC_MAX_PACKETS - 64;
		if (span_ms < window_ms && !over)
			break;
		while (next_key-- > 0)
			pr_drop_head(r);
	}
}

static void pr_push(struct prerec *r, const AVPacket *pkt, int64_t recv_ms, int64_t window_ms,
		    AVRational tb)
{
	AVPacket *copy;

	if (window_ms <= 0 || (r->count == 0 && !(pkt->flags & AV_PKT_FLAG_KEY)))
		return;
	if (r->count == PREREC_MAX_PACKETS)
		pr_clear(r); /* a GOP longer than the ring: start again at the next keyframe */
	if (!(copy = av_packet_clone(pkt)))
		return;
	int slot = (r->head + r->count) % PREREC_MAX_PACKETS;
	r->pkts[slot] = copy;
	r->recv_ms[slot] = recv_ms;
	r->count++;
	r->bytes += pkt->size;
	pr_trim(r, window_ms, tb);
}

/* Where a session's packets come from: libavformat's demuxer, or the lean RTSP client
 * (edge_rtsp.c: video is stream 0, audio 1). */
struct ingest_src {
	AVFormatContext *ic;
	struct edge_rtsp *rtsp;
	int vi, ai;
	const AVCodecParameters *vpar, *apar;
	AVRational vtb, atb;
};

/* The stream is up: status, live view and motion taps, the segment writer's audio. */
static void go_online(struct edge_ingest *g, struct edge_index *ix, struct edge_segw *w,
		      const struct ingest_src *src)
{
	g_mutex_lock(&g->lock);
	cn_strlcpy(g->st.codec, avcodec_get_name(src->vpar->codec_id), sizeof(g->st.codec));
	g->st.width = src->vpar->width;
	g->st.height = src->vpar->height;
	g->st.retry_in_ms = 0;
	g_mutex_unlock(&g->lock);
	set_state(g, ix, EDGE_CAM_ONLINE, NULL);
	edge_live_begin(g->live, src->vpar, src->apar);
	edge_mtap_begin(g->mtap, src->vpar, src->vtb);
	edge_segw_set_audio(w, src->apar, src->apar ? src->atb : (AVRational){ 1, 8000 });
}

/* Reads from an open input until it fails or we are asked to stop. Returns -ENOTSUP
 * when the lean client found a stream it cannot take (the caller switches to
 * libavformat), else 0. */
static int run_session(struct edge_ingest *g, struct edge_index *ix, struct edge_segw *w,
		       struct ingest_src *src)
{
	AVFormatContext *ic = src->ic;
	int vi = src->vi, ai = src->ai;
	const AVCodecParameters *vpar = src->vpar;
	AVRational vtb = src->vtb;
	uint64_t dropped_seen = 0;
	int ret = 0;
	AVPacket *pkt = av_packet_alloc();
	int64_t win_start = cn_time_mono_ms(), win_pkts = 0, win_bytes = 0;
	int64_t pause_until = 0, next_dts = AV_NOPTS_VALUE, last_dur = 0, fallback_check = 0;
	bool fallback = false;
	char errbuf[128];
	bool disk_full = false;
	struct prerec *pre = calloc(1, sizeof(*pre));

	if (!pkt || !pre) {
		av_packet_free(&pkt);
		free(pre);
		return 0;
	}
	while (!atomic_load(&g->stop)) {
		char reason[200];
		bool changed = false;
		int rc;
		arm_deadline(g);
		if (src->rtsp) {
			/* Latency matters only to live viewers; recording and motion take the
			 * longer batch (fewer wakeups). */
			edge_rtsp_set_batch(src->rtsp, edge_live_viewers(g->live) > 0 ? g->opts.batch_ms
										: g->opts.batch_idle_ms);
			rc = edge_rtsp_read(src->rtsp, pkt, &changed, reason, sizeof(reason));
		}
		else
			rc = av_read_frame(ic, pkt);
		int64_t now_mono = cn_time_mono_ms(), now = cn_time_wall_ms();
		if (rc < 0 && src->rtsp) {
			if (atomic_load(&g->stop))
				break;
			if (rc == -ENOTSUP) {
				cn_log_info("ingest", "camera '%s': %s: switching to libavformat", g->cfg.id, reason);
				ret = -ENOTSUP;
				break;
			}
			set_state(g, ix, EDGE_CAM_UNREACHABLE, reason);
			break;
		}
		if (changed) {
			/* New parameter sets on a keyframe: the segment writer cuts (format
			 * changed), viewers and the analyser restart on this keyframe. */
			g_mutex_lock(&g->lock);
			g->st.width = vpar->width;
			g->st.height = vpar->height;
			g_mutex_unlock(&g->lock);
			edge_live_begin(g->live, vpar, src->apar);
			edge_mtap_begin(g->mtap, vpar, vtb);
		}
		if (rc < 0) {
			if (atomic_load(&g->stop))
				break;
			if (now_mono > atomic_load(&g->op_deadline_mono))
				snprintf(reason, sizeof(reason), "no data for %lld s",
					 (long long)(g->opts.timeout_ms / 1000));
			else
				snprintf(reason, sizeof(reason), "stream ended: %s",
					 describe_error(rc, errbuf, sizeof(errbuf)));
			set_state(g, ix, EDGE_CAM_UNREACHABLE, reason);
			break;
		}
		if (pkt->stream_index != vi) {
			if (pkt->stream_index == ai) {
				edge_live_feed_audio(g->live, pkt, src->atb, now);
				/* Into the open segment, if any (the recording decision is the
				 * video's; pre-record keeps video only). */
				if (now_mono >= pause_until)
					edge_segw_write_audio(w, pkt);
			}
			av_packet_unref(pkt);
			continue;
		}
		/* RTP gives the first packet no timestamp; place it one frame before the next. */
		if (pkt->pts == AV_NOPTS_VALUE)
			pkt->pts = next_dts != AV_NOPTS_VALUE ? next_dts : 0;
		if (pkt->dts == AV_NOPTS_VALUE)
			pkt->dts = pkt->pts;
		if (next_dts != AV_NOPTS_VALUE && pkt->dts > next_dts - last_dur)
			last_dur = pkt->dts - (next_dts - last_dur);
		next_dts = pkt->dts + (last_dur > 0 ? last_dur : 1);
		/* Viewers first: a slow disk must not delay live view. */
		edge_live_feed(g->live, pkt, vtb, now);
		edge_mtap_feed(g->mtap, pkt);
		win_pkts++;
		win_bytes += pkt->size;
		g_mutex_lock(&g->lock);
		g->st.packets++;
		g->st.bytes_in += (uint64_t)pkt->size;
		if (pkt->flags & AV_PKT_FLAG_CORRUPT)
			g->st.corrupt_packets++;
		if (src->rtsp && edge_rtsp_dropped(src->rtsp) != dropped_seen) {
			/* access units dropped whole (loss inside them) */
			g->st.corrupt_packets += edge_rtsp_dropped(src->rtsp) - dropped_seen;
			dropped_seen = edge_rtsp_dropped(src->rtsp);
		}
		bool scheduled = edge_camcfg_scheduled(&g->cfg, now, cn_time_local_offset_min(now));
		/* motion and events modes record around triggers, with pre- and post-record. */
		bool motion_mode = (g->cfg.recording == EDGE_REC_MOTION ||
				    g->cfg.recording == EDGE_REC_EVENTS) && scheduled;
		bool triggered = g->cfg.recording == EDGE_REC_MOTION
					 ? atomic_load(&g->motion_active) ||
						   now_mono < atomic_load(&g->motion_until_mono)
					 : now_mono < atomic_load(&g->event_until_mono);
		/* A camera whose analytics worker fell silent records continuously: no
		 * analytics must not mean no footage. */
		if (now_mono - fallback_check >= 1000) {
			fallback_check = now_mono;
			fallback = edge_analytics_fallback(g->opts.analytics, g->cfg.id);
		}
		bool record = (g->cfg.recording == EDGE_REC_CONTINUOUS && scheduled) ||
			      (motion_mode && triggered) ||
			      (fallback && g->cfg.recording != EDGE_REC_OFF);
		int64_t pre_ms = (int64_t)g->cfg.pre_record_s * 1000;
		if (now_mono - win_start >= RATE_WINDOW_MS) {
			g->st.fps = (double)win_pkts * 1000.0 / (double)(now_mono - win_start);
			g->st.kbps = (double)win_bytes * 8.0 / (double)(now_mono - win_start);
			win_start = now_mono;
			win_pkts = win_bytes = 0;
		}
		g_mutex_unlock(&g->lock);

		if (record && now_mono >= pause_until && pre->count) {
			/* Motion began: what the camera saw just before goes first. */
			for (int i = 0; i < pre->count; i++) {
				int slot = (pre->head + i) % PREREC_MAX_PACKETS;
				edge_segw_write(w, vpar, vtb, pre->pkts[slot], pre->recv_ms[slot]);
			}
			pr_clear(pre);
		}
		if (!record && motion_mode)
			pr_push(pre, pkt, now, pre_ms, vtb);
		else if (pre->count)
			pr_clear(pre);
		if (record && now_mono >= pause_until) {
			rc = edge_segw_write(w, vpar, vtb, pkt, now);
			if (rc == -ENOSPC) {
				/* Keep the stream alive and retry shortly: retention frees space. */
				pause_until = now_mono + 5000;
				if (!disk_full) {
					disk_full = true;
					cn_log_error("ingest", "camera '%s': archive disk full, recording paused",
						     g->cfg.id);
					edge_ingest_emit(g, ix, "recording.disk_full", "paused",
						   "no space left on the archive filesystem");
				}
			} else if (rc < 0) {
				cn_log_error("ingest", "camera '%s': recording failed: %s", g->cfg.id,
					     cn_strerror(rc));
				pause_until = now_mono + 5000;
			} else if (disk_full && w->oc) {
				disk_full = false;
				cn_log_info("ingest", "camera '%s': recording resumed", g->cfg.id);
				edge_ingest_emit(g, ix, "recording.resumed", "recording", NULL);
			}
		} else if (!record && w->oc) {
			edge_segw_close(w, EDGE_CUT_STOP);
		}
		g_mutex_lock(&g->lock);
		g->st.disk_full = disk_full;
		g_mutex_unlock(&g->lock);
		set_recording(g, w);
		av_packet_unref(pkt);
	}
	pr_clear(pre);
	free(pre);
	av_packet_free(&pkt);
	return ret;
}

/* A failed connection: report why, wait the backoff, double it. */
static void connect_failed(struct edge_ingest *g, struct edge_index *ix, bool unauthorized,
			   const char *reason, int64_t *backoff)
{
	set_state(g, ix, unauthorized ? EDGE_CAM_UNAUTHORIZED : EDGE_CAM_UNREACHABLE, reason);
	g_mutex_lock(&g->lock);
	g->st.retry_in_ms = *backoff;
	g->st.reconnects++;
	g_mutex_unlock(&g->lock);
	nap(g, *backoff);
	*backoff = *backoff * 2 > g->opts.backoff_max_ms ? g->opts.backoff_max_ms : *backoff * 2;
}

/* A session ended (t0: when it began connecting): wait before reconnecting. */
static void session_ended(struct edge_ingest *g, int64_t t0, int64_t *backoff)
{
	/* A session that lasted a while resets the backoff; a flapping camera does not. */
	if (cn_time_mono_ms() - t0 > 30000)
		*backoff = BACKOFF_MIN_MS;
	if (atomic_load(&g->stop))
		return;
	g_mutex_lock(&g->lock);
	g->st.reconnects++;
	g->st.retry_in_ms = *backoff;
	g_mutex_unlock(&g->lock);
	nap(g, *backoff);
	*backoff = *backoff * 2 > g->opts.backoff_max_ms ? g->opts.backoff_max_ms : *backoff * 2;
}

/* One session through the lean client. Returns -ENOTSUP when the camera's stream is not
 * one it takes (the caller uses libavformat from then on), else 0. */
static int lean_session(struct edge_ingest *g, struct edge_index *ix, struct edge_segw *w,
			int64_t *backoff)
{
	struct edge_rtsp_opts o = {
		.timeout_ms = g->opts.timeout_ms,
		.batch_ms = g->opts.batch_ms,
		.stop = &g->stop,
		.lost = &g->rtp_lost,
	};
	struct ingest_src src = { .vi = 0, .ai = -1 };
	char url[512], user[64], pass[128], reason[200];
	int64_t t0 = cn_time_mono_ms();
	int rc;

	g_mutex_lock(&g->lock);
	cn_strlcpy(url, g->cfg.main_url, sizeof(url));
	cn_strlcpy(user, g->cfg.username, sizeof(user));
	cn_strlcpy(pass, g->cfg.password, sizeof(pass));
	g_mutex_unlock(&g->lock);
	o.url = url;
	o.user = user;
	o.pass = pass;
	rc = edge_rtsp_open(&o, &src.rtsp, reason, sizeof(reason));
	memset(pass, 0, sizeof(pass));
	if (rc == -ENOTSUP) {
		cn_log_info("ingest", "camera '%s': %s: using libavformat", g->cfg.id, reason);
		return -ENOTSUP;
	}
	if (rc < 0) {
		if (!atomic_load(&g->stop))
			connect_failed(g, ix, rc == -EACCES, reason, backoff);
		return 0;
	}
	src.vpar = edge_rtsp_video(src.rtsp, &src.vtb);
	src.apar = edge_rtsp_audio(src.rtsp, &src.atb);
	src.ai = src.apar ? 1 : -1;
	go_online(g, ix, w, &src);
	rc = run_session(g, ix, w, &src);
	edge_segw_close(w, EDGE_CUT_STOP);
	set_recording(g, w);
	edge_rtsp_close(src.rtsp);
	if (rc == -ENOTSUP)
		return rc;
	session_ended(g, t0, backoff);
	return 0;
}

static gpointer ingest_thread(gpointer data)
{
	struct edge_ingest *g = data;
	struct edge_index *ix = NULL;
	struct edge_segw w;
	int64_t backoff = BACKOFF_MIN_MS;
	char url[1200], errbuf[128];
	bool lean_off = false; /* this camera's stream needs libavformat */

	if (edge_index_open(g->opts.index_path, &ix) < 0) {
		set_state(g, NULL, EDGE_CAM_STOPPED, "cannot open the archive index");
		atomic_store(&g->exited, true);
		return NULL;
	}
	edge_segw_init(&w, g->opts.archive_dir, g->cfg.id, g->opts.segment_ms, ix);
	w.direct_io = g->opts.direct_io;
	/* Cameras added together start a little apart: a hundred simultaneous probes cost a
	 * burst of memory, CPU and network for nothing. */
	nap(g, g->start_delay_ms);
	while (!atomic_load(&g->stop)) {
		AVDictionary *o = NULL;
		int rc, vi;

		set_state(g, ix, EDGE_CAM_CONNECTING, "connecting");
		g_mutex_lock(&g->lock);
		/* RTSP over TCP (interleaved) is the common case: the lean client, unless
		 * this camera's stream turned out to need libavformat. */
		bool lean = !lean_off && strncmp(g->cfg.main_url, "rtsp://", 7) == 0 &&
			    g->cfg.transport != EDGE_TRANSPORT_UDP;
		g_mutex_unlock(&g->lock);
		if (lean) {
			if (lean_session(g, ix, &w, &backoff) == -ENOTSUP)
				lean_off = true;
			continue;
		}
		AVFormatContext *ic = avformat_alloc_context();
		g_mutex_lock(&g->lock);
		edge_ingest_url(&g->cfg, g->cfg.main_url, url, sizeof(url));
		if (g->cfg.transport != EDGE_TRANSPORT_AUTO)
			av_dict_set(&o, "rtsp_transport", edge_transport_name(g->cfg.transport), 0);
		g_mutex_unlock(&g->lock);
		av_dict_set_int(&o, "timeout", g->opts.timeout_ms * 1000, 0);
		/* The SDP and the first keyframe say all we need to copy the stream; probing
		 * FFmpeg's default 5 s would hold megabytes per camera for nothing. */
		av_dict_set_int(&o, "analyzeduration", 1000000, 0);
		av_dict_set_int(&o, "probesize", 512 * 1024, 0);
		ic->interrupt_callback.callback = interrupt_cb;
		ic->interrupt_callback.opaque = g;
		edge_avlog_register(ic, &g->rtp_lost);
		arm_deadline(g);
		int64_t t0 = cn_time_mono_ms();
		AVFormatContext *registered = ic;
		rc = avformat_open_input(&ic, url, NULL, &o);
		av_dict_free(&o);
		memset(url, 0, sizeof(url)); /* holds the password */
		if (rc >= 0) {
			/* Probe decoders single-threaded: a frame-threaded 720p decoder per camera
			 * would set the process's peak memory for a moment's probing. */
			AVDictionary *probe_opts[8] = { NULL };
			unsigned n = ic->nb_streams < 8 ? ic->nb_streams : 8;
			for (unsigned i = 0; i < n; i++)
				av_dict_set(&probe_opts[i], "threads", "1", 0);
			arm_deadline(g);
			rc = ic->nb_streams <= 8 ? avformat_find_stream_info(ic, probe_opts)
						 : avformat_find_stream_info(ic, NULL);
			for (unsigned i = 0; i < n; i++)
				av_dict_free(&probe_opts[i]);
			/* The probe decoder's frames are freed now; hand the pages back before
			 * the next camera probes, so the peak is one probe, not all of them. */
			malloc_trim(0);
		}
		vi = rc >= 0 ? av_find_best_stream(ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0) : rc;
		if (vi < 0 || atomic_load(&g->stop)) {
			if (atomic_load(&g->stop)) {
				avformat_close_input(&ic);
				edge_avlog_unregister(registered);
				break;
			}
			bool unauthorized = vi == AVERROR_HTTP_UNAUTHORIZED || vi == AVERROR_HTTP_FORBIDDEN;
			char reason[200];
			if (cn_time_mono_ms() > atomic_load(&g->op_deadline_mono))
				snprintf(reason, sizeof(reason), "no answer within %lld s",
					 (long long)(g->opts.timeout_ms / 1000));
			else if (unauthorized)
				snprintf(reason, sizeof(reason), "camera refused the credentials (%s)",
					 describe_error(vi, errbuf, sizeof(errbuf)));
			else
				snprintf(reason, sizeof(reason), "%s",
					 vi == AVERROR_STREAM_NOT_FOUND ? "no video stream"
									: describe_error(vi, errbuf, sizeof(errbuf)));
			avformat_close_input(&ic);
			edge_avlog_unregister(registered);
			connect_failed(g, ix, unauthorized, reason, &backoff);
			continue;
		}
		const AVCodecParameters *pars[16];
		unsigned np = ic->nb_streams < 16 ? ic->nb_streams : 16;
		for (unsigned i = 0; i < np; i++)
			pars[i] = ic->streams[i]->codecpar;
		int ai = edge_live_find_audio(pars, np);
		struct ingest_src src = {
			.ic = ic,
			.vi = vi,
			.ai = ai,
			.vpar = ic->streams[vi]->codecpar,
			.apar = ai >= 0 ? pars[ai] : NULL,
			.vtb = ic->streams[vi]->time_base,
			.atb = ai >= 0 ? ic->streams[ai]->time_base : (AVRational){ 1, 8000 },
		};
		go_online(g, ix, &w, &src);
		run_session(g, ix, &w, &src);
		edge_segw_close(&w, EDGE_CUT_STOP);
		set_recording(g, &w);
		avformat_close_input(&ic);
		edge_avlog_unregister(registered);
		session_ended(g, t0, &backoff);
	}
	edge_segw_close(&w, EDGE_CUT_STOP);
	edge_segw_set_audio(&w, NULL, (AVRational){ 1, 8000 });
	edge_segw_free(&w);
	set_recording(g, &w);
	set_state(g, ix, EDGE_CAM_STOPPED, "stopped");
	edge_live_end(g->live);
	edge_index_close(ix);
	atomic_store(&g->exited, true);
	return NULL;
}

int edge_ingest_start(const struct edge_camera_cfg *cfg, const struct edge_ingest_opts *opts,
		      int64_t start_delay_ms, struct edge_ingest **out)
{
	struct edge_ingest *g = calloc(1, sizeof(*g));
	char name[16];

	if (!g)
		return -ENOMEM;
	g->opts = *opts;
	g->cfg = *cfg;
	g->start_delay_ms = start_delay_ms;
	g_mutex_init(&g->lock);
	g->st.state = EDGE_CAM_CONNECTING;
	g->reported = EDGE_CAM_CONNECTING;
	g->st.since_ms = cn_time_wall_ms();
	if (edge_live_new(cfg->id, g_main_context_default(), &g->live) < 0) {
		g_mutex_clear(&g->lock);
		free(g);
		return -ENOMEM;
	}
	if (edge_mtap_new(&g->mtap) < 0) {
		edge_live_unref(g->live);
		g_mutex_clear(&g->lock);
		free(g);
		return -ENOMEM;
	}
	snprintf(name, sizeof(name), "cam-%.11s", cfg->id);
	g->thread = g_thread_new(name, ingest_thread, g);
	snprintf(name, sizeof(name), "mot-%.11s", cfg->id);
	g->analyze_thread = g_thread_new(name, edge_analyze_thread, g);
	*out = g;
	return 0;
}

void edge_ingest_update(struct edge_ingest *g, const struct edge_camera_cfg *cfg)
{
	g_mutex_lock(&g->lock);
	g->cfg = *cfg;
	g_mutex_unlock(&g->lock);
}

void edge_ingest_status(struct edge_ingest *g, struct edge_ingest_status *out)
{
	g_mutex_lock(&g->lock);
	*out = g->st;
	g_mutex_unlock(&g->lock);
	out->packets_lost = (uint64_t)atomic_load(&g->rtp_lost);
}

void edge_ingest_request_stop(struct edge_ingest *g)
{
	atomic_store(&g->stop, true);
}

bool edge_ingest_exited(struct edge_ingest *g)
{
	return atomic_load(&g->exited);
}

void edge_ingest_free(struct edge_ingest *g)
{
	if (!g)
		return;
	edge_ingest_request_stop(g);
	g_thread_join(g->thread);
	g_thread_join(g->analyze_thread);
	edge_live_unref(g->live);
	edge_mtap_free(g->mtap);
	g_mutex_clear(&g->lock);
	memset(&g->cfg, 0, sizeof(g->cfg)); /* credentials */
	free(g);
}
