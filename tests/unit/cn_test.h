/* cn_test.h: a minimal table-driven unit test harness: checks record failures, tests keep going. */
#ifndef CN_TEST_H
#define CN_TEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern int cn_test_failures;

void cn_test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Reads tests/unit/data/<name> (run from the repository root); NULL, and a failure
 * recorded, when it cannot. The caller frees. */
uint8_t *cn_test_load(const char *name, size_t *len);

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond))                                                 \
			cn_test_fail(__FILE__, __LINE__, "check failed: %s", #cond); \
	} while (0)

#define CHECK_INT(a, b)                                                                   \
	do {                                                                              \
		long long va_ = (long long)(a), vb_ = (long long)(b);                     \
		if (va_ != vb_)                                                           \
			cn_test_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, \
				     va_, #b, vb_);                                       \
	} while (0)

#define CHECK_STR(a, b)                                                                      \
	do {                                                                                 \
		const char *sa_ = (a), *sb_ = (b);                                           \
		if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0)                                   \
			cn_test_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a, \
				     sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");             \
	} while (0)

void cn_test_register(const char *name, void (*fn)(void));

/* Defines a test and registers it before main runs, so test files need no central list;
 * tests run in file (link) order, then definition order. */
#define TEST(name)                                                                  \
	static void test_##name(void);                                              \
	__attribute__((constructor)) static void register_##name(void)              \
	{                                                                           \
		cn_test_register(#name, test_##name);                               \
	}                                                                           \
	static void test_##name(void)

#endif
