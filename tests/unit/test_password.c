/* test_password.c: argon2id vs upstream vectors and libargon2's encoder; hostile PHC; policy. */
#include <argon2.h>

#include "cn_err.h"
#include "cn_password.h"
#include "cn_test.h"

/* Cheap parameters so the tests that hash many times stay fast (also under ASan). */
static const struct cn_password_params cheap = { .m_cost_kib = 256, .t_cost = 2, .parallelism = 1 };

/* From phc-winner-argon2 src/test.c (the reference implementation's own vectors). */
#define REF_P1 \
	"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
#define REF_P2 \
	"$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc"

static int verify(const char *pw, const char *phc)
{
	return cn_password_verify(pw, strlen(pw), phc);
}

static int policy(const char *pw, const char *user, char *why, size_t cap)
{
	return cn_password_policy(pw, strlen(pw), user, why, cap);
}

TEST(password_round_trip)
{
	const char *prefix = "$argon2id$v=19$m=19456,t=2,p=1$";
	char a[CN_PASSWORD_HASH_MAX], b[CN_PASSWORD_HASH_MAX];
	struct cn_password_params more = cn_password_default;

	CHECK_INT(cn_password_hash("correct horse", 13, &cn_password_default, a, sizeof(a)), 0);
	CHECK(strncmp(a, prefix, strlen(prefix)) == 0);
	/* 16-byte salt and 32-byte hash: 22 and 43 characters of unpadded base64. */
	CHECK_INT(strlen(a), strlen(prefix) + 22 + 1 + 43);
	CHECK(strchr(a + strlen(prefix), '=') == NULL); /* unpadded base64 */
	CHECK_INT(verify("correct horse", a), 0);
	CHECK_INT(verify("correct horsf", a), CN_E_MISMATCH);
	CHECK_INT(verify("correct hors", a), CN_E_MISMATCH);
	CHECK_INT(verify("", a), CN_E_MISMATCH);
	/* libargon2's own decoder accepts what we write. */
	CHECK_INT(argon2id_verify(a, "correct horse", 13), ARGON2_OK);
	/* Random salt: the same password never hashes to the same string. */
	CHECK_INT(cn_password_hash("correct horse", 13, NULL, b, sizeof(b)), 0);
	CHECK(strcmp(a, b) != 0);
	CHECK_INT(verify("correct horse", b), 0);

	CHECK(!cn_password_needs_rehash(a, NULL));
	CHECK(!cn_password_needs_rehash(a, &cn_password_default));
	more.t_cost = 3;
	CHECK(cn_password_needs_rehash(a, &more));
	more = cn_password_default;
	more.m_cost_kib = 65536;
	CHECK(cn_password_needs_rehash(a, &more));
	more = cn_password_default;
	more.parallelism = 2;
	CHECK(cn_password_needs_rehash(a, &more));
}

TEST(password_hash_args)
{
	char out[CN_PASSWORD_HASH_MAX];
	struct cn_password_params p;

	/* Empty password and binary bytes are hashed as given. */
	CHECK_INT(cn_password_hash("", 0, &cheap, out, sizeof(out)), 0);
	CHECK_INT(cn_password_verify("", 0, out), 0);
	CHECK_INT(cn_password_verify(NULL, 0, out), 0);
	CHECK_INT(cn_password_verify("x", 1, out), CN_E_MISMATCH);
	CHECK_INT(cn_password_hash("a\0b", 3, &cheap, out, sizeof(out)), 0);
	CHECK_INT(cn_password_verify("a\0b", 3, out), 0);
	CHECK_INT(cn_password_verify("a\0c", 3, out), CN_E_MISMATCH);
	CHECK_INT(cn_password_verify("a", 1, out), CN_E_MISMATCH);

	CHECK_INT(cn_password_hash("pw", 2, &cheap, out, 40), -ENOSPC);
	CHECK_STR(out, "");
	CHECK_INT(cn_password_hash("pw", 2, &cheap, NULL, 0), -EINVAL);
	CHECK_INT(cn_password_hash(NULL, 2, &cheap, out, sizeof(out)), -EINVAL);
	CHECK_INT(cn_password_verify(NULL, 2, REF_P1), -EINVAL);
	p = (struct cn_password_params){ 256, 0, 1 };
	CHECK_INT(cn_password_hash("pw", 2, &p, out, sizeof(out)), -EINVAL);
	p = (struct cn_password_params){ 256, 101, 1 };
	CHECK_INT(cn_password_hash("pw", 2, &p, out, sizeof(out)), -EINVAL);
	p = (struct cn_password_params){ 256, 1, 0 };
	CHECK_INT(cn_password_hash("pw", 2, &p, out, sizeof(out)), -EINVAL);
	p = (struct cn_password_params){ 256, 1, 17 };
	CHECK_INT(cn_password_hash("pw", 2, &p, out, sizeof(out)), -EINVAL);
	p = (struct cn_password_params){ 15, 1, 2 }; /* below 8 KiB per lane */
	CHECK_INT(cn_password_hash("pw", 2, &p, out, sizeof(out)), -EINVAL);
	p = (struct cn_password_params){ CN_PASSWORD_M_MAX_KIB + 1, 1, 1 };
	CHECK_INT(cn_password_hash("pw", 2, &p, out, sizeof(out)), -EINVAL);
	p = (struct cn_password_params){ 16, 1, 2 };
	CHECK_INT(cn_password_hash("pw", 2, &p, out, sizeof(out)), 0);
	CHECK_INT(verify("pw", out), 0);
}

