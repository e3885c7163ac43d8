/* central_console.c: serves the web console's static files at / and /console/ with ETags and a strict Content-Security-Policy. */
#include "central_console.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "central.h"
#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_http.h"
#include "cn_log.h"
#include "cn_metrics.h"

#define MAX_FILE (1024 * 1024) /* a console_dir file larger than this is refused */
#define MAX_NAME 64
#define MAX_EMBEDDED 32
#define ETAG_LEN 20 /* "\"" + 16 hex + "\"" + NUL, rounded */
#define CSP_MAX 512 /* a response header's value in cn_http */
#define RELAY_POLL_MS 10000

static struct cn_metric m_served = CN_METRIC_INIT(
	"canopy_central_console_requests_total", CN_METRIC_COUNTER,
	"web console file requests answered (200 or 304)");
static struct cn_metric m_not_modified = CN_METRIC_INIT(
	"canopy_central_console_not_modified_total", CN_METRIC_COUNTER,
	"web console file requests answered 304 (the browser's copy is current)");
static struct cn_metric m_missing = CN_METRIC_INIT(
	"canopy_central_console_not_found_total", CN_METRIC_COUNTER,
	"web console file requests for a name that is not a console file (404)");

/* One process serves one console: the policy and the embedded files' tags are made once;
 * the relays' origins (for WHEP signalling) are re-read from the database every 10 s. */
static struct {
	struct central *c;
	const char *dir; /* console_dir, "" for the embedded files */
	char csp[CSP_MAX];
	char etags[MAX_EMBEDDED][ETAG_LEN];
	guint timer;
	bool polling;       /* a relay job is in flight */
	bool warned;        /* the last poll failed and said so */
} g;

struct relay_job {
	struct central_job job;
	char origins[CSP_MAX]; /* space-separated, checked */
};

const char *central_console_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".json", "application/json" },
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return NULL;
}

