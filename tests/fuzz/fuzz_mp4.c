/* fuzz_mp4.c: libFuzzer harness for the fragmented MP4 parsers and the truncated-file recovery walk. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_err.h"
#include "cn_mp4.h"
#include "fuzz_check.h"

/*
 * The input is a whole file. Three passes:
 * 1. Box by box: every top-level moov goes to cn_mp4_parse_moov, every moof to
 *    cn_mp4_parse_moof (with the file's moov, or a stand-in with track ids 1..4 so moof
 *    parsing is reached without a valid moov). Results must be well-formed.
 * 2. The recovery walk over the whole input, checking every step: reads stay inside the
 *    file, valid_end never goes back or past the file, each fragment follows the last in
 *    place, sequence and time.
 * 3. Consistency: a walk of the first valid_end bytes ends clean at the same point, and a
 *    walk fed a growing file ends exactly where the one-shot walk did.
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool printable4(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return s[4] == '\0';
}

static void check_init(const struct cn_mp4_init *in)
{
	CHECK(in->movie_timescale > 0);
	CHECK(in->ntracks >= 1 && in->ntracks <= CN_MP4_MAX_TRACKS);
	for (int i = 0; i < in->ntracks; i++) {
		const struct cn_mp4_track *t = &in->tracks[i];
		CHECK(t->track_id != 0 && t->timescale != 0);
		CHECK(printable4(t->handler) && printable4(t->codec));
		CHECK(cn_mp4_track_index(in, t->track_id) == i);
	}
}

static void check_frags(const struct cn_mp4_init *in, const struct cn_mp4_frag *f, int n)
{
	for (int i = 0; i < n; i++) {
		CHECK(cn_mp4_track_index(in, f[i].track_id) >= 0);
		CHECK(f[i].sequence == f[0].sequence);
		CHECK(f[i].data_end >= f[i].data_begin);
		if (f[i].sample_count == 0)
			CHECK(!f[i].starts_with_keyframe && f[i].duration == 0 &&
			      f[i].data_size == 0);
	}
}

/* Pass 1. */
static void parse_boxes(const uint8_t *data, size_t size)
{
	struct cn_mp4_frag frags[CN_MP4_WALK_MAX_TRAFS];
	struct cn_mp4_init init, parsed;
	struct cn_mp4_box b;
	bool have_init = false;
	size_t off = 0;
	int rc, n;

	/* Stand-in for a file without a usable moov. */
	memset(&init, 0, sizeof(init));
	init.movie_timescale = 1000;
	init.ntracks = CN_MP4_MAX_TRACKS;
	for (int i = 0; i < CN_MP4_MAX_TRACKS; i++) {
		init.tracks[i].track_id = (uint32_t)i + 1;
		init.tracks[i].timescale = 90000;
		memcpy(init.tracks[i].handler, i ? "soun" : "vide", 5);
		memcpy(init.tracks[i].codec, i ? "ulaw" : "avc1", 5);
		init.tracks[i].default_sample_duration = 3000;
		init.tracks[i].default_sample_size = (uint32_t)i * 100;
		init.tracks[i].default_sample_flags = i ? 0x02000000 : 0x01010000;
	}
	while (off < size) {
		rc = cn_mp4_box_header(data + off, size - off, &b);
		CHECK(rc == 0 || rc == -EAGAIN || rc == CN_E_MALFORMED);
		if (rc < 0)
			break;
		CHECK(b.header_len == 8 || b.header_len == 16);
		CHECK(b.size == 0 || b.size >= b.header_len);
		if (b.size == 0 || b.size > size - off)
			break;
		if (b.type == CN_MP4_FOURCC('m', 'o', 'o', 'v')) {
			rc = cn_mp4_parse_moov(data + off, size - off, &parsed);
			CHECK(rc == 0 || rc == CN_E_MALFORMED);
			if (rc == 0) {
				check_init(&parsed);
				if (!have_init)
					init = parsed;
				have_init = true;
			} else {
				CHECK(parsed.ntracks == 0 && parsed.movie_timescale == 0);
			}
		} else if (b.type == CN_MP4_FOURCC('m', 'o', 'o', 'f')) {
			rc = cn_mp4_parse_moof(data + off, (size_t)b.size, &init, frags,
					       CN_MP4_WALK_MAX_TRAFS, &n);
			CHECK(rc == 0 || rc == CN_E_MALFORMED || rc == -ENOSPC);
			if (rc == 0) {
				CHECK(n >= 0 && n <= CN_MP4_WALK_MAX_TRAFS);
				check_frags(&init, frags, n);
				/* The same box with room for fewer trafs gives the same verdict. */
				if (n > 0) {
					rc = cn_mp4_parse_moof(data + off, (size_t)b.size, &init,
							       frags, n - 1, &n);
					CHECK(rc == -ENOSPC && n == 0);
				}
			} else {
				CHECK(n == 0);
			}
		}
		off += (size_t)b.size;
	}
}

