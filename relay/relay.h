/* relay.h: canopy-relay's configuration and process state, shared by its modules (broker, TURN, SFU). */
#ifndef RELAY_H
#define RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <glib.h>

#include "cn_crypto.h"
#include "cn_daemon.h"

struct relay_conf {
	struct cn_daemon_conf base; /* first: cn_daemon reads it */

	/* broker (relay_uplink.c, relay_broker.c) */
	char *central_url;     /* wss://central:8680/uplink; empty: not enrolled */
	char *central_ca;      /* central's CA certificate (PEM) */
	char *enrol_token;     /* one-time enrolment token (first start only) */
	char *public_url;      /* base URL viewers and edges use to reach us (http[s]://host:port) */
	int64_t sfu_threshold; /* viewers of one camera through this relay before the SFU takes new ones */
	int64_t drain_timeout; /* ms: how long existing sessions may run after SIGTERM */
	int64_t load_report;   /* ms between load reports to central */
	int64_t max_sessions;  /* brokered sessions at once */
	char *ice_urls;        /* STUN/TURN URLs central hands viewers of this relay (stun:, turn:) */
	int64_t edge_idle;     /* ms: an edge registration silent this long is dropped */

	/* TURN (relay_turn.c) */
	char *turn_listen;            /* IP:port of the UDP (and TCP) listener; empty: no TURN */
	bool turn_tcp;                /* also accept TURN over TCP on the same port */
	char *turn_relay_ip;          /* address relayed sockets bind to and clients are told */
	char *turn_realm;
	char *turn_secret;            /* REST shared secret (central may set it at enrolment) */
	char *turn_allow_peers;       /* CIDRs relayed to even when special (loopback, private...) */
	char *turn_deny_peers;        /* CIDRs never relayed to */
	int64_t turn_user_quota;      /* live allocations per subject (tenant/user) */
	int64_t turn_tenant_quota;    /* live allocations per tenant */
	int64_t turn_max_allocations; /* live allocations in all (and TCP connections per thread) */
	int64_t turn_max_lifetime;    /* ms */
	int64_t turn_nonce_lifetime;  /* ms */
	int64_t turn_threads;         /* worker threads (epoll each, SO_REUSEPORT listeners) */

	/* SFU (relay_sfu.c) */
	char *sfu_webrtc_addresses;  /* local IPs for viewers' and upstreams' ICE host candidates */
	int64_t sfu_port_min, sfu_port_max; /* UDP port range for SFU media (0: any) */
	int64_t sfu_max_viewers;     /* viewers of one camera through the SFU */
	int64_t sfu_linger;          /* ms an upstream stays after its last viewer */
	int64_t sfu_session_timeout; /* ms of silence after which a viewer or upstream is dropped */
	int64_t sfu_queue_packets;   /* per-viewer backlog before a slow viewer skips to a keyframe */
	char *sfu_edge_url;          /* plain WHEP upstream to a co-located edge (http://host:port) */
	char *sfu_edge_token_file;   /* bearer token for sfu_edge_url (the edge's admin.token) */
	char *sfu_viewer_token;      /* bearer token of the relay's own /sfu/whep/ route */
};

struct relay_uplink;
struct relay_broker;
struct relay_turn;
struct relay_sfu;

/* The process state, cn_daemon's `app`; lives on the loop. */
struct relay {
	struct cn_daemon *d;
	struct relay_conf *conf;
	struct relay_uplink *uplink; /* link to central (relay_uplink.c) */
	struct relay_broker *broker; /* edge registrations and WHEP (relay_broker.c) */
	struct relay_turn *turn;     /* TURN server (relay_turn.c) */
	struct relay_sfu *sfu;       /* SFU (relay_sfu.c) */
	bool draining;               /* SIGTERM seen: new sessions refused */
	int64_t drain_started_ms;    /* monotonic */
	guint drain_timer, sig_term;

	/* From central (relay.config over the uplink; relay_uplink.c) */
	bool configured;              /* central's keys are known */
	struct cn_ed25519 *central_keys[4]; /* verify viewer and edge registration tokens */
	char central_kids[4][32];
	size_t ncentral_keys;
	char relay_id[40];            /* our node id at central */
	char tenant_id[40];
	bool shared;                  /* serves every tenant (an operator's relay) */
	char turn_secret[64];         /* TURN REST shared secret for relay_turn.c */
};

/* relay_uplink.c: enrols into central, takes relay.config, reports load. */
int relay_uplink_start(struct relay *r);
void relay_uplink_stop(struct relay *r);
/* Sends a load report soon (edges or sessions changed). */
void relay_uplink_report_soon(struct relay *r);
/* Adds "central" {state, error, node_id} to obj. */
void relay_uplink_describe(struct relay *r, cJSON *obj);

/* relay_broker.c: edge registrations (/relay/edge) and the WHEP endpoint (/whep/). */
int relay_broker_start(struct relay *r);
void relay_broker_stop(struct relay *r);
/* Adds what central stores from the load report: sessions, edges, per-tenant paths. */
void relay_broker_report(struct relay *r, cJSON *body);
/* Draining: tells the registered edges; new sessions are refused from now on. */
void relay_broker_drain(struct relay *r);
int relay_broker_sessions(const struct relay *r);
int relay_broker_edges(const struct relay *r);
/* Carries the SFU's upstream signalling over edges' registrations (relay_sfu_set_signal). */
void relay_broker_attach_sfu(struct relay *r);

#endif