/* Flat names only: no '/', no leading dot, so nothing outside the directory is reachable. */
static bool valid_name(const char *p, size_t n)
{
	if (n == 0 || n > MAX_NAME || p[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

int central_console_check_origins(const char *list, char *why, size_t cap)
{
	const char *p = list;

	while (*p) {
		const char *end, *host;
		size_t n;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		end = strchr(p, ' ');
		n = end ? (size_t)(end - p) : strlen(p);
		if (strncmp(p, "https://", 8) == 0 || strncmp(p, "http://", 7) == 0 ||
		    strncmp(p, "wss://", 6) == 0 || strncmp(p, "ws://", 5) == 0)
			host = strstr(p, "://") + 3;
		else
			return cn_fail(-EINVAL, why, cap, "'%.*s' is not an origin (https://host[:port])",
				       (int)n, p);
		if (host == p + n)
			return cn_fail(-EINVAL, why, cap, "'%.*s' has no host", (int)n, p);
		/* Characters of host names, IPv4/IPv6 literals, ports and a leading wildcard
		 * label; anything else (';', quotes, paths) could change the policy itself. */
		for (const char *q = host; q < p + n; q++)
			if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
			      (*q >= '0' && *q <= '9') || *q == '.' || *q == '-' || *q == ':' ||
			      *q == '[' || *q == ']' || (*q == '*' && q == host)))
				return cn_fail(-EINVAL, why, cap, "'%.*s' is not an origin", (int)n, p);
		p += n;
	}
	return 0;
}

static void make_etag(const void *data, size_t len, char out[ETAG_LEN])
{
	uint8_t h[CN_SHA256_LEN] = { 0 };

	cn_sha256(data, len, h);
	snprintf(out, ETAG_LEN, "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", h[0], h[1], h[2], h[3], h[4],
		 h[5], h[6], h[7]);
}

/* If-None-Match holds our tag (in a list, or weak) or "*". */
static bool not_modified(const struct cn_http_req *req, const char *etag)
{
	char inm[256];

	if (cn_http_req_header(req, "if-none-match", inm, sizeof(inm)) < 0)
		return false;
	return strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL;
}

/* Reads name from console_dir into resp's body (a development aid: edits show on reload). */
static int read_dir_file(const char *name, struct cn_http_resp *resp)
{
	char path[1200];
	struct stat st;
	int fd, rc = 0;

	if (snprintf(path, sizeof(path), "%s/%s", g.dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE) {
		rc = -ENOENT;
		goto close_fd;
	}
	for (;;) {
		char chunk[16384];
		ssize_t got = read(fd, chunk, sizeof(chunk));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -errno;
			break;
		}
		if (got == 0 || (rc = cn_buf_append(&resp->body, chunk, (size_t)got)) < 0)
			break;
		if (resp->body.len > MAX_FILE) {
			rc = -EFBIG;
			break;
		}
	}
close_fd:
	close(fd);
	return rc;
}

static int serve(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	const struct cn_str path = req->path;
	const char *prefix = "/console/", *type;
	char name[MAX_NAME + 1] = "index.html", etag[ETAG_LEN];
	size_t plen = strlen(prefix);
	int rc;

	(void)arg;
	if (cn_str_has_prefix(path, prefix) && path.len > plen) {
		if (!valid_name(path.p + plen, path.len - plen))
			goto missing;
		memcpy(name, path.p + plen, path.len - plen);
		name[path.len - plen] = '\0';
	}
	if (!(type = central_console_type(name)))
		goto missing;
	if (!g.dir[0]) {
		unsigned i;

		for (i = 0; i < central_console_nfiles; i++)
			if (strcmp(central_console_files[i].name, name) == 0)
				break;
		if (i == central_console_nfiles)
			goto missing;
		cn_strlcpy(etag, g.etags[i], sizeof(etag));
		if (!not_modified(req, etag) &&
		    (rc = cn_buf_append(&resp->body, central_console_files[i].data,
					central_console_files[i].len)) < 0)
			return rc;
	} else {
		if ((rc = read_dir_file(name, resp)) == -ENOENT || rc == -ELOOP)
			goto missing;
		if (rc < 0)
			return rc;
		make_etag(resp->body.data, resp->body.len, etag);
	}
	cn_metric_add(&m_served, 1);
	cn_http_resp_header(resp, "etag", etag);
	/* Revalidated on every load (cheap: a 304), so a new binary's console shows at once. */
	cn_http_resp_header(resp, "cache-control", "no-cache");
	cn_http_resp_header(resp, "x-content-type-options", "nosniff");
	cn_http_resp_header(resp, "referrer-policy", "no-referrer");
	cn_http_resp_header(resp, "cross-origin-opener-policy", "same-origin");
	if (strcmp(name, "index.html") == 0)
		cn_http_resp_header(resp, "content-security-policy", g.csp);
	if (not_modified(req, etag)) {
		cn_metric_add(&m_not_modified, 1);
		cn_buf_reset(&resp->body);
		resp->status = 304;
		return 0;
	}
	resp->status = 200;
	cn_strlcpy(resp->content_type, type, sizeof(resp->content_type));
	return 0;
missing:
	cn_metric_add(&m_missing, 1);
	return cn_http_problem(resp, 404, "Not Found", "no console file here");
}

/* The policy: nothing but our own files and API, no inline script or style, no framing.
 * Live video comes over WebRTC (not subject to connect-src); its WHEP signalling goes to
 * the relays, whose origins are added with console_connect_src's. */
static int build_csp(const char *relays)
{
	const char *extra = g.c->conf->console_connect_src;
	int n = snprintf(g.csp, sizeof(g.csp),
			 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
			 "media-src 'self' blob: mediastream:; connect-src 'self'%s%s%s%s; base-uri 'none'; "
			 "form-action 'self'; frame-ancestors 'none'",
			 extra[0] ? " " : "", extra, relays[0] ? " " : "", relays);

	return n < 0 || n >= (int)sizeof(g.csp) ? -ENAMETOOLONG : 0;
}

/* On a worker: the origins (scheme://host[:port]) of the relays' public URLs, as many as
 * fit in the policy; any that is not a plain origin is left out. */
static int relays_run(PGconn *pg, struct central_job *j)
{
	struct relay_job *rj = (struct relay_job *)j;
	/* The fixed policy takes under 300 bytes; the relays share what is left. */
	size_t used = 300 + strlen(g.c->conf->console_connect_src);
	size_t room = used < CSP_MAX ? CSP_MAX - used : 0;
	PGresult *r = NULL;
	int rc;

	rc = central_db_exec(pg,
			     "SELECT DISTINCT substring(public_url from '^[a-z]+://[^/?#]+') FROM relays"
			     " WHERE public_url <> '' ORDER BY 1",
			     0, NULL, &r, j->err, sizeof(j->err));
	if (rc < 0)
		return rc;
	for (int i = 0; i < PQntuples(r); i++) {
		const char *o = PQgetvalue(r, i, 0);
		size_t have = strlen(rj->origins);

		if (PQgetisnull(r, i, 0) || central_console_check_origins(o, NULL, 0) < 0 ||
		    strchr(o, ' ') || have + 1 + strlen(o) >= room)
			continue;
		snprintf(rj->origins + have, sizeof(rj->origins) - have, "%s%s", have ? " " : "", o);
	}
	PQclear(r);
	return 0;
}

static void relays_done(struct central_job *j)
{
	struct relay_job *rj = (struct relay_job *)j;

	g.polling = false;
	if (j->rc == -ECANCELED) {
		free(rj);
		return;
	}
	if (j->rc < 0) {
		if (!g.warned)
			cn_log_warn("console", "relay origins not read (policy unchanged): %s", j->err);
		g.warned = true;
	} else {
		g.warned = false;
		if (build_csp(rj->origins) < 0)
			build_csp("");
	}
	free(rj);
}

static gboolean relays_tick(void *arg)
{
	struct relay_job *rj;

	(void)arg;
	if (g.polling || !(rj = calloc(1, sizeof(*rj))))
		return G_SOURCE_CONTINUE;
	rj->job.run = relays_run;
	rj->job.done = relays_done;
	if (central_db_submit(g.c->db, &rj->job) < 0)
		free(rj); /* busy: next time */
	else
		g.polling = true;
	return G_SOURCE_CONTINUE;
}

void central_console_quiesce(struct central *c)
{
	(void)c;
	if (g.timer)
		g_source_remove(g.timer);
	g.timer = 0;
}

int central_console_init(struct central *c)
{
	const struct central_conf *conf = c->conf;
	char why[256];
	int rc;

	if (central_console_nfiles > MAX_EMBEDDED)
		return -ENOSPC;
	if (central_console_check_origins(conf->console_connect_src, why, sizeof(why)) < 0) {
		cn_log_error("console", "console_connect_src: %s", why);
		return CN_E_CONFIG;
	}
	g.c = c;
	if (build_csp("") < 0)
		return -ENAMETOOLONG;
	g.dir = conf->console_dir;
	for (unsigned i = 0; i < central_console_nfiles; i++)
		make_etag(central_console_files[i].data, central_console_files[i].len, g.etags[i]);
	if ((rc = cn_http_route(c->d->http, CN_HTTP_GET, "/", serve, c)) < 0 ||
	    (rc = cn_http_route(c->d->http, CN_HTTP_GET, "/console/", serve, c)) < 0)
		return rc;
	relays_tick(NULL);
	g.timer = cn_loop_every(&c->d->loop, RELAY_POLL_MS, relays_tick, NULL);
	cn_metrics_register(&m_served);
	cn_metrics_register(&m_not_modified);
	cn_metrics_register(&m_missing);
	if (g.dir[0])
		cn_log_info("console", "web console served from %s (console_dir)", g.dir);
	return 0;
}
