/* cn_camevent.c: strict, bounded parsing of camera alarm-server pushes into Canopy events; no I/O. */
#include "cn_camevent.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <expat.h>

#include "cn_base64.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_time.h"

/* Expat joins namespace URI and local name with this. U+0001 may not appear in an XML 1.0
 * document, so it cannot occur inside a URI and the local name is what follows it. */
#define NS_SEP '\x01'

/* Input quoted in messages: at most 40 bytes, anything but printable ASCII as '?', so a
 * hostile value cannot forge log lines or break a terminal. */
static const char *show(const char *s, size_t n, char *buf, size_t cap)
{
	size_t o = 0, max = cap > 4 ? cap - 4 : 0;

	if (max > 40)
		max = 40;
	for (size_t i = 0; i < n && o < max; i++)
		buf[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (n > max && o + 3 < cap) {
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

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 9110 token character. */
static bool is_tchar(char c)
{
	return is_alnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* RFC 2046 bchars (space allowed, but not last). */
static bool is_bchar(char c)
{
	return is_alnum(c) || (c && strchr("'()+_,-./:=? ", c));
}

static bool ends_with_ci(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* Well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF) without control
 * characters; multiline text may hold tab, CR and LF. Everything we store goes out again
 * as JSON, which must be valid UTF-8. */
static bool text_ok(const char *s, size_t n, bool multiline)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i];
		size_t k;
		unsigned cp, min;

		if (c < 0x80) {
			if ((c < 0x20 && !(multiline && (c == '\t' || c == '\n' || c == '\r'))) ||
			    c == 0x7f)
				return false;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
		    (cp >= 0x80 && cp < 0xa0))
			return false;
		i += k + 1;
	}
	return true;
}

/* What a stored string may hold. */
enum cls {
	CLS_ID,        /* [A-Za-z0-9_.:-], starting with a letter or digit */
	CLS_WORD,      /* [a-z0-9_] (XML values are lower-cased first) */
	CLS_ALNUM,     /* [A-Za-z0-9] */
	CLS_COUNTRY,   /* [A-Za-z0-9-] */
	CLS_DIRECTION, /* [A-Za-z0-9_<>-]: "forward", "A->B" */
	CLS_TEXT,      /* UTF-8, no control characters */
	CLS_TEXT_ML,   /* UTF-8, tab and line breaks allowed */
};

static const char *const cls_what[] = {
	[CLS_ID] = "chars [A-Za-z0-9_.:-] starting with a letter or digit",
	[CLS_WORD] = "chars [a-z0-9_]",
	[CLS_ALNUM] = "chars [A-Za-z0-9]",
	[CLS_COUNTRY] = "chars [A-Za-z0-9-]",
	[CLS_DIRECTION] = "chars [A-Za-z0-9_<>-]",
	[CLS_TEXT] = "UTF-8 text without control characters",
	[CLS_TEXT_ML] = "UTF-8 text without control characters",
};

static bool cls_ok(enum cls cls, const char *s, size_t n)
{
	if (cls == CLS_TEXT || cls == CLS_TEXT_ML)
		return text_ok(s, n, cls == CLS_TEXT_ML);
	if (cls == CLS_ID && !is_alnum(s[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok;
		switch (cls) {
		case CLS_ID:
			ok = is_alnum(c) || c == '_' || c == '.' || c == ':' || c == '-';
			break;
		case CLS_WORD:
			ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
			break;
		case CLS_ALNUM:
			ok = is_alnum(c);
			break;
		case CLS_COUNTRY:
			ok = is_alnum(c) || c == '-';
			break;
		default:
			ok = is_alnum(c) || c == '_' || c == '<' || c == '>' || c == '-';
			break;
		}
		if (!ok)
			return false;
	}
	return true;
}

/* Checks and stores one string field; what names the field in messages. fold lower-cases
 * first (camera firmware is not consistent about case in its enumerations). */
static int put_str(char *dst, size_t cap, const char *s, size_t n, enum cls cls, bool fold,
		   const char *what, char *err, size_t errcap)
{
	char q[48];

	if (n == 0)
		return cn_fail(CN_E_MALFORMED, err, errcap, "%s is empty", what);
	if (n >= cap)
		return cn_fail(CN_E_MALFORMED, err, errcap, "%s is longer than %zu bytes", what,
			       cap - 1);
	memcpy(dst, s, n);
	dst[n] = '\0';
	if (fold)
		for (size_t i = 0; i < n; i++)
			dst[i] = lower(dst[i]);
	if (!cls_ok(cls, dst, n)) {
		dst[0] = '\0';
		return cn_fail(CN_E_MALFORMED, err, errcap, "%s '%s' must be %s", what,
			       show(s, n, q, sizeof(q)), cls_what[cls]);
	}
	return 0;
}

static const char *const type_names[] = {
	[CN_CAMEV_MOTION] = "motion",
	[CN_CAMEV_LINE_CROSSING] = "line_crossing",
	[CN_CAMEV_INTRUSION] = "intrusion",
	[CN_CAMEV_VIDEO_LOSS] = "video_loss",
	[CN_CAMEV_TAMPER] = "tamper",
	[CN_CAMEV_ANPR] = "anpr",
};

const char *cn_camevent_type_str(enum cn_camevent_type t)
{
	if ((unsigned)t < sizeof(type_names) / sizeof(*type_names))
		return type_names[t];
	return NULL;
}

static void set_type(struct cn_camevent *ev, enum cn_camevent_type t)
{
	ev->type = t;
	cn_strlcpy(ev->type_name, type_names[t], sizeof(ev->type_name));
}

/* Camera time: RFC 3339, or ISO 8601 with a basic "+hhmm" offset, or no offset at all
 * (camera-local wall clock, read as if UTC and flagged). */
static int parse_time(const char *s, size_t n, bool offset_required, struct cn_camevent *ev)
{
	char t[48];
	size_t tn = n;
	bool known = true;
	int64_t ms;

	if (n < 19 || n > 40)
		return CN_E_MALFORMED;
	memcpy(t, s, n);
	/* The sign of an offset sits after "YYYY-MM-DDThh:mm:ss" (19 chars), never inside
	 * the date, so the hyphens of the date are not taken for one. */
	if (t[n - 1] == 'Z' || t[n - 1] == 'z') {
		/* UTC */
	} else if (n >= 25 && (t[n - 6] == '+' || t[n - 6] == '-') && t[n - 3] == ':') {
		/* RFC 3339 numeric offset */
	} else if (n >= 24 && (t[n - 5] == '+' || t[n - 5] == '-') && t[n - 4] >= '0' &&
		   t[n - 4] <= '9' && t[n - 3] >= '0' && t[n - 3] <= '9') {
		/* ISO 8601 basic offset "+0100": rewrite as "+01:00" */
		t[n] = t[n - 1];
		t[n - 1] = t[n - 2];
		t[n - 2] = ':';
		tn = n + 1;
	} else {
		if (offset_required)
			return CN_E_MALFORMED;
		known = false;
		t[n] = 'Z';
		tn = n + 1;
	}
	if (cn_time_parse_rfc3339(t, tn, &ms) < 0)
		return CN_E_MALFORMED;
	ev->utc_ms = ms;
	ev->offset_known = known;
	ev->utc_offset_min = 0;
	if (known && t[tn - 1] != 'Z' && t[tn - 1] != 'z') {
		int m = ((t[tn - 5] - '0') * 10 + (t[tn - 4] - '0')) * 60 +
			(t[tn - 2] - '0') * 10 + (t[tn - 1] - '0');
		ev->utc_offset_min = t[tn - 6] == '-' ? -m : m;
	}
	return 0;
}

/* ---- Content-Type and part headers (RFC 9110 section 8.3, RFC 2045/2046) ---- */

struct media {
	char type[64];                            /* "type/subtype", lower case */
	char boundary[CN_CAMEVENT_MAX_BOUNDARY + 1];
	bool has_boundary;
	char charset[32];                         /* lower case, "" when absent */
	char name[128];                           /* Content-Disposition name= */
	char filename[128];                       /* Content-Disposition filename= */
};

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* One "; name=value" parameter: value a quoted-string or a bare run without separators.
 * 1 with a parameter, 0 at the end, CN_E_MALFORMED on bad syntax, -ENOSPC when the
 * value does not fit val. */
static int next_param(struct cn_str s, size_t *pos, struct cn_str *name, char *val, size_t cap)
{
	size_t i = *pos, o = 0, start;

	while (i < s.len && is_ows(s.p[i]))
		i++;
	if (i == s.len) {
		*pos = i;
		return 0;
	}
	if (s.p[i] != ';')
		return CN_E_MALFORMED;
	i++;
	while (i < s.len && is_ows(s.p[i]))
		i++;
	if (i == s.len) { /* a trailing ';' is common and harmless */
		*pos = i;
		return 0;
	}
	start = i;
	while (i < s.len && is_tchar(s.p[i]))
		i++;
	if (i == start || i == s.len || s.p[i] != '=')
		return CN_E_MALFORMED;
	*name = (struct cn_str){ s.p + start, i - start };
	i++;
	if (i < s.len && s.p[i] == '"') {
		for (i++;; ) {
			char c;
			if (i == s.len)
				return CN_E_MALFORMED;
			c = s.p[i++];
			if (c == '"')
				break;
			if (c == '\\') {
				if (i == s.len)
					return CN_E_MALFORMED;
				c = s.p[i++];
			}
			if (((unsigned char)c < 0x20 && c != '\t') || c == 0x7f)
				return CN_E_MALFORMED;
			if (o + 1 >= cap)
				return -ENOSPC;
			val[o++] = c;
		}
	} else {
		while (i < s.len && (unsigned char)s.p[i] > 0x20 && s.p[i] != 0x7f &&
		       s.p[i] != ';' && s.p[i] != '"' && s.p[i] != '\\') {
			if (o + 1 >= cap)
				return -ENOSPC;
			val[o++] = s.p[i++];
		}
		if (o == 0)
			return CN_E_MALFORMED;
	}
	val[o] = '\0';
	*pos = i;
	return 1;
}

/* Parses "main-token [; params]". disposition: the main token is a Content-Disposition
 * type ("form-data") rather than type/subtype. label names the header in messages. */
static int parse_header_value(struct cn_str v, bool disposition, struct media *m,
			      const char *label, char *err, size_t errcap)
{
	size_t i = 0, o = 0;
	struct cn_str pname;
	char val[128], q[48];
	int rc;

	memset(m, 0, sizeof(*m));
	while (i < v.len && is_ows(v.p[i]))
		i++;
	while (i < v.len && (is_tchar(v.p[i]) || (!disposition && v.p[i] == '/'))) {
		if (o + 1 >= sizeof(m->type))
			return cn_fail(CN_E_MALFORMED, err, errcap, "%s value is too long", label);
		m->type[o++] = lower(v.p[i++]);
	}
	m->type[o] = '\0';
	if (o == 0 || (!disposition && (!strchr(m->type, '/') || m->type[0] == '/' ||
					 m->type[o - 1] == '/' ||
					 strchr(m->type, '/') != strrchr(m->type, '/'))))
		return cn_fail(CN_E_MALFORMED, err, errcap, "%s '%s' is not %s", label,
			       show(v.p, v.len, q, sizeof(q)),
			       disposition ? "a disposition type" : "a type/subtype media type");
	while ((rc = next_param(v, &i, &pname, val, sizeof(val))) > 0) {
		size_t n = strlen(val);
		if (!disposition && pname.len == 8 && strncasecmp(pname.p, "boundary", 8) == 0) {
			if (m->has_boundary)
				return cn_fail(CN_E_MALFORMED, err, errcap,
					       "%s repeats the boundary parameter", label);
			if (n == 0)
				return cn_fail(CN_E_MALFORMED, err, errcap, "%s boundary is empty",
					       label);
			if (n > CN_CAMEVENT_MAX_BOUNDARY)
				return cn_fail(CN_E_MALFORMED, err, errcap,
					       "%s boundary is longer than %d characters", label,
					       CN_CAMEVENT_MAX_BOUNDARY);
			for (size_t k = 0; k < n; k++)
				if (!is_bchar(val[k]))
					return cn_fail(CN_E_MALFORMED, err, errcap,
						       "%s boundary '%s' has a character RFC 2046 does not allow",
						       label, show(val, n, q, sizeof(q)));
			if (val[n - 1] == ' ')
				return cn_fail(CN_E_MALFORMED, err, errcap,
					       "%s boundary ends in a space", label);
			memcpy(m->boundary, val, n + 1);
			m->has_boundary = true;
		} else if (!disposition && pname.len == 7 && strncasecmp(pname.p, "charset", 7) == 0) {
			if (n >= sizeof(m->charset))
				return cn_fail(CN_E_MALFORMED, err, errcap, "%s charset is too long",
					       label);
			for (size_t k = 0; k <= n; k++)
				m->charset[k] = lower(val[k]);
		} else if (disposition && pname.len == 4 && strncasecmp(pname.p, "name", 4) == 0) {
			memcpy(m->name, val, n + 1);
		} else if (disposition && pname.len == 8 && strncasecmp(pname.p, "filename", 8) == 0) {
			memcpy(m->filename, val, n + 1);
		}
	}
	if (rc == -ENOSPC)
		return cn_fail(CN_E_MALFORMED, err, errcap, "%s has a parameter longer than %zu bytes",
			       label, sizeof(val) - 1);
	if (rc < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap,
			       "%s has a malformed parameter (want '; name=value' or '; name=\"value\"')",
			       label);
	return 0;
}

/* ---- EventNotificationAlert XML (expat) ---- */

/* Where an open element sits; only these paths carry fields. */
enum xctx { XC_NONE, XC_ROOT, XC_ANPR, XC_REGION_LIST, XC_REGION_ENTRY, XC_OTHER };

enum xf {
	XF_IP, XF_IPV6, XF_PORT, XF_PROTOCOL, XF_MAC, XF_CHANNEL, XF_DYNCHANNEL, XF_DATETIME,
	XF_POSTCOUNT, XF_EVENTTYPE, XF_EVENTSTATE, XF_DESCRIPTION, XF_REGION, XF_TARGET,
	XF_PLATE, XF_CONFIDENCE, XF_COUNTRY, XF_VEHICLE, XF_DIRECTION, XF_COUNT
};

/* list fields repeat legitimately (one per DetectionRegionEntry): the first wins. Any
 * other field twice is refused, so no two readers can take different values. */
static const struct xfield {
	enum xctx parent;
	const char *name;
	enum xf f;
	bool list;
} xfields[] = {
	{ XC_ROOT, "ipAddress", XF_IP, false },
	{ XC_ROOT, "ipv6Address", XF_IPV6, false },
	{ XC_ROOT, "portNo", XF_PORT, false },
	{ XC_ROOT, "protocol", XF_PROTOCOL, false },
	{ XC_ROOT, "macAddress", XF_MAC, false },
	{ XC_ROOT, "channelID", XF_CHANNEL, false },
	{ XC_ROOT, "dynChannelID", XF_DYNCHANNEL, false },
	{ XC_ROOT, "dateTime", XF_DATETIME, false },
	{ XC_ROOT, "activePostCount", XF_POSTCOUNT, false },
	{ XC_ROOT, "eventType", XF_EVENTTYPE, false },
	{ XC_ROOT, "eventState", XF_EVENTSTATE, false },
	{ XC_ROOT, "eventDescription", XF_DESCRIPTION, false },
	{ XC_ROOT, "detectionTarget", XF_TARGET, true },
	{ XC_ROOT, "targetType", XF_TARGET, true },
	{ XC_REGION_ENTRY, "regionID", XF_REGION, true },
	{ XC_REGION_ENTRY, "detectionTarget", XF_TARGET, true },
	{ XC_REGION_ENTRY, "targetType", XF_TARGET, true },
	{ XC_ANPR, "licensePlate", XF_PLATE, false },
	{ XC_ANPR, "confidenceLevel", XF_CONFIDENCE, false },
	{ XC_ANPR, "country", XF_COUNTRY, false },
	{ XC_ANPR, "vehicleType", XF_VEHICLE, false },
	{ XC_ANPR, "direction", XF_DIRECTION, false },
};

#define NXFIELDS ((int)(sizeof(xfields) / sizeof(*xfields)))

struct xml_ctx {
	XML_Parser parser;
	char *err;
	size_t errcap;
	int rc;
	int depth;
	unsigned elements;
	enum xctx ctx[CN_CAMEVENT_MAX_DEPTH];
	int field[CN_CAMEVENT_MAX_DEPTH]; /* xfields index of each open element, or -1 */
	/* Text since the last tag, trimmed: leading white space is dropped and inner white
	 * space waits in ws until more text follows, so indentation never counts. */
	char text[CN_CAMEVENT_MAX_TEXT + 1];
	size_t text_len;
	char ws[CN_CAMEVENT_MAX_TEXT];
	size_t ws_len;
	bool seen[XF_COUNT];
	char val[XF_COUNT][CN_CAMEVENT_MAX_TEXT + 1];
};

static void xml_stop(struct xml_ctx *x, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void xml_stop(struct xml_ctx *x, int rc, const char *fmt, ...)
{
	va_list ap;

	if (x->err && x->errcap) {
		va_start(ap, fmt);
		vsnprintf(x->err, x->errcap, fmt, ap);
		va_end(ap);
	}
	x->rc = rc;
	XML_StopParser(x->parser, XML_FALSE);
}

static const char *local_name(const XML_Char *name)
{
	const char *sep = strrchr(name, NS_SEP);

	return sep ? sep + 1 : name;
}

static void XMLCALL xml_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct xml_ctx *x = ud;
	const char *ln = local_name(name);
	enum xctx parent = x->depth ? x->ctx[x->depth - 1] : XC_NONE, here = XC_OTHER;
	char q[48];
	int f = -1;

	(void)atts; /* version="2.0" and friends carry nothing we use */
	if (x->rc)
		return;
	if (x->depth == CN_CAMEVENT_MAX_DEPTH) {
		xml_stop(x, CN_E_TOO_BIG, "XML nests deeper than %d elements", CN_CAMEVENT_MAX_DEPTH);
		return;
	}
	if (++x->elements > CN_CAMEVENT_MAX_ELEMENTS) {
		xml_stop(x, CN_E_TOO_BIG, "XML has more than %d elements", CN_CAMEVENT_MAX_ELEMENTS);
		return;
	}
	if (parent == XC_NONE) {
		if (strcmp(ln, "EventNotificationAlert") != 0) {
			xml_stop(x, CN_E_MALFORMED, "XML root element is '%s', expected EventNotificationAlert",
				 show(ln, strlen(ln), q, sizeof(q)));
			return;
		}
		here = XC_ROOT;
	} else if (x->field[x->depth - 1] >= 0) {
		xml_stop(x, CN_E_MALFORMED, "XML element %s must hold text, not elements",
			 xfields[x->field[x->depth - 1]].name);
		return;
	} else if (parent == XC_ROOT && strcmp(ln, "ANPR") == 0) {
		here = XC_ANPR;
	} else if (parent == XC_ROOT && strcmp(ln, "DetectionRegionList") == 0) {
		here = XC_REGION_LIST;
	} else if (parent == XC_REGION_LIST && strcmp(ln, "DetectionRegionEntry") == 0) {
		here = XC_REGION_ENTRY;
	} else {
		for (int i = 0; i < NXFIELDS; i++)
			if (xfields[i].parent == parent && strcmp(xfields[i].name, ln) == 0) {
				f = i;
				break;
			}
	}
	x->ctx[x->depth] = here;
	x->field[x->depth] = f;
	x->depth++;
	x->text_len = 0;
	x->ws_len = 0;
}

static void XMLCALL xml_end(void *ud, const XML_Char *name)
{
	struct xml_ctx *x = ud;
	int f;

	(void)name;
	if (x->rc || x->depth == 0)
		return;
	x->depth--;
	f = x->field[x->depth];
	if (f >= 0) {
		enum xf id = xfields[f].f;
		if (x->seen[id] && !xfields[f].list) {
			xml_stop(x, CN_E_MALFORMED, "XML element %s appears more than once",
				 xfields[f].name);
			return;
		}
		if (!x->seen[id]) {
			memcpy(x->val[id], x->text, x->text_len);
			x->val[id][x->text_len] = '\0';
			x->seen[id] = true;
		}
	}
	x->text_len = 0;
	x->ws_len = 0;
}

static void XMLCALL xml_text(void *ud, const XML_Char *s, int len)
{
	struct xml_ctx *x = ud;
	int f;

	if (x->rc || x->depth == 0)
		return;
	/* Only the text of elements we read is kept and bounded; other elements (picture
	 * URLs, vendor extras) are skipped, within the document's own 64 KiB bound. */
	f = x->field[x->depth - 1];
	if (f < 0)
		return;
	for (int i = 0; i < len; i++) {
		char c = s[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			if (x->text_len && x->ws_len < sizeof(x->ws))
				x->ws[x->ws_len] = c;
			if (x->text_len)
				x->ws_len++;
			continue;
		}
		if (x->text_len + x->ws_len + 1 > CN_CAMEVENT_MAX_TEXT) {
			xml_stop(x, CN_E_TOO_BIG, "XML element %s holds more than %d bytes of text",
				 xfields[f].name, CN_CAMEVENT_MAX_TEXT);
			return;
		}
		memcpy(x->text + x->text_len, x->ws, x->ws_len);
		x->text_len += x->ws_len;
		x->ws_len = 0;
		x->text[x->text_len++] = c;
	}
}

/* A DTD is where entity declarations live: internal ones expand exponentially ("billion
 * laughs"), external ones make the parser read files or URLs. A camera event never needs
 * one, so any DOCTYPE stops the parse before its internal subset is read. */
static void XMLCALL xml_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
				const XML_Char *pubid, int has_internal_subset)
{
	struct xml_ctx *x = ud;

	(void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
	if (!x->rc)
		xml_stop(x, CN_E_MALFORMED, "XML has a DOCTYPE; DTDs and entity declarations are refused");
}

static void XMLCALL xml_entity(void *ud, const XML_Char *name, int is_param,
			       const XML_Char *value, int value_len, const XML_Char *base,
			       const XML_Char *sysid, const XML_Char *pubid,
			       const XML_Char *notation)
{
	struct xml_ctx *x = ud;

	(void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid;
	(void)pubid, (void)notation;
	if (!x->rc)
		xml_stop(x, CN_E_MALFORMED, "XML declares an entity; entity declarations are refused");
}

static const struct {
	const char *vendor;
	enum cn_camevent_type type;
	const char *variant;
} hik_types[] = {
	{ "VMD", CN_CAMEV_MOTION, "" },
	{ "linedetection", CN_CAMEV_LINE_CROSSING, "" },
	{ "fielddetection", CN_CAMEV_INTRUSION, "" },
	{ "regionEntrance", CN_CAMEV_INTRUSION, "entrance" },
	{ "regionExiting", CN_CAMEV_INTRUSION, "exit" },
	{ "videoloss", CN_CAMEV_VIDEO_LOSS, "" },
	{ "shelteralarm", CN_CAMEV_TAMPER, "" },
	{ "tamperdetection", CN_CAMEV_TAMPER, "" },
	{ "ANPR", CN_CAMEV_ANPR, "" },
};

static int xml_int(const char *v, const char *what, int64_t min, int64_t max, int *out,
		   char *err, size_t errcap)
{
	int64_t n;
	char q[48];

	if (cn_str_to_i64(cn_str_from(v), min, max, &n) < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap, "%s '%s' is not an integer %lld..%lld",
			       what, show(v, strlen(v), q, sizeof(q)), (long long)min,
			       (long long)max);
	*out = (int)n;
	return 0;
}

/* "aa:bb:cc:dd:ee:ff" or with '-', any case; stored lower-case with ':'. */
static int put_mac(struct cn_camevent *ev, const char *v, char *err, size_t errcap)
{
	char q[48];
	bool ok = strlen(v) == 17;

	for (size_t i = 0; ok && i < 17; i++) {
		char c = v[i];
		if (i % 3 == 2)
			ok = c == (v[2] == '-' ? '-' : ':');
		else
			ok = (c >= '0' && c <= '9') || (lower(c) >= 'a' && lower(c) <= 'f');
		ev->device_mac[i] = i % 3 == 2 ? ':' : lower(c);
	}
	if (!ok) {
		ev->device_mac[0] = '\0';
		return cn_fail(CN_E_MALFORMED, err, errcap,
			       "macAddress '%s' is not six hex pairs separated by ':' or '-'",
			       show(v, strlen(v), q, sizeof(q)));
	}
	ev->device_mac[17] = '\0';
	return 0;
}

/* Turns the collected element texts into the event. Empty elements count as absent. */
static int xml_finish(struct xml_ctx *x, struct cn_camevent *ev, char *err, size_t errcap)
{
	char (*v)[CN_CAMEVENT_MAX_TEXT + 1] = x->val;
	unsigned char addr[16];
	char q[48];
	size_t i;
	int rc;

	cn_strlcpy(ev->source_format, "hikvision-xml", sizeof(ev->source_format));
	if (!v[XF_EVENTTYPE][0])
		return cn_fail(CN_E_MALFORMED, err, errcap, "EventNotificationAlert has no eventType");
	for (i = 0; i < sizeof(hik_types) / sizeof(*hik_types); i++)
		if (strcasecmp(v[XF_EVENTTYPE], hik_types[i].vendor) == 0)
			break;
	if (i == sizeof(hik_types) / sizeof(*hik_types))
		return cn_fail(CN_E_MALFORMED, err, errcap, "unknown eventType '%s'",
			       show(v[XF_EVENTTYPE], strlen(v[XF_EVENTTYPE]), q, sizeof(q)));
	set_type(ev, hik_types[i].type);
	cn_strlcpy(ev->variant, hik_types[i].variant, sizeof(ev->variant));
	cn_strlcpy(ev->vendor_type, v[XF_EVENTTYPE], sizeof(ev->vendor_type));

	if (!v[XF_DATETIME][0])
		return cn_fail(CN_E_MALFORMED, err, errcap, "EventNotificationAlert has no dateTime");
	if (parse_time(v[XF_DATETIME], strlen(v[XF_DATETIME]), false, ev) < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap,
			       "dateTime '%s' is not an ISO 8601 date-time (YYYY-MM-DDThh:mm:ss[.frac][Z|+hh:mm])",
			       show(v[XF_DATETIME], strlen(v[XF_DATETIME]), q, sizeof(q)));

	if (v[XF_DYNCHANNEL][0] &&
	    (rc = xml_int(v[XF_DYNCHANNEL], "dynChannelID", 0, 65535, &ev->channel, err, errcap)) < 0)
		return rc;
	if (v[XF_CHANNEL][0] &&
	    (rc = xml_int(v[XF_CHANNEL], "channelID", 0, 65535, &ev->channel, err, errcap)) < 0)
		return rc;
	if (!v[XF_CHANNEL][0] && !v[XF_DYNCHANNEL][0])
		return cn_fail(CN_E_MALFORMED, err, errcap,
			       "EventNotificationAlert has no channelID or dynChannelID");
	snprintf(ev->camera, sizeof(ev->camera), "%d", ev->channel);

	ev->active = true;
	if (v[XF_EVENTSTATE][0]) {
		if (strcasecmp(v[XF_EVENTSTATE], "inactive") == 0)
			ev->active = false;
		else if (strcasecmp(v[XF_EVENTSTATE], "active") != 0)
			return cn_fail(CN_E_MALFORMED, err, errcap,
				       "eventState must be 'active' or 'inactive', got '%s'",
				       show(v[XF_EVENTSTATE], strlen(v[XF_EVENTSTATE]), q, sizeof(q)));
	}
	if (v[XF_IPV6][0]) {
		if (strlen(v[XF_IPV6]) >= sizeof(ev->device_ip) || inet_pton(AF_INET6, v[XF_IPV6], addr) != 1)
			return cn_fail(CN_E_MALFORMED, err, errcap, "ipv6Address '%s' is not an IPv6 address",
				       show(v[XF_IPV6], strlen(v[XF_IPV6]), q, sizeof(q)));
		cn_strlcpy(ev->device_ip, v[XF_IPV6], sizeof(ev->device_ip));
	}
	if (v[XF_IP][0]) {
		if (strlen(v[XF_IP]) >= sizeof(ev->device_ip) || inet_pton(AF_INET, v[XF_IP], addr) != 1)
			return cn_fail(CN_E_MALFORMED, err, errcap, "ipAddress '%s' is not an IPv4 address",
				       show(v[XF_IP], strlen(v[XF_IP]), q, sizeof(q)));
		cn_strlcpy(ev->device_ip, v[XF_IP], sizeof(ev->device_ip));
	}
	if (v[XF_PORT][0] &&
	    (rc = xml_int(v[XF_PORT], "portNo", 0, 65535, &ev->device_port, err, errcap)) < 0)
		return rc;
	if (v[XF_PROTOCOL][0] &&
	    (rc = put_str(ev->protocol, sizeof(ev->protocol), v[XF_PROTOCOL], strlen(v[XF_PROTOCOL]),
			  CLS_ALNUM, false, "protocol", err, errcap)) < 0)
		return rc;
	if (v[XF_MAC][0] && (rc = put_mac(ev, v[XF_MAC], err, errcap)) < 0)
		return rc;
	if (v[XF_POSTCOUNT][0] &&
	    (rc = xml_int(v[XF_POSTCOUNT], "activePostCount", 0, INT32_MAX, &ev->post_count, err,
			  errcap)) < 0)
		return rc;

	static const struct {
		enum xf f;
		size_t off, cap;
		enum cls cls;
		bool fold;
		const char *what;
	} strs[] = {
#define S(f, m, cls, fold, what) { f, offsetof(struct cn_camevent, m), \
				   sizeof(((struct cn_camevent *)0)->m), cls, fold, what }
		S(XF_DESCRIPTION, description, CLS_TEXT_ML, false, "eventDescription"),
		S(XF_REGION, region, CLS_TEXT, false, "regionID"),
		S(XF_TARGET, target, CLS_WORD, true, "detectionTarget"),
		S(XF_PLATE, plate, CLS_TEXT, false, "licensePlate"),
		S(XF_COUNTRY, country, CLS_COUNTRY, false, "country"),
		S(XF_VEHICLE, vehicle_type, CLS_WORD, true, "vehicleType"),
		S(XF_DIRECTION, direction, CLS_DIRECTION, false, "direction"),
#undef S
	};
	for (i = 0; i < sizeof(strs) / sizeof(*strs); i++) {
		const char *s = v[strs[i].f];
		if (s[0] && (rc = put_str((char *)ev + strs[i].off, strs[i].cap, s, strlen(s),
					  strs[i].cls, strs[i].fold, strs[i].what, err, errcap)) < 0)
			return rc;
	}
	ev->confidence = -1;
	if (v[XF_CONFIDENCE][0] &&
	    (rc = xml_int(v[XF_CONFIDENCE], "confidenceLevel", 0, 100, &ev->confidence, err,
			  errcap)) < 0)
		return rc;
	if (ev->type == CN_CAMEV_ANPR && !ev->plate[0])
		return cn_fail(CN_E_MALFORMED, err, errcap, "ANPR event has no ANPR/licensePlate");
	return 0;
}

static int parse_xml(const uint8_t *p, size_t n, struct cn_camevent *ev, char *err,
		     size_t errcap)
{
	struct xml_ctx *x;
	int rc;

	if (n > CN_CAMEVENT_MAX_XML)
		return cn_fail(CN_E_TOO_BIG, err, errcap, "XML document is %zu bytes, limit %d", n,
			       CN_CAMEVENT_MAX_XML);
	/* About 6 KiB of per-field text: on the heap, so callers on small stacks are safe. */
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->err = err;
	x->errcap = errcap;
	x->parser = XML_ParserCreateNS(NULL, NS_SEP);
	if (!x->parser) {
		rc = -ENOMEM;
		goto out_free_ctx;
	}
	XML_SetUserData(x->parser, x);
	XML_SetElementHandler(x->parser, xml_start, xml_end);
	XML_SetCharacterDataHandler(x->parser, xml_text);
	XML_SetStartDoctypeDeclHandler(x->parser, xml_doctype);
	XML_SetEntityDeclHandler(x->parser, xml_entity);
	XML_SetParamEntityParsing(x->parser, XML_PARAM_ENTITY_PARSING_NEVER);
	if (XML_Parse(x->parser, (const char *)p, (int)n, XML_TRUE) != XML_STATUS_OK) {
		rc = x->rc;
		if (!rc)
			rc = cn_fail(CN_E_MALFORMED, err, errcap,
				     "XML is not well-formed: %s at line %lu column %lu",
				     XML_ErrorString(XML_GetErrorCode(x->parser)),
				     (unsigned long)XML_GetCurrentLineNumber(x->parser),
				     (unsigned long)XML_GetCurrentColumnNumber(x->parser));
		goto out_free_parser;
	}
	rc = x->rc ? x->rc : xml_finish(x, ev, err, errcap);
out_free_parser:
	XML_ParserFree(x->parser);
out_free_ctx:
	free(x);
	return rc;
}

/* ---- multipart/form-data and multipart/mixed (RFC 2046 section 5.1, RFC 7578) ---- */

static bool is_jpeg(const uint8_t *p, size_t n)
{
	return n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff;
}

/* Header names we act on; each at most once per part. */
enum { PH_TYPE, PH_DISP, PH_LENGTH, PH_CTE, PH_COUNT };
static const char *const part_headers[PH_COUNT] = {
	"Content-Type", "Content-Disposition", "Content-Length", "Content-Transfer-Encoding"
};

/* Case-insensitive equality of a header value and a word. */
static bool header_is(struct cn_str v, const char *word)
{
	return v.len == strlen(word) && strncasecmp(v.p, word, v.len) == 0;
}

struct mp_state {
	const uint8_t *xml;
	size_t xml_len;
	int xml_part;
};

static int handle_part(int idx, const uint8_t *p, size_t n, struct mp_state *st,
		       struct cn_camevent *ev, char *err, size_t errcap)
{
	struct cn_str hv[PH_COUNT] = { { NULL, 0 } };
	bool have[PH_COUNT] = { false };
	struct media ct, disp;
	const uint8_t *body;
	size_t hlen, blen, off = 0;
	char label[48], q[48];
	int rc;

	if (n == 0) /* an empty part (no headers, no body) is legal and carries nothing */
		return 0;
	if (n >= 2 && p[0] == '\r' && p[1] == '\n') {
		hlen = 0;
		body = p + 2;
	} else {
		size_t lim = n < CN_CAMEVENT_MAX_PART_HEADERS + 2 ? n : CN_CAMEVENT_MAX_PART_HEADERS + 2;
		const uint8_t *e = memmem(p, lim, "\r\n\r\n", 4);
		if (!e) {
			if (n > lim)
				return cn_fail(CN_E_TOO_BIG, err, errcap,
					       "multipart part %d headers are longer than %d bytes", idx,
					       CN_CAMEVENT_MAX_PART_HEADERS);
			return cn_fail(CN_E_MALFORMED, err, errcap,
				       "multipart part %d has no blank line after its headers", idx);
		}
		hlen = (size_t)(e - p) + 2; /* lines with their CRLFs */
		body = e + 4;
	}
	blen = n - (size_t)(body - p);
	while (off < hlen) {
		const char *line = (const char *)p + off;
		const char *eol = memmem(line, hlen - off, "\r\n", 2);
		size_t ll = (size_t)(eol - line), k = 0;
		struct cn_str value;

		off += ll + 2;
		if (ll && is_ows(line[0]))
			return cn_fail(CN_E_MALFORMED, err, errcap,
				       "multipart part %d folds a header line (obsolete, refused)", idx);
		while (k < ll && is_tchar(line[k]))
			k++;
		if (k == 0 || k == ll || line[k] != ':')
			return cn_fail(CN_E_MALFORMED, err, errcap,
				       "multipart part %d header line '%s' is not 'Name: value'", idx,
				       show(line, ll, q, sizeof(q)));
		for (size_t j = k + 1; j < ll; j++)
			if (((unsigned char)line[j] < 0x20 && line[j] != '\t') || line[j] == 0x7f)
				return cn_fail(CN_E_MALFORMED, err, errcap,
					       "multipart part %d header %.*s holds a control character",
					       idx, (int)k, line);
		value = cn_str_trim((struct cn_str){ line + k + 1, ll - k - 1 });
		for (int h = 0; h < PH_COUNT; h++) {
			if (strlen(part_headers[h]) != k || strncasecmp(line, part_headers[h], k) != 0)
				continue;
			if (have[h])
				return cn_fail(CN_E_MALFORMED, err, errcap,
					       "multipart part %d repeats %s", idx, part_headers[h]);
			have[h] = true;
			hv[h] = value;
		}
	}
	ct.type[0] = '\0';
	if (have[PH_TYPE]) {
		snprintf(label, sizeof(label), "multipart part %d Content-Type", idx);
		if ((rc = parse_header_value(hv[PH_TYPE], false, &ct, label, err, errcap)) < 0)
			return rc;
	}
	disp.name[0] = disp.filename[0] = '\0';
	if (have[PH_DISP]) {
		snprintf(label, sizeof(label), "multipart part %d Content-Disposition", idx);
		if ((rc = parse_header_value(hv[PH_DISP], true, &disp, label, err, errcap)) < 0)
			return rc;
	}
	if (have[PH_LENGTH]) {
		int64_t cl;
		/* Content-Length and the boundary must agree, or two readers would cut the part
		 * differently. */
		if (cn_str_to_i64(hv[PH_LENGTH], 0, CN_CAMEVENT_MAX_BODY, &cl) < 0)
			return cn_fail(CN_E_MALFORMED, err, errcap,
				       "multipart part %d Content-Length '%s' is not a byte count", idx,
				       show(hv[PH_LENGTH].p, hv[PH_LENGTH].len, q, sizeof(q)));
		if ((size_t)cl != blen)
			return cn_fail(CN_E_MALFORMED, err, errcap,
				       "multipart part %d Content-Length is %lld but the part holds %zu bytes",
				       idx, (long long)cl, blen);
	}
	if (have[PH_CTE] && !header_is(hv[PH_CTE], "binary") && !header_is(hv[PH_CTE], "8bit") &&
	    !header_is(hv[PH_CTE], "7bit"))
		return cn_fail(CN_E_MALFORMED, err, errcap,
			       "multipart part %d Content-Transfer-Encoding '%s' is not supported (binary, 8bit, 7bit)",
			       idx, show(hv[PH_CTE].p, hv[PH_CTE].len, q, sizeof(q)));

	if (strcmp(ct.type, "image/jpeg") == 0) {
		if (!is_jpeg(body, blen))
			return cn_fail(CN_E_MALFORMED, err, errcap,
				       "multipart part %d is image/jpeg but does not start with a JPEG marker (FF D8 FF)",
				       idx);
		if (ev->image_parts++ == 0) {
			const char *fn = disp.filename[0] ? disp.filename : disp.name;
			ev->snapshot_kind = CN_CAMEV_SNAP_JPEG;
			ev->snapshot = (struct cn_str){ (const char *)body, blen };
			ev->snapshot_bytes = blen;
			if (fn[0] && strlen(fn) < sizeof(ev->snapshot_name) &&
			    cls_ok(CLS_ID, fn, strlen(fn)) && !strchr(fn, ':'))
				cn_strlcpy(ev->snapshot_name, fn, sizeof(ev->snapshot_name));
		}
		return 0;
	}
	if (strcmp(ct.type, "application/xml") == 0 || strcmp(ct.type, "text/xml") == 0 ||
	    (strncmp(ct.type, "image/", 6) != 0 &&
	     (ends_with_ci(disp.name, ".xml") || ends_with_ci(disp.filename, ".xml")))) {
		if (st->xml)
			return cn_fail(CN_E_MALFORMED, err, errcap,
				       "multipart has two XML parts (%d and %d)", st->xml_part, idx);
		if (blen > CN_CAMEVENT_MAX_XML)
			return cn_fail(CN_E_TOO_BIG, err, errcap,
				       "multipart part %d (XML) is %zu bytes, limit %d", idx, blen,
				       CN_CAMEVENT_MAX_XML);
		st->xml = body;
		st->xml_len = blen;
		st->xml_part = idx;
	}
	return 0; /* other parts are not ours to judge */
}

static int parse_multipart(const char *boundary, const uint8_t *body, size_t len,
			   struct cn_camevent *ev, char *err, size_t errcap)
{
	char delim[4 + CN_CAMEVENT_MAX_BOUNDARY + 1], q[48];
	struct mp_state st = { NULL, 0, 0 };
	size_t dl, pos;
	const uint8_t *f;
	int nparts = 0, rc;

	/* The delimiter is CRLF "--" boundary; the CRLF belongs to it, not to the part. */
	dl = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	if (len >= dl - 2 && memcmp(body, delim + 2, dl - 2) == 0) {
		pos = dl - 2;
	} else {
		f = memmem(body, len, delim, dl);
		if (!f)
			return cn_fail(CN_E_MALFORMED, err, errcap,
				       "multipart body has no boundary line '--%s'",
				       show(boundary, strlen(boundary), q, sizeof(q)));
		pos = (size_t)(f - body) + dl;
	}
	for (;;) {
		/* After a delimiter: "--" closes the body (the epilogue is ignored); otherwise
		 * optional transport padding and CRLF open the next part. */
		if (len - pos >= 2 && body[pos] == '-' && body[pos + 1] == '-') {
			if (nparts == 0)
				return cn_fail(CN_E_MALFORMED, err, errcap, "multipart body has no parts");
			break;
		}
		while (pos < len && is_ows((char)body[pos]))
			pos++;
		if (len - pos < 2 || body[pos] != '\r' || body[pos + 1] != '\n')
			return cn_fail(CN_E_MALFORMED, err, errcap,
				       "multipart boundary line %d is not followed by CRLF or '--'",
				       nparts + 1);
		pos += 2;
		if (++nparts > CN_CAMEVENT_MAX_PARTS)
			return cn_fail(CN_E_TOO_BIG, err, errcap, "multipart has more than %d parts",
				       CN_CAMEVENT_MAX_PARTS);
		f = memmem(body + pos, len - pos, delim, dl);
		if (!f)
			return cn_fail(CN_E_MALFORMED, err, errcap,
				       "multipart part %d is not closed by a boundary (missing '--%s--')",
				       nparts, show(boundary, strlen(boundary), q, sizeof(q)));
		rc = handle_part(nparts, body + pos, (size_t)(f - body) - pos, &st, ev, err, errcap);
		if (rc < 0)
			return rc;
		pos = (size_t)(f - body) + dl;
	}
	if (!st.xml)
		return cn_fail(CN_E_MALFORMED, err, errcap,
			       "multipart has no XML part (application/xml, text/xml, or a name ending .xml)");
	return parse_xml(st.xml, st.xml_len, ev, err, errcap);
}

/* ---- generic JSON push (schemas/camera-event-push.schema.json) ---- */

static size_t raw_ws(const char *p, size_t n, size_t i)
{
	/* cJSON takes every byte up to space as white space; so must we, to agree with it. */
	while (i < n && (unsigned char)p[i] <= 0x20)
		i++;
	return i;
}

/* Index just past the string opening at p[i]; SIZE_MAX if it does not close. */
static size_t raw_string_end(const char *p, size_t n, size_t i)
{
	for (i++; i < n;) {
		if (p[i] == '\\')
			i += 2;
		else if (p[i] == '"')
			return i + 1;
		else
			i++;
	}
	return SIZE_MAX;
}

/* Finds the raw text of the top-level string member spelled exactly key, in a document
 * cJSON already accepted whose members are all scalars. 1 found, 0 not found, -1 if the
 * text is not laid out that way. This lets the snapshot stay a span of the body. */
static int raw_member(const char *p, size_t n, const char *key, struct cn_str *val)
{
	size_t i = 0, kl = strlen(key);

	if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) /* cJSON skips a UTF-8 BOM */
		i = 3;
	i = raw_ws(p, n, i);
	if (i == n || p[i] != '{')
		return -1;
	i = raw_ws(p, n, i + 1);
	while (i < n && p[i] == '"') {
		size_t ks = i + 1, ke = raw_string_end(p, n, i), vs;
		if (ke == SIZE_MAX)
			return -1;
		i = raw_ws(p, n, ke);
		if (i == n || p[i] != ':')
			return -1;
		i = raw_ws(p, n, i + 1);
		vs = i;
		if (i < n && p[i] == '"') {
			i = raw_string_end(p, n, i);
			if (i == SIZE_MAX)
				return -1;
			if (ke - 1 - ks == kl && memcmp(p + ks, key, kl) == 0) {
				*val = (struct cn_str){ p + vs + 1, i - vs - 2 };
				return 1;
			}
		} else {
			while (i < n && p[i] != ',' && p[i] != '}' && (unsigned char)p[i] > 0x20) {
				if (p[i] == '{' || p[i] == '[')
					return -1;
				i++;
			}
		}
		i = raw_ws(p, n, i);
		if (i < n && p[i] == ',')
			i = raw_ws(p, n, i + 1);
	}
	return 0;
}

static int json_snapshot(const uint8_t *body, size_t len, size_t want_len,
			 struct cn_camevent *ev, char *err, size_t errcap)
{
	struct cn_str s;
	uint8_t chunk[3072];
	size_t total = 0;
	int rc = raw_member((const char *)body, len, "snapshot", &s);

	if (rc <= 0)
		return cn_fail(CN_E_MALFORMED, err, errcap,
			       "JSON push member name 'snapshot' must be written without escapes");
	if (memchr(s.p, '\\', s.len) || s.len != want_len)
		return cn_fail(CN_E_MALFORMED, err, errcap,
			       "JSON push 'snapshot' must be plain base64 without JSON escapes");
	if (s.len == 0)
		return cn_fail(CN_E_MALFORMED, err, errcap, "JSON push 'snapshot' is empty");
	if (s.len % 4 || (s.len > 2 && memchr(s.p, '=', s.len - 2)))
		return cn_fail(CN_E_MALFORMED, err, errcap,
			       "JSON push 'snapshot' is not padded base64 (RFC 4648 section 4)");
	/* Decoded a chunk at a time only to validate it and look at the first bytes: the
	 * caller decodes for real when it stores the picture. */
	for (size_t off = 0; off < s.len;) {
		size_t n = s.len - off, got;
		if (n > sizeof(chunk) / 3 * 4)
			n = sizeof(chunk) / 3 * 4;
		if (cn_base64_decode(CN_B64_STD, s.p + off, n, chunk, sizeof(chunk), &got) < 0)
			return cn_fail(CN_E_MALFORMED, err, errcap,
				       "JSON push 'snapshot' is not valid base64 (RFC 4648 section 4, padded)");
		if (off == 0 && !is_jpeg(chunk, got))
			return cn_fail(CN_E_MALFORMED, err, errcap,
				       "JSON push 'snapshot' is not a JPEG (no FF D8 FF at the start)");
		total += got;
		off += n;
	}
	ev->snapshot_kind = CN_CAMEV_SNAP_BASE64;
	ev->snapshot = s;
	ev->snapshot_bytes = total;
	return 0;
}

static const char *const json_members[] = {
	"camera", "type", "time", "state", "region", "target", "plate", "country",
	"confidence", "vehicle_type", "direction", "description", "snapshot",
};

/* 1 present, 0 absent, <0 wrong type. */
static int json_str(const cJSON *root, const char *key, struct cn_str *out, char *err,
		    size_t errcap)
{
	int rc = cn_json_get_str(root, key, out);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap, "JSON push '%s' must be a string", key);
	return 1;
}

static bool custom_type_ok(const char *s, size_t n)
{
	bool dot = false;

	if (n == 0 || n >= sizeof(((struct cn_camevent *)0)->type_name) || s[0] < 'a' ||
	    s[0] > 'z' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (s[i + 1] == '.')
				return false;
			dot = true;
		} else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
			return false;
		}
	}
	return dot;
}

