/* cn_http.c: one lws protocol per listener; requests are routed once the body is complete. */
#include "cn_http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cn_err.h"
#include "cn_json.h"
#include "cn_log.h"
#include "cn_metrics.h"

#define MAX_ROUTES 128
#define RESP_MAX (64 * 1024 * 1024)
#define WRITE_CHUNK 16384
#define WS_PROTOCOL "canopy-ws"

struct route {
	enum cn_http_method method;
	char path[256];
	size_t len;
	bool prefix;
	cn_http_handler fn;
	void *arg;
	bool ws;                      /* upgrades to WebSocket are accepted here */
	void (*free_arg)(void *arg); /* ws routes own arg */
};

struct cn_http_server {
	char name[32];
	struct lws_vhost *vhost;
	/* [0] HTTP, [1] WebSocket (the vhost's default for upgrades), [2] terminator */
	struct lws_protocols protocols[3];
	lws_callback_function *ws_cb;
	char *tls_files[3]; /* lws may keep pointers to the paths it was given */
	size_t max_body;
	struct route routes[MAX_ROUTES];
	size_t nroutes;
	uint64_t by_class[6]; /* 1xx..5xx; [0] unused */
	uint64_t too_big;
	uint64_t next_id;
	GHashTable *deferred; /* request id -> struct lws * still waiting for an answer */
};

/* Per-connection state; lws zeroes it and frees it, we free what it points to. */
struct http_conn {
	enum cn_http_method method;
	char path[CN_HTTP_MAX_PATH];
	struct cn_buf body;
	bool body_active;
	bool body_too_big;
	bool chunked; /* Transfer-Encoding without Content-Length: refused with 411 */
	struct cn_buf out;
	size_t sent;
	int out_fd;          /* body streamed from a file when >= 0 */
	int64_t out_fd_len;
	bool responding;
	uint64_t id;
	bool deferred;
	struct cn_http_resp *pending; /* a deferred answer, sent at the next writable event */
	struct cn_http_server *server;
};

static const char *const method_names[] = { "GET",   "HEAD",   "POST",    "PUT",
					    "PATCH", "DELETE", "OPTIONS", "OTHER" };

const char *cn_http_method_name(enum cn_http_method m)
{
	return (unsigned)m <= CN_HTTP_OTHER ? method_names[m] : "OTHER";
}

static enum cn_http_method method_of(struct lws *wsi)
{
	char *uri;
	int len;

	switch (lws_http_get_uri_and_method(wsi, &uri, &len)) {
	case LWSHUMETH_GET: return CN_HTTP_GET;
	case LWSHUMETH_HEAD: return CN_HTTP_HEAD;
	case LWSHUMETH_POST: return CN_HTTP_POST;
	case LWSHUMETH_PUT: return CN_HTTP_PUT;
	case LWSHUMETH_PATCH: return CN_HTTP_PATCH;
	case LWSHUMETH_DELETE: return CN_HTTP_DELETE;
	case LWSHUMETH_OPTIONS: return CN_HTTP_OPTIONS;
	default: return CN_HTTP_OTHER;
	}
}

int cn_http_resp_header(struct cn_http_resp *resp, const char *name, const char *value)
{
	if (resp->nhdr == CN_HTTP_MAX_HEADERS)
		return -ENOSPC;
	if (cn_strlcpy(resp->hdr[resp->nhdr].name, name, sizeof(resp->hdr[0].name)) < 0 ||
	    cn_strlcpy(resp->hdr[resp->nhdr].value, value, sizeof(resp->hdr[0].value)) < 0)
		return -ENOSPC;
	resp->nhdr++;
	return 0;
}

int cn_http_problem(struct cn_http_resp *resp, int status, const char *title,
		    const char *detail_fmt, ...)
{
	char detail[1024];
	cJSON *o = cJSON_CreateObject();
	va_list ap;
	int rc = -ENOMEM;

	va_start(ap, detail_fmt);
	vsnprintf(detail, sizeof(detail), detail_fmt, ap);
	va_end(ap);
	resp->status = status;
	cn_strlcpy(resp->content_type, "application/problem+json", sizeof(resp->content_type));
	cn_buf_reset(&resp->body);
	if (o && cJSON_AddStringToObject(o, "type", "about:blank") &&
	    cJSON_AddStringToObject(o, "title", title) && cJSON_AddNumberToObject(o, "status", status) &&
	    cJSON_AddStringToObject(o, "detail", detail))
		rc = cn_json_print(o, &resp->body);
	cJSON_Delete(o);
	return rc;
}

