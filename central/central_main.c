/* central_main.c: canopy-central entry point and its configuration table (federator: PostgreSQL control plane, REST API and console). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "central.h"
#include "central_alarms.h"
#include "central_api.h"
#include "central_auth.h"
#include "central_bootstrap.h"
#include "central_console.h"
#include "central_migrations.h"
#include "central_stream.h"
#include "central_tls.h"
#include "central_uplink.h"
#include "central_webhook.h"
#include "cn_crypto.h"
#include "cn_daemon.h"
#include "cn_err.h"
#include "cn_log.h"


#define C(field) offsetof(struct central_conf, field)

static const struct cn_conf_directive central_directives[] = {
	CN_DAEMON_DIRECTIVES(struct central_conf, "central", "/var/lib/canopy-central", "8680"),
	{ "db", CN_CONF_STRING, C(db), 1, 1024, "dbname=canopy", NULL,
	  "libpq connection string of the PostgreSQL database (shared by all central instances)" },
	{ "db_pool", CN_CONF_INT, C(db_pool), 1, 64, "4", NULL,
	  "database connections (worker threads) of this instance" },
	{ "db_queue", CN_CONF_INT, C(db_queue), 16, 100000, "1024", NULL,
	  "database jobs that may wait; more are answered 503" },
	{ "alarm_tick", CN_CONF_DURATION, C(alarm_tick), 100, (60) * 1000LL, "1s", NULL,
	  "how often alarm timers run: missed after the processing time, automatic "
	  "acknowledgement, escalation to the next level" },
	{ "events_retention", CN_CONF_DURATION, C(events_retention), (3600) * 1000LL,
	  (3650LL * 86400) * 1000LL, "90d", NULL,
	  "events and handled alarms older than this are deleted (open alarms are kept)" },
	{ "delivery_log_retention", CN_CONF_DURATION, C(delivery_log_retention), (3600) * 1000LL,
	  (365LL * 86400) * 1000LL, "14d", NULL,
	  "webhook delivery attempts are logged this long" },
	{ "access_token_ttl", CN_CONF_DURATION, C(access_token_ttl), (60) * 1000LL, (86400) * 1000LL, "15m", NULL,
	  "lifetime of access tokens" },
	{ "refresh_token_ttl", CN_CONF_DURATION, C(refresh_token_ttl), (300) * 1000LL, (365 * 86400) * 1000LL, "30d", NULL,
	  "longest life of a login session (its refresh token), however active" },
	{ "session_idle", CN_CONF_DURATION, C(session_idle), (10) * 1000LL, (86400) * 1000LL, "6m", NULL,
	  "a session with no request for this long ends (and stops counting against the limit)" },
	{ "lockout_failures", CN_CONF_INT, C(lockout_failures), 1, 1000, "5", NULL,
	  "failed logins on one account that lock it" },
	{ "lockout_addr_failures", CN_CONF_INT, C(lockout_addr_failures), 1, 100000, "5", NULL,
	  "failed logins from one source address that lock the address" },
	{ "lockout_minutes", CN_CONF_INT, C(lockout_minutes), 1, 1440, "15", NULL,
	  "how long a lockout lasts; also the window failures are counted in" },
	{ "node_offline_after", CN_CONF_DURATION, C(node_offline_after), (5) * 1000LL, (3600) * 1000LL, "2m", NULL,
	  "a node silent this long is marked offline, with an event" },
	{ "config_recheck", CN_CONF_DURATION, C(config_recheck), (1) * 1000LL, (3600) * 1000LL, "60s", NULL,
	  "how often connected nodes' configuration versions are re-checked" },
	{ "clock_warn_ms", CN_CONF_INT, C(clock_warn_ms), 10, 3600000, "2000", NULL,
	  "a node clock further off than this raises a warning event" },
	{ "enrol_token_ttl", CN_CONF_DURATION, C(enrol_token_ttl), (60) * 1000LL, (30 * 86400) * 1000LL, "24h", NULL,
	  "default lifetime of an enrolment token" },
	{ "webhook_timeout", CN_CONF_DURATION, C(webhook_timeout), 100, (300) * 1000LL, "10s", NULL,
	  "a webhook receiver that has not answered in this long has failed the attempt" },
	{ "webhook_retry_window", CN_CONF_DURATION, C(webhook_retry_window), 100,
	  (30LL * 86400) * 1000LL, "24h", NULL,
	  "a webhook message failing for this long (from queueing or replay) becomes a dead letter" },
	{ "webhook_backoff_min", CN_CONF_DURATION, C(webhook_backoff_min), 10, (3600) * 1000LL, "1s", NULL,
	  "wait before the first retry; it doubles per attempt (with +-20% jitter)" },
	{ "webhook_backoff_max", CN_CONF_DURATION, C(webhook_backoff_max), 10, (86400) * 1000LL, "1h", NULL,
	  "longest wait between two attempts" },
	{ "webhook_lease", CN_CONF_DURATION, C(webhook_lease), (2) * 1000LL, (3600) * 1000LL, "30s", NULL,
	  "how long a claimed message is this instance's alone (renewed while held); must exceed "
	  "webhook_timeout by 2 s; another instance takes it over after a crash once it runs out" },
	{ "webhook_max_queue", CN_CONF_INT, C(webhook_max_queue), 100, 1000000, "20000", NULL,
	  "webhook messages this instance holds in memory; the rest wait in the outbox" },
	{ "webhook_ca", CN_CONF_STRING, C(webhook_ca), 0, 1024, "", NULL,
	  "CA certificates (PEM file) https webhook receivers must chain to (empty: the system's)" },
	{ "bootstrap_password_file", CN_CONF_STRING, C(bootstrap_password_file), 0, 1024, "", NULL,
	  "file holding the first administrator's password (else random, written to data_dir)" },
	{ "tls", CN_CONF_BOOL, C(tls), 0, 0, "true", NULL,
	  "serve HTTPS and wss:// with a certificate from the node CA (off: plain HTTP, for a "
	  "TLS-terminating proxy in front)" },
	{ "tls_names", CN_CONF_STRING, C(tls_names), 1, 500, "127.0.0.1,localhost", NULL,
	  "DNS names and IP addresses nodes and browsers use to reach this instance" },
	{ "parent_url", CN_CONF_STRING, C(parent_url), 0, 512, "", NULL,
	  "wss://.../uplink of a parent central to enrol into (empty: this is a top central)" },
	{ "parent_ca", CN_CONF_STRING, C(parent_ca), 0, 1024, "", NULL,
	  "the parent's CA certificate (PEM file) that its TLS certificate must chain to" },
	{ "parent_enrol_token", CN_CONF_STRING, C(parent_enrol_token), 0, 128, "", NULL,
	  "one-time enrolment token from the parent (used once; the node key is kept)" },
	{ "stream_max_clients", CN_CONF_INT, C(stream_max_clients), 1, 100000, "1000", NULL,
	  "live stream (/api/v1/stream) connections this instance holds; more are closed with 4503" },
	{ "stream_replay_max", CN_CONF_INT, C(stream_replay_max), 1, 100000, "10000", NULL,
	  "most missed messages replayed to a client resuming from a cursor; more: it must reload" },
	{ "stream_replay_age", CN_CONF_DURATION, C(stream_replay_age), (60) * 1000LL,
	  (30LL * 86400) * 1000LL, "24h", NULL,
	  "a resuming client that missed messages older than this must reload instead" },
	{ "feed_retention", CN_CONF_DURATION, C(feed_retention), (60) * 1000LL,
	  (365LL * 86400) * 1000LL, "7d", NULL,
	  "live stream messages are kept this long for resuming clients, then deleted" },
	{ "console_dir", CN_CONF_STRING, C(console_dir), 0, 1024, "", NULL,
	  "serve the web console's files from this directory instead of the copy compiled into "
	  "the binary (for developing the console)" },
	{ "console_connect_src", CN_CONF_STRING, C(console_connect_src), 0, 256, "", NULL,
	  "origins besides this one the console may connect to (space-separated, e.g. the "
	  "relays' https://relay.example:8443 for WHEP), added to its Content-Security-Policy" },
};

/* Before the listener: the database (schema, shared secrets, first admin) and TLS. */
static int central_prepare(struct cn_daemon *d)
{
	struct central_conf *conf = d->conf;
	struct central *c = calloc(1, sizeof(*c));
	char err[512];
	PGconn *pg;
	int rc, from = 0, to = 0;

	if (!c)
		return -ENOMEM;
	d->app = c;
	c->d = d;
	c->conf = conf;
	if (cn_random_id(c->instance_id, sizeof(c->instance_id)) < 0)
		return -EIO;
	if (!(pg = central_db_connect(conf->db, err, sizeof(err)))) {
		cn_log_error("central", "%s", err);
		return -ECONNREFUSED;
	}
	rc = central_migrate(pg, &from, &to, err, sizeof(err));
	if (rc == 0)
		rc = central_bootstrap(pg, c, err, sizeof(err));
	if (rc == 0)
		rc = central_alarms_prepare(pg, c, err, sizeof(err));
	if (rc == 0 && conf->tls)
		rc = central_tls_prepare(pg, c, err, sizeof(err));
	PQfinish(pg);
	if (rc < 0) {
		cn_log_error("central", "%s", err);
		return rc;
	}
	cn_log_info("central", "database schema version %d%s", to, from != to ? " (migrated)" : "");
	return 0;
}

