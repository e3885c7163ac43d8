/* cn_rtsp.c: RTSP 1.0 client codec: requests, responses, Basic/Digest auth, interleaved framing, the DESCRIBE SDP. */
#include "cn_rtsp.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "cn_base64.h"
#include "cn_err.h"

static bool prefix_nocase(struct cn_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len >= n && cn_str_eq_nocase((struct cn_str){ s.p, n }, lit);
}

static struct cn_str trim(struct cn_str s)
{
	while (s.len && (s.p[0] == ' ' || s.p[0] == '\t'))
		s.p++, s.len--;
	while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
		s.len--;
	return s;
}

/* Decimal, no sign, at most max. */
static bool to_u64(struct cn_str s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s.len == 0 || s.len > 19)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* ---- framing ---------------------------------------------------------------------- */

/* End of the head (index just past the empty line), 0 when not found in p[0..n). */
static size_t head_end(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n')
			return i + 2;
		if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static bool starts_message(const uint8_t *p, size_t n, bool *need_more)
{
	static const char rtsp[] = "RTSP/";
	size_t i;

	*need_more = false;
	/* A response "RTSP/1.0 ..." or a request "<METHOD> <uri> RTSP/1.0". */
	for (i = 0; i < n && i < 5; i++)
		if (p[i] != (uint8_t)rtsp[i])
			break;
	if (i == 5)
		return true;
	if (i == n) {
		*need_more = true;
		return true;
	}
	for (i = 0; i < n && i < 32; i++) {
		if (p[i] == ' ')
			return i > 0;
		if (!((p[i] >= 'A' && p[i] <= 'Z') || p[i] == '_' || p[i] == '-'))
			return false;
	}
	if (i == n) {
		*need_more = true;
		return true;
	}
	return false;
}

/* Content-Length of a head (0 when absent), or -1 when malformed. */
static int64_t content_length(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t e = i;
		while (e < n && p[e] != '\n')
			e++;
		struct cn_str line = { (const char *)p + i, e - i };
		if (line.len && line.p[line.len - 1] == '\r')
			line.len--;
		if (prefix_nocase(line, "content-length:")) {
			uint64_t v;
			struct cn_str val = trim((struct cn_str){ line.p + 15, line.len - 15 });
			if (!to_u64(val, UINT32_MAX, &v))
				return -1;
			return (int64_t)v;
		}
		i = e + 1;
	}
	return 0;
}

int cn_rtsp_split(const uint8_t *p, size_t n, struct cn_rtsp_chunk *out)
{
	bool need_more;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return 0;
	if (p[0] == '$') {
		if (n < 4)
			return 0;
		size_t len = (size_t)p[2] << 8 | p[3];
		if (n < 4 + len)
			return 0;
		out->kind = CN_RTSP_CHUNK_DATA;
		out->channel = p[1];
		out->data = p + 4;
		out->data_len = len;
		out->len = 4 + len;
		return 1;
	}
	if (starts_message(p, n, &need_more)) {
		if (need_more)
			return 0;
		size_t scan = n < CN_RTSP_MAX_HEAD ? n : CN_RTSP_MAX_HEAD;
		size_t he = head_end(p, scan);
		if (!he)
			return n >= CN_RTSP_MAX_HEAD ? CN_E_TOO_BIG : 0;
		int64_t cl = content_length(p, he);
		if (cl < 0)
			return CN_E_MALFORMED;
		if (cl > CN_RTSP_MAX_BODY)
			return CN_E_TOO_BIG;
		if (n < he + (size_t)cl)
			return 0;
		out->kind = CN_RTSP_CHUNK_MSG;
		out->data = p;
		out->data_len = he + (size_t)cl;
		out->len = out->data_len;
		return 1;
	}
	size_t i = 1;
	while (i < n && p[i] != '$' && p[i] != 'R')
		i++;
	out->kind = CN_RTSP_CHUNK_JUNK;
	out->len = i;
	return 1;
}

/* ---- messages --------------------------------------------------------------------- */

