/* relay_sfu_edge.c: the SFU's upstream signalling by plain WHEP (POST/DELETE over HTTP/1.1) to a co-located edge, on short worker threads. */
#include "relay_sfu_edge.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <glib.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_log.h"
#include "relay_sfu.h"

#define HTTP_TIMEOUT_S 10
#define MAX_RESPONSE (128 * 1024)

struct relay_sfu_edge {
	gint refs;
	bool alive; /* loop only: false once the SFU is gone */
	struct relay_sfu *s;
	char host[256], port[8], token_file[1024];
	GHashTable *locations; /* ticket -> session path at the edge */
	GHashTable *closed;    /* tickets closed before their answer came */
};

struct job {
	struct relay_sfu_edge *e;
	bool post;
	uint64_t ticket;
	char path[512];
	char token[2048];
	char *body;
	size_t len;
	/* results */
	int status;
	char err[200];
	char location[512];
	char *resp;
	size_t resp_len;
};

static void edge_unref(struct relay_sfu_edge *e)
{
	if (!g_atomic_int_dec_and_test(&e->refs))
		return;
	g_hash_table_destroy(e->locations);
	g_hash_table_destroy(e->closed);
	free(e);
}

static void job_free(struct job *j)
{
	edge_unref(j->e);
	free(j->body);
	free(j->resp);
	explicit_bzero(j->token, sizeof(j->token));
	free(j);
}

static int read_token(const struct relay_sfu_edge *e, char *out, size_t cap)
{
	gchar *text = NULL;
	gsize n = 0;

	out[0] = '\0';
	if (!e->token_file[0])
		return 0;
	if (!g_file_get_contents(e->token_file, &text, &n, NULL))
		return -ENOENT;
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		n--;
	int rc = n < cap ? 0 : -ENOSPC;
	if (!rc) {
		memcpy(out, text, n);
		out[n] = '\0';
	}
	explicit_bzero(text, n);
	g_free(text);
	return rc;
}

/* ---- the worker: one blocking request ---------------------------------------------- */

