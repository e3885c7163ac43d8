/* edge_whep.c: WHEP (RFC 9725) sessions: offer/answer over HTTP, live frames from the GOP cache and the ingest, archive playback. */
#include "edge_whep.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>

#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_fields.h"
#include "cn_http.h"
#include "cn_json.h"
#include "cn_jwt.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_rtp.h"
#include "cn_sdp.h"
#include "cn_time.h"
#include "cn_webrtc.h"
#include "edge.h"
#include "edge_live.h"
#include "edge_playback.h"
#include "edge_relay.h"
#include "edge_subpull.h"
#include "edge_uplink.h"

#define BURST_BYTES_PER_TICK 25000 /* catch-up pacing: 20 Mbit/s in 10 ms ticks */
#define BURST_TICK_MS 10
#define BURST_MAX (EDGE_LIVE_GOP_FRAMES + 128)
#define KEYFRAME_ANSWER_MIN_MS 2000 /* PLI/FIR answered from the cache at most this often */
#define RETRY_AFTER_S "5"
#define SUB_IDLE_STOP_MS 30000 /* a sub stream nobody watched this long is disconnected */

enum whep_reject {
	REJ_BAD_REQUEST,
	REJ_UNAUTHORIZED,
	REJ_FORBIDDEN,
	REJ_NOT_FOUND,
	REJ_CODEC,
	REJ_LIMIT,
	REJ_UNAVAILABLE,
	REJ_COUNT,
};

static const char *const reject_names[REJ_COUNT] = {
	"bad_request", "unauthorized", "forbidden", "not_found", "codec", "viewer_limit", "unavailable",
};

struct whep_session {
	struct edge_whep *w;
	char id[40];
	char camera[64];
	bool playback;
	bool sub;
	guint wait_timer;    /* sub stream: waiting for its first keyframe */
	int64_t wait_until_mono;
	int speed;
	int64_t start_ms;
	int64_t created_ms;
	/* the pending POST: answered once our candidates are gathered */
	uint64_t req_id;
	uint64_t origin;      /* 0: our HTTP listener; else the relay link it came through */
	bool told_connected;  /* the relay has been told the path */
	bool answered;
	struct cn_sdp *offer; /* until the answer is written */
	int mline;            /* the offer's video section we answer */
	int format;
	int amline, aformat;  /* its audio section (G.711 pass-through), -1 when none */
	int atrack;
	bool a_anchored;
	int64_t a_pts_anchor_us;
	uint32_t a_ts_anchor;
	int64_t a_sent;       /* samples sent since the anchor */
	uint8_t abuf[160];    /* the next 20 ms packet being filled */
	size_t alen;
	struct cn_wrtc_peer *peer;
	int track;
	struct edge_stream_info info;
	struct edge_live *live;       /* live view */
	struct edge_playback *pb;     /* playback */
	/* frames waiting to go out: the catch-up burst, then whatever arrived during it */
	struct edge_frame *burst[BURST_MAX];
	bool burst_catchup[BURST_MAX];
	int nburst, burst_pos;
	guint burst_timer;
	uint64_t last_index; /* live frames up to this one were sent (or skipped) already */
	uint64_t generation;
	bool need_key;
	bool key_only;       /* a viewer too slow for every frame gets keyframes only */
	int64_t slow_since_ms, fast_since_ms;
	int64_t last_key_answer_ms;
	/* RTP timestamp mapping */
	bool anchored;
	int64_t pts_anchor_us, last_pts_us;
	uint32_t ts_anchor, last_ts;
	uint64_t frames_sent, frames_skipped;
};

struct edge_whep {
	struct edge *e;
	struct edge_whep_remote remote; /* relays (edge_relay.c) */
	struct cn_dtls_cert *cert;
	struct cn_wrtc_conf wconf;
	char stun_ip[64], turn_ip[64];
	GHashTable *sessions; /* id -> session */
	GHashTable *subs;     /* camera id -> struct sub_entry: sub streams being pulled */
	GPtrArray *subs_stopping;
	guint reaper;
	/* packetiser scratch, loop only; reused for every viewer of the same frame */
	struct edge_frame *pk_frame;
	struct cn_rtp_payloads pk;
	size_t pk_cap;
	uint64_t accepted, rejected[REJ_COUNT], closed, frames_sent, frames_skipped, bursts,
		key_answers, send_full;
};

struct sub_entry {
	struct edge_subpull *p;
	int64_t idle_since_ms;
};

