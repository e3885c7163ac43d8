/* edge_index.c: SQLite schema, migrations and the queries the edge needs; prepared per call. */
#include "edge_index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include <cjson/cJSON.h>

#include "cn_buf.h"
#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_log.h"
#include "cn_time.h"

#define SCHEMA_VERSION 2

struct edge_index {
	sqlite3 *db;
};

static const char schema_v1[] =
	"CREATE TABLE segments("
	" id INTEGER PRIMARY KEY,"
	" camera TEXT NOT NULL,"
	" path TEXT NOT NULL UNIQUE,"
	" start_ms INTEGER NOT NULL,"
	" end_ms INTEGER NOT NULL,"
	" bytes INTEGER NOT NULL,"
	" codec TEXT, width INTEGER, height INTEGER,"
	" open INTEGER NOT NULL);"
	"CREATE INDEX segments_camera_time ON segments(camera, start_ms);"
	"CREATE INDEX segments_open ON segments(open) WHERE open = 1;"
	"CREATE TABLE keyframes("
	" segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,"
	" t_ms INTEGER NOT NULL,"
	" offset INTEGER NOT NULL,"
	" PRIMARY KEY(segment_id, t_ms)) WITHOUT ROWID;"
	"CREATE TABLE events("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" id TEXT NOT NULL UNIQUE,"
	" camera TEXT,"
	" type TEXT NOT NULL,"
	" time_ms INTEGER NOT NULL,"
	" payload TEXT NOT NULL);"
	"CREATE TABLE protected("
	" id INTEGER PRIMARY KEY,"
	" camera TEXT NOT NULL,"
	" from_ms INTEGER NOT NULL,"
	" to_ms INTEGER NOT NULL,"
	" reason TEXT NOT NULL DEFAULT '',"
	" created_ms INTEGER NOT NULL);";

/* v2: the outbox is bounded by bytes. The running totals live in one row that triggers
 * keep exact, so every connection (each thread has its own) sees the same totals inside
 * its write transaction and no insert ever scans the table. The bound and policy are
 * written there at start for the same reason. */
static const char schema_v2[] =
	"ALTER TABLE events ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;"
	"UPDATE events SET bytes = length(CAST(payload AS BLOB));"
	"CREATE TABLE outbox("
	" id INTEGER PRIMARY KEY CHECK (id = 1),"
	" bytes INTEGER NOT NULL,"       /* SUM(events.bytes) */
	" events INTEGER NOT NULL,"      /* COUNT(events) */
	" undelivered INTEGER NOT NULL," /* events with seq > acked_seq */
	" acked_seq INTEGER NOT NULL DEFAULT 0,"
	" inflight_seq INTEGER NOT NULL DEFAULT 0,"
	" max_bytes INTEGER NOT NULL DEFAULT 268435456,"
	" policy INTEGER NOT NULL DEFAULT 0,"
	" delivering INTEGER NOT NULL DEFAULT 0,"
	" dropped_total INTEGER NOT NULL DEFAULT 0,"
	" pruned_total INTEGER NOT NULL DEFAULT 0,"
	" reports_total INTEGER NOT NULL DEFAULT 0,"
	" pend_dropped INTEGER NOT NULL DEFAULT 0,"
	" pend_first_seq INTEGER, pend_last_seq INTEGER,"
	" pend_first_ms INTEGER, pend_last_ms INTEGER,"
	" last_report_ms INTEGER NOT NULL DEFAULT 0);"
	"INSERT INTO outbox(id, bytes, events, undelivered)"
	" SELECT 1, COALESCE(SUM(bytes), 0), COUNT(*), COUNT(*) FROM events;"
	/* undelivered events dropped since the last overflow report, per camera */
	"CREATE TABLE outbox_dropped(camera TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TRIGGER events_outbox_add AFTER INSERT ON events BEGIN"
	" UPDATE outbox SET bytes = bytes + NEW.bytes, events = events + 1,"
	" undelivered = undelivered + (NEW.seq > acked_seq) WHERE id = 1; END;"
	"CREATE TRIGGER events_outbox_del AFTER DELETE ON events BEGIN"
	" UPDATE outbox SET bytes = bytes - OLD.bytes, events = events - 1,"
	" undelivered = undelivered - (OLD.seq > acked_seq) WHERE id = 1; END;"
	/* Acks move by a batch (100 events): counting the range they cover is cheap. */
	"CREATE TRIGGER outbox_acked AFTER UPDATE OF acked_seq ON outbox"
	" WHEN NEW.acked_seq <> OLD.acked_seq BEGIN"
	" UPDATE outbox SET undelivered = undelivered"
	" - (SELECT COUNT(*) FROM events WHERE seq > OLD.acked_seq AND seq <= NEW.acked_seq)"
	" + (SELECT COUNT(*) FROM events WHERE seq > NEW.acked_seq AND seq <= OLD.acked_seq)"
	" WHERE id = 1; END;";

