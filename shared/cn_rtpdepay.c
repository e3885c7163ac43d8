/* cn_rtpdepay.c: RTP depacketisers (H.264 RFC 6184, H.265 RFC 7798, G.711) into access units; SPS readers. */
#include "cn_rtpdepay.h"

#include <stdlib.h>
#include <string.h>

#include "cn_err.h"
#include "cn_rtp.h"

#define AU_MIN_CAP (64 * 1024)

int cn_depay_init(struct cn_depay *d, enum cn_depay_codec codec, size_t max_au)
{
	memset(d, 0, sizeof(*d));
	d->codec = codec;
	d->max = max_au;
	return 0;
}

void cn_depay_free(struct cn_depay *d)
{
	if (!d)
		return;
	free(d->buf);
	d->buf = NULL;
	d->len = d->cap = 0;
}

void cn_depay_reset(struct cn_depay *d)
{
	d->have_seq = false;
	d->have_ts = false;
	d->len = 0;
	d->broken = d->in_fu = false;
}

/* ---- bit reader over an unescaped copy ------------------------------------------------ */

struct bits {
	const uint8_t *p;
	size_t len;
	size_t pos; /* in bits */
	bool err;
};

static uint32_t get_bits(struct bits *b, int n)
{
	uint32_t v = 0;

	for (int i = 0; i < n; i++) {
		if (b->pos >= b->len * 8) {
			b->err = true;
			return 0;
		}
		v = v << 1 | ((b->p[b->pos >> 3] >> (7 - (b->pos & 7))) & 1);
		b->pos++;
	}
	return v;
}

static void skip_bits(struct bits *b, size_t n)
{
	if (b->pos + n > b->len * 8) {
		b->err = true;
		b->pos = b->len * 8;
		return;
	}
	b->pos += n;
}

static uint32_t get_ue(struct bits *b)
{
	int zeros = 0;

	while (get_bits(b, 1) == 0) {
		if (b->err || ++zeros > 31) {
			b->err = true;
			return 0;
		}
	}
	if (zeros == 0)
		return 0;
	return (uint32_t)((1ull << zeros) - 1 + get_bits(b, zeros));
}

static int32_t get_se(struct bits *b)
{
	uint32_t v = get_ue(b);

	return (v & 1) ? (int32_t)((v + 1) / 2) : -(int32_t)(v / 2);
}

/* Removes emulation prevention bytes (00 00 03 -> 00 00) of the first cap bytes. */
static size_t unescape(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t o = 0;
	int zeros = 0;

	for (size_t i = 0; i < len && o < cap; i++) {
		if (zeros >= 2 && in[i] == 3) {
			zeros = 0;
			continue;
		}
		zeros = in[i] == 0 ? zeros + 1 : 0;
		out[o++] = in[i];
	}
	return o;
}

static void skip_scaling_list(struct bits *b, int size)
{
	int last = 8, next = 8;

	for (int j = 0; j < size && !b->err; j++) {
		if (next != 0) {
			int32_t delta = get_se(b);
			if (delta < -128 || delta > 127) {
				b->err = true; /* delta_scale is -128..127 */
				return;
			}
			next = (last + delta + 256) % 256;
		}
		if (next != 0)
			last = next;
	}
}

