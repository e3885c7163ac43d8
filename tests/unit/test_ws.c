/* test_ws.c: WebSocket server and client on one loop: TLS, echo, limits, failures, pings, teardown. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>
#include <openssl/evp.h>

#include "cn_base64.h"
#include "cn_http.h"
#include "cn_log.h"
#include "cn_loop.h"
#include "cn_test.h"
#include "cn_ws.h"

/* Certificates, made once per run with the openssl CLI (ECDSA P-256, as central issues):
 * ca1 signs srv (127.0.0.1, localhost), other (other.example only) and cli; ca2 signs srv2
 * and cli2. */
static char *certdir;
static const char *const cert_names[] = { "ca1", "ca2", "srv", "srv2", "other", "cli", "cli2" };

static const char *cpath(const char *name, const char *ext)
{
	static char bufs[8][512];
	static int next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s.%s", certdir, name, ext);
	return b;
}

static void certs_remove(void)
{
	for (size_t i = 0; certdir && i < sizeof(cert_names) / sizeof(cert_names[0]); i++) {
		unlink(cpath(cert_names[i], "pem"));
		unlink(cpath(cert_names[i], "key"));
	}
	if (certdir)
		rmdir(certdir);
	g_free(certdir);
	certdir = NULL;
}

static bool openssl_req(const char *name, const char *ca, const char *san)
{
	char subj[64], san_ext[128];
	const char *argv[32];
	int n = 0, status = -1;

	snprintf(subj, sizeof(subj), "/CN=%s", name);
	argv[n++] = "openssl";
	argv[n++] = "req";
	argv[n++] = "-x509";
	if (ca) {
		argv[n++] = "-CA";
		argv[n++] = cpath(ca, "pem");
		argv[n++] = "-CAkey";
		argv[n++] = cpath(ca, "key");
		argv[n++] = "-addext";
		argv[n++] = "basicConstraints=critical,CA:FALSE";
		argv[n++] = "-addext";
		argv[n++] = "extendedKeyUsage=serverAuth,clientAuth";
	}
	if (san) {
		snprintf(san_ext, sizeof(san_ext), "subjectAltName=%s", san);
		argv[n++] = "-addext";
		argv[n++] = san_ext;
	}
	argv[n++] = "-newkey";
	argv[n++] = "ec";
	argv[n++] = "-pkeyopt";
	argv[n++] = "ec_paramgen_curve:P-256";
	argv[n++] = "-nodes";
	argv[n++] = "-days";
	argv[n++] = "2";
	argv[n++] = "-subj";
	argv[n++] = subj;
	argv[n++] = "-keyout";
	argv[n++] = cpath(name, "key");
	argv[n++] = "-out";
	argv[n++] = cpath(name, "pem");
	argv[n] = NULL;
	if (!g_spawn_sync(NULL, (char **)argv, NULL,
			  G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
			  NULL, NULL, NULL, NULL, &status, NULL))
		return false;
	return g_spawn_check_wait_status(status, NULL);
}

static bool certs_ready(void)
{
	char tmpl[] = "/tmp/canopy-ws-XXXXXX";

	if (certdir)
		return true;
	if (!mkdtemp(tmpl))
		return false;
	certdir = g_strdup(tmpl);
	atexit(certs_remove);
	if (openssl_req("ca1", NULL, NULL) && openssl_req("ca2", NULL, NULL) &&
	    openssl_req("srv", "ca1", "IP:127.0.0.1,DNS:localhost") &&
	    openssl_req("srv2", "ca2", "IP:127.0.0.1,DNS:localhost") &&
	    openssl_req("other", "ca1", "DNS:other.example") && openssl_req("cli", "ca1", NULL) &&
	    openssl_req("cli2", "ca2", NULL))
		return true;
	fprintf(stdout, "    cannot make test certificates with the openssl CLI\n");
	return false;
}

/* A port nothing listens on (bound, read back, closed). */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static gboolean tick(gpointer p)
{
	(void)p;
	return G_SOURCE_CONTINUE;
}

/* Runs the loop until cond holds or ms pass, so no test can hang. */
#define SPIN_UNTIL(l, cond, ms)                                                        \
	do {                                                                           \
		int64_t end_ = g_get_monotonic_time() + (int64_t)(ms) * 1000;          \
		guint t_ = g_timeout_add(5, tick, NULL);                               \
		while (!(cond) && g_get_monotonic_time() < end_)                       \
			g_main_context_iteration((l)->ctx, TRUE);                      \
		g_source_remove(t_);                                                   \
	} while (0)

/* One end's view: what its callbacks saw. */
struct side {
	int opened;
	int closed;
	int close_code;
	bool echo;
	struct cn_ws_conn *conn;
	GPtrArray *msgs; /* GBytes, in order */
	struct cn_buf cert;
	int cert_rc;
};

static void side_init(struct side *s)
{
	memset(s, 0, sizeof(*s));
	s->msgs = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	cn_buf_init(&s->cert, 1 << 16);
	s->cert_rc = 1;
}

