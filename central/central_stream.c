/* central_stream.c: the live alarm stream: authenticated WebSocket clients, feed rows fanned out by tenant and grants, resume from a cursor. */
#include "central_stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>

#include "central_auth.h"
#include "central_db.h"
#include "cn_buf.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_jwt.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_time.h"
#include "cn_ws.h"

#define STREAM_PATH "/api/v1/stream"
#define MAX_IN_MSG 16384	 /* an auth message carrying an access token */
#define MAX_OUT_MSG (1u << 20)	 /* one alarm message; larger rows are skipped (logged) */
#define AUTH_TIMEOUT_MS 10000
#define RECHECK_MAX_MS 60000
#define PING_IDLE_MS 30000
#define TICK_MS 1000
#define GAP_HOLD_MS 10000	 /* how long an id skipped by the tail is re-read */
#define GAP_LIMIT 10000
#define READ_PAGE 1000
#define READ_PAGES 20		 /* per job; when full, another job follows at once */
#define PRIME_BACK 1000		 /* the first read looks this far back, for ids still in flight */
#define PUMP_HIGH (512u << 10)	 /* replay sends while less than this waits to be sent */
#define PUMP_MS 20
#define PURGE_BATCH 5000
#define PURGE_BATCHES 20
#define MAX_UUIDS 100000	 /* grants of one user, sites on a path */

/* Close codes (docs/central.md). */
#define CLOSE_BAD_MESSAGE 4400
#define CLOSE_AUTH 4401
#define CLOSE_FORBIDDEN 4403
#define CLOSE_SLOW 4008
#define CLOSE_BUSY 4503
#define CLOSE_SERVER 1011

/* One feed row, shared by every client it goes to (refcounted, loop only). */
struct feed_row {
	int refs;
	bool late;	/* read as a gap filled in, below ids already read */
	int64_t id;
	int64_t cursor; /* the instance's resume point after this row (live) */
	bool too_old;	/* replay only */
	char tenant[37];
	char camera[37];
	char (*anc)[37];
	size_t nanc;
	char type[64];
	char at[32];
	char *notify; /* JSON text, NULL: null */
	char *body;   /* JSON text */
	char *msg;    /* the live message, built on first use */
	size_t msglen;
};

enum cstate { S_AUTH, S_AUTHING, S_REPLAY, S_LIVE, S_CLOSING };

struct client {
	struct central_stream *s;
	struct cn_ws_conn *ws; /* NULL once closed */
	uint64_t gen;
	enum cstate state;
	bool counted;	 /* in m_clients */
	bool listed;	 /* in s->by_tenant */
	int checking;	 /* auth jobs out */
	uint64_t token_gen;
	int64_t opened_ms, next_check_ms, last_send_ms;
	int64_t exp_s; /* token expiry (unix seconds); 0: none known */
	char *token;
	char peer[64];
	char user_id[37], tenant_id[37];
	struct central_stream_vis vis;
	int64_t depth_s;
	bool has_cursor;
	int64_t from;	/* rows at or below are not sent unless late: the client has them */
	int64_t cursor; /* resume point promised so far */
	/* replay: rows to send, then the live rows held meanwhile */
	struct feed_row **replay;
	size_t nreplay, next;
	int64_t *replayed; /* ids sent by the replay, ascending: live copies are dropped */
	size_t nreplayed;
	int64_t replay_top;
	GQueue held;
	guint pump_id;
};

struct central_stream {
	struct central *c;
	GHashTable *by_gen;    /* gen -> client (owned) */
	GHashTable *by_tenant; /* tenant id -> GPtrArray of listed clients */
	uint64_t next_gen;
	struct central_feed_track track;
	bool reading, again, read_failed, purging;
	int64_t recheck_ms;
	guint tick_id, purge_id, listen_retry_id, listen_watch;
	PGconn *listen_pg;
	bool stopping;
};

static struct cn_metric m_clients = CN_METRIC_INIT(
	"canopy_central_stream_clients", CN_METRIC_GAUGE,
	"live stream clients authenticated on this instance");
static struct cn_metric m_sent = CN_METRIC_INIT(
	"canopy_central_stream_messages_total", CN_METRIC_COUNTER,
	"alarm messages sent to stream clients (live and replayed)");
static struct cn_metric m_replayed = CN_METRIC_INIT(
	"canopy_central_stream_replayed_total", CN_METRIC_COUNTER,
	"alarm messages sent from a replay after a cursor");
static struct cn_metric m_slow = CN_METRIC_INIT(
	"canopy_central_stream_slow_closed_total", CN_METRIC_COUNTER,
	"stream clients closed (4008) because their send queue was full");
static struct cn_metric m_auth_failed = CN_METRIC_INIT(
	"canopy_central_stream_auth_failures_total", CN_METRIC_COUNTER,
	"stream clients refused: no, bad, expired or revoked token, no events.read (4401, 4403)");
static struct cn_metric m_expired = CN_METRIC_INIT(
	"canopy_central_stream_expired_total", CN_METRIC_COUNTER,
	"stream clients closed (4401) when their token expired or their session ended");
static struct cn_metric m_resets = CN_METRIC_INIT(
	"canopy_central_stream_resets_total", CN_METRIC_COUNTER,
	"resuming clients told to reload (cursor too old, too far behind or unknown)");
static struct cn_metric m_refused = CN_METRIC_INIT(
	"canopy_central_stream_refused_total", CN_METRIC_COUNTER,
	"stream connections refused (4503): stream_max_clients reached");
static struct cn_metric m_rows = CN_METRIC_INIT(
	"canopy_central_feed_rows_read_total", CN_METRIC_COUNTER, "feed rows read by the live tail");
static struct cn_metric m_late = CN_METRIC_INIT(
	"canopy_central_feed_late_rows_total", CN_METRIC_COUNTER,
	"feed rows that committed after a higher id had been read (delivered all the same)");
static struct cn_metric m_gaps_lost = CN_METRIC_INIT(
	"canopy_central_feed_gaps_given_up_total", CN_METRIC_COUNTER,
	"feed ids skipped by the tail and not seen within the hold time: rolled back, committed "
	"too late, or at start-up holes among the newest ids");
static struct cn_metric m_purged = CN_METRIC_INIT(
	"canopy_central_feed_purged_total", CN_METRIC_COUNTER,
	"feed rows deleted by retention (feed_retention)");

/* ---- pure parts: id tracking, visibility ------------------------------------------- */

void central_feed_track_init(struct central_feed_track *t, size_t limit)
{
	memset(t, 0, sizeof(*t));
	t->max = -1;
	t->limit = limit;
}

void central_feed_track_free(struct central_feed_track *t)
{
	free(t->gaps);
	t->gaps = NULL;
	t->n = t->cap = 0;
}

void central_feed_track_start(struct central_feed_track *t, int64_t max)
{
	t->max = max;
	t->n = 0;
}

static void gaps_drop_front(struct central_feed_track *t, size_t k)
{
	memmove(t->gaps, t->gaps + k, (t->n - k) * sizeof(t->gaps[0]));
	t->n -= k;
}

