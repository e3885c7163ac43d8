/* test_mp4.c: fragmented MP4 parsing and truncation recovery on real FFmpeg files, hand-built boxes and hostile input. */
#include <stdlib.h>

#include "cn_err.h"
#include "cn_mp4.h"
#include "cn_test.h"

#define FCC(s) CN_MP4_FOURCC((s)[0], (s)[1], (s)[2], (s)[3])

/* ---- fixtures ---- */

/*
 * Expected values for the files in tests/unit/data (made with the commands in its
 * README.md). Per-fragment numbers come from
 *   ffprobe -v error -show_packets -of csv=p=0 \
 *           -show_entries packet=stream_index,dts,duration,size,pos,flags FILE
 * grouped at each video keyframe (frag_keyframe starts a fragment at every keyframe):
 * samples = packets in the group, dur = sum of their durations, bytes = sum of their sizes,
 * pos = file position of the group's first packet, dts = its dts. Track facts come from
 *   ffprobe -v error -of compact \
 *           -show_entries stream=codec_tag_string,width,height,time_base,duration_ts FILE
 */
struct track_expect {
	const char *handler, *codec;
	uint32_t timescale;
	uint16_t width, height;
	uint64_t total; /* ffprobe duration_ts == sum of packet durations */
	uint32_t samples[4];
	uint64_t dur[4], bytes[4], pos[4], dts[4];
};

struct fixture {
	const char *name;
	size_t size;
	int ntracks;
	int fragments;
	struct track_expect t[2];
};

static const struct fixture fixtures[] = {
	{ "frag-h264.mp4", 21408, 1, 3,
	  { { "vide", "avc1", 10240, 160, 90, 30720,
	      { 10, 10, 10 }, { 10240, 10240, 10240 }, { 6709, 6335, 7026 },
	      { 929, 7790, 14277 }, { 0, 10240, 20480 } } } },
	/* B-frames: fragments cut at keyframes in decode order hold 9, 10 and 11 samples. */
	{ "frag-h265.mp4", 29391, 1, 3,
	  { { "vide", "hev1", 10240, 160, 90, 30720,
	      { 9, 10, 11 }, { 9216, 10240, 11264 }, { 7202, 8146, 10205 },
	      { 3341, 10735, 19081 }, { 0, 9216, 19456 } } } },
	/* The mp4 muxer refuses pcm_mulaw; the mov muxer writes the same fragment layout. */
	{ "frag-h264-ulaw.mov", 26006, 2, 4,
	  { { "vide", "avc1", 10240, 64, 64, 20480,
	      { 5, 5, 5, 5 }, { 5120, 5120, 5120, 5120 }, { 2158, 1932, 1812, 1788 },
	      { 1436, 7898, 14134, 20282 }, { 0, 5120, 10240, 15360 } },
	    { "soun", "ulaw", 8000, 0, 0, 16000,
	      { 4, 4, 4, 4 }, { 4096, 4096, 4096, 3712 }, { 4096, 4096, 4096, 3712 },
	      { 3594, 9830, 15946, 22070 }, { 0, 4096, 8192, 12288 } } } },
};

#define NFIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

/* Top-level boxes of a whole, well-formed file. */
struct top {
	uint32_t type;
	size_t off, size;
};

static int top_boxes(const uint8_t *p, size_t len, struct top *out, int max)
{
	struct cn_mp4_box b;
	size_t off = 0;
	int n = 0;

	while (off < len && n < max) {
		if (cn_mp4_box_header(p + off, len - off, &b) != 0 || b.size == 0 ||
		    b.size > len - off)
			return -1;
		out[n].type = b.type;
		out[n].off = off;
		out[n].size = (size_t)b.size;
		n++;
		off += (size_t)b.size;
	}
	return off == len ? n : -1;
}

