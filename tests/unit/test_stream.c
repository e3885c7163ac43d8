/* test_stream.c: the live stream's pure parts: feed id tracking with gaps (resume point) and grant visibility. */
#include <stdlib.h>
#include <string.h>

#include "../../central/central_stream.h"
#include "cn_err.h"
#include "cn_test.h"

TEST(feed_track_in_order)
{
	struct central_feed_track t;

	central_feed_track_init(&t, 100);
	CHECK_INT(central_feed_track_low(&t), 0); /* nothing known yet: promise nothing */
	central_feed_track_start(&t, 10);
	CHECK(central_feed_track_seen(&t, 11, 0, 1000, NULL));
	CHECK(central_feed_track_seen(&t, 12, 0, 1000, NULL));
	CHECK_INT(central_feed_track_low(&t), 12);
	CHECK(!central_feed_track_seen(&t, 12, 0, 1000, NULL)); /* read twice: not new */
	CHECK(!central_feed_track_seen(&t, 5, 0, 1000, NULL));	/* below the start */
	CHECK_INT(t.n, 0);
	central_feed_track_free(&t);
}

TEST(feed_track_gap_fills_in)
{
	struct central_feed_track t;

	central_feed_track_init(&t, 100);
	central_feed_track_start(&t, 10);
	/* 11 and 12 handed out first, 13 committed first */
	CHECK(central_feed_track_seen(&t, 13, 0, 1000, NULL));
	CHECK_INT(t.n, 2);
	CHECK_INT(central_feed_track_low(&t), 10); /* 11 may still come */
	CHECK(central_feed_track_seen(&t, 12, 10, 1000, NULL));
	CHECK_INT(central_feed_track_low(&t), 10);
	CHECK(central_feed_track_seen(&t, 11, 20, 1000, NULL));
	CHECK_INT(central_feed_track_low(&t), 13);
	CHECK(!central_feed_track_seen(&t, 11, 30, 1000, NULL));
	central_feed_track_free(&t);
}

TEST(feed_track_gap_given_up)
{
	struct central_feed_track t;

	central_feed_track_init(&t, 100);
	central_feed_track_start(&t, 0);
	CHECK(central_feed_track_seen(&t, 3, 0, 1000, NULL)); /* gaps 1, 2 due at 1000 */
	CHECK(central_feed_track_seen(&t, 5, 500, 1000, NULL)); /* gap 4 due at 1500 */
	CHECK_INT(central_feed_track_expire(&t, 999), 0);
	CHECK_INT(central_feed_track_low(&t), 0);
	CHECK_INT(central_feed_track_expire(&t, 1000), 2); /* 1, 2 rolled back */
	CHECK_INT(central_feed_track_low(&t), 3);
	CHECK_INT(central_feed_track_expire(&t, 1500), 1);
	CHECK_INT(central_feed_track_low(&t), 5);
	/* a gap given up and committing after all is not new to the tracker */
	CHECK(!central_feed_track_seen(&t, 4, 2000, 1000, NULL));
	central_feed_track_free(&t);
}

TEST(feed_track_bounded)
{
	struct central_feed_track t;
	size_t dropped = 0;

	central_feed_track_init(&t, 4);
	central_feed_track_start(&t, 0);
	/* 9 ids skipped, room for 4: the 5 lowest are given up at once */
	CHECK(central_feed_track_seen(&t, 10, 0, 1000, &dropped));
	CHECK_INT(dropped, 5);
	CHECK_INT(t.n, 4);
	CHECK_INT(central_feed_track_low(&t), 5);
	/* more gaps push the oldest out */
	CHECK(central_feed_track_seen(&t, 12, 0, 1000, &dropped));
	CHECK_INT(dropped, 6);
	CHECK_INT(t.n, 4);
	CHECK_INT(t.gaps[0].id, 7);
	CHECK_INT(central_feed_track_low(&t), 6);
	central_feed_track_free(&t);
}

TEST(stream_parse_uuids)
{
	char (*v)[37] = NULL;
	size_t n = 99;

	CHECK_INT(central_stream_parse_uuids("{}", 10, &v, &n), 0);
	CHECK_INT(n, 0);
	CHECK(v == NULL);
	CHECK_INT(central_stream_parse_uuids("{00000000-0000-0000-0000-00000000000a,"
					     "11111111-2222-3333-4444-555555555555}",
					     10, &v, &n),
		  0);
	CHECK_INT(n, 2);
	CHECK_STR(v[1], "11111111-2222-3333-4444-555555555555");
	free(v);
	CHECK_INT(central_stream_parse_uuids("{NULL}", 10, &v, &n), CN_E_MALFORMED);
	CHECK_INT(central_stream_parse_uuids("{a,b}", 10, &v, &n), CN_E_MALFORMED);
	CHECK_INT(central_stream_parse_uuids("00000000-0000-0000-0000-00000000000a", 10, &v, &n),
		  CN_E_MALFORMED);
	CHECK_INT(central_stream_parse_uuids(NULL, 10, &v, &n), CN_E_MALFORMED);
	CHECK_INT(central_stream_parse_uuids("{00000000-0000-0000-0000-00000000000a,"
					     "00000000-0000-0000-0000-00000000000b}",
					     1, &v, &n),
		  CN_E_TOO_BIG);
}

TEST(stream_visibility)
{
	static const char root[] = "00000000-0000-0000-0000-000000000001";
	static const char a[] = "00000000-0000-0000-0000-00000000000a";
	static const char b[] = "00000000-0000-0000-0000-00000000000b";
	static const char cam[] = "00000000-0000-0000-0000-0000000000c1";
	char anc_a[2][37], anc_b[2][37];
	struct central_stream_vis v = { 0 };

	memcpy(anc_a[0], root, 37);
	memcpy(anc_a[1], a, 37);
	memcpy(anc_b[0], root, 37);
	memcpy(anc_b[1], b, 37);
	/* nothing granted */
	CHECK(!central_stream_visible(&v, (const char(*)[37])anc_a, 2, cam));
	/* site A: rows at A, not at B */
	v.sites = calloc(1, sizeof(*v.sites));
	memcpy(v.sites[0], a, 37);
	v.nsites = 1;
	CHECK(central_stream_visible(&v, (const char(*)[37])anc_a, 2, NULL));
	CHECK(!central_stream_visible(&v, (const char(*)[37])anc_b, 2, NULL));
	CHECK(!central_stream_visible(&v, NULL, 0, ""));
	/* the root's subtree holds both */
	memcpy(v.sites[0], root, 37);
	CHECK(central_stream_visible(&v, (const char(*)[37])anc_b, 2, NULL));
	/* a camera grant: rows on that camera wherever it is */
	v.nsites = 0;
	v.cameras = calloc(1, sizeof(*v.cameras));
	memcpy(v.cameras[0], cam, 37);
	v.ncameras = 1;
	CHECK(central_stream_visible(&v, (const char(*)[37])anc_b, 2, cam));
	CHECK(!central_stream_visible(&v, (const char(*)[37])anc_b, 2, NULL));
	/* tenant-wide */
	v.ncameras = 0;
	v.all = true;
	CHECK(central_stream_visible(&v, NULL, 0, NULL));
	central_stream_vis_free(&v);
	CHECK(v.sites == NULL && v.cameras == NULL);
}