bool central_feed_track_seen(struct central_feed_track *t, int64_t id, int64_t now_ms,
			     int64_t hold_ms, size_t *dropped)
{
	size_t lo = 0, hi = t->n, lost = 0;

	if (t->max < 0) {
		t->max = id;
		return true;
	}
	if (id <= t->max) {
		/* a gap filled in? binary search: gaps are ascending */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (t->gaps[mid].id < id)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == t->n || t->gaps[lo].id != id)
			return false;
		memmove(t->gaps + lo, t->gaps + lo + 1, (t->n - lo - 1) * sizeof(t->gaps[0]));
		t->n--;
		return true;
	}
	{
		int64_t skipped = id - t->max - 1, first = t->max + 1, g;

		/* More skipped ids than room: the lowest are given up (oldest first). */
		if (skipped > (int64_t)t->limit) {
			lost += (size_t)(skipped - (int64_t)t->limit);
			first = id - (int64_t)t->limit;
			skipped = (int64_t)t->limit;
		}
		if (t->n + (size_t)skipped > t->limit) {
			size_t k = t->n + (size_t)skipped - t->limit;

			lost += k;
			gaps_drop_front(t, k);
		}
		if (t->n + (size_t)skipped > t->cap) {
			size_t cap = t->cap ? t->cap : 16;
			void *p;

			while (cap < t->n + (size_t)skipped)
				cap *= 2;
			if (!(p = realloc(t->gaps, cap * sizeof(t->gaps[0])))) {
				lost += (size_t)skipped;
				skipped = 0;
			} else {
				t->gaps = p;
				t->cap = cap;
			}
		}
		for (g = first; skipped > 0 && g < id; g++) {
			t->gaps[t->n].id = g;
			t->gaps[t->n].due_ms = now_ms + hold_ms;
			t->n++;
		}
		t->max = id;
	}
	if (dropped)
		*dropped += lost;
	return true;
}

size_t central_feed_track_expire(struct central_feed_track *t, int64_t now_ms)
{
	size_t i, k = 0;

	/* Deadlines follow the order gaps were made in, not their ids: check them all. */
	for (i = 0; i < t->n; i++) {
		if (t->gaps[i].due_ms > now_ms)
			t->gaps[k++] = t->gaps[i];
	}
	i = t->n - k;
	t->n = k;
	return i;
}

int64_t central_feed_track_low(const struct central_feed_track *t)
{
	if (t->max < 0)
		return 0;
	return t->n ? t->gaps[0].id - 1 : t->max;
}

static bool is_uuid_text(const char *p, size_t n)
{
	size_t i;

	if (n != 36)
		return false;
	for (i = 0; i < 36; i++) {
		char ch = p[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (ch != '-')
				return false;
		} else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
			     (ch >= 'A' && ch <= 'F'))) {
			return false;
		}
	}
	return true;
}

int central_stream_parse_uuids(const char *text, size_t max, char (**out)[37], size_t *n)
{
	size_t len = text ? strlen(text) : 0, count = 0, i;
	char (*v)[37];
	const char *p, *end;

	*out = NULL;
	*n = 0;
	if (len < 2 || text[0] != '{' || text[len - 1] != '}')
		return CN_E_MALFORMED;
	if (len == 2)
		return 0;
	for (i = 1; i < len - 1; i++)
		count += text[i] == ',';
	count++;
	if (count > max)
		return CN_E_TOO_BIG;
	if (!(v = calloc(count, sizeof(*v))))
		return -ENOMEM;
	p = text + 1;
	end = text + len - 1;
	for (i = 0; i < count; i++) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma ? comma : end;

		if (!is_uuid_text(p, (size_t)(stop - p))) {
			free(v);
			return CN_E_MALFORMED;
		}
		memcpy(v[i], p, 36);
		v[i][36] = '\0';
		p = stop + 1;
	}
	*out = v;
	*n = count;
	return 0;
}

bool central_stream_visible(const struct central_stream_vis *v, const char (*anc)[37],
			    size_t nanc, const char *camera)
{
	size_t i, j;

	if (v->all)
		return true;
	for (i = 0; i < nanc; i++)
		for (j = 0; j < v->nsites; j++)
			if (strcmp(anc[i], v->sites[j]) == 0)
				return true;
	if (camera && camera[0])
		for (j = 0; j < v->ncameras; j++)
			if (strcmp(camera, v->cameras[j]) == 0)
				return true;
	return false;
}

void central_stream_vis_free(struct central_stream_vis *v)
{
	free(v->sites);
	free(v->cameras);
	memset(v, 0, sizeof(*v));
}

/* ---- feed rows ---------------------------------------------------------------------- */

static void row_unref(struct feed_row *r)
{
	if (!r || --r->refs > 0)
		return;
	free(r->anc);
	free(r->notify);
	free(r->body);
	free(r->msg);
	free(r);
}

static bool is_type_text(const char *t)
{
	size_t i, n = strlen(t);

	if (n == 0 || n > 63)
		return false;
	for (i = 0; i < n; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '.' ||
		      t[i] == '_' || t[i] == '-'))
			return false;
	return true;
}

/* Columns: id, tenant_id, at, type, ancestors, camera_id, notify, body[, too_old]. NULL
 * (logged) for a row that cannot be sent as is. */
static struct feed_row *row_from(const PGresult *r, int i)
{
	struct feed_row *f = calloc(1, sizeof(*f));
	int64_t id;

	if (!f)
		return NULL;
	f->refs = 1;
	id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	f->id = id;
	cn_strlcpy(f->tenant, PQgetvalue(r, i, 1), sizeof(f->tenant));
	cn_strlcpy(f->at, PQgetvalue(r, i, 2), sizeof(f->at));
	if (cn_strlcpy(f->type, PQgetvalue(r, i, 3), sizeof(f->type)) < 0 || !is_type_text(f->type) ||
	    central_stream_parse_uuids(PQgetvalue(r, i, 4), MAX_UUIDS, &f->anc, &f->nanc) < 0) {
		cn_log_warn("stream", "feed row %lld skipped: bad type or ancestors", (long long)id);
		row_unref(f);
		return NULL;
	}
	if (!PQgetisnull(r, i, 5))
		cn_strlcpy(f->camera, PQgetvalue(r, i, 5), sizeof(f->camera));
	if (!PQgetisnull(r, i, 6) && !(f->notify = strdup(PQgetvalue(r, i, 6)))) {
		row_unref(f);
		return NULL;
	}
	if (!(f->body = strdup(PQgetvalue(r, i, 7)))) {
		row_unref(f);
		return NULL;
	}
	if (PQnfields(r) > 8)
		f->too_old = strcmp(PQgetvalue(r, i, 8), "t") == 0;
	return f;
}

static int row_message(const struct feed_row *f, int64_t cursor, struct cn_buf *out)
{
	/* type and at are checked plain text; body and notify are jsonb as text. */
	return cn_buf_printf(out,
			     "{\"type\":\"%s\",\"id\":%lld,\"cursor\":%lld,\"at\":\"%s\","
			     "\"alarm\":%s,\"notify\":%s}",
			     f->type, (long long)f->id, (long long)cursor, f->at, f->body,
			     f->notify ? f->notify : "null");
}

