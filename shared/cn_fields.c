/* cn_fields.c: typed field tables for request bodies and query strings: precise refusals, nothing unknown passes. */
#include "cn_fields.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_time.h"

bool cn_fields_is_uuid(const char *s, size_t n)
{
	size_t i;

	if (n != 36)
		return false;
	for (i = 0; i < n; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

static size_t utf8_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

static int check_value(const struct cn_field *f, const cJSON *v, const char *where, char *why,
		       size_t cap)
{
	switch (f->type) {
	case CN_F_STR: {
		size_t n;

		if (!cJSON_IsString(v))
			return cn_fail(-EINVAL, why, cap, "%s '%s': must be a string", where, f->name);
		n = utf8_len(v->valuestring);
		if ((int64_t)n < f->min || (int64_t)n > f->max)
			return cn_fail(-EINVAL, why, cap,
				       "%s '%s': must be %lld to %lld characters long (has %zu)", where,
				       f->name, (long long)f->min, (long long)f->max, n);
		return 0;
	}
	case CN_F_INT: {
		double d;

		if (!cJSON_IsNumber(v))
			return cn_fail(-EINVAL, why, cap, "%s '%s': must be an integer", where, f->name);
		d = v->valuedouble;
		/* range first: casting an out-of-range double to an integer is undefined */
		if (!(d >= (double)f->min && d <= (double)f->max))
			return cn_fail(-EINVAL, why, cap, "%s '%s': must be between %lld and %lld", where,
				       f->name, (long long)f->min, (long long)f->max);
		if (d != (double)(int64_t)d)
			return cn_fail(-EINVAL, why, cap, "%s '%s': must be an integer", where, f->name);
		return 0;
	}
	case CN_F_BOOL:
		if (!cJSON_IsBool(v))
			return cn_fail(-EINVAL, why, cap, "%s '%s': must be true or false", where,
				       f->name);
		return 0;
	case CN_F_UUIDN:
		if (cJSON_IsNull(v))
			return 0;
		/* fall through */
	case CN_F_UUID:
		if (!cJSON_IsString(v) ||
		    !cn_fields_is_uuid(v->valuestring, strlen(v->valuestring)))
			return cn_fail(-EINVAL, why, cap, "%s '%s': must be a UUID%s", where, f->name,
				       f->type == CN_F_UUIDN ? " or null" : "");
		return 0;
	case CN_F_OBJ:
		if (!cJSON_IsObject(v))
			return cn_fail(-EINVAL, why, cap, "%s '%s': must be an object", where, f->name);
		return 0;
	case CN_F_ARR:
		if (!cJSON_IsArray(v))
			return cn_fail(-EINVAL, why, cap, "%s '%s': must be an array", where, f->name);
		if (cJSON_GetArraySize(v) < f->min || cJSON_GetArraySize(v) > f->max)
			return cn_fail(-EINVAL, why, cap, "%s '%s': must have %lld to %lld items", where,
				       f->name, (long long)f->min, (long long)f->max);
		return 0;
	case CN_F_STRARR: {
		const cJSON *it;
		int n = 0;

		if (!cJSON_IsArray(v))
			return cn_fail(-EINVAL, why, cap, "%s '%s': must be an array of strings", where,
				       f->name);
		cJSON_ArrayForEach(it, v) {
			size_t len;

			if (!cJSON_IsString(it))
				return cn_fail(-EINVAL, why, cap, "%s '%s'[%d]: must be a string", where,
					       f->name, n);
			len = utf8_len(it->valuestring);
			if (len < 1 || (int64_t)len > f->max)
				return cn_fail(-EINVAL, why, cap,
					       "%s '%s'[%d]: must be 1 to %lld characters long", where,
					       f->name, n, (long long)f->max);
			if (++n > CN_FIELDS_MAX_ARRAY)
				return cn_fail(-EINVAL, why, cap, "%s '%s': more than %d items", where,
					       f->name, CN_FIELDS_MAX_ARRAY);
		}
		if (n < f->min)
			return cn_fail(-EINVAL, why, cap, "%s '%s': needs at least %lld items", where,
				       f->name, (long long)f->min);
		return 0;
	}
	case CN_F_TIME: {
		int64_t ms;

		if (!cJSON_IsString(v) ||
		    cn_time_parse_rfc3339(v->valuestring, strlen(v->valuestring), &ms) < 0)
			return cn_fail(-EINVAL, why, cap,
				       "%s '%s': must be an RFC 3339 time like 2026-01-31T12:00:00Z",
				       where, f->name);
		return 0;
	}
	}
	return cn_fail(-EINVAL, why, cap, "%s '%s': unsupported field type", where, f->name);
}

static const struct cn_field *find_field(const struct cn_field *fields, const char *name)
{
	for (; fields && fields->name; fields++)
		if (strcmp(fields->name, name) == 0)
			return fields;
	return NULL;
}

int cn_fields_body(const struct cn_field *fields, bool partial, const char *body, size_t len,
		   cJSON **out, char *why, size_t cap)
{
	const struct cn_field *f;
	const cJSON *it;
	cJSON *o = NULL;
	int rc;

	*out = NULL;
	if (!fields) {
		if (len)
			return cn_fail(-EINVAL, why, cap, "this operation takes no request body");
		return 0;
	}
	if (!len)
		return cn_fail(-EINVAL, why, cap, "a JSON object body is required");
	if ((rc = cn_json_parse(body, len, len, CN_FIELDS_MAX_DEPTH, &o)) < 0)
		return cn_fail(-EINVAL, why, cap, "body is not valid JSON (%s)", cn_strerror(rc));
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return cn_fail(-EINVAL, why, cap, "body must be a JSON object");
	}
	cJSON_ArrayForEach(it, o) {
		if (!(f = find_field(fields, it->string))) {
			char names[400] = "";
			size_t used = 0;

			for (f = fields; f->name && used < sizeof(names); f++) {
				int n = snprintf(names + used, sizeof(names) - used, "%s%s",
						 used ? ", " : "", f->name);

				if (n < 0 || (size_t)n >= sizeof(names) - used)
					break;
				used += (size_t)n;
			}
			rc = cn_fail(-EINVAL, why, cap, "unknown field '%.100s' (known: %s)",
				     it->string, names);
			goto out_free;
		}
		if ((rc = check_value(f, it, "field", why, cap)) < 0)
			goto out_free;
	}
	if (!partial) {
		for (f = fields; f->name; f++)
			if (f->required && !cJSON_GetObjectItemCaseSensitive(o, f->name)) {
				rc = cn_fail(-EINVAL, why, cap, "field '%s' is required", f->name);
				goto out_free;
			}
	} else if (!o->child) {
		rc = cn_fail(-EINVAL, why, cap, "PATCH body names no field to change");
		goto out_free;
	}
	*out = o;
	return 0;
out_free:
	cJSON_Delete(o);
	return rc;
}

int cn_fields_query(const struct cn_field *fields, const char *q, size_t len, cJSON **out,
		    char *why, size_t cap)
{
	const char *end = q + len;
	cJSON *o = cJSON_CreateObject();
	int rc = 0;

	*out = NULL;
	if (!o)
		return -ENOMEM;
	while (q && q < end) {
		size_t flen = strnlen(q, (size_t)(end - q));
		const char *eq = memchr(q, '=', flen);
		char name[64], value[CN_FIELDS_MAX_QUERY_VALUE + 1];
		const struct cn_field *f;
		cJSON *v = NULL;
		size_t nlen, vlen;

		if (flen == 0) {
			q++;
			continue;
		}
		if (!eq || (nlen = (size_t)(eq - q)) >= sizeof(name) ||
		    (vlen = flen - nlen - 1) >= sizeof(value)) {
			rc = cn_fail(-EINVAL, why, cap, "malformed or oversized query parameter '%.*s'",
				     (int)(flen > 64 ? 64 : flen), q);
			break;
		}
		memcpy(name, q, nlen);
		name[nlen] = '\0';
		memcpy(value, eq + 1, vlen);
		value[vlen] = '\0';
		q += flen + 1;
		if (!(f = find_field(fields, name))) {
			rc = cn_fail(-EINVAL, why, cap, "unknown query parameter '%s'", name);
			break;
		}
		if (cJSON_GetObjectItemCaseSensitive(o, name)) {
			rc = cn_fail(-EINVAL, why, cap, "query parameter '%s' given twice", name);
			break;
		}
		if (f->type == CN_F_INT) {
			int64_t n;

			if (cn_str_to_i64(cn_str_from(value), f->min, f->max, &n) < 0) {
				rc = cn_fail(-EINVAL, why, cap,
					     "query parameter '%s': must be an integer between %lld and %lld",
					     name, (long long)f->min, (long long)f->max);
				break;
			}
			v = cn_json_add_i64(o, name, n);
		} else if (f->type == CN_F_BOOL) {
			if (strcmp(value, "true") && strcmp(value, "false")) {
				rc = cn_fail(-EINVAL, why, cap,
					     "query parameter '%s': must be true or false", name);
				break;
			}
			v = cJSON_AddBoolToObject(o, name, value[0] == 't');
		} else {
			cJSON *s = cJSON_CreateString(value);

			if (s && (rc = check_value(f, s, "query parameter", why, cap)) < 0) {
				cJSON_Delete(s);
				break;
			}
			if (s)
				cJSON_AddItemToObject(o, name, s);
			v = s;
		}
		if (!v) {
			rc = -ENOMEM;
			break;
		}
	}
	if (rc < 0) {
		cJSON_Delete(o);
		return rc;
	}
	*out = o;
	return 0;
}