static void session_free(struct whep_session *s);
static void check_congestion(struct whep_session *s);
static void answer_failed(struct whep_session *s, int status, const char *title, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- small helpers ------------------------------------------------------------------ */

static int reject(struct edge_whep *w, struct cn_http_resp *resp, enum whep_reject why, int status,
		  const char *title, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int reject(struct edge_whep *w, struct cn_http_resp *resp, enum whep_reject why, int status,
		  const char *title, const char *fmt, ...)
{
	char detail[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	w->rejected[why]++;
	cn_http_problem(resp, status, title, "%s", detail);
	cn_http_cors(resp);
	if (status == 401)
		cn_http_resp_header(resp, "www-authenticate", "Bearer realm=\"canopy-edge\"");
	if (status == 503)
		cn_http_resp_header(resp, "retry-after", RETRY_AFTER_S);
	cn_log_info("whep", "refused %d: %s", status, detail);
	return 0;
}

/* A request that came through a relay (edge_whep_request): the same handlers run on it.
 * req comes first, and conn is NULL, which tells the two kinds apart. */
struct whep_in {
	struct cn_http_req req;
	const char *authorization;
	const char *content_type;
	uint64_t origin;
};

static uint64_t req_origin(const struct cn_http_req *req)
{
	return req->conn ? 0 : ((const struct whep_in *)req)->origin;
}

static int req_header(const struct cn_http_req *req, const char *name, char *out, size_t cap)
{
	const struct whep_in *in = (const struct whep_in *)req;
	const char *v;

	if (req->conn)
		return cn_http_req_header(req, name, out, cap);
	v = !strcmp(name, "authorization") ? in->authorization
	    : !strcmp(name, "content-type") ? in->content_type : NULL;
	if (!v)
		return -ENOENT;
	return cn_strlcpy(out, v, cap) < 0 ? -ENOSPC : 0;
}

/* A deferred answer goes back where the request came from. */
static int respond(struct whep_session *s, struct cn_http_resp *resp)
{
	struct edge_whep *w = s->w;

	if (!s->origin)
		return cn_http_respond(w->e->d->http, s->req_id, resp);
	if (!w->remote.answer) {
		cn_buf_free(&resp->body);
		return -ENOENT;
	}
	return w->remote.answer(w->remote.arg, s->origin, s->req_id, resp);
}

static bool content_type_is(const struct cn_http_req *req, const char *want)
{
	char ct[128];
	size_t n = strlen(want);

	if (req_header(req, "content-type", ct, sizeof(ct)) < 0)
		return false;
	return !strncasecmp(ct, want, n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Verifies the bearer token with the node key, or else with central's keys (viewer
 * tokens from central's live call, docs/relay.md): those must name this edge (claim node)
 * and be viewer tokens. 1 with a 401 in resp on refusal. */
static int view_token(struct edge_whep *w, const struct cn_http_req *req,
		      struct cn_http_resp *resp, int64_t central_leeway, struct cn_jwt_claims *c,
		      cJSON **payload)
{
	struct edge *e = w->e;
	struct cn_ed25519 *keys[EDGE_RELAY_MAX_KEYS];
	char hdr[CN_JWT_MAX_TOKEN + 16], err[256], err2[256];
	int64_t now = cn_time_wall_ms() / 1000;
	size_t nkeys;
	int rc = req_header(req, "authorization", hdr, sizeof(hdr));

	if (rc < 0 || strncmp(hdr, "Bearer ", 7) != 0) {
		cn_http_problem(resp, 401, "Unauthorized",
				rc == -ENOSPC ? "authorization header too long"
					      : "a bearer token is required (Authorization: Bearer <token>)");
		goto refuse;
	}
	if (cn_jwt_verify(hdr + 7, strlen(hdr + 7), &e->d->node_key, 1, now, 30, c, payload, err,
			  sizeof(err)) == 0)
		return 0;
	nkeys = edge_relay_keys(e, keys, EDGE_RELAY_MAX_KEYS);
	if (nkeys && cn_jwt_verify(hdr + 7, strlen(hdr + 7), keys, nkeys, now, central_leeway, c,
				   payload, err2, sizeof(err2)) == 0) {
		const char *typ = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(*payload, "typ"));
		const char *node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(*payload, "node"));

		/* never more than viewing: central's keys open no admin door here */
		if (typ && !strcmp(typ, "viewer") && node && !strcmp(node, edge_uplink_node_id(e)) &&
		    !cn_jwt_has_scope(c, EDGE_SCOPE_ADMIN))
			return 0;
		cJSON_Delete(*payload);
		*payload = NULL;
		cn_http_problem(resp, 401, "Unauthorized", "central's token is not a viewer token for this edge");
		goto refuse;
	}
	cn_http_problem(resp, 401, "Unauthorized", "%s", nkeys ? err2 : err);
refuse:
	cn_http_resp_header(resp, "www-authenticate", "Bearer realm=\"canopy-edge\", error=\"invalid_token\"");
	return 1;
}

/* The bearer token must be the edge's admin token or a viewer token for this camera.
 * *depth_s gets how far back it may play (-1: no limit). 1 with resp filled on refusal.
 * late: PATCH or DELETE of a session, whose URL is a capability: central's viewer tokens
 * (5 minutes) are taken up to a day past expiry, as at the relay (docs/relay.md). */
static int authorize_view(struct edge_whep *w, const struct cn_http_req *req,
			  struct cn_http_resp *resp, const char *camera, bool late, int64_t *depth_s)
{
	struct cn_jwt_claims c;
	cJSON *payload = NULL;
	int rc;

	if (view_token(w, req, resp, late ? 86400 : 30, &c, &payload)) {
		w->rejected[REJ_UNAUTHORIZED]++;
		cn_http_cors(resp);
		return 1;
	}
	if (cn_jwt_has_scope(&c, EDGE_SCOPE_ADMIN)) {
		*depth_s = -1;
		cJSON_Delete(payload);
		return 0;
	}
	if (!cn_jwt_has_scope(&c, EDGE_SCOPE_VIEW)) {
		cJSON_Delete(payload);
		return reject(w, resp, REJ_FORBIDDEN, 403, "Forbidden", "token lacks scope '%s'",
			      EDGE_SCOPE_VIEW) + 1;
	}
	const cJSON *cam = cJSON_GetObjectItemCaseSensitive(payload, "cam");
	const cJSON *depth = cJSON_GetObjectItemCaseSensitive(payload, "adepth");
	if (!cJSON_IsString(cam) || strcmp(cam->valuestring, camera) != 0) {
		rc = reject(w, resp, REJ_FORBIDDEN, 403, "Forbidden",
			    "token is for camera '%s', not '%s'",
			    cJSON_IsString(cam) ? cam->valuestring : "(none)", camera);
		cJSON_Delete(payload);
		return rc + 1;
	}
	*depth_s = cJSON_IsNumber(depth) && depth->valuedouble > 0 ? (int64_t)depth->valuedouble : 0;
	cJSON_Delete(payload);
	return 0;
}

/* ---- sending frames -------------------------------------------------------------------- */

/* Packetises f once for all viewers of it (they receive the same payloads). */
static int packetize(struct edge_whep *w, struct whep_session *s, struct edge_frame *f)
{
	size_t raw = (size_t)f->pkt->size + s->info.prefix_len;
	/* every fragment unit adds up to 3 bytes of headers */
	size_t need = raw + 3 * (raw / (CN_WRTC_MAX_PAYLOAD - 3) + 1) + 4096;
	int maxp = (int)(need / 600) + 16;

	if (w->pk_frame == f)
		return 0;
	edge_frame_unref(w->pk_frame);
	w->pk_frame = NULL;
	if (need > w->pk_cap) {
		uint8_t *b = realloc(w->pk.buf, need);
		struct cn_rtp_payload *t = b ? realloc(w->pk.pkts, (size_t)maxp * sizeof(*t)) : NULL;
		if (!b || !t) {
			if (b)
				w->pk.buf = b;
			return -ENOMEM;
		}
		w->pk.buf = b;
		w->pk.pkts = t;
		w->pk_cap = need;
		w->pk.max_pkts = maxp;
	}
	w->pk.cap = w->pk_cap;
	w->pk.used = 0;
	w->pk.npkts = 0;
	const uint8_t *pre = f->key ? s->info.prefix : NULL;
	size_t prelen = f->key ? s->info.prefix_len : 0;
	int rc = s->info.codec == AV_CODEC_ID_HEVC
			 ? cn_rtp_h265_packetize(f->pkt->data, (size_t)f->pkt->size, f->length_size, pre,
						 prelen, 0, CN_WRTC_MAX_PAYLOAD, &w->pk)
			 : cn_rtp_h264_packetize(f->pkt->data, (size_t)f->pkt->size, f->length_size, pre,
						 prelen, 0, CN_WRTC_MAX_PAYLOAD, &w->pk);
	if (rc < 0)
		return rc;
	w->pk_frame = edge_frame_ref(f);
	return 0;
}

/* RTP time of f for this viewer. Catch-up frames (the cached GOP, archive before the
 * requested time) are squeezed 1 ms apart so the player shows the newest at once. */
static uint32_t rtp_ts(struct whep_session *s, const struct edge_frame *f, bool catchup)
{
	int64_t d = f->pts_us - s->last_pts_us;
	uint32_t ts;

	if (!s->anchored) {
		cn_random_bytes(&ts, sizeof(ts));
	} else if (catchup) {
		ts = s->last_ts + 90;
	} else if (d < -1000000 || d > 5000000) {
		/* the source jumped (reconnect, gap in the archive): continue one frame on */
		ts = s->last_ts + 3000;
	} else {
		int64_t ticks = (f->pts_us - s->pts_anchor_us) * 9 / 100 / s->speed;
		s->last_pts_us = f->pts_us;
		return s->last_ts = s->ts_anchor + (uint32_t)ticks;
	}
	s->anchored = true;
	s->ts_anchor = ts;
	s->pts_anchor_us = f->pts_us;
	s->last_pts_us = f->pts_us;
	return s->last_ts = ts;
}

static void send_frame(struct whep_session *s, struct edge_frame *f, bool catchup)
{
	struct edge_whep *w = s->w;

	if (s->need_key && !f->key) {
		s->frames_skipped++;
		w->frames_skipped++;
		return;
	}
	if (s->key_only && !f->key && !catchup) {
		s->frames_skipped++;
		w->frames_skipped++;
		return;
	}
	if (f->key)
		check_congestion(s);
	if (packetize(w, s, f) < 0) {
		s->need_key = true;
		return;
	}
	int rc = cn_wrtc_send(s->peer, s->track, &w->pk, rtp_ts(s, f, catchup));
	if (rc == CN_E_FULL) {
		/* The socket refused: what follows would not decode; wait for a keyframe. */
		w->send_full++;
		s->need_key = true;
		return;
	}
	if (rc >= 0) {
		s->need_key = false;
		s->frames_sent++;
		w->frames_sent++;
	}
}

/* A viewer that cannot take the stream gets keyframes only until it recovers: better a
 * slide show than a frozen, flooded link. Loss is the evidence (10%, or 5% with a REMB
 * estimate under the stream's bitrate); a delay-based estimate alone is not trusted: a
 * camera cannot slow down, and the start-up burst makes every estimator cautious for a
 * moment. */
static void check_congestion(struct whep_session *s)
{
	struct cn_wrtc_stats st;
	int64_t now = cn_time_mono_ms();
	double need_bps = 0;
	struct edge_stream_info cur;

	if (cn_time_wall_ms() - s->created_ms < 5000)
		return;
	if (s->live && edge_live_info(s->live, &cur) == 0)
		need_bps = cur.kbps * 1000.0;
	cn_wrtc_get_stats(s->peer, &st);
	bool lossy = st.fraction_lost >= 13; /* of 256: 5% */
	bool under = st.remb_bps && need_bps > 0 && (double)st.remb_bps < need_bps * 0.7;
	bool slow = st.fraction_lost >= 26 || (lossy && under);
	if (slow) {
		s->fast_since_ms = 0;
		if (!s->slow_since_ms)
			s->slow_since_ms = now;
		if (!s->key_only && now - s->slow_since_ms > 2000) {
			s->key_only = true;
			cn_log_info("whep", "session %s: viewer loses %d%% (estimate %llu bit/s, stream %.0f bit/s): keyframes only",
				    s->id, st.fraction_lost * 100 / 256, (unsigned long long)st.remb_bps, need_bps);
		}
	} else {
		s->slow_since_ms = 0;
		if (!s->fast_since_ms)
			s->fast_since_ms = now;
		bool room = !st.remb_bps || need_bps <= 0 || (double)st.remb_bps > need_bps * 1.2;
		if (s->key_only && !lossy && room && now - s->fast_since_ms > 2000) {
			s->key_only = false;
			s->need_key = true; /* resume on a clean picture */
			cn_log_info("whep", "session %s: viewer recovered: every frame again", s->id);
		}
	}
}

static gboolean burst_tick(gpointer data)
{
	struct whep_session *s = data;
	size_t budget = BURST_BYTES_PER_TICK;

	while (s->burst_pos < s->nburst && budget > 0) {
		struct edge_frame *f = s->burst[s->burst_pos];
		bool catchup = s->burst_catchup[s->burst_pos];
		s->burst[s->burst_pos++] = NULL;
		send_frame(s, f, catchup);
		budget = (size_t)f->pkt->size >= budget ? 0 : budget - (size_t)f->pkt->size;
		edge_frame_unref(f);
	}
	if (s->burst_pos < s->nburst)
		return G_SOURCE_CONTINUE;
	s->nburst = s->burst_pos = 0;
	s->burst_timer = 0;
	return G_SOURCE_REMOVE;
}

static void burst_add(struct whep_session *s, struct edge_frame *f, bool catchup)
{
	if (s->nburst == BURST_MAX) {
		s->need_key = true; /* overran: the rest would not decode */
		return;
	}
	s->burst[s->nburst] = edge_frame_ref(f);
	s->burst_catchup[s->nburst++] = catchup;
	/* Before the handshake frames wait here; on_secure starts the pacing. */
	if (!s->burst_timer && s->peer && cn_wrtc_state(s->peer) == CN_WRTC_SECURE)
		s->burst_timer = g_timeout_add(BURST_TICK_MS, burst_tick, s);
}

/* Sends the cached GOP: the newest keyframe and what followed, paced (TTFF does not
 * depend on the camera's GOP length). */
static void send_cached_gop(struct whep_session *s)
{
	struct edge_frame *snap[EDGE_LIVE_GOP_FRAMES];
	int n = edge_live_snapshot(s->live, snap, EDGE_LIVE_GOP_FRAMES);

	s->w->bursts++;
	if (s->key_only && n > 1) {
		/* a congested viewer gets the keyframe, not the GOP burst */
		for (int i = 1; i < n; i++)
			edge_frame_unref(snap[i]);
		n = 1;
	}
	for (int i = 0; i < n; i++) {
		/* The first (the keyframe) goes at once: the viewer's first picture. */
		if (i == 0 && !s->burst_timer)
			send_frame(s, snap[i], true);
		else
			burst_add(s, snap[i], true);
		s->last_index = snap[i]->index;
		s->generation = snap[i]->generation;
		edge_frame_unref(snap[i]);
	}
	if (!n)
		s->need_key = true;
}

/* ---- live and playback sources ------------------------------------------------------ */

/* G.711 goes out live (never cached or squeezed), re-cut into 20 ms packets: the RTP/AVP
 * default ptime, and the only size some receivers (aiortc) take. */
static void send_audio(struct whep_session *s, struct edge_frame *f)
{
	const uint8_t *p = f->pkt->data;
	size_t n = (size_t)f->pkt->size;
	/* samples (8 kHz, one byte each) the camera's clock says we are at */
	int64_t at = (f->pts_us - s->a_pts_anchor_us) * 8 / 1000 - (int64_t)s->alen;

	if (s->atrack < 0 || !s->peer || cn_wrtc_state(s->peer) != CN_WRTC_SECURE)
		return;
	if (!s->a_anchored || at < s->a_sent - 1600 || at > s->a_sent + 1600) {
		/* first packet, or the camera's audio clock jumped: start afresh */
		if (!s->a_anchored)
			cn_random_bytes(&s->a_ts_anchor, sizeof(s->a_ts_anchor));
		else
			s->a_ts_anchor += (uint32_t)s->a_sent + 160;
		s->a_pts_anchor_us = f->pts_us;
		s->a_sent = 0;
		s->alen = 0;
		s->a_anchored = true;
	}
	while (n > 0) {
		size_t take = sizeof(s->abuf) - s->alen < n ? sizeof(s->abuf) - s->alen : n;
		memcpy(s->abuf + s->alen, p, take);
		s->alen += take;
		p += take;
		n -= take;
		if (s->alen < sizeof(s->abuf))
			break;
		struct cn_rtp_payload pk = { 0, (uint32_t)s->alen, false };
		struct cn_rtp_payloads one = { s->abuf, sizeof(s->abuf), s->alen, &pk, 1, 1 };
		cn_wrtc_send(s->peer, s->atrack, &one, s->a_ts_anchor + (uint32_t)s->a_sent);
		s->a_sent += (int64_t)s->alen;
		s->alen = 0;
	}
}

static void live_frame(struct edge_frame *f, void *arg)
{
	struct whep_session *s = arg;

	if (f->audio) {
		send_audio(s, f);
		return;
	}
	if (!s->peer || cn_wrtc_state(s->peer) != CN_WRTC_SECURE || f->index <= s->last_index)
		return;
	s->last_index = f->index;
	if (f->gap || f->generation != s->generation) {
		struct edge_stream_info cur;
		if (f->generation != s->generation && edge_live_info(s->live, &cur) == 0) {
			if (cur.codec != s->info.codec) {
				/* Negotiated for the old codec: the viewer must start again. */
				cn_wrtc_close(s->peer, "the camera changed its codec");
				return;
			}
			s->info = cur; /* new parameter sets (resolution change) */
		}
		s->generation = f->generation;
		s->need_key = true;
	}
	if (s->nburst)
		burst_add(s, f, false);
	else
		send_frame(s, f, false);
}

static void live_ended(void *arg)
{
	struct whep_session *s = arg;

	cn_log_info("whep", "session %s: camera '%s' stopped or was reconfigured", s->id, s->camera);
	session_free(s);
}

static void pb_frame(struct edge_frame *f, bool catchup, void *arg)
{
	struct whep_session *s = arg;

	if (f->audio) {
		/* recorded G.711: sent like live audio; none before the picture starts */
		if (!catchup && !s->nburst)
			send_audio(s, f);
		return;
	}
	/* Frames read before the handshake completes wait in the burst queue: the keyframe
	 * before the requested time must not be lost. */
	if (!s->peer || cn_wrtc_state(s->peer) != CN_WRTC_SECURE || s->nburst || catchup)
		burst_add(s, f, catchup);
	else
		send_frame(s, f, false);
}

static void pb_end(const char *why, void *arg)
{
	struct whep_session *s = arg;

	cn_log_info("whep", "session %s: %s", s->id, why);
	if (!s->answered)
		answer_failed(s, 404, "Not Found", "%s", why);
	else
		cn_wrtc_close(s->peer, why); /* BYE, then closed -> session_free */
}

/* ---- peer events ----------------------------------------------------------------------- */

static void answer_failed(struct whep_session *s, int status, const char *title, const char *fmt, ...)
{
	struct cn_http_resp resp;
	char detail[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	cn_http_resp_init(&resp);
	reject(s->w, &resp, status == 404 ? REJ_NOT_FOUND : status == 406 ? REJ_CODEC : REJ_UNAVAILABLE,
	       status, title, "%s", detail);
	s->answered = true;
	respond(s, &resp);
	session_free(s);
}

static void on_gathered(struct cn_wrtc_peer *p, void *arg)
{
	struct whep_session *s = arg;
	struct edge_whep *w = s->w;
	struct cn_sdp_answer *ans = calloc(1, sizeof(*ans));
	struct cn_http_resp resp;
	char loc[200];
	int rc;

	if (!ans) {
		answer_failed(s, 503, "Service Unavailable", "out of memory");
		return;
	}
	cn_random_bytes(&ans->session_id, sizeof(ans->session_id));
	ans->session_id &= 0x7fffffffffffffffULL;
	ans->session_version = 1;
	cn_wrtc_local(p, ans);
	const struct cn_sdp_media *m = &s->offer->media[s->mline];
	const struct cn_sdp_format *fmt = &m->formats[s->format];
	for (int i = 0; i < s->offer->nmedia; i++)
		ans->media[i].accepted = false;
	struct cn_sdp_answer_media *am = &ans->media[s->mline];
	am->accepted = true;
	am->format = s->format;
	am->fb = fmt->fb & (CN_SDP_FB_NACK | CN_SDP_FB_PLI | CN_SDP_FB_FIR | CN_SDP_FB_REMB);
	am->abs_send_time_id = cn_sdp_find_extmap(m, CN_SDP_EXT_ABS_SEND_TIME);
	if (!(am->fb & CN_SDP_FB_REMB))
		am->abs_send_time_id = 0;
	am->dir = CN_SDP_SENDONLY;
	uint32_t ssrc = 0;
	s->track = cn_wrtc_add_track(p, fmt->pt, 90000, (am->fb & CN_SDP_FB_NACK) != 0,
				     am->abs_send_time_id, &ssrc);
	am->ssrc = ssrc;
	cn_strlcpy(am->cname, "canopy", sizeof(am->cname));
	snprintf(am->msid_stream, sizeof(am->msid_stream), "%.30s", s->camera);
	snprintf(am->msid_track, sizeof(am->msid_track), "video-%.20s", s->id);
	if (s->amline >= 0) {
		const struct cn_sdp_format *af = &s->offer->media[s->amline].formats[s->aformat];
		struct cn_sdp_answer_media *aa = &ans->media[s->amline];
		aa->accepted = true;
		aa->format = s->aformat;
		aa->dir = CN_SDP_SENDONLY;
		s->atrack = cn_wrtc_add_track(p, af->pt, 8000, false, 0, &ssrc);
		aa->ssrc = ssrc;
		cn_strlcpy(aa->cname, "canopy", sizeof(aa->cname));
		snprintf(aa->msid_stream, sizeof(aa->msid_stream), "%.30s", s->camera);
		snprintf(aa->msid_track, sizeof(aa->msid_track), "audio-%.20s", s->id);
	}
	cn_http_resp_init(&resp);
	cn_buf_init(&resp.body, 64 * 1024);
	if (s->track < 0 || (rc = cn_sdp_write_answer(s->offer, ans, &resp.body)) < 0) {
		free(ans);
		cn_buf_free(&resp.body);
		answer_failed(s, 503, "Service Unavailable", "the answer could not be written");
		return;
	}
	free(ans);
	free(s->offer);
	s->offer = NULL;
	resp.status = 201;
	cn_strlcpy(resp.content_type, "application/sdp", sizeof(resp.content_type));
	snprintf(loc, sizeof(loc), "/whep/%s/%s", s->camera, s->id);
	cn_http_resp_header(&resp, "location", loc);
	snprintf(loc, sizeof(loc), "\"%s\"", s->id);
	cn_http_resp_header(&resp, "etag", loc);
	cn_http_cors(&resp);
	s->answered = true;
	if (respond(s, &resp) == -ENOENT) {
		cn_log_info("whep", "session %s: the viewer left before its answer", s->id);
		session_free(s);
		return;
	}
	w->accepted++;
	cn_log_info("whep", "session %s: camera '%s' %s, answered", s->id, s->camera,
		    s->playback ? "playback" : "live");
}

static void on_secure(struct cn_wrtc_peer *p, void *arg)
{
	struct whep_session *s = arg;
	char pair[200];

	cn_wrtc_describe_pair(p, pair, sizeof(pair));
	cn_log_info("whep", "session %s: media flowing (%s)", s->id, pair);
	if (s->origin && s->w->remote.session && !s->told_connected) {
		/* The relay counts sessions by path: through a TURN relay, or peer to peer. */
		s->told_connected = true;
		s->w->remote.session(s->w->remote.arg, s->origin, s->id, "connected",
				     strstr(pair, "relay") ? "turn" : "p2p");
	}
	if (s->live)
		send_cached_gop(s);
	else if (s->nburst && !s->burst_timer)
		s->burst_timer = g_timeout_add(BURST_TICK_MS, burst_tick, s);
}

static void on_keyframe(struct cn_wrtc_peer *p, void *arg)
{
	struct whep_session *s = arg;
	int64_t now = cn_time_mono_ms();

	(void)p;
	/* A camera cannot be asked for a keyframe over RTSP; the cache answers. */
	if (!s->live || now - s->last_key_answer_ms < KEYFRAME_ANSWER_MIN_MS || s->nburst)
		return;
	s->last_key_answer_ms = now;
	s->w->key_answers++;
	send_cached_gop(s);
}

static void on_closed(struct cn_wrtc_peer *p, void *arg, const char *reason)
{
	struct whep_session *s = arg;

	(void)p;
	cn_log_info("whep", "session %s (camera '%s') ended: %s", s->id, s->camera, reason);
	if (!s->answered) {
		answer_failed(s, 503, "Service Unavailable", "the session could not be set up: %s", reason);
		return;
	}
	session_free(s);
}

static const struct cn_wrtc_events peer_events = {
	.gathered = on_gathered,
	.secure = on_secure,
	.keyframe = on_keyframe,
	.closed = on_closed,
};

/* Chooses the offer's video section and format for the stream; 0, or 1 with a refusal
 * (status and reason) for answer_failed/reject. */
static int choose(struct whep_session *s, int *status, char *why, size_t cap)
{
	const struct cn_sdp *o = s->offer;
	bool h265 = s->info.codec == AV_CODEC_ID_HEVC;

	s->mline = -1;
	for (int i = 0; i < o->nmedia; i++) {
		const struct cn_sdp_media *m = &o->media[i];
		if (m->kind != CN_SDP_VIDEO || m->port == 0 ||
		    (m->dir != CN_SDP_RECVONLY && m->dir != CN_SDP_SENDRECV))
			continue;
		s->mline = i;
		break;
	}
	if (s->mline < 0) {
		*status = 400;
		snprintf(why, cap, "the offer has no video section that can receive (recvonly or sendrecv)");
		return 1;
	}
	s->format = cn_sdp_pick_format(&o->media[s->mline], h265 ? CN_SDP_CODEC_H265 : CN_SDP_CODEC_H264,
				       s->info.profile);
	s->amline = -1;
	/* Playback: edge_playback fills audio_codec only when the recording has G.711 and
	 * plays at 1x. */
	for (int i = 0; s->info.audio_codec && i < o->nmedia; i++) {
		const struct cn_sdp_media *m = &o->media[i];
		if (m->kind != CN_SDP_AUDIO || m->port == 0 || !o->bundle ||
		    (m->dir != CN_SDP_RECVONLY && m->dir != CN_SDP_SENDRECV))
			continue;
		int f = cn_sdp_pick_format(m, s->info.audio_codec == AV_CODEC_ID_PCM_ALAW ? CN_SDP_CODEC_PCMA
											 : CN_SDP_CODEC_PCMU, 0);
		if (f >= 0) {
			s->amline = i;
			s->aformat = f;
		}
		break;
	}
	if (s->format < 0) {
		*status = 406;
		snprintf(why, cap, "camera '%s' sends %s; the offer has no %s format%s", s->camera,
			 h265 ? "H.265" : "H.264", h265 ? "H.265" : "H.264",
			 h265 ? "" : " with packetization-mode=1");
		return 1;
	}
	return 0;
}

static const char *status_title(int status)
{
	return status == 406 ? "Not Acceptable" : status == 400 ? "Bad Request" : "Service Unavailable";
}

/* Picks the sections and formats to answer and starts the peer (gathering). 0, or the
 * HTTP status of the refusal with the reason in err. */
static int setup_peer(struct whep_session *s, char *err, size_t cap)
{
	int status = 0;

	if (choose(s, &status, err, cap))
		return status;
	int rc = cn_wrtc_peer_new(g_main_context_default(), &s->w->wconf, s->w->cert,
				  &s->offer->media[s->mline], &peer_events, s, &s->peer, err, cap);
	return rc == 0 ? 0 : rc == -EINVAL ? 400 : 503;
}

/* The deferred form: refusals answer the waiting POST. */
static void start_peer(struct whep_session *s)
{
	char err[300];
	int status = setup_peer(s, err, sizeof(err));

	if (status)
		answer_failed(s, status, status_title(status), "%s", err);
}

/* A sub stream being connected on demand: the answer waits for its first keyframe. */
static gboolean sub_wait_tick(gpointer data)
{
	struct whep_session *s = data;
	struct edge_stream_info info;
	char why[200];
	int rc = edge_live_info(s->live, &info);

	if (rc == 0) {
		s->wait_timer = 0;
		s->info = info;
		start_peer(s);
		return G_SOURCE_REMOVE;
	}
	if (rc == -EPIPE || cn_time_mono_ms() > s->wait_until_mono) {
		struct sub_entry *se = g_hash_table_lookup(s->w->subs, s->camera);
		why[0] = '\0';
		if (se)
			edge_subpull_status(se->p, why, sizeof(why));
		s->wait_timer = 0;
		answer_failed(s, 503, "Service Unavailable", "camera '%s': the sub stream did not start (%s)",
			      s->camera, why[0] ? why : "no keyframe yet");
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static void pb_info(const struct edge_stream_info *info, int err, const char *msg, void *arg)
{
	struct whep_session *s = arg;

	if (err < 0) {
		answer_failed(s, err == -ENOENT ? 404 : 503, err == -ENOENT ? "Not Found" : "Service Unavailable",
			      "%s", msg);
		return;
	}
	s->info = *info;
	start_peer(s);
}

/* ---- HTTP ---------------------------------------------------------------------------- */

static int count_viewers(struct edge_whep *w, const char *camera)
{
	GHashTableIter it;
	gpointer k, v;
	int n = 0;

	g_hash_table_iter_init(&it, w->sessions);
	while (g_hash_table_iter_next(&it, &k, &v))
		if (!strcmp(((struct whep_session *)v)->camera, camera))
			n++;
	return n;
}

static int parse_start(const char *v, int64_t *ms)
{
	int64_t n;

	if (cn_str_to_i64(cn_str_from(v), 0, INT64_MAX / 2, &n) == 0) {
		*ms = n;
		return 0;
	}
	return cn_time_parse_rfc3339(v, strlen(v), ms);
}

static int post_whep(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct edge_whep *w = arg;
	struct edge *e = w->e;
	char cam[64], sid[48], v[64], err[300];
	int64_t depth_s = 0, start_ms = 0, speed = 1;
	bool playback = false, sub = false;
	struct edge_ingest *g;
	struct whep_session *s;
	int rc;

	if (cn_http_split_path(req->path, "/whep/", cam, sizeof(cam), sid, sizeof(sid)) < 0 || sid[0])
		return reject(w, resp, REJ_NOT_FOUND, sid[0] ? 405 : 404, sid[0] ? "Method Not Allowed" : "Not Found",
			      sid[0] ? "POST goes to /whep/<camera>; a session URL takes PATCH and DELETE"
				     : "no such WHEP endpoint");
	if (!content_type_is(req, "application/sdp"))
		return reject(w, resp, REJ_BAD_REQUEST, 415, "Unsupported Media Type",
			      "the offer must be sent as Content-Type: application/sdp");
	if (authorize_view(w, req, resp, cam, false, &depth_s))
		return 0;
	if (!(g = edge_cameras_find(&e->cams, cam)))
		return reject(w, resp, REJ_NOT_FOUND, 404, "Not Found", "no camera '%s' on this edge", cam);
	if ((rc = cn_http_query_get(req, "stream", v, sizeof(v))) == 0) {
		if (!strcmp(v, "sub"))
			sub = true;
		else if (strcmp(v, "main") != 0)
			return reject(w, resp, REJ_BAD_REQUEST, 400, "Bad Request",
				      "stream must be 'main' or 'sub', not '%s'", v);
	}
	if (cn_http_query_get(req, "start", v, sizeof(v)) == 0) {
		if (parse_start(v, &start_ms) < 0)
			return reject(w, resp, REJ_BAD_REQUEST, 400, "Bad Request",
				      "start must be Unix milliseconds or an RFC 3339 time, not '%s'", v);
		playback = true;
	}
	if (cn_http_query_get(req, "speed", v, sizeof(v)) == 0) {
		if (cn_str_to_i64(cn_str_from(v), 1, 4, &speed) < 0 || speed == 3)
			return reject(w, resp, REJ_BAD_REQUEST, 400, "Bad Request",
				      "speed must be 1, 2 or 4, not '%s'", v);
		if (!playback)
			return reject(w, resp, REJ_BAD_REQUEST, 400, "Bad Request",
				      "speed applies to playback (start=...) only");
	}
	struct edge_camera_cfg cfg;
	g_mutex_lock(&g->lock);
	cfg = g->cfg;
	g_mutex_unlock(&g->lock);
	if (sub && playback)
		return reject(w, resp, REJ_BAD_REQUEST, 400, "Bad Request",
			      "the archive holds the main stream only: playback takes stream=main");
	if (sub && !cfg.sub_url[0])
		return reject(w, resp, REJ_BAD_REQUEST, 400, "Bad Request",
			      "camera '%s' has no sub stream (sub_url)", cam);
	int64_t now = cn_time_wall_ms();
	if (playback && start_ms > now)
		return reject(w, resp, REJ_BAD_REQUEST, 400, "Bad Request", "start is in the future");
	if (playback && depth_s >= 0 && now - start_ms > depth_s * 1000)
		return reject(w, resp, REJ_FORBIDDEN, 403, "Forbidden",
			      "the token allows playback of the last %lld s only",
			      (long long)depth_s);
	if (count_viewers(w, cam) >= e->conf->whep_max_viewers)
		return reject(w, resp, REJ_LIMIT, 503, "Service Unavailable",
			      "camera '%s' already has %lld viewers (whep_max_viewers)", cam,
			      (long long)e->conf->whep_max_viewers);
	struct edge_stream_info info;
	struct edge_live *live = g->live;
	if (sub) {
		struct sub_entry *se = g_hash_table_lookup(w->subs, cam);
		if (se && edge_subpull_stale(se->p, &cfg)) {
			edge_subpull_request_stop(se->p);
			g_ptr_array_add(w->subs_stopping, se->p);
			g_hash_table_remove(w->subs, cam);
			se = NULL;
		}
		if (!se) {
			if (!(se = calloc(1, sizeof(*se))))
				return -ENOMEM;
			if ((rc = edge_subpull_start(&cfg, e->conf->rtsp_timeout, &se->p)) < 0) {
				free(se);
				return rc;
			}
			g_hash_table_insert(w->subs, g_strdup(cam), se);
		}
		se->idle_since_ms = 0;
		live = edge_subpull_live(se->p);
	}
	memset(&cfg, 0, sizeof(cfg)); /* credentials */
	rc = playback ? 0 : edge_live_info(live, &info);
	if (rc < 0 && !(sub && rc == -EAGAIN)) {
		struct edge_ingest_status st;
		edge_ingest_status(g, &st);
		return reject(w, resp, REJ_UNAVAILABLE, 503, "Service Unavailable",
			      "camera '%s' is not streaming (%s%s%s)", cam, edge_cam_state_name(st.state),
			      st.reason[0] ? ": " : "", st.reason);
	}
	if (!(s = calloc(1, sizeof(*s))))
		return -ENOMEM;
	if (!(s->offer = malloc(sizeof(*s->offer)))) {
		free(s);
		return -ENOMEM;
	}
	if (cn_sdp_parse(req->body.p, req->body.len, s->offer, err, sizeof(err)) < 0) {
		free(s->offer);
		free(s);
		return reject(w, resp, REJ_BAD_REQUEST, 400, "Bad Request", "malformed offer: %s", err);
	}
	s->w = w;
	cn_random_id(s->id, sizeof(s->id));
	cn_strlcpy(s->camera, cam, sizeof(s->camera));
	s->playback = playback;
	s->sub = sub;
	s->speed = (int)speed;
	s->start_ms = start_ms;
	s->created_ms = now;
	s->req_id = req->id;
	s->origin = req_origin(req);
	s->track = -1;
	s->atrack = -1;
	s->amline = -1;
	s->answered = true; /* until deferred: refusals below answer through resp */
	g_hash_table_insert(w->sessions, s->id, s);
	if (!playback) {
		s->live = edge_live_ref(live);
		struct edge_live_sub sb = { live_frame, live_ended, s };
		edge_live_subscribe(s->live, &sb);
		if (rc == -EAGAIN) {
			s->wait_until_mono = cn_time_mono_ms() + e->conf->rtsp_timeout + 2000;
			s->wait_timer = g_timeout_add(100, sub_wait_tick, s);
			s->answered = false;
			return CN_HTTP_DEFER;
		}
		s->info = info;
		int status = setup_peer(s, err, sizeof(err));
		if (status) {
			session_free(s);
			return reject(w, resp, status == 406 ? REJ_CODEC : status == 400 ? REJ_BAD_REQUEST
										 : REJ_UNAVAILABLE,
				      status, status_title(status), "%s", err);
		}
	} else {
		struct edge_playback_cb cb = { pb_info, pb_frame, pb_end, s };
		if ((rc = edge_playback_start_av(e->archive_dir, e->index_path, cam, start_ms, (int)speed, true,
						 &cb, &s->pb)) < 0) {
			session_free(s);
			return rc;
		}
	}
	s->answered = false;
	return CN_HTTP_DEFER;
}

static struct whep_session *find_session(struct edge_whep *w, const struct cn_http_req *req,
					 struct cn_http_resp *resp)
{
	char cam[64], sid[48];
	int64_t depth;
	struct whep_session *s;

	if (cn_http_split_path(req->path, "/whep/", cam, sizeof(cam), sid, sizeof(sid)) < 0 || !sid[0]) {
		reject(w, resp, REJ_NOT_FOUND, 404, "Not Found", "not a WHEP session URL");
		return NULL;
	}
	if (authorize_view(w, req, resp, cam, true, &depth))
		return NULL;
	s = g_hash_table_lookup(w->sessions, sid);
	if (!s || strcmp(s->camera, cam) != 0) {
		reject(w, resp, REJ_NOT_FOUND, 404, "Not Found", "no session '%s' of camera '%s'", sid, cam);
		return NULL;
	}
	return s;
}

static int patch_whep(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct edge_whep *w = arg;
	struct cn_sdp_frag *fr;
	struct whep_session *s;
	char err[300];

	if (!(s = find_session(w, req, resp)))
		return 0;
	if (!content_type_is(req, "application/trickle-ice-sdpfrag"))
		return reject(w, resp, REJ_BAD_REQUEST, 415, "Unsupported Media Type",
			      "PATCH takes Content-Type: application/trickle-ice-sdpfrag");
	if (!s->peer)
		return reject(w, resp, REJ_UNAVAILABLE, 409, "Conflict", "the session is still being set up");
	if (!(fr = calloc(1, sizeof(*fr))))
		return -ENOMEM;
	if (cn_sdp_parse_frag(req->body.p, req->body.len, fr, err, sizeof(err)) < 0) {
		free(fr);
		return reject(w, resp, REJ_BAD_REQUEST, 400, "Bad Request", "malformed fragment: %s", err);
	}
	if (fr->ice_ufrag[0] && strcmp(fr->ice_ufrag, cn_wrtc_remote_ufrag(s->peer)) != 0) {
		free(fr);
		return reject(w, resp, REJ_BAD_REQUEST, 409, "Conflict",
			      "ICE restart is not supported: start a new session");
	}
	for (int i = 0; i < fr->ncandidates; i++) {
		if (cn_wrtc_add_candidate(s->peer, fr->candidates[i], err, sizeof(err)) < 0) {
			free(fr);
			return reject(w, resp, REJ_BAD_REQUEST, 400, "Bad Request", "%s", err);
		}
	}
	if (fr->end_of_candidates)
		cn_wrtc_end_of_candidates(s->peer);
	free(fr);
	resp->status = 204;
	cn_http_cors(resp);
	return 0;
}

static int delete_whep(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct edge_whep *w = arg;
	struct whep_session *s;

	if (!(s = find_session(w, req, resp)))
		return 0;
	cn_log_info("whep", "session %s (camera '%s') ended by the viewer", s->id, s->camera);
	if (!s->answered)
		return reject(w, resp, REJ_UNAVAILABLE, 409, "Conflict", "the session is still being set up");
	session_free(s);
	resp->status = 200;
	cn_http_cors(resp);
	return 0;
}

static int options_whep(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	(void)req;
	(void)arg;
	return cn_http_preflight(resp, "POST, PATCH, DELETE, OPTIONS",
				 "Authorization, Content-Type, If-Match");
}

static const struct cn_field token_fields[] = {
	{ "camera", CN_F_STR, 1, 63, true },
	{ "ttl_s", CN_F_INT, 10, 86400, false },
	{ "archive_depth_s", CN_F_INT, 0, 366LL * 86400, false },
	{ NULL, 0, 0, 0, false },
};

/* POST /api/v1/viewer-tokens (admin): a short-lived token for one camera, for a browser
 * or app that must not hold the admin token. */
static int post_viewer_token(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct edge_whep *w = arg;
	struct edge *e = w->e;
	struct cn_jwt_claims c;
	cJSON *body = NULL, *extra = NULL, *out = NULL;
	struct cn_buf tok;
	char why[256], cam[64], ts[40];
	int64_t ttl = 300, depth = 0, now = cn_time_wall_ms() / 1000;
	int rc;

	if (edge_api_authorize(e, req, resp))
		return 0;
	if (cn_fields_body(token_fields, false, req->body.p, req->body.len, &body, why, sizeof(why)) < 0)
		return cn_http_problem(resp, 400, "Bad Request", "%s", why), 0;
	cn_json_copy_str(body, "camera", cam, sizeof(cam));
	cn_json_get_i64(body, "ttl_s", 10, 86400, &ttl);
	cn_json_get_i64(body, "archive_depth_s", 0, 366LL * 86400, &depth);
	cJSON_Delete(body);
	if (!edge_cameras_find(&e->cams, cam))
		return cn_http_problem(resp, 404, "Not Found", "no camera '%s' on this edge", cam), 0;
	memset(&c, 0, sizeof(c));
	cn_strlcpy(c.iss, e->d->base->node_name, sizeof(c.iss));
	cn_strlcpy(c.sub, "viewer", sizeof(c.sub));
	cn_strlcpy(c.tenant, "local", sizeof(c.tenant));
	cn_strlcpy(c.scope, EDGE_SCOPE_VIEW, sizeof(c.scope));
	cn_random_id(c.jti, sizeof(c.jti));
	c.iat = now;
	c.exp = now + ttl;
	extra = cJSON_CreateObject();
	out = cJSON_CreateObject();
	if (!extra || !out || !cJSON_AddStringToObject(extra, "cam", cam) ||
	    !cJSON_AddNumberToObject(extra, "adepth", (double)depth)) {
		rc = -ENOMEM;
		goto out_free;
	}
	cn_buf_init(&tok, CN_JWT_MAX_TOKEN);
	if ((rc = cn_jwt_sign(e->d->node_key, e->d->node_key_id, &c, extra, &tok)) < 0) {
		cn_buf_free(&tok);
		goto out_free;
	}
	cJSON_AddStringToObject(out, "token", tok.data);
	cn_buf_free(&tok);
	cJSON_AddStringToObject(out, "camera", cam);
	cn_time_format_rfc3339(c.exp * 1000, ts, sizeof(ts));
	cJSON_AddStringToObject(out, "expires_at", ts);
	cn_json_add_i64(out, "archive_depth_s", depth);
	resp->status = 201;
	cn_strlcpy(resp->content_type, "application/json", sizeof(resp->content_type));
	rc = cn_json_print(out, &resp->body);
out_free:
	cJSON_Delete(extra);
	cJSON_Delete(out);
	return rc;
}

/* ---- life cycle -------------------------------------------------------------------------- */

static void session_free(struct whep_session *s)
{
	struct edge_whep *w = s->w;

	if (!s->answered) {
		/* The POST still waits: it must get an answer of some kind. */
		struct cn_http_resp resp;
		cn_http_resp_init(&resp);
		cn_http_problem(&resp, 503, "Service Unavailable", "the session ended before it was set up");
		cn_http_cors(&resp);
		s->answered = true;
		respond(s, &resp);
	}
	if (s->origin && s->answered && w->remote.session)
		w->remote.session(w->remote.arg, s->origin, s->id, "closed", NULL);
	g_hash_table_remove(w->sessions, s->id);
	if (s->live) {
		edge_live_unsubscribe(s->live, s);
		edge_live_unref(s->live);
	}
	edge_playback_stop(s->pb);
	if (s->wait_timer)
		g_source_remove(s->wait_timer);
	if (s->burst_timer)
		g_source_remove(s->burst_timer);
	for (int i = s->burst_pos; i < s->nburst; i++)
		edge_frame_unref(s->burst[i]);
	cn_wrtc_peer_free(s->peer);
	free(s->offer);
	w->closed++;
	free(s);
}

/* Joins finished playback readers; disconnects sub streams nobody has watched for a
 * while, or whose camera is gone. */
static gboolean reap_tick(gpointer data)
{
	struct edge_whep *w = data;
	GHashTableIter it;
	gpointer k, v;
	int64_t now = cn_time_mono_ms();

	edge_playback_reap(false);
	g_hash_table_iter_init(&it, w->subs);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct sub_entry *se = v;
		bool gone = !edge_cameras_find(&w->e->cams, k);
		if (edge_live_viewers(edge_subpull_live(se->p)) > 0 && !gone) {
			se->idle_since_ms = 0;
			continue;
		}
		if (!se->idle_since_ms)
			se->idle_since_ms = now;
		if (gone || now - se->idle_since_ms > SUB_IDLE_STOP_MS) {
			cn_log_info("whep", "camera '%s': sub stream disconnected (%s)", (char *)k,
				    gone ? "camera removed" : "no viewers");
			edge_subpull_request_stop(se->p);
			g_ptr_array_add(w->subs_stopping, se->p);
			g_hash_table_iter_remove(&it);
		}
	}
	for (guint i = 0; i < w->subs_stopping->len;) {
		struct edge_subpull *p = g_ptr_array_index(w->subs_stopping, i);
		if (!edge_subpull_exited(p)) {
			i++;
			continue;
		}
		edge_subpull_free(p);
		g_ptr_array_remove_index_fast(w->subs_stopping, i);
	}
	return G_SOURCE_CONTINUE;
}

static void sub_entry_free(gpointer data)
{
	free(data); /* the puller itself moves to subs_stopping first */
}

/* "IP:port" (an IPv4 literal; libnice takes no names) into ip and port; empty is none. */
static int parse_hostport(const char *what, const char *v, char *ip, size_t cap, int *port)
{
	const char *colon = v ? strrchr(v, ':') : NULL;
	int64_t p;
	struct in_addr a;

	ip[0] = '\0';
	*port = 0;
	if (!v || !*v)
		return 0;
	if (!colon || (size_t)(colon - v) >= cap ||
	    cn_str_to_i64(cn_str_from(colon + 1), 1, 65535, &p) < 0) {
		cn_log_error("whep", "%s must be IP:port, not '%s'", what, v);
		return CN_E_CONFIG;
	}
	memcpy(ip, v, (size_t)(colon - v));
	ip[colon - v] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1) {
		cn_log_error("whep", "%s: '%s' is not an IPv4 address", what, ip);
		return CN_E_CONFIG;
	}
	*port = (int)p;
	return 0;
}

int edge_whep_start(struct edge *e, struct edge_whep **out)
{
	struct edge_whep *w = calloc(1, sizeof(*w));
	struct cn_http_server *h = e->d->http;
	int rc;

	if (!w)
		return -ENOMEM;
	w->e = e;
	if (e->conf->webrtc_port_min > 0 && e->conf->webrtc_port_max < e->conf->webrtc_port_min) {
		cn_log_error("whep", "webrtc_port_max (%lld) must be at least webrtc_port_min (%lld)",
			     (long long)e->conf->webrtc_port_max, (long long)e->conf->webrtc_port_min);
		free(w);
		return CN_E_CONFIG;
	}
	if (parse_hostport("webrtc_stun", e->conf->webrtc_stun, w->stun_ip, sizeof(w->stun_ip),
			   &w->wconf.stun_port) < 0 ||
	    parse_hostport("webrtc_turn", e->conf->webrtc_turn, w->turn_ip, sizeof(w->turn_ip),
			   &w->wconf.turn_port) < 0) {
		free(w);
		return CN_E_CONFIG;
	}
	if (e->conf->webrtc_relay_only && !w->turn_ip[0]) {
		cn_log_error("whep", "webrtc_relay_only needs webrtc_turn");
		free(w);
		return CN_E_CONFIG;
	}
	if ((rc = cn_dtls_cert_new(&w->cert)) < 0) {
		free(w);
		return rc;
	}
	w->wconf.stun_server = w->stun_ip;
	w->wconf.turn_server = w->turn_ip;
	w->wconf.turn_tcp = e->conf->webrtc_turn_transport == 1;
	w->wconf.turn_user = e->conf->webrtc_turn_user;
	w->wconf.turn_password = e->conf->webrtc_turn_password;
	w->wconf.relay_only = e->conf->webrtc_relay_only;
	w->wconf.addresses = e->conf->webrtc_addresses;
	w->wconf.timeout_ms = e->conf->whep_session_timeout;
	w->wconf.port_min = (int)e->conf->webrtc_port_min;
	w->wconf.port_max = (int)e->conf->webrtc_port_max;
	w->sessions = g_hash_table_new(g_str_hash, g_str_equal);
	w->subs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, sub_entry_free);
	w->subs_stopping = g_ptr_array_new();
	w->reaper = g_timeout_add(500, reap_tick, w);
	if ((rc = cn_http_route(h, CN_HTTP_POST, "/whep/", post_whep, w)) < 0 ||
	    (rc = cn_http_route(h, CN_HTTP_PATCH, "/whep/", patch_whep, w)) < 0 ||
	    (rc = cn_http_route(h, CN_HTTP_DELETE, "/whep/", delete_whep, w)) < 0 ||
	    (rc = cn_http_route(h, CN_HTTP_OPTIONS, "/whep/", options_whep, w)) < 0 ||
	    (rc = cn_http_route(h, CN_HTTP_POST, "/api/v1/viewer-tokens", post_viewer_token, w)) < 0 ||
	    (rc = cn_metrics_add_collector(edge_whep_metrics, w)) < 0) {
		edge_whep_stop(w);
		return rc;
	}
	*out = w;
	return 0;
}

void edge_whep_stop(struct edge_whep *w)
{
	GHashTableIter it;
	gpointer k, v;

	if (!w)
		return;
	cn_metrics_remove_collector(edge_whep_metrics, w);
	for (;;) {
		g_hash_table_iter_init(&it, w->sessions);
		if (!g_hash_table_iter_next(&it, &k, &v))
			break;
		session_free(v);
	}
	g_hash_table_destroy(w->sessions);
	if (w->reaper)
		g_source_remove(w->reaper);
	g_hash_table_iter_init(&it, w->subs);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		edge_subpull_request_stop(((struct sub_entry *)v)->p);
		g_ptr_array_add(w->subs_stopping, ((struct sub_entry *)v)->p);
	}
	g_hash_table_destroy(w->subs);
	for (guint i = 0; i < w->subs_stopping->len; i++)
		edge_subpull_free(g_ptr_array_index(w->subs_stopping, i));
	g_ptr_array_free(w->subs_stopping, TRUE);
	edge_playback_reap(true);
	cn_dtls_cert_free(w->cert);
	edge_frame_unref(w->pk_frame);
	free(w->pk.buf);
	free(w->pk.pkts);
	free(w);
}

int edge_whep_viewers(struct edge_whep *w, const char *camera)
{
	return w ? count_viewers(w, camera) : 0;
}

void edge_whep_describe(struct edge_whep *w, const char *camera, cJSON *obj)
{
	GHashTableIter it;
	gpointer k, v;
	cJSON *arr = cJSON_AddArrayToObject(obj, "viewers");

	if (!w || !arr)
		return;
	g_hash_table_iter_init(&it, w->sessions);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct whep_session *s = v;
		struct cn_wrtc_stats st;
		cJSON *o;
		if (strcmp(s->camera, camera) != 0 || !(o = cJSON_CreateObject()))
			continue;
		cJSON_AddItemToArray(arr, o);
		cJSON_AddStringToObject(o, "session", s->id);
		cJSON_AddStringToObject(o, "mode", s->playback ? "playback" : "live");
		cJSON_AddStringToObject(o, "state", s->peer ? cn_wrtc_state_name(cn_wrtc_state(s->peer))
							    : "starting");
		cJSON_AddBoolToObject(o, "keyframes_only", s->key_only);
		cn_json_add_i64(o, "frames_sent", (int64_t)s->frames_sent);
		cn_json_add_i64(o, "frames_skipped", (int64_t)s->frames_skipped);
		if (s->peer) {
			cn_wrtc_get_stats(s->peer, &st);
			cn_json_add_i64(o, "bytes_sent", (int64_t)st.bytes_sent);
			cn_json_add_i64(o, "retransmits", (int64_t)st.retransmits);
			cn_json_add_i64(o, "nacks", (int64_t)st.nacks);
			cn_json_add_i64(o, "plis", (int64_t)st.plis);
			cn_json_add_i64(o, "rtt_ms", st.rtt_ms);
			cn_json_add_i64(o, "fraction_lost", st.fraction_lost);
			cn_json_add_i64(o, "remb_bps", (int64_t)st.remb_bps);
		}
	}
}

int edge_whep_metrics(struct cn_buf *out, void *arg)
{
	struct edge_whep *w = arg;
	int rc;

	if ((rc = cn_metrics_family(out, "canopy_whep_sessions", "gauge",
				    "WebRTC viewer sessions (live and playback)")) < 0 ||
	    (rc = cn_buf_printf(out, "canopy_whep_sessions %u\n", g_hash_table_size(w->sessions))) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_whep_sessions_total", "counter",
				    "WHEP sessions answered")) < 0 ||
	    (rc = cn_buf_printf(out, "canopy_whep_sessions_total %llu\n", (unsigned long long)w->accepted)) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_whep_rejected_total", "counter",
				    "WHEP requests refused, by reason")) < 0)
		return rc;
	for (int i = 0; i < REJ_COUNT; i++)
		if ((rc = cn_buf_printf(out, "canopy_whep_rejected_total{reason=\"%s\"} %llu\n",
					reject_names[i], (unsigned long long)w->rejected[i])) < 0)
			return rc;
	if ((rc = cn_metrics_family(out, "canopy_whep_frames_total", "counter",
				    "frames sent to viewers, and skipped (slow viewer, waiting for a keyframe)")) < 0 ||
	    (rc = cn_buf_printf(out, "canopy_whep_frames_total{result=\"sent\"} %llu\n"
				     "canopy_whep_frames_total{result=\"skipped\"} %llu\n",
				(unsigned long long)w->frames_sent, (unsigned long long)w->frames_skipped)) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_whep_keyframe_answers_total", "counter",
				    "keyframe requests (PLI/FIR) answered from the GOP cache")) < 0 ||
	    (rc = cn_buf_printf(out, "canopy_whep_keyframe_answers_total %llu\n",
				(unsigned long long)w->key_answers)) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_whep_send_full_total", "counter",
				    "packets a viewer's socket refused (the viewer then waits for a keyframe)")) < 0)
		return rc;
	return cn_buf_printf(out, "canopy_whep_send_full_total %llu\n", (unsigned long long)w->send_full);
}

