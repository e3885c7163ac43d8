/* edge_camcfg.h: the edge's camera configuration document (JSON), strictly validated; no I/O. */
#ifndef EDGE_CAMCFG_H
#define EDGE_CAMCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDGE_MAX_CAMERAS 256
#define EDGE_CAMCFG_MAX_BYTES (1024 * 1024)
#define EDGE_SCHED_SLOTS (7 * 96) /* 15-minute slots, Monday 00:00 first */

enum edge_transport { EDGE_TRANSPORT_TCP, EDGE_TRANSPORT_UDP, EDGE_TRANSPORT_AUTO };
enum edge_recmode { EDGE_REC_CONTINUOUS, EDGE_REC_MOTION, EDGE_REC_EVENTS, EDGE_REC_OFF };

struct edge_camera_cfg {
	char id[64];        /* [a-z0-9][a-z0-9_-]*: also the archive directory name */
	char name[128];
	char main_url[512]; /* rtsp://host[:port]/path, without credentials */
	char sub_url[512];  /* optional */
	char username[64];
	char password[128];
	enum edge_transport transport;
	enum edge_recmode recording;
	uint8_t schedule[EDGE_SCHED_SLOTS / 8]; /* bit set = recording mode applies */
	int pre_record_s;  /* 0..60 */
	int post_record_s; /* 0..3600 */
	int retention_days; /* 1..3650 */
	struct {
		bool enabled;
		int grid_cols, grid_rows;
		uint32_t mask[32];
		int sensitivity;       /* 1..100 */
		int min_area_permille; /* 1..1000 */
		int fps;               /* analysis frames per second, 1..15 */
	} motion;
};

struct edge_camcfg {
	int version; /* document version, from central or the file */
	int ncameras;
	struct edge_camera_cfg cameras[EDGE_MAX_CAMERAS];
};

/* Parses the cameras document (schemas/edge-cameras.schema.json). On error returns
 * CN_E_MALFORMED with a message naming the camera and field. out may be large: heap it. */
int edge_camcfg_parse(const char *json, size_t len, struct edge_camcfg *out, char *err,
		      size_t errcap);
/* True when the recording mode applies at this UTC time (ms) given the camera's schedule. */
bool edge_camcfg_scheduled(const struct edge_camera_cfg *c, int64_t utc_ms, int utc_offset_min);
/* True when a and b would ingest the same streams the same way (a change needs a restart). */
bool edge_camcfg_same_ingest(const struct edge_camera_cfg *a, const struct edge_camera_cfg *b);
const char *edge_recmode_name(enum edge_recmode m);
const char *edge_transport_name(enum edge_transport t);

#endif
