/* fuzz_sdp.c: libFuzzer harness for the SDP offer and trickle-fragment parsers and the answer writer (cn_sdp). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_sdp.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A string field ends inside its array. */
#define TERMINATED(arr) (memchr((arr), '\0', sizeof(arr)) != NULL)

/* Large: kept off the stack. */
static struct cn_sdp offer, again;
static struct cn_sdp_frag frag;
static struct cn_sdp_answer ans;

/* What a refusal must leave (the structs are big: memcmp, not a byte loop). */
static const struct cn_sdp zero_offer;
static const struct cn_sdp_frag zero_frag;

static void check_refusal(int rc, const char *err, size_t cap)
{
	CHECK(rc == CN_E_MALFORMED || rc == CN_E_TOO_BIG);
	CHECK(memchr(err, '\0', cap) != NULL && err[0] != '\0');
	CHECK(strncmp(err, "line ", 5) == 0 || strstr(err, "offer is") || strstr(err, "fragment is"));
}

static void check_candidate(const char *c)
{
	CHECK(memchr(c, '\0', CN_SDP_CANDIDATE_LEN) != NULL);
	CHECK(strncmp(c, "candidate:", 10) == 0 && c[10] != '\0');
	CHECK(!strpbrk(c, "\r\n"));
}

static void check_media(const struct cn_sdp_media *m)
{
	static const size_t fp_lens[] = { 20, 28, 32, 48, 64 };
	bool fp_ok = false, rtp_pts[128] = { false };

	CHECK(TERMINATED(m->kind_name) && TERMINATED(m->proto) && TERMINATED(m->mid) &&
	      TERMINATED(m->ice_ufrag) && TERMINATED(m->ice_pwd) && TERMINATED(m->fingerprint_alg));
	CHECK(m->kind_name[0] && m->proto[0]);
	CHECK(m->kind >= CN_SDP_VIDEO && m->kind <= CN_SDP_OTHER);
	CHECK((unsigned)m->dir <= CN_SDP_INACTIVE && (unsigned)m->setup <= CN_SDP_SETUP_PASSIVE);
	CHECK(m->nformats >= 1 && m->nformats <= CN_SDP_MAX_FORMATS);
	CHECK(m->nextmap >= 0 && m->nextmap <= CN_SDP_MAX_EXTMAP);
	CHECK(m->ncandidates >= 0 && m->ncandidates <= CN_SDP_MAX_CANDIDATES);
	CHECK(m->fingerprint_len <= sizeof(m->fingerprint));
	for (size_t i = 0; i < sizeof(fp_lens) / sizeof(fp_lens[0]); i++)
		fp_ok |= m->fingerprint_len == fp_lens[i];
	CHECK(m->fingerprint_len == 0 || (fp_ok && m->fingerprint_alg[0]));
	if (m->port) {
		size_t u = strlen(m->ice_ufrag), pw = strlen(m->ice_pwd);

		CHECK(u >= 4 && u <= 63 && pw >= 22 && pw <= 159 && fp_ok);
	}
	for (int i = 0; i < m->nformats; i++) {
		const struct cn_sdp_format *f = &m->formats[i];

		CHECK(TERMINATED(f->name) && TERMINATED(f->fmtp));
		CHECK(f->pt <= 127);
		CHECK(f->codec >= CN_SDP_CODEC_OTHER && f->codec <= CN_SDP_CODEC_RTX);
		CHECK(f->codec == CN_SDP_CODEC_OTHER || f->name[0]);
		CHECK(f->codec != CN_SDP_CODEC_H264 || f->clock == 90000);
		CHECK(f->codec != CN_SDP_CODEC_PCMU || f->clock == 8000);
		CHECK(f->packetization_mode >= -1 && f->packetization_mode <= 2);
		CHECK(f->codec == CN_SDP_CODEC_H264 ||
		      (f->packetization_mode == -1 && f->profile_level_id == 0));
		CHECK(f->profile_level_id <= 0xffffff);
		CHECK(f->apt >= -1 && f->apt <= 127);
		CHECK(f->codec == CN_SDP_CODEC_RTX || f->apt == -1);
		CHECK((f->fb & ~0x1fu) == 0);
		if (f->name[0] && f->codec != CN_SDP_CODEC_OTHER) {
			CHECK(!rtp_pts[f->pt]);
			rtp_pts[f->pt] = true;
		}
	}
	for (int i = 0; i < m->nextmap; i++) {
		CHECK(m->extmap[i].id >= 1 && m->extmap[i].id <= 14);
		CHECK(TERMINATED(m->extmap[i].uri) && m->extmap[i].uri[0]);
		for (int k = 0; k < i; k++)
			CHECK(m->extmap[k].id != m->extmap[i].id);
	}
	for (int i = 0; i < m->ncandidates; i++)
		check_candidate(m->candidates[i]);
}

