/* edge_cameras.h: the set of live cameras: loads the cameras document, applies changes live. */
#ifndef EDGE_CAMERAS_H
#define EDGE_CAMERAS_H

#include <stdbool.h>
#include <stdint.h>

#include "cn_buf.h"
#include "cn_loop.h"
#include "edge_camcfg.h"
#include "edge_ingest.h"

struct edge_cameras {
	struct edge_ingest_opts opts;
	char cameras_file[1024];
	int ncams;
	struct edge_ingest *cams[EDGE_MAX_CAMERAS];
	GPtrArray *stopping;      /* ingests asked to stop, joined once they exited */
	struct edge_camcfg *cfg;  /* the document in force */
	/* what the file looked like when last read, to notice edits */
	int64_t file_mtime_ns, file_size, file_ino;
	char config_error[512];   /* last rejected document, empty when the current one loaded */
	uint64_t config_loads, config_errors;
	guint poll_id;
	/* told the new document after each change (e.g. the analytics endpoint) */
	void (*on_apply)(const struct edge_camcfg *doc, void *arg);
	void *on_apply_arg;
};

/* Reads cameras_file (a missing file means no cameras) and starts an ingest per camera.
 * A bad document at start-up is an error; later bad edits are refused and reported. */
int edge_cameras_start(struct edge_cameras *c, struct cn_loop *l, const char *cameras_file,
		       const struct edge_ingest_opts *opts,
		       void (*on_apply)(const struct edge_camcfg *doc, void *arg), void *arg);
/* Re-reads the file if it changed: new cameras start, removed ones stop, changed ones
 * update live (or reconnect when URL or credentials changed). */
void edge_cameras_reload(struct edge_cameras *c);
struct edge_ingest *edge_cameras_find(struct edge_cameras *c, const char *id);
/* Stops every ingest and waits for them (shutdown). */
void edge_cameras_stop(struct edge_cameras *c);
int edge_cameras_metrics(struct cn_buf *out, void *arg);

#endif
