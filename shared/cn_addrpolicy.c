/* cn_addrpolicy.c: which peer addresses a relay may send to: normalisation, special ranges, CIDR allow and deny lists. */
#include "cn_addrpolicy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cn_err.h"

int cn_cidr_parse(const char *s, struct cn_cidr *out)
{
	char host[64], *end;
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	long pfx;
	int max;

	memset(out, 0, sizeof(*out));
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -EINVAL;
	}
	out->prefix = max;
	if (slash) {
		if (slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		pfx = strtol(slash + 1, &end, 10);
		if (*end != '\0' || pfx < 0 || pfx > max)
			return -EINVAL;
		out->prefix = (int)pfx;
	}
	return 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ b[full]) & (uint8_t)(0xFF << (8 - rest))) == 0;
}

bool cn_cidr_match(const struct cn_cidr *c, const struct sockaddr *sa)
{
	if (sa->sa_family != c->family)
		return false;
	if (sa->sa_family == AF_INET)
		return prefix_match((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr,
				    c->addr, c->prefix);
	return prefix_match(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, c->addr,
			    c->prefix);
}

static int parse_list(const char *s, struct cn_cidr *out, int *n, const char *what, char *err,
		      size_t cap)
{
	*n = 0;
	while (s && *s) {
		char item[80];
		size_t len;

		s += strspn(s, ", \t");
		len = strcspn(s, ", \t");
		if (len == 0)
			break;
		if (len >= sizeof(item))
			return cn_fail(CN_E_CONFIG, err, cap, "%s: entry too long", what);
		memcpy(item, s, len);
		item[len] = '\0';
		if (*n == CN_ADDRPOLICY_MAX)
			return cn_fail(CN_E_CONFIG, err, cap, "%s: more than %d entries", what,
				       CN_ADDRPOLICY_MAX);
		if (cn_cidr_parse(item, &out[*n]) < 0)
			return cn_fail(CN_E_CONFIG, err, cap, "%s: '%s' is not an address or CIDR",
				       what, item);
		(*n)++;
		s += len;
	}
	return 0;
}

int cn_addrpolicy_init(struct cn_addrpolicy *p, const char *allow, const char *deny, char *err,
		       size_t cap)
{
	int rc;

	memset(p, 0, sizeof(*p));
	rc = parse_list(allow, p->allow, &p->nallow, "allow list", err, cap);
	if (rc == 0)
		rc = parse_list(deny, p->deny, &p->ndeny, "deny list", err, cap);
	if (rc < 0)
		memset(p, 0, sizeof(*p));
	return rc;
}

void cn_addr_normalise(const struct sockaddr *in, struct sockaddr_storage *out)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)in;

	memset(out, 0, sizeof(*out));
	if (in->sa_family == AF_INET6 && (memcmp(s6->sin6_addr.s6_addr, mapped, 12) == 0 ||
					  memcmp(s6->sin6_addr.s6_addr, nat64, 12) == 0)) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;

		s4->sin_family = AF_INET;
		s4->sin_port = s6->sin6_port;
		memcpy(&s4->sin_addr, s6->sin6_addr.s6_addr + 12, 4);
		return;
	}
	memcpy(out, in, in->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in));
}

static const char *special4(const uint8_t *a)
{
	if (a[0] == 0)
		return "unspecified";
	if (a[0] == 127)
		return "loopback";
	if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xF0) == 16) || (a[0] == 192 && a[1] == 168))
		return "private";
	if (a[0] == 100 && (a[1] & 0xC0) == 64)
		return "shared address space";
	if (a[0] == 169 && a[1] == 254)
		return "link-local";
	if (a[0] == 192 && a[1] == 0 && a[2] == 0)
		return "IETF protocol assignments";
	if (a[0] == 198 && (a[1] & 0xFE) == 18)
		return "benchmarking";
	if (a[0] >= 224 && a[0] <= 239)
		return "multicast";
	if (a[0] >= 240)
		return a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255 ? "broadcast"
									      : "reserved";
	return NULL;
}

const char *cn_addr_special(const struct sockaddr *sa)
{
	const uint8_t *a;

	if (sa->sa_family == AF_INET)
		return special4((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
	if (sa->sa_family != AF_INET6)
		return "not an IP address";
	a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	{
		static const uint8_t zero12[12] = { 0 };

		/* ::/96 holds :: and ::1 and the deprecated IPv4-compatible form. */
		if (memcmp(a, zero12, 12) == 0) {
			if (a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] <= 1)
				return a[15] ? "loopback" : "unspecified";
			return "IPv4-compatible";
		}
	}
	if (a[0] == 0xfe && (a[1] & 0xC0) == 0x80)
		return "link-local";
	if (a[0] == 0xfe && (a[1] & 0xC0) == 0xC0)
		return "site-local";
	if ((a[0] & 0xFE) == 0xfc)
		return "private";
	if (a[0] == 0xff)
		return "multicast";
	/* 64:ff9b:1::/48, local-use NAT64 (RFC 8215): the IPv4 side is not ours to judge. */
	if (a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0 && a[5] == 1)
		return "local NAT64";
	/* 6to4 (2002::/16) carries an IPv4 address in bits 16..47. */
	if (a[0] == 0x20 && a[1] == 0x02 && special4(a + 2))
		return "6to4 of a special IPv4 address";
	return NULL;
}

int cn_addrpolicy_check(const struct cn_addrpolicy *p, const struct sockaddr *sa,
			struct sockaddr_storage *out, const char **why)
{
	struct sockaddr_storage norm;
	const struct sockaddr *n = (const struct sockaddr *)&norm;
	const char *special;

	*why = NULL;
	cn_addr_normalise(sa, &norm);
	if (out)
		*out = norm;
	for (int i = 0; i < p->ndeny; i++) {
		if (cn_cidr_match(&p->deny[i], n)) {
			*why = "denied by configuration";
			return CN_E_POLICY;
		}
	}
	for (int i = 0; i < p->nallow; i++)
		if (cn_cidr_match(&p->allow[i], n))
			return 0;
	special = cn_addr_special(n);
	if (special) {
		*why = special;
		return CN_E_POLICY;
	}
	return 0;
}
