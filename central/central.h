/* central.h: canopy-central's configuration and process state, shared by its parts. */
#ifndef CENTRAL_H
#define CENTRAL_H

#include <stdbool.h>
#include <stdint.h>

#include "central_db.h"
#include "cn_crypto.h"
#include "cn_daemon.h"

struct central_conf {
	struct cn_daemon_conf base;
	char *db;
	int64_t db_pool;
	int64_t db_queue;
	int64_t alarm_tick;             /* ms */
	int64_t events_retention;       /* ms: events and closed alarms */
	int64_t delivery_log_retention; /* ms: webhook delivery log */
	int64_t access_token_ttl;  /* ms, like every duration */
	int64_t refresh_token_ttl;
	int64_t session_idle;
	int64_t lockout_failures;
	int64_t lockout_addr_failures;
	int64_t lockout_minutes;
	int64_t node_offline_after;
	int64_t config_recheck;
	int64_t clock_warn_ms;
	int64_t enrol_token_ttl;
	int64_t webhook_timeout;      /* ms */
	int64_t webhook_retry_window; /* ms */
	int64_t webhook_backoff_min;  /* ms */
	int64_t webhook_backoff_max;  /* ms */
	int64_t webhook_lease;        /* ms */
	int64_t webhook_max_queue;
	char *webhook_ca;
	char *bootstrap_password_file;
	bool tls;
	char *tls_names;
	char *parent_url;
	char *parent_ca;
	char *parent_enrol_token;
	int64_t stream_max_clients;
	int64_t stream_replay_max;
	int64_t stream_replay_age; /* ms */
	int64_t feed_retention;    /* ms */
	/* web console (central_console.c) */
	char *console_dir;
	char *console_connect_src;
};

struct central {
	struct cn_daemon *d;
	struct central_conf *conf;
	struct central_db *db;
	/* Token signing key, shared by every instance through the database. */
	struct cn_ed25519 *sign_key;
	char sign_kid[32];
	char instance_id[40];
	struct central_uplink *uplink; /* children's links held by this instance */
	struct central_parent *parent; /* our own link to a parent central, if any */
	struct central_webhook *webhook; /* webhook delivery engine */
	struct central_stream *stream; /* live alarm stream clients on this instance */
	struct central_alarms *alarms; /* alarm timers and retention */
	/* TLS: the node CA (PEM) and the files the listener uses */
	struct cn_http_tls tls;
	char *ca_pem;
	char ca_path[1100], cert_path[1100], key_path[1100];
};

#endif
