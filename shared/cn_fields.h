/* cn_fields.h: checks untrusted JSON bodies and query strings against a table of typed fields (pure, no I/O). */
#ifndef CN_FIELDS_H
#define CN_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define CN_FIELDS_MAX_DEPTH 16
#define CN_FIELDS_MAX_ARRAY 200
#define CN_FIELDS_MAX_QUERY_VALUE 511

enum cn_ftype {
	CN_F_STR,    /* string of min..max characters (UTF-8 code points) */
	CN_F_INT,    /* integer in min..max */
	CN_F_BOOL,
	CN_F_UUID,   /* a UUID string */
	CN_F_UUIDN,  /* a UUID string or null */
	CN_F_OBJ,    /* any JSON object (checked further by its user) */
	CN_F_STRARR, /* array of min..CN_FIELDS_MAX_ARRAY strings of 1..max characters */
	CN_F_TIME,   /* RFC 3339 timestamp */
	CN_F_ARR,    /* array of min..max items of any kind (checked further by its user) */
};

struct cn_field {
	const char *name;
	enum cn_ftype type;
	int64_t min, max;
	bool required;
};

/* 8-4-4-4-12 hexadecimal digits. */
bool cn_fields_is_uuid(const char *s, size_t n);

/* body (len bytes) must be a JSON object whose members are all in fields (a table ended
 * by a NULL name) with the right types; with partial (PATCH) required fields may be
 * absent but at least one field must be there. fields NULL: the body must be empty and
 * *out stays NULL. On refusal returns -EINVAL with the reason in why. */
int cn_fields_body(const struct cn_field *fields, bool partial, const char *body, size_t len,
		   cJSON **out, char *why, size_t cap);

/* q holds decoded "name=value" fragments separated by NUL bytes (as cn_http gives them).
 * Only fields' names, each once, typed; the result is a JSON object of typed values. */
int cn_fields_query(const struct cn_field *fields, const char *q, size_t len, cJSON **out,
		    char *why, size_t cap);

#endif
