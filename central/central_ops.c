/* central_ops.c: the REST operation table: paths, permissions, body and query fields, SQL functions. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "central.h"
#include "central_api.h"
#include "central_auth.h"
#include "central_relay.h"
#include "cn_webhook.h"
#include "cn_x509.h"
#include "edge_camcfg.h"

#define UUID_MAX 36
#define PAGE { "limit", CN_F_INT, 1, 1000, false }, { "offset", CN_F_INT, 0, 10000000, false }

/* Every api_* function has the same nine parameters (see central_api.h). */
#define CALL(fn) "SELECT * FROM " fn "($1, $2, $3, $4, $5, $6, $7, $8, $9)"

static const struct cn_field login_body[] = {
	{ "username", CN_F_STR, 1, 64, true },
	{ "password", CN_F_STR, 1, 256, true },
	{ "client_type", CN_F_STR, 1, 32, false },
	{ NULL },
};
static const struct cn_field refresh_body[] = {
	{ "refresh_token", CN_F_STR, 1, 128, true },
	{ NULL },
};
static const struct cn_field page_query[] = { PAGE, { NULL } };

static const struct cn_field event_query[] = {
	PAGE,
	{ "site_id", CN_F_UUID, 0, 0, false },
	{ "camera_id", CN_F_UUID, 0, 0, false },
	{ "node_id", CN_F_UUID, 0, 0, false },
	{ "type", CN_F_STR, 1, 64, false },
	{ "since", CN_F_TIME, 0, 0, false },
	{ "until", CN_F_TIME, 0, 0, false },
	{ NULL },
};
static const struct cn_field alarm_query[] = {
	PAGE,
	{ "state", CN_F_STR, 1, 8, false },
	{ "site_id", CN_F_UUID, 0, 0, false },
	{ "camera_id", CN_F_UUID, 0, 0, false },
	{ "type", CN_F_STR, 1, 64, false },
	{ "min_severity", CN_F_INT, 1, 5, false },
	{ "since", CN_F_TIME, 0, 0, false },
	{ "until", CN_F_TIME, 0, 0, false },
	{ NULL },
};
static const struct cn_field alarm_transition[] = {
	{ "state", CN_F_STR, 5, 8, true },
	{ "comment", CN_F_STR, 0, 1000, false },
	{ NULL },
};
static const struct cn_field rule_body[] = {
	{ "name", CN_F_STR, 1, 128, true },
	{ "site_id", CN_F_UUIDN, 0, 0, false },
	{ "camera_id", CN_F_UUIDN, 0, 0, false },
	{ "event_types", CN_F_STRARR, 1, 64, true },
	{ "severity", CN_F_INT, 1, 5, false },
	{ "schedule", CN_F_ARR, 0, 50, false },
	{ "processing_s", CN_F_INT, 1, 604800, false },
	{ "comment_required", CN_F_BOOL, 0, 0, false },
	{ "auto_ack_s", CN_F_INT, 1, 604800, false },
	{ "policy_id", CN_F_UUIDN, 0, 0, false },
	{ "enabled", CN_F_BOOL, 0, 0, false },
	{ NULL },
};
static const struct cn_field policy_body[] = {
	{ "name", CN_F_STR, 1, 128, true },
	{ "levels", CN_F_ARR, 1, 10, true },
	{ NULL },
};


static const struct cn_field tenant_create[] = {
	{ "name", CN_F_STR, 1, 128, true },
	{ "username", CN_F_STR, 1, 64, true },
	{ "password", CN_F_STR, 1, 256, true },
	{ "display_name", CN_F_STR, 0, 128, false },
	{ NULL },
};
static const struct cn_field tenant_update[] = { { "name", CN_F_STR, 1, 128, true }, { NULL } };

static const struct cn_field site_body[] = {
	{ "name", CN_F_STR, 1, 128, true },
	{ "parent_id", CN_F_UUIDN, 0, 0, false },
	{ "description", CN_F_STR, 0, 1024, false },
	{ "timezone", CN_F_STR, 1, 64, false },
	{ NULL },
};
static const struct cn_field site_query[] = {
	PAGE,
	{ "parent_id", CN_F_UUID, 0, 0, false },
	{ "under", CN_F_UUID, 0, 0, false },
	{ "q", CN_F_STR, 1, 128, false },
	{ NULL },
};

