/* edge_retention.c: the retention worker: age first, then quota, oldest share of retention first. */
#include "edge_retention.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cn_err.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_time.h"
#include "edge_index.h"

/* Once over a limit, delete down to this share of it, so passes do not chase each byte. */
#define HYSTERESIS_PERMILLE 950
#define MAX_DELETES_PER_PASS 5000

struct pass {
	struct edge_retention *r;
	struct edge_index *ix;
	const struct edge_retention_job *job;
	int deleted;
};

static int64_t fs_used_permille(const char *dir)
{
	struct statvfs vfs;

	if (statvfs(dir, &vfs) < 0 || vfs.f_blocks == 0)
		return -1;
	/* Like df: used / (used + available to us). */
	uint64_t used = vfs.f_blocks - vfs.f_bfree;
	uint64_t total = used + vfs.f_bavail;
	return total ? (int64_t)(used * 1000 / total) : -1;
}

/* Row first, then file: a crash in between leaves a file the next start re-indexes,
 * never a row pointing at nothing. */
static int remove_segment(struct pass *p, const struct edge_segment_row *row)
{
	char path[1100];
	int rc = edge_index_segment_delete(p->ix, row->id);

	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/%s", p->r->archive_dir, row->path);
	if (unlink(path) < 0 && errno != ENOENT)
		cn_log_warn("retention", "cannot delete '%s': %s", path, strerror(errno));
	atomic_fetch_add(&p->r->deleted_segments, 1);
	atomic_fetch_add(&p->r->deleted_bytes, row->bytes);
	p->deleted++;
	return 0;
}

static int expire_one(const struct edge_segment_row *row, void *arg)
{
	return remove_segment(arg, row);
}

static int64_t retention_of(const char *camera, void *arg)
{
	const struct edge_retention_job *job = arg;

	for (int i = 0; i < job->ncams; i++)
		if (strcmp(job->cams[i].id, camera) == 0)
			return job->cams[i].retention_ms;
	return EDGE_RETENTION_UNCONFIGURED_MS;
}

static bool over_limit(struct pass *p, int64_t bytes, int64_t used, bool already_over)
{
	int64_t scale = already_over ? HYSTERESIS_PERMILLE : 1000;

	if (p->job->quota_bytes > 0 && bytes * 1000 > p->job->quota_bytes * scale)
		return true;
	return used >= 0 && used * 1000 > (int64_t)p->job->max_percent * 10 * scale;
}

static void run_pass(struct edge_retention *r, struct edge_index *ix,
		     const struct edge_retention_job *job)
{
	struct pass p = { r, ix, job, 0 };
	int64_t now = cn_time_wall_ms(), bytes = 0, used;
	bool stuck = false;

	/* By age, camera by camera. */
	for (int i = 0; i < job->ncams; i++)
		edge_index_expired(ix, job->cams[i].id, now - job->cams[i].retention_ms, 1000,
				   expire_one, &p);
	/* By quota: bytes we index, and the filesystem as a whole. */
	edge_index_total_bytes(ix, &bytes);
	used = fs_used_permille(r->archive_dir);
	if (over_limit(&p, bytes, used, false)) {
		while (p.deleted < MAX_DELETES_PER_PASS && over_limit(&p, bytes, used, true)) {
			struct edge_segment_row row;
			int rc = edge_index_next_to_expire(ix, now, retention_of, (void *)job, &row);
			if (rc == -ENOENT) {
				stuck = true;
				break;
			}
			if (rc < 0 || remove_segment(&p, &row) < 0)
				break;
			bytes -= row.bytes;
			used = fs_used_permille(r->archive_dir);
		}
	}
	if (stuck && !atomic_load(&r->stuck))
		cn_log_error("retention", "archive over its limit but only protected or open footage is left");
	atomic_store(&r->stuck, stuck);
	if (p.deleted)
		cn_log_info("retention", "deleted %d segments; archive now %lld bytes", p.deleted, (long long)bytes);
	atomic_store(&r->archive_bytes, bytes);
	atomic_store(&r->fs_used_permille, used);
	atomic_fetch_add(&r->runs, 1);
}

static gpointer retention_thread(gpointer data)
{
	struct edge_retention *r = data;
	struct edge_index *ix = NULL;
	void *item;

	if (edge_index_open(r->index_path, &ix) < 0) {
		cn_log_error("retention", "cannot open the index: retention stopped");
		return NULL;
	}
	while (cn_queue_pop(r->jobs, -1, &item) == 0) {
		run_pass(r, ix, item);
		free(item);
	}
	edge_index_close(ix);
	return NULL;
}

int edge_retention_start(struct edge_retention *r, const char *archive_dir, const char *index_path)
{
	int rc;

	memset(r, 0, sizeof(*r));
	cn_strlcpy(r->archive_dir, archive_dir, sizeof(r->archive_dir));
	cn_strlcpy(r->index_path, index_path, sizeof(r->index_path));
	/* Two pending passes are plenty: a later one supersedes what an earlier would do. */
	if ((rc = cn_queue_new("retention", 2, NULL, NULL, NULL, free, &r->jobs)) < 0)
		return rc;
	r->thread = g_thread_new("retention", retention_thread, r);
	return 0;
}

int edge_retention_submit(struct edge_retention *r, struct edge_retention_job *job)
{
	int rc = cn_queue_push(r->jobs, job);

	if (rc < 0)
		free(job);
	return rc;
}

void edge_retention_stop(struct edge_retention *r)
{
	if (!r->jobs)
		return;
	cn_queue_close(r->jobs);
	if (r->thread)
		g_thread_join(r->thread);
	r->thread = NULL;
	cn_queue_free(r->jobs);
	r->jobs = NULL;
}

int edge_retention_metrics(struct cn_buf *out, void *arg)
{
	struct edge_retention *r = arg;
	int rc = 0;

	rc |= cn_metrics_family(out, "canopy_archive_bytes", "gauge", "Bytes of indexed footage.");
	rc |= cn_buf_printf(out, "canopy_archive_bytes %lld\n", (long long)atomic_load(&r->archive_bytes));
	rc |= cn_metrics_family(out, "canopy_archive_filesystem_used_ratio", "gauge",
				"Used share of the archive's filesystem.");
	rc |= cn_buf_printf(out, "canopy_archive_filesystem_used_ratio %.3f\n",
			    (double)atomic_load(&r->fs_used_permille) / 1000.0);
	rc |= cn_metrics_family(out, "canopy_retention_deleted_segments_total", "counter",
				"Segments deleted by age or quota.");
	rc |= cn_buf_printf(out, "canopy_retention_deleted_segments_total %lld\n",
			    (long long)atomic_load(&r->deleted_segments));
	rc |= cn_metrics_family(out, "canopy_retention_deleted_bytes_total", "counter",
				"Bytes deleted by age or quota.");
	rc |= cn_buf_printf(out, "canopy_retention_deleted_bytes_total %lld\n",
			    (long long)atomic_load(&r->deleted_bytes));
	rc |= cn_metrics_family(out, "canopy_archive_over_limit", "gauge",
				"1 when the archive is over its quota and nothing more may be deleted.");
	rc |= cn_buf_printf(out, "canopy_archive_over_limit %d\n", atomic_load(&r->stuck));
	return rc ? -ENOBUFS : 0;
}
