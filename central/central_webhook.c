/* central_webhook.c: webhook delivery: outbox rows claimed under a lease, POSTed with libcurl multi, results written back in batches. */
#include "central_webhook.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <curl/curl.h>
#include <glib.h>
#include <libpq-fe.h>

#include "central_db.h"
#include "cn_buf.h"
#include "cn_err.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_time.h"
#include "cn_version.h"
#include "cn_webhook.h"

/*
 * Two threads, neither on the loop:
 *   webhook-db  one libpq connection of its own: LISTEN canopy_webhook, claims (one
 *               statement takes up to CLAIM_MAX due rows and leases them), and result
 *               batches (one statement applies up to FLUSH_MAX results), every FLUSH_MS.
 *   webhook     libcurl multi: per-subscription queues, at most max_in_flight requests
 *               each, connections kept alive in the multi handle's cache.
 * Claimed messages go db -> http as grants (a subscription's settings and its messages)
 * under mu; finished attempts come back as results under mu. A message stays in held
 * (db thread only) from its claim until its result is written, so a later claim that
 * returns it again (its lease ran out while it was still here) is ignored. Leases of held
 * rows are renewed every third of webhook_lease; a message whose lease might run out
 * before its request could finish is given back instead of sent. Every second the db
 * thread also asks which subscriptions it holds messages for were disabled or deleted
 * meanwhile: what is still queued for them goes back unsent.
 * Messages raised by incoming events skip the claim: the events transaction stores them
 * leased to this instance and returns them (central_webhook_adopt); the db thread takes
 * them into held as if claimed.
 */

#define CLAIM_MAX 1000	    /* rows per claim statement */
#define PER_SUB_MAX 4096    /* rows of one subscription held here (also max_in_flight * 64) */
#define FLUSH_MS 20	    /* results wait at most this long before they are written */
#define FLUSH_MAX 500	    /* ... or until this many are waiting */
#define SWEEP_MS 1000	    /* claims at least this often (retries, expired leases) */
#define CLAIM_GAP_MS 5	    /* notifications arriving back to back share one claim */
#define SAMPLE_MS 10000	    /* pending / dead counts for /metrics */
#define RECONNECT_MS 2000
#define STOP_GRACE_MS 2000  /* requests in flight at shutdown get this long */
#define LEASE_MARGIN_MS 1000
#define SNIPPET_MAX 120	    /* bytes of a refusal's body kept in the log */
#define BODY_MAX (1 << 20)  /* larger answers are cut off (the status still counts) */
#define FREE_EASY_MAX 256
#define ERR_MAX 200

struct wh_sub;

struct wh_msg {
	int64_t id;
	char tenant[40], sub[40];
	char msg_id[CN_WEBHOOK_MAX_ID + 1];
	char *type;
	char *payload;
	size_t len;
	int attempt;	     /* number of this attempt, 1 first */
	int64_t from_ms;     /* queued or replayed (database clock): the delay histogram */
	int64_t claimed_mono;
	/* the attempt, filled in by the http thread */
	bool release;	     /* not tried: the lease goes back */
	int64_t at_ms;
	int64_t start_mono;
	int status;	     /* HTTP status, 0 when no answer came */
	int latency_ms;
	size_t body_len;
	size_t snippet_len;
	char snippet[SNIPPET_MAX + 1];
	char err[ERR_MAX];
	char curl_err[CURL_ERROR_SIZE];
	CURL *easy;
	struct curl_slist *hdrs;
	struct wh_sub *s;
	GList link; /* in central_webhook.flying while in flight */
};

/* db -> http about one subscription: its settings as of a claim and the messages claimed
 * for it; or word that a 410 from it has been written (later claims reflect it); or that
 * it was disabled or deleted meanwhile (what is queued here is not sent). */
enum wh_grant_kind { G_MSGS, G_UNGONE, G_DROP };

struct wh_grant {
	char sub[40];
	enum wh_grant_kind kind;
	char *url;
	struct cn_webhook_key keys[2];
	int nkeys;
	char key_err[128];
	int max_in_flight;
	GPtrArray *msgs;
};

/* http thread: one per subscription with messages here. */
struct wh_sub {
	char id[40];
	char *url;
	struct cn_webhook_key keys[2];
	int nkeys;
	char key_err[128];
	int max_in_flight;
	int in_flight;
	GQueue queue; /* struct wh_msg *, not started */
	bool runnable;
	/* Answered 410: messages for it are not sent until the db thread says the result is
	 * written (claims made before that could still return some). */
	bool gone;
};

/* db thread: how much of one subscription is held here. */
struct wh_held {
	int held;
	int cap;
};

struct central_webhook {
	struct central *c;
	const struct central_conf *conf;
	pthread_t db_thread, http_thread;
	bool db_started, http_started, stopped;
	atomic_bool stop;
	atomic_bool http_done;
	atomic_bool kicked;
	atomic_llong renewed_mono; /* every row held at this time had its lease renewed */
	int wake_fd; /* eventfd: wakes the db thread */

	pthread_mutex_t mu;
	GPtrArray *inbox;	/* struct wh_grant *: db -> http */
	GPtrArray *results;	/* struct wh_msg *: http -> db */
	int64_t results_since;	/* mono ms of the oldest result waiting */
	GPtrArray *adopted;	/* PGresult *: events transactions -> db */

	/* db thread only */
	PGconn *pg;
	GHashTable *held;	/* &msg->id -> msg */
	GHashTable *held_subs;	/* sub id -> struct wh_held */
	bool claim_more;
	bool db_down_logged;
	int64_t retry_at;

	/* http thread only (multi is also woken from elsewhere) */
	CURLM *multi;
	GHashTable *subs;	/* id -> struct wh_sub */
	GQueue runnable;	/* struct wh_sub * with queued messages and free slots */
	GPtrArray *done;	/* results of this round, pushed together */
	GQueue flying;		/* struct wh_msg * with a request in progress */
	CURL *free_easy[FREE_EASY_MAX];
	int nfree_easy;
	int in_flight;
};

/* ---- metrics --------------------------------------------------------------------------------- */

static struct cn_metric m_attempts = CN_METRIC_INIT(
	"canopy_central_webhook_attempts_total", CN_METRIC_COUNTER,
	"webhook HTTP attempts made by this instance (any outcome)");
static struct cn_metric m_no_answer = CN_METRIC_INIT(
	"canopy_central_webhook_attempt_errors_total", CN_METRIC_COUNTER,
	"webhook attempts that got no HTTP answer (timeout, connection refused, TLS, DNS)");
static struct cn_metric m_in_flight = CN_METRIC_INIT(
	"canopy_central_webhook_in_flight", CN_METRIC_GAUGE, "webhook requests in progress");
static struct cn_metric m_queue = CN_METRIC_INIT(
	"canopy_central_webhook_queue", CN_METRIC_GAUGE,
	"webhook messages this instance holds: claimed, waiting, in flight or being written back");
static struct cn_metric m_pending = CN_METRIC_INIT(
	"canopy_central_webhook_outbox_pending", CN_METRIC_GAUGE,
	"webhook messages waiting in the outbox, all tenants (sampled every 10 s)");
