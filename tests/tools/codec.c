/* codec.c: canopy-codec, a command-line door to shared/ codecs so independent tools can cross-check them. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cn_buf.h"
#include "cn_crypto.h"
#include "cn_envelope.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_jwt.h"
#include "cn_rtp.h"
#include "cn_time.h"

static int read_stdin(struct cn_buf *b)
{
	char chunk[4096];
	ssize_t n;

	cn_buf_init(b, 4 << 20);
	while ((n = read(0, chunk, sizeof(chunk))) > 0)
		if (cn_buf_append(b, chunk, (size_t)n) < 0)
			return -ENOBUFS;
	return n < 0 ? -EIO : 0;
}

static void trim_newline(struct cn_buf *b)
{
	while (b->len && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == '\r'))
		b->data[--b->len] = '\0';
}

static int cmd_keygen(const char *priv, const char *pub)
{
	struct cn_ed25519 *k = NULL;
	int rc = cn_ed25519_generate(&k);

	if (rc == 0)
		rc = cn_ed25519_save_private(k, priv);
	if (rc == 0)
		rc = cn_ed25519_save_public(k, pub);
	cn_ed25519_free(k);
	if (rc < 0)
		fprintf(stderr, "keygen: %s\n", cn_strerror(rc));
	return rc < 0 ? 1 : 0;
}

/* stdin: claims JSON {"sub","tenant","jti","exp",...}; stdout: the token. */
static int cmd_jwt_sign(const char *keyfile, const char *kid)
{
	struct cn_ed25519 *k = NULL;
	struct cn_jwt_claims c;
	struct cn_buf in, out;
	cJSON *payload = NULL, *extra = NULL;
	char err[256] = "";
	int rc;

	cn_buf_init(&out, CN_JWT_MAX_TOKEN);
	if ((rc = cn_ed25519_load(keyfile, &k)) < 0) {
		fprintf(stderr, "cannot load key '%s': %s\n", keyfile, cn_strerror(rc));
		return 1;
	}
	if ((rc = read_stdin(&in)) == 0)
		rc = cn_jwt_claims_parse(in.data ? in.data : "", in.len, &c, &payload, err, sizeof(err));
	if (rc == 0) {
		static const char *const std[] = { "iss", "sub", "tenant", "jti", "scope", "iat", "nbf", "exp" };
		extra = cJSON_Duplicate(payload, true);
		for (size_t i = 0; i < sizeof(std) / sizeof(*std); i++)
			cJSON_DeleteItemFromObjectCaseSensitive(extra, std[i]);
		rc = cn_jwt_sign(k, kid, &c, extra, &out);
	}
	if (rc == 0)
		printf("%s\n", out.data);
	else
		fprintf(stderr, "jwt-sign: %s\n", err[0] ? err : cn_strerror(rc));
	cJSON_Delete(extra);
	cJSON_Delete(payload);
	cn_buf_free(&in);
	cn_buf_free(&out);
	cn_ed25519_free(k);
	return rc < 0 ? 1 : 0;
}

/* stdin: token; stdout: payload JSON. Exit 1 with "error <code>: reason" on stderr. */
static int cmd_jwt_verify(const char *keyfile, const char *now_s)
{
	struct cn_ed25519 *k = NULL;
	struct cn_jwt_claims c;
	struct cn_buf in, out;
	cJSON *payload = NULL;
	char err[256] = "";
	int64_t now = cn_time_wall_ms() / 1000;
	int rc;

	if (now_s && cn_str_to_i64(cn_str_from(now_s), 0, INT64_MAX, &now) < 0) {
		fprintf(stderr, "bad time '%s'\n", now_s);
		return 2;
	}
	if ((rc = cn_ed25519_load(keyfile, &k)) < 0) {
		fprintf(stderr, "cannot load key '%s': %s\n", keyfile, cn_strerror(rc));
		return 2;
	}
	cn_buf_init(&out, 1 << 16);
	if ((rc = read_stdin(&in)) == 0) {
		trim_newline(&in);
		rc = cn_jwt_verify(in.data ? in.data : "", in.len, &k, 1, now, 0, &c, &payload, err,
				   sizeof(err));
	}
	if (rc == 0 && cn_json_print(payload, &out) == 0)
		printf("%s\n", out.data);
	else
		fprintf(stderr, "error %d: %s\n", rc, err[0] ? err : cn_strerror(rc));
	cJSON_Delete(payload);
	cn_buf_free(&in);
	cn_buf_free(&out);
	cn_ed25519_free(k);
	return rc < 0 ? 1 : 0;
}

