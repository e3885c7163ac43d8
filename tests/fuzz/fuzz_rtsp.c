/* fuzz_rtsp.c: libFuzzer harness for the RTSP client codec (framing, responses, auth, SDP) and the RTP depacketisers. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_err.h"
#include "cn_rtpdepay.h"
#include "cn_rtsp.h"
#include "fuzz_check.h"

/*
 * The first byte picks what the rest of the input is:
 * 0 a TCP byte stream from a camera, cut into reads at the bytes the next byte gives:
 *   split into chunks (each consumes at least one byte and lies inside the input), every
 *   message parsed, its challenges turned into Authorization values;
 * 1 a DESCRIBE body: SDP, control URLs, fmtp parameters, sprop parameter sets, SPS;
 * 2, 3, 4 RTP packets for the H.264 / H.265 / G.711 depacketiser, each prefixed with a
 *   2-byte length: every access unit is within the bound and video ones are Annex B;
 * 5 an SPS for both readers.
 */

#define MAX_INPUT 65536
#define MAX_AU 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_msg(const uint8_t *p, size_t n)
{
	struct cn_rtsp_msg m;
	struct cn_rtsp_auth a;
	char out[2048];
	int rtp, rtcp;

	if (cn_rtsp_parse_msg(p, n, &m) < 0)
		return;
	CHECK(m.nheaders >= 0 && m.nheaders <= CN_RTSP_MAX_HEADERS);
	CHECK(m.body + m.body_len <= p + n);
	CHECK(m.is_request || (m.status >= 100 && m.status <= 999));
	for (int i = 0; i < m.nheaders; i++) {
		CHECK((const uint8_t *)m.headers[i].name.p >= p);
		CHECK((const uint8_t *)m.headers[i].value.p + m.headers[i].value.len <= p + n);
	}
	if (cn_rtsp_transport_channels(cn_rtsp_header(&m, "transport"), &rtp, &rtcp) == 0)
		CHECK(rtp >= 0 && rtp <= 255 && rtcp >= 0 && rtcp <= 255);
	if (cn_rtsp_auth_choose(&m, &a) == 0) {
		CHECK(a.scheme == CN_RTSP_AUTH_BASIC || a.scheme == CN_RTSP_AUTH_DIGEST);
		CHECK(memchr(a.nonce, '\0', sizeof(a.nonce)) && memchr(a.realm, '\0', sizeof(a.realm)));
		int len = cn_rtsp_auth_header(&a, "admin", "pass", "DESCRIBE", "rtsp://cam/x", "0a4f113b",
					      out, sizeof(out));
		CHECK(len == -ENOBUFS || len == -EINVAL || (len > 0 && (size_t)len == strlen(out)));
	}
}

static void fuzz_stream(const uint8_t *p, size_t n)
{
	size_t have, pos = 0, step;
	struct cn_rtsp_chunk ch;

	if (n < 1)
		return;
	step = (size_t)p[0] * 7 + 1; /* bytes per simulated read */
	p++, n--;
	for (have = step < n ? step : n;; have = have + step < n ? have + step : n) {
		for (;;) {
			int rc = cn_rtsp_split(p + pos, have - pos, &ch);
			if (rc < 0)
				return;
			if (rc == 0)
				break;
			CHECK(ch.len > 0 && ch.len <= have - pos);
			if (ch.kind == CN_RTSP_CHUNK_DATA)
				CHECK(ch.data == p + pos + 4 && ch.data_len + 4 == ch.len);
			if (ch.kind == CN_RTSP_CHUNK_MSG) {
				CHECK(ch.data == p + pos && ch.data_len == ch.len);
				check_msg(ch.data, ch.data_len);
			}
			pos += ch.len;
		}
		if (have == n)
			break;
	}
}

