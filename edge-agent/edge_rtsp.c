/* edge_rtsp.c: the edge's own RTSP-over-TCP client: connect, auth, DESCRIBE/SETUP/PLAY, batched reads, depacketising, keep-alives. */
#include "edge_rtsp.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/channel_layout.h>

#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_log.h"
#include "cn_rtp.h"
#include "cn_rtpdepay.h"
#include "cn_rtsp.h"
#include "cn_time.h"

#define RX_CAP (128 * 1024)     /* one read takes up to this much */
#define MAX_AU (8 * 1024 * 1024) /* the largest access unit accepted */
#define QUEUE 8                 /* packets ready for the caller (a push emits at most 2) */
#define RR_INTERVAL_MS 5000
#define RATE_WINDOW_MS 1000     /* how often the receive rate and socket buffer are measured */
#define FIRST_SLEEP_CAP_MS 50   /* the longest pause before the first measurement */
#define REQ_CAP 4096

struct stream {
	bool active;
	int ch_rtp, ch_rtcp;
	struct cn_depay dp;
	AVCodecParameters *par;
	AVRational tb;
	bool have_ts;
	uint32_t last_ts;
	int64_t unwrapped;        /* RTP time since the first packet */
	int64_t last_pts;
	bool have_sr;
	uint64_t sr_ntp_us;
	uint32_t sr_rtp;
	uint32_t ssrc;            /* of the sender, from its packets */
};

struct edge_rtsp {
	int fd;
	const atomic_bool *stop;
	atomic_llong *lost;
	int64_t timeout_ms, batch_ms;
	char url[1024], base[1024], play_url[1024];
	char user[128], pass[256];
	struct cn_rtsp_auth auth;
	unsigned cseq;
	char session[256];
	int session_timeout;
	bool get_parameter;
	uint8_t *rx;
	size_t rx_len, rx_pos;
	bool last_read_full;
	/* The pause before a read is at most the time the socket buffer takes to fill a
	 * quarter (measured every RATE_WINDOW_MS), so a long batch never stalls the sender. */
	int64_t rate_t0_ms, rate_bytes, sleep_cap_ms;
	int64_t last_rx_ms; /* the last packet handed over (or PLAY): the read deadline counts from it */
	int64_t next_keepalive_ms, next_rr_ms;
	struct stream st[2]; /* 0 video, 1 audio */
	AVPacket *q[QUEUE];
	int qhead, qn;
	bool changed;
	int err;             /* from emit: -ENOMEM, -ENOTSUP (reordering) */
	uint64_t lost_reported;
	uint32_t our_ssrc;
};

static int64_t now_ms(void)
{
	return cn_time_mono_ms();
}

static bool stopped(const struct edge_rtsp *c)
{
	return c->stop && atomic_load(c->stop);
}

/* ---- socket ----------------------------------------------------------------------------- */

static int split_url(const char *url, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *h, *end, *colon = NULL;

	if (strncmp(url, "rtsp://", 7) != 0)
		return -EINVAL;
	h = url + 7;
	end = h + strcspn(h, "/?#");
	if (memchr(h, '@', (size_t)(end - h)))
		return -EINVAL;
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));
		if (!rb)
			return -EINVAL;
		if ((size_t)(rb - h - 1) >= hcap)
			return -EINVAL;
		memcpy(host, h + 1, (size_t)(rb - h - 1));
		host[rb - h - 1] = '\0';
		if (rb + 1 < end && rb[1] == ':')
			colon = rb + 1;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		size_t hl = (size_t)((colon ? colon : end) - h);
		if (hl == 0 || hl >= hcap)
			return -EINVAL;
		memcpy(host, h, hl);
		host[hl] = '\0';
	}
	if (colon) {
		size_t pl = (size_t)(end - colon - 1);
		if (pl == 0 || pl >= pcap)
			return -EINVAL;
		memcpy(port, colon + 1, pl);
		port[pl] = '\0';
	} else {
		cn_strlcpy(port, "554", pcap);
	}
	return 0;
}

static int wait_fd(struct edge_rtsp *c, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (stopped(c))
			return -ECANCELED;
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pfd = { .fd = c->fd, .events = events };
		int rc = poll(&pfd, 1, (int)(left < 100 ? left : 100));
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (rc > 0)
			return 0;
	}
}

