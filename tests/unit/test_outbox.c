/* test_outbox.c: the edge's event outbox bound: delivered events pruned first, then drop_oldest or drop_newest, with overflow reports. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_test.h"
#include "cn_time.h"
#include "../../edge-agent/edge_index.h"

#define MIB (1LL << 20)
#define EV_BYTES 1000 /* payload size of every test event: 1048 fit in 1 MiB */

struct tmpdb {
	char dir[64];
	char path[128];
	struct edge_index *ix;
};

static void db_open(struct tmpdb *t, enum edge_outbox_policy policy, bool delivering)
{
	cn_strlcpy(t->dir, "/tmp/canopy-outbox-XXXXXX", sizeof(t->dir));
	CHECK(mkdtemp(t->dir) != NULL);
	snprintf(t->path, sizeof(t->path), "%s/index.db", t->dir);
	t->ix = NULL;
	CHECK_INT(edge_index_open(t->path, &t->ix), 0);
	if (t->ix)
		CHECK_INT(edge_index_outbox_configure(t->ix, MIB, policy, delivering), 0);
}

static void db_close(struct tmpdb *t)
{
	char p[160];

	edge_index_close(t->ix);
	t->ix = NULL;
	unlink(t->path);
	snprintf(p, sizeof(p), "%s-wal", t->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", t->path);
	unlink(p);
	rmdir(t->dir);
}

/* Appends event number n of camera cam: EV_BYTES of payload, id "ev<n>". */
static int add(struct edge_index *ix, const char *cam, int n, int64_t *seq)
{
	char id[32], payload[EV_BYTES + 1];
	int k = snprintf(payload, sizeof(payload), "{\"id\":\"ev%d\",\"camera\":\"%s\",\"pad\":\"", n, cam);

	snprintf(id, sizeof(id), "ev%d", n);
	memset(payload + k, 'x', (size_t)(EV_BYTES - k - 2));
	memcpy(payload + EV_BYTES - 2, "\"}", 3);
	return edge_index_event_add(ix, id, cam, "test", 1700000000000LL + n, payload, seq);
}

static struct edge_outbox_stats stats(struct edge_index *ix)
{
	struct edge_outbox_stats s;

	memset(&s, 0, sizeof(s));
	CHECK_INT(edge_index_outbox_stats(ix, &s), 0);
	return s;
}

/* What the outbox holds, oldest first. */
struct listing {
	int64_t seq[4096];
	int n;
	int64_t first_test_seq; /* of the oldest ordinary event */
	char first_test_id[32];
	int ordinary;
	cJSON *reports[16];
	int nreports;
};

static int collect(int64_t seq, const char *payload, void *arg)
{
	struct listing *l = arg;
	cJSON *o = cJSON_Parse(payload);
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(o, "type"));

	if (l->n < 4096)
		l->seq[l->n++] = seq;
	if (type && strcmp(type, EDGE_OUTBOX_REPORT_TYPE) == 0 && l->nreports < 16) {
		l->reports[l->nreports++] = o;
		return 0;
	}
	if (!l->first_test_seq) {
		l->first_test_seq = seq;
		cn_strlcpy(l->first_test_id, cJSON_GetStringValue(cJSON_GetObjectItem(o, "id")) ?: "",
			   sizeof(l->first_test_id));
	}
	l->ordinary++;
	cJSON_Delete(o);
	return 0;
}

static void list(struct edge_index *ix, struct listing *l)
{
	int64_t since = 0, before;

	memset(l, 0, sizeof(*l));
	do {
		before = l->n;
		CHECK_INT(edge_index_events_since(ix, since, 1000, collect, l), 0);
		if (l->n > 0)
			since = l->seq[l->n - 1];
	} while (l->n > before && l->n < 4096);
}

static void unlist(struct listing *l)
{
	for (int i = 0; i < l->nreports; i++)
		cJSON_Delete(l->reports[i]);
}

static int64_t num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);

	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

