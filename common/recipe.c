#include "common/recipe.h"
#include "common/crypto.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

/* Bumped when rootfs.c changes what it adds on top of debootstrap, so old
 * cached rootfs trees are not reused. */
#define RECIPE_ROOTFS_LAYOUT "anvil-rootfs-v1"
/* Likewise for the toolroot (rootfs_toolroot_ensure). */
#define RECIPE_TOOLROOT_LAYOUT "anvil-toolroot-v1"

#define RECIPE_DEFAULT_SUITE  "bookworm"
#define RECIPE_DEFAULT_MIRROR "http://deb.debian.org/debian"

static int recipe_name_ok(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (strchr(extra, c) == NULL)
			return 0;
	}
	return 1;
}

int recipe_triple_valid(const char *s)
{
	return s != NULL && s[0] != '.' && s[0] != '-' && recipe_name_ok(s, 64, "_.-");
}

static int recipe_env_key_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

/* Debian package names: [a-z0-9][a-z0-9.+-]+, plus ":arch" is refused
 * because the rootfs is the target's own. */
int recipe_package_name_ok(const char *s)
{
	return s[0] != '\0' && s[0] != '-' && s[0] != '.' && s[0] != '+' && recipe_name_ok(s, 128, ".+-");
}

static int recipe_mirror_ok(const char *s)
{
	if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
		return 0;
	if (strlen(s) > 512)
		return 0;
	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == ',')
			return 0;
	return 1;
}

const char *recipe_mode_name(enum recipe_mode mode)
{
	return mode == RECIPE_MODE_EMULATED ? "emulated" : "cross";
}

int recipe_mode_parse(const char *s, enum recipe_mode *out, struct err *err)
{
	if (strcmp(s, "cross") == 0)
		*out = RECIPE_MODE_CROSS;
	else if (strcmp(s, "emulated") == 0)
		*out = RECIPE_MODE_EMULATED;
	else
		return err_set(err, ERR_INVAL, "mode must be cross or emulated");
	return 0;
}

static void recipe_env_release(struct recipe_env *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].key);
		free(e->v[i].value);
	}
	free(e->v);
	e->v = NULL;
	e->n = 0;
}

void recipe_free(struct recipe *r)
{
	if (r == NULL)
		return;
	free(r->triple);
	free(r->debian_arch);
	free(r->gnu_triple);
	free(r->qemu);
	free(r->suite);
	free(r->mirror);
	strv_release(&r->packages);
	strv_release(&r->host_packages);
	recipe_env_release(&r->env);
	recipe_env_release(&r->env_cross);
	recipe_env_release(&r->env_emulated);
	free(r);
}

/* Line numbers for people are 1-based; libyaml's are 0-based. */
static size_t recipe_line(const yaml_node_t *n)
{
	return n->start_mark.line + 1;
}

/* A scalar as a C string borrowed from the document; NULL when the node is
 * not a scalar or holds a NUL byte. */
static const char *recipe_scalar(const yaml_node_t *n)
{
	if (n == NULL || n->type != YAML_SCALAR_NODE)
		return NULL;
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
		return NULL;
	return (const char *)n->data.scalar.value;
}

static int recipe_take_string(yaml_node_t *v, const char *key, char **dst, struct err *err)
{
	const char *s = recipe_scalar(v);

	if (s == NULL)
		return err_set(err, ERR_INVAL, "line %zu: %s: expected a string", recipe_line(v), key);
	if (*dst != NULL)
		return err_set(err, ERR_INVAL, "line %zu: %s given twice", recipe_line(v), key);
	*dst = xstrdup(s);
	return 0;
}

static int recipe_take_packages(yaml_document_t *doc, yaml_node_t *v, const char *key, struct strv *out,
                                struct err *err)
{
	yaml_node_item_t *it;

	if (v->type != YAML_SEQUENCE_NODE)
		return err_set(err, ERR_INVAL, "line %zu: %s: expected a list of strings", recipe_line(v),
		               key);
	if (out->n > 0)
		return err_set(err, ERR_INVAL, "line %zu: %s given twice", recipe_line(v), key);
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(doc, *it);
		const char *s = recipe_scalar(item);

		if (s == NULL)
			return err_set(err, ERR_INVAL, "line %zu: %s: expected a list of strings",
			               recipe_line(item != NULL ? item : v), key);
		if (!recipe_package_name_ok(s))
			return err_set(err, ERR_INVAL, "line %zu: %s: bad Debian package name",
			               recipe_line(item), key);
		if (out->n >= RECIPE_MAX_ENTRIES)
			return err_set(err, ERR_LIMIT, "line %zu: %s: more than %d entries",
			               recipe_line(item), key, RECIPE_MAX_ENTRIES);
		strv_push(out, s);
	}
	return 0;
}

