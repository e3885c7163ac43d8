/* relay_sfu.c: the relay's SFU: one upstream per camera (a receiving WebRTC peer), forwarded packet by packet to every viewer's own peer. */
#include "relay_sfu.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_http.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_rtp.h"
#include "cn_sdp.h"
#include "cn_time.h"
#include "cn_webrtc.h"
#include "relay.h"
#include "relay_sfu_edge.h"

#define RING 1024                 /* upstream packets kept for viewers' NACKs (~4 s at 2 Mbit/s) */
#define GOP_MAX_PKTS 4096         /* the keyframe cache: packets since the newest keyframe */
#define GOP_MAX_BYTES (6u << 20)
#define BURST_BYTES_PER_TICK 25000 /* a new viewer's catch-up: 20 Mbit/s in 10 ms ticks */
#define BURST_TICK_MS 10
#define QUEUE_RETRY_MS 5
#define UPSTREAM_PLI_MIN_MS 1000  /* at most one upstream PLI a second, whoever asks */
#define KEY_ANSWER_MIN_MS 2000    /* a viewer's PLI answered from the cache at most this often */
#define UPSTREAM_ANSWER_MS 15000  /* the edge's answer must come within this */

enum drop_reason { DROP_WAIT_KEY, DROP_QUEUE_FULL, DROP_NOT_SECURE, DROP_TOO_BIG, DROP_COUNT };
static const char *const drop_names[DROP_COUNT] = { "wait_keyframe", "queue_full", "not_secure", "too_big" };

enum rej_reason { REJ_BAD_OFFER, REJ_CODEC, REJ_LIMIT, REJ_UPSTREAM, REJ_UNAUTHORIZED, REJ_NOT_FOUND, REJ_COUNT };
static const char *const rej_names[REJ_COUNT] = { "bad_offer", "codec", "limit", "upstream", "unauthorized",
						  "not_found" };

/* One upstream RTP packet, shared by every viewer, the NACK ring and the keyframe cache. */
struct sfu_pkt {
	int refs; /* loop only */
	uint16_t seq;
	uint32_t ts;
	bool marker;
	bool key_start; /* the first packet of a keyframe */
	uint16_t len;
	uint8_t data[];
};

struct viewer;

struct upstream {
	struct relay_sfu *s;
	char key[160];
	uint64_t ticket;
	bool offered, answered;
	struct cn_wrtc_peer *peer;
	uint32_t profile_level_id; /* of the edge's chosen H.264 format */
	GPtrArray *viewers; /* struct viewer *, answered or pending */
	struct sfu_pkt *ring[RING];
	struct sfu_pkt **gop;
	int ngop;
	size_t gop_bytes;
	bool gop_valid;
	uint64_t gop_gen;
	bool have_ts;
	uint32_t cur_ts;
	int64_t last_pli_ms;
	guint linger;
	guint answer_deadline;
	uint64_t packets_in, bytes_in;
	int64_t created_ms;
};

struct viewer {
	struct relay_sfu *s;
	struct upstream *up;
	char id[40];
	struct cn_sdp *offer; /* until answered */
	int mline, format;
	relay_sfu_done_fn done;
	void *done_arg;
	bool answered; /* done called */
	struct cn_wrtc_peer *peer;
	int track;
	bool secure;
	bool need_key;
	bool bursting;
	int burst_idx;
	uint64_t burst_gen;
	guint burst_timer;
	int64_t last_key_answer_ms;
	/* sequence and time mapping: viewer seq = upstream seq + seq_off from seq_base on */
	bool mapped;
	uint16_t seq_off, seq_base, last_vseq;
	bool live_ts;     /* vts = ts + ts_off; otherwise squeezed (catch-up) */
	uint32_t ts_off, last_up_ts, vts;
	/* bounded backlog when the socket refuses */
	struct sfu_pkt **q;
	int qhead, qlen, qcap;
	guint q_timer;
	uint64_t packets, drops;
};

struct relay_sfu {
	struct relay *r;
	struct cn_dtls_cert *cert;
	struct cn_wrtc_conf wconf;
	struct relay_sfu_signal sig;
	struct relay_sfu_edge *edge; /* plain-WHEP signalling (sfu_edge_url) */
	GHashTable *ups;     /* key -> upstream */
	GHashTable *viewers; /* id -> viewer */
	uint64_t next_ticket;
	int64_t linger_ms;
	int max_viewers, qcap;
	uint64_t ups_total, viewers_total, fwd_packets, fwd_bytes, drops[DROP_COUNT], nacks_served,
		nacks_missed, plis_up, key_answers, rejected[REJ_COUNT], up_packets, up_bytes,
		up_closed;
	struct cn_wrtc_rx_stats rx_closed; /* upstreams gone: their receive counters, summed */
};

