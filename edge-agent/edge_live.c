/* edge_live.c: a camera stream's live tap: GOP cache filled by the ingest thread, frames handed to the loop for viewers. */
#include "edge_live.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/mathematics.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_log.h"
#include "cn_rtp.h"

/* About two seconds of frames between the ingest thread and the loop. */
#define LIVE_QUEUE_FRAMES 64

struct edge_live {
	gint refs;
	char camera[64];
	GMainContext *ctx;
	GMutex lock; /* guards everything below except subs (loop only) */
	struct edge_stream_info info;
	bool have_info;
	struct edge_frame *gop[EDGE_LIVE_GOP_FRAMES];
	int ngop;
	size_t gop_bytes;
	bool gop_broken; /* the current GOP outgrew the cache: serve none until the next key */
	bool have_key;   /* a keyframe of the current stream session has arrived */
	uint64_t next_index;
	int viewers;
	bool dropped;
	bool ended;
	struct cn_queue *q;
	/* bitrate over a window */
	int64_t win_start_ms, win_bytes;
	GArray *subs; /* struct edge_live_sub, loop only */
};

struct edge_frame *edge_frame_ref(struct edge_frame *f)
{
	g_atomic_int_inc(&f->refs);
	return f;
}

void edge_frame_unref(struct edge_frame *f)
{
	if (f && g_atomic_int_dec_and_test(&f->refs)) {
		av_packet_free(&f->pkt);
		free(f);
	}
}

static void queue_item_free(void *item)
{
	edge_frame_unref(item);
}

static void deliver(void *item, void *arg)
{
	struct edge_live *l = arg;
	struct edge_frame *f = item;

	/* Backwards: a subscriber that unsubscribes itself from its callback shifts only the
	 * entries already visited. */
	for (guint i = l->subs->len; i-- > 0;) {
		struct edge_live_sub s = g_array_index(l->subs, struct edge_live_sub, i);
		s.frame(f, s.arg);
	}
	edge_frame_unref(f);
}

int edge_live_new(const char *camera, GMainContext *ctx, struct edge_live **out)
{
	struct edge_live *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return -ENOMEM;
	l->refs = 1;
	l->ctx = ctx;
	cn_strlcpy(l->camera, camera, sizeof(l->camera));
	g_mutex_init(&l->lock);
	l->subs = g_array_new(FALSE, FALSE, sizeof(struct edge_live_sub));
	if ((rc = cn_queue_new("live", LIVE_QUEUE_FRAMES, ctx, deliver, l, queue_item_free, &l->q)) < 0) {
		g_array_free(l->subs, TRUE);
		g_mutex_clear(&l->lock);
		free(l);
		return rc;
	}
	*out = l;
	return 0;
}

struct edge_live *edge_live_ref(struct edge_live *l)
{
	g_atomic_int_inc(&l->refs);
	return l;
}

static void clear_gop(struct edge_live *l)
{
	for (int i = 0; i < l->ngop; i++)
		edge_frame_unref(l->gop[i]);
	l->ngop = 0;
	l->gop_bytes = 0;
}

void edge_live_unref(struct edge_live *l)
{
	if (!l || !g_atomic_int_dec_and_test(&l->refs))
		return;
	cn_queue_free(l->q);
	clear_gop(l);
	g_array_free(l->subs, TRUE);
	g_mutex_clear(&l->lock);
	free(l);
}

int edge_stream_info_from_par(const AVCodecParameters *par, struct edge_stream_info *info)
{
	int rc = 0, ls = 0;

	memset(info, 0, sizeof(*info));
	if (par->codec_id != AV_CODEC_ID_H264 && par->codec_id != AV_CODEC_ID_HEVC)
		return -ENOTSUP;
	info->codec = par->codec_id;
	info->profile = par->codec_id == AV_CODEC_ID_H264 && par->profile > 0 ? (par->profile & 0xff) : 0;
	info->width = par->width;
	info->height = par->height;
	if (par->extradata && par->extradata_size > 0) {
		if (par->codec_id == AV_CODEC_ID_H264)
			rc = cn_avcc_to_annexb(par->extradata, (size_t)par->extradata_size, info->prefix,
					       sizeof(info->prefix), &ls);
		else
			rc = cn_hvcc_to_annexb(par->extradata, (size_t)par->extradata_size, info->prefix,
					       sizeof(info->prefix), &ls);
		/* Parameter sets we cannot read still come in-band from most cameras. */
		info->prefix_len = rc > 0 ? (size_t)rc : 0;
	}
	/* The prefix is always Annex B (converted above); ls says how the frames are framed. */
	info->prefix_length_size = 0;
	return 0;
}

int edge_live_find_audio(const AVCodecParameters *const *pars, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const AVCodecParameters *p = pars[i];
		if (p->codec_type == AVMEDIA_TYPE_AUDIO &&
		    (p->codec_id == AV_CODEC_ID_PCM_MULAW || p->codec_id == AV_CODEC_ID_PCM_ALAW) &&
		    p->sample_rate == 8000 && p->ch_layout.nb_channels == 1)
			return (int)i;
	}
	return -1;
}

void edge_live_begin(struct edge_live *l, const AVCodecParameters *par,
		     const AVCodecParameters *audio)
{
	struct edge_stream_info info;
	bool ok = edge_stream_info_from_par(par, &info) == 0;

	if (ok && audio)
		info.audio_codec = audio->codec_id;
	g_mutex_lock(&l->lock);
	clear_gop(l);
	l->gop_broken = false;
	l->have_key = false;
	l->have_info = ok;
	if (ok) {
		uint64_t gen = l->info.generation + 1;
		l->info = info;
		l->info.generation = gen;
	} else {
		l->info.generation++;
	}
	l->dropped = true; /* the first frame of a new session is a discontinuity */
	g_mutex_unlock(&l->lock);
}

