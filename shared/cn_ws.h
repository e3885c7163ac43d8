/* cn_ws.h: WebSocket endpoints on the loop, server and client: whole text messages, bounded both ways. */
#ifndef CN_WS_H
#define CN_WS_H

#include <stddef.h>

#include "cn_buf.h"
#include "cn_http.h"
#include "cn_loop.h"

/* Bytes a connection may have waiting to be sent before cn_ws_send refuses more. */
#define CN_WS_SEND_QUEUE_MAX (4u << 20)

struct cn_ws_conn;

/* Called on the loop. ops must outlive the connections (usually static const). */
struct cn_ws_ops {
	void (*on_open)(struct cn_ws_conn *c, void *arg);
	/* One complete text message, fragments joined. data is not NUL-terminated and is only
	 * valid during the call. A message over max_msg closes the connection with 1009, a
	 * binary one with 1003, invalid UTF-8 with 1007. */
	void (*on_message)(struct cn_ws_conn *c, const char *data, size_t len, void *arg);
	/* The last call for c, which is freed when it returns: after either side closed, the
	 * connection was lost, or a client connection failed before on_open. */
	void (*on_close)(struct cn_ws_conn *c, void *arg);
};

/* WebSocket upgrades on path (exact) of server s, plain or TLS, go to ops; plain requests
 * there get a 426 problem. Messages are bounded by max_msg bytes. */
int cn_ws_serve(struct cn_http_server *s, const char *path, size_t max_msg,
		const struct cn_ws_ops *ops, void *arg);

struct cn_ws_client_opts {
	const char *url;       /* ws:// or wss://host[:port][/path]; host a DNS name or IPv4 */
	const char *ca_path;   /* wss: the only trust anchors (PEM); required. The server's
				* certificate must also name host (DNS or IP SAN). */
	const char *cert_path; /* wss, optional: client certificate (PEM) for mutual TLS */
	const char *key_path;  /* its key, given with cert_path */
	size_t max_msg;
	int connect_timeout_ms; /* name lookup, TCP, TLS and upgrade together; 0: 10 s */
	int ping_interval_s;    /* idle seconds before a ping; no answer in as long again
				 * closes the connection; 0: 30 */
};

/* Starts a client connection and returns at once with *out set: on_open or on_close
 * follows, never from inside this call. Fails without callbacks only for bad options
 * (-EINVAL), unreadable files (-errno), no client vhost (-EIO), lack of memory, or a loop
 * being destroyed (-ESHUTDOWN). Host names are looked up on a short-lived thread, never
 * on the loop. */
int cn_ws_connect(struct cn_loop *l, const struct cn_ws_client_opts *o,
		  const struct cn_ws_ops *ops, void *arg, struct cn_ws_conn **out);

/* Queues one text message (copied). Never blocks. -ENOBUFS when the queue would pass
 * CN_WS_SEND_QUEUE_MAX (counted; the caller decides, an uplink closes), -EMSGSIZE for a
 * message that could never fit, -ENOTCONN before on_open, -EPIPE once closing. */
int cn_ws_send(struct cn_ws_conn *c, const char *data, size_t len);
/* Closes with 1000 (queued messages are dropped); on_close follows, never from inside. */
void cn_ws_close(struct cn_ws_conn *c);
/* The same with a status and a short reason for the peer. Use 1000-1011 or 4000-4999:
 * lws 4.1 peers take 1012-2999 for a protocol error, so 1012-1014 are sent as 1011, and
 * other codes outside those ranges as 1000. */
void cn_ws_close_status(struct cn_ws_conn *c, int status, const char *reason);

void cn_ws_set_user(struct cn_ws_conn *c, void *user);
void *cn_ws_user(const struct cn_ws_conn *c);
/* The peer's address ("192.0.2.7"); for a client, once the name is looked up. */
const char *cn_ws_peer(const struct cn_ws_conn *c);
/* Message bytes queued and not yet handed to lws. */
size_t cn_ws_queued(const struct cn_ws_conn *c);
/* In on_close: the close status: ours when this side closed first (cn_ws_close_status,
 * 1009 for an oversize message...), else the one the peer's close frame carried, else
 * 1006 (lost, or never opened). */
int cn_ws_close_code(const struct cn_ws_conn *c);
/* Appends the peer's certificate (DER) to out: on a server with client certificates
 * requested (cn_http_tls.ca_path), or the server's on a wss client. It was verified
 * during the handshake. -ENOENT when there is none (plain, or the client sent none). */
int cn_ws_peer_cert(const struct cn_ws_conn *c, struct cn_buf *out);

/* cn_metrics collector (arg unused): connections, messages, bytes, oversize closes,
 * refused sends and failed connects, by side (server, client). */
int cn_ws_metrics(struct cn_buf *out, void *arg);

#endif