static int db_err(struct edge_index *ix, const char *what)
{
	cn_log_error("index", "%s: %s", what, sqlite3_errmsg(ix->db));
	return sqlite3_errcode(ix->db) == SQLITE_FULL ? -ENOSPC : -EIO;
}

static int exec(struct edge_index *ix, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(ix->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		cn_log_error("index", "'%.60s': %s", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return sqlite3_errcode(ix->db) == SQLITE_FULL ? -ENOSPC : -EIO;
	}
	return 0;
}

static int migrate(struct edge_index *ix)
{
	sqlite3_stmt *st;
	int version = 0, rc;

	if (sqlite3_prepare_v2(ix->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return db_err(ix, "read schema version");
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > SCHEMA_VERSION) {
		cn_log_error("index", "index schema version %d is newer than this edge knows (%d)",
			     version, SCHEMA_VERSION);
		return -EPROTO;
	}
	if (version == SCHEMA_VERSION)
		return 0;
	if ((rc = exec(ix, "BEGIN IMMEDIATE")) < 0)
		return rc;
	if (version < 1 && (rc = exec(ix, schema_v1)) < 0)
		goto out_rollback;
	if (version < 2 && (rc = exec(ix, schema_v2)) < 0)
		goto out_rollback;
	if ((rc = exec(ix, "PRAGMA user_version = 2")) < 0)
		goto out_rollback;
	return exec(ix, "COMMIT");
out_rollback:
	exec(ix, "ROLLBACK");
	return rc;
}

int edge_index_open(const char *path, struct edge_index **out)
{
	struct edge_index *ix = calloc(1, sizeof(*ix));
	int rc;

	if (!ix)
		return -ENOMEM;
	if (sqlite3_open_v2(path, &ix->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		cn_log_error("index", "cannot open index '%s': %s", path,
			     ix->db ? sqlite3_errmsg(ix->db) : "out of memory");
		rc = -EIO;
		goto out_close;
	}
	sqlite3_busy_timeout(ix->db, 10000);
	/* WAL: readers never wait for the writers; NORMAL sync is crash-safe in WAL mode
	 * (a power cut may lose the last commits, never corrupt the file). */
	/* Two connections per camera: a small page cache each (the queries touch few pages). */
	if ((rc = exec(ix, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
			   " PRAGMA cache_size=-256")) < 0 ||
	    (rc = migrate(ix)) < 0)
		goto out_close;
	*out = ix;
	return 0;
out_close:
	sqlite3_close(ix->db);
	free(ix);
	return rc;
}

void edge_index_close(struct edge_index *ix)
{
	if (!ix)
		return;
	sqlite3_close(ix->db);
	free(ix);
}

static int prepare(struct edge_index *ix, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(ix->db, sql, -1, st, NULL) != SQLITE_OK)
		return db_err(ix, "prepare");
	return 0;
}

/* Runs a prepared statement to completion and finalizes it. */
static int run(struct edge_index *ix, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		cn_log_error("index", "%s: %s", what, sqlite3_errmsg(ix->db));
		return rc == SQLITE_FULL ? -ENOSPC : -EIO;
	}
	return 0;
}

int edge_index_segment_begin(struct edge_index *ix, const char *camera, const char *relpath,
			     int64_t start_ms, const char *codec, int width, int height,
			     int64_t *id)
{
	sqlite3_stmt *st;
	int rc = prepare(ix,
			 "INSERT INTO segments(camera, path, start_ms, end_ms, bytes, codec, width, height, open)"
			 " VALUES(?, ?, ?, ?, 0, ?, ?, ?, 1)",
			 &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, camera, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, relpath, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, start_ms);
	sqlite3_bind_int64(st, 4, start_ms);
	sqlite3_bind_text(st, 5, codec, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, width);
	sqlite3_bind_int(st, 7, height);
	if ((rc = run(ix, st, "insert segment")) < 0)
		return rc;
	*id = sqlite3_last_insert_rowid(ix->db);
	return 0;
}

int edge_index_segment_progress(struct edge_index *ix, int64_t id, int64_t start_ms,
				int64_t end_ms, int64_t bytes, int64_t key_ms, int64_t key_offset)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = exec(ix, "BEGIN")) < 0)
		return rc;
	if ((rc = prepare(ix, "UPDATE segments SET start_ms = ?, end_ms = ?, bytes = ? WHERE id = ?",
			  &st)) < 0)
		goto out_rollback;
	sqlite3_bind_int64(st, 1, start_ms);
	sqlite3_bind_int64(st, 2, end_ms);
	sqlite3_bind_int64(st, 3, bytes);
	sqlite3_bind_int64(st, 4, id);
	if ((rc = run(ix, st, "update segment")) < 0)
		goto out_rollback;
	if ((rc = prepare(ix, "INSERT OR REPLACE INTO keyframes(segment_id, t_ms, offset) VALUES(?, ?, ?)",
			  &st)) < 0)
		goto out_rollback;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, key_ms);
	sqlite3_bind_int64(st, 3, key_offset);
	if ((rc = run(ix, st, "insert keyframe")) < 0)
		goto out_rollback;
	return exec(ix, "COMMIT");