static void side_free(struct side *s)
{
	g_ptr_array_unref(s->msgs);
	cn_buf_free(&s->cert);
}

static void on_open(struct cn_ws_conn *c, void *arg)
{
	struct side *s = arg;

	s->opened++;
	s->conn = c;
	cn_buf_reset(&s->cert);
	s->cert_rc = cn_ws_peer_cert(c, &s->cert);
	cn_ws_set_user(c, s);
}

static void on_message(struct cn_ws_conn *c, const char *data, size_t len, void *arg)
{
	struct side *s = arg;

	CHECK(cn_ws_user(c) == s);
	g_ptr_array_add(s->msgs, g_bytes_new(data, len));
	if (s->echo)
		CHECK_INT(cn_ws_send(c, data, len), 0);
}

static void on_close(struct cn_ws_conn *c, void *arg)
{
	struct side *s = arg;

	s->closed++;
	s->close_code = cn_ws_close_code(c);
	CHECK_INT(cn_ws_send(c, "x", 1), -EPIPE);
	if (s->conn == c)
		s->conn = NULL;
}

static const struct cn_ws_ops ops = { on_open, on_message, on_close };

static bool msg_is(struct side *s, unsigned i, const void *data, size_t len)
{
	gsize n;
	const void *p;

	if (i >= s->msgs->len)
		return false;
	p = g_bytes_get_data(g_ptr_array_index(s->msgs, i), &n);
	return n == len && (len == 0 || memcmp(p, data, len) == 0);
}

static int healthz(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	(void)req;
	(void)arg;
	cn_strlcpy(resp->content_type, "application/json", sizeof(resp->content_type));
	return cn_buf_append_str(&resp->body, "{\"status\":\"ok\"}");
}

struct fx {
	struct cn_loop l;
	struct cn_http_server *http;
	int port;
	struct side srv;
	struct side cli;
};

/* A loop with a listener (TLS when cert is set) serving /healthz and an echoing /uplink. */
static bool fx_start(struct fx *f, const char *cert, const char *ca, size_t max_msg)
{
	struct cn_http_tls tls = { 0 };

	memset(f, 0, sizeof(*f));
	if (getenv("WS_DEBUG")) { /* WS_DEBUG=1 build/tests/unit-tests ws_: lws's own account */
		cn_log_set_level(CN_LOG_DEBUG);
		cn_log_set_debug("lws,ws,http");
	}
	side_init(&f->srv);
	side_init(&f->cli);
	f->srv.echo = true;
	if (cert) {
		if (!certs_ready())
			return false;
		tls.cert_path = cpath(cert, "pem");
		tls.key_path = cpath(cert, "key");
		tls.ca_path = ca ? cpath(ca, "pem") : NULL;
	}
	CHECK_INT(cn_loop_init(&f->l), 0);
	f->port = free_port();
	CHECK_INT(cn_http_listen_tls(&f->l, "test", "127.0.0.1", f->port, 1 << 20,
				     cert ? &tls : NULL, &f->http),
		  0);
	if (!f->http)
		return false;
	CHECK_INT(cn_http_route(f->http, CN_HTTP_GET, "/healthz", healthz, NULL), 0);
	CHECK_INT(cn_ws_serve(f->http, "/uplink", max_msg, &ops, &f->srv), 0);
	return true;
}

static void fx_stop(struct fx *f)
{
	cn_loop_destroy(&f->l);
	cn_http_close(f->http);
	side_free(&f->srv);
	side_free(&f->cli);
}

/* Connects to scheme://host:<f's port>path. */
static int fx_connect(struct fx *f, const char *scheme_host, const char *path, const char *ca,
		      const char *cert, size_t max_msg, struct side *s)
{
	struct cn_ws_client_opts o = { 0 };
	struct cn_ws_conn *c = NULL;
	char url[256];

	snprintf(url, sizeof(url), "%s:%d%s", scheme_host, f->port, path);
	o.url = url;
	o.ca_path = ca ? cpath(ca, "pem") : NULL;
	o.cert_path = cert ? cpath(cert, "pem") : NULL;
	o.key_path = cert ? cpath(cert, "key") : NULL;
	o.max_msg = max_msg;
	o.connect_timeout_ms = 5000;
	return cn_ws_connect(&f->l, &o, &ops, s, &c);
}

/* Value of one sample line ("name{labels}") of cn_ws_metrics, -1 if absent. */
static long long metric(const char *sample)
{
	struct cn_buf out;
	long long v = -1;
	size_t n = strlen(sample);

	cn_buf_init(&out, 1 << 20);
	if (cn_ws_metrics(&out, NULL) == 0) {
		for (const char *p = out.data; p && (p = strstr(p, sample)); p += n) {
			if ((p == out.data || p[-1] == '\n') && p[n] == ' ') {
				v = strtoll(p + n + 1, NULL, 10);
				break;
			}
		}
	}
	cn_buf_free(&out);
	return v;
}

/* Runs a command while the loop keeps serving; its exit status (-1: did not run or took
 * over 10 s) and what it wrote to stdout and stderr. */
