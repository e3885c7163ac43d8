/* cn_file.h: replacing a small file atomically (temp file beside it, rename), optionally durable. */
#ifndef CN_FILE_H
#define CN_FILE_H

#include <stdbool.h>
#include <stddef.h>

/* Writes len bytes to a unique temp file next to path, created 0600 and then given mode
 * exactly (whatever the umask), and renames it over path: a reader sees the old file or
 * the new one, never part of one. With durable, the data and the rename are fsynced
 * first (slow on busy disks: keep it for state that must survive a power cut). Returns 0
 * or -errno of the failing call. */
int cn_file_write_atomic(const char *path, const void *data, size_t len, int mode, bool durable);

#endif
