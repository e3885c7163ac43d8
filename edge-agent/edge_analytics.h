/* edge_analytics.h: the nanomsg endpoint where analytics workers publish detections and hear events. */
#ifndef EDGE_ANALYTICS_H
#define EDGE_ANALYTICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "cn_buf.h"
#include "edge_camcfg.h"

#define EDGE_ANALYTICS_MAX_MSG (64 * 1024)

/* Message results, for /metrics. */
enum { EDGE_AN_ACCEPTED, EDGE_AN_MALFORMED, EDGE_AN_UNKNOWN_CAMERA, EDGE_AN_NRESULTS };

struct edge_analytics {
	char pull_url[256]; /* workers push detections and heartbeats here (NN_PULL, bound) */
	char pub_url[256];  /* events are published here (NN_PUB, bound) */
	char index_path[512];
	int64_t silence_ms;  /* a camera's worker silent this long: record it continuously */
	int pull_sock, pub_sock;
	GThread *thread;
	bool started;
	atomic_bool stop;
	GMutex lock; /* guards the camera table */
	int ncams;
	struct {
		char id[64];
		bool known;         /* configured on this edge */
		bool bound;         /* a worker has spoken for it */
		bool fallback;      /* its worker went silent: recording continuously */
		int64_t last_mono;  /* last message about it */
		char worker[64];
	} cams[EDGE_MAX_CAMERAS];
	atomic_llong results[EDGE_AN_NRESULTS];
	int64_t published_seq;
};

/* Binds both endpoints and starts the thread. Either url may be empty (that side off). */
int edge_analytics_start(struct edge_analytics *a, const char *pull_url, const char *pub_url,
			 const char *index_path, int64_t silence_ms);
/* The configured cameras (from the loop, after each cameras document change). */
void edge_analytics_set_cameras(struct edge_analytics *a, const struct edge_camcfg *cfg);
/* True while the camera's worker is silent past silence_ms (ingest then records). */
bool edge_analytics_fallback(struct edge_analytics *a, const char *camera);
void edge_analytics_stop(struct edge_analytics *a);
int edge_analytics_metrics(struct cn_buf *out, void *arg);

#endif
