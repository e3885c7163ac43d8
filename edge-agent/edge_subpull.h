/* edge_subpull.h: on-demand RTSP pull of a camera's sub stream for live viewers (no decoding), stopped when nobody watches. */
#ifndef EDGE_SUBPULL_H
#define EDGE_SUBPULL_H

#include <stdbool.h>
#include <stdint.h>

#include "edge_camcfg.h"
#include "edge_live.h"

struct edge_subpull;

/* Starts pulling cfg->sub_url into a new live source (edge_subpull_live). */
int edge_subpull_start(const struct edge_camera_cfg *cfg, int64_t timeout_ms,
		       struct edge_subpull **out);
struct edge_live *edge_subpull_live(struct edge_subpull *p);
/* Why the stream is not up (empty while it is). */
void edge_subpull_status(struct edge_subpull *p, char *out, size_t cap);
/* True when the URL or credentials differ from cfg (the camera was reconfigured). */
bool edge_subpull_stale(struct edge_subpull *p, const struct edge_camera_cfg *cfg);
void edge_subpull_request_stop(struct edge_subpull *p);
bool edge_subpull_exited(struct edge_subpull *p);
/* Joins (after request_stop) and frees; on the loop, once exited. */
void edge_subpull_free(struct edge_subpull *p);

#endif