/* Offset of the first fourcc s at or after from, or 0. */
static size_t find_fourcc(const uint8_t *p, size_t len, size_t from, const char *s)
{
	for (size_t i = from; i + 4 <= len; i++)
		if (memcmp(p + i, s, 4) == 0)
			return i;
	return 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- walking a buffer as a file ---- */

struct walk_rec {
	int n;
	struct cn_mp4_walk_frag f[16];
};

/* Walks p[0..size) the way the daemon walks a file; returns the final code. */
static int walk(const uint8_t *p, size_t size, struct cn_mp4_walk *w, struct walk_rec *rec)
{
	uint64_t off;
	size_t len;
	int rc;

	cn_mp4_walk_init(w);
	if (rec)
		rec->n = 0;
	while ((rc = cn_mp4_walk_next(w, size, &off, &len)) > 0) {
		if (off > size || len > size - off || len > CN_MP4_WALK_MAX_BOX)
			return -ERANGE; /* asked to read outside the file: a walker bug */
		rc = cn_mp4_walk_feed(w, p + off, len);
		if (rc < 0)
			return rc;
		if (rc == CN_MP4_WALK_FRAGMENT && rec && rec->n < 16)
			rec->f[rec->n++] = w->last;
	}
	return rc;
}

TEST(mp4_box_header)
{
	static const uint8_t small[] = { 0, 0, 0, 4, 'f', 'r', 'e', 'e' };
	static const uint8_t zero[] = { 0, 0, 0, 0, 'm', 'd', 'a', 't' };
	static const uint8_t big[] = { 0, 0, 0, 1, 'm', 'd', 'a', 't',
				       0, 0, 0, 1, 0, 0, 0, 0x10 };
	static const uint8_t big_bad[] = { 0, 0, 0, 1, 'm', 'd', 'a', 't',
					   0, 0, 0, 0, 0, 0, 0, 15 };
	static const uint8_t plain[] = { 0, 0, 0, 0x10, 'm', 'o', 'o', 'f', 1, 2 };
	struct cn_mp4_box b;

	CHECK_INT(cn_mp4_box_header(plain, 0, &b), -EAGAIN);
	CHECK_INT(cn_mp4_box_header(plain, 7, &b), -EAGAIN);
	CHECK_INT(cn_mp4_box_header(plain, sizeof(plain), &b), 0);
	CHECK(b.type == FCC("moof") && b.size == 16 && b.header_len == 8);
	CHECK_INT(cn_mp4_box_header(small, sizeof(small), &b), CN_E_MALFORMED);
	CHECK_INT(cn_mp4_box_header(zero, sizeof(zero), &b), 0);
	CHECK(b.size == 0 && b.header_len == 8 && b.type == FCC("mdat"));
	CHECK_INT(cn_mp4_box_header(big, 15, &b), -EAGAIN);
	CHECK_INT(cn_mp4_box_header(big, sizeof(big), &b), 0);
	CHECK(b.size == 0x100000010ull && b.header_len == 16);
	CHECK_INT(cn_mp4_box_header(big_bad, sizeof(big_bad), &b), CN_E_MALFORMED);
	CHECK(CN_MP4_FOURCC('m', 'o', 'o', 'f') == 0x6d6f6f66u);
}

/* moov and every moof parsed directly, checked against ffprobe's numbers. */
TEST(mp4_fixtures_parse)
{
	for (size_t fi = 0; fi < NFIXTURES; fi++) {
		const struct fixture *fx = &fixtures[fi];
		uint64_t next_time[2] = { 0, 0 };
		struct cn_mp4_frag frags[4];
		struct cn_mp4_init init;
		struct top tops[16];
		int ntop, nmoof = 0, nfr;
		size_t len = 0;
		uint8_t *buf = cn_test_load(fx->name, &len);

		if (buf == NULL)
			continue;
		CHECK_INT(len, fx->size);
		ntop = top_boxes(buf, len, tops, 16);
		CHECK(ntop > 3);
		CHECK(ntop > 0 && tops[0].type == FCC("ftyp"));
		CHECK(ntop > 1 && tops[1].type == FCC("moov"));
		/* A clean close appends mfra; a crashed recording has none. */
		CHECK(ntop > 0 && tops[ntop - 1].type == FCC("mfra"));
		if (ntop < 3)
			goto next_free;
		CHECK_INT(cn_mp4_parse_moov(buf + tops[1].off, tops[1].size, &init), 0);
		CHECK_INT(init.movie_timescale, 1000);
		CHECK_INT(init.ntracks, fx->ntracks);
		for (int t = 0; t < fx->ntracks && t < init.ntracks; t++) {
			const struct track_expect *te = &fx->t[t];
			CHECK_INT(init.tracks[t].track_id, t + 1);
			CHECK_STR(init.tracks[t].handler, te->handler);
			CHECK_STR(init.tracks[t].codec, te->codec);
			CHECK_INT(init.tracks[t].timescale, te->timescale);
			CHECK_INT(init.tracks[t].width, te->width);
			CHECK_INT(init.tracks[t].height, te->height);
			/* FFmpeg's trex carries no defaults: every tfhd has its own. */
			CHECK_INT(init.tracks[t].default_sample_duration, 0);
			CHECK_INT(init.tracks[t].default_sample_flags, 0);
		}
		for (int i = 2; i < ntop; i++) {
			if (tops[i].type != FCC("moof"))
				continue;
			CHECK(i + 1 < ntop && tops[i + 1].type == FCC("mdat"));
			CHECK_INT(cn_mp4_parse_moof(buf + tops[i].off, tops[i].size, &init, frags, 4,
						    &nfr), 0);
			/* Exactly one traf per track, in track order. */
			CHECK_INT(nfr, fx->ntracks);
			for (int t = 0; t < nfr && t < fx->ntracks && nmoof < 4; t++) {
				const struct track_expect *te = &fx->t[t];
				const struct cn_mp4_frag *f = &frags[t];
				CHECK_INT(f->sequence, nmoof + 1);
				CHECK_INT(f->track_id, t + 1);
				CHECK(f->starts_with_keyframe);
				CHECK_INT(f->sample_count, te->samples[nmoof]);
				CHECK_INT(f->duration, te->dur[nmoof]);
				CHECK_INT(f->data_size, te->bytes[nmoof]);
				CHECK_INT(f->base_decode_time, te->dts[nmoof]);
				/* Decode times run on without gaps or overlaps. */
				CHECK_INT(f->base_decode_time, next_time[t]);
				next_time[t] = f->base_decode_time + f->duration;
				/* default-base-is-moof: offsets from the moof, data in the next mdat */
				CHECK(!f->data_abs);
				CHECK_INT(tops[i].off + f->data_begin, te->pos[nmoof]);
				CHECK_INT(f->data_end - f->data_begin, f->data_size);
				CHECK(tops[i].off + f->data_begin >= tops[i + 1].off + 8);
				CHECK(tops[i].off + f->data_end <= tops[i + 1].off + tops[i + 1].size);
			}
			nmoof++;
		}
		CHECK_INT(nmoof, fx->fragments);
		for (int t = 0; t < fx->ntracks; t++)
			CHECK_INT(next_time[t], fx->t[t].total);
next_free:
		free(buf);
	}
}

/* Where a walk of the first `cut` bytes must stop: the end of the last whole unit. */
static size_t expect_end(const struct top *tops, int ntop, size_t cut, int *fragments)
{
	size_t end = 0;

	*fragments = 0;
	for (int i = 0; i < ntop; i++) {
		if (tops[i].type == FCC("moof")) {
			if (i + 1 >= ntop || tops[i + 1].off + tops[i + 1].size > cut)
				break;
			end = tops[i + 1].off + tops[i + 1].size;
			(*fragments)++;
			i++;
			continue;
		}
		if (tops[i].off + tops[i].size > cut)
			break;
		end = tops[i].off + tops[i].size;
	}
	return end;
}

TEST(mp4_walk_fixtures)
{
	for (size_t fi = 0; fi < NFIXTURES; fi++) {
		const struct fixture *fx = &fixtures[fi];
		const struct track_expect *v = &fx->t[0];
		struct cn_mp4_walk w, w2, grow;
		struct walk_rec rec;
		struct top tops[16];
		size_t len = 0, exp, cut;
		uint64_t off;
		size_t rlen;
		int ntop, rc;
		uint8_t *buf = cn_test_load(fx->name, &len);

		if (buf == NULL)
			continue;
		ntop = top_boxes(buf, len, tops, 16);
		CHECK(ntop > 0);

		/* The whole file walks clean to its last byte. */
		CHECK_INT(walk(buf, len, &w, &rec), 0);
		CHECK_INT(w.valid_end, len);
		CHECK_INT(w.fragments, fx->fragments);
		CHECK_INT(rec.n, fx->fragments);
		CHECK_INT(w.video, 0);
		CHECK(w.have_video_time);
		CHECK_INT(w.video_start, 0);
		CHECK_INT(w.video_end, v->total);
		CHECK_STR(w.init.tracks[0].codec, v->codec);
		for (int i = 0; i < rec.n && i < 4; i++) {
			CHECK(rec.f[i].has_video && rec.f[i].keyframe);
			CHECK_INT(rec.f[i].sequence, i + 1);
			CHECK_INT(rec.f[i].video_time, v->dts[i]);
			CHECK_INT(rec.f[i].video_duration, v->dur[i]);
			CHECK(buf[rec.f[i].moof_offset + 4] == 'm' &&
			      memcmp(buf + rec.f[i].moof_offset + 4, "moof", 4) == 0);
			CHECK(i == 0 || rec.f[i].moof_offset == rec.f[i - 1].end_offset);
		}

		/* Cut anywhere: the walk keeps exactly the whole units before the cut. */
		for (cut = 0;; cut = cut + 97 > len ? len : cut + 97) {
			int want_frags;
			exp = expect_end(tops, ntop, cut, &want_frags);
			rc = walk(buf, cut, &w, &rec);
			if (rc != 0 || w.valid_end != exp || (int)w.fragments != want_frags) {
				cn_test_fail(__FILE__, __LINE__,
					     "%s cut at %zu: rc %d valid_end %llu (want %zu) "
					     "fragments %u (want %d)", fx->name, cut, rc,
					     (unsigned long long)w.valid_end, exp, w.fragments,
					     want_frags);
				if (cut == len)
					break;
				continue;
			}
			CHECK(w.valid_end <= cut);
			if (want_frags > 0)
				CHECK_INT(w.video_end, v->dts[want_frags - 1] + v->dur[want_frags - 1]);
			else
				CHECK(!w.have_video_time);
			/* Truncating there gives a file that walks clean to its end. */
			CHECK_INT(walk(buf, (size_t)w.valid_end, &w2, NULL), 0);
			CHECK_INT(w2.valid_end, w.valid_end);
			CHECK_INT(w2.fragments, w.fragments);
			if (cut == len)
				break;
		}
		/* Cuts one byte either side of every box boundary. */
		for (int i = 0; i < ntop; i++) {
			for (int d = -1; d <= 1; d++) {
				int want_frags;
				cut = tops[i].off + tops[i].size + (size_t)d;
				if (cut > len)
					continue;
				exp = expect_end(tops, ntop, cut, &want_frags);
				CHECK_INT(walk(buf, cut, &w, NULL), 0);
				CHECK_INT(w.valid_end, exp);
				CHECK_INT(w.fragments, want_frags);
			}
		}

		/* A file that grows under one walker ends where a walk of the whole file does. */
		cn_mp4_walk_init(&grow);
		for (cut = 0;; cut = cut + 97 > len ? len : cut + 97) {
			int want_frags;
			while ((rc = cn_mp4_walk_next(&grow, cut, &off, &rlen)) > 0) {
				if (off + rlen > cut) {
					rc = -ERANGE;
					break;
				}
				rc = cn_mp4_walk_feed(&grow, buf + off, rlen);
				if (rc < 0)
					break;
			}
			CHECK_INT(rc, 0);
			exp = expect_end(tops, ntop, cut, &want_frags);
			CHECK_INT(grow.valid_end, exp);
			CHECK_INT(grow.fragments, want_frags);
			if (rc != 0 || cut == len)
				break;
		}
		CHECK_INT(grow.valid_end, len);
		CHECK_INT(grow.video_end, v->total);
		/* A file may grow, not shrink. */
		CHECK_INT(cn_mp4_walk_next(&grow, len - 1, &off, &rlen), -EINVAL);
		free(buf);
	}
}

/* ---- hand-built boxes ---- */

struct bld {
	uint8_t b[4096];
	size_t n;
	size_t open[16];
	int depth;
};

static void put8(struct bld *b, uint8_t v)
{
	if (b->n < sizeof(b->b))
		b->b[b->n++] = v;
}

static void put32(struct bld *b, uint32_t v)
{
	for (int i = 24; i >= 0; i -= 8)
		put8(b, (uint8_t)(v >> i));
}

static void put64(struct bld *b, uint64_t v)
{
	put32(b, (uint32_t)(v >> 32));
	put32(b, (uint32_t)v);
}

static void zeros(struct bld *b, size_t n)
{
	while (n--)
		put8(b, 0);
}

static void box(struct bld *b, const char *type)
{
	b->open[b->depth++] = b->n;
	put32(b, 0);
	put32(b, FCC(type));
}

static void fbox(struct bld *b, const char *type, uint8_t version, uint32_t flags)
{
	box(b, type);
	put32(b, (uint32_t)version << 24 | flags);
}

/* Closes the innermost box; returns its offset. */
static size_t end(struct bld *b)
{
	size_t at = b->open[--b->depth];

	put_be32(b->b + at, (uint32_t)(b->n - at));
	return at;
}

enum moov_bug {
	MOOV_OK,
	MOOV_FIVE_TRAKS,
	MOOV_DUP_ID,
	MOOV_NO_STSD,
	MOOV_ZERO_TIMESCALE,
	MOOV_NESTED_MOOF,
	MOOV_TREX_UNKNOWN,
	MOOV_CHILD_OVERRUN,
	MOOV_ZERO_CHILD,
	MOOV_BIG_FREE_OK,
	MOOV_BIG_FREE_HUGE,
	MOOV_MDHD_V2,
	MOOV_BAD_CODEC,
	MOOV_TRAILING,
	MOOV_NO_MVHD,
};

static void build_trak(struct bld *b, uint32_t id, int v, const char *handler, const char *codec,
		       uint32_t ts, uint32_t width, uint32_t height, enum moov_bug bug)
{
	box(b, "trak");
	fbox(b, "tkhd", (uint8_t)v, 3);
	if (v) {
		put64(b, 1);
		put64(b, 2);
	} else {
		put32(b, 1);
		put32(b, 2);
	}
	put32(b, id);
	put32(b, 0);
	if (v)
		put64(b, 0);
	else
		put32(b, 0);
	zeros(b, 52);
	put32(b, width << 16 | 0x8000); /* fractions are dropped */
	put32(b, height << 16);
	end(b);
	box(b, "mdia");
	fbox(b, "mdhd", bug == MOOV_MDHD_V2 ? 2 : (uint8_t)v, 0);
	if (v) {
		put64(b, 1);
		put64(b, 2);
		put32(b, ts);
		put64(b, 0);
	} else {
		put32(b, 1);
		put32(b, 2);
		put32(b, ts);
		put32(b, 0);
	}
	put32(b, 0x55c40000);
	end(b);
	fbox(b, "hdlr", 0, 0);
	put32(b, 0);
	put32(b, FCC(handler));
	zeros(b, 13);
	end(b);
	box(b, "minf");
	box(b, "dinf");
	zeros(b, 4);
	end(b);
	box(b, "stbl");
	if (bug != MOOV_NO_STSD) {
		fbox(b, "stsd", 0, 0);
		put32(b, 1);
		box(b, codec);
		zeros(b, 8);
		end(b);
		end(b);
	}
	fbox(b, "stts", 0, 0);
	put32(b, 0);
	end(b);
	end(b); /* stbl */
	end(b); /* minf */
	end(b); /* mdia */
	end(b); /* trak */
}

static void build_trex(struct bld *b, uint32_t id, uint32_t dur, uint32_t size, uint32_t flags)
{
	fbox(b, "trex", 0, 0);
	put32(b, id);
	put32(b, 1);
	put32(b, dur);
	put32(b, size);
	put32(b, flags);
	end(b);
}

/* Video track 1 (v1 boxes, 'hvc1' 1920x1080 at 90 kHz) and G.711 track 2 (v0 boxes). */
static void build_moov(struct bld *b, enum moov_bug bug)
{
	memset(b, 0, sizeof(*b));
	box(b, "moov");
	if (bug != MOOV_NO_MVHD) {
		fbox(b, "mvhd", 1, 0);
		put64(b, 1);
		put64(b, 2);
		put32(b, 1000);
		put64(b, 0);
		zeros(b, 80);
		end(b);
	}
	if (bug == MOOV_BIG_FREE_OK || bug == MOOV_BIG_FREE_HUGE) {
		/* A 64-bit size where 32 bits would do, which the format allows. */
		put32(b, 1);
		put32(b, FCC("free"));
		put64(b, bug == MOOV_BIG_FREE_OK ? 20 : 0x8000000000000000ull);
		zeros(b, 4);
	}
	build_trak(b, 1, 1, "vide", bug == MOOV_BAD_CODEC ? "hv\x01" "1" : "hvc1",
		   bug == MOOV_ZERO_TIMESCALE ? 0 : 90000, 1920, 1080, bug);
	build_trak(b, bug == MOOV_DUP_ID ? 1 : 2, 0, "soun", "ulaw", 8000, 0, 0, MOOV_OK);
	if (bug == MOOV_FIVE_TRAKS)
		for (uint32_t id = 3; id <= 5; id++)
			build_trak(b, id, 0, "soun", "alaw", 8000, 0, 0, MOOV_OK);
	box(b, "mvex");
	build_trex(b, 1, 3000, 0, 0x01010000);
	build_trex(b, bug == MOOV_TREX_UNKNOWN ? 9 : 2, 160, 160, 0x02000000);
	end(b);
	if (bug == MOOV_NESTED_MOOF) {
		box(b, "moof");
		end(b);
	}
	if (bug == MOOV_ZERO_CHILD) {
		put32(b, 0);
		put32(b, FCC("free"));
	}
	if (bug == MOOV_TRAILING)
		zeros(b, 4);
	end(b);
	if (bug == MOOV_CHILD_OVERRUN) {
		/* mvhd claims one byte more than the moov holds after it */
		put_be32(b->b + 8, (uint32_t)b->n - 8 + 1);
	}
}

TEST(mp4_moov_built)
{
	struct cn_mp4_init init;
	struct bld b;

	build_moov(&b, MOOV_OK);
	CHECK_INT(cn_mp4_parse_moov(b.b, b.n, &init), 0);
	CHECK_INT(init.movie_timescale, 1000);
	CHECK_INT(init.ntracks, 2);
	CHECK_INT(init.tracks[0].track_id, 1);
	CHECK_INT(init.tracks[0].timescale, 90000);
	CHECK_STR(init.tracks[0].handler, "vide");
	CHECK_STR(init.tracks[0].codec, "hvc1");
	CHECK_INT(init.tracks[0].width, 1920);
	CHECK_INT(init.tracks[0].height, 1080);
	CHECK_INT(init.tracks[0].default_sample_duration, 3000);
	CHECK_INT(init.tracks[0].default_sample_flags, 0x01010000);
	CHECK_INT(init.tracks[1].track_id, 2);
	CHECK_INT(init.tracks[1].timescale, 8000);
	CHECK_STR(init.tracks[1].handler, "soun");
	CHECK_STR(init.tracks[1].codec, "ulaw");
	CHECK_INT(init.tracks[1].default_sample_size, 160);
	CHECK_INT(cn_mp4_track_index(&init, 2), 1);
	CHECK_INT(cn_mp4_track_index(&init, 3), -1);
	/* Bytes after the box are not read; a buffer shorter than the box is refused. */
	CHECK_INT(cn_mp4_parse_moov(b.b, b.n + 100, &init), 0);
	CHECK_INT(cn_mp4_parse_moov(b.b, b.n - 1, &init), CN_E_MALFORMED);
	CHECK_INT(init.ntracks, 0);
	CHECK_INT(cn_mp4_parse_moov(b.b, 7, &init), CN_E_MALFORMED);
	CHECK_INT(cn_mp4_parse_moov(NULL, 0, &init), CN_E_MALFORMED);

	build_moov(&b, MOOV_BIG_FREE_OK);
	CHECK_INT(cn_mp4_parse_moov(b.b, b.n, &init), 0);
	CHECK_INT(init.ntracks, 2);

	for (int bug = MOOV_FIVE_TRAKS; bug <= MOOV_NO_MVHD; bug++) {
		if (bug == MOOV_BIG_FREE_OK)
			continue;
		build_moov(&b, (enum moov_bug)bug);
		if (cn_mp4_parse_moov(b.b, b.n, &init) != CN_E_MALFORMED)
			cn_test_fail(__FILE__, __LINE__, "moov bug %d accepted", bug);
		CHECK_INT(init.ntracks, 0);
	}
	/* A moof is not a moov. */
	{
		static const uint8_t moof[] = { 0, 0, 0, 8, 'm', 'o', 'o', 'f' };
		CHECK_INT(cn_mp4_parse_moov(moof, sizeof(moof), &init), CN_E_MALFORMED);
	}
}

enum moof_bug {
	MOOF_OK,
	MOOF_HUGE_COUNT,
	MOOF_BOTH_FLAGS,
	MOOF_NO_TFDT,
	MOOF_TFDT_V2,
	MOOF_TRUN_FIRST,
	MOOF_UNKNOWN_TRACK,
	MOOF_NO_MFHD,
	MOOF_TWO_MFHD,
	MOOF_TRUN_V2,
	MOOF_ZERO_CHILD,
	MOOF_NESTED_MOOV,
	MOOF_BASE_OVERFLOW,
	MOOF_TRAILING,
	MOOF_TRAF_OVERRUN,
	MOOF_COUNT_SUM_OVERFLOW,
	MOOF_LAST_BAD = MOOF_COUNT_SUM_OVERFLOW,
	MOOF_NEG_OFFSET, /* not refused by the parser: the data just starts before the moof */
};

/*
 * traf 1 (track 1): tfhd with base-data-offset 5000, sample-description-index, default
 * duration 3003 and default flags; tfdt v0; a v1 trun with data offset 8, first-sample
 * flags, sizes and composition offsets; a v0 trun with durations, sizes and flags and no
 * data offset (continues after the first).
 * traf 2 (track 2): tfhd with no flags (data follows traf 1's), tfdt v1 = 2^33, a trun
 * with no table: 10 samples of the trex defaults.
 */
static void build_moof(struct bld *b, enum moof_bug bug)
{
	size_t traf;

	memset(b, 0, sizeof(*b));
	box(b, "moof");
	if (bug != MOOF_NO_MFHD) {
		fbox(b, "mfhd", 0, 0);
		put32(b, 7);
		end(b);
	}
	box(b, "traf");
	if (bug == MOOF_TRUN_FIRST) {
		fbox(b, "trun", 0, 0);
		put32(b, 0);
		end(b);
	}
	fbox(b, "tfhd", 0, 0x01 | 0x02 | 0x08 | 0x20);
	put32(b, bug == MOOF_UNKNOWN_TRACK ? 3 : 1);
	put64(b, bug == MOOF_BASE_OVERFLOW ? UINT64_MAX - 100 : 5000);
	put32(b, 1);
	put32(b, 3003);
	put32(b, 0x01010000);
	end(b);
	if (bug != MOOF_NO_TFDT) {
		fbox(b, "tfdt", bug == MOOF_TFDT_V2 ? 2 : 0, 0);
		put32(b, 900000);
		end(b);
	}
	if (bug == MOOF_TWO_MFHD) {
		end(b); /* close traf early, add a second mfhd in the moof, reopen a traf */
		fbox(b, "mfhd", 0, 0);
		put32(b, 8);
		end(b);
		box(b, "traf");
		fbox(b, "tfhd", 0, 0);
		put32(b, 1);
		end(b);
		fbox(b, "tfdt", 0, 0);
		put32(b, 0);
		end(b);
	}
	fbox(b, "trun", bug == MOOF_TRUN_V2 ? 2 : 1,
	     0x001 | 0x004 | 0x200 | 0x800 | (bug == MOOF_BOTH_FLAGS ? 0x400 : 0));
	put32(b, bug == MOOF_HUGE_COUNT ? 0xffffffffu : 3);
	put32(b, bug == MOOF_NEG_OFFSET ? (uint32_t)-6000 : 8);
	put32(b, 0x02000000);
	for (int i = 0; i < 3; i++) {
		static const uint32_t size[] = { 100, 50, 60 }, cto[] = { 0, (uint32_t)-3003, 0 };
		put32(b, size[i]);
		if (bug == MOOF_BOTH_FLAGS)
			put32(b, 0x01010000);
		put32(b, cto[i]);
	}
	end(b);
	fbox(b, "trun", 0, 0x100 | 0x200 | 0x400);
	put32(b, 2);
	for (int i = 0; i < 2; i++) {
		put32(b, 3000);
		put32(b, 70 + 10 * (uint32_t)i);
		put32(b, 0x01010000);
	}
	end(b);
	if (bug == MOOF_NESTED_MOOV) {
		box(b, "moov");
		end(b);
	}
	if (bug == MOOF_ZERO_CHILD) {
		put32(b, 0);
		put32(b, FCC("sdtp"));
	}
	traf = end(b);
	box(b, "traf");
	fbox(b, "tfhd", 0, 0);
	put32(b, 2);
	end(b);
	fbox(b, "tfdt", 1, 0);
	put64(b, 1ull << 33);
	end(b);
	fbox(b, "trun", 0, 0);
	put32(b, 10);
	end(b);
	if (bug == MOOF_COUNT_SUM_OVERFLOW) {
		fbox(b, "trun", 0, 0);
		put32(b, 0xfffffff8u);
		end(b);
	}
	end(b);
	if (bug == MOOF_TRAILING)
		zeros(b, 4);
	end(b);
	if (bug == MOOF_TRAF_OVERRUN)
		put_be32(b->b + traf, (uint32_t)(b->n - traf + 1));
}

TEST(mp4_moof_built)
{
	struct cn_mp4_frag fr[4];
	struct cn_mp4_init init;
	struct bld m, b;
	int n = -1;

	build_moov(&m, MOOV_OK);
	CHECK_INT(cn_mp4_parse_moov(m.b, m.n, &init), 0);
	build_moof(&b, MOOF_OK);
	CHECK_INT(cn_mp4_parse_moof(b.b, b.n, &init, fr, 4, &n), 0);
	CHECK_INT(n, 2);
	CHECK_INT(fr[0].sequence, 7);
	CHECK_INT(fr[0].track_id, 1);
	CHECK_INT(fr[0].base_decode_time, 900000);
	CHECK_INT(fr[0].sample_count, 5);
	CHECK_INT(fr[0].duration, 3 * 3003 + 2 * 3000);
	CHECK(fr[0].starts_with_keyframe); /* first-sample flags beat the tfhd default */
	CHECK_INT(fr[0].data_size, 100 + 50 + 60 + 70 + 80);
	CHECK(fr[0].data_abs);
	CHECK_INT(fr[0].data_begin, 5008);
	CHECK_INT(fr[0].data_end, 5008 + 360);
	CHECK_INT(fr[1].sequence, 7);
	CHECK_INT(fr[1].track_id, 2);
	CHECK(fr[1].base_decode_time == 1ull << 33);
	CHECK_INT(fr[1].sample_count, 10);
	CHECK_INT(fr[1].duration, 1600);
	CHECK_INT(fr[1].data_size, 1600);
	CHECK(fr[1].starts_with_keyframe); /* trex default flags: a sync sample */
	CHECK(fr[1].data_abs);             /* chained after traf 1's absolute data */
	CHECK_INT(fr[1].data_begin, 5368);
	CHECK_INT(fr[1].data_end, 5368 + 1600);
	/* Room for one: the whole moof is still checked, then refused. */
	CHECK_INT(cn_mp4_parse_moof(b.b, b.n, &init, fr, 1, &n), -ENOSPC);
	CHECK_INT(n, 0);
	CHECK_INT(cn_mp4_parse_moof(b.b, b.n, NULL, fr, 4, &n), -EINVAL);
	CHECK_INT(cn_mp4_parse_moof(b.b, b.n - 1, &init, fr, 4, &n), CN_E_MALFORMED);

	/* A trun whose flags disagree with its table would be misread: refused. */
	b.b[find_fourcc(b.b, b.n, 0, "trun") + 7] &= (uint8_t)~0x04;
	CHECK_INT(cn_mp4_parse_moof(b.b, b.n, &init, fr, 4, &n), CN_E_MALFORMED);

	/* A negative data offset is fine while it stays at or after byte 0... */
	build_moof(&b, MOOF_OK);
	put_be32(b.b + find_fourcc(b.b, b.n, 0, "trun") + 12, (uint32_t)-1000);
	CHECK_INT(cn_mp4_parse_moof(b.b, b.n, &init, fr, 4, &n), 0);
	CHECK_INT(fr[0].data_begin, 4000);
	CHECK_INT(fr[1].data_begin, 4360);
	/* ...and refused before it. */
	build_moof(&b, MOOF_NEG_OFFSET);
	CHECK_INT(cn_mp4_parse_moof(b.b, b.n, &init, fr, 4, &n), CN_E_MALFORMED);

	for (int bug = MOOF_HUGE_COUNT; bug <= MOOF_LAST_BAD; bug++) {
		build_moof(&b, (enum moof_bug)bug);
		n = -1;
		if (cn_mp4_parse_moof(b.b, b.n, &init, fr, 4, &n) != CN_E_MALFORMED)
			cn_test_fail(__FILE__, __LINE__, "moof bug %d accepted", bug);
		CHECK_INT(n, 0);
	}
}

/* A moof relative to its own first byte, keyframe or not, with no per-sample table. */
TEST(mp4_moof_defaults)
{
	struct cn_mp4_frag fr[2];
	struct cn_mp4_init init;
	struct bld m, b;
	int n;

	build_moov(&m, MOOV_OK);
	CHECK_INT(cn_mp4_parse_moov(m.b, m.n, &init), 0);
	for (int key = 0; key <= 1; key++) {
		memset(&b, 0, sizeof(b));
		box(&b, "moof");
		fbox(&b, "mfhd", 0, 0);
		put32(&b, 1);
		end(&b);
		box(&b, "traf");
		fbox(&b, "tfhd", 0, 0x020000 | 0x10);
		put32(&b, 1);
		put32(&b, 500); /* default size; duration and flags from trex */
		end(&b);
		fbox(&b, "tfdt", 1, 0);
		put64(&b, UINT64_MAX - 30000); /* far out, but base + duration still fits */
		end(&b);
		fbox(&b, "trun", 0, 0x001 | (key ? 0x004 : 0));
		put32(&b, 10);
		put32(&b, 200);
		if (key)
			put32(&b, 0);
		end(&b);
		end(&b);
		end(&b);
		CHECK_INT(cn_mp4_parse_moof(b.b, b.n, &init, fr, 2, &n), 0);
		CHECK_INT(n, 1);
		CHECK(fr[0].starts_with_keyframe == (key == 1));
		CHECK_INT(fr[0].duration, 30000);
		CHECK_INT(fr[0].data_size, 5000);
		CHECK(!fr[0].data_abs);
		CHECK_INT(fr[0].data_begin, 200);
		CHECK_INT(fr[0].data_end, 5200);
	}
}

/* ---- hostile files for the walk ---- */

struct file {
	uint8_t b[64 * 1024];
	size_t n;
};

static void app(struct file *f, const uint8_t *p, size_t n)
{
	if (n <= sizeof(f->b) - f->n) {
		memcpy(f->b + f->n, p, n);
		f->n += n;
	}
}

static void app_box(struct file *f, const uint8_t *src, const struct top *t)
{
	app(f, src + t->off, t->size);
}

TEST(mp4_walk_hostile)
{
	static struct file f;
	struct cn_mp4_walk w;
	struct top tops[16];
	size_t len = 0, moov_end, frag1_end, at;
	uint64_t off;
	size_t rlen;
	int ntop;
	uint8_t *buf = cn_test_load("frag-h264.mp4", &len);

	if (buf == NULL)
		return;
	ntop = top_boxes(buf, len, tops, 16);
	CHECK(ntop >= 8 && tops[2].type == FCC("moof") && tops[3].type == FCC("mdat"));
	if (ntop < 8)
		goto out_free;
	moov_end = tops[1].off + tops[1].size;
	frag1_end = tops[3].off + tops[3].size;

	/* Sample data with no moof before it: a non-fragmented file, not ours. */
	f.n = 0;
	app_box(&f, buf, &tops[0]);
	app_box(&f, buf, &tops[1]);
	app_box(&f, buf, &tops[3]);
	CHECK_INT(walk(f.b, f.n, &w, NULL), CN_E_MALFORMED);
	CHECK_INT(w.valid_end, moov_end);
	CHECK_INT(w.next, moov_end);
	/* Errors stick. */
	CHECK_INT(cn_mp4_walk_next(&w, f.n, &off, &rlen), CN_E_MALFORMED);

	/* A moof before the moov. */
	f.n = 0;
	app_box(&f, buf, &tops[0]);
	app_box(&f, buf, &tops[2]);
	app_box(&f, buf, &tops[3]);
	CHECK_INT(walk(f.b, f.n, &w, NULL), CN_E_MALFORMED);
	CHECK_INT(w.valid_end, tops[0].size);

	/* The first fragment again, moved on in time: its sequence number does not increase. */
	f.n = 0;
	app(&f, buf, frag1_end);
	app(&f, buf + tops[2].off, frag1_end - tops[2].off);
	at = find_fourcc(f.b, f.n, frag1_end, "tfdt");
	CHECK(at > 0);
	put_be32(f.b + at + 12, 10240); /* v1: the low half of the 64-bit time */
	CHECK_INT(walk(f.b, f.n, &w, NULL), CN_E_MALFORMED);
	CHECK_INT(w.valid_end, frag1_end);
	CHECK_INT(w.fragments, 1);
	/* ...with the sequence fixed too, it is a good second fragment... */
	at = find_fourcc(f.b, f.n, frag1_end, "mfhd");
	CHECK(at > 0);
	put_be32(f.b + at + 8, 2);
	CHECK_INT(walk(f.b, f.n, &w, NULL), 0);
	CHECK_INT(w.valid_end, f.n);
	CHECK_INT(w.fragments, 2);
	CHECK_INT(w.video_end, 20480);
	/* ...but not when its decode time goes back into the first one. */
	put_be32(f.b + find_fourcc(f.b, f.n, frag1_end, "tfdt") + 12, 10239);
	CHECK_INT(walk(f.b, f.n, &w, NULL), CN_E_MALFORMED);
	CHECK_INT(w.valid_end, frag1_end);
	CHECK_INT(w.video_end, 10240);

	/* Something between a moof and its mdat. */
	f.n = 0;
	app(&f, buf, tops[3].off);
	app(&f, (const uint8_t *)"\0\0\0\x08" "free", 8);
	app_box(&f, buf, &tops[3]);
	CHECK_INT(walk(f.b, f.n, &w, NULL), CN_E_MALFORMED);
	CHECK_INT(w.valid_end, moov_end);
	CHECK_INT(w.fragments, 0);

	/* An mdat too short for the samples its moof points at. */
	f.n = 0;
	app(&f, buf, frag1_end - 100);
	put_be32(f.b + tops[3].off, (uint32_t)tops[3].size - 100);
	CHECK_INT(walk(f.b, f.n, &w, NULL), CN_E_MALFORMED);
	CHECK_INT(w.valid_end, moov_end);

	/* A size-0 box ("to end of file") never ends a recording we can trust. */
	f.n = 0;
	app(&f, buf, moov_end);
	app(&f, (const uint8_t *)"\0\0\0\0" "mdat" "xxxx", 12);
	CHECK_INT(walk(f.b, f.n, &w, NULL), CN_E_MALFORMED);
	CHECK_INT(w.valid_end, moov_end);

	/* A moov claiming more than the cap is refused before anyone reads it. */
	f.n = 0;
	app(&f, buf, moov_end);
	put_be32(f.b + tops[1].off, CN_MP4_WALK_MAX_BOX + 1);
	CHECK_INT(walk(f.b, f.n, &w, NULL), CN_E_TOO_BIG);
	CHECK_INT(w.valid_end, tops[0].size);

	/* An mdat with a 64-bit size (its data 8 bytes further on: the trun offset moves). */
	f.n = 0;
	app(&f, buf, tops[3].off);
	at = find_fourcc(f.b, f.n, tops[2].off, "trun");
	CHECK(at > 0);
	put_be32(f.b + at + 12, get_be32(f.b + at + 12) + 8);
	{
		uint8_t hdr[16] = { 0, 0, 0, 1, 'm', 'd', 'a', 't', 0, 0, 0, 0 };
		put_be32(hdr + 12, (uint32_t)tops[3].size + 8);
		app(&f, hdr, sizeof(hdr));
	}
	app(&f, buf + tops[3].off + 8, tops[3].size - 8);
	CHECK_INT(walk(f.b, f.n, &w, NULL), 0);
	CHECK_INT(w.valid_end, f.n);
	CHECK_INT(w.fragments, 1);
	/* ...and a 64-bit size past the end of the file is just an incomplete tail. */
	{
		uint8_t hdr[16] = { 0, 0, 0, 1, 'f', 'r', 'e', 'e', 0x7f, 0, 0, 0, 0, 0, 0, 0 };
		size_t whole = f.n;
		app(&f, hdr, sizeof(hdr));
		CHECK_INT(walk(f.b, f.n, &w, NULL), 0);
		CHECK_INT(w.valid_end, whole);
		/* ...and a 64-bit size that would wrap the file offset is malformed. */
		memset(f.b + whole + 8, 0xff, 8);
		CHECK_INT(walk(f.b, f.n, &w, NULL), CN_E_MALFORMED);
		CHECK_INT(w.valid_end, whole);
		/* ...and one cut inside its 16-byte header is an incomplete tail too. */
		f.n = whole + 12;
		CHECK_INT(walk(f.b, f.n, &w, NULL), 0);
		CHECK_INT(w.valid_end, whole);
	}

	/* An ftyp anywhere but at the start. */
	f.n = 0;
	app(&f, buf, moov_end);
	app_box(&f, buf, &tops[0]);
	CHECK_INT(walk(f.b, f.n, &w, NULL), CN_E_MALFORMED);
	CHECK_INT(w.valid_end, moov_end);

	/* Misuse: feeding what was not asked for. */
	cn_mp4_walk_init(&w);
	CHECK_INT(cn_mp4_walk_feed(&w, buf, 16), -EINVAL);
	CHECK_INT(cn_mp4_walk_next(&w, len, &off, &rlen), 1);
	CHECK_INT(cn_mp4_walk_feed(&w, buf, rlen + 1), -EINVAL);
	CHECK_INT(cn_mp4_walk_feed(&w, buf, rlen), CN_MP4_WALK_MORE);
	CHECK_INT(cn_mp4_walk_feed(&w, buf, rlen), -EINVAL);
	CHECK_INT(w.valid_end, tops[0].size);

out_free:
	free(buf);
}

/* Every byte of the moov and the first moof damaged in turn: no crash, only the codes we
 * document, and the walk never claims more than the file holds. */
TEST(mp4_mutations)
{
	static const uint8_t xors[] = { 0xff, 0x01, 0x80, 0x10 };
	static uint8_t copy[32 * 1024];

	for (size_t fi = 0; fi < NFIXTURES; fi++) {
		struct cn_mp4_frag fr[4];
		struct cn_mp4_init init, good;
		struct cn_mp4_walk w;
		struct top tops[16];
		size_t len = 0, lo, hi;
		int ntop, n, rc;
		uint8_t *buf = cn_test_load(fixtures[fi].name, &len);

		if (buf == NULL)
			continue;
		ntop = top_boxes(buf, len, tops, 16);
		if (ntop < 4 || len > sizeof(copy)) {
			cn_test_fail(__FILE__, __LINE__, "%s: unexpected layout", fixtures[fi].name);
			free(buf);
			continue;
		}
		CHECK_INT(cn_mp4_parse_moov(buf + tops[1].off, tops[1].size, &good), 0);
		lo = tops[1].off;
		hi = tops[2].off + tops[2].size;
		for (size_t i = lo; i < hi; i++) {
			for (size_t x = 0; x < sizeof(xors); x++) {
				memcpy(copy, buf, len);
				copy[i] ^= xors[x];
				rc = cn_mp4_parse_moov(copy + tops[1].off, tops[1].size, &init);
				CHECK(rc == 0 || rc == CN_E_MALFORMED);
				rc = cn_mp4_parse_moof(copy + tops[2].off, tops[2].size, &good, fr, 4, &n);
				CHECK(rc == 0 || rc == CN_E_MALFORMED || rc == -ENOSPC);
				CHECK(n >= 0 && n <= 4);
				rc = walk(copy, len, &w, NULL);
				CHECK(rc == 0 || rc == CN_E_MALFORMED || rc == CN_E_TOO_BIG);
				CHECK(w.valid_end <= len);
			}
		}
		free(buf);
	}
}