int cn_http_req_header(const struct cn_http_req *req, const char *name, char *out, size_t cap)
{
	static const struct {
		const char *name;
		enum lws_token_indexes tok;
	} known[] = {
		{ "authorization", WSI_TOKEN_HTTP_AUTHORIZATION },
		{ "content-type", WSI_TOKEN_HTTP_CONTENT_TYPE },
		{ "content-length", WSI_TOKEN_HTTP_CONTENT_LENGTH },
		{ "if-match", WSI_TOKEN_HTTP_IF_MATCH },
		{ "if-none-match", WSI_TOKEN_HTTP_IF_NONE_MATCH },
		{ "host", WSI_TOKEN_HOST },
		{ "user-agent", WSI_TOKEN_HTTP_USER_AGENT },
		{ "accept", WSI_TOKEN_HTTP_ACCEPT },
		{ "origin", WSI_TOKEN_ORIGIN },
		{ "x-forwarded-for", WSI_TOKEN_X_FORWARDED_FOR },
	};
	struct lws *wsi = req->conn;
	char cname[80];
	int len;

	if (cap == 0 || cap > INT32_MAX)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcmp(known[i].name, name) != 0)
			continue;
		len = lws_hdr_total_length(wsi, known[i].tok);
		if (len <= 0)
			return -ENOENT;
		if ((size_t)len >= cap)
			return -ENOSPC;
		return lws_hdr_copy(wsi, out, (int)cap, known[i].tok) < 0 ? -ENOSPC : 0;
	}
	if (snprintf(cname, sizeof(cname), "%s:", name) >= (int)sizeof(cname))
		return -EINVAL;
	len = lws_hdr_custom_length(wsi, cname, (int)strlen(cname));
	if (len < 0)
		return -ENOENT;
	if ((size_t)len >= cap)
		return -ENOSPC;
	return lws_hdr_custom_copy(wsi, out, (int)cap, cname, (int)strlen(cname)) < 0 ? -ENOSPC : 0;
}

int cn_http_query_get(const struct cn_http_req *req, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name), i = 0;
	struct cn_str q = req->query;

	/* req->query holds lws's decoded "name=value" fragments separated by NUL bytes. */
	while (i < q.len) {
		const char *nul = memchr(q.p + i, '\0', q.len - i);
		size_t end = nul ? (size_t)(nul - q.p) : q.len;
		if (end - i > nlen && memcmp(q.p + i, name, nlen) == 0 && q.p[i + nlen] == '=')
			return cn_str_copy(out, cap, (struct cn_str){ q.p + i + nlen + 1, end - i - nlen - 1 }) < 0
				       ? -ENOSPC
				       : 0;
		i = end + 1;
	}
	return -ENOENT;
}

static bool route_matches(const struct route *r, struct cn_str path)
{
	return r->prefix ? cn_str_has_prefix(path, r->path)
			 : cn_str_eq(path, (struct cn_str){ r->path, r->len });
}

static const struct route *find_route(struct cn_http_server *s, enum cn_http_method m,
				      struct cn_str path, bool *path_known)
{
	const struct route *best = NULL;

	*path_known = false;
	for (size_t i = 0; i < s->nroutes; i++) {
		const struct route *r = &s->routes[i];
		if (!route_matches(r, path))
			continue;
		*path_known = true;
		bool mok = r->method == m || (m == CN_HTTP_HEAD && r->method == CN_HTTP_GET);
		if (mok && (!best || r->len >= best->len))
			best = r;
	}
	return best;
}

/* "GET, POST" for the routes that match path, for a 405's Allow header. */
static void allowed_methods(struct cn_http_server *s, struct cn_str path, char *out, size_t cap)
{
	bool seen[CN_HTTP_OTHER + 1] = { false };
	size_t pos = 0;

	for (size_t i = 0; i < s->nroutes; i++) {
		if (route_matches(&s->routes[i], path))
			seen[s->routes[i].method] = true;
	}
	out[0] = '\0';
	for (int m = 0; m < CN_HTTP_OTHER; m++) {
		if (!seen[m])
			continue;
		int w = snprintf(out + pos, cap - pos, "%s%s", pos ? ", " : "",
				 cn_http_method_name((enum cn_http_method)m));
		if (w < 0 || (size_t)w >= cap - pos)
			break;
		pos += (size_t)w;
	}
}