static bool next_line(struct cn_str *rest, struct cn_str *line)
{
	const char *nl;

	if (rest->len == 0)
		return false;
	nl = memchr(rest->p, '\n', rest->len);
	if (!nl) {
		*line = *rest;
		rest->p += rest->len;
		rest->len = 0;
	} else {
		line->p = rest->p;
		line->len = (size_t)(nl - rest->p);
		rest->len -= line->len + 1;
		rest->p = nl + 1;
	}
	if (line->len && line->p[line->len - 1] == '\r')
		line->len--;
	return true;
}

static bool no_ctl(struct cn_str s)
{
	for (size_t i = 0; i < s.len; i++)
		if ((unsigned char)s.p[i] < 0x20 && s.p[i] != '\t')
			return false;
	return true;
}

static int parse_start(struct cn_str line, struct cn_rtsp_msg *m)
{
	const char *sp1, *sp2;

	if (!no_ctl(line))
		return CN_E_MALFORMED;
	if (line.len >= 9 && memcmp(line.p, "RTSP/1.0 ", 9) == 0) {
		uint64_t code;
		struct cn_str rest = { line.p + 9, line.len - 9 };
		if (rest.len < 3 || !to_u64((struct cn_str){ rest.p, 3 }, 999, &code) || code < 100 ||
		    (rest.len > 3 && rest.p[3] != ' '))
			return CN_E_MALFORMED;
		m->status = (int)code;
		m->reason = rest.len > 4 ? trim((struct cn_str){ rest.p + 4, rest.len - 4 })
					 : (struct cn_str){ rest.p + 3, 0 };
		return 0;
	}
	sp1 = memchr(line.p, ' ', line.len);
	if (!sp1 || sp1 == line.p)
		return CN_E_MALFORMED;
	sp2 = memchr(sp1 + 1, ' ', line.len - (size_t)(sp1 + 1 - line.p));
	if (!sp2 || sp2 == sp1 + 1)
		return CN_E_MALFORMED;
	if (!cn_str_eq_nocase((struct cn_str){ sp2 + 1, line.len - (size_t)(sp2 + 1 - line.p) }, "RTSP/1.0"))
		return CN_E_MALFORMED;
	m->is_request = true;
	m->method = (struct cn_str){ line.p, (size_t)(sp1 - line.p) };
	m->uri = (struct cn_str){ sp1 + 1, (size_t)(sp2 - sp1 - 1) };
	return 0;
}

/* Session: <id>[;timeout=<s>] */
static int parse_session(struct cn_str v, struct cn_rtsp_msg *m)
{
	const char *semi = memchr(v.p, ';', v.len);
	struct cn_str id = semi ? (struct cn_str){ v.p, (size_t)(semi - v.p) } : v;

	id = trim(id);
	if (id.len == 0 || id.len > 255)
		return CN_E_MALFORMED;
	for (size_t i = 0; i < id.len; i++)
		if ((unsigned char)id.p[i] <= ' ' || id.p[i] == '"' || (unsigned char)id.p[i] >= 0x7f)
			return CN_E_MALFORMED;
	m->session = id;
	while (semi) {
		struct cn_str rest = { semi + 1, v.len - (size_t)(semi + 1 - v.p) };
		semi = memchr(rest.p, ';', rest.len);
		struct cn_str param = trim(semi ? (struct cn_str){ rest.p, (size_t)(semi - rest.p) } : rest);
		uint64_t t;
		if (prefix_nocase(param, "timeout=") &&
		    to_u64(trim((struct cn_str){ param.p + 8, param.len - 8 }), 86400, &t))
			m->session_timeout = (int)t;
	}
	return 0;
}