static struct cn_metric m_dead = CN_METRIC_INIT(
	"canopy_central_webhook_outbox_dead", CN_METRIC_GAUGE,
	"dead letters in the outbox, all tenants (sampled every 10 s)");
static struct cn_metric m_db_errors = CN_METRIC_INIT(
	"canopy_central_webhook_db_errors_total", CN_METRIC_COUNTER,
	"failed claim or result statements of the webhook engine");

enum { O_DELIVERED, O_FAILED, O_DEAD, O_DISABLED, O_N };
static const char *const outcome_names[O_N] = { "delivered", "failed", "dead", "disabled" };
static atomic_llong outcomes[O_N];

#define NBUCKETS 12
static const double bucket_s[NBUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
					   0.5,	  1,	2.5,   5,    10,  30 };

struct hist {
	const char *name, *help;
	atomic_llong buckets[NBUCKETS + 1];
	atomic_llong sum_us;
};

static struct hist h_attempt = {
	.name = "canopy_central_webhook_attempt_seconds",
	.help = "time from sending a webhook request to its answer (or failure)",
};
static struct hist h_delay = {
	.name = "canopy_central_webhook_delivery_delay_seconds",
	.help = "time from queueing (or replaying) a webhook message to its 2xx answer "
		"(database clock to this host's clock)",
};

static void hist_observe(struct hist *h, int64_t us)
{
	int i;

	if (us < 0)
		us = 0;
	for (i = 0; i < NBUCKETS && (double)us > bucket_s[i] * 1e6; i++)
		;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

static int hist_render(struct cn_buf *out, struct hist *h)
{
	long long cum = 0;
	int i, rc;

	if ((rc = cn_metrics_family(out, h->name, "histogram", h->help)) < 0)
		return rc;
	for (i = 0; i <= NBUCKETS && rc == 0; i++) {
		cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		if (i < NBUCKETS)
			rc = cn_buf_printf(out, "%s_bucket{le=\"%g\"} %lld\n", h->name, bucket_s[i], cum);
		else
			rc = cn_buf_printf(out, "%s_bucket{le=\"+Inf\"} %lld\n", h->name, cum);
	}
	if (rc == 0)
		rc = cn_buf_printf(out, "%s_sum %.6f\n%s_count %lld\n", h->name,
				   (double)atomic_load(&h->sum_us) / 1e6, h->name, cum);
	return rc;
}

static int webhook_metrics(struct cn_buf *out, void *arg)
{
	int i, rc;

	(void)arg;
	if ((rc = cn_metrics_family(out, "canopy_central_webhook_deliveries_total", "counter",
				    "webhook results written by this instance: delivered (2xx, removed "
				    "from the outbox), failed (retry scheduled), dead (moved to the "
				    "dead letters), disabled (subscriptions disabled by 410 Gone)")) < 0)
		return rc;
	for (i = 0; i < O_N && rc == 0; i++)
		rc = cn_buf_printf(out, "canopy_central_webhook_deliveries_total{outcome=\"%s\"} %lld\n",
				   outcome_names[i], atomic_load(&outcomes[i]));
	if (rc == 0)
		rc = hist_render(out, &h_attempt);
	if (rc == 0)
		rc = hist_render(out, &h_delay);
	return rc;
}

/* ---- messages, grants, results --------------------------------------------------------------- */

static void msg_free(struct wh_msg *m)
{
	if (!m)
		return;
	free(m->type);
	free(m->payload);
	free(m);
}

static void grant_free(struct wh_grant *g)
{
	if (!g)
		return;
	explicit_bzero(g->keys, sizeof(g->keys));
	free(g->url);
	if (g->msgs) {
		g_ptr_array_set_free_func(g->msgs, (GDestroyNotify)msg_free);
		g_ptr_array_free(g->msgs, TRUE);
	}
	free(g);
}

static void wake_db(struct central_webhook *w)
{
	uint64_t one = 1;

	if (write(w->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero, the thread will wake anyway */
	}
}

/* Errors go to the database as text: printable ASCII only (a receiver's body may be anything). */
static void set_err(struct wh_msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct wh_msg *m, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(m->err, sizeof(m->err), fmt, ap);
	va_end(ap);
	for (i = 0; m->err[i]; i++)
		if (m->err[i] < 0x20 || m->err[i] > 0x7e)
			m->err[i] = '?';
}

/* http thread: hands this round's results to the db thread in one go. */
static void push_results(struct central_webhook *w)
{
	bool first;

	if (w->done->len == 0)
		return;
	pthread_mutex_lock(&w->mu);
	if ((first = w->results->len == 0))
		w->results_since = cn_time_mono_ms();
	g_ptr_array_extend_and_steal(w->results, w->done); /* frees done */
	w->done = g_ptr_array_new();
	/* The db thread times the flush from the first result; a full batch goes at once. */
	if (first || w->results->len >= FLUSH_MAX)
		wake_db(w);
	pthread_mutex_unlock(&w->mu);
}

static void release(struct central_webhook *w, struct wh_msg *m)
{
	m->release = true;
	g_ptr_array_add(w->done, m);
}

/* ---- the http thread ------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct wh_msg *m = arg;
	size_t len = size * n, keep = SNIPPET_MAX - m->snippet_len;

	if (keep > len)
		keep = len;
	memcpy(m->snippet + m->snippet_len, p, keep);
	m->snippet_len += keep;
	m->snippet[m->snippet_len] = '\0';
	m->body_len += len;
	return m->body_len > BODY_MAX ? 0 : len; /* 0 ends the transfer */
}

static CURL *easy_get(struct central_webhook *w)
{
	return w->nfree_easy > 0 ? w->free_easy[--w->nfree_easy] : curl_easy_init();
}

/* Reset keeps nothing of the old request but is cheaper than a new handle. */
static void easy_put(struct central_webhook *w, CURL *e)
{
	if (w->nfree_easy < FREE_EASY_MAX) {
		curl_easy_reset(e);
		w->free_easy[w->nfree_easy++] = e;
	} else {
		curl_easy_cleanup(e);
	}
}

/* An attempt that ended before any request left (bad secret, no memory). */
static void attempt_failed(struct central_webhook *w, struct wh_msg *m)
{
	m->at_ms = cn_time_wall_ms();
	m->status = 0;
	m->latency_ms = 0;
	cn_metric_add(&m_attempts, 1);
	cn_metric_add(&m_no_answer, 1);
	g_ptr_array_add(w->done, m);
}

static int add_header(struct curl_slist **h, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int add_header(struct curl_slist **h, const char *fmt, ...)
{
	char line[CN_WEBHOOK_MAX_ID + 2 * CN_WEBHOOK_SIG_LEN + 64];
	struct curl_slist *n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!(n = curl_slist_append(*h, line)))
		return -ENOMEM;
	*h = n;
	return 0;
}

static void start_one(struct central_webhook *w, struct wh_sub *s, struct wh_msg *m)
{
	const struct central_conf *conf = w->conf;
	char sig[2][CN_WEBHOOK_SIG_LEN];
	int64_t ts = cn_time_wall_ms() / 1000;
	int64_t leased = atomic_load(&w->renewed_mono);
	CURL *e;
	int i, rc = 0;

	/* Its lease might end before the request does (the database was away, so it was not
	 * renewed): another instance could send it meanwhile. */
	if (leased < m->claimed_mono)
		leased = m->claimed_mono;
	if (cn_time_mono_ms() - leased > conf->webhook_lease - conf->webhook_timeout - LEASE_MARGIN_MS) {
		release(w, m);
		return;
	}
	if (s->nkeys == 0) {
		set_err(m, "not sent: the subscription's secret is unusable: %s", s->key_err);
		attempt_failed(w, m);
		return;
	}
	for (i = 0; i < s->nkeys && rc == 0; i++)
		rc = cn_webhook_sign(&s->keys[i], m->msg_id, ts, (const uint8_t *)m->payload, m->len,
				     sig[i], sizeof(sig[i]));
	if (rc < 0) {
		set_err(m, "not sent: cannot sign (webhook-id '%.40s'): %s", m->msg_id, cn_strerror(rc));
		attempt_failed(w, m);
		return;
	}
	m->hdrs = NULL;
	if (add_header(&m->hdrs, "Content-Type: application/json") < 0 ||
	    add_header(&m->hdrs, "webhook-id: %s", m->msg_id) < 0 ||
	    add_header(&m->hdrs, "webhook-timestamp: %lld", (long long)ts) < 0 ||
	    add_header(&m->hdrs, "webhook-signature: %s%s%s", sig[0], s->nkeys > 1 ? " " : "",
		       s->nkeys > 1 ? sig[1] : "") < 0 ||
	    add_header(&m->hdrs, "Expect:") < 0 || !(e = easy_get(w))) {
		curl_slist_free_all(m->hdrs);
		m->hdrs = NULL;
		set_err(m, "not sent: out of memory");
		attempt_failed(w, m);
		return;
	}
	m->curl_err[0] = '\0';
	m->snippet[0] = '\0';
	m->snippet_len = 0;
	m->body_len = 0;
	curl_easy_setopt(e, CURLOPT_URL, s->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)conf->webhook_timeout);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "canopy-central/" CANOPY_VERSION);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, m->hdrs);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, m->payload);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->len);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, m);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, m->curl_err);
	curl_easy_setopt(e, CURLOPT_PRIVATE, m);
	if (conf->webhook_ca[0])
		curl_easy_setopt(e, CURLOPT_CAINFO, conf->webhook_ca);
	m->easy = e;
	m->s = s;
	m->at_ms = cn_time_wall_ms();
	m->start_mono = cn_time_mono_ms();
	if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
		easy_put(w, e);
		curl_slist_free_all(m->hdrs);
		m->hdrs = NULL;
		m->easy = NULL;
		set_err(m, "not sent: libcurl refused the request");
		attempt_failed(w, m);
		return;
	}
	m->link.data = m;
	g_queue_push_tail_link(&w->flying, &m->link);
	s->in_flight++;
	w->in_flight++;
	cn_metric_add(&m_in_flight, 1);
}