out_rollback:
	exec(ix, "ROLLBACK");
	return rc;
}

int edge_index_segment_finish(struct edge_index *ix, int64_t id, int64_t start_ms, int64_t end_ms,
			      int64_t bytes)
{
	sqlite3_stmt *st;
	int rc = prepare(ix, "UPDATE segments SET start_ms = ?, end_ms = ?, bytes = ?, open = 0 WHERE id = ?",
			 &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, start_ms);
	sqlite3_bind_int64(st, 2, end_ms);
	sqlite3_bind_int64(st, 3, bytes);
	sqlite3_bind_int64(st, 4, id);
	return run(ix, st, "finish segment");
}

int edge_index_segment_delete(struct edge_index *ix, int64_t id)
{
	sqlite3_stmt *st;
	int rc = prepare(ix, "DELETE FROM segments WHERE id = ?", &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	return run(ix, st, "delete segment");
}

static void row_from(sqlite3_stmt *st, struct edge_segment_row *r)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	cn_strlcpy(r->camera, (const char *)sqlite3_column_text(st, 1), sizeof(r->camera));
	cn_strlcpy(r->path, (const char *)sqlite3_column_text(st, 2), sizeof(r->path));
	r->start_ms = sqlite3_column_int64(st, 3);
	r->end_ms = sqlite3_column_int64(st, 4);
	r->bytes = sqlite3_column_int64(st, 5);
	r->open = sqlite3_column_int(st, 6) != 0;
}

/* Steps st, calling fn per row; stops early when fn returns non-zero. */
static int each_segment(struct edge_index *ix, sqlite3_stmt *st,
			int (*fn)(const struct edge_segment_row *row, void *arg), void *arg)
{
	struct edge_segment_row row;
	int rc, frc = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_from(st, &row);
		if ((frc = fn(&row, arg)) != 0)
			break;
	}
	sqlite3_finalize(st);
	if (frc == 0 && rc != SQLITE_DONE)
		return db_err(ix, "list segments");
	return frc < 0 ? frc : 0;
}

int edge_index_segment_insert(struct edge_index *ix, const char *camera, const char *relpath,
			      int64_t start_ms, int64_t end_ms, int64_t bytes, int64_t *id)
{
	sqlite3_stmt *st;
	int rc = prepare(ix,
			 "INSERT INTO segments(camera, path, start_ms, end_ms, bytes, open)"
			 " VALUES(?, ?, ?, ?, ?, 0)",
			 &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, camera, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, relpath, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, start_ms);
	sqlite3_bind_int64(st, 4, end_ms);
	sqlite3_bind_int64(st, 5, bytes);
	if ((rc = run(ix, st, "insert recovered segment")) < 0)
		return rc;
	*id = sqlite3_last_insert_rowid(ix->db);
	return 0;
}

int edge_index_keyframe_add(struct edge_index *ix, int64_t id, int64_t t_ms, int64_t offset)
{
	sqlite3_stmt *st;
	int rc = prepare(ix, "INSERT OR REPLACE INTO keyframes(segment_id, t_ms, offset) VALUES(?, ?, ?)",
			 &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, t_ms);
	sqlite3_bind_int64(st, 3, offset);
	return run(ix, st, "insert keyframe");
}

int edge_index_all_segments(struct edge_index *ix,
			    int (*fn)(const struct edge_segment_row *row, void *arg), void *arg)
{
	sqlite3_stmt *st;
	int rc = prepare(ix, "SELECT id, camera, path, start_ms, end_ms, bytes, open FROM segments ORDER BY id",
			 &st);

	return rc < 0 ? rc : each_segment(ix, st, fn, arg);
}

int edge_index_open_segments(struct edge_index *ix,
			     int (*fn)(const struct edge_segment_row *row, void *arg), void *arg)
{
	sqlite3_stmt *st;
	int rc = prepare(ix,
			 "SELECT id, camera, path, start_ms, end_ms, bytes, open FROM segments"
			 " WHERE open = 1 ORDER BY id",
			 &st);

	return rc < 0 ? rc : each_segment(ix, st, fn, arg);
}