static int run_tool(struct cn_loop *l, const char *const *argv, char **out)
{
	GPid pid;
	int out_fd, err_fd, status = -1;
	bool done = false;
	GString *s = g_string_new(NULL);

	*out = NULL;
	if (!g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
				      G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
				      NULL, &out_fd, &err_fd, NULL)) {
		g_string_free(s, TRUE);
		return -1;
	}
	int64_t end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	while (!done && g_get_monotonic_time() < end) {
		g_main_context_iteration(l->ctx, FALSE);
		done = waitpid(pid, &status, WNOHANG) == pid;
		if (!done)
			g_usleep(2000);
	}
	if (!done) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		status = -1;
	}
	for (int i = 0; i < 2; i++) {
		char buf[4096];
		ssize_t n;
		while ((n = read(i ? err_fd : out_fd, buf, sizeof(buf))) > 0)
			g_string_append_len(s, buf, n);
	}
	close(out_fd);
	close(err_fd);
	g_spawn_close_pid(pid);
	*out = g_string_free(s, FALSE);
	return done && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ws_tls_echo_small_and_1mib)
{
	struct fx f;
	size_t big_len = (1 << 20) - 7;
	char *big = g_malloc(big_len);
	long long in0 = metric("canopy_ws_messages_received_total{side=\"server\"}");

	if (!fx_start(&f, "srv", NULL, 2 << 20))
		goto out_free;
	/* A JSON-ish text message spanning many frames and receive pieces. */
	for (size_t i = 0; i < big_len; i++)
		big[i] = (char)('a' + (i * 7) % 26);
	big[0] = '{';
	big[big_len - 1] = '}';
	CHECK_INT(fx_connect(&f, "wss://127.0.0.1", "/uplink", "ca1", NULL, 2 << 20, &f.cli), 0);
	SPIN_UNTIL(&f.l, f.cli.opened == 1 && f.srv.opened == 1, 5000);
	CHECK_INT(f.cli.opened, 1);
	CHECK_INT(f.srv.opened, 1);
	CHECK_STR(cn_ws_peer(f.srv.conn), "127.0.0.1");
	CHECK_STR(cn_ws_peer(f.cli.conn), "127.0.0.1");
	CHECK_INT(f.srv.cert_rc, -ENOENT); /* no client certificates asked for */
	CHECK_INT(f.cli.cert_rc, 0);       /* the server's, verified */
	CHECK(f.cli.cert.len > 100);
	CHECK_INT(metric("canopy_ws_connections{side=\"server\"}"), 1);
	CHECK_INT(metric("canopy_ws_connections{side=\"client\"}"), 1);

	CHECK_INT(cn_ws_send(f.cli.conn, "{\"type\":\"hello\"}", 16), 0);
	CHECK_INT(cn_ws_send(f.cli.conn, big, big_len), 0);
	CHECK_INT(cn_ws_send(f.cli.conn, "", 0), 0);
	CHECK(cn_ws_queued(f.cli.conn) == big_len + 16);
	SPIN_UNTIL(&f.l, f.cli.msgs->len == 3, 10000);
	CHECK_INT(f.srv.msgs->len, 3);
	CHECK_INT(f.cli.msgs->len, 3);
	CHECK(msg_is(&f.srv, 0, "{\"type\":\"hello\"}", 16));
	CHECK(msg_is(&f.srv, 1, big, big_len));
	CHECK(msg_is(&f.cli, 0, "{\"type\":\"hello\"}", 16));
	CHECK(msg_is(&f.cli, 1, big, big_len));
	CHECK(msg_is(&f.cli, 2, "", 0));
	CHECK(f.cli.conn && cn_ws_queued(f.cli.conn) == 0);
	CHECK_INT(metric("canopy_ws_messages_received_total{side=\"server\"}") - in0, 3);

	/* Close with a status: both ends hear of it, the server through the close frame. */
	cn_ws_close_status(f.cli.conn, 4001, "bye");
	CHECK_INT(f.cli.closed, 0); /* never from inside cn_ws_close */
	SPIN_UNTIL(&f.l, f.cli.closed == 1 && f.srv.closed == 1, 5000);
	CHECK_INT(f.cli.closed, 1);
	CHECK_INT(f.srv.closed, 1);
	CHECK_INT(f.srv.close_code, 4001);
	CHECK_INT(f.cli.close_code, 4001);
	CHECK_INT(metric("canopy_ws_connections{side=\"server\"}"), 0);
	fx_stop(&f);
out_free:
	g_free(big);
}

