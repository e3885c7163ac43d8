/* cn_password.h: argon2id password hashes as PHC strings, and the rules for new passwords. */
#ifndef CN_PASSWORD_H
#define CN_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cn_password_params {
	uint32_t m_cost_kib;  /* memory, KiB: 8 * parallelism .. CN_PASSWORD_M_MAX_KIB */
	uint32_t t_cost;      /* passes: 1 .. CN_PASSWORD_T_MAX */
	uint32_t parallelism; /* lanes: 1 .. CN_PASSWORD_P_MAX */
};

/* m=19456 KiB, t=2, p=1: the OWASP argon2id recommendation. */
extern const struct cn_password_params cn_password_default;

/* Bounds on parameters, both for hashing and for stored strings (so a stored hash cannot
 * make verification allocate or spin without limit). */
#define CN_PASSWORD_M_MAX_KIB (1024u * 1024u) /* 1 GiB */
#define CN_PASSWORD_T_MAX 100u
#define CN_PASSWORD_P_MAX 16u

/* Room for any string cn_password_hash writes, with the NUL. */
#define CN_PASSWORD_HASH_MAX 128

/* argon2id of pw (len bytes) with a random 16-byte salt and a 32-byte hash, written into
 * out as "$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>" (standard base64, no padding).
 * p NULL means cn_password_default. -EINVAL for parameters out of bounds, -ENOSPC when
 * cap is short (out is then ""), -ENOMEM when the memory cost cannot be allocated. */
int cn_password_hash(const char *pw, size_t len, const struct cn_password_params *p,
		     char *out, size_t cap);

/* 0 when pw matches phc, CN_E_MISMATCH when it does not. A phc that does not parse is
 * refused before any hashing: CN_E_BAD_ALG for anything but argon2id version 19,
 * CN_E_TOO_BIG for m above 1 GiB, t above 100 or p above 16, CN_E_MALFORMED otherwise.
 * Accepts salts of 8..48 bytes and hashes of 16..64 bytes, so strings made elsewhere
 * verify. The hash is compared in constant time. */
int cn_password_verify(const char *pw, size_t len, const char *phc);

/* True when phc was not made with p (NULL: cn_password_default) as cn_password_hash makes
 * it today: other m, t or p, another salt or hash length, or phc does not parse. Call after
 * a successful verify and store a fresh hash of the same password. */
bool cn_password_needs_rehash(const char *phc, const struct cn_password_params *p);

/* 0 when pw (len bytes) is acceptable as a new password; otherwise CN_E_POLICY with the
 * reason in why (when why and cap are set). Rules, checked in this order: valid UTF-8 with
 * no NUL; 8..64 characters counted as code points; at least 3 of 4 classes (lower case,
 * upper case, digits, other), classified by Unicode category so that 'é' is lower case and
 * Arabic-Indic digits are digits; does not contain username (ASCII case-insensitive,
 * skipped when username is NULL or shorter than 3 characters). -EINVAL when pw is NULL
 * with len > 0. */
int cn_password_policy(const char *pw, size_t len, const char *username, char *why, size_t cap);

#endif
