/* relay_turn.h: the relay's TURN server (RFC 8656) over UDP and TCP, on its own epoll threads. */
#ifndef RELAY_TURN_H
#define RELAY_TURN_H

#include <stdint.h>
#include <sys/socket.h>

struct relay_conf;
struct relay_turn;

/*
 * Threads: relay_turn_start opens the listeners and starts turn_threads worker threads,
 * each with its own epoll set, UDP and TCP listener (SO_REUSEPORT: the kernel keeps a
 * client's 5-tuple on one worker), allocations and relayed sockets. Nothing of it runs on
 * the GLib loop. The functions below may be called from any thread.
 *
 * Credentials (REST style): username "<expiry unix s>:<tenant>/<user>", password
 * base64(HMAC-SHA1(secret, username)). The tenant of an allocation is the part of the
 * subject before '/'; metrics are labelled by tenant only.
 */

/* NULL *out (and 0) when turn_listen is empty; CN_E_CONFIG with a logged reason when the
 * settings do not work; a negative errno when a socket or thread cannot be made. */
int relay_turn_start(const struct relay_conf *conf, struct relay_turn **out);
/* Stops and joins the workers, closes every socket, frees everything. NULL is fine. */
void relay_turn_stop(struct relay_turn *t);

/* Replaces the REST shared secret (e.g. the one central hands over at enrolment); an
 * empty secret makes every authenticated request fail. -EINVAL when too long. */
int relay_turn_set_secret(struct relay_turn *t, const char *secret);

/* The bound UDP/TCP listener address (its port when turn_listen said 0). */
int relay_turn_listen_addr(const struct relay_turn *t, struct sockaddr_storage *out);

struct relay_turn_stats {
	uint64_t allocations;       /* live now */
	uint64_t allocations_total; /* made since start */
	uint64_t bytes_to_peer;
	uint64_t bytes_to_client;
	uint64_t packets_to_peer;
	uint64_t packets_to_client;
	uint64_t auth_failures;
	uint64_t policy_refusals;
	uint64_t malformed;
};

/* Totals over all tenants (the byte and packet counts lag by up to one second). */
void relay_turn_stats(const struct relay_turn *t, struct relay_turn_stats *out);

#endif
