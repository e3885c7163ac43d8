/* cn_rtp.h: RTP and RTCP wire codecs and payload packetisers (H.264 RFC 6184, H.265 RFC 7798, G.711). */
#ifndef CN_RTP_H
#define CN_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Pure codecs: no I/O, no allocation unless a function says so. Every parser takes
 * pointer+length of untrusted bytes and returns 0 or CN_E_MALFORMED. */

#define CN_RTP_HEADER_MIN 12

struct cn_rtp_hdr {
	uint8_t version; /* always 2 after a successful parse */
	bool padding;
	bool extension;
	uint8_t csrc_count;
	bool marker;
	uint8_t pt;
	uint16_t seq;
	uint32_t ts;
	uint32_t ssrc;
	uint16_t ext_profile;     /* 0xBEDE one-byte, 0x100x two-byte, other: opaque */
	const uint8_t *ext;       /* extension data (after its 4-byte header), ext_len bytes */
	size_t ext_len;
	const uint8_t *payload;   /* points into the input */
	size_t payload_len;       /* padding removed */
	size_t header_len;        /* fixed header + CSRCs + extension */
};

/* RFC 5761 demultiplexing on a muxed port: the second byte (marker+PT) in 192..223 is
 * RTCP (SR 200, RR 201, ..., PSFB 206, XR 207). n < 2 is neither. */
bool cn_rtp_is_rtcp(const uint8_t *p, size_t n);

/* Parses an RTP packet: version 2, CSRCs, extension and padding within the length. */
int cn_rtp_parse(const uint8_t *p, size_t n, struct cn_rtp_hdr *out);

/* Writes a 12-byte header, plus a one-byte-form header extension holding abs-send-time
 * (RFC 8285 / webrtc abs-send-time, 3 bytes, 6.18 fixed-point seconds) when
 * abs_send_time_id is 1..14. Returns the header length (12 or 20), or -ENOBUFS. */
int cn_rtp_write_header(uint8_t *out, size_t cap, bool marker, uint8_t pt, uint16_t seq,
			uint32_t ts, uint32_t ssrc, int abs_send_time_id, uint64_t now_us);

/* Finds the value of one-byte extension element id in h (0xBEDE form only); 0 or -ENOENT. */
int cn_rtp_find_ext(const struct cn_rtp_hdr *h, int id, const uint8_t **val, size_t *len);

/* ---- packetisers ---------------------------------------------------------------- */

/* Where a packetiser writes its payloads: one output buffer with every payload back to
 * back, and a table of (offset, length, marker). The caller provides both; the
 * packetiser returns -ENOBUFS if either runs out (out is then left as it was on entry). */
struct cn_rtp_payloads {
	uint8_t *buf;
	size_t cap;
	size_t used;
	struct cn_rtp_payload {
		uint32_t off;
		uint32_t len;
		bool marker; /* last packet of the access unit */
	} *pkts;
	int max_pkts;
	int npkts;
};

/* Iterates the NAL units of an access unit. Annex B (start codes 00 00 01 or 00 00 00 01;
 * trailing zero bytes of a NAL are dropped) when length_size is 0, else length-prefixed
 * with length_size 1, 2 or 4 bytes (MP4 avcC/hvcC). *pos starts at 0. Returns 1 with
 * the next NAL (without start code or length), 0 at the end, CN_E_MALFORMED for a length
 * running past the end or an empty NAL in length-prefixed form, -EINVAL for another
 * length_size. In Annex B, bytes before the first start code and empty NALs are skipped. */
int cn_nal_next(const uint8_t *au, size_t len, int length_size, size_t *pos,
		const uint8_t **nal, size_t *nal_len);

/* H.264, RFC 6184 packetization-mode 1: a NAL that fits max_payload goes alone (single
 * NAL unit packet) unless it can be aggregated with the following small NALs into a
 * STAP-A (used for SPS/PPS/SEI before a slice); bigger NALs are split into FU-A
 * fragments. Access unit delimiters (type 9) and filler (type 12) are dropped, and so
 * are types 0 and 24..31 (unspecified, and RTP's own aggregation/fragment types).
 * prefix (may be NULL): NALs (in prefix_length_size format) sent before the access
 * unit's own NALs, e.g. SPS and PPS from the stream's extradata before a keyframe.
 * max_payload >= 64 (else -EINVAL). Appends to out (does not reset it); the last payload
 * written has marker set. Returns 0 (an access unit with nothing to send writes nothing),
 * CN_E_MALFORMED for bad length-prefixed input, or -ENOBUFS. */
