/* cn_mp4.c: fragmented MP4 box parsing (moov, moof) and the truncated-file recovery walk, without I/O. */
#include "cn_mp4.h"

#include <limits.h>
#include <string.h>

#include "cn_buf.h"
#include "cn_err.h"

#define T(a, b, c, d) CN_MP4_FOURCC(a, b, c, d)
#define BOX_FTYP T('f', 't', 'y', 'p')
#define BOX_MOOV T('m', 'o', 'o', 'v')
#define BOX_MVHD T('m', 'v', 'h', 'd')
#define BOX_TRAK T('t', 'r', 'a', 'k')
#define BOX_TKHD T('t', 'k', 'h', 'd')
#define BOX_MDIA T('m', 'd', 'i', 'a')
#define BOX_MDHD T('m', 'd', 'h', 'd')
#define BOX_HDLR T('h', 'd', 'l', 'r')
#define BOX_MINF T('m', 'i', 'n', 'f')
#define BOX_STBL T('s', 't', 'b', 'l')
#define BOX_STSD T('s', 't', 's', 'd')
#define BOX_MVEX T('m', 'v', 'e', 'x')
#define BOX_TREX T('t', 'r', 'e', 'x')
#define BOX_MOOF T('m', 'o', 'o', 'f')
#define BOX_MFHD T('m', 'f', 'h', 'd')
#define BOX_TRAF T('t', 'r', 'a', 'f')
#define BOX_TFHD T('t', 'f', 'h', 'd')
#define BOX_TFDT T('t', 'f', 'd', 't')
#define BOX_TRUN T('t', 'r', 'u', 'n')
#define BOX_MDAT T('m', 'd', 'a', 't')
#define BOX_MFRA T('m', 'f', 'r', 'a')

/* tfhd flags */
#define TFHD_BASE_DATA_OFFSET 0x000001u
#define TFHD_SAMPLE_DESC_INDEX 0x000002u
#define TFHD_DEFAULT_DURATION 0x000008u
#define TFHD_DEFAULT_SIZE 0x000010u
#define TFHD_DEFAULT_FLAGS 0x000020u
#define TFHD_DEFAULT_BASE_IS_MOOF 0x020000u

/* trun flags */
#define TRUN_DATA_OFFSET 0x000001u
#define TRUN_FIRST_SAMPLE_FLAGS 0x000004u
#define TRUN_SAMPLE_DURATION 0x000100u
#define TRUN_SAMPLE_SIZE 0x000200u
#define TRUN_SAMPLE_FLAGS 0x000400u
#define TRUN_SAMPLE_CTO 0x000800u

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int rd_u64(struct cn_reader *r, uint64_t *out)
{
	uint32_t hi, lo;

	if (cn_reader_u32be(r, &hi) < 0 || cn_reader_u32be(r, &lo) < 0)
		return CN_E_MALFORMED;
	*out = (uint64_t)hi << 32 | lo;
	return 0;
}

/* A version-1 field is 64 bits, a version-0 one 32. */
static int rd_vfield(struct cn_reader *r, uint8_t version, uint64_t *out)
{
	uint32_t v;

	if (version == 1)
		return rd_u64(r, out);
	if (cn_reader_u32be(r, &v) < 0)
		return CN_E_MALFORMED;
	*out = v;
	return 0;
}

static int full_box(struct cn_reader *r, uint8_t max_version, uint8_t *version, uint32_t *flags)
{
	uint32_t vf;

	if (cn_reader_u32be(r, &vf) < 0 || vf >> 24 > max_version)
		return CN_E_MALFORMED;
	*version = (uint8_t)(vf >> 24);
	*flags = vf & 0xffffff;
	return 0;
}

static int add_u64(uint64_t *acc, uint64_t v)
{
	if (v > UINT64_MAX - *acc)
		return CN_E_MALFORMED;
	*acc += v;
	return 0;
}

/* acc += n * v without wrapping. */
static int add_mul_u64(uint64_t *acc, uint64_t n, uint64_t v)
{
	if (v != 0 && n > UINT64_MAX / v)
		return CN_E_MALFORMED;
	return add_u64(acc, n * v);
}

int cn_mp4_box_header(const uint8_t *p, size_t len, struct cn_mp4_box *out)
{
	uint32_t size32;
	uint64_t size;

	if (len < 8)
		return -EAGAIN;
	size32 = be32(p);
	if (size32 == 1) {
		if (len < 16)
			return -EAGAIN;
		size = (uint64_t)be32(p + 8) << 32 | be32(p + 12);
		if (size < 16)
			return CN_E_MALFORMED;
		out->header_len = 16;
	} else {
		if (size32 != 0 && size32 < 8)
			return CN_E_MALFORMED;
		size = size32;
		out->header_len = 8;
	}
	out->type = be32(p + 4);
	out->size = size;
	return 0;
}