TEST(password_reference_vectors)
{
	CHECK_INT(verify("password", REF_P1), 0);
	CHECK_INT(verify("password", REF_P2), 0);
	CHECK_INT(verify("Password", REF_P1), CN_E_MISMATCH);
	CHECK_INT(verify("passwor", REF_P2), CN_E_MISMATCH);
	/* Same salt and hash under other parameters must not verify. */
	CHECK_INT(verify("password", "$argon2id$v=19$m=256,t=3,p=1$c29tZXNhbHQ$"
				     "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"),
		  CN_E_MISMATCH);
	/* 8-byte salt, other m: made by someone else, so due for a rehash. */
	CHECK(cn_password_needs_rehash(REF_P1, NULL));
	CHECK(cn_password_needs_rehash(REF_P1, &cheap));
}

TEST(password_libargon2_encoder)
{
	const uint8_t *salt = (const uint8_t *)"0123456789abcdef";
	char enc[256];
	const char *pw = "Tr0ub4dor&3 \xc3\xa9t\xc3\xa9";

	CHECK_INT(argon2id_hash_encoded(2, 256, 1, pw, strlen(pw), salt, 16, 32, enc,
					sizeof(enc)),
		  ARGON2_OK);
	CHECK_INT(verify(pw, enc), 0);
	CHECK_INT(verify("Tr0ub4dor&3", enc), CN_E_MISMATCH);
	CHECK(!cn_password_needs_rehash(enc, &cheap));

	/* Other hash lengths verify too; they are due for a rehash. */
	CHECK_INT(argon2id_hash_encoded(1, 64, 2, pw, strlen(pw), salt, 16, 64, enc,
					sizeof(enc)),
		  ARGON2_OK);
	CHECK_INT(verify(pw, enc), 0);
	CHECK(cn_password_needs_rehash(enc, &(struct cn_password_params){ 64, 1, 2 }));
	CHECK_INT(argon2id_hash_encoded(1, 64, 1, pw, strlen(pw), salt, 16, 16, enc,
					sizeof(enc)),
		  ARGON2_OK);
	CHECK_INT(verify(pw, enc), 0);
	/* ... but not ones shorter than 16 bytes. */
	CHECK_INT(argon2id_hash_encoded(1, 64, 1, pw, strlen(pw), salt, 16, 12, enc,
					sizeof(enc)),
		  ARGON2_OK);
	CHECK_INT(verify(pw, enc), CN_E_MALFORMED);
	/* argon2i strings from the same library are another algorithm. */
	CHECK_INT(argon2i_hash_encoded(2, 256, 1, pw, strlen(pw), salt, 16, 32, enc,
				       sizeof(enc)),
		  ARGON2_OK);
	CHECK_INT(verify(pw, enc), CN_E_BAD_ALG);
}

TEST(password_bounds_inclusive)
{
	/* The largest accepted parameters parse (needs_rehash parses without hashing). */
	const char *max = "$argon2id$v=19$m=1048576,t=100,p=16$MDEyMzQ1Njc4OWFiY2RlZg$"
			  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	struct cn_password_params p = { CN_PASSWORD_M_MAX_KIB, CN_PASSWORD_T_MAX,
					CN_PASSWORD_P_MAX };

	CHECK(!cn_password_needs_rehash(max, &p));
	CHECK(cn_password_needs_rehash("$argon2id$v=19$m=1048577,t=100,p=16$MDEyMzQ1Njc4OWFiY2RlZg$"
				       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
				       &(struct cn_password_params){ 1048577, 100, 16 }));
	CHECK(cn_password_needs_rehash("garbage", NULL));
	CHECK(cn_password_needs_rehash(NULL, NULL));
}

