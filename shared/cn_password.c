/* cn_password.c: argon2id PHC strings on libargon2, bounds checked before hashing; policy. */
#include "cn_password.h"

#include <argon2.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "cn_base64.h"
#include "cn_buf.h"
#include "cn_crypto.h"
#include "cn_err.h"

const struct cn_password_params cn_password_default = {
	.m_cost_kib = 19456,
	.t_cost = 2,
	.parallelism = 1,
};

#define SALT_LEN 16 /* what we make */
#define HASH_LEN 32
#define SALT_MIN 8 /* what we accept from a stored string (PHC string format limits) */
#define SALT_MAX 48
#define HASH_MIN 16
#define HASH_MAX 64
#define ARGON2_V19 19
/* Longest string we parse: "$argon2id$v=19$m=1048576,t=100,p=16$" is 36, then 64 and 86
 * characters of base64 and a '$'; anything longer is refused before parsing. */
#define PHC_MAX 256
#define B64_FIELD_MAX 88 /* 64 bytes unpadded is 86 characters */

#define POLICY_MIN_CHARS 8
#define POLICY_MAX_CHARS 64
#define POLICY_MIN_CLASSES 3
#define POLICY_MIN_USERNAME 3

/* A parsed "$argon2id$v=19$m=..,t=..,p=..$salt$hash". */
struct phc {
	struct cn_password_params p;
	uint8_t salt[SALT_MAX];
	size_t salt_len;
	uint8_t hash[HASH_MAX];
	size_t hash_len;
};

static bool params_ok(const struct cn_password_params *p)
{
	return p->parallelism >= 1 && p->parallelism <= CN_PASSWORD_P_MAX && p->t_cost >= 1 &&
	       p->t_cost <= CN_PASSWORD_T_MAX && p->m_cost_kib >= 8 * p->parallelism &&
	       p->m_cost_kib <= CN_PASSWORD_M_MAX_KIB;
}

static int argon2_err(int rc)
{
	if (rc == ARGON2_OK)
		return 0;
	return rc == ARGON2_MEMORY_ALLOCATION_ERROR ? -ENOMEM : -EIO;
}

/* Standard base64 without padding, as the PHC string format uses it. */
static int b64_encode_nopad(const uint8_t *in, size_t n, char *out, size_t cap)
{
	size_t len;
	int rc = cn_base64_encode(CN_B64_STD, in, n, out, cap, &len);

	if (rc < 0)
		return rc;
	while (len && out[len - 1] == '=')
		out[--len] = '\0';
	return 0;
}

/* Pads a copy and lets cn_base64 decode it, so non-canonical trailing bits are refused too. */
static int b64_decode_nopad(struct cn_str in, uint8_t *out, size_t cap, size_t *outlen)
{
	char tmp[B64_FIELD_MAX + 3];
	size_t n = in.len;

	if (n == 0 || n > B64_FIELD_MAX || n % 4 == 1 || memchr(in.p, '=', n))
		return CN_E_MALFORMED;
	memcpy(tmp, in.p, n);
	while (n % 4)
		tmp[n++] = '=';
	return cn_base64_decode(CN_B64_STD, tmp, n, out, cap, outlen) < 0 ? CN_E_MALFORMED : 0;
}

static bool eat(struct cn_str *s, const char *lit)
{
	size_t n = strlen(lit);

	if (s->len < n || memcmp(s->p, lit, n) != 0)
		return false;
	s->p += n;
	s->len -= n;
	return true;
}

/* Cuts s at the next '$' (or its end): returns the part before, leaves s after the '$'. */
static struct cn_str field(struct cn_str *s, bool *had_dollar)
{
	const char *d = memchr(s->p, '$', s->len);
	struct cn_str f = { s->p, d ? (size_t)(d - s->p) : s->len };

	*had_dollar = d != NULL;
	s->p += f.len + (d ? 1 : 0);
	s->len -= f.len + (d ? 1 : 0);
	return f;
}

/* Decimal without sign or leading zeros; CN_E_TOO_BIG above max. */
static int read_u32(struct cn_str *s, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	while (i < s->len && s->p[i] >= '0' && s->p[i] <= '9') {
		if (v <= UINT32_MAX)
			v = v * 10 + (uint64_t)(s->p[i] - '0');
		i++;
	}
	if (i == 0 || (i > 1 && s->p[0] == '0'))
		return CN_E_MALFORMED;
	if (v > max)
		return CN_E_TOO_BIG;
	s->p += i;
	s->len -= i;
	*out = (uint32_t)v;
	return 0;
}