/* Takes the next child box out of a container's payload r; *body gets its payload.
 * Inside a container a box must end within its parent and cannot be "to end of file". */
static int next_child(struct cn_reader *r, struct cn_mp4_box *b, struct cn_reader *body)
{
	size_t left = cn_reader_left(r);
	const uint8_t *p;

	if (cn_mp4_box_header(r->p + r->pos, left, b) < 0 || b->size == 0 || b->size > left)
		return CN_E_MALFORMED;
	if (cn_reader_bytes(r, (size_t)b->size, &p) < 0)
		return CN_E_MALFORMED;
	cn_reader_init(body, p + b->header_len, (size_t)b->size - b->header_len);
	return 0;
}

/* The box at p must be of type want and fit in len; *body gets its payload. */
static int outer_box(const uint8_t *p, size_t len, uint32_t want, struct cn_reader *body)
{
	struct cn_mp4_box b;

	if (p == NULL || cn_mp4_box_header(p, len, &b) < 0 || b.type != want || b.size == 0 ||
	    b.size > len)
		return CN_E_MALFORMED;
	cn_reader_init(body, p + b.header_len, (size_t)b.size - b.header_len);
	return 0;
}

/* Boxes that belong at one place in the tree: met anywhere we do not expect them, the
 * file is not laid out the way we think, so we refuse it rather than guess. */
static bool structural(uint32_t type)
{
	switch (type) {
	case BOX_FTYP: case BOX_MOOV: case BOX_MVHD: case BOX_TRAK: case BOX_TKHD:
	case BOX_MDIA: case BOX_MDHD: case BOX_MINF: case BOX_STBL: case BOX_STSD:
	case BOX_MVEX: case BOX_TREX: case BOX_MOOF: case BOX_MFHD: case BOX_TRAF:
	case BOX_TFHD: case BOX_TFDT: case BOX_TRUN: case BOX_MDAT: case BOX_MFRA:
		return true;
	default:
		return false;
	}
}

/* Four printable ASCII characters, so the strings are safe to log and store. */
static int fourcc_str(uint32_t v, char out[5])
{
	for (int i = 0; i < 4; i++) {
		uint8_t c = (uint8_t)(v >> (24 - 8 * i));
		if (c < 0x20 || c > 0x7e)
			return CN_E_MALFORMED;
		out[i] = (char)c;
	}
	out[4] = '\0';
	return 0;
}

/* ---- moov ---- */

static int parse_mvhd(struct cn_reader *r, struct cn_mp4_init *out)
{
	uint64_t skip;
	uint32_t flags, ts;
	uint8_t v;

	if (full_box(r, 1, &v, &flags) < 0 || rd_vfield(r, v, &skip) < 0 ||
	    rd_vfield(r, v, &skip) < 0 || cn_reader_u32be(r, &ts) < 0 || ts == 0)
		return CN_E_MALFORMED;
	out->movie_timescale = ts;
	return 0;
}

static int parse_tkhd(struct cn_reader *r, struct cn_mp4_track *t)
{
	uint64_t skip;
	uint32_t flags, id, w, h;
	uint8_t v;

	/* creation, modification, track_ID, reserved, duration, then 52 bytes of
	 * reserved/layer/group/volume/matrix before width and height */
	if (full_box(r, 1, &v, &flags) < 0 || rd_vfield(r, v, &skip) < 0 ||
	    rd_vfield(r, v, &skip) < 0 || cn_reader_u32be(r, &id) < 0 || id == 0 ||
	    cn_reader_skip(r, 4) < 0 || rd_vfield(r, v, &skip) < 0 || cn_reader_skip(r, 52) < 0 ||
	    cn_reader_u32be(r, &w) < 0 || cn_reader_u32be(r, &h) < 0)
		return CN_E_MALFORMED;
	t->track_id = id;
	t->width = (uint16_t)(w >> 16);
	t->height = (uint16_t)(h >> 16);
	return 0;
}

static int parse_mdhd(struct cn_reader *r, struct cn_mp4_track *t)
{
	uint64_t skip;
	uint32_t flags, ts;
	uint8_t v;

	if (full_box(r, 1, &v, &flags) < 0 || rd_vfield(r, v, &skip) < 0 ||
	    rd_vfield(r, v, &skip) < 0 || cn_reader_u32be(r, &ts) < 0 || ts == 0)
		return CN_E_MALFORMED;
	t->timescale = ts;
	return 0;
}

