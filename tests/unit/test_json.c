/* test_json.c: JSON parse limits and typed getters. */
#include "cn_err.h"
#include "cn_json.h"
#include "cn_test.h"

static int parse(const char *s, int depth)
{
	cJSON *v = NULL;
	int rc = cn_json_parse(s, strlen(s), 1024, depth, &v);

	cJSON_Delete(v);
	return rc;
}

TEST(json_parse_limits)
{
	char deep[200];

	CHECK_INT(parse("{\"a\":1}", 4), 0);
	CHECK_INT(parse("  {\"a\":1}\n", 4), 0);
	CHECK_INT(parse("{\"a\":1} {}", 4), CN_E_MALFORMED);
	CHECK_INT(parse("{\"a\":1,\"a\":2}", 4), CN_E_MALFORMED);
	CHECK_INT(parse("{\"x\":{\"a\":1,\"b\":2,\"a\":3}}", 4), CN_E_MALFORMED);
	CHECK_INT(parse("{\"a\":", 4), CN_E_MALFORMED);
	CHECK_INT(parse("", 4), CN_E_MALFORMED);
	memset(deep, '[', 50);
	memset(deep + 50, ']', 50);
	deep[100] = '\0';
	CHECK_INT(parse(deep, 60), 0);
	CHECK_INT(parse(deep, 10), CN_E_MALFORMED);
	/* An embedded NUL is not silently a shorter document. */
	cJSON *v = NULL;
	CHECK_INT(cn_json_parse("{}\0{}", 5, 1024, 4, &v), CN_E_MALFORMED);
	CHECK_INT(cn_json_parse("{}", 2, 1, 4, &v), CN_E_TOO_BIG);
	/* cJSON would cut "EdDSA\u0000x" to "EdDSA"; such strings are refused outright. */
	CHECK_INT(parse("{\"alg\":\"EdDSA\\u0000x\"}", 4), CN_E_MALFORMED);
	CHECK_INT(parse("{\"a\":\"\\\\u0000\"}", 4), 0); /* escaped backslash, then text */
	CHECK_INT(parse("{\"a\":\"\\u0001\"}", 4), 0);
	/* Many keys: duplicate check must stay correct past the small-object path. */
	char many[2048];
	size_t pos = 0;
	pos += (size_t)snprintf(many, sizeof(many), "{");
	for (int i = 0; i < 40; i++)
		pos += (size_t)snprintf(many + pos, sizeof(many) - pos, "%s\"k%d\":%d", i ? "," : "", i, i);
	snprintf(many + pos, sizeof(many) - pos, "}");
	CHECK_INT(cn_json_parse(many, strlen(many), 4096, 4, &v), 0);
	cJSON_Delete(v);
	many[pos] = '\0';
	snprintf(many + pos, sizeof(many) - pos, ",\"k17\":0}");
	CHECK_INT(cn_json_parse(many, strlen(many), 4096, 4, &v), CN_E_MALFORMED);
}

TEST(json_getters)
{
	const char *s = "{\"s\":\"hi\",\"i\":42,\"f\":1.5,\"big\":9007199254740993,\"b\":true,\"n\":null}";
	cJSON *v = NULL;
	struct cn_str str;
	int64_t i;
	bool b;
	char small[2];

	CHECK_INT(cn_json_parse(s, strlen(s), 1024, 4, &v), 0);
	CHECK_INT(cn_json_get_str(v, "s", &str), 0);
	CHECK(cn_str_eq_cstr(str, "hi"));
	CHECK_INT(cn_json_get_str(v, "i", &str), CN_E_MALFORMED);
	CHECK_INT(cn_json_get_str(v, "missing", &str), -ENOENT);
	CHECK_INT(cn_json_get_i64(v, "i", 0, 100, &i), 0);
	CHECK_INT(i, 42);
	CHECK_INT(cn_json_get_i64(v, "i", 0, 10, &i), -ERANGE);
	CHECK_INT(cn_json_get_i64(v, "f", 0, 10, &i), CN_E_MALFORMED);
	CHECK_INT(cn_json_get_i64(v, "big", 0, INT64_MAX, &i), CN_E_MALFORMED);
	CHECK_INT(cn_json_get_i64(v, "s", 0, 10, &i), CN_E_MALFORMED);
	CHECK_INT(cn_json_get_bool(v, "b", &b), 0);
	CHECK(b);
	CHECK_INT(cn_json_get_bool(v, "n", &b), CN_E_MALFORMED);
	CHECK_INT(cn_json_copy_str(v, "s", small, sizeof(small)), -ENOSPC);
	cJSON_Delete(v);
}

TEST(json_exact_integers)
{
	cJSON *o = cJSON_CreateObject(), *back = NULL;
	struct cn_buf out;
	int64_t v = 0;

	CHECK(cn_json_add_i64(o, "big", CN_JSON_MAX_SAFE_INT) != NULL);
	CHECK(cn_json_add_i64(o, "neg", -42) != NULL);
	cn_buf_init(&out, 1024);
	CHECK_INT(cn_json_print(o, &out), 0);
	CHECK_STR(out.data, "{\"big\":9007199254740991,\"neg\":-42}");
	CHECK_INT(cn_json_parse(out.data, out.len, 1024, 4, &back), 0);
	CHECK_INT(cn_json_get_i64(back, "big", 0, INT64_MAX, &v), 0);
	CHECK(v == CN_JSON_MAX_SAFE_INT);
	cJSON_Delete(o);
	cJSON_Delete(back);
	cn_buf_free(&out);
}
