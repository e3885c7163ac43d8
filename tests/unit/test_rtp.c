/* test_rtp.c: RTP/RTCP codecs and the H.264/H.265/G.711 packetisers, checked with a test-only depacketiser. */
#include <stdlib.h>

#include "cn_err.h"
#include "cn_mp4.h"
#include "cn_rtp.h"
#include "cn_test.h"

#define FCC(s) CN_MP4_FOURCC((s)[0], (s)[1], (s)[2], (s)[3])

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
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

/* ---- a real stream: the decoder record and the first access unit of an MP4 ---- */

struct sample_au {
	uint8_t *file;
	const uint8_t *config; /* avcC or hvcC body */
	size_t config_len;
	const uint8_t *au;     /* 4-byte length-prefixed NALs */
	size_t au_len;
	int nals;
};

static bool is_first_slice(bool h265, const uint8_t *nal, size_t len)
{
	if (h265)
		return cn_h265_nal_type(nal) < 32 && len > 2 && (nal[2] & 0x80);
	return (cn_h264_nal_type(nal) == 1 || cn_h264_nal_type(nal) == 5) && len > 1 &&
	       (nal[1] & 0x80);
}

/* The config record from the moov, and the NALs of the first fragment up to the second
 * picture's first slice (the first access unit; the samples are 4-byte prefixed). */
static bool load_sample(const char *name, bool h265, struct sample_au *s)
{
	const char *tag = h265 ? "hvcC" : "avcC";
	struct cn_mp4_box b;
	size_t len = 0, off = 0, pos, nal_len;
	const uint8_t *nal;
	bool seen_slice = false;

	memset(s, 0, sizeof(*s));
	if ((s->file = cn_test_load(name, &len)) == NULL)
		return false;
	for (size_t i = 4; i + 4 <= len; i++) {
		if (memcmp(s->file + i, tag, 4) == 0) {
			s->config = s->file + i + 4;
			s->config_len = get_be32(s->file + i - 4) - 8;
			break;
		}
	}
	while (off < len && cn_mp4_box_header(s->file + off, len - off, &b) == 0 && b.size) {
		if (b.type == FCC("mdat")) {
			s->au = s->file + off + b.header_len;
			s->au_len = (size_t)b.size - b.header_len;
			break;
		}
		off += (size_t)b.size;
	}
	if (s->config == NULL || s->au == NULL) {
		cn_test_fail(__FILE__, __LINE__, "no %s or mdat in %s", tag, name);
		return false;
	}
	pos = 0;
	while (cn_nal_next(s->au, s->au_len, 4, &pos, &nal, &nal_len) == 1) {
		if (is_first_slice(h265, nal, nal_len)) {
			if (seen_slice) {
				s->au_len = (size_t)(nal - s->au) - 4;
				break;
			}
			seen_slice = true;
		}
		s->nals++;
	}
	return true;
}

/* ---- a test-only depacketiser (RFC 6184 mode 1, RFC 7798 without DONL) ---- */

/* NALs as 4-byte length-prefixed records, for comparison with memcmp. */
struct nal_list {
	uint8_t buf[1 << 16];
	size_t len;
	int count;
};

static void nl_reset(struct nal_list *l)
{
	l->len = 0;
	l->count = 0;
}

static bool nl_add(struct nal_list *l, const uint8_t *hdr, size_t hdr_len, const uint8_t *p,
		   size_t n)
{
	if (sizeof(l->buf) - l->len < 4 + hdr_len + n)
		return false;
	put_be32(l->buf + l->len, (uint32_t)(hdr_len + n));
	memcpy(l->buf + l->len + 4, hdr, hdr_len);
	if (n > 0)
		memcpy(l->buf + l->len + 4 + hdr_len, p, n);
	l->len += 4 + hdr_len + n;
	l->count++;
	return true;
}

/* Appends to the last NAL (a fragment). */
static bool nl_append(struct nal_list *l, size_t last_off, const uint8_t *p, size_t n)
{
	if (sizeof(l->buf) - l->len < n)
		return false;
	memcpy(l->buf + l->len, p, n);
	l->len += n;
	put_be32(l->buf + last_off, get_be32(l->buf + last_off) + (uint32_t)n);
	return true;
}

/* Returns 0, or the index + 1 of the first payload that breaks the RFC. */
static int depay(bool h265, const struct cn_rtp_payloads *o, int from, struct nal_list *l)
{
	size_t hl = h265 ? 2 : 1, fu_off = 0;
	bool in_fu = false;
	int fu_type = -1;

	for (int i = from; i < o->npkts; i++) {
		const uint8_t *p = o->buf + o->pkts[i].off;
		size_t n = o->pkts[i].len;
		int type;

		if (n < hl)
			return i + 1;
		type = h265 ? cn_h265_nal_type(p) : cn_h264_nal_type(p);
		if (type == (h265 ? 48 : 24)) {
			size_t off = hl;

			if (in_fu || n == hl)
				return i + 1;
			while (off < n) {
				size_t sz;

				if (n - off < 2)
					return i + 1;
				sz = (size_t)p[off] << 8 | p[off + 1];
				if (sz < hl || sz > n - off - 2 || !nl_add(l, p + off + 2, sz, NULL, 0))
					return i + 1;
				off += 2 + sz;
			}
		} else if (type == (h265 ? 49 : 28)) {
			uint8_t fu = p[hl], hdr[2];
			bool s = fu & 0x80, e = fu & 0x40;
			int t = h265 ? fu & 0x3f : fu & 0x1f;

			if (n <= hl + 1 || (s && in_fu) || (!s && (!in_fu || t != fu_type)) ||
			    (!h265 && (fu & 0x20)))
				return i + 1;
			if (s) {
				if (h265) {
					hdr[0] = (uint8_t)((p[0] & 0x81) | t << 1);
					hdr[1] = p[1];
				} else {
					hdr[0] = (uint8_t)((p[0] & 0xe0) | t);
				}
				fu_off = l->len;
				if (!nl_add(l, hdr, hl, p + hl + 1, n - hl - 1))
					return i + 1;
				in_fu = true;
				fu_type = t;
			} else if (!nl_append(l, fu_off, p + hl + 1, n - hl - 1)) {
				return i + 1;
			}
			if (e)
				in_fu = false;
		} else if (h265 ? type >= 48 : type == 0 || type >= 24) {
			return i + 1;
		} else {
			if (in_fu || !nl_add(l, p, n, NULL, 0))
				return i + 1;
		}
	}
	return in_fu ? o->npkts : 0;
}

static bool dropped(bool h265, const uint8_t *nal)
{
	int t = h265 ? cn_h265_nal_type(nal) : cn_h264_nal_type(nal);

	if (h265)
		return t == 35 || t == 38 || t >= 48;
	return t == 0 || t == 9 || t == 12 || t >= 24;
}

static void expect_nals(bool h265, const uint8_t *p, size_t len, int ls, struct nal_list *l)
{
	const uint8_t *nal;
	size_t pos = 0, n;

	while (cn_nal_next(p, len, ls, &pos, &nal, &n) == 1)
		if (!dropped(h265, nal))
			CHECK(nl_add(l, nal, n, NULL, 0));
}

/* Room for the output of any test here. */
static uint8_t pbuf[1 << 17];
static struct cn_rtp_payload ptab[2048];

static void out_init(struct cn_rtp_payloads *o)
{
	memset(o, 0, sizeof(*o));
	o->buf = pbuf;
	o->cap = sizeof(pbuf);
	o->pkts = ptab;
	o->max_pkts = (int)(sizeof(ptab) / sizeof(ptab[0]));
}

/* Every payload fits, they sit back to back, only the last has the marker. */
static void check_shape(const struct cn_rtp_payloads *o, int from, size_t max)
{
	size_t off = from ? o->pkts[from - 1].off + o->pkts[from - 1].len : 0;

	CHECK(o->npkts > from);
	for (int i = from; i < o->npkts; i++) {
		if (o->pkts[i].len == 0 || o->pkts[i].len > max || o->pkts[i].off != off)
			cn_test_fail(__FILE__, __LINE__, "payload %d: off %u len %u (max %zu)", i,
				     o->pkts[i].off, o->pkts[i].len, max);
		if (o->pkts[i].marker != (i == o->npkts - 1))
			cn_test_fail(__FILE__, __LINE__, "payload %d of %d: marker %d", i,
				     o->npkts, o->pkts[i].marker);
		off += o->pkts[i].len;
	}
	CHECK_INT(off, o->used);
}

/* Packetises (prefix, au), depacketises, and compares with the NALs sent. */
static void roundtrip(bool h265, const uint8_t *au, size_t len, int ls, const uint8_t *prefix,
		      size_t plen, int pls, size_t max, struct cn_rtp_payloads *o)
{
	static struct nal_list want, got;
	int rc;

	out_init(o);
	rc = h265 ? cn_rtp_h265_packetize(au, len, ls, prefix, plen, pls, max, o)
		  : cn_rtp_h264_packetize(au, len, ls, prefix, plen, pls, max, o);
	CHECK_INT(rc, 0);
	if (rc != 0)
		return;
	check_shape(o, 0, max);
	nl_reset(&want);
	nl_reset(&got);
	if (prefix)
		expect_nals(h265, prefix, plen, pls, &want);
	expect_nals(h265, au, len, ls, &want);
	CHECK_INT(depay(h265, o, 0, &got), 0);
	CHECK_INT(got.count, want.count);
	CHECK(got.len == want.len && memcmp(got.buf, want.buf, want.len) == 0);
}

