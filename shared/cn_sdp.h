/* cn_sdp.h: SDP offer/answer for WebRTC (RFC 8866, 8829): strict bounded parser, answer writer, trickle fragments. */
#ifndef CN_SDP_H
#define CN_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cn_buf.h"

/* Bounds: an offer past any of them is refused with a message naming the bound. */
#define CN_SDP_MAX_TEXT 65536       /* bytes of one offer or fragment */
#define CN_SDP_MAX_LINE 2048        /* bytes of one line */
#define CN_SDP_MAX_MEDIA 8          /* m= sections */
#define CN_SDP_MAX_FORMATS 48       /* payload types per m= section */
#define CN_SDP_MAX_CANDIDATES 32    /* a=candidate lines per m= section (or fragment) */
#define CN_SDP_MAX_EXTMAP 16        /* a=extmap kept per m= section (ids 1..14 are unique) */
#define CN_SDP_CANDIDATE_LEN 256    /* one candidate value, "candidate:..." */

enum cn_sdp_kind {
	CN_SDP_VIDEO,
	CN_SDP_AUDIO,
	CN_SDP_APPLICATION,
	CN_SDP_OTHER,
};

enum cn_sdp_dir {
	CN_SDP_SENDRECV, /* also the default when no direction attribute is present */
	CN_SDP_SENDONLY,
	CN_SDP_RECVONLY,
	CN_SDP_INACTIVE,
};

enum cn_sdp_setup {
	CN_SDP_SETUP_NONE,
	CN_SDP_SETUP_ACTPASS,
	CN_SDP_SETUP_ACTIVE,
	CN_SDP_SETUP_PASSIVE,
};

enum cn_sdp_codec {
	CN_SDP_CODEC_OTHER, /* anything we do not send (VP8, opus, red, ulpfec, ...) */
	CN_SDP_CODEC_H264,
	CN_SDP_CODEC_H265,
	CN_SDP_CODEC_PCMU,
	CN_SDP_CODEC_PCMA,
	CN_SDP_CODEC_RTX,
};

/* rtcp-fb values we understand (a=rtcp-fb:<pt> <value>, or "*" for every format). */
#define CN_SDP_FB_NACK 0x01         /* "nack" */
#define CN_SDP_FB_PLI 0x02          /* "nack pli" */
#define CN_SDP_FB_FIR 0x04          /* "ccm fir" */
#define CN_SDP_FB_REMB 0x08         /* "goog-remb" */
#define CN_SDP_FB_TRANSPORT_CC 0x10 /* "transport-cc" */

/* Header extension URIs we can write (RFC 8285 one-byte form). */
#define CN_SDP_EXT_ABS_SEND_TIME "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"

struct cn_sdp_format {
	uint8_t pt;
	enum cn_sdp_codec codec;
	char name[32];   /* encoding name as written, e.g. "H264"; in a section whose proto is
			  * not RTP (UDP/DTLS/SCTP) the fmt token itself, e.g.
			  * "webrtc-datachannel", with pt 0 */
	uint32_t clock;  /* clock rate from a=rtpmap (or the static one for PT 0, 8, ...) */
	uint8_t channels; /* as written in a=rtpmap, 0 when absent (1 for audio) */
	char fmtp[512];  /* the a=fmtp parameter string as written ("" when absent) */
	/* Parsed from fmtp for H.264: -1 / 0 when absent. */
	int packetization_mode;
	uint32_t profile_level_id; /* 24 bits, e.g. 0x42e01f */
	bool level_asymmetry_allowed;
	int apt;                   /* RTX: associated payload type, -1 when absent */
	unsigned fb;               /* CN_SDP_FB_* for this format (including "*" lines) */
	/* a=fmtp may come before a=rtpmap (Firefox); the parameters are read once the
	 * section is complete, by codec. */
};

struct cn_sdp_extmap {
	uint8_t id; /* 1..14 */
	char uri[160];
};

