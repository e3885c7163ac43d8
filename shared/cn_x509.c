/* cn_x509.c: central's node CA on OpenSSL 3: P-256 keys, X509v3 certificates, PEM in memory. */
#include "cn_x509.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_file.h"
#include "cn_log.h"

#define BACKDATE_SECONDS 3600 /* notBefore = now - 1 h, for clocks a little behind ours */
#define SERIAL_BYTES 16

/* Logs what OpenSSL says about the failure of `what`, empties its error queue (so nothing
 * stale is left for the next TLS call on this thread) and returns rc. */
static int ossl_fail(int rc, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char reason[256] = "no reason given";

	if (e)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	cn_log_warn("x509", "%s failed: %s", what, reason);
	return rc;
}

/* Refuses to ask for a passphrase: keys here are unencrypted, and a library must never
 * read the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int pem_check(const char *pem)
{
	if (!pem)
		return -EINVAL;
	if (strnlen(pem, CN_X509_MAX_PEM + 1) > CN_X509_MAX_PEM)
		return CN_E_TOO_BIG;
	return 0;
}

static int load_cert(const char *pem, X509 **out)
{
	BIO *bio;
	int rc = pem_check(pem);

	if (rc < 0)
		return rc;
	bio = BIO_new_mem_buf(pem, -1);
	if (!bio)
		return -ENOMEM;
	*out = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	ERR_clear_error();
	return *out ? 0 : CN_E_MALFORMED;
}

static int load_key(const char *pem, EVP_PKEY **out)
{
	BIO *bio;
	int rc = pem_check(pem);

	if (rc < 0)
		return rc;
	bio = BIO_new_mem_buf(pem, -1);
	if (!bio)
		return -ENOMEM;
	*out = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	ERR_clear_error();
	return *out ? 0 : CN_E_MALFORMED;
}

/* Copies what was written to a memory BIO into a NUL-terminated heap string. */
static int bio_take(BIO *bio, char **out)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	char *s;

	if (n <= 0 || !data)
		return -EIO;
	s = malloc((size_t)n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	*out = s;
	return 0;
}

/* Fills out with x and key as PEM; out is untouched on failure. */
static int encode_pair(X509 *x, EVP_PKEY *key, struct cn_x509_pair *out)
{
	BIO *cbio, *kbio;
	char *cert = NULL, *pkey = NULL;
	int rc = -ENOMEM;

	cbio = BIO_new(BIO_s_mem());
	if (!cbio)
		return -ENOMEM;
	/* Secure memory BIO: the key's PEM is wiped when the BIO is freed. */
	kbio = BIO_new(BIO_s_secmem());
	if (!kbio)
		goto out_free_cbio;
	if (PEM_write_bio_X509(cbio, x) != 1) {
		rc = ossl_fail(-EIO, "PEM_write_bio_X509");
		goto out_free_kbio;
	}
	if (PEM_write_bio_PrivateKey(kbio, key, NULL, NULL, 0, NULL, NULL) != 1) {
		rc = ossl_fail(-EIO, "PEM_write_bio_PrivateKey");
		goto out_free_kbio;
	}
	rc = bio_take(cbio, &cert);
	if (rc < 0)
		goto out_free_kbio;
	rc = bio_take(kbio, &pkey);
	if (rc < 0) {
		free(cert);
		goto out_free_kbio;
	}
	out->cert_pem = cert;
	out->key_pem = pkey;

out_free_kbio:
	BIO_free(kbio);
out_free_cbio:
	BIO_free(cbio);
	return rc;
}

static int gen_key(EVP_PKEY **out)
{
	*out = EVP_EC_gen("P-256");
	return *out ? 0 : ossl_fail(-EIO, "P-256 key generation");
}

static int check_common(const char *common_name, int days)
{
	size_t n;

	if (!common_name || days < 1 || days > CN_X509_MAX_DAYS)
		return -EINVAL;
	n = strnlen(common_name, CN_X509_MAX_CN + 1);
	if (n == 0 || n > CN_X509_MAX_CN)
		return -EINVAL;
	return 0;
}

static int set_serial(X509 *x)
{
	uint8_t rnd[SERIAL_BYTES];
	BIGNUM *bn = NULL;
	int rc;

	/* Read as unsigned, so positive as RFC 5280 wants (17 octets at most with the sign
	 * octet DER adds, within its 20); zero, the one value it forbids, is drawn again. */
	do {
		BN_free(bn);
		rc = cn_random_bytes(rnd, sizeof(rnd));
		if (rc < 0)
			return rc;
		bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
		if (!bn)
			return -ENOMEM;
	} while (BN_is_zero(bn));
	rc = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ? 0 : -ENOMEM;
	BN_free(bn);
	return rc;
}

/* A version 3 certificate for key with subject CN=common_name, issuer (NULL: itself),
 * random serial and validity now-1h .. now+days; no extensions, not signed. */