static int recipe_take_env(yaml_document_t *doc, yaml_node_t *v, const char *key, struct recipe_env *e,
                           struct err *err)
{
	yaml_node_pair_t *p;
	size_t cap = 0;

	if (v->type != YAML_MAPPING_NODE)
		return err_set(err, ERR_INVAL, "line %zu: %s: expected a map of NAME: value", recipe_line(v),
		               key);
	if (e->n > 0)
		return err_set(err, ERR_INVAL, "line %zu: %s given twice", recipe_line(v), key);
	for (p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(doc, p->value);
		const char *k = recipe_scalar(kn);
		const char *val = recipe_scalar(vn);

		if (k == NULL || !recipe_env_key_ok(k))
			return err_set(err, ERR_INVAL, "line %zu: %s: bad variable name",
			               recipe_line(kn != NULL ? kn : v), key);
		if (val == NULL)
			return err_set(err, ERR_INVAL, "line %zu: %s: %s: expected a string value",
			               recipe_line(vn != NULL ? vn : kn), key, k);
		for (size_t i = 0; i < e->n; i++)
			if (strcmp(e->v[i].key, k) == 0)
				return err_set(err, ERR_INVAL, "line %zu: %s: %s given twice",
				               recipe_line(kn), key, k);
		if (e->n >= RECIPE_MAX_ENTRIES)
			return err_set(err, ERR_LIMIT, "line %zu: %s: more than %d entries", recipe_line(kn),
			               key, RECIPE_MAX_ENTRIES);
		if (e->n == cap) {
			cap = cap ? cap * 2 : 8;
			e->v = xrealloc(e->v, cap * sizeof(*e->v));
		}
		e->v[e->n].key = xstrdup(k);
		e->v[e->n].value = xstrdup(val);
		e->n++;
	}
	return 0;
}

static int recipe_from_root(yaml_document_t *doc, yaml_node_t *root, struct recipe *r, struct err *err)
{
	yaml_node_pair_t *p;
	char *mode = NULL;
	int rc = -1;

	if (root->type != YAML_MAPPING_NODE) {
		err_set(err, ERR_INVAL, "line %zu: a recipe is a map of fields", recipe_line(root));
		goto out;
	}
	for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(doc, p->value);
		const char *k = recipe_scalar(kn);

		if (k == NULL || vn == NULL) {
			err_set(err, ERR_INVAL, "line %zu: field names are strings", recipe_line(root));
			goto out;
		}
		if (strcmp(k, "triple") == 0) {
			if (recipe_take_string(vn, k, &r->triple, err) < 0)
				goto out;
			if (!recipe_triple_valid(r->triple)) {
				err_set(err, ERR_INVAL, "line %zu: triple: must match [a-z0-9_.-]+",
				        recipe_line(vn));
				goto out;
			}
		} else if (strcmp(k, "debian_arch") == 0) {
			if (recipe_take_string(vn, k, &r->debian_arch, err) < 0)
				goto out;
			if (!recipe_name_ok(r->debian_arch, 32, "")) {
				err_set(err, ERR_INVAL, "line %zu: debian_arch: must match [a-z0-9]+",
				        recipe_line(vn));
				goto out;
			}
		} else if (strcmp(k, "gnu_triple") == 0) {
			if (recipe_take_string(vn, k, &r->gnu_triple, err) < 0)
				goto out;
			if (!recipe_triple_valid(r->gnu_triple)) {
				err_set(err, ERR_INVAL, "line %zu: gnu_triple: must match [a-z0-9_.-]+",
				        recipe_line(vn));
				goto out;
			}
		} else if (strcmp(k, "qemu") == 0) {
			if (recipe_take_string(vn, k, &r->qemu, err) < 0)
				goto out;
			if (!recipe_triple_valid(r->qemu)) {
				err_set(err, ERR_INVAL,
				        "line %zu: qemu: a binary name like qemu-aarch64-static, or none",
				        recipe_line(vn));
				goto out;
			}
		} else if (strcmp(k, "suite") == 0) {
			if (recipe_take_string(vn, k, &r->suite, err) < 0)
				goto out;
			if (!recipe_triple_valid(r->suite)) {
				err_set(err, ERR_INVAL, "line %zu: suite: must match [a-z0-9_.-]+",
				        recipe_line(vn));
				goto out;
			}
		} else if (strcmp(k, "mirror") == 0) {
			if (recipe_take_string(vn, k, &r->mirror, err) < 0)
				goto out;
			if (!recipe_mirror_ok(r->mirror)) {
				err_set(err, ERR_INVAL,
				        "line %zu: mirror: must be an http:// or https:// URL",
				        recipe_line(vn));
				goto out;
			}
		} else if (strcmp(k, "mode") == 0) {
			if (recipe_take_string(vn, k, &mode, err) < 0)
				goto out;
			if (recipe_mode_parse(mode, &r->mode, err) < 0) {
				err_set(err, ERR_INVAL, "line %zu: mode: must be cross or emulated",
				        recipe_line(vn));
				goto out;
			}
		} else if (strcmp(k, "packages") == 0) {
			if (recipe_take_packages(doc, vn, k, &r->packages, err) < 0)
				goto out;
		} else if (strcmp(k, "host_packages") == 0) {
			if (recipe_take_packages(doc, vn, k, &r->host_packages, err) < 0)
				goto out;
		} else if (strcmp(k, "env") == 0) {
			if (recipe_take_env(doc, vn, k, &r->env, err) < 0)
				goto out;
		} else if (strcmp(k, "env_cross") == 0) {
			if (recipe_take_env(doc, vn, k, &r->env_cross, err) < 0)
				goto out;
		} else if (strcmp(k, "env_emulated") == 0) {
			if (recipe_take_env(doc, vn, k, &r->env_emulated, err) < 0)
				goto out;
		} else {
			err_set(err, ERR_INVAL, "line %zu: unknown field (see docs/recipes.md)",
			        recipe_line(kn));
			goto out;
		}
	}
	if (r->triple == NULL || r->debian_arch == NULL || r->gnu_triple == NULL || r->qemu == NULL) {
		err_set(err, ERR_INVAL, "line %zu: a recipe needs triple, debian_arch, gnu_triple and qemu",
		        recipe_line(root));
		goto out;
	}
	if (strcmp(r->qemu, "none") == 0) {
		free(r->qemu);
		r->qemu = NULL;
	}
	if (r->suite == NULL)
		r->suite = xstrdup(RECIPE_DEFAULT_SUITE);
	if (r->mirror == NULL)
		r->mirror = xstrdup(RECIPE_DEFAULT_MIRROR);
	rc = 0;
