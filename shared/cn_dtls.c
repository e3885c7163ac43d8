/* cn_dtls.c: DTLS-SRTP handshake with OpenSSL behind a datagram BIO of our own, SRTP through libsrtp. */
#include "cn_dtls.h"

#include <string.h>

#include <glib.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <srtp2/srtp.h>

#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_log.h"

/* The path MTU we assume: WebRTC stacks keep DTLS records under ~1200 bytes so a flight
 * crosses TURN and VPN links without IP fragmentation. */
#define DTLS_MTU 1200
/* Peers trust the fingerprint, not the dates; the certificate lives as long as the process. */
#define CERT_DAYS 3650

struct cn_dtls_cert {
	EVP_PKEY *key;
	X509 *x509;
	uint8_t fp[CN_DTLS_FINGERPRINT_LEN];
};

struct cn_dtls {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *bio;
	bool active;
	bool connected;
	bool failed;
	const EVP_MD *peer_md;
	uint8_t peer_fp[EVP_MAX_MD_SIZE];
	size_t peer_fp_len;
	cn_dtls_send_fn send;
	void *arg;
	const uint8_t *in_p; /* the datagram being fed, read once by the BIO */
	size_t in_len;
};

struct cn_srtp {
	srtp_t tx;
	srtp_t rx;
};

/* ---- the datagram BIO: one write is one datagram, one read one datagram -------------- */

static BIO_METHOD *bio_method;

static int bio_write(BIO *b, const char *data, int len)
{
	struct cn_dtls *d = BIO_get_data(b);

	if (len <= 0)
		return 0;
	d->send(d->arg, (const uint8_t *)data, (size_t)len);
	return len;
}

static int bio_read(BIO *b, char *out, int cap)
{
	struct cn_dtls *d = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (!d->in_p) {
		BIO_set_retry_read(b);
		return -1;
	}
	/* A datagram larger than the reader's buffer is truncated, as a socket would. */
	size_t n = d->in_len < (size_t)cap ? d->in_len : (size_t)cap;
	memcpy(out, d->in_p, n);
	d->in_p = NULL;
	d->in_len = 0;
	return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_DGRAM_QUERY_MTU:
	case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
		return DTLS_MTU;
	case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
		return 28; /* IPv4 + UDP */
	case BIO_CTRL_WPENDING:
	case BIO_CTRL_PENDING:
		return 0;
	default:
		return 0;
	}
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static gpointer init_once(gpointer unused)
{
	(void)unused;
	bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cn_dtls");
	if (bio_method) {
		BIO_meth_set_write(bio_method, bio_write);
		BIO_meth_set_read(bio_method, bio_read);
		BIO_meth_set_ctrl(bio_method, bio_ctrl);
		BIO_meth_set_create(bio_method, bio_create);
	}
	if (srtp_init() != srtp_err_status_ok)
		return GINT_TO_POINTER(-1);
	return GINT_TO_POINTER(bio_method ? 1 : -1);
}

static int lib_init(void)
{
	static GOnce once = G_ONCE_INIT;

	return GPOINTER_TO_INT(g_once(&once, init_once, NULL)) == 1 ? 0 : -ENOMEM;
}

/* ---- certificate -------------------------------------------------------------------- */

