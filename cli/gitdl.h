#ifndef ANVIL_GITDL_H
#define ANVIL_GITDL_H

#include "common/err.h"

#include <git2.h>
#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>
#include <git2/sys/repository.h>

/* libgit2, loaded at run time by the one command that uses it (`anvil
 * build`): the CLI does not link it, so every other command starts without
 * mapping libgit2 and what it brings (mbedTLS, pcre2, http-parser). The
 * table holds the functions cmd_build.c calls, typed from <git2.h>. */
#define GITDL_FUNCS(X)                                                                                       \
	X(git_libgit2_init)                                                                                  \
	X(git_libgit2_shutdown)                                                                              \
	X(git_error_last)                                                                                    \
	X(git_buf_dispose)                                                                                   \
	X(git_repository_init)                                                                               \
	X(git_repository_set_workdir)                                                                        \
	X(git_repository_free)                                                                               \
	X(git_repository_open_ext)                                                                           \
	X(git_repository_is_bare)                                                                            \
	X(git_repository_odb)                                                                                \
	X(git_repository_path)                                                                               \
	X(git_repository_set_index)                                                                          \
	X(git_repository_head)                                                                               \
	X(git_repository_workdir)                                                                            \
	X(git_mempack_new)                                                                                   \
	X(git_odb_add_backend)                                                                               \
	X(git_odb_free)                                                                                      \
	X(git_index_open)                                                                                    \
	X(git_index_add_all)                                                                                 \
	X(git_index_update_all)                                                                              \
	X(git_index_write_tree)                                                                              \
	X(git_index_free)                                                                                    \
	X(git_tree_lookup)                                                                                   \
	X(git_tree_free)                                                                                     \
	X(git_oid_tostr)                                                                                     \
	X(git_reference_target)                                                                              \
	X(git_reference_shorthand)                                                                           \
	X(git_reference_free)                                                                                \
	X(git_signature_default)                                                                             \
	X(git_signature_now)                                                                                 \
	X(git_signature_free)                                                                                \
	X(git_commit_create)                                                                                 \
	X(git_packbuilder_new)                                                                               \
	X(git_packbuilder_insert_commit)                                                                     \
	X(git_packbuilder_write_buf)                                                                         \
	X(git_packbuilder_free)

struct gitdl {
	void *handle; /* dlopen's */
#define GITDL_MEMBER(f) __typeof__(f) *f;
	GITDL_FUNCS(GITDL_MEMBER)
#undef GITDL_MEMBER
};

/* Loads libgit2 (ANVIL_LIBGIT2_SONAME, the one the CLI was built against),
 * resolves the table and calls git_libgit2_init. ERR_SYS naming the library
 * when it is missing. Call from main's thread, once. */
int gitdl_open(struct gitdl *g, struct err *err);
/* git_libgit2_shutdown and dlclose; NULL-safe, and safe after a failed open. */
void gitdl_close(struct gitdl *g);

#endif