TEST(ws_tls_listener_keeps_http_and_speaks_to_independent_peers)
{
	struct fx f;
	char port[16], connect[64], url[128], *out = NULL;

	if (!fx_start(&f, "srv", NULL, 4096))
		return;
	snprintf(port, sizeof(port), "%d", f.port);
	snprintf(connect, sizeof(connect), "127.0.0.1:%d", f.port);
	/* openssl s_client: the handshake verifies against ca1 and the IP. */
	const char *sc[] = { "openssl", "s_client", "-connect", connect, "-CAfile", cpath("ca1", "pem"),
			     "-verify_return_error", "-verify_ip", "127.0.0.1", "-brief", NULL };
	CHECK_INT(run_tool(&f.l, sc, &out), 0);
	CHECK(out && strstr(out, "Verification: OK"));
	g_free(out);
	const char *sc2[] = { "openssl", "s_client", "-connect", connect, "-CAfile", cpath("ca2", "pem"),
			      "-verify_return_error", "-brief", NULL };
	CHECK(run_tool(&f.l, sc2, &out) != 0);
	g_free(out);

	gchar *curl = g_find_program_in_path("curl");
	if (!curl) {
		fprintf(stdout, "    (curl not installed: HTTPS route checks skipped)\n");
		fx_stop(&f);
		return;
	}
	g_free(curl);
	/* /healthz still served, over HTTP/1.1 even to a client offering h2. */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/healthz", f.port);
	const char *c1[] = { "curl", "-sS", "--http2", "--cacert", cpath("ca1", "pem"),
			     "-w", "\n%{http_code} %{http_version}", url, NULL };
	CHECK_INT(run_tool(&f.l, c1, &out), 0);
	CHECK(out && strstr(out, "{\"status\":\"ok\"}\n200 1.1"));
	g_free(out);
	/* A plain GET on the WebSocket path: 426 as problem+json. */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/uplink", f.port);
	const char *c2[] = { "curl", "-sS", "-i", "--cacert", cpath("ca1", "pem"), url, NULL };
	CHECK_INT(run_tool(&f.l, c2, &out), 0);
	CHECK(out && strstr(out, "HTTP/1.1 426"));
	CHECK(out && strstr(out, "application/problem+json"));
	CHECK(out && strstr(out, "\"title\":\"Upgrade Required\""));
	CHECK(out && strcasestr(out, "upgrade: websocket"));
	g_free(out);
	const char *c3[] = { "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
			     "--cacert", cpath("ca1", "pem"), url, NULL };
	CHECK_INT(run_tool(&f.l, c3, &out), 0);
	CHECK_STR(out, "405");
	g_free(out);
	CHECK_INT(f.srv.opened, 0);
	fx_stop(&f);
}

TEST(ws_oversize_closes_with_1009)
{
	struct fx f;
	char *big = g_malloc(40000);
	long long over0 = metric("canopy_ws_oversize_closes_total{side=\"server\"}");

	memset(big, 'x', 40000);
	if (!fx_start(&f, "srv", NULL, 32768))
		goto out_free;
	CHECK_INT(fx_connect(&f, "wss://127.0.0.1", "/uplink", "ca1", NULL, 1 << 20, &f.cli), 0);
	SPIN_UNTIL(&f.l, f.cli.opened == 1, 5000);
	/* Exactly the limit passes; one byte more, split over frames, does not. */
	CHECK_INT(cn_ws_send(f.cli.conn, big, 32768), 0);
	CHECK_INT(cn_ws_send(f.cli.conn, big, 32769), 0);
	SPIN_UNTIL(&f.l, f.cli.closed == 1 && f.srv.closed == 1, 5000);
	CHECK_INT(f.srv.msgs->len, 1);
	CHECK(msg_is(&f.srv, 0, big, 32768));
	CHECK_INT(f.cli.closed, 1);
	CHECK_INT(f.cli.close_code, 1009);
	CHECK_INT(f.srv.close_code, 1009);
	CHECK_INT(metric("canopy_ws_oversize_closes_total{side=\"server\"}") - over0, 1);

	/* The client's own limit, against what the server sends. */
	f.srv.closed = f.cli.closed = f.cli.opened = f.srv.opened = 0;
	CHECK_INT(fx_connect(&f, "wss://127.0.0.1", "/uplink", "ca1", NULL, 1000, &f.cli), 0);
	SPIN_UNTIL(&f.l, f.cli.opened == 1 && f.srv.opened == 1, 5000);
	CHECK(f.srv.conn && cn_ws_send(f.srv.conn, big, 1001) == 0);
	SPIN_UNTIL(&f.l, f.cli.closed == 1 && f.srv.closed == 1, 5000);
	CHECK_INT(f.cli.close_code, 1009);
	CHECK_INT(f.srv.close_code, 1009);
	fx_stop(&f);
out_free:
	g_free(big);
}

TEST(ws_invalid_utf8_closes_with_1007)
{
	struct fx f;

	if (!fx_start(&f, NULL, NULL, 4096))
		return;
	CHECK_INT(fx_connect(&f, "ws://127.0.0.1", "/uplink", NULL, NULL, 4096, &f.cli), 0);
	SPIN_UNTIL(&f.l, f.cli.opened == 1, 5000);
	CHECK_INT(cn_ws_send(f.cli.conn, "{\"a\":\"\xff\xfe\"}", 10), 0);
	SPIN_UNTIL(&f.l, f.cli.closed == 1 && f.srv.closed == 1, 5000);
	CHECK_INT(f.srv.msgs->len, 0);
	CHECK_INT(f.cli.close_code, 1007);
	fx_stop(&f);
}

