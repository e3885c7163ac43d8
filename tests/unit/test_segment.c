/* test_segment.c: the segment writer's own fragments: Annex B packets in, a file FFmpeg reads back packet for packet and cn_mp4 walks clean. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_mp4.h"
#include "cn_rtp.h"
#include "cn_test.h"
#include "../../edge-agent/edge_index.h"
#include "../../edge-agent/edge_segment.h"

#define MAX_PKTS 600

struct ref_pkt {
	uint8_t *data; /* 4-byte length-prefixed NALs, as the file must hold them */
	int size;
	int64_t dts;   /* relative to the first */
	bool key;
};

/* Length-prefixed (length_size bytes) to Annex B, 3-byte start codes on odd NALs so both
 * forms are covered; also the 4-byte length-prefixed reference. Returns 0. */
static int to_annexb(const AVPacket *in, int ls, AVPacket *out, struct ref_pkt *ref)
{
	size_t pos = 0, o = 0, r = 0;
	const uint8_t *nal;
	size_t len;
	int i = 0;

	if (av_new_packet(out, in->size * 2 + 16) < 0 || !(ref->data = malloc((size_t)in->size * 2 + 16)))
		return -ENOMEM;
	while (cn_nal_next(in->data, (size_t)in->size, ls, &pos, &nal, &len) == 1) {
		static const uint8_t sc4[] = { 0, 0, 0, 1 };
		size_t scl = (i++ & 1) ? 3 : 4;
		memcpy(out->data + o, sc4 + 4 - scl, scl);
		memcpy(out->data + o + scl, nal, len);
		o += scl + len;
		ref->data[r] = (uint8_t)(len >> 24);
		ref->data[r + 1] = (uint8_t)(len >> 16);
		ref->data[r + 2] = (uint8_t)(len >> 8);
		ref->data[r + 3] = (uint8_t)len;
		memcpy(ref->data + r + 4, nal, len);
		r += 4 + len;
	}
	out->size = (int)o;
	ref->size = (int)r;
	out->pts = in->pts;
	out->dts = in->dts;
	out->flags = in->flags;
	return 0;
}

