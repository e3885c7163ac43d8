/* cn_buf.c: bounded strings, buffers and readers. */
#include "cn_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_err.h"

struct cn_str cn_str_from(const char *cstr)
{
	return (struct cn_str){ cstr, cstr ? strlen(cstr) : 0 };
}

bool cn_str_eq(struct cn_str a, struct cn_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool cn_str_eq_cstr(struct cn_str a, const char *b)
{
	return cn_str_eq(a, cn_str_from(b));
}

bool cn_str_has_prefix(struct cn_str s, const char *prefix)
{
	size_t n = strlen(prefix);

	return s.len >= n && memcmp(s.p, prefix, n) == 0;
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool cn_str_eq_nocase(struct cn_str s, const char *lit)
{
	size_t n = strlen(lit);

	if (s.len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ascii_lower(s.p[i]) != ascii_lower(lit[i]))
			return false;
	return true;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

struct cn_str cn_str_trim(struct cn_str s)
{
	while (s.len > 0 && is_space(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && is_space(s.p[s.len - 1]))
		s.len--;
	return s;
}

int cn_str_to_i64(struct cn_str s, int64_t min, int64_t max, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	uint64_t v = 0;

	if (s.len == 0)
		return CN_E_MALFORMED;
	if (s.p[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == s.len)
		return CN_E_MALFORMED;
	for (; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return CN_E_MALFORMED;
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	}
	if ((!neg && v > (uint64_t)INT64_MAX) || (neg && v > (uint64_t)INT64_MAX + 1))
		return -ERANGE;
	int64_t r = neg ? (int64_t)(0 - v) : (int64_t)v;
	if (r < min || r > max)
		return -ERANGE;
	*out = r;
	return 0;
}

int cn_strlcpy(char *dst, const char *src, size_t cap)
{
	return cn_str_copy(dst, cap, cn_str_from(src));
}

int cn_str_copy(char *dst, size_t cap, struct cn_str s)
{
	size_t n = s.len;
	int rc = 0;

	if (cap == 0)
		return -ENOSPC;
	if (n >= cap) {
		n = cap - 1;
		rc = -ENOSPC;
	}
	if (n)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
	return rc;
}

void cn_buf_init(struct cn_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

static int buf_reserve(struct cn_buf *b, size_t extra)
{
	size_t need, ncap;
	char *p;

	if (extra > b->max || b->len > b->max - extra)
		return -ENOBUFS;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	p = realloc(b->data, ncap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int cn_buf_append(struct cn_buf *b, const void *p, size_t n)
{
	int rc = buf_reserve(b, n);

	if (rc < 0)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int cn_buf_append_str(struct cn_buf *b, const char *s)
{
	return cn_buf_append(b, s, strlen(s));
}

int cn_buf_printf(struct cn_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	rc = buf_reserve(b, (size_t)n);
	if (rc < 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void cn_buf_reset(struct cn_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *cn_buf_take(struct cn_buf *b, size_t *len)
{
	char *p = b->data;

	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

void cn_buf_free(struct cn_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void cn_reader_init(struct cn_reader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
}

size_t cn_reader_left(const struct cn_reader *r)
{
	return r->len - r->pos;
}

int cn_reader_bytes(struct cn_reader *r, size_t n, const uint8_t **out)
{
	if (cn_reader_left(r) < n)
		return CN_E_MALFORMED;
	*out = r->p + r->pos;
	r->pos += n;
	return 0;
}

int cn_reader_skip(struct cn_reader *r, size_t n)
{
	const uint8_t *unused;

	return cn_reader_bytes(r, n, &unused);
}

int cn_reader_u8(struct cn_reader *r, uint8_t *out)
{
	const uint8_t *p;
	int rc = cn_reader_bytes(r, 1, &p);

	if (rc == 0)
		*out = p[0];
	return rc;
}

int cn_reader_u16be(struct cn_reader *r, uint16_t *out)
{
	const uint8_t *p;
	int rc = cn_reader_bytes(r, 2, &p);

	if (rc == 0)
		*out = (uint16_t)(p[0] << 8 | p[1]);
	return rc;
}

int cn_reader_u32be(struct cn_reader *r, uint32_t *out)
{
	const uint8_t *p;
	int rc = cn_reader_bytes(r, 4, &p);

	if (rc == 0)
		*out = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return rc;
}
