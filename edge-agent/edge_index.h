/* edge_index.h: the edge's SQLite (WAL) index: segments, keyframes, events outbox, protected ranges. */
#ifndef EDGE_INDEX_H
#define EDGE_INDEX_H

#include <stdbool.h>
#include <stdint.h>

struct edge_index;

struct edge_segment_row {
	int64_t id;
	char camera[64];
	char path[256]; /* relative to archive_dir */
	int64_t start_ms, end_ms;
	int64_t bytes;
	bool open;
};

/* Opens (creating and migrating) the index. One connection per thread: writers are the
 * ingest threads, each with its own; the main loop reads with its own. */
int edge_index_open(const char *path, struct edge_index **out);
void edge_index_close(struct edge_index *ix);

int edge_index_segment_begin(struct edge_index *ix, const char *camera, const char *relpath,
			     int64_t start_ms, const char *codec, int width, int height,
			     int64_t *id);
/* After each complete fragment: the file is valid up to bytes, covering start_ms (refined
 * as the clock anchor settles) to end_ms; the fragment that starts at key_ms at byte
 * key_offset begins with a keyframe. */
int edge_index_segment_progress(struct edge_index *ix, int64_t id, int64_t start_ms,
				int64_t end_ms, int64_t bytes, int64_t key_ms, int64_t key_offset);
int edge_index_segment_finish(struct edge_index *ix, int64_t id, int64_t start_ms, int64_t end_ms,
			      int64_t bytes);
int edge_index_segment_delete(struct edge_index *ix, int64_t id);
/* A complete segment found on disk without a row (recovery of orphans). */
int edge_index_segment_insert(struct edge_index *ix, const char *camera, const char *relpath,
			      int64_t start_ms, int64_t end_ms, int64_t bytes, int64_t *id);
int edge_index_keyframe_add(struct edge_index *ix, int64_t id, int64_t t_ms, int64_t offset);
/* Calls fn for every segment, by id. */
int edge_index_all_segments(struct edge_index *ix,
			    int (*fn)(const struct edge_segment_row *row, void *arg), void *arg);
/* Calls fn for each segment still marked open (recovery after a crash). */
int edge_index_open_segments(struct edge_index *ix,
			     int (*fn)(const struct edge_segment_row *row, void *arg), void *arg);
/* True when relpath has a row (orphan scan). */
int edge_index_has_path(struct edge_index *ix, const char *relpath, bool *found);

/* Covered ranges of a camera overlapping [from, to): consecutive segments closer than
 * gap_ms are merged. fn gets each range clipped to [from, to). */
int edge_index_ranges(struct edge_index *ix, const char *camera, int64_t from, int64_t to,
		      int64_t gap_ms, int (*fn)(int64_t start, int64_t end, void *arg), void *arg);
/* Segments overlapping [from, to), oldest first. */
int edge_index_segments(struct edge_index *ix, const char *camera, int64_t from, int64_t to,
			int (*fn)(const struct edge_segment_row *row, void *arg), void *arg);

/* Total bytes of indexed segments. */
int edge_index_total_bytes(struct edge_index *ix, int64_t *bytes);
/* The closed segment that has used the largest share of its camera's retention
 * (age of its end / retention), skipping protected ones; retention_ms(camera) gives each
 * camera's retention. -ENOENT when none is left. */
int edge_index_next_to_expire(struct edge_index *ix, int64_t now_ms,
			      int64_t (*retention_ms)(const char *camera, void *arg), void *arg,
			      struct edge_segment_row *out);
/* Closed segments that ended before cutoff_ms and overlap no protected range. */
int edge_index_expired(struct edge_index *ix, const char *camera, int64_t cutoff_ms, int limit,
		       int (*fn)(const struct edge_segment_row *row, void *arg), void *arg);
int edge_index_protect_add(struct edge_index *ix, const char *camera, int64_t from_ms, int64_t to_ms,
			   const char *reason, int64_t *id);
/* -ENOENT when there is no such range. */
int edge_index_protect_delete(struct edge_index *ix, int64_t id);
int edge_index_protect_list(struct edge_index *ix, const char *camera,
			    int (*fn)(int64_t id, const char *camera, int64_t from_ms, int64_t to_ms,
				      const char *reason, void *arg),
			    void *arg);

/* ---- the event outbox (docs/edge.md "Event outbox") ----
 * Bounded by the bytes of its payloads. When an event does not fit, delivered events
 * (seq <= the acked position) go first, oldest first: they are history. Only then does the
 * policy touch undelivered ones: drop_oldest deletes the oldest (never the batch in flight,
 * never an overflow report), drop_newest refuses the new event. Every undelivered event lost
 * is counted and summarised in an outbox.overflow event: the first drop at once, then at most
 * one report per EDGE_OUTBOX_REPORT_MS. Reports are exempt from the bound (so they never
 * displace events, which would make more reports). */
enum edge_outbox_policy { EDGE_OUTBOX_DROP_OLDEST, EDGE_OUTBOX_DROP_NEWEST };
#define EDGE_OUTBOX_REPORT_TYPE "outbox.overflow"
#define EDGE_OUTBOX_REPORT_MS 60000

struct edge_outbox_stats {
	int64_t bytes, max_bytes;  /* of payloads, reports included */
	int64_t events;            /* rows, delivered or not */
	int64_t undelivered;       /* seq > acked_seq (0 when not delivering) */
	int64_t acked_seq, last_seq;
	int64_t oldest_undelivered_ms; /* event time; 0 when none */
	int64_t dropped_total;     /* undelivered events lost to the policy, ever */
	int64_t pruned_total;      /* delivered events deleted to make room, ever */
	int64_t reports_total;     /* outbox.overflow events written, ever */
	int64_t pending_dropped;   /* dropped since the last report */
	int64_t last_report_ms;
	enum edge_outbox_policy policy;
	bool delivering;
};

/* Written at start, before any thread appends: every connection reads the bound from the
 * database. delivering: a central takes the events (else all of them are history). */
int edge_index_outbox_configure(struct edge_index *ix, int64_t max_bytes,
				enum edge_outbox_policy policy, bool delivering);
/* Appends an event to the outbox, making room as above; seq is the per-edge sequence
 * (also the row id). CN_E_FULL: the policy refused the event (counted and reported). */
int edge_index_event_add(struct edge_index *ix, const char *id, const char *camera,
			 const char *type, int64_t time_ms, const char *payload_json, int64_t *seq);
/* Writes the pending overflow report if one is due at now_ms (*written says so); call it
 * every few seconds so drops that stopped are still reported. */
int edge_index_outbox_report(struct edge_index *ix, int64_t now_ms, bool *written);
/* Central stored every event up to acked_seq (clears the batch in flight). */
int edge_index_outbox_acked(struct edge_index *ix, int64_t acked_seq);
/* Events up to seq are on their way to central (0: none): drop_oldest leaves them alone. */
int edge_index_outbox_inflight(struct edge_index *ix, int64_t seq);
int edge_index_outbox_stats(struct edge_index *ix, struct edge_outbox_stats *st);
/* Sequence of the newest event (0 when none). */
int edge_index_last_event_seq(struct edge_index *ix, int64_t *seq);
int edge_index_events_since(struct edge_index *ix, int64_t since_seq, int limit,
			    int (*fn)(int64_t seq, const char *payload_json, void *arg), void *arg);

#endif
