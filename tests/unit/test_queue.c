/* test_queue.c: bounded queues: drop when full, worker hand-off, delivery onto the GLib loop. */
#include <stdlib.h>

#include "cn_err.h"
#include "cn_queue.h"
#include "cn_test.h"

static int freed;

static void count_free(void *item)
{
	(void)item;
	freed++;
}

TEST(queue_bounded_drop)
{
	struct cn_queue *q = NULL;
	struct cn_queue_stats st;
	void *item;
	int vals[5];

	CHECK_INT(cn_queue_new("t", 0, NULL, NULL, NULL, NULL, &q), -EINVAL);
	CHECK_INT(cn_queue_new("t", 3, NULL, NULL, NULL, count_free, &q), 0);
	for (int i = 0; i < 5; i++)
		vals[i] = i;
	CHECK_INT(cn_queue_push(q, &vals[0]), 0);
	CHECK_INT(cn_queue_push(q, &vals[1]), 0);
	CHECK_INT(cn_queue_push(q, &vals[2]), 0);
	CHECK_INT(cn_queue_push(q, &vals[3]), CN_E_FULL);
	cn_queue_get_stats(q, &st);
	CHECK_INT(st.depth, 3);
	CHECK_INT(st.dropped, 1);
	CHECK_INT(st.pushed, 3);
	CHECK_INT(st.high_water, 3);
	CHECK_INT(cn_queue_pop(q, 0, &item), 0);
	CHECK(item == &vals[0]); /* FIFO */
	CHECK_INT(cn_queue_push(q, &vals[4]), 0);
	CHECK_INT(cn_queue_pop(q, 0, &item), 0);
	CHECK(item == &vals[1]);
	freed = 0;
	cn_queue_close(q);
	CHECK_INT(cn_queue_push(q, &vals[0]), -EPIPE);
	cn_queue_free(q); /* two items still queued */
	CHECK_INT(freed, 2);
}

struct worker_ctx {
	struct cn_queue *q;
	long sum;
	int count;
};

static gpointer worker(gpointer data)
{
	struct worker_ctx *w = data;
	void *item;

	while (cn_queue_pop(w->q, -1, &item) == 0) {
		w->sum += (long)(intptr_t)item;
		w->count++;
	}
	return NULL;
}

TEST(queue_workers)
{
	struct cn_queue *q = NULL;
	struct worker_ctx w[2];
	GThread *t[2];
	void *item;
	long pushed_sum = 0;
	int pushed = 0;

	CHECK_INT(cn_queue_new("work", 64, NULL, NULL, NULL, NULL, &q), 0);
	CHECK_INT(cn_queue_pop(q, 10, &item), -ETIMEDOUT);
	for (int i = 0; i < 2; i++) {
		w[i] = (struct worker_ctx){ q, 0, 0 };
		t[i] = g_thread_new("worker", worker, &w[i]);
	}
	for (intptr_t i = 1; i <= 20000; i++) {
		if (cn_queue_push(q, (void *)i) == 0) {
			pushed_sum += (long)i;
			pushed++;
		} else {
			g_usleep(50);
		}
	}
	cn_queue_close(q);
	for (int i = 0; i < 2; i++)
		g_thread_join(t[i]);
	CHECK_INT(w[0].count + w[1].count, pushed);
	CHECK(w[0].sum + w[1].sum == pushed_sum);
	CHECK_INT(cn_queue_pop(q, 0, &item), -EPIPE);
	cn_queue_free(q);
}

struct loop_ctx {
	GMainLoop *loop;
	int received;
	int last;
	bool in_order;
	int expect;
};

static void on_item(void *item, void *arg)
{
	struct loop_ctx *c = arg;
	int v = (int)(intptr_t)item;

	if (v != c->last + 1)
		c->in_order = false;
	c->last = v;
	if (++c->received == c->expect)
		g_main_loop_quit(c->loop);
}

static gpointer producer(gpointer data)
{
	struct cn_queue *q = data;

	for (intptr_t i = 1; i <= 5000;) {
		if (cn_queue_push(q, (void *)i) == 0)
			i++;
		else
			g_usleep(100); /* full: a real producer would count and drop */
	}
	return NULL;
}

static gboolean give_up(gpointer data)
{
	g_main_loop_quit(data);
	return G_SOURCE_REMOVE;
}

TEST(queue_loop_delivery)
{
	GMainContext *ctx = g_main_context_new();
	struct loop_ctx c = { g_main_loop_new(ctx, FALSE), 0, 0, true, 5000 };
	struct cn_queue *q = NULL;
	GSource *timeout = g_timeout_source_new(10000);

	CHECK_INT(cn_queue_new("to-loop", 128, ctx, on_item, &c, NULL, &q), 0);
	g_source_set_callback(timeout, give_up, c.loop, NULL);
	g_source_attach(timeout, ctx);
	GThread *t = g_thread_new("producer", producer, q);
	g_main_loop_run(c.loop);
	g_thread_join(t);
	CHECK_INT(c.received, 5000);
	CHECK(c.in_order);
	g_source_destroy(timeout);
	g_source_unref(timeout);
	cn_queue_free(q);
	g_main_loop_unref(c.loop);
	g_main_context_unref(ctx);
}
