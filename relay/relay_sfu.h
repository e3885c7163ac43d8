/* relay_sfu.h: the relay's SFU: one upstream WebRTC session per camera from its edge, fanned out to many viewers. */
#ifndef RELAY_SFU_H
#define RELAY_SFU_H

#include <stddef.h>
#include <stdint.h>

#include "cn_buf.h"

/*
 * Everything runs on the relay's main loop; no call blocks.
 *
 * A camera is named by a key the caller chooses (the broker: "<edge node id>/<camera>";
 * the plain-WHEP mode for a relay beside an edge: the camera id). The first viewer of a
 * key makes the SFU open one upstream session: it writes a recvonly WHEP offer and hands
 * it to the signalling hooks (relay_sfu_set_signal), which carry it to the edge and give
 * the edge's answer back with relay_sfu_upstream_answer. Viewers get their own WebRTC
 * peer (own ICE, DTLS-SRTP, SSRC); every upstream RTP packet is forwarded to each of them
 * with its sequence number and timestamp shifted. The upstream closes a short linger
 * after its last viewer leaves.
 */

struct relay;
struct relay_sfu;

/* Upstream signalling, set by the broker. Without hooks, the SFU uses plain WHEP over
 * HTTP to `sfu_edge_url` (relay co-located with an edge; relay_sfu_edge.c). */
struct relay_sfu_signal {
	/* Carry the relay's SDP offer for camera_key to its edge (WHEP POST). ticket names
	 * this upstream attempt in relay_sfu_upstream_answer and close. Return 0 when the
	 * offer is on its way, a negative error (with a reason in err) when it cannot go. */
	int (*offer)(void *arg, const char *camera_key, uint64_t ticket, const char *sdp,
		     size_t len, char *err, size_t errcap);
	/* The upstream session ended on the relay's side (last viewer gone, failure): end it
	 * at the edge too (WHEP DELETE). May be NULL. */
	void (*close)(void *arg, const char *camera_key, uint64_t ticket);
	void *arg;
};

void relay_sfu_set_signal(struct relay_sfu *s, const struct relay_sfu_signal *sig);

/* The edge's answer to offer `ticket` (status 201 with its SDP), or its refusal (any other
 * status, or a negative one for a transport failure, with a reason in err). Unknown or
 * stale tickets are ignored. */
void relay_sfu_upstream_answer(struct relay_sfu *s, uint64_t ticket, int status, const char *sdp,
			       size_t len, const char *err);

/* The outcome of relay_sfu_join, called exactly once and never from inside
 * relay_sfu_join: status 201 with the viewer's SDP answer and its viewer id (for
 * relay_sfu_trickle/leave), or an HTTP status (400 bad offer, 406 no H.264, 502 the edge
 * refused or could not be reached, 503 limits) with a reason in err. */
typedef void (*relay_sfu_done_fn)(void *arg, int status, const char *answer, size_t len,
				  const char *viewer_id, const char *err);

/* A viewer's WHEP offer for camera_key. Returns 0 (done follows), or an HTTP status >= 400
 * at once with the reason in err (and done is not called). */
int relay_sfu_join(struct relay_sfu *s, const char *camera_key, const char *offer, size_t len,
		   relay_sfu_done_fn done, void *arg, char *err, size_t errcap);
/* Cancels a join whose done has not been called yet (the HTTP client went away): done will
 * not be called. */
void relay_sfu_join_cancel(struct relay_sfu *s, void *arg);
/* A trickle-ICE fragment (RFC 8840) for a viewer: 0, or an HTTP status with err. */
int relay_sfu_trickle(struct relay_sfu *s, const char *viewer_id, const char *frag, size_t len,
		      char *err, size_t errcap);
/* Ends a viewer (WHEP DELETE): 0, or 404. */
int relay_sfu_leave(struct relay_sfu *s, const char *viewer_id);
/* Viewers of camera_key on this relay (the broker compares with sfu_threshold). */
int relay_sfu_viewers(struct relay_sfu *s, const char *camera_key);

/* Called from the relay's start and stop hooks. Start reads the SFU directives of
 * relay_conf, makes the DTLS certificate and registers the metrics; with sfu_edge_url it
 * also sets the plain-WHEP signalling and the relay's own viewer routes
 * (POST/PATCH/DELETE/OPTIONS /sfu/whep/<camera>, bearer sfu_viewer_token). */
int relay_sfu_start(struct relay *r, struct relay_sfu **out);
void relay_sfu_stop(struct relay_sfu *s);

/* /metrics collector (registered by relay_sfu_start). */
int relay_sfu_metrics(struct cn_buf *out, void *arg);

#endif
