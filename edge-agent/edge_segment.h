/* edge_segment.h: writes one camera stream (video, and G.711 audio when it has some) into fragmented MP4 segment files and indexes them. */
#ifndef EDGE_SEGMENT_H
#define EDGE_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "edge_index.h"

/* Why a segment ended early; each also starts a fresh segment on the next keyframe. */
enum edge_seg_cut {
	EDGE_CUT_DURATION,   /* reached segment_duration */
	EDGE_CUT_CLOCK_JUMP, /* media time and wall clock disagree by more than a few seconds */
	EDGE_CUT_DTS_BACK,   /* timestamps went backwards (camera restart, wrap) */
	EDGE_CUT_FORMAT,     /* codec, resolution or parameter sets changed */
	EDGE_CUT_STOP,       /* stream closed */
};

struct edge_segw {
	/* set by edge_segw_init */
	char archive_dir[512];
	char camera[64];
	int64_t seg_dur_ms;
	struct edge_index *ix;

	/* the segment being written, when oc != NULL */
	AVFormatContext *oc;
	AVCodecParameters *par; /* copy of the input parameters this segment was opened with */
	AVRational in_tb;
	/* the stream's G.711 audio (edge_segw_set_audio), recorded as a second track */
	AVCodecParameters *apar;
	AVRational a_in_tb;
	int a_out;            /* its stream in oc, -1 when the segment has none */
	int64_t last_adts;    /* end of the audio written, in samples; INT64_MIN: none yet */
	int64_t seg_id;
	char relpath[256];
	int64_t start_ms;     /* wall clock of the first packet */
	int64_t min_lag_ms;   /* least (arrival - start_ms - media time) seen in this segment */
	int64_t first_dts;    /* input dts of the first packet */
	int64_t last_dts;
	int64_t last_frame_ms; /* duration of the last frame written */
	int64_t frag_start_dts; /* dts of the keyframe that began the fragment in progress */
	int64_t frag_offset;  /* file offset where that fragment's moof will be written */
	int64_t valid_bytes;  /* file is playable up to here */
	int64_t valid_end_ms; /* wall clock covered by the complete fragments */

	/* Video-only H.264/H.265 segments (Annex B, as both ingest paths give them): the
	 * muxer writes only the init segment (ftyp, empty moov); each fragment (moof, mdat)
	 * is written by one writev straight from the packets it holds by reference (shared
	 * with the live view's GOP cache), their start codes turned into lengths on the
	 * way. Segments with audio stay with the muxer. */
	bool own;
	int fd;
	int64_t file_pos;     /* bytes written to fd */
	uint32_t track_id, timescale; /* the video track's, from the init segment */
	uint32_t frag_seq;    /* mfhd sequence of the last fragment written */
	int64_t last_dur;     /* the last sample's duration, in the track's time base */
	AVPacket **fpk;       /* the fragment in progress, in the track's time base */
	int fpk_n, fpk_cap;
	uint8_t *moof;        /* moof and mdat header, reused */
	size_t moof_cap;
	/* Direct I/O (direct_io asks for it; the filesystem may refuse): the page cache's
	 * copy of every byte recorded cost more CPU than the rest of the recording, and
	 * footage pushed everything else out of memory. Writes go through dbuf in whole
	 * blocks; the last block is completed by a free box the next write overwrites. */
	bool direct_io;
	bool direct;          /* this segment's fd is O_DIRECT */
	uint8_t *dbuf;        /* block-aligned; starts with the dtail bytes before file_pos */
	size_t dtail;         /* file_pos - the start of its block */
	struct iovec *iov;    /* reused */
	uint32_t *lens;       /* big-endian NAL lengths the iovecs point at, reused */
	size_t iov_cap;

	/* totals, for metrics */
	uint64_t segments;
	uint64_t fragments;
	uint64_t bytes;
	uint64_t cuts[EDGE_CUT_STOP + 1];
	uint64_t audio_dropped; /* audio packets that could not be placed (before the segment's
				 * start, out of order, or too far from the video) */
};

void edge_segw_init(struct edge_segw *w, const char *archive_dir, const char *camera,
		    int64_t seg_dur_ms, struct edge_index *ix);
/* Writes one packet of the input stream (time base in_tb, parameters par) received at
 * wall clock recv_ms. Opens a segment on a keyframe when none is open (packets before
 * the first keyframe are dropped). Returns -ENOSPC when the disk is full (the segment is
 * closed, valid up to its last complete fragment). */
int edge_segw_write(struct edge_segw *w, const AVCodecParameters *par, AVRational in_tb,
		    AVPacket *pkt, int64_t recv_ms);
/* The stream's audio for segments opened from now on (par NULL: none): G.711 (pcm_alaw,
 * pcm_mulaw) only, which the mp4 muxer refuses, so such segments are written by the mov
 * muxer (same fragmented ISO BMFF layout, 'qt  ' brand, 'alaw'/'ulaw' sample entries).
 * Returns -ENOTSUP (and records no audio) for other codecs. */
int edge_segw_set_audio(struct edge_segw *w, const AVCodecParameters *par, AVRational in_tb);
/* Writes one audio packet into the open segment, placed against its video by timestamp.
 * Nothing (0) when no segment is open or it has no audio track. */
int edge_segw_write_audio(struct edge_segw *w, AVPacket *pkt);
/* Finishes the open segment, if any: trailer, index row completed. */
int edge_segw_close(struct edge_segw *w, enum edge_seg_cut why);
/* Frees what the writer keeps between segments (call once it is closed). */
void edge_segw_free(struct edge_segw *w);

#endif
