/* central_uplink.h: the parent side of the uplink (children's wss links) and the link to our own parent. */
#ifndef CENTRAL_UPLINK_H
#define CENTRAL_UPLINK_H

#include "central.h"

/* Serves wss://.../uplink on the API listener; LISTENs for configuration changes and
 * revocations; flushes heartbeats and sweeps silent nodes. */
int central_uplink_start(struct central *c);
/* Stops timers and marks jobs still in the pool as orphans; call before closing the pool,
 * then central_uplink_stop to free. The same pair exists for the parent link. */
void central_uplink_quiesce(struct central *c);
void central_uplink_stop(struct central *c);

/* Sends a message (takes body) to a node whose link this instance holds; -ENOENT when
 * it holds none. For central_relay.c. */
struct cJSON;
int central_uplink_send_node(struct central *c, const char *node_id, const char *type,
			     struct cJSON *body);
/* Calls fn for every ready link of kind held by this instance. */
void central_uplink_each(struct central *c, const char *kind,
			 void (*fn)(struct central *c, const char *node_id, void *arg), void *arg);

/* Enrols into / stays connected to parent_url as a node of kind central. */
int central_parent_start(struct central *c);
void central_parent_quiesce(struct central *c);
void central_parent_stop(struct central *c);

#endif
