/* cn_uplink.c: child end of the uplink: challenge/hello/welcome, heartbeats, persistent identity, backoff. */
#include "cn_uplink.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cn_base64.h"
#include "cn_err.h"
#include "cn_file.h"
#include "cn_json.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_time.h"
#include "cn_ws.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define STATE_MAX 4096

enum ul_state { UL_CONNECTING, UL_AUTHING, UL_READY, UL_WAITING, UL_REFUSED };

struct cn_uplink {
	struct cn_loop *loop;
	char *url, *ca_path, *enrol_token, *kind, *name, *software, *state_path;
	const struct cn_ed25519 *key;
	const struct cn_uplink_ops *ops;
	void *arg;
	struct cn_ws_conn *ws;
	enum ul_state state;
	bool refused; /* the parent said no: keep trying, slowly */
	char node_id[40];
	char error[256];
	uint64_t seq;
	int64_t backoff_ms;
	int heartbeat_s;
	guint retry_id, beat_id;
	uint64_t connects, failures;
	bool stopping;
};

static const char *const state_names[] = { "connecting", "authenticating", "ready", "waiting",
					   "refused" };

static void connect_now(struct cn_uplink *u);

static void set_error(struct cn_uplink *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct cn_uplink *u, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(u->error, sizeof(u->error), fmt, ap);
	va_end(ap);
}

/* The identity survives restarts: {"node_id": ...} next to the node key. */
static void load_state(struct cn_uplink *u)
{
	char buf[STATE_MAX];
	cJSON *o = NULL;
	ssize_t n;
	int fd;

	if (!u->state_path)
		return;
	fd = open(u->state_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0 || cn_json_parse(buf, (size_t)n, sizeof(buf), 4, &o) < 0 ||
	    cn_json_copy_str(o, "node_id", u->node_id, sizeof(u->node_id)) < 0) {
		cn_log_warn("uplink", "'%s' unreadable; enrolling again needs a token", u->state_path);
		u->node_id[0] = '\0';
	}
	cJSON_Delete(o);
}

static int save_state(struct cn_uplink *u)
{
	char buf[256];
	int n;

	if (!u->state_path)
		return 0;
	n = snprintf(buf, sizeof(buf), "{\"node_id\":\"%s\"}\n", u->node_id);
	return cn_file_write_atomic(u->state_path, buf, (size_t)n, 0600, true);
}

static gboolean retry_cb(gpointer arg)
{
	struct cn_uplink *u = arg;

	u->retry_id = 0;
	connect_now(u);
	return G_SOURCE_REMOVE;
}

/* Capped exponential backoff with +-20% jitter, so a fleet does not reconnect in step. */
static void schedule_retry(struct cn_uplink *u)
{
	int64_t d = u->backoff_ms;
	uint32_t r = 0;

	if (u->stopping || u->retry_id)
		return;
	cn_random_bytes(&r, sizeof(r));
	d = d * 8 / 10 + (int64_t)(r % (uint32_t)(d * 4 / 10 + 1));
	u->retry_id = g_timeout_add((guint)d, retry_cb, u);
	u->backoff_ms = u->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : u->backoff_ms * 2;
	u->state = u->refused ? UL_REFUSED : UL_WAITING;
}

int cn_uplink_send(struct cn_uplink *u, const char *type, cJSON *body)
{
	struct cn_envelope env;
	struct cn_buf out;
	int rc;

	if (!u->ws || (u->state != UL_READY && strcmp(type, "hello") != 0)) {
		cJSON_Delete(body);
		return -ENOTCONN;
	}
	if ((rc = cn_envelope_make(&env, type, ++u->seq, body)) < 0) {
		cJSON_Delete(body);
		return rc;
	}
	cn_buf_init(&out, CN_ENV_MAX_BYTES);
	if ((rc = cn_envelope_encode(&env, &out)) == 0)
		rc = cn_ws_send(u->ws, (const char *)out.data, out.len);
	if (rc == -ENOBUFS)
		cn_ws_close_status(u->ws, 4013, "send queue full");
	cn_envelope_clear(&env);
	cn_buf_free(&out);
	return rc;
}

