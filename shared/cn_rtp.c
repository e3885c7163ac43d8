/* cn_rtp.c: RTP/RTCP wire codecs and the H.264, H.265 and G.711 payload packetisers, without I/O. */
#include "cn_rtp.h"

#include <limits.h>
#include <string.h>

#include "cn_buf.h"
#include "cn_err.h"

#define RTP_VERSION 2
#define EXT_ONE_BYTE 0xBEDE
#define NTP_UNIX_OFFSET 2208988800ull /* seconds from 1900 to 1970 */

#define H264_STAP_A 24
#define H264_FU_A 28
#define H265_AP 48
#define H265_FU 49

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- RTP ------------------------------------------------------------------------ */

bool cn_rtp_is_rtcp(const uint8_t *p, size_t n)
{
	return n >= 2 && p[1] >= 192 && p[1] <= 223;
}

int cn_rtp_parse(const uint8_t *p, size_t n, struct cn_rtp_hdr *out)
{
	size_t hlen, pad = 0;

	memset(out, 0, sizeof(*out));
	if (n < CN_RTP_HEADER_MIN || p[0] >> 6 != RTP_VERSION)
		return CN_E_MALFORMED;
	hlen = CN_RTP_HEADER_MIN + 4 * (size_t)(p[0] & 0x0f);
	if (hlen > n)
		return CN_E_MALFORMED;
	if (p[0] & 0x10) {
		size_t words;

		if (n - hlen < 4)
			return CN_E_MALFORMED;
		words = be16(p + hlen + 2);
		if ((n - hlen - 4) / 4 < words)
			return CN_E_MALFORMED;
		out->ext_profile = be16(p + hlen);
		out->ext = p + hlen + 4;
		out->ext_len = words * 4;
		hlen += 4 + out->ext_len;
	}
	if (p[0] & 0x20) {
		/* The last byte counts the padding, itself included. */
		pad = p[n - 1];
		if (pad == 0 || pad > n - hlen)
			return CN_E_MALFORMED;
	}
	out->version = RTP_VERSION;
	out->padding = (p[0] & 0x20) != 0;
	out->extension = (p[0] & 0x10) != 0;
	out->csrc_count = p[0] & 0x0f;
	out->marker = (p[1] & 0x80) != 0;
	out->pt = p[1] & 0x7f;
	out->seq = be16(p + 2);
	out->ts = be32(p + 4);
	out->ssrc = be32(p + 8);
	out->header_len = hlen;
	out->payload = p + hlen;
	out->payload_len = n - hlen - pad;
	return 0;
}

/* abs-send-time: 6.18 fixed-point seconds, modulo 64 s. Split into seconds and the rest
 * so that a Unix-epoch time in microseconds (> 2^46) does not overflow when shifted. */
static uint32_t abs_send_time(uint64_t now_us)
{
	uint64_t secs = now_us / 1000000, rem = now_us % 1000000;

	return (uint32_t)((secs & 63) << 18 | (rem << 18) / 1000000);
}

int cn_rtp_write_header(uint8_t *out, size_t cap, bool marker, uint8_t pt, uint16_t seq,
			uint32_t ts, uint32_t ssrc, int abs_send_time_id, uint64_t now_us)
{
	bool ext = abs_send_time_id >= 1 && abs_send_time_id <= 14;
	size_t len = ext ? 20 : 12;
	uint32_t ast;

	if (cap < len)
		return -ENOBUFS;
	out[0] = (uint8_t)(RTP_VERSION << 6 | (ext ? 0x10 : 0));
	out[1] = (uint8_t)((marker ? 0x80 : 0) | (pt & 0x7f));
	put16(out + 2, seq);
	put32(out + 4, ts);
	put32(out + 8, ssrc);
	if (ext) {
		put16(out + 12, EXT_ONE_BYTE);
		put16(out + 14, 1); /* one 32-bit word follows */
		ast = abs_send_time(now_us);
		out[16] = (uint8_t)(abs_send_time_id << 4 | (3 - 1));
		out[17] = (uint8_t)(ast >> 16);
		out[18] = (uint8_t)(ast >> 8);
		out[19] = (uint8_t)ast;
	}
	return (int)len;
}

