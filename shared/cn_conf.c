/* cn_conf.c: config parser: defaults from the table, then the file, every error with its line. */
#include "cn_conf.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cn_err.h"

static void *field(void *conf, const struct cn_conf_directive *d)
{
	return (char *)conf + d->offset;
}

static int parse_suffixed(struct cn_str v, const struct cn_conf_directive *d, int64_t *out,
			  const char **why)
{
	static const struct {
		const char *sfx;
		int64_t mul;
	} sizes[] = { { "", 1 },
		      { "K", 1024 },
		      { "M", 1024 * 1024 },
		      { "G", 1024LL * 1024 * 1024 },
		      { "T", 1024LL * 1024 * 1024 * 1024 } },
	  durs[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 } };
	size_t digits = 0, i;
	int64_t num;

	while (digits < v.len && ((v.p[digits] >= '0' && v.p[digits] <= '9') ||
				  (digits == 0 && v.p[0] == '-')))
		digits++;
	struct cn_str unit = { v.p + digits, v.len - digits };
	if (cn_str_to_i64((struct cn_str){ v.p, digits }, INT64_MIN, INT64_MAX, &num) < 0) {
		*why = "is not a number";
		return -EINVAL;
	}
	if (d->type == CN_CONF_INT) {
		if (unit.len) {
			*why = "is not an integer";
			return -EINVAL;
		}
		*out = num;
		return 0;
	}
	for (i = 0; i < 5; i++) {
		const char *sfx = d->type == CN_CONF_SIZE ? sizes[i].sfx : durs[i].sfx;
		int64_t mul = d->type == CN_CONF_SIZE ? sizes[i].mul : durs[i].mul;
		if (!cn_str_eq_cstr(unit, sfx))
			continue;
		if (num > INT64_MAX / mul || num < INT64_MIN / mul) {
			*why = "is too large";
			return -ERANGE;
		}
		*out = num * mul;
		return 0;
	}
	*why = d->type == CN_CONF_SIZE ? "has an unknown size unit (use K, M, G or T)"
				       : "needs a unit (ms, s, m, h or d)";
	return -EINVAL;
}

/* Stores the value text v for directive d; on error writes the reason to err. */
static int set_value(const struct cn_conf_directive *d, void *conf, struct cn_str v,
		     const char *where, char *err, size_t errcap)
{
	const char *why = NULL;
	int64_t num;

	switch (d->type) {
	case CN_CONF_INT:
	case CN_CONF_SIZE:
	case CN_CONF_DURATION:
		if (parse_suffixed(v, d, &num, &why) < 0)
			return cn_fail(CN_E_CONFIG, err, errcap, "%s: '%s': '%.*s' %s", where, d->name,
					 (int)v.len, v.p, why);
		if (num < d->min || num > d->max)
			return cn_fail(CN_E_CONFIG, err, errcap,
					 "%s: '%s': %.*s is out of range %lld..%lld", where,
					 d->name, (int)v.len, v.p, (long long)d->min,
					 (long long)d->max);
		*(int64_t *)field(conf, d) = num;
		return 0;
	case CN_CONF_BOOL:
		if (cn_str_eq_cstr(v, "true") || cn_str_eq_cstr(v, "yes") || cn_str_eq_cstr(v, "on")) {
			*(bool *)field(conf, d) = true;
			return 0;
		}
		if (cn_str_eq_cstr(v, "false") || cn_str_eq_cstr(v, "no") ||
		    cn_str_eq_cstr(v, "off")) {
			*(bool *)field(conf, d) = false;
			return 0;
		}
		return cn_fail(CN_E_CONFIG, err, errcap, "%s: '%s': '%.*s' is not a boolean (true or false)",
				 where, d->name, (int)v.len, v.p);
	case CN_CONF_STRING: {
		char **slot = field(conf, d);
		char *copy;
		if ((int64_t)v.len < d->min || (int64_t)v.len > d->max)
			return cn_fail(CN_E_CONFIG, err, errcap,
					 "%s: '%s': length %zu is out of range %lld..%lld", where,
					 d->name, v.len, (long long)d->min, (long long)d->max);
		if (memchr(v.p, '\0', v.len))
			return cn_fail(CN_E_CONFIG, err, errcap, "%s: '%s': contains a NUL byte", where,
					 d->name);
		copy = malloc(v.len + 1);
		if (!copy)
			return cn_fail(CN_E_CONFIG, err, errcap, "%s: out of memory", where);
		memcpy(copy, v.p, v.len);
		copy[v.len] = '\0';
		free(*slot);
		*slot = copy;
		return 0;
	}
	case CN_CONF_ENUM: {
		char list[512];
		size_t pos = 0;
		for (int i = 0; d->choices[i]; i++) {
			if (cn_str_eq_cstr(v, d->choices[i])) {
				*(int *)field(conf, d) = i;
				return 0;
			}
			int w = snprintf(list + pos, sizeof(list) - pos, "%s%s", i ? ", " : "",
					 d->choices[i]);
			if (w > 0 && (size_t)w < sizeof(list) - pos)
				pos += (size_t)w;
		}
		list[pos] = '\0';
		return cn_fail(CN_E_CONFIG, err, errcap, "%s: '%s': '%.*s' is not one of %s", where, d->name,
				 (int)v.len, v.p, list);
	}
	}
	return cn_fail(CN_E_CONFIG, err, errcap, "%s: '%s': bad directive type", where, d->name);
}

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