static gboolean beat_cb(gpointer arg)
{
	struct cn_uplink *u = arg;
	cJSON *b = cJSON_CreateObject();

	if (b && u->ops->heartbeat)
		u->ops->heartbeat(u, b, u->arg);
	cn_uplink_send(u, "heartbeat", b);
	return G_SOURCE_CONTINUE;
}

static void send_hello(struct cn_uplink *u, const char *nonce)
{
	const char *ident = u->node_id[0] ? u->node_id : u->enrol_token;
	uint8_t pub[CN_ED25519_PUB_LEN], sig[CN_ED25519_SIG_LEN];
	char pub64[64], sig64[100];
	struct cn_buf msg;
	size_t n;
	cJSON *b;

	if (!ident || !ident[0]) {
		u->refused = true;
		set_error(u, "not enrolled: set an enrolment token");
		cn_ws_close(u->ws);
		return;
	}
	cn_buf_init(&msg, 512);
	cn_buf_printf(&msg, "%s%s\n%s", CN_UPLINK_SIG_LABEL, nonce, ident);
	if (cn_ed25519_public(u->key, pub) < 0 || cn_ed25519_sign(u->key, msg.data, msg.len, sig) < 0 ||
	    cn_base64_encode(CN_B64_URL, pub, sizeof(pub), pub64, sizeof(pub64), &n) < 0 ||
	    cn_base64_encode(CN_B64_URL, sig, sizeof(sig), sig64, sizeof(sig64), &n) < 0) {
		cn_buf_free(&msg);
		cn_ws_close(u->ws);
		return;
	}
	cn_buf_free(&msg);
	b = cJSON_CreateObject();
	if (!b || !cJSON_AddStringToObject(b, u->node_id[0] ? "node_id" : "enrol_token", ident) ||
	    !cJSON_AddStringToObject(b, "public_key", pub64) ||
	    !cJSON_AddStringToObject(b, "signature", sig64) ||
	    !cJSON_AddStringToObject(b, "kind", u->kind) ||
	    !cJSON_AddStringToObject(b, "name", u->name) ||
	    !cJSON_AddStringToObject(b, "software", u->software)) {
		cJSON_Delete(b);
		cn_ws_close(u->ws);
		return;
	}
	u->state = UL_AUTHING;
	cn_uplink_send(u, "hello", b);
}

static void on_welcome(struct cn_uplink *u, const cJSON *b)
{
	char node[40];
	int64_t hb = 10;

	if (cn_json_copy_str(b, "node_id", node, sizeof(node)) < 0) {
		set_error(u, "welcome without node_id");
		cn_ws_close(u->ws);
		return;
	}
	cn_json_get_i64(b, "heartbeat_s", 1, 3600, &hb);
	if (strcmp(node, u->node_id) != 0) {
		cn_strlcpy(u->node_id, node, sizeof(u->node_id));
		if (save_state(u) < 0)
			cn_log_error("uplink", "cannot save identity to '%s': the next start needs a "
					       "new enrolment token", u->state_path);
		cn_log_info("uplink", "enrolled as node %s", u->node_id);
	}
	u->state = UL_READY;
	u->refused = false;
	u->error[0] = '\0';
	u->backoff_ms = BACKOFF_MIN_MS;
	u->heartbeat_s = (int)hb;
	u->beat_id = g_timeout_add_seconds((guint)hb, beat_cb, u);
	cn_log_info("uplink", "connected to %s as %s %s", u->url, u->kind, u->node_id);
	if (u->ops->on_ready)
		u->ops->on_ready(u, u->arg);
	beat_cb(u); /* the clock offset is known at once */
}

/* The link's user pointer, not the ops arg, leads back to u: cn_uplink_stop clears it, so
 * callbacks arriving after the uplink is gone find nothing. */
