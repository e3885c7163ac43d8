/* cn_ws.c: WebSocket connections over lws: message reassembly, bounded send queues, client dialing. */
#include "cn_ws.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cn_err.h"
#include "cn_log.h"
#include "cn_metrics.h"

#define CLIENT_PROTOCOL "canopy-ws-client"
#define CONN_MAGIC 0x636e7763u /* what lws's opaque user data points to: a conn ... */
#define EP_MAGIC 0x636e7765u   /* ... or, on a server before ESTABLISHED, an endpoint */
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_PING_S 30
#define MAX_PING_S 3600
#define MAX_HOST 253
/* Per writable event, so one connection with a deep queue cannot hold the loop. */
#define WRITE_BUDGET (4 * CN_HTTP_WS_TX_CHUNK)
/* What a queued message costs beyond its bytes, for the queue bound. */
#define MSG_OVERHEAD 64
#define CLOSE_REASON_MAX 120 /* a close frame carries at most 123 bytes of reason */

enum side { SERVER = 0, CLIENT = 1 };
static const char *const side_names[] = { "server", "client" };

/* Touched on the loop only: the callbacks and /metrics run there. */
struct ws_stats {
	uint64_t open;
	uint64_t opened;
	uint64_t msgs_in;
	uint64_t msgs_out;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t oversize;
	uint64_t queue_full;
	uint64_t connect_failed;
};
static struct ws_stats stats[2];

/* A cn_ws_serve path; owned by the cn_http server (freed in cn_http_close). */
struct endpoint {
	uint32_t magic;
	const struct cn_ws_ops *ops;
	void *arg;
	size_t max_msg;
	char *path;
};

struct out_msg {
	struct out_msg *next;
	size_t len;
	size_t off;
	unsigned char buf[]; /* LWS_PRE bytes of room for the frame header, then the message */
};

/* A client vhost per trust and identity set (lws keeps TLS client settings per vhost),
 * made on first use and kept until the loop is destroyed. */
struct client_vhost {
	struct client_vhost *next;
	struct cn_loop *l;
	struct lws_vhost *vh;
	bool tls;
	char *ca;
	char *cert;
	char *key;
	int ping_s;
	lws_retry_bo_t policy; /* lws keeps a pointer: lives as long as the vhost */
	char name[40];
};
static struct client_vhost *client_vhosts;
static unsigned client_vhost_serial;

/* A host name lookup on its own thread; the result comes back to the loop as an idle
 * source on the loop's context (which outlives every loop), so a lookup that ends after
 * the connection gave up (c == NULL) or the loop went away harms nothing. */
struct resolve_job {
	struct cn_ws_conn *c; /* read and cleared on the loop only */
	GMainContext *ctx;
	int rc; /* getaddrinfo's */
	char ip[INET6_ADDRSTRLEN];
	char host[MAX_HOST + 1];
};

/* What a client needs until it is open. */
struct dial {
	struct client_vhost *vh;
	GSource *timer;
	GSource *finish_src;
	struct resolve_job *job;
	bool tls;
	bool in_connect;  /* inside lws_client_connect_via_info */
	bool sync_failed; /* ... which reported an error before returning */
	int port;
	char *url;
	char *hostport;
	char *path;
};
/* Clients still dialing, so the loop's end can settle those lws does not know about. */
static GList *dialing;

struct cn_ws_conn {
	uint32_t magic;
	uint8_t side;
	bool open;
	bool closing;
	bool in_msg; /* part of a message is in rx */
	uint16_t close_code;
	uint16_t close_status;
	struct lws *wsi;
	struct cn_loop *l;
	const struct cn_ws_ops *ops;
	void *arg;
	void *user;
	size_t max_msg;
	struct cn_buf rx; /* only while a message arrives in pieces */
	struct out_msg *out_head;
	struct out_msg *out_tail;
	size_t queued;
	size_t nqueued;
	char *close_reason;
	struct dial *dial;
	char peer[INET6_ADDRSTRLEN];
};

static struct cn_ws_conn *conn_of(struct lws *wsi)
{
	struct cn_ws_conn *c = lws_get_opaque_user_data(wsi);

	return c && c->magic == CONN_MAGIC ? c : NULL;
}

