/* test_conf.c: config table: defaults, every type, and errors that name the key and line. */
#include <stdlib.h>
#include <unistd.h>

#include "cn_conf.h"
#include "cn_err.h"
#include "cn_test.h"

struct tconf {
	int64_t port, quota, timeout;
	bool tls;
	char *name;
	int level;
};

static const char *const levels[] = { "low", "high", NULL };

static const struct cn_conf_directive table[] = {
	{ "port", CN_CONF_INT, offsetof(struct tconf, port), 1, 65535, "8080", NULL, "port" },
	{ "quota", CN_CONF_SIZE, offsetof(struct tconf, quota), 0, 1LL << 50, "1G", NULL, "quota" },
	{ "timeout", CN_CONF_DURATION, offsetof(struct tconf, timeout), 100, 86400000, "30s", NULL,
	  "timeout" },
	{ "tls", CN_CONF_BOOL, offsetof(struct tconf, tls), 0, 0, "false", NULL, "tls" },
	{ "name", CN_CONF_STRING, offsetof(struct tconf, name), 1, 16, "node", NULL, "name" },
	{ "level", CN_CONF_ENUM, offsetof(struct tconf, level), 0, 0, "low", levels, "level" },
};
#define NT (sizeof(table) / sizeof(table[0]))

static int load(struct tconf *c, const char *text, char *err, size_t cap)
{
	memset(c, 0, sizeof(*c));
	return cn_conf_load_text(table, NT, c, text, strlen(text), "t.conf", err, cap);
}

TEST(conf_defaults_and_values)
{
	struct tconf c;
	char err[256];

	CHECK_INT(load(&c, "", err, sizeof(err)), 0);
	CHECK_INT(c.port, 8080);
	CHECK(c.quota == 1LL << 30);
	CHECK_INT(c.timeout, 30000);
	CHECK(!c.tls);
	CHECK_STR(c.name, "node");
	CHECK_INT(c.level, 0);
	cn_conf_free(table, NT, &c);

	CHECK_INT(load(&c,
		       "# comment\n; another\n\nport = 443   # inline\n  quota=512M\r\n"
		       "timeout = 250ms\ntls = yes\nname = \"a \\\"q\\\" #x\"\nlevel = high\n",
		       err, sizeof(err)),
		  0);
	CHECK_INT(c.port, 443);
	CHECK(c.quota == 512LL << 20);
	CHECK_INT(c.timeout, 250);
	CHECK(c.tls);
	CHECK_STR(c.name, "a \"q\" #x");
	CHECK_INT(c.level, 1);
	cn_conf_free(table, NT, &c);
	CHECK(c.name == NULL);
}

static void expect_error(const char *text, const char *want)
{
	struct tconf c;
	char err[256] = "";
	int rc = load(&c, text, err, sizeof(err));

	if (rc != CN_E_CONFIG || strstr(err, want) == NULL)
		cn_test_fail(__FILE__, __LINE__, "config '%s': rc %d, error '%s', wanted '%s'", text, rc,
			     err, want);
	cn_conf_free(table, NT, &c);
}

