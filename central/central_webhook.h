/* central_webhook.h: webhook delivery from the PostgreSQL outbox (Standard Webhooks signatures, retries, dead letters). */
#ifndef CENTRAL_WEBHOOK_H
#define CENTRAL_WEBHOOK_H

#include <libpq-fe.h>

#include "central.h"

/* Starts the delivery engine: a thread that claims due outbox rows under a lease (its own
 * connection, which also LISTENs on canopy_webhook) and writes attempt results back in
 * batches, and a thread that POSTs them with libcurl multi. Checks the webhook_*
 * directives first (CN_E_CONFIG, logged, when they contradict each other). */
int central_webhook_start(struct central *c);
/* Rows may have been queued: claim now rather than at the next sweep. Cheap, never
 * blocks, callable from any thread; a no-op before start and after quiesce. */
void central_webhook_kick(struct central *c);
/* The lease owner to store new webhook messages under so that this instance sends them
 * without claiming them (uplink_store_events), or NULL when the engine is not running. */
const char *central_webhook_owner(struct central *c);
/* Takes a result of uplink_store_events (rows in webhook_claim's column order; rows whose
 * id is NULL are skipped) and sends its messages. Callable from any thread. 0 when the
 * result is now the engine's; -ESHUTDOWN when it stopped (the caller frees the result, the
 * messages' leases run out and another instance sends them). */
int central_webhook_adopt(struct central *c, PGresult *r);
/* Stops both threads: nothing new is sent, requests in flight get a short grace, their
 * results and the leases of what was not tried are written back. Call before closing the
 * pool, then central_webhook_stop to free. */
void central_webhook_quiesce(struct central *c);
void central_webhook_stop(struct central *c);

#endif