/* Serialises status line, headers and body into c->out and asks lws for a write slot. */
static int start_response(struct lws *wsi, struct http_conn *c, struct cn_http_server *s,
			  struct cn_http_resp *resp)
{
	uint8_t hdrs[LWS_PRE + 4096];
	uint8_t *start = hdrs + LWS_PRE, *p = start, *end = hdrs + sizeof(hdrs) - 1;
	size_t body_len = c->method == CN_HTTP_HEAD ? 0 : resp->body.len;
	uint64_t content_len = resp->body_fd >= 0 ? (uint64_t)resp->body_len : resp->body.len;

	if (resp->status >= 100 && resp->status < 600)
		s->by_class[resp->status / 100]++;
	if (lws_add_http_common_headers(wsi, (unsigned)resp->status,
					resp->content_type[0] ? resp->content_type : NULL,
					content_len, &p, end))
		return -1;
	for (int i = 0; i < resp->nhdr; i++) {
		char name[40];
		snprintf(name, sizeof(name), "%s:", resp->hdr[i].name);
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
						(const unsigned char *)resp->hdr[i].value,
						(int)strlen(resp->hdr[i].value), &p, end))
			return -1;
	}
	/* no-store unless the handler chose its own caching (the console's files: no-cache
	 * with an ETag, so browsers revalidate with a cheap 304). */
	bool own_cache = false;
	for (int i = 0; i < resp->nhdr; i++)
		own_cache |= strcasecmp(resp->hdr[i].name, "cache-control") == 0;
	if (!own_cache &&
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	cn_buf_free(&c->out);
	c->out = resp->body;
	c->out.len = body_len;
	cn_buf_init(&resp->body, 0);
	c->sent = 0;
	if (c->out_fd >= 0)
		close(c->out_fd);
	c->out_fd = resp->body_fd;
	c->out_fd_len = c->method == CN_HTTP_HEAD ? 0 : resp->body_len;
	resp->body_fd = -1;
	c->responding = true;
	lws_callback_on_writable(wsi);
	return 0;
}

static int dispatch(struct lws *wsi, struct http_conn *c, struct cn_http_server *s)
{
	struct cn_http_resp resp;
	struct cn_http_req req;
	char query[2048];
	const struct route *r;
	bool known;
	int qlen, rc;

	cn_http_resp_init(&resp);
	memset(&req, 0, sizeof(req));
	req.method = c->method;
	req.server = s;
	req.id = c->id = ++s->next_id;
	req.path = cn_str_from(c->path);
	/* lws keeps each argument url-decoded in its own fragment; joining them with '&'
	 * would confuse a value holding an encoded '&', so they are joined with NUL. */
	size_t qpos = 0;
	for (int frag = 0; qpos < sizeof(query); frag++) {
		qlen = lws_hdr_copy_fragment(wsi, query + qpos, (int)(sizeof(query) - qpos),
					     WSI_TOKEN_HTTP_URI_ARGS, frag);
		if (qlen < 0)
			break;
		qpos += (size_t)qlen + 1;
	}
	req.query = (struct cn_str){ query, qpos ? qpos - 1 : 0 };
	req.body = (struct cn_str){ c->body.data ? c->body.data : "", c->body.len };
	req.conn = wsi;
	lws_get_peer_simple(wsi, req.peer, sizeof(req.peer));

	r = find_route(s, c->method, req.path, &known);
	if (c->chunked) {
		cn_http_problem(&resp, 411, "Length Required",
				"chunked request bodies are not accepted; send Content-Length");
		cn_http_resp_header(&resp, "connection", "close");
	} else if (c->body_too_big) {
		s->too_big++;
		cn_http_problem(&resp, 413, "Payload Too Large", "request body exceeds %zu bytes",
				s->max_body);
	} else if (!r && known) {
		char allow[128] = "";
		allowed_methods(s, req.path, allow, sizeof(allow));
		cn_http_problem(&resp, 405, "Method Not Allowed", "%s is not allowed on %s (allowed: %s)",
				cn_http_method_name(c->method), c->path, allow);
		cn_http_resp_header(&resp, "allow", allow);
	} else if (!r) {
		cn_http_problem(&resp, 404, "Not Found", "no resource at %s", c->path);
	} else {
		resp.status = 200;
		rc = r->fn(&req, &resp, r->arg);
		if (rc == CN_HTTP_DEFER) {
			/* The answer comes from cn_http_respond; lws must not time us out. */
			c->deferred = true;
			g_hash_table_insert(s->deferred, &c->id, wsi);
			lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
			cn_buf_free(&resp.body);
			if (resp.body_fd >= 0)
				close(resp.body_fd);
			return 0;
		}
		if (rc < 0) {
			cn_log_error("http", "%s %s failed: %s", cn_http_method_name(c->method),
				     c->path, cn_strerror(rc));
			resp.nhdr = 0;
			cn_http_problem(&resp, 500, "Internal Server Error", "%s",
					cn_strerror(rc));
		}
	}
	cn_log_debug("http", "%s %s %s -> %d", req.peer, cn_http_method_name(c->method), c->path,
		     resp.status);
	rc = start_response(wsi, c, s, &resp);
	cn_buf_free(&resp.body);
	return rc;
}

