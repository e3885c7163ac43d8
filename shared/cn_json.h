/* cn_json.h: strict, bounded helpers over cJSON for untrusted JSON. */
#ifndef CN_JSON_H
#define CN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cn_buf.h"

/* Largest integer a JSON number carries exactly (2^53 - 1). */
#define CN_JSON_MAX_SAFE_INT 9007199254740991LL

/* Parses exactly n bytes into a tree; rejects trailing bytes, depth past max_depth,
 * objects with a repeated key and strings holding \u0000. The caller frees *out with cJSON_Delete. */
int cn_json_parse(const char *p, size_t n, size_t max_bytes, int max_depth, cJSON **out);

/* Field getters: -ENOENT when absent, CN_E_MALFORMED on a wrong type or shape. */
int cn_json_get_str(const cJSON *obj, const char *key, struct cn_str *out);
int cn_json_get_i64(const cJSON *obj, const char *key, int64_t min, int64_t max, int64_t *out);
int cn_json_get_bool(const cJSON *obj, const char *key, bool *out);
/* Copies a string field into a fixed array; -ENOSPC when it does not fit. */
int cn_json_copy_str(const cJSON *obj, const char *key, char *dst, size_t cap);

/* Adds an exact integer member. cJSON prints doubles with an epsilon round-trip check,
 * which loses integers past 2^50 or so; this writes the decimal digits verbatim. */
cJSON *cn_json_add_i64(cJSON *obj, const char *key, int64_t v);

/* Appends the compact serialisation of v. */
int cn_json_print(const cJSON *v, struct cn_buf *out);

#endif