static int new_cert(EVP_PKEY *key, const X509_NAME *issuer, const char *common_name, int days,
		    X509 **out)
{
	X509 *x = X509_new();
	X509_NAME *subj;
	int rc = -ENOMEM;

	if (!x)
		return -ENOMEM;
	if (X509_set_version(x, X509_VERSION_3) != 1)
		goto out_free_x;
	rc = set_serial(x);
	if (rc < 0)
		goto out_free_x;
	rc = -ENOMEM;
	subj = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_NID(subj, NID_commonName, MBSTRING_UTF8,
				       (const unsigned char *)common_name, -1, -1, 0) != 1) {
		/* Not valid UTF-8, mostly. */
		ERR_clear_error();
		rc = -EINVAL;
		goto out_free_x;
	}
	if (X509_set_issuer_name(x, issuer ? issuer : subj) != 1)
		goto out_free_x;
	if (!X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_SECONDS) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL)) {
		rc = ossl_fail(-EIO, "setting validity");
		goto out_free_x;
	}
	if (X509_set_pubkey(x, key) != 1)
		goto out_free_x;
	*out = x;
	return 0;

out_free_x:
	ERR_clear_error();
	X509_free(x);
	return rc;
}

/* One extension from OpenSSL's config syntax; value is always a constant of ours. */
static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (!ext)
		return ossl_fail(-EIO, OBJ_nid2sn(nid));
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : ossl_fail(-ENOMEM, OBJ_nid2sn(nid));
}

static bool is_ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

/* A DNS name: labels of 1..63 letters, digits and inner hyphens, at most 253 bytes in
 * all, optionally a "*." wildcard for the leftmost label. The last label may not be all
 * digits, so a mistyped address ("10.0.0.256") is refused instead of becoming a name. */
static bool dns_name_ok(const char *s)
{
	size_t n = strnlen(s, 254), label = 0;
	bool digits = true;

	if (n == 0 || n > 253)
		return false;
	if (s[0] == '*' && s[1] == '.')
		s += 2;
	if (*s == '\0')
		return false;
	for (const char *p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || p[-1] == '-')
				return false;
			if (*p == '\0')
				return !digits;
			label = 0;
			digits = true;
			continue;
		}
		if (!is_ldh(*p) || (label == 0 && *p == '-') || ++label > 63)
			return false;
		if (*p < '0' || *p > '9')
			digits = false;
	}
}

/* One GENERAL_NAME: iPAddress when name is an IPv4 or IPv6 literal, else dNSName. */
static int general_name(const char *name, GENERAL_NAME **out)
{
	unsigned char ip[16];
	int iplen = 0, type;
	ASN1_STRING *v;
	GENERAL_NAME *gn;

	if (inet_pton(AF_INET, name, ip) == 1)
		iplen = 4;
	else if (inet_pton(AF_INET6, name, ip) == 1)
		iplen = 16;
	else if (!dns_name_ok(name))
		return -EINVAL;
	type = iplen ? GEN_IPADD : GEN_DNS;
	v = iplen ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
	if (!v)
		return -ENOMEM;
	if (iplen ? ASN1_OCTET_STRING_set(v, ip, iplen) != 1
		  : ASN1_STRING_set(v, name, (int)strlen(name)) != 1)
		goto out_free_v;
	gn = GENERAL_NAME_new();
	if (!gn)
		goto out_free_v;
	GENERAL_NAME_set0_value(gn, type, v);
	*out = gn;
	return 0;

out_free_v:
	ASN1_STRING_free(v);
	return -ENOMEM;
}

/* Built as values, not through the config syntax, so a name can never smuggle in a
 * second entry ("a,IP:1.2.3.4"). */