/* Rewrites 4-byte length-prefixed NALs as Annex B, with an AUD and filler added. */
static size_t to_annexb(bool h265, const uint8_t *p, size_t len, uint8_t *out, size_t cap)
{
	static const uint8_t aud264[] = { 0, 0, 0, 1, 0x09, 0xf0 };
	static const uint8_t aud265[] = { 0, 0, 0, 1, 0x46, 0x01, 0x50 };
	static const uint8_t fill264[] = { 0, 0, 1, 0x0c, 0xff, 0xff, 0x80 };
	static const uint8_t fill265[] = { 0, 0, 1, 0x4c, 0x01, 0xff, 0x80 };
	const uint8_t *nal;
	size_t pos = 0, n, w = 0;

	memcpy(out, h265 ? aud265 : aud264, h265 ? sizeof(aud265) : sizeof(aud264));
	w = h265 ? sizeof(aud265) : sizeof(aud264);
	while (cn_nal_next(p, len, 4, &pos, &nal, &n) == 1 && w + 7 + n + 8 <= cap) {
		memcpy(out + w, "\0\0\0\1", 4);
		memcpy(out + w + 4, nal, n);
		w += 4 + n;
		memcpy(out + w, h265 ? fill265 : fill264, sizeof(fill264));
		w += sizeof(fill264);
	}
	out[w++] = 0; /* trailing_zero_8bits */
	out[w++] = 0;
	return w;
}

/* ---- RTP ---- */

TEST(rtp_header_roundtrip)
{
	uint8_t pkt[64];
	struct cn_rtp_hdr h;
	const uint8_t *val;
	size_t vlen;
	int n;

	n = cn_rtp_write_header(pkt, sizeof(pkt), true, 96, 65535, 0xdeadbeef, 0x01020304, 0, 0);
	CHECK_INT(n, 12);
	memcpy(pkt + n, "abc", 3);
	CHECK_INT(cn_rtp_parse(pkt, 15, &h), 0);
	CHECK(h.version == 2 && !h.padding && !h.extension && h.csrc_count == 0);
	CHECK(h.marker && h.pt == 96 && h.seq == 65535 && h.ts == 0xdeadbeef);
	CHECK(h.ssrc == 0x01020304 && h.header_len == 12);
	CHECK(h.payload == pkt + 12 && h.payload_len == 3);
	CHECK_INT(cn_rtp_find_ext(&h, 3, &val, &vlen), -ENOENT);

	/* With abs-send-time (id 3): 1.5 s is 0x060000 in 6.18 fixed point. */
	n = cn_rtp_write_header(pkt, sizeof(pkt), false, 0, 7, 8, 9, 3, 1500000);
	CHECK_INT(n, 20);
	CHECK_INT(cn_rtp_parse(pkt, 20, &h), 0);
	CHECK(h.extension && h.ext_profile == 0xBEDE && h.ext_len == 4 && h.header_len == 20);
	CHECK(!h.marker && h.pt == 0 && h.payload_len == 0);
	CHECK_INT(cn_rtp_find_ext(&h, 3, &val, &vlen), 0);
	CHECK(vlen == 3 && val[0] == 0x06 && val[1] == 0 && val[2] == 0);
	CHECK_INT(cn_rtp_find_ext(&h, 4, &val, &vlen), -ENOENT);
	CHECK_INT(pkt[16], 0x32); /* id 3, length 3 - 1 */

	/* A Unix-epoch time: the reference formula in 128 bits, against ours. */
	{
		uint64_t now = 1763716020123456ull;
		uint32_t want = (uint32_t)((((unsigned __int128)now << 18) / 1000000) & 0xffffff);

		CHECK_INT(cn_rtp_write_header(pkt, 20, false, 0, 0, 0, 0, 14, now), 20);
		CHECK_INT(cn_rtp_parse(pkt, 20, &h), 0);
		CHECK_INT(cn_rtp_find_ext(&h, 14, &val, &vlen), 0);
		CHECK_INT((uint32_t)val[0] << 16 | val[1] << 8 | val[2], want);
	}
	/* ids outside 1..14 write no extension */
	CHECK_INT(cn_rtp_write_header(pkt, sizeof(pkt), false, 0, 0, 0, 0, 15, 1), 12);
	CHECK_INT(cn_rtp_write_header(pkt, sizeof(pkt), false, 0, 0, 0, 0, -1, 1), 12);
	CHECK_INT(cn_rtp_write_header(pkt, 11, false, 0, 0, 0, 0, 0, 1), -ENOBUFS);
	CHECK_INT(cn_rtp_write_header(pkt, 19, false, 0, 0, 0, 0, 1, 1), -ENOBUFS);
	/* pt is 7 bits: the marker is not clobbered by a big pt */
	CHECK_INT(cn_rtp_write_header(pkt, 12, false, 0xff, 0, 0, 0, 0, 0), 12);
	CHECK_INT(pkt[1], 0x7f);
}

TEST(rtp_parse_fields)
{
	/* V=2 P=1 X=1 CC=2, M=1 PT=111; two CSRCs; extension 0xBEDE, 2 words; payload "hi";
	 * 3 bytes of padding. */
	static const uint8_t pkt[] = {
		0xb2, 0xef, 0x12, 0x34, 0, 0, 0x10, 0, 0xca, 0xfe, 0xba, 0xbe,
		0, 0, 0, 1, 0, 0, 0, 2,
		0xbe, 0xde, 0, 2,
		0x10, 0xaa, 0x00, 0x21, 0xbb, 0xcc, 0xf0, 0xd0,
		'h', 'i', 0, 0, 3,
	};
	uint8_t bad[sizeof(pkt)];
	struct cn_rtp_hdr h;
	const uint8_t *val;
	size_t vlen;

	CHECK_INT(cn_rtp_parse(pkt, sizeof(pkt), &h), 0);
	CHECK(h.padding && h.extension && h.csrc_count == 2 && h.marker && h.pt == 111);
	CHECK(h.seq == 0x1234 && h.ts == 0x1000 && h.ssrc == 0xcafebabe);
	CHECK(h.ext_profile == 0xBEDE && h.ext == pkt + 24 && h.ext_len == 8);
	CHECK_INT(h.header_len, 32);
	CHECK(h.payload == pkt + 32 && h.payload_len == 2);
	/* one-byte elements: id 1 len 1; a padding zero; id 2 len 2; id 15 stops the walk
	 * before "id 13 len 1" */
	CHECK_INT(cn_rtp_find_ext(&h, 1, &val, &vlen), 0);
	CHECK(vlen == 1 && val[0] == 0xaa);
	CHECK_INT(cn_rtp_find_ext(&h, 2, &val, &vlen), 0);
	CHECK(vlen == 2 && val[0] == 0xbb && val[1] == 0xcc);
	CHECK_INT(cn_rtp_find_ext(&h, 13, &val, &vlen), -ENOENT);
	CHECK_INT(cn_rtp_find_ext(&h, 0, &val, &vlen), -ENOENT);
	CHECK_INT(cn_rtp_find_ext(&h, 15, &val, &vlen), -ENOENT);

	/* padding may eat the whole payload */
	memcpy(bad, pkt, sizeof(pkt));
	bad[sizeof(bad) - 1] = 5;
	CHECK_INT(cn_rtp_parse(bad, sizeof(bad), &h), 0);
	CHECK_INT(h.payload_len, 0);
	/* malformed: every short length, version, padding 0 or past the header */
	for (size_t n = 0; n < 32; n++)
		CHECK_INT(cn_rtp_parse(pkt, n, &h), CN_E_MALFORMED);
	bad[sizeof(bad) - 1] = 6;
	CHECK_INT(cn_rtp_parse(bad, sizeof(bad), &h), CN_E_MALFORMED);
	CHECK(h.payload == NULL && h.header_len == 0); /* zeroed on failure */
	bad[sizeof(bad) - 1] = 0;
	CHECK_INT(cn_rtp_parse(bad, sizeof(bad), &h), CN_E_MALFORMED);
	memcpy(bad, pkt, sizeof(pkt));
	bad[0] = 0x72; /* version 1 */
	CHECK_INT(cn_rtp_parse(bad, sizeof(bad), &h), CN_E_MALFORMED);
	bad[0] = 0xbf; /* 15 CSRCs: 72 bytes */
	CHECK_INT(cn_rtp_parse(bad, sizeof(bad), &h), CN_E_MALFORMED);
	bad[0] = 0xb2;
	bad[23] = 4; /* extension of 4 words runs past the end */
	CHECK_INT(cn_rtp_parse(bad, sizeof(bad), &h), CN_E_MALFORMED);
	bad[22] = 0xff;
	CHECK_INT(cn_rtp_parse(bad, sizeof(bad), &h), CN_E_MALFORMED);

	/* An element running past the block, and the two-byte form, are not found. */
	memcpy(bad, pkt, sizeof(pkt));
	bad[24] = 0x1f; /* id 1, 16 bytes */
	CHECK_INT(cn_rtp_parse(bad, sizeof(bad), &h), 0);
	CHECK_INT(cn_rtp_find_ext(&h, 1, &val, &vlen), -ENOENT);
	bad[20] = 0x10;
	bad[21] = 0x00;
	CHECK_INT(cn_rtp_parse(bad, sizeof(bad), &h), 0);
	CHECK_INT(h.ext_profile, 0x1000);
	CHECK_INT(cn_rtp_find_ext(&h, 1, &val, &vlen), -ENOENT);
}