int cn_rtsp_parse_msg(const uint8_t *p, size_t n, struct cn_rtsp_msg *out)
{
	struct cn_str rest = { (const char *)p, n }, line;
	size_t he;
	int rc;

	memset(out, 0, sizeof(*out));
	out->cseq = -1;
	out->session_timeout = -1;
	if (n == 0 || memchr(p, '\0', n))
		return CN_E_MALFORMED;
	he = head_end(p, n);
	if (!he) {
		/* a head without the empty line: only when it is all there is */
		he = n;
	}
	if (he > CN_RTSP_MAX_HEAD)
		return CN_E_TOO_BIG;
	rest.len = he;
	if (!next_line(&rest, &line) || (rc = parse_start(line, out)) < 0)
		return CN_E_MALFORMED;
	while (next_line(&rest, &line)) {
		if (line.len == 0)
			break;
		if (line.p[0] == ' ' || line.p[0] == '\t' || !no_ctl(line))
			return CN_E_MALFORMED;
		const char *colon = memchr(line.p, ':', line.len);
		if (!colon || colon == line.p)
			return CN_E_MALFORMED;
		if (out->nheaders == CN_RTSP_MAX_HEADERS)
			return CN_E_TOO_BIG;
		struct cn_rtsp_header *h = &out->headers[out->nheaders++];
		h->name = trim((struct cn_str){ line.p, (size_t)(colon - line.p) });
		h->value = trim((struct cn_str){ colon + 1, line.len - (size_t)(colon + 1 - line.p) });
		if (cn_str_eq_nocase(h->name, "cseq")) {
			uint64_t v;
			if (!to_u64(h->value, UINT32_MAX, &v))
				return CN_E_MALFORMED;
			out->cseq = (int64_t)v;
		} else if (cn_str_eq_nocase(h->name, "session")) {
			if (parse_session(h->value, out) < 0)
				return CN_E_MALFORMED;
		}
	}
	int64_t cl = content_length(p, he);
	if (cl < 0 || (size_t)cl > n - he)
		return CN_E_MALFORMED;
	if (cl > CN_RTSP_MAX_BODY)
		return CN_E_TOO_BIG;
	out->body = p + he;
	out->body_len = (size_t)cl;
	return 0;
}

struct cn_str cn_rtsp_header(const struct cn_rtsp_msg *m, const char *name)
{
	for (int i = 0; i < m->nheaders; i++)
		if (cn_str_eq_nocase(m->headers[i].name, name))
			return m->headers[i].value;
	return (struct cn_str){ NULL, 0 };
}

int cn_rtsp_transport_channels(struct cn_str t, int *rtp, int *rtcp)
{
	size_t i = 0;

	while (i < t.len) {
		size_t e = i;
		while (e < t.len && t.p[e] != ';' && t.p[e] != ',')
			e++;
		struct cn_str param = trim((struct cn_str){ t.p + i, e - i });
		if (prefix_nocase(param, "interleaved=")) {
			struct cn_str v = { param.p + 12, param.len - 12 };
			const char *dash = memchr(v.p, '-', v.len);
			uint64_t a, b;
			if (dash) {
				if (!to_u64((struct cn_str){ v.p, (size_t)(dash - v.p) }, 255, &a) ||
				    !to_u64((struct cn_str){ dash + 1, v.len - (size_t)(dash + 1 - v.p) }, 255, &b))
					return CN_E_MALFORMED;
			} else {
				if (!to_u64(v, 254, &a))
					return CN_E_MALFORMED;
				b = a + 1;
			}
			*rtp = (int)a;
			*rtcp = (int)b;
			return 0;
		}
		if (e < t.len && t.p[e] == ',')
			break; /* only the first transport spec counts */
		i = e + 1;
	}
	return -ENOENT;
}

static bool header_safe(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			return false;
	return true;
}