void edge_whep_set_remote(struct edge_whep *w, const struct edge_whep_remote *r)
{
	if (w)
		w->remote = *r;
}

int edge_whep_authorize(struct edge_whep *w, const char *authorization, const char *camera,
			struct cn_http_resp *resp, int64_t *depth_s)
{
	struct whep_in in;

	if (!w)
		return cn_http_problem(resp, 503, "Service Unavailable", "live view is not running"), 1;
	memset(&in, 0, sizeof(in));
	in.authorization = authorization;
	return authorize_view(w, &in.req, resp, camera, false, depth_s);
}

int edge_whep_request(struct edge_whep *w, const struct edge_whep_request *r,
		      struct cn_http_resp *resp)
{
	struct whep_in in;
	char path[300], query[300];
	size_t q = 0;
	int n;

	if (!w)
		return cn_http_problem(resp, 503, "Service Unavailable", "live view is not running"), 0;
	memset(&in, 0, sizeof(in));
	n = r->session ? snprintf(path, sizeof(path), "/whep/%s/%s", r->camera, r->session)
		       : snprintf(path, sizeof(path), "/whep/%s", r->camera);
	if (n < 0 || (size_t)n >= sizeof(path) || strchr(r->camera, '/'))
		return reject(w, resp, REJ_NOT_FOUND, 404, "Not Found", "no such WHEP endpoint");
	/* The query as cn_http keeps it: "name=value" fragments separated by NUL bytes. */
	const char *names[3] = { "stream", "start", "speed" };
	const char *vals[3] = { r->stream, r->start, r->speed };
	for (int i = 0; i < 3; i++) {
		if (!vals[i])
			continue;
		n = snprintf(query + q, sizeof(query) - q, "%s=%s", names[i], vals[i]);
		if (n < 0 || (size_t)n + 1 >= sizeof(query) - q)
			return reject(w, resp, REJ_BAD_REQUEST, 400, "Bad Request", "query too long");
		q += (size_t)n + 1;
	}
	in.req.method = r->method;
	in.req.path = (struct cn_str){ path, strlen(path) };
	in.req.query = (struct cn_str){ query, q ? q - 1 : 0 };
	in.req.body = (struct cn_str){ r->body ? r->body : "", r->body ? r->body_len : 0 };
	in.req.id = r->id;
	in.authorization = r->authorization;
	in.content_type = r->content_type;
	in.origin = r->origin;
	switch (r->method) {
	case CN_HTTP_POST:
		return post_whep(&in.req, resp, w);
	case CN_HTTP_PATCH:
		return patch_whep(&in.req, resp, w);
	case CN_HTTP_DELETE:
		return delete_whep(&in.req, resp, w);
	default:
		return reject(w, resp, REJ_BAD_REQUEST, 405, "Method Not Allowed", "WHEP takes POST, PATCH and DELETE");
	}
}