static void make_runnable(struct central_webhook *w, struct wh_sub *s)
{
	if (!s->runnable && s->queue.length > 0 && s->in_flight < s->max_in_flight) {
		s->runnable = true;
		g_queue_push_tail(&w->runnable, s);
	}
}

static void start_runnable(struct central_webhook *w)
{
	struct wh_sub *s;

	while ((s = g_queue_pop_head(&w->runnable))) {
		s->runnable = false;
		while (s->in_flight < s->max_in_flight && s->queue.length > 0)
			start_one(w, s, g_queue_pop_head(&s->queue));
	}
}

static void sub_free(void *p)
{
	struct wh_sub *s = p;

	explicit_bzero(s->keys, sizeof(s->keys));
	free(s->url);
	free(s);
}

/* Takes the grants the db thread handed over; while stopping their messages go back. */
static void take_grants(struct central_webhook *w, bool stopping)
{
	GPtrArray *in;
	guint i, j;

	pthread_mutex_lock(&w->mu);
	in = w->inbox;
	w->inbox = g_ptr_array_new();
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < in->len; i++) {
		struct wh_grant *g = in->pdata[i];
		struct wh_sub *s = g_hash_table_lookup(w->subs, g->sub);

		if (g->kind != G_MSGS) {
			struct wh_msg *m;

			if (s && g->kind == G_UNGONE)
				s->gone = false;
			while (s && g->kind == G_DROP && (m = g_queue_pop_head(&s->queue)))
				release(w, m);
			grant_free(g);
			continue;
		}
		if (stopping || (s && s->gone)) {
			for (j = 0; j < g->msgs->len; j++)
				release(w, g->msgs->pdata[j]);
			g_ptr_array_set_size(g->msgs, 0);
			grant_free(g);
			continue;
		}
		if (!s) {
			if (!(s = calloc(1, sizeof(*s)))) {
				for (j = 0; j < g->msgs->len; j++)
					release(w, g->msgs->pdata[j]);
				g_ptr_array_set_size(g->msgs, 0);
				grant_free(g);
				continue;
			}
			cn_strlcpy(s->id, g->sub, sizeof(s->id));
			g_queue_init(&s->queue);
			g_hash_table_insert(w->subs, s->id, s);
		}
		/* The newest claim has the subscription's current settings. */
		free(s->url);
		s->url = g->url;
		g->url = NULL;
		memcpy(s->keys, g->keys, sizeof(s->keys));
		s->nkeys = g->nkeys;
		cn_strlcpy(s->key_err, g->key_err, sizeof(s->key_err));
		s->max_in_flight = g->max_in_flight;
		for (j = 0; j < g->msgs->len; j++)
			g_queue_push_tail(&s->queue, g->msgs->pdata[j]);
		g_ptr_array_set_size(g->msgs, 0);
		grant_free(g);
		make_runnable(w, s);
	}
	g_ptr_array_free(in, TRUE);
}

