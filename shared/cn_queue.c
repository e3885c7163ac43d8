/* cn_queue.c: ring buffer under a mutex; loop delivery through a GSource woken by ready-time. */
#include "cn_queue.h"

#include <stdlib.h>
#include <string.h>

#include "cn_err.h"

struct queue_source {
	GSource base;
	struct cn_queue *q;
};

struct cn_queue {
	char name[48];
	GMutex lock;
	GCond cond;
	void **ring;
	size_t cap, head, count, high_water;
	uint64_t pushed, dropped;
	bool closed;
	cn_queue_handler handler;
	void *arg;
	cn_queue_item_free item_free;
	GSource *source;
};

static gboolean source_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
	struct cn_queue *q = ((struct queue_source *)src)->q;
	void *item;

	(void)cb;
	(void)data;
	g_source_set_ready_time(src, -1);
	/* Drain what is there now; items pushed meanwhile re-arm the source. */
	for (size_t budget = q->cap; budget > 0; budget--) {
		g_mutex_lock(&q->lock);
		if (q->count == 0) {
			g_mutex_unlock(&q->lock);
			break;
		}
		item = q->ring[q->head];
		q->head = (q->head + 1) % q->cap;
		q->count--;
		if (q->count > 0 && budget == 1)
			g_source_set_ready_time(src, 0);
		g_mutex_unlock(&q->lock);
		q->handler(item, q->arg);
	}
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs queue_source_funcs = {
	.dispatch = source_dispatch,
};

int cn_queue_new(const char *name, size_t capacity, GMainContext *ctx, cn_queue_handler handler,
		 void *arg, cn_queue_item_free item_free, struct cn_queue **out)
{
	struct cn_queue *q;

	if (capacity == 0 || capacity > (1u << 24) || (ctx && !handler))
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->ring = calloc(capacity, sizeof(void *));
	if (!q->ring) {
		free(q);
		return -ENOMEM;
	}
	g_strlcpy(q->name, name, sizeof(q->name));
	g_mutex_init(&q->lock);
	g_cond_init(&q->cond);
	q->cap = capacity;
	q->handler = handler;
	q->arg = arg;
	q->item_free = item_free;
	if (ctx) {
		q->source = g_source_new(&queue_source_funcs, sizeof(struct queue_source));
		((struct queue_source *)q->source)->q = q;
		g_source_set_name(q->source, q->name);
		g_source_attach(q->source, ctx);
	}
	*out = q;
	return 0;
}

int cn_queue_push(struct cn_queue *q, void *item)
{
	int rc = 0;

	g_mutex_lock(&q->lock);
	if (q->closed) {
		rc = -EPIPE;
	} else if (q->count == q->cap) {
		q->dropped++;
		rc = CN_E_FULL;
	} else {
		q->ring[(q->head + q->count) % q->cap] = item;
		q->count++;
		q->pushed++;
		if (q->count > q->high_water)
			q->high_water = q->count;
		if (q->source)
			g_source_set_ready_time(q->source, 0); /* thread-safe; wakes the context */
		else
			g_cond_signal(&q->cond);
	}
	g_mutex_unlock(&q->lock);
	return rc;
}

int cn_queue_pop(struct cn_queue *q, int timeout_ms, void **item)
{
	gint64 deadline = timeout_ms < 0 ? 0 : g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	int rc = 0;

	g_mutex_lock(&q->lock);
	while (q->count == 0 && !q->closed) {
		if (timeout_ms < 0) {
			g_cond_wait(&q->cond, &q->lock);
		} else if (!g_cond_wait_until(&q->cond, &q->lock, deadline)) {
			if (q->count == 0 && !q->closed) {
				rc = -ETIMEDOUT;
				goto out_unlock;
			}
		}
	}
	if (q->count == 0) {
		rc = -EPIPE;
		goto out_unlock;
	}
	*item = q->ring[q->head];
	q->head = (q->head + 1) % q->cap;
	q->count--;
out_unlock:
	g_mutex_unlock(&q->lock);
	return rc;
}

void cn_queue_close(struct cn_queue *q)
{
	g_mutex_lock(&q->lock);
	q->closed = true;
	g_cond_broadcast(&q->cond);
	g_mutex_unlock(&q->lock);
}

void cn_queue_get_stats(struct cn_queue *q, struct cn_queue_stats *st)
{
	g_mutex_lock(&q->lock);
	st->name = q->name;
	st->capacity = q->cap;
	st->depth = q->count;
	st->high_water = q->high_water;
	st->pushed = q->pushed;
	st->dropped = q->dropped;
	g_mutex_unlock(&q->lock);
}

void cn_queue_free(struct cn_queue *q)
{
	if (!q)
		return;
	if (q->source) {
		g_source_destroy(q->source);
		g_source_unref(q->source);
	}
	for (; q->count > 0; q->count--) {
		if (q->item_free)
			q->item_free(q->ring[q->head]);
		q->head = (q->head + 1) % q->cap;
	}
	g_cond_clear(&q->cond);
	g_mutex_clear(&q->lock);
	free(q->ring);
	free(q);
}