TEST(rtp_is_rtcp)
{
	static const uint8_t rr[] = { 0x80, 201, 0, 1 }, rtp[] = { 0x80, 96 }, m[] = { 0x80, 0xe0 };
	static const uint8_t sr[] = { 0x80, 200 }, xr[] = { 0x80, 207 }, hi[] = { 0x80, 223 };
	static const uint8_t lo[] = { 0x80, 191 };

	CHECK(cn_rtp_is_rtcp(rr, sizeof(rr)));
	CHECK(cn_rtp_is_rtcp(sr, 2) && cn_rtp_is_rtcp(xr, 2) && cn_rtp_is_rtcp(hi, 2));
	CHECK(!cn_rtp_is_rtcp(rtp, 2) && !cn_rtp_is_rtcp(m, 2) && !cn_rtp_is_rtcp(lo, 2));
	CHECK(!cn_rtp_is_rtcp(rr, 1) && !cn_rtp_is_rtcp(rr, 0));
}

/* ---- NAL iteration ---- */

TEST(rtp_nal_next_annexb)
{
	/* garbage, 4-byte start code, NAL with trailing zeros, 3-byte start code, empty NAL,
	 * NAL "00 00 03 01" with emulation prevention, last NAL with trailing zeros */
	static const uint8_t s[] = {
		0xaa, 0xbb,
		0, 0, 0, 1, 0x67, 0x42, 0, 0,
		0, 0, 1, 0x68, 0xce,
		0, 0, 1,
		0, 0, 0, 1, 0x65, 0, 0, 3, 1, 0x88,
		0, 0, 1, 0x06, 0, 0, 0,
	};
	const uint8_t *nal;
	size_t pos = 0, n;

	CHECK_INT(cn_nal_next(s, sizeof(s), 0, &pos, &nal, &n), 1);
	CHECK(nal == s + 6 && n == 2);
	CHECK_INT(cn_nal_next(s, sizeof(s), 0, &pos, &nal, &n), 1);
	CHECK(nal == s + 13 && n == 2);
	CHECK_INT(cn_nal_next(s, sizeof(s), 0, &pos, &nal, &n), 1);
	CHECK(nal == s + 22 && n == 6);
	CHECK_INT(cn_nal_next(s, sizeof(s), 0, &pos, &nal, &n), 1);
	CHECK(nal == s + 31 && n == 1);
	CHECK_INT(cn_nal_next(s, sizeof(s), 0, &pos, &nal, &n), 0);
	CHECK_INT(cn_nal_next(s, sizeof(s), 0, &pos, &nal, &n), 0);

	/* no start code at all, only zeros, a start code at the very end, empty input */
	pos = 0;
	CHECK_INT(cn_nal_next(s, 2, 0, &pos, &nal, &n), 0);
	pos = 0;
	CHECK_INT(cn_nal_next((const uint8_t *)"\0\0\0\0\0", 5, 0, &pos, &nal, &n), 0);
	pos = 0;
	CHECK_INT(cn_nal_next((const uint8_t *)"\0\0\1", 3, 0, &pos, &nal, &n), 0);
	pos = 0;
	CHECK_INT(cn_nal_next(s, 0, 0, &pos, &nal, &n), 0);
	/* every truncation walks without reading past its end */
	for (size_t len = 0; len <= sizeof(s); len++) {
		int count = 0;

		pos = 0;
		while (cn_nal_next(s, len, 0, &pos, &nal, &n) == 1) {
			CHECK(nal >= s && n > 0 && (size_t)(nal - s) + n <= len);
			CHECK(nal[n - 1] != 0);
			count++;
		}
		CHECK(count <= 4);
	}
}

TEST(rtp_nal_next_length_prefixed)
{
	static const uint8_t l1[] = { 2, 0x67, 0x42, 1, 0x68 };
	static const uint8_t l2[] = { 0, 3, 0x65, 0, 0, 0, 1, 0x41 };
	static const uint8_t l4[] = { 0, 0, 0, 1, 0x09, 0, 0, 0, 2, 0x41, 0 };
	static const uint8_t zero[] = { 0, 0, 0, 0, 0x41 };
	static const uint8_t over[] = { 0, 0, 0, 2, 0x41 };
	const uint8_t *nal;
	size_t pos = 0, n;

	CHECK_INT(cn_nal_next(l1, sizeof(l1), 1, &pos, &nal, &n), 1);
	CHECK(nal == l1 + 1 && n == 2);
	CHECK_INT(cn_nal_next(l1, sizeof(l1), 1, &pos, &nal, &n), 1);
	CHECK(nal == l1 + 4 && n == 1);
	CHECK_INT(cn_nal_next(l1, sizeof(l1), 1, &pos, &nal, &n), 0);
	pos = 0;
	CHECK_INT(cn_nal_next(l2, sizeof(l2), 2, &pos, &nal, &n), 1);
	CHECK(nal == l2 + 2 && n == 3); /* zeros inside a prefixed NAL are data */
	CHECK_INT(cn_nal_next(l2, sizeof(l2), 2, &pos, &nal, &n), 1);
	CHECK(nal == l2 + 7 && n == 1);
	CHECK_INT(cn_nal_next(l2, sizeof(l2), 2, &pos, &nal, &n), 0);
	pos = 0;
	CHECK_INT(cn_nal_next(l4, sizeof(l4), 4, &pos, &nal, &n), 1);
	CHECK_INT(cn_nal_next(l4, sizeof(l4), 4, &pos, &nal, &n), 1);
	CHECK(nal == l4 + 9 && n == 2 && nal[1] == 0);
	CHECK_INT(cn_nal_next(l4, sizeof(l4), 4, &pos, &nal, &n), 0);
	/* malformed: empty NAL, length past the end, length field cut short */
	pos = 0;
	CHECK_INT(cn_nal_next(zero, sizeof(zero), 4, &pos, &nal, &n), CN_E_MALFORMED);
	pos = 0;
	CHECK_INT(cn_nal_next(over, sizeof(over), 4, &pos, &nal, &n), CN_E_MALFORMED);
	pos = 0;
	CHECK_INT(cn_nal_next(l4, 3, 4, &pos, &nal, &n), CN_E_MALFORMED);
	pos = 0;
	CHECK_INT(cn_nal_next(l2, 1, 2, &pos, &nal, &n), CN_E_MALFORMED);
	pos = 0;
	CHECK_INT(cn_nal_next(l4, sizeof(l4), 3, &pos, &nal, &n), -EINVAL);
	pos = 0;
	CHECK_INT(cn_nal_next(l4, sizeof(l4), 8, &pos, &nal, &n), -EINVAL);
}

/* ---- decoder configuration records ---- */

TEST(rtp_avcc_real)
{
	struct sample_au s;
	uint8_t out[256];
	const uint8_t *nal;
	size_t pos = 0, n;
	int ls = -1, len;

	if (!load_sample("frag-h264.mp4", false, &s))
		return;
	CHECK_INT(s.config_len, 44);
	len = cn_avcc_to_annexb(s.config, s.config_len, out, sizeof(out), &ls);
	/* one 24-byte SPS and one 5-byte PPS, each after 00 00 00 01 */
	CHECK_INT(len, 4 + 24 + 4 + 5);
	CHECK_INT(ls, 4);
	CHECK(memcmp(out, "\0\0\0\1\x67\x64\x00\x0a", 8) == 0);
	CHECK(memcmp(out + 28, "\0\0\0\1\x68\xef\x06\x72\xc0", 9) == 0);
	CHECK_INT(cn_nal_next(out, (size_t)len, 0, &pos, &nal, &n), 1);
	CHECK(cn_h264_nal_type(nal) == 7 && n == 24);
	CHECK_INT(cn_nal_next(out, (size_t)len, 0, &pos, &nal, &n), 1);
	CHECK(cn_h264_nal_type(nal) == 8 && n == 5);
	CHECK_INT(cn_nal_next(out, (size_t)len, 0, &pos, &nal, &n), 0);

	/* exactly enough room, one byte short */
	CHECK_INT(cn_avcc_to_annexb(s.config, s.config_len, out, 37, &ls), 37);
	CHECK_INT(cn_avcc_to_annexb(s.config, s.config_len, out, 36, &ls), -ENOBUFS);
	/* every truncation that cuts into the SPS or PPS is malformed */
	for (size_t cut = 0; cut < 6 + 2 + 24 + 1 + 2 + 5; cut++)
		CHECK_INT(cn_avcc_to_annexb(s.config, cut, out, sizeof(out), &ls), CN_E_MALFORMED);
	{
		uint8_t bad[64];

		memcpy(bad, s.config, s.config_len);
		bad[0] = 0; /* configurationVersion */
		CHECK_INT(cn_avcc_to_annexb(bad, s.config_len, out, sizeof(out), &ls), CN_E_MALFORMED);
		memcpy(bad, s.config, s.config_len);
		bad[4] = 0xfe; /* 3-byte lengths */
		CHECK_INT(cn_avcc_to_annexb(bad, s.config_len, out, sizeof(out), &ls), CN_E_MALFORMED);
		bad[4] = 0xfd; /* 2-byte lengths */
		CHECK_INT(cn_avcc_to_annexb(bad, s.config_len, out, sizeof(out), &ls), 37);
		CHECK_INT(ls, 2);
		bad[4] = 0xfc;
		CHECK_INT(cn_avcc_to_annexb(bad, s.config_len, out, sizeof(out), &ls), 37);
		CHECK_INT(ls, 1);
		memcpy(bad, s.config, s.config_len);
		bad[6] = bad[7] = 0; /* empty SPS */
		CHECK_INT(cn_avcc_to_annexb(bad, s.config_len, out, sizeof(out), &ls), CN_E_MALFORMED);
		memcpy(bad, s.config, s.config_len);
		bad[5] = 0xe2; /* two SPS announced */
		CHECK_INT(cn_avcc_to_annexb(bad, s.config_len, out, sizeof(out), &ls), CN_E_MALFORMED);
	}
	/* Annex B extradata is copied as it is */
	ls = -1;
	CHECK_INT(cn_avcc_to_annexb(out, 37, out + 64, 64, &ls), 37);
	CHECK_INT(ls, 0);
	CHECK(memcmp(out, out + 64, 37) == 0);
	CHECK_INT(cn_avcc_to_annexb(out + 1, 36, out + 64, 64, &ls), 36); /* 3-byte form */
	CHECK_INT(cn_avcc_to_annexb(out, 37, out + 64, 10, &ls), -ENOBUFS);
	free(s.file);
}

