/* fuzz_fields.c: libFuzzer harness for REST request checking (JSON bodies and query strings against field tables). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cn_fields.h"
#include "fuzz_check.h"

/* One of each kind, shaped like canopy-central's operations. */
static const struct cn_field fields[] = {
	{ "name", CN_F_STR, 1, 128, true },
	{ "n", CN_F_INT, -5, 1000, false },
	{ "big", CN_F_INT, INT64_MIN / 2, INT64_MAX / 2, false },
	{ "flag", CN_F_BOOL, 0, 0, false },
	{ "id", CN_F_UUID, 0, 0, false },
	{ "parent_id", CN_F_UUIDN, 0, 0, false },
	{ "config", CN_F_OBJ, 0, 0, false },
	{ "scopes", CN_F_STRARR, 1, 64, false },
	{ "since", CN_F_TIME, 0, 0, false },
	{ NULL, CN_F_STR, 0, 0, false },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[512];
	cJSON *out = NULL;
	int rc;

	if (size == 0)
		return 0;
	/* first byte picks the check; the rest is the input */
	switch (data[0] % 3) {
	case 0:
	case 1:
		why[0] = '\0';
		rc = cn_fields_body(fields, data[0] % 3 == 1, (const char *)data + 1, size - 1, &out,
				    why, sizeof(why));
		break;
	default:
		why[0] = '\0';
		rc = cn_fields_query(fields, (const char *)data + 1, size - 1, &out, why, sizeof(why));
		break;
	}
	if (rc < 0) {
		CHECK(out == NULL);
		CHECK(why[0] != '\0' || rc == -ENOMEM);
		return 0;
	}
	CHECK(cJSON_IsObject(out));
	/* whatever passed names only known fields */
	for (const cJSON *it = out->child; it; it = it->next) {
		int known = 0;

		for (const struct cn_field *f = fields; f->name; f++)
			known |= strcmp(f->name, it->string) == 0;
		CHECK(known);
	}
	cJSON_Delete(out);
	return 0;
}
