/* cn_stun.c: STUN/TURN message codec (RFC 8489, RFC 8656): parse, attribute walk, integrity, fingerprint, ChannelData; no I/O. */
#include "cn_stun.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cn_crypto.h"
#include "cn_err.h"

#define FINGERPRINT_XOR 0x5354554eu

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* CRC-32 (ISO 3309, reflected 0xEDB88320), a nibble at a time: a 16-entry table is
 * enough for the short control messages that carry FINGERPRINT. */
uint32_t cn_stun_crc32(const uint8_t *p, size_t n)
{
	static const uint32_t t[16] = {
		0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
		0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
		0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
	};
	uint32_t c = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		c = (c >> 4) ^ t[c & 15];
		c = (c >> 4) ^ t[c & 15];
	}
	return c ^ 0xFFFFFFFFu;
}

bool cn_stun_is_stun(const uint8_t *p, size_t n)
{
	return n >= CN_STUN_HDR && (p[0] & 0xC0) == 0 && rd32(p + 4) == CN_STUN_MAGIC;
}

int cn_stun_classic_binding(const uint8_t *p, size_t n, const struct sockaddr *from, uint8_t *out,
			    size_t cap)
{
	size_t alen, len;

	if (n < CN_STUN_HDR || p[0] != 0x00 || p[1] != 0x01 || rd32(p + 4) == CN_STUN_MAGIC ||
	    ((size_t)p[2] << 8 | p[3]) + CN_STUN_HDR != n || (n & 3) != 0)
		return 0;
	if (from->sa_family == AF_INET)
		alen = 8;
	else if (from->sa_family == AF_INET6)
		alen = 20;
	else
		return 0;
	len = CN_STUN_HDR + 4 + alen;
	if (cap < len)
		return CN_E_TOO_BIG;
	out[0] = 0x01; /* Binding success response */
	out[1] = 0x01;
	out[2] = 0;
	out[3] = (uint8_t)(4 + alen);
	memcpy(out + 4, p + 4, 16);
	out[20] = 0x00; /* MAPPED-ADDRESS */
	out[21] = 0x01;
	out[22] = 0;
	out[23] = (uint8_t)alen;
	out[24] = 0;
	if (from->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)from;

		out[25] = 0x01;
		memcpy(out + 26, &a->sin_port, 2);
		memcpy(out + 28, &a->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)from;

		out[25] = 0x02;
		memcpy(out + 26, &a->sin6_port, 2);
		memcpy(out + 28, &a->sin6_addr, 16);
	}
	return (int)len;
}