static const struct cn_field node_create[] = {
	{ "site_id", CN_F_UUID, 0, 0, true },
	{ "kind", CN_F_STR, 4, 7, true },
	{ "name", CN_F_STR, 1, 128, true },
	{ NULL },
};
static const struct cn_field node_update[] = {
	{ "site_id", CN_F_UUID, 0, 0, false },
	{ "name", CN_F_STR, 1, 128, false },
	{ NULL },
};
static const struct cn_field node_query[] = {
	PAGE,
	{ "site_id", CN_F_UUID, 0, 0, false },
	{ "under", CN_F_UUID, 0, 0, false },
	{ "kind", CN_F_STR, 1, 16, false },
	{ "state", CN_F_STR, 1, 16, false },
	{ NULL },
};
static const struct cn_field enrol_body[] = { { "ttl_s", CN_F_INT, 60, 30 * 86400, false }, { NULL } };
static const struct cn_field node_event_query[] = {
	PAGE,
	{ "node_id", CN_F_UUID, 0, 0, false },
	{ "type", CN_F_STR, 1, 64, false },
	{ NULL },
};

static const struct cn_field camera_create[] = {
	{ "node_id", CN_F_UUID, 0, 0, true },
	{ "key", CN_F_STR, 1, 63, true },
	{ "name", CN_F_STR, 0, 127, false },
	{ "config", CN_F_OBJ, 0, 0, false },
	{ NULL },
};
static const struct cn_field camera_update[] = {
	{ "name", CN_F_STR, 0, 127, false },
	{ "config", CN_F_OBJ, 0, 0, false },
	{ NULL },
};
static const struct cn_field camera_query[] = {
	PAGE,
	{ "node_id", CN_F_UUID, 0, 0, false },
	{ "site_id", CN_F_UUID, 0, 0, false },
	{ "under", CN_F_UUID, 0, 0, false },
	{ "state", CN_F_STR, 1, 32, false },
	{ NULL },
};

static const struct cn_field live_body[] = {
	{ "stream", CN_F_STR, 3, 4, false },
	{ NULL },
};
static const struct cn_field playback_body[] = {
	{ "start", CN_F_TIME, 0, 0, true },
	{ "speed", CN_F_INT, 1, 4, false },
	{ NULL },
};

static const struct cn_field user_create[] = {
	{ "username", CN_F_STR, 1, 64, true },
	{ "password", CN_F_STR, 1, 256, true },
	{ "display_name", CN_F_STR, 0, 128, false },
	{ "disabled", CN_F_BOOL, 0, 0, false },
	{ NULL },
};
static const struct cn_field user_update[] = {
	{ "password", CN_F_STR, 1, 256, false },
	{ "display_name", CN_F_STR, 0, 128, false },
	{ "disabled", CN_F_BOOL, 0, 0, false },
	{ NULL },
};
static const struct cn_field user_query[] = { PAGE, { "q", CN_F_STR, 1, 64, false }, { NULL } };

static const struct cn_field role_body[] = {
	{ "name", CN_F_STR, 1, 64, true },
	{ "permissions", CN_F_STRARR, 0, 64, true },
	{ "max_sessions", CN_F_INT, 1, 1000, false },
	{ "archive_depth", CN_F_INT, 1, 9999, false },
	{ "archive_depth_unit", CN_F_STR, 4, 7, false },
	{ NULL },
};
static const struct cn_field grant_body[] = {
	{ "user_id", CN_F_UUID, 0, 0, true },
	{ "role_id", CN_F_UUID, 0, 0, true },
	{ "site_id", CN_F_UUIDN, 0, 0, false },
	{ "camera_id", CN_F_UUIDN, 0, 0, false },
	{ NULL },
};
static const struct cn_field grant_query[] = { PAGE, { "user_id", CN_F_UUID, 0, 0, false }, { NULL } };

static const struct cn_field token_body[] = {
	{ "name", CN_F_STR, 1, 128, true },
	{ "scopes", CN_F_STRARR, 1, 64, true },
	{ "expires_at", CN_F_TIME, 0, 0, true },
	{ NULL },
};
static const struct cn_field session_query[] = { PAGE, { "user_id", CN_F_UUID, 0, 0, false }, { NULL } };
static const struct cn_field audit_query[] = {
	PAGE,
	{ "action", CN_F_STR, 1, 64, false },
	{ "actor", CN_F_STR, 1, 64, false },
	{ "result", CN_F_STR, 1, 16, false },
	{ "object_id", CN_F_STR, 1, 64, false },
	{ "since", CN_F_TIME, 0, 0, false },
	{ "until", CN_F_TIME, 0, 0, false },
	{ NULL },
};

