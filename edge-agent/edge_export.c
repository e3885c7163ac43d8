/* edge_export.c: remuxes segments (no transcoding, video and G.711 audio) into a faststart MP4 from the keyframe at or before "from". */
#include "edge_export.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libavutil/mathematics.h>

#include "cn_err.h"
#include "cn_log.h"
#include "cn_time.h"
#include "edge_index.h"

#define MAX_SEGMENTS 20000
/* Audio read before the export's first keyframe, held until it places them: a GOP's worth. */
#define EXPORT_PENDING_AUDIO 512

struct export_job {
	struct edge_exporter *x;
	GThread *thread;
	uint64_t req_id;
	char camera[64];
	int64_t from_ms, to_ms;
	/* results */
	int status; /* HTTP status */
	char err[300];
	int fd;
	int64_t len;
	double duration_s;
};

struct seg_list {
	int n;
	struct edge_segment_row *rows;
};

static int collect(const struct edge_segment_row *row, void *arg)
{
	struct seg_list *l = arg;

	if (l->n == MAX_SEGMENTS)
		return 1;
	l->rows[l->n++] = *row;
	return 0;
}

/* The export file, opened on the first segment read: its format follows that segment's. */
struct export_out {
	const char *path;
	AVFormatContext *oc;
	AVCodecParameters *par0; /* the video parameters of the first segment */
	int a_out;               /* audio stream in oc, -1 when none */
	enum AVCodecID a_codec;
	int64_t base_ms, last_dts, last_adts;
	int64_t last_step; /* the last video frame's duration in oc's time base */
};

/* The segment's G.711 track (edge_segment.c records no other audio), or -1. */
static int find_audio(const AVFormatContext *ic)
{
	for (unsigned i = 1; i < ic->nb_streams; i++) {
		const AVCodecParameters *p = ic->streams[i]->codecpar;
		if (p->codec_type == AVMEDIA_TYPE_AUDIO &&
		    (p->codec_id == AV_CODEC_ID_PCM_ALAW || p->codec_id == AV_CODEC_ID_PCM_MULAW))
			return (int)i;
	}
	return -1;
}

static int open_out(struct export_out *x, const AVFormatContext *ic, int ai)
{
	AVDictionary *o = NULL;
	AVStream *os;
	int rc;

	/* G.711 needs the mov muxer (the mp4 muxer has no sample entry for it). */
	if ((rc = avformat_alloc_output_context2(&x->oc, NULL, ai >= 0 ? "mov" : "mp4", x->path)) < 0)
		return rc;
	if ((rc = avio_open(&x->oc->pb, x->path, AVIO_FLAG_WRITE)) < 0)
		return rc;
	os = avformat_new_stream(x->oc, NULL);
	x->par0 = avcodec_parameters_alloc();
	if (!os || !x->par0 || avcodec_parameters_copy(os->codecpar, ic->streams[0]->codecpar) < 0 ||
	    avcodec_parameters_copy(x->par0, ic->streams[0]->codecpar) < 0)
		return -ENOMEM;
	os->codecpar->codec_tag = 0;
	os->time_base = (AVRational){ 1, 90000 };
	if (ai >= 0) {
		const AVCodecParameters *ap = ic->streams[ai]->codecpar;
		AVStream *as = avformat_new_stream(x->oc, NULL);
		if (!as || avcodec_parameters_copy(as->codecpar, ap) < 0)
			return -ENOMEM;
		as->codecpar->codec_tag = 0;
		as->time_base = (AVRational){ 1, ap->sample_rate > 0 ? ap->sample_rate : 8000 };
		x->a_out = as->index;
		x->a_codec = ap->codec_id;
	}
	av_dict_set(&o, "movflags", "+faststart", 0);
	/* Both tracks start at zero (copy_audio pads the audio's start), so an edit list
	 * could only get in the way: the mov muxer may write one that hides the first frame. */
	if (ai >= 0)
		av_dict_set(&o, "use_editlist", "0", 0);
	rc = avformat_write_header(x->oc, &o);
	av_dict_free(&o);
	return rc;
}

/* An audio packet of a segment: placed by the segment's clock like the video; samples
 * before the export's first frame, past "to", or overlapping what was written (segment
 * anchors are refined by a few ms) are cut off (G.711: a byte per sample and channel). */
