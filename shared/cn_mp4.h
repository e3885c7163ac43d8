/* cn_mp4.h: pure parser of fragmented MP4 (ISO BMFF) structure and a recovery walker for truncated recordings. */
#ifndef CN_MP4_H
#define CN_MP4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Written for the files FFmpeg's mp4 (and mov) muxer writes with
 * -movflags frag_keyframe+empty_moov+default_base_moof: ftyp, an empty moov, then
 * moof+mdat pairs, then (on a clean close only) mfra. Nothing here does I/O or allocates;
 * every function reads only the bytes it is given and refuses what does not add up. */

#define CN_MP4_FOURCC(a, b, c, d)                                                      \
	((uint32_t)(uint8_t)(a) << 24 | (uint32_t)(uint8_t)(b) << 16 |                 \
	 (uint32_t)(uint8_t)(c) << 8 | (uint32_t)(uint8_t)(d))

#define CN_MP4_MAX_TRACKS 4

/* Sample flags (ISO/IEC 14496-12 8.8.3.1): set on every sample that is not a sync sample. */
#define CN_MP4_SAMPLE_IS_NON_SYNC 0x00010000u

struct cn_mp4_box {
	uint32_t type;       /* fourcc, big-endian packed, e.g. CN_MP4_FOURCC('m','o','o','f') */
	uint64_t size;       /* whole box including the header; 0 = extends to end of file */
	uint32_t header_len; /* 8, or 16 with a 64-bit largesize ('uuid' usertype is body) */
};

/* Parses the box header at p. CN_E_MALFORMED on an impossible size (2..7, or a 64-bit size
 * < 16); -EAGAIN when len is too short to tell (needs 8 bytes, 16 for a 64-bit size). */
int cn_mp4_box_header(const uint8_t *p, size_t len, struct cn_mp4_box *out);

struct cn_mp4_track {
	uint32_t track_id; /* tkhd, non-zero, unique in the moov */
	uint32_t timescale; /* mdhd, non-zero */
	char handler[5]; /* hdlr handler_type: "vide", "soun", ... (4 printable ASCII + NUL) */
	char codec[5];   /* first stsd sample entry: "avc1", "hvc1", "hev1", "ulaw", "alaw" */
	uint16_t width, height; /* tkhd, integer part of the 16.16 values; 0 for audio */
	/* trex defaults (0 when the moov has no trex for the track) */
	uint32_t default_sample_duration, default_sample_size, default_sample_flags;
};

struct cn_mp4_init {
	uint32_t movie_timescale; /* mvhd, non-zero */
	int ntracks;              /* 1..CN_MP4_MAX_TRACKS */
	struct cn_mp4_track tracks[CN_MP4_MAX_TRACKS];
};

/* p points at a whole 'moov' box (header included); bytes after the box are not read.
 * Needs mvhd and, in every trak, tkhd, mdhd, hdlr and stsd. On failure *out is zeroed. */
int cn_mp4_parse_moov(const uint8_t *p, size_t len, struct cn_mp4_init *out);

/* Index of the track with that id in init->tracks, or -1. */
int cn_mp4_track_index(const struct cn_mp4_init *init, uint32_t track_id);

/* One traf of a moof. */
struct cn_mp4_frag {
	uint32_t sequence;         /* mfhd */
	uint32_t track_id;         /* tfhd; always a track of the init */
	uint64_t base_decode_time; /* tfdt (required), in the track's timescale */
	uint64_t duration;         /* sum of sample durations */
	uint32_t sample_count;     /* sum over the truns */
	/* First sample is a sync sample per trun/tfhd/trex flags (non-sync bit clear);
	 * false when there are no samples. */
	bool starts_with_keyframe;
	uint64_t data_size; /* bytes of sample data the truns reference */
	/* Where those bytes are: [data_begin, data_end) as offsets from the moof's first byte,
	 * or as absolute file offsets when data_abs (tfhd carried a base-data-offset). */
	uint64_t data_begin, data_end;
	bool data_abs;
};

/* p points at a whole 'moof' box; fills one entry per traf, in order. Uses init for
 * the trex defaults and to know the track ids. -ENOSPC when the moof has more than max
 * trafs (it is still checked whole first); -EINVAL without init. On failure *nfrags = 0.
 * mfhd, tfhd, tfdt and trun must be exactly as long as their version and flags say, so a
 * flag bit flipped in storage is refused rather than shifting every field after it. */
int cn_mp4_parse_moof(const uint8_t *p, size_t len, const struct cn_mp4_init *init,
		      struct cn_mp4_frag *frags, int max, int *nfrags);

