/* cn_webrtc.c: a WebRTC peer: libnice agent, DTLS-SRTP, RTP out with RTCP feedback in, or RTP in (offerer) with reports, NACK, PLI out. */
#include "cn_webrtc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nice/agent.h>

#include "cn_buf.h"
#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_log.h"
#include "cn_srtp_tx.h"
#include "cn_time.h"

#define PKT_MAX (CN_RTP_HEADER_MIN + 8 + CN_WRTC_MAX_PAYLOAD + CN_SRTP_OVERHEAD)
#define RTCP_INTERVAL_MS 1000
/* The answer waits for our candidates; an unreachable STUN or TURN server must not hold
 * it for libnice's full retransmission schedule. */
#define GATHER_DEADLINE_MS 3000
/* A receiver NACKs a gap at most this long (packets): beyond it a keyframe is cheaper. */
#define RX_NACK_MAX_GAP 128
/* A sequence jump this large is a restarted source, not loss (RFC 3550 A.1 MAX_DROPOUT). */
#define RX_MAX_DROPOUT 3000

struct rtx_slot {
	uint16_t seq;
	uint16_t len; /* 0: empty */
	uint8_t data[CN_RTP_HEADER_MIN + 8 + CN_WRTC_MAX_PAYLOAD];
};

struct track {
	uint8_t pt;
	uint32_t clock;
	uint32_t ssrc;
	int abs_id;
	uint16_t seq;
	uint32_t last_ts;
	int64_t last_ts_wall_us; /* when last_ts was sent: for the SR's RTP time */
	uint32_t packets, octets;
	struct rtx_slot *rtx; /* CN_WRTC_RTX_SLOTS, or NULL without NACK */
};

/* The receiving side of an offerer (RFC 3550 A.1, A.3, A.8 bookkeeping). */
struct rx_state {
	bool on;           /* this peer is an offerer: receives */
	bool answered;     /* cn_wrtc_set_answer done */
	bool started;      /* first packet seen */
	uint32_t our_ssrc; /* sender SSRC of our RTCP */
	uint32_t clock;
	uint16_t max_seq;
	uint32_t cycles;
	uint32_t base_seq;
	uint32_t expected_prior, received_prior;
	uint64_t received; /* in-sequence accounting, retransmissions excluded */
	int64_t transit;
	bool have_transit;
	double jitter;
	uint32_t last_sr;       /* middle 32 bits of the last SR's NTP time */
	int64_t last_sr_mono_us;
	struct cn_wrtc_rx_stats st;
};

struct cn_wrtc_peer {
	GMainContext *ctx;
	NiceAgent *agent;
	guint stream;
	struct cn_wrtc_events ev;
	void *arg;
	enum cn_wrtc_state state;
	const struct cn_dtls_cert *cert;
	struct cn_dtls *dtls;
	struct cn_srtp *srtp;
	struct cn_srtp_tx *srtp_tx; /* forwarding (cn_wrtc_send_rtp): OpenSSL, when the profile allows */
	bool dtls_active;
	char remote_ufrag[64];
	char local_ufrag[64], local_pwd[160];
	int ncand;
	char cand[CN_SDP_MAX_CANDIDATES][CN_SDP_CANDIDATE_LEN];
	int ntracks;
	struct track tracks[CN_WRTC_MAX_TRACKS];
	struct cn_wrtc_stats st;
	int64_t timeout_ms;
	int64_t last_rx_mono;
	guint tick;       /* liveness and RTCP */
	guint dtls_timer;
	guint close_idle;
	guint gathered_idle;
	guint gather_deadline;
	bool gathered; /* told the owner (once) */
	char close_reason[200];
	struct rx_state rx;
};

