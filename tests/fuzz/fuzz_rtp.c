/* fuzz_rtp.c: libFuzzer harness for the RTP/RTCP codecs, the H.264/H.265 packetisers and the avcC/hvcC readers. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_err.h"
#include "cn_rtp.h"
#include "fuzz_check.h"

/*
 * The first byte picks what the rest of the input is:
 * 0 an RTP packet: parse, extension lookups, header rewrite and re-parse;
 * 1 a compound RTCP packet: iteration, every sub-parser on every packet, writers
 *   re-encoding what parsed and the parsers reading it back the same;
 * 2, 3 an H.264 / H.265 access unit (two more bytes pick max_payload, the NAL formats and
 *   a prefix cut from the front): every payload fits and sits back to back, only the last
 *   is marked, a depacketiser written here gets back exactly the NALs that are not dropped,
 *   and too small an output is refused with out left as it was;
 * 4 an avcC / hvcC record, then its output walked as Annex B;
 * 5 NAL iteration in every format.
 */

#define MAX_INPUT 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool within(const uint8_t *p, size_t n, const uint8_t *base, size_t len)
{
	return p >= base && p <= base + len && n <= len - (size_t)(p - base);
}

/* ---- 0: RTP ---- */

static void fuzz_rtp(const uint8_t *p, size_t n)
{
	struct cn_rtp_hdr h, h2;
	uint8_t hdr[20];
	const uint8_t *val;
	size_t vlen;
	int rc;

	(void)cn_rtp_is_rtcp(p, n);
	rc = cn_rtp_parse(p, n, &h);
	CHECK(rc == 0 || rc == CN_E_MALFORMED);
	if (rc < 0) {
		CHECK(h.payload == NULL && h.header_len == 0);
		return;
	}
	CHECK(h.version == 2 && h.csrc_count <= 15 && h.pt <= 127);
	CHECK(h.header_len >= CN_RTP_HEADER_MIN + 4 * (size_t)h.csrc_count);
	CHECK(h.header_len <= n && h.payload_len <= n - h.header_len);
	CHECK(h.payload == p + h.header_len);
	CHECK(h.padding || h.payload_len == n - h.header_len);
	if (h.extension) {
		CHECK(within(h.ext, h.ext_len, p, h.header_len) && h.ext_len % 4 == 0);
		CHECK(h.header_len == CN_RTP_HEADER_MIN + 4 * (size_t)h.csrc_count + 4 + h.ext_len);
	} else {
		CHECK(h.ext == NULL && h.ext_len == 0);
	}
	for (int id = -1; id <= 16; id++) {
		rc = cn_rtp_find_ext(&h, id, &val, &vlen);
		CHECK(rc == 0 || rc == -ENOENT);
		if (rc == 0) {
			CHECK(id >= 1 && id <= 14 && h.ext_profile == 0xBEDE);
			CHECK(vlen >= 1 && vlen <= 16 && within(val, vlen, h.ext, h.ext_len));
			CHECK(val[-1] >> 4 == id && (size_t)(val[-1] & 15) + 1 == vlen);
		}
	}
	/* The fixed fields written again read back the same. */
	rc = cn_rtp_write_header(hdr, sizeof(hdr), h.marker, h.pt, h.seq, h.ts, h.ssrc,
				 1 + h.seq % 15, h.ts * 1000ull);
	CHECK(rc == 12 || rc == 20);
	CHECK(cn_rtp_parse(hdr, (size_t)rc, &h2) == 0);
	CHECK(h2.marker == h.marker && h2.pt == h.pt && h2.seq == h.seq && h2.ts == h.ts &&
	      h2.ssrc == h.ssrc && h2.payload_len == 0 && h2.csrc_count == 0);
	CHECK(h2.extension == (rc == 20));
	if (rc == 20) {
		CHECK(cn_rtp_find_ext(&h2, 1 + h.seq % 15, &val, &vlen) == 0 && vlen == 3);
		CHECK((((uint32_t)val[0] << 16 | val[1] << 8 | val[2]) >> 18) == h.ts * 1000ull /
			1000000 % 64);
	}
}

/* ---- 1: RTCP ---- */

static uint8_t seen_seq[65536 / 8];

static void mark_seqs(const uint16_t *s, int n, uint8_t *bits)
{
	memset(bits, 0, sizeof(seen_seq));
	for (int i = 0; i < n; i++)
		bits[s[i] / 8] |= (uint8_t)(1u << (s[i] % 8));
}