static int row_live_message(struct feed_row *f)
{
	struct cn_buf b;
	int rc;

	if (f->msg)
		return 0;
	cn_buf_init(&b, MAX_OUT_MSG);
	if ((rc = row_message(f, f->cursor, &b)) < 0) {
		cn_buf_free(&b);
		return rc;
	}
	f->msg = cn_buf_take(&b, &f->msglen);
	return 0;
}

struct rows {
	struct feed_row **v;
	size_t n, cap;
};

static int rows_add(struct rows *rs, struct feed_row *f)
{
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		void *p = realloc(rs->v, cap * sizeof(*rs->v));

		if (!p)
			return -ENOMEM;
		rs->v = p;
		rs->cap = cap;
	}
	rs->v[rs->n++] = f;
	return 0;
}

static void rows_free(struct rows *rs)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		row_unref(rs->v[i]);
	free(rs->v);
	memset(rs, 0, sizeof(*rs));
}

static int rows_from_result(const PGresult *r, struct rows *rs)
{
	int i;

	for (i = 0; i < PQntuples(r); i++) {
		struct feed_row *f = row_from(r, i);

		if (f && rows_add(rs, f) < 0) {
			row_unref(f);
			return -ENOMEM;
		}
	}
	return 0;
}

static int row_cmp(const void *a, const void *b)
{
	const struct feed_row *x = *(struct feed_row *const *)a, *y = *(struct feed_row *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* ---- clients: listing, sending, closing -------------------------------------------- */

static void client_list(struct client *k)
{
	GPtrArray *a = g_hash_table_lookup(k->s->by_tenant, k->tenant_id);

	if (k->listed)
		return;
	if (!a) {
		a = g_ptr_array_new();
		g_hash_table_insert(k->s->by_tenant, g_strdup(k->tenant_id), a);
	}
	g_ptr_array_add(a, k);
	k->listed = true;
}

static void client_unlist(struct client *k)
{
	GPtrArray *a;

	if (k->counted) {
		cn_metric_add(&m_clients, -1);
		k->counted = false;
	}
	if (!k->listed)
		return;
	k->listed = false;
	if ((a = g_hash_table_lookup(k->s->by_tenant, k->tenant_id))) {
		g_ptr_array_remove_fast(a, k);
		if (a->len == 0)
			g_hash_table_remove(k->s->by_tenant, k->tenant_id);
	}
}

/* What is only needed while replaying. */
static void client_drop_replay(struct client *k)
{
	size_t i;
	struct feed_row *f;

	if (k->pump_id)
		g_source_remove(k->pump_id);
	k->pump_id = 0;
	for (i = k->next; i < k->nreplay; i++)
		row_unref(k->replay[i]);
	free(k->replay);
	k->replay = NULL;
	k->nreplay = k->next = 0;
	while ((f = g_queue_pop_head(&k->held)))
		row_unref(f);
}

static void client_free(gpointer p)
{
	struct client *k = p;

	client_drop_replay(k);
	free(k->replayed);
	central_stream_vis_free(&k->vis);
	free(k->token);
	free(k);
}

static void client_close(struct client *k, int code, const char *reason)
{
	if (!k->ws || k->state == S_CLOSING)
		return;
	k->state = S_CLOSING;
	client_unlist(k);
	client_drop_replay(k);
	cn_log_info("stream", "closing %s%s%s (%s): %d %s", k->peer, k->user_id[0] ? " user " : "",
		    k->user_id, k->tenant_id[0] ? k->tenant_id : "unauthenticated", code, reason);
	cn_ws_close_status(k->ws, code, reason);
}

static void refuse(struct client *k, int code, const char *why)
{
	cn_metric_add(&m_auth_failed, 1);
	client_close(k, code, why);
}

static bool client_send(struct client *k, const char *data, size_t len)
{
	int rc;

	if (!k->ws || k->state == S_CLOSING)
		return false;
	rc = cn_ws_send(k->ws, data, len);
	if (rc == -ENOBUFS) {
		cn_metric_add(&m_slow, 1);
		cn_log_warn("stream", "%s (user %s) too slow: send queue full", k->peer, k->user_id);
		client_close(k, CLOSE_SLOW, "too slow; resume from your cursor");
		return false;
	}
	if (rc < 0)
		return false;
	k->last_send_ms = cn_time_mono_ms();
	return true;
}

static void client_send_text(struct client *k, const char *text)
{
	client_send(k, text, strlen(text));
}

static struct client *client_of(struct central_stream *s, uint64_t gen)
{
	return s->stopping ? NULL : g_hash_table_lookup(s->by_gen, &gen);
}

static int64_t stream_low(const struct central_stream *s)
{
	return central_feed_track_low(&s->track);
}

static bool replayed_has(const struct client *k, int64_t id)
{
	size_t lo = 0, hi = k->nreplayed;

	if (!k->replayed || id > k->replay_top)
		return false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->replayed[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < k->nreplayed && k->replayed[lo] == id;
}

/* Should live row f go to k at all? */
static bool client_wants(const struct client *k, const struct feed_row *f)
{
	if (k->state != S_REPLAY && k->state != S_LIVE)
		return false;
	if (f->id <= k->from && !f->late)
		return false;
	if (replayed_has(k, f->id))
		return false;
	return central_stream_visible(&k->vis, (const char(*)[37])f->anc, f->nanc, f->camera);
}

static void send_live(struct client *k, struct feed_row *f)
{
	if (row_live_message(f) < 0) {
		cn_log_warn("stream", "feed row %lld too large to send; skipped", (long long)f->id);
		return;
	}
	if (client_send(k, f->msg, f->msglen)) {
		cn_metric_add(&m_sent, 1);
		if (f->cursor > k->cursor)
			k->cursor = f->cursor;
	}
}

static void send_ready(struct client *k, const char *type)
{
	char msg[96];
	int64_t low = stream_low(k->s);

	if (low > k->cursor)
		k->cursor = low;
	snprintf(msg, sizeof(msg), "{\"type\":\"%s\",\"cursor\":%lld}", type, (long long)k->cursor);
	client_send_text(k, msg);
}

/* ---- replay: rows after the client's cursor, then the live rows held meanwhile ------ */

static gboolean pump_cb(gpointer arg);

static void pump(struct client *k)
{
	int64_t bound = stream_low(k->s);
	struct cn_buf b;
	struct feed_row *f;
	GList *l;

	/* A replayed message's cursor must not pass an id the client has yet to get: one the
	 * tail has not settled (bound), or a live row held for after the replay that the
	 * replay did not carry (it committed after the replay's snapshot). */
	for (l = k->held.head; l; l = l->next) {
		f = l->data;
		if (f->id <= bound && client_wants(k, f))
			bound = f->id - 1;
	}
	cn_buf_init(&b, MAX_OUT_MSG);
	while (k->state == S_REPLAY && k->next < k->nreplay && cn_ws_queued(k->ws) < PUMP_HIGH) {
		int64_t cur;

		f = k->replay[k->next];
		k->replay[k->next++] = NULL;
		cur = f->id < bound ? f->id : bound;
		if (cur < k->cursor)
			cur = k->cursor;
		cn_buf_reset(&b);
		if (row_message(f, cur, &b) == 0 && client_send(k, b.data, b.len)) {
			cn_metric_add(&m_sent, 1);
			cn_metric_add(&m_replayed, 1);
			k->cursor = cur;
		}
		row_unref(f);
	}
	cn_buf_free(&b);
	while (k->state == S_REPLAY && k->next == k->nreplay && cn_ws_queued(k->ws) < PUMP_HIGH &&
	       (f = g_queue_pop_head(&k->held))) {
		if (client_wants(k, f))
			send_live(k, f);
		row_unref(f);
	}
	if (k->state != S_REPLAY)
		return;
	if (k->next < k->nreplay || !g_queue_is_empty(&k->held)) {
		if (!k->pump_id)
			k->pump_id = g_timeout_add(PUMP_MS, pump_cb, k);
		return;
	}
	free(k->replay);
	k->replay = NULL;
	k->nreplay = k->next = 0;
	k->state = S_LIVE;
	send_ready(k, "ready");
}

static gboolean pump_cb(gpointer arg)
{
	struct client *k = arg;

	k->pump_id = 0;
	pump(k);
	return G_SOURCE_REMOVE;
}

struct rjob {
	struct central_job job;
	struct central_stream *s;
	uint64_t gen;
	char user[37], tenant[37];
	int64_t after, depth_s, window_s, lim;
	struct rows rows;
	char reset[64]; /* why the client must reload; empty: replay */
};

static int run_replay(PGconn *pg, struct central_job *job)
{
	struct rjob *j = (struct rjob *)job;
	char after[24], depth[24], window[24], lim[24];
	const char *p[6] = { j->user, j->tenant, after, depth, window, lim };
	PGresult *r;
	size_t i;
	int rc;

	if ((rc = central_db_exec(pg, "SELECT last_id, purged_through FROM canopy_feed_bounds()", 0,
				  NULL, &r, job->err, sizeof(job->err))) < 0)
		return rc;
	if (j->after > strtoll(PQgetvalue(r, 0, 0), NULL, 10))
		cn_strlcpy(j->reset, "cursor unknown", sizeof(j->reset));
	else if (j->after < strtoll(PQgetvalue(r, 0, 1), NULL, 10))
		cn_strlcpy(j->reset, "cursor too old", sizeof(j->reset));
	PQclear(r);
	if (j->reset[0])
		return 0;
	snprintf(after, sizeof(after), "%lld", (long long)j->after);
	snprintf(depth, sizeof(depth), "%lld", (long long)j->depth_s);
	snprintf(window, sizeof(window), "%lld", (long long)j->window_s);
	snprintf(lim, sizeof(lim), "%lld", (long long)j->lim + 1);
	if ((rc = central_db_exec(pg,
				  "SELECT * FROM canopy_feed_replay($1, $2, $3::bigint, $4::bigint,"
				  " $5::bigint, $6::int)",
				  6, p, &r, job->err, sizeof(job->err))) < 0)
		return rc;
	if (PQntuples(r) > j->lim) {
		cn_strlcpy(j->reset, "cursor too far behind", sizeof(j->reset));
		PQclear(r);
		return 0;
	}
	rc = rows_from_result(r, &j->rows);
	PQclear(r);
	for (i = 0; rc == 0 && i < j->rows.n; i++)
		if (j->rows.v[i]->too_old)
			cn_strlcpy(j->reset, "cursor too old", sizeof(j->reset));
	return rc;
}

static void done_replay(struct central_job *job)
{
	struct rjob *j = (struct rjob *)job;
	struct client *k = client_of(j->s, j->gen);
	size_t i;

	if (!k || k->state != S_REPLAY) {
		rows_free(&j->rows);
		free(j);
		return;
	}
	if (job->rc < 0) {
		cn_log_warn("stream", "replay for %s failed: %s", k->user_id, job->err);
		client_close(k, CLOSE_SERVER, "database unavailable; reconnect with your cursor");
		rows_free(&j->rows);
		free(j);
		return;
	}
	if (j->reset[0]) {
		char msg[128];

		/* The client reloads through the REST API and carries on live from here. */
		cn_metric_add(&m_resets, 1);
		snprintf(msg, sizeof(msg), "{\"type\":\"reset\",\"reason\":\"%s\"}", j->reset);
		client_send_text(k, msg);
		k->from = k->s->track.max;
		k->cursor = 0; /* ready says where it stands */
		rows_free(&j->rows);
	} else {
		if (j->rows.n && !(k->replayed = calloc(j->rows.n, sizeof(*k->replayed)))) {
			client_close(k, CLOSE_SERVER, "out of memory");
			rows_free(&j->rows);
			free(j);
			return;
		}
		for (i = 0; i < j->rows.n; i++)
			k->replayed[i] = j->rows.v[i]->id;
		k->nreplayed = j->rows.n;
		k->replay_top = j->rows.n ? j->rows.v[j->rows.n - 1]->id : 0;
		k->replay = j->rows.v; /* handed over */
		k->nreplay = j->rows.n;
		k->next = 0;
	}
	free(j);
	pump(k);
}

static void start_replay(struct client *k)
{
	struct rjob *j = calloc(1, sizeof(*j));

	if (!j) {
		client_close(k, CLOSE_SERVER, "out of memory");
		return;
	}
	j->job.run = run_replay;
	j->job.done = done_replay;
	j->s = k->s;
	j->gen = k->gen;
	cn_strlcpy(j->user, k->user_id, sizeof(j->user));
	cn_strlcpy(j->tenant, k->tenant_id, sizeof(j->tenant));
	j->after = k->from;
	j->depth_s = k->depth_s;
	j->window_s = k->s->c->conf->stream_replay_age / 1000;
	j->lim = k->s->c->conf->stream_replay_max;
	if (central_db_submit(k->s->c->db, &j->job) < 0) {
		free(j);
		client_close(k, CLOSE_BUSY, "server busy; reconnect with your cursor");
	}
}

/* ---- authentication: first, on re-auth messages, and periodically ------------------ */

struct ajob {
	struct central_job job;
	struct central_stream *s;
	uint64_t gen;
	uint64_t token_gen; /* the client's token this job checks */
	bool first, reauth;
	char *token;
	/* results */
	int close; /* 0: accepted; else the close code, why says why */
	char why[120];
	struct api_auth auth;
	int64_t exp_s;
	struct central_stream_vis vis;
	int64_t depth_s;
};

static void ajob_free(struct ajob *j)
{
	free(j->token);
	central_stream_vis_free(&j->vis);
	free(j);
}

static int why_from_problem(struct api_call *call, char *why, size_t cap)
{
	cJSON *o = NULL;
	const char *d;

	snprintf(why, cap, "unauthorized");
	if (call->resp.body.len && cn_json_parse(call->resp.body.data, call->resp.body.len,
						 call->resp.body.len, 4, &o) == 0 &&
	    (d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "detail"))))
		snprintf(why, cap, "%.110s", d);
	cJSON_Delete(o);
	return 0;
}

static int run_auth(PGconn *pg, struct central_job *job)
{
	struct ajob *j = (struct ajob *)job;
	struct central *c = j->s->c;
	struct api_call *call = calloc(1, sizeof(*call));
	char *authz = malloc(CENTRAL_AUTHZ_MAX);
	const char *p[1];
	PGresult *r;
	int rc = 0;

	if (!call || !authz) {
		rc = -ENOMEM;
		goto out;
	}
	call->c = c;
	cn_http_resp_init(&call->resp);
	if ((size_t)snprintf(authz, CENTRAL_AUTHZ_MAX, "Bearer %s", j->token) >= CENTRAL_AUTHZ_MAX) {
		j->close = CLOSE_AUTH;
		snprintf(j->why, sizeof(j->why), "token too long");
		goto out_resp;
	}
	if ((rc = central_auth_check(pg, c, authz, call, &j->auth)) < 0)
		goto out_resp;
	if (rc == 1) {
		rc = 0;
		j->close = CLOSE_AUTH;
		why_from_problem(call, j->why, sizeof(j->why));
		goto out_resp;
	}
	if (j->auth.token_id[0] && !central_auth_scope_has(&j->auth, "events.read")) {
		j->close = CLOSE_FORBIDDEN;
		snprintf(j->why, sizeof(j->why), "this API token's scopes do not include 'events.read'");
		goto out_resp;
	}
	if (j->auth.token_id[0]) {
		p[0] = j->auth.token_id;
		if ((rc = central_db_exec(pg,
					  "SELECT extract(epoch FROM expires_at)::bigint FROM api_tokens"
					  " WHERE id = $1",
					  1, p, &r, job->err, sizeof(job->err))) < 0)
			goto out_resp;
		if (PQntuples(r) == 1)
			j->exp_s = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
	} else {
		struct cn_jwt_claims cl;
		char err[128];

		/* Checked just now by central_auth_check; read again for its expiry. */
		if (cn_jwt_verify(j->token, strlen(j->token), &c->sign_key, 1,
				  cn_time_wall_ms() / 1000, 5, &cl, NULL, err, sizeof(err)) == 0)
			j->exp_s = cl.exp;
	}
	p[0] = j->auth.user_id;
	if ((rc = central_db_exec(pg,
				  "SELECT tenant_id, all_sites, site_ids, camera_ids, depth_s"
				  " FROM canopy_stream_visibility($1)",
				  1, p, &r, job->err, sizeof(job->err))) < 0)
		goto out_resp;
	if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), j->auth.tenant_id) != 0) {
		j->close = CLOSE_AUTH;
		snprintf(j->why, sizeof(j->why), "user unknown or disabled");
	} else if ((rc = central_stream_parse_uuids(PQgetvalue(r, 0, 2), MAX_UUIDS, &j->vis.sites,
						    &j->vis.nsites)) < 0 ||
		   (rc = central_stream_parse_uuids(PQgetvalue(r, 0, 3), MAX_UUIDS,
						    &j->vis.cameras, &j->vis.ncameras)) < 0) {
		snprintf(job->err, sizeof(job->err), "visibility of %s: unexpected arrays",
			 j->auth.user_id);
	} else {
		j->vis.all = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
		j->depth_s = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
		if (!j->vis.all && !j->vis.nsites && !j->vis.ncameras) {
			j->close = CLOSE_FORBIDDEN;
			snprintf(j->why, sizeof(j->why), "permission 'events.read' is granted nowhere");
		}
	}
	PQclear(r);