TEST(ws_client_refuses_other_ca_and_other_name)
{
	struct fx f;
	long long failed0 = metric("canopy_ws_connect_failures_total{side=\"client\"}");

	/* The server's certificate comes from ca2; the client trusts ca1 only. */
	if (!fx_start(&f, "srv2", NULL, 4096))
		return;
	CHECK_INT(fx_connect(&f, "wss://127.0.0.1", "/uplink", "ca1", NULL, 4096, &f.cli), 0);
	SPIN_UNTIL(&f.l, f.cli.closed == 1, 5000);
	CHECK_INT(f.cli.closed, 1);
	CHECK_INT(f.cli.opened, 0);
	CHECK_INT(f.cli.msgs->len, 0);
	CHECK_INT(f.cli.close_code, 1006);
	CHECK_INT(f.srv.opened, 0);
	CHECK_INT(metric("canopy_ws_connect_failures_total{side=\"client\"}") - failed0, 1);
	fx_stop(&f);

	/* Signed by the trusted ca1, but for another name. */
	if (!fx_start(&f, "other", NULL, 4096))
		return;
	CHECK_INT(fx_connect(&f, "wss://127.0.0.1", "/uplink", "ca1", NULL, 4096, &f.cli), 0);
	SPIN_UNTIL(&f.l, f.cli.closed == 1, 5000);
	CHECK_INT(f.cli.closed, 1);
	CHECK_INT(f.cli.opened, 0);
	CHECK_INT(f.srv.opened, 0);
	fx_stop(&f);

	/* The right ca and a name the certificate has: through the resolver thread. */
	if (!fx_start(&f, "srv", NULL, 4096))
		return;
	CHECK_INT(fx_connect(&f, "wss://localhost", "/uplink", "ca1", NULL, 4096, &f.cli), 0);
	SPIN_UNTIL(&f.l, f.cli.opened == 1 || f.cli.closed == 1, 5000);
	CHECK_INT(f.cli.opened, 1);
	CHECK(f.cli.conn && strcmp(cn_ws_peer(f.cli.conn), "127.0.0.1") == 0);
	fx_stop(&f);
	CHECK_INT(f.cli.closed, 1); /* by the loop's end */
}

TEST(ws_client_certificates)
{
	struct fx f;
	struct side a, b, c;

	side_init(&a);
	side_init(&b);
	side_init(&c);
	if (!fx_start(&f, "srv", "ca1", 4096))
		goto out_free;
	/* Signed by the server's client ca: seen by the server. */
	CHECK_INT(fx_connect(&f, "wss://127.0.0.1", "/uplink", "ca1", "cli", 4096, &a), 0);
	SPIN_UNTIL(&f.l, a.opened == 1 && f.srv.opened == 1, 5000);
	CHECK_INT(a.opened, 1);
	CHECK_INT(f.srv.cert_rc, 0);
	CHECK(f.srv.cert.len > 100);
	/* None at all: allowed (enrolment), and visible as none. */
	CHECK_INT(fx_connect(&f, "wss://127.0.0.1", "/uplink", "ca1", NULL, 4096, &b), 0);
	SPIN_UNTIL(&f.l, b.opened == 1 && f.srv.opened == 2, 5000);
	CHECK_INT(b.opened, 1);
	CHECK_INT(f.srv.cert_rc, -ENOENT);
	/* From another ca: the handshake fails. */
	CHECK_INT(fx_connect(&f, "wss://127.0.0.1", "/uplink", "ca1", "cli2", 4096, &c), 0);
	SPIN_UNTIL(&f.l, c.closed == 1, 5000);
	CHECK_INT(c.opened, 0);
	CHECK_INT(c.closed, 1);
	CHECK_INT(f.srv.opened, 2);
	/* Bad options are refused at once, without callbacks. */
	struct cn_ws_client_opts o = { .url = "wss://127.0.0.1:1/x", .max_msg = 10 };
	struct cn_ws_conn *conn = NULL;
	CHECK_INT(cn_ws_connect(&f.l, &o, &ops, &c, &conn), -EINVAL); /* no ca */
	o.ca_path = cpath("ca1", "pem");
	o.cert_path = cpath("cli", "pem");
	CHECK_INT(cn_ws_connect(&f.l, &o, &ops, &c, &conn), -EINVAL); /* cert without key */
	o.cert_path = NULL;
	o.ca_path = "/nonexistent/ca.pem";
	CHECK_INT(cn_ws_connect(&f.l, &o, &ops, &c, &conn), -ENOENT);
	static const char *const bad[] = { "http://127.0.0.1/", "ws://", "ws://:80/",
					   "ws://user@host/", "ws://[::1]:80/", "ws://h:0/",
					   "ws://h:65536/", "ws://h/a b", "ws://h/#f" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.url = bad[i];
		CHECK_INT(cn_ws_connect(&f.l, &o, &ops, &c, &conn), -EINVAL);
	}
	CHECK_INT(c.closed, 1);
	fx_stop(&f);
	CHECK_INT(a.closed, 1);
	CHECK_INT(b.closed, 1);
out_free:
	side_free(&a);
	side_free(&b);
	side_free(&c);
}

