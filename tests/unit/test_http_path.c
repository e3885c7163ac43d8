/* test_http_path.c: splitting WHEP resource paths ("<prefix><camera>[/<session>]"). */
#include <errno.h>
#include <string.h>

#include "cn_buf.h"
#include "cn_http.h"
#include "cn_test.h"

static int split(const char *path, char *a, size_t acap, char *b, size_t bcap)
{
	return cn_http_split_path(cn_str_from(path), "/whep/", a, acap, b, bcap);
}

TEST(http_split_path)
{
	char a[8], b[8];

	CHECK_INT(split("/whep/cam1", a, sizeof(a), b, sizeof(b)), 0);
	CHECK(strcmp(a, "cam1") == 0 && b[0] == '\0');
	CHECK_INT(split("/whep/cam1/s1", a, sizeof(a), b, sizeof(b)), 0);
	CHECK(strcmp(a, "cam1") == 0 && strcmp(b, "s1") == 0);
	CHECK_INT(split("/whep/", a, sizeof(a), b, sizeof(b)), -EINVAL);
	CHECK_INT(split("/whep//s1", a, sizeof(a), b, sizeof(b)), -EINVAL);
	CHECK_INT(split("/whep/cam1/", a, sizeof(a), b, sizeof(b)), -EINVAL);
	CHECK_INT(split("/whep/cam1/s1/x", a, sizeof(a), b, sizeof(b)), -EINVAL);
	CHECK_INT(split("/whep/cameraname", a, sizeof(a), b, sizeof(b)), -EINVAL); /* a too long */
	CHECK_INT(split("/whep/cam/session1", a, sizeof(a), b, sizeof(b)), -EINVAL); /* b too long */
	CHECK_INT(split("/sfu/whep/cam1", a, sizeof(a), b, sizeof(b)), -EINVAL); /* other prefix */
	CHECK_INT(cn_http_split_path(cn_str_from("/sfu/whep/cam1"), "/sfu/whep/", a, sizeof(a), b,
				     sizeof(b)), 0);
	CHECK(strcmp(a, "cam1") == 0);
}