static int prepare_password(PGconn *pg, struct api_call *call)
{
	int rc = central_auth_prepare_password(pg, call);

	/* Keeps the caller's own session alive when they change their own password. */
	if (rc == 0 && strcmp(call->id, call->auth.user_id) == 0 &&
	    !(call->extra[1] = strdup(call->auth.session_id[0] ? call->auth.session_id : "")))
		return -ENOMEM;
	if (call->extra[1] && !call->extra[1][0]) {
		free(call->extra[1]);
		call->extra[1] = NULL;
	}
	return rc;
}

/* A camera's configuration is checked by the edge's own parser (edge_camcfg.c), so a
 * mistake is a 400 naming the field now, not a refusal at the edge later. */
static int prepare_camera(PGconn *pg, struct api_call *call)
{
	const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(call->body, "config");
	const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(call->body, "key"));
	struct edge_camcfg *parsed;
	cJSON *doc, *cams, *cam;
	char *text, err[512];
	int rc;

	(void)pg;
	if (!cJSON_IsObject(cfg))
		return 0;
	if (!(doc = cJSON_CreateObject()) || !(cams = cJSON_AddArrayToObject(doc, "cameras")) ||
	    !(cam = cJSON_Duplicate(cfg, true))) {
		cJSON_Delete(doc);
		return -ENOMEM;
	}
	cJSON_AddItemToArray(cams, cam);
	if (!cJSON_GetObjectItemCaseSensitive(cam, "id"))
		cJSON_AddStringToObject(cam, "id", key ? key : "camera");
	text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (!text || !(parsed = calloc(1, sizeof(*parsed)))) {
		cJSON_free(text);
		return -ENOMEM;
	}
	rc = edge_camcfg_parse(text, strlen(text), parsed, err, sizeof(err));
	free(parsed);
	cJSON_free(text);
	if (rc < 0)
		return api_problem(call, 400, "config: %s", err) < 0 ? -ENOMEM : 1;
	return 0;
}

static int prepare_token(PGconn *pg, struct api_call *call)
{
	(void)pg;
	return central_auth_prepare_secret(call, "cnt_");
}

static int prepare_enrol(PGconn *pg, struct api_call *call)
{
	char ttl[24];
	int rc;

	(void)pg;
	if ((rc = central_auth_prepare_secret(call, "cne_")) < 0)
		return rc;
	snprintf(ttl, sizeof(ttl), "%lld", (long long)call->c->conf->enrol_token_ttl / 1000);
	return (call->extra[1] = strdup(ttl)) ? 0 : -ENOMEM;
}

/* The secret exists only in this response; the database keeps its hash. */
static int post_secret(struct api_call *call, cJSON *body)
{
	return cJSON_AddStringToObject(body, "token", call->post_secret) ? 0 : -ENOMEM;
}

static int prepare_session(PGconn *pg, struct api_call *call)
{
	char idle[24];

	(void)pg;
	snprintf(idle, sizeof(idle), "%lld", (long long)call->c->conf->session_idle / 1000);
	if (!(call->extra[0] = strdup(call->auth.session_id[0] ? call->auth.session_id
							       : "00000000-0000-0000-0000-000000000000")) ||
	    !(call->extra[1] = strdup(idle)))
		return -ENOMEM;
	return 0;
}

/* The node CA's certificate (public): what nodes and browsers must trust. Fetched over a
 * connection that cannot be verified yet, so compare the fingerprint out of band. */
static int ca_certificate(PGconn *pg, struct api_call *call)
{
	char fp[CN_X509_FP_LEN + 1];
	cJSON *o;
	int rc = -ENOMEM;

	(void)pg;
	if (!call->c->ca_pem)
		return api_problem(call, 404, "TLS is off on this instance: it has no node CA");
	if (cn_x509_fingerprint(call->c->ca_pem, fp, sizeof(fp)) < 0)
		return api_problem(call, 500, "the node CA certificate is unreadable");
	if ((o = cJSON_CreateObject()) && cJSON_AddStringToObject(o, "pem", call->c->ca_pem) &&
	    cJSON_AddStringToObject(o, "sha256", fp))
		rc = api_json(call, 200, o);
	cJSON_Delete(o);
	return rc;
}

