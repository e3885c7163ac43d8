/* test_x509.c: node CA and leaf certificates, checked by OpenSSL's verifier in process and by the openssl tool. */
#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "cn_err.h"
#include "cn_test.h"
#include "cn_x509.h"

static const char *const leaf_names[] = { "127.0.0.1", "localhost", "::1" };
#define NLEAF_NAMES (sizeof(leaf_names) / sizeof(leaf_names[0]))

static X509 *parse_cert(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return x;
}

/* Runs cmd through the shell; its stdout and stderr go to out. Returns the exit status,
 * -1 when it did not run or exit. */
static int run(const char *cmd, char *out, size_t cap)
{
	char full[1024];
	FILE *p;
	size_t n = 0, got;
	int st;

	out[0] = '\0';
	if (snprintf(full, sizeof(full), "%s 2>&1", cmd) >= (int)sizeof(full))
		return -1;
	p = popen(full, "r");
	if (!p)
		return -1;
	while (n + 1 < cap && (got = fread(out + n, 1, cap - 1 - n, p)) > 0)
		n += got;
	out[n] = '\0';
	/* Drain what did not fit, so the child never blocks on a full pipe. */
	while (fread(full, 1, sizeof(full), p) > 0)
		;
	st = pclose(p);
	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Verifies leaf against ca with OpenSSL's own chain builder, as a TLS server certificate
 * for host (when set) and ip (when set). Returns X509_V_OK or the verify error. */
static int store_verify(const char *ca_pem, const char *leaf_pem, const char *host,
			const char *ip)
{
	X509 *ca = parse_cert(ca_pem), *leaf = parse_cert(leaf_pem);
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *param;
	int err = -1;

	if (!ca || !leaf || !store || !ctx || X509_STORE_add_cert(store, ca) != 1 ||
	    X509_STORE_CTX_init(ctx, store, leaf, NULL) != 1)
		goto out;
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
	if (host && X509_VERIFY_PARAM_set1_host(param, host, 0) != 1)
		goto out;
	if (ip && X509_VERIFY_PARAM_set1_ip_asc(param, ip) != 1)
		goto out;
	err = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(leaf);
	X509_free(ca);
	return err;
}

struct tmp {
	char dir[64];
	char ca[96];
	char leaf[96];
	char other[96];
};

static void tmp_make(struct tmp *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/cn-unit-x509-XXXXXX");
	CHECK(mkdtemp(t->dir) != NULL);
	snprintf(t->ca, sizeof(t->ca), "%s/ca.pem", t->dir);
	snprintf(t->leaf, sizeof(t->leaf), "%s/leaf.pem", t->dir);
	snprintf(t->other, sizeof(t->other), "%s/other.pem", t->dir);
}

static void tmp_remove(struct tmp *t)
{
	unlink(t->ca);
	unlink(t->leaf);
	unlink(t->other);
	CHECK_INT(rmdir(t->dir), 0); /* fails when a temp file was left behind */
}

TEST(x509_ca_create)
{
	struct cn_x509_pair ca = { 0 }, ca2 = { 0 };
	X509 *x, *x2;
	EVP_PKEY *pub;
	char group[32] = "";
	int day = 0, sec = 0;

	CHECK_INT(cn_x509_ca_create("Canopy Node CA", 3650, &ca), 0);
	CHECK(ca.cert_pem && strstr(ca.cert_pem, "-----BEGIN CERTIFICATE-----") == ca.cert_pem);
	CHECK(ca.key_pem && strstr(ca.key_pem, "-----BEGIN PRIVATE KEY-----") == ca.key_pem);
	x = parse_cert(ca.cert_pem);
	CHECK(x != NULL);
	if (!x)
		goto out;
	CHECK_INT(X509_get_version(x), X509_VERSION_3);
	CHECK_INT(X509_check_ca(x), 1);
	CHECK(X509_get_extension_flags(x) & EXFLAG_SS);
	CHECK(X509_get_key_usage(x) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
	CHECK(X509_get0_subject_key_id(x) != NULL);
	pub = X509_get0_pubkey(x);
	CHECK(pub && EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC && EVP_PKEY_get_bits(pub) == 256);
	CHECK(pub && EVP_PKEY_get_group_name(pub, group, sizeof(group), NULL) == 1);
	CHECK_STR(group, "prime256v1");
	CHECK_INT(X509_verify(x, pub), 1);
	CHECK_INT(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	/* notBefore is an hour back. */
	CHECK_INT(ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notBefore(x)), 1);
	CHECK(day == 0 && sec <= -3590 && sec >= -3610);
	/* Serials are random: two CAs differ. */
	CHECK_INT(cn_x509_ca_create("Canopy Node CA", 3650, &ca2), 0);
	x2 = ca2.cert_pem ? parse_cert(ca2.cert_pem) : NULL;
	CHECK(x2 != NULL);
	if (x2) {
		const ASN1_INTEGER *s1 = X509_get0_serialNumber(x), *s2 = X509_get0_serialNumber(x2);

		CHECK(ASN1_INTEGER_cmp(s1, s2) != 0);
		CHECK(ASN1_STRING_length(s1) >= 12 && ASN1_STRING_length(s1) <= 17);
		X509_free(x2);
	}
	X509_free(x);
out:
	cn_x509_pair_free(&ca);
	cn_x509_pair_free(&ca2);
	CHECK(ca.cert_pem == NULL && ca.key_pem == NULL);
	cn_x509_pair_free(&ca); /* twice is harmless */
	cn_x509_pair_free(NULL);
}

TEST(x509_issue_verifies_in_process)
{
	struct cn_x509_pair ca = { 0 }, leaf = { 0 };
	X509 *c = NULL, *l = NULL;

	CHECK_INT(cn_x509_ca_create("Canopy Node CA", 3650, &ca), 0);
	CHECK_INT(cn_x509_issue(&ca, "central-1", leaf_names, NLEAF_NAMES, 90, &leaf), 0);
	if (!leaf.cert_pem)
		goto out;
	CHECK_INT(store_verify(ca.cert_pem, leaf.cert_pem, NULL, NULL), X509_V_OK);
	CHECK_INT(store_verify(ca.cert_pem, leaf.cert_pem, "localhost", NULL), X509_V_OK);
	CHECK_INT(store_verify(ca.cert_pem, leaf.cert_pem, NULL, "127.0.0.1"), X509_V_OK);
	CHECK_INT(store_verify(ca.cert_pem, leaf.cert_pem, NULL, "::1"), X509_V_OK);
	/* Names not in the SAN are refused. */
	CHECK_INT(store_verify(ca.cert_pem, leaf.cert_pem, "example.com", NULL),
		  X509_V_ERR_HOSTNAME_MISMATCH);
	CHECK_INT(store_verify(ca.cert_pem, leaf.cert_pem, NULL, "127.0.0.2"),
		  X509_V_ERR_IP_ADDRESS_MISMATCH);
	c = parse_cert(ca.cert_pem);
	l = parse_cert(leaf.cert_pem);
	CHECK(c && l);
	if (!c || !l)
		goto out;
	CHECK_INT(X509_check_ca(l), 0);
	CHECK_INT(X509_check_issued(c, l), X509_V_OK);
	CHECK(X509_get0_authority_key_id(l) != NULL);
	CHECK(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(l),
				    X509_get0_subject_key_id(c)) == 0);
	CHECK(X509_get_key_usage(l) == KU_DIGITAL_SIGNATURE);
	CHECK(X509_get_extended_key_usage(l) == (XKU_SSL_SERVER | XKU_SSL_CLIENT));
	CHECK_INT(X509_check_purpose(l, X509_PURPOSE_SSL_CLIENT, 0), 1);
	/* The leaf key is its own, not the CA's, and matches the leaf. */
	CHECK_INT(X509_check_private_key(l, X509_get0_pubkey(c)), 0);
	ERR_clear_error();
	{
		BIO *b = BIO_new_mem_buf(leaf.key_pem, -1);
		EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

		CHECK(k != NULL);
		CHECK_INT(X509_check_private_key(l, k), 1);
		CHECK(k && EVP_PKEY_get_bits(k) == 256);
		EVP_PKEY_free(k);
		BIO_free(b);
	}
out:
	X509_free(c);
	X509_free(l);
	cn_x509_pair_free(&ca);
	cn_x509_pair_free(&leaf);
}

TEST(x509_issue_openssl_tool)
{
	struct cn_x509_pair ca = { 0 }, leaf = { 0 };
	struct tmp t;
	char cmd[512], out[4096];

	tmp_make(&t);
	CHECK_INT(cn_x509_ca_create("Canopy Node CA", 3650, &ca), 0);
	CHECK_INT(cn_x509_issue(&ca, "central-1", leaf_names, NLEAF_NAMES, 90, &leaf), 0);
	if (!leaf.cert_pem)
		goto out;
	CHECK_INT(cn_x509_write_pem(t.ca, ca.cert_pem, 0644), 0);
	CHECK_INT(cn_x509_write_pem(t.leaf, leaf.cert_pem, 0644), 0);

	snprintf(cmd, sizeof(cmd), "openssl verify -CAfile '%s' '%s'", t.ca, t.leaf);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK(strstr(out, "leaf.pem: OK") != NULL);
	snprintf(cmd, sizeof(cmd),
		 "openssl verify -x509_strict -purpose sslserver -verify_hostname localhost "
		 "-CAfile '%s' '%s'", t.ca, t.leaf);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK(strstr(out, "leaf.pem: OK") != NULL);
	snprintf(cmd, sizeof(cmd),
		 "openssl verify -purpose sslclient -verify_ip ::1 -CAfile '%s' '%s'", t.ca, t.leaf);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK(strstr(out, "leaf.pem: OK") != NULL);

	snprintf(cmd, sizeof(cmd), "openssl x509 -noout -ext subjectAltName -in '%s'", t.leaf);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK(strstr(out, "IP Address:127.0.0.1, DNS:localhost, IP Address:0:0:0:0:0:0:0:1") != NULL);

	snprintf(cmd, sizeof(cmd),
		 "openssl x509 -noout -subject -issuer -ext basicConstraints,keyUsage,"
		 "extendedKeyUsage,authorityKeyIdentifier -in '%s'", t.leaf);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK(strstr(out, "subject=CN = central-1") != NULL);
	CHECK(strstr(out, "issuer=CN = Canopy Node CA") != NULL);
	CHECK(strstr(out, "CA:FALSE") != NULL);
	CHECK(strstr(out, "Key Usage: critical\n    Digital Signature\n") != NULL);
	CHECK(strstr(out, "TLS Web Server Authentication, TLS Web Client Authentication") != NULL);
	CHECK(strstr(out, "Authority Key Identifier") != NULL);

	snprintf(cmd, sizeof(cmd),
		 "openssl x509 -noout -subject -ext basicConstraints,keyUsage,"
		 "subjectKeyIdentifier -in '%s'", t.ca);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK(strstr(out, "subject=CN = Canopy Node CA") != NULL);
	CHECK(strstr(out, "Basic Constraints: critical\n    CA:TRUE\n") != NULL);
	CHECK(strstr(out, "Certificate Sign, CRL Sign") != NULL);
	CHECK(strstr(out, "Subject Key Identifier") != NULL);
out:
	tmp_remove(&t);
	cn_x509_pair_free(&ca);
	cn_x509_pair_free(&leaf);
}

TEST(x509_other_ca_does_not_verify)
{
	struct cn_x509_pair ca = { 0 }, other = { 0 }, leaf = { 0 }, mixed;
	struct tmp t;
	char cmd[512], out[4096];

	tmp_make(&t);
	CHECK_INT(cn_x509_ca_create("Canopy Node CA", 3650, &ca), 0);
	/* Same name, other key: only the signature tells them apart. */
	CHECK_INT(cn_x509_ca_create("Canopy Node CA", 3650, &other), 0);
	CHECK_INT(cn_x509_issue(&other, "intruder", leaf_names, NLEAF_NAMES, 90, &leaf), 0);
	if (!leaf.cert_pem || !ca.cert_pem)
		goto out;
	CHECK(store_verify(ca.cert_pem, leaf.cert_pem, NULL, NULL) != X509_V_OK);
	CHECK_INT(store_verify(other.cert_pem, leaf.cert_pem, NULL, NULL), X509_V_OK);
	CHECK_INT(cn_x509_write_pem(t.ca, ca.cert_pem, 0644), 0);
	CHECK_INT(cn_x509_write_pem(t.leaf, leaf.cert_pem, 0644), 0);
	snprintf(cmd, sizeof(cmd), "openssl verify -CAfile '%s' '%s'", t.ca, t.leaf);
	CHECK(run(cmd, out, sizeof(out)) != 0);
	CHECK(strstr(out, ": OK") == NULL);
	CHECK(strstr(out, "error") != NULL);

	/* A CA certificate with the other CA's key is refused before anything is signed. */
	mixed.cert_pem = ca.cert_pem;
	mixed.key_pem = other.key_pem;
	cn_x509_pair_free(&leaf);
	leaf.cert_pem = (char *)"sentinel";
	CHECK_INT(cn_x509_issue(&mixed, "x", leaf_names, NLEAF_NAMES, 90, &leaf), -EINVAL);
	CHECK(leaf.cert_pem == NULL && leaf.key_pem == NULL);
out:
	tmp_remove(&t);
	cn_x509_pair_free(&ca);
	cn_x509_pair_free(&other);
	cn_x509_pair_free(&leaf);
}

TEST(x509_fingerprint_matches_openssl)
{
	struct cn_x509_pair ca = { 0 }, leaf = { 0 };
	struct tmp t;
	char cmd[512], out[4096], fp[CN_X509_FP_LEN + 1], want[CN_X509_FP_LEN + 1];
	const char *eq;
	size_t n = 0;

	tmp_make(&t);
	CHECK_INT(cn_x509_ca_create("Canopy Node CA", 3650, &ca), 0);
	CHECK_INT(cn_x509_issue(&ca, "edge-7", leaf_names, NLEAF_NAMES, 30, &leaf), 0);
	if (!leaf.cert_pem)
		goto out;
	CHECK_INT(cn_x509_write_pem(t.leaf, leaf.cert_pem, 0644), 0);
	snprintf(cmd, sizeof(cmd), "openssl x509 -noout -fingerprint -sha256 -in '%s'", t.leaf);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	eq = strchr(out, '=');
	CHECK(eq != NULL);
	for (const char *p = eq ? eq + 1 : ""; *p && *p != '\n' && n < CN_X509_FP_LEN; p++)
		if (*p != ':')
			want[n++] = (char)tolower((unsigned char)*p);
	want[n] = '\0';
	CHECK_INT(n, CN_X509_FP_LEN);
	CHECK_INT(cn_x509_fingerprint(leaf.cert_pem, fp, sizeof(fp)), 0);
	CHECK_STR(fp, want);
	/* And the CA's differs. */
	CHECK_INT(cn_x509_fingerprint(ca.cert_pem, fp, sizeof(fp)), 0);
	CHECK(strcmp(fp, want) != 0);
	CHECK_INT(strlen(fp), CN_X509_FP_LEN);
	CHECK_INT(cn_x509_fingerprint(ca.cert_pem, fp, CN_X509_FP_LEN), -ENOSPC);
out:
	tmp_remove(&t);
	cn_x509_pair_free(&ca);
	cn_x509_pair_free(&leaf);
}

TEST(x509_expires_in)
{
	struct cn_x509_pair ca = { 0 }, leaf = { 0 }, shortca = { 0 }, capped = { 0 };
	int64_t s = 0;

	CHECK_INT(cn_x509_ca_create("Canopy Node CA", 3650, &ca), 0);
	CHECK_INT(cn_x509_expires_in(ca.cert_pem, &s), 0);
	CHECK(s <= 3650LL * 86400 && s > 3650LL * 86400 - 60);
	CHECK_INT(cn_x509_issue(&ca, "central-1", leaf_names, NLEAF_NAMES, 90, &leaf), 0);
	CHECK_INT(cn_x509_expires_in(leaf.cert_pem, &s), 0);
	CHECK(s <= 90LL * 86400 && s > 90LL * 86400 - 60);
	/* A leaf never outlives its CA. */
	CHECK_INT(cn_x509_ca_create("Short CA", 1, &shortca), 0);
	CHECK_INT(cn_x509_issue(&shortca, "central-1", leaf_names, NLEAF_NAMES, 90, &capped), 0);
	CHECK_INT(cn_x509_expires_in(capped.cert_pem, &s), 0);
	CHECK(s <= 86400 && s > 86400 - 60);
	CHECK_INT(store_verify(shortca.cert_pem, capped.cert_pem, "localhost", NULL), X509_V_OK);
	cn_x509_pair_free(&ca);
	cn_x509_pair_free(&leaf);
	cn_x509_pair_free(&shortca);
	cn_x509_pair_free(&capped);
}

TEST(x509_bad_pem)
{
	static const char *const bad[] = {
		"",
		"not a certificate",
		"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
		"-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHHIG...garbage\n-----END CERTIFICATE-----\n",
		"-----BEGIN CERTIFICATE-----\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END CERTIFICATE-----\n",
		"-----BEGIN CERTIFICATE-----\nMIIB",
	};
	struct cn_x509_pair ca = { 0 }, leaf = { 0 }, broken;
	char fp[CN_X509_FP_LEN + 1], *big, *trunc;
	int64_t s = 0;
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(cn_x509_fingerprint(bad[i], fp, sizeof(fp)), CN_E_MALFORMED);
		CHECK_INT(cn_x509_expires_in(bad[i], &s), CN_E_MALFORMED);
	}
	CHECK_INT(cn_x509_fingerprint(NULL, fp, sizeof(fp)), -EINVAL);
	CHECK_INT(cn_x509_expires_in(NULL, &s), -EINVAL);

	CHECK_INT(cn_x509_ca_create("Canopy Node CA", 3650, &ca), 0);
	if (!ca.cert_pem)
		return;
	/* A key where a certificate belongs, a truncated certificate. */
	CHECK_INT(cn_x509_fingerprint(ca.key_pem, fp, sizeof(fp)), CN_E_MALFORMED);
	n = strlen(ca.cert_pem);
	trunc = strdup(ca.cert_pem);
	CHECK(trunc != NULL);
	if (trunc) {
		trunc[n / 2] = '\0';
		CHECK_INT(cn_x509_expires_in(trunc, &s), CN_E_MALFORMED);
		free(trunc);
	}
	/* Larger than the bound: refused without parsing. */
	big = malloc(CN_X509_MAX_PEM + 2);
	CHECK(big != NULL);
	if (big) {
		memset(big, 'A', CN_X509_MAX_PEM + 1);
		big[CN_X509_MAX_PEM + 1] = '\0';
		CHECK_INT(cn_x509_fingerprint(big, fp, sizeof(fp)), CN_E_TOO_BIG);
		free(big);
	}

	/* Broken CA halves. */
	broken.cert_pem = (char *)"garbage";
	broken.key_pem = ca.key_pem;
	CHECK_INT(cn_x509_issue(&broken, "x", leaf_names, NLEAF_NAMES, 30, &leaf), CN_E_MALFORMED);
	broken.cert_pem = ca.cert_pem;
	broken.key_pem = ca.cert_pem;
	CHECK_INT(cn_x509_issue(&broken, "x", leaf_names, NLEAF_NAMES, 30, &leaf), CN_E_MALFORMED);
	broken.key_pem = NULL;
	CHECK_INT(cn_x509_issue(&broken, "x", leaf_names, NLEAF_NAMES, 30, &leaf), -EINVAL);
	CHECK(leaf.cert_pem == NULL && leaf.key_pem == NULL);
	cn_x509_pair_free(&ca);
}

