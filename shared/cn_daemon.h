/* cn_daemon.h: what every Canopy binary shares: options, config, logging, node key, health, metrics. */
#ifndef CN_DAEMON_H
#define CN_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "cn_conf.h"
#include "cn_crypto.h"
#include "cn_http.h"
#include "cn_loop.h"

/* Directives every binary has; each binary's config struct starts with this as `base`. */
struct cn_daemon_conf {
	char *node_name;
	char *data_dir;
	char *http_listen;
	int64_t http_port;
	int64_t http_max_body;
	int log_level;
	int log_format;
	char *log_debug;
};

extern const char *const cn_daemon_log_levels[];
extern const char *const cn_daemon_log_formats[];

/* Table rows for struct cn_daemon_conf inside binary config struct T. */
#define CN_DAEMON_DIRECTIVES(T, name_def, dir_def, port_def)                                    \
	{ "node_name", CN_CONF_STRING, offsetof(T, base.node_name), 1, 64, name_def, NULL,       \
	  "name of this node in logs, health and metrics" },                                      \
	{ "data_dir", CN_CONF_STRING, offsetof(T, base.data_dir), 1, 1024, dir_def, NULL,        \
	  "directory for this node's key and state (created 0700 if missing)" },                  \
	{ "http_listen", CN_CONF_STRING, offsetof(T, base.http_listen), 1, 64, "127.0.0.1",      \
	  NULL, "address of the HTTP listener (health, metrics, API)" },                          \
	{ "http_port", CN_CONF_INT, offsetof(T, base.http_port), 1, 65535, port_def, NULL,       \
	  "TCP port of the HTTP listener" },                                                      \
	{ "http_max_body", CN_CONF_SIZE, offsetof(T, base.http_max_body), 1024, 64LL << 20,      \
	  "1M", NULL, "largest accepted HTTP request body; larger ones get 413" },                \
	{ "log_level", CN_CONF_ENUM, offsetof(T, base.log_level), 0, 0, "info",                  \
	  cn_daemon_log_levels, "least severe level written: error, warn, info or debug" },      \
	{ "log_format", CN_CONF_ENUM, offsetof(T, base.log_format), 0, 0, "text",                \
	  cn_daemon_log_formats, "text lines or json (one JSON object per line)" },              \
	{ "log_debug", CN_CONF_STRING, offsetof(T, base.log_debug), 0, 512, "", NULL,            \
	  "comma-separated subsystems logged at debug level (e.g. http,lws) or all" }

struct cn_daemon {
	/* Set by the binary before cn_daemon_main. */
	const char *component; /* "edge", "relay", "central" */
	const struct cn_conf_directive *table;
	size_t ntable;
	void *conf; /* zeroed struct whose first member is struct cn_daemon_conf */
	/* After the config and node key, before the HTTP listener: may set tls (certificates
	 * made or fetched at start-up). */
	int (*prepare)(struct cn_daemon *d);
	int (*start)(struct cn_daemon *d); /* after the HTTP listener is up */
	void (*stop)(struct cn_daemon *d); /* before the loop is destroyed; also after a failed start */
	void *app; /* the binary's own state */
	const struct cn_http_tls *tls; /* HTTPS for the listener when set (by the binary or prepare) */

	/* Filled in by cn_daemon_main. */
	struct cn_daemon_conf *base;
	struct cn_loop loop;
	struct cn_http_server *http;
	struct cn_ed25519 *node_key;
	char node_key_id[32];
	int64_t started_mono_ms;
};

/* Parses -t, -c/--config, -V/--version, -h/--help; loads the config; with -t prints the
 * effective config and returns; otherwise runs until SIGTERM/SIGINT. Returns the exit
 * status: 0 clean, 1 config or start-up failure, 2 usage. */
int cn_daemon_main(struct cn_daemon *d, int argc, char **argv);

#endif