out_resp:
	cn_buf_free(&call->resp.body);
out:
	free(call);
	free(authz);
	return rc;
}

static void done_auth(struct central_job *job)
{
	struct ajob *j = (struct ajob *)job;
	struct client *k = client_of(j->s, j->gen);
	struct central_stream *s = j->s;
	char msg[160];

	if (!k || k->state == S_CLOSING) {
		ajob_free(j);
		return;
	}
	k->checking--;
	if (!j->first && j->token_gen != k->token_gen) {
		ajob_free(j); /* a check of a token the client has since replaced */
		return;
	}
	if (job->rc < 0) {
		if (job->rc != -ECANCELED)
			cn_log_warn("stream", "authentication of %s failed: %s", k->peer,
				    job->err[0] ? job->err : cn_strerror(job->rc));
		if (j->first || j->reauth)
			client_close(k, CLOSE_SERVER, "database unavailable; reconnect shortly");
		else
			k->next_check_ms = cn_time_mono_ms() + 5000; /* a periodic check: retry */
		ajob_free(j);
		return;
	}
	if (j->close) {
		if (j->first || j->reauth) {
			refuse(k, j->close, j->why);
		} else {
			cn_metric_add(&m_expired, 1);
			client_close(k, j->close, j->why);
		}
		ajob_free(j);
		return;
	}
	if (!j->first && (strcmp(j->auth.user_id, k->user_id) != 0 ||
			  strcmp(j->auth.tenant_id, k->tenant_id) != 0)) {
		refuse(k, CLOSE_AUTH, "token is for another user");
		ajob_free(j);
		return;
	}
	central_stream_vis_free(&k->vis);
	k->vis = j->vis;
	memset(&j->vis, 0, sizeof(j->vis));
	k->depth_s = j->depth_s;
	k->exp_s = j->exp_s;
	k->next_check_ms = cn_time_mono_ms() + s->recheck_ms;
	if (j->reauth) {
		free(k->token);
		k->token = j->token;
		j->token = NULL;
	}
	if (j->first || j->reauth) {
		char at[40] = "";

		if (k->exp_s)
			cn_time_format_rfc3339(k->exp_s * 1000, at, sizeof(at));
		snprintf(msg, sizeof(msg), "{\"type\":\"auth.ok\",\"user_id\":\"%s\",\"expires_at\":%s%s%s}",
			 j->auth.user_id, at[0] ? "\"" : "", at[0] ? at : "null", at[0] ? "\"" : "");
		client_send_text(k, msg);
	}
	if (!j->first) {
		ajob_free(j);
		return;
	}
	cn_strlcpy(k->user_id, j->auth.user_id, sizeof(k->user_id));
	cn_strlcpy(k->tenant_id, j->auth.tenant_id, sizeof(k->tenant_id));
	k->counted = true;
	cn_metric_add(&m_clients, 1);
	client_list(k);
	cn_log_info("stream", "%s authenticated as %s (%s)%s", k->peer, j->auth.username,
		    j->auth.token_id[0] ? "API token" : "session",
		    k->has_cursor ? ", resuming" : "");
	ajob_free(j);
	if (k->has_cursor) {
		k->cursor = k->from;
		k->state = S_REPLAY;
		start_replay(k);
	} else {
		/* Live from here: what the tail read before is not this client's. */
		k->from = s->track.max;
		k->cursor = 0; /* ready says where it stands */
		k->state = S_LIVE;
		send_ready(k, "ready");
	}
}