int edge_index_has_path(struct edge_index *ix, const char *relpath, bool *found)
{
	sqlite3_stmt *st;
	int rc = prepare(ix, "SELECT 1 FROM segments WHERE path = ?", &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, relpath, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*found = rc == SQLITE_ROW;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_err(ix, "find path");
}

int edge_index_segments(struct edge_index *ix, const char *camera, int64_t from, int64_t to,
			int (*fn)(const struct edge_segment_row *row, void *arg), void *arg)
{
	sqlite3_stmt *st;
	int rc = prepare(ix,
			 "SELECT id, camera, path, start_ms, end_ms, bytes, open FROM segments"
			 " WHERE camera = ? AND start_ms < ? AND end_ms > ? ORDER BY start_ms",
			 &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, camera, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, to);
	sqlite3_bind_int64(st, 3, from);
	return each_segment(ix, st, fn, arg);
}

struct ranges_ctx {
	int64_t from, to, gap;
	int64_t cur_start, cur_end;
	bool have;
	int (*fn)(int64_t, int64_t, void *);
	void *arg;
};

static int range_flush(struct ranges_ctx *c)
{
	int64_t s = c->cur_start < c->from ? c->from : c->cur_start;
	int64_t e = c->cur_end > c->to ? c->to : c->cur_end;

	return c->have && e > s ? c->fn(s, e, c->arg) : 0;
}

static int range_add(const struct edge_segment_row *r, void *arg)
{
	struct ranges_ctx *c = arg;
	int rc;

	if (r->end_ms <= r->start_ms)
		return 0; /* no complete fragment yet */
	if (c->have && r->start_ms <= c->cur_end + c->gap) {
		if (r->end_ms > c->cur_end)
			c->cur_end = r->end_ms;
		return 0;
	}
	if ((rc = range_flush(c)) != 0)
		return rc;
	c->have = true;
	c->cur_start = r->start_ms;
	c->cur_end = r->end_ms;
	return 0;
}

int edge_index_ranges(struct edge_index *ix, const char *camera, int64_t from, int64_t to,
		      int64_t gap_ms, int (*fn)(int64_t start, int64_t end, void *arg), void *arg)
{
	struct ranges_ctx c = { from, to, gap_ms, 0, 0, false, fn, arg };
	int rc = edge_index_segments(ix, camera, from, to, range_add, &c);

	return rc < 0 ? rc : range_flush(&c);
}

/* ---- the event outbox -------------------------------------------------------------------- */

struct outbox_row {
	int64_t bytes, acked_seq, inflight_seq, max_bytes, pend_dropped, last_report_ms;
	int policy;
	bool delivering;
};

static int outbox_load(struct edge_index *ix, struct outbox_row *o)
{
	sqlite3_stmt *st;
	int rc = prepare(ix,
			 "SELECT bytes, acked_seq, inflight_seq, max_bytes, policy, delivering,"
			 " pend_dropped, last_report_ms FROM outbox WHERE id = 1",
			 &st);

	if (rc < 0)
		return rc;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return db_err(ix, "read outbox state");
	}
	o->bytes = sqlite3_column_int64(st, 0);
	o->acked_seq = sqlite3_column_int64(st, 1);
	o->inflight_seq = sqlite3_column_int64(st, 2);
	o->max_bytes = sqlite3_column_int64(st, 3);
	o->policy = sqlite3_column_int(st, 4);
	o->delivering = sqlite3_column_int(st, 5) != 0;
	o->pend_dropped = sqlite3_column_int64(st, 6);
	o->last_report_ms = sqlite3_column_int64(st, 7);
	sqlite3_finalize(st);
	return 0;
}

/* Runs sql with up to three integer parameters (?1..?3). */
static int run_i64(struct edge_index *ix, const char *sql, int64_t a, int64_t b, int64_t c,
		   const char *what)
{
	sqlite3_stmt *st;
	int rc = prepare(ix, sql, &st);

	if (rc < 0)
		return rc;
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_int64(st, 1, a);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, b);
	if (sqlite3_bind_parameter_count(st) >= 3)
		sqlite3_bind_int64(st, 3, c);
	return run(ix, st, what);
}

