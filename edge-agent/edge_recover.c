/* edge_recover.c: crash recovery: walks fMP4 box headers (cn_mp4) to find what survived a kill -9. */
#include "edge_recover.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_log.h"
#include "cn_mp4.h"

struct walk_result {
	uint64_t valid_end;
	uint64_t file_size;
	int64_t media_ms;     /* video duration of the complete fragments */
	int nkeys;
	int64_t key_ms[4096]; /* relative to the first fragment */
	int64_t key_off[4096];
};

/* A hostile file's decode times could overflow a plain * 1000: split the division. */
static int64_t ticks_to_ms(uint64_t ticks, uint32_t timescale)
{
	uint64_t ms = ticks / timescale * 1000 + ticks % timescale * 1000 / timescale;

	return ms > (uint64_t)INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)ms;
}

/* Walks path; fills r. Reads only box headers and moov/moof bodies. */
static int walk_file(const char *path, struct walk_result *r)
{
	struct cn_mp4_walk w;
	struct stat st;
	uint8_t *buf = malloc(CN_MP4_WALK_MAX_BOX);
	uint64_t off;
	size_t len;
	int fd, rc;

	memset(r, 0, sizeof(*r));
	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out_free_buf;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	r->file_size = (uint64_t)st.st_size;
	cn_mp4_walk_init(&w);
	while ((rc = cn_mp4_walk_next(&w, r->file_size, &off, &len)) > 0) {
		if (pread(fd, buf, len, (off_t)off) != (ssize_t)len) {
			rc = -EIO;
			break;
		}
		rc = cn_mp4_walk_feed(&w, buf, len);
		if (rc < 0)
			break;
		if (rc == CN_MP4_WALK_FRAGMENT && w.last.has_video && w.last.keyframe &&
		    r->nkeys < (int)(sizeof(r->key_ms) / sizeof(r->key_ms[0])) && w.video >= 0) {
			uint32_t ts = w.init.tracks[w.video].timescale;
			r->key_ms[r->nkeys] = ticks_to_ms(w.last.video_time - w.video_start, ts);
			r->key_off[r->nkeys] = (int64_t)w.last.moof_offset;
			r->nkeys++;
		}
	}
	/* Damage past valid_end is what a crash leaves: keep what is whole. */
	if (rc < 0)
		cn_log_warn("recover", "'%s': damaged at byte %llu (%s); keeping %llu bytes", path,
			    (unsigned long long)w.next, cn_strerror(rc), (unsigned long long)w.valid_end);
	r->valid_end = w.valid_end;
	if (w.have_video_time && w.video >= 0)
		r->media_ms = ticks_to_ms(w.video_end - w.video_start, w.init.tracks[w.video].timescale);
	rc = 0;
out_close:
	close(fd);
out_free_buf:
	free(buf);
	return rc;
}

