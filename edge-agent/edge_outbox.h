/* edge_outbox.h: the event outbox's loop side: overflow reports on a timer, metrics, status for the API. */
#ifndef EDGE_OUTBOX_H
#define EDGE_OUTBOX_H

#include <cjson/cJSON.h>

struct edge;

/* Writes the bound and policy into the index (before any thread appends), then starts the
 * report timer and the metrics collector. */
int edge_outbox_start(struct edge *e);
/* Adds "outbox": {bytes, max_bytes, events, undelivered, policy, dropped, ...} to obj. */
int edge_outbox_describe(struct edge *e, cJSON *obj);
void edge_outbox_stop(struct edge *e);

#endif
