/* cn_time.h: monotonic and wall clocks in milliseconds, RFC 3339 UTC text. */
#ifndef CN_TIME_H
#define CN_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC: for timeouts and intervals, never for dates. */
int64_t cn_time_mono_ms(void);
/* Milliseconds since the Unix epoch, UTC. */
int64_t cn_time_wall_ms(void);

/* Offset of the process's local time zone (TZ) from UTC at that instant, in minutes. */
int cn_time_local_offset_min(int64_t utc_ms);

/* The representable range: 0000-01-01T00:00:00Z .. 9999-12-31T23:59:59Z, in epoch seconds. */
#define CN_TIME_MIN_S (-62167219200LL)
#define CN_TIME_MAX_S 253402300799LL

/* "2026-11-21T08:47:00.123Z"; needs cap >= 25. -ERANGE outside years 0000..9999. */
int cn_time_format_rfc3339(int64_t ms, char *out, size_t cap);
/* Parses RFC 3339 date-time (any offset, fraction truncated to ms) to epoch ms.
 * CN_E_MALFORMED on anything else, including impossible dates and instants that fall
 * outside years 0000..9999 UTC once the offset is applied (so every parsed time can be
 * formatted again). */
int cn_time_parse_rfc3339(const char *s, size_t len, int64_t *ms);

#endif