static void roundtrip(const char *name, bool direct)
{
	char src[256], dir[64] = "/tmp/canopy-segw-XXXXXX", dbpath[128], path[512];
	AVFormatContext *ic = NULL, *rc_ic = NULL;
	struct edge_index *ix = NULL;
	struct edge_segw w;
	struct ref_pkt *refs = calloc(MAX_PKTS, sizeof(*refs));
	AVPacket *pkt = av_packet_alloc(), *ab = av_packet_alloc();
	AVCodecParameters *par = avcodec_parameters_alloc();
	uint8_t ed[4096];
	int n = 0, ls = 0, keys = 0, edn;
	int64_t first = AV_NOPTS_VALUE;

	snprintf(src, sizeof(src), "tests/unit/data/%s", name);
	CHECK(refs && pkt && ab && par);
	CHECK(mkdtemp(dir) != NULL);
	snprintf(dbpath, sizeof(dbpath), "%s/index.db", dir);
	CHECK_INT(edge_index_open(dbpath, &ix), 0);
	CHECK_INT(avformat_open_input(&ic, src, NULL, NULL), 0);
	if (!ic || !ix || !refs || !pkt || !ab || !par)
		goto out;
	AVStream *st = ic->streams[0];
	avcodec_parameters_copy(par, st->codecpar);
	edn = par->codec_id == AV_CODEC_ID_H264
		      ? cn_avcc_to_annexb(par->extradata, (size_t)par->extradata_size, ed, sizeof(ed), &ls)
		      : cn_hvcc_to_annexb(par->extradata, (size_t)par->extradata_size, ed, sizeof(ed), &ls);
	CHECK(edn > 0);
	CHECK(ls > 0);
	if (edn <= 0 || ls <= 0)
		goto out;
	av_freep(&par->extradata);
	par->extradata = av_mallocz((size_t)edn + AV_INPUT_BUFFER_PADDING_SIZE);
	memcpy(par->extradata, ed, (size_t)edn);
	par->extradata_size = edn;

	edge_segw_init(&w, dir, "cam", 3600000, ix);
	w.direct_io = direct;
	while (n < MAX_PKTS && av_read_frame(ic, pkt) >= 0) {
		if (pkt->stream_index != 0) {
			av_packet_unref(pkt);
			continue;
		}
		if (first == AV_NOPTS_VALUE)
			first = pkt->dts;
		CHECK_INT(to_annexb(pkt, ls, ab, &refs[n]), 0);
		refs[n].dts = pkt->dts - first;
		refs[n].key = pkt->flags & AV_PKT_FLAG_KEY;
		keys += refs[n].key;
		int64_t recv = 1700000000000LL + av_rescale_q(pkt->dts - first, st->time_base, (AVRational){ 1, 1000 });
		CHECK_INT(edge_segw_write(&w, par, st->time_base, ab, recv), 0);
		CHECK(w.own);
		CHECK_INT(w.direct, direct); /* the tests' temporary directory is on a disk */
		av_packet_unref(ab);
		av_packet_unref(pkt);
		n++;
	}
	CHECK(n > 10);
	CHECK(keys > 1);
	snprintf(path, sizeof(path), "%s/%s", dir, w.relpath);
	CHECK_INT(edge_segw_close(&w, EDGE_CUT_STOP), 0);
	CHECK_INT((long long)w.fragments, keys - 1);
	edge_segw_free(&w);

	/* FFmpeg reads back every packet as written */
	CHECK_INT(avformat_open_input(&rc_ic, path, NULL, NULL), 0);
	if (!rc_ic)
		goto out;
	CHECK_INT(avformat_find_stream_info(rc_ic, NULL) >= 0, 1);
	int i = 0;
	AVRational otb = rc_ic->streams[0]->time_base;
	while (av_read_frame(rc_ic, pkt) >= 0) {
		if (i < n) {
			CHECK_INT(pkt->size, refs[i].size);
			CHECK(pkt->size == refs[i].size && memcmp(pkt->data, refs[i].data, (size_t)pkt->size) == 0);
			CHECK_INT(av_rescale_q(pkt->dts, otb, st->time_base), refs[i].dts);
			CHECK_INT(!!(pkt->flags & AV_PKT_FLAG_KEY), refs[i].key);
		}
		i++;
		av_packet_unref(pkt);
	}
	CHECK_INT(i, n);

	/* and the recovery walk finds it whole, a fragment per GOP */
	FILE *f = fopen(path, "rb");
	struct stat sb;
	CHECK(f && stat(path, &sb) == 0);
	if (f) {
		struct cn_mp4_walk wk;
		uint64_t off;
		size_t len;
		int rc;
		uint8_t *buf = malloc(CN_MP4_WALK_MAX_BOX);
		cn_mp4_walk_init(&wk);
		while (buf && (rc = cn_mp4_walk_next(&wk, (uint64_t)sb.st_size, &off, &len)) > 0) {
			if (fseek(f, (long)off, SEEK_SET) != 0 || fread(buf, 1, len, f) != len)
				break;
			if (cn_mp4_walk_feed(&wk, buf, len) < 0)
				break;
		}
		CHECK_INT((long long)wk.valid_end, (long long)sb.st_size);
		CHECK_INT(wk.fragments, keys);
		CHECK(wk.have_video_time);
		free(buf);
		fclose(f);
	}
out:
	avformat_close_input(&rc_ic);
	avformat_close_input(&ic);
	for (int k = 0; k < MAX_PKTS && refs; k++)
		free(refs[k].data);
	free(refs);
	av_packet_free(&pkt);
	av_packet_free(&ab);
	avcodec_parameters_free(&par);
	edge_index_close(ix);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	if (system(path) != 0)
		cn_test_fail(__FILE__, __LINE__, "cannot remove %s", dir);
}

static int collect_row(const struct edge_segment_row *row, void *arg)
{
	struct edge_segment_row *rows = arg;
	for (int i = 0; i < 8; i++)
		if (rows[i].id == 0) {
			rows[i] = *row;
			break;
		}
	return 0;
}

/* One-second segments of a 3 s clip, each keyframe read late as the first packet of a
 * batch, the least delayed packet in the first segment; the camera's clock runs at 1/slow
 * of ours. Fills rows (8) from the index. */
