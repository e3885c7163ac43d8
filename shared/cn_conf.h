/* cn_conf.h: one table of directives per binary; strict "key = value" config files. */
#ifndef CN_CONF_H
#define CN_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cn_buf.h"

#define CN_CONF_MAX_FILE (1024 * 1024)
#define CN_CONF_MAX_LINE 4096

enum cn_conf_type {
	CN_CONF_INT,      /* int64_t */
	CN_CONF_SIZE,     /* int64_t bytes; value may end in K, M, G, T (powers of 1024) */
	CN_CONF_DURATION, /* int64_t milliseconds; value needs a unit: ms, s, m, h, d */
	CN_CONF_BOOL,     /* bool; true/false, yes/no, on/off */
	CN_CONF_STRING,   /* char *, heap; min/max bound the length */
	CN_CONF_ENUM,     /* int index into choices */
};

struct cn_conf_directive {
	const char *name;
	enum cn_conf_type type;
	size_t offset; /* of the field in the binary's config struct */
	int64_t min;
	int64_t max;
	const char *def; /* default, written as it would be in a file */
	const char *const *choices; /* CN_CONF_ENUM: NULL-terminated */
	const char *help;
};

/* Sets every default, then reads path (if non-NULL). On failure returns CN_E_CONFIG and
 * err holds "file:line: what is wrong with 'key'". conf must be zeroed before the first
 * call; strings it holds are freed by cn_conf_free. */
int cn_conf_load(const struct cn_conf_directive *t, size_t n, void *conf, const char *path,
		 char *err, size_t errcap);
/* The same for text in memory; name is used in messages. */
int cn_conf_load_text(const struct cn_conf_directive *t, size_t n, void *conf, const char *text,
		      size_t len, const char *name, char *err, size_t errcap);
/* Writes the effective config, with help as comments, in a form cn_conf_load accepts. */
int cn_conf_dump(const struct cn_conf_directive *t, size_t n, const void *conf,
		 struct cn_buf *out);
void cn_conf_free(const struct cn_conf_directive *t, size_t n, void *conf);

#endif
