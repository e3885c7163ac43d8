/* cn_sdp.c: SDP offer/answer for WebRTC: strict bounded offer and trickle-fragment parsers, answer writer; no I/O. */
#include "cn_sdp.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cn_err.h"

#define MAX_PT 127

/* ---- small helpers over untrusted spans ---- */

/* Input quoted in messages: at most 40 bytes, anything but printable ASCII as '?', so a
 * hostile value cannot forge log lines or break a terminal. */
static const char *show(char *buf, size_t cap, struct cn_str s)
{
	size_t o = 0, max = cap > 4 ? cap - 4 : 0;

	if (max > 40)
		max = 40;
	for (size_t i = 0; i < s.len && o < max; i++)
		buf[o++] = s.p[i] >= 0x20 && s.p[i] < 0x7f ? s.p[i] : '?';
	if (s.len > max && o + 3 < cap) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	if (cap)
		buf[o < cap ? o : cap - 1] = '\0';
	return buf;
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 8866 token-char. */
static bool is_token_char(char c)
{
	unsigned char u = (unsigned char)c;

	return u == 0x21 || (u >= 0x23 && u <= 0x27) || u == 0x2a || u == 0x2b || u == 0x2d ||
	       u == 0x2e || (u >= 0x30 && u <= 0x39) || (u >= 0x41 && u <= 0x5a) ||
	       (u >= 0x5e && u <= 0x7e);
}

static bool is_token(struct cn_str s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (!is_token_char(s.p[i]))
			return false;
	return true;
}

/* RFC 8445 ice-char. */
static bool is_ice_chars(struct cn_str s)
{
	for (size_t i = 0; i < s.len; i++)
		if (!is_alnum(s.p[i]) && s.p[i] != '+' && s.p[i] != '/')
			return false;
	return true;
}

/* Visible ASCII, no space (addresses, user names, URIs). */
static bool is_visible(struct cn_str s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (s.p[i] <= 0x20 || s.p[i] >= 0x7f)
			return false;
	return true;
}

static bool has_suffix(struct cn_str s, const char *suffix)
{
	size_t n = strlen(suffix);

	return s.len >= n && memcmp(s.p + s.len - n, suffix, n) == 0;
}

/* Unsigned decimal, digits only, at most max. */
static bool to_u64(struct cn_str s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s.len == 0 || s.len > 19)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (!is_digit(s.p[i]))
			return false;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

static bool all_digits(struct cn_str s)
{
	uint64_t v;

	return s.len > 0 && s.len <= 19 && to_u64(s, UINT64_MAX, &v);
}

/* Splits s at its first space: returns what is before it and leaves s after it (empty
 * when there was no space). */
static struct cn_str take_field(struct cn_str *s)
{
	const char *sp = s->len ? memchr(s->p, ' ', s->len) : NULL;
	struct cn_str f = { s->p, sp ? (size_t)(sp - s->p) : s->len };

	s->p += sp ? f.len + 1 : f.len;
	s->len -= sp ? f.len + 1 : f.len;
	return f;
}

/* Splits s at the first c, like take_field. */
static struct cn_str take_until(struct cn_str *s, char c, bool *found)
{
	const char *at = s->len ? memchr(s->p, c, s->len) : NULL;
	struct cn_str f = { s->p, at ? (size_t)(at - s->p) : s->len };

	if (found)
		*found = at != NULL;
	s->p += at ? f.len + 1 : f.len;
	s->len -= at ? f.len + 1 : f.len;
	return f;
}

/* ---- parser state ---- */

/* What a section needs beyond struct cn_sdp_media while it is parsed. */
struct media_state {
	int mline;     /* number of its m= line */
	bool rtp;      /* formats are RTP payload types */
	bool have_dir;
	bool have_setup;
	bool have_ssrc;
	unsigned star_fb; /* a=rtcp-fb:* */
	bool rtpmap[CN_SDP_MAX_FORMATS];
	int fmtp_line[CN_SDP_MAX_FORMATS]; /* 0: no a=fmtp */
};

struct parser {
	const char *text;
	size_t len;
	size_t pos;
	int line;       /* number of the current line, from 1 */
	char attr[24];  /* name of the attribute being parsed, for messages */
	char *err;
	size_t errcap;
	bool frag;      /* a trickle fragment rather than an offer */
	struct cn_sdp *out;
	int cur;        /* index of the current m= section, -1 at session level */
	bool have_t;
	int group_line; /* line of a=group:BUNDLE */
	/* session-level values the sections inherit */
	char ufrag[64];
	char pwd[160];
	char fp_alg[16];
	uint8_t fp[64];
	size_t fp_len;
	enum cn_sdp_setup setup;
	bool have_setup;
	enum cn_sdp_dir dir;
	bool have_dir;
	bool eoc;
	int nsess_ext;
	struct cn_sdp_extmap sess_ext[CN_SDP_MAX_EXTMAP];
	struct media_state ms[CN_SDP_MAX_MEDIA];
};

static int fail(struct parser *p, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "line N: <message>". */
static int fail(struct parser *p, int rc, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cn_fail(rc, p->err, p->errcap, "line %d: %s", p->line, msg);
}

static int afail(struct parser *p, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "line N: a=<attribute>: <message>". */
static int afail(struct parser *p, int rc, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cn_fail(rc, p->err, p->errcap, "line %d: a=%s: %s", p->line, p->attr, msg);
}

/* Next line into *type and *value (without its end). 1 when there was one, 0 at the end. */
static int next_line(struct parser *p, char *type, struct cn_str *value)
{
	const char *s = p->text + p->pos;
	size_t rest = p->len - p->pos, n, content;
	const char *nl, *bad;
	char q[48];

	if (rest == 0)
		return 0;
	p->line++;
	nl = memchr(s, '\n', rest < CN_SDP_MAX_LINE + 2 ? rest : CN_SDP_MAX_LINE + 2);
	n = nl ? (size_t)(nl - s) : rest;
	content = n > 0 && s[n - 1] == '\r' ? n - 1 : n;
	if (content > CN_SDP_MAX_LINE)
		return fail(p, CN_E_TOO_BIG, "longer than %d bytes", CN_SDP_MAX_LINE);
	if ((bad = memchr(s, '\0', content)))
		return fail(p, CN_E_MALFORMED, "NUL byte at column %zu", (size_t)(bad - s) + 1);
	if ((bad = memchr(s, '\r', content)))
		return fail(p, CN_E_MALFORMED, "CR at column %zu not followed by LF",
			    (size_t)(bad - s) + 1);
	if (!nl)
		return fail(p, CN_E_MALFORMED, "last line does not end in CRLF or LF");
	p->pos += n + 1;
	if (content == 0)
		return fail(p, CN_E_MALFORMED, "empty line");
	if (content < 2 || s[0] < 'a' || s[0] > 'z' || s[1] != '=')
		return fail(p, CN_E_MALFORMED, "'%s' is not '<letter>=<value>'",
			    show(q, sizeof(q), (struct cn_str){ s, content }));
	*type = s[0];
	*value = (struct cn_str){ s + 2, content - 2 };
	return 1;
}

static struct cn_sdp_media *cur_media(struct parser *p)
{
	return p->cur >= 0 ? &p->out->media[p->cur] : NULL;
}

/* ---- session lines ---- */

static int parse_origin(struct parser *p, struct cn_str v)
{
	struct cn_str user, id, ver, net, atype;
	char q[48];

	user = take_field(&v);
	id = take_field(&v);
	ver = take_field(&v);
	net = take_field(&v);
	atype = take_field(&v);
	if (!is_visible(user) || !id.len || !ver.len || !net.len || !atype.len || !is_visible(v))
		return fail(p, CN_E_MALFORMED,
			    "o=: needs '<username> <sess-id> <sess-version> IN IP4|IP6 <address>'");
	if (user.len >= sizeof(p->out->origin_user))
		return fail(p, CN_E_TOO_BIG, "o=: username longer than %zu bytes",
			    sizeof(p->out->origin_user) - 1);
	if (!all_digits(id) || id.len >= sizeof(p->out->session_id))
		return fail(p, CN_E_MALFORMED, "o=: session id '%s' is not 1 to %zu digits",
			    show(q, sizeof(q), id), sizeof(p->out->session_id) - 1);
	if (!all_digits(ver))
		return fail(p, CN_E_MALFORMED, "o=: session version '%s' is not 1 to 19 digits",
			    show(q, sizeof(q), ver));
	if (!cn_str_eq_cstr(net, "IN") ||
	    (!cn_str_eq_cstr(atype, "IP4") && !cn_str_eq_cstr(atype, "IP6")))
		return fail(p, CN_E_MALFORMED, "o=: address type is not 'IN IP4' or 'IN IP6'");
	cn_str_copy(p->out->origin_user, sizeof(p->out->origin_user), user);
	cn_str_copy(p->out->session_id, sizeof(p->out->session_id), id);
	return 0;
}

static int parse_time(struct parser *p, struct cn_str v)
{
	struct cn_str start = take_field(&v);

	if (!all_digits(start) || !all_digits(v))
		return fail(p, CN_E_MALFORMED, "t=: needs '<start-time> <stop-time>' in digits");
	p->have_t = true;
	return 0;
}

static int parse_conn(struct parser *p, struct cn_str v)
{
	struct cn_str net = take_field(&v), atype = take_field(&v);

	if (!cn_str_eq_cstr(net, "IN") ||
	    (!cn_str_eq_cstr(atype, "IP4") && !cn_str_eq_cstr(atype, "IP6")) || !is_visible(v))
		return fail(p, CN_E_MALFORMED, "c=: needs 'IN IP4|IP6 <address>'");
	return 0;
}

/* RFC 8866 proto: token *("/" token). */
static bool is_proto(struct cn_str s)
{
	struct cn_str part;
	bool more = true;

	if (s.len == 0)
		return false;
	while (more) {
		part = take_until(&s, '/', &more);
		if (!is_token(part))
			return false;
	}
	return true;
}

static bool proto_is_rtp(struct cn_str proto)
{
	return has_suffix(proto, "RTP/AVP") || has_suffix(proto, "RTP/AVPF") ||
	       has_suffix(proto, "RTP/SAVP") || has_suffix(proto, "RTP/SAVPF");
}

/* m=<media> <port>[/<count>] <proto> <fmt> ...: into m when it is set, else only checked. */
static int parse_mline(struct parser *p, struct cn_str v, struct cn_sdp_media *m, bool *is_rtp)
{
	struct cn_str kind, port, count, proto, fmt;
	bool slash, rtp, more = true, seen[MAX_PT + 1] = { false };
	uint64_t n;
	int nfmt = 0;
	char q[48], q2[48];

	kind = take_field(&v);
	port = take_field(&v);
	proto = take_field(&v);
	if (!kind.len || !port.len || !proto.len || !v.len)
		return fail(p, CN_E_MALFORMED, "m=: needs '<media> <port> <proto> <fmt> ...'");
	if (!is_token(kind) || kind.len >= sizeof(m->kind_name))
		return fail(p, CN_E_MALFORMED, "m=: media '%s' is not a token of 1 to %zu bytes",
			    show(q, sizeof(q), kind), sizeof(m->kind_name) - 1);
	count = port;
	port = take_until(&count, '/', &slash);
	if (!to_u64(port, 65535, &n))
		return fail(p, CN_E_MALFORMED, "m=%s: port '%s' is not 0 to 65535",
			    show(q, sizeof(q), kind), show(q2, sizeof(q2), port));
	if (slash && !to_u64(count, 65535, &n))
		return fail(p, CN_E_MALFORMED, "m=%s: port count '%s' is not a number",
			    show(q, sizeof(q), kind), show(q2, sizeof(q2), count));
	if (!is_proto(proto) || proto.len >= sizeof(m->proto))
		return fail(p, CN_E_MALFORMED, "m=: proto '%s' is not '<token>/<token>...' of 1 to %zu bytes",
			    show(q, sizeof(q), proto), sizeof(m->proto) - 1);
	rtp = proto_is_rtp(proto);
	while (more) {
		fmt = take_until(&v, ' ', &more);
		if (nfmt == CN_SDP_MAX_FORMATS)
			return fail(p, CN_E_TOO_BIG, "m=: more than %d formats", CN_SDP_MAX_FORMATS);
		if (rtp) {
			if (!to_u64(fmt, MAX_PT, &n))
				return fail(p, CN_E_MALFORMED, "m=: payload type '%s' is not 0 to 127",
					    show(q, sizeof(q), fmt));
			if (seen[n])
				return fail(p, CN_E_MALFORMED, "m=: payload type %u listed twice",
					    (unsigned)n);
			seen[n] = true;
		} else if (!is_token(fmt) || fmt.len >= sizeof(m->formats[0].name)) {
			return fail(p, CN_E_MALFORMED, "m=: format '%s' is not a token of 1 to %zu bytes",
				    show(q, sizeof(q), fmt), sizeof(m->formats[0].name) - 1);
		}
		if (m) {
			struct cn_sdp_format *f = &m->formats[nfmt];

			f->pt = rtp ? (uint8_t)n : 0;
			if (!rtp)
				cn_str_copy(f->name, sizeof(f->name), fmt);
			f->packetization_mode = -1;
			f->apt = -1;
		}
		nfmt++;
	}
	*is_rtp = rtp;
	if (!m)
		return 0;
	to_u64(port, 65535, &n);
	m->port = (uint16_t)n;
	m->nformats = nfmt;
	cn_str_copy(m->kind_name, sizeof(m->kind_name), kind);
	cn_str_copy(m->proto, sizeof(m->proto), proto);
	if (cn_str_eq_cstr(kind, "video"))
		m->kind = CN_SDP_VIDEO;
	else if (cn_str_eq_cstr(kind, "audio"))
		m->kind = CN_SDP_AUDIO;
	else if (cn_str_eq_cstr(kind, "application"))
		m->kind = CN_SDP_APPLICATION;
	else
		m->kind = CN_SDP_OTHER;
	return 0;
}

static int parse_media(struct parser *p, struct cn_str v)
{
	struct cn_sdp *out = p->out;
	struct cn_sdp_media *m;
	struct media_state *ms;
	struct cn_str proto;
	bool rtp;
	int rc;

	if (!p->have_t)
		return fail(p, CN_E_MALFORMED, "m=: no t= line before the first m= section");
	if (out->nmedia == CN_SDP_MAX_MEDIA)
		return fail(p, CN_E_TOO_BIG, "m=: more than %d m= sections", CN_SDP_MAX_MEDIA);
	m = &out->media[out->nmedia];
	ms = &p->ms[out->nmedia];
	if ((rc = parse_mline(p, v, m, &rtp)) < 0)
		return rc;
	p->cur = out->nmedia++;
	ms->mline = p->line;
	ms->rtp = rtp;
	if (m->port == 0)
		return 0;
	proto = cn_str_from(m->proto);
	if (m->kind == CN_SDP_APPLICATION && has_suffix(proto, "DTLS/SCTP"))
		return 0;
	if (!has_suffix(proto, "RTP/SAVPF") && !has_suffix(proto, "RTP/SAVP"))
		return fail(p, CN_E_MALFORMED,
			    "m=%s: proto '%s' is not WebRTC's (UDP/TLS/RTP/SAVPF%s)", m->kind_name,
			    m->proto, m->kind == CN_SDP_APPLICATION ? " or UDP/DTLS/SCTP" : "");
	return 0;
}

/* ---- attributes ---- */

static int parse_ice(struct parser *p, struct cn_str v, size_t min, char *dst, size_t cap)
{
	char q[48];

	if (v.len < min || v.len >= cap)
		return afail(p, v.len < min ? CN_E_MALFORMED : CN_E_TOO_BIG,
			     "'%s' is %zu characters, needs %zu to %zu", show(q, sizeof(q), v), v.len,
			     min, cap - 1);
	if (!is_ice_chars(v))
		return afail(p, CN_E_MALFORMED, "'%s' has a character outside A-Z a-z 0-9 + /",
			     show(q, sizeof(q), v));
	if (dst[0])
		return afail(p, CN_E_MALFORMED, "given twice");
	cn_str_copy(dst, cap, v);
	return 0;
}

static const struct {
	const char *name;
	size_t len;
} hashes[] = {
	{ "sha-1", 20 }, { "sha-224", 28 }, { "sha-256", 32 }, { "sha-384", 48 }, { "sha-512", 64 },
};

static int hexval(char c)
{
	if (is_digit(c))
		return c - '0';
	c = lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* a=fingerprint:<hash> <XX:XX:...>. Keeps the strongest of several (RFC 8122 allows one
 * per hash function; aiortc sends sha-256, sha-384 and sha-512). */
static int parse_fingerprint(struct parser *p, struct cn_str v, char alg[16], uint8_t fp[64],
			     size_t *fp_len)
{
	struct cn_str name = take_field(&v);
	uint8_t tmp[64];
	size_t need = 0, n = 0, i;
	char q[48];

	for (i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++)
		if (cn_str_eq_nocase(name, hashes[i].name))
			need = hashes[i].len;
	if (!need)
		return afail(p, CN_E_MALFORMED,
			     "hash '%s' is not sha-1, sha-224, sha-256, sha-384 or sha-512",
			     show(q, sizeof(q), name));
	if ((v.len + 1) % 3 != 0)
		return afail(p, CN_E_MALFORMED, "'%s' is not hex byte pairs separated by ':'",
			     show(q, sizeof(q), v));
	for (i = 0; i < v.len; i += 3) {
		int hi = hexval(v.p[i]), lo = hexval(v.p[i + 1]);

		if (hi < 0 || lo < 0 || (i + 2 < v.len && v.p[i + 2] != ':'))
			return afail(p, CN_E_MALFORMED, "'%s' is not hex byte pairs separated by ':'",
				     show(q, sizeof(q), v));
		if (n < sizeof(tmp))
			tmp[n] = (uint8_t)(hi << 4 | lo);
		n++;
	}
	if (n != need)
		return afail(p, CN_E_MALFORMED, "'%s' needs %zu bytes, got %zu",
			     show(q, sizeof(q), name), need, n);
	if (n <= *fp_len)
		return 0;
	for (i = 0; i < name.len && i < 15; i++)
		alg[i] = lower(name.p[i]);
	alg[i] = '\0';
	memcpy(fp, tmp, n);
	*fp_len = n;
	return 0;
}

static int parse_setup(struct parser *p, struct cn_str v, enum cn_sdp_setup *setup, bool *have)
{
	char q[48];

	if (*have)
		return afail(p, CN_E_MALFORMED, "given twice");
	if (cn_str_eq_cstr(v, "actpass"))
		*setup = CN_SDP_SETUP_ACTPASS;
	else if (cn_str_eq_cstr(v, "active"))
		*setup = CN_SDP_SETUP_ACTIVE;
	else if (cn_str_eq_cstr(v, "passive"))
		*setup = CN_SDP_SETUP_PASSIVE;
	else
		return afail(p, CN_E_MALFORMED, "'%s' is not actpass, active or passive",
			     show(q, sizeof(q), v));
	*have = true;
	return 0;
}

static int parse_ice_options(struct parser *p, struct cn_str v)
{
	struct cn_str opt;

	do {
		opt = take_field(&v);
		if (!is_token(opt))
			return afail(p, CN_E_MALFORMED, "needs space-separated option tokens");
		if (cn_str_eq_cstr(opt, "trickle"))
			p->out->trickle = true;
	} while (v.len);
	return 0;
}

static int parse_extmap(struct parser *p, struct cn_str v, struct cn_sdp_extmap *ext, int *n)
{
	struct cn_str idtok = take_field(&v), uri = take_field(&v), dir;
	bool slash;
	uint64_t id;
	char q[48];

	dir = idtok;
	idtok = take_until(&dir, '/', &slash);
	if (!to_u64(idtok, 255, &id) || id == 0)
		return afail(p, CN_E_MALFORMED, "id '%s' is not 1 to 255", show(q, sizeof(q), idtok));
	if (slash && !cn_str_eq_cstr(dir, "sendrecv") && !cn_str_eq_cstr(dir, "sendonly") &&
	    !cn_str_eq_cstr(dir, "recvonly") && !cn_str_eq_cstr(dir, "inactive"))
		return afail(p, CN_E_MALFORMED, "direction '%s' is not sendrecv, sendonly, recvonly or inactive",
			     show(q, sizeof(q), dir));
	if (!is_visible(uri))
		return afail(p, CN_E_MALFORMED, "needs '<id> <uri>'");
	if (uri.len >= sizeof(ext->uri))
		return afail(p, CN_E_TOO_BIG, "uri longer than %zu bytes", sizeof(ext->uri) - 1);
	if (id > 14)
		return 0; /* two-byte form only: we neither send nor answer it */
	for (int i = 0; i < *n; i++)
		if (ext[i].id == id)
			return afail(p, CN_E_MALFORMED, "id %u used twice", (unsigned)id);
	if (*n == CN_SDP_MAX_EXTMAP)
		return afail(p, CN_E_TOO_BIG, "more than %d in one section", CN_SDP_MAX_EXTMAP);
	ext[*n].id = (uint8_t)id;
	cn_str_copy(ext[*n].uri, sizeof(ext[*n].uri), uri);
	(*n)++;
	return 0;
}

static int parse_group(struct parser *p, struct cn_str v)
{
	struct cn_sdp *out = p->out;
	struct cn_str sem = take_field(&v), mid;
	char q[48];

	if (!is_token(sem))
		return afail(p, CN_E_MALFORMED, "needs '<semantics> <mid> ...'");
	if (!cn_str_eq_cstr(sem, "BUNDLE"))
		return 0;
	if (out->bundle)
		return afail(p, CN_E_MALFORMED, "a second BUNDLE group is not supported");
	out->bundle = true;
	p->group_line = p->line;
	while (v.len) {
		mid = take_field(&v);
		if (!is_token(mid) || mid.len >= sizeof(out->bundle_mids[0]))
			return afail(p, CN_E_MALFORMED, "mid '%s' is not a token of 1 to %zu bytes",
				     show(q, sizeof(q), mid), sizeof(out->bundle_mids[0]) - 1);
		for (int i = 0; i < out->nbundle; i++)
			if (cn_str_eq_cstr(mid, out->bundle_mids[i]))
				return afail(p, CN_E_MALFORMED, "mid '%s' listed twice",
					     show(q, sizeof(q), mid));
		if (out->nbundle == CN_SDP_MAX_MEDIA)
			return afail(p, CN_E_TOO_BIG, "more than %d mids", CN_SDP_MAX_MEDIA);
		cn_str_copy(out->bundle_mids[out->nbundle++], sizeof(out->bundle_mids[0]), mid);
	}
	return 0;
}

/* Why a candidate value (what follows "candidate:") is malformed, or NULL. */
static const char *candidate_problem(struct cn_str v)
{
	struct cn_str f;
	uint64_t n;

	f = take_field(&v);
	if (f.len < 1 || f.len > 32 || !is_ice_chars(f))
		return "foundation is not 1 to 32 of A-Z a-z 0-9 + /";
	if (!to_u64(take_field(&v), 256, &n) || n < 1)
		return "component id is not 1 to 256";
	if (!is_token(take_field(&v)))
		return "transport is not a token";
	if (!to_u64(take_field(&v), UINT32_MAX, &n))
		return "priority is not 0 to 4294967295";
	if (!is_visible(take_field(&v)))
		return "connection address is missing";
	if (!to_u64(take_field(&v), 65535, &n))
		return "port is not 0 to 65535";
	if (!cn_str_eq_cstr(take_field(&v), "typ"))
		return "no 'typ' after the port";
	if (!is_token(take_field(&v)))
		return "candidate type is missing";
	while (v.len)
		if (!is_visible(take_field(&v)))
			return "empty extension field";
	return NULL;
}

static int parse_candidate(struct parser *p, struct cn_str v, char (*cands)[CN_SDP_CANDIDATE_LEN],
			   int *n)
{
	const char *why = candidate_problem(v);
	char q[48];

	if (why)
		return afail(p, CN_E_MALFORMED, "'%s': %s", show(q, sizeof(q), v), why);
	if (v.len + 10 >= CN_SDP_CANDIDATE_LEN)
		return afail(p, CN_E_TOO_BIG, "longer than %d bytes", CN_SDP_CANDIDATE_LEN - 11);
	if (*n == CN_SDP_MAX_CANDIDATES)
		return afail(p, CN_E_TOO_BIG, "more than %d in one %s", CN_SDP_MAX_CANDIDATES,
			     p->frag ? "fragment" : "m= section");
	memcpy(cands[*n], "candidate:", 10);
	memcpy(cands[*n] + 10, v.p, v.len);
	cands[*n][10 + v.len] = '\0';
	(*n)++;
	return 0;
}

/* Index of the format with payload type s in the current section. */
static int find_pt(struct parser *p, struct cn_str s)
{
	const struct cn_sdp_media *m = cur_media(p);
	uint64_t pt;
	char q[48];

	if (!to_u64(s, MAX_PT, &pt))
		return afail(p, CN_E_MALFORMED, "payload type '%s' is not 0 to 127",
			     show(q, sizeof(q), s));
	if (p->ms[p->cur].rtp)
		for (int i = 0; i < m->nformats; i++)
			if (m->formats[i].pt == pt)
				return i;
	return afail(p, CN_E_MALFORMED, "payload type %u is not on the m= line", (unsigned)pt);
}

static int parse_rtpmap(struct parser *p, struct cn_str v)
{
	struct cn_sdp_media *m = cur_media(p);
	struct cn_str name, clock, chans;
	struct cn_sdp_format *f;
	bool slash;
	uint64_t n;
	int i;

	if ((i = find_pt(p, take_field(&v))) < 0)
		return i;
	f = &m->formats[i];
	if (p->ms[p->cur].rtpmap[i])
		return afail(p, CN_E_MALFORMED, "payload type %u mapped twice", f->pt);
	clock = v;
	name = take_until(&clock, '/', &slash);
	chans = clock;
	clock = take_until(&chans, '/', &slash);
	if (!is_token(name) || name.len >= sizeof(f->name) || !to_u64(clock, UINT32_MAX, &n) ||
	    n == 0)
		return afail(p, CN_E_MALFORMED, "needs '<payload type> <encoding>/<clock rate>'");
	f->clock = (uint32_t)n;
	if (slash) {
		if (!to_u64(chans, 255, &n) || n == 0)
			return afail(p, CN_E_MALFORMED, "channels are not 1 to 255");
		f->channels = (uint8_t)n;
	}
	cn_str_copy(f->name, sizeof(f->name), name);
	p->ms[p->cur].rtpmap[i] = true;
	return 0;
}

static int parse_fmtp(struct parser *p, struct cn_str v)
{
	struct cn_sdp_media *m = cur_media(p);
	int i;

	if ((i = find_pt(p, take_field(&v))) < 0)
		return i;
	if (p->ms[p->cur].fmtp_line[i])
		return afail(p, CN_E_MALFORMED, "payload type %u has a second a=fmtp",
			     m->formats[i].pt);
	if (v.len >= sizeof(m->formats[i].fmtp))
		return afail(p, CN_E_TOO_BIG, "parameters longer than %zu bytes",
			     sizeof(m->formats[i].fmtp) - 1);
	cn_str_copy(m->formats[i].fmtp, sizeof(m->formats[i].fmtp), v);
	p->ms[p->cur].fmtp_line[i] = p->line;
	return 0;
}

static unsigned fb_bit(struct cn_str v)
{
	if (cn_str_eq_cstr(v, "nack"))
		return CN_SDP_FB_NACK;
	if (cn_str_eq_cstr(v, "nack pli"))
		return CN_SDP_FB_PLI;
	if (cn_str_eq_cstr(v, "ccm fir"))
		return CN_SDP_FB_FIR;
	if (cn_str_eq_cstr(v, "goog-remb"))
		return CN_SDP_FB_REMB;
	if (cn_str_eq_cstr(v, "transport-cc"))
		return CN_SDP_FB_TRANSPORT_CC;
	return 0;
}

static int parse_rtcp_fb(struct parser *p, struct cn_str v)
{
	struct cn_str pt = take_field(&v), rest = v;
	int i;

	if (!pt.len || !is_token(take_field(&rest)))
		return afail(p, CN_E_MALFORMED, "needs '<payload type or *> <feedback>'");
	if (cn_str_eq_cstr(pt, "*")) {
		p->ms[p->cur].star_fb |= fb_bit(v);
		return 0;
	}
	if ((i = find_pt(p, pt)) < 0)
		return i;
	cur_media(p)->formats[i].fb |= fb_bit(v);
	return 0;
}

static int parse_ssrc(struct parser *p, struct cn_str v)
{
	struct cn_str id = take_field(&v);
	uint64_t n;

	if (!to_u64(id, UINT32_MAX, &n) || !v.len)
		return afail(p, CN_E_MALFORMED, "needs '<ssrc 0 to 4294967295> <attribute>'");
	if (!p->ms[p->cur].have_ssrc) {
		p->ms[p->cur].have_ssrc = true;
		cur_media(p)->ssrc = (uint32_t)n;
	}
	return 0;
}

static int parse_dir(struct parser *p, enum cn_sdp_dir dir)
{
	bool *have = p->cur >= 0 ? &p->ms[p->cur].have_dir : &p->have_dir;

	if (*have)
		return afail(p, CN_E_MALFORMED, "a second direction attribute");
	*have = true;
	if (p->cur >= 0)
		cur_media(p)->dir = dir;
	else
		p->dir = dir;
	return 0;
}

enum attr_where { ANYWHERE, SESSION_ONLY, MEDIA_ONLY };
enum attr_value { VALUE, NO_VALUE };

static const struct {
	const char *name;
	enum attr_where where;
	enum attr_value value;
} known_attrs[] = {
	{ "ice-ufrag", ANYWHERE, VALUE },     { "ice-pwd", ANYWHERE, VALUE },
	{ "ice-options", ANYWHERE, VALUE },   { "fingerprint", ANYWHERE, VALUE },
	{ "setup", ANYWHERE, VALUE },         { "sendrecv", ANYWHERE, NO_VALUE },
	{ "sendonly", ANYWHERE, NO_VALUE },   { "recvonly", ANYWHERE, NO_VALUE },
	{ "inactive", ANYWHERE, NO_VALUE },   { "extmap", ANYWHERE, VALUE },
	{ "end-of-candidates", ANYWHERE, NO_VALUE },
	{ "ice-lite", SESSION_ONLY, NO_VALUE }, { "group", SESSION_ONLY, VALUE },
	{ "mid", MEDIA_ONLY, VALUE },         { "rtcp-mux", MEDIA_ONLY, NO_VALUE },
	{ "rtcp-rsize", MEDIA_ONLY, NO_VALUE }, { "rtpmap", MEDIA_ONLY, VALUE },
	{ "fmtp", MEDIA_ONLY, VALUE },      { "rtcp-fb", MEDIA_ONLY, VALUE },
	{ "candidate", MEDIA_ONLY, VALUE },   { "ssrc", MEDIA_ONLY, VALUE },
};

/* a=<name>[:<value>]: splits and checks the line's shape against known_attrs. 1 when the
 * attribute is one we read, 0 when it is to be ignored. */
static int split_attr(struct parser *p, struct cn_str line, struct cn_str *name,
		      struct cn_str *value)
{
	bool colon;
	char q[48];

	*value = line;
	*name = take_until(value, ':', &colon);
	if (!is_token(*name))
		return fail(p, CN_E_MALFORMED, "a=%s: attribute name is not a token",
			    show(q, sizeof(q), *name));
	cn_str_copy(p->attr, sizeof(p->attr), *name);
	for (size_t i = 0; i < sizeof(known_attrs) / sizeof(known_attrs[0]); i++) {
		if (!cn_str_eq_cstr(*name, known_attrs[i].name))
			continue;
		if (known_attrs[i].where == SESSION_ONLY && p->cur >= 0)
			return afail(p, CN_E_MALFORMED, "only allowed at session level");
		if (known_attrs[i].where == MEDIA_ONLY && p->cur < 0)
			return afail(p, CN_E_MALFORMED, "only allowed in an m= section");
		if (known_attrs[i].value == VALUE && (!colon || !value->len))
			return afail(p, CN_E_MALFORMED, "needs a value");
		if (known_attrs[i].value == NO_VALUE && colon)
			return afail(p, CN_E_MALFORMED, "takes no value");
		return 1;
	}
	return 0;
}

static int parse_attr(struct parser *p, struct cn_str line)
{
	struct cn_sdp_media *m = cur_media(p);
	struct cn_str name, v;
	char q[48];
	int rc;

	if ((rc = split_attr(p, line, &name, &v)) <= 0)
		return rc;
	if (cn_str_eq_cstr(name, "ice-ufrag"))
		return parse_ice(p, v, 4, m ? m->ice_ufrag : p->ufrag, sizeof(p->ufrag));
	if (cn_str_eq_cstr(name, "ice-pwd"))
		return parse_ice(p, v, 22, m ? m->ice_pwd : p->pwd, sizeof(p->pwd));
	if (cn_str_eq_cstr(name, "ice-options"))
		return parse_ice_options(p, v);
	if (cn_str_eq_cstr(name, "fingerprint"))
		return m ? parse_fingerprint(p, v, m->fingerprint_alg, m->fingerprint,
					     &m->fingerprint_len)
			 : parse_fingerprint(p, v, p->fp_alg, p->fp, &p->fp_len);
	if (cn_str_eq_cstr(name, "setup"))
		return m ? parse_setup(p, v, &m->setup, &p->ms[p->cur].have_setup)
			 : parse_setup(p, v, &p->setup, &p->have_setup);
	if (cn_str_eq_cstr(name, "sendrecv"))
		return parse_dir(p, CN_SDP_SENDRECV);
	if (cn_str_eq_cstr(name, "sendonly"))
		return parse_dir(p, CN_SDP_SENDONLY);
	if (cn_str_eq_cstr(name, "recvonly"))
		return parse_dir(p, CN_SDP_RECVONLY);
	if (cn_str_eq_cstr(name, "inactive"))
		return parse_dir(p, CN_SDP_INACTIVE);
	if (cn_str_eq_cstr(name, "extmap"))
		return m ? parse_extmap(p, v, m->extmap, &m->nextmap)
			 : parse_extmap(p, v, p->sess_ext, &p->nsess_ext);
	if (cn_str_eq_cstr(name, "end-of-candidates")) {
		if (m)
			m->end_of_candidates = true;
		else
			p->eoc = true;
		return 0;
	}
	if (cn_str_eq_cstr(name, "ice-lite")) {
		p->out->ice_lite = true;
		return 0;
	}
	if (cn_str_eq_cstr(name, "group"))
		return parse_group(p, v);
	if (cn_str_eq_cstr(name, "mid")) {
		if (m->mid[0])
			return afail(p, CN_E_MALFORMED, "given twice");
		if (!is_token(v) || v.len >= sizeof(m->mid))
			return afail(p, CN_E_MALFORMED, "'%s' is not a token of 1 to %zu bytes",
				     show(q, sizeof(q), v), sizeof(m->mid) - 1);
		for (int i = 0; i < p->cur; i++)
			if (cn_str_eq_cstr(v, p->out->media[i].mid))
				return afail(p, CN_E_MALFORMED, "'%s' is already the mid of m= section %d",
					     show(q, sizeof(q), v), i + 1);
		cn_str_copy(m->mid, sizeof(m->mid), v);
		return 0;
	}
	if (cn_str_eq_cstr(name, "rtcp-mux")) {
		m->rtcp_mux = true;
		return 0;
	}
	if (cn_str_eq_cstr(name, "rtcp-rsize")) {
		m->rtcp_rsize = true;
		return 0;
	}
	if (cn_str_eq_cstr(name, "rtpmap"))
		return parse_rtpmap(p, v);
	if (cn_str_eq_cstr(name, "fmtp"))
		return parse_fmtp(p, v);
	if (cn_str_eq_cstr(name, "rtcp-fb"))
		return parse_rtcp_fb(p, v);
	if (cn_str_eq_cstr(name, "candidate"))
		return parse_candidate(p, v, m->candidates, &m->ncandidates);
	if (cn_str_eq_cstr(name, "ssrc"))
		return parse_ssrc(p, v);
	return 0;
}

/* ---- after the last line ---- */

/* RTP/AVP static payload types (RFC 3551) an offer may list without a=rtpmap. */
static const struct {
	uint8_t pt;
	const char *name;
	uint32_t clock;
} static_pts[] = {
	{ 0, "PCMU", 8000 },  { 3, "GSM", 8000 },   { 4, "G723", 8000 }, { 8, "PCMA", 8000 },
	{ 9, "G722", 8000 },  { 13, "CN", 8000 },   { 18, "G729", 8000 }, { 26, "JPEG", 90000 },
	{ 34, "H263", 90000 },
};

static enum cn_sdp_codec classify(const struct cn_sdp_format *f)
{
	struct cn_str name = cn_str_from(f->name);

	if (cn_str_eq_nocase(name, "H264") && f->clock == 90000)
		return CN_SDP_CODEC_H264;
	if (cn_str_eq_nocase(name, "H265") && f->clock == 90000)
		return CN_SDP_CODEC_H265;
	if (cn_str_eq_nocase(name, "PCMU") && f->clock == 8000 && f->channels <= 1)
		return CN_SDP_CODEC_PCMU;
	if (cn_str_eq_nocase(name, "PCMA") && f->clock == 8000 && f->channels <= 1)
		return CN_SDP_CODEC_PCMA;
	if (cn_str_eq_nocase(name, "rtx"))
		return CN_SDP_CODEC_RTX;
	return CN_SDP_CODEC_OTHER;
}

/* The H.264 (RFC 6184) and RTX (RFC 4588) parameters of a=fmtp we use. */
static int parse_fmtp_params(struct parser *p, struct cn_sdp_format *f)
{
	struct cn_str params = cn_str_from(f->fmtp), item, key;
	bool eq;
	uint64_t n;
	char q[48];

	snprintf(p->attr, sizeof(p->attr), "fmtp:%u", f->pt);
	while (params.len) {
		item = cn_str_trim(take_until(&params, ';', NULL));
		key = cn_str_trim(take_until(&item, '=', &eq));
		item = cn_str_trim(item);
		if (!eq)
			continue;
		if (f->codec == CN_SDP_CODEC_H264 && cn_str_eq_nocase(key, "packetization-mode")) {
			if (!to_u64(item, 2, &n))
				return afail(p, CN_E_MALFORMED, "packetization-mode '%s' is not 0, 1 or 2",
					     show(q, sizeof(q), item));
			f->packetization_mode = (int)n;
		} else if (f->codec == CN_SDP_CODEC_H264 && cn_str_eq_nocase(key, "profile-level-id")) {
			uint32_t v = 0;
			bool ok = item.len == 6;

			for (size_t i = 0; ok && i < 6; i++) {
				int h = hexval(item.p[i]);

				ok = h >= 0;
				v = v << 4 | (uint32_t)(h & 15);
			}
			if (!ok)
				return afail(p, CN_E_MALFORMED, "profile-level-id '%s' is not 6 hex digits",
					     show(q, sizeof(q), item));
			f->profile_level_id = v;
		} else if (f->codec == CN_SDP_CODEC_H264 && cn_str_eq_nocase(key, "level-asymmetry-allowed")) {
			if (!to_u64(item, 1, &n))
				return afail(p, CN_E_MALFORMED, "level-asymmetry-allowed '%s' is not 0 or 1",
					     show(q, sizeof(q), item));
			f->level_asymmetry_allowed = n == 1;
		} else if (f->codec == CN_SDP_CODEC_RTX && cn_str_eq_nocase(key, "apt")) {
			if (!to_u64(item, MAX_PT, &n))
				return afail(p, CN_E_MALFORMED, "apt '%s' is not a payload type 0 to 127",
					     show(q, sizeof(q), item));
			f->apt = (int)n;
		}
	}
	return 0;
}

static int finish_formats(struct parser *p, int idx)
{
	struct cn_sdp_media *m = &p->out->media[idx];
	struct media_state *ms = &p->ms[idx];
	int rc;

	for (int i = 0; i < m->nformats && ms->rtp; i++) {
		struct cn_sdp_format *f = &m->formats[i];

		if (!ms->rtpmap[i]) {
			for (size_t k = 0; k < sizeof(static_pts) / sizeof(static_pts[0]); k++) {
				if (static_pts[k].pt != f->pt)
					continue;
				cn_strlcpy(f->name, static_pts[k].name, sizeof(f->name));
				f->clock = static_pts[k].clock;
			}
			if (!f->name[0] && m->port != 0) {
				p->line = ms->mline;
				return fail(p, CN_E_MALFORMED, "m=%s: payload type %u has no a=rtpmap",
					    m->kind_name, f->pt);
			}
		}
		f->codec = classify(f);
		f->fb |= ms->star_fb;
		if (ms->fmtp_line[i]) {
			p->line = ms->fmtp_line[i];
			if ((rc = parse_fmtp_params(p, f)) < 0)
				return rc;
		}
	}
	return 0;
}

static int media_index(const struct cn_sdp *sdp, const char *mid)
{
	for (int i = 0; i < sdp->nmedia; i++)
		if (sdp->media[i].mid[0] && strcmp(sdp->media[i].mid, mid) == 0)
			return i;
	return -1;
}

static void inherit_transport(struct cn_sdp_media *dst, const char *ufrag, const char *pwd,
			      const char *fp_alg, const uint8_t *fp, size_t fp_len)
{
	if (!dst->ice_ufrag[0])
		cn_strlcpy(dst->ice_ufrag, ufrag, sizeof(dst->ice_ufrag));
	if (!dst->ice_pwd[0])
		cn_strlcpy(dst->ice_pwd, pwd, sizeof(dst->ice_pwd));
	if (!dst->fingerprint_len && fp_len) {
		cn_strlcpy(dst->fingerprint_alg, fp_alg, sizeof(dst->fingerprint_alg));
		memcpy(dst->fingerprint, fp, fp_len);
		dst->fingerprint_len = fp_len;
	}
}

static int finish(struct parser *p)
{
	struct cn_sdp *out = p->out;
	int i, rc, tag = -1;

	if (p->line < 3)
		return fail(p, CN_E_MALFORMED, "ends before the v=, o= and s= lines");
	if (!p->have_t)
		return fail(p, CN_E_MALFORMED, "no t= line");
	for (i = 0; i < out->nmedia; i++) {
		struct cn_sdp_media *m = &out->media[i];
		struct media_state *ms = &p->ms[i];

		inherit_transport(m, p->ufrag, p->pwd, p->fp_alg, p->fp, p->fp_len);
		if (!ms->have_setup)
			m->setup = p->setup;
		if (!ms->have_dir)
			m->dir = p->have_dir ? p->dir : CN_SDP_SENDRECV;
		if (p->eoc)
			m->end_of_candidates = true;
		for (int k = 0; k < p->nsess_ext && ms->rtp; k++) {
			bool has = false;

			for (int j = 0; j < m->nextmap; j++)
				has |= m->extmap[j].id == p->sess_ext[k].id;
			if (has)
				continue;
			if (m->nextmap == CN_SDP_MAX_EXTMAP) {
				p->line = ms->mline;
				return fail(p, CN_E_TOO_BIG, "m=%s: more than %d a=extmap with the session's",
					    m->kind_name, CN_SDP_MAX_EXTMAP);
			}
			m->extmap[m->nextmap++] = p->sess_ext[k];
		}
		if ((rc = finish_formats(p, i)) < 0)
			return rc;
	}
	for (i = 0; i < out->nbundle; i++) {
		int k = media_index(out, out->bundle_mids[i]);

		if (k < 0) {
			p->line = p->group_line;
			return fail(p, CN_E_MALFORMED, "a=group: no m= section has mid '%s'",
				    out->bundle_mids[i]);
		}
		if (tag < 0)
			tag = k;
		/* RFC 8843: bundled sections may leave the transport to the tagged one. */
		inherit_transport(&out->media[k], out->media[tag].ice_ufrag, out->media[tag].ice_pwd,
				  out->media[tag].fingerprint_alg, out->media[tag].fingerprint,
				  out->media[tag].fingerprint_len);
		if (out->media[k].setup == CN_SDP_SETUP_NONE)
			out->media[k].setup = out->media[tag].setup;
	}
	for (i = 0; i < out->nmedia; i++) {
		const struct cn_sdp_media *m = &out->media[i];
		const char *missing = NULL;

		if (m->port == 0)
			continue;
		if (!m->ice_ufrag[0])
			missing = "a=ice-ufrag";
		else if (!m->ice_pwd[0])
			missing = "a=ice-pwd";
		else if (!m->fingerprint_len)
			missing = "a=fingerprint";
		if (missing) {
			p->line = p->ms[i].mline;
			return fail(p, CN_E_MALFORMED, "m=%s: no %s in the section or at session level",
				    m->kind_name, missing);
		}
	}
	return 0;
}

static int parse_offer(struct parser *p)
{
	struct cn_str v;
	char type, q[48];
	int rc;

	while ((rc = next_line(p, &type, &v)) > 0) {
		static const char first[] = "vos";

		if (p->line <= 3 && type != first[p->line - 1])
			return fail(p, CN_E_MALFORMED, "an SDP description starts with v=, o=, s= lines, not %c=",
				    type);
		if (p->line > 3 && strchr(first, type))
			return fail(p, CN_E_MALFORMED, "%c= only allowed once, as line %d", type,
				    (int)(strchr(first, type) - first) + 1);
		switch (type) {
		case 'v':
			if (!cn_str_eq_cstr(v, "0"))
				return fail(p, CN_E_MALFORMED, "v=: version '%s' is not 0",
					    show(q, sizeof(q), v));
			break;
		case 'o':
			rc = parse_origin(p, v);
			break;
		case 's':
		case 'i':
		case 'b':
		case 'k':
			break;
		case 'u':
		case 'e':
		case 'p':
		case 'z':
		case 'r':
		case 't':
			if (p->cur >= 0)
				return fail(p, CN_E_MALFORMED, "%c= only allowed at session level", type);
			if (type == 't')
				rc = parse_time(p, v);
			break;
		case 'c':
			rc = parse_conn(p, v);
			break;
		case 'm':
			rc = parse_media(p, v);
			break;
		case 'a':
			rc = parse_attr(p, v);
			break;
		default:
			return fail(p, CN_E_MALFORMED, "unknown line type '%c='", type);
		}
		if (rc < 0)
			return rc;
	}
	if (rc < 0)
		return rc;
	return finish(p);
}

int cn_sdp_parse(const char *text, size_t len, struct cn_sdp *out, char *err, size_t errcap)
{
	struct parser p;
	int rc;

	memset(out, 0, sizeof(*out));
	if (err && errcap)
		err[0] = '\0';
	if (len > CN_SDP_MAX_TEXT)
		return cn_fail(CN_E_TOO_BIG, err, errcap, "offer is %zu bytes, more than %d", len,
			       CN_SDP_MAX_TEXT);
	if (len == 0 || !text)
		return cn_fail(CN_E_MALFORMED, err, errcap, "offer is empty");
	memset(&p, 0, sizeof(p));
	p.text = text;
	p.len = len;
	p.err = err;
	p.errcap = errcap;
	p.out = out;
	p.cur = -1;
	rc = parse_offer(&p);
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* ---- trickle ICE fragments ---- */

static int frag_ice(struct parser *p, struct cn_str v, size_t min, char *dst, size_t cap)
{
	char tmp[160], q[48];
	int rc;

	tmp[0] = '\0';
	if ((rc = parse_ice(p, v, min, tmp, cap)) < 0)
		return rc;
	if (dst[0] && strcmp(dst, tmp) != 0)
		return afail(p, CN_E_MALFORMED, "'%s' differs from the earlier '%s'",
			     show(q, sizeof(q), v), dst);
	cn_strlcpy(dst, tmp, cap);
	return 0;
}

static int parse_frag_lines(struct parser *p, struct cn_sdp_frag *out)
{
	int section[CN_SDP_MAX_CANDIDATES];
	char mids[CN_SDP_MAX_MEDIA][32];
	struct cn_str v, name;
	int rc, nsections = 0;
	char type, q[48];
	bool rtp, colon;

	memset(mids, 0, sizeof(mids));
	while ((rc = next_line(p, &type, &v)) > 0) {
		switch (type) {
		case 'c':
			if ((rc = parse_conn(p, v)) < 0)
				return rc;
			continue;
		case 'b':
		case 'i':
		case 'k':
			continue;
		case 'm':
			if (nsections == CN_SDP_MAX_MEDIA)
				return fail(p, CN_E_TOO_BIG, "m=: more than %d m= sections",
					    CN_SDP_MAX_MEDIA);
			if ((rc = parse_mline(p, v, NULL, &rtp)) < 0)
				return rc;
			p->cur = nsections++;
			continue;
		case 'a':
			break;
		default:
			return fail(p, CN_E_MALFORMED, "%c= does not belong in a trickle ICE fragment",
				    type);
		}
		name = take_until(&v, ':', &colon);
		if (!is_token(name))
			return fail(p, CN_E_MALFORMED, "a=%s: attribute name is not a token",
				    show(q, sizeof(q), name));
		cn_str_copy(p->attr, sizeof(p->attr), name);
		if (cn_str_eq_cstr(name, "end-of-candidates")) {
			if (colon)
				return afail(p, CN_E_MALFORMED, "takes no value");
			out->end_of_candidates = true;
			continue;
		}
		if (!cn_str_eq_cstr(name, "ice-ufrag") && !cn_str_eq_cstr(name, "ice-pwd") &&
		    !cn_str_eq_cstr(name, "ice-options") && !cn_str_eq_cstr(name, "group") &&
		    !cn_str_eq_cstr(name, "mid") && !cn_str_eq_cstr(name, "candidate"))
			continue;
		if (!colon || !v.len)
			return afail(p, CN_E_MALFORMED, "needs a value");
		if (cn_str_eq_cstr(name, "ice-ufrag")) {
			rc = frag_ice(p, v, 4, out->ice_ufrag, sizeof(out->ice_ufrag));
		} else if (cn_str_eq_cstr(name, "ice-pwd")) {
			rc = frag_ice(p, v, 22, out->ice_pwd, sizeof(out->ice_pwd));
		} else if (cn_str_eq_cstr(name, "ice-options")) {
			struct cn_str opt;

			do {
				opt = take_field(&v);
				if (!is_token(opt))
					return afail(p, CN_E_MALFORMED, "needs space-separated option tokens");
			} while (v.len);
		} else if (cn_str_eq_cstr(name, "group")) {
			if (p->cur >= 0)
				return afail(p, CN_E_MALFORMED, "only allowed at session level");
			do {
				if (!is_token(take_field(&v)))
					return afail(p, CN_E_MALFORMED, "needs '<semantics> <mid> ...'");
			} while (v.len);
		} else if (cn_str_eq_cstr(name, "mid")) {
			if (p->cur < 0)
				return afail(p, CN_E_MALFORMED, "only allowed in an m= section");
			if (mids[p->cur][0])
				return afail(p, CN_E_MALFORMED, "given twice");
			if (!is_token(v) || v.len >= sizeof(mids[0]))
				return afail(p, CN_E_MALFORMED, "'%s' is not a token of 1 to %zu bytes",
					     show(q, sizeof(q), v), sizeof(mids[0]) - 1);
			cn_str_copy(mids[p->cur], sizeof(mids[0]), v);
		} else {
			if (out->ncandidates < CN_SDP_MAX_CANDIDATES)
				section[out->ncandidates] = p->cur;
			rc = parse_candidate(p, v, out->candidates, &out->ncandidates);
		}
		if (rc < 0)
			return rc;
	}
	if (rc < 0)
		return rc;
	for (int i = 0; i < out->ncandidates; i++)
		if (section[i] >= 0)
			cn_strlcpy(out->candidate_mid[i], mids[section[i]], sizeof(out->candidate_mid[i]));
	return 0;
}

int cn_sdp_parse_frag(const char *text, size_t len, struct cn_sdp_frag *out, char *err,
		      size_t errcap)
{
	struct parser p;
	int rc;

	memset(out, 0, sizeof(*out));
	if (err && errcap)
		err[0] = '\0';
	if (len > CN_SDP_MAX_TEXT)
		return cn_fail(CN_E_TOO_BIG, err, errcap, "fragment is %zu bytes, more than %d", len,
			       CN_SDP_MAX_TEXT);
	if (len && !text)
		return cn_fail(CN_E_MALFORMED, err, errcap, "fragment is NULL");
	memset(&p, 0, sizeof(p));
	p.text = text;
	p.len = len;
	p.err = err;
	p.errcap = errcap;
	p.frag = true;
	p.cur = -1;
	rc = parse_frag_lines(&p, out);
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* ---- choosing what to answer ---- */

int cn_sdp_pick_format(const struct cn_sdp_media *m, enum cn_sdp_codec codec,
		       int h264_profile_idc)
{
	int any = -ENOENT, asym = -ENOENT;

	if (!m || m->nformats < 0 || m->nformats > CN_SDP_MAX_FORMATS)
		return -EINVAL;
	if (codec == CN_SDP_CODEC_OTHER)
		return -ENOENT;
	for (int i = 0; i < m->nformats; i++) {
		const struct cn_sdp_format *f = &m->formats[i];

		if (f->codec != codec)
			continue;
		if (codec != CN_SDP_CODEC_H264)
			return i;
		if (f->packetization_mode != 1)
			continue;
		if (h264_profile_idc && (int)(f->profile_level_id >> 16) == h264_profile_idc)
			return i;
		if (asym < 0 && f->level_asymmetry_allowed)
			asym = i;
		if (any < 0)
			any = i;
	}
	return asym >= 0 ? asym : any;
}

int cn_sdp_find_rtx(const struct cn_sdp_media *m, uint8_t pt)
{
	if (!m || m->nformats < 0 || m->nformats > CN_SDP_MAX_FORMATS)
		return -EINVAL;
	for (int i = 0; i < m->nformats; i++)
		if (m->formats[i].codec == CN_SDP_CODEC_RTX && m->formats[i].apt == pt)
			return i;
	return -ENOENT;
}

int cn_sdp_find_extmap(const struct cn_sdp_media *m, const char *uri)
{
	if (!m || !uri || m->nextmap < 0 || m->nextmap > CN_SDP_MAX_EXTMAP)
		return 0;
	for (int i = 0; i < m->nextmap; i++)
		if (strncmp(m->extmap[i].uri, uri, sizeof(m->extmap[i].uri)) == 0)
			return m->extmap[i].id;
	return 0;
}

/* ---- the answer ---- */

static bool terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* A NUL-terminated field of visible ASCII without spaces, 1..cap-1 bytes. */
static bool good_word(const char *s, size_t cap)
{
	return terminated(s, cap) && is_visible(cn_str_from(s));
}

static bool good_ice(const char *s, size_t cap, size_t min)
{
	return terminated(s, cap) && strlen(s) >= min && is_ice_chars(cn_str_from(s));
}

static const char *dir_name(enum cn_sdp_dir d)
{
	switch (d) {
	case CN_SDP_SENDONLY: return "sendonly";
	case CN_SDP_RECVONLY: return "recvonly";
	case CN_SDP_INACTIVE: return "inactive";
	case CN_SDP_SENDRECV: break;
	}
	return "sendrecv";
}

static int check_answer(const struct cn_sdp *offer, const struct cn_sdp_answer *ans)
{
	if (offer->nmedia < 0 || offer->nmedia > CN_SDP_MAX_MEDIA)
		return -EINVAL;
	if (!good_ice(ans->ice_ufrag, sizeof(ans->ice_ufrag), 4) ||
	    !good_ice(ans->ice_pwd, sizeof(ans->ice_pwd), 22))
		return -EINVAL;
	if (ans->setup != CN_SDP_SETUP_ACTIVE && ans->setup != CN_SDP_SETUP_PASSIVE)
		return -EINVAL;
	if (ans->ncandidates < 0 || ans->ncandidates > CN_SDP_MAX_CANDIDATES)
		return -EINVAL;
	for (int i = 0; i < ans->ncandidates; i++) {
		const char *c = ans->candidates[i];

		if (!terminated(c, CN_SDP_CANDIDATE_LEN) || strncmp(c, "candidate:", 10) != 0 ||
		    candidate_problem(cn_str_from(c + 10)))
			return -EINVAL;
	}
	for (int i = 0; i < offer->nmedia; i++) {
		const struct cn_sdp_answer_media *am = &ans->media[i];
		const struct cn_sdp_media *m = &offer->media[i];

		if (!am->accepted)
			continue;
		if (m->port == 0 || !proto_is_rtp(cn_str_from(m->proto)) || am->format < 0 ||
		    am->format >= m->nformats || m->nformats > CN_SDP_MAX_FORMATS)
			return -EINVAL;
		if ((unsigned)am->dir > CN_SDP_INACTIVE)
			return -EINVAL;
		if (am->abs_send_time_id &&
		    (am->abs_send_time_id < 1 || am->abs_send_time_id > 14 ||
		     cn_sdp_find_extmap(m, CN_SDP_EXT_ABS_SEND_TIME) != am->abs_send_time_id))
			return -EINVAL;
		if (am->ssrc && !good_word(am->cname, sizeof(am->cname)))
			return -EINVAL;
		if (am->msid_stream[0] || am->msid_track[0])
			if (!good_word(am->msid_stream, sizeof(am->msid_stream)) ||
			    !good_word(am->msid_track, sizeof(am->msid_track)))
				return -EINVAL;
	}
	return 0;
}

static int write_format(struct cn_buf *out, const struct cn_sdp_format *f, unsigned fb)
{
	static const struct {
		unsigned bit;
		const char *text;
	} fbs[] = {
		{ CN_SDP_FB_NACK, "nack" },       { CN_SDP_FB_PLI, "nack pli" },
		{ CN_SDP_FB_FIR, "ccm fir" },     { CN_SDP_FB_REMB, "goog-remb" },
		{ CN_SDP_FB_TRANSPORT_CC, "transport-cc" },
	};
	int rc;

	if (f->channels)
		rc = cn_buf_printf(out, "a=rtpmap:%u %s/%" PRIu32 "/%u\r\n", f->pt, f->name, f->clock,
				   f->channels);
	else
		rc = cn_buf_printf(out, "a=rtpmap:%u %s/%" PRIu32 "\r\n", f->pt, f->name, f->clock);
	if (rc < 0)
		return rc;
	if (f->fmtp[0] && (rc = cn_buf_printf(out, "a=fmtp:%u %s\r\n", f->pt, f->fmtp)) < 0)
		return rc;
	for (size_t i = 0; i < sizeof(fbs) / sizeof(fbs[0]); i++)
		if ((fb & f->fb & fbs[i].bit) &&
		    (rc = cn_buf_printf(out, "a=rtcp-fb:%u %s\r\n", f->pt, fbs[i].text)) < 0)
			return rc;
	return 0;
}

/* ICE credentials, fingerprint and DTLS role: every section gets them, rejected ones
 * too (aiortc refuses an answer with a section lacking them; Chrome writes them so). */
static int write_transport(struct cn_buf *out, const struct cn_sdp_answer *ans)
{
	int rc;

	if ((rc = cn_buf_printf(out, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=ice-options:trickle\r\n"
				     "a=fingerprint:sha-256 ",
				ans->ice_ufrag, ans->ice_pwd)) < 0)
		return rc;
	for (size_t i = 0; i < sizeof(ans->fingerprint); i++)
		if ((rc = cn_buf_printf(out, "%s%02X", i ? ":" : "", ans->fingerprint[i])) < 0)
			return rc;
	return cn_buf_printf(out, "\r\na=setup:%s\r\n",
			     ans->setup == CN_SDP_SETUP_ACTIVE ? "active" : "passive");
}

/* Port 0, the offered proto and formats (RFC 3264 6, RFC 8843 7.3.3: no bundle-only, and
 * the mid has left the group). A compliant peer ignores the rest of the section. */
static int write_rejected(struct cn_buf *out, const struct cn_sdp_media *m,
			  const struct cn_sdp_answer *ans)
{
	int rc;

	if ((rc = cn_buf_printf(out, "m=%s 0 %s", m->kind_name, m->proto)) < 0)
		return rc;
	for (int i = 0; i < m->nformats; i++) {
		if (proto_is_rtp(cn_str_from(m->proto)))
			rc = cn_buf_printf(out, " %u", m->formats[i].pt);
		else
			rc = cn_buf_printf(out, " %s", m->formats[i].name);
		if (rc < 0)
			return rc;
	}
	if ((rc = cn_buf_append_str(out, "\r\nc=IN IP4 0.0.0.0\r\n")) < 0)
		return rc;
	if (m->mid[0] && (rc = cn_buf_printf(out, "a=mid:%s\r\n", m->mid)) < 0)
		return rc;
	if ((rc = cn_buf_append_str(out, "a=inactive\r\n")) < 0)
		return rc;
	if (m->rtcp_mux && (rc = cn_buf_append_str(out, "a=rtcp-mux\r\n")) < 0)
		return rc;
	if ((rc = write_transport(out, ans)) < 0)
		return rc;
	/* aiortc 1.4 also wants a format it knows in every audio and video section */
	for (int i = 0; i < m->nformats && proto_is_rtp(cn_str_from(m->proto)); i++)
		if (m->formats[i].name[0] && (rc = write_format(out, &m->formats[i], 0)) < 0)
			return rc;
	return 0;
}

static int write_accepted(struct cn_buf *out, const struct cn_sdp_media *m,
			  const struct cn_sdp_answer *ans, const struct cn_sdp_answer_media *am,
			  bool candidates)
{
	const struct cn_sdp_format *f = &m->formats[am->format];
	int rc;

	if ((rc = cn_buf_printf(out, "m=%s 9 %s %u\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n",
				m->kind_name, m->proto, f->pt)) < 0)
		return rc;
	if (m->mid[0] && (rc = cn_buf_printf(out, "a=mid:%s\r\n", m->mid)) < 0)
		return rc;
	if ((rc = cn_buf_printf(out, "a=%s\r\n", dir_name(am->dir))) < 0)
		return rc;
	if (m->rtcp_mux && (rc = cn_buf_append_str(out, "a=rtcp-mux\r\n")) < 0)
		return rc;
	if (m->rtcp_rsize && (rc = cn_buf_append_str(out, "a=rtcp-rsize\r\n")) < 0)
		return rc;
	if ((rc = write_transport(out, ans)) < 0)
		return rc;
	if ((rc = write_format(out, f, am->fb)) < 0)
		return rc;
	if (am->abs_send_time_id &&
	    (rc = cn_buf_printf(out, "a=extmap:%d %s\r\n", am->abs_send_time_id,
				CN_SDP_EXT_ABS_SEND_TIME)) < 0)
		return rc;
	if (am->msid_stream[0] &&
	    (rc = cn_buf_printf(out, "a=msid:%s %s\r\n", am->msid_stream, am->msid_track)) < 0)
		return rc;
	if (am->ssrc) {
		if ((rc = cn_buf_printf(out, "a=ssrc:%" PRIu32 " cname:%s\r\n", am->ssrc, am->cname)) < 0)
			return rc;
		if (am->msid_stream[0] &&
		    (rc = cn_buf_printf(out, "a=ssrc:%" PRIu32 " msid:%s %s\r\n", am->ssrc,
					am->msid_stream, am->msid_track)) < 0)
			return rc;
	}
	if (!candidates)
		return 0;
	for (int i = 0; i < ans->ncandidates; i++)
		if ((rc = cn_buf_printf(out, "a=%s\r\n", ans->candidates[i])) < 0)
			return rc;
	if (ans->end_of_candidates && (rc = cn_buf_append_str(out, "a=end-of-candidates\r\n")) < 0)
		return rc;
	return 0;
}

static int write_answer(const struct cn_sdp *offer, const struct cn_sdp_answer *ans,
			struct cn_buf *out)
{
	bool bundled[CN_SDP_MAX_MEDIA] = { false };
	int rc, tag = -1;

	if ((rc = cn_buf_printf(out, "v=0\r\no=- %" PRIu64 " %" PRIu64 " IN IP4 127.0.0.1\r\n"
				     "s=-\r\nt=0 0\r\n",
				ans->session_id, ans->session_version)) < 0)
		return rc;
	/* RFC 8843 7.3: the accepted sections of the offer's group, in its order; the first
	 * is the answerer-tagged one. A rejected section leaves the group. */
	for (int i = 0; i < offer->nbundle && i < CN_SDP_MAX_MEDIA; i++) {
		int k = media_index(offer, offer->bundle_mids[i]);

		if (k < 0 || !ans->media[k].accepted || bundled[k])
			continue;
		rc = cn_buf_printf(out, "%s %s", tag < 0 ? "a=group:BUNDLE" : "", offer->media[k].mid);
		if (rc < 0)
			return rc;
		bundled[k] = true;
		if (tag < 0)
			tag = k;
	}
	if (tag >= 0 && (rc = cn_buf_append_str(out, "\r\n")) < 0)
		return rc;
	if (ans->ice_lite && (rc = cn_buf_append_str(out, "a=ice-lite\r\n")) < 0)
		return rc;
	if ((rc = cn_buf_append_str(out, "a=msid-semantic: WMS *\r\n")) < 0)
		return rc;
	for (int i = 0; i < offer->nmedia; i++) {
		const struct cn_sdp_answer_media *am = &ans->media[i];

		if (!am->accepted)
			rc = write_rejected(out, &offer->media[i], ans);
		else
			rc = write_accepted(out, &offer->media[i], ans, am, !bundled[i] || i == tag);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int cn_sdp_write_answer(const struct cn_sdp *offer, const struct cn_sdp_answer *ans,
			struct cn_buf *out)
{
	size_t start = out->len;
	int rc;

	if (!offer || !ans)
		return -EINVAL;
	if ((rc = check_answer(offer, ans)) < 0)
		return rc;
	rc = write_answer(offer, ans, out);
	if (rc < 0 && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	return rc;
}
