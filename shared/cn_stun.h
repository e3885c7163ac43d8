/* cn_stun.h: STUN/TURN message codec (RFC 8489, RFC 8656): parse, attribute walk, integrity, fingerprint, ChannelData; no I/O. */
#ifndef CN_STUN_H
#define CN_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CN_STUN_HDR 20
#define CN_STUN_MAGIC 0x2112A442u
#define CN_STUN_MAX_ATTRS 40 /* a message with more attributes is refused */
#define CN_STUN_INTEGRITY_LEN 20
#define CN_STUN_KEY_LEN 16 /* MD5(user:realm:pass) */

/* Classes (the C1 C0 bits, already shifted down). */
enum {
	CN_STUN_REQUEST = 0,
	CN_STUN_INDICATION = 1,
	CN_STUN_SUCCESS = 2,
	CN_STUN_ERROR = 3,
};

/* Methods. */
enum {
	CN_STUN_BINDING = 0x001,
	CN_TURN_ALLOCATE = 0x003,
	CN_TURN_REFRESH = 0x004,
	CN_TURN_SEND = 0x006,
	CN_TURN_DATA = 0x007,
	CN_TURN_CREATE_PERMISSION = 0x008,
	CN_TURN_CHANNEL_BIND = 0x009,
};

/* Attributes. */
enum {
	CN_STUN_A_MAPPED_ADDRESS = 0x0001,
	CN_STUN_A_USERNAME = 0x0006,
	CN_STUN_A_MESSAGE_INTEGRITY = 0x0008,
	CN_STUN_A_ERROR_CODE = 0x0009,
	CN_STUN_A_UNKNOWN_ATTRIBUTES = 0x000A,
	CN_TURN_A_CHANNEL_NUMBER = 0x000C,
	CN_TURN_A_LIFETIME = 0x000D,
	CN_TURN_A_XOR_PEER_ADDRESS = 0x0012,
	CN_TURN_A_DATA = 0x0013,
	CN_STUN_A_REALM = 0x0014,
	CN_STUN_A_NONCE = 0x0015,
	CN_TURN_A_XOR_RELAYED_ADDRESS = 0x0016,
	CN_TURN_A_REQUESTED_ADDRESS_FAMILY = 0x0017,
	CN_TURN_A_EVEN_PORT = 0x0018,
	CN_TURN_A_REQUESTED_TRANSPORT = 0x0019,
	CN_TURN_A_DONT_FRAGMENT = 0x001A,
	CN_STUN_A_MESSAGE_INTEGRITY_SHA256 = 0x001C,
	CN_STUN_A_USERHASH = 0x001E,
	CN_STUN_A_XOR_MAPPED_ADDRESS = 0x0020,
	CN_TURN_A_RESERVATION_TOKEN = 0x0022,
	CN_STUN_A_PRIORITY = 0x0024,
	CN_STUN_A_USE_CANDIDATE = 0x0025,
	CN_STUN_A_PASSWORD_ALGORITHMS = 0x8002,
	CN_STUN_A_ALTERNATE_DOMAIN = 0x8003,
	CN_STUN_A_SOFTWARE = 0x8022,
	CN_STUN_A_ALTERNATE_SERVER = 0x8023,
	CN_STUN_A_FINGERPRINT = 0x8028,
	CN_STUN_A_ICE_CONTROLLED = 0x8029,
	CN_STUN_A_ICE_CONTROLLING = 0x802A,
};

struct cn_stun_attr {
	uint16_t type;
	uint16_t len;
	uint32_t off; /* of the value, from the start of the message */
};

/* A parsed message: views into the caller's buffer, which must outlive it. */
struct cn_stun_msg {
	const uint8_t *buf;
	size_t len; /* whole message, header included */
	uint16_t method;
	uint8_t cls;
	uint8_t tid[12];
	int nattrs;
	struct cn_stun_attr attrs[CN_STUN_MAX_ATTRS]; /* before MESSAGE-INTEGRITY, plus it and FINGERPRINT */
	int integrity;   /* index into attrs of MESSAGE-INTEGRITY, or -1 */
	int fingerprint; /* index of FINGERPRINT (checked), or -1 */
};

/* Whether the first bytes look like STUN (top bits 00 and the magic cookie). */
bool cn_stun_is_stun(const uint8_t *p, size_t n);

/* An RFC 3489 ("classic") Binding request, as libnice sends to find its server-reflexive
 * address: no magic cookie, so cn_stun_parse refuses it. Writes the answer RFC 5389
 * section 12 prescribes (the request's 16-byte transaction id, MAPPED-ADDRESS = from) and
 * returns its length; 0 if p is not such a request; CN_E_TOO_BIG if cap is short (48 is
 * enough). */