int cn_stun_parse(const uint8_t *p, size_t n, struct cn_stun_msg *m, char *err, size_t cap)
{
	uint16_t type, mlen;
	size_t pos;
	int rc;

	memset(m, 0, sizeof(*m));
	if (n < CN_STUN_HDR)
		return cn_fail(CN_E_MALFORMED, err, cap, "shorter than a STUN header (%zu bytes)", n);
	if (p[0] & 0xC0)
		return cn_fail(CN_E_MALFORMED, err, cap, "first two bits not zero");
	if (rd32(p + 4) != CN_STUN_MAGIC)
		return cn_fail(CN_E_MALFORMED, err, cap, "no magic cookie");
	mlen = rd16(p + 2);
	if (mlen % 4)
		return cn_fail(CN_E_MALFORMED, err, cap, "length %u not a multiple of 4", mlen);
	if ((size_t)mlen + CN_STUN_HDR != n)
		return cn_fail(CN_E_MALFORMED, err, cap, "length %u but %zu bytes of attributes",
			       mlen, n - CN_STUN_HDR);
	type = rd16(p);
	m->buf = p;
	m->len = n;
	m->method = (uint16_t)((type & 0x000F) | (type & 0x00E0) >> 1 | (type & 0x3E00) >> 2);
	m->cls = (uint8_t)((type >> 4 & 1) | (type >> 7 & 2));
	memcpy(m->tid, p + 8, 12);
	m->integrity = -1;
	m->fingerprint = -1;

	for (pos = CN_STUN_HDR; pos < n;) {
		uint16_t at, al;

		if (n - pos < 4) {
			rc = cn_fail(CN_E_MALFORMED, err, cap, "attribute header cut at %zu", pos);
			goto fail;
		}
		at = rd16(p + pos);
		al = rd16(p + pos + 2);
		if (pad4(al) > n - pos - 4) {
			rc = cn_fail(CN_E_MALFORMED, err, cap,
				     "attribute 0x%04x at %zu: length %u past the end", at, pos, al);
			goto fail;
		}
		if (m->fingerprint >= 0) {
			rc = cn_fail(CN_E_MALFORMED, err, cap, "attribute after FINGERPRINT");
			goto fail;
		}
		/* Past MESSAGE-INTEGRITY only FINGERPRINT counts (RFC 8489 section 14.5). */
		if (m->integrity < 0 || at == CN_STUN_A_FINGERPRINT) {
			if (m->nattrs == CN_STUN_MAX_ATTRS) {
				rc = cn_fail(CN_E_TOO_BIG, err, cap, "more than %d attributes",
					     CN_STUN_MAX_ATTRS);
				goto fail;
			}
			m->attrs[m->nattrs].type = at;
			m->attrs[m->nattrs].len = al;
			m->attrs[m->nattrs].off = (uint32_t)(pos + 4);
			if (at == CN_STUN_A_MESSAGE_INTEGRITY) {
				if (al != CN_STUN_INTEGRITY_LEN) {
					rc = cn_fail(CN_E_MALFORMED, err, cap,
						     "MESSAGE-INTEGRITY of %u bytes", al);
					goto fail;
				}
				m->integrity = m->nattrs;
			} else if (at == CN_STUN_A_FINGERPRINT) {
				if (al != 4) {
					rc = cn_fail(CN_E_MALFORMED, err, cap, "FINGERPRINT of %u bytes", al);
					goto fail;
				}
				m->fingerprint = m->nattrs;
			}
			m->nattrs++;
		}
		pos += 4 + pad4(al);
	}
	if (m->fingerprint >= 0) {
		uint32_t off = m->attrs[m->fingerprint].off;

		if (off + 4 != n) {
			rc = cn_fail(CN_E_MALFORMED, err, cap, "FINGERPRINT not last");
			goto fail;
		}
		if ((cn_stun_crc32(p, off - 4) ^ FINGERPRINT_XOR) != rd32(p + off)) {
			rc = cn_fail(CN_E_MALFORMED, err, cap, "FINGERPRINT does not match");
			goto fail;
		}
	}
	return 0;
fail:
	memset(m, 0, sizeof(*m));
	return rc;
}

const uint8_t *cn_stun_find(const struct cn_stun_msg *m, uint16_t type, size_t *len)
{
	for (int i = 0; i < m->nattrs; i++) {
		if (m->attrs[i].type == type) {
			if (len)
				*len = m->attrs[i].len;
			return m->buf + m->attrs[i].off;
		}
	}
	return NULL;
}

int cn_stun_unknown_required(const struct cn_stun_msg *m, const uint16_t *known, int nknown,
			     uint16_t *out, int max)
{
	int n = 0;

	for (int i = 0; i < m->nattrs && n < max; i++) {
		uint16_t t = m->attrs[i].type;
		bool ok = t >= 0x8000;

		for (int k = 0; k < nknown && !ok; k++)
			ok = known[k] == t;
		if (!ok)
			out[n++] = t;
	}
	return n;
}

int cn_stun_xaddr_decode(const uint8_t *v, size_t len, const uint8_t tid[12],
			 struct sockaddr_storage *out)
{
	uint16_t port;

	memset(out, 0, sizeof(*out));
	if (len < 4)
		return CN_E_MALFORMED;
	port = rd16(v + 2) ^ (uint16_t)(CN_STUN_MAGIC >> 16);
	if (v[1] == 0x01 && len == 8) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;
		uint32_t a = rd32(v + 4) ^ CN_STUN_MAGIC;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr.s_addr = htonl(a);
		return 0;
	}
	if (v[1] == 0x02 && len == 20) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
		uint8_t x[16];

		wr32(x, CN_STUN_MAGIC);
		memcpy(x + 4, tid, 12);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		for (int i = 0; i < 16; i++)
			s6->sin6_addr.s6_addr[i] = v[4 + i] ^ x[i];
		return 0;
	}
	return CN_E_MALFORMED;
}

int cn_stun_error_decode(const uint8_t *v, size_t len, int *code, char *reason, size_t cap)
{
	size_t rl;

	if (len < 4 || (v[2] & 0xF8) || v[2] < 3 || v[2] > 6 || v[3] > 99)
		return CN_E_MALFORMED;
	*code = v[2] * 100 + v[3];
	if (reason && cap) {
		rl = len - 4 < cap - 1 ? len - 4 : cap - 1;
		memcpy(reason, v + 4, rl);
		reason[rl] = '\0';
	}
	return 0;
}