TEST(rtp_hvcc_real)
{
	static const int types[] = { 32, 33, 34, 39 };
	static uint8_t out[4096];
	struct sample_au s;
	const uint8_t *nal;
	size_t pos = 0, n;
	int ls = -1, len, i = 0;

	if (!load_sample("frag-h265.mp4", true, &s))
		return;
	len = cn_hvcc_to_annexb(s.config, s.config_len, out, sizeof(out), &ls);
	CHECK(len > 0);
	CHECK_INT(ls, 4);
	/* VPS, SPS, PPS and the x265 SEI, in the arrays' order */
	while (len > 0 && cn_nal_next(out, (size_t)len, 0, &pos, &nal, &n) == 1) {
		CHECK(i < 4 && cn_h265_nal_type(nal) == types[i]);
		i++;
	}
	CHECK_INT(i, 4);
	/* 23 bytes of header, 4 arrays of 3 bytes, 2 bytes per NAL: 16 bytes more in
	 * config than start codes in out */
	CHECK_INT((size_t)len, s.config_len - 23 - 4 * 3 - 4 * 2 + 4 * 4);
	CHECK_INT(cn_hvcc_to_annexb(s.config, s.config_len, out, (size_t)len - 1, &ls), -ENOBUFS);
	for (size_t cut = 0; cut < s.config_len; cut += 7)
		CHECK_INT(cn_hvcc_to_annexb(s.config, cut, out, sizeof(out), &ls), CN_E_MALFORMED);
	{
		static uint8_t bad[4096];

		memcpy(bad, s.config, s.config_len);
		bad[0] = 2;
		CHECK_INT(cn_hvcc_to_annexb(bad, s.config_len, out, sizeof(out), &ls), CN_E_MALFORMED);
		bad[0] = 0; /* configurationVersion 0, as early muxers wrote */
		CHECK_INT(cn_hvcc_to_annexb(bad, s.config_len, out, sizeof(out), &ls), len);
		memcpy(bad, s.config, s.config_len);
		bad[21] = (uint8_t)((bad[21] & 0xfc) | 2);
		CHECK_INT(cn_hvcc_to_annexb(bad, s.config_len, out, sizeof(out), &ls), CN_E_MALFORMED);
		memcpy(bad, s.config, s.config_len);
		bad[22] = 5; /* one array more than there is */
		CHECK_INT(cn_hvcc_to_annexb(bad, s.config_len, out, sizeof(out), &ls), CN_E_MALFORMED);
		bad[22] = 0; /* no arrays: nothing to write, still fine */
		CHECK_INT(cn_hvcc_to_annexb(bad, s.config_len, out, sizeof(out), &ls), 0);
	}
	free(s.file);
}

/* ---- H.264 ---- */

TEST(rtp_h264_real_keyframe)
{
	static const size_t maxes[] = { 64, 100, 200, 700, 1200, 1400, 4000, 65535 };
	static uint8_t prefix[256], annexb[8192];
	struct cn_rtp_payloads o, o2;
	struct sample_au s;
	size_t ab;
	int plen, ls;

	if (!load_sample("frag-h264.mp4", false, &s))
		return;
	CHECK_INT(s.nals, 2); /* SEI (x264 settings), IDR slice */
	plen = cn_avcc_to_annexb(s.config, s.config_len, prefix, sizeof(prefix), &ls);
	CHECK_INT(plen, 37);
	CHECK_INT(ls, 4);
	ab = to_annexb(false, s.au, s.au_len, annexb, sizeof(annexb));
	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		size_t max = maxes[i];
		const uint8_t *p0;

		roundtrip(false, s.au, s.au_len, 4, prefix, (size_t)plen, 0, max, &o);
		/* SPS and PPS go first, together in a STAP-A (NRI: the highest, 3) */
		p0 = o.buf + o.pkts[0].off;
		CHECK_INT(p0[0], 0x60 | 24);
		CHECK(p0[1] == 0 && p0[2] == 24 && p0[3] == 0x67);
		CHECK(p0[27] == 0 && p0[28] == 5 && p0[29] == 0x68);
		if (max < 1579) {
			/* the IDR slice is fragmented: its last fragment carries the marker */
			const uint8_t *pl = o.buf + o.pkts[o.npkts - 1].off;

			CHECK(pl[0] == (0x60 | 28) && (pl[1] & 0xe0) == 0x40 && (pl[1] & 0x1f) == 5);
		}
		if (max == 1200) /* STAP-A(SPS, PPS, SEI), two IDR fragments */
			CHECK_INT(o.npkts, 3);
		if (max >= 4000) /* all four in one STAP-A */
			CHECK_INT(o.npkts, 1);
		if (max == 64) /* 1 STAP-A, ceil(605/62) + ceil(1578/62) fragments */
			CHECK_INT(o.npkts, 1 + 10 + 26);
		/* The same AU in Annex B, with an AUD and filler, gives the same payloads. */
		out_init(&o2);
		o2.buf = pbuf + sizeof(pbuf) / 2;
		o2.cap = sizeof(pbuf) / 2;
		o2.pkts = ptab + 1024;
		o2.max_pkts = 1024;
		CHECK_INT(cn_rtp_h264_packetize(annexb, ab, 0, prefix, (size_t)plen, 0, max, &o2), 0);
		CHECK_INT(o2.npkts, o.npkts);
		CHECK(o2.used == o.used && memcmp(o.buf, o2.buf, o.used) == 0);
		for (int k = 0; k < o.npkts && k < o2.npkts; k++)
			CHECK(o.pkts[k].off == o2.pkts[k].off && o.pkts[k].len == o2.pkts[k].len &&
			      o.pkts[k].marker == o2.pkts[k].marker);
	}
	/* Without a prefix: the SEI alone, two IDR fragments. */
	roundtrip(false, s.au, s.au_len, 4, NULL, 0, 0, 1200, &o);
	CHECK_INT(o.npkts, 3);
	free(s.file);
}

TEST(rtp_h264_aggregation)
{
	/* SEI (NRI 0), SPS (NRI 3), PPS (NRI 1, F set), a small slice (NRI 2) */
	static const uint8_t au[] = {
		0, 0, 0, 1, 0x09, 0x10,                 /* AUD: dropped */
		0, 0, 1, 0x06, 5, 1, 0x80,
		0, 0, 1, 0x67, 0x42, 0xc0, 0x1e,
		0, 0, 1, 0xa8, 0xce, 0x3c,
		0, 0, 1, 0x0c, 0xff, 0xff,              /* filler: dropped */
		0, 0, 1, 0x1e, 0x01,                    /* type 30: dropped */
		0, 0, 1, 0x41, 0x9a, 0x02,
	};
	static uint8_t big[3000];
	struct cn_rtp_payloads o;
	const uint8_t *p;

	roundtrip(false, au, sizeof(au), 0, NULL, 0, 0, 64, &o);
	CHECK_INT(o.npkts, 1);
	p = o.buf;
	CHECK_INT(p[0], 0x80 | 0x60 | 24);
	CHECK_INT(o.pkts[0].len, 1 + 6 + 6 + 5 + 5);
	CHECK(p[1] == 0 && p[2] == 4 && p[3] == 0x06);

	/* A NAL of exactly max_payload goes alone; one byte more and it is fragmented. */
	memset(big, 0x11, sizeof(big));
	memcpy(big, "\0\0\0\1\x67", 5);
	roundtrip(false, big, 4 + 64, 0, NULL, 0, 0, 64, &o);
	CHECK(o.npkts == 1 && o.pkts[0].len == 64 && o.buf[0] == 0x67 && o.pkts[0].marker);
	roundtrip(false, big, 4 + 65, 0, NULL, 0, 0, 64, &o);
	CHECK(o.npkts == 2 && o.pkts[0].len == 64 && o.pkts[1].len == 2 + 2);
	CHECK(o.buf[0] == (0x60 | 28) && o.buf[1] == (0x80 | 7) && o.buf[65] == (0x40 | 7));
	/* A NAL that fits alone but not beside the next goes as a single NAL unit packet:
	 * 64-byte SPS, 2-byte PPS; a STAP-A of both is 1 + 2 + 64 + 2 + 2 = 71. */
	memcpy(big + 68, "\0\0\0\1\x68\x01", 6);
	roundtrip(false, big, 74, 0, NULL, 0, 0, 70, &o);
	CHECK(o.npkts == 2 && o.pkts[0].len == 64 && o.pkts[1].len == 2);
	roundtrip(false, big, 74, 0, NULL, 0, 0, 71, &o);
	CHECK(o.npkts == 1 && o.pkts[0].len == 71 && o.buf[0] == (0x60 | 24));
	/* The SPS as prefix, then a 2928-byte IDR: 1 + ceil(2927 / 62) payloads. */
	memcpy(big + 68, "\0\0\0\1\x65", 5);
	roundtrip(false, big + 68, sizeof(big) - 68, 0, big, 68, 0, 64, &o);
	CHECK_INT(o.npkts, 1 + (2927 + 61) / 62);
	CHECK(o.buf[o.pkts[1].off] == (0x60 | 28) && o.buf[o.pkts[1].off + 1] == (0x80 | 5));
	CHECK_INT(o.buf[o.pkts[o.npkts - 1].off + 1], 0x40 | 5);
	CHECK_INT(o.pkts[o.npkts - 1].len, 2 + 2927 - 47 * 62);
	/* A prefix in another format than the AU */
	{
		static const uint8_t pre[] = { 0, 4, 0x67, 1, 2, 3, 0, 2, 0x68, 4 };
		static const uint8_t one[] = { 1, 0x41 };

		roundtrip(false, one, sizeof(one), 1, pre, sizeof(pre), 2, 100, &o);
		CHECK_INT(o.npkts, 1);
		CHECK_INT(o.buf[0] & 0x1f, 24);
	}
}

