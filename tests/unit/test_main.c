/* test_main.c: the unit test runner: runs every registered test (or those matching argv[1]); prints "N passed, N failed". */
#include <stdarg.h>
#include <stdlib.h>

#include "cn_log.h"
#include "cn_test.h"

int cn_test_failures;

void cn_test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stdout, "    %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	cn_test_failures++;
}

#define MAX_TESTS 1024

struct test_entry {
	const char *name;
	void (*fn)(void);
};

static struct test_entry tests[MAX_TESTS];
static size_t ntests;

void cn_test_register(const char *name, void (*fn)(void))
{
	if (ntests == MAX_TESTS) {
		fprintf(stderr, "too many tests: raise MAX_TESTS\n");
		abort();
	}
	tests[ntests].name = name;
	tests[ntests].fn = fn;
	ntests++;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	cn_log_set_level(CN_LOG_ERROR);
	for (size_t i = 0; i < ntests; i++) {
		if (argc > 1 && strstr(tests[i].name, argv[1]) == NULL)
			continue;
		int before = cn_test_failures;
		tests[i].fn();
		if (cn_test_failures == before) {
			passed++;
			printf("ok   %s\n", tests[i].name);
		} else {
			failed++;
			printf("FAIL %s\n", tests[i].name);
		}
		fflush(stdout);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
