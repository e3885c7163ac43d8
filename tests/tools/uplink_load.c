/* uplink_load.c: opens N simulated node uplinks (the real client code) against a central, for make bench. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cn_crypto.h"
#include "cn_log.h"
#include "cn_loop.h"
#include "cn_time.h"
#include "cn_uplink.h"

/* Usage: canopy-uplink-load URL CA_PEM KEY_PEM NODE_IDS_FILE [RAMP_PER_S]
 * Every node id in the file (one per line) gets its own link, all signed with KEY_PEM
 * (the bench registers that public key for every node). Prints a line each second:
 * "<seconds> ready=<n> of <total>" so the driver knows when the fleet is up. Runs until
 * SIGTERM. */

struct load {
	struct cn_loop loop;
	struct cn_uplink **links;
	char **ids;
	size_t n, started;
	int ramp;
	const char *url, *ca;
	struct cn_ed25519 *key;
	int64_t t0;
};

static const struct cn_uplink_ops ops = { 0 };

static gboolean ramp_cb(gpointer arg)
{
	struct load *ld = arg;
	int i;

	/* Staggered: a real fleet does not connect in one instant either. */
	for (i = 0; i < ld->ramp / 10 && ld->started < ld->n; i++, ld->started++) {
		struct cn_uplink_conf uc = {
			.url = ld->url,
			.ca_path = ld->ca,
			.kind = "edge",
			.name = "load",
			.software = "canopy-uplink-load",
			.node_id = ld->ids[ld->started],
			.key = ld->key,
		};

		if (cn_uplink_start(&ld->loop, &uc, &ops, NULL, &ld->links[ld->started]) < 0) {
			fprintf(stderr, "cannot start link %zu\n", ld->started);
			cn_loop_stop(&ld->loop);
			return G_SOURCE_REMOVE;
		}
	}
	return ld->started < ld->n ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static gboolean report_cb(gpointer arg)
{
	struct load *ld = arg;
	size_t i, ready = 0;

	for (i = 0; i < ld->started; i++)
		ready += cn_uplink_ready(ld->links[i]);
	printf("%.1f ready=%zu of %zu\n", (double)(cn_time_mono_ms() - ld->t0) / 1000.0, ready,
	       ld->n);
	fflush(stdout);
	return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
	struct load ld = { 0 };
	struct rlimit rl;
	char line[128];
	size_t cap = 0, i;
	FILE *f;
	int rc = 1;

	if (argc < 5) {
		fprintf(stderr, "usage: %s URL CA_PEM KEY_PEM NODE_IDS_FILE [RAMP_PER_S]\n", argv[0]);
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { /* one fd per link: up to the hard limit */
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	ld.url = argv[1];
	ld.ca = argv[2];
	ld.ramp = argc > 5 ? (int)strtol(argv[5], NULL, 10) : 2000;
	if (ld.ramp < 10)
		ld.ramp = 10;
	cn_log_set_level(CN_LOG_WARN);
	if (cn_ed25519_load(argv[3], &ld.key) < 0) {
		fprintf(stderr, "cannot load key %s\n", argv[3]);
		return 1;
	}
	if (!(f = fopen(argv[4], "r"))) {
		fprintf(stderr, "cannot open %s: %s\n", argv[4], strerror(errno));
		goto out_key;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t len = strcspn(line, "\r\n");

		if (len == 0)
			continue;
		line[len] = '\0';
		if (ld.n == cap) {
			char **nids;

			cap = cap ? cap * 2 : 1024;
			if (!(nids = realloc(ld.ids, cap * sizeof(*nids))))
				goto out_ids;
			ld.ids = nids;
		}
		if (!(ld.ids[ld.n] = strdup(line)))
			goto out_ids;
		ld.n++;
	}
	if (!(ld.links = calloc(ld.n ? ld.n : 1, sizeof(*ld.links))) || cn_loop_init(&ld.loop) < 0)
		goto out_ids;
	ld.t0 = cn_time_mono_ms();
	g_timeout_add(100, ramp_cb, &ld);
	g_timeout_add(1000, report_cb, &ld);
	cn_loop_run(&ld.loop);
	for (i = 0; i < ld.started; i++)
		cn_uplink_stop(ld.links[i]);
	cn_loop_destroy(&ld.loop);
	rc = 0;
out_ids:
	if (f)
		fclose(f);
	for (i = 0; i < ld.n; i++)
		free(ld.ids[i]);
	free(ld.ids);
	free(ld.links);
out_key:
	cn_ed25519_free(ld.key);
	return rc;
}
