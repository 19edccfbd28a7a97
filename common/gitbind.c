#include "common/gitbind.h"
#include "common/dynlib.h"

static const char *const gitbind_names[GITBIND_N] = {
#define GITBIND_NAME(f) #f,
    GITBIND_FUNCS(GITBIND_NAME)
#undef GITBIND_NAME
};

static int gitbind_init(struct err *err)
{
	if (git_libgit2_init() < 0)
		return err_set(err, ERR_SYS, "git_libgit2_init failed");
	return 0;
}

/* Process-wide by necessity, see common/dynlib.h. */
static void *gitbind_slots[GITBIND_N];
static struct dynlib gitbind_lib =
    DYNLIB_INIT(ANVIL_LIBGIT2_SONAME, gitbind_names, gitbind_slots, gitbind_init);

int gitbind_load(struct err *err)
{
	return dynlib_load(&gitbind_lib, err);
}

void *gitbind_sym(enum gitbind_sym i)
{
	return dynlib_slot(&gitbind_lib, i);
}

int gitbind_loaded(void)
{
	return dynlib_is_loaded(&gitbind_lib);
}
