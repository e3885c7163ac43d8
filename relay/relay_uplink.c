/* relay_uplink.c: the relay's link to central: enrolment, relay.config (token keys, TURN secret), load reports. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_base64.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_uplink.h"
#include "cn_version.h"
#include "relay.h"
#include "relay_turn.h"

#define REPORT_SOON_MS 300

struct relay_uplink {
	struct relay *r;
	struct cn_uplink *link;
	char state_path[1100];
	guint report_id, soon_id;
};

static struct cn_metric m_configs = CN_METRIC_INIT(
	"canopy_relay_central_configs_total", CN_METRIC_COUNTER,
	"relay.config messages from central applied (keys, TURN secret)");

static void public_url(struct relay *r, char *out, size_t cap)
{
	if (r->conf->public_url[0])
		snprintf(out, cap, "%s", r->conf->public_url);
	else
		snprintf(out, cap, "http://%s:%lld", r->d->base->http_listen,
			 (long long)r->d->base->http_port);
}

/* Without ice_urls, our own TURN server's URLs: turn_relay_ip, else the listener's address,
 * else public_url's host (a wildcard listener). */
static void turn_urls(struct relay *r, cJSON *urls)
{
	struct sockaddr_storage ss;
	char host[128] = "", url[200];
	int port;

	if (!r->turn || relay_turn_listen_addr(r->turn, &ss) < 0 || ss.ss_family != AF_INET)
		return;
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (r->conf->turn_relay_ip && r->conf->turn_relay_ip[0]) {
		cn_strlcpy(host, r->conf->turn_relay_ip, sizeof(host));
	} else if (((struct sockaddr_in *)&ss)->sin_addr.s_addr != htonl(INADDR_ANY)) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
	} else if (r->conf->public_url[0]) {
		const char *h = strstr(r->conf->public_url, "://");
		size_t n;

		h = h ? h + 3 : r->conf->public_url;
		n = strcspn(h, ":/");
		snprintf(host, sizeof(host), "%.*s", (int)(n < 100 ? n : 100), h);
	}
	if (!host[0])
		return;
	snprintf(url, sizeof(url), "turn:%s:%d?transport=udp", host, port);
	cJSON_AddItemToArray(urls, cJSON_CreateString(url));
	if (r->conf->turn_tcp) {
		snprintf(url, sizeof(url), "turn:%s:%d?transport=tcp", host, port);
		cJSON_AddItemToArray(urls, cJSON_CreateString(url));
	}
}

static void send_report(struct relay_uplink *ru)
{
	struct relay *r = ru->r;
	cJSON *b, *urls;
	char url[600], *list, *tok, *save = NULL;

	if (!cn_uplink_ready(ru->link) || !(b = cJSON_CreateObject()))
		return;
	public_url(r, url, sizeof(url));
	cJSON_AddStringToObject(b, "public_url", url);
	urls = cJSON_AddArrayToObject(b, "ice_urls");
	if (!r->conf->ice_urls[0] && urls)
		turn_urls(r, urls);
	else if ((list = strdup(r->conf->ice_urls))) {
		for (tok = strtok_r(list, " ,", &save); tok && urls; tok = strtok_r(NULL, " ,", &save))
			cJSON_AddItemToArray(urls, cJSON_CreateString(tok));
		free(list);
	}
	cJSON_AddBoolToObject(b, "draining", r->draining);
	cn_json_add_i64(b, "max_sessions", r->conf->max_sessions);
	relay_broker_report(r, b);
	cn_uplink_send(ru->link, "relay.load", b);
}

static gboolean report_tick(gpointer arg)
{
	send_report(arg);
	return G_SOURCE_CONTINUE;
}

static gboolean report_soon_cb(gpointer arg)
{
	struct relay_uplink *ru = arg;

	ru->soon_id = 0;
	send_report(ru);
	return G_SOURCE_REMOVE;
}

void relay_uplink_report_soon(struct relay *r)
{
	struct relay_uplink *ru = r->uplink;

	if (ru && !ru->soon_id)
		ru->soon_id = g_timeout_add(REPORT_SOON_MS, report_soon_cb, ru);
}

/* relay.config: {relay_id, tenant_id, shared, turn_secret, keys: [{kid, public_key}]}. A
 * document that does not check out leaves the previous configuration in place. */