/* The triggers' running totals agree with the table itself. */
static void check_totals(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;

	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_prepare_v2(db,
				     "SELECT o.bytes = (SELECT COALESCE(SUM(length(CAST(payload AS BLOB))), 0) FROM events),"
				     " o.events = (SELECT COUNT(*) FROM events),"
				     " o.undelivered = (SELECT COUNT(*) FROM events WHERE seq > o.acked_seq)"
				     " FROM outbox o",
				     -1, &st, NULL),
		  SQLITE_OK);
	CHECK_INT(sqlite3_step(st), SQLITE_ROW);
	CHECK_INT(sqlite3_column_int(st, 0), 1);
	CHECK_INT(sqlite3_column_int(st, 1), 1);
	CHECK_INT(sqlite3_column_int(st, 2), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

TEST(outbox_prunes_delivered_history_before_any_undelivered_event)
{
	struct tmpdb t;
	struct edge_outbox_stats s;
	struct listing l;
	int64_t seq;
	int n = 0;

	db_open(&t, EDGE_OUTBOX_DROP_OLDEST, true);
	for (; n < 1000; n++)
		CHECK_INT(add(t.ix, n % 2 ? "a" : "b", n, &seq), 0);
	s = stats(t.ix);
	CHECK_INT(s.bytes, 1000 * EV_BYTES);
	CHECK_INT(s.events, 1000);
	CHECK_INT(s.undelivered, 1000);
	CHECK_INT(edge_index_outbox_acked(t.ix, 500), 0); /* central has the first 500 */
	CHECK_INT(stats(t.ix).undelivered, 500);
	for (; n < 1400; n++)
		CHECK_INT(add(t.ix, "a", n, &seq), 0);
	s = stats(t.ix);
	CHECK(s.bytes <= MIB);
	CHECK(s.bytes > MIB - EV_BYTES);
	CHECK_INT(s.dropped_total, 0);
	CHECK_INT(s.undelivered, 900);
	CHECK_INT(s.pruned_total, 1400 - MIB / EV_BYTES);
	list(t.ix, &l);
	CHECK_INT(l.nreports, 0);
	CHECK_INT(l.first_test_seq, s.pruned_total + 1); /* the oldest went first */
	unlist(&l);
	check_totals(t.path);

	/* history gone: now the policy applies to the undelivered ones, oldest first */
	for (; n < 1600; n++)
		CHECK_INT(add(t.ix, "a", n, &seq), 0);
	s = stats(t.ix);
	CHECK_INT(s.pruned_total, 500);
	CHECK(s.dropped_total > 0);
	list(t.ix, &l);
	CHECK_INT(l.first_test_seq, 500 + s.dropped_total + 1);
	CHECK_INT(l.nreports, 1);
	unlist(&l);
	check_totals(t.path);
	db_close(&t);
}

TEST(outbox_drop_oldest_reports_at_once_then_once_a_minute)
{
	struct tmpdb t;
	struct edge_outbox_stats s;
	struct listing l;
	int64_t seq, now = cn_time_wall_ms();
	bool written;
	int n = 0;

	db_open(&t, EDGE_OUTBOX_DROP_OLDEST, true);
	for (; n < 1100; n++) /* 1048 fit */
		CHECK_INT(add(t.ix, n % 2 ? "a" : "b", n, &seq), 0);
	s = stats(t.ix);
	CHECK(s.dropped_total >= 52);
	CHECK_INT(s.reports_total, 1);
	/* the first drop was reported at once; the rest waits for the minute to pass */
	CHECK_INT(s.pending_dropped, s.dropped_total - 1);
	CHECK_INT(edge_index_outbox_report(t.ix, now + 30000, &written), 0);
	CHECK(!written);
	CHECK_INT(edge_index_outbox_report(t.ix, now + EDGE_OUTBOX_REPORT_MS + 1000, &written), 0);
	CHECK(written);
	CHECK_INT(edge_index_outbox_report(t.ix, now + EDGE_OUTBOX_REPORT_MS + 2000, &written), 0);
	CHECK(!written); /* nothing new to report */
	s = stats(t.ix);
	CHECK_INT(s.pending_dropped, 0);
	CHECK_INT(s.reports_total, 2);

	list(t.ix, &l);
	CHECK_INT(l.nreports, 2);
	if (l.nreports == 2) {
		cJSON *r1 = l.reports[0], *r2 = l.reports[1], *cams = cJSON_GetObjectItem(r2, "cameras");

		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(r1, "policy")), "drop_oldest");
		CHECK_INT(num(r1, "dropped"), 1);
		CHECK_INT(num(r1, "first_seq"), 1);
		CHECK_INT(num(r1, "last_seq"), 1);
		CHECK(cJSON_GetObjectItem(r1, "camera") == NULL); /* an edge event, no camera */
		CHECK_INT(num(r2, "dropped"), s.dropped_total - 1);
		CHECK_INT(num(r2, "first_seq"), 2);
		/* drops are the oldest; seqs of reports are never among them */
		CHECK(num(r2, "last_seq") >= s.dropped_total);
		CHECK_INT(num(r2, "dropped_total"), s.dropped_total);
		CHECK_INT(num(r2, "max_bytes"), MIB);
		CHECK_INT(num(cams, "a") + num(cams, "b"), s.dropped_total - 1);
		CHECK(cJSON_GetObjectItem(r2, "first_time") && cJSON_GetObjectItem(r2, "last_time"));
	}
	/* what is left is the newest events, without a gap */
	char want[32];
	snprintf(want, sizeof(want), "ev%lld", (long long)s.dropped_total);
	CHECK_INT(l.ordinary + s.dropped_total, 1100);
	CHECK_STR(l.first_test_id, want);
	unlist(&l);

	/* reports are never dropped, however long the outbox overflows */
	for (; n < 3300; n++)
		CHECK_INT(add(t.ix, "a", n, &seq), 0);
	list(t.ix, &l);
	CHECK(l.nreports >= 2);
	CHECK_INT(num(l.reports[0], "first_seq"), 1);
	CHECK(stats(t.ix).bytes <= MIB + l.nreports * 400);
	unlist(&l);
	check_totals(t.path);
	db_close(&t);
}