static int insert_event(struct edge_index *ix, const char *id, const char *camera, const char *type,
			int64_t time_ms, const char *payload_json, int64_t *seq)
{
	sqlite3_stmt *st;
	int rc = prepare(ix,
			 "INSERT INTO events(id, camera, type, time_ms, payload, bytes) VALUES(?, ?, ?, ?, ?, ?)",
			 &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (camera)
		sqlite3_bind_text(st, 2, camera, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, time_ms);
	sqlite3_bind_text(st, 5, payload_json, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (int64_t)strlen(payload_json));
	if ((rc = run(ix, st, "insert event")) < 0)
		return rc;
	if (seq)
		*seq = sqlite3_last_insert_rowid(ix->db);
	return 0;
}

/* What free_oldest removed. */
struct freed {
	int64_t bytes, n, first_seq, last_seq, first_ms, last_ms;
};

#define NOT_REPORT " AND type <> '" EDGE_OUTBOX_REPORT_TYPE "'"

/* Deletes the oldest events with seq in (lo, hi] until at least need bytes are freed.
 * Undelivered ones (drop) skip overflow reports, which are never dropped, and are tallied
 * per camera for the next report; delivered ones (history) just go. Steps the rowid range
 * only as far as needed: at a full outbox that is one or two rows per insert. */
static int free_oldest(struct edge_index *ix, int64_t lo, int64_t hi, int64_t need, bool drop,
		       struct freed *f)
{
	sqlite3_stmt *st;
	int64_t cut = lo;
	int rc;

	memset(f, 0, sizeof(*f));
	rc = prepare(ix, drop ? "SELECT seq, bytes, time_ms FROM events WHERE seq > ? AND seq <= ?" NOT_REPORT
				" ORDER BY seq"
			      : "SELECT seq, bytes, time_ms FROM events WHERE seq > ? AND seq <= ? ORDER BY seq",
		     &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, lo);
	sqlite3_bind_int64(st, 2, hi);
	while (f->bytes < need && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t t = sqlite3_column_int64(st, 2);

		cut = sqlite3_column_int64(st, 0);
		f->bytes += sqlite3_column_int64(st, 1);
		if (f->n++ == 0) {
			f->first_seq = cut;
			f->first_ms = f->last_ms = t;
		}
		f->last_seq = cut;
		f->first_ms = t < f->first_ms ? t : f->first_ms;
		f->last_ms = t > f->last_ms ? t : f->last_ms;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_err(ix, "find oldest events");
	if (f->n == 0)
		return 0;
	if (drop && (rc = run_i64(ix,
				  "INSERT INTO outbox_dropped(camera, n)"
				  " SELECT COALESCE(camera, ''), COUNT(*) FROM events"
				  " WHERE seq > ?1 AND seq <= ?2" NOT_REPORT
				  " GROUP BY 1 ON CONFLICT(camera) DO UPDATE SET n = n + excluded.n",
				  lo, cut, 0, "count dropped events")) < 0)
		return rc;
	return run_i64(ix, drop ? "DELETE FROM events WHERE seq > ?1 AND seq <= ?2" NOT_REPORT
				: "DELETE FROM events WHERE seq > ?1 AND seq <= ?2",
		       lo, cut, 0, "delete oldest events");
}

/* Adds n dropped events (seqs first..last when they had one, else 0) to the pending report. */
static int tally_dropped(struct edge_index *ix, const struct freed *f)
{
	sqlite3_stmt *st;
	int rc = prepare(ix,
			 "UPDATE outbox SET dropped_total = dropped_total + ?1,"
			 " pend_dropped = pend_dropped + ?1,"
			 " pend_first_seq = CASE WHEN ?2 > 0 THEN COALESCE(pend_first_seq, ?2)"
			 " ELSE pend_first_seq END,"
			 " pend_last_seq = CASE WHEN ?3 > 0 THEN ?3 ELSE pend_last_seq END,"
			 " pend_first_ms = MIN(COALESCE(pend_first_ms, ?4), ?4),"
			 " pend_last_ms = MAX(COALESCE(pend_last_ms, ?5), ?5) WHERE id = 1",
			 &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, f->n);
	sqlite3_bind_int64(st, 2, f->first_seq);
	sqlite3_bind_int64(st, 3, f->last_seq);
	sqlite3_bind_int64(st, 4, f->first_ms);
	sqlite3_bind_int64(st, 5, f->last_ms);
	return run(ix, st, "count dropped events");
}

/* One event refused by the policy: it never got a sequence number. */
static int refuse(struct edge_index *ix, const char *camera, int64_t time_ms)
{
	struct freed f = { .n = 1, .first_ms = time_ms, .last_ms = time_ms };
	sqlite3_stmt *st;
	int rc = prepare(ix,
			 "INSERT INTO outbox_dropped(camera, n) VALUES(?, 1)"
			 " ON CONFLICT(camera) DO UPDATE SET n = n + 1",
			 &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, camera ? camera : "", -1, SQLITE_STATIC);
	if ((rc = run(ix, st, "count refused event")) < 0)
		return rc;
	return tally_dropped(ix, &f);
}

static void add_time(cJSON *o, const char *key, int64_t ms)
{
	char ts[40];

	if (cn_time_format_rfc3339(ms, ts, sizeof(ts)) == 0)
		cJSON_AddStringToObject(o, key, ts);
}

/* Writes the pending drops as one outbox.overflow event and starts a new tally. The
 * report itself is exempt from the bound (at most one a minute, a few hundred bytes), so
 * it never displaces events and never causes another report. */
static int write_report(struct edge_index *ix, int64_t now_ms)
{
	static const char *const policies[] = { "drop_oldest", "drop_newest" };
	sqlite3_stmt *st = NULL;
	cJSON *o = cJSON_CreateObject(), *cams;
	char id[CN_RANDOM_ID_LEN + 1], *text = NULL;
	int64_t dropped;
	int rc, policy;

	if (!o || !(cams = cJSON_CreateObject())) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	if ((rc = cn_random_id(id, sizeof(id))) < 0)
		goto out_free;
	if ((rc = prepare(ix,
			  "SELECT pend_dropped, pend_first_seq, pend_last_seq, pend_first_ms, pend_last_ms,"
			  " policy, dropped_total, max_bytes FROM outbox WHERE id = 1",
			  &st)) < 0)
		goto out_free;
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = db_err(ix, "read pending drops");
		goto out_free;
	}
	dropped = sqlite3_column_int64(st, 0);
	policy = sqlite3_column_int(st, 5);
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "type", EDGE_OUTBOX_REPORT_TYPE);
	add_time(o, "time", now_ms);
	cJSON_AddStringToObject(o, "policy", policies[policy == EDGE_OUTBOX_DROP_NEWEST]);
	cn_json_add_i64(o, "dropped", dropped);
	if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
		cn_json_add_i64(o, "first_seq", sqlite3_column_int64(st, 1));
		cn_json_add_i64(o, "last_seq", sqlite3_column_int64(st, 2));
	}
	if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
		add_time(o, "first_time", sqlite3_column_int64(st, 3));
		add_time(o, "last_time", sqlite3_column_int64(st, 4));
	}
	cn_json_add_i64(o, "dropped_total", sqlite3_column_int64(st, 6));
	cn_json_add_i64(o, "max_bytes", sqlite3_column_int64(st, 7));
	sqlite3_finalize(st);
	st = NULL;
	cJSON_AddItemToObject(o, "cameras", cams);
	if ((rc = prepare(ix, "SELECT camera, n FROM outbox_dropped ORDER BY camera", &st)) < 0)
		goto out_free;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		cn_json_add_i64(cams, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1));
	if (rc != SQLITE_DONE) {
		rc = db_err(ix, "read dropped per camera");
		goto out_free;
	}
	if (!(text = cJSON_PrintUnformatted(o))) {
		rc = -ENOMEM;
		goto out_free;
	}
	if ((rc = insert_event(ix, id, NULL, EDGE_OUTBOX_REPORT_TYPE, now_ms, text, NULL)) < 0 ||
	    (rc = exec(ix, "DELETE FROM outbox_dropped")) < 0)
		goto out_free;
	rc = run_i64(ix,
		     "UPDATE outbox SET pend_dropped = 0, pend_first_seq = NULL, pend_last_seq = NULL,"
		     " pend_first_ms = NULL, pend_last_ms = NULL, last_report_ms = ?1,"
		     " reports_total = reports_total + 1 WHERE id = 1",
		     now_ms, 0, 0, "reset pending drops");
	if (rc == 0)
		cn_log_warn("index", "event outbox full: %lld undelivered events dropped (%s), reported as %s",
			    (long long)dropped, policies[policy == EDGE_OUTBOX_DROP_NEWEST], id);
