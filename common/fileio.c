#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int fileio_write(const char *path, const void *data, size_t n, mode_t mode, struct err *err)
{
	const char *p = data;
	size_t off = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);

	if (fd < 0)
		return err_errno(err, "create %s", path);
	while (off < n) {
		ssize_t w = write(fd, p + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			err_errno(err, "write %s", path);
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	if (close(fd) < 0)
		return err_errno(err, "close %s", path);
	return 0;
}
