/* edge_retention.h: deletes footage by age and by disk quota on a worker thread, sparing protected ranges. */
#ifndef EDGE_RETENTION_H
#define EDGE_RETENTION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "cn_buf.h"
#include "cn_queue.h"
#include "edge_camcfg.h"

/* Footage of a camera no longer configured is kept this long. */
#define EDGE_RETENTION_UNCONFIGURED_MS (30LL * 86400 * 1000)

/* One pass, with a copy of the settings it needs (the worker never reads live config). */
struct edge_retention_job {
	int ncams;
	struct {
		char id[64];
		int64_t retention_ms;
	} cams[EDGE_MAX_CAMERAS];
	int64_t quota_bytes; /* 0: no byte quota */
	int max_percent;     /* keep the archive's filesystem below this use */
};

struct edge_retention {
	char archive_dir[512];
	char index_path[512];
	struct cn_queue *jobs;
	GThread *thread;
	/* results, read by /metrics */
	atomic_llong archive_bytes;
	atomic_llong fs_used_permille;
	atomic_llong deleted_segments;
	atomic_llong deleted_bytes;
	atomic_llong runs;
	atomic_int stuck; /* over quota, but all that is left is protected or being written */
};

int edge_retention_start(struct edge_retention *r, const char *archive_dir, const char *index_path);
/* Queues a pass; takes the job (freed by the worker); never blocks. */
int edge_retention_submit(struct edge_retention *r, struct edge_retention_job *job);
void edge_retention_stop(struct edge_retention *r);
int edge_retention_metrics(struct cn_buf *out, void *arg);

#endif
