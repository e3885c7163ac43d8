/* central_main.c: canopy-central entry point and its configuration table (federator: PostgreSQL control plane, REST API and console). */
#include <stddef.h>

#include "cn_daemon.h"

struct central_conf {
	struct cn_daemon_conf base;
};

static const struct cn_conf_directive central_directives[] = {
	CN_DAEMON_DIRECTIVES(struct central_conf, "central", "/var/lib/canopy-central", "8680"),
};

int main(int argc, char **argv)
{
	struct central_conf conf = { 0 };
	struct cn_daemon d = {
		.component = "central",
		.table = central_directives,
		.ntable = sizeof(central_directives) / sizeof(central_directives[0]),
		.conf = &conf,
	};

	return cn_daemon_main(&d, argc, argv);
}