static int parse_json(const uint8_t *body, size_t len, struct cn_camevent *ev, char *err,
		      size_t errcap)
{
	static const struct {
		const char *key;
		size_t off, cap;
		enum cls cls;
	} strs[] = {
#define S(k, m, cls) { k, offsetof(struct cn_camevent, m), \
		       sizeof(((struct cn_camevent *)0)->m), cls }
		S("region", region, CLS_TEXT),
		S("target", target, CLS_WORD),
		S("plate", plate, CLS_TEXT),
		S("country", country, CLS_COUNTRY),
		S("vehicle_type", vehicle_type, CLS_WORD),
		S("direction", direction, CLS_DIRECTION),
		S("description", description, CLS_TEXT_ML),
#undef S
	};
	cJSON *root = NULL;
	struct cn_str s;
	char what[48], q[48];
	int64_t conf;
	size_t i;
	int rc;

	rc = cn_json_parse((const char *)body, len, CN_CAMEVENT_MAX_BODY, CN_CAMEVENT_MAX_JSON_DEPTH,
			   &root);
	if (rc == CN_E_TOO_BIG)
		return cn_fail(CN_E_TOO_BIG, err, errcap, "JSON push is larger than %d bytes",
			       CN_CAMEVENT_MAX_BODY);
	if (rc < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap,
			       "JSON push is not one JSON document (syntax, nesting deeper than %d, or a repeated key)",
			       CN_CAMEVENT_MAX_JSON_DEPTH);
	if (!cJSON_IsObject(root)) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "JSON push is not a JSON object");
		goto out_free_root;
	}
	for (const cJSON *c = root->child; c; c = c->next) {
		for (i = 0; i < sizeof(json_members) / sizeof(*json_members); i++)
			if (strcmp(c->string, json_members[i]) == 0)
				break;
		if (i == sizeof(json_members) / sizeof(*json_members)) {
			rc = cn_fail(CN_E_MALFORMED, err, errcap, "JSON push has unknown member '%s'",
				     show(c->string, strlen(c->string), q, sizeof(q)));
			goto out_free_root;
		}
	}
	cn_strlcpy(ev->source_format, "json", sizeof(ev->source_format));
	ev->channel = -1;

	if ((rc = json_str(root, "camera", &s, err, errcap)) <= 0) {
		if (rc == 0)
			rc = cn_fail(CN_E_MALFORMED, err, errcap, "JSON push has no 'camera'");
		goto out_free_root;
	}
	if ((rc = put_str(ev->camera, sizeof(ev->camera), s.p, s.len, CLS_ID, false,
			  "JSON push 'camera'", err, errcap)) < 0)
		goto out_free_root;

	if ((rc = json_str(root, "type", &s, err, errcap)) <= 0) {
		if (rc == 0)
			rc = cn_fail(CN_E_MALFORMED, err, errcap, "JSON push has no 'type'");
		goto out_free_root;
	}
	for (i = 0; i < sizeof(type_names) / sizeof(*type_names); i++)
		if (cn_str_eq_cstr(s, type_names[i]))
			break;
	if (i < sizeof(type_names) / sizeof(*type_names)) {
		set_type(ev, (enum cn_camevent_type)i);
	} else if (custom_type_ok(s.p, s.len)) {
		ev->type = CN_CAMEV_CUSTOM;
		cn_str_copy(ev->type_name, sizeof(ev->type_name), s);
	} else {
		rc = cn_fail(CN_E_MALFORMED, err, errcap,
			     "JSON push has unknown type '%s' (motion, line_crossing, intrusion, video_loss, tamper, anpr, or a dotted custom name like vendor.event, at most 47 chars)",
			     show(s.p, s.len, q, sizeof(q)));
		goto out_free_root;
	}

	if ((rc = json_str(root, "time", &s, err, errcap)) <= 0) {
		if (rc == 0)
			rc = cn_fail(CN_E_MALFORMED, err, errcap, "JSON push has no 'time'");
		goto out_free_root;
	}
	/* Strict RFC 3339 here (the camera leniencies of parse_time are for XML only); then
	 * parse_time reads the offset. */
	if (cn_time_parse_rfc3339(s.p, s.len, &ev->utc_ms) < 0 || parse_time(s.p, s.len, true, ev) < 0) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap,
			     "JSON push 'time' '%s' is not an RFC 3339 date-time with an offset",
			     show(s.p, s.len, q, sizeof(q)));
		goto out_free_root;
	}

	ev->active = true;
	if ((rc = json_str(root, "state", &s, err, errcap)) < 0)
		goto out_free_root;
	if (rc > 0) {
		if (cn_str_eq_cstr(s, "inactive")) {
			ev->active = false;
		} else if (!cn_str_eq_cstr(s, "active")) {
			rc = cn_fail(CN_E_MALFORMED, err, errcap,
				     "JSON push 'state' must be 'active' or 'inactive', got '%s'",
				     show(s.p, s.len, q, sizeof(q)));
			goto out_free_root;
		}
	}
	for (i = 0; i < sizeof(strs) / sizeof(*strs); i++) {
		if ((rc = json_str(root, strs[i].key, &s, err, errcap)) < 0)
			goto out_free_root;
		if (rc == 0)
			continue;
		snprintf(what, sizeof(what), "JSON push '%s'", strs[i].key);
		if ((rc = put_str((char *)ev + strs[i].off, strs[i].cap, s.p, s.len, strs[i].cls,
				  false, what, err, errcap)) < 0)
			goto out_free_root;
	}
	ev->confidence = -1;
	rc = cn_json_get_i64(root, "confidence", 0, 100, &conf);
	if (rc == 0) {
		ev->confidence = (int)conf;
	} else if (rc != -ENOENT) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap,
			     "JSON push 'confidence' must be an integer 0..100");
		goto out_free_root;
	}
	if (ev->type == CN_CAMEV_ANPR && !ev->plate[0]) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "JSON push of type anpr has no 'plate'");
		goto out_free_root;
	}
	if ((rc = json_str(root, "snapshot", &s, err, errcap)) < 0)
		goto out_free_root;
	rc = rc > 0 ? json_snapshot(body, len, s.len, ev, err, errcap) : 0;