static void conn_free(struct http_conn *c)
{
	/* lws hands us zeroed per-connection memory that never saw LWS_CALLBACK_HTTP (after a
	 * keep-alive transaction, or an upgrade): its out_fd 0 is not ours to close. */
	if (!c || !c->server)
		return;
	cn_buf_free(&c->body);
	cn_buf_free(&c->out);
	if (c->out_fd >= 0)
		close(c->out_fd);
	c->out_fd = -1;
	if (c->deferred && c->server)
		g_hash_table_remove(c->server->deferred, &c->id);
	c->deferred = false;
	if (c->pending) {
		cn_buf_free(&c->pending->body);
		if (c->pending->body_fd >= 0)
			close(c->pending->body_fd);
		free(c->pending);
		c->pending = NULL;
	}
	c->responding = false;
}

void cn_http_resp_init(struct cn_http_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	resp->status = 200;
	resp->body_fd = -1;
	cn_buf_init(&resp->body, RESP_MAX);
}

int cn_http_respond(struct cn_http_server *s, uint64_t id, struct cn_http_resp *resp)
{
	struct lws *wsi = g_hash_table_lookup(s->deferred, &id);
	int rc;

	if (!wsi) {
		if (resp->body_fd >= 0)
			close(resp->body_fd);
		resp->body_fd = -1;
		cn_buf_free(&resp->body);
		return -ENOENT;
	}
	struct http_conn *c = lws_wsi_user(wsi);
	g_hash_table_remove(s->deferred, &id);
	c->deferred = false;
	/* lws wants writes from its writable callback; park the answer until then. */
	c->pending = malloc(sizeof(*c->pending));
	if (!c->pending) {
		rc = -ENOMEM;
		cn_buf_free(&resp->body);
		if (resp->body_fd >= 0)
			close(resp->body_fd);
		resp->body_fd = -1;
		lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
		return rc;
	}
	*c->pending = *resp;
	cn_buf_init(&resp->body, 0);
	resp->body_fd = -1;
	lws_callback_on_writable(wsi);
	return 0;
}

/* A plain request on a WebSocket route. */
static int upgrade_required(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	(void)arg;
	cn_http_resp_header(resp, "upgrade", "websocket");
	return cn_http_problem(resp, 426, "Upgrade Required",
			       "%.*s is a WebSocket endpoint: send a GET with Upgrade: websocket",
			       (int)req->path.len, req->path.p);
}

/* lws asks before upgrading: only WebSocket routes take WebSocket upgrades. Returning -1
 * closes the connection; answering with a response here instead is an lws path we avoid. */