struct cn_sdp_media {
	enum cn_sdp_kind kind;
	char kind_name[16]; /* "video", "audio", ... as written */
	uint16_t port;      /* 0: the offerer rejected or disabled the section (a=bundle-only
			     * is not supported: such a section counts as disabled) */
	char proto[40];     /* e.g. "UDP/TLS/RTP/SAVPF" */
	char mid[32];       /* "" when absent */
	enum cn_sdp_dir dir;
	bool rtcp_mux;
	bool rtcp_rsize;
	/* Transport attributes, with session-level values already filled in where the
	 * section has none of its own, then those of the BUNDLE-tagged section (the first
	 * mid of the group) for a bundled section that still has none (RFC 8843). Of
	 * several a=fingerprint lines (aiortc sends sha-256, -384 and -512) the strongest
	 * is kept. */
	char ice_ufrag[64];
	char ice_pwd[160];
	char fingerprint_alg[16]; /* lower case, e.g. "sha-256" */
	uint8_t fingerprint[64];
	size_t fingerprint_len;
	enum cn_sdp_setup setup;
	int nformats; /* in m= line order */
	struct cn_sdp_format formats[CN_SDP_MAX_FORMATS];
	int nextmap; /* one-byte ids only: 15..255 are checked but not kept */
	struct cn_sdp_extmap extmap[CN_SDP_MAX_EXTMAP];
	int ncandidates;
	char candidates[CN_SDP_MAX_CANDIDATES][CN_SDP_CANDIDATE_LEN]; /* "candidate:..." */
	bool end_of_candidates;
	uint32_t ssrc; /* first a=ssrc of the section, 0 when none */
};

struct cn_sdp {
	char origin_user[64];
	char session_id[32];
	bool ice_lite;
	bool trickle; /* a=ice-options containing "trickle" */
	bool bundle;  /* a=group:BUNDLE present */
	char bundle_mids[CN_SDP_MAX_MEDIA][32];
	int nbundle;
	int nmedia;
	struct cn_sdp_media media[CN_SDP_MAX_MEDIA];
};

/*
 * Parses an offer (or an answer: the grammar is the same). Strict: v=0, o=, s= as the
 * first three lines, t= before the first m=, every line "<letter>=<value>" ending in CRLF
 * or LF (the last one too), no NUL bytes or stray CR, no empty line, no unknown line
 * type, bounds above. For each m= section with a non-zero port it also requires what
 * WebRTC needs: a proto ending in "RTP/SAVPF" or "RTP/SAVP" (or "DTLS/SCTP" for
 * application), ice-ufrag (4..63 ice-chars: RFC 8839 allows 256, our field holds 63) and
 * ice-pwd (22..159), a fingerprint (hex pairs separated by ':' with a length matching the
 * hash: sha-1 20, sha-224 28, sha-256 32, sha-384 48, sha-512 64), and an a=rtpmap for
 * each payload type that is not static. Every a=rtpmap/fmtp/rtcp-fb must name a payload
 * type listed on the m= line; mids are unique and each BUNDLE mid names a section.
 * Unknown attributes are ignored. out is fully written (zeroed first, and zeroed again on
 * refusal). About 320 KiB: allocate it, do not put it on a thread's stack.
 * Returns 0, or CN_E_MALFORMED (or CN_E_TOO_BIG past a bound) with a one-line message in err like
 * "line 12: a=fingerprint: 'sha-256' needs 32 bytes, got 31".
 */
int cn_sdp_parse(const char *text, size_t len, struct cn_sdp *out, char *err, size_t errcap);

/*
 * Picks the format of m to send a stream of the given codec with: for H.264, a format
 * with packetization-mode=1 whose profile_idc (first byte of profile-level-id) equals
 * h264_profile_idc if one exists, else any with packetization-mode=1 that allows level
 * asymmetry or has the same profile_idc, else any H.264 with packetization-mode=1;
 * h264_profile_idc 0 means "no preference"; it is the SPS profile_idc (66, 77, 100...),
 * not FFmpeg's profile with constraint flags (its constrained baseline is 578: pass
 * profile & 0xff). For H.265, PCMU and PCMA: the first such format (RTX too; OTHER
 * never). Returns the index into m->formats, or -ENOENT.
 */
int cn_sdp_pick_format(const struct cn_sdp_media *m, enum cn_sdp_codec codec,
		       int h264_profile_idc);

/* The RTX format whose apt is pt, or -ENOENT. */
int cn_sdp_find_rtx(const struct cn_sdp_media *m, uint8_t pt);

/* Extmap id of uri in m, or 0 when the offer does not have it. */
int cn_sdp_find_extmap(const struct cn_sdp_media *m, const char *uri);