static int parse_hdlr(struct cn_reader *r, struct cn_mp4_track *t)
{
	uint32_t flags, type;
	uint8_t v;

	if (full_box(r, 0, &v, &flags) < 0 || cn_reader_skip(r, 4) < 0 ||
	    cn_reader_u32be(r, &type) < 0)
		return CN_E_MALFORMED;
	return fourcc_str(type, t->handler);
}

/* The codec is the first sample entry's type; every declared entry must be a whole box. */
static int parse_stsd(struct cn_reader *r, struct cn_mp4_track *t)
{
	struct cn_reader body;
	struct cn_mp4_box b;
	uint32_t flags, count;
	uint8_t v;

	if (full_box(r, 1, &v, &flags) < 0 || cn_reader_u32be(r, &count) < 0 || count == 0)
		return CN_E_MALFORMED;
	/* Each entry takes at least 8 bytes, so a huge count runs out of input quickly. */
	for (uint32_t i = 0; i < count; i++) {
		if (next_child(r, &b, &body) < 0)
			return CN_E_MALFORMED;
		if (i == 0 && fourcc_str(b.type, t->codec) < 0)
			return CN_E_MALFORMED;
	}
	return 0;
}

static int parse_stbl(struct cn_reader *r, struct cn_mp4_track *t, bool *have_stsd)
{
	struct cn_reader body;
	struct cn_mp4_box b;

	while (cn_reader_left(r) > 0) {
		if (next_child(r, &b, &body) < 0)
			return CN_E_MALFORMED;
		if (b.type == BOX_STSD) {
			if (*have_stsd || parse_stsd(&body, t) < 0)
				return CN_E_MALFORMED;
			*have_stsd = true;
		} else if (structural(b.type)) {
			return CN_E_MALFORMED;
		}
	}
	return 0;
}

static int parse_minf(struct cn_reader *r, struct cn_mp4_track *t, bool *have_stsd)
{
	struct cn_reader body;
	struct cn_mp4_box b;
	bool have_stbl = false;

	while (cn_reader_left(r) > 0) {
		if (next_child(r, &b, &body) < 0)
			return CN_E_MALFORMED;
		if (b.type == BOX_STBL) {
			if (have_stbl || parse_stbl(&body, t, have_stsd) < 0)
				return CN_E_MALFORMED;
			have_stbl = true;
		} else if (structural(b.type)) {
			/* (QuickTime's data-handler hdlr in minf is not structural: skipped) */
			return CN_E_MALFORMED;
		}
	}
	return 0;
}

static int parse_mdia(struct cn_reader *r, struct cn_mp4_track *t)
{
	struct cn_reader body;
	struct cn_mp4_box b;
	bool have_mdhd = false, have_hdlr = false, have_minf = false, have_stsd = false;

	while (cn_reader_left(r) > 0) {
		if (next_child(r, &b, &body) < 0)
			return CN_E_MALFORMED;
		if (b.type == BOX_MDHD) {
			if (have_mdhd || parse_mdhd(&body, t) < 0)
				return CN_E_MALFORMED;
			have_mdhd = true;
		} else if (b.type == BOX_HDLR) {
			if (have_hdlr || parse_hdlr(&body, t) < 0)
				return CN_E_MALFORMED;
			have_hdlr = true;
		} else if (b.type == BOX_MINF) {
			if (have_minf || parse_minf(&body, t, &have_stsd) < 0)
				return CN_E_MALFORMED;
			have_minf = true;
		} else if (structural(b.type)) {
			return CN_E_MALFORMED;
		}
	}
	return have_mdhd && have_hdlr && have_stsd ? 0 : CN_E_MALFORMED;
}

static int parse_trak(struct cn_reader *r, struct cn_mp4_track *t)
{
	struct cn_reader body;
	struct cn_mp4_box b;
	bool have_tkhd = false, have_mdia = false;

	while (cn_reader_left(r) > 0) {
		if (next_child(r, &b, &body) < 0)
			return CN_E_MALFORMED;
		if (b.type == BOX_TKHD) {
			if (have_tkhd || parse_tkhd(&body, t) < 0)
				return CN_E_MALFORMED;
			have_tkhd = true;
		} else if (b.type == BOX_MDIA) {
			if (have_mdia || parse_mdia(&body, t) < 0)
				return CN_E_MALFORMED;
			have_mdia = true;
		} else if (structural(b.type)) {
			return CN_E_MALFORMED;
		}
	}
	return have_tkhd && have_mdia ? 0 : CN_E_MALFORMED;
}

