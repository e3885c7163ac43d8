/* test_main.c: the unit test registration table and runner; prints "N passed, N failed". */
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

#define TEST_LIST(X)                   \
	X(str_basics)                  \
	X(str_to_i64)                  \
	X(buf_bounds)                  \
	X(buf_take_and_printf)         \
	X(reader_short_input)          \
	X(base64_vectors)              \
	X(base64_hostile)              \
	X(base64url_roundtrip)         \
	X(hmac_vectors)                \
	X(sha256_vector)               \
	X(ct_equal)                    \
	X(random_bytes)                \
	X(ed25519_sign_verify)         \
	X(ed25519_save_load)           \
	X(ed25519_load_errors)         \
	X(jwt_roundtrip)               \
	X(jwt_rejects_alg)             \
	X(jwt_rejects_bad_signature)   \
	X(jwt_time_checks)             \
	X(jwt_malformed)               \
	X(jwt_oversized)               \
	X(jwt_kid_selects_key)         \
	X(jwt_extra_claims)            \
	X(time_format)                 \
	X(time_parse_valid)            \
	X(time_parse_invalid)          \
	X(time_roundtrip)              \
	X(time_clocks)                 \
	X(json_parse_limits)           \
	X(json_getters)                \
	X(json_exact_integers)         \
	X(conf_defaults_and_values)    \
	X(conf_errors_name_key_line)   \
	X(conf_dump_reloads)           \
	X(conf_file_errors)            \
	X(envelope_roundtrip)          \
	X(envelope_rejects)            \
	X(envelope_limits)             \
	X(queue_bounded_drop)          \
	X(queue_workers)               \
	X(queue_loop_delivery)         \
	X(loop_timers_queue_and_signal) \
	X(log_levels_and_subsystems)   \
	X(log_json_lines)              \
	X(metrics_render)              \
	X(err_strings)

#define DECLARE(n) void test_##n(void);
TEST_LIST(DECLARE)
#undef DECLARE

struct test_entry {
	const char *name;
	void (*fn)(void);
};

#define ENTRY(n) { #n, test_##n },
static const struct test_entry tests[] = { TEST_LIST(ENTRY) };
#undef ENTRY

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	cn_log_set_level(CN_LOG_ERROR);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
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
