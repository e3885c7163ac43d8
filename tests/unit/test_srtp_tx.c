/* test_srtp_tx.c: the OpenSSL SRTP sender writes exactly what libsrtp writes, rollover and retransmissions included. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cn_crypto.h"
#include "cn_dtls.h"
#include "cn_err.h"
#include "cn_rtp.h"
#include "cn_srtp_tx.h"
#include "cn_test.h"

static void keys_for(struct cn_srtp_keys *k, enum cn_srtp_profile p)
{
	memset(k, 0, sizeof(*k));
	k->profile = p;
	k->salt_len = p == CN_SRTP_AEAD_AES_128_GCM ? 12 : 14;
	cn_random_bytes(k->local_key, sizeof(k->local_key));
	cn_random_bytes(k->remote_key, sizeof(k->remote_key));
	cn_random_bytes(k->local_salt, sizeof(k->local_salt));
	cn_random_bytes(k->remote_salt, sizeof(k->remote_salt));
}

/* Sends n packets from seq0 on (with a retransmission of an older one every 37th packet,
 * and a second SSRC now and then) through both and compares the bytes. */
static void compare_run(uint16_t seq0, int n)
{
	struct cn_srtp_keys k;
	struct cn_srtp *ref = NULL;
	struct cn_srtp_tx *tx = NULL;
	uint8_t a[1600], b[1600];
	int mismatches = 0;

	keys_for(&k, CN_SRTP_AES128_CM_SHA1_80);
	CHECK_INT(cn_srtp_new(&k, &ref), 0);
	CHECK_INT(cn_srtp_tx_new(&k, &tx), 0);
	if (!ref || !tx)
		goto out;
	for (int i = 0; i < n; i++) {
		uint16_t seq = (uint16_t)(seq0 + i);
		uint32_t ssrc = (i % 11 == 5) ? 0x2222 : 0x1111;
		if (i % 37 == 36)
			seq = (uint16_t)(seq - 20); /* a NACKed packet sent again */
		if (ssrc == 0x2222)
			seq = (uint16_t)(seq0 / 2 + i / 11);
		size_t plen = 1 + (size_t)(i * 131 % 1200);
		int h = cn_rtp_write_header(a, sizeof(a), i % 5 == 0, 96, seq, (uint32_t)i * 3000, ssrc, 0, 0);
		CHECK(h == 12);
		for (size_t j = 0; j < plen; j++)
			a[h + j] = (uint8_t)(j * 7 + (size_t)i);
		size_t la = (size_t)h + plen, lb = la;
		memcpy(b, a, la);
		CHECK_INT(cn_srtp_protect_rtp(ref, a, &la, sizeof(a)), 0);
		CHECK_INT(cn_srtp_tx_protect(tx, b, &lb, sizeof(b)), 0);
		if (la != lb || memcmp(a, b, la) != 0)
			mismatches++;
	}
	CHECK_INT(mismatches, 0);
out:
	cn_srtp_free(ref);
	cn_srtp_tx_free(tx);
}

TEST(srtp_tx_matches_libsrtp)
{
	compare_run(1000, 3000);      /* starts low: libsrtp's ROC-0 shortcut */
	compare_run(60000, 12000);    /* starts high and rolls over */
	compare_run(65530, 200);      /* rolls over at once */
}

TEST(srtp_tx_extension_and_csrc)
{
	struct cn_srtp_keys k;
	struct cn_srtp *ref = NULL;
	struct cn_srtp_tx *tx = NULL;
	uint8_t a[256], b[256];
	size_t la, lb;

	keys_for(&k, CN_SRTP_AES128_CM_SHA1_80);
	CHECK_INT(cn_srtp_new(&k, &ref), 0);
	CHECK_INT(cn_srtp_tx_new(&k, &tx), 0);
	if (!ref || !tx)
		goto out;
	/* abs-send-time extension: a 20-byte header */
	int h = cn_rtp_write_header(a, sizeof(a), true, 96, 7, 90000, 0x3333, 3, 123456789);
	CHECK_INT(h, 20);
	memset(a + h, 0xab, 50);
	la = lb = (size_t)h + 50;
	memcpy(b, a, la);
	CHECK_INT(cn_srtp_protect_rtp(ref, a, &la, sizeof(a)), 0);
	CHECK_INT(cn_srtp_tx_protect(tx, b, &lb, sizeof(b)), 0);
	CHECK(la == lb && memcmp(a, b, la) == 0);
	/* refusals: not RTP, no room */
	lb = 5;
	CHECK_INT(cn_srtp_tx_protect(tx, b, &lb, sizeof(b)), CN_E_MALFORMED);
	lb = 100;
	b[0] = 0x80;
	CHECK_INT(cn_srtp_tx_protect(tx, b, &lb, 105), -ENOBUFS);
out:
	cn_srtp_free(ref);
	cn_srtp_tx_free(tx);
}

TEST(srtp_tx_only_aes_cm)
{
	struct cn_srtp_keys k;
	struct cn_srtp_tx *tx = NULL;

	keys_for(&k, CN_SRTP_AEAD_AES_128_GCM);
	CHECK_INT(cn_srtp_tx_new(&k, &tx), -ENOTSUP);
	CHECK(tx == NULL);
}