struct trex {
	uint32_t track_id, duration, size, flags;
};

static int parse_mvex(struct cn_reader *r, struct trex *trex, int *ntrex)
{
	struct cn_reader body;
	struct cn_mp4_box b;
	uint32_t flags, sdi;
	uint8_t v;

	while (cn_reader_left(r) > 0) {
		if (next_child(r, &b, &body) < 0)
			return CN_E_MALFORMED;
		if (b.type == BOX_TREX) {
			struct trex *x;
			if (*ntrex == CN_MP4_MAX_TRACKS)
				return CN_E_MALFORMED;
			x = &trex[(*ntrex)++];
			if (full_box(&body, 0, &v, &flags) < 0 ||
			    cn_reader_u32be(&body, &x->track_id) < 0 ||
			    cn_reader_u32be(&body, &sdi) < 0 ||
			    cn_reader_u32be(&body, &x->duration) < 0 ||
			    cn_reader_u32be(&body, &x->size) < 0 ||
			    cn_reader_u32be(&body, &x->flags) < 0 || cn_reader_left(&body) != 0)
				return CN_E_MALFORMED;
		} else if (structural(b.type)) {
			return CN_E_MALFORMED;
		}
	}
	return 0;
}

int cn_mp4_track_index(const struct cn_mp4_init *init, uint32_t track_id)
{
	for (int i = 0; i < init->ntracks && i < CN_MP4_MAX_TRACKS; i++)
		if (init->tracks[i].track_id == track_id)
			return i;
	return -1;
}

int cn_mp4_parse_moov(const uint8_t *p, size_t len, struct cn_mp4_init *out)
{
	struct trex trex[CN_MP4_MAX_TRACKS];
	struct cn_reader r, body;
	struct cn_mp4_box b;
	bool have_mvhd = false, have_mvex = false;
	int ntrex = 0;

	memset(out, 0, sizeof(*out));
	if (outer_box(p, len, BOX_MOOV, &r) < 0)
		goto err_zero;
	while (cn_reader_left(&r) > 0) {
		if (next_child(&r, &b, &body) < 0)
			goto err_zero;
		if (b.type == BOX_MVHD) {
			if (have_mvhd || parse_mvhd(&body, out) < 0)
				goto err_zero;
			have_mvhd = true;
		} else if (b.type == BOX_TRAK) {
			if (out->ntracks == CN_MP4_MAX_TRACKS)
				goto err_zero;
			if (parse_trak(&body, &out->tracks[out->ntracks++]) < 0)
				goto err_zero;
		} else if (b.type == BOX_MVEX) {
			if (have_mvex || parse_mvex(&body, trex, &ntrex) < 0)
				goto err_zero;
			have_mvex = true;
		} else if (structural(b.type)) {
			goto err_zero;
		}
	}
	if (!have_mvhd || out->ntracks == 0)
		goto err_zero;
	/* Track ids name tracks in every traf: they must be unique. */
	for (int i = 0; i < out->ntracks; i++)
		if (cn_mp4_track_index(out, out->tracks[i].track_id) != i)
			goto err_zero;
	/* Every trex names a track, once. */
	for (int i = 0; i < ntrex; i++) {
		int t = cn_mp4_track_index(out, trex[i].track_id);
		if (t < 0)
			goto err_zero;
		for (int j = 0; j < i; j++)
			if (trex[j].track_id == trex[i].track_id)
				goto err_zero;
		out->tracks[t].default_sample_duration = trex[i].duration;
		out->tracks[t].default_sample_size = trex[i].size;
		out->tracks[t].default_sample_flags = trex[i].flags;
	}
	return 0;

err_zero:
	memset(out, 0, sizeof(*out));
	return CN_E_MALFORMED;
}

/* ---- moof ---- */

/* Where the next traf's data starts when its tfhd does not say (ISO 14496-12 8.8.7.1):
 * the moof's first byte for the first traf, else the end of the previous traf's data. */
struct data_chain {
	uint64_t end;
	bool abs;
};

struct traf_defaults {
	uint32_t duration, size, flags;
};

/* start = base + signed offset, refusing a start before 0 or past 2^64. */
static int offset_add(uint64_t base, int32_t off, uint64_t *out)
{
	if (off < 0) {
		uint64_t neg = (uint64_t)(-(int64_t)off);
		if (neg > base)
			return CN_E_MALFORMED;
		*out = base - neg;
		return 0;
	}
	*out = base;
	return add_u64(out, (uint64_t)off);
}

