/* edge_live.h: a camera stream's live tap: the keyframe (GOP) cache and the hand-over of frames to viewers on the loop. */
#ifndef EDGE_LIVE_H
#define EDGE_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <libavcodec/packet.h>
#include <libavcodec/codec_par.h>

#include "cn_queue.h"

/* Bounds of the cache: a camera with a very long GOP keeps only its newest frames (a
 * viewer then waits for the next keyframe rather than the edge holding megabytes). */
#define EDGE_LIVE_GOP_FRAMES 300
#define EDGE_LIVE_GOP_BYTES (8u << 20)
#define EDGE_LIVE_PREFIX_MAX 1024 /* parameter sets (SPS/PPS/VPS), Annex B */

/* One compressed frame, shared by every viewer that sends it (refcounted, immutable). */
struct edge_frame {
	gint refs;
	AVPacket *pkt;
	uint64_t index;   /* per source, increasing */
	uint64_t generation; /* which stream session of the source it belongs to */
	bool key;
	bool gap;         /* frames were lost just before this one */
	int64_t pts_us;   /* media time */
	int64_t wall_ms;  /* when it was captured (live) or recorded (archive) */
	int length_size;  /* 0: Annex B; 1, 2, 4: length-prefixed NALs */
	bool audio;       /* a G.711 frame (never cached, never a keyframe) */
};

struct edge_frame *edge_frame_ref(struct edge_frame *f);
void edge_frame_unref(struct edge_frame *f);

/* What a viewer needs to know about the stream to negotiate and packetise it. */
struct edge_stream_info {
	int codec;        /* AVCodecID: AV_CODEC_ID_H264 or AV_CODEC_ID_HEVC (others refused) */
	int profile;      /* H.264 profile_idc, 0 when unknown */
	int width, height;
	uint8_t prefix[EDGE_LIVE_PREFIX_MAX]; /* parameter sets to send before a keyframe */
	size_t prefix_len;
	int prefix_length_size;
	uint64_t generation;
	double kbps;      /* recent bitrate, for congestion decisions */
	int audio_codec;  /* AV_CODEC_ID_PCM_MULAW or _ALAW when the camera sends G.711 (8 kHz mono), else 0 */
};

/* Fills info from codec parameters (extradata avcC/hvcC or Annex B); -ENOTSUP for a
 * codec WebRTC cannot carry without transcoding. */
int edge_stream_info_from_par(const AVCodecParameters *par, struct edge_stream_info *info);

/* Told on the loop about every frame fed while it is subscribed. */
struct edge_live_sub {
	void (*frame)(struct edge_frame *f, void *arg);
	void (*ended)(void *arg); /* the source stopped (camera removed or reconfigured) */
	void *arg;
};

struct edge_live;

/* A live source; the creator holds one reference. */
int edge_live_new(const char *camera, GMainContext *ctx, struct edge_live **out);
struct edge_live *edge_live_ref(struct edge_live *l);
/* On the loop only (the queue's source belongs to it). */
void edge_live_unref(struct edge_live *l);

/* Producer side (the ingest thread). A new stream session: the cache is emptied and
 * viewers wait for its first keyframe. */
void edge_live_begin(struct edge_live *l, const AVCodecParameters *par,
		     const AVCodecParameters *audio);
/* The stream's G.711 audio index in ic, or -1: what edge_live_feed_audio passes on. */
int edge_live_find_audio(const AVCodecParameters *const *pars, unsigned n);
/* Hands one video packet over: kept in the GOP cache and, when someone watches, queued
 * for the loop (never blocks; a full queue drops and marks a gap). */
void edge_live_feed(struct edge_live *l, const AVPacket *pkt, AVRational tb, int64_t wall_ms);
/* An audio packet: passed through to viewers that accepted audio, never cached. */
void edge_live_feed_audio(struct edge_live *l, const AVPacket *pkt, AVRational tb, int64_t wall_ms);
/* The source will feed no more (ingest stopping): subscribers get ended. */
void edge_live_end(struct edge_live *l);

/* Consumer side, on the loop. */
int edge_live_info(struct edge_live *l, struct edge_stream_info *out);
/* Subscribes; frames fed from now on are delivered to sub (copied) until unsubscribed. */
int edge_live_subscribe(struct edge_live *l, const struct edge_live_sub *sub);
void edge_live_unsubscribe(struct edge_live *l, void *arg);
/* The cached frames from the newest keyframe on (references the caller unrefs), at most
 * max; returns how many. */
int edge_live_snapshot(struct edge_live *l, struct edge_frame **out, int max);
int edge_live_viewers(struct edge_live *l);

#endif
