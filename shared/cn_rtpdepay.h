/* cn_rtpdepay.h: RTP depacketisers (H.264 RFC 6184, H.265 RFC 7798, G.711) into access units, with loss detection; SPS readers. */
#ifndef CN_RTPDEPAY_H
#define CN_RTPDEPAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Pure codec: no I/O. The only allocation is the access-unit buffer, which grows (by
 * doubling) up to the maximum given at init and is reused: nothing per packet. */

enum cn_depay_codec { CN_DEPAY_H264, CN_DEPAY_H265, CN_DEPAY_G711 };

#define CN_DEPAY_MAX_PS 512 /* bytes of one parameter set kept */

/* One access unit: video in Annex B (00 00 00 01 before each NAL, as libavformat's RTSP
 * demuxer hands it over), G.711 the payload as is. data is valid until the next call. */
struct cn_depay_au {
	const uint8_t *data;
	size_t len;
	uint32_t ts;   /* RTP timestamp */
	bool key;      /* IDR (H.264 type 5, or an I slice with an SPS before it), IRAP (H.265) */
	bool has_ps;   /* carried an SPS (and so the stream's parameter sets in band) */
};

typedef int (*cn_depay_emit_fn)(void *arg, const struct cn_depay_au *au);

struct cn_depay {
	enum cn_depay_codec codec;
	uint8_t *buf;
	size_t len, cap, max;
	bool have_seq;
	uint16_t next_seq;
	bool have_ts;     /* an access unit is in progress (buf holds its NALs so far) */
	uint32_t ts;
	bool broken;      /* a loss or malformed packet hit this access unit: it is dropped */
	bool in_fu;       /* a fragmentation unit is open */
	size_t fu_off;    /* where its NAL (header) starts in buf */
	bool key, has_sps, i_slice;
	/* The latest parameter sets seen in band (NAL header included), 0 length: none. */
	uint8_t vps[CN_DEPAY_MAX_PS], sps[CN_DEPAY_MAX_PS], pps[CN_DEPAY_MAX_PS];
	size_t vps_len, sps_len, pps_len;
	/* counters */
	uint64_t packets;
	uint64_t lost;       /* sequence numbers never seen */
	uint64_t dropped;    /* access units dropped (loss, malformed payload, too big) */
	uint64_t malformed;  /* packets that did not parse */
};

/* max_au: the largest access unit accepted (bigger ones are dropped). 0 or -ENOMEM. */
int cn_depay_init(struct cn_depay *d, enum cn_depay_codec codec, size_t max_au);
void cn_depay_free(struct cn_depay *d);

/* Feeds one RTP packet (its payload type is not checked: the caller demultiplexes).
 * Calls emit for each access unit completed by it: one ends on the marker bit or when a
 * packet with another timestamp starts the next. A sequence gap marks the access unit
 * in progress and the one the packet after the gap belongs to as broken: neither is
 * emitted. Duplicates and reordered (late) packets are dropped. Returns 0,
 * CN_E_MALFORMED for a packet that is not RTP (counted, the unit in progress is broken),
 * or the first negative value emit returned. */
int cn_depay_push(struct cn_depay *d, const uint8_t *pkt, size_t n, cn_depay_emit_fn emit,
		  void *arg);

/* Drops the unit in progress and forgets the sequence (a new session). */
void cn_depay_reset(struct cn_depay *d);

/* ---- parameter sets ---------------------------------------------------------------- */

struct cn_video_info {
	int width, height;
	int profile;       /* profile_idc (H.264) or general_profile_idc (H.265) */
	int constraints;   /* H.264 constraint_set flags byte */
	int level;         /* level_idc / general_level_idc */
};

/* Reads an SPS NAL (header included, emulation prevention bytes allowed). 0 or
 * CN_E_MALFORMED (also for sizes past 16384x16384). */
int cn_h264_sps_parse(const uint8_t *nal, size_t len, struct cn_video_info *out);
int cn_h265_sps_parse(const uint8_t *nal, size_t len, struct cn_video_info *out);

/* Decodes a comma-separated list of base64 NALs (sprop-parameter-sets, sprop-sps ...)
 * and appends each to out in Annex B. Lenient as cameras are: padding optional. Returns
 * the bytes appended, CN_E_MALFORMED or -ENOBUFS. */
int cn_sprop_to_annexb(const char *b64, size_t len, uint8_t *out, size_t cap);

#endif
