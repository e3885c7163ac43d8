/* cn_err.c: text for Canopy return codes. */
#include "cn_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *cn_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case CN_E_MALFORMED: return "malformed input";
	case CN_E_TOO_BIG: return "input too large";
	case CN_E_BAD_ALG: return "algorithm not accepted";
	case CN_E_BAD_SIG: return "bad signature";
	case CN_E_EXPIRED: return "expired";
	case CN_E_NOT_YET: return "not yet valid";
	case CN_E_CONFIG: return "invalid configuration";
	case CN_E_FULL: return "queue full";
	case CN_E_MISMATCH: return "does not match";
	case CN_E_POLICY: return "refused by policy";
	default: break;
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}

int cn_fail(int rc, char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (err && cap) {
		va_start(ap, fmt);
		vsnprintf(err, cap, fmt, ap);
		va_end(ap);
	}
	return rc;
}