TEST(conf_errors_name_key_line)
{
	expect_error("port = 1\nbogus = 2\n", "t.conf:2: unknown key 'bogus'");
	expect_error("\n\nport = 70000\n", "t.conf:3: 'port': 70000 is out of range 1..65535");
	expect_error("port = 0\n", "t.conf:1: 'port': 0 is out of range");
	expect_error("port = -5\n", "'port': -5 is out of range");
	expect_error("port = eighty\n", "t.conf:1: 'port': 'eighty' is not a number");
	expect_error("port = 80x\n", "'port': '80x' is not an integer");
	expect_error("port = 99999999999999999999\n", "'port'");
	expect_error("quota = 5Q\n", "'quota': '5Q' has an unknown size unit");
	expect_error("quota = 9000000T\n", "'quota': '9000000T' is too large");
	expect_error("timeout = 5\n", "'timeout': '5' needs a unit");
	expect_error("timeout = 50ms\n", "'timeout': 50ms is out of range 100..86400000");
	expect_error("tls = maybe\n", "'tls': 'maybe' is not a boolean");
	expect_error("level = mid\n", "'level': 'mid' is not one of low, high");
	expect_error("name = 01234567890123456\n", "'name': length 17 is out of range 1..16");
	expect_error("name = \"\"\n", "'name': length 0 is out of range");
	expect_error("name = \"open\n", "t.conf:1: 'name': bad quoted string");
	expect_error("name = \"a\" b\n", "'name': text after closing quote");
	expect_error("name = \"a\\q\"\n", "bad quoted string");
	expect_error("port = 1\nport = 2\n", "t.conf:2: 'port' set again (first set on line 1)");
	expect_error("port 80\n", "t.conf:1: expected 'key = value'");
	expect_error("= 80\n", "expected 'key = value'");
	expect_error("[section]\n", "expected 'key = value'");
	expect_error("Port = 80\n", "expected 'key = value'");
	/* A NUL byte inside a line. */
	struct tconf c;
	char err[256];
	memset(&c, 0, sizeof(c));
	CHECK_INT(cn_conf_load_text(table, NT, &c, "name = a\0b\n", 11, "t.conf", err, sizeof(err)),
		  CN_E_CONFIG);
	CHECK(strstr(err, "t.conf:1: NUL byte") != NULL);
	cn_conf_free(table, NT, &c);
	/* Over-long line. */
	char *longl = malloc(CN_CONF_MAX_LINE + 20);
	memcpy(longl, "name = ", 7);
	memset(longl + 7, 'x', CN_CONF_MAX_LINE + 5);
	longl[CN_CONF_MAX_LINE + 12] = '\0';
	expect_error(longl, "t.conf:1: line longer than");
	free(longl);
}

TEST(conf_dump_reloads)
{
	struct tconf a, b;
	struct cn_buf out;
	char err[256];

	CHECK_INT(load(&a, "port = 9\nquota = 3000\ntimeout = 90m\ntls = on\nname = \"x\\ty\"\nlevel = high\n",
		       err, sizeof(err)),
		  0);
	cn_buf_init(&out, 1 << 16);
	CHECK_INT(cn_conf_dump(table, NT, &a, &out), 0);
	CHECK(strstr(out.data, "timeout = 90m\n") != NULL);
	CHECK(strstr(out.data, "# quota\nquota = 3000\n") != NULL);
	CHECK_INT(load(&b, out.data, err, sizeof(err)), 0);
	CHECK(a.port == b.port && a.quota == b.quota && a.timeout == b.timeout && a.tls == b.tls &&
	      a.level == b.level);
	CHECK_STR(b.name, "x\ty");
	cn_buf_free(&out);
	cn_conf_free(table, NT, &a);
	cn_conf_free(table, NT, &b);
}

TEST(conf_file_errors)
{
	struct tconf c;
	char err[256], path[] = "/tmp/cn-unit-conf-XXXXXX";
	int fd;

	memset(&c, 0, sizeof(c));
	CHECK_INT(cn_conf_load(table, NT, &c, "/nonexistent/x.conf", err, sizeof(err)), CN_E_CONFIG);
	CHECK(strstr(err, "cannot open config '/nonexistent/x.conf'") != NULL);
	fd = mkstemp(path);
	CHECK(write(fd, "port = 81\nwhat = 1\n", 19) == 19);
	close(fd);
	CHECK_INT(cn_conf_load(table, NT, &c, path, err, sizeof(err)), CN_E_CONFIG);
	char want[128];
	snprintf(want, sizeof(want), "%s:2: unknown key 'what'", path);
	CHECK_STR(err, want);
	cn_conf_free(table, NT, &c);
	unlink(path);
}
