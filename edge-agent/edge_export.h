/* edge_export.h: cuts a time range of a camera's archive into one seekable MP4, on a worker thread. */
#ifndef EDGE_EXPORT_H
#define EDGE_EXPORT_H

#include <stdatomic.h>
#include <stdint.h>

#include <glib.h>

#include "cn_http.h"
#include "cn_loop.h"
#include "cn_queue.h"

#define EDGE_EXPORT_MAX_RUNNING 2

struct edge_exporter {
	char archive_dir[512];
	char index_path[512];
	char tmp_dir[512];
	struct cn_http_server *http;
	struct cn_queue *done; /* finished jobs, delivered on the loop */
	int running;           /* touched on the loop only */
	uint64_t exports, failures;
};

int edge_export_init(struct edge_exporter *x, struct cn_loop *l, struct cn_http_server *http,
		     const char *archive_dir, const char *index_path, const char *tmp_dir);
/* Starts an export answering request req_id later; -EBUSY when too many run. */
int edge_export_start(struct edge_exporter *x, uint64_t req_id, const char *camera, int64_t from_ms,
		      int64_t to_ms);
/* Waits for running exports (their clients are gone by then) and frees. */
void edge_export_shutdown(struct edge_exporter *x);

#endif
