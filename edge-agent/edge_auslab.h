/* edge_auslab.h: slabs that the RTSP client builds access units in and hands them over from as AVPackets, without a copy. */
#ifndef EDGE_AUSLAB_H
#define EDGE_AUSLAB_H

#include <stddef.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>

/* The depacketiser builds each unit straight into a slab (edge_auslab_space is its
 * cn_depay_space_fn) and the packet references it there: no copy and no allocation per
 * unit beyond FFmpeg's small buffer reference. A slab counts its references, one per
 * packet in it and one while the auslab keeps it, so packets may outlive the auslab and
 * be unreferenced on any thread; the auslab reuses slabs whose packets are all gone.
 * Space and wrap are called from one thread (the stream's). */
struct edge_auslab;

/* 0 or -ENOMEM. */
int edge_auslab_new(struct edge_auslab **out);

/* Drops the auslab's references: each slab goes with its last packet. Accepts NULL. */
void edge_auslab_free(struct edge_auslab *a);

/* cn_depay_space_fn (arg: the auslab): the rest of the current slab, or else an idle or
 * new slab of at least min bytes. */
uint8_t *edge_auslab_space(void *arg, size_t min, size_t *cap);

/* Makes pkt (blank) reference the len-byte unit at data, followed by
 * AV_INPUT_BUFFER_PADDING_SIZE zero bytes, built at the start of the space last returned;
 * that space is not handed out again while pkt holds it. 0, -EINVAL when data is not
 * there, or -ENOMEM. */
int edge_auslab_wrap(struct edge_auslab *a, uint8_t *data, size_t len, AVPacket *pkt);

#endif