int cn_rtp_find_ext(const struct cn_rtp_hdr *h, int id, const uint8_t **val, size_t *len)
{
	size_t i = 0;

	if (!h->extension || h->ext_profile != EXT_ONE_BYTE || id < 1 || id > 14)
		return -ENOENT;
	while (i < h->ext_len) {
		uint8_t b = h->ext[i++];
		size_t elen;

		if (b == 0) /* padding between elements */
			continue;
		if (b >> 4 == 15) /* reserved: stop parsing (RFC 8285 4.2) */
			break;
		elen = (size_t)(b & 0x0f) + 1;
		if (elen > h->ext_len - i)
			break;
		if (b >> 4 == id) {
			*val = h->ext + i;
			*len = elen;
			return 0;
		}
		i += elen;
	}
	return -ENOENT;
}

/* ---- NAL units ------------------------------------------------------------------ */

/* Offset of the next 00 00 01 at or after from, or len: memchr finds the 01s (a
 * vectorised scan, the hot loop of recording), then the two bytes before are checked. */
static size_t find_start_code(const uint8_t *p, size_t len, size_t from)
{
	while (len >= 3 && from <= len - 3) {
		const uint8_t *q = memchr(p + from + 2, 1, len - from - 2);
		size_t j;

		if (!q)
			return len;
		j = (size_t)(q - p);
		if (p[j - 1] == 0 && p[j - 2] == 0)
			return j - 2;
		from = j - 1; /* a start code ending past j begins at j - 1 or later */
	}
	return len;
}

int cn_nal_next(const uint8_t *au, size_t len, int length_size, size_t *pos,
		const uint8_t **nal, size_t *nal_len)
{
	size_t start, end, n;

	if (length_size == 0) {
		for (;;) {
			if (*pos >= len)
				return 0;
			start = find_start_code(au, len, *pos);
			if (start == len) {
				*pos = len;
				return 0;
			}
			start += 3;
			end = find_start_code(au, len, start);
			*pos = end;
			while (end > start && au[end - 1] == 0)
				end--;
			if (end > start) {
				*nal = au + start;
				*nal_len = end - start;
				return 1;
			}
			/* An empty NAL between two start codes: skip it. */
		}
	}
	if (length_size != 1 && length_size != 2 && length_size != 4)
		return -EINVAL;
	if (*pos >= len)
		return 0;
	if (len - *pos < (size_t)length_size)
		return CN_E_MALFORMED;
	n = 0;
	for (int i = 0; i < length_size; i++)
		n = n << 8 | au[*pos + (size_t)i];
	start = *pos + (size_t)length_size;
	if (n == 0 || n > len - start)
		return CN_E_MALFORMED;
	*nal = au + start;
	*nal_len = n;
	*pos = start + n;
	return 1;
}

/* ---- packetisers ---------------------------------------------------------------- */

/* Appends a payload of len bytes to out; returns where to write it, or NULL when the
 * buffer or the table is full. */
static uint8_t *pl_add(struct cn_rtp_payloads *o, size_t len)
{
	uint8_t *p;

	if (o->npkts < 0 || o->npkts >= o->max_pkts || o->used > o->cap ||
	    len > o->cap - o->used || o->used + len > UINT32_MAX)
		return NULL;
	p = o->buf + o->used;
	o->pkts[o->npkts].off = (uint32_t)o->used;
	o->pkts[o->npkts].len = (uint32_t)len;
	o->pkts[o->npkts].marker = false;
	o->npkts++;
	o->used += len;
	return p;
}

/* Grows the last payload by len bytes; returns where the new bytes go, or NULL. */
static uint8_t *pl_grow(struct cn_rtp_payloads *o, size_t len)
{
	uint8_t *p;

	if (o->used > o->cap || len > o->cap - o->used || o->used + len > UINT32_MAX)
		return NULL;
	p = o->buf + o->used;
	o->pkts[o->npkts - 1].len += (uint32_t)len;
	o->used += len;
	return p;
}

/* State of one packetisation. Small NALs wait in `first` until the next one says whether
 * they can share an aggregation packet, which is then always the last payload of out. */
struct pkz {
	struct cn_rtp_payloads *out;
	size_t max;
	bool h265;
	size_t hdr;          /* NAL header bytes: 1 (H.264) or 2 (H.265) */
	const uint8_t *first; /* the one NAL waiting, when nagg == 1 */
	size_t first_len;
	int nagg;            /* NALs waiting (1) or in the aggregation packet (>= 2) */
	uint8_t agg_f, agg_nri, agg_layer, agg_tid;
};

static bool pkz_drop(const struct pkz *z, const uint8_t *nal)
{
	int t;

	if (z->h265) {
		t = cn_h265_nal_type(nal);
		return t == 35 || t == 38 || t >= 48;
	}
	t = cn_h264_nal_type(nal);
	return t == 0 || t == 9 || t == 12 || t >= 24;
}

