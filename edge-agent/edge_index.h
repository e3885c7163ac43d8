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

/* Appends an event to the outbox; seq is the per-edge sequence (also the row id). */
int edge_index_event_add(struct edge_index *ix, const char *id, const char *camera,
			 const char *type, int64_t time_ms, const char *payload_json, int64_t *seq);
/* Sequence of the newest event (0 when none). */
int edge_index_last_event_seq(struct edge_index *ix, int64_t *seq);
int edge_index_events_since(struct edge_index *ix, int64_t since_seq, int limit,
			    int (*fn)(int64_t seq, const char *payload_json, void *arg), void *arg);

#endif
