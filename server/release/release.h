#ifndef ANVIL_RELEASE_H
#define ANVIL_RELEASE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "server/store/store.h"

/* Releases (docs/releases.md). A tag pipeline whose build jobs all succeed
 * is recorded as a release by the store (a trigger, in the transaction of
 * the last job's finish); this part signs it: it builds the release's
 * manifest (JSON: version, commit, repository, created, files with target,
 * path, size, sha256) and signs it with the server's Ed25519 release key in
 * OpenBSD signify's format. A signer thread does it as soon as a job
 * finishes and resumes unsigned releases after a restart.
 *
 * The key: <data>/release.key (signify secret key format, no passphrase,
 * 0600) made on first start, its public half in <data>/release.pub and in
 * the store's release_keys (every key ever used, so old releases verify).
 * Rotation writes a new key; the retired one's public file stays as
 * <data>/release-<keynum>.pub. */

struct srv;
struct release;

/* Loads or generates the key, records its public half, starts the signer
 * thread. */
int release_start(struct srv *srv, struct release **out, struct err *err);
/* Stops and joins the thread; NULL-safe. Call after sched_stop. */
void release_stop(struct release *r);

/* Makes a new current key (the old public key stays listed). Any thread.
 * keynum_out (may be NULL) gets the new keynum in hex. */
int release_rotate_key(struct release *r, char keynum_out[17], struct err *err);

/* Signs every recorded, unsigned release now (the thread's pass; also for
 * tests). */
int release_sign_pending(struct release *r, struct err *err);

/* SHA256SUMS text of a signed manifest (`<hex>  <target>/<name>` lines, as
 * `sha256sum -c` reads them); caller frees. ERR_INVAL for a bad manifest. */
int release_sha256sums(const char *manifest, char **out, struct err *err);

/* A release's manifest file: ERR_NOTFOUND when path is not in it; sha256 and
 * size of that file. */
int release_manifest_file(const char *manifest, const char *path, char sha256_out[65], int64_t *size_out,
                          struct err *err);

/* A tag name that may become a git ref and a release version: printable
 * ASCII, no space, no '/', no "..", not starting with '-' or '.', no
 * ~^:?*[\, at most 100 bytes. */
int release_version_ok(const char *v);
/* A release tag pattern (a glob): printable ASCII, no space, 1..100 bytes. */
int release_pattern_ok(const char *p);

#endif