int cn_stun_long_term_key(const char *user, const char *realm, const char *pass,
			  uint8_t key[CN_STUN_KEY_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 0;
	int ok;

	if (ctx == NULL)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, user, strlen(user)) == 1 &&
	     EVP_DigestUpdate(ctx, ":", 1) == 1 &&
	     EVP_DigestUpdate(ctx, realm, strlen(realm)) == 1 &&
	     EVP_DigestUpdate(ctx, ":", 1) == 1 &&
	     EVP_DigestUpdate(ctx, pass, strlen(pass)) == 1 &&
	     EVP_DigestFinal_ex(ctx, key, &len) == 1 && len == CN_STUN_KEY_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

int cn_stun_check_integrity(const struct cn_stun_msg *m, const uint8_t *key, size_t klen)
{
	uint8_t mac[CN_SHA1_LEN], stackbuf[1024], *copy;
	size_t off, hl;
	int rc;

	if (m->integrity < 0)
		return -ENOENT;
	off = m->attrs[m->integrity].off;
	hl = off - 4; /* bytes before the MESSAGE-INTEGRITY attribute */
	copy = hl <= sizeof(stackbuf) ? stackbuf : malloc(hl);
	if (copy == NULL)
		return -ENOMEM;
	memcpy(copy, m->buf, hl);
	/* The length field as if the message ended with MESSAGE-INTEGRITY. */
	wr16(copy + 2, (uint16_t)(off + CN_STUN_INTEGRITY_LEN - CN_STUN_HDR));
	rc = cn_hmac_sha1(key, klen, copy, hl, mac);
	if (copy != stackbuf)
		free(copy);
	if (rc < 0)
		return rc;
	return cn_ct_equal(mac, m->buf + off, CN_SHA1_LEN) ? 0 : CN_E_BAD_SIG;
}

/* ---- writer ---- */

void cn_stun_begin(struct cn_stun_writer *w, uint8_t *buf, size_t cap, uint16_t method,
		   uint8_t cls, const uint8_t tid[12])
{
	uint16_t type;

	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
	memcpy(w->tid, tid, 12);
	if (cap < CN_STUN_HDR) {
		w->err = -ENOBUFS;
		return;
	}
	if (method > 0xFFF || cls > 3) {
		w->err = -EINVAL;
		return;
	}
	type = (uint16_t)((method & 0x000F) | (method & 0x0070) << 1 | (method & 0x0F80) << 2 |
			  (cls & 1) << 4 | (cls & 2) << 7);
	wr16(buf, type);
	wr16(buf + 2, 0);
	wr32(buf + 4, CN_STUN_MAGIC);
	memcpy(buf + 8, tid, 12);
	w->len = CN_STUN_HDR;
}

/* Room for an attribute of len value bytes (padded); the pointer to its value. */
static uint8_t *attr_room(struct cn_stun_writer *w, uint16_t type, size_t len)
{
	uint8_t *v;

	if (w->err)
		return NULL;
	if (len > 0xFFFF || w->cap - w->len < 4 + pad4(len) || w->len + 4 + pad4(len) > 0xFFFF + CN_STUN_HDR) {
		w->err = -ENOBUFS;
		return NULL;
	}
	wr16(w->buf + w->len, type);
	wr16(w->buf + w->len + 2, (uint16_t)len);
	v = w->buf + w->len + 4;
	memset(v + len, 0, pad4(len) - len);
	w->len += 4 + pad4(len);
	wr16(w->buf + 2, (uint16_t)(w->len - CN_STUN_HDR));
	return v;
}

void cn_stun_add(struct cn_stun_writer *w, uint16_t type, const void *v, size_t len)
{
	uint8_t *dst = attr_room(w, type, len);

	if (dst && len)
		memcpy(dst, v, len);
}

void cn_stun_add_u32(struct cn_stun_writer *w, uint16_t type, uint32_t v)
{
	uint8_t *dst = attr_room(w, type, 4);

	if (dst)
		wr32(dst, v);
}

void cn_stun_add_xaddr(struct cn_stun_writer *w, uint16_t type, const struct sockaddr *sa)
{
	uint8_t *v;

	if (w->err)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		v = attr_room(w, type, 8);
		if (v == NULL)
			return;
		v[0] = 0;
		v[1] = 0x01;
		wr16(v + 2, ntohs(s4->sin_port) ^ (uint16_t)(CN_STUN_MAGIC >> 16));
		wr32(v + 4, ntohl(s4->sin_addr.s_addr) ^ CN_STUN_MAGIC);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		uint8_t x[16];

		v = attr_room(w, type, 20);
		if (v == NULL)
			return;
		wr32(x, CN_STUN_MAGIC);
		memcpy(x + 4, w->tid, 12);
		v[0] = 0;
		v[1] = 0x02;
		wr16(v + 2, ntohs(s6->sin6_port) ^ (uint16_t)(CN_STUN_MAGIC >> 16));
		for (int i = 0; i < 16; i++)
			v[4 + i] = s6->sin6_addr.s6_addr[i] ^ x[i];
	} else {
		w->err = -EINVAL;
	}
}