static void finish(struct central_webhook *w, CURL *e, CURLcode res)
{
	struct wh_msg *m;
	struct wh_sub *s;
	char *priv = NULL;
	long code = 0;
	int64_t now = cn_time_mono_ms();

	curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_multi_remove_handle(w->multi, e);
	m = (struct wh_msg *)priv;
	g_queue_unlink(&w->flying, &m->link);
	s = m->s;
	m->easy = NULL;
	m->latency_ms = (int)(now - m->start_mono);
	/* An answer cut off for its size still has its status. */
	if (res == CURLE_OK || (res == CURLE_WRITE_ERROR && m->body_len > BODY_MAX && code > 0)) {
		m->status = (int)code;
		if (code < 200 || code > 299)
			set_err(m, "HTTP %ld%s%s", code, m->snippet[0] ? ": " : "", m->snippet);
	} else {
		m->status = 0;
		set_err(m, "%s", m->curl_err[0] ? m->curl_err : curl_easy_strerror(res));
		cn_metric_add(&m_no_answer, 1);
	}
	easy_put(w, e);
	curl_slist_free_all(m->hdrs);
	m->hdrs = NULL;
	cn_metric_add(&m_attempts, 1);
	hist_observe(&h_attempt, (int64_t)m->latency_ms * 1000);
	if (m->status >= 200 && m->status <= 299)
		hist_observe(&h_delay, (cn_time_wall_ms() - m->from_ms) * 1000);
	s->in_flight--;
	w->in_flight--;
	cn_metric_add(&m_in_flight, -1);
	/* 410: the receiver wants nothing more; what is queued here is not sent (the database
	 * makes it dead when this result is written). */
	if (m->status == 410) {
		struct wh_msg *q;

		cn_log_warn("webhook", "subscription %s answered 410 Gone: disabling it", s->id);
		s->gone = true;
		while ((q = g_queue_pop_head(&s->queue)))
			release(w, q);
	}
	g_ptr_array_add(w->done, m);
	make_runnable(w, s);
}

static void collect(struct central_webhook *w)
{
	CURLMsg *cm;
	int left;

	while ((cm = curl_multi_info_read(w->multi, &left)))
		if (cm->msg == CURLMSG_DONE)
			finish(w, cm->easy_handle, cm->data.result);
}

/* Subscriptions with nothing here are forgotten; the next claim brings their settings. */
static void gc_subs(struct central_webhook *w)
{
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, w->subs);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct wh_sub *s = v;

		if (s->queue.length == 0 && s->in_flight == 0 && !s->runnable && !s->gone)
			g_hash_table_iter_remove(&it);
	}
}

static void release_queued(struct central_webhook *w)
{
	GHashTableIter it;
	gpointer k, v;
	struct wh_msg *m;

	g_hash_table_iter_init(&it, w->subs);
	while (g_hash_table_iter_next(&it, &k, &v))
		while ((m = g_queue_pop_head(&((struct wh_sub *)v)->queue)))
			release(w, m);
}

/* Past the grace: what is still in flight ends as a failed attempt (it may have arrived). */
static void abort_in_flight(struct central_webhook *w)
{
	GList *l;

	while ((l = g_queue_peek_head_link(&w->flying))) {
		struct wh_msg *m = l->data;

		cn_strlcpy(m->curl_err, "interrupted: central was stopping", sizeof(m->curl_err));
		finish(w, m->easy, CURLE_ABORTED_BY_CALLBACK);
	}
}

static void *http_main(void *arg)
{
	struct central_webhook *w = arg;
	int64_t stop_at = 0, next_gc = cn_time_mono_ms() + 1000;
	int running;

	pthread_setname_np(pthread_self(), "webhook");
	for (;;) {
		bool stopping = atomic_load(&w->stop);
		int64_t now = cn_time_mono_ms();

		take_grants(w, stopping);
		if (stopping && !stop_at) {
			stop_at = now + STOP_GRACE_MS;
			release_queued(w);
		}
		if (!stopping)
			start_runnable(w);
		curl_multi_perform(w->multi, &running);
		collect(w);
		if (stopping && w->in_flight > 0 && now >= stop_at)
			abort_in_flight(w);
		if (!stopping) {
			start_runnable(w);
			if (now >= next_gc) {
				gc_subs(w);
				next_gc = now + 1000;
			}
		} else {
			release_queued(w); /* 410s in the last round may have left none, but be sure */
		}
		push_results(w);
		if (stopping && w->in_flight == 0)
			break;
		curl_multi_poll(w->multi, NULL, 0, stopping ? 50 : 1000, NULL);
	}
	atomic_store(&w->http_done, true);
	wake_db(w);
	return NULL;
}

/* ---- the db thread: claims ------------------------------------------------------------------- */

static int64_t held_count(struct central_webhook *w)
{
	return (int64_t)g_hash_table_size(w->held);
}

static void check_notifies(struct central_webhook *w)
{
	PGnotify *n;

	while (w->pg && (n = PQnotifies(w->pg))) {
		w->claim_more = true;
		PQfreemem(n);
	}
}

static void db_lost(struct central_webhook *w, const char *why)
{
	int n = (int)strcspn(why, "\n"); /* libpq's messages go on over several lines */

	cn_metric_add(&m_db_errors, 1);
	if (!w->db_down_logged)
		cn_log_warn("webhook", "database connection lost (%.*s); reconnecting every %d s", n,
			    why, RECONNECT_MS / 1000);
	w->db_down_logged = true;
	PQfinish(w->pg);
	w->pg = NULL;
}

/* A statement failed: the connection may be gone (then results wait for the next one). */
static bool db_failed(struct central_webhook *w, const char *what, const char *err)
{
	if (PQstatus(w->pg) != CONNECTION_OK) {
		db_lost(w, err);
		return true;
	}
	cn_metric_add(&m_db_errors, 1);
	cn_log_error("webhook", "%s failed: %s", what, err);
	return false;
}

static void db_connect(struct central_webhook *w)
{
	char err[256];
	PGconn *pg = central_db_connect(w->conf->db, err, sizeof(err));

	/* Claims and results need not wait for the WAL flush: a crash of PostgreSQL loses at
	 * most the last fraction of a second of them, which means a message sent again (its
	 * lease or its deletion was lost), never one lost; delivery is at least once anyway. */
	if (pg && (central_db_run(pg, "SET synchronous_commit TO off", 0, NULL, err, sizeof(err)) < 0 ||
		   central_db_run(pg, "LISTEN canopy_webhook", 0, NULL, err, sizeof(err)) < 0)) {
		PQfinish(pg);
		pg = NULL;
	}
	if (!pg) {
		if (!w->db_down_logged)
			cn_log_warn("webhook", "%s; retrying every %d s", err, RECONNECT_MS / 1000);
		w->db_down_logged = true;
		return;
	}
	if (w->db_down_logged)
		cn_log_info("webhook", "database connection back");
	w->db_down_logged = false;
	w->pg = pg;
	w->claim_more = true; /* whatever was queued while we were away */
}

static int skip_list(struct central_webhook *w, struct cn_buf *b)
{
	GHashTableIter it;
	gpointer k, v;
	int rc = cn_buf_append_str(b, "{");

	g_hash_table_iter_init(&it, w->held_subs);
	while (rc == 0 && g_hash_table_iter_next(&it, &k, &v)) {
		const struct wh_held *h = v;

		if (h->held >= h->cap)
			rc = cn_buf_printf(b, "%s%s", b->len > 1 ? "," : "", (const char *)k);
	}
	return rc == 0 ? cn_buf_append_str(b, "}") : rc;
}

static struct wh_grant *grant_for(struct central_webhook *w, GHashTable *grants, PGresult *r, int i)
{
	const char *sub = PQgetvalue(r, i, 2);
	struct wh_grant *g = g_hash_table_lookup(grants, sub);

