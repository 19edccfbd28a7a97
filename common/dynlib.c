#include "common/dynlib.h"
#include "common/log.h"

#include <dlfcn.h>
#include <libssh2.h>
#include <string.h>

/* Serialises every binding's init: libcurl's and libgit2's global inits
 * both call libssh2_init, which counts without a lock. Process-wide like
 * the bindings themselves (common/dynlib.h). */
static pthread_mutex_t dynlib_init_mu = PTHREAD_MUTEX_INITIALIZER;

/* The first of the space-separated sonames that loads. RTLD_LOCAL: the
 * library's symbols stay out of the global scope, so nothing else in the
 * process binds to them by accident. */
static void *dynlib_open(const char *sonames, struct err *err)
{
	const char *p = sonames;
	char one[128];

	while (*p != '\0') {
		size_t n = strcspn(p, " ");
		void *h;

		if (n > 0 && n < sizeof(one)) {
			memcpy(one, p, n);
			one[n] = '\0';
			if ((h = dlopen(one, RTLD_NOW | RTLD_LOCAL)) != NULL)
				return h;
			err_set(err, ERR_SYS, "cannot load %s: %s", sonames, dlerror());
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	return NULL;
}

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
	if ((handle = dynlib_open(l->soname, err)) == NULL)
		goto out;
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
	if (l->init != NULL) {
		int bad;

		pthread_mutex_lock(&dynlib_init_mu);
		bad = l->init(err);
		pthread_mutex_unlock(&dynlib_init_mu);
		if (bad < 0) {
			err_wrap(err, "%s", l->soname);
			goto out;
		}
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

void dynlib_libssh2_without_crypto(void)
{
	void *h = dlopen(ANVIL_SSH2_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
	int (*ssh2_init)(int);

	if (h == NULL)
		return; /* the library did not bring libssh2: nothing to do */
	*(void **)&ssh2_init = dlsym(h, "libssh2_init");
	if (ssh2_init != NULL)
		ssh2_init(LIBSSH2_INIT_NO_CRYPTO);
	dlclose(h); /* only our reference: the library that brought it keeps it */
}
