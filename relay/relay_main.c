/* relay_main.c: canopy-relay entry point, its configuration table, start/stop, health and graceful drain (relay: signalling broker, STUN/TURN and SFU for remote viewers). */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>

#include "cn_daemon.h"
#include "cn_json.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_time.h"
#include "relay.h"
#include "relay_sfu.h"
#include "relay_turn.h"

#define R(f) offsetof(struct relay_conf, f)

static const struct cn_conf_directive relay_directives[] = {
	CN_DAEMON_DIRECTIVES(struct relay_conf, "relay", "/var/lib/canopy-relay", "8580"),

	/* broker (relay_uplink.c, relay_broker.c) */
	{ "central_url", CN_CONF_STRING, R(central_url), 0, 1024, "", NULL,
	  "wss://.../uplink of the central this relay enrols into (keys, TURN secret, load "
	  "reports); empty: standalone (no brokering)" },
	{ "central_ca", CN_CONF_STRING, R(central_ca), 0, 1024, "", NULL,
	  "central's CA certificate (PEM): the only trust anchor for central_url" },
	{ "enrol_token", CN_CONF_STRING, R(enrol_token), 0, 128, "", NULL,
	  "one-time enrolment token (cne_...) for the first connection to central" },
	{ "public_url", CN_CONF_STRING, R(public_url), 0, 512, "", NULL,
	  "base URL viewers and edges reach this relay at (http[s]://host:port); empty: "
	  "http://http_listen:http_port" },
	{ "ice_urls", CN_CONF_STRING, R(ice_urls), 0, 1024, "", NULL,
	  "space-separated STUN/TURN URLs central gives viewers of this relay "
	  "(stun:host:port turn:host:port?transport=udp); TURN ones get ephemeral credentials" },
	{ "sfu_threshold", CN_CONF_INT, R(sfu_threshold), 0, 1000, "2", NULL,
	  "viewers of one camera through this relay beyond which new viewers go through the SFU "
	  "(0: never)" },
	{ "drain_timeout", CN_CONF_DURATION, R(drain_timeout), 0, 3600 * 1000LL, "30s", NULL,
	  "after SIGTERM: how long brokered sessions may carry on before the relay exits" },
	{ "load_report", CN_CONF_DURATION, R(load_report), 1000, 600 * 1000LL, "10s", NULL,
	  "interval of load reports to central (sooner when edges or sessions change)" },
	{ "max_sessions", CN_CONF_INT, R(max_sessions), 1, 1000000, "10000", NULL,
	  "brokered WHEP sessions at once; more get 503" },
	{ "edge_idle", CN_CONF_DURATION, R(edge_idle), 5000, 3600 * 1000LL, "90s", NULL,
	  "an edge registration silent this long (no message, no pong) is dropped" },

	/* TURN (relay_turn.c) */
	{ "turn_listen", CN_CONF_STRING, R(turn_listen), 0, 64, "", NULL,
	  "IP:port of the TURN listener, UDP and (turn_tcp) TCP, e.g. 0.0.0.0:3478; empty: no TURN" },
	{ "turn_tcp", CN_CONF_BOOL, R(turn_tcp), 0, 0, "true", NULL,
	  "also accept TURN over TCP on turn_listen (relayed transport stays UDP)" },
	{ "turn_relay_ip", CN_CONF_STRING, R(turn_relay_ip), 0, 64, "", NULL,
	  "IP relayed sockets bind to and clients are given; empty: turn_listen's address (must "
	  "then not be a wildcard)" },
	{ "turn_realm", CN_CONF_STRING, R(turn_realm), 1, 127, "canopy", NULL,
	  "TURN realm (part of the long-term credential key)" },
	{ "turn_secret", CN_CONF_STRING, R(turn_secret), 0, 256, "", NULL,
	  "REST shared secret: password = base64(HMAC-SHA1(secret, \"expiry:tenant/user\")); "
	  "central replaces it at enrolment; empty: allocations refused until set" },
	{ "turn_allow_peers", CN_CONF_STRING, R(turn_allow_peers), 0, 1024, "", NULL,
	  "comma-separated CIDRs relayed to even if loopback, private, link-local... (checked "
	  "after IPv4-mapped and NAT64 forms are normalised)" },
	{ "turn_deny_peers", CN_CONF_STRING, R(turn_deny_peers), 0, 1024, "", NULL,
	  "comma-separated CIDRs never relayed to (wins over turn_allow_peers)" },
	{ "turn_user_quota", CN_CONF_INT, R(turn_user_quota), 1, 100000, "20", NULL,
	  "live allocations per credential subject (tenant/user); more get 486" },
	{ "turn_tenant_quota", CN_CONF_INT, R(turn_tenant_quota), 1, 1000000, "2000", NULL,
	  "live allocations per tenant; more get 486" },
	{ "turn_max_allocations", CN_CONF_INT, R(turn_max_allocations), 1, 1000000, "20000", NULL,
	  "live allocations in all; more get 508" },
	{ "turn_max_lifetime", CN_CONF_DURATION, R(turn_max_lifetime), 600 * 1000LL,
	  86400 * 1000LL, "1h", NULL, "longest allocation lifetime a client may ask for" },
	{ "turn_nonce_lifetime", CN_CONF_DURATION, R(turn_nonce_lifetime), 1000, 86400 * 1000LL,
	  "10m", NULL, "nonces older than this get 438 Stale Nonce" },
	{ "turn_threads", CN_CONF_INT, R(turn_threads), 1, 64, "1", NULL,
	  "TURN worker threads, each with its own epoll and SO_REUSEPORT listeners" },

	/* SFU (relay_sfu.c) */
	{ "sfu_webrtc_addresses", CN_CONF_STRING, R(sfu_webrtc_addresses), 0, 512, "", NULL,
	  "comma-separated local IPs the SFU offers as ICE host candidates (viewers and upstreams); "
	  "empty: all interfaces" },
	{ "sfu_port_min", CN_CONF_INT, R(sfu_port_min), 0, 65535, "0", NULL,
	  "lowest UDP port for SFU media (0: any)" },
	{ "sfu_port_max", CN_CONF_INT, R(sfu_port_max), 0, 65535, "0", NULL,
	  "highest UDP port for SFU media (0: any)" },
	{ "sfu_max_viewers", CN_CONF_INT, R(sfu_max_viewers), 1, 100000, "500", NULL,
	  "viewers of one camera through this relay's SFU; more get 503" },
	{ "sfu_linger", CN_CONF_DURATION, R(sfu_linger), 0, 600 * 1000LL, "5s", NULL,
	  "how long a camera's upstream stays open after its last viewer left" },
	{ "sfu_session_timeout", CN_CONF_DURATION, R(sfu_session_timeout), 5000, 600 * 1000LL, "30s",
	  NULL, "a viewer or upstream heard from neither by DTLS nor RTCP/RTP this long is dropped" },
	{ "sfu_queue_packets", CN_CONF_INT, R(sfu_queue_packets), 16, 65536, "256", NULL,
	  "packets a viewer may fall behind (its socket refusing) before it skips to the next keyframe" },
	{ "sfu_edge_url", CN_CONF_STRING, R(sfu_edge_url), 0, 512, "", NULL,
	  "relay co-located with an edge: pull cameras by plain WHEP from this edge (http://host:port) "
	  "and serve viewers at /sfu/whep/<camera>; empty: upstreams go through the broker" },
	{ "sfu_edge_token_file", CN_CONF_STRING, R(sfu_edge_token_file), 0, 1024, "", NULL,
	  "file holding the bearer token for sfu_edge_url (the edge's data_dir/admin.token), read at "
	  "each upstream" },
	{ "sfu_viewer_token", CN_CONF_STRING, R(sfu_viewer_token), 0, 512, "", NULL,
	  "bearer token viewers present at /sfu/whep/ (required with sfu_edge_url)" },
};

