/* test_relay_creds.c: TURN REST credentials central hands viewers (central_relay.c), against values computed with Python's hmac. */
#include "../../central/central_relay.h"
#include "cn_test.h"

TEST(turn_rest_password_is_base64_hmac_sha1_of_the_username)
{
	char pw[64];

	/* base64(HMAC-SHA1("north", "1700000000:t1/u2")), from Python's hmac */
	CHECK_INT(central_relay_turn_password("north", "1700000000:t1/u2", pw, sizeof(pw)), 0);
	CHECK_STR(pw, "eOGlAyWOomXuzLqPvNCrVU3pAtg=");
	/* too small an output is refused, not cut */
	CHECK(central_relay_turn_password("north", "1700000000:t1/u2", pw, 10) < 0);
}
