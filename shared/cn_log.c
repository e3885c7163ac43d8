/* cn_log.c: formats one log record into a bounded buffer and writes it with one write(2). */
#include "cn_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cn_err.h"
#include "cn_time.h"

#define CN_LOG_MAX_SUBSYS 32
#define CN_LOG_SUBSYS_LEN 24
#define CN_LOG_LINE_MAX 4096

volatile int cn_log_cur_level = CN_LOG_INFO;
volatile int cn_log_any_debug;

static int log_fd = 2;
static enum cn_log_format log_format = CN_LOG_TEXT;
static pthread_mutex_t debug_lock = PTHREAD_MUTEX_INITIALIZER;
static char debug_subsys[CN_LOG_MAX_SUBSYS][CN_LOG_SUBSYS_LEN];
static int debug_count;
static bool debug_all;
static atomic_uint_least64_t level_counts[4];

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void cn_log_set_level(enum cn_log_level level)
{
	cn_log_cur_level = level;
}

int cn_log_level_parse(const char *name, enum cn_log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum cn_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *cn_log_level_name(enum cn_log_level level)
{
	if ((int)level < 0 || level > CN_LOG_DEBUG)
		return "?";
	return level_names[level];
}

void cn_log_set_format(enum cn_log_format fmt)
{
	log_format = fmt;
}

void cn_log_set_fd(int fd)
{
	log_fd = fd;
}

uint64_t cn_log_count(enum cn_log_level level)
{
	if ((int)level < 0 || level > CN_LOG_DEBUG)
		return 0;
	return atomic_load(&level_counts[level]);
}

static bool subsys_name_ok(const char *s, size_t n)
{
	if (n == 0 || n >= CN_LOG_SUBSYS_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int cn_log_set_debug(const char *list)
{
	char names[CN_LOG_MAX_SUBSYS][CN_LOG_SUBSYS_LEN];
	int count = 0;
	bool all = false;
	const char *p = list;

	/* Parse fully before touching the live set so a bad list changes nothing. */
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		while (n > 0 && *p == ' ') {
			p++;
			n--;
		}
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == 3 && memcmp(p, "all", 3) == 0) {
			all = true;
		} else if (n > 0) {
			if (!subsys_name_ok(p, n) || count == CN_LOG_MAX_SUBSYS)
				return -EINVAL;
			memcpy(names[count], p, n);
			names[count][n] = '\0';
			count++;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	pthread_mutex_lock(&debug_lock);
	memcpy(debug_subsys, names, sizeof(names));
	debug_count = count;
	debug_all = all;
	cn_log_any_debug = all || count > 0;
	pthread_mutex_unlock(&debug_lock);
	return 0;
}

bool cn_log_debug_enabled(const char *subsys)
{
	bool on;

	if (cn_log_cur_level >= CN_LOG_DEBUG)
		return true;
	pthread_mutex_lock(&debug_lock);
	on = debug_all;
	for (int i = 0; !on && i < debug_count; i++)
		on = strcmp(debug_subsys[i], subsys) == 0;
	pthread_mutex_unlock(&debug_lock);
	return on;
}

/* Appends s JSON-escaped; stops quietly at the bound (the record is then truncated). */
static size_t json_escape(char *out, size_t cap, size_t pos, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	for (; *s && pos + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[pos++] = '\\';
			out[pos++] = (char)c;
		} else if (c == '\n') {
			out[pos++] = '\\';
			out[pos++] = 'n';
		} else if (c < 0x20) {
			out[pos++] = '\\';
			out[pos++] = 'u';
			out[pos++] = '0';
			out[pos++] = '0';
			out[pos++] = hex[c >> 4];
			out[pos++] = hex[c & 15];
		} else {
			out[pos++] = (char)c;
		}
	}
	return pos;
}

static size_t clamp_len(int n, size_t cap)
{
	if (n < 0)
		return 0;
	return (size_t)n >= cap ? cap - 1 : (size_t)n;
}

void cn_log_write(enum cn_log_level level, const char *subsys, const char *file, int line,
		  const char *fmt, ...)
{
	char msg[CN_LOG_LINE_MAX];
	char out[CN_LOG_LINE_MAX * 2];
	char ts[40];
	size_t pos;
	va_list ap;

	if ((int)level < 0 || level > CN_LOG_DEBUG)
		level = CN_LOG_ERROR;
	atomic_fetch_add(&level_counts[level], 1);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cn_time_format_rfc3339(cn_time_wall_ms(), ts, sizeof(ts)) < 0)
		ts[0] = '\0';
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;

	if (log_format == CN_LOG_JSON) {
		pos = clamp_len(snprintf(out, sizeof(out), "{\"ts\":\"%s\",\"level\":\"%s\",\"sub\":\"",
					 ts, level_names[level]),
				sizeof(out));
		pos = json_escape(out, sizeof(out), pos, subsys);
		pos += clamp_len(snprintf(out + pos, sizeof(out) - pos, "\",\"msg\":\""),
				 sizeof(out) - pos);
		pos = json_escape(out, sizeof(out), pos, msg);
		if (level <= CN_LOG_WARN || level == CN_LOG_DEBUG)
			pos += clamp_len(snprintf(out + pos, sizeof(out) - pos,
						  "\",\"file\":\"%s\",\"line\":%d}\n", base, line),
					 sizeof(out) - pos);
		else
			pos += clamp_len(snprintf(out + pos, sizeof(out) - pos, "\"}\n"),
					 sizeof(out) - pos);
	} else if (level <= CN_LOG_WARN || level == CN_LOG_DEBUG) {
		pos = clamp_len(snprintf(out, sizeof(out), "%s %-5s [%s] %s (%s:%d)\n", ts,
					 level_names[level], subsys, msg, base, line),
				sizeof(out));
	} else {
		pos = clamp_len(snprintf(out, sizeof(out), "%s %-5s [%s] %s\n", ts,
					 level_names[level], subsys, msg),
				sizeof(out));
	}
	if (pos > 0 && out[pos - 1] != '\n')
		out[pos - 1] = '\n';
	/* One write per record keeps lines from different threads whole. */
	ssize_t done = 0;
	while ((size_t)done < pos) {
		ssize_t n = write(log_fd, out + done, pos - (size_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		done += n;
	}
}
