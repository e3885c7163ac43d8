/* test_fields.c: unit tests for typed request checking (cn_fields). */
#include <stdint.h>
#include <string.h>

#include "cn_fields.h"
#include "cn_test.h"

static const struct cn_field fields[] = {
	{ "name", CN_F_STR, 1, 8, true },
	{ "n", CN_F_INT, 0, 100, false },
	{ "parent_id", CN_F_UUIDN, 0, 0, false },
	{ "scopes", CN_F_STRARR, 1, 16, false },
	{ "since", CN_F_TIME, 0, 0, false },
	{ NULL, CN_F_STR, 0, 0, false },
};

static int body(const char *json, bool partial, char *why)
{
	cJSON *out = NULL;
	int rc = cn_fields_body(fields, partial, json, strlen(json), &out, why, 256);

	cJSON_Delete(out);
	return rc;
}

TEST(fields_body_accepts_and_refuses_precisely)
{
	char why[256];

	CHECK_INT(body("{\"name\":\"h\\u00e9llo\",\"n\":7,\"parent_id\":null}", false, why), 0);
	CHECK(body("{\"n\":7}", false, why) < 0);
	CHECK_STR(why, "field 'name' is required");
	CHECK_INT(body("{\"n\":7}", true, why), 0);
	CHECK(body("{}", true, why) < 0);
	CHECK(body("{\"name\":\"x\",\"extra\":1}", false, why) < 0);
	CHECK(strstr(why, "unknown field 'extra' (known: name, n, parent_id, scopes, since)"));
	CHECK(body("{\"name\":\"123456789\"}", false, why) < 0);
	CHECK(strstr(why, "must be 1 to 8 characters long (has 9)"));
	/* out-of-range doubles are refused before any integer conversion */
	CHECK(body("{\"name\":\"x\",\"n\":1e300}", false, why) < 0);
	CHECK(strstr(why, "between 0 and 100"));
	CHECK(body("{\"name\":\"x\",\"n\":2.5}", false, why) < 0);
	CHECK(strstr(why, "must be an integer"));
	CHECK(body("{\"name\":\"x\",\"parent_id\":\"nope\"}", false, why) < 0);
	CHECK(strstr(why, "must be a UUID or null"));
	CHECK(body("{\"name\":\"x\",\"scopes\":[]}", false, why) < 0);
	CHECK(body("{\"name\":\"x\",\"scopes\":[\"a\",2]}", false, why) < 0);
	CHECK(strstr(why, "'scopes'[1]: must be a string"));
	CHECK(body("{\"name\":\"x\",\"since\":\"yesterday\"}", false, why) < 0);
	CHECK(body("[1]", false, why) < 0);
	CHECK(body("{\"name\":\"x\",\"name\":\"y\"}", false, why) < 0); /* repeated key */
	CHECK(cn_fields_body(NULL, false, "", 0, &(cJSON *){ NULL }, why, sizeof(why)) == 0);
	CHECK(cn_fields_body(NULL, false, "{}", 2, &(cJSON *){ NULL }, why, sizeof(why)) < 0);
}

TEST(fields_query_types_and_refusals)
{
	static const char q[] = "n=42\0name=abc";
	cJSON *out = NULL;
	char why[256];

	CHECK_INT(cn_fields_query(fields, q, sizeof(q) - 1, &out, why, sizeof(why)), 0);
	{
		char *txt = cJSON_PrintUnformatted(out);

		CHECK_STR(txt, "{\"n\":42,\"name\":\"abc\"}");
		cJSON_free(txt);
	}
	cJSON_Delete(out);
	CHECK(cn_fields_query(fields, "n=1\0n=2", 7, &out, why, sizeof(why)) < 0);
	CHECK(strstr(why, "given twice"));
	CHECK(cn_fields_query(fields, "n=101", 5, &out, why, sizeof(why)) < 0);
	CHECK(cn_fields_query(fields, "zzz=1", 5, &out, why, sizeof(why)) < 0);
	CHECK(strstr(why, "unknown query parameter 'zzz'"));
	CHECK(cn_fields_query(fields, "novalue", 7, &out, why, sizeof(why)) < 0);
	CHECK(out == NULL);
}