static int parse_trun(struct cn_reader *r, const struct traf_defaults *d, bool first_trun,
		      uint64_t base, uint64_t *chain, struct cn_mp4_frag *f, bool *have_first)
{
	uint32_t flags, count, data_off = 0, first_flags = 0, entry = 0;
	uint64_t start, bytes = 0;
	uint8_t v;

	if (full_box(r, 1, &v, &flags) < 0 || cn_reader_u32be(r, &count) < 0)
		return CN_E_MALFORMED;
	if ((flags & TRUN_DATA_OFFSET) && cn_reader_u32be(r, &data_off) < 0)
		return CN_E_MALFORMED;
	if (flags & TRUN_FIRST_SAMPLE_FLAGS) {
		/* "If this flag and field are used, sample-flags-present shall not be set." */
		if ((flags & TRUN_SAMPLE_FLAGS) || cn_reader_u32be(r, &first_flags) < 0)
			return CN_E_MALFORMED;
	}
	for (uint32_t bit = TRUN_SAMPLE_DURATION; bit <= TRUN_SAMPLE_CTO; bit <<= 1)
		if (flags & bit)
			entry += 4;
	/* The per-sample table must fit in the box: this bounds the loop below. */
	if ((uint64_t)count * entry > cn_reader_left(r))
		return CN_E_MALFORMED;
	if (count > UINT32_MAX - f->sample_count)
		return CN_E_MALFORMED;

	if (entry == 0) {
		/* No table: every sample takes the defaults, so multiply instead of looping. */
		if (add_mul_u64(&f->duration, count, d->duration) < 0 ||
		    add_mul_u64(&bytes, count, d->size) < 0)
			return CN_E_MALFORMED;
		if (count > 0 && !*have_first) {
			uint32_t sf = flags & TRUN_FIRST_SAMPLE_FLAGS ? first_flags : d->flags;
			f->starts_with_keyframe = !(sf & CN_MP4_SAMPLE_IS_NON_SYNC);
			*have_first = true;
		}
	} else {
		for (uint32_t i = 0; i < count; i++) {
			uint32_t dur = d->duration, size = d->size, sf = d->flags, cto;
			if ((flags & TRUN_SAMPLE_DURATION) && cn_reader_u32be(r, &dur) < 0)
				return CN_E_MALFORMED;
			if ((flags & TRUN_SAMPLE_SIZE) && cn_reader_u32be(r, &size) < 0)
				return CN_E_MALFORMED;
			if ((flags & TRUN_SAMPLE_FLAGS) && cn_reader_u32be(r, &sf) < 0)
				return CN_E_MALFORMED;
			/* composition offset: unsigned in v0, signed in v1; not needed here */
			if ((flags & TRUN_SAMPLE_CTO) && cn_reader_u32be(r, &cto) < 0)
				return CN_E_MALFORMED;
			if (i == 0 && (flags & TRUN_FIRST_SAMPLE_FLAGS))
				sf = first_flags;
			if (add_u64(&f->duration, dur) < 0 || add_u64(&bytes, size) < 0)
				return CN_E_MALFORMED;
			if (i == 0 && !*have_first) {
				f->starts_with_keyframe = !(sf & CN_MP4_SAMPLE_IS_NON_SYNC);
				*have_first = true;
			}
		}
	}
	/* Left-over bytes mean the flags and the table disagree: the fields would be misread. */
	if (cn_reader_left(r) != 0)
		return CN_E_MALFORMED;
	f->sample_count += count;
	if (add_u64(&f->data_size, bytes) < 0)
		return CN_E_MALFORMED;

	/* A trun without a data offset continues where the previous one ended. */
	if (flags & TRUN_DATA_OFFSET) {
		if (offset_add(base, (int32_t)data_off, &start) < 0)
			return CN_E_MALFORMED;
	} else {
		start = first_trun ? base : *chain;
	}
	*chain = start;
	if (add_u64(chain, bytes) < 0)
		return CN_E_MALFORMED;
	if (first_trun || start < f->data_begin)
		f->data_begin = start;
	if (first_trun || *chain > f->data_end)
		f->data_end = *chain;
	return 0;
}

