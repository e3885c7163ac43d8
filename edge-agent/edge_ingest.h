/* edge_ingest.h: one thread per camera stream: RTSP in (own client over TCP, else libavformat; no decoding), segments out. */
#ifndef EDGE_INGEST_H
#define EDGE_INGEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "edge_camcfg.h"
#include "edge_analytics.h"
#include "edge_live.h"
#include "edge_segment.h"

enum edge_cam_state {
	EDGE_CAM_CONNECTING,
	EDGE_CAM_ONLINE,
	EDGE_CAM_UNAUTHORIZED,
	EDGE_CAM_UNREACHABLE,
	EDGE_CAM_STOPPED,
};

const char *edge_cam_state_name(enum edge_cam_state s);

struct edge_ingest_opts {
	char archive_dir[512];
	char index_path[512];
	int64_t segment_ms;
	bool direct_io;          /* segments with O_DIRECT (archive_direct_io) */
	int64_t timeout_ms;     /* per network operation (connect, describe, each read) */
	int64_t backoff_max_ms; /* reconnect delay cap */
	int64_t batch_ms;       /* RTSP over TCP: pause after a short read (ingest_batch) */
	int64_t batch_idle_ms;  /* the same while nobody watches the camera live (ingest_batch_idle) */
	struct edge_analytics *analytics; /* for the silent-worker fallback; may be NULL */
};

/* A consistent snapshot, read by the main loop for the API and metrics. */
struct edge_ingest_status {
	enum edge_cam_state state;
	char reason[200];
	int64_t since_ms;       /* wall clock of the last state change */
	bool recording;         /* a segment is open */
	bool disk_full;         /* recording paused: the archive's disk is full */
	int64_t retry_in_ms;    /* while backing off: the current delay */
	char codec[16];
	int width, height;
	double fps, kbps;       /* over the last few seconds */
	uint64_t reconnects, packets, bytes_in, corrupt_packets, packets_lost;
	uint64_t segments, fragments, bytes_recorded;
};

struct edge_ingest {
	struct edge_ingest_opts opts;
	GMutex lock;                 /* guards cfg and st */
	struct edge_camera_cfg cfg;
	struct edge_ingest_status st;
	enum edge_cam_state reported; /* last state announced as an event */
	int64_t start_delay_ms;
	atomic_bool stop;
	atomic_bool exited;
	atomic_llong op_deadline_mono; /* interrupt callback gives up past this */
	GThread *thread;
	/* motion analysis (edge_analyze.c), its own thread; its own RTSP session on sub_url,
	 * else the recorder's packets through mtap */
	GThread *analyze_thread;
	struct edge_mtap *mtap;
	atomic_llong analyze_deadline_mono;
	atomic_bool motion_active;
	atomic_llong motion_until_mono; /* post-record: keep recording until then */
	atomic_llong rtp_lost;          /* RTP packets FFmpeg reported missing (edge_avlog) */
	atomic_llong event_until_mono;  /* events mode: a camera push keeps it recording until then */
	struct edge_live *live;         /* the main stream's tap for live viewers (edge_whep.c) */
};

/* The camera URL with credentials, for libavformat (holds the password: wipe after use). */
void edge_ingest_url(const struct edge_camera_cfg *c, const char *url, char *out, size_t cap);
/* Writes an event of this camera to the outbox (schemas/edge-event.schema.json). */
void edge_ingest_emit(struct edge_ingest *g, struct edge_index *ix, const char *type,
		      const char *state, const char *detail);

/* start_delay_ms: wait this long before the first connection (staggers a batch). */
int edge_ingest_start(const struct edge_camera_cfg *cfg, const struct edge_ingest_opts *opts,
		      int64_t start_delay_ms, struct edge_ingest **out);
/* Changes that need no reconnect (name, recording mode, schedule, retention, motion). */
void edge_ingest_update(struct edge_ingest *g, const struct edge_camera_cfg *cfg);
void edge_ingest_status(struct edge_ingest *g, struct edge_ingest_status *out);
/* Asks the thread to finish its segment and exit; returns at once. */
void edge_ingest_request_stop(struct edge_ingest *g);
bool edge_ingest_exited(struct edge_ingest *g);
/* Joins the thread (stopping it first if needed) and frees g. */
void edge_ingest_free(struct edge_ingest *g);

#endif