static int expect(struct cn_str *s, const char *lit)
{
	return eat(s, lit) ? 0 : CN_E_MALFORMED;
}

static int read_param(struct cn_str *s, const char *name, uint32_t max, uint32_t *out)
{
	return eat(s, name) ? read_u32(s, max, out) : CN_E_MALFORMED;
}

static int parse_phc(const char *str, struct phc *out)
{
	struct cn_str s, f;
	uint32_t v = 0;
	bool dollar;
	int rc;

	if (!str)
		return -EINVAL;
	s.p = str;
	s.len = strnlen(str, PHC_MAX + 1);
	if (s.len > PHC_MAX)
		return CN_E_TOO_BIG;
	if (!eat(&s, "$"))
		return CN_E_MALFORMED;
	f = field(&s, &dollar);
	if (!cn_str_eq_cstr(f, "argon2id"))
		return CN_E_BAD_ALG;
	if (!dollar)
		return CN_E_MALFORMED;
	rc = read_param(&s, "v=", UINT32_MAX, &v);
	if (rc < 0)
		return rc == CN_E_TOO_BIG ? CN_E_BAD_ALG : rc;
	if (v != ARGON2_V19)
		return CN_E_BAD_ALG;
	if ((rc = expect(&s, "$")) < 0 ||
	    (rc = read_param(&s, "m=", CN_PASSWORD_M_MAX_KIB, &out->p.m_cost_kib)) < 0 ||
	    (rc = expect(&s, ",")) < 0 ||
	    (rc = read_param(&s, "t=", CN_PASSWORD_T_MAX, &out->p.t_cost)) < 0 ||
	    (rc = expect(&s, ",")) < 0 ||
	    (rc = read_param(&s, "p=", CN_PASSWORD_P_MAX, &out->p.parallelism)) < 0 ||
	    (rc = expect(&s, "$")) < 0)
		return rc;
	if (!params_ok(&out->p))
		return CN_E_MALFORMED; /* t or p zero, or m below 8 * p */
	f = field(&s, &dollar);
	if (!dollar || b64_decode_nopad(f, out->salt, sizeof(out->salt), &out->salt_len) < 0 ||
	    out->salt_len < SALT_MIN)
		return CN_E_MALFORMED;
	f = field(&s, &dollar);
	if (dollar || b64_decode_nopad(f, out->hash, sizeof(out->hash), &out->hash_len) < 0 ||
	    out->hash_len < HASH_MIN)
		return CN_E_MALFORMED;
	return 0;
}

int cn_password_hash(const char *pw, size_t len, const struct cn_password_params *p,
		     char *out, size_t cap)
{
	uint8_t salt[SALT_LEN], hash[HASH_LEN];
	char buf[CN_PASSWORD_HASH_MAX], *o = buf;
	size_t room = sizeof(buf);
	int rc, n;

	if (out && cap)
		out[0] = '\0';
	if (!p)
		p = &cn_password_default;
	if ((!pw && len) || !out || len > ARGON2_MAX_PWD_LENGTH || !params_ok(p))
		return -EINVAL;
	rc = cn_random_bytes(salt, sizeof(salt));
	if (rc < 0)
		return rc;
	rc = argon2_err(argon2id_hash_raw(p->t_cost, p->m_cost_kib, p->parallelism, pw ? pw : "",
					  len, salt, sizeof(salt), hash, sizeof(hash)));
	if (rc < 0)
		goto out_wipe_hash;
	n = snprintf(o, room, "$argon2id$v=%u$m=%u,t=%u,p=%u$", ARGON2_V19, p->m_cost_kib,
		     p->t_cost, p->parallelism);
	if (n < 0 || (size_t)n >= room) {
		rc = -ENOSPC;
		goto out_wipe_hash;
	}
	o += n;
	room -= (size_t)n;
	rc = b64_encode_nopad(salt, sizeof(salt), o, room);
	if (rc < 0)
		goto out_wipe_hash;
	n = (int)strlen(o);
	o += n;
	room -= (size_t)n;
	if (room < 2) {
		rc = -ENOSPC;
		goto out_wipe_hash;
	}
	*o++ = '$';
	room--;
	rc = b64_encode_nopad(hash, sizeof(hash), o, room);
	if (rc < 0)
		goto out_wipe_hash;
	rc = cn_strlcpy(out, buf, cap);
	if (rc < 0)
		out[0] = '\0';
out_wipe_hash:
	explicit_bzero(hash, sizeof(hash));
	return rc;
}