static int dial(struct edge_rtsp *c, char *reason, size_t cap)
{
	char host[256], port[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG }, *res, *ai;
	int64_t deadline = now_ms() + c->timeout_ms;
	int rc, last = -ECONNREFUSED;

	if (split_url(c->url, host, sizeof(host), port, sizeof(port)) < 0) {
		snprintf(reason, cap, "bad camera URL");
		return -EINVAL;
	}
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(reason, cap, "cannot resolve '%s': %s", host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (c->fd < 0) {
			last = -errno;
			continue;
		}
		if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			rc = wait_fd(c, POLLOUT, deadline);
			if (rc == 0 && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
				freeaddrinfo(res);
				return 0;
			}
			last = rc < 0 ? rc : -soerr;
		} else {
			last = -errno;
		}
		close(c->fd);
		c->fd = -1;
		if (last == -ECANCELED || last == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (last == -ETIMEDOUT)
		snprintf(reason, cap, "no answer within %lld s", (long long)(c->timeout_ms / 1000));
	else
		snprintf(reason, cap, "cannot connect to %s:%s: %s", host, port, strerror(-last));
	return last;
}

static int send_all(struct edge_rtsp *c, const void *p, size_t n, int64_t deadline)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			b += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = wait_fd(c, POLLOUT, deadline);
			if (rc < 0)
				return rc;
			continue;
		}
		return w < 0 ? -errno : -EPIPE;
	}
	return 0;
}

/* ---- packets ------------------------------------------------------------------------------ */

static uint64_t ntp_to_us(uint64_t ntp)
{
	return (ntp >> 32) * 1000000ull + (((ntp & 0xffffffffull) * 1000000ull) >> 32);
}

static AVPacket *queue_slot(struct edge_rtsp *c)
{
	if (c->qn == QUEUE)
		return NULL;
	return c->q[(c->qhead + c->qn) % QUEUE];
}

/* The stream time of an RTP timestamp: unwrapped from the stream's first packet. */
static int64_t stream_time(struct stream *s, uint32_t ts)
{
	if (!s->have_ts) {
		s->have_ts = true;
		s->last_ts = ts;
		s->unwrapped = 0;
	} else {
		s->unwrapped += (int32_t)(ts - s->last_ts);
		s->last_ts = ts;
	}
	return s->unwrapped;
}

/* Audio on the video's clock once both have sent an RTCP sender report (as libavformat
 * aligns them), else from its own first packet. */
static int64_t audio_pts(struct edge_rtsp *c, int64_t own)
{
	struct stream *v = &c->st[0], *a = &c->st[1];

	if (!v->have_sr || !a->have_sr || !v->have_ts || a->par->sample_rate <= 0)
		return own;
	int64_t rate = a->par->sample_rate;
	int64_t a_ntp_us = (int64_t)a->sr_ntp_us + (int64_t)(int32_t)(a->last_ts - a->sr_rtp) * 1000000 / rate;
	int64_t v_at_sr = v->unwrapped + (int32_t)(v->sr_rtp - v->last_ts);
	int64_t v_rel_us = v_at_sr * 1000000 / 90000 + (a_ntp_us - (int64_t)v->sr_ntp_us);
	return v_rel_us * rate / 1000000;
}

static int build_extradata(struct cn_depay *d, uint8_t *out, size_t cap)
{
	size_t o = 0;
	const uint8_t *ps[3] = { d->vps, d->sps, d->pps };
	size_t len[3] = { d->vps_len, d->sps_len, d->pps_len };

	for (int i = d->codec == CN_DEPAY_H265 ? 0 : 1; i < 3; i++) {
		if (!len[i])
			return -ENOENT;
		if (o + 4 + len[i] > cap)
			return -ENOBUFS;
		memcpy(out + o, "\0\0\0\1", 4);
		memcpy(out + o + 4, ps[i], len[i]);
		o += 4 + len[i];
	}
	return (int)o;
}

static int set_extradata(AVCodecParameters *par, const uint8_t *p, size_t n)
{
	uint8_t *e = av_mallocz(n + AV_INPUT_BUFFER_PADDING_SIZE);

	if (!e)
		return -ENOMEM;
	memcpy(e, p, n);
	av_freep(&par->extradata);
	par->extradata = e;
	par->extradata_size = (int)n;
	return 0;
}

/* Width, height, profile and level from the first SPS of Annex B extradata. */
static void read_sps(AVCodecParameters *par)
{
	size_t pos = 0;
	const uint8_t *nal;
	size_t len;
	struct cn_video_info vi;

	while (cn_nal_next(par->extradata, (size_t)par->extradata_size, 0, &pos, &nal, &len) == 1) {
		if (par->codec_id == AV_CODEC_ID_H264 && cn_h264_nal_type(nal) == 7 &&
		    cn_h264_sps_parse(nal, len, &vi) == 0) {
			par->width = vi.width;
			par->height = vi.height;
			/* FFmpeg's profile: constrained baseline is 66 | 512 */
			par->profile = vi.profile | (vi.profile == 66 && (vi.constraints & 0x40) ? 512 : 0);
			par->level = vi.level;
			return;
		}
		if (par->codec_id == AV_CODEC_ID_HEVC && len >= 2 && cn_h265_nal_type(nal) == 33 &&
		    cn_h265_sps_parse(nal, len, &vi) == 0) {
			par->width = vi.width;
			par->height = vi.height;
			par->profile = vi.profile;
			par->level = vi.level;
			return;
		}
	}
}