out:
	free(mode);
	return rc;
}

int recipe_parse(const char *buf, size_t len, struct recipe **out, struct err *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	int parser_ok = 0, doc_ok = 0;
	struct recipe *r = NULL;
	yaml_node_t *root;
	int rc = -1;

	if (len > RECIPE_MAX_BYTES) {
		err_set(err, ERR_LIMIT, "recipe is %zu bytes, limit %d", len, RECIPE_MAX_BYTES);
		goto out;
	}
	if (!yaml_parser_initialize(&parser)) {
		err_set(err, ERR_SYS, "yaml_parser_initialize failed");
		goto out;
	}
	parser_ok = 1;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		err_set(err, ERR_INVAL, "line %zu: %s", parser.problem_mark.line + 1,
		        parser.problem != NULL ? parser.problem : "YAML syntax error");
		goto out;
	}
	doc_ok = 1;
	if ((root = yaml_document_get_root_node(&doc)) == NULL) {
		err_set(err, ERR_INVAL, "line 1: empty recipe");
		goto out;
	}
	r = xcalloc(1, sizeof(*r));
	if (recipe_from_root(&doc, root, r, err) < 0)
		goto out;
	*out = r;
	r = NULL;
	rc = 0;
out:
	recipe_free(r);
	if (doc_ok)
		yaml_document_delete(&doc);
	if (parser_ok)
		yaml_parser_delete(&parser);
	return rc;
}

int recipe_load(const char *recipes_dir, const char *triple, struct recipe **out, struct err *err)
{
	struct buf b = BUF_INIT;
	struct recipe *r = NULL;
	char *path = NULL;
	char chunk[4096];
	int fd = -1;
	int rc = -1;

	if (!recipe_triple_valid(triple)) {
		err_set(err, ERR_INVAL, "bad target triple (want [a-z0-9_.-]+)");
		goto out;
	}
	path = xasprintf("%s/%s.yml", recipes_dir, triple);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			err_set(err, ERR_NOTFOUND, "no recipe for target %s in %s", triple, recipes_dir);
		else
			err_errno(err, "open %s", path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_errno(err, "read %s", path);
			goto out;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > RECIPE_MAX_BYTES) {
			err_set(err, ERR_LIMIT, "%s: over %d bytes", path, RECIPE_MAX_BYTES);
			goto out;
		}
		buf_append(&b, chunk, (size_t)n);
	}
	if (recipe_parse(b.data != NULL ? b.data : "", b.len, &r, err) < 0) {
		err_wrap(err, "%s", path);
		goto out;
	}
	if (strcmp(r->triple, triple) != 0) {
		err_set(err, ERR_INVAL, "%s: says triple %s", path, r->triple);
		goto out;
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	recipe_free(r);
	buf_release(&b);
	free(path);
	return rc;
}