static int pkz_single(struct pkz *z, const uint8_t *nal, size_t len)
{
	uint8_t *p = pl_add(z->out, len);

	if (p == NULL)
		return -ENOBUFS;
	memcpy(p, nal, len);
	return 0;
}

/* Folds one NAL's header into the aggregation packet's header: F is the OR of the F
 * bits; H.264 takes the highest NRI, H.265 the lowest layer id and TID. */
static void pkz_agg_header(struct pkz *z, const uint8_t *nal, bool reset)
{
	uint8_t layer, tid;

	if (reset) {
		z->agg_f = 0;
		z->agg_nri = 0;
		z->agg_layer = 63;
		z->agg_tid = 7;
	}
	z->agg_f |= nal[0] & 0x80;
	if (!z->h265) {
		if ((nal[0] & 0x60) > z->agg_nri)
			z->agg_nri = nal[0] & 0x60;
		return;
	}
	layer = (uint8_t)((nal[0] & 1) << 5 | nal[1] >> 3);
	tid = nal[1] & 7;
	if (layer < z->agg_layer)
		z->agg_layer = layer;
	if (tid < z->agg_tid)
		z->agg_tid = tid;
}

static void pkz_agg_write_header(const struct pkz *z)
{
	const struct cn_rtp_payload *pl = &z->out->pkts[z->out->npkts - 1];
	uint8_t *p = z->out->buf + pl->off;

	if (!z->h265) {
		p[0] = (uint8_t)(z->agg_f | z->agg_nri | H264_STAP_A);
		return;
	}
	p[0] = (uint8_t)(z->agg_f | H265_AP << 1 | z->agg_layer >> 5);
	p[1] = (uint8_t)((z->agg_layer & 0x1f) << 3 | z->agg_tid);
}

/* Sends the NAL still waiting, if any, on its own. */
static int pkz_flush(struct pkz *z)
{
	int n = z->nagg;

	z->nagg = 0;
	return n == 1 ? pkz_single(z, z->first, z->first_len) : 0;
}

static int pkz_fragment(struct pkz *z, const uint8_t *nal, size_t len)
{
	size_t fu_hdr = z->hdr + 1, chunk = z->max - fu_hdr, left = len - z->hdr;
	const uint8_t *src = nal + z->hdr;
	int type = z->h265 ? cn_h265_nal_type(nal) : cn_h264_nal_type(nal);
	bool start = true;

	while (left > 0) {
		size_t n = left < chunk ? left : chunk;
		uint8_t *p = pl_add(z->out, fu_hdr + n);
		uint8_t se = (uint8_t)((start ? 0x80 : 0) | (n == left ? 0x40 : 0));

		if (p == NULL)
			return -ENOBUFS;
		if (z->h265) {
			p[0] = (uint8_t)((nal[0] & 0x81) | H265_FU << 1);
			p[1] = nal[1];
			p[2] = (uint8_t)(se | type);
		} else {
			p[0] = (uint8_t)((nal[0] & 0xe0) | H264_FU_A);
			p[1] = (uint8_t)(se | type);
		}
		memcpy(p + fu_hdr, src, n);
		src += n;
		left -= n;
		start = false;
	}
	return 0;
}

static int pkz_nal(struct pkz *z, const uint8_t *nal, size_t len)
{
	uint8_t *p;
	int rc;

	if (len < z->hdr)
		return CN_E_MALFORMED;
	if (pkz_drop(z, nal))
		return 0;
	if (len > z->max) {
		if ((rc = pkz_flush(z)) < 0)
			return rc;
		return pkz_fragment(z, nal, len);
	}
	if (z->nagg == 1 && z->first_len <= 0xffff && len <= 0xffff &&
	    z->hdr + 2 + z->first_len + 2 + len <= z->max) {
		/* Start an aggregation packet with the waiting NAL and this one. */
		p = pl_add(z->out, z->hdr + 2 + z->first_len + 2 + len);
		if (p == NULL)
			return -ENOBUFS;
		p += z->hdr;
		put16(p, (uint16_t)z->first_len);
		memcpy(p + 2, z->first, z->first_len);
		p += 2 + z->first_len;
		put16(p, (uint16_t)len);
		memcpy(p + 2, nal, len);
		pkz_agg_header(z, z->first, true);
		pkz_agg_header(z, nal, false);
		pkz_agg_write_header(z);
		z->nagg = 2;
		return 0;
	}
	if (z->nagg >= 2 && len <= 0xffff &&
	    z->out->pkts[z->out->npkts - 1].len + 2 + len <= z->max) {
		if ((p = pl_grow(z->out, 2 + len)) == NULL)
			return -ENOBUFS;
		put16(p, (uint16_t)len);
		memcpy(p + 2, nal, len);
		pkz_agg_header(z, nal, false);
		pkz_agg_write_header(z);
		z->nagg++;
		return 0;
	}
	if ((rc = pkz_flush(z)) < 0)
		return rc;
	z->first = nal;
	z->first_len = len;
	z->nagg = 1;
	return 0;
}