static void apply_config(struct relay *r, const cJSON *b)
{
	struct cn_ed25519 *keys[4] = { 0 };
	char kids[4][32] = { { 0 } };
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(b, "keys"), *k;
	size_t n = 0;
	bool shared = false;
	char secret[64], id[40], tenant[40];

	if (cn_json_copy_str(b, "turn_secret", secret, sizeof(secret)) < 0 ||
	    cn_json_copy_str(b, "relay_id", id, sizeof(id)) < 0 ||
	    cn_json_copy_str(b, "tenant_id", tenant, sizeof(tenant)) < 0 ||
	    cn_json_get_bool(b, "shared", &shared) < 0 || !cJSON_IsArray(arr)) {
		cn_log_warn("relay", "relay.config without turn_secret, relay_id, tenant_id, shared "
				     "or keys: ignored");
		return;
	}
	cJSON_ArrayForEach(k, arr) {
		const char *pub = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(k, "public_key"));
		const char *kid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(k, "kid"));
		uint8_t raw[CN_ED25519_PUB_LEN + 2];
		size_t len;

		if (n == 4 || !pub ||
		    cn_base64_decode(CN_B64_URL, pub, strlen(pub), raw, sizeof(raw), &len) < 0 ||
		    len != CN_ED25519_PUB_LEN || cn_ed25519_from_public(raw, &keys[n]) < 0) {
			cn_log_warn("relay", "relay.config: unusable key skipped");
			continue;
		}
		cn_strlcpy(kids[n], kid ? kid : "", sizeof(kids[n]));
		n++;
	}
	if (!n) {
		cn_log_warn("relay", "relay.config carries no usable key: ignored");
		return;
	}
	for (size_t i = 0; i < r->ncentral_keys; i++)
		cn_ed25519_free(r->central_keys[i]);
	memcpy(r->central_keys, keys, sizeof(keys));
	memcpy(r->central_kids, kids, sizeof(kids));
	r->ncentral_keys = n;
	cn_strlcpy(r->turn_secret, secret, sizeof(r->turn_secret));
	cn_strlcpy(r->relay_id, id, sizeof(r->relay_id));
	cn_strlcpy(r->tenant_id, tenant, sizeof(r->tenant_id));
	r->shared = shared;
	r->configured = true;
	/* The TURN server checks viewers' ephemeral credentials with central's secret. */
	if (r->turn && relay_turn_set_secret(r->turn, secret) < 0)
		cn_log_warn("relay", "relay.config: the TURN server refused the secret");
	cn_metric_add(&m_configs, 1);
	cn_log_info("relay", "configured by central: relay %s, tenant %s%s, %zu key(s)", id, tenant,
		    shared ? " (shared)" : "", n);
}

static void on_ready(struct cn_uplink *u, void *arg)
{
	struct relay_uplink *ru = arg;

	(void)u;
	send_report(ru);
}

static void on_message(struct cn_uplink *u, const struct cn_envelope *env, void *arg)
{
	struct relay_uplink *ru = arg;

	(void)u;
	if (strcmp(env->type, "relay.config") == 0) {
		apply_config(ru->r, env->body);
		send_report(ru);
	}
}

static void heartbeat(struct cn_uplink *u, cJSON *body, void *arg)
{
	struct relay_uplink *ru = arg;

	(void)u;
	cn_json_add_i64(body, "sessions", relay_broker_sessions(ru->r));
	cn_json_add_i64(body, "edges", relay_broker_edges(ru->r));
}

static const struct cn_uplink_ops relay_uplink_ops = {
	.on_ready = on_ready,
	.on_message = on_message,
	.heartbeat = heartbeat,
};

int relay_uplink_start(struct relay *r)
{
	struct relay_uplink *ru = calloc(1, sizeof(*ru));
	struct cn_uplink_conf uc = {
		.url = r->conf->central_url,
		.ca_path = r->conf->central_ca,
		.enrol_token = r->conf->enrol_token,
		.kind = "relay",
		.name = r->d->base->node_name,
		.software = "canopy-relay " CANOPY_VERSION,
		.key = r->d->node_key,
	};
	int rc;

	if (!ru)
		return -ENOMEM;
	r->uplink = ru;
	ru->r = r;
	snprintf(ru->state_path, sizeof(ru->state_path), "%.1000s/uplink.json", r->d->base->data_dir);
	uc.state_path = ru->state_path;
	cn_metrics_register(&m_configs);
	if ((rc = cn_uplink_start(&r->d->loop, &uc, &relay_uplink_ops, ru, &ru->link)) < 0)
		return rc;
	cn_metrics_add_collector(cn_uplink_metrics, ru->link);
	ru->report_id = g_timeout_add((guint)r->conf->load_report, report_tick, ru);
	return 0;
}

void relay_uplink_describe(struct relay *r, cJSON *obj)
{
	if (!r->uplink || !r->uplink->link)
		cJSON_AddNullToObject(obj, "uplink");
	else
		cn_uplink_describe(r->uplink->link, obj);
}

void relay_uplink_stop(struct relay *r)
{
	struct relay_uplink *ru = r->uplink;

	if (!ru)
		return;
	if (ru->report_id)
		g_source_remove(ru->report_id);
	if (ru->soon_id)
		g_source_remove(ru->soon_id);
	if (ru->link) {
		cn_metrics_remove_collector(cn_uplink_metrics, ru->link);
		cn_uplink_stop(ru->link);
	}
	free(ru);
	r->uplink = NULL;
}
