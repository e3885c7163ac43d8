/* cn_envelope.c: encode and strictly decode uplink envelopes; no I/O. */
#include "cn_envelope.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cn_base64.h"
#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_time.h"

static bool type_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CN_ENV_TYPE_MAX || s[0] < 'a' || s[0] > 'z' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
			return false;
		if (c == '.' && s[i + 1] == '.')
			return false;
	}
	return true;
}

static bool id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CN_ENV_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

int cn_envelope_decode(const char *p, size_t n, struct cn_envelope *env, char *err,
		       size_t errcap)
{
	static const char *const members[] = { "v", "type", "id", "seq", "time", "body" };
	cJSON *root = NULL, *body;
	struct cn_str s;
	int64_t v, seq;
	int rc;

	memset(env, 0, sizeof(*env));
	rc = cn_json_parse(p, n, CN_ENV_MAX_BYTES, CN_ENV_MAX_DEPTH, &root);
	if (rc == CN_E_TOO_BIG) {
		if (err && errcap)
			snprintf(err, errcap, "envelope larger than %d bytes", CN_ENV_MAX_BYTES);
		return CN_E_TOO_BIG;
	}
	if (rc < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap,
				"envelope is not one JSON document (syntax, nesting deeper than %d, or a repeated key)",
				CN_ENV_MAX_DEPTH);
	if (!cJSON_IsObject(root)) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "envelope is not a JSON object");
		goto out_free_root;
	}
	for (const cJSON *c = root->child; c; c = c->next) {
		size_t i;
		for (i = 0; i < sizeof(members) / sizeof(*members); i++)
			if (strcmp(c->string, members[i]) == 0)
				break;
		if (i == sizeof(members) / sizeof(*members)) {
			rc = cn_fail(CN_E_MALFORMED, err, errcap, "envelope has unknown member '%.40s'", c->string);
			goto out_free_root;
		}
	}
	rc = cn_json_get_i64(root, "v", 0, INT32_MAX, &v);
	if (rc < 0 || v != CN_ENV_VERSION) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "envelope 'v' must be %d", CN_ENV_VERSION);
		goto out_free_root;
	}
	if (cn_json_copy_str(root, "type", env->type, sizeof(env->type)) < 0 || !type_ok(env->type)) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap,
			      "envelope 'type' must be a name of 1-%d chars [a-z0-9_.] starting with a letter",
			      CN_ENV_TYPE_MAX);
		goto out_free_root;
	}
	if (cn_json_copy_str(root, "id", env->id, sizeof(env->id)) < 0 || !id_ok(env->id)) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "envelope 'id' must be 1-%d chars [A-Za-z0-9_-]",
			      CN_ENV_ID_MAX);
		goto out_free_root;
	}
	if (cn_json_get_i64(root, "seq", 0, CN_JSON_MAX_SAFE_INT, &seq) < 0) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "envelope 'seq' must be an integer 0..2^53-1");
		goto out_free_root;
	}
	env->seq = (uint64_t)seq;
	if (cn_json_get_str(root, "time", &s) < 0 ||
	    cn_time_parse_rfc3339(s.p, s.len, &env->time_ms) < 0) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "envelope 'time' must be an RFC 3339 date-time");
		goto out_free_root;
	}
	body = cJSON_GetObjectItemCaseSensitive(root, "body");
	if (!cJSON_IsObject(body)) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "envelope 'body' must be a JSON object");
		goto out_free_root;
	}
	env->body = cJSON_DetachItemViaPointer(root, body);
	rc = 0;
out_free_root:
	cJSON_Delete(root);
	if (rc < 0)
		memset(env, 0, sizeof(*env));
	return rc;
}

int cn_envelope_encode(const struct cn_envelope *env, struct cn_buf *out)
{
	char ts[40];
	cJSON *root;
	int rc;

	if (!type_ok(env->type) || !id_ok(env->id) || env->seq > (uint64_t)CN_JSON_MAX_SAFE_INT ||
	    (env->body && !cJSON_IsObject(env->body)))
		return -EINVAL;
	if ((rc = cn_time_format_rfc3339(env->time_ms, ts, sizeof(ts))) < 0)
		return rc;
	root = cJSON_CreateObject();
	if (!root)
		return -ENOMEM;
	rc = -ENOMEM;
	if (!cJSON_AddNumberToObject(root, "v", CN_ENV_VERSION) ||
	    !cJSON_AddStringToObject(root, "type", env->type) ||
	    !cJSON_AddStringToObject(root, "id", env->id) ||
	    !cn_json_add_i64(root, "seq", (int64_t)env->seq) ||
	    !cJSON_AddStringToObject(root, "time", ts))
		goto out_free_root;
	/* Borrow the body for printing rather than copying it. */
	if (env->body) {
		cJSON_AddItemReferenceToObject(root, "body", env->body);
	} else if (!cJSON_AddObjectToObject(root, "body")) {
		goto out_free_root;
	}
	{
		size_t before = out->len;
		rc = cn_json_print(root, out);
		if (rc == 0 && out->len - before > CN_ENV_MAX_BYTES) {
			out->len = before;
			out->data[before] = '\0';
			rc = CN_E_TOO_BIG;
		}
	}
out_free_root:
	cJSON_Delete(root);
	return rc;
}

int cn_envelope_make(struct cn_envelope *env, const char *type, uint64_t seq, cJSON *body)
{
	int rc;

	memset(env, 0, sizeof(*env));
	if (cn_strlcpy(env->type, type, sizeof(env->type)) < 0 || !type_ok(env->type))
		return -EINVAL;
	if ((rc = cn_random_id(env->id, sizeof(env->id))) < 0)
		return rc;
	env->seq = seq;
	env->time_ms = cn_time_wall_ms();
	env->body = body ? body : cJSON_CreateObject();
	return env->body ? 0 : -ENOMEM;
}

void cn_envelope_clear(struct cn_envelope *env)
{
	if (!env)
		return;
	cJSON_Delete(env->body);
	env->body = NULL;
}
