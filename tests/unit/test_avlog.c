/* test_avlog.c: FFmpeg's RTP loss reports counted per registered context. */
#include <stdarg.h>

#include <libavutil/log.h>

#include "cn_test.h"
#include "../../edge-agent/edge_avlog.h"

static void emit(void *ctx, int level, const char *fmt, ...)
{
	va_list vl;

	va_start(vl, fmt);
	edge_avlog_callback(ctx, level, fmt, vl);
	va_end(vl);
}

TEST(avlog_counts_rtp_loss_per_context)
{
	static int a, b; /* stand-ins for two cameras' AVFormatContexts */
	atomic_llong lost_a = 0, lost_b = 0;

	edge_avlog_register(&a, &lost_a);
	edge_avlog_register(&b, &lost_b);
	emit(&a, AV_LOG_WARNING, "RTP: missed %d packets\n", 7);
	emit(&a, AV_LOG_WARNING, "RTP: missed %d packets\n", 2);
	emit(&b, AV_LOG_WARNING, "RTP: missed %d packets\n", 1);
	emit(&b, AV_LOG_WARNING, "RTP: missed %d packets\n", -3); /* nonsense ignored */
	emit(&a, AV_LOG_ERROR, "something else %d\n", 99);
	CHECK_INT(atomic_load(&lost_a), 9);
	CHECK_INT(atomic_load(&lost_b), 1);
	edge_avlog_unregister(&a);
	emit(&a, AV_LOG_WARNING, "RTP: missed %d packets\n", 5);
	CHECK_INT(atomic_load(&lost_a), 9); /* no longer counted after unregistering */
	edge_avlog_unregister(&b);
}