TEST(x509_encrypted_key_refused_without_prompt)
{
	struct cn_x509_pair ca = { 0 }, leaf = { 0 }, enc;
	BIO *in = NULL, *out = NULL;
	EVP_PKEY *k = NULL;
	char *data = NULL, *pem = NULL;
	long n;

	CHECK_INT(cn_x509_ca_create("Canopy Node CA", 3650, &ca), 0);
	if (!ca.key_pem)
		return;
	in = BIO_new_mem_buf(ca.key_pem, -1);
	k = in ? PEM_read_bio_PrivateKey(in, NULL, NULL, NULL) : NULL;
	out = BIO_new(BIO_s_mem());
	CHECK(k && out);
	if (!k || !out)
		goto done;
	CHECK_INT(PEM_write_bio_PKCS8PrivateKey(out, k, EVP_aes_256_cbc(), "secret", 6, NULL, NULL), 1);
	n = BIO_get_mem_data(out, &data);
	pem = strndup(data, (size_t)n);
	CHECK(pem && strstr(pem, "ENCRYPTED PRIVATE KEY") != NULL);
	enc.cert_pem = ca.cert_pem;
	enc.key_pem = pem;
	/* With stdin a terminal this would hang if anything prompted. */
	CHECK_INT(cn_x509_issue(&enc, "x", leaf_names, NLEAF_NAMES, 30, &leaf), CN_E_MALFORMED);
done:
	free(pem);
	BIO_free(out);
	EVP_PKEY_free(k);
	BIO_free(in);
	cn_x509_pair_free(&ca);
	cn_x509_pair_free(&leaf);
}

