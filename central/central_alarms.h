/* central_alarms.h: alarm timers and retention; the kick that starts webhook delivery after alarms change. */
#ifndef CENTRAL_ALARMS_H
#define CENTRAL_ALARMS_H

#include <stddef.h>

#include <libpq-fe.h>

#include "central.h"

/* At start-up, before the loop: records whether alarms may be forwarded to a parent. */
int central_alarms_prepare(PGconn *pg, struct central *c, char *err, size_t cap);
/* Runs the timers every alarm_tick and retention hourly. */
int central_alarms_start(struct central *c);
/* Called on the loop after a transaction that may have queued webhook messages. */
void central_alarms_kick(struct central *c);
/* Timers off (before the pool closes); then stop frees. */
void central_alarms_quiesce(struct central *c);
void central_alarms_stop(struct central *c);

#endif