static bool url_safe(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

int cn_rtsp_write_request(char *out, size_t cap, const char *method, const char *url,
			  unsigned cseq, const char *session, const char *authorization,
			  const char *extra)
{
	int n;

	if (!url_safe(method) || !url_safe(url) || (session && !header_safe(session)) ||
	    (authorization && !header_safe(authorization)))
		return -EINVAL;
	n = snprintf(out, cap,
		     "%s %s RTSP/1.0\r\nCSeq: %u\r\nUser-Agent: canopy-edge\r\n%s%s%s%s%s%s%s\r\n",
		     method, url, cseq, session && *session ? "Session: " : "",
		     session && *session ? session : "", session && *session ? "\r\n" : "",
		     authorization && *authorization ? "Authorization: " : "",
		     authorization && *authorization ? authorization : "",
		     authorization && *authorization ? "\r\n" : "", extra ? extra : "");
	if (n < 0 || (size_t)n >= cap)
		return -ENOBUFS;
	return n;
}

/* ---- authentication --------------------------------------------------------------- */

/* Next "name=value" or "name=\"quoted\"" of a comma-separated list; value unquoted into
 * val (backslash escapes resolved). Returns 1, 0 at the end, CN_E_MALFORMED. */
static int next_param(struct cn_str *s, struct cn_str *name, char *val, size_t cap)
{
	size_t i = 0, o = 0;

	while (i < s->len && (s->p[i] == ' ' || s->p[i] == '\t' || s->p[i] == ','))
		i++;
	if (i == s->len)
		return 0;
	size_t ns = i;
	while (i < s->len && s->p[i] != '=' && s->p[i] != ',' && s->p[i] != ' ')
		i++;
	*name = (struct cn_str){ s->p + ns, i - ns };
	while (i < s->len && s->p[i] == ' ')
		i++;
	if (name->len == 0 || i == s->len || s->p[i] != '=')
		return CN_E_MALFORMED;
	i++;
	while (i < s->len && s->p[i] == ' ')
		i++;
	if (i < s->len && s->p[i] == '"') {
		i++;
		for (;;) {
			if (i == s->len)
				return CN_E_MALFORMED;
			char c = s->p[i++];
			if (c == '"')
				break;
			if (c == '\\') {
				if (i == s->len)
					return CN_E_MALFORMED;
				c = s->p[i++];
			}
			if (o + 1 >= cap)
				return CN_E_MALFORMED;
			val[o++] = c;
		}
	} else {
		while (i < s->len && s->p[i] != ',' && s->p[i] != ' ' && s->p[i] != '\t') {
			if (o + 1 >= cap)
				return CN_E_MALFORMED;
			val[o++] = s->p[i++];
		}
	}
	val[o] = '\0';
	s->p += i;
	s->len -= i;
	return 1;
}

int cn_rtsp_auth_parse(struct cn_str v, struct cn_rtsp_auth *out)
{
	char val[256];
	struct cn_str name;
	bool has_nonce = false, qop_seen = false;
	int rc;

	memset(out, 0, sizeof(*out));
	v = trim(v);
	if (prefix_nocase(v, "basic") && (v.len == 5 || v.p[5] == ' ')) {
		struct cn_str rest = { v.p + 5, v.len - 5 };
		out->scheme = CN_RTSP_AUTH_BASIC;
		while ((rc = next_param(&rest, &name, val, sizeof(val))) > 0)
			if (cn_str_eq_nocase(name, "realm"))
				cn_strlcpy(out->realm, val, sizeof(out->realm));
		return rc < 0 ? rc : 0;
	}
	if (!prefix_nocase(v, "digest ") )
		return -ENOTSUP;
	struct cn_str rest = { v.p + 7, v.len - 7 };
	out->scheme = CN_RTSP_AUTH_DIGEST;
	while ((rc = next_param(&rest, &name, val, sizeof(val))) > 0) {
		if (cn_str_eq_nocase(name, "realm")) {
			if (cn_strlcpy(out->realm, val, sizeof(out->realm)) < 0)
				return CN_E_MALFORMED;
		} else if (cn_str_eq_nocase(name, "nonce")) {
			if (cn_strlcpy(out->nonce, val, sizeof(out->nonce)) < 0)
				return CN_E_MALFORMED;
			has_nonce = true;
		} else if (cn_str_eq_nocase(name, "opaque")) {
			if (cn_strlcpy(out->opaque, val, sizeof(out->opaque)) < 0)
				return CN_E_MALFORMED;
			out->has_opaque = true;
		} else if (cn_str_eq_nocase(name, "stale")) {
			out->stale = cn_str_eq_nocase(cn_str_from(val), "true");
		} else if (cn_str_eq_nocase(name, "algorithm")) {
			struct cn_str a = cn_str_from(val);
			if (cn_str_eq_nocase(a, "md5-sess"))
				out->md5_sess = true;
			else if (!cn_str_eq_nocase(a, "md5"))
				return -ENOTSUP;
		} else if (cn_str_eq_nocase(name, "qop")) {
			/* a list such as "auth,auth-int": we answer auth when offered */
			struct cn_str q = cn_str_from(val);
			qop_seen = true;
			size_t i = 0;
			while (i < q.len) {
				size_t e = i;
				while (e < q.len && q.p[e] != ',')
					e++;
				if (cn_str_eq_nocase(trim((struct cn_str){ q.p + i, e - i }), "auth"))
					out->qop_auth = true;
				i = e + 1;
			}
		}
	}
	if (rc < 0)
		return rc;
	if (!has_nonce)
		return CN_E_MALFORMED;
	if (qop_seen && !out->qop_auth)
		return -ENOTSUP; /* auth-int only */
	return 0;
}

int cn_rtsp_auth_choose(const struct cn_rtsp_msg *m, struct cn_rtsp_auth *out)
{
	struct cn_rtsp_auth a;
	bool have = false;

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < m->nheaders; i++) {
		if (!cn_str_eq_nocase(m->headers[i].name, "www-authenticate"))
			continue;
		if (cn_rtsp_auth_parse(m->headers[i].value, &a) < 0)
			continue;
		if (!have || (a.scheme == CN_RTSP_AUTH_DIGEST && out->scheme != CN_RTSP_AUTH_DIGEST)) {
			*out = a;
			have = true;
		}
	}
	return have ? 0 : -ENOENT;
}

