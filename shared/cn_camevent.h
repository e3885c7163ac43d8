/* cn_camevent.h: camera alarm-server pushes (Hikvision XML, multipart, generic JSON) parsed into one Canopy camera event. */
#ifndef CN_CAMEVENT_H
#define CN_CAMEVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cn_buf.h"

/* Bounds on what a camera may push; anything larger is CN_E_TOO_BIG. */
#define CN_CAMEVENT_MAX_BODY (4 * 1024 * 1024) /* whole request body */
#define CN_CAMEVENT_MAX_XML (64 * 1024)        /* the XML document (body or part) */
#define CN_CAMEVENT_MAX_DEPTH 16               /* XML element nesting */
#define CN_CAMEVENT_MAX_TEXT 256               /* text of an element we read, trimmed */
#define CN_CAMEVENT_MAX_ELEMENTS 2000          /* XML elements in one document */
#define CN_CAMEVENT_MAX_PARTS 16               /* multipart body parts */
#define CN_CAMEVENT_MAX_PART_HEADERS 4096      /* header block of one part, bytes */
#define CN_CAMEVENT_MAX_CONTENT_TYPE 1024      /* the Content-Type header value */
#define CN_CAMEVENT_MAX_BOUNDARY 70            /* RFC 2046 */
#define CN_CAMEVENT_MAX_JSON_DEPTH 2           /* the JSON push is one flat object */

enum cn_camevent_type {
	CN_CAMEV_MOTION,
	CN_CAMEV_LINE_CROSSING,
	CN_CAMEV_INTRUSION,
	CN_CAMEV_VIDEO_LOSS,
	CN_CAMEV_TAMPER,
	CN_CAMEV_ANPR,
	CN_CAMEV_CUSTOM, /* JSON push only: a dotted name like "acme.smoke" */
};

enum cn_camevent_snap {
	CN_CAMEV_SNAP_NONE,   /* no picture came with the event */
	CN_CAMEV_SNAP_JPEG,   /* snapshot holds JPEG bytes (a multipart image/jpeg part) */
	CN_CAMEV_SNAP_BASE64, /* snapshot holds base64 text of a JPEG (JSON "snapshot") */
};

/* One parsed push. Strings are always NUL-terminated and "" when absent. Nothing is
 * allocated: snapshot points into the caller's body, which must outlive the event. */
struct cn_camevent {
	enum cn_camevent_type type;
	char type_name[48];      /* "motion", "line_crossing", "intrusion", "video_loss",
				  * "tamper", "anpr", or the custom dotted name */
	char variant[12];        /* intrusion only: "entrance" (regionEntrance), "exit"
				  * (regionExiting), else "" */
	char source_format[16];  /* "hikvision-xml" | "json" */
	char vendor_type[32];    /* eventType exactly as the camera sent it; "" for JSON */
	char camera[64];         /* JSON "camera", or the XML channel number as text; the
				  * edge maps (device_ip, channel) to its camera id */
	int channel;             /* XML channelID (else dynChannelID); -1 for JSON */
	char device_ip[48];      /* XML ipAddress, else ipv6Address; "" for JSON */
	char device_mac[24];     /* lower-case aa:bb:cc:dd:ee:ff, or "" */
	int device_port;         /* XML portNo, 0 when not sent */
	char protocol[12];       /* XML protocol ("HTTP", "HTTPS", ...), or "" */
	int post_count;          /* XML activePostCount (repeats of one event), 0 if absent */
	int64_t utc_ms;          /* event time, UTC; see offset_known */
	bool offset_known;       /* false: the camera sent a local time with no offset and
				  * utc_ms is that wall clock read as if it were UTC; the
				  * edge applies the camera's zone (cn_camevent_set_offset) */
	int utc_offset_min;      /* camera-local = UTC + offset; 0 when not known */
	bool active;             /* eventState active (default) / inactive */
	char region[64];         /* first DetectionRegionEntry/regionID, or JSON "region" */
	char target[32];         /* detectionTarget/targetType, lower-case: "human", ... */
	char plate[32];          /* ANPR/licensePlate (UTF-8), required for anpr */
	char country[8];         /* ANPR/country as sent (a code or an abbreviation) */
	int confidence;          /* ANPR/confidenceLevel 0..100, -1 when unknown */
	char vehicle_type[24];   /* ANPR/vehicleType, lower-case */
	char direction[16];      /* ANPR/direction ("forward", "reverse", ...) */
	char description[CN_CAMEVENT_MAX_TEXT + 1]; /* eventDescription (UTF-8) */
	enum cn_camevent_snap snapshot_kind;
	struct cn_str snapshot;  /* within the body: JPEG bytes or base64 text (see kind) */
	size_t snapshot_bytes;   /* size of the JPEG once decoded; 0 when none */
	char snapshot_name[64];  /* multipart filename (else name) of the picture part, when
				  * it is plain [A-Za-z0-9_.-]; else "" */
	int image_parts;         /* image/jpeg parts seen; only the first is the snapshot */
};

/* Parses one push. content_type is the request's Content-Type header value (a C
 * string); body is len bytes, not NUL-terminated. Accepted:
 *   application/xml, text/xml     EventNotificationAlert (Hikvision ISAPI style)
 *   multipart/form-data, multipart/mixed
 *                                 exactly one XML part (application/xml, text/xml, or a
 *                                 name/filename ending ".xml"); image/jpeg parts; other
 *                                 parts ignored
 *   application/json              the generic push (schemas/camera-event-push.schema.json)
 * Returns 0, or CN_E_MALFORMED / CN_E_TOO_BIG with a message in err naming the field and
 * the problem (-ENOMEM on allocation failure). On failure *out is all zero. */
int cn_camevent_parse(const char *content_type, const uint8_t *body, size_t len,
		      struct cn_camevent *out, char *err, size_t errcap);

/* The Canopy event (schemas/camera-event.schema.json) for one parsed push, without the
 * snapshot bytes; the caller adds id, seq and the snapshot reference, and may replace
 * camera. local_time and utc_offset_min are written only when the offset is known.
 * The caller frees *out with cJSON_Delete. -EINVAL on an event parse could not give. */
int cn_camevent_to_json(const struct cn_camevent *ev, cJSON **out);

/* Applies the camera's configured zone to a time sent without an offset: utc_ms becomes
 * real UTC and offset_known true. -EEXIST when the camera stated its own offset (its
 * word wins), -EINVAL for |offset_min| > 1439, -ERANGE if the result leaves 0000..9999. */
int cn_camevent_set_offset(struct cn_camevent *ev, int offset_min);

/* The snapshot's JPEG bytes. CN_CAMEV_SNAP_JPEG: *jpeg points into the body and buf is
 * not used (may be NULL). CN_CAMEV_SNAP_BASE64: decodes into buf, which needs
 * snapshot_bytes of room (-ENOSPC otherwise). -ENOENT when there is no snapshot. */
int cn_camevent_snapshot_jpeg(const struct cn_camevent *ev, uint8_t *buf, size_t cap,
			      struct cn_str *jpeg);

/* "motion", ... for a built-in type; NULL for CN_CAMEV_CUSTOM or an unknown value. */
const char *cn_camevent_type_str(enum cn_camevent_type t);

#endif
