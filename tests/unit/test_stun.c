/* test_stun.c: STUN/TURN codec against the RFC 5769 test vectors, writer round trips, ChannelData framing. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cn_err.h"
#include "cn_stun.h"
#include "cn_test.h"

/* RFC 5769 2.1: sample request (short-term credential: the key is the password). */
static const uint8_t req21[] = {
	0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
	0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e,
	0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24,
	0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1,
	0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68,
	0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,
	0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5,
	0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};

/* 2.2: IPv4 response, mapped address 192.0.2.1:32853. */
static const uint8_t resp22[] = {
	0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
	0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,
	0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01,
	0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99,
	0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b,
	0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

/* 2.3: IPv6 response, 2001:db8:1234:5678:11:2233:4455:6677 port 32853. */
static const uint8_t resp23[] = {
	0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
	0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,
	0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02,
	0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5,
	0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6,
	0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
	0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
};

/* 2.4: request with long-term authentication. */
static const uint8_t req24[] = {
	0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33, 0xc6, 0xad,
	0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e, 0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3,
	0x83, 0x88, 0xe3, 0x83, 0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9,
	0x00, 0x00, 0x00, 0x15, 0x00, 0x1c, 0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39,
	0x35, 0x34, 0x64, 0x36, 0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54,
	0x76, 0x79, 0x36, 0x34, 0x73, 0x41, 0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d,
	0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72, 0x67, 0x00, 0x00, 0x08, 0x00, 0x14, 0xf6, 0x70,
	0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02, 0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2,
	0x8c, 0xa8, 0x96, 0x66,
};

static const char *pw = "VOkJxbRl1RmTxUk/WvJxBt";

TEST(stun_rfc5769_request)
{
	struct cn_stun_msg m;
	const uint8_t *v;
	size_t len;
	char err[128];

	CHECK_INT(cn_stun_parse(req21, sizeof(req21), &m, err, sizeof(err)), 0);
	CHECK_INT(m.method, CN_STUN_BINDING);
	CHECK_INT(m.cls, CN_STUN_REQUEST);
	CHECK(m.integrity >= 0 && m.fingerprint >= 0);
	v = cn_stun_find(&m, CN_STUN_A_USERNAME, &len);
	CHECK(v && len == 9 && memcmp(v, "evtj:h6vY", 9) == 0);
	v = cn_stun_find(&m, CN_STUN_A_SOFTWARE, &len);
	CHECK(v && len == 16 && memcmp(v, "STUN test client", 16) == 0);
	CHECK_INT(cn_stun_check_integrity(&m, (const uint8_t *)pw, strlen(pw)), 0);
	CHECK_INT(cn_stun_check_integrity(&m, (const uint8_t *)"wrong", 5), CN_E_BAD_SIG);
}

TEST(stun_rfc5769_responses)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct cn_stun_msg m;
	const uint8_t *v;
	uint8_t want6[16];
	size_t len;

	CHECK_INT(cn_stun_parse(resp22, sizeof(resp22), &m, NULL, 0), 0);
	CHECK_INT(m.cls, CN_STUN_SUCCESS);
	v = cn_stun_find(&m, CN_STUN_A_XOR_MAPPED_ADDRESS, &len);
	CHECK(v != NULL);
	CHECK_INT(cn_stun_xaddr_decode(v, len, m.tid, &ss), 0);
	CHECK_INT(ss.ss_family, AF_INET);
	CHECK_INT(ntohs(s4->sin_port), 32853);
	CHECK_INT(ntohl(s4->sin_addr.s_addr), 0xC0000201);
	CHECK_INT(cn_stun_check_integrity(&m, (const uint8_t *)pw, strlen(pw)), 0);

	CHECK_INT(cn_stun_parse(resp23, sizeof(resp23), &m, NULL, 0), 0);
	v = cn_stun_find(&m, CN_STUN_A_XOR_MAPPED_ADDRESS, &len);
	CHECK_INT(cn_stun_xaddr_decode(v, len, m.tid, &ss), 0);
	CHECK_INT(ss.ss_family, AF_INET6);
	CHECK_INT(ntohs(s6->sin6_port), 32853);
	inet_pton(AF_INET6, "2001:db8:1234:5678:11:2233:4455:6677", want6);
	CHECK(memcmp(s6->sin6_addr.s6_addr, want6, 16) == 0);
	CHECK_INT(cn_stun_check_integrity(&m, (const uint8_t *)pw, strlen(pw)), 0);
}