static void submit_auth(struct client *k, const char *token, bool first, bool reauth)
{
	struct ajob *j = calloc(1, sizeof(*j));

	if (!j || !(j->token = strdup(token))) {
		free(j);
		client_close(k, CLOSE_SERVER, "out of memory");
		return;
	}
	j->job.run = run_auth;
	j->job.done = done_auth;
	j->s = k->s;
	j->gen = k->gen;
	j->first = first;
	j->reauth = reauth;
	if (reauth)
		k->token_gen++;
	j->token_gen = k->token_gen;
	if (central_db_submit(k->s->c->db, &j->job) < 0) {
		ajob_free(j);
		if (first || reauth)
			client_close(k, CLOSE_BUSY, "server busy; reconnect shortly");
		else
			k->next_check_ms = cn_time_mono_ms() + 5000;
		return;
	}
	k->checking++;
}

/* ---- WebSocket callbacks ------------------------------------------------------------- */

static void on_open(struct cn_ws_conn *ws, void *arg)
{
	struct central_stream *s = arg;
	struct client *k;

	if (s->stopping) {
		cn_ws_close_status(ws, 1001, "shutting down");
		return;
	}
	if (g_hash_table_size(s->by_gen) >= (guint)s->c->conf->stream_max_clients) {
		cn_metric_add(&m_refused, 1);
		cn_ws_close_status(ws, CLOSE_BUSY, "too many stream clients here; retry later");
		return;
	}
	if (!(k = calloc(1, sizeof(*k)))) {
		cn_ws_close(ws);
		return;
	}
	k->s = s;
	k->ws = ws;
	k->gen = ++s->next_gen;
	k->state = S_AUTH;
	k->opened_ms = k->last_send_ms = cn_time_mono_ms();
	g_queue_init(&k->held);
	cn_strlcpy(k->peer, cn_ws_peer(ws), sizeof(k->peer));
	cn_ws_set_user(ws, k);
	g_hash_table_insert(s->by_gen, &k->gen, k);
}

