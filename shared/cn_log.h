/* cn_log.h: the one logging macro family: levels, per-subsystem debug, text or JSON lines. */
#ifndef CN_LOG_H
#define CN_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum cn_log_level {
	CN_LOG_ERROR = 0,
	CN_LOG_WARN = 1,
	CN_LOG_INFO = 2,
	CN_LOG_DEBUG = 3,
};

enum cn_log_format {
	CN_LOG_TEXT = 0,
	CN_LOG_JSON = 1,
};

/* Read by the macros so a disabled level costs one compare and no formatting. */
extern volatile int cn_log_cur_level;
extern volatile int cn_log_any_debug;

void cn_log_set_level(enum cn_log_level level);
/* "error", "warn", "info", "debug"; -EINVAL on anything else. */
int cn_log_level_parse(const char *name, enum cn_log_level *out);
const char *cn_log_level_name(enum cn_log_level level);
void cn_log_set_format(enum cn_log_format fmt);
/* Comma-separated subsystem names ("http,uplink") or "all"; "" clears. -EINVAL on a bad name. */
int cn_log_set_debug(const char *list);
bool cn_log_debug_enabled(const char *subsys);
/* Send output to fd (default 2). */
void cn_log_set_fd(int fd);
/* Messages written per level since start, for /metrics. */
uint64_t cn_log_count(enum cn_log_level level);

void cn_log_write(enum cn_log_level level, const char *subsys, const char *file, int line,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define cn_log_error(sub, ...) \
	cn_log_write(CN_LOG_ERROR, (sub), __FILE__, __LINE__, __VA_ARGS__)
#define cn_log_warn(sub, ...)                                                         \
	do {                                                                           \
		if (cn_log_cur_level >= CN_LOG_WARN)                                   \
			cn_log_write(CN_LOG_WARN, (sub), __FILE__, __LINE__, __VA_ARGS__); \
	} while (0)
#define cn_log_info(sub, ...)                                                         \
	do {                                                                           \
		if (cn_log_cur_level >= CN_LOG_INFO)                                   \
			cn_log_write(CN_LOG_INFO, (sub), __FILE__, __LINE__, __VA_ARGS__); \
	} while (0)
#define cn_log_debug(sub, ...)                                                           \
	do {                                                                              \
		if ((cn_log_cur_level >= CN_LOG_DEBUG || cn_log_any_debug) &&            \
		    cn_log_debug_enabled(sub))                                            \
			cn_log_write(CN_LOG_DEBUG, (sub), __FILE__, __LINE__, __VA_ARGS__); \
	} while (0)

#endif