/* ---- health ------------------------------------------------------------------------ */

/* /health: for load balancers and operators; 503 while draining so new viewers go elsewhere. */
static int health(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct relay *r = arg;
	cJSON *o = cJSON_CreateObject();
	int rc = -ENOMEM;

	(void)req;
	if (o && cJSON_AddStringToObject(o, "status", r->draining ? "draining" : "ok") &&
	    cJSON_AddStringToObject(o, "component", "relay") &&
	    cJSON_AddStringToObject(o, "node", r->d->base->node_name) &&
	    cJSON_AddStringToObject(o, "relay_id", r->relay_id) &&
	    cJSON_AddBoolToObject(o, "configured", r->configured) &&
	    cn_json_add_i64(o, "edges", relay_broker_edges(r)) &&
	    cn_json_add_i64(o, "sessions", relay_broker_sessions(r)) &&
	    cJSON_AddBoolToObject(o, "draining", r->draining)) {
		relay_uplink_describe(r, o);
		rc = cn_json_print(o, &resp->body);
	}
	cJSON_Delete(o);
	resp->status = r->draining ? 503 : 200;
	if (r->draining)
		cn_http_resp_header(resp, "retry-after", "5");
	cn_strlcpy(resp->content_type, "application/json", sizeof(resp->content_type));
	return rc;
}

