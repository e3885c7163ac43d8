/* edge_avlog.h: FFmpeg's log routed into cn_log, and RTP loss reports counted per camera. */
#ifndef EDGE_AVLOG_H
#define EDGE_AVLOG_H

#include <stdarg.h>
#include <stdatomic.h>

/* Installs the av_log callback (once, before any camera thread starts). */
void edge_avlog_install(void);
/* While registered, "RTP: missed N packets" logged for ctx (an AVFormatContext) adds N
 * to *lost. */
void edge_avlog_register(const void *ctx, atomic_llong *lost);
void edge_avlog_unregister(const void *ctx);
/* The callback itself, exposed for tests. */
void edge_avlog_callback(void *avcl, int level, const char *fmt, va_list vl);

#endif
