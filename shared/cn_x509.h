/* cn_x509.h: central's small node CA: P-256 CA and leaf certificates as PEM text, fingerprints, expiry. */
#ifndef CN_X509_H
#define CN_X509_H

#include <stddef.h>
#include <stdint.h>

/* Hex SHA-256 fingerprint length, without the NUL (cap >= CN_X509_FP_LEN + 1). */
#define CN_X509_FP_LEN 64
/* Bounds on what the functions accept. */
#define CN_X509_MAX_PEM 65536 /* bytes of one PEM input (cert or key) */
#define CN_X509_MAX_NAMES 64  /* subjectAltName entries of one leaf */
#define CN_X509_MAX_CN 64     /* bytes of a common name (RFC 5280 ub-common-name) */
#define CN_X509_MAX_DAYS 36500

/* A key+certificate pair as PEM text (NUL-terminated, heap-allocated; free with
 * cn_x509_pair_free). The key is unencrypted PKCS#8. */
struct cn_x509_pair {
	char *cert_pem;
	char *key_pem;
};

/* Errors, common to every function below: -EINVAL for a NULL or out-of-range argument
 * (days outside 1..CN_X509_MAX_DAYS, empty or over-long common name, a name that is
 * neither an IP literal nor a DNS name), CN_E_MALFORMED for PEM that does not parse
 * (encrypted keys included: nothing here ever prompts for a passphrase), CN_E_TOO_BIG for
 * input over the bounds above, -ENOMEM or -EIO when OpenSSL fails (logged on "x509").
 * On failure *out is left as { NULL, NULL }. */

/* Self-signed CA: ECDSA P-256 key, CN=common_name, basicConstraints CA:TRUE critical,
 * keyUsage keyCertSign+cRLSign (critical), subjectKeyIdentifier, validity
 * now-1h .. now+days. Random 128-bit serial. Signed with ECDSA-SHA256. */
int cn_x509_ca_create(const char *common_name, int days, struct cn_x509_pair *out);

/* Leaf signed by the CA: new P-256 key, CN=common_name, SANs from names (each either an
 * IP literal v4/v6 -> iPAddress, or a DNS name, optionally "*." wildcard -> dNSName),
 * EKU serverAuth+clientAuth, keyUsage digitalSignature (critical), subject and
 * authorityKeyIdentifier, CA:FALSE (critical). Validity now-1h .. now+days, cut to the
 * CA's notAfter so a leaf never outlives its issuer. nnames may be 0 (no SAN extension).
 * Also -EINVAL when ca's certificate is not a CA or its key does not match it,
 * CN_E_EXPIRED when the CA is past its notAfter. */
int cn_x509_issue(const struct cn_x509_pair *ca, const char *common_name,
		  const char *const *names, size_t nnames, int days, struct cn_x509_pair *out);

/* SHA-256 of the certificate's DER as lowercase hex (65 bytes incl NUL); -ENOSPC when
 * cap is short. */
int cn_x509_fingerprint(const char *cert_pem, char *out, size_t cap);

/* Seconds until notAfter (negative when expired); for renewal decisions. */
int cn_x509_expires_in(const char *cert_pem, int64_t *seconds);

/* PEM text to a file, durably and atomically (cn_file_write_atomic), so libwebsockets,
 * which wants file paths, can load it. Returns -errno of the failing call. */
int cn_x509_write_pem(const char *path, const char *pem, int mode);

/* Frees both strings (the key wiped first) and sets them NULL; accepts NULL. */
void cn_x509_pair_free(struct cn_x509_pair *p);

#endif
