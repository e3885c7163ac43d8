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

/* A temporary archive with its index, and a test clip's video opened for reading with
 * its parameter sets in Annex B, as both ingest paths give them. */
struct clip {
	char dir[64];
	struct edge_index *ix;
	AVFormatContext *ic;
	AVCodecParameters *par;
	int ls; /* the clip's NAL length size */
};

/* 0, or -1 when a check failed (clip_close still cleans up). */
static int clip_open(struct clip *c, const char *name)
{
	char src[256], dbpath[128];
	uint8_t ed[4096];
	int edn;

	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "/tmp/canopy-segw-XXXXXX");
	snprintf(src, sizeof(src), "tests/unit/data/%s", name);
	CHECK(mkdtemp(c->dir) != NULL);
	snprintf(dbpath, sizeof(dbpath), "%s/index.db", c->dir);
	CHECK_INT(edge_index_open(dbpath, &c->ix), 0);
	CHECK_INT(avformat_open_input(&c->ic, src, NULL, NULL), 0);
	CHECK((c->par = avcodec_parameters_alloc()) != NULL);
	if (!c->ic || !c->ix || !c->par)
		return -1;
	avcodec_parameters_copy(c->par, c->ic->streams[0]->codecpar);
	edn = c->par->codec_id == AV_CODEC_ID_H264
		      ? cn_avcc_to_annexb(c->par->extradata, (size_t)c->par->extradata_size, ed, sizeof(ed), &c->ls)
		      : cn_hvcc_to_annexb(c->par->extradata, (size_t)c->par->extradata_size, ed, sizeof(ed), &c->ls);
	CHECK(edn > 0);
	CHECK(c->ls > 0);
	if (edn <= 0 || c->ls <= 0)
		return -1;
	av_freep(&c->par->extradata);
	c->par->extradata = av_mallocz((size_t)edn + AV_INPUT_BUFFER_PADDING_SIZE);
	memcpy(c->par->extradata, ed, (size_t)edn);
	c->par->extradata_size = edn;
	return 0;
}

static void clip_close(struct clip *c)
{
	char cmd[128];

	avformat_close_input(&c->ic);
	avcodec_parameters_free(&c->par);
	edge_index_close(c->ix);
	c->ix = NULL;
	if (!c->dir[0] || strstr(c->dir, "XXXXXX"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
	if (system(cmd) != 0)
		cn_test_fail(__FILE__, __LINE__, "cannot remove %s", c->dir);
}

static void roundtrip(const char *name, bool direct)
{
	char path[512];
	AVFormatContext *rc_ic = NULL;
	struct clip c;
	struct edge_segw w;
	struct ref_pkt *refs = calloc(MAX_PKTS, sizeof(*refs));
	AVPacket *pkt = av_packet_alloc(), *ab = av_packet_alloc();
	int n = 0, keys = 0;
	int64_t first = AV_NOPTS_VALUE;

	CHECK(refs && pkt && ab);
	if (clip_open(&c, name) < 0 || !refs || !pkt || !ab)
		goto out;
	AVStream *st = c.ic->streams[0];
	AVCodecParameters *par = c.par;

	edge_segw_init(&w, c.dir, "cam", 3600000, c.ix);
	w.direct_io = direct;
	while (n < MAX_PKTS && av_read_frame(c.ic, pkt) >= 0) {
		if (pkt->stream_index != 0) {
			av_packet_unref(pkt);
			continue;
		}
		if (first == AV_NOPTS_VALUE)
			first = pkt->dts;
		CHECK_INT(to_annexb(pkt, c.ls, ab, &refs[n]), 0);
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
	snprintf(path, sizeof(path), "%s/%s", c.dir, w.relpath);
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
	for (int k = 0; k < MAX_PKTS && refs; k++)
		free(refs[k].data);
	free(refs);
	av_packet_free(&pkt);
	av_packet_free(&ab);
	clip_close(&c);
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
	struct clip c;
	struct edge_segw w;
	struct ref_pkt ref = { 0 };
	AVPacket *pkt = av_packet_alloc(), *ab = av_packet_alloc();
	int i = 0;
	int64_t first = AV_NOPTS_VALUE;

	memset(rows, 0, 8 * sizeof(*rows));
	CHECK(pkt && ab);
	if (clip_open(&c, "frag-h264.mp4") < 0 || !pkt || !ab)
		goto out;
	AVStream *st = c.ic->streams[0];
	edge_segw_init(&w, c.dir, "cam", 1000, c.ix);
	while (av_read_frame(c.ic, pkt) >= 0) {
		if (pkt->stream_index == 0) {
			if (first == AV_NOPTS_VALUE)
				first = pkt->dts;
			CHECK_INT(to_annexb(pkt, c.ls, ab, &ref), 0);
			free(ref.data);
			ref.data = NULL;
			int64_t media = av_rescale_q(pkt->dts - first, st->time_base, (AVRational){ 1, 1000 });
			int64_t lag = (pkt->flags & AV_PKT_FLAG_KEY) ? 230 : i == 3 ? 10 : 20 + (i * 37) % 90;
			CHECK_INT(edge_segw_write(&w, c.par, st->time_base, ab, 1700000000000LL + media * slow + lag), 0);
			av_packet_unref(ab);
			i++;
		}
		av_packet_unref(pkt);
	}
	CHECK_INT(edge_segw_close(&w, EDGE_CUT_STOP), 0);
	CHECK_INT((long long)w.segments, 3);
	edge_segw_free(&w);
	CHECK_INT(edge_index_segments(c.ix, "cam", 0, INT64_MAX / 2, collect_row, rows), 0);
out:
	av_packet_free(&pkt);
	av_packet_free(&ab);
	clip_close(&c);
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