static int central_start(struct cn_daemon *d)
{
	struct central *c = d->app;
	int rc;

	if ((rc = central_auth_init()) < 0)
		return rc;
	if ((rc = central_db_open(&d->loop, c->conf->db, (int)c->conf->db_pool,
				  (size_t)c->conf->db_queue, &c->db)) < 0 ||
	    (rc = central_api_init(c)) < 0 || (rc = central_console_init(c)) < 0 ||
	    (rc = central_uplink_start(c)) < 0 ||
	    (rc = central_webhook_start(c)) < 0 ||
	    (rc = central_stream_start(c)) < 0 ||
	    (rc = central_alarms_start(c)) < 0)
		return rc;
	if (c->conf->parent_url[0] && (rc = central_parent_start(c)) < 0)
		return rc;
	return 0;
}

static void central_stop(struct cn_daemon *d)
{
	struct central *c = d->app;

	if (!c)
		return;
	/* Timers off and jobs orphaned first: closing the pool completes them. */
	central_parent_quiesce(c);
	central_uplink_quiesce(c);
	central_stream_quiesce(c);
	central_console_quiesce(c);
	central_alarms_quiesce(c);
	central_webhook_quiesce(c);
	central_db_close(c->db);
	central_parent_stop(c);
	central_uplink_stop(c);
	central_stream_stop(c);
	central_alarms_stop(c);
	central_webhook_stop(c);
	free(c->ca_pem);
	cn_ed25519_free(c->sign_key);
	free(c);
	d->app = NULL;
}

int main(int argc, char **argv)
{
	struct central_conf conf = { 0 };
	struct cn_daemon d = {
		.component = "central",
		.table = central_directives,
		.ntable = sizeof(central_directives) / sizeof(central_directives[0]),
		.conf = &conf,
		.prepare = central_prepare,
		.start = central_start,
		.stop = central_stop,
	};

	return cn_daemon_main(&d, argc, argv);
}