	(void)w;
	if (g)
		return g;
	if (!(g = calloc(1, sizeof(*g))) || !(g->url = strdup(PQgetvalue(r, i, 8)))) {
		free(g);
		return NULL;
	}
	g->msgs = g_ptr_array_new();
	cn_strlcpy(g->sub, sub, sizeof(g->sub));
	g->max_in_flight = (int)strtol(PQgetvalue(r, i, 11), NULL, 10);
	if (cn_webhook_key_parse(PQgetvalue(r, i, 9), &g->keys[0], g->key_err, sizeof(g->key_err)) == 0) {
		g->nkeys = 1;
		/* the secret before a rotation signs too, for its grace period */
		if (!PQgetisnull(r, i, 10) &&
		    cn_webhook_key_parse(PQgetvalue(r, i, 10), &g->keys[1], NULL, 0) == 0)
			g->nkeys = 2;
	}
	g_hash_table_insert(grants, g->sub, g);
	return g;
}

static struct wh_msg *msg_from_row(PGresult *r, int i)
{
	struct wh_msg *m = calloc(1, sizeof(*m));
	int plen = PQgetlength(r, i, 5);

	if (!m)
		return NULL;
	m->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	cn_strlcpy(m->tenant, PQgetvalue(r, i, 1), sizeof(m->tenant));
	cn_strlcpy(m->sub, PQgetvalue(r, i, 2), sizeof(m->sub));
	cn_strlcpy(m->msg_id, PQgetvalue(r, i, 3), sizeof(m->msg_id));
	m->type = strdup(PQgetvalue(r, i, 4));
	m->payload = malloc((size_t)plen + 1);
	if (!m->type || !m->payload) {
		msg_free(m);
		return NULL;
	}
	memcpy(m->payload, PQgetvalue(r, i, 5), (size_t)plen + 1);
	m->len = (size_t)plen;
	m->attempt = (int)strtol(PQgetvalue(r, i, 6), NULL, 10) + 1;
	m->from_ms = strtoll(PQgetvalue(r, i, 7), NULL, 10);
	m->claimed_mono = cn_time_mono_ms();
	return m;
}

/* Rows of a claim, or of an events transaction (adopted), become held messages and grants
 * for the http thread. Adopted rows past this instance's queue limits go back at once. */
static void take_rows(struct central_webhook *w, PGresult *r, bool adopted)
{
	int i, rows = PQntuples(r), taken = 0;
	GHashTable *grants = g_hash_table_new(g_str_hash, g_str_equal);
	GPtrArray *back = NULL;

	for (i = 0; i < rows; i++) {
		int64_t id;
		struct wh_grant *g;
		struct wh_held *h;
		struct wh_msg *m;

		if (PQgetisnull(r, i, 0))
			continue; /* an events transaction's counts */
		id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		if (g_hash_table_contains(w->held, &id))
			continue; /* still ours from before: its lease ran out here, not its send */
		if (!(g = grant_for(w, grants, r, i)) || !(m = msg_from_row(r, i)))
			continue; /* out of memory: the lease runs out and it is claimed again */
		if (!(h = g_hash_table_lookup(w->held_subs, m->sub))) {
			char *key = strdup(m->sub);

			if (!key || !(h = calloc(1, sizeof(*h)))) {
				free(key);
				msg_free(m);
				continue;
			}
			g_hash_table_insert(w->held_subs, key, h);
		}
		h->cap = g->max_in_flight * 64 < PER_SUB_MAX ? g->max_in_flight * 64 : PER_SUB_MAX;
		h->held++;
		g_hash_table_insert(w->held, &m->id, m);
		if (adopted && (h->held > h->cap || held_count(w) > w->conf->webhook_max_queue)) {
			m->release = true;
			if (!back)
				back = g_ptr_array_new();
			g_ptr_array_add(back, m);
			continue;
		}
		g_ptr_array_add(g->msgs, m);
		taken++;
	}
	cn_metric_set(&m_queue, held_count(w));
	if (g_hash_table_size(grants) > 0 || back) {
		GHashTableIter it;
		gpointer k, v;

		pthread_mutex_lock(&w->mu);
		g_hash_table_iter_init(&it, grants);
		while (g_hash_table_iter_next(&it, &k, &v)) {
			struct wh_grant *g = v;

			if (g->msgs->len > 0)
				g_ptr_array_add(w->inbox, g);
			else
				grant_free(g);
		}
		if (back) {
			if (w->results->len == 0)
				w->results_since = cn_time_mono_ms();
			g_ptr_array_extend_and_steal(w->results, back); /* frees back */
		}
		pthread_mutex_unlock(&w->mu);
		curl_multi_wakeup(w->multi);
	}
	g_hash_table_destroy(grants);
	if (taken > 0)
		cn_log_debug("webhook", "%s %d message(s)", adopted ? "took" : "claimed", taken);
}

/* Results of events transactions handed over by central_webhook_adopt. */
static void take_adopted(struct central_webhook *w)
{
	GPtrArray *in;
	guint i;

	pthread_mutex_lock(&w->mu);
	in = w->adopted;
	w->adopted = g_ptr_array_new();
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < in->len; i++) {
		take_rows(w, in->pdata[i], true);
		PQclear(in->pdata[i]);
	}
	g_ptr_array_free(in, TRUE);
}

/* One claim statement; true when it came back full (more may be due at once). */
static bool claim(struct central_webhook *w)
{
	int64_t room = w->conf->webhook_max_queue - held_count(w);
	char n[24], per[24], lease[24], err[256];
	const char *p[5] = { w->c->instance_id, n, per, lease, NULL };
	struct cn_buf skip;
	PGresult *r;
	int rows, want;

	if (room <= 0)
		return true; /* claimed again once results free some room */
	want = room < CLAIM_MAX ? (int)room : CLAIM_MAX;
	snprintf(n, sizeof(n), "%d", want);
	snprintf(per, sizeof(per), "%d", PER_SUB_MAX);
	snprintf(lease, sizeof(lease), "%lld", (long long)w->conf->webhook_lease);
	cn_buf_init(&skip, 1u << 20);
	if (skip_list(w, &skip) < 0) {
		cn_buf_free(&skip);
		return false;
	}
	p[4] = skip.data;
	if (central_db_exec(w->pg,
			    "SELECT id, tenant_id, subscription_id, msg_id, type, payload, attempts,"
			    " from_ms, url, secret, old_secret, max_in_flight"
			    " FROM webhook_claim($1, $2::int, $3::int, $4::int, $5::uuid[])",
			    5, p, &r, err, sizeof(err)) < 0) {
		cn_buf_free(&skip);
		db_failed(w, "claim", err);
		return false;
	}
	cn_buf_free(&skip);
	check_notifies(w);
	rows = PQntuples(r);
	take_rows(w, r, false);
	PQclear(r);
	return rows == want;
}

/* ---- the db thread: results ------------------------------------------------------------------ */

/* Postgres array literals, one per column of webhook_apply. */
enum {
	A_IDS, A_TENANTS, A_SUBS, A_MSGS, A_TYPES, A_TRIES, A_AT, A_STATUS, A_LAT, A_ERR, A_REL,
	A_N
};