/* stdin: one envelope; stdout: the re-encoded envelope. */
static int cmd_envelope(void)
{
	struct cn_envelope e;
	struct cn_buf in, out;
	char err[256] = "";
	int rc;

	cn_buf_init(&out, CN_ENV_MAX_BYTES + 1024);
	if ((rc = read_stdin(&in)) == 0)
		rc = cn_envelope_decode(in.data ? in.data : "", in.len, &e, err, sizeof(err));
	if (rc == 0) {
		rc = cn_envelope_encode(&e, &out);
		cn_envelope_clear(&e);
	}
	if (rc == 0)
		printf("%s\n", out.data);
	else
		fprintf(stderr, "error %d: %s\n", rc, err[0] ? err : cn_strerror(rc));
	cn_buf_free(&in);
	cn_buf_free(&out);
	return rc < 0 ? 1 : 0;
}

static int read_file(const char *path, struct cn_buf *b)
{
	char chunk[65536];
	size_t n;
	FILE *f = fopen(path, "rb");
	int rc = 0;

	cn_buf_init(b, 256 << 20);
	if (f == NULL)
		return -errno;
	while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = cn_buf_append(b, chunk, n);
	if (rc == 0 && ferror(f))
		rc = -EIO;
	fclose(f);
	return rc;
}

/* Does this NAL begin a new access unit, after one that already has a picture?
 * (H.264 7.4.1.2.3, H.265 7.4.2.4.4: parameter sets, SEI, AUD, or a first slice.) */
static bool starts_au(bool h265, const uint8_t *nal, size_t n)
{
	int t;

	if (h265) {
		t = cn_h265_nal_type(nal);
		if ((t >= 32 && t <= 35) || t == 39 || (t >= 41 && t <= 44) || (t >= 48 && t <= 55))
			return true;
		return t < 32 && n > 2 && (nal[2] & 0x80); /* first_slice_segment_in_pic_flag */
	}
	t = cn_h264_nal_type(nal);
	if ((t >= 6 && t <= 9) || (t >= 14 && t <= 18))
		return true;
	return (t == 1 || t == 5) && n > 1 && (nal[1] & 0x80); /* first_mb_in_slice == 0 */
}

static bool is_vcl(bool h265, const uint8_t *nal)
{
	return h265 ? cn_h265_nal_type(nal) < 32 : cn_h264_nal_type(nal) >= 1 &&
							 cn_h264_nal_type(nal) <= 5;
}

struct rtp_out {
	FILE *f;
	uint16_t seq;
	uint32_t ts;
	long packets;
};

/* Packetises one access unit (Annex B) and writes its packets, RFC 4571 framed. */
static int send_au(bool h265, const uint8_t *au, size_t len, size_t max_payload,
		   struct rtp_out *o)
{
	struct cn_rtp_payloads pl = { 0 };
	uint8_t hdr[CN_RTP_HEADER_MIN + 2];
	int rc;

	/* Generous: every payload is at most 3 bytes more than what it carries. */
	pl.max_pkts = (int)(len / 2) + 64;
	pl.cap = len + 3 * (size_t)pl.max_pkts;
	pl.buf = malloc(pl.cap);
	pl.pkts = calloc((size_t)pl.max_pkts, sizeof(*pl.pkts));
	if (pl.buf == NULL || pl.pkts == NULL) {
		rc = -ENOMEM;
		goto out_free;
	}
	rc = h265 ? cn_rtp_h265_packetize(au, len, 0, NULL, 0, 0, max_payload, &pl)
		  : cn_rtp_h264_packetize(au, len, 0, NULL, 0, 0, max_payload, &pl);
	for (int i = 0; rc == 0 && i < pl.npkts; i++) {
		size_t n = CN_RTP_HEADER_MIN + pl.pkts[i].len;

		hdr[0] = (uint8_t)(n >> 8);
		hdr[1] = (uint8_t)n;
		cn_rtp_write_header(hdr + 2, sizeof(hdr) - 2, pl.pkts[i].marker, 96, o->seq++,
				    o->ts, 0x43414e4f, 0, 0);
		if (fwrite(hdr, 1, sizeof(hdr), o->f) != sizeof(hdr) ||
		    fwrite(pl.buf + pl.pkts[i].off, 1, pl.pkts[i].len, o->f) != pl.pkts[i].len)
			rc = -EIO;
		o->packets++;
	}
out_free:
	free(pl.buf);
	free(pl.pkts);
	return rc;
}