out_free:
	sqlite3_finalize(st);
	cJSON_free(text);
	cJSON_Delete(o);
	return rc;
}

static bool report_due(const struct outbox_row *o, int64_t now_ms)
{
	/* a clock set back must not silence reports for the length of the jump */
	return o->pend_dropped > 0 && (o->last_report_ms == 0 || now_ms < o->last_report_ms ||
				       now_ms - o->last_report_ms >= EDGE_OUTBOX_REPORT_MS);
}

int edge_index_outbox_configure(struct edge_index *ix, int64_t max_bytes,
				enum edge_outbox_policy policy, bool delivering)
{
	return run_i64(ix, "UPDATE outbox SET max_bytes = ?1, policy = ?2, delivering = ?3 WHERE id = 1",
		       max_bytes, policy, delivering, "configure outbox");
}

/* Makes room for len bytes and appends; the caller holds the write transaction. */
static int outbox_add(struct edge_index *ix, const char *id, const char *camera, const char *type,
		      int64_t time_ms, const char *payload_json, int64_t now_ms, int64_t *seq)
{
	int64_t len = (int64_t)strlen(payload_json), need, floor_seq;
	struct outbox_row o;
	struct freed f;
	bool refused = false;
	int rc;

	if ((rc = outbox_load(ix, &o)) < 0)
		return rc;
	need = o.bytes + len - o.max_bytes;
	/* Without a central nothing is ever delivered: every event is history. */
	floor_seq = o.delivering ? o.acked_seq : INT64_MAX;
	if (need > 0 && len > o.max_bytes) {
		refused = true; /* larger than the whole outbox: no amount of dropping helps */
	} else if (need > 0) {
		/* Delivered events are history, kept only while there is room: always first. */
		if ((rc = free_oldest(ix, 0, floor_seq, need, false, &f)) < 0)
			return rc;
		if (f.n && (rc = run_i64(ix, "UPDATE outbox SET pruned_total = pruned_total + ?1 WHERE id = 1",
					 f.n, 0, 0, "count pruned events")) < 0)
			return rc;
		need -= f.bytes;
		if (need > 0 && o.policy == EDGE_OUTBOX_DROP_NEWEST) {
			refused = true;
		} else if (need > 0) {
			/* The batch in flight may already be stored at central: never counted lost. */
			int64_t lo = o.inflight_seq > floor_seq ? o.inflight_seq : floor_seq;

			if ((rc = free_oldest(ix, lo, INT64_MAX, need, true, &f)) < 0 ||
			    (f.n && (rc = tally_dropped(ix, &f)) < 0))
				return rc;
			refused = f.bytes < need; /* only reports and the batch in flight left */
		}
	}
	if (refused)
		rc = refuse(ix, camera, time_ms);
	else
		rc = insert_event(ix, id, camera, type, time_ms, payload_json, seq);
	if (rc < 0)
		return rc;
	/* the first drop is reported at once; later ones at most once a minute */
	if ((rc = outbox_load(ix, &o)) < 0 || (report_due(&o, now_ms) && (rc = write_report(ix, now_ms)) < 0))
		return rc;
	return refused ? CN_E_FULL : 0;
}

