/* cn_metrics.h: process-wide Prometheus text exposition: counters, gauges, collectors. */
#ifndef CN_METRICS_H
#define CN_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "cn_buf.h"

enum cn_metric_type {
	CN_METRIC_COUNTER,
	CN_METRIC_GAUGE,
};

/* A label-less metric, usually a static variable; updated lock-free from any thread. */
struct cn_metric {
	const char *name;
	const char *help;
	enum cn_metric_type type;
	atomic_llong value;
};

#define CN_METRIC_INIT(n, t, h) { .name = (n), .help = (h), .type = (t) }

static inline void cn_metric_add(struct cn_metric *m, long long v)
{
	atomic_fetch_add_explicit(&m->value, v, memory_order_relaxed);
}

static inline void cn_metric_set(struct cn_metric *m, long long v)
{
	atomic_store_explicit(&m->value, v, memory_order_relaxed);
}

/* Writes whole metric families (with HELP/TYPE) for labelled or computed values. */
typedef int (*cn_metrics_collector)(struct cn_buf *out, void *arg);

/* Register before threads start; both keep pointers, so arguments must outlive the registry. */
int cn_metrics_register(struct cn_metric *m);
int cn_metrics_add_collector(cn_metrics_collector fn, void *arg);
void cn_metrics_remove_collector(cn_metrics_collector fn, void *arg);
void cn_metrics_set_build_info(const char *component, const char *version);
/* Clears registrations (at shutdown, and between unit tests). */
void cn_metrics_reset(void);

/* "# HELP name help\n# TYPE name type\n" */
int cn_metrics_family(struct cn_buf *out, const char *name, const char *type, const char *help);
/* Appends v escaped for a label value (backslash, quote, newline). */
int cn_metrics_label_value(struct cn_buf *out, const char *v);

/* Everything: process_*, canopy_build_info, canopy_log_messages_total, metrics, collectors. */
int cn_metrics_render(struct cn_buf *out);

#endif