TEST(stun_rfc5769_long_term)
{
	/* SASLprep'd password of the vector: "TheMatrIX". */
	static const char user[] = "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";
	uint8_t key[CN_STUN_KEY_LEN];
	struct cn_stun_msg m;
	const uint8_t *v;
	size_t len;

	CHECK_INT(cn_stun_parse(req24, sizeof(req24), &m, NULL, 0), 0);
	CHECK(m.fingerprint < 0 && m.integrity >= 0);
	v = cn_stun_find(&m, CN_STUN_A_REALM, &len);
	CHECK(v && len == 11 && memcmp(v, "example.org", 11) == 0);
	CHECK_INT(cn_stun_long_term_key(user, "example.org", "TheMatrIX", key), 0);
	CHECK_INT(cn_stun_check_integrity(&m, key, sizeof(key)), 0);
	CHECK_INT(cn_stun_long_term_key(user, "example.org", "TheMatrix", key), 0);
	CHECK_INT(cn_stun_check_integrity(&m, key, sizeof(key)), CN_E_BAD_SIG);
}

TEST(stun_refuses_malformed)
{
	uint8_t b[sizeof(req21)];
	struct cn_stun_msg m;
	char err[128];

	memcpy(b, req21, sizeof(b));
	b[sizeof(b) - 1] ^= 1; /* fingerprint */
	CHECK_INT(cn_stun_parse(b, sizeof(b), &m, err, sizeof(err)), CN_E_MALFORMED);
	CHECK(strstr(err, "FINGERPRINT") != NULL);
	CHECK(m.buf == NULL && m.nattrs == 0);
	CHECK_INT(cn_stun_parse(req21, sizeof(req21) - 4, &m, err, sizeof(err)), CN_E_MALFORMED);
	memcpy(b, req21, sizeof(b));
	b[4] = 0; /* cookie */
	CHECK_INT(cn_stun_parse(b, sizeof(b), &m, err, sizeof(err)), CN_E_MALFORMED);
	memcpy(b, req21, sizeof(b));
	b[23] = 0x50; /* SOFTWARE length past the end */
	CHECK_INT(cn_stun_parse(b, sizeof(b), &m, err, sizeof(err)), CN_E_MALFORMED);
	memcpy(b, req21, sizeof(b));
	b[0] = 0x40;
	CHECK_INT(cn_stun_parse(b, sizeof(b), &m, err, sizeof(err)), CN_E_MALFORMED);
	CHECK_INT(cn_stun_parse(req21, 10, &m, err, sizeof(err)), CN_E_MALFORMED);
}

TEST(stun_classic_binding)
{
	/* RFC 3489 Binding request: 16-byte transaction id, no magic cookie, no attributes. */
	uint8_t req[20] = { 0x00, 0x01, 0x00, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	uint8_t out[48], small[30];
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(40000) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(5) };
	int k;

	inet_pton(AF_INET, "203.0.113.10", &a4.sin_addr);
	inet_pton(AF_INET6, "2001:db8::1", &a6.sin6_addr);
	k = cn_stun_classic_binding(req, sizeof(req), (const struct sockaddr *)&a4, out, sizeof(out));
	CHECK_INT(k, 32);
	CHECK(out[0] == 0x01 && out[1] == 0x01 && out[2] == 0 && out[3] == 12);
	CHECK(memcmp(out + 4, req + 4, 16) == 0);
	CHECK(out[20] == 0 && out[21] == 1 && out[23] == 8 && out[25] == 1);
	CHECK(out[26] == 0x9c && out[27] == 0x40); /* port 40000 */
	CHECK(out[28] == 203 && out[29] == 0 && out[30] == 113 && out[31] == 10);
	k = cn_stun_classic_binding(req, sizeof(req), (const struct sockaddr *)&a6, out, sizeof(out));
	CHECK_INT(k, 44);
	CHECK(out[3] == 24 && out[23] == 20 && out[25] == 2 && memcmp(out + 28, &a6.sin6_addr, 16) == 0);
	CHECK_INT(cn_stun_classic_binding(req, sizeof(req), (const struct sockaddr *)&a6, small,
					  sizeof(small)), CN_E_TOO_BIG);
	/* Not classic: RFC 5389 (cookie), a response, a wrong length. */
	CHECK_INT(cn_stun_classic_binding(req21, sizeof(req21), (const struct sockaddr *)&a4, out,
					  sizeof(out)), 0);
	req[1] = 0x01;
	req[0] = 0x01;
	CHECK_INT(cn_stun_classic_binding(req, sizeof(req), (const struct sockaddr *)&a4, out, sizeof(out)), 0);
	req[0] = 0x00;
	req[3] = 4;
	CHECK_INT(cn_stun_classic_binding(req, sizeof(req), (const struct sockaddr *)&a4, out, sizeof(out)), 0);
	CHECK_INT(cn_stun_classic_binding(req, 10, (const struct sockaddr *)&a4, out, sizeof(out)), 0);
}