static int arr_add(struct cn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int arr_add(struct cn_buf *b, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (b->len > 1 && cn_buf_append(b, ",", 1) < 0)
		return -ENOMEM;
	return cn_buf_append_str(b, tmp);
}

/* A quoted element: backslash and double quote escaped. */
static int arr_add_text(struct cn_buf *b, const char *s)
{
	int rc = b->len > 1 ? cn_buf_append(b, ",\"", 2) : cn_buf_append(b, "\"", 1);

	for (; rc == 0 && *s; s++) {
		if (*s == '"' || *s == '\\')
			rc = cn_buf_append(b, "\\", 1);
		if (rc == 0)
			rc = cn_buf_append(b, s, 1);
	}
	return rc == 0 ? cn_buf_append(b, "\"", 1) : rc;
}

static int build_arrays(GPtrArray *batch, struct cn_buf *a)
{
	guint i;
	int k, rc = 0;

	for (k = 0; k < A_N && rc == 0; k++)
		rc = cn_buf_append(&a[k], "{", 1);
	for (i = 0; i < batch->len && rc == 0; i++) {
		const struct wh_msg *m = batch->pdata[i];

		if (m->release) {
			rc = arr_add(&a[A_REL], "%lld", (long long)m->id);
			continue;
		}
		if ((rc = arr_add(&a[A_IDS], "%lld", (long long)m->id)) < 0 ||
		    (rc = arr_add(&a[A_TENANTS], "%s", m->tenant)) < 0 ||
		    (rc = arr_add(&a[A_SUBS], "%s", m->sub)) < 0 ||
		    (rc = arr_add_text(&a[A_MSGS], m->msg_id)) < 0 ||
		    (rc = arr_add_text(&a[A_TYPES], m->type)) < 0 ||
		    (rc = arr_add(&a[A_TRIES], "%d", m->attempt)) < 0 ||
		    (rc = arr_add(&a[A_AT], "%lld", (long long)m->at_ms)) < 0 ||
		    (rc = m->status > 0 ? arr_add(&a[A_STATUS], "%d", m->status)
					: arr_add(&a[A_STATUS], "NULL")) < 0 ||
		    (rc = arr_add(&a[A_LAT], "%d", m->latency_ms)) < 0)
			break;
		rc = arr_add_text(&a[A_ERR], m->err);
	}
	for (k = 0; k < A_N && rc == 0; k++)
		rc = cn_buf_append(&a[k], "}", 1);
	return rc;
}

static void forget(struct central_webhook *w, GPtrArray *batch)
{
	guint i;

	for (i = 0; i < batch->len; i++) {
		struct wh_msg *m = batch->pdata[i];
		struct wh_held *h = g_hash_table_lookup(w->held_subs, m->sub);

		g_hash_table_remove(w->held, &m->id);
		if (h && --h->held <= 0)
			g_hash_table_remove(w->held_subs, m->sub);
		msg_free(m);
	}
	g_ptr_array_free(batch, TRUE);
	cn_metric_set(&m_queue, held_count(w));
}

/* After 410 results are written: the http thread may take that subscription's messages
 * again (a later claim returns some only if it was enabled again). */
static void ungone(struct central_webhook *w, GPtrArray *batch)
{
	GHashTable *seen = NULL;
	guint i;

	for (i = 0; i < batch->len; i++) {
		const struct wh_msg *m = batch->pdata[i];
		struct wh_grant *g;

		if (m->release || m->status != 410)
			continue;
		if (!seen)
			seen = g_hash_table_new(g_str_hash, g_str_equal);
		if (g_hash_table_contains(seen, m->sub) || !(g = calloc(1, sizeof(*g))))
			continue;
		g_hash_table_add(seen, (gpointer)m->sub);
		cn_strlcpy(g->sub, m->sub, sizeof(g->sub));
		g->kind = G_UNGONE;
		g->msgs = g_ptr_array_new();
		pthread_mutex_lock(&w->mu);
		g_ptr_array_add(w->inbox, g);
		pthread_mutex_unlock(&w->mu);
	}
	if (seen) {
		g_hash_table_destroy(seen);
		curl_multi_wakeup(w->multi);
	}
}

/* Writes every waiting result in one statement. A lost connection keeps them for the next
 * one; a refused statement drops them (their leases run out and they are tried again). */
static void flush(struct central_webhook *w)
{
	const struct central_conf *conf = w->conf;
	struct cn_buf a[A_N];
	char bmin[24], bmax[24], win[24], err[256];
	const char *p[15];
	GPtrArray *batch;
	PGresult *r;
	int k;

	pthread_mutex_lock(&w->mu);
	batch = w->results;
	w->results = g_ptr_array_new();
	pthread_mutex_unlock(&w->mu);
	if (batch->len == 0) {
		g_ptr_array_free(batch, TRUE);
		return;
	}
	for (k = 0; k < A_N; k++)
		cn_buf_init(&a[k], 64u << 20);
	if (build_arrays(batch, a) < 0) {
		cn_log_error("webhook", "%u result(s) not written: out of memory", batch->len);
		goto out_forget;
	}
	snprintf(bmin, sizeof(bmin), "%lld", (long long)conf->webhook_backoff_min);
	snprintf(bmax, sizeof(bmax), "%lld", (long long)conf->webhook_backoff_max);
	snprintf(win, sizeof(win), "%lld", (long long)conf->webhook_retry_window);
	p[0] = w->c->instance_id;
	for (k = 0; k < A_N; k++)
		p[1 + k] = a[k].data;
	p[12] = bmin;
	p[13] = bmax;
	p[14] = win;
	if (central_db_exec(w->pg,
			    "SELECT delivered, retrying, dead, disabled, next_retry_ms FROM webhook_apply($1,"
			    " $2::bigint[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::int[],"
			    " $8::bigint[], $9::int[], $10::int[], $11::text[], $12::bigint[],"
			    " $13::bigint, $14::bigint, $15::bigint)",
			    15, p, &r, err, sizeof(err)) < 0) {
		if (db_failed(w, "writing webhook results", err)) {
			/* connection lost: put them back in front, in order */
			pthread_mutex_lock(&w->mu);
			g_ptr_array_extend_and_steal(batch, w->results);
			w->results = batch;
			w->results_since = cn_time_mono_ms();
			pthread_mutex_unlock(&w->mu);
			batch = NULL;
		}
		goto out_forget;
	}
	check_notifies(w);
	{
		int d = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
		int f = (int)strtol(PQgetvalue(r, 0, 1), NULL, 10);
		int x = (int)strtol(PQgetvalue(r, 0, 2), NULL, 10);
		int g = (int)strtol(PQgetvalue(r, 0, 3), NULL, 10);

		atomic_fetch_add(&outcomes[O_DELIVERED], d);
		atomic_fetch_add(&outcomes[O_FAILED], f);
		atomic_fetch_add(&outcomes[O_DEAD], x);
		atomic_fetch_add(&outcomes[O_DISABLED], g);
		if (x > 0)
			cn_log_info("webhook", "%d message(s) became dead letters", x);
		if (!PQgetisnull(r, 0, 4)) {
			int64_t due = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
			int64_t at = cn_time_mono_ms() + (due > 0 ? due : 0);

			if (at < w->retry_at)
				w->retry_at = at;
		}
	}
	PQclear(r);
	w->claim_more = true; /* room was freed */
	ungone(w, batch);
out_forget:
	for (k = 0; k < A_N; k++)
		cn_buf_free(&a[k]);
	if (batch)
		forget(w, batch);
}

/* Leases of everything held here are extended, so a slow receiver's queue stays ours. */
static void renew(struct central_webhook *w)
{
	int64_t t0 = cn_time_mono_ms();
	char lease[24], err[256];
	const char *p[3] = { w->c->instance_id, NULL, lease };
	GHashTableIter it;
	gpointer k, v;
	struct cn_buf ids;
	int rc;

	if (held_count(w) == 0) {
		atomic_store(&w->renewed_mono, t0);
		return;
	}
	cn_buf_init(&ids, 64u << 20);
	rc = cn_buf_append(&ids, "{", 1);
	g_hash_table_iter_init(&it, w->held);
	while (rc == 0 && g_hash_table_iter_next(&it, &k, &v))
		rc = arr_add(&ids, "%lld", (long long)*(int64_t *)k);
	if (rc == 0)
		rc = cn_buf_append(&ids, "}", 1);
	snprintf(lease, sizeof(lease), "%lld", (long long)w->conf->webhook_lease);
	p[1] = ids.data;
	if (rc == 0) {
		if (central_db_run(w->pg, "SELECT webhook_renew($1, $2::bigint[], $3::int)", 3, p, err,
				   sizeof(err)) < 0)
			db_failed(w, "renewing leases", err);
		else
			atomic_store(&w->renewed_mono, t0);
		check_notifies(w);
	}
	cn_buf_free(&ids);
}

/* Subscriptions disabled or deleted since their messages here were claimed: the http
 * thread gives back what it has not sent yet. */
static void check_stopped(struct central_webhook *w)
{
	GHashTableIter it;
	gpointer k, v;
	struct cn_buf subs;
	char err[256];
	const char *p[1];
	PGresult *r;
	int i, rc;

	if (g_hash_table_size(w->held_subs) == 0)
		return;
	cn_buf_init(&subs, 16u << 20);
	rc = cn_buf_append(&subs, "{", 1);
	g_hash_table_iter_init(&it, w->held_subs);
	while (rc == 0 && g_hash_table_iter_next(&it, &k, &v))
		rc = arr_add(&subs, "%s", (const char *)k);
	if (rc == 0)
		rc = cn_buf_append(&subs, "}", 1);
	p[0] = subs.data;
	if (rc < 0 || central_db_exec(w->pg, "SELECT s FROM webhook_stopped($1::uuid[]) s", 1, p,
				      &r, err, sizeof(err)) < 0) {
		if (rc == 0)
			db_failed(w, "checking subscriptions", err);
		cn_buf_free(&subs);
		return;
	}
	cn_buf_free(&subs);
	check_notifies(w);
	for (i = 0; i < PQntuples(r); i++) {
		struct wh_grant *g = calloc(1, sizeof(*g));

		if (!g || !(g->msgs = g_ptr_array_new())) {
			free(g);
			break;
		}
		cn_strlcpy(g->sub, PQgetvalue(r, i, 0), sizeof(g->sub));
		g->kind = G_DROP;
		pthread_mutex_lock(&w->mu);
		g_ptr_array_add(w->inbox, g);
		pthread_mutex_unlock(&w->mu);
	}
	if (PQntuples(r) > 0)
		curl_multi_wakeup(w->multi);
	PQclear(r);
}

static void sample(struct central_webhook *w)
{
	char err[256];
	PGresult *r;

	if (central_db_exec(w->pg, "SELECT pending, dead FROM webhook_counts()", 0, NULL, &r, err,
			    sizeof(err)) < 0) {
		db_failed(w, "counting the outbox", err);
		return;
	}
	cn_metric_set(&m_pending, strtoll(PQgetvalue(r, 0, 0), NULL, 10));
	cn_metric_set(&m_dead, strtoll(PQgetvalue(r, 0, 1), NULL, 10));
	PQclear(r);
	check_notifies(w);
}

/* After the http thread has gone: grants it never took are given back too. */
static void release_inbox(struct central_webhook *w)
{
	guint i, j;

	pthread_mutex_lock(&w->mu);
	for (i = 0; i < w->inbox->len; i++) {
		struct wh_grant *g = w->inbox->pdata[i];

		for (j = 0; j < g->msgs->len; j++) {
			struct wh_msg *m = g->msgs->pdata[j];

			m->release = true;
			g_ptr_array_add(w->results, m);
		}
		g_ptr_array_set_size(g->msgs, 0);
		grant_free(g);
	}
	g_ptr_array_set_size(w->inbox, 0);
	pthread_mutex_unlock(&w->mu);
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static void *db_main(void *arg)
{
	struct central_webhook *w = arg;
	int64_t next_sweep = 0, next_sample = 0, reconnect_at = 0, last_claim = 0;
	int64_t renew_every = w->conf->webhook_lease / 3, next_renew = cn_time_mono_ms() + renew_every;

	pthread_setname_np(pthread_self(), "webhook-db");
	w->retry_at = INT64_MAX;
	for (;;) {
		int64_t now = cn_time_mono_ms(), until, since;
		bool done = atomic_load(&w->http_done), stopping = atomic_load(&w->stop);
		struct pollfd fds[2];
		guint nres;

		if (!w->pg && now >= reconnect_at) {
			db_connect(w);
			if (!w->pg)
				reconnect_at = now + RECONNECT_MS;
		}
		if (!done)
			take_adopted(w);
		if (done)
			release_inbox(w);
		pthread_mutex_lock(&w->mu);
		nres = w->results->len;
		since = w->results_since;
		pthread_mutex_unlock(&w->mu);
		if (w->pg && nres > 0 && (done || nres >= FLUSH_MAX || now - since >= FLUSH_MS)) {
			flush(w);
			continue; /* more may have come meanwhile */
		}
		if (done && (nres == 0 || !w->pg))
			break;
		if (atomic_exchange(&w->kicked, false))
			w->claim_more = true;
		if (now >= next_sweep) {
			w->claim_more = true;
			next_sweep = now + SWEEP_MS;
			if (w->pg && !stopping)
				check_stopped(w);
		}
		if (now >= w->retry_at) {
			w->claim_more = true;
			w->retry_at = INT64_MAX;
		}
		if (w->pg && w->claim_more && !stopping && now - last_claim >= CLAIM_GAP_MS &&
		    held_count(w) < w->conf->webhook_max_queue) {
			w->claim_more = false;
			last_claim = now;
			if (claim(w))
				w->claim_more = true;
			continue;
		}
		if (w->pg && now >= next_renew) {
			next_renew = now + renew_every;
			renew(w);
			continue;
		}
		if (w->pg && now >= next_sample) {
			next_sample = now + SAMPLE_MS;
			sample(w);
			continue;
		}
		until = min64(min64(next_sweep, next_sample), next_renew);
		if (nres > 0)
			until = min64(until, since + FLUSH_MS);
		if (w->claim_more && held_count(w) < w->conf->webhook_max_queue)
			until = min64(until, last_claim + CLAIM_GAP_MS);
		until = min64(until, w->retry_at);
		if (!w->pg)
			until = min64(until, reconnect_at);
		fds[0] = (struct pollfd){ .fd = w->wake_fd, .events = POLLIN };
		fds[1] = (struct pollfd){ .fd = w->pg ? PQsocket(w->pg) : -1, .events = POLLIN };
		now = cn_time_mono_ms();
		if (poll(fds, 2, until > now ? (int)min64(until - now, 60000) : 0) > 0) {
			if (fds[0].revents & POLLIN) {
				uint64_t v;

				if (read(w->wake_fd, &v, sizeof(v)) < 0) {
					/* EAGAIN: someone else's wake-up was already consumed */
				}
			}
			if (w->pg && (fds[1].revents & (POLLIN | POLLERR | POLLHUP))) {
				if (!PQconsumeInput(w->pg))
					db_lost(w, PQerrorMessage(w->pg));
				else
					check_notifies(w);
			}
		}
	}
	PQfinish(w->pg);
	w->pg = NULL;
	return NULL;
}

/* ---- start and stop -------------------------------------------------------------------------- */

static int check_conf(const struct central_conf *conf)
{
	if (conf->webhook_lease < conf->webhook_timeout + 2 * LEASE_MARGIN_MS) {
		cn_log_error("webhook", "webhook_lease (%lld ms) must exceed webhook_timeout (%lld ms) "
			     "by at least 2 s, or an instance could lose a message's lease while "
			     "still sending it", (long long)conf->webhook_lease,
			     (long long)conf->webhook_timeout);
		return CN_E_CONFIG;
	}
	if (conf->webhook_backoff_min > conf->webhook_backoff_max) {
		cn_log_error("webhook", "webhook_backoff_min (%lld ms) is above webhook_backoff_max "
			     "(%lld ms)", (long long)conf->webhook_backoff_min,
			     (long long)conf->webhook_backoff_max);
		return CN_E_CONFIG;
	}
	return 0;
}

int central_webhook_start(struct central *c)
{
	struct central_webhook *w;
	int rc;

	if ((rc = check_conf(c->conf)) < 0)
		return rc;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		cn_log_error("webhook", "libcurl did not initialise");
		return -EIO;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		curl_global_cleanup();
		return -ENOMEM;
	}
	c->webhook = w;
	w->c = c;
	w->conf = c->conf;
	w->wake_fd = -1;
	pthread_mutex_init(&w->mu, NULL);
	atomic_store(&w->renewed_mono, cn_time_mono_ms());
	w->inbox = g_ptr_array_new();
	w->results = g_ptr_array_new();
	w->adopted = g_ptr_array_new();
	w->done = g_ptr_array_new();
	w->held = g_hash_table_new(g_int64_hash, g_int64_equal);
	w->held_subs = g_hash_table_new_full(g_str_hash, g_str_equal, free, free);
	w->subs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, sub_free);
	g_queue_init(&w->runnable);
	g_queue_init(&w->flying);
	if ((w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return -errno;
	if (!(w->multi = curl_multi_init()))
		return -ENOMEM;
	/* Idle keep-alive connections kept for reuse, across all receivers. */
	curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, 1024L);
	cn_metrics_register(&m_attempts);
	cn_metrics_register(&m_no_answer);
	cn_metrics_register(&m_in_flight);
	cn_metrics_register(&m_queue);
	cn_metrics_register(&m_pending);
	cn_metrics_register(&m_dead);
	cn_metrics_register(&m_db_errors);
	cn_metrics_add_collector(webhook_metrics, w);
	if (pthread_create(&w->http_thread, NULL, http_main, w) != 0)
		return -EAGAIN;
	w->http_started = true;
	if (pthread_create(&w->db_thread, NULL, db_main, w) != 0)
		return -EAGAIN;
	w->db_started = true;
	return 0;
}

void central_webhook_kick(struct central *c)
{
	struct central_webhook *w = c->webhook;

	if (!w || atomic_load(&w->stop))
		return;
	atomic_store(&w->kicked, true);
	wake_db(w);
}

const char *central_webhook_owner(struct central *c)
{
	struct central_webhook *w = c->webhook;

	return w && !atomic_load(&w->stop) ? c->instance_id : NULL;
}

int central_webhook_adopt(struct central *c, PGresult *r)
{
	struct central_webhook *w = c->webhook;
	int rc = -ESHUTDOWN;

	if (!w)
		return rc;
	pthread_mutex_lock(&w->mu);
	if (!atomic_load(&w->stop)) {
		g_ptr_array_add(w->adopted, r);
		rc = 0;
	}
	pthread_mutex_unlock(&w->mu);
	if (rc == 0)
		wake_db(w);
	return rc;
}

void central_webhook_quiesce(struct central *c)
{
	struct central_webhook *w = c->webhook;

	if (!w || w->stopped)
		return;
	w->stopped = true;
	atomic_store(&w->stop, true);
	if (w->multi)
		curl_multi_wakeup(w->multi);
	if (w->http_started)
		pthread_join(w->http_thread, NULL);
	atomic_store(&w->http_done, true);
	if (w->wake_fd >= 0)
		wake_db(w);
	if (w->db_started)
		pthread_join(w->db_thread, NULL);
}

void central_webhook_stop(struct central *c)
{
	struct central_webhook *w = c->webhook;
	guint i;
	int k;

	if (!w)
		return;
	central_webhook_quiesce(c);
	cn_metrics_remove_collector(webhook_metrics, w);
	/* Whatever is left (the database was away at the end) goes with its lease. */
	for (i = 0; i < w->inbox->len; i++)
		grant_free(w->inbox->pdata[i]);
	g_ptr_array_free(w->inbox, TRUE);
	for (i = 0; i < w->results->len; i++)
		msg_free(w->results->pdata[i]);
	g_ptr_array_free(w->results, TRUE);
	/* Left when the engine stopped first: their leases run out, another instance sends them. */
	for (i = 0; i < w->adopted->len; i++)
		PQclear(w->adopted->pdata[i]);
	g_ptr_array_free(w->adopted, TRUE);
	for (i = 0; i < w->done->len; i++)
		msg_free(w->done->pdata[i]);
	g_ptr_array_free(w->done, TRUE);
	g_hash_table_destroy(w->held);
	g_hash_table_destroy(w->held_subs);
	g_hash_table_destroy(w->subs);
	g_queue_clear(&w->runnable);
	for (k = 0; k < w->nfree_easy; k++)
		curl_easy_cleanup(w->free_easy[k]);
	if (w->multi)
		curl_multi_cleanup(w->multi);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	pthread_mutex_destroy(&w->mu);
	free(w);
	c->webhook = NULL;
	curl_global_cleanup();
}