static struct cn_ws_conn *conn_new(enum side side, struct cn_loop *l, const struct cn_ws_ops *ops,
				   void *arg, size_t max_msg)
{
	struct cn_ws_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->magic = CONN_MAGIC;
	c->side = (uint8_t)side;
	c->l = l;
	c->ops = ops;
	c->arg = arg;
	c->max_msg = max_msg;
	return c;
}

static void queue_drop(struct cn_ws_conn *c)
{
	while (c->out_head) {
		struct out_msg *m = c->out_head;
		c->out_head = m->next;
		free(m);
	}
	c->out_tail = NULL;
	c->queued = c->nqueued = 0;
}

static void source_drop(GSource **s)
{
	if (*s) {
		g_source_destroy(*s);
		g_source_unref(*s);
		*s = NULL;
	}
}

/* Ends the dialing state: timers stopped, lookup abandoned, no longer listed. */
static void dial_end(struct cn_ws_conn *c)
{
	struct dial *d = c->dial;

	if (!d)
		return;
	source_drop(&d->timer);
	source_drop(&d->finish_src);
	if (d->job)
		d->job->c = NULL;
	dialing = g_list_remove(dialing, c);
	g_free(d->url);
	g_free(d->hostport);
	g_free(d->path);
	free(d);
	c->dial = NULL;
}

/* The one way a connection ends: on_close, then free. */
static void conn_finish(struct cn_ws_conn *c)
{
	if (c->wsi) {
		lws_set_opaque_user_data(c->wsi, NULL);
		c->wsi = NULL;
	}
	if (c->open)
		stats[c->side].open--;
	else if (c->side == CLIENT)
		stats[CLIENT].connect_failed++;
	dial_end(c);
	c->closing = true; /* cn_ws_send from on_close gets -EPIPE */
	if (!c->close_code)
		c->close_code = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
	cn_log_debug("ws", "%s connection %s closed (%u)", side_names[c->side], c->peer,
		     (unsigned)c->close_code);
	c->ops->on_close(c, c->arg);
	queue_drop(c);
	cn_buf_free(&c->rx);
	g_free(c->close_reason);
	c->magic = 0;
	free(c);
}

static gboolean finish_cb(gpointer p)
{
	struct cn_ws_conn *c = p;

	/* The source is being dispatched and goes away when we return; just forget it. */
	g_source_unref(c->dial->finish_src);
	c->dial->finish_src = NULL;
	conn_finish(c);
	return G_SOURCE_REMOVE;
}

/* For a client that never reached lws or was let go by it: on_close from the loop, so
 * never from inside the caller's own cn_ws_* call. */
static void finish_later(struct cn_ws_conn *c)
{
	struct dial *d = c->dial;

	if (d->finish_src)
		return;
	d->finish_src = g_idle_source_new();
	g_source_set_callback(d->finish_src, finish_cb, c, NULL);
	g_source_attach(d->finish_src, c->l->ctx);
}

/* Lets go of a dialing client's lws connection or lookup; lws then closes the connection
 * by itself, and any callback it still makes finds no conn. */
static void dial_abandon(struct cn_ws_conn *c)
{
	if (c->wsi) {
		lws_set_opaque_user_data(c->wsi, NULL);
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_AWAITING_CONNECT_RESPONSE, LWS_TO_KILL_ASYNC);
		c->wsi = NULL;
	}
	if (c->dial && c->dial->job) {
		c->dial->job->c = NULL;
		c->dial->job = NULL;
	}
}

/* Closes from inside an lws callback: the caller returns -1 and lws sends the close. */
static int refuse(struct lws *wsi, struct cn_ws_conn *c, enum lws_close_status status,
		  const char *reason)
{
	lws_close_reason(wsi, status, (unsigned char *)reason, strlen(reason));
	c->closing = true;
	if (!c->close_code)
		c->close_code = (uint16_t)status;
	return -1;
}

static void deliver(struct cn_ws_conn *c, const char *data, size_t len)
{
	stats[c->side].msgs_in++;
	c->ops->on_message(c, data, len, c->arg);
}