static void write_joined(int slow, struct edge_segment_row *rows)
{
	char dir[64] = "/tmp/canopy-segj-XXXXXX", dbpath[128], cmd[128];
	AVFormatContext *ic = NULL;
	struct edge_index *ix = NULL;
	struct edge_segw w;
	struct ref_pkt ref = { 0 };
	AVPacket *pkt = av_packet_alloc(), *ab = av_packet_alloc();
	AVCodecParameters *par = avcodec_parameters_alloc();
	uint8_t ed[4096];
	int ls = 0, edn, i = 0;
	int64_t first = AV_NOPTS_VALUE;

	memset(rows, 0, 8 * sizeof(*rows));
	CHECK(mkdtemp(dir) != NULL);
	snprintf(dbpath, sizeof(dbpath), "%s/index.db", dir);
	CHECK_INT(edge_index_open(dbpath, &ix), 0);
	CHECK_INT(avformat_open_input(&ic, "tests/unit/data/frag-h264.mp4", NULL, NULL), 0);
	if (!ic || !ix || !pkt || !ab || !par)
		goto out;
	AVStream *st = ic->streams[0];
	avcodec_parameters_copy(par, st->codecpar);
	edn = cn_avcc_to_annexb(par->extradata, (size_t)par->extradata_size, ed, sizeof(ed), &ls);
	CHECK(edn > 0);
	if (edn <= 0)
		goto out;
	av_freep(&par->extradata);
	par->extradata = av_mallocz((size_t)edn + AV_INPUT_BUFFER_PADDING_SIZE);
	memcpy(par->extradata, ed, (size_t)edn);
	par->extradata_size = edn;
	edge_segw_init(&w, dir, "cam", 1000, ix);
	while (av_read_frame(ic, pkt) >= 0) {
		if (pkt->stream_index == 0) {
			if (first == AV_NOPTS_VALUE)
				first = pkt->dts;
			CHECK_INT(to_annexb(pkt, ls, ab, &ref), 0);
			free(ref.data);
			ref.data = NULL;
			int64_t media = av_rescale_q(pkt->dts - first, st->time_base, (AVRational){ 1, 1000 });
			int64_t lag = (pkt->flags & AV_PKT_FLAG_KEY) ? 230 : i == 3 ? 10 : 20 + (i * 37) % 90;
			CHECK_INT(edge_segw_write(&w, par, st->time_base, ab, 1700000000000LL + media * slow + lag), 0);
			av_packet_unref(ab);
			i++;
		}
		av_packet_unref(pkt);
	}
	CHECK_INT(edge_segw_close(&w, EDGE_CUT_STOP), 0);
	CHECK_INT((long long)w.segments, 3);
	edge_segw_free(&w);
	CHECK_INT(edge_index_segments(ix, "cam", 0, INT64_MAX / 2, collect_row, rows), 0);
out:
	avformat_close_input(&ic);
	av_packet_free(&pkt);
	av_packet_free(&ab);
	avcodec_parameters_free(&par);
	edge_index_close(ix);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		cn_test_fail(__FILE__, __LINE__, "cannot remove %s", dir);
}

/* Segments cut for their length join end to start, however late the batch that read
 * their keyframe: an export of the joint has neither a hole nor a repeated frame. */
TEST(segment_duration_cuts_continue_the_timeline)
{
	struct edge_segment_row rows[8];

	write_joined(1, rows);
	CHECK(rows[2].id != 0);
	CHECK_INT(rows[0].end_ms - rows[0].start_ms, 1000);
	CHECK_INT(rows[1].start_ms, rows[0].end_ms);
	CHECK_INT(rows[2].start_ms, rows[1].end_ms);
	/* the least delayed packet of the first segment placed it */
	CHECK_INT(rows[0].start_ms, 1700000000000LL + 10);
}

/* A camera clock slower than ours: the chain follows it until its packets all come later
 * than its timeline by more than the tolerance, then the next segment catches up. */
TEST(segment_chain_catches_up_with_a_slow_camera_clock)
{
	struct edge_segment_row rows[8];

	write_joined(2, rows);
	CHECK(rows[2].id != 0);
	CHECK_INT(rows[1].start_ms, rows[0].end_ms);
	/* the second segment's packets came >= 1000 ms later than its anchor said: the
	 * third starts 300 ms short of that */
	int64_t gap = rows[2].start_ms - rows[1].end_ms;
	CHECK(gap > 500 && gap < 1000);
}

TEST(segment_own_fragments_h264)
{
	roundtrip("frag-h264.mp4", false);
}

/* The same bytes through O_DIRECT: whole blocks, the last one padded with a free box
 * until the segment is closed and cut to its length. */
TEST(segment_own_fragments_direct_io)
{
	roundtrip("frag-h264.mp4", true);
	roundtrip("frag-h265.mp4", true);
}

TEST(segment_own_fragments_h265)
{
	roundtrip("frag-h265.mp4", false);
}
