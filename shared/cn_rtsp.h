/* cn_rtsp.h: RTSP 1.0 client codec (RFC 2326): requests, responses, Basic/Digest auth, interleaved framing, the DESCRIBE SDP. */
#ifndef CN_RTSP_H
#define CN_RTSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cn_buf.h"

/* Pure codec: no I/O, no allocation. Untrusted bytes are pointer+length; every function
 * returns 0 (or a length) on success and a negative code on failure. */

#define CN_RTSP_MAX_HEAD 8192     /* bytes of a message's start line and headers */
#define CN_RTSP_MAX_BODY 65536    /* bytes of a message body (an SDP) */
#define CN_RTSP_MAX_HEADERS 48

/* ---- the TCP byte stream: RTSP messages and $-interleaved frames (RFC 2326 10.12) ---- */

enum cn_rtsp_chunk_kind {
	CN_RTSP_CHUNK_MSG,  /* an RTSP message (response, or a request from the server) */
	CN_RTSP_CHUNK_DATA, /* '$' channel length payload */
	CN_RTSP_CHUNK_JUNK, /* bytes that are neither: skip them (a broken server resyncs) */
};

struct cn_rtsp_chunk {
	enum cn_rtsp_chunk_kind kind;
	size_t len;           /* bytes of the input this chunk takes, > 0 */
	uint8_t channel;      /* DATA */
	const uint8_t *data;  /* DATA: the payload; MSG: the whole message (head and body) */
	size_t data_len;
};

/* Takes the next chunk from the front of p[0..n). Returns 1 with a chunk, 0 when more
 * bytes are needed (nothing is consumed), CN_E_TOO_BIG when a message head or body
 * passes its bound, CN_E_MALFORMED for a message head that cannot be delimited
 * (bad Content-Length). JUNK runs to the next '$' or 'R' (at least one byte). */
int cn_rtsp_split(const uint8_t *p, size_t n, struct cn_rtsp_chunk *out);

/* ---- messages ---------------------------------------------------------------------- */

struct cn_rtsp_header {
	struct cn_str name;
	struct cn_str value; /* trimmed; continuation lines are not supported (refused) */
};

struct cn_rtsp_msg {
	bool is_request;          /* a request from the server (ANNOUNCE, GET_PARAMETER, ...) */
	struct cn_str method, uri; /* requests */
	int status;               /* responses: 100..999 */
	struct cn_str reason;
	int nheaders;
	struct cn_rtsp_header headers[CN_RTSP_MAX_HEADERS];
	int64_t cseq;             /* -1 when absent */
	struct cn_str session;    /* Session id without parameters; len 0 when absent */
	int session_timeout;      /* seconds from ";timeout=", -1 when absent */
	const uint8_t *body;
	size_t body_len;
};

/* Parses one whole message as delimited by cn_rtsp_split (pointers point into p).
 * RTSP/1.0 only; lines end in CRLF or LF. Returns 0, CN_E_MALFORMED or CN_E_TOO_BIG
 * (more than CN_RTSP_MAX_HEADERS headers). */
int cn_rtsp_parse_msg(const uint8_t *p, size_t n, struct cn_rtsp_msg *out);

/* The value of the first header called name (case-insensitive); {NULL, 0} when absent. */
struct cn_str cn_rtsp_header(const struct cn_rtsp_msg *m, const char *name);

/* Interleaved channels from a Transport header value ("RTP/AVP/TCP;unicast;
 * interleaved=0-1"). -ENOENT when it has no interleaved parameter. */
int cn_rtsp_transport_channels(struct cn_str transport, int *rtp, int *rtcp);

/* Writes a request: "<method> <url> RTSP/1.0", CSeq, User-Agent, Session (when session
 * is non-empty), Authorization (when authorization is non-empty), then extra (complete
 * header lines ending in CRLF, or NULL), and the empty line. Returns the length written
 * (NUL-terminated), -EINVAL for a CR, LF or NUL where it would inject a header, or
 * -ENOBUFS. */
int cn_rtsp_write_request(char *out, size_t cap, const char *method, const char *url,
			  unsigned cseq, const char *session, const char *authorization,
			  const char *extra);

/* ---- authentication (RFC 2617, RFC 7616 with MD5) ------------------------------------ */

enum cn_rtsp_auth_scheme { CN_RTSP_AUTH_NONE, CN_RTSP_AUTH_BASIC, CN_RTSP_AUTH_DIGEST };

struct cn_rtsp_auth {
	enum cn_rtsp_auth_scheme scheme;
	char realm[128];
	char nonce[256];
	char opaque[256];
	bool has_opaque;
	bool qop_auth;   /* the server offered qop=auth: we answer with it */
	bool md5_sess;   /* algorithm=MD5-sess */
	bool stale;
	unsigned nc;     /* nonce count, incremented by each cn_rtsp_auth_header with qop */
};

/* Parses one WWW-Authenticate value. -ENOTSUP for another scheme or algorithm (SHA-256
 * digests, qop=auth-int only), CN_E_MALFORMED for a bad parameter list or a value
 * longer than its field. */
int cn_rtsp_auth_parse(struct cn_str value, struct cn_rtsp_auth *out);
/* The best challenge of a 401 response (Digest over Basic). -ENOENT when none is usable. */
int cn_rtsp_auth_choose(const struct cn_rtsp_msg *m, struct cn_rtsp_auth *out);
/* The Authorization header value for one request. cnonce (hex or token characters, used
 * only with qop) is the client nonce. Returns the length, -EINVAL (a user name with '"'
 * or control characters) or -ENOBUFS. */
int cn_rtsp_auth_header(struct cn_rtsp_auth *a, const char *user, const char *pass,
			const char *method, const char *uri, const char *cnonce, char *out,
			size_t cap);

/* ---- the SDP of a DESCRIBE (RFC 8866; lenient, as cameras write it) ------------------ */

#define CN_RTSP_SDP_MAX_MEDIA 8

struct cn_rtsp_media {
	char kind[16];    /* "video", "audio", ... */
	int pt;           /* the first payload type of the m= line */
	char encoding[32]; /* from a=rtpmap ("H264"), or from the static type (PCMU 0, PCMA 8) */
	unsigned clock;
	unsigned channels; /* 1 when not given */
	char fmtp[2048];  /* parameters of a=fmtp for pt, "" when absent */
	char control[512]; /* a=control as written, "" when absent */
};

struct cn_rtsp_sdp {
	char control[512]; /* session-level a=control */
	int nmedia;
	struct cn_rtsp_media media[CN_RTSP_SDP_MAX_MEDIA];
};

/* Lines end in CRLF or LF; unknown lines and attributes are ignored; m= sections past
 * CN_RTSP_SDP_MAX_MEDIA are ignored. CN_E_MALFORMED when there is no m= section, a line
 * is not "<letter>=", or the text has NUL bytes; CN_E_TOO_BIG past CN_RTSP_MAX_BODY. */
int cn_rtsp_sdp_parse(const char *text, size_t len, struct cn_rtsp_sdp *out);

/* A media's control URL: an absolute URL as is, "*" or "" the base, else base + "/" +
 * control (no second '/' when base ends in one), as libavformat does. -ENOBUFS. */
int cn_rtsp_control_url(const char *base, const char *control, char *out, size_t cap);

/* A parameter of an fmtp string ("a=1; b=2"): its value; {NULL, 0} when absent. */
struct cn_str cn_rtsp_fmtp_param(const char *fmtp, const char *name);

#endif
