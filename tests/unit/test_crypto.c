/* test_crypto.c: HMAC and SHA-256 against published vectors; Ed25519 keys and signatures. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_test.h"

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

TEST(hmac_vectors)
{
	uint8_t mac[32];
	char h[65];

	/* RFC 2202 test case 2 and RFC 4231 test case 2 ("Jefe"). */
	CHECK_INT(cn_hmac_sha1("Jefe", 4, "what do ya want for nothing?", 28, mac), 0);
	hex(mac, 20, h);
	CHECK_STR(h, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
	CHECK_INT(cn_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac), 0);
	hex(mac, 32, h);
	CHECK_STR(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(sha256_vector)
{
	uint8_t d[32];
	char h[65];

	CHECK_INT(cn_sha256("abc", 3, d), 0);
	hex(d, 32, h);
	CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ct_equal)
{
	CHECK(cn_ct_equal("abcd", "abcd", 4));
	CHECK(!cn_ct_equal("abcd", "abce", 4));
	CHECK(cn_ct_equal("", "", 0));
}

TEST(random_bytes)
{
	uint8_t a[32] = { 0 }, b[32] = { 0 };

	CHECK_INT(cn_random_bytes(a, sizeof(a)), 0);
	CHECK_INT(cn_random_bytes(b, sizeof(b)), 0);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
}

TEST(ed25519_sign_verify)
{
	struct cn_ed25519 *k = NULL, *pub = NULL;
	uint8_t sig[64], raw[32];
	char id[32];

	CHECK_INT(cn_ed25519_generate(&k), 0);
	CHECK(cn_ed25519_has_private(k));
	CHECK_INT(cn_ed25519_sign(k, "hello", 5, sig), 0);
	CHECK_INT(cn_ed25519_verify(k, "hello", 5, sig, 64), 0);
	CHECK_INT(cn_ed25519_verify(k, "hellp", 5, sig, 64), CN_E_BAD_SIG);
	CHECK_INT(cn_ed25519_verify(k, "hello", 5, sig, 63), CN_E_BAD_SIG);
	sig[10] ^= 1;
	CHECK_INT(cn_ed25519_verify(k, "hello", 5, sig, 64), CN_E_BAD_SIG);
	sig[10] ^= 1;
	CHECK_INT(cn_ed25519_public(k, raw), 0);
	CHECK_INT(cn_ed25519_from_public(raw, &pub), 0);
	CHECK(!cn_ed25519_has_private(pub));
	CHECK_INT(cn_ed25519_verify(pub, "hello", 5, sig, 64), 0);
	CHECK_INT(cn_ed25519_sign(pub, "hello", 5, sig), -EINVAL);
	CHECK_INT(cn_ed25519_key_id(k, id, sizeof(id)), 0);
	CHECK_INT(strlen(id), 16);
	cn_ed25519_free(k);
	cn_ed25519_free(pub);
	cn_ed25519_free(NULL);
}

TEST(ed25519_save_load)
{
	char dir[] = "/tmp/cn-unit-XXXXXX", priv[64], pubp[64];
	struct cn_ed25519 *k = NULL, *k2 = NULL, *p = NULL;
	uint8_t sig[64], a[32], b[32];
	struct stat st;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(priv, sizeof(priv), "%s/node.key", dir);
	snprintf(pubp, sizeof(pubp), "%s/node.pub", dir);
	CHECK_INT(cn_ed25519_generate(&k), 0);
	CHECK_INT(cn_ed25519_save_private(k, priv), 0);
	CHECK_INT(cn_ed25519_save_public(k, pubp), 0);
	CHECK_INT(stat(priv, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(cn_ed25519_load(priv, &k2), 0);
	CHECK(cn_ed25519_has_private(k2));
	CHECK_INT(cn_ed25519_load(pubp, &p), 0);
	CHECK(!cn_ed25519_has_private(p));
	cn_ed25519_public(k, a);
	cn_ed25519_public(k2, b);
	CHECK(memcmp(a, b, 32) == 0);
	CHECK_INT(cn_ed25519_sign(k2, "x", 1, sig), 0);
	CHECK_INT(cn_ed25519_verify(p, "x", 1, sig, 64), 0);
	CHECK_INT(cn_ed25519_save_private(p, priv), -EINVAL); /* public keys cannot be saved as private */
	unlink(priv);
	unlink(pubp);
	rmdir(dir);
	cn_ed25519_free(k);
	cn_ed25519_free(k2);
	cn_ed25519_free(p);
}

TEST(ed25519_load_errors)
{
	char path[] = "/tmp/cn-unit-key-XXXXXX";
	struct cn_ed25519 *k = NULL;
	int fd;

	CHECK_INT(cn_ed25519_load("/nonexistent/key.pem", &k), -ENOENT);
	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n", 62) == 62);
	close(fd);
	CHECK_INT(cn_ed25519_load(path, &k), CN_E_MALFORMED);
	CHECK(k == NULL);
	unlink(path);
}