TEST(x509_bad_arguments)
{
	static const char *const bad_names[] = {
		"",
		"a b",
		"localhost,IP:10.0.0.1", /* no smuggling a second SAN */
		"fe80::1%eth0",
		"-leading.example",
		"trailing-.example",
		"double..dot",
		"trailing.dot.",
		"*",
		"a.*.example",
		"under_score.example",
		"1.2.3.4.5",
		"10.0.0.256",
		"x.123",
		"caf\xc3\xa9.example",
	};
	static const char *const good_names[] = {
		"*.nodes.example.com", "10.0.0.1", "2001:db8::7", "EDGE-7.example", "x",
	};
	struct cn_x509_pair ca = { 0 }, leaf = { 0 }, notca = { 0 };
	char longcn[CN_X509_MAX_CN + 2], longlabel[80];
	const char *one[1];
	const char *many[CN_X509_MAX_NAMES + 1];

	CHECK_INT(cn_x509_ca_create(NULL, 30, &ca), -EINVAL);
	CHECK_INT(cn_x509_ca_create("", 30, &ca), -EINVAL);
	CHECK_INT(cn_x509_ca_create("CA", 0, &ca), -EINVAL);
	CHECK_INT(cn_x509_ca_create("CA", -5, &ca), -EINVAL);
	CHECK_INT(cn_x509_ca_create("CA", CN_X509_MAX_DAYS + 1, &ca), -EINVAL);
	CHECK_INT(cn_x509_ca_create("CA", 30, NULL), -EINVAL);
	CHECK_INT(cn_x509_ca_create("bad \xff utf-8", 30, &ca), -EINVAL);
	memset(longcn, 'c', sizeof(longcn) - 1);
	longcn[sizeof(longcn) - 1] = '\0';
	CHECK_INT(cn_x509_ca_create(longcn, 30, &ca), -EINVAL);
	longcn[CN_X509_MAX_CN] = '\0';
	CHECK_INT(cn_x509_ca_create(longcn, 30, &ca), 0);
	cn_x509_pair_free(&ca);
	CHECK(ca.cert_pem == NULL);

	CHECK_INT(cn_x509_ca_create("Canopy Node CA", 3650, &ca), 0);
	if (!ca.cert_pem)
		return;
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		one[0] = bad_names[i];
		CHECK_INT(cn_x509_issue(&ca, "x", one, 1, 30, &leaf), -EINVAL);
		if (leaf.cert_pem)
			printf("    accepted bad name '%s'\n", bad_names[i]);
		cn_x509_pair_free(&leaf);
	}
	memset(longlabel, 'a', 64);
	longlabel[64] = '\0';
	one[0] = longlabel;
	CHECK_INT(cn_x509_issue(&ca, "x", one, 1, 30, &leaf), -EINVAL);
	longlabel[63] = '\0';
	CHECK_INT(cn_x509_issue(&ca, "x", one, 1, 30, &leaf), 0);
	cn_x509_pair_free(&leaf);
	one[0] = NULL;
	CHECK_INT(cn_x509_issue(&ca, "x", one, 1, 30, &leaf), -EINVAL);
	CHECK_INT(cn_x509_issue(&ca, "x", NULL, 1, 30, &leaf), -EINVAL);
	for (size_t i = 0; i < CN_X509_MAX_NAMES + 1; i++)
		many[i] = "localhost";
	CHECK_INT(cn_x509_issue(&ca, "x", many, CN_X509_MAX_NAMES + 1, 30, &leaf), CN_E_TOO_BIG);
	CHECK_INT(cn_x509_issue(&ca, "x", many, CN_X509_MAX_NAMES, 30, &leaf), 0);
	cn_x509_pair_free(&leaf);
	CHECK_INT(cn_x509_issue(&ca, "", leaf_names, NLEAF_NAMES, 30, &leaf), -EINVAL);
	CHECK_INT(cn_x509_issue(&ca, "x", leaf_names, NLEAF_NAMES, 0, &leaf), -EINVAL);
	CHECK_INT(cn_x509_issue(NULL, "x", leaf_names, NLEAF_NAMES, 30, &leaf), -EINVAL);
	CHECK_INT(cn_x509_issue(&ca, "x", leaf_names, NLEAF_NAMES, 30, NULL), -EINVAL);

	/* Good names, and none at all. */
	CHECK_INT(cn_x509_issue(&ca, "x", good_names, sizeof(good_names) / sizeof(good_names[0]),
				30, &leaf), 0);
	if (leaf.cert_pem) {
		CHECK_INT(store_verify(ca.cert_pem, leaf.cert_pem, "a.nodes.example.com", NULL),
			  X509_V_OK);
		CHECK_INT(store_verify(ca.cert_pem, leaf.cert_pem, NULL, "2001:db8:0::7"),
			  X509_V_OK);
	}
	cn_x509_pair_free(&leaf);
	CHECK_INT(cn_x509_issue(&ca, "client-only", NULL, 0, 30, &leaf), 0);
	cn_x509_pair_free(&leaf);

	/* A leaf cannot act as a CA. */
	CHECK_INT(cn_x509_issue(&ca, "x", leaf_names, NLEAF_NAMES, 30, &notca), 0);
	CHECK_INT(cn_x509_issue(&notca, "y", leaf_names, NLEAF_NAMES, 30, &leaf), -EINVAL);
	CHECK(leaf.cert_pem == NULL);
	cn_x509_pair_free(&notca);
	cn_x509_pair_free(&ca);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

