/* cn_addrpolicy.h: which peer addresses a relay may send to: normalisation, special ranges, CIDR allow and deny lists. */
#ifndef CN_ADDRPOLICY_H
#define CN_ADDRPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CN_ADDRPOLICY_MAX 32 /* CIDRs per list */

struct cn_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	int prefix;
};

struct cn_addrpolicy {
	struct cn_cidr allow[CN_ADDRPOLICY_MAX];
	int nallow;
	struct cn_cidr deny[CN_ADDRPOLICY_MAX];
	int ndeny;
};

/* "a.b.c.d[/n]" or "x::y[/n]" (no prefix: a host). */
int cn_cidr_parse(const char *s, struct cn_cidr *out);
bool cn_cidr_match(const struct cn_cidr *c, const struct sockaddr *sa);

/* Comma- or space-separated CIDR lists (either may be NULL or empty). CN_E_CONFIG with
 * the bad entry named in err. */
int cn_addrpolicy_init(struct cn_addrpolicy *p, const char *allow, const char *deny, char *err,
		       size_t cap);

/* IPv4-mapped (::ffff:a.b.c.d) and NAT64 well-known prefix (64:ff9b::/96) addresses
 * become the IPv4 address they carry; anything else is copied. The port is kept. */
void cn_addr_normalise(const struct sockaddr *in, struct sockaddr_storage *out);

/* Why an address is special (never relayed to by default), or NULL for an ordinary
 * public address. Expects a normalised address. */
const char *cn_addr_special(const struct sockaddr *sa);

/* 0 when the relay may send to sa, else CN_E_POLICY with *why set to a short reason.
 * Order: normalise; the deny list refuses; the allow list accepts; special ranges
 * refuse; everything else is accepted. out (may be NULL) gets the normalised address. */
int cn_addrpolicy_check(const struct cn_addrpolicy *p, const struct sockaddr *sa,
			struct sockaddr_storage *out, const char **why);

#endif
