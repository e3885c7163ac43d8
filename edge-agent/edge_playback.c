/* edge_playback.c: one viewer's archive reader: segments from the index, demuxed (no decoding), paced by wall clock. */
#include "edge_playback.h"

#include <stdlib.h>
#include <string.h>

#include <libavformat/avformat.h>
#include <libavutil/mathematics.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_log.h"
#include "cn_queue.h"
#include "cn_time.h"
#include "edge_index.h"

#define PB_QUEUE 32
#define PB_MAX_SEGMENTS 64
/* Past the last recorded frame, wait this long for more before saying the archive ended
 * (the segment being written grows by a fragment per GOP). */
#define PB_TAIL_WAIT_MS 15000

enum { MSG_INFO, MSG_FRAME, MSG_END };

struct pb_msg {
	int type;
	int err;
	bool catchup;
	struct edge_frame *f;
	char text[200];
	struct edge_stream_info info;
};

struct edge_playback {
	char archive_dir[512];
	char index_path[512];
	char camera[64];
	int64_t start_ms;
	int speed;
	bool want_audio;
	struct edge_playback_cb cb; /* loop only; zeroed when stopped */
	bool detached;              /* loop only */
	atomic_bool stop;
	atomic_bool exited;
	struct cn_queue *q;
	GThread *thread;
};

static GPtrArray *stopped; /* loop only: readers waiting to be joined */

static void msg_free(void *item)
{
	struct pb_msg *m = item;

	if (m)
		edge_frame_unref(m->f);
	free(m);
}

static void on_msg(void *item, void *arg)
{
	struct edge_playback *p = arg;
	struct pb_msg *m = item;

	if (!p->detached) {
		if (m->type == MSG_INFO && p->cb.info)
			p->cb.info(&m->info, m->err, m->text, p->cb.arg);
		else if (m->type == MSG_FRAME && p->cb.frame)
			p->cb.frame(m->f, m->catchup, p->cb.arg);
		else if (m->type == MSG_END && p->cb.end)
			p->cb.end(m->text, p->cb.arg);
	}
	msg_free(m);
}

/* Waits for room rather than dropping: the reader, not the viewer, slows down. */
static bool push(struct edge_playback *p, struct pb_msg *m)
{
	while (!atomic_load(&p->stop)) {
		if (cn_queue_push(p->q, m) == 0)
			return true;
		g_usleep(5000);
	}
	msg_free(m);
	return false;
}