static int md5_hex(const char *parts[], int n, char hex[33])
{
	static const char digits[] = "0123456789abcdef";
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	int ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1;
	for (int i = 0; ok && i < n; i++)
		ok = EVP_DigestUpdate(ctx, parts[i], strlen(parts[i])) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 16;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -EIO;
	for (unsigned i = 0; i < 16; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[32] = '\0';
	return 0;
}

static bool quotable(const char *s)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return false;
	return true;
}

int cn_rtsp_auth_header(struct cn_rtsp_auth *a, const char *user, const char *pass,
			const char *method, const char *uri, const char *cnonce, char *out,
			size_t cap)
{
	char ha1[33], ha2[33], resp[33], nc[9];
	int n, rc;

	if (a->scheme == CN_RTSP_AUTH_BASIC) {
		char cred[400];
		size_t olen;
		n = snprintf(cred, sizeof(cred), "%s:%s", user, pass);
		if (n < 0 || (size_t)n >= sizeof(cred) || strchr(user, ':'))
			return -EINVAL;
		if (cap < 7)
			return -ENOBUFS;
		memcpy(out, "Basic ", 6);
		rc = cn_base64_encode(CN_B64_STD, (const uint8_t *)cred, (size_t)n, out + 6, cap - 6, &olen);
		memset(cred, 0, sizeof(cred));
		if (rc < 0)
			return -ENOBUFS;
		return (int)(6 + olen);
	}
	if (a->scheme != CN_RTSP_AUTH_DIGEST)
		return -EINVAL;
	if (!quotable(user) || !quotable(uri) || !quotable(cnonce) || !header_safe(pass))
		return -EINVAL;
	const char *p1[] = { user, ":", a->realm, ":", pass };
	if ((rc = md5_hex(p1, 5, ha1)) < 0)
		return rc;
	if (a->md5_sess) {
		char h[33];
		const char *ps[] = { ha1, ":", a->nonce, ":", cnonce };
		if ((rc = md5_hex(ps, 5, h)) < 0)
			return rc;
		memcpy(ha1, h, sizeof(h));
	}
	const char *p2[] = { method, ":", uri };
	if ((rc = md5_hex(p2, 3, ha2)) < 0)
		return rc;
	if (a->qop_auth) {
		a->nc++;
		snprintf(nc, sizeof(nc), "%08x", a->nc);
		const char *p3[] = { ha1, ":", a->nonce, ":", nc, ":", cnonce, ":auth:", ha2 };
		rc = md5_hex(p3, 9, resp);
	} else {
		const char *p3[] = { ha1, ":", a->nonce, ":", ha2 };
		rc = md5_hex(p3, 5, resp);
	}
	memset(ha1, 0, sizeof(ha1));
	if (rc < 0)
		return rc;
	n = snprintf(out, cap, "Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", response=\"%s\"",
		     user, a->realm, a->nonce, uri, resp);
	if (n < 0 || (size_t)n >= cap)
		return -ENOBUFS;
	size_t used = (size_t)n;
	if (a->has_opaque) {
		n = snprintf(out + used, cap - used, ", opaque=\"%s\"", a->opaque);
		if (n < 0 || (size_t)n >= cap - used)
			return -ENOBUFS;
		used += (size_t)n;
	}
	if (a->md5_sess) {
		n = snprintf(out + used, cap - used, ", algorithm=MD5-sess");
		if (n < 0 || (size_t)n >= cap - used)
			return -ENOBUFS;
		used += (size_t)n;
	}
	if (a->qop_auth) {
		n = snprintf(out + used, cap - used, ", qop=auth, nc=%s, cnonce=\"%s\"", nc, cnonce);
		if (n < 0 || (size_t)n >= cap - used)
			return -ENOBUFS;
		used += (size_t)n;
	}
	return (int)used;
}

