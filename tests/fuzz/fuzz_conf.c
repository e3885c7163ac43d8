/* fuzz_conf.c: libFuzzer harness for config text: load, check bounds, dump, reload, compare. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_buf.h"
#include "cn_conf.h"
#include "cn_err.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A config struct with every directive type, bounded and unbounded. */
struct fuzz_conf {
	int64_t workers;   /* INT, small range */
	int64_t offset;    /* INT, full int64 range */
	int64_t max_body;  /* SIZE, 0..1T */
	int64_t quota;     /* SIZE, full int64 range */
	int64_t timeout;   /* DURATION, 1 ms..1 d */
	int64_t skew;      /* DURATION, full int64 range */
	bool tls;          /* BOOL */
	bool debug;        /* BOOL */
	char *node_id;     /* STRING, 1..64 */
	char *data_dir;    /* STRING, 0..2000 (a path; longer would not dump within a line) */
	int log_level;     /* ENUM */
	int transport;     /* ENUM with one choice */
};

static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const transports[] = { "websocket", NULL };

#define OFF(f) offsetof(struct fuzz_conf, f)

static const struct cn_conf_directive table[] = {
	{ "workers", CN_CONF_INT, OFF(workers), 1, 256, "4", NULL, "worker threads" },
	{ "offset", CN_CONF_INT, OFF(offset), INT64_MIN, INT64_MAX, "-1", NULL, "any integer" },
	{ "max_body", CN_CONF_SIZE, OFF(max_body), 0, 1LL << 40, "1M", NULL, "largest body" },
	{ "quota", CN_CONF_SIZE, OFF(quota), INT64_MIN, INT64_MAX, "0", NULL, "any size" },
	{ "timeout", CN_CONF_DURATION, OFF(timeout), 1, 86400000, "30s", NULL, "I/O timeout" },
	{ "clock.skew", CN_CONF_DURATION, OFF(skew), INT64_MIN, INT64_MAX, "-250ms", NULL,
	  "any duration" },
	{ "tls", CN_CONF_BOOL, OFF(tls), 0, 0, "yes", NULL, "use TLS" },
	{ "debug", CN_CONF_BOOL, OFF(debug), 0, 0, "off", NULL, "debug mode" },
	{ "node_id", CN_CONF_STRING, OFF(node_id), 1, 64, "edge-1", NULL, "node name" },
	{ "data_dir", CN_CONF_STRING, OFF(data_dir), 0, 2000, "/var/lib/canopy", NULL,
	  "where recordings go" },
	{ "log_level", CN_CONF_ENUM, OFF(log_level), 0, 0, "info", levels, "log verbosity" },
	{ "transport", CN_CONF_ENUM, OFF(transport), 0, 0, "websocket", transports, "uplink" },
};

#define NDIR (sizeof(table) / sizeof(*table))

static size_t nchoices(const char *const *c)
{
	size_t n = 0;

	while (c[n])
		n++;
	return n;
}

/* Every loaded value respects its directive. */
static void check_bounds(const struct fuzz_conf *c)
{
	for (size_t i = 0; i < NDIR; i++) {
		const struct cn_conf_directive *d = &table[i];
		const void *f = (const char *)c + d->offset;
		switch (d->type) {
		case CN_CONF_INT:
		case CN_CONF_SIZE:
		case CN_CONF_DURATION:
			CHECK(*(const int64_t *)f >= d->min && *(const int64_t *)f <= d->max);
			break;
		case CN_CONF_BOOL:
			break;
		case CN_CONF_STRING: {
			const char *s = *(char *const *)f;
			CHECK(s != NULL);
			CHECK((int64_t)strlen(s) >= d->min && (int64_t)strlen(s) <= d->max);
			break;
		}
		case CN_CONF_ENUM: {
			int v = *(const int *)f;
			CHECK(v >= 0 && (size_t)v < nchoices(d->choices));
			break;
		}
		}
	}
}

static void check_equal(const struct fuzz_conf *a, const struct fuzz_conf *b)
{
	CHECK(a->workers == b->workers);
	CHECK(a->offset == b->offset);
	CHECK(a->max_body == b->max_body);
	CHECK(a->quota == b->quota);
	CHECK(a->timeout == b->timeout);
	CHECK(a->skew == b->skew);
	CHECK(a->tls == b->tls);
	CHECK(a->debug == b->debug);
	CHECK(strcmp(a->node_id, b->node_id) == 0);
	CHECK(strcmp(a->data_dir, b->data_dir) == 0);
	CHECK(a->log_level == b->log_level);
	CHECK(a->transport == b->transport);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_conf a, b;
	struct cn_buf d1, d2;
	char err[512];
	int rc;

	memset(&a, 0, sizeof(a));
	err[0] = '\0';
	rc = cn_conf_load_text(table, NDIR, &a, (const char *)data, size, "fuzz.conf", err,
			       sizeof(err));
	if (rc < 0) {
		CHECK(rc == CN_E_CONFIG);
		CHECK(strncmp(err, "fuzz.conf", 9) == 0 && memchr(err, '\0', sizeof(err)));
		cn_conf_free(table, NDIR, &a);
		CHECK(a.node_id == NULL && a.data_dir == NULL);
		return 0;
	}
	check_bounds(&a);

	/* The dump is a config file that loads back to the same values. */
	cn_buf_init(&d1, CN_CONF_MAX_FILE);
	CHECK(cn_conf_dump(table, NDIR, &a, &d1) == 0);
	CHECK(d1.data != NULL && strlen(d1.data) == d1.len);
	memset(&b, 0, sizeof(b));
	err[0] = '\0';
	rc = cn_conf_load_text(table, NDIR, &b, d1.data, d1.len, "dump", err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "dump of an accepted config does not load: %s\n", err);
		abort();
	}
	check_bounds(&b);
	check_equal(&a, &b);

	/* And dumping is stable. */
	cn_buf_init(&d2, CN_CONF_MAX_FILE);
	CHECK(cn_conf_dump(table, NDIR, &b, &d2) == 0);
	CHECK(d1.len == d2.len && memcmp(d1.data, d2.data, d1.len) == 0);

	cn_buf_free(&d1);
	cn_buf_free(&d2);
	cn_conf_free(table, NDIR, &a);
	cn_conf_free(table, NDIR, &b);
	return 0;
}