static void viewer_free(struct viewer *v);
static void upstream_free(struct upstream *u);
static void start_viewer(struct viewer *v);
static void viewer_fail(struct viewer *v, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- packets ---------------------------------------------------------------------- */

static struct sfu_pkt *pkt_ref(struct sfu_pkt *p)
{
	p->refs++;
	return p;
}

static void pkt_unref(struct sfu_pkt *p)
{
	if (p && --p->refs == 0)
		free(p);
}

/* H.264 (RFC 6184): does this payload begin a keyframe (SPS, or an IDR slice start)? */
static bool h264_key_start(const uint8_t *pl, size_t n)
{
	if (n < 2)
		return false;
	int t = pl[0] & 0x1f;
	if (t == 7 || t == 5)
		return true;
	if (t == 24 && n >= 4) /* STAP-A: the first aggregated NAL */
		return (pl[3] & 0x1f) == 7 || (pl[3] & 0x1f) == 5;
	if (t == 28) /* FU-A start of an IDR */
		return (pl[1] & 0x80) && (pl[1] & 0x1f) == 5;
	return false;
}

/* ---- viewers: sending -------------------------------------------------------------- */

/* Viewer timestamp of p. Catch-up (cached) frames are squeezed 1 ms apart so the player
 * shows the newest at once; live frames keep the camera's spacing. */
static uint32_t map_ts(struct viewer *v, const struct sfu_pkt *p, bool advance)
{
	if (v->live_ts) {
		uint32_t vts = p->ts + v->ts_off;
		if (advance && (int32_t)(p->ts - v->last_up_ts) > 0) {
			v->last_up_ts = p->ts;
			v->vts = vts; /* where a catch-up burst would continue from */
		}
		return vts;
	}
	if (p->ts == v->last_up_ts)
		return v->vts;
	if ((int32_t)(p->ts - v->last_up_ts) < 0)
		return v->vts - 90; /* a late packet of an earlier frame */
	if (!advance)
		return v->vts + 90;
	v->last_up_ts = p->ts;
	return v->vts += 90;
}

/* Maps p's sequence number anew so that p follows the last packet sent without a gap
 * (a viewer starting, or restarting after a drop, on a keyframe). */
static void rebase(struct viewer *v, const struct sfu_pkt *p)
{
	if (!v->mapped) {
		cn_random_bytes(&v->last_vseq, sizeof(v->last_vseq));
		cn_random_bytes(&v->vts, sizeof(v->vts));
		v->last_up_ts = p->ts - 1; /* so the first packet starts a frame */
		v->mapped = true;
	}
	v->seq_off = (uint16_t)(v->last_vseq + 1 - p->seq);
	v->seq_base = (uint16_t)(p->seq + v->seq_off);
}

static int send_now(struct viewer *v, struct sfu_pkt *p, bool retransmit)
{
	uint16_t vseq = (uint16_t)(p->seq + v->seq_off);
	uint32_t vts = map_ts(v, p, !retransmit);
	int rc = cn_wrtc_send_rtp(v->peer, v->track, p->marker, vseq, vts, p->data, p->len, retransmit);

	if (rc == 1) {
		if (!retransmit && (int16_t)(vseq - v->last_vseq) > 0)
			v->last_vseq = vseq;
		v->packets++;
		v->s->fwd_packets++;
		v->s->fwd_bytes += p->len;
	} else if (rc == -EMSGSIZE) {
		v->s->drops[DROP_TOO_BIG]++;
		rc = 1;
	} else if (rc == -EAGAIN || rc == -EPIPE) {
		v->s->drops[DROP_NOT_SECURE]++;
		rc = 1;
	}
	return rc;
}

static void queue_clear(struct viewer *v)
{
	for (int i = 0; i < v->qlen; i++)
		pkt_unref(v->q[(v->qhead + i) % v->qcap]);
	v->qhead = v->qlen = 0;
}

static gboolean queue_retry(gpointer data);

/* A slow viewer: its backlog outgrew the bound. Everything queued is dropped; it waits
 * for the next keyframe, and nobody else waits for it. */
static void viewer_overrun(struct viewer *v)
{
	v->s->drops[DROP_QUEUE_FULL] += (uint64_t)v->qlen + 1;
	v->drops += (uint64_t)v->qlen + 1;
	queue_clear(v);
	v->need_key = true;
	v->bursting = false;
}

static bool queue_push(struct viewer *v, struct sfu_pkt *p)
{
	if (v->qlen == v->qcap) {
		viewer_overrun(v);
		return false;
	}
	v->q[(v->qhead + v->qlen++) % v->qcap] = pkt_ref(p);
	if (!v->q_timer)
		v->q_timer = g_timeout_add(QUEUE_RETRY_MS, queue_retry, v);
	return true;
}

/* Sends p now, or behind the backlog; false when the viewer overran (now waits for a key). */
static bool viewer_send(struct viewer *v, struct sfu_pkt *p)
{
	if (v->qlen)
		return queue_push(v, p);
	if (send_now(v, p, false) == CN_E_FULL)
		return queue_push(v, p);
	return true;
}

static gboolean queue_retry(gpointer data)
{
	struct viewer *v = data;

	while (v->qlen) {
		struct sfu_pkt *p = v->q[v->qhead];
		if (send_now(v, p, false) == CN_E_FULL)
			return G_SOURCE_CONTINUE;
		v->qhead = (v->qhead + 1) % v->qcap;
		v->qlen--;
		pkt_unref(p);
	}
	v->q_timer = 0;
	return G_SOURCE_REMOVE;
}

/* ---- viewers: catching up from the keyframe cache ---------------------------------- */

static gboolean burst_tick(gpointer data)
{
	struct viewer *v = data;
	struct upstream *u = v->up;
	size_t budget = BURST_BYTES_PER_TICK;

	if (!v->bursting || !u->gop_valid) {
		if (v->bursting) {
			v->bursting = false;
			v->need_key = true;
		}
		v->burst_timer = 0;
		return G_SOURCE_REMOVE;
	}
	if (v->burst_gen != u->gop_gen) {
		/* a newer keyframe arrived meanwhile: start from it */
		v->burst_gen = u->gop_gen;
		v->burst_idx = 0;
		if (u->ngop)
			rebase(v, u->gop[0]);
	}
	while (v->burst_idx < u->ngop && budget > 0 && !v->qlen) {
		struct sfu_pkt *p = u->gop[v->burst_idx++];
		if (!viewer_send(v, p)) {
			v->burst_timer = 0;
			return G_SOURCE_REMOVE; /* overran: waits for a keyframe */
		}
		budget = p->len >= budget ? 0 : budget - p->len;
	}
	if (v->burst_idx < u->ngop || v->qlen)
		return G_SOURCE_CONTINUE;
	/* caught up: live from here, the camera's own spacing */
	cn_log_debug("sfu", "viewer %s: caught up after %d cached packets (seq %u)", v->id, v->burst_idx,
		     (unsigned)v->last_vseq);
	v->bursting = false;
	v->live_ts = true;
	v->ts_off = v->vts - v->last_up_ts;
	v->burst_timer = 0;
	return G_SOURCE_REMOVE;
}

/* Sends the cache (the newest keyframe and what followed) to v, paced; false when there
 * is no usable cache. */
static bool start_burst(struct viewer *v)
{
	struct upstream *u = v->up;

	if (!u->gop_valid || !u->ngop)
		return false;
	queue_clear(v);
	v->bursting = true;
	v->need_key = false;
	v->live_ts = false;
	v->burst_gen = u->gop_gen;
	v->burst_idx = 0;
	rebase(v, u->gop[0]);
	v->last_up_ts = u->gop[0]->ts - 1; /* the cached keyframe starts a new (squeezed) frame */
	if (!v->burst_timer) {
		/* the keyframe at once, the rest in ticks */
		if (burst_tick(v) == G_SOURCE_CONTINUE)
			v->burst_timer = g_timeout_add(BURST_TICK_MS, burst_tick, v);
	}
	return true;
}

static void upstream_pli(struct upstream *u)
{
	int64_t now = cn_time_mono_ms();

	if (!u->peer || now - u->last_pli_ms < UPSTREAM_PLI_MIN_MS)
		return;
	if (cn_wrtc_request_keyframe(u->peer) == 0) {
		u->last_pli_ms = now;
		u->s->plis_up++;
	}
}

/* ---- upstream: packets in ------------------------------------------------------------ */

static void gop_clear(struct upstream *u)
{
	for (int i = 0; i < u->ngop; i++)
		pkt_unref(u->gop[i]);
	u->ngop = 0;
	u->gop_bytes = 0;
}

static void gop_add(struct upstream *u, struct sfu_pkt *p)
{
	if (p->key_start) {
		gop_clear(u);
		u->gop_valid = true;
		u->gop_gen++;
	}
	if (!u->gop_valid)
		return;
	if (u->ngop == GOP_MAX_PKTS || u->gop_bytes + p->len > GOP_MAX_BYTES) {
		/* a GOP too long to cache: new viewers wait for the next keyframe */
		gop_clear(u);
		u->gop_valid = false;
		return;
	}
	u->gop[u->ngop++] = pkt_ref(p);
	u->gop_bytes += p->len;
}

static void on_up_rtp(struct cn_wrtc_peer *peer, void *arg, const struct cn_rtp_hdr *h,
		      const uint8_t *pkt, size_t len)
{
	struct upstream *u = arg;
	struct relay_sfu *s = u->s;
	struct sfu_pkt *p;

	(void)peer;
	(void)pkt;
	(void)len;
	u->packets_in++;
	u->bytes_in += h->payload_len;
	s->up_packets++;
	s->up_bytes += h->payload_len;
	struct sfu_pkt *old = u->ring[h->seq % RING];
	if (old && old->seq == h->seq)
		return; /* a duplicate */
	if (h->payload_len > CN_WRTC_MAX_PAYLOAD) {
		s->drops[DROP_TOO_BIG]++; /* no viewer could be sent it */
		return;
	}
	if (!(p = malloc(sizeof(*p) + h->payload_len)))
		return;
	p->refs = 1;
	p->seq = h->seq;
	p->ts = h->ts;
	p->marker = h->marker;
	p->len = (uint16_t)h->payload_len;
	memcpy(p->data, h->payload, h->payload_len);
	bool new_frame = !u->have_ts || (int32_t)(h->ts - u->cur_ts) > 0;
	p->key_start = new_frame && h264_key_start(p->data, p->len);
	if (new_frame) {
		u->cur_ts = h->ts;
		u->have_ts = true;
	}
	pkt_unref(old);
	u->ring[h->seq % RING] = pkt_ref(p);
	gop_add(u, p);
	for (guint i = 0; i < u->viewers->len; i++) {
		struct viewer *v = g_ptr_array_index(u->viewers, i);
		if (!v->secure || v->bursting)
			continue; /* a catching-up viewer reads this packet from the cache */
		if (v->need_key) {
			if (!p->key_start) {
				s->drops[DROP_WAIT_KEY]++;
				v->drops++;
				continue;
			}
			rebase(v, p);
			v->need_key = false;
			if (!v->live_ts) {
				v->live_ts = true;
				v->ts_off = v->vts + 90 - p->ts;
			}
		}
		viewer_send(v, p);
	}
	pkt_unref(p);
}

/* ---- viewer peer events ------------------------------------------------------------- */

static void on_v_nack(struct cn_wrtc_peer *peer, void *arg, int track, const uint16_t *seqs, int n)
{
	struct viewer *v = arg;
	struct upstream *u = v->up;

	(void)peer;
	(void)track;
	if (!v->mapped)
		return;
	for (int i = 0; i < n; i++) {
		if ((int16_t)(seqs[i] - v->seq_base) < 0 || (int16_t)(seqs[i] - v->last_vseq) > 0) {
			v->s->nacks_missed++; /* before the viewer's current mapping, or never sent */
			continue;
		}
		uint16_t up = (uint16_t)(seqs[i] - v->seq_off);
		struct sfu_pkt *p = u->ring[up % RING];
		if (!p || p->seq != up) {
			v->s->nacks_missed++;
			continue;
		}
		if (send_now(v, p, true) == 1)
			v->s->nacks_served++;
	}
}

static void on_v_keyframe(struct cn_wrtc_peer *peer, void *arg)
{
	struct viewer *v = arg;
	int64_t now = cn_time_mono_ms();

	(void)peer;
	if (v->bursting || now - v->last_key_answer_ms < KEY_ANSWER_MIN_MS)
		return;
	v->last_key_answer_ms = now;
	/* The cache answers; only without one does the edge hear of it (aggregated). */
	if (start_burst(v)) {
		v->s->key_answers++;
	} else {
		v->need_key = true;
		upstream_pli(v->up);
	}
}

static void on_v_secure(struct cn_wrtc_peer *peer, void *arg)
{
	struct viewer *v = arg;
	char pair[200];

	cn_wrtc_describe_pair(peer, pair, sizeof(pair));
	cn_log_info("sfu", "viewer %s of '%s': media flowing (%s)", v->id, v->up->key, pair);
	v->secure = true;
	v->last_key_answer_ms = cn_time_mono_ms();
	cn_log_debug("sfu", "viewer %s: starting, cache %s (%d packets, generation %llu)", v->id,
		     v->up->gop_valid ? "valid" : "invalid", v->up->ngop,
		     (unsigned long long)v->up->gop_gen);
	if (!start_burst(v)) {
		v->need_key = true;
		upstream_pli(v->up);
	}
}

static void on_v_closed(struct cn_wrtc_peer *peer, void *arg, const char *reason)
{
	struct viewer *v = arg;

	(void)peer;
	cn_log_info("sfu", "viewer %s of '%s' ended: %s", v->id, v->up->key, reason);
	if (!v->answered) {
		viewer_fail(v, 503, "the session could not be set up: %s", reason);
		return;
	}
	viewer_free(v);
}

static void on_v_gathered(struct cn_wrtc_peer *p, void *arg)
{
	struct viewer *v = arg;
	struct cn_sdp_answer *ans = calloc(1, sizeof(*ans));
	struct cn_buf body;
	uint32_t ssrc = 0;

	if (!ans) {
		viewer_fail(v, 503, "out of memory");
		return;
	}
	cn_random_bytes(&ans->session_id, sizeof(ans->session_id));
	ans->session_id &= 0x7fffffffffffffffULL;
	ans->session_version = 1;
	cn_wrtc_local(p, ans);
	const struct cn_sdp_media *m = &v->offer->media[v->mline];
	const struct cn_sdp_format *fmt = &m->formats[v->format];
	struct cn_sdp_answer_media *am = &ans->media[v->mline];
	am->accepted = true;
	am->format = v->format;
	am->fb = fmt->fb & (CN_SDP_FB_NACK | CN_SDP_FB_PLI | CN_SDP_FB_FIR);
	am->dir = CN_SDP_SENDONLY;
	v->track = cn_wrtc_add_track(p, fmt->pt, 90000, false, 0, &ssrc);
	am->ssrc = ssrc;
	cn_strlcpy(am->cname, "canopy", sizeof(am->cname));
	snprintf(am->msid_stream, sizeof(am->msid_stream), "sfu");
	snprintf(am->msid_track, sizeof(am->msid_track), "video-%.20s", v->id);
	cn_buf_init(&body, 64 * 1024);
	if (v->track < 0 || cn_sdp_write_answer(v->offer, ans, &body) < 0) {
		free(ans);
		cn_buf_free(&body);
		viewer_fail(v, 503, "the answer could not be written");
		return;
	}
	free(ans);
	free(v->offer);
	v->offer = NULL;
	v->answered = true;
	v->s->viewers_total++;
	cn_log_info("sfu", "viewer %s of '%s' answered (%u viewers)", v->id, v->up->key,
		    v->up->viewers->len);
	/* Last: the owner may end the viewer from inside done. */
	v->done(v->done_arg, 201, body.data, body.len, v->id, NULL);
	cn_buf_free(&body);
}

static const struct cn_wrtc_events viewer_events = {
	.gathered = on_v_gathered,
	.secure = on_v_secure,
	.keyframe = on_v_keyframe,
	.closed = on_v_closed,
	.nack = on_v_nack,
};

/* ---- viewers: life cycle ----------------------------------------------------------- */

static gboolean linger_cb(gpointer data)
{
	struct upstream *u = data;

	u->linger = 0;
	cn_log_info("sfu", "'%s': no viewer for a while: upstream closed", u->key);
	upstream_free(u);
	return G_SOURCE_REMOVE;
}

static void viewer_free(struct viewer *v)
{
	struct relay_sfu *s = v->s;
	struct upstream *u = v->up;

	if (!v->answered) {
		v->answered = true;
		v->done(v->done_arg, 503, NULL, 0, NULL, "the session ended before it was set up");
	}
	g_hash_table_remove(s->viewers, v->id);
	if (u) {
		g_ptr_array_remove(u->viewers, v);
		if (u->viewers->len == 0 && !u->linger)
			u->linger = g_timeout_add((guint)s->linger_ms, linger_cb, u);
	}
	if (v->burst_timer)
		g_source_remove(v->burst_timer);
	if (v->q_timer)
		g_source_remove(v->q_timer);
	queue_clear(v);
	free(v->q);
	cn_wrtc_peer_free(v->peer);
	free(v->offer);
	free(v);
}

static void viewer_fail(struct viewer *v, int status, const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!v->answered) {
		v->answered = true;
		v->s->rejected[status == 406 ? REJ_CODEC : status == 400 ? REJ_BAD_OFFER : REJ_UPSTREAM]++;
		cn_log_info("sfu", "viewer of '%s' refused %d: %s", v->up ? v->up->key : "?", status, why);
		v->done(v->done_arg, status, NULL, 0, NULL, why);
	}
	viewer_free(v);
}