/* ---- SDP ---------------------------------------------------------------------------- */

static void copy_str(char *dst, size_t cap, struct cn_str s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;

	memcpy(dst, s.p, n);
	dst[n] = '\0';
}

static bool take_uint(struct cn_str *s, uint64_t max, uint64_t *out)
{
	size_t i = 0;

	while (i < s->len && s->p[i] >= '0' && s->p[i] <= '9')
		i++;
	if (!to_u64((struct cn_str){ s->p, i }, max, out))
		return false;
	s->p += i;
	s->len -= i;
	return true;
}

static void static_pt(struct cn_rtsp_media *m)
{
	if (m->pt == 0)
		cn_strlcpy(m->encoding, "PCMU", sizeof(m->encoding));
	else if (m->pt == 8)
		cn_strlcpy(m->encoding, "PCMA", sizeof(m->encoding));
	else
		return;
	m->clock = 8000;
	m->channels = 1;
}

/* m=<media> <port>[/n] <proto> <fmt> ... */
static void parse_mline(struct cn_str v, struct cn_rtsp_media *m)
{
	const char *sp = memchr(v.p, ' ', v.len);
	uint64_t pt;

	m->pt = -1;
	m->channels = 1;
	if (!sp)
		return;
	copy_str(m->kind, sizeof(m->kind), (struct cn_str){ v.p, (size_t)(sp - v.p) });
	for (int field = 0; field < 2 && sp; field++) {
		struct cn_str r = { sp + 1, v.len - (size_t)(sp + 1 - v.p) };
		sp = memchr(r.p, ' ', r.len);
	}
	if (!sp)
		return;
	struct cn_str f = { sp + 1, v.len - (size_t)(sp + 1 - v.p) };
	if (take_uint(&f, 127, &pt)) {
		m->pt = (int)pt;
		static_pt(m);
	}
}

/* a=rtpmap:<pt> <enc>/<clock>[/<ch>] */
static void parse_rtpmap(struct cn_str v, struct cn_rtsp_media *m)
{
	uint64_t pt, clock, ch;

	if (!take_uint(&v, 127, &pt) || (int)pt != m->pt || v.len == 0 || v.p[0] != ' ')
		return;
	v = trim((struct cn_str){ v.p + 1, v.len - 1 });
	const char *slash = memchr(v.p, '/', v.len);
	if (!slash)
		return;
	copy_str(m->encoding, sizeof(m->encoding), (struct cn_str){ v.p, (size_t)(slash - v.p) });
	v = (struct cn_str){ slash + 1, v.len - (size_t)(slash + 1 - v.p) };
	if (!take_uint(&v, 1000000, &clock))
		return;
	m->clock = (unsigned)clock;
	if (v.len > 1 && v.p[0] == '/') {
		v.p++, v.len--;
		if (take_uint(&v, 255, &ch) && ch > 0)
			m->channels = (unsigned)ch;
	}
}