static const struct cn_field webhook_body[] = {
	{ "name", CN_F_STR, 1, 128, true },
	{ "url", CN_F_STR, 1, 2048, true },
	{ "types", CN_F_STRARR, 1, 128, true },
	{ "site_id", CN_F_UUIDN, 0, 0, false },
	{ "min_severity", CN_F_INT, 0, 5, false },
	{ "max_in_flight", CN_F_INT, 1, 256, false },
	{ "enabled", CN_F_BOOL, 0, 0, false },
	{ NULL },
};
static const struct cn_field webhook_delivery_query[] = {
	PAGE,
	{ "msg_id", CN_F_STR, 1, 256, false },
	{ NULL },
};
static const struct cn_field webhook_replay_body[] = { { "ids", CN_F_STRARR, 1, 256, false }, { NULL } };

/* Central signs with a subscription's secret, so the database keeps it (not a hash); the
 * answer shows it this once. */
static int prepare_webhook_secret(PGconn *pg, struct api_call *call)
{
	char secret[CN_WEBHOOK_SECRET_LEN];
	int rc;

	(void)pg;
	if ((rc = cn_webhook_secret_new(secret, sizeof(secret))) < 0)
		return rc;
	if (!(call->extra[0] = strdup(secret)) || !(call->post_secret = strdup(secret)))
		return -ENOMEM;
	return 0;
}

static int post_webhook_secret(struct api_call *call, cJSON *body)
{
	return cJSON_AddStringToObject(body, "secret", call->post_secret) ? 0 : -ENOMEM;
}

#define V1 "/api/v1"