static int parse_tfhd(struct cn_reader *r, const struct cn_mp4_init *init, struct cn_mp4_frag *f,
		      struct traf_defaults *d, struct data_chain *chain, bool first_traf,
		      uint64_t *base)
{
	const struct cn_mp4_track *t;
	uint32_t flags, skip;
	uint8_t v;
	int ti;

	if (full_box(r, 0, &v, &flags) < 0 || cn_reader_u32be(r, &f->track_id) < 0)
		return CN_E_MALFORMED;
	ti = cn_mp4_track_index(init, f->track_id);
	if (ti < 0)
		return CN_E_MALFORMED;
	t = &init->tracks[ti];
	d->duration = t->default_sample_duration;
	d->size = t->default_sample_size;
	d->flags = t->default_sample_flags;

	if (flags & TFHD_BASE_DATA_OFFSET) {
		if (rd_u64(r, base) < 0)
			return CN_E_MALFORMED;
		f->data_abs = true;
	} else if ((flags & TFHD_DEFAULT_BASE_IS_MOOF) || first_traf) {
		*base = 0;
		f->data_abs = false;
	} else {
		*base = chain->end;
		f->data_abs = chain->abs;
	}
	if ((flags & TFHD_SAMPLE_DESC_INDEX) && cn_reader_u32be(r, &skip) < 0)
		return CN_E_MALFORMED;
	if ((flags & TFHD_DEFAULT_DURATION) && cn_reader_u32be(r, &d->duration) < 0)
		return CN_E_MALFORMED;
	if ((flags & TFHD_DEFAULT_SIZE) && cn_reader_u32be(r, &d->size) < 0)
		return CN_E_MALFORMED;
	if ((flags & TFHD_DEFAULT_FLAGS) && cn_reader_u32be(r, &d->flags) < 0)
		return CN_E_MALFORMED;
	return cn_reader_left(r) == 0 ? 0 : CN_E_MALFORMED;
}

static int parse_traf(struct cn_reader *r, const struct cn_mp4_init *init, bool first_traf,
		      struct data_chain *chain, struct cn_mp4_frag *f)
{
	struct traf_defaults d;
	struct cn_reader body;
	struct cn_mp4_box b;
	uint64_t base = 0, trun_chain = 0;
	bool have_tfdt = false, have_first = false, any_trun = false;
	uint32_t flags;
	uint8_t v;

	memset(f, 0, sizeof(*f));
	/* tfhd comes first (8.8.7): every other box here depends on it. */
	if (next_child(r, &b, &body) < 0 || b.type != BOX_TFHD ||
	    parse_tfhd(&body, init, f, &d, chain, first_traf, &base) < 0)
		return CN_E_MALFORMED;
	while (cn_reader_left(r) > 0) {
		if (next_child(r, &b, &body) < 0)
			return CN_E_MALFORMED;
		if (b.type == BOX_TFDT) {
			if (have_tfdt || full_box(&body, 1, &v, &flags) < 0 ||
			    rd_vfield(&body, v, &f->base_decode_time) < 0 ||
			    cn_reader_left(&body) != 0)
				return CN_E_MALFORMED;
			have_tfdt = true;
		} else if (b.type == BOX_TRUN) {
			if (parse_trun(&body, &d, !any_trun, base, &trun_chain, f, &have_first) < 0)
				return CN_E_MALFORMED;
			any_trun = true;
		} else if (structural(b.type)) {
			return CN_E_MALFORMED;
		}
	}
	/* Without tfdt a fragment's time depends on every fragment before it: FFmpeg always
	 * writes one, and recovery must not need the earlier fragments. */
	if (!have_tfdt)
		return CN_E_MALFORMED;
	if (!any_trun)
		f->data_begin = f->data_end = base;
	chain->end = f->data_end;
	chain->abs = f->data_abs;
	return 0;
}

int cn_mp4_parse_moof(const uint8_t *p, size_t len, const struct cn_mp4_init *init,
		      struct cn_mp4_frag *frags, int max, int *nfrags)
{
	struct data_chain chain = { 0, false };
	struct cn_mp4_frag scratch;
	struct cn_reader r, body;
	struct cn_mp4_box b;
	bool have_mfhd = false;
	uint32_t sequence = 0, flags;
	uint8_t v;
	int n = 0;