static int pkz_nals(struct pkz *z, const uint8_t *p, size_t len, int length_size)
{
	const uint8_t *nal;
	size_t pos = 0, nal_len;
	int rc;

	while ((rc = cn_nal_next(p, len, length_size, &pos, &nal, &nal_len)) == 1)
		if ((rc = pkz_nal(z, nal, nal_len)) < 0)
			return rc;
	return rc;
}

static int packetize(bool h265, const uint8_t *au, size_t len, int length_size,
		     const uint8_t *prefix, size_t prefix_len, int prefix_length_size,
		     size_t max_payload, struct cn_rtp_payloads *out)
{
	struct pkz z = { .out = out, .max = max_payload, .h265 = h265, .hdr = h265 ? 2 : 1 };
	size_t used = out->used;
	int npkts = out->npkts, rc = 0;

	if (max_payload < 64 || out->npkts < 0 || out->npkts > out->max_pkts ||
	    out->used > out->cap)
		return -EINVAL;
	if (prefix != NULL)
		rc = pkz_nals(&z, prefix, prefix_len, prefix_length_size);
	if (rc == 0)
		rc = pkz_nals(&z, au, len, length_size);
	if (rc == 0)
		rc = pkz_flush(&z);
	if (rc < 0) {
		out->used = used;
		out->npkts = npkts;
		return rc;
	}
	if (out->npkts > npkts)
		out->pkts[out->npkts - 1].marker = true;
	return 0;
}

int cn_rtp_h264_packetize(const uint8_t *au, size_t len, int length_size,
			  const uint8_t *prefix, size_t prefix_len, int prefix_length_size,
			  size_t max_payload, struct cn_rtp_payloads *out)
{
	return packetize(false, au, len, length_size, prefix, prefix_len, prefix_length_size,
			 max_payload, out);
}

int cn_rtp_h265_packetize(const uint8_t *au, size_t len, int length_size,
			  const uint8_t *prefix, size_t prefix_len, int prefix_length_size,
			  size_t max_payload, struct cn_rtp_payloads *out)
{
	return packetize(true, au, len, length_size, prefix, prefix_len, prefix_length_size,
			 max_payload, out);
}

int cn_rtp_g711_packetize(const uint8_t *frame, size_t len, size_t max_payload,
			  struct cn_rtp_payloads *out)
{
	size_t used = out->used;
	int npkts = out->npkts;

	if (max_payload == 0 || out->npkts < 0 || out->npkts > out->max_pkts ||
	    out->used > out->cap)
		return -EINVAL;
	while (len > 0) {
		size_t n = len < max_payload ? len : max_payload;
		uint8_t *p = pl_add(out, n);

		if (p == NULL) {
			out->used = used;
			out->npkts = npkts;
			return -ENOBUFS;
		}
		memcpy(p, frame, n);
		frame += n;
		len -= n;
	}
	return 0;
}

/* ---- decoder configuration records ---------------------------------------------- */

static bool has_start_code(const uint8_t *p, size_t len)
{
	return (len >= 3 && p[0] == 0 && p[1] == 0 && p[2] == 1) ||
	       (len >= 4 && p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 1);
}

/* Copies Annex B extradata as it is. */
static int copy_annexb(const uint8_t *p, size_t len, uint8_t *out, size_t cap,
		       int *length_size)
{
	if (len > INT_MAX)
		return CN_E_MALFORMED;
	if (len > cap)
		return -ENOBUFS;
	memcpy(out, p, len);
	*length_size = 0;
	return (int)len;
}

/* Reads count NALs, each with a 16-bit length, and writes them with start codes. */
static int put_nals(struct cn_reader *r, unsigned count, uint8_t *out, size_t cap, size_t *w)
{
	for (unsigned i = 0; i < count; i++) {
		const uint8_t *nal;
		uint16_t n;

		if (cn_reader_u16be(r, &n) < 0 || n == 0 || cn_reader_bytes(r, n, &nal) < 0)
			return CN_E_MALFORMED;
		if (cap - *w < 4 + (size_t)n)
			return -ENOBUFS;
		memcpy(out + *w, "\0\0\0\1", 4);
		memcpy(out + *w + 4, nal, n);
		*w += 4 + (size_t)n;
	}
	return 0;
}

