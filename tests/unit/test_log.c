/* test_log.c: log levels, subsystem switches, JSON lines, metrics text and error strings. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cn_err.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_test.h"

/* Runs fn with log output captured into buf. */
static void capture(void (*fn)(void), char *buf, size_t cap)
{
	int fds[2];
	ssize_t n;

	CHECK_INT(pipe(fds), 0);
	cn_log_set_fd(fds[1]);
	fn();
	cn_log_set_fd(2);
	close(fds[1]);
	n = read(fds[0], buf, cap - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fds[0]);
}

static void emit_mixed(void)
{
	cn_log_set_level(CN_LOG_WARN);
	cn_log_set_debug("uplink");
	cn_log_info("http", "info hidden");
	cn_log_warn("http", "warn shown %d", 7);
	cn_log_debug("http", "debug hidden");
	cn_log_debug("uplink", "debug shown");
	cn_log_error("db", "error shown");
	cn_log_set_debug("");
	cn_log_set_level(CN_LOG_ERROR);
}

TEST(log_levels_and_subsystems)
{
	char out[4096];
	enum cn_log_level l;

	cn_log_set_format(CN_LOG_TEXT);
	capture(emit_mixed, out, sizeof(out));
	CHECK(strstr(out, "info hidden") == NULL);
	CHECK(strstr(out, "debug hidden") == NULL);
	CHECK(strstr(out, "warn  [http] warn shown 7 (test_log.c:") != NULL);
	CHECK(strstr(out, "[uplink] debug shown") != NULL);
	CHECK(strstr(out, "error [db] error shown (test_log.c:") != NULL);
	CHECK_INT(cn_log_level_parse("debug", &l), 0);
	CHECK_INT(l, CN_LOG_DEBUG);
	CHECK_INT(cn_log_level_parse("verbose", &l), -EINVAL);
	CHECK_INT(cn_log_set_debug("ok,Bad Name"), -EINVAL);
	CHECK(!cn_log_debug_enabled("ok")); /* a bad list changes nothing */
	CHECK_INT(cn_log_set_debug("all"), 0);
	CHECK(cn_log_debug_enabled("anything"));
	CHECK_INT(cn_log_set_debug(""), 0);
	CHECK(!cn_log_debug_enabled("anything"));
}

static void emit_json(void)
{
	cn_log_set_format(CN_LOG_JSON);
	cn_log_error("api", "quote \" backslash \\ newline \n tab \t end");
	cn_log_set_format(CN_LOG_TEXT);
}

TEST(log_json_lines)
{
	char out[4096];
	cJSON *v;

	capture(emit_json, out, sizeof(out));
	CHECK(strchr(out, '\n') == out + strlen(out) - 1); /* exactly one line */
	v = cJSON_Parse(out);
	CHECK(v != NULL);
	if (!v)
		return;
	CHECK_STR(cJSON_GetObjectItem(v, "level")->valuestring, "error");
	CHECK_STR(cJSON_GetObjectItem(v, "sub")->valuestring, "api");
	CHECK_STR(cJSON_GetObjectItem(v, "msg")->valuestring,
		  "quote \" backslash \\ newline \n tab \t end");
	CHECK_STR(cJSON_GetObjectItem(v, "file")->valuestring, "test_log.c");
	CHECK(cJSON_IsNumber(cJSON_GetObjectItem(v, "line")));
	CHECK(cJSON_GetObjectItem(v, "ts") != NULL);
	cJSON_Delete(v);
}

static struct cn_metric m_frames = CN_METRIC_INIT("canopy_test_frames_total", CN_METRIC_COUNTER,
						   "Frames seen by the test.");

static int collect(struct cn_buf *out, void *arg)
{
	cn_metrics_family(out, "canopy_test_label", "gauge", "A labelled value.");
	cn_buf_append_str(out, "canopy_test_label{name=\"");
	cn_metrics_label_value(out, arg);
	return cn_buf_append_str(out, "\"} 1\n");
}

TEST(metrics_render)
{
	struct cn_buf out;

	cn_metrics_reset();
	cn_metrics_set_build_info("unit", "1.2.3");
	CHECK_INT(cn_metrics_register(&m_frames), 0);
	cn_metric_add(&m_frames, 5);
	cn_metric_add(&m_frames, 2);
	CHECK_INT(cn_metrics_add_collector(collect, "a\"b\\c\nd"), 0);
	cn_buf_init(&out, 1 << 20);
	CHECK_INT(cn_metrics_render(&out), 0);
	CHECK(strstr(out.data, "# TYPE canopy_test_frames_total counter\ncanopy_test_frames_total 7\n") != NULL);
	CHECK(strstr(out.data, "canopy_build_info{component=\"unit\",version=\"1.2.3\"} 1\n") != NULL);
	CHECK(strstr(out.data, "canopy_test_label{name=\"a\\\"b\\\\c\\nd\"} 1\n") != NULL);
	CHECK(strstr(out.data, "\nprocess_resident_memory_bytes ") != NULL);
	CHECK(strstr(out.data, "\nprocess_open_fds ") != NULL);
	CHECK(strstr(out.data, "canopy_log_messages_total{level=\"error\"} ") != NULL);
	cn_metrics_remove_collector(collect, "a\"b\\c\nd");
	cn_buf_reset(&out);
	cn_metrics_render(&out);
	CHECK(strstr(out.data, "canopy_test_label") == NULL);
	cn_buf_free(&out);
	cn_metrics_reset();
}

TEST(err_strings)
{
	CHECK_STR(cn_strerror(0), "success");
	CHECK_STR(cn_strerror(CN_E_BAD_ALG), "algorithm not accepted");
	CHECK_STR(cn_strerror(-ENOENT), "No such file or directory");
	CHECK_STR(cn_strerror(-99999), "unknown error");
}
