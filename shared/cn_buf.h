/* cn_buf.h: pointer+length strings, growable buffers with a hard maximum, bounded readers. */
#ifndef CN_BUF_H
#define CN_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A view of bytes we do not own; never assumed NUL-terminated. */
struct cn_str {
	const char *p;
	size_t len;
};

#define CN_STR(lit) ((struct cn_str){ (lit), sizeof(lit) - 1 })

struct cn_str cn_str_from(const char *cstr);
bool cn_str_eq(struct cn_str a, struct cn_str b);
bool cn_str_eq_cstr(struct cn_str a, const char *b);
bool cn_str_has_prefix(struct cn_str s, const char *prefix);
/* ASCII case-insensitive equality (protocol tokens and header names). */
bool cn_str_eq_nocase(struct cn_str s, const char *lit);
struct cn_str cn_str_trim(struct cn_str s);
/* Decimal integer, optional leading '-', no spaces, within [min, max]. */
int cn_str_to_i64(struct cn_str s, int64_t min, int64_t max, int64_t *out);
/* Copies into a fixed array, always NUL-terminated; -ENOSPC if it had to cut. */
int cn_strlcpy(char *dst, const char *src, size_t cap);
int cn_str_copy(char *dst, size_t cap, struct cn_str s);

/* A growable buffer that refuses to pass max bytes (curl's dynbuf idea).
 * data is always NUL-terminated after len when non-NULL. The caller owns it. */
struct cn_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

void cn_buf_init(struct cn_buf *b, size_t max);
/* -ENOBUFS past max, -ENOMEM on allocation failure; on error b is unchanged. */
int cn_buf_append(struct cn_buf *b, const void *p, size_t n);
int cn_buf_append_str(struct cn_buf *b, const char *s);
int cn_buf_printf(struct cn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cn_buf_reset(struct cn_buf *b);
/* Hands data to the caller (who frees it) and leaves b empty. */
char *cn_buf_take(struct cn_buf *b, size_t *len);
void cn_buf_free(struct cn_buf *b);

/* A cursor over untrusted bytes: every read checks the remaining length. */
struct cn_reader {
	const uint8_t *p;
	size_t len;
	size_t pos;
};

void cn_reader_init(struct cn_reader *r, const void *p, size_t len);
size_t cn_reader_left(const struct cn_reader *r);
int cn_reader_u8(struct cn_reader *r, uint8_t *out);
int cn_reader_u16be(struct cn_reader *r, uint16_t *out);
int cn_reader_u32be(struct cn_reader *r, uint32_t *out);
/* Points *out into the input (no copy). */
int cn_reader_bytes(struct cn_reader *r, size_t n, const uint8_t **out);
int cn_reader_skip(struct cn_reader *r, size_t n);

#endif