TEST(outbox_drop_newest_refuses_and_keeps_the_oldest)
{
	struct tmpdb t;
	struct edge_outbox_stats s;
	struct listing l;
	int64_t seq, last_seq = 0;
	int n = 0, refused = 0, rc;

	db_open(&t, EDGE_OUTBOX_DROP_NEWEST, true);
	for (; n < 1100; n++) {
		rc = add(t.ix, n % 2 ? "a" : "b", n, &seq);
		CHECK(rc == 0 || rc == CN_E_FULL);
		if (rc == CN_E_FULL)
			refused++;
		else
			last_seq = seq;
	}
	s = stats(t.ix);
	CHECK_INT(refused, 1100 - MIB / EV_BYTES);
	CHECK_INT(s.dropped_total, refused);
	CHECK_INT(s.pruned_total, 0);
	list(t.ix, &l);
	CHECK_INT(l.first_test_seq, 1); /* the oldest stay */
	CHECK_INT(l.nreports, 1);
	if (l.nreports == 1) {
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(l.reports[0], "policy")), "drop_newest");
		CHECK_INT(num(l.reports[0], "dropped"), 1);
		/* refused events never had a sequence number */
		CHECK(cJSON_GetObjectItem(l.reports[0], "first_seq") == NULL);
		CHECK(cJSON_GetObjectItem(l.reports[0], "first_time") != NULL);
	}
	unlist(&l);
	CHECK_INT(s.pending_dropped, refused - 1);
	/* once central acknowledges, history makes room again */
	CHECK_INT(edge_index_outbox_acked(t.ix, last_seq), 0);
	CHECK_INT(add(t.ix, "a", n++, &seq), 0);
	CHECK_INT(stats(t.ix).dropped_total, refused);
	check_totals(t.path);
	db_close(&t);
}

TEST(outbox_never_drops_the_batch_in_flight)
{
	struct tmpdb t;
	struct listing l;
	int64_t seq;

	db_open(&t, EDGE_OUTBOX_DROP_OLDEST, true);
	for (int n = 0; n < 1000; n++)
		CHECK_INT(add(t.ix, "a", n, &seq), 0);
	CHECK_INT(edge_index_outbox_acked(t.ix, 10), 0);
	CHECK_INT(edge_index_outbox_inflight(t.ix, 110), 0); /* 11..110 sent, no ack yet */
	for (int n = 1000; n < 1200; n++)
		CHECK_INT(add(t.ix, "a", n, &seq), 0);
	list(t.ix, &l);
	/* history 1..10 went, then 111.. (not 11..110) */
	CHECK_INT(l.seq[0], 11);
	CHECK_INT(l.seq[99], 110);
	CHECK(l.seq[100] > 111);
	CHECK_INT(stats(t.ix).pruned_total, 10);
	unlist(&l);
	/* the ack settles it: those 100 are history now */
	CHECK_INT(edge_index_outbox_acked(t.ix, 110), 0);
	CHECK_INT(add(t.ix, "a", 1200, &seq), 0);
	list(t.ix, &l);
	CHECK(l.seq[0] >= 12 && l.seq[0] <= 13); /* 11 (and 12 for the report's bytes) went */
	unlist(&l);
	db_close(&t);
}