out_free_root:
	cJSON_Delete(root);
	return rc;
}

/* ---- entry points ---- */

int cn_camevent_parse(const char *content_type, const uint8_t *body, size_t len,
		      struct cn_camevent *out, char *err, size_t errcap)
{
	struct media m;
	size_t ctlen;
	char q[48];
	int rc;

	memset(out, 0, sizeof(*out));
	if (err && errcap)
		err[0] = '\0';
	if (len > CN_CAMEVENT_MAX_BODY) {
		rc = cn_fail(CN_E_TOO_BIG, err, errcap, "body is %zu bytes, limit %d", len,
			     CN_CAMEVENT_MAX_BODY);
		goto out;
	}
	if (!content_type || !content_type[0]) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "request has no Content-Type");
		goto out;
	}
	ctlen = strnlen(content_type, CN_CAMEVENT_MAX_CONTENT_TYPE + 1);
	if (ctlen > CN_CAMEVENT_MAX_CONTENT_TYPE) {
		rc = cn_fail(CN_E_TOO_BIG, err, errcap, "Content-Type is longer than %d bytes",
			     CN_CAMEVENT_MAX_CONTENT_TYPE);
		goto out;
	}
	rc = parse_header_value((struct cn_str){ content_type, ctlen }, false, &m, "Content-Type",
				err, errcap);
	if (rc < 0)
		goto out;
	if (len == 0 || !body) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "body is empty");
		goto out;
	}
	if (strcmp(m.type, "application/xml") == 0 || strcmp(m.type, "text/xml") == 0) {
		rc = parse_xml(body, len, out, err, errcap);
	} else if (strcmp(m.type, "multipart/form-data") == 0 ||
		   strcmp(m.type, "multipart/mixed") == 0) {
		if (!m.has_boundary)
			rc = cn_fail(CN_E_MALFORMED, err, errcap,
				     "multipart Content-Type has no boundary parameter");
		else
			rc = parse_multipart(m.boundary, body, len, out, err, errcap);
	} else if (strcmp(m.type, "application/json") == 0) {
		if (m.charset[0] && strcmp(m.charset, "utf-8") != 0)
			rc = cn_fail(CN_E_MALFORMED, err, errcap,
				     "JSON push charset must be utf-8, got '%s'",
				     show(m.charset, strlen(m.charset), q, sizeof(q)));
		else
			rc = parse_json(body, len, out, err, errcap);
	} else {
		rc = cn_fail(CN_E_MALFORMED, err, errcap,
			     "unsupported Content-Type '%s' (application/xml, text/xml, multipart/form-data, multipart/mixed, application/json)",
			     show(m.type, strlen(m.type), q, sizeof(q)));
	}