/* Unquotes "..." in place into out (bounded); supports \" \\ \n \t. */
static int unquote(struct cn_str v, char *out, size_t cap, struct cn_str *res, struct cn_str *rest)
{
	size_t o = 0, i;

	for (i = 1; i < v.len; i++) {
		char c = v.p[i];
		if (c == '"') {
			*res = (struct cn_str){ out, o };
			*rest = (struct cn_str){ v.p + i + 1, v.len - i - 1 };
			return 0;
		}
		if (c == '\\') {
			if (++i == v.len)
				break;
			c = v.p[i];
			if (c == 'n')
				c = '\n';
			else if (c == 't')
				c = '\t';
			else if (c != '"' && c != '\\')
				return -EINVAL;
		}
		if (o + 1 >= cap)
			return -EINVAL;
		out[o++] = c;
	}
	return -EINVAL;
}

static void apply_defaults(const struct cn_conf_directive *t, size_t n, void *conf)
{
	for (size_t i = 0; i < n; i++) {
		char err[256];
		/* Every accepted string must dump (escaped, quoted) within the line limit so
		 * that -t output always loads again. */
		if (t[i].type == CN_CONF_STRING &&
		    t[i].max * 2 + (int64_t)strlen(t[i].name) + 8 > CN_CONF_MAX_LINE)
			abort();
		if (set_value(&t[i], conf, cn_str_from(t[i].def ? t[i].def : ""), "default", err,
			      sizeof(err)) < 0)
			abort(); /* a bad default is a programming error caught by any test */
	}
}

int cn_conf_load_text(const struct cn_conf_directive *t, size_t n, void *conf, const char *text,
		      size_t len, const char *name, char *err, size_t errcap)
{
	int *seen_line = calloc(n ? n : 1, sizeof(int));
	char qbuf[CN_CONF_MAX_LINE];
	size_t pos = 0;
	int line = 0, rc = 0;

	if (!seen_line)
		return cn_fail(CN_E_CONFIG, err, errcap, "%s: out of memory", name);
	apply_defaults(t, n, conf);
	if (len > CN_CONF_MAX_FILE) {
		rc = cn_fail(CN_E_CONFIG, err, errcap, "%s: larger than %d bytes", name, CN_CONF_MAX_FILE);
		goto out_free_seen;
	}
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		struct cn_str l = { text + pos, end - pos }, key, val;
		char where[300];
		size_t k;

		line++;
		pos = end + 1;
		snprintf(where, sizeof(where), "%s:%d", name, line);
		if (l.len > CN_CONF_MAX_LINE) {
			rc = cn_fail(CN_E_CONFIG, err, errcap, "%s: line longer than %d bytes", where,
				       CN_CONF_MAX_LINE);
			goto out_free_seen;
		}
		if (memchr(l.p, '\0', l.len)) {
			rc = cn_fail(CN_E_CONFIG, err, errcap, "%s: NUL byte in line", where);
			goto out_free_seen;
		}
		l = cn_str_trim(l);
		if (l.len == 0 || l.p[0] == '#' || l.p[0] == ';')
			continue;
		for (k = 0; k < l.len && key_char(l.p[k]); k++)
			;
		key = (struct cn_str){ l.p, k };
		val = cn_str_trim((struct cn_str){ l.p + k, l.len - k });
		if (k == 0 || val.len == 0 || val.p[0] != '=') {
			rc = cn_fail(CN_E_CONFIG, err, errcap, "%s: expected 'key = value', got '%.*s'", where,
				       (int)(l.len > 60 ? 60 : l.len), l.p);
			goto out_free_seen;
		}
		val = cn_str_trim((struct cn_str){ val.p + 1, val.len - 1 });
		if (val.len && val.p[0] == '"') {
			struct cn_str rest;
			if (unquote(val, qbuf, sizeof(qbuf), &val, &rest) < 0) {
				rc = cn_fail(CN_E_CONFIG, err, errcap, "%s: '%.*s': bad quoted string", where,
					       (int)key.len, key.p);
				goto out_free_seen;
			}
			rest = cn_str_trim(rest);
			if (rest.len && rest.p[0] != '#') {
				rc = cn_fail(CN_E_CONFIG, err, errcap, "%s: '%.*s': text after closing quote",
					       where, (int)key.len, key.p);
				goto out_free_seen;
			}
		} else {
			/* An unquoted value ends at a " #" comment. */
			for (size_t i = 1; i < val.len; i++) {
				if (val.p[i] == '#' && (val.p[i - 1] == ' ' || val.p[i - 1] == '\t')) {
					val = cn_str_trim((struct cn_str){ val.p, i });
					break;
				}
			}
		}
		size_t di;
		for (di = 0; di < n; di++)
			if (cn_str_eq_cstr(key, t[di].name))
				break;
		if (di == n) {
			rc = cn_fail(CN_E_CONFIG, err, errcap, "%s: unknown key '%.*s'", where, (int)key.len,
				       key.p);
			goto out_free_seen;
		}
		if (seen_line[di]) {
			rc = cn_fail(CN_E_CONFIG, err, errcap, "%s: '%s' set again (first set on line %d)",
				       where, t[di].name, seen_line[di]);
			goto out_free_seen;
		}
		seen_line[di] = line;
		if ((rc = set_value(&t[di], conf, val, where, err, errcap)) < 0)
			goto out_free_seen;
	}
