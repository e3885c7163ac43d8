/* fuzz_stun.c: libFuzzer harness for the STUN/TURN codec (cn_stun) and the peer address policy (cn_addrpolicy). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_addrpolicy.h"
#include "cn_err.h"
#include "cn_stun.h"
#include "fuzz_check.h"

/*
 * The input is one message as it arrives on the wire (UDP datagram, or a TCP frame):
 * 1. cn_stun_parse: a refusal is CN_E_MALFORMED or CN_E_TOO_BIG with a reason and a
 *    zeroed message; an accepted one has every attribute inside the input on a 4-byte
 *    boundary, MESSAGE-INTEGRITY of 20 bytes, FINGERPRINT last, and a type that the writer
 *    encodes back to the same two bytes. The integrity check answers 0, -ENOENT exactly
 *    when there is none, or CN_E_BAD_SIG. XOR addresses and ERROR-CODE that decode are
 *    written again and read back the same.
 * 2. Rebuilt: the attributes (up to MESSAGE-INTEGRITY) written again with the writer, with
 *    a new MESSAGE-INTEGRITY and FINGERPRINT, must parse, carry the same attributes and
 *    pass the integrity check with that key and fail it with another.
 * 3. Framing: cn_turn_frame_len agrees with the parse; ChannelData that parses lies inside.
 * 4. The first 16 / 4 bytes as an IPv6 / IPv4 peer: the policy verdict has a reason
 *    exactly when it refuses, normalising twice changes nothing, and the verdict on the
 *    normalised address is the same.
 */

#define MAX_INPUT 70000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key_a[] = "VOkJxbRl1RmTxUk/WvJxBt"; /* RFC 5769 short-term */
static const uint8_t key_b[16] = { 0x2b, 0x1c, 0x77, 0x08, 0x41, 0x9c, 0x5e, 0x07,
				   0x1d, 0x9e, 0x28, 0x1f, 0x4a, 0x5c, 0x3a, 0x11 };

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void check_addr_attr(const struct cn_stun_msg *m, const struct cn_stun_attr *a)
{
	struct sockaddr_storage ss, again;
	struct cn_stun_writer w;
	struct cn_stun_msg m2;
	uint8_t buf[64];
	const uint8_t *v;
	size_t len;
	int n;

	if (cn_stun_xaddr_decode(m->buf + a->off, a->len, m->tid, &ss) < 0)
		return;
	CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
	cn_stun_begin(&w, buf, sizeof(buf), CN_STUN_BINDING, CN_STUN_SUCCESS, m->tid);
	cn_stun_add_xaddr(&w, a->type, (struct sockaddr *)&ss);
	n = cn_stun_end(&w);
	CHECK(n == 20 + 4 + (ss.ss_family == AF_INET ? 8 : 20));
	CHECK(cn_stun_parse(buf, (size_t)n, &m2, NULL, 0) == 0);
	v = cn_stun_find(&m2, a->type, &len);
	CHECK(v && cn_stun_xaddr_decode(v, len, m2.tid, &again) == 0);
	CHECK(memcmp(&ss, &again, sizeof(ss)) == 0);
}

static void check_error_attr(const struct cn_stun_msg *m, const struct cn_stun_attr *a)
{
	char reason[512], reason2[512]; /* shorter than the writer's 763-byte bound */
	struct cn_stun_writer w;
	struct cn_stun_msg m2;
	uint8_t buf[1024];
	const uint8_t *v;
	size_t len;
	int code, code2, n;

	if (cn_stun_error_decode(m->buf + a->off, a->len, &code, reason, sizeof(reason)) < 0)
		return;
	CHECK(code >= 300 && code <= 699);
	CHECK(memchr(reason, '\0', sizeof(reason)) != NULL);
	cn_stun_begin(&w, buf, sizeof(buf), m->method, CN_STUN_ERROR, m->tid);
	cn_stun_add_error(&w, code, reason);
	n = cn_stun_end(&w);
	CHECK(n > 0);
	CHECK(cn_stun_parse(buf, (size_t)n, &m2, NULL, 0) == 0);
	v = cn_stun_find(&m2, CN_STUN_A_ERROR_CODE, &len);
	CHECK(v && cn_stun_error_decode(v, len, &code2, reason2, sizeof(reason2)) == 0);
	CHECK(code2 == code && strcmp(reason, reason2) == 0);
}

static uint8_t rebuilt[MAX_INPUT + 64];