static int emit_video(void *arg, const struct cn_depay_au *au)
{
	struct edge_rtsp *c = arg;
	struct stream *s = &c->st[0];
	AVPacket *p;
	int64_t pts = stream_time(s, au->ts);

	if (au->key && au->has_ps) {
		uint8_t ed[3 * (CN_DEPAY_MAX_PS + 4)];
		int n = build_extradata(&s->dp, ed, sizeof(ed));
		if (n > 0 && (s->par->extradata_size != n || memcmp(s->par->extradata, ed, (size_t)n) != 0)) {
			if (set_extradata(s->par, ed, (size_t)n) < 0)
				return c->err = -ENOMEM;
			read_sps(s->par);
			c->changed = true;
		}
	}
	if (!s->par->extradata_size)
		return 0; /* nothing is decodable before the parameter sets */
	/* RTP carries presentation times only; frames out of order (B-frames) need
	 * libavformat's decoding-time guesses. A small step back is that; a big one is a
	 * camera restart, which the segment writer handles. */
	if (s->last_pts != INT64_MIN && pts < s->last_pts && s->last_pts - pts < 45000)
		return c->err = -ENOTSUP;
	s->last_pts = pts;
	if (!(p = queue_slot(c))) {
		s->dp.dropped++; /* cannot happen while the caller drains the queue */
		return 0;
	}
	if (av_new_packet(p, (int)au->len) < 0)
		return c->err = -ENOMEM;
	memcpy(p->data, au->data, au->len);
	c->last_rx_ms = now_ms();
	p->pts = p->dts = pts;
	p->stream_index = 0;
	p->flags = au->key ? AV_PKT_FLAG_KEY : 0;
	c->qn++;
	return 0;
}

static int emit_audio(void *arg, const struct cn_depay_au *au)
{
	struct edge_rtsp *c = arg;
	struct stream *s = &c->st[1];
	AVPacket *p;
	int64_t own = stream_time(s, au->ts);

	if (!(p = queue_slot(c)))
		return 0;
	if (av_new_packet(p, (int)au->len) < 0)
		return c->err = -ENOMEM;
	memcpy(p->data, au->data, au->len);
	p->pts = p->dts = audio_pts(c, own);
	p->stream_index = 1;
	p->flags = AV_PKT_FLAG_KEY;
	c->qn++;
	return 0;
}

static void on_rtcp(struct stream *s, const uint8_t *p, size_t n)
{
	size_t pos = 0;
	struct cn_rtcp_pkt pk;

	while (cn_rtcp_next(p, n, &pos, &pk) == 1) {
		struct cn_rtcp_sr_info sr;
		uint32_t ssrc;
		int nb;
		if (pk.pt == CN_RTCP_SR && cn_rtcp_parse_report(&pk, &ssrc, &sr, NULL, 0, &nb) == 0) {
			s->have_sr = true;
			s->sr_ntp_us = ntp_to_us(sr.ntp);
			s->sr_rtp = sr.rtp_ts;
		}
	}
}

static void on_data(struct edge_rtsp *c, uint8_t ch, const uint8_t *p, size_t n)
{
	for (int i = 0; i < 2; i++) {
		struct stream *s = &c->st[i];
		if (!s->active)
			continue;
		if (ch == s->ch_rtp) {
			if (n >= 12)
				s->ssrc = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];
			uint64_t before = s->dp.lost;
			cn_depay_push(&s->dp, p, n, i == 0 ? emit_video : emit_audio, c);
			if (s->dp.lost != before && c->lost)
				atomic_fetch_add(c->lost, (long long)(s->dp.lost - before));
			return;
		}
		if (ch == s->ch_rtcp) {
			on_rtcp(s, p, n);
			return;
		}
	}
}

/* ---- requests ----------------------------------------------------------------------------- */

/* Counts received bytes; every RATE_WINDOW_MS works out how long the socket's receive
 * buffer (as the kernel sized it, which grows with what we read at once) takes to fill a
 * quarter at the measured rate: the longest pause between reads that cannot make the
 * camera wait or drop. */
