/* cn_queue.h: bounded MPMC queue for handing work between threads and the main loop. */
#ifndef CN_QUEUE_H
#define CN_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

struct cn_queue;

/* Called on the owning GMainContext for each item, in order. */
typedef void (*cn_queue_handler)(void *item, void *arg);
/* Frees an item still queued when the queue is destroyed. */
typedef void (*cn_queue_item_free)(void *item);

/* A queue holding at most capacity items. With ctx and handler set, items pushed from
 * any thread are delivered on that context's loop (worker -> loop). Without them,
 * consumers call cn_queue_pop (loop -> worker). */
int cn_queue_new(const char *name, size_t capacity, GMainContext *ctx, cn_queue_handler handler,
		 void *arg, cn_queue_item_free item_free, struct cn_queue **out);
/* Never blocks: CN_E_FULL (and the dropped counter goes up) when full; -EPIPE once closed.
 * On failure the caller keeps ownership of item. */
int cn_queue_push(struct cn_queue *q, void *item);
/* Waits up to timeout_ms (-1: forever) for an item. -ETIMEDOUT, or -EPIPE when closed
 * and drained. */
int cn_queue_pop(struct cn_queue *q, int timeout_ms, void **item);
/* Wakes every waiting consumer; later pushes fail. */
void cn_queue_close(struct cn_queue *q);

struct cn_queue_stats {
	const char *name;
	size_t capacity;
	size_t depth;
	size_t high_water;
	uint64_t pushed;
	uint64_t dropped;
};
void cn_queue_get_stats(struct cn_queue *q, struct cn_queue_stats *st);

/* Frees remaining items with item_free and the queue itself. No thread may still use it. */
void cn_queue_free(struct cn_queue *q);

#endif