static void check_report(const struct cn_rtcp_pkt *pkt)
{
	struct cn_rtcp_report_block b[31], b2[31];
	struct cn_rtcp_sr_info sr, sr2;
	uint8_t out[8 + 31 * 24];
	struct cn_rtcp_pkt again;
	uint32_t ssrc, ssrc2;
	size_t pos = 0;
	int rc, nb, nb2;

	rc = cn_rtcp_parse_report(pkt, &ssrc, &sr, b, 31, &nb);
	CHECK(rc == 0 || rc == CN_E_MALFORMED);
	if (rc < 0) {
		CHECK(nb == 0);
		return;
	}
	CHECK(nb == pkt->count && nb <= 31);
	CHECK(pkt->len >= (pkt->pt == CN_RTCP_SR ? 24u : 4u) + 24u * pkt->count);
	if (pkt->pt == CN_RTCP_SR) {
		CHECK(sr.ssrc == ssrc);
		rc = cn_rtcp_write_sr(out, sizeof(out), &sr);
		CHECK(rc == 28);
		CHECK(cn_rtcp_next(out, 28, &pos, &again) == 1);
		CHECK(cn_rtcp_parse_report(&again, &ssrc2, &sr2, NULL, 0, &nb2) == 0);
		CHECK(ssrc2 == ssrc && nb2 == 0 && sr2.ntp == sr.ntp && sr2.rtp_ts == sr.rtp_ts &&
		      sr2.packets == sr.packets && sr2.octets == sr.octets);
		pos = 0;
	}
	for (int i = 0; i < nb; i++)
		CHECK(b[i].cumulative_lost >= -0x800000 && b[i].cumulative_lost <= 0x7fffff);
	/* The blocks written as an RR read back the same. */
	rc = cn_rtcp_write_rr(out, sizeof(out), ssrc, b, nb);
	CHECK(rc == 8 + 24 * nb);
	CHECK(cn_rtcp_next(out, (size_t)rc, &pos, &again) == 1 && (size_t)pos == (size_t)rc);
	CHECK(cn_rtcp_parse_report(&again, &ssrc2, NULL, b2, 31, &nb2) == 0);
	CHECK(ssrc2 == ssrc && nb2 == nb);
	for (int i = 0; i < nb; i++)
		CHECK(b2[i].ssrc == b[i].ssrc && b2[i].fraction_lost == b[i].fraction_lost &&
		      b2[i].cumulative_lost == b[i].cumulative_lost &&
		      b2[i].highest_seq == b[i].highest_seq && b2[i].jitter == b[i].jitter &&
		      b2[i].lsr == b[i].lsr && b2[i].dlsr == b[i].dlsr);
	/* Fewer rows than blocks: the first ones. */
	if (nb > 1) {
		CHECK(cn_rtcp_parse_report(pkt, NULL, NULL, b2, 1, &nb2) == 0 && nb2 == 1);
		CHECK(b2[0].ssrc == b[0].ssrc);
	}
}

static void check_nack(const struct cn_rtcp_pkt *pkt, uint32_t sender, uint32_t media)
{
	static uint16_t seqs[16384], seqs2[16384];
	static uint8_t bits2[sizeof(seen_seq)];
	static uint8_t out[12 + 4 * 16384];
	struct cn_rtcp_pkt again;
	uint32_t s2, m2;
	size_t pos = 0;
	int rc, n, n2;

	rc = cn_rtcp_parse_nack(pkt, seqs, 16384, &n);
	CHECK(rc == 0 || rc == CN_E_MALFORMED);
	if (rc < 0) {
		CHECK(n == 0);
		return;
	}
	CHECK(n >= (int)(pkt->len - 8) / 4 && n <= 17 * (int)(pkt->len - 8) / 4);
	/* Written again: the same set of sequence numbers. */
	rc = cn_rtcp_write_nack(out, sizeof(out), sender, media, seqs, n);
	CHECK(rc >= 16 && rc % 4 == 0 && rc <= 12 + 4 * n);
	CHECK(cn_rtcp_next(out, (size_t)rc, &pos, &again) == 1);
	CHECK(cn_rtcp_parse_fb(&again, &s2, &m2) == 0 && s2 == sender && m2 == media);
	CHECK(cn_rtcp_parse_nack(&again, seqs2, 16384, &n2) == 0);
	mark_seqs(seqs, n, seen_seq);
	mark_seqs(seqs2, n2, bits2);
	CHECK(memcmp(seen_seq, bits2, sizeof(bits2)) == 0);
	/* A short table keeps the first ones. */
	CHECK(cn_rtcp_parse_nack(pkt, seqs2, 1, &n2) == 0 && n2 == 1 && seqs2[0] == seqs[0]);
}