static int copy_audio(struct export_job *j, const struct edge_segment_row *seg, struct export_out *x,
		      AVStream *in, AVPacket *pkt)
{
	AVStream *os = x->oc->streams[x->a_out];
	int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
	int ch = in->codecpar->ch_layout.nb_channels > 0 ? in->codecpar->ch_layout.nb_channels : 1;
	int64_t wall, out, next;

	if (ts == AV_NOPTS_VALUE || x->base_ms == INT64_MIN)
		return 0;
	wall = seg->start_ms + av_rescale_q(ts, in->time_base, (AVRational){ 1, 1000 });
	out = av_rescale_q(seg->start_ms - x->base_ms, (AVRational){ 1, 1000 }, os->time_base) +
	      av_rescale_q(ts, in->time_base, os->time_base);
	if (wall >= j->to_ms)
		return 0;
	next = x->last_adts == INT64_MIN ? 0 : x->last_adts;
	if (out < next) {
		int64_t cut = next - out;
		if (cut * ch >= pkt->size)
			return 0;
		pkt->data += cut * ch;
		pkt->size -= (int)(cut * ch);
		out = next;
	}
	if (x->last_adts == INT64_MIN && out > 0 && out < os->time_base.den) {
		/* Silence up to the first sample (under a second): the track starts with the
		 * video, without an edit list. */
		AVPacket *sil = av_packet_alloc();
		int rc = sil ? av_new_packet(sil, (int)(out * ch)) : AVERROR(ENOMEM);
		if (rc < 0) {
			av_packet_free(&sil);
			return rc;
		}
		memset(sil->data, in->codecpar->codec_id == AV_CODEC_ID_PCM_ALAW ? 0xd5 : 0xff, (size_t)sil->size);
		sil->pts = sil->dts = 0;
		sil->duration = out;
		sil->stream_index = x->a_out;
		sil->flags = AV_PKT_FLAG_KEY;
		rc = av_interleaved_write_frame(x->oc, sil);
		av_packet_free(&sil);
		if (rc < 0)
			return rc;
	}
	pkt->duration = pkt->size / ch;
	pkt->pts = pkt->dts = out;
	pkt->stream_index = x->a_out;
	pkt->pos = -1;
	x->last_adts = out + pkt->duration;
	return av_interleaved_write_frame(x->oc, pkt);
}

/* Copies the packets of one segment that fall before to_ms. Returns 1 when the range is
 * done, 0 to go on with the next segment, negative on error. */
static int copy_segment(struct export_job *j, const struct edge_segment_row *seg, bool first,
			struct export_out *x)
{
	char path[1100];
	AVFormatContext *ic = NULL;
	AVPacket *pkt = av_packet_alloc();
	int rc, done = 0, ai, npending = 0;
	bool started = !first, seg_first = true;
	int64_t shift = 0;
	AVPacket *pending[EXPORT_PENDING_AUDIO];