static int add_sans(X509 *x, const char *const *names, size_t nnames)
{
	GENERAL_NAMES *gens;
	GENERAL_NAME *gn = NULL;
	int rc = 0;

	if (nnames == 0)
		return 0;
	gens = GENERAL_NAMES_new();
	if (!gens)
		return -ENOMEM;
	for (size_t i = 0; i < nnames; i++) {
		if (!names[i]) {
			rc = -EINVAL;
			goto out_free_gens;
		}
		rc = general_name(names[i], &gn);
		if (rc < 0)
			goto out_free_gens;
		if (!sk_GENERAL_NAME_push(gens, gn)) {
			GENERAL_NAME_free(gn);
			rc = -ENOMEM;
			goto out_free_gens;
		}
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
		rc = ossl_fail(-EIO, "subjectAltName");

out_free_gens:
	GENERAL_NAMES_free(gens);
	return rc;
}

static int sign(X509 *x, EVP_PKEY *key)
{
	return X509_sign(x, key, EVP_sha256()) > 0 ? 0 : ossl_fail(-EIO, "X509_sign");
}

int cn_x509_ca_create(const char *common_name, int days, struct cn_x509_pair *out)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	X509V3_CTX ctx;
	int rc;

	if (!out)
		return -EINVAL;
	out->cert_pem = out->key_pem = NULL;
	rc = check_common(common_name, days);
	if (rc < 0)
		return rc;
	rc = gen_key(&key);
	if (rc < 0)
		return rc;
	rc = new_cert(key, NULL, common_name, days, &x);
	if (rc < 0)
		goto out_free_key;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE")) < 0 ||
	    (rc = add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign")) < 0 ||
	    (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash")) < 0)
		goto out_free_x;
	rc = sign(x, key);
	if (rc < 0)
		goto out_free_x;
	rc = encode_pair(x, key, out);

out_free_x:
	X509_free(x);
out_free_key:
	EVP_PKEY_free(key);
	return rc;
}

int cn_x509_issue(const struct cn_x509_pair *ca, const char *common_name,
		  const char *const *names, size_t nnames, int days, struct cn_x509_pair *out)
{
	X509 *ca_cert = NULL, *x = NULL;
	EVP_PKEY *ca_key = NULL, *key = NULL;
	X509V3_CTX ctx;
	int rc;

	if (!out)
		return -EINVAL;
	out->cert_pem = out->key_pem = NULL;
	if (!ca || (nnames > 0 && !names))
		return -EINVAL;
	if (nnames > CN_X509_MAX_NAMES)
		return CN_E_TOO_BIG;
	rc = check_common(common_name, days);
	if (rc < 0)
		return rc;
	rc = load_cert(ca->cert_pem, &ca_cert);
	if (rc < 0)
		return rc;
	rc = load_key(ca->key_pem, &ca_key);
	if (rc < 0)
		goto out_free_ca_cert;
	if (X509_check_ca(ca_cert) != 1 || X509_check_private_key(ca_cert, ca_key) != 1) {
		ERR_clear_error();
		rc = -EINVAL;
		goto out_free_ca_key;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(ca_cert)) <= 0) {
		rc = CN_E_EXPIRED;
		goto out_free_ca_key;
	}
	rc = gen_key(&key);
	if (rc < 0)
		goto out_free_ca_key;
	rc = new_cert(key, X509_get_subject_name(ca_cert), common_name, days, &x);
	if (rc < 0)
		goto out_free_key;
	if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca_cert)) > 0 &&
	    X509_set1_notAfter(x, X509_get0_notAfter(ca_cert)) != 1) {
		rc = -ENOMEM;
		goto out_free_x;
	}
	X509V3_set_ctx(&ctx, ca_cert, x, NULL, NULL, 0);
	if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE")) < 0 ||
	    (rc = add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature")) < 0 ||
	    (rc = add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth")) < 0 ||
	    (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash")) < 0 ||
	    (rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always")) < 0)
		goto out_free_x;
	rc = add_sans(x, names, nnames);
	if (rc < 0)
		goto out_free_x;
	rc = sign(x, ca_key);
	if (rc < 0)
		goto out_free_x;
	rc = encode_pair(x, key, out);

out_free_x:
	X509_free(x);
out_free_key:
	EVP_PKEY_free(key);
out_free_ca_key:
	EVP_PKEY_free(ca_key);
out_free_ca_cert:
	X509_free(ca_cert);
	return rc;
}

int cn_x509_fingerprint(const char *cert_pem, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	X509 *x = NULL;
	int rc;

	if (!out || cap < CN_X509_FP_LEN + 1)
		return out ? -ENOSPC : -EINVAL;
	out[0] = '\0';
	rc = load_cert(cert_pem, &x);
	if (rc < 0)
		return rc;
	if (X509_digest(x, EVP_sha256(), md, &len) != 1 || len != CN_SHA256_LEN) {
		rc = ossl_fail(-EIO, "X509_digest");
		goto out_free_x;
	}
	for (unsigned i = 0; i < len; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * len] = '\0';

out_free_x:
	X509_free(x);
	return rc;
}

int cn_x509_expires_in(const char *cert_pem, int64_t *seconds)
{
	X509 *x = NULL;
	int day = 0, sec = 0, rc;

	if (!seconds)
		return -EINVAL;
	rc = load_cert(cert_pem, &x);
	if (rc < 0)
		return rc;
	/* from NULL: now. */
	if (ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notAfter(x)) != 1)
		rc = ossl_fail(CN_E_MALFORMED, "reading notAfter");
	else
		*seconds = (int64_t)day * 86400 + sec;
	X509_free(x);
	return rc;
}

int cn_x509_write_pem(const char *path, const char *pem, int mode)
{
	if (!pem)
		return -EINVAL;
	return cn_file_write_atomic(path, pem, strlen(pem), mode, true);
}

void cn_x509_pair_free(struct cn_x509_pair *p)
{
	if (!p)
		return;
	if (p->key_pem)
		OPENSSL_cleanse(p->key_pem, strlen(p->key_pem));
	free(p->key_pem);
	free(p->cert_pem);
	p->key_pem = NULL;
	p->cert_pem = NULL;
}
