/* edge_rtsp.h: the edge's own RTSP-over-TCP client for H.264/H.265 cameras: batched reads, depacketised access units as AVPackets. */
#ifndef EDGE_RTSP_H
#define EDGE_RTSP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>

/* The common case of recording without libavformat's RTSP demuxer, which polls and
 * reads each interleaved RTP packet on its own: this client reads what the socket holds,
 * then sleeps batch_ms, so one wakeup carries many packets; access units are built in a
 * per-stream buffer (no allocation per RTP packet) and handed over as AVPackets in the
 * form the demuxer gives (Annex B, parameter sets as Annex B extradata, 1/90000 time
 * base; G.711 audio as stream 1). Every wait is bounded by timeout_ms and checks stop. */

struct edge_rtsp;

struct edge_rtsp_opts {
	const char *url;  /* rtsp://host[:port]/path, no credentials */
	const char *user; /* "" for none */
	const char *pass;
	int64_t timeout_ms;
	int64_t batch_ms;          /* sleep after a read that did not fill the buffer; 0: none
	                            * (edge_rtsp_set_batch changes it; capped so the socket
	                            * buffer never fills) */
	const atomic_bool *stop;
	atomic_llong *lost;        /* RTP sequence gaps are added here */
};

/* Connects, DESCRIBE, SETUP (interleaved), PLAY; waits for the parameter sets when the
 * SDP has none. Returns 0; -EACCES when the camera refuses the credentials; -ENOTSUP
 * when the stream is not one this client takes (no H.264/H.265 video, TCP transport
 * refused, packetization-mode 2): use libavformat; -ETIMEDOUT; -ECANCELED (stop);
 * another negative code when unreachable. reason is set on failure. */
int edge_rtsp_open(const struct edge_rtsp_opts *o, struct edge_rtsp **out, char *reason,
		   size_t cap);

/* Stream parameters (owned by c, valid until close; the video's change in place when the
 * camera sends new parameter sets, see edge_rtsp_read). audio is NULL without G.711. */
const AVCodecParameters *edge_rtsp_video(const struct edge_rtsp *c, AVRational *tb);
const AVCodecParameters *edge_rtsp_audio(const struct edge_rtsp *c, AVRational *tb);

/* The next packet: stream_index 0 video, 1 audio (reference-counted; the caller unrefs).
 * *changed is set when the video parameters changed before this packet (a keyframe with
 * new SPS/PPS). Returns 0, or a negative code with reason ("no data for 10 s", "camera
 * closed the connection", ...); -ENOTSUP when the stream turned out to reorder frames
 * (B-frames), which libavformat's timestamp guessing handles. */
int edge_rtsp_read(struct edge_rtsp *c, AVPacket *pkt, bool *changed, char *reason, size_t cap);

/* Changes the pause between reads (the caller's choice between live view's latency and
 * fewer wakeups); taken at the next read. */
void edge_rtsp_set_batch(struct edge_rtsp *c, int64_t batch_ms);

/* Access units dropped so far (loss or malformed payload inside them). */
uint64_t edge_rtsp_dropped(const struct edge_rtsp *c);

/* TEARDOWN (best effort, never blocks), close, free. Accepts NULL. */
void edge_rtsp_close(struct edge_rtsp *c);

#endif