/* An Annex B file as RTP packets (pt 96, 90 kHz, 25 fps), each with the 2-byte length
 * of RFC 4571 before it; prints the access unit and packet counts. */
static int cmd_rtp(bool h265, const char *in_path, const char *out_path, const char *mtu_s)
{
	struct rtp_out o = { .seq = 1000 };
	struct cn_buf in;
	const uint8_t *p, *nal;
	size_t pos = 0, n, au = SIZE_MAX;
	int64_t mtu = 1200;
	long aus = 0;
	bool have_vcl = false;
	int rc;

	if (mtu_s && cn_str_to_i64(cn_str_from(mtu_s), 64 + CN_RTP_HEADER_MIN, 65535, &mtu) < 0) {
		fprintf(stderr, "bad mtu '%s'\n", mtu_s);
		return 2;
	}
	if ((rc = read_file(in_path, &in)) < 0) {
		fprintf(stderr, "cannot read '%s': %s\n", in_path, cn_strerror(rc));
		cn_buf_free(&in);
		return 1;
	}
	if ((o.f = fopen(out_path, "wb")) == NULL) {
		fprintf(stderr, "cannot create '%s': %s\n", out_path, strerror(errno));
		cn_buf_free(&in);
		return 1;
	}
	p = (const uint8_t *)in.data;
	while (rc == 0 && cn_nal_next(p, in.len, 0, &pos, &nal, &n) == 1) {
		size_t start = (size_t)(nal - p) - 3; /* the NAL's 00 00 01 */

		if (au != SIZE_MAX && have_vcl && starts_au(h265, nal, n)) {
			rc = send_au(h265, p + au, start - au, (size_t)mtu - CN_RTP_HEADER_MIN, &o);
			o.ts += 90000 / 25;
			aus++;
			au = start;
			have_vcl = false;
		}
		if (au == SIZE_MAX)
			au = start;
		have_vcl |= is_vcl(h265, nal);
	}
	if (rc == 0 && au != SIZE_MAX) {
		rc = send_au(h265, p + au, in.len - au, (size_t)mtu - CN_RTP_HEADER_MIN, &o);
		aus++;
	}
	if (fclose(o.f) != 0 && rc == 0)
		rc = -EIO;
	cn_buf_free(&in);
	if (rc < 0) {
		fprintf(stderr, "rtp: %s\n", cn_strerror(rc));
		return 1;
	}
	printf("access units %ld packets %ld\n", aus, o.packets);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "keygen") == 0)
		return cmd_keygen(argv[2], argv[3]);
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "jwt-sign") == 0)
		return cmd_jwt_sign(argv[2], argc == 4 ? argv[3] : NULL);
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "jwt-verify") == 0)
		return cmd_jwt_verify(argv[2], argc == 4 ? argv[3] : NULL);
	if (argc == 2 && strcmp(argv[1], "envelope") == 0)
		return cmd_envelope();
	if ((argc == 4 || (argc == 6 && strcmp(argv[4], "--mtu") == 0)) &&
	    (strcmp(argv[1], "rtp-h264") == 0 || strcmp(argv[1], "rtp-h265") == 0))
		return cmd_rtp(strcmp(argv[1], "rtp-h265") == 0, argv[2], argv[3],
			       argc == 6 ? argv[5] : NULL);
	fprintf(stderr,
		"usage: canopy-codec keygen PRIV.pem PUB.pem\n"
		"       canopy-codec jwt-sign PRIV.pem [KID]   < claims.json\n"
		"       canopy-codec jwt-verify PUB.pem [NOW]  < token\n"
		"       canopy-codec envelope                  < message.json\n"
		"       canopy-codec rtp-h264|rtp-h265 IN.annexb OUT.rtp [--mtu N]\n"
		"                    (RTP packets, RFC 4571 framed; default mtu 1200)\n");
	return 2;
}