TEST(stun_too_many_attributes)
{
	uint8_t buf[20 + 4 * (CN_STUN_MAX_ATTRS + 1)], tid[12] = { 1 };
	struct cn_stun_writer w;
	struct cn_stun_msg m;

	cn_stun_begin(&w, buf, sizeof(buf), CN_STUN_BINDING, CN_STUN_REQUEST, tid);
	for (int i = 0; i <= CN_STUN_MAX_ATTRS; i++)
		cn_stun_add(&w, 0x8050, NULL, 0);
	CHECK_INT(cn_stun_end(&w), (int)sizeof(buf));
	CHECK_INT(cn_stun_parse(buf, sizeof(buf), &m, NULL, 0), CN_E_TOO_BIG);
}

TEST(stun_writer_round_trip)
{
	uint8_t buf[256], tid[12], key[CN_STUN_KEY_LEN];
	struct sockaddr_in6 peer6 = { .sin6_family = AF_INET6, .sin6_port = htons(5000) };
	struct sockaddr_in peer4 = { .sin_family = AF_INET, .sin_port = htons(3478) };
	struct sockaddr_storage got;
	struct cn_stun_writer w;
	struct cn_stun_msg m;
	const uint8_t *v;
	char reason[64];
	size_t len;
	int n, code;

	for (int i = 0; i < 12; i++)
		tid[i] = (uint8_t)(i * 17);
	inet_pton(AF_INET6, "2001:db8::42", &peer6.sin6_addr);
	inet_pton(AF_INET, "203.0.113.9", &peer4.sin_addr);
	CHECK_INT(cn_stun_long_term_key("1700000000:acme/cam", "canopy", "pw", key), 0);
	cn_stun_begin(&w, buf, sizeof(buf), CN_TURN_ALLOCATE, CN_STUN_ERROR, tid);
	cn_stun_add_error(&w, 438, NULL);
	cn_stun_add_xaddr(&w, CN_TURN_A_XOR_RELAYED_ADDRESS, (struct sockaddr *)&peer4);
	cn_stun_add_xaddr(&w, CN_TURN_A_XOR_PEER_ADDRESS, (struct sockaddr *)&peer6);
	cn_stun_add_u32(&w, CN_TURN_A_LIFETIME, 600);
	cn_stun_add(&w, CN_STUN_A_NONCE, "abcde", 5);
	cn_stun_add_integrity(&w, key, sizeof(key));
	cn_stun_add_fingerprint(&w);
	n = cn_stun_end(&w);
	CHECK(n > 0 && n % 4 == 0);
	CHECK_INT(cn_stun_parse(buf, (size_t)n, &m, NULL, 0), 0);
	CHECK_INT(m.method, CN_TURN_ALLOCATE);
	CHECK_INT(m.cls, CN_STUN_ERROR);
	CHECK(memcmp(m.tid, tid, 12) == 0);
	CHECK_INT(cn_stun_check_integrity(&m, key, sizeof(key)), 0);
	v = cn_stun_find(&m, CN_STUN_A_ERROR_CODE, &len);
	CHECK_INT(cn_stun_error_decode(v, len, &code, reason, sizeof(reason)), 0);
	CHECK_INT(code, 438);
	CHECK_STR(reason, "Stale Nonce");
	v = cn_stun_find(&m, CN_TURN_A_XOR_PEER_ADDRESS, &len);
	CHECK_INT(cn_stun_xaddr_decode(v, len, m.tid, &got), 0);
	CHECK(memcmp(&got, &peer6, sizeof(peer6)) == 0);
	v = cn_stun_find(&m, CN_TURN_A_XOR_RELAYED_ADDRESS, &len);
	CHECK_INT(cn_stun_xaddr_decode(v, len, m.tid, &got), 0);
	CHECK(memcmp(&got, &peer4, sizeof(peer4)) == 0);
	v = cn_stun_find(&m, CN_STUN_A_NONCE, &len);
	CHECK(v && len == 5 && memcmp(v, "abcde", 5) == 0);
	/* Too small a buffer fails and says so. */
	cn_stun_begin(&w, buf, 30, CN_STUN_BINDING, CN_STUN_SUCCESS, tid);
	cn_stun_add_xaddr(&w, CN_STUN_A_XOR_MAPPED_ADDRESS, (struct sockaddr *)&peer6);
	CHECK_INT(cn_stun_end(&w), -ENOBUFS);
}

