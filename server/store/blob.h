#ifndef ANVIL_BLOB_H
#define ANVIL_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "common/crypto.h"
#include "common/err.h"
#include "common/failpoint.h"

/* Content-addressed blob files: <blob_dir>/<aa>/<sha256>. Bytes arrive in a
 * temp file under <blob_dir>/tmp while they are hashed; commit verifies the
 * sha256, fsyncs and renames into place (the same bytes are stored once). A
 * crash before commit leaves only a temp file, removed at the next start. */

struct blob_writer;

int blob_dir_init(const char *blob_dir, struct err *err);
/* fp (borrowed, may be NULL) lends the writer's write, fsync and rename to
 * fault injection (common/failpoint.h); production passes NULL. */
int blob_writer_new(const char *blob_dir, int64_t cap_bytes, struct failpoints *fp, struct blob_writer **out,
                    struct err *err);
/* ERR_LIMIT past the cap. */
int blob_writer_write(struct blob_writer *w, const void *p, size_t n, struct err *err);
/* Verifies the hash equals expected_hex (ERR_INVAL otherwise) and moves the
 * file into place. *size_out gets the byte count. */
int blob_writer_commit(struct blob_writer *w, const char *expected_hex, int64_t *size_out, struct err *err);
/* Removes the temp file unless committed; NULL-safe. */
void blob_writer_free(struct blob_writer *w);

/* Path of a stored blob; caller frees. */
char *blob_path(const char *blob_dir, const char *sha256_hex);

#endif
