/* cn_file.c: writing files: whole buffers, and atomic replacement of small files (keys, certificates, tokens, state). */
#include "cn_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cn_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int cn_writev_all(int fd, struct iovec *iov, size_t cnt)
{
	while (cnt > 0) {
		ssize_t w = writev(fd, iov, cnt > IOV_MAX ? IOV_MAX : (int)cnt);
		size_t left;

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		left = (size_t)w;
		while (cnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			if (w == 0)
				return -EIO;
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

/* Makes the rename itself durable; best effort, the file is in place either way. */
static void sync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;
	int fd;

	if (!slash) {
		dir[0] = '.';
		n = 1;
	} else {
		n = slash == path ? 1 : (size_t)(slash - path);
		if (n >= sizeof(dir))
			return;
		memcpy(dir, path, n);
	}
	dir[n] = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	(void)fsync(fd);
	close(fd);
}

int cn_file_write_atomic(const char *path, const void *data, size_t len, int mode, bool durable)
{
	char tmp[PATH_MAX];
	int fd, rc;

	if (!path || !*path || (!data && len) || (mode & ~07777))
		return -EINVAL;
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	/* Created 0600, so a key is never readable by others, not even for a moment. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, (mode_t)mode) != 0) {
		rc = -errno;
		goto out_close;
	}
	if ((rc = cn_write_all(fd, data, len)) < 0)
		goto out_close;
	if (durable && fsync(fd) != 0) {
		rc = -errno;
		goto out_close;
	}
	if (close(fd) != 0) {
		rc = -errno;
		goto out_unlink;
	}
	if (rename(tmp, path) != 0) {
		rc = -errno;
		goto out_unlink;
	}
	if (durable)
		sync_parent(path);
	return 0;
out_close:
	close(fd);
out_unlink:
	unlink(tmp);
	return rc;
}
