#include "deploy/ssh2bind.h"
#include "common/dynlib.h"

static int ssh2bind_init(struct err *err)
{
	int rc = libssh2_init(0);

	if (rc != 0)
		return err_set(err, ERR_SYS, "libssh2_init failed (%d)", rc);
	return 0;
}

/* Process-wide by necessity, see common/dynlib.h. */
DYNLIB_DEFINE(ssh2bind, SSH2BIND_FUNCS, SSH2BIND_N, ANVIL_SSH2_SONAME, ssh2bind_init)