out_free_seen:
	free(seen_line);
	return rc;
}

int cn_conf_load(const struct cn_conf_directive *t, size_t n, void *conf, const char *path,
		 char *err, size_t errcap)
{
	struct cn_buf text;
	char chunk[8192];
	int fd, rc = 0;
	ssize_t got;

	if (!path)
		return cn_conf_load_text(t, n, conf, "", 0, "defaults", err, errcap);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cn_fail(CN_E_CONFIG, err, errcap, "cannot open config '%s': %s", path, strerror(errno));
	cn_buf_init(&text, CN_CONF_MAX_FILE);
	while ((got = read(fd, chunk, sizeof(chunk))) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = cn_fail(CN_E_CONFIG, err, errcap, "cannot read config '%s': %s", path,
				       strerror(errno));
			goto out_close;
		}
		if (cn_buf_append(&text, chunk, (size_t)got) < 0) {
			rc = cn_fail(CN_E_CONFIG, err, errcap, "%s: larger than %d bytes", path,
				       CN_CONF_MAX_FILE);
			goto out_close;
		}
	}
	rc = cn_conf_load_text(t, n, conf, text.data ? text.data : "", text.len, path, err, errcap);
out_close:
	close(fd);
	cn_buf_free(&text);
	return rc;
}

static int dump_string(struct cn_buf *out, const char *s)
{
	int rc = cn_buf_append(out, "\"", 1);

	for (; rc == 0 && *s; s++) {
		if (*s == '"' || *s == '\\')
			rc = cn_buf_printf(out, "\\%c", *s);
		else if (*s == '\n')
			rc = cn_buf_append_str(out, "\\n");
		else if (*s == '\t')
			rc = cn_buf_append_str(out, "\\t");
		else
			rc = cn_buf_append(out, s, 1);
	}
	return rc ? rc : cn_buf_append(out, "\"", 1);
}

static int dump_duration(struct cn_buf *out, int64_t ms)
{
	static const struct {
		const char *u;
		int64_t ms;
	} units[] = { { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 } };

	for (size_t i = 0; i < 4; i++)
		if (ms != 0 && ms % units[i].ms == 0)
			return cn_buf_printf(out, "%lld%s", (long long)(ms / units[i].ms), units[i].u);
	return cn_buf_printf(out, "%lldms", (long long)ms);
}

static int dump_size(struct cn_buf *out, int64_t b)
{
	static const char *const u[] = { "T", "G", "M", "K" };

	for (int i = 0; i < 4; i++) {
		int64_t m = 1LL << (10 * (4 - i));
		if (b != 0 && b % m == 0)
			return cn_buf_printf(out, "%lld%s", (long long)(b / m), u[i]);
	}
	return cn_buf_printf(out, "%lld", (long long)b);
}

int cn_conf_dump(const struct cn_conf_directive *t, size_t n, const void *conf,
		 struct cn_buf *out)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct cn_conf_directive *d = &t[i];
		const void *f = (const char *)conf + d->offset;
		rc = cn_buf_printf(out, "# %s\n%s = ", d->help, d->name);
		if (rc)
			break;
		switch (d->type) {
		case CN_CONF_INT:
			rc = cn_buf_printf(out, "%lld", (long long)*(const int64_t *)f);
			break;
		case CN_CONF_SIZE:
			rc = dump_size(out, *(const int64_t *)f);
			break;
		case CN_CONF_DURATION:
			rc = dump_duration(out, *(const int64_t *)f);
			break;
		case CN_CONF_BOOL:
			rc = cn_buf_append_str(out, *(const bool *)f ? "true" : "false");
			break;
		case CN_CONF_STRING:
			rc = dump_string(out, *(char *const *)f ? *(char *const *)f : "");
			break;
		case CN_CONF_ENUM:
			rc = cn_buf_append_str(out, d->choices[*(const int *)f]);
			break;
		}
		if (rc == 0)
			rc = cn_buf_append_str(out, "\n");
	}
	return rc;
}

void cn_conf_free(const struct cn_conf_directive *t, size_t n, void *conf)
{
	for (size_t i = 0; i < n; i++) {
		if (t[i].type == CN_CONF_STRING) {
			char **slot = field(conf, &t[i]);
			free(*slot);
			*slot = NULL;
		}
	}
}
