/* edge_index.c: SQLite schema, migrations and the queries the edge needs; prepared per call. */
#include "edge_index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_log.h"

#define SCHEMA_VERSION 1

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
	if ((rc = exec(ix, "PRAGMA user_version = 1")) < 0)
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

int edge_index_event_add(struct edge_index *ix, const char *id, const char *camera,
			 const char *type, int64_t time_ms, const char *payload_json, int64_t *seq)
{
	sqlite3_stmt *st;
	int rc = prepare(ix,
			 "INSERT INTO events(id, camera, type, time_ms, payload) VALUES(?, ?, ?, ?, ?)",
			 &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (camera)
		sqlite3_bind_text(st, 2, camera, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, time_ms);
	sqlite3_bind_text(st, 5, payload_json, -1, SQLITE_STATIC);
	if ((rc = run(ix, st, "insert event")) < 0)
		return rc;
	if (seq)
		*seq = sqlite3_last_insert_rowid(ix->db);
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