TEST(rtp_h264_errors)
{
	static uint8_t au[5000];
	static const uint8_t bad[] = { 0, 0, 0, 9, 0x41, 1 };
	static const uint8_t aud_only[] = { 0, 0, 1, 0x09, 0x10, 0, 0, 1, 0x0c, 0xff };
	struct cn_rtp_payloads o;
	struct cn_rtp_payload tab[8];
	uint8_t small[300];

	memset(au, 0x5a, sizeof(au));
	memcpy(au, "\0\0\1\x65", 4);
	out_init(&o);
	CHECK_INT(cn_rtp_h264_packetize(au, sizeof(au), 0, NULL, 0, 0, 63, &o), -EINVAL);
	CHECK_INT(cn_rtp_h264_packetize(bad, sizeof(bad), 4, NULL, 0, 0, 100, &o), CN_E_MALFORMED);
	CHECK_INT(cn_rtp_h264_packetize(au, 10, 0, bad, sizeof(bad), 4, 100, &o), CN_E_MALFORMED);
	CHECK(o.npkts == 0 && o.used == 0);
	CHECK_INT(cn_rtp_h264_packetize(au, sizeof(au), 3, NULL, 0, 0, 100, &o), -EINVAL);
	/* Nothing to send: no payload, no error. */
	CHECK_INT(cn_rtp_h264_packetize(aud_only, sizeof(aud_only), 0, NULL, 0, 0, 100, &o), 0);
	CHECK_INT(o.npkts, 0);
	/* Out of table rows or bytes: -ENOBUFS, and out as it was (after an earlier AU). */
	o.buf = small;
	o.cap = sizeof(small);
	o.pkts = tab;
	o.max_pkts = 8;
	CHECK_INT(cn_rtp_h264_packetize(au, 100, 0, NULL, 0, 0, 1200, &o), 0);
	CHECK(o.npkts == 1 && o.used == 97 && o.pkts[0].marker);
	CHECK_INT(cn_rtp_h264_packetize(au, 1000, 0, NULL, 0, 0, 100, &o), -ENOBUFS);
	CHECK(o.npkts == 1 && o.used == 97);
	CHECK_INT(cn_rtp_h264_packetize(au, 300, 0, NULL, 0, 0, 100, &o), -ENOBUFS);
	CHECK(o.npkts == 1 && o.used == 97);
	/* Appending: a second AU after the first, its own marker on its own last payload. */
	CHECK_INT(cn_rtp_h264_packetize(au, 150, 0, NULL, 0, 0, 100, &o), 0);
	CHECK(o.npkts == 3 && o.pkts[0].marker && !o.pkts[1].marker && o.pkts[2].marker);
	CHECK(o.pkts[1].off == 97 && o.used == 97 + 146 + 2 * 2);
}

/* ---- H.265 ---- */

/* A 2-byte H.265 NAL header. */
static void h265_nal(uint8_t *p, int type, int layer, int tid)
{
	p[0] = (uint8_t)(type << 1 | layer >> 5);
	p[1] = (uint8_t)((layer & 0x1f) << 3 | tid);
}

TEST(rtp_h265_hand_made)
{
	static uint8_t au[6000];
	struct cn_rtp_payloads o;
	const uint8_t *p;
	size_t w = 0;

	/* AUD, VPS, SPS, PPS (TID 1 and layer 0 the lowest), a 5000-byte IDR_W_RADL */
	static const int types[] = { 35, 32, 33, 34, 19 };
	static const size_t sizes[] = { 3, 24, 40, 8, 5000 };
	static const int tids[] = { 1, 1, 2, 1, 1 };

	for (int i = 0; i < 5; i++) {
		memcpy(au + w, "\0\0\0\1", 4);
		h265_nal(au + w + 4, types[i], i == 2 ? 3 : 0, tids[i]);
		memset(au + w + 6, 0x40 + i, sizes[i] - 2);
		w += 4 + sizes[i];
	}
	roundtrip(true, au, w, 0, NULL, 0, 0, 1200, &o);
	/* AP(VPS, SPS, PPS), then 5 FUs for 4998 bytes at 1197 a payload */
	CHECK_INT(o.npkts, 1 + 5);
	p = o.buf;
	CHECK(cn_h265_nal_type(p) == 48 && (p[0] & 0x81) == 0 && p[1] == 1);
	CHECK_INT(o.pkts[0].len, 2 + 2 + 24 + 2 + 40 + 2 + 8);
	for (int i = 1; i < o.npkts; i++) {
		p = o.buf + o.pkts[i].off;
		CHECK(cn_h265_nal_type(p) == 49 && p[1] == 1);
		CHECK_INT(p[2], (i == 1 ? 0x80 : 0) | (i == o.npkts - 1 ? 0x40 : 0) | 19);
		CHECK(o.pkts[i].len == (i < 5 ? 1200u : 3 + 4998 - 4 * 1197u));
	}
	/* max 64: VPS alone (2 + 2 + 24 + 2 + 40 > 64), then an AP of SPS and PPS */
	roundtrip(true, au, w, 0, NULL, 0, 0, 64, &o);
	CHECK(cn_h265_nal_type(o.buf) == 32 && o.pkts[0].len == 24);
	CHECK(cn_h265_nal_type(o.buf + o.pkts[1].off) == 48);
	CHECK(cn_h265_nal_type(o.buf + o.pkts[1].off + 4) == 33);
	/* the AP takes the SPS's layer 3 only if lower: here layer 0, TID 1 from the PPS */
	CHECK(o.buf[o.pkts[1].off + 1] == 1 && (o.buf[o.pkts[1].off] & 1) == 0);
	/* the same NALs 2-byte prefixed, with the parameter sets as an Annex B prefix */
	{
		static uint8_t lp[6000];
		const uint8_t *nal;
		size_t pos = 0, n, lw = 0, pre_end = 0;
		int k = 0;

		while (cn_nal_next(au, w, 0, &pos, &nal, &n) == 1) {
			if (k++ == 3)
				pre_end = (size_t)(nal - au) + n;
			put_be16(lp + lw, (uint16_t)n);
			memcpy(lp + lw + 2, nal, n);
			lw += 2 + n;
		}
		roundtrip(true, lp + 5 + 26 + 42 + 10, lw - 5 - 26 - 42 - 10, 2, au, pre_end, 0, 1200,
			  &o);
		CHECK_INT(o.npkts, 6);
		CHECK_INT(cn_h265_nal_type(o.buf), 48);
	}
	/* A NAL shorter than its header is malformed. */
	out_init(&o);
	CHECK_INT(cn_rtp_h265_packetize((const uint8_t *)"\0\0\1\x40", 4, 0, NULL, 0, 0, 100, &o),
		  CN_E_MALFORMED);
	CHECK_INT(o.npkts, 0);
}

TEST(rtp_h265_real)
{
	static uint8_t prefix[4096];
	struct cn_rtp_payloads o;
	struct sample_au s;
	int plen, ls;

	if (!load_sample("frag-h265.mp4", true, &s))
		return;
	CHECK_INT(s.nals, 1); /* IDR_N_LP */
	plen = cn_hvcc_to_annexb(s.config, s.config_len, prefix, sizeof(prefix), &ls);
	CHECK(plen > 0 && ls == 4);
	for (size_t max = 64; max <= 2100; max += 97) {
		roundtrip(true, s.au, s.au_len, 4, prefix, (size_t)plen, 0, max, &o);
		/* VPS first, alone or in an AP */
		if (cn_h265_nal_type(o.buf) == 48)
			CHECK_INT(cn_h265_nal_type(o.buf + 4), 32);
		else
			CHECK_INT(cn_h265_nal_type(o.buf), 32);
	}
	free(s.file);
}