static void check_remb(const struct cn_rtcp_pkt *pkt, uint32_t sender)
{
	uint32_t ssrcs[255], ssrcs2[255];
	uint8_t out[20 + 4 * 255];
	struct cn_rtcp_pkt again;
	uint64_t br, br2;
	size_t pos = 0;
	int rc, n, n2;

	rc = cn_rtcp_parse_remb(pkt, &br, ssrcs, 255, &n);
	CHECK(rc == 0 || rc == CN_E_MALFORMED || rc == -ENOENT);
	if (rc < 0) {
		CHECK(n == 0);
		return;
	}
	CHECK(n == pkt->body[12] && pkt->len == 16 + 4 * (size_t)n);
	rc = cn_rtcp_write_remb(out, sizeof(out), sender, br, ssrcs, n);
	CHECK(rc == 20 + 4 * n);
	CHECK(cn_rtcp_next(out, (size_t)rc, &pos, &again) == 1);
	CHECK(cn_rtcp_parse_remb(&again, &br2, ssrcs2, 255, &n2) == 0);
	/* A parsed bitrate is mantissa << exp: it encodes exactly. */
	CHECK(br2 == br && n2 == n && memcmp(ssrcs, ssrcs2, 4 * (size_t)n) == 0);
}

static void check_packet(const struct cn_rtcp_pkt *pkt)
{
	uint32_t sender = 0, media = 0;
	uint16_t seqs[8], base, count;
	uint64_t br;
	uint32_t ssrcs[2];
	uint8_t fb_count, seq_nr;
	int rc, n;

	rc = cn_rtcp_parse_report(pkt, NULL, NULL, NULL, 0, &n);
	CHECK(rc == 0 || rc == CN_E_MALFORMED || rc == -EINVAL);
	CHECK((rc == -EINVAL) == (pkt->pt != CN_RTCP_SR && pkt->pt != CN_RTCP_RR));
	if (rc != -EINVAL)
		check_report(pkt);

	rc = cn_rtcp_parse_fb(pkt, &sender, &media);
	CHECK(rc == 0 || rc == CN_E_MALFORMED || rc == -EINVAL);
	CHECK((rc == -EINVAL) == (pkt->pt != CN_RTCP_RTPFB && pkt->pt != CN_RTCP_PSFB));
	CHECK(rc != 0 || pkt->len >= 8);

	rc = cn_rtcp_parse_nack(pkt, seqs, 8, &n);
	CHECK(rc == 0 || rc == CN_E_MALFORMED || rc == -EINVAL);
	CHECK(n >= 0 && n <= 8);
	if (rc != -EINVAL)
		check_nack(pkt, sender, media);

	if (pkt->len >= 12) {
		rc = cn_rtcp_parse_fir(pkt, be32(pkt->body + 8), &seq_nr);
		CHECK(rc == 0 || rc == CN_E_MALFORMED || rc == -EINVAL);
	}
	rc = cn_rtcp_parse_fir(pkt, media, &seq_nr);
	CHECK(rc == 0 || rc == CN_E_MALFORMED || rc == -EINVAL || rc == -ENOENT);

	rc = cn_rtcp_parse_remb(pkt, &br, ssrcs, 2, &n);
	CHECK(rc == 0 || rc == CN_E_MALFORMED || rc == -EINVAL || rc == -ENOENT);
	CHECK(n >= 0 && n <= 2);
	if (rc != -EINVAL)
		check_remb(pkt, sender);

	rc = cn_rtcp_parse_twcc(pkt, &base, &count, &fb_count);
	CHECK(rc == 0 || rc == CN_E_MALFORMED || rc == -EINVAL);
	if (rc == 0)
		CHECK(count > 0 && pkt->len >= 18);
}