int cn_h264_sps_parse(const uint8_t *nal, size_t len, struct cn_video_info *out)
{
	uint8_t buf[CN_DEPAY_MAX_PS];
	struct bits b = { buf, 0, 8, false };
	uint32_t chroma = 1, poc_type, w, h, fmo, cl = 0, cr = 0, ct = 0, cb = 0;

	memset(out, 0, sizeof(*out));
	if (len < 4 || cn_h264_nal_type(nal) != 7)
		return CN_E_MALFORMED;
	b.len = unescape(nal, len, buf, sizeof(buf));
	out->profile = (int)get_bits(&b, 8);
	out->constraints = (int)get_bits(&b, 8);
	out->level = (int)get_bits(&b, 8);
	if (get_ue(&b) > 31)
		return CN_E_MALFORMED;
	switch (out->profile) {
	case 100: case 110: case 122: case 244: case 44: case 83: case 86: case 118: case 128:
	case 138: case 139: case 134: case 135:
		chroma = get_ue(&b);
		if (chroma > 3)
			return CN_E_MALFORMED;
		if (chroma == 3)
			get_bits(&b, 1);
		get_ue(&b);
		get_ue(&b);
		get_bits(&b, 1);
		if (get_bits(&b, 1)) {
			for (int i = 0; i < (chroma != 3 ? 8 : 12) && !b.err; i++)
				if (get_bits(&b, 1))
					skip_scaling_list(&b, i < 6 ? 16 : 64);
		}
		break;
	default:
		break;
	}
	get_ue(&b); /* log2_max_frame_num_minus4 */
	poc_type = get_ue(&b);
	if (poc_type == 0) {
		get_ue(&b);
	} else if (poc_type == 1) {
		get_bits(&b, 1);
		get_se(&b);
		get_se(&b);
		uint32_t n = get_ue(&b);
		if (n > 255)
			return CN_E_MALFORMED;
		for (uint32_t i = 0; i < n && !b.err; i++)
			get_se(&b);
	} else if (poc_type != 2) {
		return CN_E_MALFORMED;
	}
	get_ue(&b); /* max_num_ref_frames */
	get_bits(&b, 1);
	w = get_ue(&b) + 1;
	h = get_ue(&b) + 1;
	fmo = get_bits(&b, 1);
	if (!fmo)
		get_bits(&b, 1);
	get_bits(&b, 1); /* direct_8x8_inference */
	if (get_bits(&b, 1)) {
		cl = get_ue(&b);
		cr = get_ue(&b);
		ct = get_ue(&b);
		cb = get_ue(&b);
	}
	if (b.err || w > 1024 || h > 1024)
		return CN_E_MALFORMED;
	uint32_t cux = chroma == 0 || chroma == 3 ? 1 : 2;
	uint32_t cuy = (chroma == 1 ? 2 : 1) * (2 - fmo);
	int64_t width = (int64_t)w * 16 - (int64_t)cux * (cl + cr);
	int64_t height = (int64_t)h * 16 * (2 - fmo) - (int64_t)cuy * (ct + cb);
	if (width <= 0 || height <= 0 || width > 16384 || height > 16384)
		return CN_E_MALFORMED;
	out->width = (int)width;
	out->height = (int)height;
	return 0;
}

