/* edge_subpull.c: on-demand RTSP pull of a camera's sub stream for live viewers: demux only, reconnect with backoff. */
#include "edge_subpull.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <libavformat/avformat.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_log.h"
#include "cn_time.h"
#include "edge_ingest.h"

struct edge_subpull {
	struct edge_camera_cfg cfg; /* the thread's own copy (holds credentials) */
	int64_t timeout_ms;
	struct edge_live *live;
	GThread *thread;
	atomic_bool stop;
	atomic_bool exited;
	atomic_llong deadline_mono;
	GMutex lock;
	char status[200];
};

static int interrupt_cb(void *arg)
{
	struct edge_subpull *p = arg;

	return atomic_load(&p->stop) || cn_time_mono_ms() > atomic_load(&p->deadline_mono);
}

static void set_status(struct edge_subpull *p, const char *s)
{
	g_mutex_lock(&p->lock);
	cn_strlcpy(p->status, s, sizeof(p->status));
	g_mutex_unlock(&p->lock);
}

static gpointer pull_thread(gpointer data)
{
	struct edge_subpull *p = data;
	int64_t backoff = 1000;
	char url[1200], why[200];

	while (!atomic_load(&p->stop)) {
		AVFormatContext *ic = avformat_alloc_context();
		AVDictionary *o = NULL;
		AVPacket *pkt = av_packet_alloc();
		int rc, vi = -1;

		if (!ic || !pkt) {
			avformat_free_context(ic);
			av_packet_free(&pkt);
			break;
		}
		edge_ingest_url(&p->cfg, p->cfg.sub_url, url, sizeof(url));
		if (p->cfg.transport != EDGE_TRANSPORT_AUTO)
			av_dict_set(&o, "rtsp_transport", edge_transport_name(p->cfg.transport), 0);
		av_dict_set_int(&o, "timeout", p->timeout_ms * 1000, 0);
		av_dict_set_int(&o, "analyzeduration", 1000000, 0);
		av_dict_set_int(&o, "probesize", 512 * 1024, 0);
		ic->interrupt_callback.callback = interrupt_cb;
		ic->interrupt_callback.opaque = p;
		atomic_store(&p->deadline_mono, cn_time_mono_ms() + p->timeout_ms);
		rc = avformat_open_input(&ic, url, NULL, &o);
		av_dict_free(&o);
		memset(url, 0, sizeof(url));
		if (rc >= 0) {
			atomic_store(&p->deadline_mono, cn_time_mono_ms() + p->timeout_ms);
			rc = avformat_find_stream_info(ic, NULL);
		}
		if (rc >= 0)
			rc = vi = av_find_best_stream(ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
		if (rc >= 0) {
			AVStream *st = ic->streams[vi];
			set_status(p, "");
			edge_live_begin(p->live, st->codecpar, NULL);
			backoff = 1000;
			while (!atomic_load(&p->stop)) {
				atomic_store(&p->deadline_mono, cn_time_mono_ms() + p->timeout_ms);
				if ((rc = av_read_frame(ic, pkt)) < 0)
					break;
				if (pkt->stream_index == vi && pkt->pts != AV_NOPTS_VALUE)
					edge_live_feed(p->live, pkt, st->time_base, cn_time_wall_ms());
				av_packet_unref(pkt);
			}
		}
		if (rc < 0 && !atomic_load(&p->stop)) {
			snprintf(why, sizeof(why), "sub stream: %s", av_err2str(rc));
			set_status(p, why);
			cn_log_warn("subpull", "camera '%s': %s", p->cfg.id, why);
		}
		av_packet_free(&pkt);
		avformat_close_input(&ic);
		for (int64_t t = 0; t < backoff && !atomic_load(&p->stop); t += 100)
			g_usleep(100000);
		backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
	}
	edge_live_end(p->live);
	atomic_store(&p->exited, true);
	return NULL;
}

int edge_subpull_start(const struct edge_camera_cfg *cfg, int64_t timeout_ms,
		       struct edge_subpull **out)
{
	struct edge_subpull *p = calloc(1, sizeof(*p));
	char name[16];
	int rc;

	if (!p)
		return -ENOMEM;
	p->cfg = *cfg;
	p->timeout_ms = timeout_ms;
	g_mutex_init(&p->lock);
	cn_strlcpy(p->status, "connecting", sizeof(p->status));
	if ((rc = edge_live_new(cfg->id, g_main_context_default(), &p->live)) < 0) {
		g_mutex_clear(&p->lock);
		free(p);
		return rc;
	}
	snprintf(name, sizeof(name), "sub-%.11s", cfg->id);
	p->thread = g_thread_new(name, pull_thread, p);
	*out = p;
	return 0;
}

struct edge_live *edge_subpull_live(struct edge_subpull *p)
{
	return p->live;
}

void edge_subpull_status(struct edge_subpull *p, char *out, size_t cap)
{
	g_mutex_lock(&p->lock);
	cn_strlcpy(out, p->status, cap);
	g_mutex_unlock(&p->lock);
}

bool edge_subpull_stale(struct edge_subpull *p, const struct edge_camera_cfg *cfg)
{
	return strcmp(p->cfg.sub_url, cfg->sub_url) != 0 || strcmp(p->cfg.username, cfg->username) != 0 ||
	       strcmp(p->cfg.password, cfg->password) != 0 || p->cfg.transport != cfg->transport;
}

void edge_subpull_request_stop(struct edge_subpull *p)
{
	atomic_store(&p->stop, true);
}

bool edge_subpull_exited(struct edge_subpull *p)
{
	return atomic_load(&p->exited);
}

void edge_subpull_free(struct edge_subpull *p)
{
	if (!p)
		return;
	edge_subpull_request_stop(p);
	g_thread_join(p->thread);
	edge_live_unref(p->live);
	g_mutex_clear(&p->lock);
	memset(&p->cfg, 0, sizeof(p->cfg));
	free(p);
}