static void measure_rate(struct edge_rtsp *c, ssize_t n)
{
	int64_t now = now_ms(), dt;
	int rcvbuf = 0;
	socklen_t sl = sizeof(rcvbuf);

	c->rate_bytes += n;
	if (!c->rate_t0_ms) {
		c->rate_t0_ms = now;
		return;
	}
	if ((dt = now - c->rate_t0_ms) < RATE_WINDOW_MS)
		return;
	if (getsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &sl) == 0 && rcvbuf > 0 && c->rate_bytes > 0)
		c->sleep_cap_ms = (int64_t)rcvbuf / 4 * dt / c->rate_bytes;
	else
		c->sleep_cap_ms = INT64_MAX;
	c->rate_t0_ms = now;
	c->rate_bytes = 0;
}

/* Reads until a complete chunk is at rx_pos (a message or a frame), reading more as
 * needed. While streaming, batch_ms between reads. Returns 1, or a negative code. */
static int fill(struct edge_rtsp *c, struct cn_rtsp_chunk *ch, int64_t deadline, bool batch,
		char *reason, size_t cap)
{
	for (;;) {
		int rc = cn_rtsp_split(c->rx + c->rx_pos, c->rx_len - c->rx_pos, ch);
		if (rc > 0) {
			c->rx_pos += ch->len;
			return 1;
		}
		if (rc < 0) {
			snprintf(reason, cap, "malformed RTSP stream: %s", cn_strerror(rc));
			return rc;
		}
		if (c->rx_pos) {
			memmove(c->rx, c->rx + c->rx_pos, c->rx_len - c->rx_pos);
			c->rx_len -= c->rx_pos;
			c->rx_pos = 0;
		}
		if (batch && !c->last_read_full) {
			int64_t ms = c->batch_ms < c->sleep_cap_ms ? c->batch_ms : c->sleep_cap_ms;
			if (ms > 0) {
				struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };
				nanosleep(&ts, NULL);
			}
		}
		for (;;) {
			if (stopped(c))
				return -ECANCELED;
			ssize_t n = recv(c->fd, c->rx + c->rx_len, RX_CAP - c->rx_len, MSG_DONTWAIT);
			if (n > 0) {
				/* A read that fills the buffer may have left more behind: read again
				 * at once. A shorter one emptied the socket. */
				c->last_read_full = (size_t)n == RX_CAP - c->rx_len;
				c->rx_len += (size_t)n;
				measure_rate(c, n);
				break;
			}
			if (n == 0) {
				snprintf(reason, cap, "camera closed the connection");
				return -ECONNRESET;
			}
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				int e = errno;
				snprintf(reason, cap, "read failed: %s", strerror(e));
				return -e;
			}
			c->last_read_full = false;
			rc = wait_fd(c, POLLIN, deadline);
			if (rc == -ETIMEDOUT) {
				snprintf(reason, cap, "no data for %lld s", (long long)(c->timeout_ms / 1000));
				return rc;
			}
			if (rc < 0) {
				snprintf(reason, cap, "%s", cn_strerror(rc));
				return rc;
			}
		}
	}
}

