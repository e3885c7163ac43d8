/* cn_json.c: parsing limits and typed getters for cJSON trees. */
#include "cn_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_err.h"

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* cJSON accepts repeated keys and keeps the first; a signed document must not be read
 * differently by two parsers, so repeats are refused. Large objects are sorted so a
 * hostile document cannot make this quadratic. */
static bool keys_unique(const cJSON *obj)
{
	const char *small[16];
	const char **names = small;
	size_t n = 0, i;
	bool ok = true;

	for (const cJSON *c = obj->child; c; c = c->next)
		n++;
	if (n < 2)
		return true;
	if (n > 16) {
		names = malloc(n * sizeof(*names));
		if (!names)
			return false;
	}
	i = 0;
	for (const cJSON *c = obj->child; c; c = c->next)
		names[i++] = c->string ? c->string : "";
	qsort(names, n, sizeof(*names), cmp_names);
	for (i = 1; i < n && ok; i++)
		ok = strcmp(names[i - 1], names[i]) != 0;
	if (names != small)
		free(names);
	return ok;
}

static bool tree_ok(const cJSON *v, int depth, int max_depth)
{
	if (depth > max_depth)
		return false;
	if (cJSON_IsObject(v) && !keys_unique(v))
		return false;
	for (const cJSON *c = v->child; c; c = c->next)
		if (!tree_ok(c, depth + 1, max_depth))
			return false;
	return true;
}

/* cJSON stores strings NUL-terminated, so "EdDSA\u0000x" would read as "EdDSA": two
 * parsers would disagree on the same bytes. Such escapes are refused. */
static bool has_nul_escape(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] != '\\')
			continue;
		if (p[i + 1] == 'u' && i + 5 < n && p[i + 2] == '0' && p[i + 3] == '0' &&
		    p[i + 4] == '0' && p[i + 5] == '0')
			return true;
		i++; /* skip the escaped character: an escaped backslash then "u0000" is text */
	}
	return false;
}

int cn_json_parse(const char *p, size_t n, size_t max_bytes, int max_depth, cJSON **out)
{
	const char *end = NULL;
	cJSON *v;

	if (n > max_bytes)
		return CN_E_TOO_BIG;
	if (n == 0 || memchr(p, '\0', n) || has_nul_escape(p, n))
		return CN_E_MALFORMED;
	v = cJSON_ParseWithLengthOpts(p, n, &end, false);
	if (!v)
		return CN_E_MALFORMED;
	while (end < p + n && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	if (end != p + n || !tree_ok(v, 0, max_depth)) {
		cJSON_Delete(v);
		return CN_E_MALFORMED;
	}
	*out = v;
	return 0;
}

int cn_json_get_str(const cJSON *obj, const char *key, struct cn_str *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!v)
		return -ENOENT;
	if (!cJSON_IsString(v) || !v->valuestring)
		return CN_E_MALFORMED;
	*out = cn_str_from(v->valuestring);
	return 0;
}

int cn_json_get_i64(const cJSON *obj, const char *key, int64_t min, int64_t max, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	double d;

	if (!v)
		return -ENOENT;
	if (!cJSON_IsNumber(v))
		return CN_E_MALFORMED;
	d = v->valuedouble;
	if (!isfinite(d) || d != floor(d) || d > (double)CN_JSON_MAX_SAFE_INT ||
	    d < -(double)CN_JSON_MAX_SAFE_INT)
		return CN_E_MALFORMED;
	if ((int64_t)d < min || (int64_t)d > max)
		return -ERANGE;
	*out = (int64_t)d;
	return 0;
}

int cn_json_get_bool(const cJSON *obj, const char *key, bool *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!v)
		return -ENOENT;
	if (!cJSON_IsBool(v))
		return CN_E_MALFORMED;
	*out = cJSON_IsTrue(v);
	return 0;
}

int cn_json_copy_str(const cJSON *obj, const char *key, char *dst, size_t cap)
{
	struct cn_str s;
	int rc = cn_json_get_str(obj, key, &s);

	if (rc < 0)
		return rc;
	if (s.len >= cap)
		return -ENOSPC;
	return cn_str_copy(dst, cap, s);
}

cJSON *cn_json_add_i64(cJSON *obj, const char *key, int64_t v)
{
	char digits[24];

	snprintf(digits, sizeof(digits), "%lld", (long long)v);
	return cJSON_AddRawToObject(obj, key, digits);
}

int cn_json_print(const cJSON *v, struct cn_buf *out)
{
	char *s = cJSON_PrintUnformatted(v);
	int rc;

	if (!s)
		return -ENOMEM;
	rc = cn_buf_append_str(out, s);
	cJSON_free(s);
	return rc;
}
