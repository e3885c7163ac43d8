/* edge_segment.c: fMP4 segmenter on libavformat; a fragment per keyframe, flushed at once; G.711 audio as a second track. */
#include "edge_segment.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <libavutil/avutil.h>
#include <libavutil/mathematics.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_file.h"
#include "cn_log.h"
#include "cn_mp4.h"
#include "cn_rtp.h"

/* Media time and wall clock may disagree a little (buffering, jitter, camera clock
 * drift); beyond this the camera's timestamps jumped and a new segment starts. */
#define CLOCK_JUMP_MS 5000
/* A segment cut for its duration continues its predecessor's timeline, so the two join
 * without a gap. Only when every packet of the predecessor came this much later than that
 * timeline said (a camera clock slower than ours) does the next one catch up by the excess. */
#define CHAIN_DRIFT_MS 300

void edge_segw_init(struct edge_segw *w, const char *archive_dir, const char *camera,
		    int64_t seg_dur_ms, struct edge_index *ix)
{
	memset(w, 0, sizeof(*w));
	cn_strlcpy(w->archive_dir, archive_dir, sizeof(w->archive_dir));
	cn_strlcpy(w->camera, camera, sizeof(w->camera));
	w->seg_dur_ms = seg_dur_ms;
	w->ix = ix;
	w->a_out = -1;
	w->fd = -1;
}

void edge_segw_free(struct edge_segw *w)
{
	for (int i = 0; i < w->fpk_cap; i++)
		av_packet_free(&w->fpk[i]);
	free(w->fpk);
	w->fpk = NULL;
	w->fpk_n = w->fpk_cap = 0;
	free(w->moof);
	w->moof = NULL;
	w->moof_cap = 0;
	free(w->dbuf);
	w->dbuf = NULL;
	free(w->iov);
	free(w->lens);
	w->iov = NULL;
	w->lens = NULL;
	w->iov_cap = 0;
}