static void handle_auth(struct client *k, const cJSON *o)
{
	const char *token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "token"));
	const cJSON *cur = cJSON_GetObjectItemCaseSensitive(o, "cursor");
	int64_t v = 0;

	if (!token || !token[0]) {
		refuse(k, CLOSE_AUTH, "auth needs a token");
		return;
	}
	if (k->state == S_AUTH) {
		if (cur && !cJSON_IsNull(cur)) {
			if (cn_json_get_i64(o, "cursor", 0, CN_JSON_MAX_SAFE_INT, &v) < 0) {
				client_close(k, CLOSE_BAD_MESSAGE,
					     "cursor must be a non-negative integer");
				return;
			}
			k->has_cursor = true;
			k->from = v;
		}
		free(k->token);
		if (!(k->token = strdup(token))) {
			client_close(k, CLOSE_SERVER, "out of memory");
			return;
		}
		k->state = S_AUTHING;
		submit_auth(k, token, true, false);
	} else if (k->state == S_REPLAY || k->state == S_LIVE) {
		/* A fresh token (after a refresh) keeps the stream open past the old one's expiry. */
		submit_auth(k, token, false, true);
	}
	/* S_AUTHING: one at a time; the first answer decides */
}

static void on_message(struct cn_ws_conn *ws, const char *data, size_t len, void *arg)
{
	struct client *k = cn_ws_user(ws);
	const char *type;
	cJSON *o = NULL;

	(void)arg;
	if (!k || k->state == S_CLOSING)
		return;
	if (cn_json_parse(data, len, MAX_IN_MSG, 4, &o) < 0 || !cJSON_IsObject(o)) {
		cJSON_Delete(o);
		if (k->state == S_AUTH)
			refuse(k, CLOSE_AUTH, "the first message must be {\"type\":\"auth\",\"token\":...}");
		else
			client_close(k, CLOSE_BAD_MESSAGE, "messages must be JSON objects");
		return;
	}
	type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "type"));
	if (type && strcmp(type, "auth") == 0)
		handle_auth(k, o);
	else if (k->state == S_AUTH)
		refuse(k, CLOSE_AUTH, "the first message must be {\"type\":\"auth\",\"token\":...}");
	/* Anything else (pong...) is ignored, so newer clients work with older servers. */
	cJSON_Delete(o);
}

static void on_close(struct cn_ws_conn *ws, void *arg)
{
	struct client *k = cn_ws_user(ws);

	(void)arg;
	if (!k)
		return;
	client_unlist(k);
	k->ws = NULL;
	g_hash_table_remove(k->s->by_gen, &k->gen); /* frees k */
}

static const struct cn_ws_ops stream_ops = {
	.on_open = on_open,
	.on_message = on_message,
	.on_close = on_close,
};

/* ---- the live tail: read after the highest id, re-read gaps, fan out ---------------- */

struct fjob {
	struct central_job job;
	struct central_stream *s;
	int64_t after; /* -1: find where to start */
	int64_t start; /* set when after was -1 */
	char *gaps;    /* "{1,2}" or NULL */
	struct rows rows;
	bool more;
};

static int run_read(PGconn *pg, struct central_job *job)
{
	struct fjob *j = (struct fjob *)job;
	char after[24], lim[24];
	const char *p[2] = { after, lim };
	PGresult *r;
	int rc, page;

	j->start = -1;
	if (j->after < 0) {
		if ((rc = central_db_exec(pg, "SELECT coalesce(max(id), 0) FROM feed", 0, NULL, &r,
					  job->err, sizeof(job->err))) < 0)
			return rc;
		j->after = strtoll(PQgetvalue(r, 0, 0), NULL, 10) - PRIME_BACK;
		if (j->after < 0)
			j->after = 0;
		j->start = j->after;
		PQclear(r);
	}
	snprintf(lim, sizeof(lim), "%d", READ_PAGE);
	for (page = 0; page < READ_PAGES; page++) {
		int n;

		snprintf(after, sizeof(after), "%lld", (long long)j->after);
		if ((rc = central_db_exec(pg, "SELECT * FROM canopy_feed_since($1::bigint, $2::int)", 2,
					  p, &r, job->err, sizeof(job->err))) < 0)
			return rc;
		n = PQntuples(r);
		if (n > 0)
			j->after = strtoll(PQgetvalue(r, n - 1, 0), NULL, 10);
		rc = rows_from_result(r, &j->rows);
		PQclear(r);
		if (rc < 0)
			return rc;
		if (n < READ_PAGE)
			break;
	}
	j->more = page == READ_PAGES;
	if (j->gaps) {
		p[0] = j->gaps;
		if ((rc = central_db_exec(pg, "SELECT * FROM canopy_feed_pick($1::bigint[])", 1, p, &r,
					  job->err, sizeof(job->err))) < 0)
			return rc;
		rc = rows_from_result(r, &j->rows);
		PQclear(r);
	}
	return rc;
}

static void fan_out(struct central_stream *s, struct feed_row *f)
{
	GPtrArray *a = g_hash_table_lookup(s->by_tenant, f->tenant);
	guint i;

	if (!a)
		return;
	/* Sending may close a slow client, which leaves the array: walk a copy. */
	{
		guint n = a->len;
		struct client **v = g_memdup2(a->pdata, n * sizeof(*v));

		for (i = 0; v && i < n; i++) {
			struct client *k = v[i];

			if (!client_wants(k, f))
				continue;
			if (k->state == S_REPLAY) {
				if (g_queue_get_length(&k->held) >= (guint)s->c->conf->stream_replay_max) {
					cn_metric_add(&m_slow, 1);
					client_close(k, CLOSE_SLOW, "too slow; resume from your cursor");
					continue;
				}
				f->refs++;
				g_queue_push_tail(&k->held, f);
			} else {
				send_live(k, f);
			}
		}
		g_free(v);
	}
}

static void kick_read(struct central_stream *s);