TEST(password_malformed)
{
	/* Pieces of REF_P1, so each case shows only what it changes. */
#define V19 "$argon2id$v=19$"
#define PARAMS "m=256,t=2,p=1"
#define SALT "c29tZXNhbHQ"
#define HASH "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
#define TAIL "$" SALT "$" HASH
	static const struct {
		const char *phc;
		int rc;
	} cases[] = {
		{ "", CN_E_MALFORMED },
		{ "argon2id$v=19$" PARAMS TAIL, CN_E_MALFORMED },
		{ "$", CN_E_BAD_ALG },
		{ "$argon2id", CN_E_MALFORMED },
		{ "$argon2id$", CN_E_MALFORMED },
		{ "$argon2i$v=19$" PARAMS "$" SALT "$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8",
		  CN_E_BAD_ALG },
		{ "$argon2d$v=19$" PARAMS TAIL, CN_E_BAD_ALG },
		{ "$ARGON2ID$v=19$" PARAMS TAIL, CN_E_BAD_ALG },
		{ "$2b$12$GhvMmNVjRW29ulnudl.LbuAnUtN/LRfe1JsBm1Xu6LE3059z5Tr8m", CN_E_BAD_ALG },
		{ "$argon2id$v=16$" PARAMS TAIL, CN_E_BAD_ALG },
		{ "$argon2id$v=99999999999$" PARAMS TAIL, CN_E_BAD_ALG },
		/* Version 1.0 strings had no v= field. */
		{ "$argon2id$" PARAMS TAIL, CN_E_MALFORMED },
		/* Absurd costs are refused before any hashing. */
		{ V19 "m=2000000000,t=2,p=1" TAIL, CN_E_TOO_BIG },
		{ V19 "m=1048577,t=2,p=1" TAIL, CN_E_TOO_BIG },
		{ V19 "m=99999999999999999999999,t=2,p=1" TAIL, CN_E_TOO_BIG },
		{ V19 "m=256,t=101,p=1" TAIL, CN_E_TOO_BIG },
		{ V19 "m=256,t=4294967295,p=1" TAIL, CN_E_TOO_BIG },
		{ V19 "m=256,t=2,p=17" TAIL, CN_E_TOO_BIG },
		/* Zero, too little memory per lane, signs, leading zeros, spaces, other orders. */
		{ V19 "m=256,t=0,p=1" TAIL, CN_E_MALFORMED },
		{ V19 "m=256,t=2,p=0" TAIL, CN_E_MALFORMED },
		{ V19 "m=15,t=2,p=2" TAIL, CN_E_MALFORMED },
		{ V19 "m=-256,t=2,p=1" TAIL, CN_E_MALFORMED },
		{ V19 "m=+256,t=2,p=1" TAIL, CN_E_MALFORMED },
		{ V19 "m=0256,t=2,p=1" TAIL, CN_E_MALFORMED },
		{ V19 "m= 256,t=2,p=1" TAIL, CN_E_MALFORMED },
		{ V19 "t=2,m=256,p=1" TAIL, CN_E_MALFORMED },
		/* Missing and extra fields. */
		{ V19 "m=256,t=2" TAIL, CN_E_MALFORMED },
		{ V19 PARAMS "$" HASH, CN_E_MALFORMED },
		{ V19 PARAMS "$" SALT, CN_E_MALFORMED },
		{ V19 PARAMS "$" SALT "$", CN_E_MALFORMED },
		{ V19 PARAMS "$$" HASH, CN_E_MALFORMED },
		{ V19 PARAMS ",keyid=abc" TAIL, CN_E_MALFORMED },
		{ V19 PARAMS TAIL "$", CN_E_MALFORMED },
		/* Bad base64: foreign characters, padding, base64url, non-zero trailing bits,
		 * an impossible length, salt or hash too short, non-ASCII. */
		{ V19 PARAMS "$c29tZX!hbHQ$" HASH, CN_E_MALFORMED },
		{ V19 PARAMS "$" SALT "=$" HASH, CN_E_MALFORMED },
		{ V19 PARAMS TAIL "=", CN_E_MALFORMED },
		{ V19 PARAMS "$" SALT "$nf65EOgLrQMR_uIPnA4rEsF5h7TKyQwu9U1bMCHGi_4",
		  CN_E_MALFORMED },
		{ V19 PARAMS "$c29tZXNhbHR$" HASH, CN_E_MALFORMED },
		{ V19 PARAMS TAIL "AB", CN_E_MALFORMED },
		{ V19 PARAMS "$c29tZQ$" HASH, CN_E_MALFORMED },
		{ V19 PARAMS "$" SALT "$nf65EOgLrQMR", CN_E_MALFORMED },
		{ V19 PARAMS "$" SALT "$nf65EOgLrQMR/uIPnA4rE\xc3\xa9", CN_E_MALFORMED },
	};
#undef V19
#undef PARAMS
#undef SALT
#undef HASH
#undef TAIL
	char big[400];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = verify("password", cases[i].phc);

		if (rc != cases[i].rc)
			cn_test_fail(__FILE__, __LINE__, "case %zu \"%s\": %d, expected %d", i,
				     cases[i].phc, rc, cases[i].rc);
		CHECK(cn_password_needs_rehash(cases[i].phc, &cheap));
	}
	CHECK_INT(cn_password_verify("password", 8, NULL), -EINVAL);

	/* Every truncation of a valid string is refused (most as malformed; a hash cut to
	 * 16 or more whole bytes parses and then cannot match). */
	for (size_t n = 0; n < strlen(REF_P1); n++) {
		char cut[sizeof(REF_P1)];
		int rc;

		memcpy(cut, REF_P1, n);
		cut[n] = '\0';
		rc = verify("password", cut);
		if (rc == 0 || (rc != CN_E_MALFORMED && rc != CN_E_BAD_ALG && rc != CN_E_MISMATCH))
			cn_test_fail(__FILE__, __LINE__, "truncated to %zu: %d", n, rc);
	}

	/* Overlong input is refused before it is read to the end. */
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, REF_P1, strlen(REF_P1));
	CHECK_INT(verify("password", big), CN_E_TOO_BIG);
}

