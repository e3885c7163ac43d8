/* cn_http.h: HTTP/1.1 server on the loop's lws context: route table, bounded bodies, problem+json. */
#ifndef CN_HTTP_H
#define CN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cn_buf.h"
#include "cn_loop.h"

#define CN_HTTP_MAX_PATH 1024
#define CN_HTTP_MAX_HEADERS 8
/* WebSocket buffers of lws per connection (cn_ws): received payload reaches the callback in
 * pieces of at most CN_HTTP_WS_RX_BUF bytes, and that buffer lives as long as the connection,
 * so it is kept small for servers with many idle connections; writes go out in pieces of at
 * most CN_HTTP_WS_TX_CHUNK bytes. */
#define CN_HTTP_WS_RX_BUF 1024
#define CN_HTTP_WS_TX_CHUNK 16384

enum cn_http_method {
	CN_HTTP_GET,
	CN_HTTP_HEAD,
	CN_HTTP_POST,
	CN_HTTP_PUT,
	CN_HTTP_PATCH,
	CN_HTTP_DELETE,
	CN_HTTP_OPTIONS,
	CN_HTTP_OTHER,
};

/* A handler's return meaning "the response comes later, through cn_http_respond". */
#define CN_HTTP_DEFER 1

struct cn_http_req {
	enum cn_http_method method;
	struct cn_str path;  /* decoded path, no query */
	struct cn_str query; /* decoded "a=1" fragments separated by NUL bytes; use cn_http_query_get */
	struct cn_str body;
	char peer[64];
	void *conn; /* the lws connection, for cn_http_req_header */
	struct cn_http_server *server;
	uint64_t id; /* names this request in cn_http_respond */
};

struct cn_http_resp {
	int status;
	char content_type[64];
	struct cn_buf body;
	/* When >= 0, the body is body_len bytes read from this fd (which the server closes)
	 * instead of body: for large files, streamed as the client takes them. */
	int body_fd;
	int64_t body_len;
	int nhdr;
	struct {
		char name[32];
		char value[512];
	} hdr[CN_HTTP_MAX_HEADERS];
};

/* Fills resp and returns 0; a negative return becomes a 500 problem response;
 * CN_HTTP_DEFER leaves the request waiting for cn_http_respond (no blocking on the loop). */
typedef int (*cn_http_handler)(const struct cn_http_req *req, struct cn_http_resp *resp,
			       void *arg);

struct cn_http_server;

/* TLS for a listener (PEM files, read at listen). With ca_path, clients are asked for a
 * certificate: one that is presented must chain to ca_path or the handshake fails; none at
 * all is allowed (first contact enrols with a token), so handlers decide what they require
 * (cn_ws_peer_cert shows a WebSocket handler what was presented). */
struct cn_http_tls {
	const char *cert_path; /* server certificate, optionally followed by its chain */
	const char *key_path;
	const char *ca_path; /* optional: request and verify client certificates */
};

/* Listens on iface:port (port 0 is refused: callers pick ports). max_body bounds request
 * bodies; larger ones get 413. tls NULL serves plain HTTP, otherwise HTTPS (HTTP/1.1 only). */
int cn_http_listen_tls(struct cn_loop *l, const char *name, const char *iface, int port,
		       size_t max_body, const struct cn_http_tls *tls, struct cn_http_server **out);
/* cn_http_listen_tls without TLS. */
int cn_http_listen(struct cn_loop *l, const char *name, const char *iface, int port,
		   size_t max_body, struct cn_http_server **out);
/* path matches exactly, or as a prefix when it ends in '/'. Later routes win ties on
 * equal length; the longest match is used. */
int cn_http_route(struct cn_http_server *s, enum cn_http_method m, const char *path,
		  cn_http_handler fn, void *arg);
/* For cn_ws. A GET with "Upgrade: websocket" on exactly path becomes a WebSocket bound to
 * the server's WebSocket protocol, whose lws callback is ws_cb (one for all such routes of a
 * server), with the wsi's opaque user data set to arg until ws_cb changes it. Upgrades
 * anywhere else are refused by closing the connection; a plain request on path gets 426.
 * free_arg (may be NULL) frees arg in cn_http_close. */
int cn_http_route_ws(struct cn_http_server *s, const char *path, lws_callback_function *ws_cb,
		     void *arg, void (*free_arg)(void *arg));
/* Frees the server; call after cn_loop_destroy, which closes its listener. */
void cn_http_close(struct cn_http_server *s);

/* Prepares resp for a deferred answer (as the server does for handlers). */
void cn_http_resp_init(struct cn_http_resp *resp);
/* On the loop: answers deferred request id. If the client has gone, the response is
 * dropped (and a body_fd closed); returns -ENOENT then. resp's buffers are taken. */
int cn_http_respond(struct cn_http_server *s, uint64_t id, struct cn_http_resp *resp);

/* Copies request header name ("authorization") into out; -ENOENT when absent,
 * -ENOSPC when longer than cap - 1. */
int cn_http_req_header(const struct cn_http_req *req, const char *name, char *out, size_t cap);

/* Value of query parameter name (first occurrence, already decoded) copied into out.
 * -ENOENT when absent, -ENOSPC when it does not fit. */
int cn_http_query_get(const struct cn_http_req *req, const char *name, char *out, size_t cap);

int cn_http_resp_header(struct cn_http_resp *resp, const char *name, const char *value);
/* RFC 9457 body: {"type","title","status","detail"}; sets status and content type. */
int cn_http_problem(struct cn_http_resp *resp, int status, const char *title,
		    const char *detail_fmt, ...) __attribute__((format(printf, 4, 5)));
const char *cn_http_method_name(enum cn_http_method m);

/* CORS for APIs authorised by bearer tokens, never cookies (WHEP, recordings): any origin
 * may call, and reads Location, ETag and Link. */
void cn_http_cors(struct cn_http_resp *resp);
/* The 204 answer to a CORS preflight allowing methods and request headers (cached 10 min). */
int cn_http_preflight(struct cn_http_resp *resp, const char *methods, const char *headers);
/* Splits "<prefix><a>[/<b>]" (a WHEP resource and its session): a non-empty and shorter
 * than acap, b empty or non-empty and shorter than bcap, no further '/'; else -EINVAL. */
int cn_http_split_path(struct cn_str path, const char *prefix, char *a, size_t acap, char *b,
		       size_t bcap);

/* Counters for /metrics: requests by status class and rejected bodies. */
int cn_http_metrics(struct cn_buf *out, void *server);

#endif
