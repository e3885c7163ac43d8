/* test_webrtc_recv.c: an offering (receiving) cn_webrtc peer against a sending one over loopback: ICE, DTLS, RTP in, NACK for a gap, PLI. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cn_buf.h"
#include "cn_dtls.h"
#include "cn_sdp.h"
#include "cn_test.h"
#include "cn_webrtc.h"

struct side {
	struct cn_wrtc_peer *p;
	bool gathered, secure, closed;
	int rtp, keyframes;
	uint16_t last_seq;
	uint16_t nacked[16];
	int nnacked;
};

static void on_gathered(struct cn_wrtc_peer *p, void *arg)
{
	(void)p;
	((struct side *)arg)->gathered = true;
}

static void on_secure(struct cn_wrtc_peer *p, void *arg)
{
	(void)p;
	((struct side *)arg)->secure = true;
}

static void on_closed(struct cn_wrtc_peer *p, void *arg, const char *reason)
{
	(void)p;
	(void)reason;
	((struct side *)arg)->closed = true;
}

static void on_keyframe(struct cn_wrtc_peer *p, void *arg)
{
	(void)p;
	((struct side *)arg)->keyframes++;
}

static void on_rtp(struct cn_wrtc_peer *p, void *arg, const struct cn_rtp_hdr *h, const uint8_t *pkt,
		   size_t len)
{
	struct side *s = arg;

	(void)p;
	(void)pkt;
	(void)len;
	s->rtp++;
	s->last_seq = h->seq;
}

static void on_nack(struct cn_wrtc_peer *p, void *arg, int track, const uint16_t *seqs, int n)
{
	struct side *s = arg;

	(void)p;
	(void)track;
	for (int i = 0; i < n && s->nnacked < 16; i++)
		s->nacked[s->nnacked++] = seqs[i];
}

/* Runs the default context until *flag or timeout_ms. */
static bool run_until(bool *flag, int *count, int want, int timeout_ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	while (!(flag ? *flag : *count >= want) && g_get_monotonic_time() < end)
		g_main_context_iteration(NULL, FALSE), g_usleep(1000);
	return flag ? *flag : *count >= want;
}

static void hex_fp(const uint8_t fp[32], char out[96])
{
	static const char hex[] = "0123456789ABCDEF";

	for (int i = 0; i < 32; i++) {
		out[i * 3] = hex[fp[i] >> 4];
		out[i * 3 + 1] = hex[fp[i] & 15];
		out[i * 3 + 2] = i < 31 ? ':' : '\0';
	}
}