int cn_rtp_h264_packetize(const uint8_t *au, size_t len, int length_size,
			  const uint8_t *prefix, size_t prefix_len, int prefix_length_size,
			  size_t max_payload, struct cn_rtp_payloads *out);

/* H.265, RFC 7798 without DONL: single NAL unit packets, aggregation packets (type 48)
 * for small parameter sets, fragmentation units (type 49). AUD (35) and filler (38) are
 * dropped, and so are types 48..63 (unspecified, and RTP's AP/FU/PACI). A NAL shorter
 * than its 2-byte header is CN_E_MALFORMED. Same conventions as the H.264 packetiser. */
int cn_rtp_h265_packetize(const uint8_t *au, size_t len, int length_size,
			  const uint8_t *prefix, size_t prefix_len, int prefix_length_size,
			  size_t max_payload, struct cn_rtp_payloads *out);

/* G.711 (PCMU/PCMA, 8 kHz, one byte per sample): frames are passed through, split into
 * payloads of at most max_payload (>= 1) bytes; a payload's sample count, by which the
 * RTP timestamp advances, is its length. The marker bit is never set (it marks
 * talkspurts, which a pass-through cannot know). Returns 0, -EINVAL or -ENOBUFS. */
int cn_rtp_g711_packetize(const uint8_t *frame, size_t len, size_t max_payload,
			  struct cn_rtp_payloads *out);

/* H.264 NAL unit type of a NAL (low 5 bits), H.265 type ((b0 >> 1) & 0x3f). */
static inline int cn_h264_nal_type(const uint8_t *nal) { return nal[0] & 0x1f; }
static inline int cn_h265_nal_type(const uint8_t *nal) { return (nal[0] >> 1) & 0x3f; }

/* Walks an avcC (ISO 14496-15) record: writes its SPS and PPS into out as Annex B
 * (00 00 00 01 before each) and sets *length_size (1, 2 or 4). Returns the bytes written,
 * CN_E_MALFORMED, or -ENOBUFS. An input that already starts with a start code is Annex B
 * extradata: it is copied as is with *length_size = 0. */
int cn_avcc_to_annexb(const uint8_t *avcc, size_t len, uint8_t *out, size_t cap,
		      int *length_size);
/* The same for an hvcC record (VPS, SPS, PPS and SEI arrays). */
int cn_hvcc_to_annexb(const uint8_t *hvcc, size_t len, uint8_t *out, size_t cap,
		      int *length_size);

/* ---- RTCP ------------------------------------------------------------------------ */

enum {
	CN_RTCP_SR = 200,
	CN_RTCP_RR = 201,
	CN_RTCP_SDES = 202,
	CN_RTCP_BYE = 203,
	CN_RTCP_APP = 204,
	CN_RTCP_RTPFB = 205, /* fmt 1 generic NACK, fmt 15 transport-cc */
	CN_RTCP_PSFB = 206,  /* fmt 1 PLI, fmt 4 FIR, fmt 15 application (REMB) */
	CN_RTCP_XR = 207,
};

/* One packet of a compound RTCP packet. */
struct cn_rtcp_pkt {
	uint8_t pt;
	uint8_t count;         /* RC/SC/FMT field (5 bits) */
	const uint8_t *body;   /* after the 4-byte header; len bytes, padding removed */
	size_t len;
};

/* Iterates a compound packet: *pos starts at 0; returns 1 with the next packet, 0 at the
 * end, CN_E_MALFORMED when a header is not version 2, a length runs past the end, or
 * padding is inconsistent. The first packet need not be SR/RR (RFC 5506 reduced size). */
int cn_rtcp_next(const uint8_t *p, size_t n, size_t *pos, struct cn_rtcp_pkt *out);