static void check_rebuild(const struct cn_stun_msg *m)
{
	struct cn_stun_writer w;
	struct cn_stun_msg m2;
	int n, k = 0;

	cn_stun_begin(&w, rebuilt, sizeof(rebuilt), m->method, m->cls, m->tid);
	for (int i = 0; i < m->nattrs; i++) {
		const struct cn_stun_attr *a = &m->attrs[i];

		if (a->type == CN_STUN_A_MESSAGE_INTEGRITY || a->type == CN_STUN_A_FINGERPRINT)
			continue;
		cn_stun_add(&w, a->type, m->buf + a->off, a->len);
		k++;
	}
	cn_stun_add_integrity(&w, key_b, sizeof(key_b));
	cn_stun_add_fingerprint(&w);
	n = cn_stun_end(&w);
	if (k + 2 > CN_STUN_MAX_ATTRS || n == -ENOBUFS) {
		/* too many to hold again, or past 64 KiB: the parse must say so */
		if (n > 0)
			CHECK(cn_stun_parse(rebuilt, (size_t)n, &m2, NULL, 0) == CN_E_TOO_BIG);
		return;
	}
	CHECK(n > 0 && n % 4 == 0);
	CHECK(cn_stun_parse(rebuilt, (size_t)n, &m2, NULL, 0) == 0);
	CHECK(m2.method == m->method && m2.cls == m->cls && memcmp(m2.tid, m->tid, 12) == 0);
	CHECK(m2.nattrs == k + 2 && m2.integrity == k && m2.fingerprint == k + 1);
	for (int i = 0, j = 0; i < m->nattrs; i++) {
		const struct cn_stun_attr *a = &m->attrs[i];

		if (a->type == CN_STUN_A_MESSAGE_INTEGRITY || a->type == CN_STUN_A_FINGERPRINT)
			continue;
		CHECK(m2.attrs[j].type == a->type && m2.attrs[j].len == a->len);
		CHECK(memcmp(m2.buf + m2.attrs[j].off, m->buf + a->off, a->len) == 0);
		j++;
	}
	CHECK(cn_stun_check_integrity(&m2, key_b, sizeof(key_b)) == 0);
	CHECK(cn_stun_check_integrity(&m2, key_a, sizeof(key_a) - 1) == CN_E_BAD_SIG);
}

static void fuzz_message(const uint8_t *p, size_t n)
{
	static const uint16_t known[] = { CN_STUN_A_USERNAME, CN_STUN_A_REALM, CN_STUN_A_NONCE };
	struct cn_stun_msg m;
	struct cn_stun_writer w;
	uint8_t hdr[CN_STUN_HDR];
	uint16_t unknown[8];
	char err[160] = "";
	int rc, fl, nu;

	rc = cn_stun_parse(p, n, &m, err, sizeof(err));
	fl = cn_turn_frame_len(p, n);
	CHECK(fl == 0 ? n < 4 : (fl > 0 || fl == CN_E_MALFORMED));
	if (rc < 0) {
		CHECK(rc == CN_E_MALFORMED || rc == CN_E_TOO_BIG);
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
		CHECK(all_zero(&m, sizeof(m)));
		return;
	}
	CHECK(cn_stun_is_stun(p, n));
	CHECK(fl > 0 && (size_t)fl == n);
	CHECK(m.buf == p && m.len == n && m.nattrs <= CN_STUN_MAX_ATTRS);
	for (int i = 0; i < m.nattrs; i++) {
		const struct cn_stun_attr *a = &m.attrs[i];

		CHECK(a->off >= CN_STUN_HDR + 4 && a->off % 4 == 0 && a->off + a->len <= n);
		CHECK(i == 0 || a->off > m.attrs[i - 1].off + m.attrs[i - 1].len);
		CHECK(cn_stun_find(&m, a->type, NULL) == p + m.attrs[i].off ||
		      cn_stun_find(&m, a->type, NULL) < p + m.attrs[i].off);
		switch (a->type) {
		case CN_STUN_A_XOR_MAPPED_ADDRESS:
		case CN_TURN_A_XOR_PEER_ADDRESS:
		case CN_TURN_A_XOR_RELAYED_ADDRESS:
			check_addr_attr(&m, a);
			break;
		case CN_STUN_A_ERROR_CODE:
			check_error_attr(&m, a);
			break;
		}
	}
	if (m.integrity >= 0)
		CHECK(m.attrs[m.integrity].type == CN_STUN_A_MESSAGE_INTEGRITY &&
		      m.attrs[m.integrity].len == 20);
	if (m.fingerprint >= 0)
		CHECK(m.fingerprint == m.nattrs - 1 && m.attrs[m.fingerprint].off + 4 == n);
	rc = cn_stun_check_integrity(&m, key_a, sizeof(key_a) - 1);
	CHECK(rc == 0 || rc == CN_E_BAD_SIG || rc == -ENOENT);
	CHECK((rc == -ENOENT) == (m.integrity < 0));
	rc = cn_stun_check_integrity(&m, key_b, sizeof(key_b));
	CHECK(rc == 0 || rc == CN_E_BAD_SIG || rc == -ENOENT);
	nu = cn_stun_unknown_required(&m, known, 3, unknown, 8);
	CHECK(nu >= 0 && nu <= 8);
	for (int i = 0; i < nu; i++)
		CHECK(unknown[i] < 0x8000 && unknown[i] != CN_STUN_A_USERNAME);
	/* the type bits survive the writer */
	cn_stun_begin(&w, hdr, sizeof(hdr), m.method, m.cls, m.tid);
	CHECK(cn_stun_end(&w) == CN_STUN_HDR && hdr[0] == p[0] && hdr[1] == p[1]);
	check_rebuild(&m);
}