static void fuzz_rtcp(const uint8_t *p, size_t n)
{
	struct cn_rtcp_pkt pkt;
	size_t pos = 0, prev = 0;
	int rc, count = 0;

	while ((rc = cn_rtcp_next(p, n, &pos, &pkt)) == 1) {
		CHECK(pos > prev && pos <= n && (pos - prev) % 4 == 0);
		CHECK(pkt.body == p + prev + 4 && pkt.len <= pos - prev - 4);
		CHECK(pkt.count <= 31);
		check_packet(&pkt);
		prev = pos;
		count++;
	}
	CHECK(rc == 0 || rc == CN_E_MALFORMED);
	CHECK(pos == prev);
	if (rc == 0)
		CHECK(pos == n || (n == 0 && pos == 0));
}

/* ---- 2, 3: packetisers ---- */

/* NALs as 4-byte length-prefixed records. */
struct nal_list {
	uint8_t buf[2 * MAX_INPUT];
	size_t len;
	int count;
};

static struct nal_list want, got;

static void nl_add(struct nal_list *l, const uint8_t *p, size_t n)
{
	CHECK(sizeof(l->buf) - l->len >= 4 + n);
	l->buf[l->len] = (uint8_t)(n >> 24);
	l->buf[l->len + 1] = (uint8_t)(n >> 16);
	l->buf[l->len + 2] = (uint8_t)(n >> 8);
	l->buf[l->len + 3] = (uint8_t)n;
	memcpy(l->buf + l->len + 4, p, n);
	l->len += 4 + n;
	l->count++;
}

static void nl_grow(struct nal_list *l, size_t at, const uint8_t *p, size_t n)
{
	uint32_t cur = be32(l->buf + at) + (uint32_t)n;

	CHECK(sizeof(l->buf) - l->len >= n);
	memcpy(l->buf + l->len, p, n);
	l->len += n;
	l->buf[at] = (uint8_t)(cur >> 24);
	l->buf[at + 1] = (uint8_t)(cur >> 16);
	l->buf[at + 2] = (uint8_t)(cur >> 8);
	l->buf[at + 3] = (uint8_t)cur;
}

/* What the packetiser must send: every NAL not dropped; CN_E_MALFORMED where it must
 * refuse. */
static int expect(bool h265, const uint8_t *p, size_t len, int ls, struct nal_list *l)
{
	const uint8_t *nal;
	size_t pos = 0, n;
	int rc, t;

	while ((rc = cn_nal_next(p, len, ls, &pos, &nal, &n)) == 1) {
		if (h265 && n < 2)
			return CN_E_MALFORMED;
		t = h265 ? cn_h265_nal_type(nal) : cn_h264_nal_type(nal);
		if (h265 ? (t == 35 || t == 38 || t >= 48) : (t == 0 || t == 9 || t == 12 || t >= 24))
			continue;
		nl_add(l, nal, n);
	}
	return rc;
}

/* An RFC 6184 / 7798 receiver, strict: any payload that breaks the format aborts. */
static void depay(bool h265, const struct cn_rtp_payloads *o, int from, struct nal_list *l)
{
	size_t hl = h265 ? 2 : 1, fu_at = 0;
	bool in_fu = false;
	int fu_type = -1;

	for (int i = from; i < o->npkts; i++) {
		const uint8_t *p = o->buf + o->pkts[i].off;
		size_t n = o->pkts[i].len;
		int type;

		CHECK(n >= hl);
		type = h265 ? cn_h265_nal_type(p) : cn_h264_nal_type(p);
		if (type == (h265 ? 48 : 24)) {
			size_t off = hl;
			int nals = 0;
			uint8_t f = 0, nri = 0, layer = 63, tid = 7;

			CHECK(!in_fu);
			while (off < n) {
				size_t sz;
				const uint8_t *nal;

				CHECK(n - off >= 2);
				sz = (size_t)p[off] << 8 | p[off + 1];
				CHECK(sz >= hl && sz <= n - off - 2);
				nal = p + off + 2;
				f |= nal[0] & 0x80;
				if ((nal[0] & 0x60) > nri)
					nri = nal[0] & 0x60;
				if (h265 && ((nal[0] & 1) << 5 | nal[1] >> 3) < layer)
					layer = (uint8_t)((nal[0] & 1) << 5 | nal[1] >> 3);
				if (h265 && (nal[1] & 7) < tid)
					tid = nal[1] & 7;
				nl_add(l, nal, sz);
				off += 2 + sz;
				nals++;
			}
			/* at least two NALs (else a single NAL unit packet is smaller); the header
			 * summarises theirs */
			CHECK(nals >= 2);
			CHECK((p[0] & 0x80) == f);
			if (h265)
				CHECK((((p[0] & 1) << 5) | p[1] >> 3) == layer && (p[1] & 7) == tid);
			else
				CHECK((p[0] & 0x60) == nri);
		} else if (type == (h265 ? 49 : 28)) {
			uint8_t fu, hdr[2];
			bool s, e;
			int t;

			CHECK(n > hl + 1);
			fu = p[hl];
			s = fu & 0x80;
			e = fu & 0x40;
			t = h265 ? fu & 0x3f : fu & 0x1f;
			CHECK(!(s && e));
			CHECK(h265 || !(fu & 0x20));
			if (s) {
				CHECK(!in_fu);
				if (h265) {
					hdr[0] = (uint8_t)((p[0] & 0x81) | t << 1);
					hdr[1] = p[1];
				} else {
					hdr[0] = (uint8_t)((p[0] & 0xe0) | t);
				}
				fu_at = l->len;
				nl_add(l, hdr, hl);
				in_fu = true;
				fu_type = t;
			} else {
				CHECK(in_fu && t == fu_type);
			}
			nl_grow(l, fu_at, p + hl + 1, n - hl - 1);
			if (e)
				in_fu = false;
		} else {
			CHECK(h265 ? type < 48 : type != 0 && type < 24);
			CHECK(!in_fu);
			nl_add(l, p, n);
		}
	}
	CHECK(!in_fu);
}