TEST(outbox_without_central_keeps_the_newest_as_history)
{
	struct tmpdb t;
	struct edge_outbox_stats s;
	struct listing l;
	int64_t seq;

	db_open(&t, EDGE_OUTBOX_DROP_NEWEST, false);
	for (int n = 0; n < 1200; n++)
		CHECK_INT(add(t.ix, "a", n, &seq), 0);
	s = stats(t.ix);
	CHECK_INT(s.dropped_total, 0);
	CHECK_INT(s.reports_total, 0);
	CHECK_INT(s.undelivered, 0);
	CHECK_INT(s.pruned_total, 1200 - MIB / EV_BYTES);
	list(t.ix, &l);
	CHECK_INT(l.first_test_seq, s.pruned_total + 1);
	CHECK_INT(l.nreports, 0);
	unlist(&l);
	db_close(&t);
}

TEST(outbox_totals_survive_reopen_and_an_event_larger_than_the_bound_is_refused)
{
	struct tmpdb t;
	struct edge_outbox_stats a, b;
	int64_t seq;
	char *big = malloc(MIB + 2);

	db_open(&t, EDGE_OUTBOX_DROP_OLDEST, true);
	for (int n = 0; n < 300; n++)
		CHECK_INT(add(t.ix, "a", n, &seq), 0);
	CHECK_INT(edge_index_outbox_acked(t.ix, 120), 0);
	a = stats(t.ix);
	edge_index_close(t.ix);
	CHECK_INT(edge_index_open(t.path, &t.ix), 0);
	b = stats(t.ix);
	CHECK_INT(b.bytes, a.bytes);
	CHECK_INT(b.events, 300);
	CHECK_INT(b.undelivered, 180);
	CHECK_INT(b.acked_seq, 120);
	CHECK_INT(b.max_bytes, MIB);
	if (big) {
		memset(big, 'x', MIB + 1);
		big[MIB + 1] = '\0';
		CHECK_INT(edge_index_event_add(t.ix, "huge", "a", "test", 1, big, &seq), CN_E_FULL);
		CHECK_INT(stats(t.ix).events, 301); /* nothing displaced; the report was added */
		CHECK_INT(stats(t.ix).dropped_total, 1);
	}
	free(big);
	check_totals(t.path);
	db_close(&t);
}

TEST(outbox_migrates_a_v1_index)
{
	struct tmpdb t;
	struct edge_outbox_stats s;
	sqlite3 *db;

	cn_strlcpy(t.dir, "/tmp/canopy-outbox-XXXXXX", sizeof(t.dir));
	CHECK(mkdtemp(t.dir) != NULL);
	snprintf(t.path, sizeof(t.path), "%s/index.db", t.dir);
	CHECK_INT(sqlite3_open(t.path, &db), SQLITE_OK);
	/* the v1 events table as edges before the bound wrote it (other tables alike) */
	CHECK_INT(sqlite3_exec(db,
			       "CREATE TABLE events(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
			       " camera TEXT, type TEXT NOT NULL, time_ms INTEGER NOT NULL, payload TEXT NOT NULL);"
			       "INSERT INTO events(id, camera, type, time_ms, payload) VALUES"
			       " ('a', 'c', 't', 1, '{\"x\":\"\xc3\xa9\"}'), ('b', 'c', 't', 2, '{}');"
			       "PRAGMA user_version = 1;",
			       NULL, NULL, NULL),
		  SQLITE_OK);
	sqlite3_close(db);
	CHECK_INT(edge_index_open(t.path, &t.ix), 0);
	s = stats(t.ix);
	CHECK_INT(s.events, 2);
	CHECK_INT(s.bytes, 10 + 2); /* bytes, not characters */
	CHECK_INT(s.max_bytes, 256 * MIB);
	check_totals(t.path);
	db_close(&t);
}
