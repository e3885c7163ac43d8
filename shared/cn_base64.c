/* cn_base64.c: base64 codecs without I/O; decoding is canonical-only. */
#include "cn_base64.h"

#include "cn_err.h"

static const char std_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t cn_base64_encoded_len(enum cn_b64 v, size_t n)
{
	if (v == CN_B64_STD)
		return (n + 2) / 3 * 4;
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

int cn_base64_encode(enum cn_b64 v, const uint8_t *in, size_t n, char *out, size_t cap,
		     size_t *outlen)
{
	const char *a = v == CN_B64_STD ? std_alpha : url_alpha;
	size_t need = cn_base64_encoded_len(v, n), o = 0, i;

	if (n > (SIZE_MAX / 4) * 3 - 3 || cap < need + 1)
		return -ENOSPC;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = a[w >> 18 & 63];
		out[o++] = a[w >> 12 & 63];
		out[o++] = a[w >> 6 & 63];
		out[o++] = a[w & 63];
	}
	if (n - i == 1) {
		uint32_t w = (uint32_t)in[i] << 16;
		out[o++] = a[w >> 18 & 63];
		out[o++] = a[w >> 12 & 63];
		if (v == CN_B64_STD) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = a[w >> 18 & 63];
		out[o++] = a[w >> 12 & 63];
		out[o++] = a[w >> 6 & 63];
		if (v == CN_B64_STD)
			out[o++] = '=';
	}
	out[o] = '\0';
	if (outlen)
		*outlen = o;
	return 0;
}

static int sextet(enum cn_b64 v, char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (v == CN_B64_STD)
		return c == '+' ? 62 : c == '/' ? 63 : -1;
	return c == '-' ? 62 : c == '_' ? 63 : -1;
}

int cn_base64_decode(enum cn_b64 v, const char *in, size_t n, uint8_t *out, size_t cap,
		     size_t *outlen)
{
	size_t data = n, o = 0, i;
	uint32_t w = 0;
	int bits = 0;

	if (v == CN_B64_STD) {
		if (n % 4)
			return CN_E_MALFORMED;
		if (data && in[data - 1] == '=')
			data--;
		if (data && in[data - 1] == '=')
			data--;
	} else if (n % 4 == 1) {
		return CN_E_MALFORMED;
	}
	if (data / 4 * 3 + (data % 4 ? data % 4 - 1 : 0) > cap)
		return -ENOSPC;
	for (i = 0; i < data; i++) {
		int s = sextet(v, in[i]);
		if (s < 0)
			return CN_E_MALFORMED;
		w = w << 6 | (uint32_t)s;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(w >> bits);
			w &= (1u << bits) - 1;
		}
	}
	/* Leftover bits must be zero, or two strings would decode to the same bytes. */
	if (w != 0 || data % 4 == 1)
		return CN_E_MALFORMED;
	if (outlen)
		*outlen = o;
	return 0;
}