	snprintf(path, sizeof(path), "%s/%s", j->x->archive_dir, seg->path);
	if (!pkt)
		return -ENOMEM;
	if ((rc = avformat_open_input(&ic, path, NULL, NULL)) < 0 ||
	    (rc = avformat_find_stream_info(ic, NULL)) < 0) {
		cn_log_warn("export", "cannot read '%s': %s", seg->path, av_err2str(rc));
		av_packet_free(&pkt);
		avformat_close_input(&ic);
		return 0; /* a damaged segment leaves a gap, not a failed export */
	}
	AVStream *in = ic->streams[0];
	ai = find_audio(ic);
	if (!x->oc) {
		if ((rc = open_out(x, ic, ai)) < 0)
			goto out_close;
	} else if (x->par0->width != in->codecpar->width || x->par0->height != in->codecpar->height ||
		   x->par0->codec_id != in->codecpar->codec_id) {
		/* One MP4 holds one format: the export ends where the camera changed it. */
		done = 1;
		goto out_close;
	}
	/* Audio of another codec than the export's first segment cannot join its track. */
	if (ai >= 0 && (x->a_out < 0 || ic->streams[ai]->codecpar->codec_id != x->a_codec))
		ai = -1;
	if (first && j->from_ms > seg->start_ms) {
		int64_t ts = av_rescale_q(j->from_ms - seg->start_ms, (AVRational){ 1, 1000 }, in->time_base);
		av_seek_frame(ic, 0, ts, AVSEEK_FLAG_BACKWARD);
	}
	AVStream *os = x->oc->streams[0];
	while ((rc = av_read_frame(ic, pkt)) >= 0) {
		if (pkt->stream_index != 0) {
			rc = 0;
			if (ai >= 0 && pkt->stream_index == ai) {
				AVStream *as = ic->streams[ai];
				int64_t ats = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
				/* A fragment stores its video before its audio: the audio of the
				 * first frames may come before the keyframe, and the audio of the
				 * last ones after the first frame past "to". */
				if (done && (ats == AV_NOPTS_VALUE ||
					     seg->start_ms + av_rescale_q(ats, as->time_base, (AVRational){ 1, 1000 }) >= j->to_ms)) {
					av_packet_unref(pkt);
					break;
				}
				if (x->base_ms == INT64_MIN) {
					if (npending < EXPORT_PENDING_AUDIO)
						pending[npending++] = av_packet_clone(pkt);
				} else {
					rc = copy_audio(j, seg, x, as, pkt);
				}
			}
			av_packet_unref(pkt);
			if (rc < 0)
				goto out_close;
			continue;
		}
		int64_t dts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
		int64_t wall = seg->start_ms + av_rescale_q(dts, in->time_base, (AVRational){ 1, 1000 });
		if (wall >= j->to_ms || done) {
			done = 1;
			av_packet_unref(pkt);
			/* one more fragment's audio at most */
			if (ai < 0 || wall >= j->to_ms + 5000)
				break;
			continue;
		}
		if (!started) {
			/* Start on the keyframe at or before "from" (the seek put us there). */
			if (!(pkt->flags & AV_PKT_FLAG_KEY)) {
				av_packet_unref(pkt);
				continue;
			}
			started = true;
		}
		if (x->base_ms == INT64_MIN)
			x->base_ms = wall;
		int64_t seg_off = av_rescale_q(seg->start_ms - x->base_ms, (AVRational){ 1, 1000 }, os->time_base);
		int64_t cts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts - dts : 0;
		pkt->dts = seg_off + av_rescale_q(dts, in->time_base, os->time_base);
		/* Segment anchors are wall-clock times stamped when packets were read, so
		 * neighbours can overlap by a read batch: the whole segment moves to start
		 * one frame after the last, rather than frames bunching up at the joint. */
		if (seg_first && x->last_dts != INT64_MIN && pkt->dts <= x->last_dts)
			shift = x->last_dts + (x->last_step > 0 ? x->last_step : 1) - pkt->dts;
		seg_first = false;
		pkt->dts += shift;
		if (x->last_dts != INT64_MIN && pkt->dts <= x->last_dts)
			pkt->dts = x->last_dts + 1;
		pkt->pts = pkt->dts + av_rescale_q(cts, in->time_base, os->time_base);
		if (x->last_dts != INT64_MIN)
			x->last_step = pkt->dts - x->last_dts;
		x->last_dts = pkt->dts;
		pkt->stream_index = 0;
		pkt->pos = -1;
		if ((rc = av_interleaved_write_frame(x->oc, pkt)) < 0)
			goto out_close;
		for (int i = 0; i < npending; i++) {
			if (pending[i] && (rc = copy_audio(j, seg, x, ic->streams[ai], pending[i])) < 0)
				goto out_close;
			av_packet_free(&pending[i]);
		}
		npending = 0;
	}
	rc = 0;
out_close:
	for (int i = 0; i < npending; i++)
		av_packet_free(&pending[i]);
	av_packet_free(&pkt);
	avformat_close_input(&ic);
	return rc < 0 ? rc : done;
}

static void run_export(struct export_job *j)
{
	struct edge_index *ix = NULL;
	struct seg_list l = { 0, calloc(MAX_SEGMENTS, sizeof(struct edge_segment_row)) };
	char path[600];
	struct export_out x = { .path = path, .a_out = -1, .base_ms = INT64_MIN, .last_dts = INT64_MIN,
				.last_adts = INT64_MIN };
	int rc, fd;

	j->status = 500;
	j->fd = -1;
	if (!l.rows || edge_index_open(j->x->index_path, &ix) < 0) {
		snprintf(j->err, sizeof(j->err), "cannot read the archive index");
		goto out_free;
	}
	/* The keyframe before "from" may lie in the segment before: ask a GOP's margin. */
	if ((rc = edge_index_segments(ix, j->camera, j->from_ms, j->to_ms, collect, &l)) < 0) {
		snprintf(j->err, sizeof(j->err), "cannot read the archive index");
		goto out_free;
	}
	if (l.n == 0) {
		j->status = 404;
		snprintf(j->err, sizeof(j->err), "no footage of camera '%s' in the range", j->camera);
		goto out_free;
	}
	snprintf(path, sizeof(path), "%s/export-XXXXXX", j->x->tmp_dir);
	fd = mkstemp(path);
	if (fd < 0) {
		snprintf(j->err, sizeof(j->err), "cannot create a temporary file: %s", strerror(errno));
		goto out_free;
	}
	close(fd);
	for (int i = 0; i < l.n; i++) {
		rc = copy_segment(j, &l.rows[i], i == 0 || x.base_ms == INT64_MIN, &x);
		if (rc < 0) {
			snprintf(j->err, sizeof(j->err), x.oc && x.oc->pb ? "remux failed: %s"
								       : "cannot start the export file: %s",
				 av_err2str(rc));
			goto out_unlink;
		}
		if (rc == 1)
			break;
	}
	if (x.base_ms == INT64_MIN || av_write_trailer(x.oc) < 0) {
		j->status = x.base_ms == INT64_MIN ? 404 : 500;
		snprintf(j->err, sizeof(j->err), x.base_ms == INT64_MIN ? "no playable footage in the range"
									 : "cannot finish the export file");
		goto out_unlink;
	}
	avio_closep(&x.oc->pb);
	j->fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (j->fd < 0 || fstat(j->fd, &st) < 0) {
		snprintf(j->err, sizeof(j->err), "cannot reopen the export file");
		goto out_unlink;
	}
	j->len = st.st_size;
	j->duration_s = (double)av_rescale_q(x.last_dts, x.oc->streams[0]->time_base, (AVRational){ 1, 1000 }) / 1000.0;
	j->status = 200;
out_unlink:
	/* The open fd keeps the data until the response is sent; the name goes now. */
	unlink(path);
	if (x.oc) {
		avio_closep(&x.oc->pb);
		avformat_free_context(x.oc);
	}
out_free:
	avcodec_parameters_free(&x.par0);
	edge_index_close(ix);
	free(l.rows);
}