int cn_dtls_cert_new(struct cn_dtls_cert **out)
{
	struct cn_dtls_cert *c;
	unsigned int n = 0;
	uint8_t serial[8];
	int rc = -ENOMEM;

	if (lib_init() < 0)
		return -ENOMEM;
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	if (!(c->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")))
		goto out_free;
	if (!(c->x509 = X509_new()))
		goto out_free;
	cn_random_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	ASN1_INTEGER *sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	BN_free(bn);
	if (!sn || !X509_set_serialNumber(c->x509, sn)) {
		ASN1_INTEGER_free(sn);
		goto out_free;
	}
	ASN1_INTEGER_free(sn);
	X509_NAME *name = X509_get_subject_name(c->x509);
	if (!X509_set_version(c->x509, 2) ||
	    !X509_gmtime_adj(X509_getm_notBefore(c->x509), -86400) ||
	    !X509_gmtime_adj(X509_getm_notAfter(c->x509), (long)CERT_DAYS * 86400) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"canopy",
					-1, -1, 0) ||
	    !X509_set_issuer_name(c->x509, name) || !X509_set_pubkey(c->x509, c->key) ||
	    !X509_sign(c->x509, c->key, EVP_sha256()) ||
	    !X509_digest(c->x509, EVP_sha256(), c->fp, &n) || n != CN_DTLS_FINGERPRINT_LEN)
		goto out_free;
	*out = c;
	return 0;
out_free:
	cn_dtls_cert_free(c);
	return rc;
}

void cn_dtls_cert_fingerprint(const struct cn_dtls_cert *c, uint8_t fp[CN_DTLS_FINGERPRINT_LEN])
{
	memcpy(fp, c->fp, CN_DTLS_FINGERPRINT_LEN);
}

void cn_dtls_cert_free(struct cn_dtls_cert *c)
{
	if (!c)
		return;
	X509_free(c->x509);
	EVP_PKEY_free(c->key);
	free(c);
}

/* ---- handshake ---------------------------------------------------------------------- */

/* Peers' certificates are self-signed by design; trust comes from the fingerprint in the
 * signalled SDP, checked once the handshake is done. */
static int accept_any(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1;
}

static const EVP_MD *md_for(const char *alg)
{
	if (!alg || !strcmp(alg, "sha-256"))
		return EVP_sha256();
	if (!strcmp(alg, "sha-1"))
		return EVP_sha1();
	if (!strcmp(alg, "sha-224"))
		return EVP_sha224();
	if (!strcmp(alg, "sha-384"))
		return EVP_sha384();
	if (!strcmp(alg, "sha-512"))
		return EVP_sha512();
	return NULL;
}

int cn_dtls_new(const struct cn_dtls_cert *cert, bool active, const char *peer_alg,
		const uint8_t *peer_fp, size_t peer_fp_len, cn_dtls_send_fn send, void *arg,
		struct cn_dtls **out)
{
	struct cn_dtls *d;

	if (lib_init() < 0)
		return -ENOMEM;
	const EVP_MD *md = md_for(peer_alg);
	if (!md || peer_fp_len != (size_t)EVP_MD_get_size(md))
		return -EINVAL;
	if (!(d = calloc(1, sizeof(*d))))
		return -ENOMEM;
	d->active = active;
	d->send = send;
	d->arg = arg;
	d->peer_md = md;
	memcpy(d->peer_fp, peer_fp, peer_fp_len);
	d->peer_fp_len = peer_fp_len;
	if (!(d->ctx = SSL_CTX_new(DTLS_method())))
		goto out_free;
	SSL_CTX_set_min_proto_version(d->ctx, DTLS1_2_VERSION);
	if (SSL_CTX_use_certificate(d->ctx, cert->x509) != 1 ||
	    SSL_CTX_use_PrivateKey(d->ctx, cert->key) != 1 ||
	    SSL_CTX_set1_groups_list(d->ctx, "X25519:P-256") != 1 ||
	    /* returns 0 on success, unlike the rest of the API */
	    SSL_CTX_set_tlsext_use_srtp(d->ctx, "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80") != 0)
		goto out_free;
	SSL_CTX_set_verify(d->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
	if (!(d->ssl = SSL_new(d->ctx)) || !(d->bio = BIO_new(bio_method)))
		goto out_free;
	BIO_set_data(d->bio, d);
	BIO_up_ref(d->bio);
	SSL_set_bio(d->ssl, d->bio, d->bio);
	SSL_set_options(d->ssl, SSL_OP_NO_QUERY_MTU);
	SSL_set_mtu(d->ssl, DTLS_MTU - 28);
	if (active)
		SSL_set_connect_state(d->ssl);
	else
		SSL_set_accept_state(d->ssl);
	*out = d;
	return 0;
out_free:
	cn_dtls_free(d);
	return -ENOMEM;
}

static int check_fingerprint(struct cn_dtls *d, char *err, size_t errcap)
{
	uint8_t fp[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	X509 *peer = SSL_get1_peer_certificate(d->ssl);
	int rc = 0;

	if (!peer)
		return cn_fail(CN_E_BAD_SIG, err, errcap, "DTLS peer sent no certificate");
	if (!X509_digest(peer, d->peer_md, fp, &n) || n != d->peer_fp_len ||
	    !cn_ct_equal(fp, d->peer_fp, n))
		rc = cn_fail(CN_E_BAD_SIG, err, errcap,
			     "DTLS peer certificate does not match the SDP fingerprint");
	X509_free(peer);
	return rc;
}

static int handshake(struct cn_dtls *d, char *err, size_t errcap)
{
	int r = SSL_do_handshake(d->ssl);

	if (r == 1) {
		int rc = check_fingerprint(d, err, errcap);
		if (rc < 0) {
			d->failed = true;
			return rc;
		}
		if (!SSL_get_selected_srtp_profile(d->ssl)) {
			d->failed = true;
			return cn_fail(CN_E_MALFORMED, err, errcap,
				       "DTLS peer negotiated no SRTP profile (use_srtp)");
		}
		d->connected = true;
		return 1;
	}
	int e = SSL_get_error(d->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	unsigned long ossl = ERR_get_error();
	char buf[160];
	ERR_error_string_n(ossl, buf, sizeof(buf));
	ERR_clear_error();
	d->failed = true;
	return cn_fail(CN_E_MALFORMED, err, errcap, "DTLS handshake failed: %s",
		       ossl ? buf : "peer closed or sent an alert");
}

int cn_dtls_start(struct cn_dtls *d)
{
	char err[200];

	if (!d->active)
		return 0;
	return handshake(d, err, sizeof(err)) < 0 ? -EPROTO : 0;
}

int cn_dtls_input(struct cn_dtls *d, const uint8_t *p, size_t n, char *err, size_t errcap)
{
	if (d->failed)
		return cn_fail(-EPIPE, err, errcap, "DTLS session already failed");
	d->in_p = p;
	d->in_len = n;
	int rc;
	if (!d->connected) {
		rc = handshake(d, err, errcap);
	} else {
		/* After the handshake only alerts (close_notify) and retransmitted finished
		 * flights arrive; application data is not used by DTLS-SRTP. */
		uint8_t sink[2048];
		int r = SSL_read(d->ssl, sink, sizeof(sink));
		rc = 0;
		if (r <= 0) {
			int e = SSL_get_error(d->ssl, r);
			if (e == SSL_ERROR_ZERO_RETURN) {
				d->failed = true;
				rc = cn_fail(-EPIPE, err, errcap, "DTLS peer closed the session");
			} else if (e == SSL_ERROR_SSL) {
				d->failed = true;
				rc = cn_fail(-EPROTO, err, errcap, "DTLS peer sent a fatal alert");
			}
			ERR_clear_error();
		}
	}
	d->in_p = NULL;
	d->in_len = 0;
	return rc;
}

int64_t cn_dtls_next_timeout_ms(struct cn_dtls *d)
{
	struct timeval tv;

	if (d->connected || d->failed || DTLSv1_get_timeout(d->ssl, &tv) != 1)
		return -1;
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int cn_dtls_timeout(struct cn_dtls *d)
{
	if (d->connected || d->failed)
		return 0;
	if (DTLSv1_handle_timeout(d->ssl) < 0) {
		d->failed = true;
		ERR_clear_error();
		return -ETIMEDOUT;
	}
	return 0;
}

bool cn_dtls_connected(const struct cn_dtls *d)
{
	return d->connected;
}

int cn_dtls_srtp_keys(struct cn_dtls *d, struct cn_srtp_keys *out)
{
	uint8_t m[2 * (16 + 14)];
	size_t key = 16, salt;
	SRTP_PROTECTION_PROFILE *p;

	if (!d->connected || !(p = SSL_get_selected_srtp_profile(d->ssl)))
		return -EAGAIN;
	memset(out, 0, sizeof(*out));
	if (p->id == SRTP_AES128_CM_SHA1_80) {
		out->profile = CN_SRTP_AES128_CM_SHA1_80;
		salt = 14;
	} else if (p->id == SRTP_AEAD_AES_128_GCM) {
		out->profile = CN_SRTP_AEAD_AES_128_GCM;
		salt = 12;
	} else {
		return -ENOTSUP;
	}
	if (SSL_export_keying_material(d->ssl, m, 2 * (key + salt), "EXTRACTOR-dtls_srtp", 19,
				       NULL, 0, 0) != 1)
		return -EPROTO;
	/* client key, server key, client salt, server salt */
	const uint8_t *ck = m, *sk = m + key, *cs = m + 2 * key, *ss = m + 2 * key + salt;
	memcpy(out->local_key, d->active ? ck : sk, key);
	memcpy(out->remote_key, d->active ? sk : ck, key);
	memcpy(out->local_salt, d->active ? cs : ss, salt);
	memcpy(out->remote_salt, d->active ? ss : cs, salt);
	out->salt_len = salt;
	OPENSSL_cleanse(m, sizeof(m));
	return 0;
}

void cn_dtls_free(struct cn_dtls *d)
{
	if (!d)
		return;
	if (d->ssl && d->connected && !d->failed)
		SSL_shutdown(d->ssl);
	SSL_free(d->ssl); /* also drops the BIO reference SSL_set_bio took */
	BIO_free(d->bio);
	SSL_CTX_free(d->ctx);
	ERR_clear_error();
	free(d);
}

/* ---- SRTP --------------------------------------------------------------------------- */

static int srtp_session(const struct cn_srtp_keys *k, bool outbound, srtp_t *out)
{
	srtp_policy_t pol;
	uint8_t master[16 + 14];

	memset(&pol, 0, sizeof(pol));
	if (k->profile == CN_SRTP_AES128_CM_SHA1_80) {
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol.rtp);
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol.rtcp);
	} else if (k->profile == CN_SRTP_AEAD_AES_128_GCM) {
		srtp_crypto_policy_set_aes_gcm_128_16_auth(&pol.rtp);
		srtp_crypto_policy_set_aes_gcm_128_16_auth(&pol.rtcp);
	} else {
		return -EINVAL;
	}
	memcpy(master, outbound ? k->local_key : k->remote_key, 16);
	memcpy(master + 16, outbound ? k->local_salt : k->remote_salt, k->salt_len);
	pol.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
	pol.key = master;
	pol.window_size = 1024;
	/* NACKed packets are sent again with their sequence number. */
	pol.allow_repeat_tx = 1;
	srtp_err_status_t st = srtp_create(out, &pol);
	OPENSSL_cleanse(master, sizeof(master));
	return st == srtp_err_status_ok ? 0 : -EINVAL;
}

int cn_srtp_new(const struct cn_srtp_keys *keys, struct cn_srtp **out)
{
	struct cn_srtp *s;
	int rc;

	if ((rc = lib_init()) < 0)
		return rc;
	if (!(s = calloc(1, sizeof(*s))))
		return -ENOMEM;
	if ((rc = srtp_session(keys, true, &s->tx)) < 0 ||
	    (rc = srtp_session(keys, false, &s->rx)) < 0) {
		cn_srtp_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static int map_status(srtp_err_status_t st)
{
	switch (st) {
	case srtp_err_status_ok:
		return 0;
	case srtp_err_status_auth_fail:
		return CN_E_BAD_SIG;
	default:
		return CN_E_MALFORMED;
	}
}

int cn_srtp_protect_rtp(struct cn_srtp *s, uint8_t *buf, size_t *len, size_t cap)
{
	int n = (int)*len;

	if (*len + CN_SRTP_OVERHEAD > cap)
		return -ENOBUFS;
	int rc = map_status(srtp_protect(s->tx, buf, &n));
	if (rc == 0)
		*len = (size_t)n;
	return rc;
}

int cn_srtp_protect_rtcp(struct cn_srtp *s, uint8_t *buf, size_t *len, size_t cap)
{
	int n = (int)*len;

	if (*len + CN_SRTP_OVERHEAD > cap)
		return -ENOBUFS;
	int rc = map_status(srtp_protect_rtcp(s->tx, buf, &n));
	if (rc == 0)
		*len = (size_t)n;
	return rc;
}

int cn_srtp_unprotect_rtp(struct cn_srtp *s, uint8_t *buf, size_t *len)
{
	int n = (int)*len;
	int rc = map_status(srtp_unprotect(s->rx, buf, &n));

	if (rc == 0)
		*len = (size_t)n;
	return rc;
}

int cn_srtp_unprotect_rtcp(struct cn_srtp *s, uint8_t *buf, size_t *len)
{
	int n = (int)*len;
	int rc = map_status(srtp_unprotect_rtcp(s->rx, buf, &n));

	if (rc == 0)
		*len = (size_t)n;
	return rc;
}

void cn_srtp_free(struct cn_srtp *s)
{
	if (!s)
		return;
	if (s->tx)
		srtp_dealloc(s->tx);
	if (s->rx)
		srtp_dealloc(s->rx);
	free(s);
}