void edge_live_feed(struct edge_live *l, const AVPacket *pkt, AVRational tb, int64_t wall_ms)
{
	struct edge_frame *f = calloc(1, sizeof(*f));

	if (!f)
		return;
	if (!(f->pkt = av_packet_clone(pkt))) {
		free(f);
		return;
	}
	f->refs = 1;
	f->key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
	f->pts_us = av_rescale_q(pkt->pts, tb, (AVRational){ 1, 1000000 });
	f->wall_ms = wall_ms;
	f->length_size = 0;
	g_mutex_lock(&l->lock);
	if (!l->have_info) {
		g_mutex_unlock(&l->lock);
		edge_frame_unref(f);
		return;
	}
	f->index = ++l->next_index;
	f->generation = l->info.generation;
	if (l->win_start_ms == 0)
		l->win_start_ms = wall_ms;
	l->win_bytes += pkt->size;
	if (wall_ms - l->win_start_ms >= 2000) {
		l->info.kbps = (double)l->win_bytes * 8.0 / (double)(wall_ms - l->win_start_ms);
		l->win_start_ms = wall_ms;
		l->win_bytes = 0;
	}
	if (f->key) {
		clear_gop(l);
		l->gop_broken = false;
		l->have_key = true;
	}
	if (!l->gop_broken) {
		if (l->ngop < EDGE_LIVE_GOP_FRAMES && l->gop_bytes + (size_t)pkt->size <= EDGE_LIVE_GOP_BYTES &&
		    (l->ngop > 0 || f->key)) {
			l->gop[l->ngop++] = edge_frame_ref(f);
			l->gop_bytes += (size_t)pkt->size;
		} else if (l->ngop > 0) {
			clear_gop(l);
			l->gop_broken = true;
		}
	}
	if (l->viewers > 0) {
		f->gap = l->dropped;
		if (cn_queue_push(l->q, edge_frame_ref(f)) == 0) {
			l->dropped = false;
		} else {
			edge_frame_unref(f);
			l->dropped = true;
		}
	}
	g_mutex_unlock(&l->lock);
	edge_frame_unref(f);
}

void edge_live_feed_audio(struct edge_live *l, const AVPacket *pkt, AVRational tb, int64_t wall_ms)
{
	struct edge_frame *f;

	g_mutex_lock(&l->lock);
	bool watched = l->viewers > 0 && l->have_info && l->info.audio_codec;
	g_mutex_unlock(&l->lock);
	if (!watched || pkt->pts == AV_NOPTS_VALUE || !(f = calloc(1, sizeof(*f))))
		return;
	if (!(f->pkt = av_packet_clone(pkt))) {
		free(f);
		return;
	}
	f->refs = 1;
	f->audio = true;
	f->pts_us = av_rescale_q(pkt->pts, tb, (AVRational){ 1, 1000000 });
	f->wall_ms = wall_ms;
	/* Audio is not counted in gaps: a lost packet is a click, not a broken picture. */
	if (cn_queue_push(l->q, f) < 0)
		edge_frame_unref(f);
}

static gboolean ended_cb(gpointer data)
{
	struct edge_live *l = data;

	/* Backwards: each ended callback frees its session, which unsubscribes it. */
	for (guint i = l->subs->len; i-- > 0;) {
		if (i >= l->subs->len)
			continue;
		struct edge_live_sub s = g_array_index(l->subs, struct edge_live_sub, i);
		if (s.ended)
			s.ended(s.arg);
	}
	return G_SOURCE_REMOVE;
}

static void ended_unref(gpointer data)
{
	edge_live_unref(data);
}

void edge_live_end(struct edge_live *l)
{
	g_mutex_lock(&l->lock);
	l->ended = true;
	clear_gop(l);
	g_mutex_unlock(&l->lock);
	GSource *s = g_idle_source_new();
	g_source_set_callback(s, ended_cb, edge_live_ref(l), ended_unref);
	g_source_attach(s, l->ctx);
	g_source_unref(s);
}

int edge_live_info(struct edge_live *l, struct edge_stream_info *out)
{
	int rc = 0;

	g_mutex_lock(&l->lock);
	if (l->ended)
		rc = -EPIPE;
	else if (!l->have_info || !l->have_key)
		rc = -EAGAIN;
	else
		*out = l->info;
	g_mutex_unlock(&l->lock);
	return rc;
}

int edge_live_subscribe(struct edge_live *l, const struct edge_live_sub *sub)
{
	g_array_append_val(l->subs, *sub);
	g_mutex_lock(&l->lock);
	/* Nothing was queued while nobody watched: that is no loss to a new viewer, who
	 * starts from the cache. */
	if (l->viewers++ == 0)
		l->dropped = false;
	g_mutex_unlock(&l->lock);
	return 0;
}

void edge_live_unsubscribe(struct edge_live *l, void *arg)
{
	for (guint i = 0; i < l->subs->len; i++) {
		if (g_array_index(l->subs, struct edge_live_sub, i).arg == arg) {
			g_array_remove_index(l->subs, i);
			g_mutex_lock(&l->lock);
			l->viewers--;
			g_mutex_unlock(&l->lock);
			return;
		}
	}
}

int edge_live_snapshot(struct edge_live *l, struct edge_frame **out, int max)
{
	int n = 0;

	g_mutex_lock(&l->lock);
	for (int i = 0; i < l->ngop && n < max; i++)
		out[n++] = edge_frame_ref(l->gop[i]);
	g_mutex_unlock(&l->lock);
	return n;
}

int edge_live_viewers(struct edge_live *l)
{
	int n;

	g_mutex_lock(&l->lock);
	n = l->viewers;
	g_mutex_unlock(&l->lock);
	return n;
}