TEST(stun_attributes_after_integrity_ignored)
{
	uint8_t buf[128], tid[12] = { 9 };
	struct cn_stun_writer w;
	struct cn_stun_msg m;
	uint16_t unknown[4];
	static const uint16_t known[] = { CN_STUN_A_USERNAME };
	int n;

	cn_stun_begin(&w, buf, sizeof(buf), CN_TURN_REFRESH, CN_STUN_REQUEST, tid);
	cn_stun_add(&w, CN_STUN_A_USERNAME, "u", 1);
	cn_stun_add(&w, 0x0031, "x", 1); /* comprehension-required, unknown */
	cn_stun_add_integrity(&w, (const uint8_t *)"k", 1);
	cn_stun_add(&w, CN_TURN_A_LIFETIME, "\0\0\0\0", 4);
	n = cn_stun_end(&w);
	CHECK_INT(cn_stun_parse(buf, (size_t)n, &m, NULL, 0), 0);
	CHECK(cn_stun_find(&m, CN_TURN_A_LIFETIME, NULL) == NULL);
	CHECK_INT(cn_stun_unknown_required(&m, known, 1, unknown, 4), 2);
	CHECK_INT(unknown[0], 0x0031);
	CHECK_INT(unknown[1], CN_STUN_A_MESSAGE_INTEGRITY);
}

TEST(turn_channel_data)
{
	uint8_t p[12] = { 0x40, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0 };
	const uint8_t *data;
	uint16_t ch;
	size_t dl;

	CHECK_INT(cn_turn_channel_parse(p, 9, &ch, &data, &dl), 0);
	CHECK_INT(ch, 0x4001);
	CHECK(dl == 5 && data == p + 4);
	CHECK_INT(cn_turn_channel_parse(p, 8, &ch, &data, &dl), CN_E_MALFORMED);
	CHECK_INT(cn_turn_frame_len(p, sizeof(p)), 12); /* padded over TCP */
	CHECK_INT(cn_turn_frame_len(p, 3), 0);
	CHECK_INT(cn_turn_frame_len(req21, sizeof(req21)), (int)sizeof(req21));
	p[0] = 0x80;
	CHECK_INT(cn_turn_frame_len(p, sizeof(p)), CN_E_MALFORMED);
	p[0] = 0x7f; /* 0x7fff: outside even RFC 5766's range */
	p[1] = 0xff;
	CHECK_INT(cn_turn_channel_parse(p, 9, &ch, &data, &dl), CN_E_MALFORMED);
	p[0] = 0x50; /* RFC 5766 range, still accepted */
	CHECK_INT(cn_turn_channel_parse(p, 9, &ch, &data, &dl), 0);
	cn_turn_channel_header(p, 0x4ffe, 300);
	CHECK(p[0] == 0x4f && p[1] == 0xfe && p[2] == 1 && p[3] == 44);
}