TEST(ws_plain_echo_routes_and_failures)
{
	struct fx f;
	struct side wrong;
	char *out = NULL, url[128];

	side_init(&wrong);
	if (!fx_start(&f, NULL, NULL, 4096))
		goto out_free;
	CHECK_INT(fx_connect(&f, "ws://127.0.0.1", "/uplink", NULL, NULL, 4096, &f.cli), 0);
	SPIN_UNTIL(&f.l, f.cli.opened == 1, 5000);
	CHECK_INT(f.cli.cert_rc, -ENOENT);
	CHECK_INT(cn_ws_send(f.cli.conn, "[1,2,3]", 7), 0);
	SPIN_UNTIL(&f.l, f.cli.msgs->len == 1, 5000);
	CHECK(msg_is(&f.cli, 0, "[1,2,3]", 7));
	/* Upgrades anywhere else are refused. */
	CHECK_INT(fx_connect(&f, "ws://127.0.0.1", "/healthz", NULL, NULL, 4096, &wrong), 0);
	SPIN_UNTIL(&f.l, wrong.closed == 1, 5000);
	CHECK_INT(wrong.opened, 0);
	CHECK_INT(wrong.closed, 1);
	CHECK_INT(f.srv.opened, 1);
	/* A second server endpoint on the same path is refused. */
	CHECK_INT(cn_ws_serve(f.http, "/uplink", 10, &ops, NULL), -EEXIST);
	CHECK_INT(cn_ws_serve(f.http, "/dir/", 10, &ops, NULL), -EINVAL);
	gchar *curl = g_find_program_in_path("curl");
	if (curl) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", f.port);
		const char *c1[] = { "curl", "-sS", "-w", " %{http_code}", url, NULL };
		CHECK_INT(run_tool(&f.l, c1, &out), 0);
		CHECK_STR(out, "{\"status\":\"ok\"} 200");
		g_free(out);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/uplink", f.port);
		const char *c2[] = { "curl", "-sS", "-w", " %{http_code}", url, NULL };
		CHECK_INT(run_tool(&f.l, c2, &out), 0);
		CHECK(out && strstr(out, "Upgrade Required") && g_str_has_suffix(out, " 426"));
		g_free(out);
	}
	g_free(curl);
	/* The connection survived all of that. */
	CHECK(f.cli.conn != NULL);
	CHECK_INT(f.cli.closed, 0);

	/* Nothing listening: fails fast and cleanly. */
	struct side refused;
	side_init(&refused);
	struct cn_ws_client_opts o = { .url = url, .max_msg = 10, .connect_timeout_ms = 5000 };
	struct cn_ws_conn *conn = NULL;
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d/uplink", free_port());
	int64_t t0 = g_get_monotonic_time();
	CHECK_INT(cn_ws_connect(&f.l, &o, &ops, &refused, &conn), 0);
	CHECK_INT(refused.closed, 0);
	SPIN_UNTIL(&f.l, refused.closed == 1, 5000);
	CHECK_INT(refused.closed, 1);
	CHECK_INT(refused.opened, 0);
	CHECK(g_get_monotonic_time() - t0 < 2 * G_USEC_PER_SEC);
	side_free(&refused);
	fx_stop(&f);
out_free:
	side_free(&wrong);
}

TEST(ws_send_queue_is_bounded)
{
	struct fx f;
	size_t chunk = 64 * 1024;
	char *buf = g_malloc(chunk);
	long long full0 = metric("canopy_ws_send_queue_full_total{side=\"client\"}");
	int sent = 0;

	memset(buf, 'q', chunk);
	if (!fx_start(&f, NULL, NULL, 1 << 20))
		goto out_free;
	CHECK_INT(fx_connect(&f, "ws://127.0.0.1", "/uplink", NULL, NULL, 1 << 20, &f.cli), 0);
	SPIN_UNTIL(&f.l, f.cli.opened == 1, 5000);
	/* Without the loop running nothing drains: the queue fills and then refuses. */
	while (sent < 1000 && cn_ws_send(f.cli.conn, buf, chunk) == 0)
		sent++;
	CHECK_INT(sent, 63); /* 4 MiB over 64 KiB plus the per-message allowance */
	CHECK_INT(cn_ws_send(f.cli.conn, buf, chunk), -ENOBUFS);
	CHECK(cn_ws_queued(f.cli.conn) <= CN_WS_SEND_QUEUE_MAX);
	CHECK_INT(metric("canopy_ws_send_queue_full_total{side=\"client\"}") - full0, 2);
	CHECK_INT(cn_ws_send(f.cli.conn, buf, CN_WS_SEND_QUEUE_MAX), -EMSGSIZE);
	/* Then it drains, in order and complete. */
	SPIN_UNTIL(&f.l, f.cli.msgs->len == (unsigned)sent, 10000);
	CHECK_INT(f.cli.msgs->len, sent);
	CHECK(msg_is(&f.cli, (unsigned)sent - 1, buf, chunk));
	CHECK(f.cli.conn && cn_ws_queued(f.cli.conn) == 0);
	fx_stop(&f);
out_free:
	g_free(buf);
}