static void push_text(struct edge_playback *p, int type, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void push_text(struct edge_playback *p, int type, int err, const char *fmt, ...)
{
	struct pb_msg *m = calloc(1, sizeof(*m));
	va_list ap;

	if (!m)
		return;
	m->type = type;
	m->err = err;
	va_start(ap, fmt);
	vsnprintf(m->text, sizeof(m->text), fmt, ap);
	va_end(ap);
	push(p, m);
}

/* Sleeps until mono_us, in slices so a stop is noticed. */
static bool wait_until(struct edge_playback *p, int64_t mono_us)
{
	for (;;) {
		if (atomic_load(&p->stop))
			return false;
		int64_t left = mono_us - g_get_monotonic_time();
		if (left <= 0)
			return true;
		g_usleep((gulong)(left > 50000 ? 50000 : left));
	}
}

static int collect(const struct edge_segment_row *row, void *arg)
{
	GArray *a = arg;

	if (a->len >= PB_MAX_SEGMENTS)
		return 1;
	g_array_append_val(a, *row);
	return 0;
}

static int nal_length_size(const AVCodecParameters *par)
{
	const uint8_t *x = par->extradata;

	if (!x || par->extradata_size < 7 || x[0] != 1)
		return 0; /* Annex B */
	if (par->codec_id == AV_CODEC_ID_H264)
		return (x[4] & 3) + 1;
	if (par->codec_id == AV_CODEC_ID_HEVC && par->extradata_size >= 23)
		return (x[21] & 3) + 1;
	return 0;
}

struct pb_state {
	bool info_sent;
	bool started;          /* a keyframe has gone out */
	int64_t last_wall_us;  /* newest frame sent (frames at or before it are skipped) */
	int64_t t0_mono_us, wall0_us;
	int64_t progress_mono; /* when the last frame was read */
	int64_t last_audio_us; /* newest audio sent, wall clock */
	int64_t seg_start_ms;  /* the segment being played */
	bool ended;            /* an END or a failed INFO has been sent */
};

/* An audio packet: paced on the video's clock; none before the first keyframe or the
 * requested time (catch-up is for the picture), none overlapping what was sent. */
static int play_audio(struct edge_playback *p, struct pb_state *s, const AVStream *st,
		      const AVPacket *pkt)
{
	int64_t wall_us;

	if (pkt->pts == AV_NOPTS_VALUE || !s->started || !s->t0_mono_us)
		return 0;
	wall_us = s->seg_start_ms * 1000 + av_rescale_q(pkt->pts, st->time_base, (AVRational){ 1, 1000000 });
	if (wall_us < p->start_ms * 1000 || wall_us <= s->last_audio_us)
		return 0;
	if (!wait_until(p, s->t0_mono_us + (wall_us - s->wall0_us)))
		return -EPIPE;
	struct pb_msg *m = calloc(1, sizeof(*m));
	struct edge_frame *f = calloc(1, sizeof(*f));
	if (!m || !f || !(f->pkt = av_packet_clone(pkt))) {
		free(m);
		free(f);
		return -ENOMEM;
	}
	f->refs = 1;
	f->audio = true;
	f->key = true;
	f->pts_us = wall_us;
	f->wall_ms = wall_us / 1000;
	m->type = MSG_FRAME;
	m->f = f;
	s->last_audio_us = wall_us;
	return push(p, m) ? 0 : -EPIPE;
}

/* Plays one segment file from where we are. 1: done with it; 0: read to its end;
 * negative: stop. */
static int play_segment(struct edge_playback *p, const struct edge_segment_row *seg,
			struct pb_state *s)
{
	char path[1100];
	AVFormatContext *ic = NULL;
	AVPacket *pkt = av_packet_alloc();
	int rc;

	if (!pkt)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/%s", p->archive_dir, seg->path);
	if ((rc = avformat_open_input(&ic, path, NULL, NULL)) < 0 ||
	    (rc = avformat_find_stream_info(ic, NULL)) < 0 || ic->nb_streams < 1) {
		cn_log_warn("playback", "cannot read '%s': %s", seg->path, av_err2str(rc));
		av_packet_free(&pkt);
		avformat_close_input(&ic);
		return 0; /* a damaged segment is a gap, not the end */
	}
	AVStream *st = ic->streams[0];
	/* The recording's G.711 track (edge_segment.c), when the viewer takes audio. */
	const AVCodecParameters *pars[8];
	unsigned np = ic->nb_streams < 8 ? ic->nb_streams : 8;
	for (unsigned i = 0; i < np; i++)
		pars[i] = ic->streams[i]->codecpar;
	int ai = p->want_audio && p->speed == 1 ? edge_live_find_audio(pars, np) : -1;
	if (!s->info_sent) {
		struct pb_msg *m = calloc(1, sizeof(*m));
		if (!m) {
			rc = -ENOMEM;
			goto out_close;
		}
		m->type = MSG_INFO;
		if ((m->err = edge_stream_info_from_par(st->codecpar, &m->info)) < 0)
			snprintf(m->text, sizeof(m->text), "the recording's codec (%s) cannot be sent over WebRTC",
				 avcodec_get_name(st->codecpar->codec_id));
		if (ai >= 0)
			m->info.audio_codec = ic->streams[ai]->codecpar->codec_id;
		rc = m->err;
		if (!push(p, m) || rc < 0) {
			s->ended = true;
			rc = -EPIPE;
			goto out_close;
		}
		s->info_sent = true;
	}
	int ls = nal_length_size(st->codecpar);
	s->seg_start_ms = seg->start_ms;
	int64_t from_ms = s->last_wall_us != INT64_MIN ? s->last_wall_us / 1000 : p->start_ms;
	if (from_ms > seg->start_ms) {
		int64_t ts = av_rescale_q(from_ms - seg->start_ms, (AVRational){ 1, 1000 }, st->time_base);
		av_seek_frame(ic, 0, ts, AVSEEK_FLAG_BACKWARD);
	}
	while (!atomic_load(&p->stop) && (rc = av_read_frame(ic, pkt)) >= 0) {
		int64_t dts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
		int64_t cts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts - dts : 0;
		int64_t wall_us = seg->start_ms * 1000 + av_rescale_q(dts, st->time_base, (AVRational){ 1, 1000000 });
		bool key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;

		if (ai >= 0 && pkt->stream_index == ai) {
			rc = play_audio(p, s, ic->streams[ai], pkt);
			av_packet_unref(pkt);
			if (rc < 0)
				break;
			continue;
		}
		if (pkt->stream_index != 0 || wall_us <= s->last_wall_us || (!s->started && !key)) {
			av_packet_unref(pkt);
			continue;
		}
		s->started = true;
		s->progress_mono = cn_time_mono_ms();
		bool catchup = wall_us < p->start_ms * 1000;
		if (!catchup) {
			/* A gap in the archive (motion or event recording) is skipped, not waited out. */
			if (s->t0_mono_us && s->last_wall_us != INT64_MIN && wall_us - s->last_wall_us > 5000000)
				s->t0_mono_us = 0;
			if (!s->t0_mono_us) {
				s->t0_mono_us = g_get_monotonic_time();
				s->wall0_us = wall_us;
			}
			if (!wait_until(p, s->t0_mono_us + (wall_us - s->wall0_us) / p->speed)) {
				av_packet_unref(pkt);
				break;
			}
		}
		struct pb_msg *m = calloc(1, sizeof(*m));
		struct edge_frame *f = calloc(1, sizeof(*f));
		if (!m || !f || !(f->pkt = av_packet_clone(pkt))) {
			free(m);
			free(f);
			av_packet_unref(pkt);
			rc = -ENOMEM;
			break;
		}
		f->refs = 1;
		f->key = key;
		f->pts_us = wall_us + av_rescale_q(cts, st->time_base, (AVRational){ 1, 1000000 });
		f->wall_ms = wall_us / 1000;
		f->length_size = ls;
		m->type = MSG_FRAME;
		m->f = f;
		m->catchup = catchup;
		s->last_wall_us = wall_us;
		av_packet_unref(pkt);
		if (!push(p, m)) {
			rc = -EPIPE;
			break;
		}
	}
	if (rc == AVERROR_EOF)
		rc = 0;
out_close:
	av_packet_free(&pkt);
	avformat_close_input(&ic);
	if (atomic_load(&p->stop))
		return -EPIPE;
	return rc < 0 ? rc : 0;
}

static gpointer pb_thread(gpointer data)
{
	struct edge_playback *p = data;
	struct edge_index *ix = NULL;
	GArray *rows = g_array_new(FALSE, FALSE, sizeof(struct edge_segment_row));
	struct pb_state s = { .last_wall_us = INT64_MIN, .last_audio_us = INT64_MIN };
	int64_t done_id = 0, done_bytes = 0;
	char when[40];

	cn_time_format_rfc3339(p->start_ms, when, sizeof(when));
	if (edge_index_open(p->index_path, &ix) < 0) {
		push_text(p, MSG_INFO, -EIO, "the archive index cannot be opened");
		s.ended = true;
		goto out;
	}
	s.progress_mono = cn_time_mono_ms();
	while (!atomic_load(&p->stop)) {
		int64_t from = s.last_wall_us != INT64_MIN ? s.last_wall_us / 1000 : p->start_ms;
		bool progressed = false;

		g_array_set_size(rows, 0);
		edge_index_segments(ix, p->camera, from, INT64_MAX, collect, rows);
		if (!rows->len && !s.info_sent) {
			push_text(p, MSG_INFO, -ENOENT, "camera '%s' has no recording at or after %s",
				  p->camera, when);
			s.ended = true;
			goto out;
		}
		for (guint i = 0; i < rows->len && !atomic_load(&p->stop); i++) {
			struct edge_segment_row *r = &g_array_index(rows, struct edge_segment_row, i);
			/* Segments already played are skipped unless the open one has grown. */
			if (r->id < done_id || (r->id == done_id && r->bytes <= done_bytes))
				continue;
			int64_t before = s.last_wall_us;
			if (play_segment(p, r, &s) < 0)
				goto out;
			done_id = r->id;
			done_bytes = r->bytes;
			progressed = progressed || s.last_wall_us != before;
		}
		if (!progressed && !s.info_sent) {
			push_text(p, MSG_INFO, -ENOENT, "camera '%s' has no playable recording at or after %s",
				  p->camera, when);
			s.ended = true;
			goto out;
		}
		if (!progressed) {
			if (cn_time_mono_ms() - s.progress_mono > PB_TAIL_WAIT_MS) {
				push_text(p, MSG_END, 0, "reached the end of the recording");
				s.ended = true;
				goto out;
			}
			g_usleep(300000);
		}
	}
out:
	/* However the reader ends, the session hears of it (unless it asked us to stop). */
	if (!atomic_load(&p->stop) && !s.ended)
		push_text(p, s.info_sent ? MSG_END : MSG_INFO, -EIO, "%s",
			  s.info_sent ? "the archive could not be read further" : "the archive could not be read");
	g_array_free(rows, TRUE);
	edge_index_close(ix);
	atomic_store(&p->exited, true);
	return NULL;
}

int edge_playback_start(const char *archive_dir, const char *index_path, const char *camera,
			int64_t start_ms, int speed, const struct edge_playback_cb *cb,
			struct edge_playback **out)
{
	return edge_playback_start_av(archive_dir, index_path, camera, start_ms, speed, false, cb, out);
}

int edge_playback_start_av(const char *archive_dir, const char *index_path, const char *camera,
			   int64_t start_ms, int speed, bool want_audio, const struct edge_playback_cb *cb,
			   struct edge_playback **out)
{
	struct edge_playback *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return -ENOMEM;
	cn_strlcpy(p->archive_dir, archive_dir, sizeof(p->archive_dir));
	cn_strlcpy(p->index_path, index_path, sizeof(p->index_path));
	cn_strlcpy(p->camera, camera, sizeof(p->camera));
	p->start_ms = start_ms;
	p->speed = speed > 0 ? speed : 1;
	p->cb = *cb;
	p->want_audio = want_audio;
	if ((rc = cn_queue_new("playback", PB_QUEUE, g_main_context_default(), on_msg, p, msg_free,
			       &p->q)) < 0) {
		free(p);
		return rc;
	}
	p->thread = g_thread_new("playback", pb_thread, p);
	*out = p;
	return 0;
}

void edge_playback_stop(struct edge_playback *p)
{
	if (!p)
		return;
	p->detached = true;
	memset(&p->cb, 0, sizeof(p->cb));
	atomic_store(&p->stop, true);
	if (!stopped)
		stopped = g_ptr_array_new();
	g_ptr_array_add(stopped, p);
}

void edge_playback_reap(bool wait)
{
	if (!stopped)
		return;
	for (guint i = 0; i < stopped->len;) {
		struct edge_playback *p = g_ptr_array_index(stopped, i);
		if (!wait && !atomic_load(&p->exited)) {
			i++;
			continue;
		}
		g_thread_join(p->thread);
		cn_queue_free(p->q);
		free(p);
		g_ptr_array_remove_index_fast(stopped, i);
	}
}
