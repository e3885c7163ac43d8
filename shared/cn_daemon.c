/* cn_daemon.c: the common life cycle of a Canopy binary, from argv to a clean exit. */
#include "cn_daemon.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cn_err.h"
#include "cn_json.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_time.h"
#include "cn_version.h"

const char *const cn_daemon_log_levels[] = { "error", "warn", "info", "debug", NULL };
const char *const cn_daemon_log_formats[] = { "text", "json", NULL };

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [-t] [-c FILE | --config FILE] [-V | --version] [-h | --help]\n"
		"  -t              check the configuration, print the effective one, and exit\n"
		"  -c, --config    configuration file (key = value lines; defaults if omitted)\n"
		"  -V, --version   print the version and exit\n",
		prog);
}

static int healthz(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	struct cn_daemon *d = arg;
	cJSON *o = cJSON_CreateObject();
	int rc = -ENOMEM;

	(void)req;
	if (o && cJSON_AddStringToObject(o, "status", "ok") &&
	    cJSON_AddStringToObject(o, "component", d->component) &&
	    cJSON_AddStringToObject(o, "node", d->base->node_name) &&
	    cJSON_AddStringToObject(o, "version", CANOPY_VERSION) &&
	    cJSON_AddStringToObject(o, "key_id", d->node_key_id) &&
	    cJSON_AddNumberToObject(o, "uptime_s",
				    (double)((cn_time_mono_ms() - d->started_mono_ms) / 1000)))
		rc = cn_json_print(o, &resp->body);
	cJSON_Delete(o);
	cn_strlcpy(resp->content_type, "application/json", sizeof(resp->content_type));
	return rc;
}

static int metrics(const struct cn_http_req *req, struct cn_http_resp *resp, void *arg)
{
	(void)req;
	(void)arg;
	cn_strlcpy(resp->content_type, "text/plain; version=0.0.4; charset=utf-8",
		   sizeof(resp->content_type));
	return cn_metrics_render(&resp->body);
}

static int apply_logging(const struct cn_daemon_conf *c, char *err, size_t cap)
{
	cn_log_set_level((enum cn_log_level)c->log_level);
	cn_log_set_format((enum cn_log_format)c->log_format);
	if (cn_log_set_debug(c->log_debug) < 0) {
		snprintf(err, cap, "'log_debug': '%s' is not a comma-separated list of subsystem names",
			 c->log_debug);
		return CN_E_CONFIG;
	}
	return 0;
}