static void check_sdp(const struct cn_sdp *s)
{
	CHECK(TERMINATED(s->origin_user) && TERMINATED(s->session_id));
	CHECK(s->origin_user[0] && s->session_id[0]);
	CHECK(s->nmedia >= 0 && s->nmedia <= CN_SDP_MAX_MEDIA);
	CHECK(s->nbundle >= 0 && s->nbundle <= CN_SDP_MAX_MEDIA);
	CHECK(s->bundle || s->nbundle == 0);
	for (int i = 0; i < s->nmedia; i++) {
		check_media(&s->media[i]);
		for (int k = 0; k < i; k++)
			CHECK(!s->media[i].mid[0] || strcmp(s->media[i].mid, s->media[k].mid) != 0);
	}
	for (int i = 0; i < s->nbundle; i++) {
		bool found = false;

		CHECK(TERMINATED(s->bundle_mids[i]) && s->bundle_mids[i][0]);
		for (int k = 0; k < s->nmedia; k++)
			found |= strcmp(s->media[k].mid, s->bundle_mids[i]) == 0;
		CHECK(found);
	}
}

/* The format we would send in m, as the WHEP endpoint chooses it. */
static int pick(const struct cn_sdp_media *m)
{
	static const enum cn_sdp_codec codecs[] = { CN_SDP_CODEC_H264, CN_SDP_CODEC_H265,
						    CN_SDP_CODEC_PCMU, CN_SDP_CODEC_PCMA };
	int f;

	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		f = cn_sdp_pick_format(m, codecs[i], codecs[i] == CN_SDP_CODEC_H264 ? 0x42 : 0);
		CHECK(f == -ENOENT || (f >= 0 && f < m->nformats));
		if (f < 0)
			continue;
		CHECK(m->formats[f].codec == codecs[i]);
		CHECK(codecs[i] != CN_SDP_CODEC_H264 || m->formats[f].packetization_mode == 1);
		/* the preference never loses to a worse match */
		if (codecs[i] == CN_SDP_CODEC_H264 && (m->formats[f].profile_level_id >> 16) != 0x42)
			for (int k = 0; k < m->nformats; k++)
				CHECK(m->formats[k].codec != CN_SDP_CODEC_H264 ||
				      m->formats[k].packetization_mode != 1 ||
				      (m->formats[k].profile_level_id >> 16) != 0x42);
		return f;
	}
	return -ENOENT;
}