	*nfrags = 0;
	if (init == NULL || max < 0 || (max > 0 && frags == NULL))
		return -EINVAL;
	if (outer_box(p, len, BOX_MOOF, &r) < 0)
		return CN_E_MALFORMED;
	while (cn_reader_left(&r) > 0) {
		if (next_child(&r, &b, &body) < 0)
			return CN_E_MALFORMED;
		if (b.type == BOX_MFHD) {
			if (have_mfhd || full_box(&body, 0, &v, &flags) < 0 ||
			    cn_reader_u32be(&body, &sequence) < 0 || cn_reader_left(&body) != 0)
				return CN_E_MALFORMED;
			have_mfhd = true;
		} else if (b.type == BOX_TRAF) {
			/* Trafs past max are still checked, so -ENOSPC never hides bad input. */
			struct cn_mp4_frag *f = n < max ? &frags[n] : &scratch;
			if (parse_traf(&body, init, n == 0, &chain, f) < 0)
				return CN_E_MALFORMED;
			if (n == INT_MAX)
				return CN_E_MALFORMED;
			n++;
		} else if (structural(b.type)) {
			return CN_E_MALFORMED;
		}
	}
	if (!have_mfhd)
		return CN_E_MALFORMED;
	if (n > max)
		return -ENOSPC;
	for (int i = 0; i < n; i++)
		frags[i].sequence = sequence;
	*nfrags = n;
	return 0;
}

/* ---- recovery walk ---- */

enum walk_state {
	WALK_HEADER, /* expecting any top-level box header at next */
	WALK_BODY,   /* expecting the whole moov or moof at next */
	WALK_MDAT,   /* a moof parsed: expecting its mdat's header at next */
	WALK_ERROR,
};

void cn_mp4_walk_init(struct cn_mp4_walk *w)
{
	memset(w, 0, sizeof(*w));
	w->video = -1;
	w->state = WALK_HEADER;
}

static int walk_fail(struct cn_mp4_walk *w, int rc)
{
	w->state = WALK_ERROR;
	w->error = rc;
	return rc;
}

/* The box at next does not fit in the file yet: wait for the file to grow. */
static int walk_stall(struct cn_mp4_walk *w)
{
	w->stalled = true;
	w->stall_size = w->file_size;
	return CN_MP4_WALK_MORE;
}

int cn_mp4_walk_next(struct cn_mp4_walk *w, uint64_t file_size, uint64_t *off, size_t *len)
{
	uint64_t avail;

	if (w->state == WALK_ERROR)
		return w->error;
	if (file_size < w->file_size || file_size < w->next)
		return -EINVAL;
	w->file_size = file_size;
	if (w->stalled && file_size == w->stall_size)
		return 0;
	w->stalled = false;
	avail = file_size - w->next;
	*off = w->next;
	if (w->state == WALK_BODY) {
		/* The header check made sure the box is in the file and under the cap. */
		*len = w->want;
		return 1;
	}
	if (avail < 8)
		return 0;
	w->want = avail < 16 ? (size_t)avail : 16;
	*len = w->want;
	return 1;
}

/* A parsed moof must continue the file's story before we wait for its mdat. */
static int walk_check_moof(struct cn_mp4_walk *w)
{
	if (w->nfrags == 0)
		return CN_E_MALFORMED;
	if (w->have_sequence && w->frags[0].sequence <= w->sequence)
		return CN_E_MALFORMED;
	for (int i = 0; i < w->nfrags; i++) {
		const struct cn_mp4_frag *f = &w->frags[i];
		int t = cn_mp4_track_index(&w->init, f->track_id);
		uint64_t end = f->base_decode_time;
		for (int j = 0; j < i; j++)
			if (w->frags[j].track_id == f->track_id)
				return CN_E_MALFORMED;
		if (t < 0 || add_u64(&end, f->duration) < 0)
			return CN_E_MALFORMED;
		if (w->track_seen[t] && f->base_decode_time < w->track_end[t])
			return CN_E_MALFORMED;
	}
	return 0;
}

/* The mdat [mdat_off, mdat_end) with header hl follows the pending moof: every traf's data
 * must lie in its payload; then the fragment is whole and its times become the file's. */