int cn_stun_classic_binding(const uint8_t *p, size_t n, const struct sockaddr *from, uint8_t *out,
			    size_t cap);

/* Parses exactly n bytes as one message: header (top bits 00, magic cookie, length a
 * multiple of 4 equal to n - 20), attributes walked within bounds (any padding bytes
 * accepted), attributes after MESSAGE-INTEGRITY ignored except FINGERPRINT, which must
 * be last and whose CRC is checked. CN_E_MALFORMED (err says why) or CN_E_TOO_BIG
 * (too many attributes); m is zeroed on failure. */
int cn_stun_parse(const uint8_t *p, size_t n, struct cn_stun_msg *m, char *err, size_t cap);

/* The first attribute of that type (value and length), or NULL. */
const uint8_t *cn_stun_find(const struct cn_stun_msg *m, uint16_t type, size_t *len);

/* Comprehension-required attributes (type < 0x8000) not in known[]; returns how many were
 * written to out (at most max). */
int cn_stun_unknown_required(const struct cn_stun_msg *m, const uint16_t *known, int nknown,
			     uint16_t *out, int max);

/* XOR-*-ADDRESS value -> socket address (sockaddr_in or sockaddr_in6). */
int cn_stun_xaddr_decode(const uint8_t *v, size_t len, const uint8_t tid[12],
			 struct sockaddr_storage *out);
/* ERROR-CODE value -> code (300..699) and the reason (NUL-terminated, truncated). */
int cn_stun_error_decode(const uint8_t *v, size_t len, int *code, char *reason, size_t cap);

/* MD5(username ":" realm ":" password), the long-term credential key. */
int cn_stun_long_term_key(const char *user, const char *realm, const char *pass,
			  uint8_t key[CN_STUN_KEY_LEN]);
/* 0 when MESSAGE-INTEGRITY is present and matches the key (constant-time compare),
 * -ENOENT when absent, CN_E_BAD_SIG when wrong. */
int cn_stun_check_integrity(const struct cn_stun_msg *m, const uint8_t *key, size_t klen);
uint32_t cn_stun_crc32(const uint8_t *p, size_t n);

/* Writer: appends to a caller buffer; the first failure sticks (-ENOBUFS, -EINVAL). */
struct cn_stun_writer {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint8_t tid[12];
	int err;
};

void cn_stun_begin(struct cn_stun_writer *w, uint8_t *buf, size_t cap, uint16_t method,
		   uint8_t cls, const uint8_t tid[12]);
void cn_stun_add(struct cn_stun_writer *w, uint16_t type, const void *v, size_t len);
void cn_stun_add_u32(struct cn_stun_writer *w, uint16_t type, uint32_t v);
void cn_stun_add_xaddr(struct cn_stun_writer *w, uint16_t type, const struct sockaddr *sa);
/* ERROR-CODE with the standard reason phrase when reason is NULL. */
void cn_stun_add_error(struct cn_stun_writer *w, int code, const char *reason);
void cn_stun_add_integrity(struct cn_stun_writer *w, const uint8_t *key, size_t klen);
void cn_stun_add_fingerprint(struct cn_stun_writer *w);
/* Length of the finished message, or the sticky error. */
int cn_stun_end(struct cn_stun_writer *w);

/* The standard reason phrase of an error code ("Unauthorized", ...). */
const char *cn_stun_reason(int code);

/* ChannelData (RFC 8656 section 12.4): 4-byte header. RFC 8656 narrowed channels to
 * 0x4000..0x4FFF; RFC 5766 clients (coturn's among them) still use up to 0x7FFE, so we
 * accept the older range. */
#define CN_TURN_CHANNEL_MIN 0x4000
#define CN_TURN_CHANNEL_MAX 0x7FFE
/* n bytes holding one ChannelData message (UDP: padding after the data allowed). */
int cn_turn_channel_parse(const uint8_t *p, size_t n, uint16_t *ch, const uint8_t **data,
			  size_t *dlen);
/* Writes the 4-byte header. */
void cn_turn_channel_header(uint8_t hdr[4], uint16_t ch, size_t dlen);

/* Stream framing (TURN over TCP/TLS): the length of the frame at the start of p: a STUN
 * message (20 + length) or ChannelData padded to 4. 0 when fewer than 4 bytes are there,
 * CN_E_MALFORMED when the first bits are neither. The caller waits for that many bytes. */
int cn_turn_frame_len(const uint8_t *p, size_t n);

#endif
