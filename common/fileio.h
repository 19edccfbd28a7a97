#ifndef ANVIL_FILEIO_H
#define ANVIL_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

/* Small file writes the agent makes for itself (not atomic: for files in
 * its own scratch directories). */

/* Creates or truncates path (mode for a new file; a symlink at path is
 * refused) and writes all n bytes of data, retrying short writes and
 * EINTR. -1 with err naming path on failure. Any thread. */
int fileio_write(const char *path, const void *data, size_t n, mode_t mode, struct err *err);

#endif
