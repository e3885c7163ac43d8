/* test_time.c: RFC 3339 formatting and strict parsing, and the two clocks. */
#include <unistd.h>

#include "cn_err.h"
#include "cn_test.h"
#include "cn_time.h"

static int64_t parse(const char *s)
{
	int64_t ms = -1;

	if (cn_time_parse_rfc3339(s, strlen(s), &ms) < 0)
		return INT64_MIN;
	return ms;
}

TEST(time_format)
{
	char buf[40];

	CHECK_INT(cn_time_format_rfc3339(0, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "1970-01-01T00:00:00.000Z");
	CHECK_INT(cn_time_format_rfc3339(951782400123LL, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "2000-02-29T00:00:00.123Z");
	CHECK_INT(cn_time_format_rfc3339(-1, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "1969-12-31T23:59:59.999Z");
	CHECK_INT(cn_time_format_rfc3339(253402300799999LL, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "9999-12-31T23:59:59.999Z");
	CHECK_INT(cn_time_format_rfc3339(253402300800000LL, buf, sizeof(buf)), -ERANGE);
	CHECK_INT(cn_time_format_rfc3339(0, buf, 24), -ENOSPC);
}

TEST(time_parse_valid)
{
	CHECK(parse("1970-01-01T00:00:00Z") == 0);
	CHECK(parse("1970-01-01t00:00:00z") == 0);
	CHECK(parse("2000-02-29T00:00:00.123Z") == 951782400123LL);
	CHECK(parse("2000-02-29T00:00:00.1239999Z") == 951782400123LL); /* truncated to ms */
	CHECK(parse("2000-02-29T01:30:00+01:30") == 951782400000LL);
	CHECK(parse("2000-02-28T19:00:00-05:00") == 951782400000LL);
	CHECK(parse("1985-04-12T23:20:50.52Z") == 482196050520LL);
	/* A leap second folds into the next second. */
	CHECK(parse("1990-12-31T23:59:60Z") == 662688000000LL);
	/* The edges of the range. */
	CHECK(parse("0000-01-01T00:00:00Z") == CN_TIME_MIN_S * 1000);
	CHECK(parse("9999-12-31T23:59:59.999Z") == CN_TIME_MAX_S * 1000 + 999);
}

TEST(time_parse_invalid)
{
	static const char *const bad[] = {
		"",
		"2000-02-30T00:00:00Z",
		"2001-02-29T00:00:00Z",
		"1900-02-29T00:00:00Z",
		"2000-13-01T00:00:00Z",
		"2000-00-01T00:00:00Z",
		"2000-01-00T00:00:00Z",
		"2000-01-01T24:00:00Z",
		"2000-01-01T00:60:00Z",
		"2000-01-01T00:00:61Z",
		"2000-01-01 00:00:00Z",
		"2000-01-01T00:00:00",
		"2000-01-01T00:00:00.Z",
		"2000-01-01T00:00:00.1234567890Z",
		"2000-01-01T00:00:00+0100",
		"2000-01-01T00:00:00+24:00",
		"2000-01-01T00:00:00Zjunk",
		"2000-1-01T00:00:00Z",
		"+2000-01-01T00:00:00Z",
		"2000-01-01T00:00:00ZZ",
		"0000-01-01T00:00:00+00:01",  /* before year 0 once in UTC */
		"9999-12-31T23:59:59-00:01",  /* after 9999 once in UTC */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (parse(bad[i]) != INT64_MIN)
			cn_test_fail(__FILE__, __LINE__, "accepted '%s'", bad[i]);
	/* Length is honoured: a valid prefix of a longer buffer is judged alone. */
	int64_t ms;
	CHECK_INT(cn_time_parse_rfc3339("1970-01-01T00:00:00Zxyz", 20, &ms), 0);
	CHECK_INT(cn_time_parse_rfc3339("1970-01-01T00:00:00Z", 19, &ms), CN_E_MALFORMED);
}

TEST(time_roundtrip)
{
	char buf[40];

	for (int64_t ms = 0; ms < 253402300799999LL; ms = ms * 3 + 86400000LL * 37 + 7) {
		CHECK_INT(cn_time_format_rfc3339(ms, buf, sizeof(buf)), 0);
		CHECK(parse(buf) == ms);
	}
	/* Before year 0 cannot be written in four digits. */
	CHECK_INT(cn_time_format_rfc3339(-62167219200001LL, buf, sizeof(buf)), -ERANGE);
}

TEST(time_clocks)
{
	int64_t m1 = cn_time_mono_ms(), w = cn_time_wall_ms();

	usleep(20000);
	CHECK(cn_time_mono_ms() - m1 >= 19);
	CHECK(w > 1700000000000LL); /* after 2023: the clock is set */
}
