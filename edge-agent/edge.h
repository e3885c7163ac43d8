/* edge.h: the edge daemon's shared state, handed to its API handlers and start-up steps. */
#ifndef EDGE_H
#define EDGE_H

#include <stdint.h>

#include "cn_daemon.h"
#include "cn_jwt.h"
#include "edge_cameras.h"
#include "edge_export.h"
#include "edge_index.h"
#include "edge_retention.h"

/* Token scopes the edge grants: everything, or live view and playback of one camera
 * (claims "cam" and "adepth", see docs/webrtc.md). */
#define EDGE_SCOPE_ADMIN "edge:admin"
#define EDGE_SCOPE_VIEW "edge:view"

struct edge_conf {
	struct cn_daemon_conf base;
	char *cameras_file;
	char *archive_dir;
	bool archive_direct_io;
	int64_t segment_duration;
	int64_t rtsp_timeout;
	int64_t ingest_batch;
	int64_t ingest_batch_idle;
	int64_t reconnect_max;
	int64_t archive_quota;
	int64_t archive_max_percent;
	int64_t retention_interval;
	char *analytics_listen;
	char *analytics_publish;
	int64_t analytics_silence;
	char *central_url;
	char *central_ca;
	char *enrol_token;
	char *webrtc_addresses;
	int64_t webrtc_port_min;
	int64_t webrtc_port_max;
	char *webrtc_stun;
	char *webrtc_turn;
	int webrtc_turn_transport;
	char *webrtc_turn_user;
	char *webrtc_turn_password;
	bool webrtc_relay_only;
	int64_t whep_max_viewers;
	int64_t whep_session_timeout;
	int64_t event_outbox_max;
	int event_outbox_overflow; /* enum edge_outbox_policy */
};

struct edge {
	struct cn_daemon *d;
	struct edge_conf *conf;
	char archive_dir[512];
	char index_path[512];
	char cameras_file[1024];
	struct edge_index *ix; /* the main loop's connection: API reads, few writes */
	struct edge_cameras cams;
	struct edge_retention retention;
	struct edge_exporter exporter;
	struct edge_analytics analytics;
	guint retention_timer;
	struct edge_uplink *uplink; /* NULL without central_url */
	struct edge_whep *whep;
	struct edge_relay *relay; /* registrations to relays (edge_relay.c) */
	guint outbox_timer;
};

/* Registers /api/v1/... on the daemon's HTTP server. */
int edge_api_register(struct edge *e);
/* Registers POST /push/<camera>, the camera alarm-server endpoint. */
int edge_push_register(struct edge *e);
/* 0 when the request carries a valid bearer token signed by the node key (claims, and
 * the payload when asked for, filled in); otherwise fills a 401 problem and returns 1. */
int edge_api_token(struct edge *e, const struct cn_http_req *req, struct cn_http_resp *resp,
		   struct cn_jwt_claims *c, cJSON **payload);
/* 0 when the request carries a valid token with the admin scope; otherwise fills a
 * 401/403 problem into resp and returns 1. */
int edge_api_authorize(struct edge *e, const struct cn_http_req *req, struct cn_http_resp *resp);
/* The recorded ranges and gaps of camera between from and to (RFC 3339, NULL: the last
 * day), cut to the last depth_s seconds (-1: no cut): GET /api/v1/recordings and the
 * relay's recordings request. 0 with resp filled. */
int edge_api_recordings(struct edge *e, const char *camera, const char *from, const char *to,
			int64_t depth_s, struct cn_http_resp *resp);
/* Writes data_dir/admin.token: an EdDSA token of the node key with scope edge:admin. */
int edge_api_write_admin_token(struct edge *e);

#endif