static int walk_complete(struct cn_mp4_walk *w, uint64_t mdat_off, uint32_t hl, uint64_t mdat_end)
{
	uint64_t payload = mdat_off + hl;

	for (int i = 0; i < w->nfrags; i++) {
		const struct cn_mp4_frag *f = &w->frags[i];
		uint64_t b = f->data_begin, e = f->data_end;
		if (!f->data_abs) {
			if (add_u64(&b, w->moof_offset) < 0 || add_u64(&e, w->moof_offset) < 0)
				return CN_E_MALFORMED;
		}
		if (f->data_size > 0 && (b < payload || e > mdat_end))
			return CN_E_MALFORMED;
	}

	memset(&w->last, 0, sizeof(w->last));
	w->last.moof_offset = w->moof_offset;
	w->last.end_offset = mdat_end;
	w->last.sequence = w->frags[0].sequence;
	for (int i = 0; i < w->nfrags; i++) {
		const struct cn_mp4_frag *f = &w->frags[i];
		int t = cn_mp4_track_index(&w->init, f->track_id);
		/* walk_check_moof proved the track exists and base + duration fits */
		w->track_seen[t] = true;
		w->track_end[t] = f->base_decode_time + f->duration;
		if (t != w->video)
			continue;
		w->last.has_video = true;
		w->last.keyframe = f->starts_with_keyframe;
		w->last.video_time = f->base_decode_time;
		w->last.video_duration = f->duration;
		if (!w->have_video_time)
			w->video_start = f->base_decode_time;
		w->have_video_time = true;
		w->video_end = w->track_end[t];
	}
	w->have_sequence = true;
	w->sequence = w->last.sequence;
	w->fragments++;
	w->valid_end = mdat_end;
	w->next = mdat_end;
	w->state = WALK_HEADER;
	return CN_MP4_WALK_FRAGMENT;
}

static int walk_header(struct cn_mp4_walk *w, const uint8_t *p, size_t len)
{
	struct cn_mp4_box b;
	uint64_t end = w->next;
	int rc = cn_mp4_box_header(p, len, &b);

	if (rc == -EAGAIN)
		return walk_stall(w); /* a 64-bit header cut short by the end of the file */
	/* Size 0 ("to end of file") is never final for a file we record into. */
	if (rc < 0 || b.size == 0 || add_u64(&end, b.size) < 0)
		return walk_fail(w, CN_E_MALFORMED);

	/* Layout rules first, so the verdict on these bytes does not depend on file size. */
	if (w->state == WALK_MDAT) {
		if (b.type != BOX_MDAT)
			return walk_fail(w, CN_E_MALFORMED);
	} else if (b.type == BOX_FTYP) {
		if (w->next != 0)
			return walk_fail(w, CN_E_MALFORMED);
	} else if (b.type == BOX_MOOV || b.type == BOX_MOOF) {
		if ((b.type == BOX_MOOV) == w->have_init)
			return walk_fail(w, CN_E_MALFORMED);
		if (b.size > CN_MP4_WALK_MAX_BOX)
			return walk_fail(w, CN_E_TOO_BIG);
	} else if (b.type == BOX_MDAT) {
		return walk_fail(w, CN_E_MALFORMED); /* sample data with no moof to describe it */
	}
	if (end > w->file_size)
		return walk_stall(w);

	if (w->state == WALK_MDAT)
		return walk_complete(w, w->next, b.header_len, end);
	if (b.type == BOX_MOOV || b.type == BOX_MOOF) {
		w->state = WALK_BODY;
		w->body_type = b.type;
		w->want = (size_t)b.size;
		return CN_MP4_WALK_MORE;
	}
	w->valid_end = end;
	w->next = end;
	return CN_MP4_WALK_MORE;
}

static int walk_body(struct cn_mp4_walk *w, const uint8_t *p, size_t len)
{
	uint64_t end = w->next + len;
	int rc;

	if (w->body_type == BOX_MOOV) {
		if (cn_mp4_parse_moov(p, len, &w->init) < 0)
			return walk_fail(w, CN_E_MALFORMED);
		w->have_init = true;
		for (int i = 0; i < w->init.ntracks; i++) {
			if (strcmp(w->init.tracks[i].handler, "vide") == 0) {
				w->video = i;
				break;
			}
		}
		w->valid_end = end;
		w->next = end;
		w->state = WALK_HEADER;
		return CN_MP4_WALK_MORE;
	}
	rc = cn_mp4_parse_moof(p, len, &w->init, w->frags, CN_MP4_WALK_MAX_TRAFS, &w->nfrags);
	if (rc < 0 || walk_check_moof(w) < 0) {
		w->nfrags = 0;
		return walk_fail(w, CN_E_MALFORMED);
	}
	w->moof_offset = w->next;
	w->next = end;
	w->state = WALK_MDAT;
	return CN_MP4_WALK_MORE;
}

int cn_mp4_walk_feed(struct cn_mp4_walk *w, const uint8_t *p, size_t len)
{
	if (w->state == WALK_ERROR)
		return w->error;
	/* Only what cn_mp4_walk_next just asked for, once. */
	if (p == NULL || w->want == 0 || len != w->want)
		return -EINVAL;
	w->want = 0;
	if (w->state == WALK_BODY)
		return walk_body(w, p, len);
	return walk_header(w, p, len);
}