static int length_size_of(uint8_t minus_one)
{
	/* lengthSizeMinusOne 2 (3-byte lengths) is not allowed by ISO 14496-15. */
	return (minus_one & 3) == 2 ? CN_E_MALFORMED : (minus_one & 3) + 1;
}

int cn_avcc_to_annexb(const uint8_t *avcc, size_t len, uint8_t *out, size_t cap,
		      int *length_size)
{
	struct cn_reader r;
	const uint8_t *head;
	uint8_t n;
	size_t w = 0;
	int ls, rc;

	if (has_start_code(avcc, len))
		return copy_annexb(avcc, len, out, cap, length_size);
	/* version, profile, compatibility, level, lengthSizeMinusOne, numOfSPS */
	cn_reader_init(&r, avcc, len);
	if (cn_reader_bytes(&r, 6, &head) < 0 || head[0] != 1)
		return CN_E_MALFORMED;
	if ((ls = length_size_of(head[4])) < 0)
		return ls;
	if ((rc = put_nals(&r, head[5] & 0x1f, out, cap, &w)) < 0)
		return rc;
	if (cn_reader_u8(&r, &n) < 0)
		return CN_E_MALFORMED;
	if ((rc = put_nals(&r, n, out, cap, &w)) < 0)
		return rc;
	/* High-profile extensions (chroma format, bit depths, SPS ext) may follow: unused. */
	if (w > INT_MAX)
		return CN_E_MALFORMED;
	*length_size = ls;
	return (int)w;
}

int cn_hvcc_to_annexb(const uint8_t *hvcc, size_t len, uint8_t *out, size_t cap,
		      int *length_size)
{
	struct cn_reader r;
	const uint8_t *head;
	uint8_t arrays;
	size_t w = 0;
	int ls, rc;

	if (has_start_code(hvcc, len))
		return copy_annexb(hvcc, len, out, cap, length_size);
	/* 22 bytes of profile, tier, level and format fields, then numOfArrays. Early
	 * muxers wrote configurationVersion 0 (FFmpeg still reads those). */
	cn_reader_init(&r, hvcc, len);
	if (cn_reader_bytes(&r, 22, &head) < 0 || head[0] > 1 ||
	    cn_reader_u8(&r, &arrays) < 0)
		return CN_E_MALFORMED;
	if ((ls = length_size_of(head[21])) < 0)
		return ls;
	for (unsigned i = 0; i < arrays; i++) {
		uint8_t type;
		uint16_t count;

		if (cn_reader_u8(&r, &type) < 0 || cn_reader_u16be(&r, &count) < 0)
			return CN_E_MALFORMED;
		if ((rc = put_nals(&r, count, out, cap, &w)) < 0)
			return rc;
	}
	if (w > INT_MAX)
		return CN_E_MALFORMED;
	*length_size = ls;
	return (int)w;
}

/* ---- RTCP ----------------------------------------------------------------------- */

int cn_rtcp_next(const uint8_t *p, size_t n, size_t *pos, struct cn_rtcp_pkt *out)
{
	size_t total, body, pad = 0;
	const uint8_t *h;

	memset(out, 0, sizeof(*out));
	if (*pos >= n)
		return 0;
	h = p + *pos;
	if (n - *pos < 4 || h[0] >> 6 != RTP_VERSION)
		return CN_E_MALFORMED;
	total = ((size_t)be16(h + 2) + 1) * 4;
	if (total > n - *pos)
		return CN_E_MALFORMED;
	body = total - 4;
	if (h[0] & 0x20) {
		/* The last byte counts the padding, itself included; the header stays. */
		pad = h[total - 1];
		if (pad == 0 || pad > body)
			return CN_E_MALFORMED;
	}
	out->pt = h[1];
	out->count = h[0] & 0x1f;
	out->body = h + 4;
	out->len = body - pad;
	*pos += total;
	return 1;
}

static void report_block(const uint8_t *b, struct cn_rtcp_report_block *rb)
{
	uint32_t lost = (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];

	rb->ssrc = be32(b);
	rb->fraction_lost = b[4];
	/* 24-bit two's complement */
	rb->cumulative_lost = (int32_t)(lost & 0x800000 ? lost - 0x1000000 : lost);
	rb->highest_seq = be32(b + 8);
	rb->jitter = be32(b + 12);
	rb->lsr = be32(b + 16);
	rb->dlsr = be32(b + 20);
}

