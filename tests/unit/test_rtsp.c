/* test_rtsp.c: the RTSP client codec (responses, Digest, framing, SDP) and the RTP depacketisers and SPS readers. */
#include <stdlib.h>

#include "cn_err.h"
#include "cn_rtp.h"
#include "cn_rtpdepay.h"
#include "cn_rtsp.h"
#include "cn_test.h"

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (; h[0] && h[1] && n < cap; h += 2) {
		unsigned v = 0;
		for (int i = 0; i < 2; i++) {
			char c = h[i];
			v = v * 16 + (unsigned)(c >= 'a' ? c - 'a' + 10 : c - '0');
		}
		out[n++] = (uint8_t)v;
	}
	return n;
}

TEST(rtsp_response_parse)
{
	static const char r[] = "RTSP/1.0 200 OK\r\n"
				"CSeq: 3\r\n"
				"Session: 12345678;timeout=30\r\n"
				"Content-Base: rtsp://cam/stream/\r\n"
				"Content-Length: 5\r\n"
				"\r\n"
				"v=0\r\n";
	struct cn_rtsp_msg m;

	CHECK_INT(cn_rtsp_parse_msg((const uint8_t *)r, sizeof(r) - 1, &m), 0);
	CHECK(!m.is_request);
	CHECK_INT(m.status, 200);
	CHECK(cn_str_eq_cstr(m.reason, "OK"));
	CHECK_INT(m.cseq, 3);
	CHECK(cn_str_eq_cstr(m.session, "12345678"));
	CHECK_INT(m.session_timeout, 30);
	CHECK(cn_str_eq_cstr(cn_rtsp_header(&m, "content-base"), "rtsp://cam/stream/"));
	CHECK_INT(m.body_len, 5);
	CHECK(memcmp(m.body, "v=0\r\n", 5) == 0);
	CHECK(cn_rtsp_header(&m, "x-none").p == NULL);

	/* LF-only lines, a request from the server */
	static const char q[] = "GET_PARAMETER rtsp://edge/ RTSP/1.0\nCSeq: 9\n\n";
	CHECK_INT(cn_rtsp_parse_msg((const uint8_t *)q, sizeof(q) - 1, &m), 0);
	CHECK(m.is_request);
	CHECK(cn_str_eq_cstr(m.method, "GET_PARAMETER"));
	CHECK_INT(m.cseq, 9);

	/* refusals */
	static const char *const bad[] = {
		"RTSP/1.0 20 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\n",
		"RTSP/1.0 200 OK\r\nCSeq: x\r\n\r\n",
		"RTSP/1.0 200 OK\r\nNoColon\r\n\r\n",
		"RTSP/1.0 200 OK\r\n folded: x\r\n\r\n",
		"RTSP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"RTSP/1.0 200 OK\r\nSession: ;timeout=3\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(cn_rtsp_parse_msg((const uint8_t *)bad[i], strlen(bad[i]), &m) < 0);
}

TEST(rtsp_transport_channels)
{
	int a = -1, b = -1;

	CHECK_INT(cn_rtsp_transport_channels(CN_STR("RTP/AVP/TCP;unicast;interleaved=4-5;ssrc=1"), &a, &b), 0);
	CHECK_INT(a, 4);
	CHECK_INT(b, 5);
	CHECK_INT(cn_rtsp_transport_channels(CN_STR("RTP/AVP/TCP;interleaved=7"), &a, &b), 0);
	CHECK_INT(a, 7);
	CHECK_INT(b, 8);
	CHECK_INT(cn_rtsp_transport_channels(CN_STR("RTP/AVP;unicast;client_port=1-2"), &a, &b), -ENOENT);
	CHECK(cn_rtsp_transport_channels(CN_STR("RTP/AVP/TCP;interleaved=300-301"), &a, &b) < 0);
}

/* Feeds a stream one byte at a time, then in two halves: the same chunks come out. */
TEST(rtsp_framing_split_across_reads)
{
	static const uint8_t stream[] = "$\x00\x00\x03" "abc"
					"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 2\r\n\r\nhi"
					"\x01\x02" /* junk */
					"$\x01\x00\x00";
	size_t n = sizeof(stream) - 1;
	uint8_t buf[256];
	size_t have = 0, pos = 0;
	int kinds[8], nk = 0;
	struct cn_rtsp_chunk ch;

	for (size_t i = 0; i < n; i++) {
		buf[have++] = stream[i];
		for (;;) {
			int rc = cn_rtsp_split(buf + pos, have - pos, &ch);
			CHECK(rc >= 0);
			if (rc <= 0)
				break;
			if (nk < 8)
				kinds[nk++] = (int)ch.kind;
			if (ch.kind == CN_RTSP_CHUNK_DATA && ch.channel == 0) {
				CHECK_INT(ch.data_len, 3);
				CHECK(memcmp(ch.data, "abc", 3) == 0);
			}
			if (ch.kind == CN_RTSP_CHUNK_MSG) {
				struct cn_rtsp_msg m;
				CHECK_INT(cn_rtsp_parse_msg(ch.data, ch.data_len, &m), 0);
				CHECK_INT(m.cseq, 2);
				CHECK_INT(m.body_len, 2);
			}
			pos += ch.len;
		}
	}
	CHECK_INT(pos, n);
	CHECK_INT(nk, 5); /* data, message, junk (one byte each: \x01, \x02), data */
	CHECK_INT(kinds[0], CN_RTSP_CHUNK_DATA);
	CHECK_INT(kinds[1], CN_RTSP_CHUNK_MSG);
	CHECK_INT(kinds[2], CN_RTSP_CHUNK_JUNK);
	CHECK_INT(kinds[4], CN_RTSP_CHUNK_DATA);
	/* a partial frame or head asks for more, consuming nothing */
	CHECK_INT(cn_rtsp_split((const uint8_t *)"$\x00\x00\x05" "ab", 6, &ch), 0);
	CHECK_INT(cn_rtsp_split((const uint8_t *)"RTS", 3, &ch), 0);
	CHECK_INT(cn_rtsp_split((const uint8_t *)"RTSP/1.0 200 OK\r\n", 17, &ch), 0);
	/* bounds */
	uint8_t *big = malloc(CN_RTSP_MAX_HEAD + 10);
	memcpy(big, "RTSP/1.0 200 OK\r\n", 17);
	memset(big + 17, 'a', CN_RTSP_MAX_HEAD - 7);
	CHECK_INT(cn_rtsp_split(big, CN_RTSP_MAX_HEAD + 10, &ch), CN_E_TOO_BIG);
	free(big);
	static const char huge[] = "RTSP/1.0 200 OK\r\nContent-Length: 99999999\r\n\r\n";
	CHECK_INT(cn_rtsp_split((const uint8_t *)huge, sizeof(huge) - 1, &ch), CN_E_TOO_BIG);
}

/* RFC 2617 section 3.5: the one published vector (qop=auth). */
TEST(rtsp_digest_rfc2617_vector)
{
	static const char r[] =
		"RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\n"
		"WWW-Authenticate: Basic realm=\"testrealm@host.com\"\r\n"
		"WWW-Authenticate: Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", "
		"nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"\r\n\r\n";
	struct cn_rtsp_msg m;
	struct cn_rtsp_auth a;
	char out[512];

	CHECK_INT(cn_rtsp_parse_msg((const uint8_t *)r, sizeof(r) - 1, &m), 0);
	CHECK_INT(cn_rtsp_auth_choose(&m, &a), 0);
	CHECK_INT(a.scheme, CN_RTSP_AUTH_DIGEST);
	CHECK_STR(a.realm, "testrealm@host.com");
	CHECK(a.qop_auth);
	CHECK(a.has_opaque);
	CHECK(cn_rtsp_auth_header(&a, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", "0a4f113b",
				  out, sizeof(out)) > 0);
	CHECK(strstr(out, "response=\"6629fae49393a05397450978507c4ef1\"") != NULL);
	CHECK(strstr(out, "nc=00000001") != NULL);
	CHECK(strstr(out, "cnonce=\"0a4f113b\"") != NULL);
	CHECK(strstr(out, "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"") != NULL);
	/* the nonce count goes up with each use */
	CHECK(cn_rtsp_auth_header(&a, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", "0a4f113b",
				  out, sizeof(out)) > 0);
	CHECK(strstr(out, "nc=00000002") != NULL);

	/* Without qop (RFC 2069 form, what most cameras send); expected value from Python's
	 * hashlib: MD5(MD5(user:realm:pass):nonce:MD5(method:uri)). */
	CHECK_INT(cn_rtsp_auth_parse(CN_STR("Digest realm=\"testrealm@host.com\", "
					    "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\""), &a), 0);
	CHECK(!a.qop_auth);
	CHECK(cn_rtsp_auth_header(&a, "Mufasa", "Circle Of Life", "DESCRIBE", "rtsp://cam/x", "x",
				  out, sizeof(out)) > 0);
	CHECK(strstr(out, "response=\"39c471c69d67bb47c3244c0cdc859d92\"") != NULL);
	CHECK(strstr(out, "qop") == NULL);

	/* Basic: base64 of user:pass */
	CHECK_INT(cn_rtsp_auth_parse(CN_STR("Basic realm=\"cam\""), &a), 0);
	CHECK(cn_rtsp_auth_header(&a, "Aladdin", "open sesame", "DESCRIBE", "rtsp://x/", "", out,
				  sizeof(out)) > 0);
	CHECK_STR(out, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");

	/* refusals */
	CHECK_INT(cn_rtsp_auth_parse(CN_STR("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256"), &a), -ENOTSUP);
	CHECK_INT(cn_rtsp_auth_parse(CN_STR("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""), &a), -ENOTSUP);
	CHECK_INT(cn_rtsp_auth_parse(CN_STR("Digest realm=\"r\""), &a), CN_E_MALFORMED);
	CHECK_INT(cn_rtsp_auth_parse(CN_STR("Digest realm=\"unterminated"), &a), CN_E_MALFORMED);
	CHECK_INT(cn_rtsp_auth_parse(CN_STR("Bearer x"), &a), -ENOTSUP);
	CHECK_INT(cn_rtsp_auth_parse(CN_STR("Digest realm=\"r\", nonce=\"n\""), &a), 0);
	CHECK_INT(cn_rtsp_auth_header(&a, "bad\"user", "p", "DESCRIBE", "rtsp://x/", "c", out, sizeof(out)), -EINVAL);
}

TEST(rtsp_request_writer)
{
	char out[512];
	int n = cn_rtsp_write_request(out, sizeof(out), "SETUP", "rtsp://cam/s/trackID=1", 4, "abc",
				      "Digest x", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n");

	CHECK(n > 0);
	CHECK_STR(out, "SETUP rtsp://cam/s/trackID=1 RTSP/1.0\r\nCSeq: 4\r\nUser-Agent: canopy-edge\r\n"
		       "Session: abc\r\nAuthorization: Digest x\r\n"
		       "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n");
	CHECK_INT(cn_rtsp_write_request(out, sizeof(out), "PLAY", "rtsp://cam/ x", 1, NULL, NULL, NULL), -EINVAL);
	CHECK_INT(cn_rtsp_write_request(out, sizeof(out), "PLAY", "rtsp://cam/", 1, "a\r\nX: y", NULL, NULL), -EINVAL);
	CHECK_INT(cn_rtsp_write_request(out, 20, "PLAY", "rtsp://cam/", 1, NULL, NULL, NULL), -ENOBUFS);
}

TEST(rtsp_sdp_and_control_urls)
{
	static const char sdp[] =
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\na=control:*\r\n"
		"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
		"a=fmtp:96 packetization-mode=1;profile-level-id=42e01f;sprop-parameter-sets=Z0LAH9kAUAW7ARAAAAMAEAAAAwMg8YMZYA==,aOvjyyLA\r\n"
		"a=control:trackID=1\r\n"
		"m=audio 0 RTP/AVP 0\r\na=control:rtsp://other/abs/track2\n";
	struct cn_rtsp_sdp *s = malloc(sizeof(*s));
	char url[256];

	CHECK_INT(cn_rtsp_sdp_parse(sdp, sizeof(sdp) - 1, s), 0);
	CHECK_INT(s->nmedia, 2);
	CHECK_STR(s->control, "*");
	CHECK_STR(s->media[0].kind, "video");
	CHECK_INT(s->media[0].pt, 96);
	CHECK_STR(s->media[0].encoding, "H264");
	CHECK_INT(s->media[0].clock, 90000);
	CHECK_STR(s->media[0].control, "trackID=1");
	CHECK_STR(s->media[1].encoding, "PCMU"); /* static payload type 0 */
	CHECK_INT(s->media[1].clock, 8000);
	struct cn_str v = cn_rtsp_fmtp_param(s->media[0].fmtp, "packetization-mode");
	CHECK(cn_str_eq_cstr(v, "1"));
	v = cn_rtsp_fmtp_param(s->media[0].fmtp, "sprop-parameter-sets");
	uint8_t ps[128];
	int n = cn_sprop_to_annexb(v.p, v.len, ps, sizeof(ps));
	CHECK(n > 8);
	CHECK(memcmp(ps, "\0\0\0\1\x67", 5) == 0);

	CHECK_INT(cn_rtsp_control_url("rtsp://cam/s/", "trackID=1", url, sizeof(url)), 0);
	CHECK_STR(url, "rtsp://cam/s/trackID=1");
	CHECK_INT(cn_rtsp_control_url("rtsp://cam/s", "trackID=1", url, sizeof(url)), 0);
	CHECK_STR(url, "rtsp://cam/s/trackID=1");
	CHECK_INT(cn_rtsp_control_url("rtsp://cam/s", "*", url, sizeof(url)), 0);
	CHECK_STR(url, "rtsp://cam/s");
	CHECK_INT(cn_rtsp_control_url("rtsp://cam/s", "rtsp://other/abs/track2", url, sizeof(url)), 0);
	CHECK_STR(url, "rtsp://other/abs/track2");
	CHECK_INT(cn_rtsp_control_url("rtsp://cam/s", "trackID=1", url, 10), -ENOBUFS);

	CHECK_INT(cn_rtsp_sdp_parse("v=0\r\n", 5, s), CN_E_MALFORMED); /* no media */
	CHECK_INT(cn_rtsp_sdp_parse("v=0\r\nbogus\r\nm=video 0 RTP/AVP 96\r\n", 33, s), CN_E_MALFORMED);
	free(s);
}

TEST(sps_readers)
{
	uint8_t nal[128];
	struct cn_video_info vi;
	size_t n;

	n = unhex("6764001facd9405005bb011000000300100000030320f1831960", nal, sizeof(nal));
	CHECK_INT(cn_h264_sps_parse(nal, n, &vi), 0);
	CHECK_INT(vi.width, 1280);
	CHECK_INT(vi.height, 720);
	CHECK_INT(vi.profile, 100);
	CHECK_INT(vi.level, 31);
	/* 1080p: 1088 coded lines cropped to 1080 */
	n = unhex("67640028acd940780227e5c044000003000400000300c83c60c658", nal, sizeof(nal));
	CHECK_INT(cn_h264_sps_parse(nal, n, &vi), 0);
	CHECK_INT(vi.width, 1920);
	CHECK_INT(vi.height, 1080);
	n = unhex("42010101600000030090000003000003003fa00502016965959a4932bc05a02000000300200000030321", nal, sizeof(nal));
	CHECK_INT(cn_h265_sps_parse(nal, n, &vi), 0);
	CHECK_INT(vi.width, 640);
	CHECK_INT(vi.height, 360);
	CHECK_INT(vi.profile, 1);
	/* truncated input is refused, never read past (the sanitizer build checks) */
	n = unhex("6764001facd9405005bb011000000300100000030320f1831960", nal, sizeof(nal));
	for (size_t cut = 1; cut < n; cut++) {
		int rc = cn_h264_sps_parse(nal, cut, &vi);
		CHECK(cut >= 8 || rc == CN_E_MALFORMED);
	}
	CHECK(cn_h264_sps_parse((const uint8_t *)"\x68\x00\x00\x00", 4, &vi) < 0);
}

/* ---- depacketiser ---------------------------------------------------------------------- */

struct collected {
	uint8_t data[8192];
	size_t len;
	int aus;
	bool key;
	uint32_t ts;
};

static int collect(void *arg, const struct cn_depay_au *au)
{
	struct collected *c = arg;

	c->aus++;
	c->key = au->key;
	c->ts = au->ts;
	if (au->len <= sizeof(c->data)) {
		memcpy(c->data, au->data, au->len);
		c->len = au->len;
	}
	return 0;
}

static size_t rtp(uint8_t *out, uint16_t seq, uint32_t ts, bool marker, const uint8_t *pl, size_t n)
{
	int h = cn_rtp_write_header(out, 1500, marker, 96, seq, ts, 0x1234, 0, 0);
	memcpy(out + h, pl, n);
	return (size_t)h + n;
}

TEST(depay_h264_stap_fu_and_loss)
{
	struct cn_depay d;
	struct collected got = { 0 };
	uint8_t pkt[1600], pl[1500];
	static const uint8_t sps[] = { 0x67, 0x42, 0xc0, 0x1f, 0xd9 }, pps[] = { 0x68, 0xce, 0x3c, 0x80 };
	uint8_t idr[3000];
	size_t n;

	for (size_t i = 0; i < sizeof(idr); i++)
		idr[i] = (uint8_t)(i * 7 + 1);
	idr[0] = 0x65;
	CHECK_INT(cn_depay_init(&d, CN_DEPAY_H264, 1 << 20), 0);
	/* STAP-A with SPS and PPS */
	pl[0] = 24;
	pl[1] = 0, pl[2] = sizeof(sps);
	memcpy(pl + 3, sps, sizeof(sps));
	pl[3 + sizeof(sps)] = 0, pl[4 + sizeof(sps)] = sizeof(pps);
	memcpy(pl + 5 + sizeof(sps), pps, sizeof(pps));
	n = rtp(pkt, 100, 9000, false, pl, 5 + sizeof(sps) + sizeof(pps));
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	/* the IDR in three FU-A fragments */
	size_t off = 1;
	for (int f = 0; f < 3; f++) {
		size_t take = f < 2 ? 1000 : sizeof(idr) - off;
		pl[0] = (uint8_t)((idr[0] & 0xe0) | 28);
		pl[1] = (uint8_t)((f == 0 ? 0x80 : 0) | (f == 2 ? 0x40 : 0) | (idr[0] & 0x1f));
		memcpy(pl + 2, idr + off, take);
		off += take;
		n = rtp(pkt, (uint16_t)(101 + f), 9000, f == 2, pl, 2 + take);
		CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	}
	CHECK_INT(got.aus, 1);
	CHECK(got.key);
	CHECK_INT(got.ts, 9000);
	uint8_t want[4096];
	size_t w = 0;
	memcpy(want + w, "\0\0\0\1", 4), w += 4;
	memcpy(want + w, sps, sizeof(sps)), w += sizeof(sps);
	memcpy(want + w, "\0\0\0\1", 4), w += 4;
	memcpy(want + w, pps, sizeof(pps)), w += sizeof(pps);
	memcpy(want + w, "\0\0\0\1", 4), w += 4;
	memcpy(want + w, idr, sizeof(idr)), w += sizeof(idr);
	CHECK_INT(got.len, w);
	CHECK(memcmp(got.data, want, w) == 0);
	CHECK_INT(d.sps_len, sizeof(sps));
	CHECK_INT(d.pps_len, sizeof(pps));

	/* a P frame as a single NAL, ended by the next timestamp (no marker) */
	static const uint8_t p1[] = { 0x41, 0x9a, 0x01, 0x02 };
	n = rtp(pkt, 104, 12600, false, p1, sizeof(p1));
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	CHECK_INT(got.aus, 1);
	n = rtp(pkt, 105, 16200, true, p1, sizeof(p1));
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	CHECK_INT(got.aus, 3);
	CHECK(!got.key);
	CHECK_INT(got.len, 8);

	/* loss inside an FU: 106 start, 107 lost, 108 end: dropped, counted */
	pl[0] = 0x5c, pl[1] = 0x81, pl[2] = 1;
	n = rtp(pkt, 106, 19800, false, pl, 3);
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	pl[1] = 0x41;
	n = rtp(pkt, 108, 19800, true, pl, 3);
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	CHECK_INT(got.aus, 3);
	CHECK_INT(d.lost, 1);
	CHECK_INT(d.dropped, 1);
	/* a duplicate is ignored; the next frame is whole again */
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	n = rtp(pkt, 109, 23400, true, p1, sizeof(p1));
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	CHECK_INT(got.aus, 4);
	CHECK_INT(got.ts, 23400);
	/* an FU continuation without its start, a bad STAP-A length: dropped, not emitted */
	pl[0] = 0x5c, pl[1] = 0x01, pl[2] = 1;
	n = rtp(pkt, 110, 27000, true, pl, 3);
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	pl[0] = 24, pl[1] = 0, pl[2] = 50, pl[3] = 0x41;
	n = rtp(pkt, 111, 30600, true, pl, 4);
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	CHECK_INT(got.aus, 4);
	CHECK_INT(d.dropped, 3);
	CHECK_INT(cn_depay_push(&d, (const uint8_t *)"\x80", 1, collect, &got), CN_E_MALFORMED);
	cn_depay_free(&d);

	/* an access unit bigger than the maximum is dropped */
	CHECK_INT(cn_depay_init(&d, CN_DEPAY_H264, 100), 0);
	got.aus = 0;
	n = rtp(pkt, 1, 0, true, idr, 500);
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	CHECK_INT(got.aus, 0);
	CHECK_INT(d.dropped, 1);
	cn_depay_free(&d);
}

TEST(depay_h265_ap_fu_and_g711)
{
	struct cn_depay d;
	struct collected got = { 0 };
	uint8_t pkt[1600], pl[1500];
	size_t n;
	static const uint8_t vps[] = { 0x40, 0x01, 0x0c }, idr[] = { 0x26, 0x01, 0xaf, 0x10, 0x20 };

	CHECK_INT(cn_depay_init(&d, CN_DEPAY_H265, 1 << 20), 0);
	/* AP (type 48) with the VPS */
	pl[0] = 48 << 1, pl[1] = 1, pl[2] = 0, pl[3] = sizeof(vps);
	memcpy(pl + 4, vps, sizeof(vps));
	n = rtp(pkt, 7, 100, false, pl, 4 + sizeof(vps));
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	/* an IDR_W_RADL (19) in two FUs */
	pl[0] = 49 << 1, pl[1] = 1, pl[2] = 0x80 | 19, pl[3] = 0xaf, pl[4] = 0x10;
	n = rtp(pkt, 8, 100, false, pl, 5);
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	pl[2] = 0x40 | 19, pl[3] = 0x20;
	n = rtp(pkt, 9, 100, true, pl, 4);
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	CHECK_INT(got.aus, 1);
	CHECK(got.key);
	CHECK_INT(got.len, 4 + sizeof(vps) + 4 + sizeof(idr));
	CHECK(memcmp(got.data + 4 + sizeof(vps) + 4, idr, sizeof(idr)) == 0);
	CHECK_INT(d.vps_len, sizeof(vps));
	cn_depay_free(&d);

	CHECK_INT(cn_depay_init(&d, CN_DEPAY_G711, 0), 0);
	memset(pl, 0xd5, 160);
	n = rtp(pkt, 1, 160, false, pl, 160);
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	n = rtp(pkt, 3, 480, false, pl, 160);
	CHECK_INT(cn_depay_push(&d, pkt, n, collect, &got), 0);
	CHECK_INT(got.aus, 3);
	CHECK_INT(got.ts, 480);
	CHECK_INT(got.len, 160);
	CHECK_INT(d.lost, 1);
	cn_depay_free(&d);
}
