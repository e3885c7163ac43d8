/* central_console.h: the web console's static files (compiled in, or read from console_dir), served at / and /console/. */
#ifndef CENTRAL_CONSOLE_H
#define CENTRAL_CONSOLE_H

#include <stddef.h>

struct central;

/* One file of central/console, embedded by the Makefile (generated central_console_files.c). */
struct central_console_file {
	const char *name; /* "console.js" */
	const unsigned char *data;
	size_t len;
};

extern const struct central_console_file central_console_files[];
extern const unsigned central_console_nfiles;

/* Registers GET / and /console/ on the API listener and starts reading the relays'
 * origins for the policy. Fails (CN_E_CONFIG, logged) when console_connect_src holds
 * something that is not an origin. */
int central_console_init(struct central *c);

/* Stops re-reading the relays' origins (before the database pool closes). */
void central_console_quiesce(struct central *c);

/* The Content-Type for a file name by its extension; NULL: not a type the console serves. */
const char *central_console_type(const char *name);

/* Checks a space-separated list of origins (scheme://host[:port], schemes https, wss,
 * http, ws) for the Content-Security-Policy. 0 or -EINVAL with the reason in why. */
int central_console_check_origins(const char *list, char *why, size_t cap);

#endif