int cn_rtcp_parse_report(const struct cn_rtcp_pkt *pkt, uint32_t *sender_ssrc,
			 struct cn_rtcp_sr_info *sr, struct cn_rtcp_report_block *blocks, int max,
			 int *nblocks)
{
	size_t info = pkt->pt == CN_RTCP_SR ? 24 : 4;
	const uint8_t *b = pkt->body;
	int stored = 0;

	if (nblocks)
		*nblocks = 0;
	if (sr)
		memset(sr, 0, sizeof(*sr));
	if (pkt->pt != CN_RTCP_SR && pkt->pt != CN_RTCP_RR)
		return -EINVAL;
	if (pkt->len < info || (pkt->len - info) / 24 < pkt->count)
		return CN_E_MALFORMED;
	if (sender_ssrc)
		*sender_ssrc = be32(b);
	if (sr && pkt->pt == CN_RTCP_SR) {
		sr->ssrc = be32(b);
		sr->ntp = (uint64_t)be32(b + 4) << 32 | be32(b + 8);
		sr->rtp_ts = be32(b + 12);
		sr->packets = be32(b + 16);
		sr->octets = be32(b + 20);
	}
	for (int i = 0; i < pkt->count && stored < max && blocks; i++)
		report_block(b + info + 24 * (size_t)i, &blocks[stored++]);
	if (nblocks)
		*nblocks = stored;
	return 0;
}

int cn_rtcp_parse_fb(const struct cn_rtcp_pkt *pkt, uint32_t *sender_ssrc,
		     uint32_t *media_ssrc)
{
	if (pkt->pt != CN_RTCP_RTPFB && pkt->pt != CN_RTCP_PSFB)
		return -EINVAL;
	if (pkt->len < 8)
		return CN_E_MALFORMED;
	if (sender_ssrc)
		*sender_ssrc = be32(pkt->body);
	if (media_ssrc)
		*media_ssrc = be32(pkt->body + 4);
	return 0;
}

int cn_rtcp_parse_nack(const struct cn_rtcp_pkt *pkt, uint16_t *seqs, int max, int *n)
{
	int stored = 0;

	*n = 0;
	if (pkt->pt != CN_RTCP_RTPFB || pkt->count != 1)
		return -EINVAL;
	/* At least one PID/BLP pair (RFC 4585 6.2.1). */
	if (pkt->len < 12 || pkt->len % 4 != 0)
		return CN_E_MALFORMED;
	for (size_t off = 8; off < pkt->len; off += 4) {
		uint16_t pid = be16(pkt->body + off), blp = be16(pkt->body + off + 2);

		if (stored < max)
			seqs[stored++] = pid;
		for (int bit = 0; bit < 16; bit++)
			if (blp & (1u << bit) && stored < max)
				seqs[stored++] = (uint16_t)(pid + bit + 1);
	}
	*n = stored;
	return 0;
}

int cn_rtcp_parse_fir(const struct cn_rtcp_pkt *pkt, uint32_t ssrc, uint8_t *seq_nr)
{
	if (pkt->pt != CN_RTCP_PSFB || pkt->count != 4)
		return -EINVAL;
	/* FCI entries: SSRC, sequence number, 24 reserved bits (RFC 5104 4.3.1). */
	if (pkt->len < 16 || (pkt->len - 8) % 8 != 0)
		return CN_E_MALFORMED;
	for (size_t off = 8; off < pkt->len; off += 8) {
		if (be32(pkt->body + off) == ssrc) {
			*seq_nr = pkt->body[off + 4];
			return 0;
		}
	}
	return -ENOENT;
}

int cn_rtcp_parse_remb(const struct cn_rtcp_pkt *pkt, uint64_t *bitrate, uint32_t *ssrcs,
		       int max, int *nssrcs)
{
	const uint8_t *b = pkt->body;
	uint64_t mantissa;
	unsigned exp, num;
	int stored = 0;

	*nssrcs = 0;
	*bitrate = 0;
	if (pkt->pt != CN_RTCP_PSFB || pkt->count != 15)
		return -EINVAL;
	if (pkt->len < 12 || memcmp(b + 8, "REMB", 4) != 0)
		return -ENOENT;
	/* sender, media (0), "REMB", num SSRC, BR exp (6 bits), BR mantissa (18 bits) */
	if (pkt->len < 16)
		return CN_E_MALFORMED;
	num = b[12];
	exp = b[13] >> 2;
	mantissa = (uint64_t)(b[13] & 3) << 16 | (uint64_t)b[14] << 8 | b[15];
	if (pkt->len != 16 + 4 * (size_t)num)
		return CN_E_MALFORMED;
	if (exp > 46 && mantissa >> (64 - exp) != 0) /* does not fit 64 bits */
		return CN_E_MALFORMED;
	for (unsigned i = 0; i < num && stored < max; i++)
		ssrcs[stored++] = be32(b + 16 + 4 * (size_t)i);
	*bitrate = mantissa << exp;
	*nssrcs = stored;
	return 0;
}