static void fuzz_channel(const uint8_t *p, size_t n)
{
	const uint8_t *d;
	uint16_t ch;
	size_t dl;

	if (cn_turn_channel_parse(p, n, &ch, &d, &dl) == 0) {
		CHECK(ch >= CN_TURN_CHANNEL_MIN && ch <= CN_TURN_CHANNEL_MAX);
		CHECK(d == p + 4 && dl <= n - 4);
		CHECK(cn_turn_frame_len(p, n) >= (int)(4 + dl));
	}
}

static void fuzz_policy(const uint8_t *p, size_t n)
{
	static struct cn_addrpolicy pol;
	static bool ready;
	struct sockaddr_storage ss, norm, norm2;
	const char *why, *why2;
	int rc, rc2;

	if (!ready) {
		CHECK(cn_addrpolicy_init(&pol, "127.0.0.0/8,fd00::/8", "8.8.8.0/24,2001:db8::/32",
					 NULL, 0) == 0);
		ready = true;
	}
	for (int fam = 0; fam < 2; fam++) {
		memset(&ss, 0, sizeof(ss));
		if (fam == 0 && n >= 16) {
			ss.ss_family = AF_INET6;
			memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, p, 16);
		} else if (fam == 1 && n >= 4) {
			ss.ss_family = AF_INET;
			memcpy(&((struct sockaddr_in *)&ss)->sin_addr, p, 4);
		} else {
			continue;
		}
		rc = cn_addrpolicy_check(&pol, (struct sockaddr *)&ss, &norm, &why);
		CHECK(rc == 0 || rc == CN_E_POLICY);
		CHECK((rc == 0) == (why == NULL));
		cn_addr_normalise((struct sockaddr *)&norm, &norm2);
		CHECK(memcmp(&norm, &norm2, sizeof(norm)) == 0);
		rc2 = cn_addrpolicy_check(&pol, (struct sockaddr *)&norm, NULL, &why2);
		CHECK(rc2 == rc);
		/* a loopback address never passes the default rules in any form */
		if (norm.ss_family == AF_INET6) {
			static const uint8_t lo6[16] = { [15] = 1 };

			if (memcmp(&((struct sockaddr_in6 *)&norm)->sin6_addr, lo6, 16) == 0)
				CHECK(rc == CN_E_POLICY);
		}
	}
}

/* RFC 3489 Binding requests: an answer only for a well-formed request, echoing its id. */
static void fuzz_classic(const uint8_t *data, size_t size)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0x1234 };
	uint8_t out[48];
	int n = cn_stun_classic_binding(data, size, (const struct sockaddr *)&a, out, sizeof(out));

	CHECK(n == 0 || n == 32);
	if (n == 32) {
		CHECK(size >= 20 && data[0] == 0 && data[1] == 1 && !cn_stun_is_stun(data, size));
		CHECK(memcmp(out + 4, data + 4, 16) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > MAX_INPUT)
		return 0;
	fuzz_message(data, size);
	fuzz_channel(data, size);
	fuzz_policy(data, size);
	fuzz_classic(data, size);
	return 0;
}