const struct api_op central_ops[] = {
	{ CN_HTTP_POST, V1 "/auth/login", NULL, NULL, login_body, NULL, NULL, true, NULL, NULL,
	  central_auth_login, "log in with user name and password; returns access and refresh tokens" },
	{ CN_HTTP_POST, V1 "/auth/refresh", NULL, NULL, refresh_body, NULL, NULL, true, NULL, NULL,
	  central_auth_refresh, "exchange a refresh token for new tokens (the old one stops working)" },
	{ CN_HTTP_POST, V1 "/auth/logout", NULL, "session.logout", NULL, NULL,
	  CALL("api_sessions_delete"), false, prepare_session, NULL, NULL, "end the current session" },
	{ CN_HTTP_GET, V1 "/ca", NULL, NULL, NULL, NULL, NULL, true, NULL, NULL, ca_certificate,
	  "the node CA certificate (PEM) and its SHA-256 fingerprint; compare it out of band" },
	{ CN_HTTP_GET, V1 "/me", NULL, NULL, NULL, NULL, CALL("api_me"), false, NULL, NULL, NULL,
	  "the calling user, tenant, grants and tenant-wide permissions" },
	{ CN_HTTP_GET, V1 "/permissions", NULL, NULL, NULL, NULL, CALL("api_permissions_list"), false,
	  NULL, NULL, NULL, "the fixed permission list roles pick from" },

	{ CN_HTTP_GET, V1 "/tenants", NULL, NULL, NULL, page_query, CALL("api_tenants_list"), false,
	  NULL, NULL, NULL, "list tenants (others only for the system tenant's managers)" },
	{ CN_HTTP_POST, V1 "/tenants", "tenants.manage", "tenant.create", tenant_create, NULL,
	  CALL("api_tenants_create"), false, central_auth_prepare_password, NULL, NULL,
	  "create a tenant with its first administrator" },
	{ CN_HTTP_GET, V1 "/tenants/{id}", NULL, NULL, NULL, NULL, CALL("api_tenants_get"), false,
	  NULL, NULL, NULL, "get a tenant" },
	{ CN_HTTP_PATCH, V1 "/tenants/{id}", "tenants.manage", "tenant.update", tenant_update, NULL,
	  CALL("api_tenants_update"), false, NULL, NULL, NULL, "rename a tenant" },
	{ CN_HTTP_DELETE, V1 "/tenants/{id}", "tenants.manage", "tenant.delete", NULL, NULL,
	  CALL("api_tenants_delete"), false, NULL, NULL, NULL, "delete a tenant without nodes" },

	{ CN_HTTP_GET, V1 "/sites", "sites.read", NULL, NULL, site_query, CALL("api_sites_list"),
	  false, NULL, NULL, NULL, "list visible sites, roots first (the tree, flattened)" },
	{ CN_HTTP_POST, V1 "/sites", "sites.write", "site.create", site_body, NULL,
	  CALL("api_sites_create"), false, NULL, NULL, NULL, "create a site (root or under a parent)" },
	{ CN_HTTP_GET, V1 "/sites/{id}", "sites.read", NULL, NULL, NULL, CALL("api_sites_get"), false,
	  NULL, NULL, NULL, "get a site" },
	{ CN_HTTP_PATCH, V1 "/sites/{id}", "sites.write", "site.update", site_body, NULL,
	  CALL("api_sites_update"), false, NULL, NULL, NULL, "rename or move a site" },
	{ CN_HTTP_DELETE, V1 "/sites/{id}", "sites.write", "site.delete", NULL, NULL,
	  CALL("api_sites_delete"), false, NULL, NULL, NULL, "delete an empty site" },

	{ CN_HTTP_GET, V1 "/nodes", "sites.read", NULL, NULL, node_query, CALL("api_nodes_list"),
	  false, NULL, NULL, NULL, "list visible nodes with state and configuration drift" },
	{ CN_HTTP_POST, V1 "/nodes", "nodes.write", "node.create", node_create, NULL,
	  CALL("api_nodes_create"), false, NULL, NULL, NULL,
	  "declare a node (edge, relay or central) at a site; enrol it with a token" },
	{ CN_HTTP_GET, V1 "/nodes/{id}", "sites.read", NULL, NULL, NULL, CALL("api_nodes_get"), false,
	  NULL, NULL, NULL, "get a node" },
	{ CN_HTTP_PATCH, V1 "/nodes/{id}", "nodes.write", "node.update", node_update, NULL,
	  CALL("api_nodes_update"), false, NULL, NULL, NULL, "rename or move a node" },
	{ CN_HTTP_DELETE, V1 "/nodes/{id}", "nodes.write", "node.delete", NULL, NULL,
	  CALL("api_nodes_delete"), false, NULL, NULL, NULL, "delete a node (its uplink is dropped)" },
	{ CN_HTTP_POST, V1 "/nodes/{id}/revoke", "nodes.write", "node.revoke", NULL, NULL,
	  CALL("api_nodes_revoke"), false, NULL, NULL, NULL,
	  "revoke a node's identity: its uplink is closed and refused from now on" },
	{ CN_HTTP_POST, V1 "/nodes/{id}/enrolment-tokens", "nodes.write", "enrolment_token.create",
	  enrol_body, NULL, CALL("api_enrol_create"), false, prepare_enrol, post_secret, NULL,
	  "make a one-time enrolment token for the node (shown once)" },
	{ CN_HTTP_GET, V1 "/nodes/{id}/enrolment-tokens", "nodes.write", NULL, NULL, page_query,
	  CALL("api_enrol_list"), false, NULL, NULL, NULL, "list the node's enrolment tokens" },
	{ CN_HTTP_DELETE, V1 "/nodes/{id}/enrolment-tokens/{sub}", "nodes.write",
	  "enrolment_token.delete", NULL, NULL, CALL("api_enrol_delete"), false, NULL, NULL, NULL,
	  "withdraw an enrolment token" },
	{ CN_HTTP_GET, V1 "/node-events", "sites.read", NULL, NULL, node_event_query,
	  CALL("api_node_events_list"), false, NULL, NULL, NULL,
	  "node events raised by central (offline, online, clock skew, revoked)" },

	{ CN_HTTP_GET, V1 "/events", "events.read", NULL, NULL, event_query, CALL("api_events_list"),
	  false, NULL, NULL, NULL,
	  "events from the nodes, newest first: by site subtree, camera, node, type and time, "
	  "within your grants and archive depth" },
	{ CN_HTTP_GET, V1 "/alarms", "events.read", NULL, NULL, alarm_query, CALL("api_alarms_list"),
	  false, NULL, NULL, NULL,
	  "alarms, newest first: by state (open = new or missed), site subtree, camera, type, "
	  "severity and time" },
	{ CN_HTTP_GET, V1 "/alarms/{id}", "events.read", NULL, NULL, NULL, CALL("api_alarms_get"),
	  false, NULL, NULL, NULL, "an alarm with its history of transitions" },
	{ CN_HTTP_POST, V1 "/alarms/{id}/state", "alarms.handle", "alarm.transition",
	  alarm_transition, NULL, CALL("api_alarms_transition"), false, NULL, NULL, NULL,
	  "handle an alarm: accepted, false or ignored (from new or missed), then resolved" },
	{ CN_HTTP_GET, V1 "/alarm-rules", "events.read", NULL, NULL, page_query,
	  CALL("api_rules_list"), false, NULL, NULL, NULL, "list alarm rules" },
	{ CN_HTTP_POST, V1 "/alarm-rules", "alarms.configure", "alarm_rule.create", rule_body, NULL,
	  CALL("api_rules_create"), false, NULL, NULL, NULL,
	  "create an alarm rule: which events raise an alarm where, its severity, guard schedule, "
	  "processing time and escalation policy" },
	{ CN_HTTP_GET, V1 "/alarm-rules/{id}", "events.read", NULL, NULL, NULL, CALL("api_rules_get"),
	  false, NULL, NULL, NULL, "get an alarm rule" },
	{ CN_HTTP_PATCH, V1 "/alarm-rules/{id}", "alarms.configure", "alarm_rule.update", rule_body,
	  NULL, CALL("api_rules_update"), false, NULL, NULL, NULL, "change an alarm rule" },
	{ CN_HTTP_DELETE, V1 "/alarm-rules/{id}", "alarms.configure", "alarm_rule.delete", NULL, NULL,
	  CALL("api_rules_delete"), false, NULL, NULL, NULL,
	  "delete an alarm rule (its alarms stay)" },
	{ CN_HTTP_GET, V1 "/escalation-policies", "events.read", NULL, NULL, page_query,
	  CALL("api_policies_list"), false, NULL, NULL, NULL, "list escalation policies" },
	{ CN_HTTP_POST, V1 "/escalation-policies", "alarms.configure", "escalation_policy.create",
	  policy_body, NULL, CALL("api_policies_create"), false, NULL, NULL, NULL,
	  "create an escalation policy: ordered levels, each with whom to notify and a timeout" },
	{ CN_HTTP_GET, V1 "/escalation-policies/{id}", "events.read", NULL, NULL, NULL,
	  CALL("api_policies_get"), false, NULL, NULL, NULL, "get an escalation policy" },
	{ CN_HTTP_PATCH, V1 "/escalation-policies/{id}", "alarms.configure",
	  "escalation_policy.update", policy_body, NULL, CALL("api_policies_update"), false, NULL,
	  NULL, NULL, "change an escalation policy (alarms already raised follow the new levels)" },
	{ CN_HTTP_DELETE, V1 "/escalation-policies/{id}", "alarms.configure",
	  "escalation_policy.delete", NULL, NULL, CALL("api_policies_delete"), false, NULL, NULL,
	  NULL, "delete an escalation policy no rule uses" },

	{ CN_HTTP_GET, V1 "/cameras", "cameras.read", NULL, NULL, camera_query,
	  CALL("api_cameras_list"), false, NULL, NULL, NULL,
	  "list visible cameras: inventory, state and desired configuration" },
	{ CN_HTTP_POST, V1 "/cameras", "cameras.write", "camera.create", camera_create, NULL,
	  CALL("api_cameras_create"), false, prepare_camera, NULL, NULL,
	  "add a camera to an edge; its configuration is pushed at once" },
	{ CN_HTTP_GET, V1 "/cameras/{id}", "cameras.read", NULL, NULL, NULL, CALL("api_cameras_get"),
	  false, NULL, NULL, NULL, "get a camera" },
	{ CN_HTTP_PATCH, V1 "/cameras/{id}", "cameras.write", "camera.update", camera_update, NULL,
	  CALL("api_cameras_update"), false, prepare_camera, NULL, NULL,
	  "rename a camera or replace its desired configuration" },
	{ CN_HTTP_DELETE, V1 "/cameras/{id}", "cameras.write", "camera.delete", NULL, NULL,
	  CALL("api_cameras_delete"), false, NULL, NULL, NULL, "remove a camera from its edge" },

	/* Viewing through a relay (central_relay.c, docs/relay.md): audited like a change. */
	{ CN_HTTP_POST, V1 "/cameras/{id}/live", "live.view", "camera.live", live_body, NULL,
	  CALL("api_camera_live"), false, central_relay_prepare_live, central_relay_live_post, NULL,
	  "watch a camera live: the relay's WHEP URL, a short-lived viewer token and ICE servers "
	  "with ephemeral TURN credentials" },
	{ CN_HTTP_POST, V1 "/cameras/{id}/playback", "archive.view", "camera.playback",
	  playback_body, NULL, CALL("api_camera_live"), false, central_relay_prepare_playback,
	  central_relay_live_post, NULL,
	  "play a camera's archive from start at speed 1, 2 or 4 through a relay (within your "
	  "archive depth)" },
	{ CN_HTTP_GET, V1 "/relays", "sites.read", NULL, NULL, page_query, CALL("api_relays_list"),
	  false, NULL, NULL, NULL,
	  "relays serving this tenant: URL, state, draining, sessions, registered edges, load" },

	{ CN_HTTP_GET, V1 "/users", "users.read", NULL, NULL, user_query, CALL("api_users_list"),
	  false, NULL, NULL, NULL, "list the tenant's users" },
	{ CN_HTTP_POST, V1 "/users", "users.write", "user.create", user_create, NULL,
	  CALL("api_users_create"), false, central_auth_prepare_password, NULL, NULL,
	  "create a user (password policy applies)" },
	{ CN_HTTP_GET, V1 "/users/{id}", "users.read", NULL, NULL, NULL, CALL("api_users_get"), false,
	  NULL, NULL, NULL, "get a user" },
	{ CN_HTTP_PATCH, V1 "/users/{id}", "users.write", "user.update", user_update, NULL,
	  CALL("api_users_update"), false, prepare_password, NULL, NULL,
	  "change a user's password, name or disabled flag (ends their other sessions)" },
	{ CN_HTTP_DELETE, V1 "/users/{id}", "users.write", "user.delete", NULL, NULL,
	  CALL("api_users_delete"), false, NULL, NULL, NULL, "delete a user" },

	{ CN_HTTP_GET, V1 "/roles", "users.read", NULL, NULL, page_query, CALL("api_roles_list"),
	  false, NULL, NULL, NULL, "list built-in and custom roles" },
	{ CN_HTTP_POST, V1 "/roles", "users.write", "role.create", role_body, NULL,
	  CALL("api_roles_create"), false, NULL, NULL, NULL, "create a custom role" },
	{ CN_HTTP_GET, V1 "/roles/{id}", "users.read", NULL, NULL, NULL, CALL("api_roles_get"), false,
	  NULL, NULL, NULL, "get a role" },
	{ CN_HTTP_PATCH, V1 "/roles/{id}", "users.write", "role.update", role_body, NULL,
	  CALL("api_roles_update"), false, NULL, NULL, NULL, "change a custom role" },
	{ CN_HTTP_DELETE, V1 "/roles/{id}", "users.write", "role.delete", NULL, NULL,
	  CALL("api_roles_delete"), false, NULL, NULL, NULL, "delete a custom role nobody holds" },

	{ CN_HTTP_GET, V1 "/grants", "users.read", NULL, NULL, grant_query, CALL("api_grants_list"),
	  false, NULL, NULL, NULL, "list grants" },
	{ CN_HTTP_POST, V1 "/grants", "users.write", "grant.create", grant_body, NULL,
	  CALL("api_grants_create"), false, NULL, NULL, NULL,
	  "grant a role on the tenant, a site subtree or a camera" },
	{ CN_HTTP_GET, V1 "/grants/{id}", "users.read", NULL, NULL, NULL, CALL("api_grants_get"),
	  false, NULL, NULL, NULL, "get a grant" },
	{ CN_HTTP_DELETE, V1 "/grants/{id}", "users.write", "grant.delete", NULL, NULL,
	  CALL("api_grants_delete"), false, NULL, NULL, NULL, "remove a grant" },

	{ CN_HTTP_GET, V1 "/api-tokens", "tokens.write", NULL, NULL, page_query,
	  CALL("api_tokens_list"), false, NULL, NULL, NULL, "list integrator API tokens" },
	{ CN_HTTP_POST, V1 "/api-tokens", "tokens.write", "api_token.create", token_body, NULL,
	  CALL("api_tokens_create"), false, prepare_token, post_secret, NULL,
	  "create an integrator token with scopes and expiry (shown once)" },
	{ CN_HTTP_GET, V1 "/api-tokens/{id}", "tokens.write", NULL, NULL, NULL,
	  CALL("api_tokens_get"), false, NULL, NULL, NULL, "get an integrator token's metadata" },
	{ CN_HTTP_DELETE, V1 "/api-tokens/{id}", "tokens.write", "api_token.revoke", NULL, NULL,
	  CALL("api_tokens_delete"), false, NULL, NULL, NULL, "revoke an integrator token" },

	/* An API token needs users.read / users.write to see or end sessions (its owner may see
	 * everyone's); a login session needs neither for its own. */
	{ CN_HTTP_GET, V1 "/sessions", "users.read", NULL, NULL, session_query, CALL("api_sessions_list"),
	  false, prepare_session, NULL, NULL, "list live sessions (yours, or all with users.read)" },
	{ CN_HTTP_DELETE, V1 "/sessions/{id}", "users.write", "session.revoke", NULL, NULL,
	  CALL("api_sessions_delete"), false, prepare_session, NULL, NULL,
	  "end a session: its refresh token stops working and its access tokens are refused" },

	{ CN_HTTP_GET, V1 "/webhooks", "webhooks.manage", NULL, NULL, page_query,
	  CALL("api_webhooks_list"), false, NULL, NULL, NULL,
	  "list webhook subscriptions with their state, pending and dead counts" },
	{ CN_HTTP_POST, V1 "/webhooks", "webhooks.manage", "webhook.create", webhook_body, NULL,
	  CALL("api_webhooks_create"), false, prepare_webhook_secret, post_webhook_secret, NULL,
	  "subscribe a URL to alarm and event messages (the signing secret is shown once)" },
	{ CN_HTTP_GET, V1 "/webhooks/{id}", "webhooks.manage", NULL, NULL, NULL,
	  CALL("api_webhooks_get"), false, NULL, NULL, NULL,
	  "get a webhook subscription: state, why it was disabled, pending and dead counts, last delivery" },
	{ CN_HTTP_PATCH, V1 "/webhooks/{id}", "webhooks.manage", "webhook.update", webhook_body, NULL,
	  CALL("api_webhooks_update"), false, NULL, NULL, NULL,
	  "change a webhook subscription; enabled=true re-enables a disabled one" },
	{ CN_HTTP_DELETE, V1 "/webhooks/{id}", "webhooks.manage", "webhook.delete", NULL, NULL,
	  CALL("api_webhooks_delete"), false, NULL, NULL, NULL,
	  "delete a webhook subscription with its pending messages, dead letters and log" },
	{ CN_HTTP_POST, V1 "/webhooks/{id}/rotate-secret", "webhooks.manage", "webhook.rotate_secret",
	  NULL, NULL, CALL("api_webhooks_rotate"), false, prepare_webhook_secret,
	  post_webhook_secret, NULL,
	  "replace the signing secret (shown once); the old one also signs for 24 hours" },
	{ CN_HTTP_GET, V1 "/webhooks/{id}/deliveries", "webhooks.manage", NULL, NULL,
	  webhook_delivery_query, CALL("api_webhooks_deliveries"), false, NULL, NULL, NULL,
	  "the delivery log: every attempt with its status, latency and error, newest first" },
	{ CN_HTTP_GET, V1 "/webhooks/{id}/dead-letters", "webhooks.manage", NULL, NULL, page_query,
	  CALL("api_webhooks_dead_letters"), false, NULL, NULL, NULL,
	  "messages that failed for the whole retry window or were stopped by 410 Gone" },
	{ CN_HTTP_POST, V1 "/webhooks/{id}/dead-letters/replay", "webhooks.manage", "webhook.replay",
	  webhook_replay_body, NULL, CALL("api_webhooks_replay"), false, NULL, NULL, NULL,
	  "requeue dead letters (all, or those named) with their webhook-id and body unchanged" },
	{ CN_HTTP_POST, V1 "/webhooks/{id}/test", "webhooks.manage", "webhook.test", NULL, NULL,
	  CALL("api_webhooks_test"), false, NULL, NULL, NULL,
	  "queue a webhook.test message to this subscription" },

	{ CN_HTTP_GET, V1 "/audit", "audit.read", NULL, NULL, audit_query, CALL("api_audit_list"),
	  false, NULL, NULL, NULL, "the audit log: every change and every login, newest first" },
};

const unsigned central_nops = sizeof(central_ops) / sizeof(central_ops[0]);
