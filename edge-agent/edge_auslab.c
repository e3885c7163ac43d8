/* edge_auslab.c: reference-counted slabs that access units are built in and handed over from as AVPackets in place. */
#include "edge_auslab.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Big enough that few units straddle a slab's end (the part built so far is then copied
 * once), small enough that the slack and the spare cost little per camera. */
#define SLAB_SIZE (256 * 1024)
#define KEEP 16  /* earlier slabs tracked for reuse; older ones are left to their packets */
#define SPARE 1  /* idle slabs kept beyond the one picked: the rest are freed */
#define ALIGN 64 /* as av_malloc aligns packet data */

struct slab {
	atomic_int refs; /* one per packet in it, one while the auslab keeps it */
	size_t cap, used;
	_Alignas(ALIGN) uint8_t data[];
};

struct edge_auslab {
	struct slab *cur;        /* units are built at cur->used */
	struct slab *kept[KEEP]; /* earlier slabs, oldest first */
	int nkept;
};

static void slab_unref(struct slab *s)
{
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		free(s);
}

/* Only our reference left: no packet can reach it any more, and none can appear. */
static bool slab_idle(struct slab *s)
{
	return atomic_load_explicit(&s->refs, memory_order_acquire) == 1;
}

/* AVBuffer's free callback: a packet, on whatever thread, let go of its unit. */
static void slab_release(void *opaque, uint8_t *data)
{
	(void)data;
	slab_unref(opaque);
}

int edge_auslab_new(struct edge_auslab **out)
{
	return (*out = calloc(1, sizeof(**out))) ? 0 : -ENOMEM;
}

void edge_auslab_free(struct edge_auslab *a)
{
	if (!a)
		return;
	if (a->cur)
		slab_unref(a->cur);
	for (int i = 0; i < a->nkept; i++)
		slab_unref(a->kept[i]);
	free(a);
}

static void retire(struct edge_auslab *a, struct slab *s)
{
	if (a->nkept == KEEP) {
		slab_unref(a->kept[0]);
		memmove(a->kept, a->kept + 1, (KEEP - 1) * sizeof(a->kept[0]));
		a->nkept--;
	}
	a->kept[a->nkept++] = s;
}

/* An idle kept slab of at least min bytes, else a new one. A camera's packets go in
 * bursts (the segment writer lets a GOP go at once), so idle slabs beyond SPARE are freed
 * rather than kept for a peak. */
static struct slab *next_slab(struct edge_auslab *a, size_t min)
{
	struct slab *got = NULL;
	int idle = 0, j = 0;

	for (int i = 0; i < a->nkept; i++) {
		struct slab *s = a->kept[i];
		if (slab_idle(s)) {
			if (!got && s->cap >= min) {
				got = s;
				continue;
			}
			if (++idle > SPARE) {
				slab_unref(s);
				continue;
			}
		}
		a->kept[j++] = s;
	}
	a->nkept = j;
	if (got) {
		got->used = 0;
		return got;
	}
	/* Twice what a big unit needs so far: it grows by doubling, copied each time. */
	size_t cap = min > SLAB_SIZE / 2 ? 2 * min : SLAB_SIZE;
	cap = (cap + ALIGN - 1) / ALIGN * ALIGN;
	if (!(got = aligned_alloc(ALIGN, sizeof(*got) + cap)))
		return NULL;
	atomic_init(&got->refs, 1);
	got->cap = cap;
	got->used = 0;
	return got;
}

uint8_t *edge_auslab_space(void *arg, size_t min, size_t *cap)
{
	struct edge_auslab *a = arg;
	struct slab *s = a->cur;

	if (!s || s->cap - s->used < min) {
		/* The unit so far stays readable in the old slab (kept) while it is copied. */
		if (!(s = next_slab(a, min)))
			return NULL;
		if (a->cur)
			retire(a, a->cur);
		a->cur = s;
	}
	*cap = s->cap - s->used;
	return s->data + s->used;
}

int edge_auslab_wrap(struct edge_auslab *a, uint8_t *data, size_t len, AVPacket *pkt)
{
	struct slab *s = a->cur;
	size_t size = len + AV_INPUT_BUFFER_PADDING_SIZE;
	AVBufferRef *ref;

	if (!s || data != s->data + s->used || size > s->cap - s->used || len > INT_MAX)
		return -EINVAL;
	if (!(ref = av_buffer_create(data, size, slab_release, s, 0)))
		return -ENOMEM;
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	size = (size + ALIGN - 1) / ALIGN * ALIGN;
	s->used += size < s->cap - s->used ? size : s->cap - s->used;
	pkt->buf = ref;
	pkt->data = data;
	pkt->size = (int)len;
	return 0;
}
