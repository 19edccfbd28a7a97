#include "cli/gitdl.h"

#include <dlfcn.h>
#include <string.h>

int gitdl_open(struct gitdl *g, struct err *err)
{
	memset(g, 0, sizeof(*g));
	if ((g->handle = dlopen(ANVIL_LIBGIT2_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL)
		return err_set(err, ERR_SYS, "anvil build needs %s: %s", ANVIL_LIBGIT2_SONAME, dlerror());
#define GITDL_RESOLVE(f)                                                                                     \
	if ((*(void **)&g->f = dlsym(g->handle, #f)) == NULL) {                                              \
		err_set(err, ERR_SYS, "%s has no %s", ANVIL_LIBGIT2_SONAME, #f);                             \
		dlclose(g->handle);                                                                          \
		memset(g, 0, sizeof(*g));                                                                    \
		return -1;                                                                                   \
	}
	GITDL_FUNCS(GITDL_RESOLVE)
#undef GITDL_RESOLVE
	if (g->git_libgit2_init() < 0) {
		dlclose(g->handle);
		memset(g, 0, sizeof(*g));
		return err_set(err, ERR_SYS, "git_libgit2_init failed");
	}
	return 0;
}

void gitdl_close(struct gitdl *g)
{
	if (g == NULL || g->handle == NULL)
		return;
	g->git_libgit2_shutdown();
	dlclose(g->handle);
	memset(g, 0, sizeof(*g));
}