int cn_h265_sps_parse(const uint8_t *nal, size_t len, struct cn_video_info *out)
{
	uint8_t buf[CN_DEPAY_MAX_PS];
	struct bits b = { buf, 0, 16, false };
	uint32_t msl, chroma, w, h;
	bool prof[8], lvl[8];

	memset(out, 0, sizeof(*out));
	if (len < 6 || cn_h265_nal_type(nal) != 33)
		return CN_E_MALFORMED;
	b.len = unescape(nal, len, buf, sizeof(buf));
	get_bits(&b, 4);
	msl = get_bits(&b, 3);
	get_bits(&b, 1);
	if (msl > 6)
		return CN_E_MALFORMED;
	get_bits(&b, 3); /* profile space, tier */
	out->profile = (int)get_bits(&b, 5);
	skip_bits(&b, 32 + 48);
	out->level = (int)get_bits(&b, 8);
	for (uint32_t i = 0; i < msl; i++) {
		prof[i] = get_bits(&b, 1);
		lvl[i] = get_bits(&b, 1);
	}
	if (msl > 0)
		for (uint32_t i = msl; i < 8; i++)
			skip_bits(&b, 2);
	for (uint32_t i = 0; i < msl; i++) {
		if (prof[i])
			skip_bits(&b, 88);
		if (lvl[i])
			skip_bits(&b, 8);
	}
	if (get_ue(&b) > 15)
		return CN_E_MALFORMED;
	chroma = get_ue(&b);
	if (chroma > 3)
		return CN_E_MALFORMED;
	if (chroma == 3)
		get_bits(&b, 1);
	w = get_ue(&b);
	h = get_ue(&b);
	if (b.err || w == 0 || h == 0 || w > 16384 || h > 16384)
		return CN_E_MALFORMED;
	int64_t width = w, height = h;
	if (get_bits(&b, 1)) {
		uint32_t sw = chroma == 1 || chroma == 2 ? 2 : 1, sh = chroma == 1 ? 2 : 1;
		uint32_t l = get_ue(&b), r = get_ue(&b), t = get_ue(&b), bo = get_ue(&b);
		width -= (int64_t)sw * ((int64_t)l + r);
		height -= (int64_t)sh * ((int64_t)t + bo);
	}
	if (b.err || width <= 0 || height <= 0)
		return CN_E_MALFORMED;
	out->width = (int)width;
	out->height = (int)height;
	return 0;
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int cn_sprop_to_annexb(const char *s, size_t len, uint8_t *out, size_t cap)
{
	size_t o = 0, i = 0;

	while (i < len) {
		size_t e = i, start = o;
		uint32_t acc = 0;
		int nbits = 0;
		while (e < len && s[e] != ',')
			e++;
		if (e == i) {
			i = e + 1;
			continue;
		}
		if (cap - o < 4)
			return -ENOBUFS;
		memcpy(out + o, "\0\0\0\1", 4);
		o += 4;
		for (size_t k = i; k < e; k++) {
			if (s[k] == '=')
				break;
			int v = b64val(s[k]);
			if (v < 0)
				return CN_E_MALFORMED;
			acc = (acc << 6 | (uint32_t)v) & 0xffffff;
			nbits += 6;
			if (nbits >= 8) {
				nbits -= 8;
				if (o == cap)
					return -ENOBUFS;
				out[o++] = (uint8_t)(acc >> nbits);
			}
		}
		if (o == start + 4)
			return CN_E_MALFORMED; /* an empty NAL */
		i = e + 1;
	}
	return (int)o;
}

/* ---- depacketising -------------------------------------------------------------------- */

static int grow(struct cn_depay *d, size_t need)
{
	size_t cap = d->cap ? d->cap : AU_MIN_CAP;
	uint8_t *nb;

	if (need > d->max)
		return -ENOBUFS;
	while (cap < need)
		cap *= 2;
	if (cap > d->max)
		cap = d->max;
	if (!(nb = realloc(d->buf, cap)))
		return -ENOMEM;
	d->buf = nb;
	d->cap = cap;
	return 0;
}

static int reserve(struct cn_depay *d, size_t more)
{
	if (d->len + more <= d->cap)
		return 0;
	return grow(d, d->len + more);
}

static void keep_ps(uint8_t *dst, size_t *dst_len, const uint8_t *nal, size_t len)
{
	if (len > CN_DEPAY_MAX_PS)
		return;
	memcpy(dst, nal, len);
	*dst_len = len;
}

/* Looks at a complete NAL of the unit in progress. */
static void inspect(struct cn_depay *d, const uint8_t *nal, size_t len)
{
	if (len == 0)
		return;
	if (d->codec == CN_DEPAY_H264) {
		int t = cn_h264_nal_type(nal);
		if (t == 7) {
			keep_ps(d->sps, &d->sps_len, nal, len);
			d->has_sps = true;
		} else if (t == 8) {
			keep_ps(d->pps, &d->pps_len, nal, len);
		} else if (t == 5) {
			d->key = true;
		} else if (t == 1 && !d->i_slice && len > 1) {
			uint8_t buf[16];
			struct bits b = { buf, unescape(nal + 1, len - 1, buf, sizeof(buf)), 0, false };
			get_ue(&b); /* first_mb_in_slice */
			uint32_t st = get_ue(&b);
			if (!b.err && (st % 5 == 2 || st % 5 == 4))
				d->i_slice = true;
		}
	} else {
		if (len < 2)
			return;
		int t = cn_h265_nal_type(nal);
		if (t == 32)
			keep_ps(d->vps, &d->vps_len, nal, len);
		else if (t == 33) {
			keep_ps(d->sps, &d->sps_len, nal, len);
			d->has_sps = true;
		} else if (t == 34)
			keep_ps(d->pps, &d->pps_len, nal, len);
		else if (t >= 16 && t <= 23)
			d->key = true;
	}
}

static int append_nal(struct cn_depay *d, const uint8_t *nal, size_t len)
{
	int rc;

	if (len == 0)
		return CN_E_MALFORMED;
	if ((rc = reserve(d, 4 + len)) < 0)
		return rc;
	memcpy(d->buf + d->len, "\0\0\0\1", 4);
	memcpy(d->buf + d->len + 4, nal, len);
	d->len += 4 + len;
	inspect(d, nal, len);
	return 0;
}

/* Starts a fragmented NAL: start code and the rebuilt NAL header. */
static int fu_begin(struct cn_depay *d, const uint8_t *hdr, size_t hlen, const uint8_t *p,
		    size_t n)
{
	int rc;

	if ((rc = reserve(d, 4 + hlen + n)) < 0)
		return rc;
	memcpy(d->buf + d->len, "\0\0\0\1", 4);
	memcpy(d->buf + d->len + 4, hdr, hlen);
	memcpy(d->buf + d->len + 4 + hlen, p, n);
	d->fu_off = d->len + 4;
	d->len += 4 + hlen + n;
	d->in_fu = true;
	return 0;
}

static int fu_more(struct cn_depay *d, const uint8_t *p, size_t n, bool end)
{
	int rc;

	if (!d->in_fu)
		return CN_E_MALFORMED; /* its start was lost */
	if ((rc = reserve(d, n)) < 0)
		return rc;
	memcpy(d->buf + d->len, p, n);
	d->len += n;
	if (end) {
		d->in_fu = false;
		inspect(d, d->buf + d->fu_off, d->len - d->fu_off);
	}
	return 0;
}

static int aggregate(struct cn_depay *d, const uint8_t *p, size_t n)
{
	size_t i = 0;
	int rc;

	if (n == 0)
		return CN_E_MALFORMED;
	while (i < n) {
		if (n - i < 2)
			return CN_E_MALFORMED;
		size_t sz = (size_t)p[i] << 8 | p[i + 1];
		i += 2;
		if (sz == 0 || sz > n - i)
			return CN_E_MALFORMED;
		if ((rc = append_nal(d, p + i, sz)) < 0)
			return rc;
		i += sz;
	}
	return 0;
}

static int depay_h264(struct cn_depay *d, const uint8_t *p, size_t n)
{
	int t;

	if (n < 1)
		return CN_E_MALFORMED;
	t = cn_h264_nal_type(p);
	if (d->in_fu && t != 28)
		return CN_E_MALFORMED; /* the fragment's end was lost */
	if (t >= 1 && t <= 23)
		return append_nal(d, p, n);
	if (t == 24)
		return aggregate(d, p + 1, n - 1);
	if (t == 28) {
		if (n < 3)
			return CN_E_MALFORMED;
		bool start = p[1] & 0x80, end = p[1] & 0x40;
		if (start) {
			if (d->in_fu)
				return CN_E_MALFORMED;
			uint8_t hdr = (uint8_t)((p[0] & 0xe0) | (p[1] & 0x1f));
			int rc = fu_begin(d, &hdr, 1, p + 2, n - 2);
			if (rc < 0 || !end)
				return rc;
			d->in_fu = false;
			inspect(d, d->buf + d->fu_off, d->len - d->fu_off);
			return 0;
		}
		return fu_more(d, p + 2, n - 2, end);
	}
	if (t == 0 || t >= 30)
		return 0; /* unspecified: ignored */
	return CN_E_MALFORMED; /* STAP-B, MTAP, FU-B: packetization-mode 2 */
}

static int depay_h265(struct cn_depay *d, const uint8_t *p, size_t n)
{
	int t;

	if (n < 3)
		return CN_E_MALFORMED;
	t = cn_h265_nal_type(p);
	if (d->in_fu && t != 49)
		return CN_E_MALFORMED;
	if (t < 48)
		return append_nal(d, p, n);
	if (t == 48)
		return aggregate(d, p + 2, n - 2);
	if (t == 49) {
		bool start = p[2] & 0x80, end = p[2] & 0x40;
		if (start) {
			if (d->in_fu)
				return CN_E_MALFORMED;
			uint8_t hdr[2] = { (uint8_t)((p[0] & 0x81) | (p[2] & 0x3f) << 1), p[1] };
			int rc = fu_begin(d, hdr, 2, p + 3, n - 3);
			if (rc < 0 || !end)
				return rc;
			d->in_fu = false;
			inspect(d, d->buf + d->fu_off, d->len - d->fu_off);
			return 0;
		}
		return fu_more(d, p + 3, n - 3, end);
	}
	return CN_E_MALFORMED; /* PACI and reserved types */
}

static int finish(struct cn_depay *d, cn_depay_emit_fn emit, void *arg)
{
	int rc = 0;

	if (!d->have_ts)
		return 0;
	d->have_ts = false;
	if (d->in_fu)
		d->broken = true;
	if (d->broken) {
		d->dropped++;
	} else if (d->len > 0) {
		struct cn_depay_au au = {
			.data = d->buf,
			.len = d->len,
			.ts = d->ts,
			.key = d->key || (d->codec == CN_DEPAY_H264 && d->has_sps && d->i_slice),
			.has_ps = d->has_sps,
		};
		rc = emit(arg, &au);
	}
	d->len = 0;
	d->in_fu = false;
	d->broken = false;
	return rc;
}

int cn_depay_push(struct cn_depay *d, const uint8_t *pkt, size_t n, cn_depay_emit_fn emit,
		  void *arg)
{
	struct cn_rtp_hdr h;
	bool gap = false;
	int rc;

	if (cn_rtp_parse(pkt, n, &h) < 0) {
		d->malformed++;
		if (d->have_ts)
			d->broken = true;
		return CN_E_MALFORMED;
	}
	d->packets++;
	if (d->have_seq) {
		uint16_t diff = (uint16_t)(h.seq - d->next_seq);
		if (diff != 0) {
			if (diff >= 0x8000 && diff > 0xff00)
				return 0; /* a duplicate or a late packet: its place is gone */
			if (diff < 0x8000)
				d->lost += diff;
			gap = true; /* counted, or a jump (the sender restarted) */
		}
	}
	d->have_seq = true;
	d->next_seq = (uint16_t)(h.seq + 1);
	if (d->codec == CN_DEPAY_G711) {
		struct cn_depay_au au = { .data = h.payload, .len = h.payload_len, .ts = h.ts, .key = true };
		return h.payload_len ? emit(arg, &au) : 0;
	}
	if (gap && d->have_ts)
		d->broken = true; /* its tail may be what was lost */
	if (d->have_ts && h.ts != d->ts && (rc = finish(d, emit, arg)) < 0)
		return rc;
	if (!d->have_ts) {
		d->have_ts = true;
		d->ts = h.ts;
		d->len = 0;
		d->broken = d->in_fu = false;
		d->key = d->has_sps = d->i_slice = false;
	}
	if (gap) {
		d->broken = true;
		d->in_fu = false;
	}
	if (!d->broken) {
		rc = d->codec == CN_DEPAY_H264 ? depay_h264(d, h.payload, h.payload_len)
					       : depay_h265(d, h.payload, h.payload_len);
		if (rc < 0) {
			if (rc == CN_E_MALFORMED)
				d->malformed++;
			d->broken = true;
		}
	}
	if (h.marker)
		return finish(d, emit, arg);
	return 0;
}