struct result {
	int rc;
	uint64_t valid_end, next, video_start, video_end;
	uint32_t fragments;
	bool have_video_time;
};

static void keep(struct result *r, int rc, const struct cn_mp4_walk *w)
{
	r->rc = rc;
	r->valid_end = w->valid_end;
	r->next = w->next;
	r->fragments = w->fragments;
	r->have_video_time = w->have_video_time;
	r->video_start = w->video_start;
	r->video_end = w->video_end;
}

static bool same(const struct result *a, const struct result *b)
{
	return a->rc == b->rc && a->valid_end == b->valid_end && a->next == b->next &&
	       a->fragments == b->fragments && a->have_video_time == b->have_video_time &&
	       a->video_start == b->video_start && a->video_end == b->video_end;
}

/* Passes 2 and 3: walks the first `size` bytes, growing the visible file by `step` bytes
 * at a time (step == 0: all at once), and checks every step. */
static void walk(const uint8_t *data, size_t size, size_t step, struct result *out)
{
	struct cn_mp4_walk w;
	struct cn_mp4_walk_frag prev;
	uint64_t off, prev_valid = 0;
	size_t len, visible = step ? 0 : size;
	bool have_prev = false;
	int rc;

	cn_mp4_walk_init(&w);
	for (;;) {
		while ((rc = cn_mp4_walk_next(&w, visible, &off, &len)) > 0) {
			CHECK(rc == 1);
			CHECK(off <= visible && len <= visible - off && len >= 8);
			CHECK(len <= CN_MP4_WALK_MAX_BOX);
			rc = cn_mp4_walk_feed(&w, data + off, len);
			CHECK(rc == CN_MP4_WALK_MORE || rc == CN_MP4_WALK_FRAGMENT ||
			      rc == CN_E_MALFORMED || rc == CN_E_TOO_BIG);
			CHECK(w.valid_end <= visible && w.valid_end >= prev_valid);
			prev_valid = w.valid_end;
			if (rc < 0)
				break;
			if (rc != CN_MP4_WALK_FRAGMENT)
				continue;
			/* A fragment ends the whole part of the file, right after the last one. */
			CHECK(w.last.end_offset == w.valid_end);
			CHECK(w.last.moof_offset < w.last.end_offset);
			CHECK(w.nfrags >= 1 && w.nfrags <= CN_MP4_WALK_MAX_TRAFS);
			check_frags(&w.init, w.frags, w.nfrags);
			if (have_prev) {
				CHECK(w.last.moof_offset >= prev.end_offset);
				CHECK(w.last.sequence > prev.sequence);
				if (w.last.has_video && prev.has_video)
					CHECK(w.last.video_time >= prev.video_time + prev.video_duration);
			}
			if (w.last.has_video) {
				CHECK(w.video >= 0 && w.have_video_time);
				CHECK(w.video_end == w.last.video_time + w.last.video_duration);
				CHECK(w.video_start <= w.last.video_time);
			}
			prev = w.last;
			have_prev = true;
		}
		CHECK(rc == 0 || rc == CN_E_MALFORMED || rc == CN_E_TOO_BIG);
		if (rc != 0 || visible == size)
			break;
		visible = size - visible < step ? size : visible + step;
	}
	if (w.have_init)
		check_init(&w.init);
	CHECK(w.valid_end <= size);
	if (w.have_video_time)
		CHECK(w.video_end >= w.video_start);
	keep(out, rc, &w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result full, cut, grown;

	parse_boxes(data, size);

	walk(data, size, 0, &full);
	if (full.rc == 0)
		CHECK(full.next <= size);

	/* Truncating at valid_end leaves a file that walks clean to its end. */
	walk(data, (size_t)full.valid_end, 0, &cut);
	CHECK(cut.rc == 0 && cut.valid_end == full.valid_end && cut.fragments == full.fragments);
	CHECK(cut.video_start == full.video_start && cut.video_end == full.video_end);

	/* Walking a growing file ends where the one-shot walk did. */
	walk(data, size, 1 + size % 89, &grown);
	CHECK(same(&grown, &full));
	return 0;
}
