/* edge_whep.h: WHEP (RFC 9725) live view and archive playback of the edge's cameras over WebRTC. */
#ifndef EDGE_WHEP_H
#define EDGE_WHEP_H

#include <cjson/cJSON.h>

#include "cn_buf.h"

struct edge;
struct edge_whep;

/* Creates the DTLS certificate and registers /whep/ and /api/v1/viewer-tokens. */
int edge_whep_start(struct edge *e, struct edge_whep **out);
/* Ends every session (viewers get RTCP BYE) and joins playback readers. */
void edge_whep_stop(struct edge_whep *w);
/* Sessions of a camera, live and playback. */
int edge_whep_viewers(struct edge_whep *w, const char *camera);
/* Adds "viewers" (sessions with their state) to a camera's API object. */
void edge_whep_describe(struct edge_whep *w, const char *camera, cJSON *obj);
int edge_whep_metrics(struct cn_buf *out, void *arg);

#endif
