/* edge_relay.h: the edge's outbound registrations to relays, which bring viewers' WHEP requests to it from behind NAT. */
#ifndef EDGE_RELAY_H
#define EDGE_RELAY_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "cn_crypto.h"

#define EDGE_RELAY_MAX_KEYS 4

struct edge;
struct edge_relay;

int edge_relay_start(struct edge *e);
void edge_relay_stop(struct edge *e);
/* The relays message from central: {relays: [{id, url}], token, expires_at, keys}. */
void edge_relay_update(struct edge *e, const cJSON *body);
/* Central's token keys as last received (not owned by the caller); 0 when none yet. */
size_t edge_relay_keys(struct edge *e, struct cn_ed25519 **keys, size_t cap);
/* Adds "relays": [{id, url, state, error, connects, draining}] to obj. */
void edge_relay_describe(struct edge *e, cJSON *obj);

#endif