/* ---- G.711 ---- */

TEST(rtp_g711)
{
	uint8_t frame[1000];
	struct cn_rtp_payloads o;

	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)i;
	out_init(&o);
	CHECK_INT(cn_rtp_g711_packetize(frame, 160, 160, &o), 0);
	CHECK(o.npkts == 1 && o.pkts[0].len == 160 && !o.pkts[0].marker);
	CHECK_INT(cn_rtp_g711_packetize(frame, 1000, 320, &o), 0);
	CHECK_INT(o.npkts, 5);
	CHECK(o.pkts[1].off == 160 && o.pkts[1].len == 320 && o.pkts[4].len == 40);
	for (int i = 0; i < o.npkts; i++)
		CHECK(!o.pkts[i].marker);
	CHECK(memcmp(o.buf + 160, frame, 1000) == 0);
	CHECK_INT(o.used, 1160);
	CHECK_INT(cn_rtp_g711_packetize(frame, 0, 320, &o), 0);
	CHECK_INT(o.npkts, 5);
	CHECK_INT(cn_rtp_g711_packetize(frame, 10, 0, &o), -EINVAL);
	o.max_pkts = 7;
	CHECK_INT(cn_rtp_g711_packetize(frame, 1000, 320, &o), -ENOBUFS);
	CHECK(o.npkts == 5 && o.used == 1160);
	o.max_pkts = 100;
	o.cap = 1200;
	CHECK_INT(cn_rtp_g711_packetize(frame, 41, 320, &o), -ENOBUFS);
	CHECK_INT(cn_rtp_g711_packetize(frame, 40, 320, &o), 0);
	CHECK(o.npkts == 6 && o.used == 1200);
}

/* ---- RTCP ---- */

TEST(rtcp_roundtrip)
{
	static const uint16_t nack_in[] = { 65530, 65531, 65535, 0, 10, 30, 31, 47, 48, 48 };
	static const uint32_t remb_ssrcs[] = { 0x11111111, 0x22222222 };
	struct cn_rtcp_report_block rb[3] = {
		{ 0xaaaa0001, 25, -3, 0x00011000, 77, 0x12345678, 65536 },
		{ 0xaaaa0002, 255, 0x7fffff, 1, 2, 3, 4 },
		{ 0xaaaa0003, 0, -0x800000, 5, 6, 7, 8 },
	}, got[4];
	struct cn_rtcp_sr_info sr = { 0x5151, 0xe0e0e0e0f1f1f1f1ull, 90000, 10, 12345 }, sr2;
	uint8_t buf[1024];
	size_t n = 0, pos = 0;
	struct cn_rtcp_pkt pkt;
	uint32_t a, b, ssrcs[4];
	uint16_t seqs[64];
	uint64_t br;
	uint8_t fir_seq;
	int k, count;

	k = cn_rtcp_write_sr(buf + n, sizeof(buf) - n, &sr);
	CHECK_INT(k, 28);
	n += (size_t)k;
	k = cn_rtcp_write_rr(buf + n, sizeof(buf) - n, 0x5151, rb, 3);
	CHECK_INT(k, 8 + 72);
	n += (size_t)k;
	k = cn_rtcp_write_sdes_cname(buf + n, sizeof(buf) - n, 0x5151, "canopy-edge/cam12");
	CHECK_INT(k, 8 + 20); /* 2 + 17 + at least one zero, to 20 */
	n += (size_t)k;
	k = cn_rtcp_write_pli(buf + n, sizeof(buf) - n, 1, 2);
	CHECK_INT(k, 12);
	n += (size_t)k;
	k = cn_rtcp_write_fir(buf + n, sizeof(buf) - n, 1, 2, 9);
	CHECK_INT(k, 20);
	n += (size_t)k;
	k = cn_rtcp_write_nack(buf + n, sizeof(buf) - n, 1, 2, nack_in, 10);
	CHECK_INT(k, 12 + 3 * 4); /* 65530 + {65531, 65535, 0, 10}, 30 + {31}, 47 + {48} */
	n += (size_t)k;
	k = cn_rtcp_write_remb(buf + n, sizeof(buf) - n, 1, 2500000, remb_ssrcs, 2);
	CHECK_INT(k, 28);
	n += (size_t)k;
	k = cn_rtcp_write_bye(buf + n, sizeof(buf) - n, 0x5151);
	CHECK_INT(k, 8);
	n += (size_t)k;

	CHECK_INT(cn_rtcp_next(buf, n, &pos, &pkt), 1);
	CHECK(pkt.pt == CN_RTCP_SR && pkt.count == 0 && pkt.len == 24);
	CHECK(cn_rtp_is_rtcp(buf, n));
	CHECK_INT(cn_rtcp_parse_report(&pkt, &a, &sr2, got, 4, &count), 0);
	CHECK(a == 0x5151 && count == 0 && sr2.ssrc == sr.ssrc && sr2.ntp == sr.ntp);
	CHECK(sr2.rtp_ts == sr.rtp_ts && sr2.packets == sr.packets && sr2.octets == sr.octets);

	CHECK_INT(cn_rtcp_next(buf, n, &pos, &pkt), 1);
	CHECK(pkt.pt == CN_RTCP_RR && pkt.count == 3);
	CHECK_INT(cn_rtcp_parse_report(&pkt, &a, &sr2, got, 4, &count), 0);
	CHECK(a == 0x5151 && count == 3 && sr2.ssrc == 0 && sr2.ntp == 0);
	for (int i = 0; i < 3; i++) {
		CHECK(got[i].ssrc == rb[i].ssrc && got[i].fraction_lost == rb[i].fraction_lost);
		CHECK_INT(got[i].cumulative_lost, rb[i].cumulative_lost);
		CHECK(got[i].highest_seq == rb[i].highest_seq && got[i].jitter == rb[i].jitter);
		CHECK(got[i].lsr == rb[i].lsr && got[i].dlsr == rb[i].dlsr);
	}
	CHECK_INT(cn_rtcp_parse_report(&pkt, NULL, NULL, got, 2, &count), 0);
	CHECK_INT(count, 2);
	CHECK_INT(cn_rtcp_parse_fb(&pkt, &a, &b), -EINVAL);

	CHECK_INT(cn_rtcp_next(buf, n, &pos, &pkt), 1);
	CHECK(pkt.pt == CN_RTCP_SDES && pkt.count == 1 && pkt.len == 24);
	CHECK(get_be32(pkt.body) == 0x5151 && pkt.body[4] == 1 && pkt.body[5] == 17);
	CHECK(memcmp(pkt.body + 6, "canopy-edge/cam12", 17) == 0 && pkt.body[23] == 0);
	CHECK_INT(cn_rtcp_parse_report(&pkt, &a, NULL, NULL, 0, NULL), -EINVAL);

	CHECK_INT(cn_rtcp_next(buf, n, &pos, &pkt), 1);
	CHECK(pkt.pt == CN_RTCP_PSFB && pkt.count == 1 && pkt.len == 8);
	CHECK_INT(cn_rtcp_parse_fb(&pkt, &a, &b), 0);
	CHECK(a == 1 && b == 2);
	CHECK_INT(cn_rtcp_parse_fir(&pkt, 2, &fir_seq), -EINVAL);

	CHECK_INT(cn_rtcp_next(buf, n, &pos, &pkt), 1);
	CHECK(pkt.pt == CN_RTCP_PSFB && pkt.count == 4);
	CHECK_INT(cn_rtcp_parse_fb(&pkt, &a, &b), 0);
	CHECK(a == 1 && b == 0);
	CHECK_INT(cn_rtcp_parse_fir(&pkt, 2, &fir_seq), 0);
	CHECK_INT(fir_seq, 9);
	CHECK_INT(cn_rtcp_parse_fir(&pkt, 3, &fir_seq), -ENOENT);

	CHECK_INT(cn_rtcp_next(buf, n, &pos, &pkt), 1);
	CHECK(pkt.pt == CN_RTCP_RTPFB && pkt.count == 1);
	CHECK_INT(cn_rtcp_parse_nack(&pkt, seqs, 64, &count), 0);
	CHECK_INT(count, 9);
	{
		static const uint16_t want[] = { 65530, 65531, 65535, 0, 10, 30, 31, 47, 48 };

		CHECK(count == 9 && memcmp(seqs, want, sizeof(want)) == 0);
	}
	CHECK_INT(cn_rtcp_parse_nack(&pkt, seqs, 4, &count), 0);
	CHECK_INT(count, 4);
	CHECK_INT(cn_rtcp_parse_twcc(&pkt, &seqs[0], &seqs[1], &fir_seq), -EINVAL);

	CHECK_INT(cn_rtcp_next(buf, n, &pos, &pkt), 1);
	CHECK(pkt.pt == CN_RTCP_PSFB && pkt.count == 15);
	CHECK_INT(cn_rtcp_parse_remb(&pkt, &br, ssrcs, 4, &count), 0);
	/* 2500000 = 0x2625A0: exponent 4, mantissa 0x2625A (rounded down) */
	CHECK(br == 2500000 && count == 2 && ssrcs[0] == 0x11111111 && ssrcs[1] == 0x22222222);
	CHECK_INT(cn_rtcp_parse_remb(&pkt, &br, ssrcs, 1, &count), 0);
	CHECK_INT(count, 1);

	CHECK_INT(cn_rtcp_next(buf, n, &pos, &pkt), 1);
	CHECK(pkt.pt == CN_RTCP_BYE && pkt.count == 1 && get_be32(pkt.body) == 0x5151);
	CHECK_INT(cn_rtcp_next(buf, n, &pos, &pkt), 0);
	CHECK_INT(pos, n);

	/* Writers refuse what does not fit, and bad counts. */
	for (size_t cap = 0; cap < 28; cap++)
		CHECK_INT(cn_rtcp_write_sr(buf, cap, &sr), -ENOBUFS);
	CHECK_INT(cn_rtcp_write_rr(buf, 79, 1, rb, 3), -ENOBUFS);
	CHECK_INT(cn_rtcp_write_rr(buf, sizeof(buf), 1, rb, 32), -EINVAL);
	CHECK_INT(cn_rtcp_write_rr(buf, 8, 1, NULL, 0), 8);
	CHECK_INT(cn_rtcp_write_bye(buf, 7, 1), -ENOBUFS);
	CHECK_INT(cn_rtcp_write_pli(buf, 11, 1, 2), -ENOBUFS);
	CHECK_INT(cn_rtcp_write_fir(buf, 19, 1, 2, 3), -ENOBUFS);
	CHECK_INT(cn_rtcp_write_nack(buf, 23, 1, 2, nack_in, 10), -ENOBUFS);
	CHECK_INT(cn_rtcp_write_nack(buf, 24, 1, 2, nack_in, 10), 24);
	CHECK_INT(cn_rtcp_write_nack(buf, 24, 1, 2, nack_in, 0), -EINVAL);
	CHECK_INT(cn_rtcp_write_remb(buf, 27, 1, 1, remb_ssrcs, 2), -ENOBUFS);
	CHECK_INT(cn_rtcp_write_remb(buf, sizeof(buf), 1, 1, remb_ssrcs, 256), -EINVAL);
	CHECK_INT(cn_rtcp_write_sdes_cname(buf, sizeof(buf), 1, NULL), -EINVAL);
}

