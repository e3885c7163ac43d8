/* central_relay.h: relays at central: configuration and load over the uplink, edges told where to register, live/playback broker calls. */
#ifndef CENTRAL_RELAY_H
#define CENTRAL_RELAY_H

#include <stdbool.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "central.h"
#include "cn_envelope.h"

struct api_call;

/* Registration tokens central gives edges for their relays, and viewer tokens: seconds. */
#define CENTRAL_RELAY_REG_TTL_S 3600
#define CENTRAL_VIEWER_TOKEN_TTL_S 300
/* TURN credentials handed to viewers live this long (seconds). */
#define CENTRAL_TURN_TTL_S 3600

/* A link became ready: a relay gets relay.config, an edge the relays to register with. */
void central_relay_link_ready(struct central *c, const char *node_id, const char *kind);
/* Handles relay.* messages from a ready link; false for types it does not know. */
bool central_relay_message(struct central *c, const char *node_id, const char *kind,
			   const struct cn_envelope *env);
/* Tells every edge linked here its relays again (fresh tokens; a relay came or went). */
void central_relay_recheck(struct central *c);

/* REST hooks (central_ops.c): POST /cameras/{id}/live and /playback. */
int central_relay_prepare_live(PGconn *pg, struct api_call *call);
int central_relay_prepare_playback(PGconn *pg, struct api_call *call);
int central_relay_live_post(struct api_call *call, cJSON *body);

/* The TURN REST credential (draft-uberti-behave-turn-rest): base64(HMAC-SHA1(secret,
 * username)) into out. */
int central_relay_turn_password(const char *secret, const char *username, char *out, size_t cap);

#endif
