#ifndef ANVIL_VERIFY_H
#define ANVIL_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "common/crypto.h"
#include "common/err.h"
#include "common/sign.h"

/* The board-side release check behind `anvil-verify` (deploy/verify_main.c,
 * docs/releases.md): in a release directory, the manifest's signify
 * signature by a public key, then every file SHA256SUMS lists against its
 * sha256, then each (name, sha256) of SHA256SUMS in the signed manifest's
 * files. This file and the few common/ files it needs are all the verifier
 * is made of: the agent cross-builds exactly them for a board (agent/
 * verifier.c), statically linked, so keep its dependencies to common/sign.c,
 * crypto.c, err.c, xalloc.c and log.c, nettle/hogweed (with gmp) and jansson. */

#define VERIFY_TEXT_MAX_BYTES (1024 * 1024) /* manifest, SHA256SUMS, signature, key */
#define VERIFY_FILES_MAX      4096

/* One "<sha256>  <name>" line of SHA256SUMS, or one (path, sha256) of the
 * manifest's files. */
struct verify_entry {
	char *name; /* owned */
	char sha256[CRYPTO_SHA256_HEX_LEN + 1];
};

struct verify_list {
	struct verify_entry *v; /* owned, n */
	size_t n;
};

/* SHA256SUMS as sha256sum writes it: "<64 lowercase hex>  <name>" (or
 * " *<name>", binary mode) per line. A name must be relative, without "."
 * or ".." components, empty components, backslashes or control characters
 * (sha256sum's escaped-name lines are refused, not decoded). ERR_INVAL names
 * the line; ERR_LIMIT past VERIFY_FILES_MAX lines; an empty list is
 * ERR_INVAL. text need not be NUL-terminated. *out is the caller's
 * (verify_list_release) on success, untouched on failure. */
int verify_sums_parse(const char *text, size_t len, struct verify_list *out, struct err *err);

/* manifest.json (docs/releases.md): an object with a string "version" and
 * an array "files" of objects with string "path" and 64-hex "sha256".
 * *version_out (caller frees) and *out (verify_list_release) on success;
 * ERR_INVAL saying what is wrong otherwise. */
int verify_manifest_parse(const char *text, size_t len, char **version_out, struct verify_list *out,
                          struct err *err);

void verify_list_release(struct verify_list *l);

/* 1 when the manifest lists name (as a board names it: "app", or
 * "<target>/app" as the manifest and `anvil release download` do) with this
 * sha256: an entry whose path is name or "<one component>/name". */
int verify_manifest_has(const struct verify_list *manifest, const char *name, const char *sha256);

/* What a whole check is given: paths of the four files, relative to the
 * process's working directory (the release directory) or absolute. */
struct verify_paths {
	const char *pubkey, *manifest, *signature, *sums;
};

struct verify_report {
	char keynum[SIGN_KEYNUM_HEX + 1];
	char *version;      /* owned; the manifest's version */
	size_t n_files;     /* files of SHA256SUMS checked */
	uint64_t bytes;     /* their total size */
	int64_t elapsed_ms; /* wall time of the check */
};

/* The check, in this order, stopping at the first failure with a one-line
 * ERR_INVAL naming the file: unreadable or malformed key, signature,
 * manifest or SHA256SUMS; "signed by key X, not key Y"; "signature
 * verification failed"; "<name>: missing"; "<name>: sha256 A, SHA256SUMS
 * says B"; "<name>: sha256 B is not in manifest.json". out is filled on
 * success; release it with verify_report_release either way. */
int verify_release(const struct verify_paths *p, struct verify_report *out, struct err *err);
void verify_report_release(struct verify_report *r);

/* Reads a whole small file (at most VERIFY_TEXT_MAX_BYTES: ERR_LIMIT) into
 * *out (caller frees; NUL-terminated, *len_out bytes). ERR_NOTFOUND when it
 * does not exist. */
int verify_read_text(const char *path, char **out, size_t *len_out, struct err *err);

#endif
