/* codec.c: canopy-codec, a command-line door to shared/ codecs so independent tools can cross-check them. */
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
	fprintf(stderr,
		"usage: canopy-codec keygen PRIV.pem PUB.pem\n"
		"       canopy-codec jwt-sign PRIV.pem [KID]   < claims.json\n"
		"       canopy-codec jwt-verify PUB.pem [NOW]  < token\n"
		"       canopy-codec envelope                  < message.json\n");
	return 2;
}