int cn_rtcp_parse_twcc(const struct cn_rtcp_pkt *pkt, uint16_t *base_seq,
		       uint16_t *status_count, uint8_t *fb_count)
{
	struct cn_reader r;
	uint16_t count, chunk;
	size_t deltas = 0;
	unsigned seen = 0;

	if (pkt->pt != CN_RTCP_RTPFB || pkt->count != 15)
		return -EINVAL;
	/* sender, media, base seq, status count, reference time (24), fb pkt count */
	if (pkt->len < 16)
		return CN_E_MALFORMED;
	count = be16(pkt->body + 10);
	if (count == 0)
		return CN_E_MALFORMED;
	cn_reader_init(&r, pkt->body + 16, pkt->len - 16);
	while (seen < count) {
		unsigned left = count - seen;

		if (cn_reader_u16be(&r, &chunk) < 0)
			return CN_E_MALFORMED;
		if (!(chunk & 0x8000)) {
			/* Run length: symbol (2 bits), run length (13 bits). */
			unsigned sym = chunk >> 13 & 3, run = chunk & 0x1fff;

			if (run > left)
				run = left;
			if (sym == 3 && run > 0)
				return CN_E_MALFORMED;
			deltas += (size_t)sym * run;
			seen += run;
		} else if (!(chunk & 0x4000)) {
			/* Status vector of 14 one-bit symbols: received with a small delta. */
			for (unsigned i = 0; i < 14 && i < left; i++)
				deltas += chunk >> (13 - i) & 1;
			seen += left < 14 ? left : 14;
		} else {
			/* Status vector of 7 two-bit symbols. */
			for (unsigned i = 0; i < 7 && i < left; i++) {
				unsigned sym = chunk >> (12 - 2 * i) & 3;

				if (sym == 3)
					return CN_E_MALFORMED;
				deltas += sym;
			}
			seen += left < 7 ? left : 7;
		}
	}
	if (deltas > cn_reader_left(&r))
		return CN_E_MALFORMED;
	*base_seq = be16(pkt->body + 8);
	*status_count = count;
	*fb_count = pkt->body[15];
	return 0;
}

/* ---- RTCP writers --------------------------------------------------------------- */

static void rtcp_header(uint8_t *p, unsigned count, uint8_t pt, size_t total)
{
	p[0] = (uint8_t)(RTP_VERSION << 6 | (count & 0x1f));
	p[1] = pt;
	put16(p + 2, (uint16_t)(total / 4 - 1));
}

int cn_rtcp_write_sr(uint8_t *out, size_t cap, const struct cn_rtcp_sr_info *sr)
{
	if (cap < 28)
		return -ENOBUFS;
	rtcp_header(out, 0, CN_RTCP_SR, 28);
	put32(out + 4, sr->ssrc);
	put32(out + 8, (uint32_t)(sr->ntp >> 32));
	put32(out + 12, (uint32_t)sr->ntp);
	put32(out + 16, sr->rtp_ts);
	put32(out + 20, sr->packets);
	put32(out + 24, sr->octets);
	return 28;
}

int cn_rtcp_write_rr(uint8_t *out, size_t cap, uint32_t ssrc,
		     const struct cn_rtcp_report_block *blocks, int nblocks)
{
	size_t total;

	if (nblocks < 0 || nblocks > 31)
		return -EINVAL;
	total = 8 + 24 * (size_t)nblocks;
	if (cap < total)
		return -ENOBUFS;
	rtcp_header(out, (unsigned)nblocks, CN_RTCP_RR, total);
	put32(out + 4, ssrc);
	for (int i = 0; i < nblocks; i++) {
		const struct cn_rtcp_report_block *rb = &blocks[i];
		uint8_t *b = out + 8 + 24 * (size_t)i;
		uint32_t lost = (uint32_t)rb->cumulative_lost;

		/* Clamp to the 24-bit signed range. */
		if (rb->cumulative_lost > 0x7fffff)
			lost = 0x7fffff;
		else if (rb->cumulative_lost < -0x800000)
			lost = (uint32_t)-0x800000;
		put32(b, rb->ssrc);
		put32(b + 4, (uint32_t)rb->fraction_lost << 24 | (lost & 0xffffff));
		put32(b + 8, rb->highest_seq);
		put32(b + 12, rb->jitter);
		put32(b + 16, rb->lsr);
		put32(b + 20, rb->dlsr);
	}
	return (int)total;
}

