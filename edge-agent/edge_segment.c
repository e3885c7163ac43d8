/* edge_segment.c: fMP4 segmenter on libavformat; a fragment per keyframe, flushed at once. */
#include "edge_segment.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/avutil.h>
#include <libavutil/mathematics.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_log.h"

/* Media time and wall clock may disagree a little (buffering, jitter, camera clock
 * drift); beyond this the camera's timestamps jumped and a new segment starts. */
#define CLOCK_JUMP_MS 5000

void edge_segw_init(struct edge_segw *w, const char *archive_dir, const char *camera,
		    int64_t seg_dur_ms, struct edge_index *ix)
{
	memset(w, 0, sizeof(*w));
	cn_strlcpy(w->archive_dir, archive_dir, sizeof(w->archive_dir));
	cn_strlcpy(w->camera, camera, sizeof(w->camera));
	w->seg_dur_ms = seg_dur_ms;
	w->ix = ix;
}

static int averr_to_neg(int err)
{
	if (err == AVERROR(ENOSPC) || err == AVERROR(EDQUOT))
		return -ENOSPC;
	return err < 0 && err > -4096 ? err : -EIO;
}

static int mkdirs(const char *path)
{
	char tmp[768];

	if (cn_strlcpy(tmp, path, sizeof(tmp)) < 0)
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int64_t dts_to_ms(const struct edge_segw *w, int64_t dts)
{
	return av_rescale_q(dts - w->first_dts, w->in_tb, (AVRational){ 1, 1000 });
}

static const char *codec_tag(enum AVCodecID id)
{
	switch (id) {
	case AV_CODEC_ID_H264: return "h264";
	case AV_CODEC_ID_HEVC: return "h265";
	default: return avcodec_get_name(id);
	}
}

static int open_segment(struct edge_segw *w, const AVCodecParameters *par, AVRational in_tb,
			const AVPacket *pkt, int64_t recv_ms)
{
	AVDictionary *opts = NULL;
	AVStream *st;
	struct tm tm;
	time_t secs = (time_t)(recv_ms / 1000);
	char dir[768], path[1024];
	int rc;

	gmtime_r(&secs, &tm);
	snprintf(w->relpath, sizeof(w->relpath), "%s/%04d-%02d-%02d/%02d%02d%02d-%03d.mp4", w->camera,
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(recv_ms % 1000));
	snprintf(dir, sizeof(dir), "%s/%s/%04d-%02d-%02d", w->archive_dir, w->camera,
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	snprintf(path, sizeof(path), "%s/%s", w->archive_dir, w->relpath);
	if ((rc = mkdirs(dir)) < 0) {
		cn_log_error("segment", "camera '%s': cannot create '%s': %s", w->camera, dir,
			     cn_strerror(rc));
		return rc;
	}
	if ((rc = avformat_alloc_output_context2(&w->oc, NULL, "mp4", path)) < 0)
		return averr_to_neg(rc);
	st = avformat_new_stream(w->oc, NULL);
	w->par = avcodec_parameters_alloc();
	if (!st || !w->par) {
		rc = -ENOMEM;
		goto out_free_ctx;
	}
	if ((rc = avcodec_parameters_copy(st->codecpar, par)) < 0 ||
	    (rc = avcodec_parameters_copy(w->par, par)) < 0) {
		rc = averr_to_neg(rc);
		goto out_free_ctx;
	}
	st->codecpar->codec_tag = 0;
	st->time_base = in_tb;
	if ((rc = avio_open(&w->oc->pb, path, AVIO_FLAG_WRITE)) < 0) {
		cn_log_error("segment", "camera '%s': cannot create '%s': %s", w->camera, path,
			     av_err2str(rc));
		rc = averr_to_neg(rc);
		goto out_free_ctx;
	}
	/* A fragment per keyframe, written (and flushed) when the next keyframe arrives:
	 * a crash loses at most the fragment in flight. */
	av_dict_set(&opts, "movflags", "frag_keyframe+empty_moov+default_base_moof", 0);
	av_dict_set(&opts, "flush_packets", "1", 0);
	rc = avformat_write_header(w->oc, &opts);
	av_dict_free(&opts);
	if (rc < 0) {
		cn_log_error("segment", "camera '%s': cannot start '%s': %s", w->camera, path,
			     av_err2str(rc));
		rc = averr_to_neg(rc);
		goto out_close_file;
	}
	avio_flush(w->oc->pb);
	w->in_tb = in_tb;
	w->start_ms = recv_ms;
	w->first_dts = pkt->dts;
	w->last_dts = pkt->dts;
	w->frag_start_dts = pkt->dts;
	w->valid_bytes = avio_tell(w->oc->pb);
	w->frag_offset = w->valid_bytes;
	w->valid_end_ms = recv_ms;
	w->last_frame_ms = 0;
	rc = edge_index_segment_begin(w->ix, w->camera, w->relpath, recv_ms, codec_tag(par->codec_id),
				      par->width, par->height, &w->seg_id);
	if (rc < 0)
		goto out_close_file;
	w->segments++;
	cn_log_debug("segment", "camera '%s': segment %s started", w->camera, w->relpath);
	return 0;

out_close_file:
	avio_closep(&w->oc->pb);
	unlink(path);
out_free_ctx:
	avformat_free_context(w->oc);
	w->oc = NULL;
	avcodec_parameters_free(&w->par);
	return rc;
}

int edge_segw_close(struct edge_segw *w, enum edge_seg_cut why)
{
	int rc = 0, wrc;
	int64_t end_ms;

	if (!w->oc)
		return 0;
	w->cuts[why]++;
	/* The trailer writes the fragment in flight; if that fails (disk full) the file
	 * stays valid up to the last complete fragment, which is what the index says. */
	wrc = av_write_trailer(w->oc);
	if (wrc >= 0) {
		avio_flush(w->oc->pb);
		w->valid_bytes = avio_tell(w->oc->pb);
		/* The last frame lasts about as long as the one before it. */
		w->valid_end_ms = w->start_ms + dts_to_ms(w, w->last_dts) + w->last_frame_ms;
	} else {
		rc = averr_to_neg(wrc);
	}
	end_ms = w->valid_end_ms;
	if (w->oc->pb && w->oc->pb->error < 0 && rc == 0)
		rc = averr_to_neg(w->oc->pb->error);
	avio_closep(&w->oc->pb);
	if (w->valid_bytes > 0 && end_ms > w->start_ms) {
		int irc = edge_index_segment_finish(w->ix, w->seg_id, w->start_ms, end_ms, w->valid_bytes);
		if (rc == 0)
			rc = irc;
	} else {
		/* Nothing playable: drop the row and the file rather than list an empty range. */
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", w->archive_dir, w->relpath);
		unlink(path);
		edge_index_segment_delete(w->ix, w->seg_id);
	}
	w->bytes += (uint64_t)w->valid_bytes;
	avformat_free_context(w->oc);
	w->oc = NULL;
	avcodec_parameters_free(&w->par);
	return rc;
}

static bool format_changed(const AVCodecParameters *a, const AVCodecParameters *b)
{
	return a->codec_id != b->codec_id || a->width != b->width || a->height != b->height ||
	       a->extradata_size != b->extradata_size ||
	       (a->extradata_size && memcmp(a->extradata, b->extradata, (size_t)a->extradata_size));
}

int edge_segw_write(struct edge_segw *w, const AVCodecParameters *par, AVRational in_tb,
		    AVPacket *pkt, int64_t recv_ms)
{
	bool key = pkt->flags & AV_PKT_FLAG_KEY;
	int rc;

	if (pkt->dts == AV_NOPTS_VALUE)
		pkt->dts = pkt->pts;
	if (pkt->dts == AV_NOPTS_VALUE || pkt->pts == AV_NOPTS_VALUE)
		return 0; /* the caller fills timestamps; a packet without any cannot be placed */
	if (w->oc) {
		enum edge_seg_cut cut = EDGE_CUT_STOP;
		int64_t media_ms = dts_to_ms(w, pkt->dts);
		if (pkt->dts <= w->last_dts)
			cut = EDGE_CUT_DTS_BACK;
		else if (format_changed(w->par, par))
			cut = EDGE_CUT_FORMAT;
		else if (llabs(recv_ms - media_ms - w->start_ms) > CLOCK_JUMP_MS)
			cut = EDGE_CUT_CLOCK_JUMP;
		else if (key && media_ms >= w->seg_dur_ms)
			cut = EDGE_CUT_DURATION;
		/* The wall clock of the segment's first frame is recv - media for the least
		 * delayed packet: packets buffered while connecting arrive late in a burst. */
		if (cut == EDGE_CUT_STOP && recv_ms - media_ms < w->start_ms)
			w->start_ms = recv_ms - media_ms;
		if (cut != EDGE_CUT_STOP) {
			if (cut != EDGE_CUT_DURATION)
				cn_log_info("segment", "camera '%s': new segment (%s)", w->camera,
					    cut == EDGE_CUT_DTS_BACK	? "timestamps went backwards"
					    : cut == EDGE_CUT_FORMAT	? "stream format changed"
									: "camera clock jumped");
			if ((rc = edge_segw_close(w, cut)) < 0)
				return rc;
		}
	}
	if (!w->oc) {
		if (!key)
			return 0; /* a segment must start on a keyframe to be playable alone */
		if ((rc = open_segment(w, par, in_tb, pkt, recv_ms)) < 0)
			return rc;
	}
	int64_t dts = pkt->dts;
	av_packet_rescale_ts(pkt, in_tb, w->oc->streams[0]->time_base);
	pkt->pts -= av_rescale_q(w->first_dts, in_tb, w->oc->streams[0]->time_base);
	pkt->dts -= av_rescale_q(w->first_dts, in_tb, w->oc->streams[0]->time_base);
	pkt->stream_index = 0;
	pkt->pos = -1;
	rc = av_write_frame(w->oc, pkt);
	if (rc < 0) {
		int err = averr_to_neg(rc);
		cn_log_error("segment", "camera '%s': write to '%s' failed: %s", w->camera, w->relpath,
			     av_err2str(rc));
		edge_segw_close(w, EDGE_CUT_STOP);
		return err;
	}
	if (dts > w->last_dts)
		w->last_frame_ms = dts_to_ms(w, dts) - dts_to_ms(w, w->last_dts);
	w->last_dts = dts;
	if (key && dts != w->frag_start_dts) {
		/* This keyframe made the muxer write the previous fragment out in full. */
		int64_t now_valid = avio_tell(w->oc->pb);
		int64_t frag_ms = w->start_ms + dts_to_ms(w, w->frag_start_dts);
		w->valid_bytes = now_valid;
		w->valid_end_ms = w->start_ms + dts_to_ms(w, dts);
		w->fragments++;
		rc = edge_index_segment_progress(w->ix, w->seg_id, w->start_ms, w->valid_end_ms,
						 w->valid_bytes, frag_ms, w->frag_offset);
		w->frag_start_dts = dts;
		w->frag_offset = now_valid;
		if (rc < 0)
			return rc;
	}
	return 0;
}