TEST(password_policy_length)
{
	char why[160], pw[80];

	CHECK_INT(policy("Ab1!x", "bob", why, sizeof(why)), CN_E_POLICY);
	CHECK_STR(why, "password must be 8 to 64 characters long (has 5)");
	CHECK_INT(cn_password_policy(NULL, 0, "bob", why, sizeof(why)), CN_E_POLICY);
	CHECK_STR(why, "password must be 8 to 64 characters long (has 0)");
	CHECK_INT(cn_password_policy(NULL, 1, "bob", why, sizeof(why)), -EINVAL);
	CHECK_INT(policy("Abcdef1", NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_INT(policy("Abcdefg1", NULL, why, sizeof(why)), 0);
	CHECK_STR(why, "");

	/* 64 is the most, 65 too many. */
	memset(pw, 'x', 64);
	memcpy(pw, "Aa1", 3);
	pw[64] = '\0';
	CHECK_INT(policy(pw, NULL, why, sizeof(why)), 0);
	pw[64] = 'y';
	pw[65] = '\0';
	CHECK_INT(policy(pw, NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_STR(why, "password must be 8 to 64 characters long (has 65)");

	/* why may be absent or short; the result does not change. */
	CHECK_INT(policy("short", NULL, NULL, 0), CN_E_POLICY);
	CHECK_INT(policy("short", NULL, why, 9), CN_E_POLICY);
	CHECK_STR(why, "password");
}

TEST(password_policy_utf8)
{
	char why[160], pw[200];
	size_t n = 0;

	/* Characters are code points: 7 two-byte letters are 14 bytes but 7 characters. */
	CHECK_INT(policy("\xc3\x84\xc3\x96\xc3\x9c\xc3\xa4\xc3\xb6\xc3\xbc\xc3\xa9", NULL, why,
			 sizeof(why)),
		  CN_E_POLICY);
	CHECK_STR(why, "password must be 8 to 64 characters long (has 7)");
	/* ÄÖÜäöü1! : 8 characters, upper, lower, digit and other. */
	CHECK_INT(policy("\xc3\x84\xc3\x96\xc3\x9c\xc3\xa4\xc3\xb6\xc3\xbc" "1!", NULL, why,
			 sizeof(why)),
		  0);
	/* CJK (no case) counts as other; a 4-byte emoji is one character. */
	CHECK_INT(policy("\xe6\xbc\xa2\xe5\xad\x97" "abcd1\xf0\x9f\x94\x91", NULL, why,
			 sizeof(why)),
		  0);
	CHECK_INT(policy("\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91" "abcd", NULL, why,
			 sizeof(why)),
		  CN_E_POLICY);
	CHECK_STR(why, "password must be 8 to 64 characters long (has 7)");

	/* 64 two-byte characters (128 bytes) pass the length rule, 65 do not. */
	memcpy(pw, "A1", 2);
	n = 2;
	for (int i = 0; i < 62; i++) {
		pw[n++] = '\xc3';
		pw[n++] = '\xa9';
	}
	CHECK_INT(cn_password_policy(pw, n, NULL, why, sizeof(why)), 0);
	pw[n++] = '\xc3';
	pw[n++] = '\xa9';
	CHECK_INT(cn_password_policy(pw, n, NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_STR(why, "password must be 8 to 64 characters long (has 65)");

	/* Invalid UTF-8: stray byte, overlong '/', surrogate, past U+10FFFF, cut sequence. */
	CHECK_INT(policy("Abcdefg1\xff", NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_STR(why, "password is not valid UTF-8 (at byte 8)");
	CHECK_INT(policy("Abcdefg1\xc0\xaf", NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_STR(why, "password is not valid UTF-8 (at byte 8)");
	CHECK_INT(policy("Abcdefg1\xe0\x80\xaf", NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_INT(policy("Abcdefg1\xed\xa0\x80", NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_INT(policy("Abcdefg1\xf4\x90\x80\x80", NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_INT(policy("\x80" "Abcdefg1", NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_STR(why, "password is not valid UTF-8 (at byte 0)");
	CHECK_INT(policy("Abcdefg1\xc3", NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_INT(policy("Abcdefg1\xe2\x82", NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_STR(why, "password is not valid UTF-8 (at byte 8)");
	/* The highest code point and a 3-byte one just below the surrogates are fine. */
	CHECK_INT(policy("Abcdefg1\xf4\x8f\xbf\xbf\xed\x9f\xbf", NULL, why, sizeof(why)), 0);
	CHECK_INT(cn_password_policy("Abcdefg1\0x", 10, NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_STR(why, "password must not contain a NUL character");
}

TEST(password_policy_classes)
{
	char why[160];

	CHECK_INT(policy("abcdefgh12", NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_STR(why, "password must use at least 3 of: lower case, upper case, digits, other "
		       "characters (uses 2)");
	CHECK_INT(policy("abcdefghij", NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_STR(why, "password must use at least 3 of: lower case, upper case, digits, other "
		       "characters (uses 1)");
	CHECK_INT(policy("ABCDEFGH!!", NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_INT(policy("12345678  ", NULL, why, sizeof(why)), CN_E_POLICY);
	CHECK_INT(policy("abcdefgh1A", NULL, why, sizeof(why)), 0);
	CHECK_INT(policy("abcdefg1!", NULL, why, sizeof(why)), 0);
	CHECK_INT(policy("ABCDEFG1 ", NULL, why, sizeof(why)), 0);
	CHECK_INT(policy("abcdEFG!", NULL, why, sizeof(why)), 0);
	CHECK_INT(policy("aB3$xY7&", NULL, why, sizeof(why)), 0);
}

TEST(password_policy_username)
{
	char why[160];

	CHECK_INT(policy("xxALICExx1!", "alice", why, sizeof(why)), CN_E_POLICY);
	CHECK_STR(why, "password must not contain the user name");
	CHECK_INT(policy("Alice2024!", "alice", why, sizeof(why)), CN_E_POLICY);
	CHECK_INT(policy("2024!aLiCe", "ALICE", why, sizeof(why)), CN_E_POLICY);
	CHECK_INT(policy("Alic2024!e", "alice", why, sizeof(why)), 0);
	/* The user name is compared only when it has 3 characters or more. */
	CHECK_INT(policy("Xal12345!", "al", why, sizeof(why)), 0);
	CHECK_INT(policy("Xbob12345", "bob", why, sizeof(why)), CN_E_POLICY);
	CHECK_INT(policy("Xbob12345", "", why, sizeof(why)), 0);
	CHECK_INT(policy("Xbob12345", NULL, why, sizeof(why)), 0);
	/* Two non-ASCII characters are still fewer than 3. */
	CHECK_INT(policy("X\xc3\xa9\xc3\xa9" "12345", "\xc3\xa9\xc3\xa9", why, sizeof(why)), 0);
	CHECK_INT(policy("X\xc3\xa9\xc3\xa9\xc3\xa9" "12345", "\xc3\xa9\xc3\xa9\xc3\xa9", why,
			 sizeof(why)),
		  CN_E_POLICY);
	/* Length and classes are reported before the user name. */
	CHECK_INT(policy("bobbob", "bob", why, sizeof(why)), CN_E_POLICY);
	CHECK_STR(why, "password must be 8 to 64 characters long (has 6)");
}