static int on_receive(struct lws *wsi, struct cn_ws_conn *c, const char *in, size_t len)
{
	bool last = lws_is_final_fragment(wsi);

	if (c->closing)
		return 0;
	if (lws_frame_is_binary(wsi)) {
		cn_log_warn("ws", "binary message from %s: closing with 1003", c->peer);
		return refuse(wsi, c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
			      "text messages only");
	}
	stats[c->side].bytes_in += len;
	if (c->rx.len + len > c->max_msg) {
		stats[c->side].oversize++;
		cn_log_warn("ws", "message from %s exceeds %zu bytes: closing with 1009", c->peer,
			    c->max_msg);
		cn_buf_free(&c->rx);
		c->in_msg = false;
		return refuse(wsi, c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too big");
	}
	/* The common case, a message in one piece, is handed over without a copy. */
	if (!c->in_msg && last) {
		deliver(c, len ? in : "", len);
		return 0;
	}
	if (!c->in_msg) {
		cn_buf_init(&c->rx, c->max_msg); /* allocates on the first append */
		c->in_msg = true;
	}
	if (len && cn_buf_append(&c->rx, in, len) < 0)
		return refuse(wsi, c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
	if (!last)
		return 0;
	c->in_msg = false;
	deliver(c, c->rx.data ? c->rx.data : "", c->rx.len);
	cn_buf_free(&c->rx); /* idle connections keep no buffer */
	return 0;
}

static int on_writeable(struct lws *wsi, struct cn_ws_conn *c)
{
	size_t budget = WRITE_BUDGET;

	if (c->closing) {
		const char *r = c->close_reason ? c->close_reason : "";
		lws_close_reason(wsi, (enum lws_close_status)c->close_status, (unsigned char *)r,
				 strlen(r));
		return -1;
	}
	while (c->out_head) {
		struct out_msg *m = c->out_head;
		size_t n = m->len - m->off;
		if (n > CN_HTTP_WS_TX_CHUNK)
			n = CN_HTTP_WS_TX_CHUNK;
		bool start = m->off == 0, end = m->off + n == m->len;
		/* lws puts the frame header in the LWS_PRE bytes before the payload; for later
		 * pieces those are bytes lws already took (it copies what it cannot send at
		 * once), so the message is never copied again. */
		int flags = lws_write_ws_flags(LWS_WRITE_TEXT, start, end);
		if (lws_write(wsi, m->buf + LWS_PRE + m->off, n, (enum lws_write_protocol)flags) <
		    (int)n)
			return -1;
		m->off += n;
		c->queued -= n;
		stats[c->side].bytes_out += n;
		if (end) {
			c->out_head = m->next;
			if (!c->out_head)
				c->out_tail = NULL;
			c->nqueued--;
			free(m);
			stats[c->side].msgs_out++;
		}
		if (n + MSG_OVERHEAD >= budget || lws_send_pipe_choked(wsi))
			break;
		budget -= n + MSG_OVERHEAD;
	}
	if (c->out_head)
		lws_callback_on_writable(wsi);
	return 0;
}

static void peer_closed(struct cn_ws_conn *c, const unsigned char *in, size_t len)
{
	if (!c->close_code)
		c->close_code = len >= 2 ? (uint16_t)(in[0] << 8 | in[1])
					 : LWS_CLOSE_STATUS_NO_STATUS;
}

static int server_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
			   void *in, size_t len)
{
	struct cn_ws_conn *c;

	(void)user;
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED: {
		struct endpoint *ep = lws_get_opaque_user_data(wsi); /* set by cn_http */
		if (!ep || ep->magic != EP_MAGIC)
			return -1;
		if (!(c = conn_new(SERVER, NULL, ep->ops, ep->arg, ep->max_msg)))
			return -1;
		c->wsi = wsi;
		c->open = true;
		lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
		lws_set_opaque_user_data(wsi, c);
		stats[SERVER].open++;
		stats[SERVER].opened++;
		cn_log_debug("ws", "%s: connection from %s", ep->path, c->peer);
		if (c->ops->on_open)
			c->ops->on_open(c, c->arg);
		return 0;
	}
	case LWS_CALLBACK_RECEIVE:
		return (c = conn_of(wsi)) ? on_receive(wsi, c, in, len) : -1;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return (c = conn_of(wsi)) ? on_writeable(wsi, c) : 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if ((c = conn_of(wsi)))
			peer_closed(c, in, len);
		return 0;
	case LWS_CALLBACK_CLOSED:
		if ((c = conn_of(wsi)))
			conn_finish(c);
		return 0;
	default:
		return 0;
	}
}