int edge_index_event_add(struct edge_index *ix, const char *id, const char *camera,
			 const char *type, int64_t time_ms, const char *payload_json, int64_t *seq)
{
	int rc;

	/* IMMEDIATE: the totals read at the start stay true until the commit. */
	if ((rc = exec(ix, "BEGIN IMMEDIATE")) < 0)
		return rc;
	rc = outbox_add(ix, id, camera, type, time_ms, payload_json, cn_time_wall_ms(), seq);
	if (rc < 0 && rc != CN_E_FULL) {
		exec(ix, "ROLLBACK");
		return rc;
	}
	int crc = exec(ix, "COMMIT");
	return crc < 0 ? crc : rc;
}

int edge_index_outbox_report(struct edge_index *ix, int64_t now_ms, bool *written)
{
	struct outbox_row o;
	int rc;

	*written = false;
	/* a plain read first: the common case (nothing dropped) takes no write lock */
	if ((rc = outbox_load(ix, &o)) < 0 || !report_due(&o, now_ms))
		return rc;
	if ((rc = exec(ix, "BEGIN IMMEDIATE")) < 0)
		return rc;
	if ((rc = outbox_load(ix, &o)) == 0 && report_due(&o, now_ms) && (rc = write_report(ix, now_ms)) == 0)
		*written = true;
	if (rc < 0) {
		exec(ix, "ROLLBACK");
		*written = false;
		return rc;
	}
	return exec(ix, "COMMIT");
}

int edge_index_outbox_acked(struct edge_index *ix, int64_t acked_seq)
{
	return run_i64(ix, "UPDATE outbox SET acked_seq = ?1, inflight_seq = 0 WHERE id = 1", acked_seq, 0, 0,
		       "save acked position");
}

int edge_index_outbox_inflight(struct edge_index *ix, int64_t seq)
{
	return run_i64(ix, "UPDATE outbox SET inflight_seq = ?1 WHERE id = 1", seq, 0, 0,
		       "save batch in flight");
}

int edge_index_outbox_stats(struct edge_index *ix, struct edge_outbox_stats *s)
{
	sqlite3_stmt *st;
	int rc = prepare(ix,
			 "SELECT bytes, events, undelivered, acked_seq, max_bytes, policy, delivering,"
			 " dropped_total, pruned_total, reports_total, pend_dropped, last_report_ms,"
			 " (SELECT COALESCE(MAX(seq), 0) FROM events),"
			 " (SELECT time_ms FROM events WHERE seq > o.acked_seq ORDER BY seq LIMIT 1)"
			 " FROM outbox o WHERE id = 1",
			 &st);

	if (rc < 0)
		return rc;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return db_err(ix, "read outbox state");
	}
	memset(s, 0, sizeof(*s));
	s->bytes = sqlite3_column_int64(st, 0);
	s->events = sqlite3_column_int64(st, 1);
	s->undelivered = sqlite3_column_int64(st, 2);
	s->acked_seq = sqlite3_column_int64(st, 3);
	s->max_bytes = sqlite3_column_int64(st, 4);
	s->policy = sqlite3_column_int(st, 5) == EDGE_OUTBOX_DROP_NEWEST ? EDGE_OUTBOX_DROP_NEWEST
									: EDGE_OUTBOX_DROP_OLDEST;
	s->delivering = sqlite3_column_int(st, 6) != 0;
	s->dropped_total = sqlite3_column_int64(st, 7);
	s->pruned_total = sqlite3_column_int64(st, 8);
	s->reports_total = sqlite3_column_int64(st, 9);
	s->pending_dropped = sqlite3_column_int64(st, 10);
	s->last_report_ms = sqlite3_column_int64(st, 11);
	s->last_seq = sqlite3_column_int64(st, 12);
	s->oldest_undelivered_ms = sqlite3_column_type(st, 13) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 13);
	if (!s->delivering) {
		s->undelivered = 0; /* nothing to deliver to: all of it is history */
		s->oldest_undelivered_ms = 0;
	}
	sqlite3_finalize(st);
	return 0;
}

