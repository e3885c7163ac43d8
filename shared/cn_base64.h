/* cn_base64.h: strict base64 (RFC 4648 section 4, padded) and base64url (section 5, unpadded). */
#ifndef CN_BASE64_H
#define CN_BASE64_H

#include <stddef.h>
#include <stdint.h>

enum cn_b64 {
	CN_B64_STD = 0, /* '+' '/', '=' padding required */
	CN_B64_URL = 1, /* '-' '_', no padding (as JWT uses it) */
};

/* Output length for n input bytes, without the NUL. */
size_t cn_base64_encoded_len(enum cn_b64 v, size_t n);
/* Writes a NUL-terminated encoding; -ENOSPC when cap is short. */
int cn_base64_encode(enum cn_b64 v, const uint8_t *in, size_t n, char *out, size_t cap,
		     size_t *outlen);
/* Rejects foreign characters, wrong padding, whitespace and non-zero trailing bits
 * (so each byte string has exactly one accepted encoding). */
int cn_base64_decode(enum cn_b64 v, const char *in, size_t n, uint8_t *out, size_t cap,
		     size_t *outlen);

#endif