static int client_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
			   void *in, size_t len)
{
	struct cn_ws_conn *c;

	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (!(c = conn_of(wsi)))
			return 0;
		lws_set_opaque_user_data(wsi, NULL);
		c->wsi = NULL;
		cn_log_info("ws", "cannot connect to %s: %.*s", c->dial ? c->dial->url : c->peer,
			    in ? (int)strnlen(in, len ? len : 200) : 17,
			    in ? (const char *)in : "connection failed");
		if (c->dial && c->dial->in_connect) {
			c->dial->sync_failed = true; /* dial_lws finishes it */
			return 0;
		}
		conn_finish(c);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (!(c = conn_of(wsi)))
			return -1; /* let go of (cn_ws_close, timeout) while dialing */
		cn_log_debug("ws", "connected to %s (%s)", c->dial ? c->dial->url : "", c->peer);
		dial_end(c);
		c->open = true;
		stats[CLIENT].open++;
		stats[CLIENT].opened++;
		if (c->ops->on_open)
			c->ops->on_open(c, c->arg);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return (c = conn_of(wsi)) ? on_receive(wsi, c, in, len) : -1;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return (c = conn_of(wsi)) ? on_writeable(wsi, c) : 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if ((c = conn_of(wsi)))
			peer_closed(c, in, len);
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if ((c = conn_of(wsi)))
			conn_finish(c);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols client_protocols[] = {
	{
		.name = CLIENT_PROTOCOL,
		.callback = client_callback,
		.per_session_data_size = 0,
		.rx_buffer_size = CN_HTTP_WS_RX_BUF,
		.tx_packet_size = CN_HTTP_WS_TX_CHUNK + 16,
	},
	{ NULL, NULL, 0, 0, 0, NULL, 0 } /* terminator */
};

static void endpoint_free(void *p)
{
	struct endpoint *ep = p;

	g_free(ep->path);
	ep->magic = 0;
	free(ep);
}

int cn_ws_serve(struct cn_http_server *s, const char *path, size_t max_msg,
		const struct cn_ws_ops *ops, void *arg)
{
	struct endpoint *ep;
	int rc;

	if (!s || !path || !ops || !ops->on_message || !ops->on_close || max_msg == 0)
		return -EINVAL;
	if (!(ep = calloc(1, sizeof(*ep))))
		return -ENOMEM;
	ep->magic = EP_MAGIC;
	ep->ops = ops;
	ep->arg = arg;
	ep->max_msg = max_msg;
	ep->path = g_strdup(path);
	if ((rc = cn_http_route_ws(s, path, server_callback, ep, endpoint_free)) < 0)
		endpoint_free(ep);
	return rc;
}

struct ws_url {
	bool tls;
	int port;
	char host[MAX_HOST + 1];
	char path[CN_HTTP_MAX_PATH];
};

/* ws[s]://host[:port][/path]: names and IPv4 only, no user info, no fragment. */
static int parse_url(const char *url, struct ws_url *u)
{
	struct cn_str s = cn_str_from(url), auth;
	size_t i, hlen;

	memset(u, 0, sizeof(*u));
	if (cn_str_has_prefix(s, "wss://")) {
		u->tls = true;
		i = 6;
	} else if (cn_str_has_prefix(s, "ws://")) {
		i = 5;
	} else {
		return -EINVAL;
	}
	auth.p = s.p + i;
	for (auth.len = 0; i + auth.len < s.len && s.p[i + auth.len] != '/'; auth.len++)
		;
	for (hlen = 0; hlen < auth.len && auth.p[hlen] != ':'; hlen++) {
		char ch = auth.p[hlen];
		if (!g_ascii_isalnum(ch) && ch != '.' && ch != '-')
			return -EINVAL;
	}
	if (hlen == 0 || hlen > MAX_HOST)
		return -EINVAL;
	memcpy(u->host, auth.p, hlen);
	u->port = u->tls ? 443 : 80;
	if (hlen < auth.len) {
		int64_t port;
		struct cn_str ps = { auth.p + hlen + 1, auth.len - hlen - 1 };
		if (cn_str_to_i64(ps, 1, 65535, &port) < 0)
			return -EINVAL;
		u->port = (int)port;
	}
	struct cn_str path = { auth.p + auth.len, s.len - i - auth.len };
	if (path.len == 0)
		path = CN_STR("/");
	for (size_t k = 0; k < path.len; k++) {
		unsigned char ch = (unsigned char)path.p[k];
		if (ch <= 0x20 || ch >= 0x7f || ch == '#')
			return -EINVAL;
	}
	return cn_str_copy(u->path, sizeof(u->path), path) < 0 ? -ENAMETOOLONG : 0;
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void client_vhost_free(struct client_vhost *e)
{
	g_free(e->ca);
	g_free(e->cert);
	g_free(e->key);
	free(e);
}

/* At cn_loop_destroy, after the lws context (so its vhosts and connections) is gone:
 * clients lws did not settle (still looking up a name, or waiting to be finished) end
 * here, then the loop's client vhosts are forgotten. */
static void client_loop_gone(void *arg)
{
	struct cn_loop *l = arg;
	struct client_vhost **pp = &client_vhosts;
	GList *it = dialing;

	while (it) {
		GList *next = it->next;
		struct cn_ws_conn *c = it->data;
		if (c->l == l) {
			c->wsi = NULL; /* freed with the context */
			dial_abandon(c);
			conn_finish(c);
		}
		it = next;
	}
	while (*pp) {
		struct client_vhost *e = *pp;
		if (e->l == l) {
			*pp = e->next;
			client_vhost_free(e);
		} else {
			pp = &e->next;
		}
	}
}

static struct client_vhost *client_vhost_get(struct cn_loop *l, bool tls,
					     const struct cn_ws_client_opts *o, int ping_s)
{
	struct lws_context_creation_info info;
	struct client_vhost *e;
	bool loop_known = false;
	const char *ca = tls ? o->ca_path : NULL, *cert = tls ? o->cert_path : NULL,
		   *key = tls ? o->key_path : NULL;

	for (e = client_vhosts; e; e = e->next) {
		if (e->l != l)
			continue;
		loop_known = true;
		if (e->tls == tls && same(e->ca, ca) && same(e->cert, cert) && same(e->key, key) &&
		    e->ping_s == ping_s)
			return e;
	}
	if (!(e = calloc(1, sizeof(*e))))
		return NULL;
	e->l = l;
	e->tls = tls;
	e->ca = g_strdup(ca);
	e->cert = g_strdup(cert);
	e->key = g_strdup(key);
	e->ping_s = ping_s;
	/* Ping after ping_s without traffic; hang up when nothing answers by twice that. */
	e->policy.secs_since_valid_ping = (uint16_t)ping_s;
	e->policy.secs_since_valid_hangup = (uint16_t)(2 * ping_s);
	snprintf(e->name, sizeof(e->name), "ws-client-%u", ++client_vhost_serial);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.vhost_name = e->name;
	info.protocols = client_protocols;
	info.retry_and_idle_policy = &e->policy;
	if (tls) {
		/* Only ca_path is trusted: never the system bundle. */
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
			       LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
		info.client_ssl_ca_filepath = e->ca;
		info.client_ssl_cert_filepath = e->cert;
		info.client_ssl_private_key_filepath = e->key;
	}
	e->vh = lws_create_vhost(l->lws, &info);
	if (!e->vh) {
		cn_log_error("ws", "cannot create client vhost (ca '%s', cert '%s')", ca ? ca : "-",
			     cert ? cert : "-");
		goto out_free_entry;
	}
	if (!loop_known && cn_loop_at_destroy(l, client_loop_gone, l) < 0)
		goto out_free_entry; /* the vhost goes with the context */
	e->next = client_vhosts;
	client_vhosts = e;
	return e;

out_free_entry:
	client_vhost_free(e);
	return NULL;
}

static void dial_lws(struct cn_ws_conn *c)
{
	struct dial *d = c->dial;
	struct lws_client_connect_info i;
	struct lws *wsi;

	memset(&i, 0, sizeof(i));
	i.context = c->l->lws;
	i.vhost = d->vh->vh;
	i.address = c->peer;
	i.port = d->port;
	i.path = d->path;
	i.host = d->hostport; /* Host header; lws checks the certificate against it, port cut */
	i.ssl_connection = d->tls ? LCCSCF_USE_SSL : 0;
	i.alpn = "http/1.1";
	i.local_protocol_name = CLIENT_PROTOCOL;
	i.ietf_version_or_minus_one = -1;
	i.opaque_user_data = c;
	i.retry_and_idle_policy = &d->vh->policy;
	/* lws may report a failure (CLIENT_CONNECTION_ERROR) before it returns. */
	d->in_connect = true;
	wsi = lws_client_connect_via_info(&i);
	d->in_connect = false;
	if (!wsi || d->sync_failed) {
		c->wsi = NULL;
		finish_later(c);
		return;
	}
	c->wsi = wsi;
}

static gboolean resolve_done(gpointer p)
{
	struct resolve_job *job = p;
	struct cn_ws_conn *c = job->c;

	if (c) {
		c->dial->job = NULL;
		if (job->rc) {
			cn_log_info("ws", "cannot connect to %s: cannot resolve '%s': %s",
				    c->dial->url, job->host, gai_strerror(job->rc));
			conn_finish(c);
		} else {
			cn_strlcpy(c->peer, job->ip, sizeof(c->peer));
			dial_lws(c);
		}
	}
	g_free(job);
	return G_SOURCE_REMOVE;
}

static gpointer resolve_thread(gpointer p)
{
	struct resolve_job *job = p;
	struct addrinfo hints, *res = NULL, *pick = NULL;
	GSource *s;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	job->rc = getaddrinfo(job->host, NULL, &hints, &res);
	if (!job->rc) {
		for (struct addrinfo *ai = res; ai && !pick; ai = ai->ai_next)
			pick = ai->ai_family == AF_INET ? ai : NULL;
		for (struct addrinfo *ai = res; ai && !pick; ai = ai->ai_next)
			pick = ai->ai_family == AF_INET6 ? ai : NULL;
		const void *a = !pick ? NULL
			: pick->ai_family == AF_INET
				? (const void *)&((struct sockaddr_in *)pick->ai_addr)->sin_addr
				: (const void *)&((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
		if (!a || !inet_ntop(pick->ai_family, a, job->ip, sizeof(job->ip)))
			job->rc = EAI_NONAME;
		freeaddrinfo(res);
	}
	s = g_idle_source_new();
	g_source_set_callback(s, resolve_done, job, NULL);
	g_source_attach(s, job->ctx);
	g_source_unref(s);
	return NULL;
}

static gboolean connect_timeout(gpointer p)
{
	struct cn_ws_conn *c = p;

	g_source_unref(c->dial->timer); /* dispatching: it goes away when we return */
	c->dial->timer = NULL;
	cn_log_info("ws", "cannot connect to %s: timed out", c->dial->url);
	dial_abandon(c);
	conn_finish(c);
	return G_SOURCE_REMOVE;
}

static int readable(const char *what, const char *path)
{
	if (path && access(path, R_OK) < 0) {
		int rc = -errno;
		cn_log_error("ws", "cannot read %s '%s': %s", what, path, strerror(errno));
		return rc;
	}
	return 0;
}

int cn_ws_connect(struct cn_loop *l, const struct cn_ws_client_opts *o,
		  const struct cn_ws_ops *ops, void *arg, struct cn_ws_conn **out)
{
	struct in_addr a4;
	struct ws_url u;
	struct client_vhost *e;
	struct cn_ws_conn *c;
	struct dial *d;
	int rc, ping_s, timeout_ms;

	if (!l->lws)
		return -ESHUTDOWN;
	if (!o || !o->url || !ops || !ops->on_message || !ops->on_close || o->max_msg == 0)
		return -EINVAL;
	if ((rc = parse_url(o->url, &u)) < 0) {
		cn_log_error("ws", "cannot connect to '%s': not a ws:// or wss:// url", o->url);
		return rc;
	}
	if (u.tls && (!o->ca_path || !o->cert_path != !o->key_path))
		return -EINVAL;
	if (u.tls && ((rc = readable("ca file", o->ca_path)) < 0 ||
		      (rc = readable("certificate", o->cert_path)) < 0 ||
		      (rc = readable("key", o->key_path)) < 0))
		return rc;
	ping_s = o->ping_interval_s > 0 ? MIN(o->ping_interval_s, MAX_PING_S) : DEFAULT_PING_S;
	timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
	if (!(e = client_vhost_get(l, u.tls, o, ping_s)))
		return -EIO;
	if (!(c = conn_new(CLIENT, l, ops, arg, o->max_msg)))
		return -ENOMEM;
	if (!(d = calloc(1, sizeof(*d)))) {
		free(c);
		return -ENOMEM;
	}
	c->dial = d;
	d->vh = e;
	d->tls = u.tls;
	d->port = u.port;
	d->url = g_strdup(o->url);
	d->path = g_strdup(u.path);
	d->hostport = u.port == (u.tls ? 443 : 80) ? g_strdup(u.host)
						   : g_strdup_printf("%s:%d", u.host, u.port);
	dialing = g_list_prepend(dialing, c);
	d->timer = g_timeout_source_new((guint)timeout_ms);
	g_source_set_callback(d->timer, connect_timeout, c, NULL);
	g_source_attach(d->timer, l->ctx);
	*out = c;
	if (inet_pton(AF_INET, u.host, &a4) == 1) {
		cn_strlcpy(c->peer, u.host, sizeof(c->peer));
		dial_lws(c);
		return 0;
	}
	/* getaddrinfo blocks (seconds, when DNS is down): never on the loop. */
	struct resolve_job *job = g_new0(struct resolve_job, 1);
	GThread *th;
	job->c = c;
	job->ctx = l->ctx;
	cn_strlcpy(job->host, u.host, sizeof(job->host));
	d->job = job;
	if (!(th = g_thread_try_new("ws-resolve", resolve_thread, job, NULL))) {
		d->job = NULL;
		g_free(job);
		cn_log_error("ws", "cannot start a thread to resolve '%s'", u.host);
		finish_later(c);
		return 0;
	}
	g_thread_unref(th);
	return 0;
}

int cn_ws_send(struct cn_ws_conn *c, const char *data, size_t len)
{
	struct out_msg *m;

	if (c->closing)
		return -EPIPE;
	if (!c->open || !c->wsi)
		return -ENOTCONN;
	if (len > CN_WS_SEND_QUEUE_MAX - MSG_OVERHEAD)
		return -EMSGSIZE;
	if (c->queued + (c->nqueued + 1) * MSG_OVERHEAD + len > CN_WS_SEND_QUEUE_MAX) {
		stats[c->side].queue_full++;
		cn_log_debug("ws", "send queue to %s full (%zu bytes)", c->peer, c->queued);
		return -ENOBUFS;
	}
	if (!(m = malloc(sizeof(*m) + LWS_PRE + len)))
		return -ENOMEM;
	m->next = NULL;
	m->len = len;
	m->off = 0;
	if (len)
		memcpy(m->buf + LWS_PRE, data, len);
	if (c->out_tail)
		c->out_tail->next = m;
	else
		c->out_head = m;
	c->out_tail = m;
	c->queued += len;
	c->nqueued++;
	lws_callback_on_writable(c->wsi);
	return 0;
}

void cn_ws_close_status(struct cn_ws_conn *c, int status, const char *reason)
{
	if (!c || c->closing)
		return;
	/* lws 4.1 takes any code from 1012 to 2999 for a protocol error and reports 1002, so
	 * the registered 1012-1014 (restart, try later, bad gateway) go as 1011; codes an
	 * endpoint must not send (RFC 6455 7.4) as 1000. Applications use 4000-4999. */
	if (status >= 1012 && status <= 1014)
		status = LWS_CLOSE_STATUS_UNEXPECTED_CONDITION;
	else if (status < 1000 || status > 4999 || (status >= 1004 && status <= 1006) ||
		 (status >= 1015 && status < 3000))
		status = LWS_CLOSE_STATUS_NORMAL;
	c->closing = true;
	c->close_status = (uint16_t)status;
	if (!c->close_code)
		c->close_code = (uint16_t)status;
	c->close_reason = reason ? g_strndup(reason, CLOSE_REASON_MAX) : NULL;
	queue_drop(c);
	if (c->open && c->wsi) {
		lws_callback_on_writable(c->wsi); /* the close frame goes out from there */
		return;
	}
	dial_abandon(c); /* a client not open yet */
	finish_later(c);
}

void cn_ws_close(struct cn_ws_conn *c)
{
	cn_ws_close_status(c, LWS_CLOSE_STATUS_NORMAL, NULL);
}

void cn_ws_set_user(struct cn_ws_conn *c, void *user)
{
	c->user = user;
}

void *cn_ws_user(const struct cn_ws_conn *c)
{
	return c->user;
}

const char *cn_ws_peer(const struct cn_ws_conn *c)
{
	return c->peer;
}

size_t cn_ws_queued(const struct cn_ws_conn *c)
{
	return c->queued;
}

int cn_ws_close_code(const struct cn_ws_conn *c)
{
	return c->close_code ? c->close_code : LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
}

int cn_ws_peer_cert(const struct cn_ws_conn *c, struct cn_buf *out)
{
	SSL *ssl = c->wsi && c->open ? lws_get_ssl(c->wsi) : NULL;
	unsigned char *der = NULL;
	X509 *x;
	int n, rc;

	if (!ssl || !(x = SSL_get1_peer_certificate(ssl)))
		return -ENOENT;
	/* Verified in the handshake, or the handshake fails; checked again to be sure. */
	if (SSL_get_verify_result(ssl) != X509_V_OK) {
		X509_free(x);
		return CN_E_BAD_SIG;
	}
	n = i2d_X509(x, &der);
	X509_free(x);
	if (n <= 0)
		return -ENOMEM;
	rc = cn_buf_append(out, der, (size_t)n);
	OPENSSL_free(der);
	return rc;
}

int cn_ws_metrics(struct cn_buf *out, void *arg)
{
	static const struct {
		const char *name;
		const char *type;
		const char *help;
		size_t off;
		bool client_only;
	} fams[] = {
		{ "canopy_ws_connections", "gauge", "WebSocket connections open now.",
		  offsetof(struct ws_stats, open), false },
		{ "canopy_ws_connections_opened_total", "counter", "WebSocket connections opened.",
		  offsetof(struct ws_stats, opened), false },
		{ "canopy_ws_messages_received_total", "counter", "Whole text messages received.",
		  offsetof(struct ws_stats, msgs_in), false },
		{ "canopy_ws_messages_sent_total", "counter", "Whole text messages sent.",
		  offsetof(struct ws_stats, msgs_out), false },
		{ "canopy_ws_received_bytes_total", "counter", "Message payload bytes received.",
		  offsetof(struct ws_stats, bytes_in), false },
		{ "canopy_ws_sent_bytes_total", "counter", "Message payload bytes sent.",
		  offsetof(struct ws_stats, bytes_out), false },
		{ "canopy_ws_oversize_closes_total", "counter",
		  "Connections closed (1009) for a message over the limit.",
		  offsetof(struct ws_stats, oversize), false },
		{ "canopy_ws_send_queue_full_total", "counter",
		  "Messages refused because the connection's send queue was full.",
		  offsetof(struct ws_stats, queue_full), false },
		{ "canopy_ws_connect_failures_total", "counter",
		  "Client connections that ended before they opened.",
		  offsetof(struct ws_stats, connect_failed), true },
	};
	int rc = 0;

	(void)arg;
	for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		rc |= cn_metrics_family(out, fams[i].name, fams[i].type, fams[i].help);
		for (int side = fams[i].client_only ? CLIENT : SERVER; side <= CLIENT; side++) {
			uint64_t v = *(const uint64_t *)((const char *)&stats[side] + fams[i].off);
			rc |= cn_buf_printf(out, "%s{side=\"%s\"} %llu\n", fams[i].name,
					    side_names[side], (unsigned long long)v);
		}
	}
	return rc ? -ENOBUFS : 0;
}
