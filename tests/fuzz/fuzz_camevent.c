/* fuzz_camevent.c: libFuzzer harness for camera push parsing (XML, multipart, JSON) and the event JSON writer. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cn_buf.h"
#include "cn_camevent.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_time.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* A string field ends inside its array. */
#define TERMINATED(arr) (memchr((arr), '\0', sizeof(arr)) != NULL)

static const char *json_str(const cJSON *obj, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

/* What every parsed event must look like. */
static void check_event(const struct cn_camevent *ev, const uint8_t *body, size_t len)
{
	bool xml = strcmp(ev->source_format, "hikvision-xml") == 0;

	CHECK(TERMINATED(ev->type_name) && TERMINATED(ev->variant) &&
	      TERMINATED(ev->source_format) && TERMINATED(ev->vendor_type) &&
	      TERMINATED(ev->camera) && TERMINATED(ev->device_ip) && TERMINATED(ev->device_mac) &&
	      TERMINATED(ev->protocol) && TERMINATED(ev->region) && TERMINATED(ev->target) &&
	      TERMINATED(ev->plate) && TERMINATED(ev->country) && TERMINATED(ev->vehicle_type) &&
	      TERMINATED(ev->direction) && TERMINATED(ev->description) &&
	      TERMINATED(ev->snapshot_name));
	CHECK(xml || strcmp(ev->source_format, "json") == 0);
	CHECK(ev->type_name[0] && ev->camera[0]);
	CHECK(ev->type == CN_CAMEV_CUSTOM ||
	      strcmp(ev->type_name, cn_camevent_type_str(ev->type)) == 0);
	CHECK(ev->type != CN_CAMEV_CUSTOM || (!xml && strchr(ev->type_name, '.')));
	CHECK(!ev->variant[0] || ev->type == CN_CAMEV_INTRUSION);
	CHECK(ev->type != CN_CAMEV_ANPR || ev->plate[0]);
	CHECK(ev->confidence >= -1 && ev->confidence <= 100);
	CHECK(ev->utc_ms >= CN_TIME_MIN_S * 1000 && ev->utc_ms <= CN_TIME_MAX_S * 1000 + 999);
	CHECK(ev->utc_offset_min >= -1439 && ev->utc_offset_min <= 1439);
	CHECK(ev->offset_known || ev->utc_offset_min == 0);
	CHECK(xml || ev->offset_known);
	CHECK(xml ? (ev->channel >= 0 && ev->channel <= 65535) : ev->channel == -1);
	CHECK(ev->device_port >= 0 && ev->device_port <= 65535 && ev->post_count >= 0);
	CHECK(!ev->device_mac[0] || strlen(ev->device_mac) == 17);
	CHECK(ev->image_parts >= 0 && ev->image_parts <= CN_CAMEVENT_MAX_PARTS);
	/* The snapshot is a span of the caller's body, never a copy. */
	switch (ev->snapshot_kind) {
	case CN_CAMEV_SNAP_NONE:
		CHECK(ev->snapshot.p == NULL && ev->snapshot.len == 0 && ev->snapshot_bytes == 0);
		CHECK(ev->image_parts == 0);
		break;
	case CN_CAMEV_SNAP_JPEG:
	case CN_CAMEV_SNAP_BASE64:
		CHECK(ev->snapshot.p && ev->snapshot.len >= 3);
		CHECK((const uint8_t *)ev->snapshot.p >= body &&
		      ev->snapshot.len <= len - (size_t)((const uint8_t *)ev->snapshot.p - body));
		CHECK(ev->snapshot_kind == CN_CAMEV_SNAP_BASE64 ? !xml : xml && ev->image_parts > 0);
		break;
	default:
		CHECK(!"bad snapshot kind");
	}
}

/* The snapshot decodes to a JPEG of the announced size. */
static void check_snapshot(const struct cn_camevent *ev)
{
	struct cn_str jpeg;
	uint8_t *buf = NULL;
	int rc;

	if (ev->snapshot_kind == CN_CAMEV_SNAP_BASE64) {
		buf = malloc(ev->snapshot_bytes);
		CHECK(buf);
		if (ev->snapshot_bytes > 0) {
			CHECK(cn_camevent_snapshot_jpeg(ev, buf, ev->snapshot_bytes - 1, &jpeg) == -ENOSPC);
		}
	}
	rc = cn_camevent_snapshot_jpeg(ev, buf, ev->snapshot_bytes, &jpeg);
	if (ev->snapshot_kind == CN_CAMEV_SNAP_NONE) {
		CHECK(rc == -ENOENT);
	} else {
		CHECK(rc == 0 && jpeg.len == ev->snapshot_bytes);
		CHECK((uint8_t)jpeg.p[0] == 0xff && (uint8_t)jpeg.p[1] == 0xd8 &&
		      (uint8_t)jpeg.p[2] == 0xff);
	}
	free(buf);
}

/* cn_camevent_to_json gives the schema's shape and agrees with the struct. */
static void check_json(struct cn_camevent *ev)
{
	cJSON *j = NULL, *src;
	struct cn_buf out;
	cJSON *again = NULL;

	CHECK(cn_camevent_to_json(ev, &j) == 0 && cJSON_IsObject(j));
	CHECK(strcmp(json_str(j, "camera"), ev->camera) == 0);
	CHECK(strcmp(json_str(j, "type"), ev->type_name) == 0);
	CHECK(strlen(json_str(j, "time")) == 24);
	CHECK(strcmp(json_str(j, "state"), ev->active ? "active" : "inactive") == 0);
	CHECK((cJSON_GetObjectItemCaseSensitive(j, "local_time") != NULL) == ev->offset_known);
	CHECK((cJSON_GetObjectItemCaseSensitive(j, "utc_offset_min") != NULL) == ev->offset_known);
	CHECK((cJSON_GetObjectItemCaseSensitive(j, "confidence") != NULL) == (ev->confidence >= 0));
	src = cJSON_GetObjectItemCaseSensitive(j, "source");
	CHECK(cJSON_IsObject(src) && strcmp(json_str(src, "format"), ev->source_format) == 0);
	/* What the edge stores and sends must be one strict JSON document again. */
	cn_buf_init(&out, 1 << 20);
	CHECK(cn_json_print(j, &out) == 0);
	CHECK(cn_json_parse(out.data, out.len, 1 << 20, 4, &again) == 0);
	cJSON_Delete(again);
	cn_buf_free(&out);
	cJSON_Delete(j);

	/* The edge's zone applies once, and only when the camera gave none. */
	if (!ev->offset_known) {
		int rc = cn_camevent_set_offset(ev, -600);
		CHECK(rc == 0 || rc == -ERANGE);
		if (rc == 0) {
			CHECK(ev->offset_known && ev->utc_offset_min == -600);
			CHECK(cn_camevent_to_json(ev, &j) == 0);
			CHECK(strlen(json_str(j, "local_time")) == 29);
			cJSON_Delete(j);
		}
	} else {
		CHECK(cn_camevent_set_offset(ev, 0) == -EEXIST);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t ctlen = nl ? (size_t)(nl - data) : size;
	const uint8_t *body = nl ? nl + 1 : data + size;
	size_t len = nl ? size - ctlen - 1 : 0;
	struct cn_camevent ev;
	char *ct, err[512];
	int rc;

	/* The Content-Type arrives as a C string (the HTTP layer's header copy); a NUL in
	 * the first line just ends it early, as it would there. */
	ct = malloc(ctlen + 1);
	CHECK(ct);
	memcpy(ct, data, ctlen);
	ct[ctlen] = '\0';
	memset(err, 'x', sizeof(err));
	rc = cn_camevent_parse(ct, body, len, &ev, err, sizeof(err));
	if (rc < 0) {
		CHECK(rc == CN_E_MALFORMED || rc == CN_E_TOO_BIG);
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
		CHECK(all_zero(&ev, sizeof(ev)));
		goto out_free_ct;
	}
	CHECK(rc == 0);
	check_event(&ev, body, len);
	check_snapshot(&ev);
	check_json(&ev);
out_free_ct:
	free(ct);
	return 0;
}