TEST(x509_write_pem)
{
	struct cn_x509_pair ca = { 0 };
	struct tmp t;
	struct stat st;
	char buf[8192];
	FILE *f;
	size_t n;
	mode_t old = umask(077);

	tmp_make(&t);
	CHECK_INT(cn_x509_ca_create("Canopy Node CA", 3650, &ca), 0);
	if (!ca.cert_pem)
		goto out;
	/* The mode is exact, whatever the umask. */
	CHECK_INT(cn_x509_write_pem(t.ca, ca.cert_pem, 0644), 0);
	CHECK_INT(stat(t.ca, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0644);
	CHECK_INT(cn_x509_write_pem(t.other, ca.key_pem, 0600), 0);
	CHECK_INT(stat(t.other, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0600);
	/* Replacing keeps the new mode and content; no temp file stays behind. */
	CHECK_INT(cn_x509_write_pem(t.ca, ca.key_pem, 0640), 0);
	CHECK_INT(stat(t.ca, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0640);
	f = fopen(t.ca, "r");
	CHECK(f != NULL);
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		CHECK_STR(buf, ca.key_pem);
	}
	CHECK_INT(count_entries(t.dir), 2);
	CHECK_INT(cn_x509_write_pem("/nonexistent-dir/x.pem", ca.cert_pem, 0644), -ENOENT);
	CHECK_INT(cn_x509_write_pem(t.leaf, ca.cert_pem, 010000), -EINVAL);
	CHECK_INT(cn_x509_write_pem(t.leaf, NULL, 0644), -EINVAL);
	CHECK_INT(cn_x509_write_pem(NULL, ca.cert_pem, 0644), -EINVAL);
	CHECK_INT(count_entries(t.dir), 2);
out:
	umask(old);
	tmp_remove(&t);
	cn_x509_pair_free(&ca);
}