TEST(rtcp_sdes_lengths)
{
	char name[300];
	uint8_t buf[512];
	struct cn_rtcp_pkt pkt;

	memset(name, 'x', sizeof(name));
	for (size_t len = 0; len <= 256; len++) {
		size_t pos = 0;
		int k;

		name[len] = '\0';
		k = cn_rtcp_write_sdes_cname(buf, sizeof(buf), 7, name);
		name[len] = 'x';
		if (len == 256) {
			CHECK_INT(k, -EINVAL);
			break;
		}
		CHECK(k > 0 && k % 4 == 0 && (size_t)k >= 8 + 2 + len + 1 && (size_t)k <= 8 + 2 + len + 4);
		CHECK_INT(cn_rtcp_next(buf, (size_t)k, &pos, &pkt), 1);
		CHECK(pkt.body[5] == len && pkt.body[4 + 2 + len] == 0 && buf[k - 1] == 0);
		CHECK_INT(cn_rtcp_write_sdes_cname(buf, (size_t)k - 1, 7, "x"), k - 1 >= 12 ? 12 : -ENOBUFS);
	}
}

TEST(rtcp_remb_values)
{
	static const uint64_t rates[] = { 0, 1, 262143, 262144, 1000000, 30000000,
					  (uint64_t)262143 << 40, UINT64_MAX };
	uint8_t buf[64];
	struct cn_rtcp_pkt pkt;
	uint64_t br;
	uint32_t ss;
	int n;

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		size_t pos = 0;
		int k = cn_rtcp_write_remb(buf, sizeof(buf), 1, rates[i], NULL, 0);

		CHECK_INT(k, 20);
		CHECK_INT(cn_rtcp_next(buf, (size_t)k, &pos, &pkt), 1);
		CHECK_INT(cn_rtcp_parse_remb(&pkt, &br, &ss, 1, &n), 0);
		/* rounded down, by less than one part in 2^17 */
		CHECK(br <= rates[i] && rates[i] - br <= rates[i] >> 17);
		CHECK_INT(n, 0);
	}
	/* A Chrome-like compound: RR without blocks, then REMB for two SSRCs at 1.5 Mbit/s:
	 * exp 3, mantissa 187500 (0x2DC6C). */
	{
		static const uint8_t chrome[] = {
			0x80, 0xc9, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
			0x8f, 0xce, 0x00, 0x06, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
			'R', 'E', 'M', 'B', 0x02, 0x0e, 0xdc, 0x6c,
			0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
		};
		uint32_t two[2];
		size_t pos = 0;
		int count;

		CHECK_INT(cn_rtcp_next(chrome, sizeof(chrome), &pos, &pkt), 1);
		CHECK_INT(cn_rtcp_parse_report(&pkt, &ss, NULL, NULL, 0, &count), 0);
		CHECK(ss == 1 && count == 0);
		CHECK_INT(cn_rtcp_next(chrome, sizeof(chrome), &pos, &pkt), 1);
		CHECK_INT(cn_rtcp_parse_remb(&pkt, &br, two, 2, &count), 0);
		CHECK(br == 1500000 && count == 2 && two[0] == 0x12345678 && two[1] == 0x9abcdef0);
		CHECK_INT(cn_rtcp_next(chrome, sizeof(chrome), &pos, &pkt), 0);
	}
	/* hostile REMBs */
	{
		uint8_t r[24] = { 0x8f, 0xce, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 'R', 'E', 'M', 'B',
				  0, 0, 0, 0, 0, 0, 0, 0 };
		size_t pos = 0;

		CHECK_INT(cn_rtcp_next(r, 20, &pos, &pkt), 1);
		CHECK_INT(cn_rtcp_parse_remb(&pkt, &br, &ss, 1, &n), 0);
		r[16] = 1; /* one SSRC announced, none there */
		CHECK_INT(cn_rtcp_parse_remb(&pkt, &br, &ss, 1, &n), CN_E_MALFORMED);
		r[16] = 0;
		r[17] = 0xfc | 3; /* exp 63, mantissa >= 2^16: overflows 64 bits */
		CHECK_INT(cn_rtcp_parse_remb(&pkt, &br, &ss, 1, &n), CN_E_MALFORMED);
		r[17] = 46 << 2 | 3;
		r[18] = r[19] = 0xff;
		CHECK_INT(cn_rtcp_parse_remb(&pkt, &br, &ss, 1, &n), 0);
		CHECK(br == (uint64_t)0x3ffff << 46);
		r[17] = 47 << 2 | 2; /* a mantissa >= 2^17 shifted by 47 */
		CHECK_INT(cn_rtcp_parse_remb(&pkt, &br, &ss, 1, &n), CN_E_MALFORMED);
		memcpy(r + 12, "ABCD", 4);
		CHECK_INT(cn_rtcp_parse_remb(&pkt, &br, &ss, 1, &n), -ENOENT);
		pkt.len = 11;
		CHECK_INT(cn_rtcp_parse_remb(&pkt, &br, &ss, 1, &n), -ENOENT);
		memcpy(r + 12, "REMB", 4);
		pkt.len = 12;
		CHECK_INT(cn_rtcp_parse_remb(&pkt, &br, &ss, 1, &n), CN_E_MALFORMED);
		pkt.len = 24; /* trailing bytes after the SSRC list */
		CHECK_INT(cn_rtcp_parse_remb(&pkt, &br, &ss, 1, &n), CN_E_MALFORMED);
	}
}