int cn_rtcp_write_sdes_cname(uint8_t *out, size_t cap, uint32_t ssrc, const char *cname)
{
	size_t n, items, total;

	if (cname == NULL || (n = strlen(cname)) > 255)
		return -EINVAL;
	/* CNAME item (type, length, text), then an END item and zeros to a 32-bit boundary. */
	items = (2 + n + 4) & ~(size_t)3;
	total = 8 + items;
	if (cap < total)
		return -ENOBUFS;
	rtcp_header(out, 1, CN_RTCP_SDES, total);
	put32(out + 4, ssrc);
	memset(out + 8, 0, items);
	out[8] = 1; /* CNAME */
	out[9] = (uint8_t)n;
	memcpy(out + 10, cname, n);
	return (int)total;
}

int cn_rtcp_write_bye(uint8_t *out, size_t cap, uint32_t ssrc)
{
	if (cap < 8)
		return -ENOBUFS;
	rtcp_header(out, 1, CN_RTCP_BYE, 8);
	put32(out + 4, ssrc);
	return 8;
}

int cn_rtcp_write_pli(uint8_t *out, size_t cap, uint32_t sender, uint32_t media)
{
	if (cap < 12)
		return -ENOBUFS;
	rtcp_header(out, 1, CN_RTCP_PSFB, 12);
	put32(out + 4, sender);
	put32(out + 8, media);
	return 12;
}

int cn_rtcp_write_fir(uint8_t *out, size_t cap, uint32_t sender, uint32_t media, uint8_t seq_nr)
{
	if (cap < 20)
		return -ENOBUFS;
	/* The media source field is unused (0); the target goes in the FCI entry. */
	rtcp_header(out, 4, CN_RTCP_PSFB, 20);
	put32(out + 4, sender);
	put32(out + 8, 0);
	put32(out + 12, media);
	out[16] = seq_nr;
	out[17] = out[18] = out[19] = 0;
	return 20;
}

int cn_rtcp_write_nack(uint8_t *out, size_t cap, uint32_t sender, uint32_t media,
		       const uint16_t *seqs, int n)
{
	size_t total = 12;
	uint16_t pid, blp = 0;

	if (n <= 0)
		return -EINVAL;
	/* Each sequence number joins the current pair when it is one of the 16 after its PID
	 * (the best packing for ascending input), else it starts a new pair. */
	pid = seqs[0];
	for (int i = 1; i <= n; i++) {
		uint16_t d = i < n ? (uint16_t)(seqs[i] - pid) : 0;

		if (i < n && d <= 16) {
			if (d > 0)
				blp |= (uint16_t)(1u << (d - 1));
			continue;
		}
		/* The RTCP length field counts at most 65536 words. */
		if (cap < total + 4 || total + 4 > 4 * 65536)
			return -ENOBUFS;
		put16(out + total, pid);
		put16(out + total + 2, blp);
		total += 4;
		if (i < n) {
			pid = seqs[i];
			blp = 0;
		}
	}
	rtcp_header(out, 1, CN_RTCP_RTPFB, total);
	put32(out + 4, sender);
	put32(out + 8, media);
	return (int)total;
}

int cn_rtcp_write_remb(uint8_t *out, size_t cap, uint32_t sender, uint64_t bitrate,
		       const uint32_t *ssrcs, int nssrcs)
{
	size_t total;
	unsigned exp = 0;

	if (nssrcs < 0 || nssrcs > 255)
		return -EINVAL;
	total = 20 + 4 * (size_t)nssrcs;
	if (cap < total)
		return -ENOBUFS;
	/* The smallest exponent that leaves an 18-bit mantissa (rounds down). */
	while (bitrate >> exp >= (1u << 18))
		exp++;
	rtcp_header(out, 15, CN_RTCP_PSFB, total);
	put32(out + 4, sender);
	put32(out + 8, 0);
	memcpy(out + 12, "REMB", 4);
	put32(out + 16, (uint32_t)nssrcs << 24 | exp << 18 | (uint32_t)(bitrate >> exp));
	for (int i = 0; i < nssrcs; i++)
		put32(out + 20 + 4 * (size_t)i, ssrcs[i]);
	return (int)total;
}

uint64_t cn_ntp_from_unix_us(uint64_t us)
{
	uint64_t secs = us / 1000000, rem = us % 1000000;

	return (secs + NTP_UNIX_OFFSET) << 32 | (rem << 32) / 1000000;
}