static struct cn_metric m_draining = CN_METRIC_INIT(
	"canopy_relay_draining", CN_METRIC_GAUGE, "1 while the relay drains after SIGTERM");

/* ---- graceful drain ------------------------------------------------------------------- */

static gboolean drain_tick(gpointer arg)
{
	struct relay *r = arg;
	int n = relay_broker_sessions(r);
	int64_t waited = cn_time_mono_ms() - r->drain_started_ms;

	if (n > 0 && waited < r->conf->drain_timeout)
		return G_SOURCE_CONTINUE;
	cn_log_info("relay", "drained: %d session(s) left after %lld ms; exiting", n,
		    (long long)waited);
	r->drain_timer = 0;
	cn_loop_stop(&r->d->loop);
	return G_SOURCE_REMOVE;
}

/* SIGTERM: refuse new sessions (503 + Retry-After), tell central and the edges, let the
 * sessions under way finish for up to drain_timeout, then stop. A second signal stops at once. */
static gboolean on_term(gpointer arg)
{
	struct relay *r = arg;

	if (r->draining) {
		cn_log_info("relay", "second SIGTERM: stopping now");
		cn_loop_stop(&r->d->loop);
		return G_SOURCE_CONTINUE;
	}
	r->draining = true;
	r->drain_started_ms = cn_time_mono_ms();
	cn_metric_set(&m_draining, 1);
	cn_log_info("relay", "SIGTERM: draining (%d session(s), up to %lld ms)",
		    relay_broker_sessions(r), (long long)r->conf->drain_timeout);
	relay_broker_drain(r);
	relay_uplink_report_soon(r);
	r->drain_timer = g_timeout_add(200, drain_tick, r);
	return G_SOURCE_CONTINUE;
}

/* ---- life cycle ------------------------------------------------------------------------ */

static int relay_start(struct cn_daemon *d)
{
	struct relay *r = d->app;
	int rc;

	r->d = d;
	r->conf = d->conf;
	cn_metrics_register(&m_draining);
	if ((rc = cn_http_route(d->http, CN_HTTP_GET, "/health", health, r)) < 0)
		return rc;
	/* Our SIGTERM replaces the loop's: drain first, stop later. */
	if (d->loop.sig_term)
		g_source_remove(d->loop.sig_term);
	d->loop.sig_term = r->sig_term = g_unix_signal_add(SIGTERM, on_term, r);
	if ((rc = relay_broker_start(r)) < 0)
		return rc;
	if (r->conf->central_url[0] && (rc = relay_uplink_start(r)) < 0)
		return rc;
	/* TURN (relay_turn.c): start here */
	if ((rc = relay_turn_start(r->conf, &r->turn)) < 0)
		return rc;
	/* SFU (relay_sfu.c): start here */
	if ((rc = relay_sfu_start(r, &r->sfu)) < 0)
		return rc;
	/* Upstreams go to edges over their registrations, unless sfu_edge_url says otherwise. */
	if (!r->conf->sfu_edge_url[0])
		relay_broker_attach_sfu(r);
	return 0;
}

static void relay_stop(struct cn_daemon *d)
{
	struct relay *r = d->app;

	if (r->drain_timer)
		g_source_remove(r->drain_timer);
	r->drain_timer = 0;
	/* SFU (relay_sfu.c): stop here */
	relay_sfu_stop(r->sfu);
	r->sfu = NULL;
	/* TURN (relay_turn.c): stop here */
	relay_turn_stop(r->turn);
	r->turn = NULL;
	relay_uplink_stop(r);
	relay_broker_stop(r);
	for (size_t i = 0; i < r->ncentral_keys; i++)
		cn_ed25519_free(r->central_keys[i]);
	r->ncentral_keys = 0;
}

int main(int argc, char **argv)
{
	struct relay_conf conf = { 0 };
	struct relay r = { 0 };
	struct cn_daemon d = {
		.component = "relay",
		.table = relay_directives,
		.ntable = sizeof(relay_directives) / sizeof(relay_directives[0]),
		.conf = &conf,
		.start = relay_start,
		.stop = relay_stop,
		.app = &r,
	};

	return cn_daemon_main(&d, argc, argv);
}
