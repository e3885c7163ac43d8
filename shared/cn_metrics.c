/* cn_metrics.c: the registry and the standard process metrics read from /proc. */
#include "cn_metrics.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cn_err.h"
#include "cn_log.h"
#include "cn_time.h"

#define MAX_METRICS 256
#define MAX_COLLECTORS 64

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cn_metric *metrics[MAX_METRICS];
static size_t n_metrics;
static struct {
	cn_metrics_collector fn;
	void *arg;
} collectors[MAX_COLLECTORS];
static size_t n_collectors;
static char build_component[32] = "unknown";
static char build_version[64] = "unknown";
static int64_t start_wall_ms;

int cn_metrics_register(struct cn_metric *m)
{
	int rc = 0;

	pthread_mutex_lock(&reg_lock);
	if (n_metrics == MAX_METRICS)
		rc = -ENOSPC;
	else
		metrics[n_metrics++] = m;
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

int cn_metrics_add_collector(cn_metrics_collector fn, void *arg)
{
	int rc = 0;

	pthread_mutex_lock(&reg_lock);
	if (n_collectors == MAX_COLLECTORS) {
		rc = -ENOSPC;
	} else {
		collectors[n_collectors].fn = fn;
		collectors[n_collectors].arg = arg;
		n_collectors++;
	}
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

void cn_metrics_remove_collector(cn_metrics_collector fn, void *arg)
{
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < n_collectors; i++) {
		if (collectors[i].fn == fn && collectors[i].arg == arg) {
			memmove(&collectors[i], &collectors[i + 1],
				(n_collectors - i - 1) * sizeof(collectors[0]));
			n_collectors--;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

void cn_metrics_set_build_info(const char *component, const char *version)
{
	cn_strlcpy(build_component, component, sizeof(build_component));
	cn_strlcpy(build_version, version, sizeof(build_version));
	start_wall_ms = cn_time_wall_ms();
}

void cn_metrics_reset(void)
{
	pthread_mutex_lock(&reg_lock);
	n_metrics = 0;
	n_collectors = 0;
	pthread_mutex_unlock(&reg_lock);
}

int cn_metrics_family(struct cn_buf *out, const char *name, const char *type, const char *help)
{
	return cn_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int cn_metrics_label_value(struct cn_buf *out, const char *v)
{
	int rc = 0;

	for (; rc == 0 && *v; v++) {
		if (*v == '\\' || *v == '"')
			rc = cn_buf_printf(out, "\\%c", *v);
		else if (*v == '\n')
			rc = cn_buf_append_str(out, "\\n");
		else
			rc = cn_buf_append(out, v, 1);
	}
	return rc;
}

/* Fields of /proc/self/stat after the "(comm)" field, which may itself hold spaces. */
static int read_proc_stat(long long *fields, int want)
{
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p++;
	/* Field 3 (state) is a letter; skip it, then read numbers from field 4 on. */
	while (*p == ' ')
		p++;
	if (*p)
		p++;
	for (int i = 0; i < want; i++) {
		char *end;
		fields[i] = strtoll(p, &end, 10);
		if (end == p)
			return -EIO;
		p = end;
	}
	return 0;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream's own fd */
}

static int render_process(struct cn_buf *out)
{
	long long f[21]; /* fields 4..24 */
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;
	int rc = 0;

	if (read_proc_stat(f, 21) == 0 && tick > 0) {
		/* utime=14 stime=15 threads=20 vsize=23 rss=24 -> index field-4 */
		rc |= cn_metrics_family(out, "process_cpu_seconds_total", "counter",
					"User and system CPU time spent in seconds.");
		rc |= cn_buf_printf(out, "process_cpu_seconds_total %.2f\n",
				    (double)(f[10] + f[11]) / (double)tick);
		rc |= cn_metrics_family(out, "process_resident_memory_bytes", "gauge",
					"Resident memory size in bytes.");
		rc |= cn_buf_printf(out, "process_resident_memory_bytes %lld\n", f[20] * page);
		rc |= cn_metrics_family(out, "process_virtual_memory_bytes", "gauge",
					"Virtual memory size in bytes.");
		rc |= cn_buf_printf(out, "process_virtual_memory_bytes %lld\n", f[19]);
		rc |= cn_metrics_family(out, "process_threads", "gauge", "Number of OS threads.");
		rc |= cn_buf_printf(out, "process_threads %lld\n", f[16]);
	}
	int fds = count_fds();
	if (fds >= 0) {
		rc |= cn_metrics_family(out, "process_open_fds", "gauge",
					"Number of open file descriptors.");
		rc |= cn_buf_printf(out, "process_open_fds %d\n", fds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rc |= cn_metrics_family(out, "process_max_fds", "gauge",
					"Maximum number of open file descriptors.");
		rc |= cn_buf_printf(out, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
	rc |= cn_metrics_family(out, "process_start_time_seconds", "gauge",
				"Start time of the process since unix epoch in seconds.");
	rc |= cn_buf_printf(out, "process_start_time_seconds %.3f\n", (double)start_wall_ms / 1000);
	return rc ? -ENOBUFS : 0;
}

int cn_metrics_render(struct cn_buf *out)
{
	int rc = render_process(out);

	rc |= cn_metrics_family(out, "canopy_build_info", "gauge",
				"Build of this binary; the value is always 1.");
	rc |= cn_buf_printf(out, "canopy_build_info{component=\"%s\",version=\"", build_component);
	rc |= cn_metrics_label_value(out, build_version);
	rc |= cn_buf_append_str(out, "\"} 1\n");
	rc |= cn_metrics_family(out, "canopy_log_messages_total", "counter",
				"Log records written, by level.");
	for (int l = CN_LOG_ERROR; l <= CN_LOG_DEBUG; l++)
		rc |= cn_buf_printf(out, "canopy_log_messages_total{level=\"%s\"} %llu\n",
				    cn_log_level_name((enum cn_log_level)l),
				    (unsigned long long)cn_log_count((enum cn_log_level)l));
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < n_metrics; i++) {
		struct cn_metric *m = metrics[i];
		rc |= cn_metrics_family(out, m->name,
					m->type == CN_METRIC_COUNTER ? "counter" : "gauge", m->help);
		rc |= cn_buf_printf(out, "%s %lld\n", m->name, (long long)atomic_load(&m->value));
	}
	for (size_t i = 0; i < n_collectors; i++)
		rc |= collectors[i].fn(out, collectors[i].arg);
	pthread_mutex_unlock(&reg_lock);
	return rc ? -ENOBUFS : 0;
}