static void fuzz_sdp(const uint8_t *p, size_t n)
{
	struct cn_rtsp_sdp *s = malloc(sizeof(*s));
	char url[1024];
	uint8_t ps[4096];

	if (!s)
		return;
	if (cn_rtsp_sdp_parse((const char *)p, n, s) == 0) {
		CHECK(s->nmedia >= 1 && s->nmedia <= CN_RTSP_SDP_MAX_MEDIA);
		for (int i = 0; i < s->nmedia; i++) {
			struct cn_rtsp_media *m = &s->media[i];
			CHECK(memchr(m->control, '\0', sizeof(m->control)));
			CHECK(memchr(m->fmtp, '\0', sizeof(m->fmtp)));
			CHECK(memchr(m->encoding, '\0', sizeof(m->encoding)));
			if (cn_rtsp_control_url("rtsp://cam/base", m->control, url, sizeof(url)) == 0)
				CHECK(strlen(url) < sizeof(url));
			static const char *const names[] = { "sprop-parameter-sets", "sprop-vps", "sprop-sps",
							     "packetization-mode" };
			for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
				struct cn_str v = cn_rtsp_fmtp_param(m->fmtp, names[k]);
				if (!v.len)
					continue;
				CHECK(v.p >= m->fmtp && v.p + v.len <= m->fmtp + sizeof(m->fmtp));
				int len = cn_sprop_to_annexb(v.p, v.len, ps, sizeof(ps));
				CHECK(len < 0 || (size_t)len <= sizeof(ps));
				if (len > 4) {
					struct cn_video_info vi;
					if (cn_h264_sps_parse(ps + 4, (size_t)len - 4, &vi) == 0)
						CHECK(vi.width > 0 && vi.height > 0);
				}
			}
		}
	}
	free(s);
}

struct au_check {
	enum cn_depay_codec codec;
	int aus;
};

static int on_au(void *arg, const struct cn_depay_au *au)
{
	struct au_check *c = arg;

	c->aus++;
	CHECK(au->len > 0 && au->len <= (c->codec == CN_DEPAY_G711 ? MAX_INPUT : MAX_AU));
	if (c->codec != CN_DEPAY_G711)
		CHECK(au->len >= 5 && memcmp(au->data, "\0\0\0\1", 4) == 0);
	/* touch every byte (ASan sees a bad range) */
	volatile uint8_t x = 0;
	for (size_t i = 0; i < au->len; i++)
		x ^= au->data[i];
	(void)x;
	return 0;
}

static void fuzz_depay(enum cn_depay_codec codec, const uint8_t *p, size_t n)
{
	struct cn_depay d;
	struct au_check c = { codec, 0 };
	size_t i = 0;

	if (cn_depay_init(&d, codec, MAX_AU) < 0)
		return;
	while (i + 2 <= n) {
		size_t len = (size_t)p[i] << 8 | p[i + 1];
		i += 2;
		if (len > n - i)
			len = n - i;
		int rc = cn_depay_push(&d, p + i, len, on_au, &c);
		CHECK(rc == 0 || rc == CN_E_MALFORMED);
		i += len;
	}
	CHECK(d.len <= d.cap && d.cap <= MAX_AU);
	CHECK(d.sps_len <= CN_DEPAY_MAX_PS && d.pps_len <= CN_DEPAY_MAX_PS && d.vps_len <= CN_DEPAY_MAX_PS);
	cn_depay_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cn_video_info vi;

	if (size < 1 || size > MAX_INPUT)
		return 0;
	switch (data[0] % 6) {
	case 0:
		fuzz_stream(data + 1, size - 1);
		break;
	case 1:
		fuzz_sdp(data + 1, size - 1);
		break;
	case 2:
		fuzz_depay(CN_DEPAY_H264, data + 1, size - 1);
		break;
	case 3:
		fuzz_depay(CN_DEPAY_H265, data + 1, size - 1);
		break;
	case 4:
		fuzz_depay(CN_DEPAY_G711, data + 1, size - 1);
		break;
	default:
		if (cn_h264_sps_parse(data + 1, size - 1, &vi) == 0)
			CHECK(vi.width > 0 && vi.width <= 16384 && vi.height > 0 && vi.height <= 16384);
		if (cn_h265_sps_parse(data + 1, size - 1, &vi) == 0)
			CHECK(vi.width > 0 && vi.width <= 16384 && vi.height > 0 && vi.height <= 16384);
		break;
	}
	return 0;
}