TEST(rtcp_compound_malformed)
{
	/* RR (no blocks) with 4 bytes of padding, as SRTCP senders pad. */
	uint8_t p[16] = { 0xa0, 201, 0, 2, 0, 0, 0, 9, 0, 0, 0, 4 };
	struct cn_rtcp_pkt pkt;
	size_t pos = 0;
	int count;

	CHECK_INT(cn_rtcp_next(p, 12, &pos, &pkt), 1);
	CHECK(pkt.len == 4 && pos == 12);
	CHECK_INT(cn_rtcp_parse_report(&pkt, NULL, NULL, NULL, 0, &count), 0);
	p[11] = 9; /* padding longer than the body */
	pos = 0;
	CHECK_INT(cn_rtcp_next(p, 12, &pos, &pkt), CN_E_MALFORMED);
	CHECK_INT(pos, 0);
	p[11] = 0;
	CHECK_INT(cn_rtcp_next(p, 12, &pos, &pkt), CN_E_MALFORMED);
	p[0] = 0x80;
	p[3] = 3; /* 16 bytes announced, 12 there */
	CHECK_INT(cn_rtcp_next(p, 12, &pos, &pkt), CN_E_MALFORMED);
	CHECK_INT(cn_rtcp_next(p, 16, &pos, &pkt), 1);
	CHECK_INT(cn_rtcp_next(p, 16, &pos, &pkt), 0);
	pos = 0;
	p[0] = 0x40; /* version 1 */
	CHECK_INT(cn_rtcp_next(p, 16, &pos, &pkt), CN_E_MALFORMED);
	pos = 0;
	p[0] = 0x80;
	CHECK_INT(cn_rtcp_next(p, 3, &pos, &pkt), CN_E_MALFORMED);
	/* trailing garbage after a good packet */
	pos = 0;
	p[3] = 1;
	CHECK_INT(cn_rtcp_next(p, 10, &pos, &pkt), 1);
	CHECK_INT(cn_rtcp_next(p, 10, &pos, &pkt), CN_E_MALFORMED);
	/* an RR whose count says more blocks than its length holds */
	pos = 0;
	p[0] = 0x81;
	CHECK_INT(cn_rtcp_next(p, 8, &pos, &pkt), 1);
	CHECK_INT(cn_rtcp_parse_report(&pkt, NULL, NULL, NULL, 0, &count), CN_E_MALFORMED);
	/* feedback packets too short for their fields */
	{
		static const uint8_t fb[] = {
			0x81, 205, 0, 1, 0, 0, 0, 1,                         /* NACK without media */
			0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2,             /* NACK without FCI */
			0x84, 206, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, /* FIR, half an entry */
			0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 5, 0, 1, /* a good NACK */
		};
		uint16_t seqs[20];
		uint8_t seq_nr;
		uint32_t a, b;

		pos = 0;
		CHECK_INT(cn_rtcp_next(fb, sizeof(fb), &pos, &pkt), 1);
		CHECK_INT(cn_rtcp_parse_fb(&pkt, &a, &b), CN_E_MALFORMED);
		CHECK_INT(cn_rtcp_parse_nack(&pkt, seqs, 20, &count), CN_E_MALFORMED);
		CHECK_INT(cn_rtcp_next(fb, sizeof(fb), &pos, &pkt), 1);
		CHECK_INT(cn_rtcp_parse_fb(&pkt, &a, &b), 0);
		CHECK_INT(cn_rtcp_parse_nack(&pkt, seqs, 20, &count), CN_E_MALFORMED);
		CHECK_INT(cn_rtcp_next(fb, sizeof(fb), &pos, &pkt), 1);
		CHECK_INT(cn_rtcp_parse_fir(&pkt, 2, &seq_nr), CN_E_MALFORMED);
		CHECK_INT(cn_rtcp_next(fb, sizeof(fb), &pos, &pkt), 1);
		CHECK_INT(cn_rtcp_parse_nack(&pkt, seqs, 20, &count), 0);
		CHECK(count == 2 && seqs[0] == 5 && seqs[1] == 6);
		CHECK_INT(cn_rtcp_next(fb, sizeof(fb), &pos, &pkt), 0);
	}
}

/* transport-cc feedback: header, then the chunks and deltas given. */
static size_t twcc(uint8_t *p, uint16_t base, uint16_t count, const uint8_t *rest, size_t n)
{
	size_t total = (16 + n + 3) & ~(size_t)3;

	memset(p, 0, 4 + total);
	p[0] = 0x8f;
	p[1] = 205;
	put_be16(p + 2, (uint16_t)(total / 4));
	put_be32(p + 4, 0x0a0a0a0a);
	put_be32(p + 8, 0x0b0b0b0b);
	put_be16(p + 12, base);
	put_be16(p + 14, count);
	p[16] = 0x12; /* reference time */
	p[17] = 0x34;
	p[18] = 0x56;
	p[19] = 7; /* feedback packet count */
	memcpy(p + 20, rest, n);
	return 4 + total;
}

static int twcc_parse(const uint8_t *p, size_t n, uint16_t *base, uint16_t *count, uint8_t *fb)
{
	struct cn_rtcp_pkt pkt;
	size_t pos = 0;

	if (cn_rtcp_next(p, n, &pos, &pkt) != 1)
		return -1000000;
	return cn_rtcp_parse_twcc(&pkt, base, count, fb);
}

TEST(rtcp_twcc)
{
	/* run of 3 "small delta", then a 2-bit vector: large, not received, small, 4 not
	 * received; then a 1-bit vector of 14 with two received. Deltas: 3 + (2 + 1) + 2. */
	static const uint8_t good[] = {
		0x20, 0x03, 0xe1, 0x00, 0xa0, 0x01,
		1, 2, 3, 0x10, 0x00, 4, 5, 6,
	};
	/* one run-length chunk of "not received" for 1000 packets; no deltas */
	static const uint8_t lost[] = { 0x03, 0xe8 };
	/* a run of 20 "large" (40 bytes of deltas) */
	static const uint8_t large_run[] = { 0x40, 0x14 };
	static const uint8_t reserved_run[] = { 0x60, 0x01 };
	static const uint8_t reserved_vec[] = { 0xc0, 0x03, 0, 0 };
	uint8_t p[128], fb;
	uint16_t base, count;
	size_t n;

	n = twcc(p, 65000, 3 + 7 + 14, good, sizeof(good));
	CHECK_INT(twcc_parse(p, n, &base, &count, &fb), 0);
	CHECK(base == 65000 && count == 24 && fb == 7);
	/* chunks without their deltas; a status count past what the chunks hold */
	n = twcc(p, 1, 24, good, 6);
	CHECK_INT(twcc_parse(p, n, &base, &count, &fb), CN_E_MALFORMED);
	n = twcc(p, 1, 25, good, 6);
	CHECK_INT(twcc_parse(p, n, &base, &count, &fb), CN_E_MALFORMED);
	/* the last vector may cover more than the count: 3 + 4 statuses, 3 + 3 deltas */
	n = twcc(p, 1, 7, good, 12);
	CHECK_INT(twcc_parse(p, n, &base, &count, &fb), 0);
	{
		struct cn_rtcp_pkt pkt;
		size_t pos = 0;

		n = twcc(p, 1, 24, good, sizeof(good));
		CHECK_INT(cn_rtcp_next(p, n, &pos, &pkt), 1);
		pkt.len = 16 + sizeof(good) - 1; /* the deltas one byte short */
		CHECK_INT(cn_rtcp_parse_twcc(&pkt, &base, &count, &fb), CN_E_MALFORMED);
		pkt.len = 16;
		CHECK_INT(cn_rtcp_parse_twcc(&pkt, &base, &count, &fb), CN_E_MALFORMED);
		pkt.len = 15;
		CHECK_INT(cn_rtcp_parse_twcc(&pkt, &base, &count, &fb), CN_E_MALFORMED);
		pkt.len = 16 + sizeof(good);
		pkt.count = 1;
		CHECK_INT(cn_rtcp_parse_twcc(&pkt, &base, &count, &fb), -EINVAL);
		pkt.count = 15;
		pkt.pt = CN_RTCP_PSFB;
		CHECK_INT(cn_rtcp_parse_twcc(&pkt, &base, &count, &fb), -EINVAL);
	}
	n = twcc(p, 1, 1000, lost, sizeof(lost));
	CHECK_INT(twcc_parse(p, n, &base, &count, &fb), 0);
	CHECK_INT(count, 1000);
	n = twcc(p, 1, 1001, lost, sizeof(lost));
	CHECK_INT(twcc_parse(p, n, &base, &count, &fb), CN_E_MALFORMED);
	n = twcc(p, 1, 0, lost, sizeof(lost));
	CHECK_INT(twcc_parse(p, n, &base, &count, &fb), CN_E_MALFORMED);
	{
		uint8_t sd[2 + 39];

		/* 2 + 39 bytes rounded up to 44: 42 bytes after the chunk */
		memcpy(sd, large_run, 2);
		memset(sd + 2, 0, 39);
		n = twcc(p, 1, 20, sd, sizeof(sd));
		CHECK_INT(n, 4 + 16 + 44);
		CHECK_INT(twcc_parse(p, n, &base, &count, &fb), 0);
		n = twcc(p, 1, 21, sd, sizeof(sd)); /* the run is short: zeros read as chunks */
		CHECK_INT(twcc_parse(p, n, &base, &count, &fb), CN_E_MALFORMED);
		sd[1] = 21; /* 42 bytes of deltas: an exact fit */
		n = twcc(p, 1, 21, sd, sizeof(sd));
		CHECK_INT(twcc_parse(p, n, &base, &count, &fb), 0);
		sd[1] = 22;
		n = twcc(p, 1, 22, sd, sizeof(sd));
		CHECK_INT(twcc_parse(p, n, &base, &count, &fb), CN_E_MALFORMED);
	}
	n = twcc(p, 1, 1, reserved_run, sizeof(reserved_run));
	CHECK_INT(twcc_parse(p, n, &base, &count, &fb), CN_E_MALFORMED);
	n = twcc(p, 1, 7, reserved_vec, sizeof(reserved_vec));
	CHECK_INT(twcc_parse(p, n, &base, &count, &fb), CN_E_MALFORMED);
	/* a reserved symbol past the status count is not looked at */
	n = twcc(p, 1, 6, reserved_vec, sizeof(reserved_vec));
	CHECK_INT(twcc_parse(p, n, &base, &count, &fb), 0);
}

TEST(rtp_ntp)
{
	CHECK(cn_ntp_from_unix_us(0) == 2208988800ull << 32);
	CHECK(cn_ntp_from_unix_us(1500000) == ((2208988801ull << 32) | 0x80000000u));
	CHECK(cn_ntp_from_unix_us(1) == ((2208988800ull << 32) | 4294));
	/* 2026-11-21 00:00:00 UTC: 1795219200 s */
	CHECK(cn_ntp_from_unix_us(1795219200ull * 1000000 + 999999) >> 32 ==
	      (uint32_t)(1795219200ull + 2208988800ull));
	CHECK(((uint32_t)cn_ntp_from_unix_us(999999)) == 4294963001u);
}
