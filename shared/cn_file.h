/* cn_file.h: writing files: whole buffers despite short writes, and atomic replacement of small files. */
#ifndef CN_FILE_H
#define CN_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

/* Writes all n bytes (a short write continues, EINTR retries). Returns 0 or -errno (-EIO
 * when the kernel writes nothing). */
int cn_write_all(int fd, const void *p, size_t n);

/* The same for cnt buffers, IOV_MAX at a time; iov is advanced in place as it goes. */
int cn_writev_all(int fd, struct iovec *iov, size_t cnt);

/* Writes len bytes to a unique temp file next to path, created 0600 and then given mode
 * exactly (whatever the umask), and renames it over path: a reader sees the old file or
 * the new one, never part of one. With durable, the data and the rename are fsynced
 * first (slow on busy disks: keep it for state that must survive a power cut). Returns 0
 * or -errno of the failing call. */
int cn_file_write_atomic(const char *path, const void *data, size_t len, int mode, bool durable);

#endif
