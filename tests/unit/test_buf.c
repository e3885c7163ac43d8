/* test_buf.c: pointer+length strings, bounded buffers and readers. */
#include <stdlib.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_test.h"

TEST(str_basics)
{
	struct cn_str s = cn_str_trim(CN_STR("  \tab c\r\n"));
	char small[4];

	CHECK_INT(s.len, 4);
	CHECK(cn_str_eq_cstr(s, "ab c"));
	CHECK(!cn_str_eq_cstr(s, "ab"));
	CHECK(cn_str_has_prefix(s, "ab"));
	CHECK(!cn_str_has_prefix(CN_STR("a"), "ab"));
	CHECK_INT(cn_strlcpy(small, "abc", sizeof(small)), 0);
	CHECK_STR(small, "abc");
	CHECK_INT(cn_strlcpy(small, "abcd", sizeof(small)), -ENOSPC);
	CHECK_STR(small, "abc");
	CHECK_INT(cn_str_copy(small, 0, CN_STR("x")), -ENOSPC);
	/* Views need no NUL: compare a prefix of a longer string. */
	CHECK(cn_str_eq((struct cn_str){ "abcdef", 3 }, CN_STR("abc")));
}

TEST(str_to_i64)
{
	int64_t v = 0;

	CHECK_INT(cn_str_to_i64(CN_STR("42"), 0, 100, &v), 0);
	CHECK_INT(v, 42);
	CHECK_INT(cn_str_to_i64(CN_STR("-9223372036854775808"), INT64_MIN, INT64_MAX, &v), 0);
	CHECK(v == INT64_MIN);
	CHECK_INT(cn_str_to_i64(CN_STR("9223372036854775807"), INT64_MIN, INT64_MAX, &v), 0);
	CHECK(v == INT64_MAX);
	CHECK_INT(cn_str_to_i64(CN_STR("9223372036854775808"), INT64_MIN, INT64_MAX, &v), -ERANGE);
	CHECK_INT(cn_str_to_i64(CN_STR("99999999999999999999999"), INT64_MIN, INT64_MAX, &v),
		  -ERANGE);
	CHECK_INT(cn_str_to_i64(CN_STR("101"), 0, 100, &v), -ERANGE);
	CHECK_INT(cn_str_to_i64(CN_STR(""), 0, 100, &v), CN_E_MALFORMED);
	CHECK_INT(cn_str_to_i64(CN_STR("-"), -5, 100, &v), CN_E_MALFORMED);
	CHECK_INT(cn_str_to_i64(CN_STR(" 1"), 0, 100, &v), CN_E_MALFORMED);
	CHECK_INT(cn_str_to_i64(CN_STR("1x"), 0, 100, &v), CN_E_MALFORMED);
	CHECK_INT(cn_str_to_i64(CN_STR("+1"), 0, 100, &v), CN_E_MALFORMED);
	CHECK_INT(cn_str_to_i64((struct cn_str){ "123456", 2 }, 0, 100, &v), 0);
	CHECK_INT(v, 12);
}

TEST(buf_bounds)
{
	struct cn_buf b;

	cn_buf_init(&b, 10);
	CHECK_INT(cn_buf_append(&b, "0123456789", 10), 0);
	CHECK_INT(b.len, 10);
	CHECK_INT(cn_buf_append(&b, "x", 1), -ENOBUFS);
	CHECK_INT(b.len, 10);
	CHECK_STR(b.data, "0123456789");
	CHECK(b.cap <= 11);
	cn_buf_reset(&b);
	CHECK_INT(b.len, 0);
	CHECK_INT(cn_buf_printf(&b, "%s", "0123456789a"), -ENOBUFS);
	CHECK_INT(b.len, 0);
	/* A huge length must not wrap the bound check. */
	CHECK_INT(cn_buf_append(&b, "", SIZE_MAX), -ENOBUFS);
	cn_buf_free(&b);
	cn_buf_free(&b); /* idempotent */
	cn_buf_free(NULL);
}

TEST(buf_take_and_printf)
{
	struct cn_buf b;
	size_t len = 0;
	char *p;

	cn_buf_init(&b, 1 << 20);
	for (int i = 0; i < 1000; i++)
		CHECK_INT(cn_buf_printf(&b, "%d,", i), 0);
	CHECK_INT(b.len, 3890);
	CHECK(b.data[b.len] == '\0');
	p = cn_buf_take(&b, &len);
	CHECK_INT(len, 3890);
	CHECK(strncmp(p, "0,1,2,", 6) == 0);
	CHECK(b.data == NULL && b.len == 0);
	free(p);
	cn_buf_free(&b);
}

TEST(reader_short_input)
{
	static const uint8_t in[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07 };
	struct cn_reader r;
	const uint8_t *p;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;

	cn_reader_init(&r, in, sizeof(in));
	CHECK_INT(cn_reader_u8(&r, &u8), 0);
	CHECK_INT(u8, 1);
	CHECK_INT(cn_reader_u16be(&r, &u16), 0);
	CHECK_INT(u16, 0x0203);
	CHECK_INT(cn_reader_u32be(&r, &u32), 0);
	CHECK(u32 == 0x04050607u);
	CHECK_INT(cn_reader_left(&r), 0);
	CHECK_INT(cn_reader_u8(&r, &u8), CN_E_MALFORMED);
	cn_reader_init(&r, in, 3);
	CHECK_INT(cn_reader_u32be(&r, &u32), CN_E_MALFORMED);
	CHECK_INT(cn_reader_left(&r), 3); /* a failed read consumes nothing */
	CHECK_INT(cn_reader_bytes(&r, 2, &p), 0);
	CHECK(p == in);
	CHECK_INT(cn_reader_skip(&r, SIZE_MAX), CN_E_MALFORMED);
}
