/* fuzz_envelope.c: libFuzzer harness for envelope decode and the encode/decode round trip. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cn_buf.h"
#include "cn_envelope.h"
#include "cn_err.h"
#include "cn_json.h"
#include "fuzz_check.h"

/* Like CHECK, with the return code and the decoder's message. */
#define CHECK_RC(rc, want, err)                                                              \
	do {                                                                                 \
		if ((rc) != (want)) {                                                        \
			fprintf(stderr, "%s:%d: got %d (%s) want %d; %s\n", __FILE__, __LINE__, \
				(rc), cn_strerror(rc), (want), (err));                        \
			abort();                                                             \
		}                                                                            \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* What every decoded envelope must look like. */
static void check_decoded(const struct cn_envelope *e)
{
	size_t tl = strnlen(e->type, sizeof(e->type)), il = strnlen(e->id, sizeof(e->id));

	CHECK(tl > 0 && tl <= CN_ENV_TYPE_MAX);
	CHECK(e->type[0] >= 'a' && e->type[0] <= 'z');
	CHECK(il > 0 && il <= CN_ENV_ID_MAX);
	CHECK(e->seq <= (uint64_t)CN_JSON_MAX_SAFE_INT);
	CHECK(cJSON_IsObject(e->body));
}

static void check_same(const struct cn_envelope *a, const struct cn_envelope *b)
{
	CHECK(strcmp(a->type, b->type) == 0);
	CHECK(strcmp(a->id, b->id) == 0);
	CHECK(a->seq == b->seq);
	CHECK(a->time_ms == b->time_ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cn_envelope e1, e2, e3;
	struct cn_buf out1, out2;
	char err[512];
	int rc;

	err[0] = '\0';
	rc = cn_envelope_decode((const char *)data, size, &e1, err, sizeof(err));
	if (rc < 0) {
		CHECK(rc == CN_E_MALFORMED || rc == CN_E_TOO_BIG);
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
		/* A failed decode leaves nothing behind to free. */
		CHECK(all_zero(&e1, sizeof(e1)));
		cn_envelope_clear(&e1);
		return 0;
	}
	check_decoded(&e1);

	/* Encode what we decoded: it was valid on the way in, so it is valid on the way out. */
	cn_buf_init(&out1, 2 * CN_ENV_MAX_BYTES);
	rc = cn_envelope_encode(&e1, &out1);
	/* Re-printing can only grow past one frame when the input was near it already
	 * (escaped control characters, re-spelled numbers). */
	if (rc == CN_E_TOO_BIG && size > CN_ENV_MAX_BYTES / 8)
		goto out_clear1;
	CHECK_RC(rc, 0, "re-encoding a decoded envelope");
	CHECK(out1.len > 0 && out1.data[out1.len] == '\0');

	err[0] = '\0';
	rc = cn_envelope_decode(out1.data, out1.len, &e2, err, sizeof(err));
	CHECK_RC(rc, 0, err);
	check_decoded(&e2);
	check_same(&e1, &e2);

	/* The encoding is canonical: encoding the re-decoded envelope gives the same bytes. */
	cn_buf_init(&out2, 2 * CN_ENV_MAX_BYTES);
	rc = cn_envelope_encode(&e2, &out2);
	CHECK_RC(rc, 0, "encoding a round-tripped envelope");
	CHECK(out2.len == out1.len && memcmp(out1.data, out2.data, out1.len) == 0);
	cn_buf_free(&out2);
	cn_envelope_clear(&e2);

	/* No body encodes as {} and decodes to an empty object. */
	{
		cJSON *body = e1.body;
		e1.body = NULL;
		cn_buf_init(&out2, 2 * CN_ENV_MAX_BYTES);
		rc = cn_envelope_encode(&e1, &out2);
		e1.body = body;
		CHECK_RC(rc, 0, "encoding with no body");
		rc = cn_envelope_decode(out2.data, out2.len, &e3, err, sizeof(err));
		CHECK_RC(rc, 0, err);
		check_same(&e1, &e3);
		CHECK(e3.body->child == NULL);
		cn_envelope_clear(&e3);
		cn_buf_free(&out2);
	}

out_clear1:
	cn_buf_free(&out1);
	cn_envelope_clear(&e1);
	CHECK(e1.body == NULL);
	return 0;
}