static void on_open(struct cn_ws_conn *c, void *arg)
{
	struct cn_uplink *u = cn_ws_user(c);

	(void)arg;
	if (!u)
		return;
	u->connects++;
	u->state = UL_AUTHING; /* waiting for the challenge */
}

static void on_message(struct cn_ws_conn *c, const char *data, size_t len, void *arg)
{
	struct cn_uplink *u = cn_ws_user(c);
	struct cn_envelope env;
	char err[256];

	(void)arg;
	if (!u)
		return;
	if (cn_envelope_decode(data, len, &env, err, sizeof(err)) < 0) {
		cn_log_warn("uplink", "bad message from parent: %s", err);
		return;
	}
	if (strcmp(env.type, "challenge") == 0 && u->state == UL_AUTHING) {
		char nonce[64];

		if (cn_json_copy_str(env.body, "nonce", nonce, sizeof(nonce)) == 0)
			send_hello(u, nonce);
	} else if (strcmp(env.type, "welcome") == 0 && u->state == UL_AUTHING) {
		on_welcome(u, env.body);
	} else if (strcmp(env.type, "error") == 0) {
		char msg[200] = "", code[40] = "";

		cn_json_copy_str(env.body, "message", msg, sizeof(msg));
		cn_json_copy_str(env.body, "code", code, sizeof(code));
		set_error(u, "parent refused: %s", msg);
		cn_log_error("uplink", "%s: %s (%s)", u->url, msg, code);
		u->refused = strcmp(code, "unavailable") != 0;
	} else if (u->state == UL_READY && u->ops->on_message) {
		u->ops->on_message(u, &env, u->arg);
	}
	cn_envelope_clear(&env);
}

static void on_close(struct cn_ws_conn *c, void *arg)
{
	struct cn_uplink *u = cn_ws_user(c);
	bool was_ready;

	(void)arg;
	if (!u)
		return;
	was_ready = u->state == UL_READY;
	u->ws = NULL;
	if (u->beat_id) {
		g_source_remove(u->beat_id);
		u->beat_id = 0;
	}
	if (u->stopping)
		return;
	if (was_ready && cn_ws_close_code(c) == 4003) {
		u->refused = true;
		cn_log_error("uplink", "parent closed the link: this node is refused (%s)", u->error);
		if (u->ops->on_down)
			u->ops->on_down(u, u->arg);
	} else if (was_ready) {
		set_error(u, "link lost (code %d)", cn_ws_close_code(c));
		cn_log_warn("uplink", "link to %s lost (code %d); reconnecting", u->url,
			    cn_ws_close_code(c));
		if (u->ops->on_down)
			u->ops->on_down(u, u->arg);
	} else {
		u->failures++;
		if (cn_ws_close_code(c) == 4003 && !u->refused) {
			u->refused = true;
			set_error(u, "parent refused this node (code 4003)");
		} else if (!u->refused) {
			set_error(u, "cannot reach %s (code %d)", u->url, cn_ws_close_code(c));
		}
	}
	schedule_retry(u);
}

static const struct cn_ws_ops ws_ops = {
	.on_open = on_open,
	.on_message = on_message,
	.on_close = on_close,
};

static void connect_now(struct cn_uplink *u)
{
	struct cn_ws_client_opts o = {
		.url = u->url,
		.ca_path = u->ca_path,
		.max_msg = CN_ENV_MAX_BYTES,
		.connect_timeout_ms = 10000,
	};
	int rc;

	u->state = UL_CONNECTING;
	if ((rc = cn_ws_connect(u->loop, &o, &ws_ops, NULL, &u->ws)) < 0) {
		u->ws = NULL;
		u->failures++;
		set_error(u, "cannot connect to %s: %s", u->url, cn_strerror(rc));
		schedule_retry(u);
		return;
	}
	cn_ws_set_user(u->ws, u);
}

