/* relay_main.c: canopy-relay entry point and its configuration table (relay: signalling broker, STUN/TURN and SFU for remote viewers). */
#include <stddef.h>

#include "cn_daemon.h"

struct relay_conf {
	struct cn_daemon_conf base;
};

static const struct cn_conf_directive relay_directives[] = {
	CN_DAEMON_DIRECTIVES(struct relay_conf, "relay", "/var/lib/canopy-relay", "8580"),
};

int main(int argc, char **argv)
{
	struct relay_conf conf = { 0 };
	struct cn_daemon d = {
		.component = "relay",
		.table = relay_directives,
		.ntable = sizeof(relay_directives) / sizeof(relay_directives[0]),
		.conf = &conf,
	};

	return cn_daemon_main(&d, argc, argv);
}