out:
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* "2026-11-21T10:15:00.000+01:00": the UTC instant shown at the camera's offset. */
static int format_local(int64_t utc_ms, int off_min, char *out, size_t cap)
{
	int a = off_min < 0 ? -off_min : off_min;
	int rc = cn_time_format_rfc3339(utc_ms + (int64_t)off_min * 60000, out, cap);

	if (rc < 0)
		return rc;
	if (cap < 30)
		return -ENOSPC;
	snprintf(out + 23, cap - 23, "%c%02d:%02d", off_min < 0 ? '-' : '+', a / 60, a % 60);
	return 0;
}

static bool add_opt(cJSON *obj, const char *key, const char *val)
{
	return !val[0] || cJSON_AddStringToObject(obj, key, val);
}

int cn_camevent_to_json(const struct cn_camevent *ev, cJSON **out)
{
	char ts[40], lt[40];
	cJSON *root, *src;
	int rc;

	*out = NULL;
	if (!ev->type_name[0] || !ev->camera[0] || !ev->source_format[0] ||
	    ev->confidence < -1 || ev->confidence > 100)
		return -EINVAL;
	if ((rc = cn_time_format_rfc3339(ev->utc_ms, ts, sizeof(ts))) < 0)
		return rc;
	if (ev->offset_known && (ev->utc_offset_min < -1439 || ev->utc_offset_min > 1439))
		return -EINVAL;
	if (ev->offset_known && (rc = format_local(ev->utc_ms, ev->utc_offset_min, lt, sizeof(lt))) < 0)
		return rc;
	root = cJSON_CreateObject();
	if (!root)
		return -ENOMEM;
	rc = -ENOMEM;
	if (!cJSON_AddStringToObject(root, "camera", ev->camera) ||
	    !cJSON_AddStringToObject(root, "type", ev->type_name) ||
	    !cJSON_AddStringToObject(root, "time", ts))
		goto out_free_root;
	if (ev->offset_known && (!cJSON_AddStringToObject(root, "local_time", lt) ||
				 !cn_json_add_i64(root, "utc_offset_min", ev->utc_offset_min)))
		goto out_free_root;
	if (!cJSON_AddStringToObject(root, "state", ev->active ? "active" : "inactive") ||
	    !add_opt(root, "variant", ev->variant) || !add_opt(root, "region", ev->region) ||
	    !add_opt(root, "target", ev->target) || !add_opt(root, "plate", ev->plate) ||
	    !add_opt(root, "country", ev->country))
		goto out_free_root;
	if (ev->confidence >= 0 && !cn_json_add_i64(root, "confidence", ev->confidence))
		goto out_free_root;
	if (!add_opt(root, "vehicle_type", ev->vehicle_type) ||
	    !add_opt(root, "direction", ev->direction) ||
	    !add_opt(root, "description", ev->description))
		goto out_free_root;
	src = cJSON_AddObjectToObject(root, "source");
	if (!src || !cJSON_AddStringToObject(src, "format", ev->source_format) ||
	    !add_opt(src, "event_type", ev->vendor_type) ||
	    !add_opt(src, "device_ip", ev->device_ip) || !add_opt(src, "device_mac", ev->device_mac))
		goto out_free_root;
	if (ev->channel >= 0 && !cn_json_add_i64(src, "channel", ev->channel))
		goto out_free_root;
	if (ev->post_count > 0 && !cn_json_add_i64(src, "post_count", ev->post_count))
		goto out_free_root;
	*out = root;
	return 0;
out_free_root:
	cJSON_Delete(root);
	return rc;
}

