/* cn_webrtc.h: a WebRTC peer on the GLib loop: libnice ICE, DTLS-SRTP, RTP out (viewers) or in (an offering receiver), RTCP, NACK. */
#ifndef CN_WEBRTC_H
#define CN_WEBRTC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "cn_dtls.h"
#include "cn_rtp.h"
#include "cn_sdp.h"

/* One peer is one viewer: a single ICE component (BUNDLE and rtcp-mux are required), one
 * DTLS association, and up to CN_WRTC_MAX_TRACKS outgoing RTP streams. Everything runs on
 * the GMainContext given at creation; nothing blocks.
 *
 * The other kind (cn_wrtc_offerer_new) receives: it makes the offer (controlling ICE,
 * a=setup:actpass), takes the answer (cn_wrtc_set_answer), hands every RTP packet to the
 * owner, sends receiver reports, NACKs gaps once, and PLIs on request. The relay pulls a
 * camera from an edge with it. */

#define CN_WRTC_MAX_TRACKS 2
#define CN_WRTC_MAX_PAYLOAD 1200 /* RTP payload bytes per packet: safe over TURN and VPNs */
#define CN_WRTC_RTX_SLOTS 512    /* packets kept per video track for NACK (~2 s at 2 Mbit/s) */

struct cn_wrtc_conf {
	const char *addresses; /* comma-separated local IPs to gather on; NULL or "" for all */
	const char *stun_server; /* IP literal; NULL for none */
	int stun_port;
	const char *turn_server; /* IP literal; NULL for none: a relayed candidate from it */
	int turn_port;
	bool turn_tcp;           /* reach the TURN server over TCP (UDP blocked on the way) */
	const char *turn_user, *turn_password;
	bool relay_only;         /* offer and use only the relayed candidate (hides local addresses) */
	int port_min, port_max; /* 0, 0: any */
	int64_t timeout_ms;     /* nothing heard from the peer (DTLS, RTCP) for this long: closed */
	bool dtls_active;       /* answer an actpass offer with active: we open the DTLS handshake
				 * once our ICE is connected (default passive: the viewer opens it) */
};

enum cn_wrtc_state {
	CN_WRTC_GATHERING,
	CN_WRTC_CHECKING,  /* answer given, ICE connectivity checks running */
	CN_WRTC_CONNECTED, /* ICE has a pair, DTLS handshake running */
	CN_WRTC_SECURE,    /* SRTP keys ready: media flows */
	CN_WRTC_CLOSED,
};

const char *cn_wrtc_state_name(enum cn_wrtc_state s);

struct cn_wrtc_stats {
	uint64_t packets_sent, bytes_sent; /* RTP, including retransmissions */
	uint64_t send_errors;              /* datagrams the socket refused */
	uint64_t nacks, retransmits, nack_misses; /* NACKed seqs, resent, too old to resend */
	uint64_t plis, firs, rembs, rtcp_in, rtcp_bad;
	uint64_t remb_bps;     /* last REMB estimate, 0 if none */
	uint8_t fraction_lost; /* last receiver report, of 256 */
	int32_t cumulative_lost;
	int64_t rtt_ms;        /* from the last report with an LSR, -1 before */
};

/* Receiving side (offerer peers). */
struct cn_wrtc_rx_stats {
	uint32_t ssrc;               /* the media source, 0 before its first packet */
	uint64_t packets, bytes;     /* RTP received (after SRTP), retransmissions included */
	uint64_t bad;                /* failed SRTP or RTP parsing */
	int64_t lost;                /* expected - received, RFC 3550 A.3 */
	uint64_t nacked;             /* sequence numbers NACKed */
	uint64_t plis;               /* PLIs sent */
};

struct cn_wrtc_peer;

struct cn_wrtc_events {
	/* Our candidates are complete: the answer can be written (cn_wrtc_local). */
	void (*gathered)(struct cn_wrtc_peer *p, void *arg);
	/* SRTP is ready: media may be sent from now on. */
	void (*secure)(struct cn_wrtc_peer *p, void *arg);
	/* The viewer asked for a keyframe (PLI or FIR). */
	void (*keyframe)(struct cn_wrtc_peer *p, void *arg);
	/* The peer is dead (ICE failed, DTLS failed, timeout, BYE). Called from an idle
	 * source, never from inside another call of this API; the only callback in which
	 * the owner may free the peer. */
	void (*closed)(struct cn_wrtc_peer *p, void *arg, const char *reason);
	/* Offerer peers: an RTP packet arrived (SRTP removed, header parsed; h points into
	 * pkt, valid during the call only). */
	void (*rtp)(struct cn_wrtc_peer *p, void *arg, const struct cn_rtp_hdr *h,
		    const uint8_t *pkt, size_t len);
	/* When set, the owner answers NACKs from a buffer of its own (cn_wrtc_send_rtp with
	 * retransmit) instead of the track's: seqs of track, n of them. */
	void (*nack)(struct cn_wrtc_peer *p, void *arg, int track, const uint16_t *seqs, int n);
};