const char *cn_wrtc_state_name(enum cn_wrtc_state s)
{
	static const char *const names[] = { "gathering", "checking", "connected", "secure", "closed" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

static gboolean close_idle_cb(gpointer data)
{
	struct cn_wrtc_peer *p = data;

	p->close_idle = 0;
	if (p->ev.closed)
		p->ev.closed(p, p->arg, p->close_reason);
	return G_SOURCE_REMOVE;
}

/* Marks the peer closed and tells the owner from an idle source, so no caller up the
 * stack (libnice, our own handlers) touches a freed peer. */
static void peer_close(struct cn_wrtc_peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void peer_close(struct cn_wrtc_peer *p, const char *fmt, ...)
{
	va_list ap;

	if (p->state == CN_WRTC_CLOSED)
		return;
	p->state = CN_WRTC_CLOSED;
	va_start(ap, fmt);
	vsnprintf(p->close_reason, sizeof(p->close_reason), fmt, ap);
	va_end(ap);
	GSource *s = g_idle_source_new();
	g_source_set_callback(s, close_idle_cb, p, NULL);
	p->close_idle = g_source_attach(s, p->ctx);
	g_source_unref(s);
}

static void send_datagram(struct cn_wrtc_peer *p, const uint8_t *buf, size_t len)
{
	if (nice_agent_send(p->agent, p->stream, 1, (guint)len, (const gchar *)buf) < 0)
		p->st.send_errors++;
}

static void dtls_send(void *arg, const uint8_t *buf, size_t len)
{
	send_datagram(arg, buf, len);
}

static gboolean dtls_timer_cb(gpointer data);

static void arm_dtls_timer(struct cn_wrtc_peer *p)
{
	if (p->dtls_timer) {
		GSource *old = g_main_context_find_source_by_id(p->ctx, p->dtls_timer);
		if (old)
			g_source_destroy(old);
		p->dtls_timer = 0;
	}
	int64_t ms = p->dtls ? cn_dtls_next_timeout_ms(p->dtls) : -1;
	if (ms < 0)
		return;
	GSource *s = g_timeout_source_new((guint)(ms < 1 ? 1 : ms));
	g_source_set_callback(s, dtls_timer_cb, p, NULL);
	p->dtls_timer = g_source_attach(s, p->ctx);
	g_source_unref(s);
}

static gboolean dtls_timer_cb(gpointer data)
{
	struct cn_wrtc_peer *p = data;

	p->dtls_timer = 0;
	if (p->state == CN_WRTC_CLOSED || !p->dtls)
		return G_SOURCE_REMOVE;
	if (cn_dtls_timeout(p->dtls) < 0) {
		peer_close(p, "DTLS handshake timed out");
		return G_SOURCE_REMOVE;
	}
	arm_dtls_timer(p);
	return G_SOURCE_REMOVE;
}

static void become_secure(struct cn_wrtc_peer *p)
{
	struct cn_srtp_keys k;
	int rc;

	if ((rc = cn_dtls_srtp_keys(p->dtls, &k)) < 0 || (rc = cn_srtp_new(&k, &p->srtp)) < 0) {
		peer_close(p, "SRTP set-up failed: %s", cn_strerror(rc));
		return;
	}
	if (cn_srtp_tx_new(&k, &p->srtp_tx) < 0)
		p->srtp_tx = NULL; /* another profile: libsrtp does it all */
	memset(&k, 0, sizeof(k));
	p->state = CN_WRTC_SECURE;
	if (p->ev.secure)
		p->ev.secure(p, p->arg);
}

/* ---- RTCP in ------------------------------------------------------------------------- */

static struct track *track_by_ssrc(struct cn_wrtc_peer *p, uint32_t ssrc)
{
	for (int i = 0; i < p->ntracks; i++)
		if (p->tracks[i].ssrc == ssrc)
			return &p->tracks[i];
	return NULL;
}

static void resend(struct cn_wrtc_peer *p, struct track *t, uint16_t seq)
{
	struct rtx_slot *s;
	uint8_t buf[PKT_MAX];
	size_t len;

	p->st.nacks++;
	if (!t->rtx) {
		p->st.nack_misses++;
		return;
	}
	s = &t->rtx[seq % CN_WRTC_RTX_SLOTS];
	if (!s->len || s->seq != seq) {
		p->st.nack_misses++;
		return;
	}
	len = s->len;
	memcpy(buf, s->data, len);
	if (cn_srtp_protect_rtp(p->srtp, buf, &len, sizeof(buf)) < 0)
		return;
	send_datagram(p, buf, len);
	p->st.retransmits++;
	p->st.packets_sent++;
	p->st.bytes_sent += len;
}

/* Middle 32 bits of the NTP time now, as LSR and DLSR use. */
static uint32_t ntp_mid32_now(void)
{
	return (uint32_t)(cn_ntp_from_unix_us((uint64_t)cn_time_wall_ms() * 1000) >> 16);
}

static void handle_rtcp(struct cn_wrtc_peer *p, const uint8_t *buf, size_t n)
{
	struct cn_rtcp_pkt pkt;
	size_t pos = 0;
	int rc;

	p->st.rtcp_in++;
	while ((rc = cn_rtcp_next(buf, n, &pos, &pkt)) == 1) {
		uint32_t sender, media;
		switch (pkt.pt) {
		case CN_RTCP_SR:
		case CN_RTCP_RR: {
			struct cn_rtcp_report_block b[4];
			struct cn_rtcp_sr_info sri;
			int nb = 0;
			bool want_sr = p->rx.on && pkt.pt == CN_RTCP_SR;
			if (cn_rtcp_parse_report(&pkt, &sender, want_sr ? &sri : NULL, b, 4, &nb) < 0)
				goto bad;
			if (want_sr) {
				/* LSR/DLSR of our receiver reports (the sender's RTT) */
				p->rx.last_sr = (uint32_t)(sri.ntp >> 16);
				p->rx.last_sr_mono_us = g_get_monotonic_time();
			}
			for (int i = 0; i < nb; i++) {
				/* the first track (video) is what loss and congestion decisions use */
				if (!p->ntracks || b[i].ssrc != p->tracks[0].ssrc)
					continue;
				p->st.fraction_lost = b[i].fraction_lost;
				p->st.cumulative_lost = b[i].cumulative_lost;
				if (b[i].lsr) {
					int32_t d = (int32_t)(ntp_mid32_now() - b[i].lsr - b[i].dlsr);
					p->st.rtt_ms = d > 0 ? (int64_t)d * 1000 / 65536 : 0;
				}
			}
			break;
		}
		case CN_RTCP_RTPFB:
			if (pkt.count == 1) {
				uint16_t seqs[256];
				int ns = 0;
				struct track *t;
				if (cn_rtcp_parse_fb(&pkt, &sender, &media) < 0 ||
				    cn_rtcp_parse_nack(&pkt, seqs, 256, &ns) < 0)
					goto bad;
				if (!(t = track_by_ssrc(p, media)))
					break;
				if (p->ev.nack) {
					p->st.nacks += (uint64_t)ns;
					p->ev.nack(p, p->arg, (int)(t - p->tracks), seqs, ns);
					break;
				}
				for (int i = 0; i < ns; i++)
					resend(p, t, seqs[i]);
			}
			break;
		case CN_RTCP_PSFB:
			if (cn_rtcp_parse_fb(&pkt, &sender, &media) < 0)
				goto bad;
			if (pkt.count == 1 || pkt.count == 4) {
				uint8_t fir_seq;
				if (pkt.count == 1)
					p->st.plis++;
				else if (p->ntracks && cn_rtcp_parse_fir(&pkt, p->tracks[0].ssrc, &fir_seq) == 0)
					p->st.firs++;
				else
					break;
				if (p->ev.keyframe)
					p->ev.keyframe(p, p->arg);
			} else if (pkt.count == 15) {
				uint64_t bps;
				uint32_t ss[4];
				int nss;
				if (cn_rtcp_parse_remb(&pkt, &bps, ss, 4, &nss) == 0) {
					p->st.rembs++;
					p->st.remb_bps = bps;
				}
			}
			break;
		case CN_RTCP_BYE:
			peer_close(p, p->rx.on ? "the sender said goodbye (RTCP BYE)"
					       : "the viewer said goodbye (RTCP BYE)");
			return;
		default:
			break;
		}
	}
	if (rc == 0)
		return;
bad:
	p->st.rtcp_bad++;
}

/* ---- receiving (offerer) --------------------------------------------------------------- */

static void send_rtcp(struct cn_wrtc_peer *p, uint8_t *buf, size_t len, size_t cap)
{
	if (p->state == CN_WRTC_SECURE && cn_srtp_protect_rtcp(p->srtp, buf, &len, cap) == 0)
		send_datagram(p, buf, len);
}

static void send_nack(struct cn_wrtc_peer *p, const uint16_t *seqs, int n)
{
	uint8_t buf[512];
	int len = cn_rtcp_write_nack(buf, sizeof(buf) - CN_SRTP_OVERHEAD, p->rx.our_ssrc, p->rx.st.ssrc,
				     seqs, n);

	if (len > 0) {
		send_rtcp(p, buf, (size_t)len, sizeof(buf));
		p->rx.st.nacked += (uint64_t)n;
	}
}

/* Sequence bookkeeping (RFC 3550 A.1) and one NACK for each new gap. */
static void rx_account(struct cn_wrtc_peer *p, const struct cn_rtp_hdr *h)
{
	struct rx_state *r = &p->rx;
	uint16_t delta = (uint16_t)(h->seq - r->max_seq);

	if (!r->started || r->st.ssrc != h->ssrc) {
		r->started = true;
		r->st.ssrc = h->ssrc;
		r->max_seq = h->seq;
		r->base_seq = h->seq;
		r->cycles = 0;
		r->received = 1;
		r->expected_prior = r->received_prior = 0;
		r->have_transit = false;
		return;
	}
	if (delta == 0 || delta >= 0x8000) {
		/* a duplicate or a late packet (a retransmission we asked for): counted in
		 * packets, and it fills its gap; not in received: the gap was never loss */
		if (delta >= 0x8000)
			r->received++;
		return;
	}
	if (delta > RX_MAX_DROPOUT) {
		r->started = false; /* the source restarted: start over with it */
		rx_account(p, h);
		return;
	}
	if (delta > 1 && delta <= RX_NACK_MAX_GAP) {
		uint16_t seqs[RX_NACK_MAX_GAP];
		int n = 0;
		for (uint16_t s = (uint16_t)(r->max_seq + 1); s != h->seq; s++)
			seqs[n++] = s;
		send_nack(p, seqs, n);
	}
	if (h->seq < r->max_seq)
		r->cycles += 65536;
	r->max_seq = h->seq;
	r->received++;
	/* interarrival jitter (A.8), in RTP units */
	int64_t arrival = g_get_monotonic_time() * (int64_t)r->clock / 1000000;
	int64_t transit = arrival - (int64_t)h->ts;
	if (r->have_transit) {
		int64_t d = transit - r->transit;
		r->jitter += ((double)(d < 0 ? -d : d) - r->jitter) / 16.0;
	}
	r->transit = transit;
	r->have_transit = true;
}

static void handle_rtp_in(struct cn_wrtc_peer *p, const uint8_t *b, size_t len)
{
	uint8_t buf[1500];
	size_t n = len;
	struct cn_rtp_hdr h;

	if (n > sizeof(buf)) {
		p->rx.st.bad++;
		return;
	}
	memcpy(buf, b, n);
	if (cn_srtp_unprotect_rtp(p->srtp, buf, &n) < 0 || cn_rtp_parse(buf, n, &h) < 0) {
		p->rx.st.bad++;
		return;
	}
	p->rx.st.packets++;
	p->rx.st.bytes += n;
	rx_account(p, &h);
	if (p->ev.rtp)
		p->ev.rtp(p, p->arg, &h, buf, n);
}

/* A receiver report for the source every RTCP interval (RFC 3550 A.3). */
static void send_rr(struct cn_wrtc_peer *p)
{
	struct rx_state *r = &p->rx;
	struct cn_rtcp_report_block b = { 0 };
	uint8_t buf[256];
	int n;

	if (!r->started)
		return;
	uint32_t ext_max = r->cycles + r->max_seq;
	uint32_t expected = ext_max - r->base_seq + 1;
	int64_t lost = (int64_t)expected - (int64_t)r->received;
	uint32_t exp_int = expected - r->expected_prior;
	uint32_t rec_int = (uint32_t)r->received - r->received_prior;
	int64_t lost_int = (int64_t)exp_int - (int64_t)rec_int;

	r->expected_prior = expected;
	r->received_prior = (uint32_t)r->received;
	r->st.lost = lost;
	b.ssrc = r->st.ssrc;
	b.fraction_lost = exp_int == 0 || lost_int <= 0 ? 0 : (uint8_t)((lost_int << 8) / exp_int);
	b.cumulative_lost = lost > 0x7fffff ? 0x7fffff : lost < -0x800000 ? -0x800000 : (int32_t)lost;
	b.highest_seq = ext_max;
	b.jitter = (uint32_t)r->jitter;
	if (r->last_sr_mono_us) {
		b.lsr = r->last_sr;
		b.dlsr = (uint32_t)((g_get_monotonic_time() - r->last_sr_mono_us) * 65536 / 1000000);
	}
	if ((n = cn_rtcp_write_rr(buf, sizeof(buf) - CN_SRTP_OVERHEAD, r->our_ssrc, &b, 1)) < 0)
		return;
	size_t len = (size_t)n;
	if ((n = cn_rtcp_write_sdes_cname(buf + len, sizeof(buf) - len - CN_SRTP_OVERHEAD, r->our_ssrc,
					  "canopy")) < 0)
		return;
	send_rtcp(p, buf, len + (size_t)n, sizeof(buf));
}

int cn_wrtc_request_keyframe(struct cn_wrtc_peer *p)
{
	uint8_t buf[64];
	int n;

	if (!p->rx.on || p->state != CN_WRTC_SECURE || !p->rx.st.ssrc)
		return -EAGAIN;
	if ((n = cn_rtcp_write_pli(buf, sizeof(buf) - CN_SRTP_OVERHEAD, p->rx.our_ssrc, p->rx.st.ssrc)) < 0)
		return n;
	send_rtcp(p, buf, (size_t)n, sizeof(buf));
	p->rx.st.plis++;
	return 0;
}

void cn_wrtc_get_rx_stats(const struct cn_wrtc_peer *p, struct cn_wrtc_rx_stats *out)
{
	*out = p->rx.st;
}

/* ---- datagrams in ------------------------------------------------------------------- */

static void on_recv(NiceAgent *agent, guint stream, guint component, guint len, gchar *data,
		    gpointer user)
{
	struct cn_wrtc_peer *p = user;
	const uint8_t *b = (const uint8_t *)data;
	char err[200];

	(void)agent;
	(void)stream;
	(void)component;
	if (p->state == CN_WRTC_CLOSED || len == 0)
		return;
	p->last_rx_mono = cn_time_mono_ms();
	/* RFC 7983 demultiplexing; STUN never reaches us (libnice answers it). */
	if (b[0] >= 20 && b[0] <= 63) {
		if (!p->dtls)
			return;
		int rc = cn_dtls_input(p->dtls, b, len, err, sizeof(err));
		if (rc < 0) {
			peer_close(p, "%s", err);
			return;
		}
		arm_dtls_timer(p);
		if (rc == 1)
			become_secure(p);
	} else if (b[0] >= 128 && b[0] <= 191) {
		if (!p->srtp)
			return;
		if (!cn_rtp_is_rtcp(b, len)) {
			if (p->rx.on)
				handle_rtp_in(p, b, len);
			return; /* a recvonly viewer sends no media */
		}
		uint8_t buf[1500];
		size_t n = len;
		if (n > sizeof(buf)) {
			p->st.rtcp_bad++;
			return;
		}
		memcpy(buf, b, n);
		if (cn_srtp_unprotect_rtcp(p->srtp, buf, &n) < 0) {
			p->st.rtcp_bad++;
			return;
		}
		handle_rtcp(p, buf, n);
	}
}

static void on_state(NiceAgent *agent, guint stream, guint component, guint state, gpointer user)
{
	struct cn_wrtc_peer *p = user;

	(void)agent;
	(void)stream;
	(void)component;
	if (p->state == CN_WRTC_CLOSED)
		return;
	if (state == NICE_COMPONENT_STATE_FAILED) {
		peer_close(p, p->state >= CN_WRTC_CONNECTED ? "ICE consent lost"
							     : "ICE failed: no candidate pair works");
		return;
	}
	if ((state == NICE_COMPONENT_STATE_CONNECTED || state == NICE_COMPONENT_STATE_READY) &&
	    p->state < CN_WRTC_CONNECTED) {
		p->state = CN_WRTC_CONNECTED;
		if (p->dtls_active) {
			if (cn_dtls_start(p->dtls) < 0) {
				peer_close(p, "DTLS handshake could not start");
				return;
			}
			arm_dtls_timer(p);
		}
	}
}

static gboolean gathered_idle_cb(gpointer data)
{
	struct cn_wrtc_peer *p = data;

	p->gathered_idle = 0;
	if (p->state != CN_WRTC_CLOSED && p->ev.gathered)
		p->ev.gathered(p, p->arg);
	return G_SOURCE_REMOVE;
}

/* Takes the candidates gathered so far and tells the owner, once. */
static void finish_gathering(struct cn_wrtc_peer *p)
{
	GSList *cands;

	if (p->gathered || p->state == CN_WRTC_CLOSED)
		return;
	p->gathered = true;
	cands = nice_agent_get_local_candidates(p->agent, p->stream, 1);
	p->ncand = 0;
	for (GSList *i = cands; i; i = i->next) {
		NiceCandidate *c = i->data;
		gchar *line = nice_agent_generate_local_candidate_sdp(p->agent, c);
		/* libnice writes "a=candidate:..." */
		const char *v = line && !strncmp(line, "a=", 2) ? line + 2 : line;
		if (v && p->ncand < CN_SDP_MAX_CANDIDATES &&
		    cn_strlcpy(p->cand[p->ncand], v, CN_SDP_CANDIDATE_LEN) == 0)
			p->ncand++;
		g_free(line);
	}
	g_slist_free_full(cands, (GDestroyNotify)nice_candidate_free);
	if (p->ncand == 0) {
		peer_close(p, "no local ICE candidate could be gathered");
		return;
	}
	if (p->state == CN_WRTC_GATHERING)
		p->state = CN_WRTC_CHECKING;
	/* libnice may finish gathering host candidates inside nice_agent_gather_candidates:
	 * the owner hears of it only once cn_wrtc_peer_new has returned. */
	GSource *s = g_idle_source_new();
	g_source_set_callback(s, gathered_idle_cb, p, NULL);
	p->gathered_idle = g_source_attach(s, p->ctx);
	g_source_unref(s);
}

static void on_gathered(NiceAgent *agent, guint stream, gpointer user)
{
	(void)agent;
	(void)stream;
	finish_gathering(user);
}

static gboolean gather_deadline_cb(gpointer data)
{
	struct cn_wrtc_peer *p = data;

	p->gather_deadline = 0;
	if (!p->gathered)
		cn_log_warn("webrtc", "ICE gathering incomplete after %d ms (STUN or TURN server "
			    "unreachable?): answering with what we have", GATHER_DEADLINE_MS);
	finish_gathering(p);
	return G_SOURCE_REMOVE;
}

/* ---- RTCP out and liveness ------------------------------------------------------------ */

static void send_reports(struct cn_wrtc_peer *p)
{
	uint8_t buf[512];
	size_t len = 0;
	int n;
	int64_t now_us = cn_time_wall_ms() * 1000;

	for (int i = 0; i < p->ntracks; i++) {
		struct track *t = &p->tracks[i];
		if (!t->packets || !t->last_ts_wall_us)
			continue;
		struct cn_rtcp_sr_info sr = {
			.ssrc = t->ssrc,
			.ntp = cn_ntp_from_unix_us((uint64_t)now_us),
			.rtp_ts = t->last_ts + (uint32_t)((now_us - t->last_ts_wall_us) * (int64_t)t->clock /
							  1000000),
			.packets = t->packets,
			.octets = t->octets,
		};
		if ((n = cn_rtcp_write_sr(buf + len, sizeof(buf) - len - CN_SRTP_OVERHEAD, &sr)) < 0)
			return;
		len += (size_t)n;
		if ((n = cn_rtcp_write_sdes_cname(buf + len, sizeof(buf) - len - CN_SRTP_OVERHEAD,
						  t->ssrc, "canopy")) < 0)
			return;
		len += (size_t)n;
	}
	if (!len || cn_srtp_protect_rtcp(p->srtp, buf, &len, sizeof(buf)) < 0)
		return;
	send_datagram(p, buf, len);
}

static gboolean tick_cb(gpointer data)
{
	struct cn_wrtc_peer *p = data;

	if (p->state == CN_WRTC_CLOSED) {
		p->tick = 0;
		return G_SOURCE_REMOVE;
	}
	if (cn_time_mono_ms() - p->last_rx_mono > p->timeout_ms) {
		peer_close(p, "nothing heard from the viewer for %lld s",
			   (long long)(p->timeout_ms / 1000));
		p->tick = 0;
		return G_SOURCE_REMOVE;
	}
	if (p->state == CN_WRTC_SECURE) {
		send_reports(p);
		if (p->rx.on)
			send_rr(p);
	}
	return G_SOURCE_CONTINUE;
}

/* ---- set-up ------------------------------------------------------------------------ */

static int add_local_addresses(NiceAgent *agent, const char *list, char *err, size_t errcap)
{
	char buf[512], *save = NULL;

	if (!list || !*list)
		return 0;
	if (cn_strlcpy(buf, list, sizeof(buf)) < 0)
		return cn_fail(-EINVAL, err, errcap, "address list too long");
	for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		NiceAddress a;
		nice_address_init(&a);
		if (!nice_address_set_from_string(&a, tok))
			return cn_fail(-EINVAL, err, errcap, "'%s' is not an IP address", tok);
		nice_agent_add_local_address(agent, &a);
	}
	return 0;
}

/* The ICE agent and its one stream; controlling for an offerer (RFC 8445 6.1.1). */
static int agent_new(struct cn_wrtc_peer *p, const struct cn_wrtc_conf *conf, bool controlling,
		     char *err, size_t errcap)
{
	int rc;

	p->agent = nice_agent_new_full(p->ctx, NICE_COMPATIBILITY_RFC5245,
				       NICE_AGENT_OPTION_ICE_TRICKLE | NICE_AGENT_OPTION_CONSENT_FRESHNESS);
	if (!p->agent)
		return -ENOMEM;
	/* TCP and UPnP are not used. */
	g_object_set(p->agent, "controlling-mode", controlling ? TRUE : FALSE, "ice-tcp", FALSE,
		     "upnp", FALSE, NULL);
	if (conf->relay_only)
		g_object_set(p->agent, "force-relay", TRUE, NULL);
	if (conf->stun_server && *conf->stun_server)
		g_object_set(p->agent, "stun-server", conf->stun_server, "stun-server-port",
			     (guint)conf->stun_port, NULL);
	if ((rc = add_local_addresses(p->agent, conf->addresses, err, errcap)) < 0)
		return rc;
	if (!(p->stream = nice_agent_add_stream(p->agent, 1)))
		return cn_fail(-ENOMEM, err, errcap, "ICE stream could not be created");
	if (conf->turn_server && *conf->turn_server &&
	    !nice_agent_set_relay_info(p->agent, p->stream, 1, conf->turn_server, (guint)conf->turn_port,
				       conf->turn_user ? conf->turn_user : "",
				       conf->turn_password ? conf->turn_password : "",
				       conf->turn_tcp ? NICE_RELAY_TYPE_TURN_TCP : NICE_RELAY_TYPE_TURN_UDP))
		return cn_fail(-EINVAL, err, errcap, "TURN server '%s' refused by the ICE agent", conf->turn_server);
	if (conf->port_min > 0)
		nice_agent_set_port_range(p->agent, p->stream, 1, (guint)conf->port_min,
					  (guint)conf->port_max);
	return 0;
}

/* Our credentials, and the agent's signals and datagrams to us. */
static int agent_attach(struct cn_wrtc_peer *p)
{
	gchar *ufrag = NULL, *pwd = NULL;
	int rc = 0;

	if (!nice_agent_get_local_credentials(p->agent, p->stream, &ufrag, &pwd) ||
	    cn_strlcpy(p->local_ufrag, ufrag, sizeof(p->local_ufrag)) < 0 ||
	    cn_strlcpy(p->local_pwd, pwd, sizeof(p->local_pwd)) < 0)
		rc = -ENOMEM;
	g_free(ufrag);
	g_free(pwd);
	if (rc < 0)
		return rc;
	g_signal_connect(p->agent, "candidate-gathering-done", G_CALLBACK(on_gathered), p);
	g_signal_connect(p->agent, "component-state-changed", G_CALLBACK(on_state), p);
	nice_agent_attach_recv(p->agent, p->stream, 1, p->ctx, on_recv, p);
	return 0;
}

/* RTCP/liveness tick, the gathering deadline, and gathering itself. */
static int agent_gather(struct cn_wrtc_peer *p, char *err, size_t errcap)
{
	GSource *s = g_timeout_source_new(RTCP_INTERVAL_MS);
	g_source_set_callback(s, tick_cb, p, NULL);
	p->tick = g_source_attach(s, p->ctx);
	g_source_unref(s);
	p->state = CN_WRTC_GATHERING;
	s = g_timeout_source_new(GATHER_DEADLINE_MS);
	g_source_set_callback(s, gather_deadline_cb, p, NULL);
	p->gather_deadline = g_source_attach(s, p->ctx);
	g_source_unref(s);
	if (!nice_agent_gather_candidates(p->agent, p->stream))
		return cn_fail(-EADDRNOTAVAIL, err, errcap, "no local address to gather ICE candidates on");
	return 0;
}

static struct cn_wrtc_peer *peer_alloc(GMainContext *ctx, const struct cn_wrtc_conf *conf,
				       const struct cn_dtls_cert *cert, const struct cn_wrtc_events *ev,
				       void *arg)
{
	struct cn_wrtc_peer *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->ctx = ctx;
	p->ev = *ev;
	p->arg = arg;
	p->cert = cert;
	p->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 30000;
	p->last_rx_mono = cn_time_mono_ms();
	p->st.rtt_ms = -1;
	return p;
}

int cn_wrtc_peer_new(GMainContext *ctx, const struct cn_wrtc_conf *conf,
		     const struct cn_dtls_cert *cert, const struct cn_sdp_media *m,
		     const struct cn_wrtc_events *ev, void *arg, struct cn_wrtc_peer **out,
		     char *err, size_t errcap)
{
	struct cn_wrtc_peer *p;
	int rc;

	if (!m->ice_ufrag[0] || !m->ice_pwd[0])
		return cn_fail(-EINVAL, err, errcap, "the offer has no ICE credentials");
	if (!m->fingerprint_len)
		return cn_fail(-EINVAL, err, errcap, "the offer has no DTLS fingerprint");
	if (!m->rtcp_mux)
		return cn_fail(-EINVAL, err, errcap, "the offer must use rtcp-mux (a=rtcp-mux)");
	if (!(p = peer_alloc(ctx, conf, cert, ev, arg)))
		return -ENOMEM;
	cn_strlcpy(p->remote_ufrag, m->ice_ufrag, sizeof(p->remote_ufrag));
	/* The offerer's a=setup:actpass lets us pick: passive, so the viewer (who already
	 * knows our fingerprint from the answer) opens the handshake, unless the owner wants
	 * to open it (a ClientHello that reaches us before our ICE has a pair is lost and
	 * costs the viewer a 1 s retransmission; ours goes only once we are connected). */
	p->dtls_active = m->setup == CN_SDP_SETUP_PASSIVE ||
			 (conf->dtls_active && m->setup == CN_SDP_SETUP_ACTPASS);
	rc = cn_dtls_new(cert, p->dtls_active, m->fingerprint_alg, m->fingerprint, m->fingerprint_len,
			 dtls_send, p, &p->dtls);
	if (rc < 0) {
		cn_fail(rc, err, errcap, "the offer's fingerprint (%s) cannot be used",
			m->fingerprint_alg);
		goto out_free;
	}
	if ((rc = agent_new(p, conf, false, err, errcap)) < 0)
		goto out_free;
	if (!nice_agent_set_remote_credentials(p->agent, p->stream, m->ice_ufrag, m->ice_pwd)) {
		rc = cn_fail(-EINVAL, err, errcap, "the offer's ICE credentials were refused");
		goto out_free;
	}
	if ((rc = agent_attach(p)) < 0)
		goto out_free;
	for (int i = 0; i < m->ncandidates; i++)
		cn_wrtc_add_candidate(p, m->candidates[i], NULL, 0);
	if (m->end_of_candidates)
		cn_wrtc_end_of_candidates(p);
	if ((rc = agent_gather(p, err, errcap)) < 0)
		goto out_free;
	*out = p;
	return 0;
out_free:
	cn_wrtc_peer_free(p);
	return rc;
}

int cn_wrtc_offerer_new(GMainContext *ctx, const struct cn_wrtc_conf *conf,
			const struct cn_dtls_cert *cert, const struct cn_wrtc_events *ev, void *arg,
			struct cn_wrtc_peer **out, char *err, size_t errcap)
{
	struct cn_wrtc_peer *p;
	int rc;

	if (!(p = peer_alloc(ctx, conf, cert, ev, arg)))
		return -ENOMEM;
	p->rx.on = true;
	p->rx.clock = 90000;
	do
		cn_random_bytes(&p->rx.our_ssrc, sizeof(p->rx.our_ssrc));
	while (!p->rx.our_ssrc);
	if ((rc = agent_new(p, conf, true, err, errcap)) < 0 || (rc = agent_attach(p)) < 0 ||
	    (rc = agent_gather(p, err, errcap)) < 0) {
		cn_wrtc_peer_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int cn_wrtc_set_answer(struct cn_wrtc_peer *p, const struct cn_sdp_media *m, char *err, size_t errcap)
{
	int rc;

	if (!p->rx.on || p->rx.answered)
		return cn_fail(-EALREADY, err, errcap, "an answer was applied already");
	if (!m->ice_ufrag[0] || !m->ice_pwd[0])
		return cn_fail(-EINVAL, err, errcap, "the answer has no ICE credentials");
	if (!m->fingerprint_len)
		return cn_fail(-EINVAL, err, errcap, "the answer has no DTLS fingerprint");
	if (m->setup != CN_SDP_SETUP_ACTIVE && m->setup != CN_SDP_SETUP_PASSIVE)
		return cn_fail(-EINVAL, err, errcap, "the answer must say a=setup:active or passive");
	/* They answer passive: we open the handshake (RFC 8842 5.2). */
	p->dtls_active = m->setup == CN_SDP_SETUP_PASSIVE;
	rc = cn_dtls_new(p->cert, p->dtls_active, m->fingerprint_alg, m->fingerprint,
			 m->fingerprint_len, dtls_send, p, &p->dtls);
	if (rc < 0)
		return cn_fail(rc, err, errcap, "the answer's fingerprint (%s) cannot be used",
			       m->fingerprint_alg);
	if (!nice_agent_set_remote_credentials(p->agent, p->stream, m->ice_ufrag, m->ice_pwd))
		return cn_fail(-EINVAL, err, errcap, "the answer's ICE credentials were refused");
	cn_strlcpy(p->remote_ufrag, m->ice_ufrag, sizeof(p->remote_ufrag));
	p->rx.answered = true;
	if (m->ssrc)
		p->rx.st.ssrc = m->ssrc;
	for (int i = 0; i < m->ncandidates; i++)
		cn_wrtc_add_candidate(p, m->candidates[i], NULL, 0);
	if (m->end_of_candidates)
		cn_wrtc_end_of_candidates(p);
	return 0;
}

int cn_wrtc_local(struct cn_wrtc_peer *p, struct cn_sdp_answer *ans)
{
	cn_strlcpy(ans->ice_ufrag, p->local_ufrag, sizeof(ans->ice_ufrag));
	cn_strlcpy(ans->ice_pwd, p->local_pwd, sizeof(ans->ice_pwd));
	cn_dtls_cert_fingerprint(p->cert, ans->fingerprint);
	ans->setup = p->rx.on && !p->rx.answered ? CN_SDP_SETUP_ACTPASS
		     : p->dtls_active		   ? CN_SDP_SETUP_ACTIVE
						   : CN_SDP_SETUP_PASSIVE;
	ans->ncandidates = p->ncand;
	for (int i = 0; i < p->ncand; i++)
		memcpy(ans->candidates[i], p->cand[i], CN_SDP_CANDIDATE_LEN);
	ans->end_of_candidates = true;
	return 0;
}

int cn_wrtc_add_candidate(struct cn_wrtc_peer *p, const char *cand, char *err, size_t errcap)
{
	char line[CN_SDP_CANDIDATE_LEN + 8];
	const char *v = !strncmp(cand, "a=", 2) ? cand + 2 : cand;
	NiceCandidate *c;

	if (strncmp(v, "candidate:", 10) != 0)
		return cn_fail(CN_E_MALFORMED, err, errcap, "not a candidate line");
	/* A browser hides its host address behind an mDNS name; its checks reach us anyway
	 * and become peer-reflexive candidates. We do not do ICE over TCP. */
	if (strstr(v, ".local ") || strstr(v, " tcp ") || strstr(v, " TCP "))
		return 0;
	snprintf(line, sizeof(line), "a=%s", v);
	if (!(c = nice_agent_parse_remote_candidate_sdp(p->agent, p->stream, line)))
		return cn_fail(CN_E_MALFORMED, err, errcap, "candidate could not be parsed: %.80s", v);
	GSList *l = g_slist_append(NULL, c);
	int n = nice_agent_set_remote_candidates(p->agent, p->stream, 1, l);
	g_slist_free_full(l, (GDestroyNotify)nice_candidate_free);
	return n < 0 ? cn_fail(CN_E_MALFORMED, err, errcap, "candidate refused: %.80s", v) : 0;
}

void cn_wrtc_end_of_candidates(struct cn_wrtc_peer *p)
{
	nice_agent_peer_candidate_gathering_done(p->agent, p->stream);
}

const char *cn_wrtc_remote_ufrag(const struct cn_wrtc_peer *p)
{
	return p->remote_ufrag;
}

int cn_wrtc_add_track(struct cn_wrtc_peer *p, uint8_t pt, uint32_t clock, bool nack,
		      int abs_send_time_id, uint32_t *ssrc)
{
	struct track *t;

	if (p->ntracks == CN_WRTC_MAX_TRACKS)
		return -ENOSPC;
	t = &p->tracks[p->ntracks];
	memset(t, 0, sizeof(*t));
	t->pt = pt;
	t->clock = clock;
	t->abs_id = abs_send_time_id;
	do
		cn_random_bytes(&t->ssrc, sizeof(t->ssrc));
	while (!t->ssrc || track_by_ssrc(p, t->ssrc));
	cn_random_bytes(&t->seq, sizeof(t->seq));
	if (nack && !(t->rtx = calloc(CN_WRTC_RTX_SLOTS, sizeof(*t->rtx))))
		return -ENOMEM;
	*ssrc = t->ssrc;
	return p->ntracks++;
}

int cn_wrtc_send(struct cn_wrtc_peer *p, int track, const struct cn_rtp_payloads *pl, uint32_t ts)
{
	struct track *t;
	uint8_t buf[PKT_MAX];
	int sent = 0;

	if (p->state == CN_WRTC_CLOSED)
		return -EPIPE;
	if (p->state != CN_WRTC_SECURE)
		return -EAGAIN;
	if (track < 0 || track >= p->ntracks)
		return -EINVAL;
	t = &p->tracks[track];
	/* the SR's RTP/NTP mapping: this timestamp is now */
	t->last_ts = ts;
	t->last_ts_wall_us = cn_time_wall_ms() * 1000;
	for (int i = 0; i < pl->npkts; i++) {
		const struct cn_rtp_payload *pk = &pl->pkts[i];
		if (pk->len > CN_WRTC_MAX_PAYLOAD)
			return -EMSGSIZE;
		int h = cn_rtp_write_header(buf, sizeof(buf), pk->marker, t->pt, t->seq, ts, t->ssrc,
					    t->abs_id, (uint64_t)cn_time_wall_ms() * 1000);
		if (h < 0)
			return h;
		memcpy(buf + h, pl->buf + pk->off, pk->len);
		size_t len = (size_t)h + pk->len;
		if (t->rtx) {
			struct rtx_slot *s = &t->rtx[t->seq % CN_WRTC_RTX_SLOTS];
			s->seq = t->seq;
			s->len = (uint16_t)len;
			memcpy(s->data, buf, len);
		}
		t->seq++;
		t->packets++;
		t->octets += pk->len;
		if (cn_srtp_protect_rtp(p->srtp, buf, &len, sizeof(buf)) < 0)
			return -EPROTO;
		if (nice_agent_send(p->agent, p->stream, 1, (guint)len, (const gchar *)buf) < 0) {
			p->st.send_errors++;
			return CN_E_FULL;
		}
		p->st.packets_sent++;
		p->st.bytes_sent += len;
		sent++;
	}
	return sent;
}

int cn_wrtc_send_rtp(struct cn_wrtc_peer *p, int track, bool marker, uint16_t seq, uint32_t ts,
		     const uint8_t *payload, size_t plen, bool retransmit)
{
	struct track *t;
	uint8_t buf[PKT_MAX];
	int64_t now_us;

	if (p->state == CN_WRTC_CLOSED)
		return -EPIPE;
	if (p->state != CN_WRTC_SECURE)
		return -EAGAIN;
	if (track < 0 || track >= p->ntracks)
		return -EINVAL;
	if (plen > CN_WRTC_MAX_PAYLOAD)
		return -EMSGSIZE;
	t = &p->tracks[track];
	bool new_ts = !retransmit && (ts != t->last_ts || !t->last_ts_wall_us);
	now_us = new_ts || t->abs_id ? g_get_real_time() : 0;
	if (new_ts) {
		/* the SR's RTP/NTP mapping: this timestamp began now */
		t->last_ts = ts;
		t->last_ts_wall_us = now_us;
	}
	int h = cn_rtp_write_header(buf, sizeof(buf), marker, t->pt, seq, ts, t->ssrc, t->abs_id,
				    (uint64_t)now_us);
	if (h < 0)
		return h;
	memcpy(buf + h, payload, plen);
	size_t len = (size_t)h + plen;
	if ((p->srtp_tx ? cn_srtp_tx_protect(p->srtp_tx, buf, &len, sizeof(buf))
			: cn_srtp_protect_rtp(p->srtp, buf, &len, sizeof(buf))) < 0)
		return -EPROTO;
	if (nice_agent_send(p->agent, p->stream, 1, (guint)len, (const gchar *)buf) < 0) {
		p->st.send_errors++;
		return CN_E_FULL;
	}
	if (retransmit) {
		p->st.retransmits++;
	} else {
		t->packets++;
		t->octets += (uint32_t)plen;
	}
	p->st.packets_sent++;
	p->st.bytes_sent += len;
	return 1;
}

void cn_wrtc_close(struct cn_wrtc_peer *p, const char *reason)
{
	if (p)
		peer_close(p, "%s", reason);
}

enum cn_wrtc_state cn_wrtc_state(const struct cn_wrtc_peer *p)
{
	return p->state;
}

void cn_wrtc_get_stats(const struct cn_wrtc_peer *p, struct cn_wrtc_stats *out)
{
	*out = p->st;
}

void cn_wrtc_describe_pair(struct cn_wrtc_peer *p, char *out, size_t cap)
{
	NiceCandidate *l = NULL, *r = NULL;
	char la[NICE_ADDRESS_STRING_LEN], ra[NICE_ADDRESS_STRING_LEN];

	if (!p->agent || !nice_agent_get_selected_pair(p->agent, p->stream, 1, &l, &r)) {
		snprintf(out, cap, "none");
		return;
	}
	nice_address_to_string(&l->addr, la);
	nice_address_to_string(&r->addr, ra);
	snprintf(out, cap, "%s:%u %s -> %s:%u %s", la, nice_address_get_port(&l->addr),
		 l->type == NICE_CANDIDATE_TYPE_RELAYED ? "relay" : "host", ra,
		 nice_address_get_port(&r->addr),
		 r->type == NICE_CANDIDATE_TYPE_PEER_REFLEXIVE ? "prflx"
		 : r->type == NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE ? "srflx"
		 : r->type == NICE_CANDIDATE_TYPE_RELAYED	  ? "relay"
								  : "host");
}

static void remove_source(GMainContext *ctx, guint *id)
{
	if (*id) {
		GSource *s = g_main_context_find_source_by_id(ctx, *id);
		if (s)
			g_source_destroy(s);
		*id = 0;
	}
}

void cn_wrtc_peer_free(struct cn_wrtc_peer *p)
{
	if (!p)
		return;
	if (p->state == CN_WRTC_SECURE && p->ntracks) {
		uint8_t buf[64];
		int n = cn_rtcp_write_bye(buf, sizeof(buf) - CN_SRTP_OVERHEAD, p->tracks[0].ssrc);
		size_t len = n > 0 ? (size_t)n : 0;
		if (len && cn_srtp_protect_rtcp(p->srtp, buf, &len, sizeof(buf)) == 0)
			send_datagram(p, buf, len);
	}
	remove_source(p->ctx, &p->tick);
	remove_source(p->ctx, &p->dtls_timer);
	remove_source(p->ctx, &p->close_idle);
	remove_source(p->ctx, &p->gathered_idle);
	remove_source(p->ctx, &p->gather_deadline);
	/* Before the agent: its close_notify still has a path out. */
	cn_dtls_free(p->dtls);
	if (p->agent) {
		g_signal_handlers_disconnect_by_data(p->agent, p);
		if (p->stream) {
			nice_agent_attach_recv(p->agent, p->stream, 1, p->ctx, NULL, NULL);
			nice_agent_remove_stream(p->agent, p->stream);
		}
		g_object_unref(p->agent);
	}
	cn_srtp_free(p->srtp);
	cn_srtp_tx_free(p->srtp_tx);
	for (int i = 0; i < p->ntracks; i++)
		free(p->tracks[i].rtx);
	free(p);
}