static int connect_to(struct job *j)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
	struct timeval tv = { HTTP_TIMEOUT_S, 0 };
	int fd = -1, rc;

	if ((rc = getaddrinfo(j->e->host, j->e->port, &hints, &res)) != 0) {
		snprintf(j->err, sizeof(j->err), "%.80s: %s", j->e->host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		if ((fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol)) < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(j->err, sizeof(j->err), "cannot connect to %.80s:%s: %s", j->e->host, j->e->port,
			 strerror(errno));
	return fd < 0 ? -ECONNREFUSED : fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Status line, Location, body after the blank line (Connection: close, so until EOF,
 * or Content-Length when given). */
static void parse_response(struct job *j, char *buf, size_t n)
{
	char *end = memmem(buf, n, "\r\n\r\n", 4);
	int status = 0;

	/* "HTTP/1.x NNN ..." */
	if (end && n > 12 && !strncmp(buf, "HTTP/1.", 7) && buf[8] == ' ') {
		char *e = NULL;
		long v = strtol(buf + 9, &e, 10);
		if (e == buf + 12 && v >= 100 && v <= 599)
			status = (int)v;
	}
	if (!status) {
		j->status = -EPROTO;
		snprintf(j->err, sizeof(j->err), "not an HTTP response");
		return;
	}
	*end = '\0';
	j->status = status;
	size_t body_len = n - (size_t)(end + 4 - buf);
	for (char *line = strstr(buf, "\r\n"); line; line = strstr(line, "\r\n")) {
		line += 2;
		if (!strncasecmp(line, "location:", 9)) {
			const char *v = line + 9;
			while (*v == ' ')
				v++;
			size_t l = strcspn(v, "\r\n");
			if (l < sizeof(j->location)) {
				memcpy(j->location, v, l);
				j->location[l] = '\0';
			}
		} else if (!strncasecmp(line, "content-length:", 15)) {
			long cl = strtol(line + 15, NULL, 10);
			if (cl >= 0 && (size_t)cl < body_len)
				body_len = (size_t)cl;
		}
	}
	if ((j->resp = malloc(body_len + 1))) {
		memcpy(j->resp, end + 4, body_len);
		j->resp[body_len] = '\0';
		j->resp_len = body_len;
	}
	if (status != 201 && status != 200)
		snprintf(j->err, sizeof(j->err), "%.190s", j->resp ? j->resp : "");
}

static void run_request(struct job *j)
{
	struct cn_buf req;
	char *buf = NULL;
	size_t n = 0;
	int fd;

	if ((fd = connect_to(j)) < 0) {
		j->status = fd;
		return;
	}
	cn_buf_init(&req, 96 * 1024);
	if (cn_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n",
			  j->post ? "POST" : "DELETE", j->path, j->e->host, j->e->port) < 0 ||
	    (j->token[0] && cn_buf_printf(&req, "Authorization: Bearer %s\r\n", j->token) < 0) ||
	    (j->post && cn_buf_printf(&req, "Content-Type: application/sdp\r\n") < 0) ||
	    cn_buf_printf(&req, "Content-Length: %zu\r\n\r\n", j->post ? j->len : 0) < 0 ||
	    (j->post && cn_buf_append(&req, j->body, j->len) < 0)) {
		j->status = -ENOMEM;
		goto out_close;
	}
	if (send_all(fd, req.data, req.len) < 0) {
		j->status = -EIO;
		snprintf(j->err, sizeof(j->err), "sending the request failed");
		goto out_close;
	}
	if (!(buf = malloc(MAX_RESPONSE + 1))) {
		j->status = -ENOMEM;
		goto out_close;
	}
	for (;;) {
		ssize_t r = recv(fd, buf + n, MAX_RESPONSE - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			j->status = errno == EAGAIN ? -ETIMEDOUT : -errno;
			snprintf(j->err, sizeof(j->err), "%s", errno == EAGAIN ? "no complete answer in time"
									: strerror(errno));
			goto out_close;
		}
		if (r == 0 || (n += (size_t)r) == MAX_RESPONSE)
			break;
	}
	buf[n] = '\0';
	parse_response(j, buf, n);
out_close:
	explicit_bzero(req.data, req.len);
	cn_buf_free(&req);
	free(buf);
	close(fd);
}

static void start_job(struct job *j);

static gboolean job_done(gpointer data)
{
	struct job *j = data;
	struct relay_sfu_edge *e = j->e;
	gpointer key = GSIZE_TO_POINTER((gsize)j->ticket);

	if (!e->alive || !j->post) {
		if (!j->post && j->status != 200 && j->status != 404)
			cn_log_info("sfu", "edge DELETE %s: %d %s", j->path, j->status, j->err);
		job_free(j);
		return G_SOURCE_REMOVE;
	}
	if (j->status == 201 && g_hash_table_remove(e->closed, key)) {
		/* the upstream closed while its offer was on the way: end it at the edge too */
		if (j->location[0]) {
			struct job *d = calloc(1, sizeof(*d));
			if (d) {
				d->e = e;
				g_atomic_int_inc(&e->refs);
				cn_strlcpy(d->path, j->location, sizeof(d->path));
				memcpy(d->token, j->token, sizeof(d->token));
				start_job(d);
			}
		}
		job_free(j);
		return G_SOURCE_REMOVE;
	}
	if (j->status == 201 && j->location[0])
		g_hash_table_insert(e->locations, key, g_strdup(j->location));
	relay_sfu_upstream_answer(e->s, j->ticket, j->status, j->resp ? j->resp : "", j->resp_len,
				  j->err[0] ? j->err : cn_strerror(j->status < 0 ? j->status : 0));
	job_free(j);
	return G_SOURCE_REMOVE;
}

static gpointer job_thread(gpointer data)
{
	run_request(data);
	g_idle_add(job_done, data); /* the default context: the loop */
	return NULL;
}

static void start_job(struct job *j)
{
	GError *ge = NULL;
	GThread *t = g_thread_try_new("sfu-whep", job_thread, j, &ge);

	if (!t) {
		j->status = -EAGAIN;
		snprintf(j->err, sizeof(j->err), "no thread: %s", ge ? ge->message : "?");
		g_clear_error(&ge);
		g_idle_add(job_done, j);
		return;
	}
	g_thread_unref(t);
}

/* ---- hooks ---------------------------------------------------------------------------- */

int relay_sfu_edge_offer(void *arg, const char *key, uint64_t ticket, const char *sdp, size_t len,
			 char *err, size_t errcap)
{
	struct relay_sfu_edge *e = arg;
	struct job *j = calloc(1, sizeof(*j));
	char *esc = g_uri_escape_string(key, NULL, FALSE);

	if (!j || !esc || !(j->body = malloc(len))) {
		free(j);
		g_free(esc);
		return cn_fail(-ENOMEM, err, errcap, "out of memory");
	}
	if (read_token(e, j->token, sizeof(j->token)) < 0) {
		free(j->body);
		free(j);
		g_free(esc);
		return cn_fail(-ENOENT, err, errcap, "sfu_edge_token_file '%s' cannot be read", e->token_file);
	}
	j->e = e;
	g_atomic_int_inc(&e->refs);
	j->post = true;
	j->ticket = ticket;
	snprintf(j->path, sizeof(j->path), "/whep/%s?stream=main", esc);
	g_free(esc);
	memcpy(j->body, sdp, len);
	j->len = len;
	start_job(j);
	return 0;
}

void relay_sfu_edge_close(void *arg, const char *key, uint64_t ticket)
{
	struct relay_sfu_edge *e = arg;
	gpointer k = GSIZE_TO_POINTER((gsize)ticket);
	const char *loc = g_hash_table_lookup(e->locations, k);
	struct job *j;

	(void)key;
	if (!loc) {
		g_hash_table_add(e->closed, k); /* its answer is still to come */
		return;
	}
	if ((j = calloc(1, sizeof(*j)))) {
		j->e = e;
		g_atomic_int_inc(&e->refs);
		cn_strlcpy(j->path, loc, sizeof(j->path));
		read_token(e, j->token, sizeof(j->token));
		start_job(j);
	}
	g_hash_table_remove(e->locations, k);
}

int relay_sfu_edge_new(struct relay_sfu *s, const char *url, const char *token_file,
		       struct relay_sfu_edge **out)
{
	struct relay_sfu_edge *e;
	const char *h = url;
	char *colon;

	if (strncmp(url, "http://", 7) != 0) {
		cn_log_error("sfu", "sfu_edge_url must be http://host:port, not '%s'", url);
		return CN_E_CONFIG;
	}
	h += 7;
	if (!(e = calloc(1, sizeof(*e))))
		return -ENOMEM;
	e->refs = 1;
	e->alive = true;
	e->s = s;
	size_t hl = strcspn(h, "/");
	if (hl == 0 || hl >= sizeof(e->host) || h[hl + (h[hl] == '/')] != '\0') {
		cn_log_error("sfu", "sfu_edge_url must be http://host:port with no path, not '%s'", url);
		free(e);
		return CN_E_CONFIG;
	}
	memcpy(e->host, h, hl);
	e->host[hl] = '\0';
	if ((colon = strrchr(e->host, ':')) && !strchr(colon, ']')) {
		*colon = '\0';
		cn_strlcpy(e->port, colon + 1, sizeof(e->port));
	} else {
		cn_strlcpy(e->port, "80", sizeof(e->port));
	}
	if (e->host[0] == '[') { /* [v6]:port */
		size_t l = strlen(e->host);
		if (l < 2 || e->host[l - 1] != ']') {
			free(e);
			return CN_E_CONFIG;
		}
		memmove(e->host, e->host + 1, l - 2);
		e->host[l - 2] = '\0';
	}
	cn_strlcpy(e->token_file, token_file ? token_file : "", sizeof(e->token_file));
	e->locations = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	e->closed = g_hash_table_new(g_direct_hash, g_direct_equal);
	*out = e;
	return 0;
}

void relay_sfu_edge_free(struct relay_sfu_edge *e)
{
	if (!e)
		return;
	e->alive = false;
	edge_unref(e);
}
