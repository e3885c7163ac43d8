/* edge_avlog.c: one logging family even for FFmpeg, and per-camera RTP loss from its log. */
#include "edge_avlog.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/log.h>

#include "cn_log.h"

#define MAX_CONTEXTS 1024

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	const void *ctx;
	atomic_llong *lost;
} contexts[MAX_CONTEXTS];

void edge_avlog_register(const void *ctx, atomic_llong *lost)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_CONTEXTS; i++) {
		if (!contexts[i].ctx) {
			contexts[i].ctx = ctx;
			contexts[i].lost = lost;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
}

void edge_avlog_unregister(const void *ctx)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_CONTEXTS; i++)
		if (contexts[i].ctx == ctx)
			contexts[i].ctx = NULL;
	pthread_mutex_unlock(&lock);
}

/* FFmpeg's RTP layer reports sequence gaps only in its log ("RTP: missed %d packets"),
 * logged against the demuxer's AVFormatContext: that is our packet-loss counter. */
static void count_loss(const void *avcl, const char *fmt, va_list vl)
{
	va_list copy;
	int missed;

	if (strncmp(fmt, "RTP: missed %d packets", 22) != 0)
		return;
	va_copy(copy, vl);
	missed = va_arg(copy, int);
	va_end(copy);
	if (missed <= 0)
		return;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_CONTEXTS; i++)
		if (contexts[i].ctx && contexts[i].ctx == avcl)
			atomic_fetch_add(contexts[i].lost, missed);
	pthread_mutex_unlock(&lock);
}

void edge_avlog_callback(void *avcl, int level, const char *fmt, va_list vl)
{
	char line[1024];
	int print_prefix = 1;
	va_list copy;

	count_loss(avcl, fmt, vl);
	if (level > AV_LOG_WARNING)
		return;
	/* FFmpeg's errors about a camera are already reported as the camera's state with
	 * the reason; here they are detail, at warn (errors) or debug (warnings). */
	if (level > AV_LOG_ERROR && !cn_log_debug_enabled("ffmpeg"))
		return;
	va_copy(copy, vl);
	av_log_format_line2(avcl, level, fmt, copy, line, sizeof(line), &print_prefix);
	va_end(copy);
	size_t n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n == 0)
		return;
	if (level <= AV_LOG_FATAL)
		cn_log_write(CN_LOG_ERROR, "ffmpeg", "libav", 0, "%s", line);
	else if (level <= AV_LOG_ERROR)
		cn_log_warn("ffmpeg", "%s", line);
	else
		cn_log_debug("ffmpeg", "%s", line);
}

void edge_avlog_install(void)
{
	av_log_set_callback(edge_avlog_callback);
}
