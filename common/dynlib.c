#include "common/dynlib.h"
#include "common/log.h"

#include <dlfcn.h>

int dynlib_load(struct dynlib *l, struct err *err)
{
	void *handle;
	int rc = -1;

	if (atomic_load_explicit(&l->loaded, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&l->mu);
	if (atomic_load_explicit(&l->loaded, memory_order_relaxed)) {
		rc = 0;
		goto out;
	}
	/* RTLD_LOCAL: the library's symbols stay out of the global scope, so
	 * nothing else in the process binds to them by accident. */
	if ((handle = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		err_set(err, ERR_SYS, "cannot load %s: %s", l->soname, dlerror());
		goto out;
	}
	for (size_t i = 0; i < l->n; i++) {
		if ((l->slots[i] = dlsym(handle, l->names[i])) == NULL) {
			err_set(err, ERR_SYS,
			        "%s has no %s (older than the version anvil was built against?)", l->soname,
			        l->names[i]);
			/* Not dlclose'd: the library may have started threads or
			 * registered handlers in its constructors. */
			goto out;
		}
	}
	atomic_store_explicit(&l->resolved, 1, memory_order_release);
	if (l->init != NULL && l->init(err) < 0) {
		err_wrap(err, "%s", l->soname);
		goto out;
	}
	atomic_store_explicit(&l->loaded, 1, memory_order_release);
	rc = 0;
out:
	pthread_mutex_unlock(&l->mu);
	return rc;
}

void *dynlib_slot(struct dynlib *l, size_t i)
{
	if (!atomic_load_explicit(&l->resolved, memory_order_acquire) || i >= l->n)
		fatalx("BUG: %s used before it was loaded (a missing dynlib_load on this path)", l->soname);
	return l->slots[i];
}

int dynlib_is_loaded(struct dynlib *l)
{
	return atomic_load_explicit(&l->loaded, memory_order_acquire);
}