int cn_password_verify(const char *pw, size_t len, const char *phc)
{
	struct phc h;
	uint8_t got[HASH_MAX];
	int rc;

	if ((!pw && len) || len > ARGON2_MAX_PWD_LENGTH)
		return -EINVAL;
	rc = parse_phc(phc, &h);
	if (rc < 0)
		return rc;
	rc = argon2_err(argon2id_hash_raw(h.p.t_cost, h.p.m_cost_kib, h.p.parallelism,
					  pw ? pw : "", len, h.salt, h.salt_len, got,
					  h.hash_len));
	if (rc < 0)
		goto out_wipe_got;
	rc = cn_ct_equal(got, h.hash, h.hash_len) ? 0 : CN_E_MISMATCH;
out_wipe_got:
	explicit_bzero(got, sizeof(got));
	return rc;
}

bool cn_password_needs_rehash(const char *phc, const struct cn_password_params *p)
{
	struct phc h;

	if (!p)
		p = &cn_password_default;
	if (parse_phc(phc, &h) < 0)
		return true;
	return h.p.m_cost_kib != p->m_cost_kib || h.p.t_cost != p->t_cost ||
	       h.p.parallelism != p->parallelism || h.salt_len != SALT_LEN ||
	       h.hash_len != HASH_LEN;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, surrogates or code points past U+10FFFF.
 * Returns the sequence length, 0 when the bytes at s are not valid UTF-8. */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint32_t c, min;
	size_t len, i;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		c = s[0] & 0x1f;
		min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		c = s[0] & 0x0f;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		c = s[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool contains_ci(const char *hay, size_t n, const char *needle, size_t m)
{
	for (size_t i = 0; m <= n && i <= n - m; i++) {
		size_t j = 0;

		while (j < m && ascii_lower(hay[i + j]) == ascii_lower(needle[j]))
			j++;
		if (j == m)
			return true;
	}
	return false;
}

int cn_password_policy(const char *pw, size_t len, const char *username, char *why, size_t cap)
{
	const uint8_t *s = (const uint8_t *)pw;
	bool lower = false, upper = false, digit = false, other = false;
	size_t i = 0, chars = 0, ulen, uchars = 0;
	int classes;

	if (!pw && len)
		return -EINVAL;
	if (why && cap)
		why[0] = '\0';
	while (i < len) {
		uint32_t cp;
		size_t k = utf8_next(s + i, len - i, &cp);

		if (k == 0)
			return cn_fail(CN_E_POLICY, why, cap,
				       "password is not valid UTF-8 (at byte %zu)", i);
		if (cp == 0)
			return cn_fail(CN_E_POLICY, why, cap,
				       "password must not contain a NUL character");
		if (g_unichar_islower(cp))
			lower = true;
		else if (g_unichar_isupper(cp))
			upper = true;
		else if (g_unichar_isdigit(cp))
			digit = true;
		else
			other = true;
		chars++;
		i += k;
	}
	if (chars < POLICY_MIN_CHARS || chars > POLICY_MAX_CHARS)
		return cn_fail(CN_E_POLICY, why, cap,
			       "password must be %d to %d characters long (has %zu)",
			       POLICY_MIN_CHARS, POLICY_MAX_CHARS, chars);
	classes = lower + upper + digit + other;
	if (classes < POLICY_MIN_CLASSES)
		return cn_fail(CN_E_POLICY, why, cap,
			       "password must use at least %d of: lower case, upper case, digits, "
			       "other characters (uses %d)",
			       POLICY_MIN_CLASSES, classes);
	if (username) {
		ulen = strlen(username);
		for (i = 0; i < ulen; i++)
			uchars += ((uint8_t)username[i] & 0xc0) != 0x80;
		if (uchars >= POLICY_MIN_USERNAME && contains_ci(pw, len, username, ulen))
			return cn_fail(CN_E_POLICY, why, cap,
				       "password must not contain the user name");
	}
	return 0;
}
