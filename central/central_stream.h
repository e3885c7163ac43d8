/* central_stream.h: the live alarm stream (wss://.../api/v1/stream) for consoles and integrators. */
#ifndef CENTRAL_STREAM_H
#define CENTRAL_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "central.h"

/* Serves /api/v1/stream on the API listener, LISTENs on canopy_feed and fans feed rows
 * out to authenticated clients by tenant and grants; purges old feed rows. */
int central_stream_start(struct central *c);
/* Stops timers and the LISTEN connection; jobs still in the pool find the stream stopping
 * when they complete. Call before central_db_close, then central_stream_stop to free. */
void central_stream_quiesce(struct central *c);
void central_stream_stop(struct central *c);

/* ---- pure parts, exposed for the unit tests ------------------------------------------ */

/* Which feed ids the instance has read. bigserial ids are handed out in order but commit
 * in any order, so ids below the highest read may still arrive: they are held as gaps (and
 * re-read) for a while. low() is the resume point it can promise: every id at or below it
 * was read or given up. */
struct central_feed_track {
	int64_t max; /* highest id read; -1 before the start is known */
	struct central_feed_gap {
		int64_t id;
		int64_t due_ms; /* given up at this time */
	} *gaps;     /* ascending */
	size_t n, cap;
	size_t limit; /* gaps held at most; the oldest are given up beyond it */
};

void central_feed_track_init(struct central_feed_track *t, size_t limit);
void central_feed_track_free(struct central_feed_track *t);
/* Sets the highest id read without gaps below it (the start of reading). */
void central_feed_track_start(struct central_feed_track *t, int64_t max);
/* Records id as read at now_ms; ids skipped below it become gaps until now_ms + hold_ms.
 * false when id was already read (nothing to deliver). -ENOMEM is not possible: a gap that
 * cannot be stored is given up (counted in *dropped when non-NULL). */
bool central_feed_track_seen(struct central_feed_track *t, int64_t id, int64_t now_ms,
			     int64_t hold_ms, size_t *dropped);
/* Gives up gaps due by now_ms; returns how many. */
size_t central_feed_track_expire(struct central_feed_track *t, int64_t now_ms);
int64_t central_feed_track_low(const struct central_feed_track *t);

/* What a client may see: events.read tenant-wide, or on sites (with their subtrees), or
 * on cameras. UUIDs as text (36 characters). */
struct central_stream_vis {
	bool all;
	char (*sites)[37];
	size_t nsites;
	char (*cameras)[37];
	size_t ncameras;
};

/* Parses a PostgreSQL uuid[] in text form ("{a,b}") into *out (caller frees); at most max
 * entries. CN_E_MALFORMED on anything else. */
int central_stream_parse_uuids(const char *text, size_t max, char (**out)[37], size_t *n);
/* Is a row at a site whose path (root first, the site itself last) is anc, on camera
 * (NULL or "" for none), visible? */
bool central_stream_visible(const struct central_stream_vis *v, const char (*anc)[37],
			    size_t nanc, const char *camera);
void central_stream_vis_free(struct central_stream_vis *v);

#endif