static uint8_t pbuf[4 * MAX_INPUT];
static struct cn_rtp_payload ptab[2 * MAX_INPUT];

static int pack(bool h265, const uint8_t *au, size_t len, int ls, const uint8_t *pre,
		size_t plen, int pls, size_t max, struct cn_rtp_payloads *o)
{
	return h265 ? cn_rtp_h265_packetize(au, len, ls, pre, plen, pls, max, o)
		    : cn_rtp_h264_packetize(au, len, ls, pre, plen, pls, max, o);
}

static void fuzz_packetize(bool h265, const uint8_t *p, size_t n)
{
	static const int sizes[4] = { 0, 1, 2, 4 };
	struct cn_rtp_payloads o;
	const uint8_t *pre = NULL, *au;
	size_t max, plen = 0, len, off;
	int ls, pls, rc, want_rc;

	if (n < 3)
		return;
	max = p[0] == 255 ? 65535 : 64 + (size_t)p[0] * 6;
	ls = sizes[p[1] & 3];
	pls = sizes[p[1] >> 2 & 3];
	au = p + 3;
	len = n - 3;
	if (p[2] != 0) {
		plen = (size_t)p[2] * 4 < len ? (size_t)p[2] * 4 : len;
		pre = au;
		au += plen;
		len -= plen;
	}

	want.len = got.len = 0;
	want.count = got.count = 0;
	want_rc = pre ? expect(h265, pre, plen, pls, &want) : 0;
	if (want_rc == 0)
		want_rc = expect(h265, au, len, ls, &want);

	/* One payload already there: the packetiser appends. */
	memset(&o, 0, sizeof(o));
	o.buf = pbuf;
	o.cap = sizeof(pbuf);
	o.pkts = ptab;
	o.max_pkts = (int)(sizeof(ptab) / sizeof(ptab[0]));
	memcpy(pbuf, "old", 3);
	o.used = 3;
	o.pkts[0].off = 0;
	o.pkts[0].len = 3;
	o.pkts[0].marker = true;
	o.npkts = 1;
	rc = pack(h265, au, len, ls, pre, plen, pls, max, &o);
	CHECK(rc == want_rc);
	CHECK(o.pkts[0].off == 0 && o.pkts[0].len == 3 && o.pkts[0].marker);
	CHECK(memcmp(pbuf, "old", 3) == 0);
	if (rc < 0) {
		CHECK(o.npkts == 1 && o.used == 3);
		return;
	}
	CHECK((o.npkts > 1) == (want.count > 0));
	off = 3;
	for (int i = 1; i < o.npkts; i++) {
		CHECK(o.pkts[i].off == off && o.pkts[i].len >= 1 && o.pkts[i].len <= max);
		CHECK(o.pkts[i].marker == (i == o.npkts - 1));
		off += o.pkts[i].len;
	}
	CHECK(off == o.used);
	depay(h265, &o, 1, &got);
	CHECK(got.count == want.count && got.len == want.len &&
	      memcmp(got.buf, want.buf, want.len) == 0);

	/* Too little room, in bytes or in rows: refused, nothing changed. */
	if (o.npkts > 1) {
		size_t used = o.used;
		int npkts = o.npkts;

		o.used = 3;
		o.npkts = 1;
		o.cap = 3 + (used - 3) / 2;
		if (o.cap < used) {
			CHECK(pack(h265, au, len, ls, pre, plen, pls, max, &o) == -ENOBUFS);
			CHECK(o.npkts == 1 && o.used == 3);
		}
		o.cap = sizeof(pbuf);
		o.max_pkts = npkts - 1;
		CHECK(pack(h265, au, len, ls, pre, plen, pls, max, &o) == -ENOBUFS);
		CHECK(o.npkts == 1 && o.used == 3);
		o.max_pkts = npkts;
		CHECK(pack(h265, au, len, ls, pre, plen, pls, max, &o) == 0);
		CHECK(o.npkts == npkts && o.used == used);
	}
}