/* Loads <data_dir>/node.key, or makes one on first start: the node's lasting identity. */
static int load_node_key(struct cn_daemon *d)
{
	char path[1100];
	int rc;

	if (g_mkdir_with_parents(d->base->data_dir, 0700) < 0) {
		rc = -errno;
		cn_log_error("daemon", "cannot create data_dir '%s': %s", d->base->data_dir,
			     strerror(errno));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/node.key", d->base->data_dir);
	rc = cn_ed25519_load(path, &d->node_key);
	if (rc == -ENOENT) {
		if ((rc = cn_ed25519_generate(&d->node_key)) == 0 &&
		    (rc = cn_ed25519_save_private(d->node_key, path)) < 0) {
			cn_ed25519_free(d->node_key);
			d->node_key = NULL;
		}
		if (rc == 0)
			cn_log_info("daemon", "created node key '%s'", path);
	}
	if (rc == 0 && !cn_ed25519_has_private(d->node_key))
		rc = CN_E_BAD_ALG;
	if (rc < 0) {
		cn_log_error("daemon", "cannot use node key '%s': %s", path, cn_strerror(rc));
		return rc;
	}
	return cn_ed25519_key_id(d->node_key, d->node_key_id, sizeof(d->node_key_id));
}

static int run(struct cn_daemon *d)
{
	int rc;

	d->started_mono_ms = cn_time_mono_ms();
	cn_metrics_set_build_info(d->component, CANOPY_VERSION "+" CANOPY_COMMIT);
	if ((rc = load_node_key(d)) < 0)
		return rc;
	if ((rc = cn_loop_init(&d->loop)) < 0)
		goto out_free_key;
	if (d->prepare && (rc = d->prepare(d)) < 0) {
		cn_log_error("daemon", "canopy-%s cannot start: %s", d->component, cn_strerror(rc));
		if (d->stop)
			d->stop(d);
		goto out_destroy_loop;
	}
	rc = cn_http_listen_tls(&d->loop, d->component, d->base->http_listen,
				(int)d->base->http_port, (size_t)d->base->http_max_body, d->tls,
				&d->http);
	if (rc < 0) {
		cn_log_error("daemon", "cannot listen on %s:%lld: address in use or not local%s",
			     d->base->http_listen, (long long)d->base->http_port,
			     d->tls ? ", or its TLS certificate or key is unusable" : "");
		goto out_stop;
	}
	if ((rc = cn_http_route(d->http, CN_HTTP_GET, "/healthz", healthz, d)) < 0 ||
	    (rc = cn_http_route(d->http, CN_HTTP_GET, "/metrics", metrics, d)) < 0 ||
	    (rc = cn_metrics_add_collector(cn_http_metrics, d->http)) < 0)
		goto out_stop;
	if (d->start && (rc = d->start(d)) < 0) {
		/* the part that failed may have said why; this line says that it ends here */
		cn_log_error("daemon", "canopy-%s cannot start: %s", d->component, cn_strerror(rc));
		if (d->stop)
			d->stop(d); /* undo what start managed before failing */
		goto out_destroy_loop;
	}
	cn_log_info("daemon", "canopy-%s %s (%s) node '%s' key %s running, pid %d", d->component,
		    CANOPY_VERSION, CANOPY_COMMIT, d->base->node_name, d->node_key_id, (int)getpid());
	cn_loop_run(&d->loop);
	if (d->stop)
		d->stop(d);
	cn_log_info("daemon", "canopy-%s stopped", d->component);
	rc = 0;
	goto out_destroy_loop;
out_stop:
	if (d->prepare && d->stop)
		d->stop(d); /* prepare's work */
out_destroy_loop:
	cn_loop_destroy(&d->loop);
	cn_http_close(d->http);
	d->http = NULL;
	cn_metrics_reset();
out_free_key:
	cn_ed25519_free(d->node_key);
	d->node_key = NULL;
	return rc;
}

int cn_daemon_main(struct cn_daemon *d, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	bool test = false;
	char err[512];
	int opt, status = 1;

	d->base = d->conf;
	while ((opt = getopt_long(argc, argv, "tc:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 't': test = true; break;
		case 'c': path = optarg; break;
		case 'V':
			printf("canopy-%s %s (%s)\n", d->component, CANOPY_VERSION, CANOPY_COMMIT);
			return 0;
		case 'h': usage(stdout, argv[0]); return 0;
		default: usage(stderr, argv[0]); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
		usage(stderr, argv[0]);
		return 2;
	}
	if (cn_conf_load(d->table, d->ntable, d->conf, path, err, sizeof(err)) < 0 ||
	    apply_logging(d->base, err, sizeof(err)) < 0) {
		fprintf(stderr, "canopy-%s: configuration error: %s\n", d->component, err);
		goto out_free_conf;
	}
	if (test) {
		struct cn_buf out;
		cn_buf_init(&out, 1 << 20);
		if (cn_conf_dump(d->table, d->ntable, d->conf, &out) == 0) {
			printf("# canopy-%s %s effective configuration (%s)\n%s", d->component,
			       CANOPY_VERSION, path ? path : "defaults", out.data ? out.data : "");
			fprintf(stderr, "canopy-%s: configuration %s is valid\n", d->component,
				path ? path : "(defaults)");
			status = 0;
		}
		cn_buf_free(&out);
		goto out_free_conf;
	}
	status = run(d) < 0 ? 1 : 0;
out_free_conf:
	cn_conf_free(d->table, d->ntable, d->conf);
	return status;
}
