#ifndef ANVIL_GITBIND_H
#define ANVIL_GITBIND_H

/* libgit2, bound at run time (common/dynlib.h). Include this instead of
 * <git2.h>; call gitbind_load before the first libgit2 call on a path.
 * gitbind_load also runs git_libgit2_init, once per process; libgit2 is
 * never shut down (the process exit is). */
#include <git2.h>
#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>
#include <git2/sys/repository.h>

#include "common/err.h"

#define GITBIND_FUNCS(X)                                                                                     \
	X(git_blob_free)                                                                                     \
	X(git_blob_lookup)                                                                                   \
	X(git_blob_rawcontent)                                                                               \
	X(git_blob_rawsize)                                                                                  \
	X(git_buf_dispose)                                                                                   \
	X(git_checkout_head)                                                                                 \
	X(git_checkout_options_init)                                                                         \
	X(git_commit_author)                                                                                 \
	X(git_commit_create)                                                                                 \
	X(git_commit_free)                                                                                   \
	X(git_commit_id)                                                                                     \
	X(git_commit_lookup)                                                                                 \
	X(git_commit_message)                                                                                \
	X(git_commit_time)                                                                                   \
	X(git_commit_tree)                                                                                   \
	X(git_config_free)                                                                                   \
	X(git_config_set_string)                                                                             \
	X(git_credential_ssh_key_new)                                                                        \
	X(git_credential_username_new)                                                                       \
	X(git_credential_userpass_plaintext_new)                                                             \
	X(git_error_last)                                                                                    \
	X(git_fetch_options_init)                                                                            \
	X(git_index_add_all)                                                                                 \
	X(git_index_free)                                                                                    \
	X(git_index_open)                                                                                    \
	X(git_index_update_all)                                                                              \
	X(git_index_write_tree)                                                                              \
	X(git_libgit2_init)                                                                                  \
	X(git_libgit2_shutdown)                                                                              \
	X(git_mempack_new)                                                                                   \
	X(git_object_free)                                                                                   \
	X(git_object_lookup)                                                                                 \
	X(git_object_peel)                                                                                   \
	X(git_odb_add_backend)                                                                               \
	X(git_odb_exists)                                                                                    \
	X(git_odb_free)                                                                                      \
	X(git_odb_write_pack)                                                                                \
	X(git_oid_cpy)                                                                                       \
	X(git_oid_fromstr)                                                                                   \
	X(git_oid_tostr)                                                                                     \
	X(git_packbuilder_free)                                                                              \
	X(git_packbuilder_insert_commit)                                                                     \
	X(git_packbuilder_new)                                                                               \
	X(git_packbuilder_write_buf)                                                                         \
	X(git_push_options_init)                                                                             \
	X(git_reference_create)                                                                              \
	X(git_reference_delete)                                                                              \
	X(git_reference_free)                                                                                \
	X(git_reference_iterator_free)                                                                       \
	X(git_reference_iterator_glob_new)                                                                   \
	X(git_reference_iterator_new)                                                                        \
	X(git_reference_lookup)                                                                              \
	X(git_reference_name)                                                                                \
	X(git_reference_next)                                                                                \
	X(git_reference_shorthand)                                                                           \
	X(git_reference_target)                                                                              \
	X(git_reference_type)                                                                                \
	X(git_reflog_entry_byindex)                                                                          \
	X(git_reflog_entry_committer)                                                                        \
	X(git_reflog_entrycount)                                                                             \
	X(git_reflog_free)                                                                                   \
	X(git_reflog_read)                                                                                   \
	X(git_remote_connect)                                                                                \
	X(git_remote_create_detached)                                                                        \
	X(git_remote_create_options_init)                                                                    \
	X(git_remote_create_with_opts)                                                                       \
	X(git_remote_disconnect)                                                                             \
	X(git_remote_fetch)                                                                                  \
	X(git_remote_free)                                                                                   \
	X(git_remote_init_callbacks)                                                                         \
	X(git_remote_ls)                                                                                     \
	X(git_remote_push)                                                                                   \
	X(git_repository_config)                                                                             \
	X(git_repository_free)                                                                               \
	X(git_repository_head)                                                                               \
	X(git_repository_init)                                                                               \
	X(git_repository_is_bare)                                                                            \
	X(git_repository_odb)                                                                                \
	X(git_repository_open)                                                                               \
	X(git_repository_open_bare)                                                                          \
	X(git_repository_open_ext)                                                                           \
	X(git_repository_path)                                                                               \
	X(git_repository_set_index)                                                                          \
	X(git_repository_set_workdir)                                                                        \
	X(git_repository_workdir)                                                                            \
	X(git_revparse_single)                                                                               \
	X(git_signature_default)                                                                             \
	X(git_signature_free)                                                                                \
	X(git_signature_now)                                                                                 \
	X(git_tag_create)                                                                                    \
	X(git_tree_entry_bypath)                                                                             \
	X(git_tree_entry_filemode)                                                                           \
	X(git_tree_entry_free)                                                                               \
	X(git_tree_entry_id)                                                                                 \
	X(git_tree_entry_name)                                                                               \
	X(git_tree_entry_type)                                                                               \
	X(git_tree_free)                                                                                     \
	X(git_tree_lookup)                                                                                   \
	X(git_tree_walk)

