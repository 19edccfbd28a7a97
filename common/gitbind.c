#include "common/gitbind.h"
#include "common/dynlib.h"

static int gitbind_init(struct err *err)
{
	if (git_libgit2_init() < 0)
		return err_set(err, ERR_SYS, "git_libgit2_init failed");
	return 0;
}

/* Process-wide by necessity, see common/dynlib.h. */
DYNLIB_DEFINE(gitbind, GITBIND_FUNCS, GITBIND_N, ANVIL_LIBGIT2_SONAME, gitbind_init)