const char *cn_stun_reason(int code)
{
	switch (code) {
	case 300: return "Try Alternate";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 405: return "Mobility Forbidden";
	case 420: return "Unknown Attribute";
	case 437: return "Allocation Mismatch";
	case 438: return "Stale Nonce";
	case 440: return "Address Family not Supported";
	case 441: return "Wrong Credentials";
	case 442: return "Unsupported Transport Protocol";
	case 443: return "Peer Address Family Mismatch";
	case 486: return "Allocation Quota Reached";
	case 500: return "Server Error";
	case 508: return "Insufficient Capacity";
	default: return "Error";
	}
}

void cn_stun_add_error(struct cn_stun_writer *w, int code, const char *reason)
{
	size_t rl;
	uint8_t *v;

	if (w->err)
		return;
	if (code < 300 || code > 699) {
		w->err = -EINVAL;
		return;
	}
	if (reason == NULL)
		reason = cn_stun_reason(code);
	rl = strnlen(reason, 763);
	v = attr_room(w, CN_STUN_A_ERROR_CODE, 4 + rl);
	if (v == NULL)
		return;
	v[0] = v[1] = 0;
	v[2] = (uint8_t)(code / 100);
	v[3] = (uint8_t)(code % 100);
	memcpy(v + 4, reason, rl);
}

void cn_stun_add_integrity(struct cn_stun_writer *w, const uint8_t *key, size_t klen)
{
	uint8_t mac[CN_SHA1_LEN];
	size_t before = w->len;
	uint8_t *v;

	if (w->err)
		return;
	v = attr_room(w, CN_STUN_A_MESSAGE_INTEGRITY, CN_STUN_INTEGRITY_LEN);
	if (v == NULL)
		return;
	/* attr_room already set the length to include this attribute, as the HMAC needs. */
	if (cn_hmac_sha1(key, klen, w->buf, before, mac) < 0) {
		w->err = -EIO;
		return;
	}
	memcpy(v, mac, CN_SHA1_LEN);
}

void cn_stun_add_fingerprint(struct cn_stun_writer *w)
{
	size_t before = w->len;
	uint8_t *v = attr_room(w, CN_STUN_A_FINGERPRINT, 4);

	if (v)
		wr32(v, cn_stun_crc32(w->buf, before) ^ FINGERPRINT_XOR);
}

int cn_stun_end(struct cn_stun_writer *w)
{
	return w->err ? w->err : (int)w->len;
}

/* ---- ChannelData and stream framing ---- */

int cn_turn_channel_parse(const uint8_t *p, size_t n, uint16_t *ch, const uint8_t **data,
			  size_t *dlen)
{
	uint16_t c, l;

	if (n < 4)
		return CN_E_MALFORMED;
	c = rd16(p);
	l = rd16(p + 2);
	if (c < CN_TURN_CHANNEL_MIN || c > CN_TURN_CHANNEL_MAX || (size_t)l > n - 4)
		return CN_E_MALFORMED;
	*ch = c;
	*data = p + 4;
	*dlen = l;
	return 0;
}

void cn_turn_channel_header(uint8_t hdr[4], uint16_t ch, size_t dlen)
{
	wr16(hdr, ch);
	wr16(hdr + 2, (uint16_t)dlen);
}

int cn_turn_frame_len(const uint8_t *p, size_t n)
{
	if (n < 4)
		return 0;
	switch (p[0] >> 6) {
	case 0:
		return CN_STUN_HDR + rd16(p + 2);
	case 1:
		return 4 + (int)pad4(rd16(p + 2));
	default:
		return CN_E_MALFORMED;
	}
}