enum gitbind_sym {
#define GITBIND_ENUM(f) GITBIND_##f,
	GITBIND_FUNCS(GITBIND_ENUM)
#undef GITBIND_ENUM
	    GITBIND_N
};

/* Loads libgit2 (ANVIL_LIBGIT2_SONAME, the version anvil was built against)
 * and runs git_libgit2_init; ERR_SYS naming the library when it cannot. */
int gitbind_load(struct err *err);
void *gitbind_sym(enum gitbind_sym i);
/* 1 once this process has loaded libgit2 (tests read it). */
int gitbind_loaded(void);

#define GITBIND(f)                            ((__typeof__(&f))gitbind_sym(GITBIND_##f))
#define git_blob_free                         GITBIND(git_blob_free)
#define git_blob_lookup                       GITBIND(git_blob_lookup)
#define git_blob_rawcontent                   GITBIND(git_blob_rawcontent)
#define git_blob_rawsize                      GITBIND(git_blob_rawsize)
#define git_buf_dispose                       GITBIND(git_buf_dispose)
#define git_checkout_head                     GITBIND(git_checkout_head)
#define git_checkout_options_init             GITBIND(git_checkout_options_init)
#define git_commit_author                     GITBIND(git_commit_author)
#define git_commit_create                     GITBIND(git_commit_create)
#define git_commit_free                       GITBIND(git_commit_free)
#define git_commit_id                         GITBIND(git_commit_id)
#define git_commit_lookup                     GITBIND(git_commit_lookup)
#define git_commit_message                    GITBIND(git_commit_message)
#define git_commit_time                       GITBIND(git_commit_time)
#define git_commit_tree                       GITBIND(git_commit_tree)
#define git_config_free                       GITBIND(git_config_free)
#define git_config_set_string                 GITBIND(git_config_set_string)
#define git_credential_ssh_key_new            GITBIND(git_credential_ssh_key_new)
#define git_credential_username_new           GITBIND(git_credential_username_new)
#define git_credential_userpass_plaintext_new GITBIND(git_credential_userpass_plaintext_new)
#define git_error_last                        GITBIND(git_error_last)
#define git_fetch_options_init                GITBIND(git_fetch_options_init)
#define git_index_add_all                     GITBIND(git_index_add_all)
#define git_index_free                        GITBIND(git_index_free)
#define git_index_open                        GITBIND(git_index_open)
#define git_index_update_all                  GITBIND(git_index_update_all)
#define git_index_write_tree                  GITBIND(git_index_write_tree)
#define git_libgit2_init                      GITBIND(git_libgit2_init)
#define git_libgit2_shutdown                  GITBIND(git_libgit2_shutdown)
#define git_mempack_new                       GITBIND(git_mempack_new)
#define git_object_free                       GITBIND(git_object_free)
#define git_object_lookup                     GITBIND(git_object_lookup)
#define git_object_peel                       GITBIND(git_object_peel)
#define git_odb_add_backend                   GITBIND(git_odb_add_backend)
#define git_odb_exists                        GITBIND(git_odb_exists)
#define git_odb_free                          GITBIND(git_odb_free)
#define git_odb_write_pack                    GITBIND(git_odb_write_pack)
#define git_oid_cpy                           GITBIND(git_oid_cpy)
#define git_oid_fromstr                       GITBIND(git_oid_fromstr)
#define git_oid_tostr                         GITBIND(git_oid_tostr)
#define git_packbuilder_free                  GITBIND(git_packbuilder_free)
#define git_packbuilder_insert_commit         GITBIND(git_packbuilder_insert_commit)
#define git_packbuilder_new                   GITBIND(git_packbuilder_new)
#define git_packbuilder_write_buf             GITBIND(git_packbuilder_write_buf)
#define git_push_options_init                 GITBIND(git_push_options_init)
#define git_reference_create                  GITBIND(git_reference_create)
#define git_reference_delete                  GITBIND(git_reference_delete)
#define git_reference_free                    GITBIND(git_reference_free)
#define git_reference_iterator_free           GITBIND(git_reference_iterator_free)
#define git_reference_iterator_glob_new       GITBIND(git_reference_iterator_glob_new)
#define git_reference_iterator_new            GITBIND(git_reference_iterator_new)
#define git_reference_lookup                  GITBIND(git_reference_lookup)
#define git_reference_name                    GITBIND(git_reference_name)
#define git_reference_next                    GITBIND(git_reference_next)
#define git_reference_shorthand               GITBIND(git_reference_shorthand)
#define git_reference_target                  GITBIND(git_reference_target)
#define git_reference_type                    GITBIND(git_reference_type)
#define git_reflog_entry_byindex              GITBIND(git_reflog_entry_byindex)
#define git_reflog_entry_committer            GITBIND(git_reflog_entry_committer)
#define git_reflog_entrycount                 GITBIND(git_reflog_entrycount)
#define git_reflog_free                       GITBIND(git_reflog_free)
#define git_reflog_read                       GITBIND(git_reflog_read)
#define git_remote_connect                    GITBIND(git_remote_connect)
#define git_remote_create_detached            GITBIND(git_remote_create_detached)
#define git_remote_create_options_init        GITBIND(git_remote_create_options_init)
#define git_remote_create_with_opts           GITBIND(git_remote_create_with_opts)
#define git_remote_disconnect                 GITBIND(git_remote_disconnect)
#define git_remote_fetch                      GITBIND(git_remote_fetch)
#define git_remote_free                       GITBIND(git_remote_free)
#define git_remote_init_callbacks             GITBIND(git_remote_init_callbacks)
#define git_remote_ls                         GITBIND(git_remote_ls)
#define git_remote_push                       GITBIND(git_remote_push)
#define git_repository_config                 GITBIND(git_repository_config)
#define git_repository_free                   GITBIND(git_repository_free)
#define git_repository_head                   GITBIND(git_repository_head)
#define git_repository_init                   GITBIND(git_repository_init)
#define git_repository_is_bare                GITBIND(git_repository_is_bare)
#define git_repository_odb                    GITBIND(git_repository_odb)
#define git_repository_open                   GITBIND(git_repository_open)
#define git_repository_open_bare              GITBIND(git_repository_open_bare)
#define git_repository_open_ext               GITBIND(git_repository_open_ext)
#define git_repository_path                   GITBIND(git_repository_path)
#define git_repository_set_index              GITBIND(git_repository_set_index)
#define git_repository_set_workdir            GITBIND(git_repository_set_workdir)
#define git_repository_workdir                GITBIND(git_repository_workdir)
#define git_revparse_single                   GITBIND(git_revparse_single)
#define git_signature_default                 GITBIND(git_signature_default)
#define git_signature_free                    GITBIND(git_signature_free)
#define git_signature_now                     GITBIND(git_signature_now)
#define git_tag_create                        GITBIND(git_tag_create)
#define git_tree_entry_bypath                 GITBIND(git_tree_entry_bypath)
#define git_tree_entry_filemode               GITBIND(git_tree_entry_filemode)
#define git_tree_entry_free                   GITBIND(git_tree_entry_free)
#define git_tree_entry_id                     GITBIND(git_tree_entry_id)
#define git_tree_entry_name                   GITBIND(git_tree_entry_name)
#define git_tree_entry_type                   GITBIND(git_tree_entry_type)
#define git_tree_free                         GITBIND(git_tree_free)
#define git_tree_lookup                       GITBIND(git_tree_lookup)
#define git_tree_walk                         GITBIND(git_tree_walk)

#endif
