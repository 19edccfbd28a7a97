#ifndef ANVIL_DYNLIB_H
#define ANVIL_DYNLIB_H

#include "common/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

/* A shared library bound at run time, on first use (issue 17): the programs
 * do not link libcurl, libgit2, libpq or libssh2, so a process maps each of
 * them, and the libraries they bring (OpenSSL, Kerberos, LDAP, mbedTLS, ...),
 * only once it does what needs it. A server that never talks to PostgreSQL
 * never maps libpq; `anvil --help` maps no libcurl.
 *
 * Each library has a binding (common/curlbind.h, common/gitbind.h,
 * server/store/pqbind.h, deploy/ssh2bind.h): an X-list of the functions the
 * project calls, and a macro per function that turns `curl_easy_init()`
 * into a call through the resolved pointer, so call sites read as the
 * library's documentation writes them and the linker reports any function a
 * binding forgot (the library is not on the link line).
 *
 * The one kind of process-wide mutable state outside main (docs/
 * architecture.md): like the dynamic linker's own symbol table, a binding is
 * filled once, under its mutex, and never changed after; it is never
 * unloaded. */
struct dynlib {
	const char *soname; /* e.g. "libcurl.so.4"; alternatives separated by spaces: the first that loads */
	const char *const *names;     /* n symbol names, in slot order */
	size_t n;                     /* number of names and slots */
	void **slots;                 /* n pointers, filled by dynlib_load */
	int (*init)(struct err *err); /* run once after resolving (curl_global_init), or NULL */
	pthread_mutex_t mu;           /* serialises the first load */
	atomic_int resolved;          /* 1 once every slot is filled (init may call through them) */
	atomic_int loaded;            /* 1 once init is done too */
};

#define DYNLIB_INIT(soname_, names_, slots_, init_)                                                          \
	{                                                                                                    \
		.soname = (soname_), .names = (names_), .n = sizeof(names_) / sizeof((names_)[0]),           \
		.slots = (slots_), .init = (init_), .mu = PTHREAD_MUTEX_INITIALIZER, .resolved = 0,          \
		.loaded = 0,                                                                                 \
	}

/* Defines a binding's table and its PREFIX_load, PREFIX_sym and
 * PREFIX_loaded (declared in its header; enum PREFIX_sym numbers FUNCS):
 * the one place the pattern is written. init may be NULL. */
#define DYNLIB_NAME_(f) #f,
#define DYNLIB_DEFINE(prefix, FUNCS, n, soname, init)                                                        \
	static const char *const prefix##_names[n] = {FUNCS(DYNLIB_NAME_)};                                  \
	static void *prefix##_slots[n];                                                                      \
	static struct dynlib prefix##_lib = DYNLIB_INIT(soname, prefix##_names, prefix##_slots, init);       \
	int prefix##_load(struct err *err)                                                                   \
	{                                                                                                    \
		return dynlib_load(&prefix##_lib, err);                                                      \
	}                                                                                                    \
	void *prefix##_sym(enum prefix##_sym i)                                                              \
	{                                                                                                    \
		return dynlib_slot(&prefix##_lib, i);                                                        \
	}                                                                                                    \
	int prefix##_loaded(void)                                                                            \
	{                                                                                                    \
		return dynlib_is_loaded(&prefix##_lib);                                                      \
	}

/* Loads the library and resolves every name, then runs init; a no-op once
 * done. ERR_SYS naming the library (missing, or a symbol absent: a version
 * older than the one anvil was built against) otherwise; a later call tries
 * again. Thread-safe. */
int dynlib_load(struct dynlib *l, struct err *err);
/* Slot i of a loaded library. A call before dynlib_load succeeded is a bug:
 * every entry point into code that uses a binding loads it first. */
void *dynlib_slot(struct dynlib *l, size_t i);
/* 1 when the library has been loaded in this process. */
int dynlib_is_loaded(struct dynlib *l);

#endif
