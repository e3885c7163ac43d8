/* test_addrpolicy.c: TURN peer address policy: normalisation, special ranges, allow and deny lists. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "cn_addrpolicy.h"
#include "cn_err.h"
#include "cn_test.h"

static struct sockaddr_storage addr(const char *s)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		cn_test_fail(__FILE__, __LINE__, "bad test address %s", s);
	return ss;
}

static int verdict(const struct cn_addrpolicy *p, const char *s)
{
	struct sockaddr_storage ss = addr(s);
	const char *why;
	int rc = cn_addrpolicy_check(p, (struct sockaddr *)&ss, NULL, &why);

	if (rc == 0 && why != NULL)
		cn_test_fail(__FILE__, __LINE__, "%s accepted with a reason", s);
	if (rc != 0 && why == NULL)
		cn_test_fail(__FILE__, __LINE__, "%s refused without a reason", s);
	return rc;
}

TEST(addrpolicy_default_refuses_special)
{
	static const char *refused[] = {
		"127.0.0.1", "127.255.0.3", "::1", "::ffff:127.0.0.1", "0.0.0.0", "::",
		"169.254.1.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"100.64.0.1", "224.0.0.1", "255.255.255.255", "fe80::1", "fc00::1", "fd12::1",
		"ff02::1", "64:ff9b::7f00:1", "64:ff9b::a01:203", "::ffff:10.0.0.1",
		"::ffff:169.254.9.9", "::ffff:0.0.0.0", "2002:7f00:1::1", "::127.0.0.1",
		"64:ff9b:1::1", "198.18.0.1",
	};
	static const char *allowed[] = {
		"8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:db8::1", "2a00:1450::1",
		"::ffff:8.8.8.8", "64:ff9b::808:808", "192.0.2.1",
	};
	struct cn_addrpolicy p;

	CHECK_INT(cn_addrpolicy_init(&p, "", NULL, NULL, 0), 0);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (verdict(&p, refused[i]) != CN_E_POLICY)
			cn_test_fail(__FILE__, __LINE__, "%s not refused", refused[i]);
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (verdict(&p, allowed[i]) != 0)
			cn_test_fail(__FILE__, __LINE__, "%s refused", allowed[i]);
}

TEST(addrpolicy_normalises)
{
	struct sockaddr_storage in = addr("::ffff:192.0.2.7"), out;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out;

	((struct sockaddr_in6 *)&in)->sin6_port = htons(4242);
	cn_addr_normalise((struct sockaddr *)&in, &out);
	CHECK_INT(out.ss_family, AF_INET);
	CHECK_INT(ntohs(s4->sin_port), 4242);
	CHECK_INT(ntohl(s4->sin_addr.s_addr), 0xC0000207);
	in = addr("64:ff9b::c000:208");
	cn_addr_normalise((struct sockaddr *)&in, &out);
	CHECK_INT(out.ss_family, AF_INET);
	CHECK_INT(ntohl(s4->sin_addr.s_addr), 0xC0000208);
	in = addr("2001:db8::5");
	cn_addr_normalise((struct sockaddr *)&in, &out);
	CHECK_INT(out.ss_family, AF_INET6);
}

TEST(addrpolicy_lists)
{
	struct cn_addrpolicy p;
	char err[128];

	CHECK_INT(cn_addrpolicy_init(&p, "127.0.0.0/8, 10.1.0.0/16", "8.8.8.8 2001:db8::/32", err,
				     sizeof(err)), 0);
	CHECK_INT(verdict(&p, "127.0.0.1"), 0);
	/* The allow list applies after normalisation: the mapped form is the same address. */
	CHECK_INT(verdict(&p, "::ffff:127.0.0.1"), 0);
	CHECK_INT(verdict(&p, "::1"), CN_E_POLICY); /* not in the list */
	CHECK_INT(verdict(&p, "10.1.200.3"), 0);
	CHECK_INT(verdict(&p, "10.2.0.1"), CN_E_POLICY);
	CHECK_INT(verdict(&p, "8.8.8.8"), CN_E_POLICY);
	CHECK_INT(verdict(&p, "8.8.4.4"), 0);
	CHECK_INT(verdict(&p, "2001:db8:ffff::1"), CN_E_POLICY);
	CHECK_INT(cn_addrpolicy_init(&p, "127.0.0.0/33", NULL, err, sizeof(err)), CN_E_CONFIG);
	CHECK(strstr(err, "127.0.0.0/33") != NULL);
	CHECK_INT(cn_addrpolicy_init(&p, "localhost", NULL, err, sizeof(err)), CN_E_CONFIG);
	CHECK_INT(cn_addrpolicy_init(&p, "1.2.3.4/", NULL, err, sizeof(err)), CN_E_CONFIG);
	CHECK_INT(cn_addrpolicy_init(&p, NULL, "::/0", err, sizeof(err)), 0);
	CHECK_INT(verdict(&p, "2a00:1450::1"), CN_E_POLICY);
	CHECK_INT(verdict(&p, "8.8.8.8"), 0);
}

TEST(addrpolicy_cidr_bits)
{
	struct cn_cidr c;
	struct sockaddr_storage a = addr("172.20.1.1"), b = addr("172.32.0.0");

	CHECK_INT(cn_cidr_parse("172.16.0.0/12", &c), 0);
	CHECK(cn_cidr_match(&c, (struct sockaddr *)&a));
	CHECK(!cn_cidr_match(&c, (struct sockaddr *)&b));
	CHECK_INT(cn_cidr_parse("0.0.0.0/0", &c), 0);
	CHECK(cn_cidr_match(&c, (struct sockaddr *)&b));
}