static void build_answer(size_t size)
{
	memset(&ans, 0, sizeof(ans));
	ans.session_id = size * 2654435761u;
	ans.session_version = 1;
	cn_strlcpy(ans.ice_ufrag, "Cn0p", sizeof(ans.ice_ufrag));
	cn_strlcpy(ans.ice_pwd, "Q2Fub3B5IHJlbGF5IHB3ZA", sizeof(ans.ice_pwd));
	ans.ice_lite = size & 1;
	ans.setup = size & 2 ? CN_SDP_SETUP_ACTIVE : CN_SDP_SETUP_PASSIVE;
	ans.end_of_candidates = size & 4;
	for (size_t i = 0; i < sizeof(ans.fingerprint); i++)
		ans.fingerprint[i] = (uint8_t)(i * 7);
	ans.ncandidates = 2;
	cn_strlcpy(ans.candidates[0], "candidate:1 1 udp 2130706431 203.0.113.10 8189 typ host",
		   CN_SDP_CANDIDATE_LEN);
	cn_strlcpy(ans.candidates[1], "candidate:2 1 udp 1694498815 198.51.100.7 8189 typ srflx",
		   CN_SDP_CANDIDATE_LEN);
	for (int i = 0; i < offer.nmedia; i++) {
		const struct cn_sdp_media *m = &offer.media[i];
		struct cn_sdp_answer_media *am = &ans.media[i];
		int f = pick(m), rtx;

		if (f >= 0) {
			rtx = cn_sdp_find_rtx(m, m->formats[f].pt);
			CHECK(rtx == -ENOENT || (rtx >= 0 && rtx < m->nformats &&
						 m->formats[rtx].codec == CN_SDP_CODEC_RTX &&
						 m->formats[rtx].apt == m->formats[f].pt));
		}
		if (f < 0 || m->port == 0)
			continue;
		am->accepted = true;
		am->format = f;
		am->fb = (unsigned)size & 0x1f;
		am->abs_send_time_id = cn_sdp_find_extmap(m, CN_SDP_EXT_ABS_SEND_TIME);
		CHECK(am->abs_send_time_id >= 0 && am->abs_send_time_id <= 14);
		am->dir = CN_SDP_SENDONLY;
		am->ssrc = (uint32_t)(0x5eed0000u + (unsigned)i);
		cn_strlcpy(am->cname, "canopy", sizeof(am->cname));
		if (i & 1) {
			cn_strlcpy(am->msid_stream, "cam", sizeof(am->msid_stream));
			cn_strlcpy(am->msid_track, "track", sizeof(am->msid_track));
		}
	}
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Formats are payload types (else tokens such as "webrtc-datachannel"). */
static bool is_rtp(const char *proto)
{
	return has_suffix(proto, "RTP/AVP") || has_suffix(proto, "RTP/AVPF") ||
	       has_suffix(proto, "RTP/SAVP") || has_suffix(proto, "RTP/SAVPF");
}

/* The answer says what build_answer meant, in a form our own parser accepts. */
static void check_answer(void)
{
	bool bundled[CN_SDP_MAX_MEDIA] = { false };
	struct cn_buf out, small;
	char err[512];
	int rc, tag = -1, nbundled = 0;

	cn_buf_init(&out, 1 << 20);
	CHECK(cn_sdp_write_answer(&offer, &ans, &out) == 0 && out.data);
	/* too small a buffer: refused, left as it was */
	cn_buf_init(&small, out.len / 2);
	CHECK(cn_sdp_write_answer(&offer, &ans, &small) == -ENOBUFS);
	CHECK(small.len == 0);
	cn_buf_free(&small);

	memset(err, 'x', sizeof(err));
	rc = cn_sdp_parse(out.data, out.len, &again, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "answer refused: %s\n%s\n", err, out.data);
		CHECK(rc == 0);
	}
	check_sdp(&again);
	CHECK(again.nmedia == offer.nmedia);
	CHECK(again.ice_lite == ans.ice_lite);
	/* the group: the accepted sections of the offer's, in its order */
	for (int i = 0; i < offer.nbundle; i++)
		for (int k = 0; k < offer.nmedia; k++)
			if (strcmp(offer.media[k].mid, offer.bundle_mids[i]) == 0 && ans.media[k].accepted) {
				CHECK(nbundled < again.nbundle &&
				      strcmp(again.bundle_mids[nbundled], offer.media[k].mid) == 0);
				bundled[k] = true;
				nbundled++;
				if (tag < 0)
					tag = k;
			}
	CHECK(again.bundle == (nbundled > 0) && again.nbundle == nbundled);
	for (int i = 0; i < offer.nmedia; i++) {
		const struct cn_sdp_media *om = &offer.media[i], *am = &again.media[i];
		const struct cn_sdp_format *of, *af = &am->formats[0];
		bool cands = !bundled[i] || i == tag;

		CHECK(strcmp(om->kind_name, am->kind_name) == 0 && strcmp(om->proto, am->proto) == 0);
		CHECK(strcmp(om->mid, am->mid) == 0);
		if (!ans.media[i].accepted) {
			CHECK(am->port == 0 && am->dir == CN_SDP_INACTIVE && am->ncandidates == 0);
			CHECK(am->nformats == om->nformats);
			for (int k = 0; k < om->nformats; k++)
				CHECK(am->formats[k].pt == om->formats[k].pt &&
				      (is_rtp(om->proto) ||
				       strcmp(am->formats[k].name, om->formats[k].name) == 0));
			continue;
		}
		of = &om->formats[ans.media[i].format];
		CHECK(am->port == 9 && am->nformats == 1 && am->dir == CN_SDP_SENDONLY);
		CHECK(af->pt == of->pt && af->codec == of->codec);
		CHECK(strcmp(af->name, of->name) == 0 && strcmp(af->fmtp, of->fmtp) == 0);
		CHECK(af->clock == of->clock && af->channels == of->channels);
		CHECK(af->packetization_mode == of->packetization_mode);
		CHECK(af->profile_level_id == of->profile_level_id);
		CHECK(af->fb == (of->fb & ans.media[i].fb));
		CHECK(am->setup == ans.setup);
		CHECK(strcmp(am->ice_ufrag, ans.ice_ufrag) == 0 && strcmp(am->ice_pwd, ans.ice_pwd) == 0);
		CHECK(am->fingerprint_len == 32 && memcmp(am->fingerprint, ans.fingerprint, 32) == 0);
		CHECK(am->rtcp_mux == om->rtcp_mux && am->rtcp_rsize == om->rtcp_rsize);
		CHECK(am->ssrc == ans.media[i].ssrc);
		CHECK(cn_sdp_find_extmap(am, CN_SDP_EXT_ABS_SEND_TIME) == ans.media[i].abs_send_time_id);
		CHECK(am->ncandidates == (cands ? 2 : 0));
		CHECK(am->end_of_candidates == (cands && ans.end_of_candidates));
	}
	cn_buf_free(&out);
}