int edge_segw_set_audio(struct edge_segw *w, const AVCodecParameters *par, AVRational in_tb)
{
	avcodec_parameters_free(&w->apar);
	if (!par)
		return 0;
	if (par->codec_id != AV_CODEC_ID_PCM_ALAW && par->codec_id != AV_CODEC_ID_PCM_MULAW)
		return -ENOTSUP;
	if (!(w->apar = avcodec_parameters_alloc()) || avcodec_parameters_copy(w->apar, par) < 0) {
		avcodec_parameters_free(&w->apar);
		return -ENOMEM;
	}
	w->a_in_tb = in_tb;
	return 0;
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

/* Rounded down, as recovery (edge_recover.c) reads the file's ticks: the index must say
 * the same after a crash as before it. */
static int64_t dts_to_ms(const struct edge_segw *w, int64_t dts)
{
	return av_rescale_q_rnd(dts - w->first_dts, w->in_tb, (AVRational){ 1, 1000 }, AV_ROUND_DOWN);
}

static const char *codec_tag(enum AVCodecID id)
{
	switch (id) {
	case AV_CODEC_ID_H264: return "h264";
	case AV_CODEC_ID_HEVC: return "h265";
	default: return avcodec_get_name(id);
	}
}

/* ---- own fragments ------------------------------------------------------------------ */

/* Sample flags as FFmpeg's muxer writes them (ISO/IEC 14496-12 8.8.3.1). */
#define SAMPLE_DEPENDS_NO 0x02000000u
#define SAMPLE_DEPENDS_YES 0x01000000u

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static uint8_t *put_box(uint8_t *p, uint32_t size, const char *type)
{
	p = put32(p, size);
	memcpy(p, type, 4);
	return p + 4;
}

/* Whether this segment's fragments can be ours: video only, H.264 or H.265 whose
 * parameter sets are Annex B (the packets then are too, and the muxer would turn them
 * into length-prefixed NALs exactly as we do). */
static bool own_ok(const struct edge_segw *w, const AVCodecParameters *par)
{
	const uint8_t *e = par->extradata;

	if (w->apar || !e || par->extradata_size < 4)
		return false;
	if (par->codec_id != AV_CODEC_ID_H264 && par->codec_id != AV_CODEC_ID_HEVC)
		return false;
	return e[0] == 0 && e[1] == 0 && (e[2] == 1 || (e[2] == 0 && e[3] == 1));
}

/* The video track's id and timescale from the init segment the muxer wrote. */
static int own_init(struct edge_segw *w, const uint8_t *p, size_t len)
{
	struct cn_mp4_box b;
	struct cn_mp4_init init;

	for (size_t off = 0; off < len; off += (size_t)b.size) {
		if (cn_mp4_box_header(p + off, len - off, &b) < 0 || b.size == 0 || b.size > len - off)
			return -EPROTO;
		if (b.type != CN_MP4_FOURCC('m', 'o', 'o', 'v'))
			continue;
		if (cn_mp4_parse_moov(p + off, (size_t)b.size, &init) < 0 || init.ntracks != 1)
			return -EPROTO;
		w->track_id = init.tracks[0].track_id;
		w->timescale = init.tracks[0].timescale;
		return 0;
	}
	return -EPROTO;
}

/* Room for at least need iovecs (and half as many NAL lengths). */
static int own_iov_room(struct edge_segw *w, size_t need)
{
	if (need <= w->iov_cap)
		return 0;
	size_t cap = w->iov_cap ? w->iov_cap : 256;
	while (cap < need)
		cap *= 2;
	struct iovec *iov = realloc(w->iov, cap * sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	w->iov = iov;
	uint32_t *lens = realloc(w->lens, cap / 2 * sizeof(*lens));
	if (!lens)
		return -ENOMEM;
	w->lens = lens;
	w->iov_cap = cap;
	return 0;
}

static void own_drop(struct edge_segw *w)
{
	for (int i = 0; i < w->fpk_n; i++)
		av_packet_unref(w->fpk[i]);
	w->fpk_n = 0;
}

/* Holds a reference to pkt (timestamps already in the track's time base) until its
 * fragment is written. */
static int own_append(struct edge_segw *w, const AVPacket *pkt)
{
	if (w->fpk_n == w->fpk_cap) {
		int cap = w->fpk_cap ? 2 * w->fpk_cap : 64;
		AVPacket **n = realloc(w->fpk, (size_t)cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		memset(n + w->fpk_cap, 0, (size_t)(cap - w->fpk_cap) * sizeof(*n));
		w->fpk = n;
		w->fpk_cap = cap;
	}
	if (!w->fpk[w->fpk_n] && !(w->fpk[w->fpk_n] = av_packet_alloc()))
		return -ENOMEM;
	if (av_packet_ref(w->fpk[w->fpk_n], pkt) < 0)
		return -ENOMEM;
	w->fpk_n++;
	return 0;
}

/* Direct writes: the block size every filesystem we meet accepts, and the staging size
 * (a pwrite per 64 KiB, some 8 a second for a 4 Mbit/s camera: the buffer is all the
 * memory a camera adds for it). */
#define DIO_BLOCK 4096
#define DIO_CHUNK (64 * 1024)

static int pwrite_blocks(int fd, const uint8_t *p, size_t n, off_t off)
{
	while (n > 0) {
		ssize_t k = pwrite(fd, p, n, off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == EDQUOT ? -ENOSPC : -errno;
		/* a direct write stops short only at a block (the disk filled up) */
		if (k == 0 || k % DIO_BLOCK)
			return -ENOSPC;
		p += k;
		n -= (size_t)k;
		off += k;
	}
	return 0;
}

/* Appends the iovecs at file_pos (which the caller then advances). Direct: staged in
 * DIO_CHUNK pieces; the last block is padded with a free box, so the file is whole boxes
 * at every moment and recovery reads it like any other. After a failure dbuf no longer
 * holds the tail block: the caller closes the segment. */
static int own_put(struct edge_segw *w, struct iovec *iov, size_t k)
{
	if (!w->direct)
		return cn_writev_all(w->fd, iov, k);
	off_t off = (off_t)(w->file_pos - (int64_t)w->dtail);
	size_t fill = w->dtail;
	int rc;

	for (size_t i = 0; i < k; i++) {
		const uint8_t *src = iov[i].iov_base;
		size_t left = iov[i].iov_len;
		while (left > 0) {
			size_t n = left < DIO_CHUNK - fill ? left : DIO_CHUNK - fill;
			memcpy(w->dbuf + fill, src, n);
			fill += n;
			src += n;
			left -= n;
			if (fill == DIO_CHUNK) {
				if ((rc = pwrite_blocks(w->fd, w->dbuf, DIO_CHUNK, off)) < 0)
					return rc;
				off += DIO_CHUNK;
				fill = 0;
			}
		}
	}
	size_t pad = (DIO_BLOCK - fill % DIO_BLOCK) % DIO_BLOCK;
	if (pad > 0 && pad < 8)
		pad += DIO_BLOCK; /* a box header needs 8 bytes */
	if (fill + pad > 0) {
		if (pad) {
			put_box(w->dbuf + fill, (uint32_t)pad, "free");
			memset(w->dbuf + fill + 8, 0, pad - 8);
		}
		if ((rc = pwrite_blocks(w->fd, w->dbuf, fill + pad, off)) < 0)
			return rc;
	}
	size_t keep = fill / DIO_BLOCK * DIO_BLOCK;
	w->dtail = fill - keep;
	memmove(w->dbuf, w->dbuf + keep, w->dtail);
	return 0;
}

/* Opens a new segment file, O_DIRECT when asked and the filesystem allows. */
static int own_open(struct edge_segw *w, const char *path)
{
	int fl = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;

	w->direct = false;
	w->dtail = 0;
	if (w->direct_io && !w->dbuf && posix_memalign((void **)&w->dbuf, DIO_BLOCK, DIO_CHUNK + DIO_BLOCK) != 0)
		w->dbuf = NULL;
	if (w->direct_io && w->dbuf) {
		if ((w->fd = open(path, fl | O_DIRECT, 0666)) >= 0) {
			w->direct = true;
			return 0;
		}
		if (errno != EINVAL)
			return -errno;
		/* tmpfs and some FUSE filesystems have no direct I/O: once said is enough */
		cn_log_info("segment", "camera '%s': the archive's filesystem refuses direct I/O; "
				       "writing through the page cache", w->camera);
		w->direct_io = false;
	}
	w->fd = open(path, fl, 0666);
	return w->fd < 0 ? -errno : 0;
}

/* Writes the fragment in progress (moof, mdat) with one writev; end_dts is where its
 * last sample ends. On failure the file is cut back to its last complete fragment. */
static int own_flush(struct edge_segw *w, int64_t end_dts)
{
	int n = w->fpk_n, rc;
	bool cts = false;
	size_t pos;
	const uint8_t *nal;
	size_t nal_len;

	if (!n)
		return 0;
	for (int i = 0; i < n; i++)
		cts |= w->fpk[i]->pts != w->fpk[i]->dts;
	size_t per = cts ? 16 : 12;
	size_t trun_len = 20 + per * (size_t)n;
	size_t traf_len = 8 + 16 + 20 + trun_len;
	size_t moof_len = 8 + 16 + traf_len;
	if (moof_len + 16 > w->moof_cap) {
		uint8_t *m = realloc(w->moof, moof_len + 16);
		if (!m) {
			own_drop(w);
			return -ENOMEM;
		}
		w->moof = m;
		w->moof_cap = moof_len + 16;
	}
	uint8_t *m = w->moof, *tab;
	m = put_box(m, (uint32_t)moof_len, "moof");
	m = put_box(m, 16, "mfhd");
	m = put32(m, 0);
	m = put32(m, w->frag_seq + 1);
	m = put_box(m, (uint32_t)traf_len, "traf");
	m = put_box(m, 16, "tfhd");
	m = put32(m, 0x020000); /* default-base-is-moof */
	m = put32(m, w->track_id);
	m = put_box(m, 20, "tfdt");
	m = put32(m, 1u << 24); /* version 1: 64-bit time */
	m = put32(m, (uint32_t)((uint64_t)w->fpk[0]->dts >> 32));
	m = put32(m, (uint32_t)w->fpk[0]->dts);
	m = put_box(m, (uint32_t)trun_len, "trun");
	/* data offset, then duration, size, flags (and composition offset) per sample */
	m = put32(m, (cts ? 1u << 24 : 0) | 0x000701 | (cts ? 0x000800 : 0));
	m = put32(m, (uint32_t)n);
	uint8_t *data_offset = m;
	m += 4;
	tab = m;
	size_t k = 1, j = 0;
	uint64_t data = 0;
	for (int i = 0; i < n; i++) {
		const AVPacket *p = w->fpk[i];
		int64_t dur = (i + 1 < n ? w->fpk[i + 1]->dts : end_dts) - p->dts;
		uint64_t size = 0;
		for (pos = 0; cn_nal_next(p->data, (size_t)p->size, 0, &pos, &nal, &nal_len) == 1;) {
			if (own_iov_room(w, k + 2) < 0) {
				own_drop(w);
				return -ENOMEM;
			}
			/* the length's iovec points into lens once lens has stopped moving */
			put32((uint8_t *)&w->lens[j++], (uint32_t)nal_len);
			w->iov[k++] = (struct iovec){ NULL, 4 };
			w->iov[k++] = (struct iovec){ (void *)nal, nal_len };
			size += 4 + nal_len;
		}
		tab = put32(tab, dur > 0 && dur <= UINT32_MAX ? (uint32_t)dur : 0);
		tab = put32(tab, (uint32_t)size);
		tab = put32(tab, p->flags & AV_PKT_FLAG_KEY ? SAMPLE_DEPENDS_NO
							   : SAMPLE_DEPENDS_YES | CN_MP4_SAMPLE_IS_NON_SYNC);
		if (cts)
			tab = put32(tab, (uint32_t)(int32_t)(p->pts - p->dts));
		data += size;
	}
	/* the mdat header, 64-bit when the fragment passes 4 GiB */
	size_t mdat_hdr = data + 8 > UINT32_MAX ? 16 : 8;
	put32(data_offset, (uint32_t)(moof_len + mdat_hdr));
	if (mdat_hdr == 8) {
		put_box(tab, (uint32_t)(data + 8), "mdat");
	} else {
		tab = put_box(tab, 1, "mdat");
		tab = put32(tab, (uint32_t)((data + 16) >> 32));
		put32(tab, (uint32_t)(data + 16));
	}
	if (own_iov_room(w, 1) < 0) {
		own_drop(w);
		return -ENOMEM;
	}
	w->iov[0] = (struct iovec){ w->moof, moof_len + mdat_hdr };
	for (size_t i = 1, l = 0; i < k; i += 2)
		w->iov[i].iov_base = &w->lens[l++];
	rc = own_put(w, w->iov, k);
	own_drop(w);
	if (rc < 0) {
		/* Best effort: recovery would cut the partial fragment off anyway. */
		if (ftruncate(w->fd, (off_t)w->file_pos) < 0)
			cn_log_debug("segment", "camera '%s': cannot cut '%s' back: %s", w->camera, w->relpath,
				     strerror(errno));
		return rc == -EDQUOT ? -ENOSPC : rc;
	}
	w->file_pos += (int64_t)(moof_len + mdat_hdr + data);
	w->frag_seq++;
	return 0;
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
	/* The mp4 muxer has no sample entry for G.711; the mov muxer writes the same
	 * fragmented layout with 'alaw'/'ulaw' entries, which every ISO BMFF reader we use
	 * (libavformat, cn_mp4) takes. Video-only segments stay plain mp4. */
	if ((rc = avformat_alloc_output_context2(&w->oc, NULL, w->apar ? "mov" : "mp4", path)) < 0)
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
	w->a_out = -1;
	if (w->apar) {
		AVStream *ast = avformat_new_stream(w->oc, NULL);
		if (!ast) {
			rc = -ENOMEM;
			goto out_free_ctx;
		}
		if ((rc = avcodec_parameters_copy(ast->codecpar, w->apar)) < 0) {
			rc = averr_to_neg(rc);
			goto out_free_ctx;
		}
		ast->codecpar->codec_tag = 0;
		ast->time_base = (AVRational){ 1, w->apar->sample_rate > 0 ? w->apar->sample_rate : 8000 };
		w->a_out = ast->index;
		w->last_adts = INT64_MIN;
	}
	w->own = own_ok(w, par);
	if (w->own)
		rc = avio_open_dyn_buf(&w->oc->pb); /* the init segment, written below */
	else
		rc = avio_open(&w->oc->pb, path, AVIO_FLAG_WRITE);
	if (rc < 0) {
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
	if (w->own) {
		uint8_t *init = NULL;
		int n = avio_close_dyn_buf(w->oc->pb, &init);
		w->oc->pb = NULL;
		rc = n > 0 && init ? own_init(w, init, (size_t)n) : -ENOMEM;
		if (rc == 0 && (w->oc->streams[0]->time_base.num != 1 ||
				(uint32_t)w->oc->streams[0]->time_base.den != w->timescale))
			rc = -EPROTO;
		w->file_pos = 0;
		if (rc == 0)
			rc = own_open(w, path);
		if (rc == 0 && (rc = own_put(w, &(struct iovec){ init, (size_t)n }, 1)) < 0) {
			close(w->fd);
			w->fd = -1;
			unlink(path);
		}
		av_free(init);
		if (rc < 0) {
			cn_log_error("segment", "camera '%s': cannot start '%s': %s", w->camera, path,
				     cn_strerror(rc));
			goto out_free_ctx;
		}
		w->file_pos = n;
		w->frag_seq = 0;
		w->last_dur = 0;
		w->fpk_n = 0;
	}
	w->in_tb = in_tb;
	w->start_ms = recv_ms;
	w->first_dts = pkt->dts;
	w->last_dts = pkt->dts;
	w->frag_start_dts = pkt->dts;
	w->valid_bytes = w->own ? w->file_pos : avio_tell(w->oc->pb);
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
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
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
	bool wrote = false;
	int64_t end_ms;

	if (!w->oc)
		return 0;
	w->cuts[why]++;
	/* The trailer writes the fragment in flight; if that fails (disk full) the file
	 * stays valid up to the last complete fragment, which is what the index says. */
	if (w->own) {
		/* Nothing in flight only after a failed write: the index already says
		 * what is valid. */
		rc = w->fpk_n ? own_flush(w, w->fpk[w->fpk_n - 1]->dts + w->last_dur) : 0;
		wrote = rc == 0 && w->file_pos > w->valid_bytes;
		/* the last block's free box: no longer needed, and files end where the index says */
		if (w->direct && ftruncate(w->fd, (off_t)w->file_pos) < 0)
			cn_log_debug("segment", "camera '%s': cannot cut the padding off '%s': %s", w->camera,
				     w->relpath, strerror(errno));
		if (close(w->fd) < 0 && rc == 0)
			rc = errno == EDQUOT || errno == ENOSPC ? -ENOSPC : -errno;
		w->fd = -1;
		if (wrote)
			w->valid_bytes = w->file_pos;
	} else {
		wrc = av_write_trailer(w->oc);
		if (wrc >= 0) {
			avio_flush(w->oc->pb);
			w->valid_bytes = avio_tell(w->oc->pb);
			wrote = true;
		} else {
			rc = averr_to_neg(wrc);
		}
	}
	if (wrote) {
		/* The last frame lasts about as long as the one before it. */
		w->valid_end_ms = w->start_ms + dts_to_ms(w, w->last_dts) + w->last_frame_ms;
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

/* G.711 is one byte per sample and channel: silence to start a segment's track on its
 * first video frame, so the track needs no edit list (an empty moov is written before
 * the first packet, and the mov muxer would otherwise move a late track to zero). */
static int write_silence(struct edge_segw *w, int64_t samples)
{
	AVPacket *s = av_packet_alloc();
	int ch = w->apar->ch_layout.nb_channels > 0 ? w->apar->ch_layout.nb_channels : 1;
	int rc;

	if (!s)
		return -ENOMEM;
	if ((rc = av_new_packet(s, (int)(samples * ch))) < 0) {
		av_packet_free(&s);
		return rc;
	}
	memset(s->data, w->apar->codec_id == AV_CODEC_ID_PCM_ALAW ? 0xd5 : 0xff, (size_t)s->size);
	s->pts = s->dts = 0;
	s->duration = samples;
	s->stream_index = w->a_out;
	s->flags = AV_PKT_FLAG_KEY;
	rc = av_write_frame(w->oc, s);
	av_packet_free(&s);
	return rc;
}

int edge_segw_write_audio(struct edge_segw *w, AVPacket *pkt)
{
	AVRational otb;
	int64_t ts, v_ms, samples;
	int rc, ch;

	if (!w->oc || w->a_out < 0 || pkt->size <= 0)
		return 0;
	if (pkt->pts == AV_NOPTS_VALUE) {
		w->audio_dropped++;
		return 0;
	}
	otb = w->oc->streams[w->a_out]->time_base; /* 1 / sample rate: a tick is a sample */
	ch = w->apar->ch_layout.nb_channels > 0 ? w->apar->ch_layout.nb_channels : 1;
	/* Both streams come from one RTSP session, on one clock (FFmpeg aligns them by the
	 * RTCP sender reports): the segment's zero is its first video frame. */
	ts = av_rescale_q(pkt->pts, w->a_in_tb, otb) - av_rescale_q(w->first_dts, w->in_tb, otb);
	v_ms = dts_to_ms(w, w->last_dts);
	if (llabs(av_rescale_q(ts, otb, (AVRational){ 1, 1000 }) - v_ms) > CLOCK_JUMP_MS) {
		w->audio_dropped++; /* off the video's clock: it would only desynchronise */
		return 0;
	}
	/* Samples before the segment's start or already written are cut off the packet's
	 * head, so the track is continuous and starts exactly with the video. */
	int64_t next = w->last_adts == INT64_MIN ? 0 : w->last_adts;
	if (ts < next) {
		int64_t cut = next - ts;
		if (cut * ch >= pkt->size) {
			w->audio_dropped++;
			return 0;
		}
		pkt->data += cut * ch;
		pkt->size -= (int)(cut * ch);
		ts = next;
	}
	if (w->last_adts == INT64_MIN && ts > 0 && ts < av_rescale_q(CLOCK_JUMP_MS, (AVRational){ 1, 1000 }, otb)) {
		if ((rc = write_silence(w, ts)) < 0) {
			w->audio_dropped++;
			return 0;
		}
	}
	samples = pkt->size / ch;
	pkt->pts = pkt->dts = ts;
	pkt->duration = samples;
	pkt->stream_index = w->a_out;
	pkt->pos = -1;
	/* Samples wait in the muxer until the next video keyframe writes the fragment; a
	 * write error shows up there. */
	if ((rc = av_write_frame(w->oc, pkt)) < 0) {
		w->audio_dropped++;
		cn_log_debug("segment", "camera '%s': audio packet refused: %s", w->camera, av_err2str(rc));
		return 0;
	}
	w->last_adts = ts + samples; /* where the next packet should start */
	return 0;
}

int edge_segw_write(struct edge_segw *w, const AVCodecParameters *par, AVRational in_tb,
		    AVPacket *pkt, int64_t recv_ms)
{
	bool key = pkt->flags & AV_PKT_FLAG_KEY;
	int64_t anchor_ms = recv_ms;
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
		if (cut == EDGE_CUT_STOP) {
			int64_t lag = recv_ms - media_ms - w->start_ms;
			if (lag < 0) {
				w->start_ms += lag;
				lag = 0;
			}
			if (lag < w->min_lag_ms)
				w->min_lag_ms = lag;
		}
		if (cut == EDGE_CUT_DURATION) {
			/* Read batches stamp packets up to a batch late: a new anchor taken from
			 * this one would leave a gap (or overlap) of that much at the joint. */
			anchor_ms = w->start_ms + av_rescale_q(pkt->dts - w->first_dts, w->in_tb,
							       (AVRational){ 1, 1000 });
			if (w->min_lag_ms > CHAIN_DRIFT_MS)
				anchor_ms += w->min_lag_ms - CHAIN_DRIFT_MS;
		}
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
		if ((rc = open_segment(w, par, in_tb, pkt, anchor_ms)) < 0)
			return rc;
		w->min_lag_ms = recv_ms - anchor_ms;
	}
	int64_t dts = pkt->dts;
	av_packet_rescale_ts(pkt, in_tb, w->oc->streams[0]->time_base);
	pkt->pts -= av_rescale_q(w->first_dts, in_tb, w->oc->streams[0]->time_base);
	pkt->dts -= av_rescale_q(w->first_dts, in_tb, w->oc->streams[0]->time_base);
	pkt->stream_index = 0;
	pkt->pos = -1;
	if (w->own) {
		/* This keyframe ends the fragment in progress: out it goes, whole. */
		if (w->fpk_n)
			w->last_dur = pkt->dts - w->fpk[w->fpk_n - 1]->dts;
		rc = key && w->fpk_n ? own_flush(w, pkt->dts) : 0;
		if (rc == 0)
			rc = own_append(w, pkt);
		rc = rc < 0 ? AVERROR(-rc) : 0;
	} else {
		rc = av_write_frame(w->oc, pkt);
	}
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
		int64_t now_valid = w->own ? w->file_pos : avio_tell(w->oc->pb);
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