/* ---- 4: decoder configuration records ---- */

static void walk_annexb(const uint8_t *p, size_t n)
{
	const uint8_t *nal;
	size_t pos = 0, prev = 0, len;
	int rc;

	while ((rc = cn_nal_next(p, n, 0, &pos, &nal, &len)) == 1) {
		CHECK(pos > prev && pos <= n && within(nal, len, p, pos) && len > 0);
		CHECK(nal[len - 1] != 0 && nal >= p + 3 && nal[-1] == 1 && nal[-2] == 0 &&
		      nal[-3] == 0);
		CHECK(memmem(nal, len, "\0\0\1", 3) == NULL);
		prev = pos;
	}
	CHECK(rc == 0 && pos >= prev);
}

static void fuzz_config(bool h265, const uint8_t *p, size_t n)
{
	static uint8_t out[2 * MAX_INPUT];
	int rc, rc2, ls = -1, ls2 = -1;

	rc = h265 ? cn_hvcc_to_annexb(p, n, out, sizeof(out), &ls)
		  : cn_avcc_to_annexb(p, n, out, sizeof(out), &ls);
	CHECK(rc >= 0 || rc == CN_E_MALFORMED);
	if (rc < 0) {
		CHECK(ls == -1);
		return;
	}
	CHECK(ls == 0 || ls == 1 || ls == 2 || ls == 4);
	CHECK((size_t)rc <= sizeof(out));
	if (ls == 0)
		CHECK((size_t)rc == n && memcmp(out, p, n) == 0);
	else
		CHECK((size_t)rc <= n + 2 * (n / 3)); /* 2 bytes of length become 4 of start code */
	walk_annexb(out, (size_t)rc);
	if (rc > 0) {
		rc2 = h265 ? cn_hvcc_to_annexb(p, n, out, (size_t)rc - 1, &ls2)
			   : cn_avcc_to_annexb(p, n, out, (size_t)rc - 1, &ls2);
		CHECK(rc2 == -ENOBUFS && ls2 == -1);
	}
}

/* ---- 5: NAL iteration ---- */

static void fuzz_nals(const uint8_t *p, size_t n)
{
	static const int sizes[] = { 1, 2, 3, 4 };
	const uint8_t *nal;
	size_t pos, prev, len, total;
	int rc;

	walk_annexb(p, n);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		pos = prev = total = 0;
		while ((rc = cn_nal_next(p, n, sizes[i], &pos, &nal, &len)) == 1) {
			CHECK(nal == p + prev + sizes[i] && len > 0 && pos == prev + sizes[i] + len);
			CHECK(pos <= n);
			total += sizes[i] + len;
			prev = pos;
		}
		if (sizes[i] == 3) {
			CHECK(rc == -EINVAL);
			continue;
		}
		CHECK(rc == 0 || rc == CN_E_MALFORMED);
		CHECK(pos == prev && total == prev);
		CHECK((rc == 0) == (prev == n));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > MAX_INPUT)
		return 0;
	switch (data[0] % 6) {
	case 0:
		fuzz_rtp(data + 1, size - 1);
		break;
	case 1:
		fuzz_rtcp(data + 1, size - 1);
		break;
	case 2:
	case 3:
		fuzz_packetize(data[0] % 6 == 3, data + 1, size - 1);
		break;
	case 4:
		fuzz_config(data[0] & 0x80, data + 1, size - 1);
		break;
	default:
		fuzz_nals(data + 1, size - 1);
		break;
	}
	return 0;
}