struct cn_rtcp_report_block {
	uint32_t ssrc;
	uint8_t fraction_lost; /* of 256 */
	int32_t cumulative_lost; /* 24-bit signed */
	uint32_t highest_seq;  /* extended */
	uint32_t jitter;
	uint32_t lsr;
	uint32_t dlsr;
};

struct cn_rtcp_sr_info {
	uint32_t ssrc;
	uint64_t ntp;
	uint32_t rtp_ts;
	uint32_t packets;
	uint32_t octets;
};

/* The sub-parsers below return -EINVAL for a packet of another type or format.
 * cn_rtcp_parse_report and cn_rtcp_parse_fb take NULL for an output not wanted.
 * SR (pt 200) or RR (pt 201): sender ssrc, the sender info for an SR, and up to max
 * report blocks (*nblocks gets how many were stored; extra blocks are skipped). */
int cn_rtcp_parse_report(const struct cn_rtcp_pkt *pkt, uint32_t *sender_ssrc,
			 struct cn_rtcp_sr_info *sr, struct cn_rtcp_report_block *blocks, int max,
			 int *nblocks);

/* Feedback header common to RTPFB and PSFB (RFC 4585): sender and media source SSRCs. */
int cn_rtcp_parse_fb(const struct cn_rtcp_pkt *pkt, uint32_t *sender_ssrc,
		     uint32_t *media_ssrc);

/* Generic NACK (RTPFB fmt 1): expands every PID/BLP pair into sequence numbers, at most
 * max (*n gets how many were stored; the rest are dropped, as a sender would). */
int cn_rtcp_parse_nack(const struct cn_rtcp_pkt *pkt, uint16_t *seqs, int max, int *n);

/* FIR (PSFB fmt 4): the first entry addressed to ssrc; -ENOENT when none is. */
int cn_rtcp_parse_fir(const struct cn_rtcp_pkt *pkt, uint32_t ssrc, uint8_t *seq_nr);

/* REMB (PSFB fmt 15, "REMB" identifier): bitrate in bit/s and up to max SSRCs.
 * -ENOENT for an application feedback that is not REMB. */
int cn_rtcp_parse_remb(const struct cn_rtcp_pkt *pkt, uint64_t *bitrate, uint32_t *ssrcs,
		       int max, int *nssrcs);

/* transport-cc (RTPFB fmt 15): validates the header and packet status chunks and returns
 * base sequence, status count and feedback count (no delta interpretation). */
int cn_rtcp_parse_twcc(const struct cn_rtcp_pkt *pkt, uint16_t *base_seq,
		       uint16_t *status_count, uint8_t *fb_count);

/* Writers: each returns the bytes written or -ENOBUFS. Lengths are 32-bit aligned. */
int cn_rtcp_write_sr(uint8_t *out, size_t cap, const struct cn_rtcp_sr_info *sr);
int cn_rtcp_write_rr(uint8_t *out, size_t cap, uint32_t ssrc,
		     const struct cn_rtcp_report_block *blocks, int nblocks);
/* SDES with one chunk holding a CNAME item (at most 255 bytes). */
int cn_rtcp_write_sdes_cname(uint8_t *out, size_t cap, uint32_t ssrc, const char *cname);
int cn_rtcp_write_bye(uint8_t *out, size_t cap, uint32_t ssrc);
int cn_rtcp_write_pli(uint8_t *out, size_t cap, uint32_t sender, uint32_t media);
int cn_rtcp_write_fir(uint8_t *out, size_t cap, uint32_t sender, uint32_t media, uint8_t seq_nr);
/* Generic NACK for n sequence numbers (packed into PID/BLP pairs). */
int cn_rtcp_write_nack(uint8_t *out, size_t cap, uint32_t sender, uint32_t media,
		       const uint16_t *seqs, int n);
int cn_rtcp_write_remb(uint8_t *out, size_t cap, uint32_t sender, uint64_t bitrate,
		       const uint32_t *ssrcs, int nssrcs);

/* NTP time (RFC 3550: seconds since 1900 in the high 32 bits) from Unix microseconds. */
uint64_t cn_ntp_from_unix_us(uint64_t us);

#endif