static int truncate_to(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

struct recover_ctx {
	const char *archive_dir;
	struct edge_index *ix;
	struct edge_recover_stats *st;
	struct walk_result *r;
};

static void add_keyframes(struct recover_ctx *c, int64_t id, int64_t start_ms)
{
	for (int i = 0; i < c->r->nkeys; i++)
		edge_index_keyframe_add(c->ix, id, start_ms + c->r->key_ms[i], c->r->key_off[i]);
}

/* An open row: the segment being written when the edge died. */
static int recover_open(const struct edge_segment_row *row, void *arg)
{
	struct recover_ctx *c = arg;
	char path[1024];
	int rc;

	c->st->open_rows++;
	snprintf(path, sizeof(path), "%s/%s", c->archive_dir, row->path);
	rc = walk_file(path, c->r);
	if (rc < 0 || c->r->media_ms <= 0) {
		cn_log_info("recover", "'%s': nothing playable (%s), dropped", row->path,
			    rc < 0 ? cn_strerror(rc) : "no complete fragment");
		unlink(path);
		c->st->rows_dropped++;
		return edge_index_segment_delete(c->ix, row->id);
	}
	if (c->r->valid_end < c->r->file_size) {
		if ((rc = truncate_to(path, c->r->valid_end)) < 0) {
			cn_log_error("recover", "cannot truncate '%s': %s", path, cn_strerror(rc));
			return rc;
		}
		c->st->truncated++;
		c->st->bytes_dropped += (int)(c->r->file_size - c->r->valid_end);
	}
	add_keyframes(c, row->id, row->start_ms);
	cn_log_info("recover", "'%s': closed at %.1f s (%llu bytes, %llu incomplete bytes cut)",
		    row->path, (double)c->r->media_ms / 1000.0, (unsigned long long)c->r->valid_end,
		    (unsigned long long)(c->r->file_size - c->r->valid_end));
	return edge_index_segment_finish(c->ix, row->id, row->start_ms,
					 row->start_ms + c->r->media_ms, (int64_t)c->r->valid_end);
}

/* Complete rows whose file is gone (deleted by hand, or a crash mid-retention). */
static int check_exists(const struct edge_segment_row *row, void *arg)
{
	struct recover_ctx *c = arg;
	char path[1024];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", c->archive_dir, row->path);
	if (stat(path, &st) == 0)
		return 0;
	cn_log_warn("recover", "'%s' is indexed but missing, dropped from the index", row->path);
	c->st->rows_dropped++;
	return edge_index_segment_delete(c->ix, row->id);
}

/* "2026-11-21" + "093012-345.mp4" -> epoch ms (UTC). */
static int name_time(const char *date, const char *file, int64_t *ms)
{
	int64_t y, mo, d, h, mi, s, milli;

	if (strlen(date) != 10 || strlen(file) != 14 || strcmp(file + 10, ".mp4") != 0 ||
	    file[6] != '-' || date[4] != '-' || date[7] != '-' ||
	    cn_str_to_i64((struct cn_str){ date, 4 }, 1970, 9999, &y) < 0 ||
	    cn_str_to_i64((struct cn_str){ date + 5, 2 }, 1, 12, &mo) < 0 ||
	    cn_str_to_i64((struct cn_str){ date + 8, 2 }, 1, 31, &d) < 0 ||
	    cn_str_to_i64((struct cn_str){ file, 2 }, 0, 23, &h) < 0 ||
	    cn_str_to_i64((struct cn_str){ file + 2, 2 }, 0, 59, &mi) < 0 ||
	    cn_str_to_i64((struct cn_str){ file + 4, 2 }, 0, 59, &s) < 0 ||
	    cn_str_to_i64((struct cn_str){ file + 7, 3 }, 0, 999, &milli) < 0)
		return -EINVAL;
	struct tm tm = { .tm_year = (int)y - 1900, .tm_mon = (int)mo - 1, .tm_mday = (int)d,
			 .tm_hour = (int)h, .tm_min = (int)mi, .tm_sec = (int)s };
	*ms = (int64_t)timegm(&tm) * 1000 + milli;
	return 0;
}

static void scan_orphans(struct recover_ctx *c)
{
	DIR *top = opendir(c->archive_dir);
	struct dirent *cam;

	if (!top)
		return;
	while ((cam = readdir(top))) {
		char camdir[1100];
		DIR *cd;
		struct dirent *day;
		if (cam->d_name[0] == '.')
			continue;
		snprintf(camdir, sizeof(camdir), "%.800s/%.255s", c->archive_dir, cam->d_name);
		if (!(cd = opendir(camdir)))
			continue;
		while ((day = readdir(cd))) {
			char daydir[1400];
			DIR *dd;
			struct dirent *f;
			if (day->d_name[0] == '.')
				continue;
			snprintf(daydir, sizeof(daydir), "%.1100s/%.255s", camdir, day->d_name);
			if (!(dd = opendir(daydir)))
				continue;
			while ((f = readdir(dd))) {
				char rel[256], path[1100];
				bool found = false;
				int64_t start, id;
				if (f->d_name[0] == '.')
					continue;
				snprintf(rel, sizeof(rel), "%.63s/%.10s/%.100s", cam->d_name, day->d_name, f->d_name);
				if (edge_index_has_path(c->ix, rel, &found) < 0 || found)
					continue;
				snprintf(path, sizeof(path), "%s/%s", c->archive_dir, rel);
				if (name_time(day->d_name, f->d_name, &start) < 0 ||
				    walk_file(path, c->r) < 0 || c->r->media_ms <= 0) {
					cn_log_warn("recover", "'%s' is not a playable segment, deleted", rel);
					unlink(path);
					c->st->orphans_deleted++;
					continue;
				}
				if (c->r->valid_end < c->r->file_size)
					truncate_to(path, c->r->valid_end);
				if (edge_index_segment_insert(c->ix, cam->d_name, rel, start,
							      start + c->r->media_ms,
							      (int64_t)c->r->valid_end, &id) == 0) {
					add_keyframes(c, id, start);
					c->st->orphans_indexed++;
					cn_log_info("recover", "'%s' was not indexed; added (%.1f s)", rel,
						    (double)c->r->media_ms / 1000.0);
				}
			}
			closedir(dd);
		}
		closedir(cd);
	}
	closedir(top);
}

int edge_recover(const char *archive_dir, struct edge_index *ix, struct edge_recover_stats *st)
{
	struct recover_ctx c = { archive_dir, ix, st, malloc(sizeof(struct walk_result)) };
	int rc;

	memset(st, 0, sizeof(*st));
	if (!c.r)
		return -ENOMEM;
	if ((rc = edge_index_open_segments(ix, recover_open, &c)) < 0)
		goto out_free;
	if ((rc = edge_index_all_segments(ix, check_exists, &c)) < 0)
		goto out_free;
	scan_orphans(&c);
	if (st->open_rows || st->rows_dropped || st->orphans_indexed || st->orphans_deleted)
		cn_log_info("recover", "archive recovered: %d open segments closed (%d truncated, %d bytes cut), "
			    "%d rows dropped, %d unindexed files added, %d deleted",
			    st->open_rows, st->truncated, st->bytes_dropped, st->rows_dropped,
			    st->orphans_indexed, st->orphans_deleted);
out_free:
	free(c.r);
	return rc;
}
