/* edge_camcfg.c: cameras document parser: every field typed, bounded and named in errors. */
#include "edge_camcfg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cn_err.h"
#include "cn_json.h"

static const char *const recmodes[] = { "continuous", "motion", "events", "off", NULL };
static const char *const transports[] = { "tcp", "udp", "auto", NULL };
static const char *const days[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun", NULL };

const char *edge_recmode_name(enum edge_recmode m)
{
	return (unsigned)m < 4 ? recmodes[m] : "?";
}

const char *edge_transport_name(enum edge_transport t)
{
	return (unsigned)t < 3 ? transports[t] : "?";
}

static bool only_members(const cJSON *o, const char *const *allowed, const char **bad)
{
	for (const cJSON *c = o->child; c; c = c->next) {
		bool ok = false;
		for (int i = 0; allowed[i] && !ok; i++)
			ok = strcmp(c->string, allowed[i]) == 0;
		if (!ok) {
			*bad = c->string;
			return false;
		}
	}
	return true;
}

static bool id_ok(const char *s)
{
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* Only rtsp:// or rtsps:// with a host and no userinfo (credentials go in their own fields,
 * so they never end up in logs or listings with the URL). */
static bool url_ok(const char *u)
{
	const char *host;

	if (strncmp(u, "rtsp://", 7) == 0)
		host = u + 7;
	else if (strncmp(u, "rtsps://", 8) == 0)
		host = u + 8;
	else
		return false;
	if (!*host || *host == '/' || *host == ':')
		return false;
	const char *end = strchr(host, '/');
	size_t n = end ? (size_t)(end - host) : strlen(host);
	if (memchr(host, '@', n))
		return false;
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static int get_string(const cJSON *o, const char *key, bool required, char *dst, size_t cap,
		      const char *cam, char *err, size_t errcap)
{
	int rc = cn_json_copy_str(o, key, dst, cap);

	if (rc == -ENOENT && !required) {
		dst[0] = '\0';
		return 0;
	}
	if (rc == -ENOENT)
		return cn_fail(CN_E_MALFORMED, err, errcap, "camera '%s': '%s' is required", cam, key);
	if (rc == -ENOSPC)
		return cn_fail(CN_E_MALFORMED, err, errcap, "camera '%s': '%s' is longer than %zu bytes", cam, key,
				cap - 1);
	if (rc < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap, "camera '%s': '%s' must be a string", cam, key);
	return 0;
}

static int get_int(const cJSON *o, const char *key, int64_t min, int64_t max, int def, int *out,
		   const char *cam, char *err, size_t errcap)
{
	int64_t v;
	int rc = cn_json_get_i64(o, key, min, max, &v);

	if (rc == -ENOENT) {
		*out = def;
		return 0;
	}
	if (rc < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap, "camera '%s': '%s' must be an integer %lld..%lld", cam,
				key, (long long)min, (long long)max);
	*out = (int)v;
	return 0;
}

static int get_enum(const cJSON *o, const char *key, const char *const *names, int def, int *out,
		    const char *cam, char *err, size_t errcap)
{
	struct cn_str s;
	int rc = cn_json_get_str(o, key, &s);

	if (rc == -ENOENT) {
		*out = def;
		return 0;
	}
	for (int i = 0; rc == 0 && names[i]; i++) {
		if (cn_str_eq_cstr(s, names[i])) {
			*out = i;
			return 0;
		}
	}
	char list[128] = "";
	size_t pos = 0;
	for (int i = 0; names[i]; i++) {
		int w = snprintf(list + pos, sizeof(list) - pos, "%s%s", i ? ", " : "", names[i]);
		if (w > 0 && (size_t)w < sizeof(list) - pos)
			pos += (size_t)w;
	}
	return cn_fail(CN_E_MALFORMED, err, errcap, "camera '%s': '%s' must be one of %s", cam, key, list);
}

/* "HH:MM" on a 15-minute boundary, 00:00..24:00, to a slot number 0..96. */
static int parse_hhmm(const char *s, int *slot)
{
	int64_t h, m;

	if (strlen(s) != 5 || s[2] != ':' ||
	    cn_str_to_i64((struct cn_str){ s, 2 }, 0, 24, &h) < 0 ||
	    cn_str_to_i64((struct cn_str){ s + 3, 2 }, 0, 59, &m) < 0 || m % 15 != 0 ||
	    (h == 24 && m != 0))
		return -EINVAL;
	*slot = (int)(h * 4 + m / 15);
	return 0;
}

static int parse_schedule(const cJSON *arr, struct edge_camera_cfg *c, char *err, size_t errcap)
{
	static const char *const members[] = { "days", "from", "to", NULL };
	int idx = 0;

	if (!arr) {
		memset(c->schedule, 0xff, sizeof(c->schedule));
		return 0;
	}
	memset(c->schedule, 0, sizeof(c->schedule));
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > 64)
		return cn_fail(CN_E_MALFORMED, err, errcap, "camera '%s': 'schedule' must be an array of at most 64 windows", c->id);
	for (const cJSON *w = arr->child; w; w = w->next, idx++) {
		const char *bad;
		char from[8], to[8];
		int fs, ts;
		const cJSON *dl = cJSON_GetObjectItemCaseSensitive(w, "days");

		if (!cJSON_IsObject(w) || !only_members(w, members, &bad))
			return cn_fail(CN_E_MALFORMED, err, errcap, "camera '%s': schedule[%d] must be {days, from, to}", c->id, idx);
		if (cn_json_copy_str(w, "from", from, sizeof(from)) < 0 || parse_hhmm(from, &fs) < 0 ||
		    cn_json_copy_str(w, "to", to, sizeof(to)) < 0 || parse_hhmm(to, &ts) < 0 || ts <= fs)
			return cn_fail(CN_E_MALFORMED, err, errcap,
					"camera '%s': schedule[%d] needs 'from' < 'to' as \"HH:MM\" on 15-minute steps",
					c->id, idx);
		if (!cJSON_IsArray(dl) || !dl->child)
			return cn_fail(CN_E_MALFORMED, err, errcap, "camera '%s': schedule[%d].days must list days", c->id, idx);
		for (const cJSON *d = dl->child; d; d = d->next) {
			int day = -1;
			for (int i = 0; days[i] && cJSON_IsString(d); i++)
				if (strcmp(d->valuestring, days[i]) == 0)
					day = i;
			if (day < 0)
				return cn_fail(CN_E_MALFORMED, err, errcap,
						"camera '%s': schedule[%d].days: use mon, tue, wed, thu, fri, sat, sun",
						c->id, idx);
			for (int s = fs; s < ts; s++) {
				int bit = day * 96 + s;
				c->schedule[bit / 8] |= (uint8_t)(1u << (bit % 8));
			}
		}
	}
	return 0;
}

static int parse_motion(const cJSON *m, struct edge_camera_cfg *c, char *err, size_t errcap)
{
	static const char *const members[] = { "enabled", "grid", "mask", "sensitivity",
					       "min_area_permille", "fps", NULL };
	const char *bad;
	const cJSON *grid, *mask;
	int rc;

	c->motion.enabled = c->recording == EDGE_REC_MOTION;
	c->motion.grid_cols = 22;
	c->motion.grid_rows = 18;
	for (int r = 0; r < 32; r++)
		c->motion.mask[r] = 0xffffffffu;
	c->motion.sensitivity = 50;
	c->motion.min_area_permille = 10;
	c->motion.fps = 5;
	if (!m)
		return 0;
	if (!cJSON_IsObject(m))
		return cn_fail(CN_E_MALFORMED, err, errcap, "camera '%s': 'motion' must be an object", c->id);
	if (!only_members(m, members, &bad))
		return cn_fail(CN_E_MALFORMED, err, errcap, "camera '%s': motion has unknown member '%s'", c->id, bad);
	rc = cn_json_get_bool(m, "enabled", &c->motion.enabled);
	if (rc < 0 && rc != -ENOENT)
		return cn_fail(CN_E_MALFORMED, err, errcap, "camera '%s': motion.enabled must be true or false", c->id);
	if ((rc = get_int(m, "sensitivity", 1, 100, 50, &c->motion.sensitivity, c->id, err, errcap)) < 0 ||
	    (rc = get_int(m, "min_area_permille", 1, 1000, 10, &c->motion.min_area_permille, c->id, err, errcap)) < 0 ||
	    (rc = get_int(m, "fps", 1, 15, 5, &c->motion.fps, c->id, err, errcap)) < 0)
		return rc;
	grid = cJSON_GetObjectItemCaseSensitive(m, "grid");
	if (grid) {
		int64_t cols, rows;
		if (!cJSON_IsArray(grid) || cJSON_GetArraySize(grid) != 2 ||
		    !cJSON_IsNumber(grid->child) || !cJSON_IsNumber(grid->child->next) ||
		    (cols = (int64_t)grid->child->valuedouble) < 1 || cols > 32 ||
		    (rows = (int64_t)grid->child->next->valuedouble) < 1 || rows > 32 ||
		    grid->child->valuedouble != (double)cols || grid->child->next->valuedouble != (double)rows)
			return cn_fail(CN_E_MALFORMED, err, errcap, "camera '%s': motion.grid must be [cols, rows], each 1..32", c->id);
		c->motion.grid_cols = (int)cols;
		c->motion.grid_rows = (int)rows;
	}
	mask = cJSON_GetObjectItemCaseSensitive(m, "mask");
	if (mask) {
		int r = 0;
		if (!cJSON_IsArray(mask) || cJSON_GetArraySize(mask) != c->motion.grid_rows)
			return cn_fail(CN_E_MALFORMED, err, errcap,
					"camera '%s': motion.mask must have one string per grid row (%d)",
					c->id, c->motion.grid_rows);
		for (const cJSON *row = mask->child; row; row = row->next, r++) {
			if (!cJSON_IsString(row) || (int)strlen(row->valuestring) != c->motion.grid_cols)
				return cn_fail(CN_E_MALFORMED, err, errcap,
						"camera '%s': motion.mask[%d] must be %d characters of '0'/'1'",
						c->id, r, c->motion.grid_cols);
			c->motion.mask[r] = 0;
			for (int col = 0; col < c->motion.grid_cols; col++) {
				char ch = row->valuestring[col];
				if (ch != '0' && ch != '1')
					return cn_fail(CN_E_MALFORMED, err, errcap,
							"camera '%s': motion.mask[%d] must be %d characters of '0'/'1'",
							c->id, r, c->motion.grid_cols);
				if (ch == '1')
					c->motion.mask[r] |= 1u << col;
			}
		}
	}
	return 0;
}

static int parse_camera(const cJSON *o, struct edge_camera_cfg *c, int idx, char *err, size_t errcap)
{
	static const char *const members[] = {
		"id", "name", "main_url", "sub_url", "username", "password", "transport", "recording",
		"schedule", "pre_record_s", "post_record_s", "retention_days", "motion", NULL
	};
	const char *bad;
	char label[32];
	int v, rc;

	memset(c, 0, sizeof(*c));
	snprintf(label, sizeof(label), "#%d", idx);
	if (!cJSON_IsObject(o))
		return cn_fail(CN_E_MALFORMED, err, errcap, "cameras[%d] must be an object", idx);
	if ((rc = get_string(o, "id", true, c->id, sizeof(c->id), label, err, errcap)) < 0)
		return rc;
	if (!id_ok(c->id))
		return cn_fail(CN_E_MALFORMED, err, errcap, "cameras[%d]: id '%s' must be [a-z0-9][a-z0-9_-]*", idx, c->id);
	if (!only_members(o, members, &bad))
		return cn_fail(CN_E_MALFORMED, err, errcap, "camera '%s': unknown member '%s'", c->id, bad);
	if ((rc = get_string(o, "name", false, c->name, sizeof(c->name), c->id, err, errcap)) < 0 ||
	    (rc = get_string(o, "main_url", true, c->main_url, sizeof(c->main_url), c->id, err, errcap)) < 0 ||
	    (rc = get_string(o, "sub_url", false, c->sub_url, sizeof(c->sub_url), c->id, err, errcap)) < 0 ||
	    (rc = get_string(o, "username", false, c->username, sizeof(c->username), c->id, err, errcap)) < 0 ||
	    (rc = get_string(o, "password", false, c->password, sizeof(c->password), c->id, err, errcap)) < 0)
		return rc;
	if (!c->name[0])
		cn_strlcpy(c->name, c->id, sizeof(c->name));
	if (!url_ok(c->main_url))
		return cn_fail(CN_E_MALFORMED, err, errcap,
				"camera '%s': main_url must be rtsp://host[:port]/path without credentials",
				c->id);
	if (c->sub_url[0] && !url_ok(c->sub_url))
		return cn_fail(CN_E_MALFORMED, err, errcap,
				"camera '%s': sub_url must be rtsp://host[:port]/path without credentials",
				c->id);
	if ((rc = get_enum(o, "transport", transports, EDGE_TRANSPORT_TCP, &v, c->id, err, errcap)) < 0)
		return rc;
	c->transport = (enum edge_transport)v;
	if ((rc = get_enum(o, "recording", recmodes, EDGE_REC_CONTINUOUS, &v, c->id, err, errcap)) < 0)
		return rc;
	c->recording = (enum edge_recmode)v;
	if ((rc = get_int(o, "pre_record_s", 0, 60, 5, &c->pre_record_s, c->id, err, errcap)) < 0 ||
	    (rc = get_int(o, "post_record_s", 0, 3600, 10, &c->post_record_s, c->id, err, errcap)) < 0 ||
	    (rc = get_int(o, "retention_days", 1, 3650, 30, &c->retention_days, c->id, err, errcap)) < 0)
		return rc;
	if ((rc = parse_schedule(cJSON_GetObjectItemCaseSensitive(o, "schedule"), c, err, errcap)) < 0)
		return rc;
	return parse_motion(cJSON_GetObjectItemCaseSensitive(o, "motion"), c, err, errcap);
}

int edge_camcfg_parse(const char *json, size_t len, struct edge_camcfg *out, char *err,
		      size_t errcap)
{
	static const char *const members[] = { "version", "cameras", NULL };
	cJSON *root = NULL;
	const cJSON *cams;
	const char *bad;
	int64_t version = 0;
	int rc, i = 0;

	memset(out, 0, sizeof(*out));
	rc = cn_json_parse(json, len, EDGE_CAMCFG_MAX_BYTES, 16, &root);
	if (rc < 0)
		return cn_fail(CN_E_MALFORMED, err, errcap, "cameras document is not valid JSON (or over %d bytes, too deep, or has a repeated key)",
				EDGE_CAMCFG_MAX_BYTES);
	if (!cJSON_IsObject(root) || !only_members(root, members, &bad)) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "cameras document must be {\"version\": N, \"cameras\": [...]}");
		goto out_free_root;
	}
	rc = cn_json_get_i64(root, "version", 0, INT32_MAX, &version);
	if (rc < 0 && rc != -ENOENT) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "cameras document: 'version' must be a non-negative integer");
		goto out_free_root;
	}
	out->version = (int)version;
	cams = cJSON_GetObjectItemCaseSensitive(root, "cameras");
	if (!cJSON_IsArray(cams)) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "cameras document: 'cameras' must be an array");
		goto out_free_root;
	}
	if (cJSON_GetArraySize(cams) > EDGE_MAX_CAMERAS) {
		rc = cn_fail(CN_E_MALFORMED, err, errcap, "cameras document: more than %d cameras", EDGE_MAX_CAMERAS);
		goto out_free_root;
	}
	for (const cJSON *c = cams->child; c; c = c->next, i++) {
		if ((rc = parse_camera(c, &out->cameras[i], i, err, errcap)) < 0)
			goto out_free_root;
		for (int j = 0; j < i; j++) {
			if (strcmp(out->cameras[j].id, out->cameras[i].id) == 0) {
				rc = cn_fail(CN_E_MALFORMED, err, errcap, "camera '%s' is listed twice", out->cameras[i].id);
				goto out_free_root;
			}
		}
		out->ncameras = i + 1;
	}
	rc = 0;
out_free_root:
	cJSON_Delete(root);
	return rc;
}

bool edge_camcfg_scheduled(const struct edge_camera_cfg *c, int64_t utc_ms, int utc_offset_min)
{
	int64_t local_min = utc_ms / 60000 + utc_offset_min;
	/* 1970-01-01 was a Thursday: day 3 when Monday is 0. */
	int64_t day = ((local_min / 1440) % 7 + 7 + 3) % 7;
	int64_t slot = ((local_min % 1440) + 1440) % 1440 / 15;
	int bit = (int)(day * 96 + slot);

	return (c->schedule[bit / 8] >> (bit % 8)) & 1;
}

bool edge_camcfg_same_ingest(const struct edge_camera_cfg *a, const struct edge_camera_cfg *b)
{
	return strcmp(a->main_url, b->main_url) == 0 && strcmp(a->sub_url, b->sub_url) == 0 &&
	       strcmp(a->username, b->username) == 0 && strcmp(a->password, b->password) == 0 &&
	       a->transport == b->transport;
}