static int confirm_upgrade(struct lws *wsi, struct cn_http_server *s, const char *upgrade)
{
	char path[CN_HTTP_MAX_PATH], peer[64] = "";
	int n;

	if (!upgrade || strcasecmp(upgrade, "websocket") != 0)
		return 0; /* h2c and the like: lws's business, as before */
	n = lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);
	for (size_t i = 0; n > 0 && i < s->nroutes; i++) {
		struct route *r = &s->routes[i];
		if (r->ws && cn_str_eq(cn_str_from(path), (struct cn_str){ r->path, r->len })) {
			lws_set_opaque_user_data(wsi, r->arg);
			return 0;
		}
	}
	lws_get_peer_simple(wsi, peer, sizeof(peer));
	cn_log_debug("http", "%s: refused websocket upgrade from %s on %s", s->name, peer,
		     n > 0 ? path : "(not a GET)");
	return -1;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	struct http_conn *c = user;
	const struct lws_protocols *proto = lws_get_protocol(wsi);
	struct cn_http_server *s = proto ? proto->user : NULL;

	switch (reason) {
	case LWS_CALLBACK_HTTP: {
		char cl[32] = "";
		if (!s || !c)
			return -1;
		memset(c, 0, sizeof(*c));
		c->out_fd = -1;
		c->server = s;
		c->method = method_of(wsi);
		if (len >= sizeof(c->path)) {
			struct cn_http_resp resp;
			cn_http_resp_init(&resp);
			cn_http_problem(&resp, 414, "URI Too Long", "path exceeds %zu bytes",
					sizeof(c->path) - 1);
			int rc = start_response(wsi, c, s, &resp);
			cn_buf_free(&resp.body);
			return rc;
		}
		memcpy(c->path, in, len);
		c->path[len] = '\0';
		cn_buf_init(&c->body, s->max_body);
		if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 ||
		    lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
			int64_t n = 0;
			bool chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;

			if (cl[0] && cn_str_to_i64(cn_str_from(cl), 0, INT64_MAX, &n) == 0 &&
			    (uint64_t)n > s->max_body)
				c->body_too_big = true;
			/* "Content-Length: 0" (requests sends it on DELETE) may bring no body
			 * callbacks at all: answer now; a completion that still comes is
			 * ignored (body_active stays false). */
			if (!chunked && cl[0] && n == 0 && !c->body_too_big)
				return dispatch(wsi, c, s);
			/* lws 4.1 does not decode chunked request bodies: refuse clearly
			 * rather than hang up. */
			if (chunked && !cl[0]) {
				c->chunked = true;
				return dispatch(wsi, c, s);
			}
			c->body_active = true;
			return 0; /* wait for LWS_CALLBACK_HTTP_BODY_COMPLETION */
		}
		return dispatch(wsi, c, s);
	}
	case LWS_CALLBACK_HTTP_BODY:
		if (!c || c->body_too_big || !c->body_active)
			return 0;
		if (cn_buf_append(&c->body, in, len) < 0)
			c->body_too_big = true;
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (!c || !s)
			return -1;
		if (!c->body_active)
			return 0; /* answered already (empty or refused body) */
		c->body_active = false;
		return dispatch(wsi, c, s);
	case LWS_CALLBACK_HTTP_WRITEABLE: {
		uint8_t buf[LWS_PRE + WRITE_CHUNK];
		size_t n;
		if (c && c->pending) {
			struct cn_http_resp *r = c->pending;
			c->pending = NULL;
			int rc = start_response(wsi, c, s, r);
			cn_buf_free(&r->body);
			if (r->body_fd >= 0)
				close(r->body_fd);
			free(r);
			return rc;
		}
		if (!c || !c->responding)
			return 0;
		size_t total = c->out_fd >= 0 ? (size_t)c->out_fd_len : c->out.len;
		n = total - c->sent;
		if (n > WRITE_CHUNK)
			n = WRITE_CHUNK;
		bool final = c->sent + n == total;
		if (n && c->out_fd >= 0) {
			/* A page-cache read of one chunk per writable event: brief, bounded. */
			ssize_t got = pread(c->out_fd, buf + LWS_PRE, n, (off_t)c->sent);
			if (got != (ssize_t)n)
				return -1;
		} else if (n) {
			memcpy(buf + LWS_PRE, c->out.data + c->sent, n);
		}
		if (lws_write(wsi, buf + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
		    (int)n)
			return -1;
		c->sent += n;
		if (!final) {
			lws_callback_on_writable(wsi);
			return 0;
		}
		conn_free(c);
		if (lws_http_transaction_completed(wsi))
			return -1;
		return 0;
	}
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		conn_free(c);
		return 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return s ? confirm_upgrade(wsi, s, in) : -1;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* A WebSocket client naming this protocol ("http") as its subprotocol. */
		return -1;
	case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
		/* lws takes our return as the verdict on a client certificate (0 = accept, even
		 * when OpenSSL refused it): keep OpenSSL's, which len carries. */
		return len ? 0 : 1;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* The WebSocket protocol's callback: passes on to the one cn_http_route_ws named. lws binds
 * a new connection to the vhost's default protocol (this one) until its first request is
 * routed, so the upgrade check for a connection's first request arrives here; later
 * requests on a kept-alive connection ask protocols[0]. */
static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len)
{
	const struct lws_protocols *proto = lws_get_protocol(wsi);
	struct cn_http_server *s = proto ? proto->user : NULL;

	if (reason == LWS_CALLBACK_HTTP_CONFIRM_UPGRADE)
		return s ? confirm_upgrade(wsi, s, in) : -1;
	if (s && s->ws_cb)
		return s->ws_cb(wsi, reason, user, in, len);
	return reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION ? -1 : 0;
}