/*
 * Recovery walk over a file's top-level boxes, reading only box headers and the moov and
 * moof boxes, never mdat payloads. A fragment is complete when its moof parses, the next
 * box is an mdat that ends within the file, and every traf's data lies inside that mdat.
 * valid_end is the end of the last complete top-level unit (ftyp, moov, fragment, or
 * another whole box such as mfra or free): truncating the file there leaves a file that
 * walks clean.
 *
 * Calling protocol: ask cn_mp4_walk_next what to read, read exactly that, hand it to
 * cn_mp4_walk_feed; repeat until next returns 0 (the rest of the file is an incomplete
 * tail, or nothing is left) or either call returns a negative code (the file is damaged
 * at w->next; everything before valid_end is still good). Reads never pass file_size and
 * are at most CN_MP4_WALK_MAX_BOX bytes. For a file that is still growing, call next
 * again later with a larger file_size: the walk resumes where it stalled.
 *
 *	struct cn_mp4_walk w;
 *	uint64_t off;
 *	size_t len;
 *	int rc;
 *
 *	cn_mp4_walk_init(&w);
 *	while ((rc = cn_mp4_walk_next(&w, file_size, &off, &len)) > 0) {
 *		if (pread(fd, buf, len, off) != (ssize_t)len)
 *			break;                        // I/O error: stop, keep what we have
 *		rc = cn_mp4_walk_feed(&w, buf, len);
 *		if (rc < 0)
 *			break;                        // damaged at w.next
 *		if (rc == CN_MP4_WALK_FRAGMENT && w.last.has_video)
 *			seek_index_add(w.last.moof_offset, w.last.video_time, w.last.keyframe);
 *	}
 *	if (!w.have_init)
 *		...                                   // no moov: nothing playable, drop the file
 *	else if (w.valid_end < file_size)
 *		ftruncate(fd, w.valid_end);
 *	// decode time covered: [w.video_start, w.video_end) in
 *	// w.init.tracks[w.video].timescale, when w.have_video_time
 *
 * The walk also refuses what FFmpeg never writes: a moof before the moov or a second
 * moov, an mdat not right after a moof, box size 0, a moof without trafs or with two
 * trafs of one track, mfhd sequence numbers that do not increase, and a track's decode
 * time going back before the end of its previous fragment.
 */

/* Largest moov or moof the walk will ask for; larger ones are refused with CN_E_TOO_BIG. */
#define CN_MP4_WALK_MAX_BOX (1u << 20)
#define CN_MP4_WALK_MAX_TRAFS (2 * CN_MP4_MAX_TRACKS)

/* cn_mp4_walk_feed's positive returns. */
enum {
	CN_MP4_WALK_MORE = 1,     /* go on */
	CN_MP4_WALK_FRAGMENT = 2, /* a fragment just completed: see w->last and w->frags */
};

/* The fragment a CN_MP4_WALK_FRAGMENT return reports. */
struct cn_mp4_walk_frag {
	uint64_t moof_offset; /* file offset of its moof (where a reader seeks to) */
	uint64_t end_offset;  /* file offset just past its mdat (== valid_end then) */
	uint32_t sequence;    /* mfhd */
	bool has_video;       /* it has a traf for the video track; the fields below are its */
	bool keyframe;        /* starts with a sync sample */
	uint64_t video_time;  /* base decode time, video track timescale */
	uint64_t video_duration;
};

struct cn_mp4_walk {
	/* Results: meaningful at every point of the walk. */
	uint64_t valid_end;    /* bytes of the file that are whole */
	uint64_t next;         /* offset of the box being read; where damage was found */
	uint32_t fragments;    /* complete fragments */
	bool have_init;        /* the moov has been parsed into init */
	struct cn_mp4_init init;
	int video;             /* index in init.tracks of the first "vide" track, or -1 */
	bool have_video_time;  /* a complete fragment had a video traf */
	uint64_t video_start;  /* base decode time of the first such traf */
	uint64_t video_end;    /* base + duration of the last such traf */
	struct cn_mp4_walk_frag last;
	int nfrags;            /* trafs of the last fragment, in frags */
	struct cn_mp4_frag frags[CN_MP4_WALK_MAX_TRAFS];

	/* Private to cn_mp4.c. */
	int state;
	int error;
	uint32_t body_type;
	size_t want;
	uint64_t file_size;
	uint64_t stall_size;
	bool stalled;
	uint64_t moof_offset;
	bool have_sequence;
	uint32_t sequence;
	bool track_seen[CN_MP4_MAX_TRACKS];
	uint64_t track_end[CN_MP4_MAX_TRACKS];
};

void cn_mp4_walk_init(struct cn_mp4_walk *w);

/* What to read next: *len bytes at file offset *off, never past file_size. Returns 1 when
 * there is something to read, 0 when there is nothing more (until file_size grows), the
 * walk's error when it already failed, -EINVAL when file_size shrank. */
int cn_mp4_walk_next(struct cn_mp4_walk *w, uint64_t file_size, uint64_t *off, size_t *len);

/* Hands over the bytes cn_mp4_walk_next asked for (len must be the length it gave).
 * Returns CN_MP4_WALK_MORE, CN_MP4_WALK_FRAGMENT, or a negative code: CN_E_MALFORMED,
 * CN_E_TOO_BIG (a moov or moof past CN_MP4_WALK_MAX_BOX), -EINVAL on misuse. Errors stick. */
int cn_mp4_walk_feed(struct cn_mp4_walk *w, const uint8_t *p, size_t len);

#endif
