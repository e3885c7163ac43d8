/* relay_sfu_edge.h: upstream signalling by plain WHEP over HTTP, for a relay co-located with an edge (sfu_edge_url). */
#ifndef RELAY_SFU_EDGE_H
#define RELAY_SFU_EDGE_H

#include <stddef.h>
#include <stdint.h>

struct relay_sfu;
struct relay_sfu_edge;

/* url: http://host:port (no TLS: the edge is on the same host or LAN); token_file: the
 * edge's admin.token (read at each offer: the edge rewrites it at every start). */
int relay_sfu_edge_new(struct relay_sfu *s, const char *url, const char *token_file,
		       struct relay_sfu_edge **out);
/* In-flight requests finish on their threads; their results are dropped. */
void relay_sfu_edge_free(struct relay_sfu_edge *e);

/* struct relay_sfu_signal hooks (arg = the relay_sfu_edge): POST /whep/<key> on a worker
 * thread, the answer back on the loop through relay_sfu_upstream_answer; DELETE of the
 * session's Location when the upstream closes. */
int relay_sfu_edge_offer(void *arg, const char *key, uint64_t ticket, const char *sdp, size_t len,
			 char *err, size_t errcap);
void relay_sfu_edge_close(void *arg, const char *key, uint64_t ticket);

#endif
