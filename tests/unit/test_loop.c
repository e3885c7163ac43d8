/* test_loop.c: the main loop with lws attached: timers, worker hand-off and signal stop. */
#include <signal.h>

#include "cn_loop.h"
#include "cn_queue.h"
#include "cn_test.h"

struct tick_ctx {
	struct cn_loop *l;
	int ticks;
	int items;
};

static gboolean on_tick(gpointer data)
{
	struct tick_ctx *t = data;

	if (++t->ticks == 3) {
		/* Third tick: ask for our own SIGTERM, as systemd would send it. */
		raise(SIGTERM);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static void on_item(void *item, void *arg)
{
	struct tick_ctx *t = arg;

	(void)item;
	t->items++;
}

static gpointer produce(gpointer q)
{
	for (int i = 0; i < 10; i++)
		cn_queue_push(q, GINT_TO_POINTER(i + 1));
	return NULL;
}

TEST(loop_timers_queue_and_signal)
{
	struct cn_loop l;
	struct tick_ctx t = { &l, 0, 0 };
	struct cn_queue *q = NULL;

	CHECK_INT(cn_loop_init(&l), 0);
	CHECK(l.lws != NULL);
	CHECK_INT(cn_queue_new("results", 16, l.ctx, on_item, &t, NULL, &q), 0);
	GThread *th = g_thread_new("producer", produce, q);
	CHECK(cn_loop_every(&l, 20, on_tick, &t) > 0);
	int64_t start = g_get_monotonic_time();
	cn_loop_run(&l);
	g_thread_join(th);
	/* Items pushed before the stop may still be pending; one more pass delivers them. */
	while (g_main_context_iteration(l.ctx, FALSE))
		;
	CHECK_INT(t.ticks, 3);
	CHECK_INT(t.items, 10);
	CHECK_INT(l.stop_signal, SIGTERM);
	CHECK(g_get_monotonic_time() - start >= 55000);
	cn_queue_free(q);
	cn_loop_destroy(&l);
	cn_loop_destroy(&l); /* idempotent */
}
