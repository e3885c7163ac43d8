/* test_main.c: the unit test runner: runs every registered test (or those matching argv[1]); prints "N passed, N failed". */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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

uint8_t *cn_test_load(const char *name, size_t *len)
{
	char path[512];
	/* __FILE__ is the path make compiled us by (tests/unit/...), relative to the root */
	const char *slash = strrchr(__FILE__, '/');
	int dir = slash ? (int)(slash - __FILE__) : 1;
	uint8_t *buf = NULL;
	long n;
	FILE *f;

	snprintf(path, sizeof(path), "%.*s/data/%s", dir, slash ? __FILE__ : ".", name);
	f = fopen(path, "rb");
	if (f == NULL) {
		cn_test_fail(__FILE__, __LINE__, "cannot open %s (run from the repo root)", path);
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0)
		goto out_close;
	buf = malloc((size_t)n);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	*len = (size_t)n;
out_close:
	fclose(f);
	if (buf == NULL)
		cn_test_fail(__FILE__, __LINE__, "cannot read %s", path);
	return buf;
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