static void fuzz_offer(const uint8_t *data, size_t size)
{
	char err[512];
	int rc;

	memset(err, 'x', sizeof(err));
	rc = cn_sdp_parse((const char *)data, size, &offer, err, sizeof(err));
	if (rc < 0) {
		check_refusal(rc, err, sizeof(err));
		CHECK(memcmp(&offer, &zero_offer, sizeof(offer)) == 0);
		return;
	}
	CHECK(rc == 0);
	check_sdp(&offer);
	build_answer(size);
	check_answer();
}

static void fuzz_frag(const uint8_t *data, size_t size)
{
	char err[512];
	size_t n;
	int rc;

	memset(err, 'x', sizeof(err));
	rc = cn_sdp_parse_frag((const char *)data, size, &frag, err, sizeof(err));
	if (rc < 0) {
		check_refusal(rc, err, sizeof(err));
		CHECK(memcmp(&frag, &zero_frag, sizeof(frag)) == 0);
		return;
	}
	CHECK(rc == 0);
	CHECK(TERMINATED(frag.ice_ufrag) && TERMINATED(frag.ice_pwd));
	n = strlen(frag.ice_ufrag);
	CHECK(n == 0 || (n >= 4 && n <= 63));
	n = strlen(frag.ice_pwd);
	CHECK(n == 0 || (n >= 22 && n <= 159));
	CHECK(frag.ncandidates >= 0 && frag.ncandidates <= CN_SDP_MAX_CANDIDATES);
	for (int i = 0; i < frag.ncandidates; i++) {
		check_candidate(frag.candidates[i]);
		CHECK(TERMINATED(frag.candidate_mid[i]));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	/* first byte picks the parser: even ('0') an offer, odd ('1') a trickle fragment */
	if (data[0] % 2 == 0)
		fuzz_offer(data + 1, size - 1);
	else
		fuzz_frag(data + 1, size - 1);
	return 0;
}