/* The upstream's format is known: pick the viewer's and start its peer. */
static void start_viewer(struct viewer *v)
{
	char err[300];
	int idc = (int)(v->up->profile_level_id >> 16);

	v->format = cn_sdp_pick_format(&v->offer->media[v->mline], CN_SDP_CODEC_H264, idc);
	if (v->format < 0) {
		viewer_fail(v, 406, "the camera sends H.264; the offer has no H.264 format with packetization-mode=1");
		return;
	}
	int rc = cn_wrtc_peer_new(g_main_context_default(), &v->s->wconf, v->s->cert,
				  &v->offer->media[v->mline], &viewer_events, v, &v->peer, err, sizeof(err));
	if (rc < 0)
		viewer_fail(v, rc == -EINVAL ? 400 : 503, "%s", err);
}

/* ---- upstream: life cycle and signalling -------------------------------------------- */

static void upstream_fail(struct upstream *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void upstream_fail(struct upstream *u, const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	cn_log_warn("sfu", "'%s': upstream failed: %s", u->key, why);
	/* Viewers still waiting hear why; the others are closed (they reconnect). */
	while (u->viewers->len) {
		struct viewer *v = g_ptr_array_index(u->viewers, u->viewers->len - 1);
		if (!v->answered) {
			viewer_fail(v, 502, "the camera's edge: %s", why);
		} else {
			v->up = NULL;
			g_ptr_array_remove_index(u->viewers, u->viewers->len - 1);
			viewer_free(v);
		}
	}
	upstream_free(u);
}

static void upstream_free(struct upstream *u)
{
	struct relay_sfu *s = u->s;

	/* viewers first (without lingering for them) */
	while (u->viewers->len) {
		struct viewer *v = g_ptr_array_index(u->viewers, u->viewers->len - 1);
		g_ptr_array_remove_index(u->viewers, u->viewers->len - 1);
		v->up = NULL;
		viewer_free(v);
	}
	if (u->offered && s->sig.close)
		s->sig.close(s->sig.arg, u->key, u->ticket);
	if (u->peer) {
		struct cn_wrtc_rx_stats rx;
		cn_wrtc_get_rx_stats(u->peer, &rx);
		s->rx_closed.bad += rx.bad;
		s->rx_closed.nacked += rx.nacked;
		s->rx_closed.lost += rx.lost > 0 ? rx.lost : 0;
	}
	g_hash_table_remove(s->ups, u->key);
	if (u->linger)
		g_source_remove(u->linger);
	if (u->answer_deadline)
		g_source_remove(u->answer_deadline);
	cn_wrtc_peer_free(u->peer);
	for (int i = 0; i < RING; i++)
		pkt_unref(u->ring[i]);
	gop_clear(u);
	free(u->gop);
	g_ptr_array_free(u->viewers, TRUE);
	s->up_closed++;
	free(u);
}

/* "AB:CD:..." (95 characters and a NUL) */
static void hex_fp(const uint8_t fp[32], char out[96])
{
	static const char hex[] = "0123456789ABCDEF";

	for (int i = 0; i < 32; i++) {
		out[i * 3] = hex[fp[i] >> 4];
		out[i * 3 + 1] = hex[fp[i] & 15];
		out[i * 3 + 2] = i < 31 ? ':' : '\0';
	}
}

/* Our recvonly offer: H.264 packetization-mode 1 in the three common profiles (the edge
 * picks the camera's), NACK, PLI, FIR; BUNDLE and rtcp-mux. */
static int write_offer(struct upstream *u, struct cn_buf *out)
{
	struct cn_sdp_answer *t = calloc(1, sizeof(*t)); /* only its transport fields */
	char fp[96];
	uint64_t sid;
	static const char *const profiles[] = { "42e01f", "4d001f", "640032" };
	int rc;

	if (!t)
		return -ENOMEM;
	cn_wrtc_local(u->peer, t);
	hex_fp(t->fingerprint, fp);
	cn_random_bytes(&sid, sizeof(sid));
	rc = cn_buf_printf(out,
			   "v=0\r\no=- %llu 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
			   "a=msid-semantic: WMS\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97 98\r\n"
			   "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n"
			   "a=rtcp-mux\r\na=rtcp-rsize\r\na=ice-ufrag:%s\r\na=ice-pwd:%s\r\n"
			   "a=ice-options:trickle\r\na=fingerprint:sha-256 %s\r\na=setup:actpass\r\n",
			   (unsigned long long)(sid >> 1), t->ice_ufrag, t->ice_pwd, fp);
	for (int i = 0; rc >= 0 && i < 3; i++)
		rc = cn_buf_printf(out,
				   "a=rtpmap:%d H264/90000\r\n"
				   "a=fmtp:%d level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=%s\r\n"
				   "a=rtcp-fb:%d nack\r\na=rtcp-fb:%d nack pli\r\na=rtcp-fb:%d ccm fir\r\n",
				   96 + i, 96 + i, profiles[i], 96 + i, 96 + i, 96 + i);
	for (int i = 0; rc >= 0 && i < t->ncandidates; i++)
		rc = cn_buf_printf(out, "a=candidate:%s\r\n", t->candidates[i] + strlen("candidate:"));
	if (rc >= 0)
		rc = cn_buf_append_str(out, "a=end-of-candidates\r\n");
	free(t);
	return rc < 0 ? rc : 0;
}

static gboolean answer_deadline_cb(gpointer data)
{
	struct upstream *u = data;

	u->answer_deadline = 0;
	upstream_fail(u, "no answer within %d s", UPSTREAM_ANSWER_MS / 1000);
	return G_SOURCE_REMOVE;
}

static void on_up_gathered(struct cn_wrtc_peer *p, void *arg)
{
	struct upstream *u = arg;
	struct relay_sfu *s = u->s;
	struct cn_buf offer;
	char err[300] = "";
	int rc;

	(void)p;
	cn_buf_init(&offer, 64 * 1024);
	if ((rc = write_offer(u, &offer)) < 0) {
		cn_buf_free(&offer);
		upstream_fail(u, "the offer could not be written: %s", cn_strerror(rc));
		return;
	}
	u->ticket = ++s->next_ticket;
	if (!s->sig.offer) {
		cn_buf_free(&offer);
		upstream_fail(u, "no way to reach the camera's edge (no broker, no sfu_edge_url)");
		return;
	}
	rc = s->sig.offer(s->sig.arg, u->key, u->ticket, offer.data, offer.len, err, sizeof(err));
	cn_buf_free(&offer);
	if (rc < 0) {
		upstream_fail(u, "%s", err[0] ? err : cn_strerror(rc));
		return;
	}
	u->offered = true;
	u->answer_deadline = g_timeout_add(UPSTREAM_ANSWER_MS, answer_deadline_cb, u);
}

static void on_up_secure(struct cn_wrtc_peer *p, void *arg)
{
	struct upstream *u = arg;
	char pair[200];

	cn_wrtc_describe_pair(p, pair, sizeof(pair));
	cn_log_info("sfu", "'%s': upstream flowing (%s)", u->key, pair);
}

static void on_up_closed(struct cn_wrtc_peer *p, void *arg, const char *reason)
{
	(void)p;
	upstream_fail(arg, "%s", reason);
}

static const struct cn_wrtc_events upstream_events = {
	.gathered = on_up_gathered,
	.secure = on_up_secure,
	.closed = on_up_closed,
	.rtp = on_up_rtp,
};

static struct upstream *upstream_by_ticket(struct relay_sfu *s, uint64_t ticket)
{
	GHashTableIter it;
	gpointer k, val;

	g_hash_table_iter_init(&it, s->ups);
	while (g_hash_table_iter_next(&it, &k, &val))
		if (((struct upstream *)val)->ticket == ticket)
			return val;
	return NULL;
}

void relay_sfu_upstream_answer(struct relay_sfu *s, uint64_t ticket, int status, const char *sdp,
			       size_t len, const char *err)
{
	struct upstream *u = upstream_by_ticket(s, ticket);
	struct cn_sdp *a = NULL;
	char why[300];
	int mi = -1;

	if (!u || u->answered)
		return;
	if (u->answer_deadline) {
		g_source_remove(u->answer_deadline);
		u->answer_deadline = 0;
	}
	if (status != 201) {
		upstream_fail(u, "%s%d: %s", status < 0 ? "error " : "HTTP ", status, err ? err : "");
		return;
	}
	if (!(a = malloc(sizeof(*a)))) {
		upstream_fail(u, "out of memory");
		return;
	}
	if (cn_sdp_parse(sdp, len, a, why, sizeof(why)) < 0) {
		free(a);
		upstream_fail(u, "its answer does not parse: %s", why);
		return;
	}
	for (int i = 0; i < a->nmedia && mi < 0; i++)
		if (a->media[i].kind == CN_SDP_VIDEO && a->media[i].port != 0)
			mi = i;
	const struct cn_sdp_media *m = mi >= 0 ? &a->media[mi] : NULL;
	if (!m || m->nformats < 1 || m->formats[0].codec != CN_SDP_CODEC_H264) {
		free(a);
		upstream_fail(u, "its answer accepts no H.264 video");
		return;
	}
	u->profile_level_id = m->formats[0].profile_level_id;
	if (cn_wrtc_set_answer(u->peer, m, why, sizeof(why)) < 0) {
		free(a);
		upstream_fail(u, "its answer cannot be used: %s", why);
		return;
	}
	free(a);
	u->answered = true;
	cn_log_info("sfu", "'%s': upstream answered (H.264 profile-level-id %06x)", u->key,
		    u->profile_level_id);
	/* Viewers waited for the format; starting one may fail and remove it. */
	for (guint i = u->viewers->len; i-- > 0;) {
		if (i >= u->viewers->len)
			continue;
		struct viewer *v = g_ptr_array_index(u->viewers, i);
		if (!v->peer)
			start_viewer(v);
	}
}

static struct upstream *upstream_open(struct relay_sfu *s, const char *key, char *err, size_t errcap)
{
	struct upstream *u = calloc(1, sizeof(*u));
	int rc;

	if (!u || !(u->gop = calloc(GOP_MAX_PKTS, sizeof(*u->gop)))) {
		free(u);
		cn_fail(-ENOMEM, err, errcap, "out of memory");
		return NULL;
	}
	u->s = s;
	cn_strlcpy(u->key, key, sizeof(u->key));
	u->viewers = g_ptr_array_new();
	u->created_ms = cn_time_wall_ms();
	if ((rc = cn_wrtc_offerer_new(g_main_context_default(), &s->wconf, s->cert, &upstream_events, u,
				      &u->peer, err, errcap)) < 0) {
		g_ptr_array_free(u->viewers, TRUE);
		free(u->gop);
		free(u);
		return NULL;
	}
	g_hash_table_insert(s->ups, u->key, u);
	s->ups_total++;
	cn_log_info("sfu", "'%s': opening the upstream", key);
	return u;
}

/* ---- API ----------------------------------------------------------------------------- */

void relay_sfu_set_signal(struct relay_sfu *s, const struct relay_sfu_signal *sig)
{
	s->sig = *sig;
}

int relay_sfu_join(struct relay_sfu *s, const char *camera_key, const char *offer, size_t len,
		   relay_sfu_done_fn done, void *arg, char *err, size_t errcap)
{
	struct upstream *u;
	struct viewer *v;
	char why[300];
	int status;

	if (!*camera_key || strlen(camera_key) >= sizeof(u->key)) {
		s->rejected[REJ_NOT_FOUND]++;
		cn_fail(-EINVAL, err, errcap, "bad camera key");
		return 404;
	}
	u = g_hash_table_lookup(s->ups, camera_key);
	if (u && (int)u->viewers->len >= s->max_viewers) {
		s->rejected[REJ_LIMIT]++;
		cn_fail(-EBUSY, err, errcap, "'%s' already has %u viewers through this relay (sfu_max_viewers)",
			camera_key, u->viewers->len);
		return 503;
	}
	if (!(v = calloc(1, sizeof(*v))) || !(v->offer = malloc(sizeof(*v->offer))) ||
	    !(v->q = calloc((size_t)s->qcap, sizeof(*v->q)))) {
		if (v) {
			free(v->offer);
			free(v);
		}
		cn_fail(-ENOMEM, err, errcap, "out of memory");
		return 503;
	}
	v->qcap = s->qcap;
	if (cn_sdp_parse(offer, len, v->offer, why, sizeof(why)) < 0) {
		s->rejected[REJ_BAD_OFFER]++;
		status = cn_fail(400, err, errcap, "malformed offer: %s", why);
		goto out_refused;
	}
	v->mline = -1;
	for (int i = 0; i < v->offer->nmedia && v->mline < 0; i++) {
		const struct cn_sdp_media *m = &v->offer->media[i];
		if (m->kind == CN_SDP_VIDEO && m->port != 0 &&
		    (m->dir == CN_SDP_RECVONLY || m->dir == CN_SDP_SENDRECV))
			v->mline = i;
	}
	if (v->mline < 0) {
		s->rejected[REJ_BAD_OFFER]++;
		status = cn_fail(400, err, errcap, "the offer has no video section that can receive (recvonly or sendrecv)");
		goto out_refused;
	}
	if (cn_sdp_pick_format(&v->offer->media[v->mline], CN_SDP_CODEC_H264, 0) < 0) {
		s->rejected[REJ_CODEC]++;
		status = cn_fail(406, err, errcap, "the offer has no H.264 format with packetization-mode=1");
		goto out_refused;
	}
	if (!u && !(u = upstream_open(s, camera_key, why, sizeof(why)))) {
		s->rejected[REJ_UPSTREAM]++;
		status = cn_fail(503, err, errcap, "the upstream could not be opened: %s", why);
		goto out_refused;
	}
	if (u->linger) {
		g_source_remove(u->linger);
		u->linger = 0;
	}
	v->s = s;
	v->up = u;
	v->done = done;
	v->done_arg = arg;
	v->track = -1;
	cn_random_id(v->id, sizeof(v->id));
	g_hash_table_insert(s->viewers, v->id, v);
	g_ptr_array_add(u->viewers, v);
	if (u->answered) {
		/* a failure here answers through done, never from inside this call */
		int idc = (int)(u->profile_level_id >> 16);
		v->format = cn_sdp_pick_format(&v->offer->media[v->mline], CN_SDP_CODEC_H264, idc);
		int rc = cn_wrtc_peer_new(g_main_context_default(), &s->wconf, s->cert,
					  &v->offer->media[v->mline], &viewer_events, v, &v->peer, why,
					  sizeof(why));
		if (rc < 0) {
			g_hash_table_remove(s->viewers, v->id);
			g_ptr_array_remove(u->viewers, v);
			if (u->viewers->len == 0 && !u->linger)
				u->linger = g_timeout_add((guint)s->linger_ms, linger_cb, u);
			s->rejected[REJ_BAD_OFFER]++;
			status = cn_fail(rc == -EINVAL ? 400 : 503, err, errcap, "%s", why);
			goto out_refused;
		}
	}
	return 0;
out_refused:
	free(v->offer);
	free(v->q);
	free(v);
	return status;
}

void relay_sfu_join_cancel(struct relay_sfu *s, void *arg)
{
	GHashTableIter it;
	gpointer k, val;

	g_hash_table_iter_init(&it, s->viewers);
	while (g_hash_table_iter_next(&it, &k, &val)) {
		struct viewer *v = val;
		if (!v->answered && v->done_arg == arg) {
			v->answered = true; /* done must not be called */
			viewer_free(v);
			return;
		}
	}
}

int relay_sfu_trickle(struct relay_sfu *s, const char *viewer_id, const char *frag, size_t len,
		      char *err, size_t errcap)
{
	struct viewer *v = g_hash_table_lookup(s->viewers, viewer_id);
	struct cn_sdp_frag *fr;
	int status = 0;

	if (!v)
		return cn_fail(404, err, errcap, "no viewer '%s'", viewer_id);
	if (!v->peer)
		return cn_fail(409, err, errcap, "the session is still being set up");
	if (!(fr = calloc(1, sizeof(*fr))))
		return 503;
	if (cn_sdp_parse_frag(frag, len, fr, err, errcap) < 0) {
		status = 400;
	} else if (fr->ice_ufrag[0] && strcmp(fr->ice_ufrag, cn_wrtc_remote_ufrag(v->peer)) != 0) {
		cn_fail(409, err, errcap, "ICE restart is not supported: start a new session");
		status = 409;
	} else {
		for (int i = 0; i < fr->ncandidates && !status; i++)
			if (cn_wrtc_add_candidate(v->peer, fr->candidates[i], err, errcap) < 0)
				status = 400;
		if (!status && fr->end_of_candidates)
			cn_wrtc_end_of_candidates(v->peer);
	}
	free(fr);
	return status;
}

int relay_sfu_leave(struct relay_sfu *s, const char *viewer_id)
{
	struct viewer *v = g_hash_table_lookup(s->viewers, viewer_id);

	if (!v)
		return 404;
	cn_log_info("sfu", "viewer %s of '%s' left", v->id, v->up ? v->up->key : "?");
	viewer_free(v);
	return 0;
}

int relay_sfu_viewers(struct relay_sfu *s, const char *camera_key)
{
	struct upstream *u = s ? g_hash_table_lookup(s->ups, camera_key) : NULL;

	return u ? (int)u->viewers->len : 0;
}

/* ---- the relay's own route (a relay beside an edge: sfu_edge_url) ---------------------- */

struct http_join {
	struct relay_sfu *s;
	uint64_t req_id;
	char camera[128];
};

static gboolean leave_idle(gpointer data)
{
	struct http_join *j = data;

	relay_sfu_leave(j->s, j->camera); /* here camera holds the viewer id */
	free(j);
	return G_SOURCE_REMOVE;
}

static void http_done(void *arg, int status, const char *answer, size_t len, const char *viewer_id,
		      const char *err)
{
	struct http_join *j = arg;
	struct cn_http_resp resp;
	char loc[300];

	cn_http_resp_init(&resp);
	cn_http_cors(&resp);
	if (status == 201) {
		resp.status = 201;
		cn_strlcpy(resp.content_type, "application/sdp", sizeof(resp.content_type));
		cn_buf_init(&resp.body, 64 * 1024);
		cn_buf_append(&resp.body, answer, len);
		snprintf(loc, sizeof(loc), "/sfu/whep/%s/%s", j->camera, viewer_id);
		cn_http_resp_header(&resp, "location", loc);
		snprintf(loc, sizeof(loc), "\"%s\"", viewer_id);
		cn_http_resp_header(&resp, "etag", loc);
	} else {
		cn_http_problem(&resp, status, status == 502 ? "Bad Gateway" : status == 406 ? "Not Acceptable"
								      : "Service Unavailable",
				"%s", err ? err : "");
	}
	if (cn_http_respond(j->s->r->d->http, j->req_id, &resp) == -ENOENT && status == 201) {
		/* the client left before its answer: end the viewer, outside this callback */
		cn_strlcpy(j->camera, viewer_id, sizeof(j->camera));
		g_idle_add(leave_idle, j);
		return;
	}
	free(j);
}

static bool content_type_is(const struct cn_http_req *req, const char *want)
{
	char ct[128];
	size_t n = strlen(want);

	if (cn_http_req_header(req, "content-type", ct, sizeof(ct)) < 0)
		return false;
	return !strncasecmp(ct, want, n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* 0 when the bearer is sfu_viewer_token; else resp is the refusal. */
static int check_token(struct relay_sfu *s, const struct cn_http_req *req, struct cn_http_resp *resp)
{
	char h[600];
	const char *want = s->r->conf->sfu_viewer_token;

	if (cn_http_req_header(req, "authorization", h, sizeof(h)) == 0 && !strncmp(h, "Bearer ", 7) &&
	    strlen(h + 7) == strlen(want) && cn_ct_equal(h + 7, want, strlen(want)))
		return 0;
	s->rejected[REJ_UNAUTHORIZED]++;
	cn_http_problem(resp, 401, "Unauthorized", "a bearer token (sfu_viewer_token) is required");
	cn_http_resp_header(resp, "www-authenticate", "Bearer realm=\"canopy-relay\"");
	cn_http_cors(resp);
	return 1;
}

static int post_sfu(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct relay_sfu *s = arg;
	struct http_join *j;
	char cam[128], vid[48], err[400];
	int status;

	if (check_token(s, req, resp))
		return 0;
	if (cn_http_split_path(req->path, "/sfu/whep/", cam, sizeof(cam), vid, sizeof(vid)) < 0 || vid[0]) {
		s->rejected[REJ_NOT_FOUND]++;
		cn_http_cors(resp);
		return cn_http_problem(resp, 404, "Not Found", "POST goes to /sfu/whep/<camera>"), 0;
	}
	if (!content_type_is(req, "application/sdp")) {
		s->rejected[REJ_BAD_OFFER]++;
		cn_http_cors(resp);
		return cn_http_problem(resp, 415, "Unsupported Media Type",
				       "the offer must be sent as Content-Type: application/sdp"), 0;
	}
	if (!(j = calloc(1, sizeof(*j))))
		return -ENOMEM;
	j->s = s;
	j->req_id = req->id;
	cn_strlcpy(j->camera, cam, sizeof(j->camera));
	if ((status = relay_sfu_join(s, cam, req->body.p, req->body.len, http_done, j, err, sizeof(err)))) {
		free(j);
		cn_http_cors(resp);
		return cn_http_problem(resp, status, status == 400 ? "Bad Request" : status == 406 ? "Not Acceptable"
										    : "Service Unavailable",
				       "%s", err), 0;
	}
	return CN_HTTP_DEFER;
}

static int patch_sfu(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct relay_sfu *s = arg;
	char cam[128], vid[48], err[400];
	int status;

	if (check_token(s, req, resp))
		return 0;
	cn_http_cors(resp);
	if (cn_http_split_path(req->path, "/sfu/whep/", cam, sizeof(cam), vid, sizeof(vid)) < 0 || !vid[0])
		return cn_http_problem(resp, 404, "Not Found", "not a session URL"), 0;
	if (!content_type_is(req, "application/trickle-ice-sdpfrag"))
		return cn_http_problem(resp, 415, "Unsupported Media Type",
				       "PATCH takes Content-Type: application/trickle-ice-sdpfrag"), 0;
	if ((status = relay_sfu_trickle(s, vid, req->body.p, req->body.len, err, sizeof(err))))
		return cn_http_problem(resp, status, status == 404 ? "Not Found" : status == 409 ? "Conflict"
										     : "Bad Request",
				       "%s", err), 0;
	resp->status = 204;
	return 0;
}

static int delete_sfu(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct relay_sfu *s = arg;
	char cam[128], vid[48];

	if (check_token(s, req, resp))
		return 0;
	cn_http_cors(resp);
	if (cn_http_split_path(req->path, "/sfu/whep/", cam, sizeof(cam), vid, sizeof(vid)) < 0 || !vid[0] || relay_sfu_leave(s, vid))
		return cn_http_problem(resp, 404, "Not Found", "no such session"), 0;
	resp->status = 200;
	return 0;
}

static int options_sfu(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	(void)req;
	(void)arg;
	return cn_http_preflight(resp, "POST, PATCH, DELETE, OPTIONS",
				 "Authorization, Content-Type, If-Match");
}

/* ---- start, stop, metrics -------------------------------------------------------------- */

int relay_sfu_start(struct relay *r, struct relay_sfu **out)
{
	const struct relay_conf *c = r->conf;
	struct relay_sfu *s = calloc(1, sizeof(*s));
	struct cn_http_server *h = r->d->http;
	int rc;

	if (!s)
		return -ENOMEM;
	s->r = r;
	if (c->sfu_port_min > 0 && c->sfu_port_max < c->sfu_port_min) {
		cn_log_error("sfu", "sfu_port_max must be at least sfu_port_min");
		free(s);
		return CN_E_CONFIG;
	}
	if (c->sfu_edge_url[0] && !c->sfu_viewer_token[0]) {
		cn_log_error("sfu", "sfu_edge_url needs sfu_viewer_token (the bearer token of /sfu/whep/)");
		free(s);
		return CN_E_CONFIG;
	}
	if ((rc = cn_dtls_cert_new(&s->cert)) < 0) {
		free(s);
		return rc;
	}
	s->wconf.addresses = c->sfu_webrtc_addresses;
	s->wconf.port_min = (int)c->sfu_port_min;
	s->wconf.port_max = (int)c->sfu_port_max;
	s->wconf.timeout_ms = c->sfu_session_timeout;
	s->wconf.dtls_active = true; /* see cn_wrtc_conf: no lost ClientHello, no 1 s stall */
	s->linger_ms = c->sfu_linger;
	s->max_viewers = (int)c->sfu_max_viewers;
	s->qcap = (int)c->sfu_queue_packets;
	s->ups = g_hash_table_new(g_str_hash, g_str_equal);
	s->viewers = g_hash_table_new(g_str_hash, g_str_equal);
	if ((rc = cn_metrics_add_collector(relay_sfu_metrics, s)) < 0) {
		relay_sfu_stop(s);
		return rc;
	}
	if (c->sfu_edge_url[0]) {
		struct relay_sfu_signal sig = { relay_sfu_edge_offer, relay_sfu_edge_close, NULL };
		if ((rc = relay_sfu_edge_new(s, c->sfu_edge_url, c->sfu_edge_token_file, &s->edge)) < 0) {
			relay_sfu_stop(s);
			return rc;
		}
		sig.arg = s->edge;
		relay_sfu_set_signal(s, &sig);
		if ((rc = cn_http_route(h, CN_HTTP_POST, "/sfu/whep/", post_sfu, s)) < 0 ||
		    (rc = cn_http_route(h, CN_HTTP_PATCH, "/sfu/whep/", patch_sfu, s)) < 0 ||
		    (rc = cn_http_route(h, CN_HTTP_DELETE, "/sfu/whep/", delete_sfu, s)) < 0 ||
		    (rc = cn_http_route(h, CN_HTTP_OPTIONS, "/sfu/whep/", options_sfu, s)) < 0) {
			relay_sfu_stop(s);
			return rc;
		}
		cn_log_info("sfu", "upstreams by plain WHEP to %s; viewers at /sfu/whep/<camera>", c->sfu_edge_url);
	}
	*out = s;
	return 0;
}

void relay_sfu_stop(struct relay_sfu *s)
{
	GHashTableIter it;
	gpointer k, v;

	if (!s)
		return;
	cn_metrics_remove_collector(relay_sfu_metrics, s);
	for (;;) {
		g_hash_table_iter_init(&it, s->ups);
		if (!g_hash_table_iter_next(&it, &k, &v))
			break;
		upstream_free(v);
	}
	for (;;) { /* viewers of no upstream (none expected) */
		g_hash_table_iter_init(&it, s->viewers);
		if (!g_hash_table_iter_next(&it, &k, &v))
			break;
		((struct viewer *)v)->up = NULL;
		viewer_free(v);
	}
	g_hash_table_destroy(s->ups);
	g_hash_table_destroy(s->viewers);
	relay_sfu_edge_free(s->edge);
	cn_dtls_cert_free(s->cert);
	free(s);
}

static int family(struct cn_buf *out, const char *name, const char *type, const char *help,
		  unsigned long long v)
{
	int rc = cn_metrics_family(out, name, type, help);

	return rc < 0 ? rc : cn_buf_printf(out, "%s %llu\n", name, v);
}

int relay_sfu_metrics(struct cn_buf *out, void *arg)
{
	struct relay_sfu *s = arg;
	int rc;

	if ((rc = family(out, "canopy_sfu_upstreams", "gauge", "cameras pulled from their edges (one upstream each)",
			 g_hash_table_size(s->ups))) < 0 ||
	    (rc = family(out, "canopy_sfu_upstreams_total", "counter", "upstreams opened",
			 (unsigned long long)s->ups_total)) < 0 ||
	    (rc = family(out, "canopy_sfu_upstreams_closed_total", "counter", "upstreams closed",
			 (unsigned long long)s->up_closed)) < 0 ||
	    (rc = family(out, "canopy_sfu_viewers", "gauge", "viewers served by the SFU",
			 g_hash_table_size(s->viewers))) < 0 ||
	    (rc = family(out, "canopy_sfu_viewers_total", "counter", "viewers answered",
			 (unsigned long long)s->viewers_total)) < 0 ||
	    (rc = family(out, "canopy_sfu_upstream_packets_total", "counter", "RTP packets received from edges",
			 (unsigned long long)s->up_packets)) < 0 ||
	    (rc = family(out, "canopy_sfu_upstream_bytes_total", "counter", "RTP payload bytes received from edges",
			 (unsigned long long)s->up_bytes)) < 0 ||
	    (rc = family(out, "canopy_sfu_packets_forwarded_total", "counter", "RTP packets sent to viewers",
			 (unsigned long long)s->fwd_packets)) < 0 ||
	    (rc = family(out, "canopy_sfu_bytes_forwarded_total", "counter", "RTP payload bytes sent to viewers",
			 (unsigned long long)s->fwd_bytes)) < 0 ||
	    (rc = family(out, "canopy_sfu_nacks_served_total", "counter",
			 "packets a viewer NACKed, resent from the relay's buffer",
			 (unsigned long long)s->nacks_served)) < 0 ||
	    (rc = family(out, "canopy_sfu_nacks_missed_total", "counter",
			 "packets a viewer NACKed that the relay no longer had",
			 (unsigned long long)s->nacks_missed)) < 0 ||
	    (rc = family(out, "canopy_sfu_plis_upstream_total", "counter",
			 "keyframe requests sent to edges (viewers' PLIs aggregated, at most one a second)",
			 (unsigned long long)s->plis_up)) < 0 ||
	    (rc = family(out, "canopy_sfu_keyframe_answers_total", "counter",
			 "viewers' keyframe requests answered from the relay's keyframe cache",
			 (unsigned long long)s->key_answers)) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_sfu_drops_total", "counter",
				    "packets not sent to a viewer, by reason")) < 0)
		return rc;
	struct cn_wrtc_rx_stats rx = s->rx_closed;
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, s->ups);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct cn_wrtc_rx_stats one;
		if (!((struct upstream *)v)->peer)
			continue;
		cn_wrtc_get_rx_stats(((struct upstream *)v)->peer, &one);
		rx.bad += one.bad;
		rx.nacked += one.nacked;
		rx.lost += one.lost > 0 ? one.lost : 0;
	}
	for (int i = 0; i < DROP_COUNT; i++)
		if ((rc = cn_buf_printf(out, "canopy_sfu_drops_total{reason=\"%s\"} %llu\n", drop_names[i],
					(unsigned long long)s->drops[i])) < 0)
			return rc;
	if ((rc = family(out, "canopy_sfu_upstream_nacked_total", "counter",
			 "upstream packets found missing and NACKed to the edge (once each)",
			 (unsigned long long)rx.nacked)) < 0 ||
	    (rc = family(out, "canopy_sfu_upstream_lost_total", "counter",
			 "upstream packets never received (RFC 3550 cumulative loss, at the last report)",
			 (unsigned long long)rx.lost)) < 0 ||
	    (rc = family(out, "canopy_sfu_upstream_bad_total", "counter",
			 "upstream datagrams refused: SRTP authentication or RTP parsing failed",
			 (unsigned long long)rx.bad)) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_sfu_rejected_total", "counter", "viewer joins refused, by reason")) < 0)
		return rc;
	for (int i = 0; i < REJ_COUNT; i++)
		if ((rc = cn_buf_printf(out, "canopy_sfu_rejected_total{reason=\"%s\"} %llu\n", rej_names[i],
					(unsigned long long)s->rejected[i])) < 0)
			return rc;
	return 0;
}