/* A peer that completes the upgrade, then never answers anything (a dead link). */
struct silent {
	int lfd;
	int fd;
	guint lwatch;
	guint watch;
	GString *req;
	bool upgraded;
	bool hung_up;
};

static gboolean silent_read(gint fd, GIOCondition cond, gpointer p)
{
	struct silent *s = p;
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf));

	(void)cond;
	if (n <= 0) {
		s->hung_up = true;
		s->watch = 0;
		return G_SOURCE_REMOVE;
	}
	if (s->upgraded)
		return G_SOURCE_CONTINUE; /* pings go unanswered */
	g_string_append_len(s->req, buf, n);
	const char *key = strcasestr(s->req->str, "sec-websocket-key:");
	if (!strstr(s->req->str, "\r\n\r\n") || !key)
		return G_SOURCE_CONTINUE;
	key += strlen("sec-websocket-key:");
	while (*key == ' ')
		key++;
	char kg[128], acc[64], resp[256];
	uint8_t sha[EVP_MAX_MD_SIZE];
	unsigned shalen = 0;
	size_t alen;
	int kl = (int)strcspn(key, "\r");
	int n2 = snprintf(kg, sizeof(kg), "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", kl, key);
	EVP_Digest(kg, (size_t)n2, sha, &shalen, EVP_sha1(), NULL);
	cn_base64_encode(CN_B64_STD, sha, shalen, acc, sizeof(acc), &alen);
	int rl = snprintf(resp, sizeof(resp),
			  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			  acc);
	CHECK(write(fd, resp, (size_t)rl) == rl);
	s->upgraded = true;
	return G_SOURCE_CONTINUE;
}

static gboolean silent_accept(gint fd, GIOCondition cond, gpointer p)
{
	struct silent *s = p;

	(void)cond;
	s->fd = accept(fd, NULL, NULL);
	if (s->fd >= 0)
		s->watch = g_unix_fd_add(s->fd, G_IO_IN | G_IO_HUP, silent_read, s);
	s->lwatch = 0;
	return G_SOURCE_REMOVE;
}

TEST(ws_client_pings_and_drops_a_dead_link)
{
	struct fx f;
	struct side dead;
	struct silent s = { .lfd = -1, .fd = -1 };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	char url[128];

	side_init(&dead);
	if (!fx_start(&f, NULL, NULL, 4096))
		goto out_free;
	/* A live server answers pings: an idle link with 1 s pings stays up. */
	struct cn_ws_client_opts o = { .url = url, .max_msg = 4096, .ping_interval_s = 1 };
	struct cn_ws_conn *conn = NULL;
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d/uplink", f.port);
	CHECK_INT(cn_ws_connect(&f.l, &o, &ops, &f.cli, &conn), 0);
	SPIN_UNTIL(&f.l, f.cli.opened == 1, 5000);
	SPIN_UNTIL(&f.l, f.cli.closed == 1, 2500);
	CHECK_INT(f.cli.opened, 1);
	CHECK_INT(f.cli.closed, 0);

	/* A silent one: the link is dropped once a ping goes unanswered. */
	s.req = g_string_new(NULL);
	s.lfd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(bind(s.lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(s.lfd, 4) == 0 &&
	      getsockname(s.lfd, (struct sockaddr *)&a, &alen) == 0);
	s.lwatch = g_unix_fd_add(s.lfd, G_IO_IN, silent_accept, &s);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d/", ntohs(a.sin_port));
	int64_t t0 = g_get_monotonic_time();
	CHECK_INT(cn_ws_connect(&f.l, &o, &ops, &dead, &conn), 0);
	SPIN_UNTIL(&f.l, dead.opened == 1, 5000);
	CHECK_INT(dead.opened, 1);
	SPIN_UNTIL(&f.l, dead.closed == 1, 6000);
	CHECK_INT(dead.closed, 1);
	CHECK(g_get_monotonic_time() - t0 >= 1500 * 1000);
	SPIN_UNTIL(&f.l, s.hung_up, 2000);
	CHECK(s.hung_up);
	if (s.watch)
		g_source_remove(s.watch);
	if (s.lwatch)
		g_source_remove(s.lwatch);
	if (s.fd >= 0)
		close(s.fd);
	close(s.lfd);
	g_string_free(s.req, TRUE);
	fx_stop(&f);
out_free:
	side_free(&dead);
}

TEST(ws_loop_destroy_settles_every_connection)
{
	struct fx f;
	struct side stuck, named;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	char url[128];

	side_init(&stuck);
	side_init(&named);
	if (!fx_start(&f, "srv", NULL, 4096))
		goto out_free;
	CHECK_INT(fx_connect(&f, "wss://127.0.0.1", "/uplink", "ca1", NULL, 4096, &f.cli), 0);
	SPIN_UNTIL(&f.l, f.cli.opened == 1 && f.srv.opened == 1, 5000);
	CHECK_INT(cn_ws_send(f.cli.conn, "queued, never sent", 18), 0);
	/* A server that accepts TCP and never speaks TLS: the client waits in the handshake. */
	CHECK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, 4) == 0 &&
	      getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
	struct cn_ws_client_opts o = { .url = url, .max_msg = 10, .ca_path = cpath("ca1", "pem"),
				       .connect_timeout_ms = 60000 };
	struct cn_ws_conn *conn = NULL;
	snprintf(url, sizeof(url), "wss://127.0.0.1:%d/", ntohs(a.sin_port));
	CHECK_INT(cn_ws_connect(&f.l, &o, &ops, &stuck, &conn), 0);
	/* And one still looking its name up, or just done: settled either way. */
	snprintf(url, sizeof(url), "wss://localhost:%d/", ntohs(a.sin_port));
	CHECK_INT(cn_ws_connect(&f.l, &o, &ops, &named, &conn), 0);
	SPIN_UNTIL(&f.l, false, 200);
	CHECK_INT(stuck.closed, 0);
	fx_stop(&f);
	CHECK_INT(f.srv.closed, 1);
	CHECK_INT(f.cli.closed, 1);
	CHECK_INT(stuck.closed, 1);
	CHECK_INT(stuck.opened, 0);
	CHECK_INT(named.closed, 1);
	/* A destroyed loop refuses new clients. */
	CHECK_INT(cn_ws_connect(&f.l, &o, &ops, &stuck, &conn), -ESHUTDOWN);
out_free:
	close(lfd);
	side_free(&stuck);
	side_free(&named);
}