/*
 * Creates a peer answering the transport of offer section m (ufrag, pwd, fingerprint,
 * setup, candidates) and starts gathering. ev->gathered follows (asynchronously).
 * Refuses (-EINVAL with err) a section without usable transport attributes.
 */
int cn_wrtc_peer_new(GMainContext *ctx, const struct cn_wrtc_conf *conf,
		     const struct cn_dtls_cert *cert, const struct cn_sdp_media *m,
		     const struct cn_wrtc_events *ev, void *arg, struct cn_wrtc_peer **out,
		     char *err, size_t errcap);

/* A receiving peer that offers: controlling ICE, gathering starts; ev->gathered follows,
 * then cn_wrtc_local gives the offer's transport (setup actpass). */
int cn_wrtc_offerer_new(GMainContext *ctx, const struct cn_wrtc_conf *conf,
			const struct cn_dtls_cert *cert, const struct cn_wrtc_events *ev, void *arg,
			struct cn_wrtc_peer **out, char *err, size_t errcap);
/* The answer's section for an offerer: ICE credentials, candidates, fingerprint, setup
 * (passive: we open the DTLS handshake; active: we wait for it), a=ssrc. -EINVAL with
 * err when unusable, -EALREADY when an answer was applied already. */
int cn_wrtc_set_answer(struct cn_wrtc_peer *p, const struct cn_sdp_media *m, char *err,
		       size_t errcap);
/* Offerer: sends a PLI for the received stream (0, -EAGAIN before SECURE or before the
 * source's SSRC is known). */
int cn_wrtc_request_keyframe(struct cn_wrtc_peer *p);
void cn_wrtc_get_rx_stats(const struct cn_wrtc_peer *p, struct cn_wrtc_rx_stats *out);

/* Fills the transport part of an answer (or of an offerer's offer): ufrag, pwd,
 * fingerprint, setup, candidates. */
int cn_wrtc_local(struct cn_wrtc_peer *p, struct cn_sdp_answer *ans);

/* Trickled remote candidates ("candidate:..." with or without "a="); mDNS (.local) and
 * TCP candidates are skipped (0), malformed ones refused (CN_E_MALFORMED with err). */
int cn_wrtc_add_candidate(struct cn_wrtc_peer *p, const char *cand, char *err, size_t errcap);
void cn_wrtc_end_of_candidates(struct cn_wrtc_peer *p);
/* The remote ICE ufrag (for matching trickle fragments). */
const char *cn_wrtc_remote_ufrag(const struct cn_wrtc_peer *p);

/* Adds an outgoing stream; returns its index (0..CN_WRTC_MAX_TRACKS-1) and its SSRC.
 * nack keeps a retransmission buffer; abs_send_time_id 0 writes no extension. */
int cn_wrtc_add_track(struct cn_wrtc_peer *p, uint8_t pt, uint32_t clock, bool nack,
		      int abs_send_time_id, uint32_t *ssrc);

/* Sends payloads of pl as RTP packets of track with timestamp ts (the last one written
 * with the marker the packetiser set). Returns the number sent; -EAGAIN before SECURE,
 * -EPIPE once closed, CN_E_FULL when the socket refused a packet (a viewer that cannot
 * keep up: the caller should skip to the next keyframe). */
int cn_wrtc_send(struct cn_wrtc_peer *p, int track, const struct cn_rtp_payloads *pl,
		 uint32_t ts);

/* Forwarding: one RTP packet of track with the caller's sequence number and timestamp
 * (the header carries the track's SSRC and payload type). Nothing is kept for NACK: the
 * owner keeps its buffer (events.nack) and resends with retransmit set. Returns 1, or
 * the errors of cn_wrtc_send (-EMSGSIZE past CN_WRTC_MAX_PAYLOAD). */
int cn_wrtc_send_rtp(struct cn_wrtc_peer *p, int track, bool marker, uint16_t seq, uint32_t ts,
		     const uint8_t *payload, size_t len, bool retransmit);

enum cn_wrtc_state cn_wrtc_state(const struct cn_wrtc_peer *p);
void cn_wrtc_get_stats(const struct cn_wrtc_peer *p, struct cn_wrtc_stats *out);
/* A one-line description of the selected candidate pair ("127.0.0.1:5000 host -> ..."). */
void cn_wrtc_describe_pair(struct cn_wrtc_peer *p, char *out, size_t cap);

/* Ends the session from the owner's side: closed follows from an idle source (so the
 * owner may call this from any callback). */
void cn_wrtc_close(struct cn_wrtc_peer *p, const char *reason);

/* Sends RTCP BYE when secure, closes DTLS and ICE, frees. No callback follows. */
void cn_wrtc_peer_free(struct cn_wrtc_peer *p);

#endif