static gpointer export_thread(gpointer data)
{
	struct export_job *j = data;

	run_export(j);
	if (cn_queue_push(j->x->done, j) < 0)
		cn_log_error("export", "result queue full; export of '%s' lost", j->camera);
	return NULL;
}

/* On the loop: hand the result to the waiting HTTP request. */
static void export_done(void *item, void *arg)
{
	struct export_job *j = item;
	struct edge_exporter *x = arg;
	struct cn_http_resp resp;

	g_thread_join(j->thread);
	x->running--;
	cn_http_resp_init(&resp);
	if (j->status == 200) {
		char disp[160], ts[40];
		cn_time_format_rfc3339(j->from_ms, ts, sizeof(ts));
		snprintf(disp, sizeof(disp), "attachment; filename=\"%s-%s.mp4\"", j->camera, ts);
		cn_strlcpy(resp.content_type, "video/mp4", sizeof(resp.content_type));
		cn_http_resp_header(&resp, "content-disposition", disp);
		resp.body_fd = j->fd;
		resp.body_len = j->len;
		x->exports++;
		cn_log_info("export", "camera '%s': %.1f s, %lld bytes", j->camera, j->duration_s,
			    (long long)j->len);
	} else {
		cn_http_problem(&resp, j->status, j->status == 404 ? "Not Found" : "Internal Server Error",
				"%s", j->err);
		x->failures += j->status != 404;
	}
	cn_http_respond(x->http, j->req_id, &resp);
	free(j);
}

int edge_export_init(struct edge_exporter *x, struct cn_loop *l, struct cn_http_server *http,
		     const char *archive_dir, const char *index_path, const char *tmp_dir)
{
	memset(x, 0, sizeof(*x));
	x->http = http;
	cn_strlcpy(x->archive_dir, archive_dir, sizeof(x->archive_dir));
	cn_strlcpy(x->index_path, index_path, sizeof(x->index_path));
	cn_strlcpy(x->tmp_dir, tmp_dir, sizeof(x->tmp_dir));
	if (g_mkdir_with_parents(tmp_dir, 0700) < 0)
		return -errno;
	return cn_queue_new("exports", EDGE_EXPORT_MAX_RUNNING * 2, l->ctx, export_done, x, NULL, &x->done);
}

int edge_export_start(struct edge_exporter *x, uint64_t req_id, const char *camera, int64_t from_ms,
		      int64_t to_ms)
{
	struct export_job *j;

	if (x->running >= EDGE_EXPORT_MAX_RUNNING)
		return -EBUSY;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->x = x;
	j->req_id = req_id;
	cn_strlcpy(j->camera, camera, sizeof(j->camera));
	j->from_ms = from_ms;
	j->to_ms = to_ms;
	x->running++;
	j->thread = g_thread_new("export", export_thread, j);
	return 0;
}

void edge_export_shutdown(struct edge_exporter *x)
{
	void *item;

	if (!x->done)
		return;
	/* Finished jobs still queued for the loop: join and drop them. */
	while (x->running > 0) {
		if (cn_queue_pop(x->done, 100, &item) == 0) {
			struct export_job *j = item;
			g_thread_join(j->thread);
			if (j->fd >= 0)
				close(j->fd);
			free(j);
			x->running--;
		}
	}
	cn_queue_free(x->done);
	x->done = NULL;
}