int cn_camevent_set_offset(struct cn_camevent *ev, int offset_min)
{
	int64_t ms;

	if (ev->offset_known)
		return -EEXIST;
	if (offset_min < -1439 || offset_min > 1439)
		return -EINVAL;
	ms = ev->utc_ms - (int64_t)offset_min * 60000;
	if (ms < CN_TIME_MIN_S * 1000 || ms > CN_TIME_MAX_S * 1000 + 999)
		return -ERANGE;
	ev->utc_ms = ms;
	ev->utc_offset_min = offset_min;
	ev->offset_known = true;
	return 0;
}

int cn_camevent_snapshot_jpeg(const struct cn_camevent *ev, uint8_t *buf, size_t cap,
			      struct cn_str *jpeg)
{
	size_t n;
	int rc;

	switch (ev->snapshot_kind) {
	case CN_CAMEV_SNAP_JPEG:
		*jpeg = ev->snapshot;
		return 0;
	case CN_CAMEV_SNAP_BASE64:
		if (!buf || cap < ev->snapshot_bytes)
			return -ENOSPC;
		rc = cn_base64_decode(CN_B64_STD, ev->snapshot.p, ev->snapshot.len, buf, cap, &n);
		if (rc < 0)
			return rc;
		*jpeg = (struct cn_str){ (const char *)buf, n };
		return 0;
	default:
		return -ENOENT;
	}
}
