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

/* If the library brought libssh2 in (Debian's libcurl and libgit2 both
 * link it; libssh2 itself), counts libssh2 initialised without crypto
 * before the library's own init calls libssh2_init(0), which then only
 * counts too. libssh2's init with crypto loads OpenSSL's engines and reads
 * its configuration: ~1.5 MB of libcrypto paged in, in the server after its
 * first push and in every agent, for an SSH transport only a deploy or an
 * ssh:// git URL uses. OpenSSL 3 initialises itself on first use and
 * Debian's libssh2 takes its AES-CTR ciphers from OpenSSL (no table of its
 * own to set up at init), so SSH works as before (t_deploy, test_dynlib).
 * dlsym on the library's own handle searches it and its dependencies: no
 * second dlopen (one with RTLD_NOLOAD leaves glibc's dependency list of
 * the library unreachable, which valgrind reports as lost). Runs under the
 * init mutex. */
static void dynlib_libssh2_without_crypto(void *handle)
{
	int (*ssh2_init)(int);

	*(void **)&ssh2_init = dlsym(handle, "libssh2_init");
	if (ssh2_init == NULL) {
		dlerror(); /* the library does not use libssh2: nothing to do */
		return;
	}
	ssh2_init(LIBSSH2_INIT_NO_CRYPTO);
}

int dynlib_load(struct dynlib *l, struct err *err)
{
	void *handle;
	int rc = -1, init_rc;

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
	pthread_mutex_lock(&dynlib_init_mu);
	dynlib_libssh2_without_crypto(handle);
	init_rc = l->init != NULL ? l->init(err) : 0;
	pthread_mutex_unlock(&dynlib_init_mu);
	if (init_rc < 0) {
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