int edge_index_events_since(struct edge_index *ix, int64_t since_seq, int limit,
			    int (*fn)(int64_t seq, const char *payload_json, void *arg), void *arg)
{
	sqlite3_stmt *st;
	int rc = prepare(ix, "SELECT seq, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?", &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, since_seq);
	sqlite3_bind_int(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int frc = fn(sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1), arg);
		if (frc) {
			sqlite3_finalize(st);
			return frc < 0 ? frc : 0;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_err(ix, "list events");
}

/* A query returning one integer. */
static int query_i64(struct edge_index *ix, const char *sql, int64_t *out, const char *what)
{
	sqlite3_stmt *st;
	int rc = prepare(ix, sql, &st);

	if (rc < 0)
		return rc;
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : db_err(ix, what);
}

int edge_index_total_bytes(struct edge_index *ix, int64_t *bytes)
{
	return query_i64(ix, "SELECT COALESCE(SUM(bytes), 0) FROM segments", bytes, "sum bytes");
}

#define NOT_PROTECTED                                                             \
	" AND NOT EXISTS (SELECT 1 FROM protected p WHERE p.camera = s.camera"     \
	" AND p.from_ms < s.end_ms AND p.to_ms > s.start_ms)"

int edge_index_next_to_expire(struct edge_index *ix, int64_t now_ms,
			      int64_t (*retention_ms)(const char *camera, void *arg), void *arg,
			      struct edge_segment_row *out)
{
	sqlite3_stmt *st;
	bool found = false;
	double best = -1;
	int rc;

	/* Each camera's oldest unprotected closed segment is its candidate; the one that
	 * has used the largest share of its camera's retention goes first, so cameras keep
	 * footage in proportion to their retention. */
	rc = prepare(ix,
		     "SELECT s.id, s.camera, s.path, s.start_ms, s.end_ms, s.bytes, s.open FROM segments s"
		     " WHERE s.open = 0" NOT_PROTECTED
		     " AND s.start_ms = (SELECT MIN(t.start_ms) FROM segments t WHERE t.camera = s.camera"
		     " AND t.open = 0 AND NOT EXISTS (SELECT 1 FROM protected p WHERE p.camera = t.camera"
		     " AND p.from_ms < t.end_ms AND p.to_ms > t.start_ms))",
		     &st);
	if (rc < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct edge_segment_row r;
		row_from(st, &r);
		int64_t keep = retention_ms(r.camera, arg);
		double share = (double)(now_ms - r.end_ms) / (double)(keep > 0 ? keep : 1);
		if (!found || share > best) {
			*out = r;
			best = share;
			found = true;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_err(ix, "find oldest segment");
	return found ? 0 : -ENOENT;
}

int edge_index_expired(struct edge_index *ix, const char *camera, int64_t cutoff_ms, int limit,
		       int (*fn)(const struct edge_segment_row *row, void *arg), void *arg)
{
	sqlite3_stmt *st;
	int rc = prepare(ix,
			 "SELECT s.id, s.camera, s.path, s.start_ms, s.end_ms, s.bytes, s.open FROM segments s"
			 " WHERE s.camera = ? AND s.open = 0 AND s.end_ms < ?" NOT_PROTECTED
			 " ORDER BY s.start_ms LIMIT ?",
			 &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, camera, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, cutoff_ms);
	sqlite3_bind_int(st, 3, limit);
	return each_segment(ix, st, fn, arg);
}

int edge_index_protect_add(struct edge_index *ix, const char *camera, int64_t from_ms, int64_t to_ms,
			   const char *reason, int64_t *id)
{
	sqlite3_stmt *st;
	int rc = prepare(ix,
			 "INSERT INTO protected(camera, from_ms, to_ms, reason, created_ms)"
			 " VALUES(?, ?, ?, ?, strftime('%s','now') * 1000)",
			 &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, camera, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, from_ms);
	sqlite3_bind_int64(st, 3, to_ms);
	sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
	if ((rc = run(ix, st, "insert protected range")) < 0)
		return rc;
	*id = sqlite3_last_insert_rowid(ix->db);
	return 0;
}

int edge_index_protect_delete(struct edge_index *ix, int64_t id)
{
	sqlite3_stmt *st;
	int rc = prepare(ix, "DELETE FROM protected WHERE id = ?", &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	if ((rc = run(ix, st, "delete protected range")) < 0)
		return rc;
	return sqlite3_changes(ix->db) ? 0 : -ENOENT;
}

int edge_index_protect_list(struct edge_index *ix, const char *camera,
			    int (*fn)(int64_t id, const char *camera, int64_t from_ms, int64_t to_ms,
				      const char *reason, void *arg),
			    void *arg)
{
	sqlite3_stmt *st;
	int rc = prepare(ix,
			 "SELECT id, camera, from_ms, to_ms, reason FROM protected"
			 " WHERE ?1 IS NULL OR camera = ?1 ORDER BY from_ms",
			 &st);

	if (rc < 0)
		return rc;
	if (camera)
		sqlite3_bind_text(st, 1, camera, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int frc = fn(sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
			     sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
			     (const char *)sqlite3_column_text(st, 4), arg);
		if (frc) {
			sqlite3_finalize(st);
			return frc < 0 ? frc : 0;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_err(ix, "list protected ranges");
}

int edge_index_last_event_seq(struct edge_index *ix, int64_t *seq)
{
	return query_i64(ix, "SELECT COALESCE(MAX(seq), 0) FROM events", seq, "last event");
}
