/* edge_main.c: canopy-edge entry point and its configuration table (site agent: records cameras, detects motion, keeps working offline). */
#include <stddef.h>

#include "cn_daemon.h"

struct edge_conf {
	struct cn_daemon_conf base;
};

static const struct cn_conf_directive edge_directives[] = {
	CN_DAEMON_DIRECTIVES(struct edge_conf, "edge", "/var/lib/canopy-edge", "8480"),
};

int main(int argc, char **argv)
{
	struct edge_conf conf = { 0 };
	struct cn_daemon d = {
		.component = "edge",
		.table = edge_directives,
		.ntable = sizeof(edge_directives) / sizeof(edge_directives[0]),
		.conf = &conf,
	};

	return cn_daemon_main(&d, argc, argv);
}