TEST(webrtc_offerer_receives_nacks_and_plis)
{
	struct cn_dtls_cert *c1 = NULL, *c2 = NULL;
	struct cn_wrtc_conf conf = { .addresses = "127.0.0.1", .timeout_ms = 10000 };
	struct side rx = { 0 }, tx = { 0 };
	const struct cn_wrtc_events rx_ev = { .gathered = on_gathered, .secure = on_secure,
					      .closed = on_closed, .rtp = on_rtp };
	const struct cn_wrtc_events tx_ev = { .gathered = on_gathered, .secure = on_secure,
					      .closed = on_closed, .keyframe = on_keyframe,
					      .nack = on_nack };
	struct cn_sdp *offer = calloc(1, sizeof(*offer)), *answer = calloc(1, sizeof(*answer));
	struct cn_sdp_answer *t = calloc(1, sizeof(*t)), *a = calloc(1, sizeof(*a));
	struct cn_buf text;
	char err[300], fp[96];
	uint32_t ssrc = 0;

	cn_buf_init(&text, 64 * 1024);
	CHECK(offer && answer && t && a);
	CHECK_INT(cn_dtls_cert_new(&c1), 0);
	CHECK_INT(cn_dtls_cert_new(&c2), 0);
	if (!offer || !answer || !t || !a || !c1 || !c2)
		goto out;
	CHECK_INT(cn_wrtc_offerer_new(g_main_context_default(), &conf, c1, &rx_ev, &rx, &rx.p, err,
				      sizeof(err)), 0);
	if (!rx.p || !run_until(&rx.gathered, NULL, 0, 5000)) {
		CHECK(!"the offerer gathered");
		goto out;
	}
	/* the offer, as the relay's SFU writes it (one H.264 format) */
	cn_wrtc_local(rx.p, t);
	CHECK_INT(t->setup, CN_SDP_SETUP_ACTPASS);
	hex_fp(t->fingerprint, fp);
	cn_buf_printf(&text,
		      "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
		      "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n"
		      "a=rtcp-mux\r\na=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\n"
		      "a=setup:actpass\r\na=rtpmap:96 H264/90000\r\n"
		      "a=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n"
		      "a=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n",
		      t->ice_ufrag, t->ice_pwd, fp);
	for (int i = 0; i < t->ncandidates; i++)
		cn_buf_printf(&text, "a=%s\r\n", t->candidates[i]);
	cn_buf_append_str(&text, "a=end-of-candidates\r\n");
	CHECK_INT(cn_sdp_parse(text.data, text.len, offer, err, sizeof(err)), 0);
	/* the answering sender, as the edge is */
	CHECK_INT(cn_wrtc_peer_new(g_main_context_default(), &conf, c2, &offer->media[0], &tx_ev, &tx,
				   &tx.p, err, sizeof(err)), 0);
	if (!tx.p || !run_until(&tx.gathered, NULL, 0, 5000)) {
		CHECK(!"the answerer gathered");
		goto out;
	}
	a->session_id = 2;
	a->session_version = 1;
	cn_wrtc_local(tx.p, a);
	a->media[0].accepted = true;
	a->media[0].format = 0;
	a->media[0].fb = CN_SDP_FB_NACK | CN_SDP_FB_PLI;
	a->media[0].dir = CN_SDP_SENDONLY;
	int track = cn_wrtc_add_track(tx.p, 96, 90000, false, 0, &ssrc);
	CHECK_INT(track, 0);
	a->media[0].ssrc = ssrc;
	cn_strlcpy(a->media[0].cname, "t", sizeof(a->media[0].cname));
	cn_buf_reset(&text);
	CHECK_INT(cn_sdp_write_answer(offer, a, &text), 0);
	CHECK_INT(cn_sdp_parse(text.data, text.len, answer, err, sizeof(err)), 0);
	CHECK_INT(cn_wrtc_set_answer(rx.p, &answer->media[0], err, sizeof(err)), 0);
	CHECK_INT(cn_wrtc_set_answer(rx.p, &answer->media[0], err, sizeof(err)), -EALREADY);
	if (!run_until(&rx.secure, NULL, 0, 8000) || !run_until(&tx.secure, NULL, 0, 2000)) {
		CHECK(!"both sides secure");
		goto out;
	}
	/* 100, 101, then 104: 102 and 103 are missing, NACKed once */
	static const uint8_t payload[] = { 0x65, 1, 2, 3, 4, 5, 6, 7 };
	uint16_t seqs[] = { 100, 101, 104, 105 };
	for (int i = 0; i < 4; i++)
		CHECK_INT(cn_wrtc_send_rtp(tx.p, track, i == 3, seqs[i], 9000, payload, sizeof(payload), false), 1);
	CHECK(run_until(NULL, &rx.rtp, 4, 3000));
	CHECK_INT(rx.last_seq, 105);
	CHECK(run_until(NULL, &tx.nnacked, 2, 3000));
	CHECK_INT(tx.nnacked, 2);
	CHECK_INT(tx.nacked[0], 102);
	CHECK_INT(tx.nacked[1], 103);
	/* the late packet fills its gap: no new NACK */
	CHECK_INT(cn_wrtc_send_rtp(tx.p, track, false, 102, 9000, payload, sizeof(payload), true), 1);
	CHECK(run_until(NULL, &rx.rtp, 5, 3000));
	struct cn_wrtc_rx_stats st;
	cn_wrtc_get_rx_stats(rx.p, &st);
	CHECK_INT(st.ssrc, ssrc);
	CHECK_INT(st.packets, 5);
	CHECK_INT(st.nacked, 2);
	CHECK_INT(st.bad, 0);
	/* a keyframe request reaches the sender */
	CHECK_INT(cn_wrtc_request_keyframe(rx.p), 0);
	CHECK(run_until(NULL, &tx.keyframes, 1, 3000));
	cn_wrtc_get_rx_stats(rx.p, &st);
	CHECK_INT(st.plis, 1);
	CHECK(!rx.closed && !tx.closed);
out:
	cn_wrtc_peer_free(rx.p);
	cn_wrtc_peer_free(tx.p);
	cn_dtls_cert_free(c1);
	cn_dtls_cert_free(c2);
	cn_buf_free(&text);
	free(offer);
	free(answer);
	free(t);
	free(a);
}