TEST(ws_close_timeouts_and_cancel)
{
	struct fx f;
	struct side slow, cancelled;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	char url[128];

	side_init(&slow);
	side_init(&cancelled);
	if (!fx_start(&f, "srv", NULL, 4096))
		goto out_free;
	CHECK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, 4) == 0 &&
	      getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
	struct cn_ws_client_opts o = { .url = url, .max_msg = 10, .ca_path = cpath("ca1", "pem"),
				       .connect_timeout_ms = 300 };
	struct cn_ws_conn *conn = NULL;
	snprintf(url, sizeof(url), "wss://127.0.0.1:%d/", ntohs(a.sin_port));
	int64_t t0 = g_get_monotonic_time();
	CHECK_INT(cn_ws_connect(&f.l, &o, &ops, &slow, &conn), 0);
	SPIN_UNTIL(&f.l, slow.closed == 1, 5000);
	CHECK_INT(slow.closed, 1);
	CHECK(g_get_monotonic_time() - t0 >= 250 * 1000);
	CHECK(g_get_monotonic_time() - t0 < 2 * G_USEC_PER_SEC);
	/* Closing a client that is still dialing: on_close comes later, once. */
	o.connect_timeout_ms = 60000;
	CHECK_INT(cn_ws_connect(&f.l, &o, &ops, &cancelled, &conn), 0);
	cn_ws_close(conn);
	cn_ws_close(conn);
	CHECK_INT(cancelled.closed, 0);
	SPIN_UNTIL(&f.l, cancelled.closed == 1, 2000);
	SPIN_UNTIL(&f.l, false, 100);
	CHECK_INT(cancelled.closed, 1);
	CHECK_INT(cancelled.opened, 0);
	/* The server side closing: the client hears 1000. */
	CHECK_INT(fx_connect(&f, "wss://127.0.0.1", "/uplink", "ca1", NULL, 4096, &f.cli), 0);
	SPIN_UNTIL(&f.l, f.srv.opened == 1 && f.cli.opened == 1, 5000);
	CHECK(f.srv.conn != NULL);
	if (f.srv.conn)
		cn_ws_close(f.srv.conn);
	SPIN_UNTIL(&f.l, f.srv.closed == 1 && f.cli.closed == 1, 5000);
	CHECK_INT(f.cli.close_code, 1000);
	CHECK_INT(f.srv.close_code, 1000);
	/* What lws peers would take for a protocol error is mapped (see cn_ws.h). */
	static const int sent[] = { 1013, 1005, 2999 }, heard[] = { 1011, 1000, 1000 };
	for (int i = 0; i < 3; i++) {
		f.srv.opened = f.cli.opened = f.srv.closed = f.cli.closed = 0;
		CHECK_INT(fx_connect(&f, "wss://127.0.0.1", "/uplink", "ca1", NULL, 4096, &f.cli), 0);
		SPIN_UNTIL(&f.l, f.srv.opened == 1 && f.cli.opened == 1, 5000);
		if (f.srv.conn)
			cn_ws_close_status(f.srv.conn, sent[i], "try later");
		SPIN_UNTIL(&f.l, f.srv.closed == 1 && f.cli.closed == 1, 5000);
		CHECK_INT(f.cli.close_code, heard[i]);
	}
	fx_stop(&f);
out_free:
	close(lfd);
	side_free(&slow);
	side_free(&cancelled);
}
