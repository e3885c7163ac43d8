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

/* Enrols into / stays connected to parent_url as a node of kind central. */
int central_parent_start(struct central *c);
void central_parent_quiesce(struct central *c);
void central_parent_stop(struct central *c);

#endif