static int recipe_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Feeds the packages of v to h sorted and de-duplicated, each NUL-ended. */
static void recipe_hash_packages(struct crypto_sha256 *h, const struct strv *v)
{
	char **sorted = NULL;
	size_t n = v->n;

	if (n == 0)
		return;
	sorted = xmalloc(n * sizeof(*sorted));
	memcpy(sorted, v->v, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), recipe_strcmp);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0)
			continue;
		crypto_sha256_update(h, sorted[i], strlen(sorted[i]) + 1);
	}
	free(sorted);
}

void recipe_hash_hex(const struct recipe *r, char out[65])
{
	struct crypto_sha256 *h = crypto_sha256_new();

	/* Each field NUL-terminated so that field boundaries cannot shift. */
	crypto_sha256_update(h, RECIPE_ROOTFS_LAYOUT, sizeof(RECIPE_ROOTFS_LAYOUT));
	crypto_sha256_update(h, r->debian_arch, strlen(r->debian_arch) + 1);
	crypto_sha256_update(h, r->suite, strlen(r->suite) + 1);
	crypto_sha256_update(h, r->mirror, strlen(r->mirror) + 1);
	recipe_hash_packages(h, &r->packages);
	crypto_sha256_final_hex(h, out);
	crypto_sha256_free(h);
}

void recipe_toolroot_packages(const struct recipe *r, const char *host_arch, struct strv *out)
{
	static const char *const tools[] = {"gcc", "g++", "binutils"};
	int native = strcmp(r->debian_arch, host_arch) == 0;
	char *pkg_triple = xstrdup(r->gnu_triple);

	/* Debian names x86_64-linux-gnu's cross packages gcc-x86-64-linux-gnu. */
	for (char *c = pkg_triple; *c != '\0'; c++)
		if (*c == '_')
			*c = '-';
	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		if (native)
			strv_push(out, tools[i]);
		else
			strv_pushf(out, "%s-%s", tools[i], pkg_triple);
	}
	strv_push(out, "make");
	strv_push(out, "pkg-config");
	for (size_t i = 0; i < r->host_packages.n; i++)
		strv_push(out, r->host_packages.v[i]);
	free(pkg_triple);
}

void recipe_toolroot_hash_hex(const struct recipe *r, const char *host_arch, char out[65])
{
	struct crypto_sha256 *h = crypto_sha256_new();
	struct strv packages = STRV_INIT;
	const char *qemu = r->qemu != NULL ? r->qemu : "none";

	recipe_toolroot_packages(r, host_arch, &packages);
	crypto_sha256_update(h, RECIPE_TOOLROOT_LAYOUT, sizeof(RECIPE_TOOLROOT_LAYOUT));
	crypto_sha256_update(h, host_arch, strlen(host_arch) + 1);
	crypto_sha256_update(h, r->suite, strlen(r->suite) + 1);
	crypto_sha256_update(h, r->mirror, strlen(r->mirror) + 1);
	crypto_sha256_update(h, r->gnu_triple, strlen(r->gnu_triple) + 1);
	crypto_sha256_update(h, qemu, strlen(qemu) + 1);
	recipe_hash_packages(h, &packages);
	crypto_sha256_final_hex(h, out);
	crypto_sha256_free(h);
	strv_release(&packages);
}

static void recipe_env_merge(struct strv *out, const struct recipe_env *base, const struct recipe_env *over)
{
	for (size_t i = 0; i < base->n; i++) {
		int replaced = 0;
		for (size_t j = 0; j < over->n; j++)
			if (strcmp(base->v[i].key, over->v[j].key) == 0)
				replaced = 1;
		if (!replaced)
			strv_pushf(out, "%s=%s", base->v[i].key, base->v[i].value);
	}
	for (size_t j = 0; j < over->n; j++)
		strv_pushf(out, "%s=%s", over->v[j].key, over->v[j].value);
}

void recipe_env_for_mode(const struct recipe *r, enum recipe_mode mode, struct strv *out)
{
	recipe_env_merge(out, &r->env, mode == RECIPE_MODE_EMULATED ? &r->env_emulated : &r->env_cross);
}
