/* test_base64.c: RFC 4648 vectors, canonical decoding and hostile input. */
#include "cn_base64.h"
#include "cn_err.h"
#include "cn_test.h"

static const struct {
	const char *raw, *std, *url;
} vectors[] = {
	{ "", "", "" },
	{ "f", "Zg==", "Zg" },
	{ "fo", "Zm8=", "Zm8" },
	{ "foo", "Zm9v", "Zm9v" },
	{ "foob", "Zm9vYg==", "Zm9vYg" },
	{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
	{ "\xfb\xff\xfe", "+//+", "-__-" },
};

TEST(base64_vectors)
{
	char out[64];
	uint8_t raw[64];
	size_t n;

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		size_t rl = strlen(vectors[i].raw);
		CHECK_INT(cn_base64_encode(CN_B64_STD, (const uint8_t *)vectors[i].raw, rl, out,
					   sizeof(out), &n), 0);
		CHECK_STR(out, vectors[i].std);
		CHECK_INT(n, cn_base64_encoded_len(CN_B64_STD, rl));
		CHECK_INT(cn_base64_encode(CN_B64_URL, (const uint8_t *)vectors[i].raw, rl, out,
					   sizeof(out), &n), 0);
		CHECK_STR(out, vectors[i].url);
		CHECK_INT(n, cn_base64_encoded_len(CN_B64_URL, rl));
		CHECK_INT(cn_base64_decode(CN_B64_STD, vectors[i].std, strlen(vectors[i].std), raw,
					   sizeof(raw), &n), 0);
		CHECK(n == rl && memcmp(raw, vectors[i].raw, rl) == 0);
		CHECK_INT(cn_base64_decode(CN_B64_URL, vectors[i].url, strlen(vectors[i].url), raw,
					   sizeof(raw), &n), 0);
		CHECK(n == rl && memcmp(raw, vectors[i].raw, rl) == 0);
	}
}

TEST(base64_hostile)
{
	static const char *const bad_std[] = { "Zg=",  "Zg",   "Z===", "Zh==", "Zm9=", "Zm 9v",
					       "Zm9v\n", "====", "Zg==Zg==", "-__-", "Zm9\0" };
	static const char *const bad_url[] = { "Zg==", "Z", "Zh", "Zm9", "+//+", "Zm9v=", "Zm9v " };
	uint8_t raw[64];
	char out[4];
	size_t n;

	for (size_t i = 0; i < sizeof(bad_std) / sizeof(*bad_std); i++) {
		size_t len = i == 10 ? 4 : strlen(bad_std[i]);
		if (cn_base64_decode(CN_B64_STD, bad_std[i], len, raw, sizeof(raw), &n) == 0)
			cn_test_fail(__FILE__, __LINE__, "std accepted '%s'", bad_std[i]);
	}
	for (size_t i = 0; i < sizeof(bad_url) / sizeof(*bad_url); i++)
		if (cn_base64_decode(CN_B64_URL, bad_url[i], strlen(bad_url[i]), raw, sizeof(raw),
				     &n) == 0)
			cn_test_fail(__FILE__, __LINE__, "url accepted '%s'", bad_url[i]);
	/* Output bounds are enforced on both sides. */
	CHECK_INT(cn_base64_decode(CN_B64_STD, "Zm9vYmFy", 8, raw, 5, &n), -ENOSPC);
	CHECK_INT(cn_base64_encode(CN_B64_STD, (const uint8_t *)"foo", 3, out, sizeof(out), &n),
		  -ENOSPC);
}

TEST(base64url_roundtrip)
{
	uint8_t in[256], back[256];
	char enc[400];
	size_t n, m;

	for (int i = 0; i < 256; i++)
		in[i] = (uint8_t)(255 - i);
	for (size_t len = 0; len <= sizeof(in); len += 7) {
		CHECK_INT(cn_base64_encode(CN_B64_URL, in, len, enc, sizeof(enc), &n), 0);
		CHECK(strchr(enc, '=') == NULL && strchr(enc, '+') == NULL);
		CHECK_INT(cn_base64_decode(CN_B64_URL, enc, n, back, sizeof(back), &m), 0);
		CHECK(m == len && memcmp(in, back, len) == 0);
	}
}