/* What we answer for one m= section of the offer, in offer order. Strings are written
 * as they are and must be visible ASCII without spaces (-EINVAL otherwise). */
struct cn_sdp_answer_media {
	bool accepted;       /* false: port 0, same media kind and format list as offered */
	int format;          /* index into the offer's formats (when accepted) */
	unsigned fb;         /* rtcp-fb to write for that format (only what was offered is) */
	int abs_send_time_id;/* 0: no a=extmap in the answer */
	enum cn_sdp_dir dir; /* usually CN_SDP_SENDONLY */
	uint32_t ssrc;       /* 0: no a=ssrc lines */
	char cname[32];      /* required with ssrc */
	char msid_stream[40];
	char msid_track[40]; /* a=msid only when both are set */
};

struct cn_sdp_answer {
	uint64_t session_id;
	uint64_t session_version;
	char ice_ufrag[64];
	char ice_pwd[160];
	bool ice_lite;
	uint8_t fingerprint[32]; /* SHA-256 of our DTLS certificate */
	enum cn_sdp_setup setup; /* ACTIVE or PASSIVE */
	/* Our candidates, "candidate:..." each, written into the BUNDLE-tagged section (the
	 * first accepted one of the group: all its sections share one transport) and into
	 * every accepted section outside the group. */
	int ncandidates;
	char candidates[CN_SDP_MAX_CANDIDATES][CN_SDP_CANDIDATE_LEN];
	bool end_of_candidates;
	struct cn_sdp_answer_media media[CN_SDP_MAX_MEDIA]; /* one per offer section */
};

/*
 * Writes the answer to offer into out (CRLF lines): v/o/s/t, a=group:BUNDLE of the
 * accepted mids of the offer's group in its order (none when no bundled section is
 * accepted: RFC 8843 7.3.3, a rejected mid leaves the group), a=ice-lite if set,
 * a=msid-semantic, then per offer section an m= line (accepted: port 9 and the chosen
 * payload type; rejected: port 0, the offered proto and formats, then c=, a=mid,
 * a=inactive, a=rtcp-mux when offered, the transport lines below and the a=rtpmap and
 * a=fmtp of every offered format: aiortc 1.4 refuses an answer with a section lacking
 * any of them, and Chrome writes them so too), c=IN IP4 0.0.0.0,
 * a=mid, and for accepted sections a=rtcp:9, the direction, a=rtcp-mux and a=rtcp-rsize
 * when offered, ice-ufrag/pwd, a=ice-options:trickle, a=fingerprint:sha-256, a=setup,
 * a=rtpmap and a=fmtp of the chosen format exactly as offered, its rtcp-fb lines, extmap,
 * msid and ssrc lines, and the candidates. -EINVAL when the answer does not fit the offer (a format index out of
 * range, accepting a section with port 0 or one that is not RTP, an extmap id the offer
 * does not give abs-send-time) or holds a bad value (ICE credentials, setup, a candidate,
 * a cname or msid with spaces); -ENOBUFS (or -ENOMEM) when out's maximum is reached. On
 * failure out is left as it was.
 */
int cn_sdp_write_answer(const struct cn_sdp *offer, const struct cn_sdp_answer *ans,
			struct cn_buf *out);

/* A trickle ICE fragment (RFC 8840, application/trickle-ice-sdpfrag) for WHEP PATCH. */
struct cn_sdp_frag {
	char ice_ufrag[64]; /* "" when absent */
	char ice_pwd[160];
	int ncandidates;
	char candidates[CN_SDP_MAX_CANDIDATES][CN_SDP_CANDIDATE_LEN];
	char candidate_mid[CN_SDP_MAX_CANDIDATES][32]; /* mid of the m= section each was under */
	bool end_of_candidates;
};

/* Same strictness as cn_sdp_parse; accepts a=ice-ufrag, a=ice-pwd, a=ice-options,
 * a=group, m=, a=mid, a=candidate, a=end-of-candidates, ignores other a= lines and c=,
 * b=, i=, k=, and refuses every other line type. Each of ice-ufrag and ice-pwd may
 * repeat (per section) but must not differ. An empty fragment is valid. */
int cn_sdp_parse_frag(const char *text, size_t len, struct cn_sdp_frag *out, char *err,
		      size_t errcap);

#endif
