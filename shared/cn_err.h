/* cn_err.h: Canopy's return convention: 0 on success, negative errno or CN_E* on failure. */
#ifndef CN_ERR_H
#define CN_ERR_H

#include <errno.h>

/* Canopy-specific failures, kept clear of the errno range so one int carries both. */
enum {
	CN_E_MALFORMED = -1000, /* input does not parse */
	CN_E_TOO_BIG = -1001,   /* input exceeds a configured bound */
	CN_E_BAD_ALG = -1002,   /* token names an algorithm we refuse */
	CN_E_BAD_SIG = -1003,   /* signature does not verify */
	CN_E_EXPIRED = -1004,   /* token past its exp */
	CN_E_NOT_YET = -1005,   /* token before its nbf */
	CN_E_CONFIG = -1006,    /* configuration rejected */
	CN_E_FULL = -1007,      /* bounded queue or buffer full */
	CN_E_MISMATCH = -1008,  /* secret (password) does not match the stored one */
	CN_E_POLICY = -1009,    /* input well-formed but refused by policy (weak password) */
};

#include <stddef.h>

/* Writes the reason into err (when err and cap are set) and returns rc: what every parser
 * of untrusted input does to say precisely why it refused. */
int cn_fail(int rc, char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Human-readable text for a negative return value; never NULL. */
const char *cn_strerror(int err);

#endif
