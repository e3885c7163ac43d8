/* cn_time.h: monotonic and wall clocks in milliseconds, RFC 3339 UTC text. */
#ifndef CN_TIME_H
#define CN_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC: for timeouts and intervals, never for dates. */
int64_t cn_time_mono_ms(void);
/* Milliseconds since the Unix epoch, UTC. */
int64_t cn_time_wall_ms(void);

/* "2026-11-21T08:47:00.123Z"; needs cap >= 25. Years 0000..9999 only. */
int cn_time_format_rfc3339(int64_t ms, char *out, size_t cap);
/* Parses RFC 3339 date-time (any offset, fraction truncated to ms) to epoch ms.
 * CN_E_MALFORMED on anything else, including impossible dates. */
int cn_time_parse_rfc3339(const char *s, size_t len, int64_t *ms);

#endif