/* Makes WebSocket upgrades without a subprotocol bind to protocols[1], not to "http". */
static const struct lws_protocol_vhost_options ws_default_opt = { NULL, NULL, "default", "" };
static const struct lws_protocol_vhost_options ws_pvo = { NULL, &ws_default_opt, WS_PROTOCOL, "" };

static void server_free(struct cn_http_server *s)
{
	for (size_t i = 0; i < s->nroutes; i++) {
		if (s->routes[i].free_arg)
			s->routes[i].free_arg(s->routes[i].arg);
	}
	for (int i = 0; i < 3; i++)
		g_free(s->tls_files[i]);
	g_hash_table_destroy(s->deferred);
	free(s);
}

int cn_http_listen_tls(struct cn_loop *l, const char *name, const char *iface, int port,
		       size_t max_body, const struct cn_http_tls *tls, struct cn_http_server **out)
{
	struct lws_context_creation_info info;
	struct cn_http_server *s;

	if (port <= 0 || port > 65535)
		return -EINVAL;
	if (tls && (!tls->cert_path || !tls->key_path))
		return -EINVAL;
	for (int i = 0; tls && i < 3; i++) {
		const char *f = i == 0 ? tls->cert_path : i == 1 ? tls->key_path : tls->ca_path;
		if (f && access(f, R_OK) < 0) {
			int rc = -errno;
			cn_log_error("http", "cannot read tls file '%s' for %s: %s", f, name,
				     strerror(errno));
			return rc;
		}
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	cn_strlcpy(s->name, name, sizeof(s->name));
	s->max_body = max_body;
	s->deferred = g_hash_table_new(g_int64_hash, g_int64_equal);
	s->protocols[0] = (struct lws_protocols){
		.name = "http",
		.callback = http_callback,
		.per_session_data_size = sizeof(struct http_conn),
		.rx_buffer_size = 0,
		.user = s,
	};
	/* No per-session data (cn_ws keeps its own) and small buffers: this is what every
	 * idle WebSocket costs (see cn_http.h). */
	s->protocols[1] = (struct lws_protocols){
		.name = WS_PROTOCOL,
		.callback = ws_callback,
		.per_session_data_size = 0,
		.rx_buffer_size = CN_HTTP_WS_RX_BUF,
		.tx_packet_size = CN_HTTP_WS_TX_CHUNK + 16,
		.user = s,
	};
	memset(&info, 0, sizeof(info));
	info.vhost_name = s->name;
	info.port = port;
	info.iface = iface;
	info.protocols = s->protocols;
	info.pvo = &ws_pvo;
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	if (tls) {
		s->tls_files[0] = g_strdup(tls->cert_path);
		s->tls_files[1] = g_strdup(tls->key_path);
		s->tls_files[2] = g_strdup(tls->ca_path);
		info.ssl_cert_filepath = s->tls_files[0];
		info.ssl_private_key_filepath = s->tls_files[1];
		/* Without OS CAs: lws also builds a client context for each TLS vhost, and the
		 * system bundle would cost memory for nothing. HTTP/1.1 only: the handlers and
		 * cn_ws are written for it. */
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
				LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
		info.alpn = "http/1.1";
		if (tls->ca_path) {
			info.ssl_ca_filepath = s->tls_files[2];
			info.options |= LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT |
					LWS_SERVER_OPTION_PEER_CERT_NOT_REQUIRED;
		}
	}
	s->vhost = lws_create_vhost(l->lws, &info);
	if (!s->vhost) {
		cn_log_error("http", "cannot listen on %s:%d for %s%s", iface, port, name,
			     tls ? " (address in use, or certificate and key refused)" : "");
		server_free(s);
		return tls ? -EIO : -EADDRINUSE;
	}
	cn_log_info("http", "%s listening on %s://%s:%d%s", name, tls ? "https" : "http", iface,
		    port, tls && tls->ca_path ? " (client certificates verified)" : "");
	*out = s;
	return 0;
}

int cn_http_listen(struct cn_loop *l, const char *name, const char *iface, int port,
		   size_t max_body, struct cn_http_server **out)
{
	return cn_http_listen_tls(l, name, iface, port, max_body, NULL, out);
}

int cn_http_route(struct cn_http_server *s, enum cn_http_method m, const char *path,
		  cn_http_handler fn, void *arg)
{
	struct route *r;

	if (s->nroutes == MAX_ROUTES)
		return -ENOSPC;
	r = &s->routes[s->nroutes];
	if (cn_strlcpy(r->path, path, sizeof(r->path)) < 0)
		return -ENAMETOOLONG;
	r->len = strlen(path);
	r->prefix = r->len > 1 && path[r->len - 1] == '/';
	r->method = m;
	r->fn = fn;
	r->arg = arg;
	r->ws = false;
	r->free_arg = NULL;
	s->nroutes++;
	return 0;
}

int cn_http_route_ws(struct cn_http_server *s, const char *path, lws_callback_function *ws_cb,
		     void *arg, void (*free_arg)(void *arg))
{
	size_t n = strlen(path);
	int rc;

	/* Exact paths only: a trailing '/' would make the plain route a prefix. */
	if (!ws_cb || path[0] != '/' || (n > 1 && path[n - 1] == '/') ||
	    (s->ws_cb && s->ws_cb != ws_cb))
		return -EINVAL;
	for (size_t i = 0; i < s->nroutes; i++) {
		if (s->routes[i].ws && strcmp(s->routes[i].path, path) == 0)
			return -EEXIST;
	}
	if ((rc = cn_http_route(s, CN_HTTP_GET, path, upgrade_required, arg)) < 0)
		return rc;
	s->routes[s->nroutes - 1].ws = true;
	s->routes[s->nroutes - 1].free_arg = free_arg;
	s->ws_cb = ws_cb;
	return 0;
}

int cn_http_metrics(struct cn_buf *out, void *server)
{
	struct cn_http_server *s = server;
	int rc = cn_metrics_family(out, "canopy_http_responses_total", "counter",
				   "HTTP responses sent, by listener and status class.");

	for (int i = 1; i <= 5; i++)
		rc |= cn_buf_printf(out, "canopy_http_responses_total{listener=\"%s\",code=\"%dxx\"} %llu\n",
				    s->name, i, (unsigned long long)s->by_class[i]);
	rc |= cn_metrics_family(out, "canopy_http_bodies_rejected_total", "counter",
				"Requests refused because the body exceeded the limit.");
	rc |= cn_buf_printf(out, "canopy_http_bodies_rejected_total{listener=\"%s\"} %llu\n",
			    s->name, (unsigned long long)s->too_big);
	return rc ? -ENOBUFS : 0;
}

void cn_http_close(struct cn_http_server *s)
{
	if (!s)
		return;
	/* The vhost and its connections went with the lws context (cn_loop_destroy),
	 * which may still have read our protocols table until then. */
	server_free(s);
}

void cn_http_cors(struct cn_http_resp *resp)
{
	cn_http_resp_header(resp, "access-control-allow-origin", "*");
	cn_http_resp_header(resp, "access-control-expose-headers", "Location, ETag, Link");
}

int cn_http_preflight(struct cn_http_resp *resp, const char *methods, const char *headers)
{
	resp->status = 204;
	cn_http_cors(resp);
	cn_http_resp_header(resp, "access-control-allow-methods", methods);
	cn_http_resp_header(resp, "access-control-allow-headers", headers);
	cn_http_resp_header(resp, "access-control-max-age", "600");
	return 0;
}

int cn_http_split_path(struct cn_str path, const char *prefix, char *a, size_t acap, char *b,
		       size_t bcap)
{
	size_t pre = strlen(prefix), n, al;
	const char *rest, *slash;

	if (path.len <= pre || memcmp(path.p, prefix, pre) != 0)
		return -EINVAL;
	rest = path.p + pre;
	n = path.len - pre;
	slash = memchr(rest, '/', n);
	al = slash ? (size_t)(slash - rest) : n;
	if (al == 0 || al >= acap)
		return -EINVAL;
	memcpy(a, rest, al);
	a[al] = '\0';
	b[0] = '\0';
	if (slash) {
		size_t bl = n - al - 1;

		if (bl == 0 || bl >= bcap || memchr(slash + 1, '/', bl))
			return -EINVAL;
		memcpy(b, slash + 1, bl);
		b[bl] = '\0';
	}
	return 0;
}