int cn_uplink_start(struct cn_loop *l, const struct cn_uplink_conf *conf,
		    const struct cn_uplink_ops *ops, void *arg, struct cn_uplink **out)
{
	struct cn_uplink *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	u->loop = l;
	u->key = conf->key;
	u->ops = ops;
	u->arg = arg;
	u->backoff_ms = BACKOFF_MIN_MS;
	if (!(u->url = strdup(conf->url)) || !(u->ca_path = strdup(conf->ca_path ? conf->ca_path : "")) ||
	    !(u->enrol_token = strdup(conf->enrol_token ? conf->enrol_token : "")) ||
	    !(u->kind = strdup(conf->kind)) || !(u->name = strdup(conf->name)) ||
	    !(u->software = strdup(conf->software)) ||
	    (conf->state_path && !(u->state_path = strdup(conf->state_path)))) {
		cn_uplink_stop(u);
		return -ENOMEM;
	}
	if (conf->node_id)
		cn_strlcpy(u->node_id, conf->node_id, sizeof(u->node_id));
	else
		load_state(u);
	*out = u;
	connect_now(u);
	return 0;
}

bool cn_uplink_ready(const struct cn_uplink *u)
{
	return u && u->state == UL_READY;
}

const char *cn_uplink_state(const struct cn_uplink *u)
{
	return state_names[u->state];
}

const char *cn_uplink_error(const struct cn_uplink *u)
{
	return u->error;
}

const char *cn_uplink_node_id(const struct cn_uplink *u)
{
	return u->node_id;
}

int cn_uplink_describe(const struct cn_uplink *u, cJSON *obj)
{
	cJSON *o = cJSON_AddObjectToObject(obj, "uplink");

	if (!o || !cJSON_AddStringToObject(o, "state", state_names[u->state]) ||
	    !cJSON_AddStringToObject(o, "url", u->url) ||
	    !cJSON_AddStringToObject(o, "node_id", u->node_id) ||
	    !(u->error[0] ? cJSON_AddStringToObject(o, "error", u->error)
			  : cJSON_AddNullToObject(o, "error")) ||
	    !cn_json_add_i64(o, "connects", (int64_t)u->connects) ||
	    !cn_json_add_i64(o, "failures", (int64_t)u->failures))
		return -ENOMEM;
	return 0;
}

int cn_uplink_metrics(struct cn_buf *out, void *arg)
{
	const struct cn_uplink *u = arg;
	int rc;

	if ((rc = cn_metrics_family(out, "canopy_uplink_ready", "gauge",
				    "1 while the link to the parent central is up and authenticated")) < 0 ||
	    (rc = cn_buf_printf(out, "canopy_uplink_ready %d\n", u->state == UL_READY)) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_uplink_refused", "gauge",
				    "1 while the parent refuses this node (token, key, revoked)")) < 0 ||
	    (rc = cn_buf_printf(out, "canopy_uplink_refused %d\n", u->refused)) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_uplink_connects_total", "counter",
				    "links opened to the parent")) < 0 ||
	    (rc = cn_buf_printf(out, "canopy_uplink_connects_total %llu\n",
				(unsigned long long)u->connects)) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_uplink_connect_failures_total", "counter",
				    "attempts that ended before the link was ready")) < 0)
		return rc;
	return cn_buf_printf(out, "canopy_uplink_connect_failures_total %llu\n",
			     (unsigned long long)u->failures);
}

void cn_uplink_stop(struct cn_uplink *u)
{
	if (!u)
		return;
	u->stopping = true;
	if (u->retry_id)
		g_source_remove(u->retry_id);
	if (u->beat_id)
		g_source_remove(u->beat_id);
	if (u->ws) {
		cn_ws_set_user(u->ws, NULL); /* its on_close comes later and must not find u */
		cn_ws_close(u->ws);
	}
	free(u->url);
	free(u->ca_path);
	free(u->enrol_token);
	free(u->kind);
	free(u->name);
	free(u->software);
	free(u->state_path);
	free(u);
}
