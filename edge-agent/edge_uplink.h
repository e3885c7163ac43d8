/* edge_uplink.h: the edge's uplink to central (configuration in, inventory and events out). */
#ifndef EDGE_UPLINK_H
#define EDGE_UPLINK_H

#include <cjson/cJSON.h>

struct edge;

/* Starts when central_url is set; keeps trying with backoff, never blocks recording. */
int edge_uplink_start(struct edge *e);
/* Adds "uplink": {state, error, node_id, ...} (or null when not configured) to obj. */
int edge_uplink_describe(struct edge *e, cJSON *obj);
void edge_uplink_stop(struct edge *e);
/* The node id central gave at enrolment ("" until then, or without an uplink). */
const char *edge_uplink_node_id(struct edge *e);

#endif
