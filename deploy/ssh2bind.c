#include "deploy/ssh2bind.h"
#include "common/dynlib.h"

static const char *const ssh2bind_names[SSH2BIND_N] = {
#define SSH2BIND_NAME(f) #f,
    SSH2BIND_FUNCS(SSH2BIND_NAME)
#undef SSH2BIND_NAME
};

static int ssh2bind_init(struct err *err)
{
	int rc = libssh2_init(0);

	if (rc != 0)
		return err_set(err, ERR_SYS, "libssh2_init failed (%d)", rc);
	return 0;
}

/* Process-wide by necessity, see common/dynlib.h. */
static void *ssh2bind_slots[SSH2BIND_N];
static struct dynlib ssh2bind_lib =
    DYNLIB_INIT(ANVIL_SSH2_SONAME, ssh2bind_names, ssh2bind_slots, ssh2bind_init);

int ssh2bind_load(struct err *err)
{
	return dynlib_load(&ssh2bind_lib, err);
}

void *ssh2bind_sym(enum ssh2bind_sym i)
{
	return dynlib_slot(&ssh2bind_lib, i);
}