static void cnonce(char out[17])
{
	uint8_t r[8];
	static const char hex[] = "0123456789abcdef";

	cn_random_bytes(r, sizeof(r));
	for (int i = 0; i < 8; i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[16] = '\0';
}

static int send_request(struct edge_rtsp *c, const char *method, const char *url, const char *extra,
			int64_t deadline)
{
	char req[REQ_CAP], authz[1024] = "", cn[17];
	int n;

	if (c->auth.scheme != CN_RTSP_AUTH_NONE) {
		cnonce(cn);
		if (cn_rtsp_auth_header(&c->auth, c->user, c->pass, method, url, cn, authz, sizeof(authz)) < 0)
			authz[0] = '\0';
	}
	n = cn_rtsp_write_request(req, sizeof(req), method, url, ++c->cseq, c->session, authz, extra);
	memset(authz, 0, sizeof(authz));
	if (n < 0)
		return n;
	return send_all(c, req, (size_t)n, deadline);
}

/* Sends a request and waits for its response (frames in between are handled). The
 * response's pointers point into rx: valid until the next read. A 401 is answered once
 * with credentials (twice when the nonce went stale). */
static int request(struct edge_rtsp *c, const char *method, const char *url, const char *extra,
		   struct cn_rtsp_msg *resp, char *reason, size_t cap)
{
	int tries = 0;

	for (;;) {
		int64_t deadline = now_ms() + c->timeout_ms;
		struct cn_rtsp_chunk ch;
		int rc = send_request(c, method, url, extra, deadline);
		if (rc < 0) {
			snprintf(reason, cap, "%s: cannot send: %s", method, cn_strerror(rc));
			return rc;
		}
		for (;;) {
			if ((rc = fill(c, &ch, deadline, false, reason, cap)) < 0) {
				if (rc == -ETIMEDOUT)
					snprintf(reason, cap, "no answer within %lld s", (long long)(c->timeout_ms / 1000));
				return rc;
			}
			if (ch.kind == CN_RTSP_CHUNK_DATA) {
				on_data(c, ch.channel, ch.data, ch.data_len);
				continue;
			}
			if (ch.kind != CN_RTSP_CHUNK_MSG)
				continue;
			if (cn_rtsp_parse_msg(ch.data, ch.data_len, resp) < 0) {
				snprintf(reason, cap, "%s: malformed response", method);
				return CN_E_MALFORMED;
			}
			if (resp->is_request || resp->cseq != (int64_t)c->cseq)
				continue; /* a server request, or an old answer */
			break;
		}
		if (resp->status == 401 && c->user[0] && tries < 2) {
			struct cn_rtsp_auth a;
			bool stale_retry = c->auth.scheme != CN_RTSP_AUTH_NONE;
			if (cn_rtsp_auth_choose(resp, &a) == 0 && (!stale_retry || a.stale)) {
				c->auth = a;
				tries++;
				continue;
			}
		}
		return 0;
	}
}

static int status_error(const char *method, const struct cn_rtsp_msg *m, char *reason, size_t cap)
{
	if (m->status == 401 || m->status == 403) {
		snprintf(reason, cap, "camera refused the credentials (%d %.*s)", m->status,
			 (int)(m->reason.len > 60 ? 60 : m->reason.len), m->reason.p);
		return -EACCES;
	}
	snprintf(reason, cap, "%s: %d %.*s", method, m->status,
		 (int)(m->reason.len > 60 ? 60 : m->reason.len), m->reason.p);
	return m->status == 461 ? -ENOTSUP : -EPROTO;
}

static void str_to(char *dst, size_t cap, struct cn_str s)
{
	cn_str_copy(dst, cap, s);
}

static bool codec_ok(const struct cn_rtsp_media *m, enum AVCodecID *id)
{
	struct cn_str v;

	if (strcmp(m->kind, "video") == 0 && strcasecmp(m->encoding, "H264") == 0) {
		v = cn_rtsp_fmtp_param(m->fmtp, "packetization-mode");
		if (v.len && !(v.len == 1 && (v.p[0] == '0' || v.p[0] == '1')))
			return false;
		*id = AV_CODEC_ID_H264;
		return true;
	}
	if (strcmp(m->kind, "video") == 0 && (strcasecmp(m->encoding, "H265") == 0 ||
					      strcasecmp(m->encoding, "HEVC") == 0)) {
		v = cn_rtsp_fmtp_param(m->fmtp, "sprop-max-don-diff");
		if (v.len && !(v.len == 1 && v.p[0] == '0'))
			return false; /* DONL fields */
		*id = AV_CODEC_ID_HEVC;
		return true;
	}
	return false;
}

static int sprop_extradata(const struct cn_rtsp_media *m, enum AVCodecID id, AVCodecParameters *par)
{
	uint8_t ed[8192];
	int n = 0, rc;
	static const char *const h265[] = { "sprop-vps", "sprop-sps", "sprop-pps" };

	if (id == AV_CODEC_ID_H264) {
		struct cn_str v = cn_rtsp_fmtp_param(m->fmtp, "sprop-parameter-sets");
		if (!v.len)
			return 0;
		if ((n = cn_sprop_to_annexb(v.p, v.len, ed, sizeof(ed))) < 0)
			return 0; /* unreadable: wait for them in band */
	} else {
		for (int i = 0; i < 3; i++) {
			struct cn_str v = cn_rtsp_fmtp_param(m->fmtp, h265[i]);
			if (!v.len)
				return 0;
			if ((rc = cn_sprop_to_annexb(v.p, v.len, ed + n, sizeof(ed) - (size_t)n)) < 0)
				return 0;
			n += rc;
		}
	}
	if (n <= 0 || set_extradata(par, ed, (size_t)n) < 0)
		return 0;
	read_sps(par);
	return 0;
}

static int setup_stream(struct edge_rtsp *c, struct stream *s, const char *base,
			const struct cn_rtsp_media *m, int ch, char *reason, size_t cap)
{
	char url[1024], transport[128];
	struct cn_rtsp_msg resp;
	int rc, rtp = ch, rtcp = ch + 1;

	if (cn_rtsp_control_url(base, m->control, url, sizeof(url)) < 0) {
		snprintf(reason, cap, "control URL too long");
		return -ENOTSUP;
	}
	snprintf(transport, sizeof(transport), "Transport: RTP/AVP/TCP;unicast;interleaved=%d-%d\r\n", ch, ch + 1);
	if ((rc = request(c, "SETUP", url, transport, &resp, reason, cap)) < 0)
		return rc;
	if (resp.status != 200)
		return status_error("SETUP", &resp, reason, cap);
	cn_rtsp_transport_channels(cn_rtsp_header(&resp, "transport"), &rtp, &rtcp);
	if (!c->session[0]) {
		if (!resp.session.len) {
			snprintf(reason, cap, "SETUP: no session");
			return -EPROTO;
		}
		str_to(c->session, sizeof(c->session), resp.session);
		if (resp.session_timeout > 0)
			c->session_timeout = resp.session_timeout;
	}
	s->ch_rtp = rtp;
	s->ch_rtcp = rtcp;
	s->active = true;
	return 0;
}

static void keepalive(struct edge_rtsp *c)
{
	int64_t now = now_ms();

	if (now >= c->next_keepalive_ms) {
		/* The answer comes in the stream and is skipped there. */
		send_request(c, c->get_parameter ? "GET_PARAMETER" : "OPTIONS", c->play_url, NULL, now + 1000);
		c->next_keepalive_ms = now + (int64_t)c->session_timeout * 1000 / 2;
	}
	if (now >= c->next_rr_ms) {
		c->next_rr_ms = now + RR_INTERVAL_MS;
		for (int i = 0; i < 2; i++) {
			struct stream *s = &c->st[i];
			uint8_t buf[4 + 64];
			if (!s->active)
				continue;
			struct cn_rtcp_report_block rb = { .ssrc = s->ssrc, .highest_seq = s->dp.next_seq };
			int n = cn_rtcp_write_rr(buf + 4, sizeof(buf) - 4, c->our_ssrc, &rb, s->ssrc ? 1 : 0);
			if (n <= 0)
				continue;
			buf[0] = '$';
			buf[1] = (uint8_t)s->ch_rtcp;
			buf[2] = (uint8_t)(n >> 8);
			buf[3] = (uint8_t)n;
			send_all(c, buf, 4 + (size_t)n, now + 1000);
		}
	}
}

static void free_client(struct edge_rtsp *c)
{
	for (int i = 0; i < 2; i++) {
		cn_depay_free(&c->st[i].dp);
		avcodec_parameters_free(&c->st[i].par);
	}
	for (int i = 0; i < QUEUE; i++)
		av_packet_free(&c->q[i]);
	if (c->fd >= 0)
		close(c->fd);
	free(c->rx);
	memset(c->pass, 0, sizeof(c->pass));
	memset(&c->auth, 0, sizeof(c->auth));
	free(c);
}

int edge_rtsp_open(const struct edge_rtsp_opts *o, struct edge_rtsp **out, char *reason, size_t cap)
{
	struct edge_rtsp *c = calloc(1, sizeof(*c));
	struct cn_rtsp_sdp *sdp = NULL;
	struct cn_rtsp_msg resp;
	const struct cn_rtsp_media *vm = NULL, *am = NULL;
	enum AVCodecID vid = AV_CODEC_ID_NONE;
	int rc;

	*out = NULL;
	if (!c) {
		snprintf(reason, cap, "out of memory");
		return -ENOMEM;
	}
	c->fd = -1;
	c->stop = o->stop;
	c->lost = o->lost;
	c->timeout_ms = o->timeout_ms;
	c->batch_ms = o->batch_ms;
	c->sleep_cap_ms = FIRST_SLEEP_CAP_MS;
	c->session_timeout = 60;
	cn_strlcpy(c->user, o->user ? o->user : "", sizeof(c->user));
	cn_strlcpy(c->pass, o->pass ? o->pass : "", sizeof(c->pass));
	cn_random_bytes(&c->our_ssrc, sizeof(c->our_ssrc));
	if (cn_strlcpy(c->url, o->url, sizeof(c->url)) < 0 || !(c->rx = malloc(RX_CAP))) {
		snprintf(reason, cap, "out of memory");
		rc = -ENOMEM;
		goto out_free;
	}
	for (int i = 0; i < QUEUE; i++) {
		if (!(c->q[i] = av_packet_alloc())) {
			snprintf(reason, cap, "out of memory");
			rc = -ENOMEM;
			goto out_free;
		}
	}
	for (int i = 0; i < 2; i++) {
		c->st[i].last_pts = INT64_MIN;
		if (!(c->st[i].par = avcodec_parameters_alloc())) {
			rc = -ENOMEM;
			goto out_free;
		}
	}
	if ((rc = dial(c, reason, cap)) < 0)
		goto out_free;

	if ((rc = request(c, "OPTIONS", c->url, NULL, &resp, reason, cap)) < 0)
		goto out_free;
	if (resp.status == 401 || resp.status == 403) {
		rc = status_error("OPTIONS", &resp, reason, cap);
		goto out_free;
	}
	struct cn_str pub = cn_rtsp_header(&resp, "public");
	for (size_t i = 0; pub.len >= 13 && i + 13 <= pub.len; i++)
		if (strncasecmp(pub.p + i, "GET_PARAMETER", 13) == 0)
			c->get_parameter = true;

	if ((rc = request(c, "DESCRIBE", c->url, "Accept: application/sdp\r\n", &resp, reason, cap)) < 0)
		goto out_free;
	if (resp.status != 200) {
		rc = status_error("DESCRIBE", &resp, reason, cap);
		goto out_free;
	}
	struct cn_str base = cn_rtsp_header(&resp, "content-base");
	if (!base.len)
		base = cn_rtsp_header(&resp, "content-location");
	if (base.len)
		str_to(c->base, sizeof(c->base), base);
	else
		cn_strlcpy(c->base, c->url, sizeof(c->base));
	if (!(sdp = malloc(sizeof(*sdp)))) {
		rc = -ENOMEM;
		snprintf(reason, cap, "out of memory");
		goto out_free;
	}
	if (cn_rtsp_sdp_parse((const char *)resp.body, resp.body_len, sdp) < 0) {
		snprintf(reason, cap, "DESCRIBE: unreadable SDP");
		rc = -ENOTSUP;
		goto out_free;
	}
	for (int i = 0; i < sdp->nmedia; i++) {
		const struct cn_rtsp_media *m = &sdp->media[i];
		enum AVCodecID id;
		if (!vm && strcmp(m->kind, "video") == 0) {
			if (!codec_ok(m, &id)) {
				snprintf(reason, cap, "video %s: not for the lean client", m->encoding);
				rc = -ENOTSUP;
				goto out_free;
			}
			vm = m;
			vid = id;
		} else if (!am && strcmp(m->kind, "audio") == 0 &&
			   (strcasecmp(m->encoding, "PCMU") == 0 || strcasecmp(m->encoding, "PCMA") == 0) &&
			   m->clock > 0 && m->channels >= 1 && m->channels <= 2) {
			am = m;
		}
	}
	if (!vm) {
		snprintf(reason, cap, "no video stream");
		rc = -ENOTSUP;
		goto out_free;
	}
	AVCodecParameters *vp = c->st[0].par;
	vp->codec_type = AVMEDIA_TYPE_VIDEO;
	vp->codec_id = vid;
	c->st[0].tb = (AVRational){ 1, 90000 };
	sprop_extradata(vm, vid, vp);
	cn_depay_init(&c->st[0].dp, vid == AV_CODEC_ID_H264 ? CN_DEPAY_H264 : CN_DEPAY_H265, MAX_AU);

	char sess_base[1024];
	cn_strlcpy(sess_base, c->base, sizeof(sess_base));
	if (cn_rtsp_control_url(c->base, sdp->control, c->play_url, sizeof(c->play_url)) < 0)
		cn_strlcpy(c->play_url, c->base, sizeof(c->play_url));
	if ((rc = setup_stream(c, &c->st[0], sess_base, vm, 0, reason, cap)) < 0)
		goto out_free;
	if (am) {
		AVCodecParameters *ap = c->st[1].par;
		char areason[200];
		ap->codec_type = AVMEDIA_TYPE_AUDIO;
		ap->codec_id = strcasecmp(am->encoding, "PCMU") == 0 ? AV_CODEC_ID_PCM_MULAW : AV_CODEC_ID_PCM_ALAW;
		ap->sample_rate = (int)am->clock;
		av_channel_layout_default(&ap->ch_layout, (int)am->channels);
		ap->bits_per_coded_sample = 8;
		ap->block_align = (int)am->channels;
		ap->bit_rate = 8LL * am->clock * am->channels;
		c->st[1].tb = (AVRational){ 1, (int)am->clock };
		cn_depay_init(&c->st[1].dp, CN_DEPAY_G711, 0);
		if (setup_stream(c, &c->st[1], sess_base, am, 2, areason, sizeof(areason)) < 0) {
			cn_log_debug("rtsp", "audio not set up: %s", areason);
			c->st[1].active = false;
		}
	}
	free(sdp);
	sdp = NULL;
	if ((rc = request(c, "PLAY", c->play_url, "Range: npt=0.000-\r\n", &resp, reason, cap)) < 0)
		goto out_free;
	if (resp.status != 200) {
		rc = status_error("PLAY", &resp, reason, cap);
		goto out_free;
	}
	c->next_keepalive_ms = now_ms() + (int64_t)c->session_timeout * 1000 / 2;
	c->next_rr_ms = now_ms() + RR_INTERVAL_MS;
	c->last_rx_ms = now_ms();
	/* Online means frames are flowing: wait for the first keyframe, which also brings
	 * the parameter sets when the SDP had none (what comes before it is not decodable
	 * and is dropped, audio too). A camera with a GOP longer than rtsp_timeout goes
	 * online without one once the parameter sets are known. */
	int64_t deadline = now_ms() + c->timeout_ms;
	for (;;) {
		while (c->qn && !(c->q[c->qhead]->stream_index == 0 && (c->q[c->qhead]->flags & AV_PKT_FLAG_KEY))) {
			av_packet_unref(c->q[c->qhead]);
			c->qhead = (c->qhead + 1) % QUEUE;
			c->qn--;
		}
		if (c->qn)
			break;
		if (now_ms() > deadline) {
			if (vp->extradata_size)
				break;
			snprintf(reason, cap, "no parameter sets within %lld s", (long long)(c->timeout_ms / 1000));
			rc = -ETIMEDOUT;
			goto out_free;
		}
		struct cn_rtsp_chunk ch;
		if ((rc = fill(c, &ch, deadline, true, reason, cap)) < 0) {
			if (rc == -ETIMEDOUT && vp->extradata_size)
				break;
			if (rc == -ETIMEDOUT)
				snprintf(reason, cap, "no parameter sets within %lld s", (long long)(c->timeout_ms / 1000));
			goto out_free;
		}
		if (ch.kind == CN_RTSP_CHUNK_DATA)
			on_data(c, ch.channel, ch.data, ch.data_len);
		if (c->err) {
			rc = c->err;
			snprintf(reason, cap, "%s", rc == -ENOTSUP ? "frames are reordered (B-frames)" : cn_strerror(rc));
			goto out_free;
		}
	}
	c->last_rx_ms = now_ms();
	c->changed = false;
	if (!c->st[1].active)
		avcodec_parameters_free(&c->st[1].par);
	*out = c;
	return 0;

out_free:
	free(sdp);
	free_client(c);
	return rc;
}

const AVCodecParameters *edge_rtsp_video(const struct edge_rtsp *c, AVRational *tb)
{
	*tb = c->st[0].tb;
	return c->st[0].par;
}

const AVCodecParameters *edge_rtsp_audio(const struct edge_rtsp *c, AVRational *tb)
{
	*tb = c->st[1].tb;
	return c->st[1].active ? c->st[1].par : NULL;
}

void edge_rtsp_set_batch(struct edge_rtsp *c, int64_t batch_ms)
{
	c->batch_ms = batch_ms;
}

uint64_t edge_rtsp_dropped(const struct edge_rtsp *c)
{
	return c->st[0].dp.dropped;
}

int edge_rtsp_read(struct edge_rtsp *c, AVPacket *pkt, bool *changed, char *reason, size_t cap)
{
	for (;;) {
		if (c->qn) {
			av_packet_move_ref(pkt, c->q[c->qhead]);
			c->qhead = (c->qhead + 1) % QUEUE;
			c->qn--;
			*changed = c->changed && pkt->stream_index == 0;
			if (*changed)
				c->changed = false;
			return 0;
		}
		if (c->err) {
			snprintf(reason, cap, "%s", c->err == -ENOTSUP ? "frames are reordered (B-frames)"
									: cn_strerror(c->err));
			return c->err;
		}
		keepalive(c);
		struct cn_rtsp_chunk ch;
		int rc = fill(c, &ch, c->last_rx_ms + c->timeout_ms, true, reason, cap);
		if (rc < 0)
			return rc;
		if (ch.kind == CN_RTSP_CHUNK_DATA)
			on_data(c, ch.channel, ch.data, ch.data_len);
		/* messages: keep-alive answers and server requests, nothing to do */
	}
}

void edge_rtsp_close(struct edge_rtsp *c)
{
	if (!c)
		return;
	if (c->fd >= 0 && c->session[0]) {
		char req[REQ_CAP], authz[1024] = "", cn[17];
		if (c->auth.scheme != CN_RTSP_AUTH_NONE) {
			cnonce(cn);
			if (cn_rtsp_auth_header(&c->auth, c->user, c->pass, "TEARDOWN", c->play_url, cn,
						authz, sizeof(authz)) < 0)
				authz[0] = '\0';
		}
		int n = cn_rtsp_write_request(req, sizeof(req), "TEARDOWN", c->play_url, ++c->cseq,
					      c->session, authz, NULL);
		if (n > 0 && send(c->fd, req, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			cn_log_debug("rtsp", "TEARDOWN not sent: %s", strerror(errno));
	}
	free_client(c);
}