static void done_read(struct central_job *job)
{
	struct fjob *j = (struct fjob *)job;
	struct central_stream *s = j->s;
	int64_t now = cn_time_mono_ms();
	size_t i, lost = 0;
	bool prime;

	if (s->stopping) {
		rows_free(&j->rows);
		free(j->gaps);
		free(j);
		return;
	}
	s->reading = false;
	s->read_failed = job->rc < 0;
	if (job->rc < 0) {
		if (job->rc != -ECANCELED)
			cn_log_warn("stream", "reading the feed failed: %s", job->err);
		rows_free(&j->rows);
		free(j->gaps);
		free(j);
		return;
	}
	prime = j->start >= 0;
	if (prime)
		central_feed_track_start(&s->track, j->start);
	if (j->rows.n > 1)
		qsort(j->rows.v, j->rows.n, sizeof(*j->rows.v), row_cmp);
	for (i = 0; i < j->rows.n; i++) {
		struct feed_row *f = j->rows.v[i];

		f->late = f->id <= s->track.max;
		if (!central_feed_track_seen(&s->track, f->id, now, GAP_HOLD_MS, &lost))
			continue;
		f->cursor = stream_low(s);
		if (prime)
			continue; /* before any client: only where the gaps are */
		cn_metric_add(&m_rows, 1);
		if (f->late)
			cn_metric_add(&m_late, 1);
		fan_out(s, f);
	}
	if (lost) {
		cn_metric_add(&m_gaps_lost, (long long)lost);
		cn_log_warn("stream", "%zu skipped feed ids given up at once (too many gaps)", lost);
	}
	if (prime)
		cn_log_info("stream", "live tail starts after feed id %lld",
			    (long long)s->track.max);
	rows_free(&j->rows);
	free(j->gaps);
	if (j->more || s->again) {
		s->again = false;
		free(j);
		kick_read(s);
		return;
	}
	free(j);
}

static void kick_read(struct central_stream *s)
{
	struct fjob *j;
	size_t i;

	if (s->stopping)
		return;
	if (s->reading) {
		s->again = true; /* a burst of notifications: one more read after this one */
		return;
	}
	if (!(j = calloc(1, sizeof(*j))))
		return;
	j->job.run = run_read;
	j->job.done = done_read;
	j->s = s;
	j->after = s->track.max;
	if (s->track.n) {
		struct cn_buf b;

		cn_buf_init(&b, (size_t)GAP_LIMIT * 24 + 16);
		cn_buf_append_str(&b, "{");
		for (i = 0; i < s->track.n; i++)
			cn_buf_printf(&b, "%s%lld", i ? "," : "", (long long)s->track.gaps[i].id);
		if (cn_buf_append_str(&b, "}") == 0)
			j->gaps = cn_buf_take(&b, NULL);
		cn_buf_free(&b);
	}
	if (central_db_submit(s->c->db, &j->job) < 0) {
		free(j->gaps);
		free(j);
		s->read_failed = true; /* the tick tries again */
		return;
	}
	s->reading = true;
}

/* ---- LISTEN canopy_feed on a connection of its own --------------------------------- */

static void listen_connect(struct central_stream *s);

static gboolean listen_retry(gpointer arg)
{
	struct central_stream *s = arg;

	s->listen_retry_id = 0;
	listen_connect(s);
	return G_SOURCE_REMOVE;
}

static void listen_lost(struct central_stream *s, const char *why)
{
	cn_log_warn("stream", "feed notification connection lost (%s); reconnecting in 2 s", why);
	if (s->listen_watch)
		g_source_remove(s->listen_watch);
	s->listen_watch = 0;
	PQfinish(s->listen_pg);
	s->listen_pg = NULL;
	if (!s->stopping && !s->listen_retry_id)
		s->listen_retry_id = g_timeout_add(2000, listen_retry, s);
}

static gboolean on_notify(gint fd, GIOCondition cond, gpointer arg)
{
	struct central_stream *s = arg;
	PGnotify *n;
	bool any = false;

	(void)fd;
	(void)cond;
	if (!PQconsumeInput(s->listen_pg)) {
		s->listen_watch = 0; /* returning REMOVE drops it */
		listen_lost(s, PQerrorMessage(s->listen_pg));
		return G_SOURCE_REMOVE;
	}
	while ((n = PQnotifies(s->listen_pg))) {
		any = true;
		PQfreemem(n);
	}
	if (any)
		kick_read(s); /* one read however many notifications came together */
	return G_SOURCE_CONTINUE;
}

struct ljob {
	struct central_job job;
	struct central_stream *s;
	PGconn *pg;
};

static int run_listen(PGconn *pg, struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	PGconn *own;

	(void)pg;
	/* A connection of its own: the pool's are busy with jobs. */
	if (!(own = central_db_connect(j->s->c->conf->db, job->err, sizeof(job->err))))
		return -ECONNREFUSED;
	if (central_db_run(own, "LISTEN canopy_feed", 0, NULL, job->err, sizeof(job->err)) < 0 ||
	    PQsetnonblocking(own, 1) != 0) {
		PQfinish(own);
		return -EIO;
	}
	j->pg = own;
	return 0;
}

static void done_listen(struct central_job *job)
{
	struct ljob *j = (struct ljob *)job;
	struct central_stream *s = j->s;

	if (job->rc < 0 || s->stopping) {
		PQfinish(j->pg);
		if (!s->stopping)
			listen_lost(s, job->err);
		free(j);
		return;
	}
	s->listen_pg = j->pg;
	s->listen_watch = g_unix_fd_add(PQsocket(j->pg), G_IO_IN, on_notify, s);
	cn_log_info("stream", "listening for feed changes");
	kick_read(s); /* anything committed while not listening */
	free(j);
}

static void listen_connect(struct central_stream *s)
{
	struct ljob *j = calloc(1, sizeof(*j));

	if (!j)
		return;
	j->job.run = run_listen;
	j->job.done = done_listen;
	j->s = s;
	if (central_db_submit(s->c->db, &j->job) < 0) {
		free(j);
		listen_lost(s, "database queue full");
	}
}

/* ---- retention ----------------------------------------------------------------------- */

struct pjob {
	struct central_job job;
	struct central_stream *s;
	int64_t keep_s;
	long long deleted;
};

static int run_purge(PGconn *pg, struct central_job *job)
{
	struct pjob *j = (struct pjob *)job;
	char keep[24], batch[24];
	const char *p[2] = { keep, batch };
	PGresult *r;
	int rc, i, n;

	snprintf(keep, sizeof(keep), "%lld", (long long)j->keep_s);
	snprintf(batch, sizeof(batch), "%d", PURGE_BATCH);
	/* Batches, each its own transaction: no long lock on the feed. */
	for (i = 0; i < PURGE_BATCHES; i++) {
		if ((rc = central_db_exec(pg, "SELECT canopy_feed_purge($1::bigint, $2::int)", 2, p,
					  &r, job->err, sizeof(job->err))) < 0)
			return rc;
		n = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		j->deleted += n;
		if (n < PURGE_BATCH)
			break;
	}
	return 0;
}

