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

static void roundtrip(const char *name)
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

TEST(segment_own_fragments_h264)
{
	roundtrip("frag-h264.mp4");
}

TEST(segment_own_fragments_h265)
{
	roundtrip("frag-h265.mp4");
}