int cn_rtsp_sdp_parse(const char *text, size_t len, struct cn_rtsp_sdp *out)
{
	struct cn_str rest = { text, len }, line;
	struct cn_rtsp_media *m = NULL;
	int seen = 0;

	memset(out, 0, sizeof(*out));
	if (len > CN_RTSP_MAX_BODY)
		return CN_E_TOO_BIG;
	if (memchr(text, '\0', len))
		return CN_E_MALFORMED;
	while (next_line(&rest, &line)) {
		line = trim(line);
		if (line.len == 0)
			continue;
		if (line.len < 2 || line.p[1] != '=' || line.p[0] < 'a' || line.p[0] > 'z')
			return CN_E_MALFORMED;
		struct cn_str v = { line.p + 2, line.len - 2 };
		if (line.p[0] == 'm') {
			seen++;
			if (out->nmedia == CN_RTSP_SDP_MAX_MEDIA) {
				m = NULL;
				continue;
			}
			m = &out->media[out->nmedia++];
			parse_mline(v, m);
			continue;
		}
		if (line.p[0] != 'a')
			continue;
		if (seen && !m)
			continue; /* a section past the bound */
		if (cn_str_has_prefix(v, "control:")) {
			struct cn_str c = trim((struct cn_str){ v.p + 8, v.len - 8 });
			if (c.len >= (m ? sizeof(m->control) : sizeof(out->control)))
				return CN_E_MALFORMED;
			copy_str(m ? m->control : out->control, m ? sizeof(m->control) : sizeof(out->control), c);
		} else if (m && cn_str_has_prefix(v, "rtpmap:")) {
			parse_rtpmap((struct cn_str){ v.p + 7, v.len - 7 }, m);
		} else if (m && cn_str_has_prefix(v, "fmtp:")) {
			struct cn_str f = { v.p + 5, v.len - 5 };
			uint64_t pt;
			if (take_uint(&f, 127, &pt) && (int)pt == m->pt) {
				f = trim(f);
				if (f.len >= sizeof(m->fmtp))
					return CN_E_TOO_BIG;
				copy_str(m->fmtp, sizeof(m->fmtp), f);
			}
		}
	}
	return seen ? 0 : CN_E_MALFORMED;
}

int cn_rtsp_control_url(const char *base, const char *control, char *out, size_t cap)
{
	int n;

	if (!control[0] || strcmp(control, "*") == 0)
		n = snprintf(out, cap, "%s", base);
	else if (strncmp(control, "rtsp://", 7) == 0 || strncmp(control, "rtsps://", 8) == 0)
		n = snprintf(out, cap, "%s", control);
	else
		n = snprintf(out, cap, "%s%s%s", base,
			     base[0] && base[strlen(base) - 1] == '/' ? "" : "/", control);
	if (n < 0 || (size_t)n >= cap)
		return -ENOBUFS;
	return 0;
}

struct cn_str cn_rtsp_fmtp_param(const char *fmtp, const char *name)
{
	struct cn_str s = cn_str_from(fmtp);
	size_t nlen = strlen(name), i = 0;

	while (i < s.len) {
		size_t e = i;
		while (e < s.len && s.p[e] != ';')
			e++;
		struct cn_str p = trim((struct cn_str){ s.p + i, e - i });
		if (p.len > nlen && p.p[nlen] == '=' && prefix_nocase(p, name))
			return trim((struct cn_str){ p.p + nlen + 1, p.len - nlen - 1 });
		i = e + 1;
	}
	return (struct cn_str){ NULL, 0 };
}
