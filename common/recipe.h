#ifndef ANVIL_RECIPE_H
#define ANVIL_RECIPE_H

#include <stddef.h>

#include "common/err.h"
#include "common/xalloc.h"

/* A target recipe: recipes/<triple>.yml (format in docs/recipes.md). Parsed
 * with libyaml into an immutable struct recipe; plain data, any thread. */

enum recipe_mode {
	RECIPE_MODE_CROSS = 0, /* host userland + cross gcc, target rootfs at /sysroot */
	RECIPE_MODE_EMULATED,  /* target rootfs is /, every command under qemu-user */
};

#define RECIPE_MAX_BYTES   (64 * 1024)
#define RECIPE_MAX_ENTRIES 256 /* per list or map */

struct recipe_var {
	char *key;   /* owned, [A-Za-z_][A-Za-z0-9_]* */
	char *value; /* owned */
};

struct recipe_env {
	struct recipe_var *v; /* owned array of n */
	size_t n;
};

struct recipe {
	char *triple;              /* aarch64-unknown-linux-gnu */
	char *debian_arch;         /* arm64 */
	char *gnu_triple;          /* aarch64-linux-gnu */
	char *qemu;                /* qemu-aarch64-static; NULL when the recipe says none */
	char *suite;               /* default bookworm */
	char *mirror;              /* default http://deb.debian.org/debian */
	struct strv packages;      /* rootfs packages, in file order */
	struct strv host_packages; /* added to the toolroot (host arch), in file order */
	enum recipe_mode mode;     /* default cross */
	struct recipe_env env;     /* both modes */
	struct recipe_env env_cross;
	struct recipe_env env_emulated;
};

/* Parses a recipe from buf (len bytes, need not be NUL-terminated). On
 * success *out is the caller's (recipe_free). Errors are ERR_INVAL with the
 * line ("line 7: packages: expected a list of strings"), ERR_LIMIT past
 * RECIPE_MAX_BYTES / RECIPE_MAX_ENTRIES. */
int recipe_parse(const char *buf, size_t len, struct recipe **out, struct err *err);

/* Loads <recipes_dir>/<triple>.yml. triple must match [a-z0-9_.-]+ (checked
 * before the filesystem is touched: ERR_INVAL) and equal the file's `triple`.
 * ERR_NOTFOUND when there is no such recipe. */
int recipe_load(const char *recipes_dir, const char *triple, struct recipe **out, struct err *err);

/* NULL-safe. */
void recipe_free(struct recipe *r);

/* sha256 (hex) over what shapes the rootfs: debian_arch, suite, mirror, the
 * packages sorted and de-duplicated, and the rootfs layout version. The env
 * and mode do not change it. */
void recipe_hash_hex(const struct recipe *r, char out[65]);

/* The Debian packages of the recipe's toolroot on a host_arch machine: the
 * C/C++ cross compiler and binutils for gnu_triple (gcc-<t>, g++-<t>,
 * binutils-<t>, with '_' in the triple as '-'; the native gcc, g++ and
 * binutils when host_arch is the recipe's own arch), make, pkg-config, then
 * host_packages. Appended to out. */
void recipe_toolroot_packages(const struct recipe *r, const char *host_arch, struct strv *out);

/* sha256 (hex) over what shapes the toolroot: host_arch, suite, mirror,
 * gnu_triple, qemu (its placeholder), recipe_toolroot_packages sorted and
 * de-duplicated, and the toolroot layout version. */
void recipe_toolroot_hash_hex(const struct recipe *r, const char *host_arch, char out[65]);

/* 1 when s is a Debian package name as recipes and `tools:` accept it:
 * [a-z0-9][a-z0-9.+-]*, at most 128 bytes (no ":arch"). */
int recipe_package_name_ok(const char *s);

/* Appends "KEY=VALUE" strings to out: the common env, then the mode's env
 * (a mode entry replaces a common one with the same key). */
void recipe_env_for_mode(const struct recipe *r, enum recipe_mode mode, struct strv *out);

/* "cross" / "emulated". */
const char *recipe_mode_name(enum recipe_mode mode);
/* Parses "cross" / "emulated"; -1 with ERR_INVAL otherwise. */
int recipe_mode_parse(const char *s, enum recipe_mode *out, struct err *err);

/* 1 when s is a valid target triple ([a-z0-9_.-]+, at most 64 chars, not
 * starting with '.' or '-'). */
int recipe_triple_valid(const char *s);

#endif
