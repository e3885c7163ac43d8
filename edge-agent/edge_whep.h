/* edge_whep.h: WHEP (RFC 9725) live view and archive playback of the edge's cameras over WebRTC. */
#ifndef EDGE_WHEP_H
#define EDGE_WHEP_H

#include <cjson/cJSON.h>

#include <stdint.h>

#include "cn_buf.h"
#include "cn_http.h"

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

/* Where WHEP requests that came through a relay (edge_relay.c) are answered. origin names
 * the relay link, id the request on it; both called on the loop. */
struct edge_whep_remote {
	/* A deferred answer (takes resp's buffers); -ENOENT when the link is gone. */
	int (*answer)(void *arg, uint64_t origin, uint64_t id, struct cn_http_resp *resp);
	/* A session answered through the link: "connected" with its path ("p2p" or "turn",
	 * from the selected ICE pair), or "closed" (path NULL). */
	void (*session)(void *arg, uint64_t origin, const char *session, const char *state,
			const char *path);
	void *arg;
};
void edge_whep_set_remote(struct edge_whep *w, const struct edge_whep_remote *r);

/* Checks a forwarded bearer token ("Bearer ...") as the WHEP endpoint does for camera:
 * 0 with *depth_s how far back it may play (-1: no limit), 1 with resp filled on refusal. */
int edge_whep_authorize(struct edge_whep *w, const char *authorization, const char *camera,
			struct cn_http_resp *resp, int64_t *depth_s);

/* A WHEP request as a relay forwards it; the fields are what the HTTP request carries. */
struct edge_whep_request {
	enum cn_http_method method; /* POST, PATCH or DELETE */
	const char *camera;
	const char *session;       /* PATCH, DELETE */
	const char *authorization; /* "Bearer ..." */
	const char *content_type;
	const char *stream, *start, *speed; /* POST query parameters; NULL when absent */
	const char *body;
	size_t body_len;
	uint64_t origin, id;
};
/* Runs it through the same handlers as /whep/ over HTTP: 0 with resp filled, or
 * CN_HTTP_DEFER when the answer comes later through remote.answer. */
int edge_whep_request(struct edge_whep *w, const struct edge_whep_request *r,
		      struct cn_http_resp *resp);

#endif