static void done_purge(struct central_job *job)
{
	struct pjob *j = (struct pjob *)job;

	if (!j->s->stopping) {
		j->s->purging = false;
		if (job->rc < 0 && job->rc != -ECANCELED)
			cn_log_warn("stream", "feed retention failed: %s", job->err);
	}
	if (j->deleted) {
		cn_metric_add(&m_purged, j->deleted);
		cn_log_info("stream", "feed retention deleted %lld rows", j->deleted);
	}
	free(j);
}

static gboolean purge_tick(gpointer arg)
{
	struct central_stream *s = arg;
	struct pjob *j;

	if (s->purging || !(j = calloc(1, sizeof(*j))))
		return G_SOURCE_CONTINUE;
	j->job.run = run_purge;
	j->job.done = done_purge;
	j->s = s;
	j->keep_s = s->c->conf->feed_retention / 1000;
	if (central_db_submit(s->c->db, &j->job) < 0)
		free(j);
	else
		s->purging = true;
	return G_SOURCE_CONTINUE;
}

/* ---- the tick: auth deadlines, token expiry, session re-checks, pings, gaps --------- */

static gboolean tick(gpointer arg)
{
	struct central_stream *s = arg;
	int64_t now = cn_time_mono_ms(), wall_s = cn_time_wall_ms() / 1000, low;
	size_t lost = central_feed_track_expire(&s->track, now);
	GHashTableIter it;
	gpointer key, v;
	GPtrArray *todo = g_ptr_array_new();
	guint i;

	if (lost)
		cn_metric_add(&m_gaps_lost, (long long)lost);
	/* Gaps are re-read until they fill in or are given up; a failed read is retried. */
	if (s->track.n || s->read_failed)
		kick_read(s);
	low = stream_low(s);
	/* Closing changes the table: collect first. */
	g_hash_table_iter_init(&it, s->by_gen);
	while (g_hash_table_iter_next(&it, &key, &v))
		g_ptr_array_add(todo, v);
	for (i = 0; i < todo->len; i++) {
		struct client *k = todo->pdata[i];
		bool on = k->state == S_REPLAY || k->state == S_LIVE;

		if (!k->ws || k->state == S_CLOSING)
			continue;
		if (k->state == S_AUTH && now - k->opened_ms >= AUTH_TIMEOUT_MS) {
			refuse(k, CLOSE_AUTH, "no auth message within 10 s");
			continue;
		}
		if (on && k->exp_s && wall_s >= k->exp_s) {
			cn_metric_add(&m_expired, 1);
			client_close(k, CLOSE_AUTH, "token expired");
			continue;
		}
		if (on && !k->checking && now >= k->next_check_ms)
			submit_auth(k, k->token, false, false);
		if (k->replayed && low >= k->replay_top) {
			/* The tail is past every replayed id: no live copy can come any more. */
			free(k->replayed);
			k->replayed = NULL;
			k->nreplayed = 0;
		}
		if (k->state == S_LIVE && now - k->last_send_ms >= PING_IDLE_MS)
			send_ready(k, "ping");
	}
	g_ptr_array_free(todo, TRUE);
	return G_SOURCE_CONTINUE;
}

static int stream_metrics(struct cn_buf *out, void *arg)
{
	struct central_stream *s = arg;
	int rc;

	if ((rc = cn_metrics_family(out, "canopy_central_stream_connections", "gauge",
				    "live stream WebSocket connections open, any state")) < 0 ||
	    (rc = cn_buf_printf(out, "canopy_central_stream_connections %u\n",
				g_hash_table_size(s->by_gen))) < 0 ||
	    (rc = cn_metrics_family(out, "canopy_central_feed_gaps", "gauge",
				    "feed ids skipped by the live tail and still awaited")) < 0)
		return rc;
	return cn_buf_printf(out, "canopy_central_feed_gaps %zu\n", s->track.n);
}

int central_stream_start(struct central *c)
{
	struct central_stream *s = calloc(1, sizeof(*s));
	int64_t purge_ms;
	int rc;

	if (!s)
		return -ENOMEM;
	c->stream = s;
	s->c = c;
	s->by_gen = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, client_free);
	s->by_tenant = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					     (GDestroyNotify)g_ptr_array_unref);
	central_feed_track_init(&s->track, GAP_LIMIT);
	/* Often enough that an idle session never expires under a console that only listens. */
	s->recheck_ms = c->conf->session_idle / 2 < RECHECK_MAX_MS ? c->conf->session_idle / 2
								   : RECHECK_MAX_MS;
	if ((rc = cn_ws_serve(c->d->http, STREAM_PATH, MAX_IN_MSG, &stream_ops, s)) < 0)
		return rc;
	cn_metrics_register(&m_clients);
	cn_metrics_register(&m_sent);
	cn_metrics_register(&m_replayed);
	cn_metrics_register(&m_slow);
	cn_metrics_register(&m_auth_failed);
	cn_metrics_register(&m_expired);
	cn_metrics_register(&m_resets);
	cn_metrics_register(&m_refused);
	cn_metrics_register(&m_rows);
	cn_metrics_register(&m_late);
	cn_metrics_register(&m_gaps_lost);
	cn_metrics_register(&m_purged);
	cn_metrics_add_collector(stream_metrics, s);
	s->tick_id = g_timeout_add(TICK_MS, tick, s);
	purge_ms = c->conf->feed_retention / 10;
	if (purge_ms < 5000)
		purge_ms = 5000;
	if (purge_ms > 600000)
		purge_ms = 600000;
	s->purge_id = g_timeout_add((guint)purge_ms, purge_tick, s);
	kick_read(s);
	listen_connect(s);
	return 0;
}

void central_stream_quiesce(struct central *c)
{
	struct central_stream *s = c->stream;
	guint *ids[4];
	GHashTableIter it;
	gpointer k, v;
	size_t i;

	if (!s || s->stopping)
		return;
	s->stopping = true;
	ids[0] = &s->tick_id;
	ids[1] = &s->purge_id;
	ids[2] = &s->listen_retry_id;
	ids[3] = &s->listen_watch;
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		if (*ids[i])
			g_source_remove(*ids[i]);
		*ids[i] = 0;
	}
	g_hash_table_iter_init(&it, s->by_gen);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct client *cl = v;

		if (cl->pump_id)
			g_source_remove(cl->pump_id);
		cl->pump_id = 0;
	}
	PQfinish(s->listen_pg);
	s->listen_pg = NULL;
}

void central_stream_stop(struct central *c)
{
	struct central_stream *s = c->stream;
	GHashTableIter it;
	gpointer k, v;

	if (!s)
		return;
	central_stream_quiesce(c);
	/* Connections still open close with the lws context after this; their memory goes
	 * now and on_close finds no user. */
	g_hash_table_iter_init(&it, s->by_gen);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct client *cl = v;

		if (cl->ws)
			cn_ws_set_user(cl->ws, NULL);
		cl->listed = false; /* by_tenant goes as a whole */
		if (cl->counted)
			cn_metric_add(&m_clients, -1);
		cl->counted = false;
	}
	cn_metrics_remove_collector(stream_metrics, s);
	g_hash_table_destroy(s->by_tenant);
	g_hash_table_destroy(s->by_gen);
	central_feed_track_free(&s->track);
	free(s);
	c->stream = NULL;
}
