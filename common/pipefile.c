#include "common/pipefile.h"
#include "common/recipe.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <fnmatch.h>

#include <yaml.h>

/* `.anvil.yml` is loaded whole into a libyaml document (the file is capped at
 * PIPEFILE_MAX_BYTES) and the node tree is walked; libyaml does all the YAML. */

#define PIPEFILE_MAX_TIMEOUT_S    (7L * 24 * 3600)
#define PIPEFILE_MAX_TRIPLE_BYTES 64
#define PIPEFILE_MAX_NAME_BYTES   128
#define PIPEFILE_MAX_PATH_BYTES   4096
#define PIPEFILE_SHOW_BYTES       40
#define PIPEFILE_SHOW_BUF         (PIPEFILE_SHOW_BYTES + 4)
#define PIPEFILE_MAX_WHEN         64
#define PIPEFILE_MAX_GLOB_BYTES   512
#define PIPEFILE_MAX_TOOLS        64
#define PIPEFILE_CONTROL_CHARS                                                                               \
	"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17"       \
	"\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"

enum pipefile_key {
	PIPEFILE_KEY_RESERVED = 0,
	PIPEFILE_KEY_TARGETS = 1 << 0,
	PIPEFILE_KEY_ENV = 1 << 1,
	PIPEFILE_KEY_STEPS = 1 << 2,
	PIPEFILE_KEY_ARTIFACTS = 1 << 3,
	PIPEFILE_KEY_NETWORK = 1 << 4,
	PIPEFILE_KEY_TIMEOUT = 1 << 5,
	PIPEFILE_KEY_WHEN = 1 << 6,
	PIPEFILE_KEY_TOOLS = 1 << 7,
	PIPEFILE_KEY_MODE = 1 << 12,
	PIPEFILE_KEY_DEPLOY = 1 << 20,
	PIPEFILE_KEY_JOBS = 1 << 21,
	PIPEFILE_KEY_SERVICES = 1 << 22,
	PIPEFILE_KEY_AUTO_CANCEL = 1 << 23,
	PIPEFILE_KEY_SUBMODULES = 1 << 24,
};

/* The top-level keys: the parser accepts these and no others, and the
 * unknown-key message lists them from here, so the two cannot drift.
 * PIPEFILE_KEY_RESERVED marks keys kept for later features: accepted with any
 * value, ignored for now. */
static const struct {
	const char *name;
	enum pipefile_key key;
} pipefile_keys[] = {
    {"targets", PIPEFILE_KEY_TARGETS},
    {"env", PIPEFILE_KEY_ENV},
    {"steps", PIPEFILE_KEY_STEPS},
    {"artifacts", PIPEFILE_KEY_ARTIFACTS},
    {"network", PIPEFILE_KEY_NETWORK},
    {"timeout", PIPEFILE_KEY_TIMEOUT},
    {"when", PIPEFILE_KEY_WHEN},
    {"mode", PIPEFILE_KEY_MODE},
    {"deploy", PIPEFILE_KEY_DEPLOY},
    {"jobs", PIPEFILE_KEY_JOBS},
    {"tools", PIPEFILE_KEY_TOOLS},
    {"release", PIPEFILE_KEY_RESERVED},
    {"cache", PIPEFILE_KEY_RESERVED},
    {"services", PIPEFILE_KEY_SERVICES},
    {"auto_cancel", PIPEFILE_KEY_AUTO_CANCEL},
    {"submodules", PIPEFILE_KEY_SUBMODULES},
};

#define PIPEFILE_N_KEYS (sizeof(pipefile_keys) / sizeof(pipefile_keys[0]))

/* Appends name to the comma-separated list in out (cap bytes, NUL-terminated);
 * the lists of known keys in messages are built from the parser's tables. */
static void pipefile_list_add(char *out, size_t cap, const char *name)
{
	size_t len = strlen(out);

	snprintf(out + len, cap - len, "%s%s", len > 0 ? ", " : "", name);
}

/* Every message about the file's content starts with the node's 1-based
 * position: the user fixes a file, not a parser state. */
static int pipefile_fail(struct err *err, enum err_code code, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int pipefile_fail(struct err *err, enum err_code code, const yaml_node_t *node, const char *fmt, ...)
{
	char msg[224];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(err, code, "line %zu, column %zu: %s", node->start_mark.line + 1,
	               node->start_mark.column + 1, msg);
}

/* Repository text shown in an error: printable ASCII only, cut short. */
static const char *pipefile_show(char out[PIPEFILE_SHOW_BUF], const char *s, size_t len)
{
	size_t i, n = len < PIPEFILE_SHOW_BYTES ? len : PIPEFILE_SHOW_BYTES;

	for (i = 0; i < n; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (n < len) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

static const char *pipefile_kind(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_SCALAR_NODE:
		return "a scalar";
	case YAML_SEQUENCE_NODE:
		return "a sequence";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

/* A plain empty, `~` or `null` scalar: an optional key given no value. */
static int pipefile_is_null(const yaml_node_t *node)
{
	const char *v;

	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	v = (const char *)node->data.scalar.value;
	return node->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* Borrows a scalar's text. A double-quoted "\0" puts a NUL inside a scalar;
 * such text would be cut short by every C consumer, so it is refused. */
static int pipefile_scalar(const yaml_node_t *node, const char *what, const char **out, struct err *err)
{
	if (node->type != YAML_SCALAR_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "%s: expected a scalar, found %s", what,
		                     pipefile_kind(node));
	if (memchr(node->data.scalar.value, '\0', node->data.scalar.length) != NULL)
		return pipefile_fail(err, ERR_INVAL, node, "%s: contains a NUL character", what);
	*out = (const char *)node->data.scalar.value;
	return 0;
}

static size_t pipefile_line_of(const char *buf, size_t len, size_t offset)
{
	size_t i, line = 1;

	for (i = 0; i < offset && i < len; i++)
		if (buf[i] == '\n')
			line++;
	return line;
}

static int pipefile_yaml_error(const yaml_parser_t *parser, const char *buf, size_t len, struct err *err)
{
	const char *problem = parser->problem ? parser->problem : "syntax error";

	switch (parser->error) {
	case YAML_MEMORY_ERROR:
		return err_set(err, ERR_SYS, "yaml: out of memory");
	case YAML_READER_ERROR:
		if (parser->problem_value != -1)
			return err_set(err, ERR_INVAL, "line %zu: %s (#%X at byte %zu)",
			               pipefile_line_of(buf, len, parser->problem_offset), problem,
			               (unsigned)parser->problem_value, parser->problem_offset);
		return err_set(err, ERR_INVAL, "line %zu: %s",
		               pipefile_line_of(buf, len, parser->problem_offset), problem);
	case YAML_SCANNER_ERROR:
	case YAML_PARSER_ERROR:
	case YAML_COMPOSER_ERROR:
		if (parser->context != NULL)
			return err_set(err, ERR_INVAL, "line %zu, column %zu: %s (%s at line %zu)",
			               parser->problem_mark.line + 1, parser->problem_mark.column + 1,
			               problem, parser->context, parser->context_mark.line + 1);
		return err_set(err, ERR_INVAL, "line %zu, column %zu: %s", parser->problem_mark.line + 1,
		               parser->problem_mark.column + 1, problem);
	default:
		return err_set(err, ERR_INVAL, "yaml: %s", problem);
	}
}

/* Counts one more reference to node id; 0 while the tree is a tree. */
static int pipefile_ref(unsigned char *seen, size_t n, int id)
{
	if (id < 1 || (size_t)id > n || seen[id])
		return -1;
	seen[id] = 1;
	return 0;
}

/* libyaml's loader turns an alias into a second reference to its anchor's
 * node, so in a tree without aliases every node has exactly one parent.
 * Refusing shared nodes keeps the walk linear (no billion laughs) and
 * acyclic (an anchor may be referenced from inside itself). */
static int pipefile_check_tree(yaml_document_t *doc, struct err *err)
{
	size_t n = (size_t)(doc->nodes.top - doc->nodes.start), i;
	unsigned char *seen = xcalloc(n + 1, 1); /* owned; indexed by 1-based node id */
	int bad = 0;
	int rc = -1;

	seen[1] = 1;
	for (i = 0; i < n && bad == 0; i++) {
		yaml_node_t *node = doc->nodes.start + i;
		yaml_node_item_t *it;
		yaml_node_pair_t *p;

		if (node->type == YAML_SEQUENCE_NODE) {
			for (it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++)
				if (pipefile_ref(seen, n, *it) < 0) {
					bad = *it;
					break;
				}
		} else if (node->type == YAML_MAPPING_NODE) {
			for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
				if (pipefile_ref(seen, n, p->key) < 0) {
					bad = p->key;
					break;
				}
				if (pipefile_ref(seen, n, p->value) < 0) {
					bad = p->value;
					break;
				}
			}
		}
	}
	if (bad != 0) {
		yaml_node_t *node = yaml_document_get_node(doc, bad);

		if (node == NULL)
			err_set(err, ERR_INVAL, "yaml: broken document (node %d)", bad);
		else
			pipefile_fail(
			    err, ERR_INVAL, node,
			    "anchors and aliases (&name, *name) are not supported in a pipeline file");
		goto out;
	}
	rc = 0;
out:
	free(seen);
	return rc;
}

/* [a-z0-9_.-]+, the shape of a target triple (and "host"). */
static int pipefile_triple_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > PIPEFILE_MAX_TRIPLE_BYTES)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

static int pipefile_env_key_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return 0;
	for (i = 1; i < len; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

static int pipefile_load_targets(yaml_document_t *doc, const yaml_node_t *node, struct pipefile *pf,
                                 struct err *err)
{
	size_t n, i, j;

	if (pipefile_is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "targets: expected a sequence, found %s",
		                     pipefile_kind(node));
	n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	if (n > PIPEFILE_MAX_TARGETS)
		return pipefile_fail(err, ERR_LIMIT, node, "targets: %zu targets, limit %d", n,
		                     PIPEFILE_MAX_TARGETS);
	for (i = 0; i < n; i++) {
		yaml_node_t *item = yaml_document_get_node(doc, node->data.sequence.items.start[i]);
		char what[32], show[PIPEFILE_SHOW_BUF];
		const char *t;
		size_t len;

		snprintf(what, sizeof(what), "targets[%zu]", i);
		if (pipefile_scalar(item, what, &t, err) < 0)
			return -1;
		len = item->data.scalar.length;
		if (!pipefile_triple_ok(t, len))
			return pipefile_fail(
			    err, ERR_INVAL, item,
			    "%s: '%s' is not a target triple ([a-z0-9_.-]+, at most %d bytes)", what,
			    pipefile_show(show, t, len), PIPEFILE_MAX_TRIPLE_BYTES);
		for (j = 0; j < pf->targets.n; j++)
			if (strcmp(pf->targets.v[j], t) == 0)
				return pipefile_fail(err, ERR_INVAL, item, "%s: duplicate target '%s'", what,
				                     pipefile_show(show, t, len));
		strv_push(&pf->targets, t);
	}
	return 0;
}

/* `tools: [autoconf, automake]`: Debian package names, as a recipe's. */
static int pipefile_load_tools(yaml_document_t *doc, const yaml_node_t *node, struct pipefile *pf,
                               struct err *err)
{
	size_t n, i, j;

	if (pipefile_is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "tools: expected a sequence, found %s",
		                     pipefile_kind(node));
	n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	if (n > PIPEFILE_MAX_TOOLS)
		return pipefile_fail(err, ERR_LIMIT, node, "tools: %zu entries, limit %d", n,
		                     PIPEFILE_MAX_TOOLS);
	for (i = 0; i < n; i++) {
		yaml_node_t *item = yaml_document_get_node(doc, node->data.sequence.items.start[i]);
		char what[32], show[PIPEFILE_SHOW_BUF];
		const char *t;
		size_t len;

		snprintf(what, sizeof(what), "tools[%zu]", i);
		if (pipefile_scalar(item, what, &t, err) < 0)
			return -1;
		len = item->data.scalar.length;
		if (!recipe_package_name_ok(t))
			return pipefile_fail(err, ERR_INVAL, item,
			                     "%s: '%s' is not a Debian package name ([a-z0-9][a-z0-9.+-]*, "
			                     "at most 128 bytes)",
			                     what, pipefile_show(show, t, len));
		for (j = 0; j < pf->tools.n; j++)
			if (strcmp(pf->tools.v[j], t) == 0)
				return pipefile_fail(err, ERR_INVAL, item, "%s: duplicate tool '%s'", what,
				                     pipefile_show(show, t, len));
		strv_push(&pf->tools, t);
	}
	return 0;
}

static int pipefile_load_env(yaml_document_t *doc, const yaml_node_t *node, struct pipefile *pf,
                             struct err *err)
{
	yaml_node_pair_t *p;

	if (pipefile_is_null(node))
		return 0;
	if (node->type != YAML_MAPPING_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "env: expected a mapping, found %s",
		                     pipefile_kind(node));
	for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		char what[PIPEFILE_SHOW_BUF + 8], show[PIPEFILE_SHOW_BUF];
		const char *key, *val;
		size_t klen, j;

		if (pipefile_scalar(k, "env key", &key, err) < 0)
			return -1;
		klen = k->data.scalar.length;
		if (!pipefile_env_key_ok(key, klen))
			return pipefile_fail(err, ERR_INVAL, k,
			                     "env: '%s' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
			                     pipefile_show(show, key, klen));
		for (j = 0; j < pf->env.n; j++)
			if (strncmp(pf->env.v[j], key, klen) == 0 && pf->env.v[j][klen] == '=')
				return pipefile_fail(err, ERR_INVAL, k, "env: duplicate variable '%s'",
				                     pipefile_show(show, key, klen));
		snprintf(what, sizeof(what), "env.%s", pipefile_show(show, key, klen));
		if (pipefile_scalar(v, what, &val, err) < 0)
			return -1;
		strv_pushf(&pf->env, "%s=%s", key, val);
	}
	return 0;
}

static int pipefile_name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > PIPEFILE_MAX_NAME_BYTES)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static int pipefile_blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return 0;
	return 1;
}

static int pipefile_load_timeout(const yaml_node_t *node, struct pipefile *pf, struct err *err);

/* A step's `timeout:` and `on:`. */
static int pipefile_load_step_extra(const yaml_node_t *timeout_node, const yaml_node_t *on_node, size_t i,
                                    struct pipefile_step *st, struct err *err)
{
	char show[PIPEFILE_SHOW_BUF];

	if (timeout_node != NULL) {
		struct pipefile tmp = {0};

		if (pipefile_load_timeout(timeout_node, &tmp, err) < 0) {
			char msg[sizeof(err->msg)];
			snprintf(msg, sizeof(msg), "%s", err->msg);
			return err_set(err, err->code, "%s (steps[%zu].timeout)", msg, i);
		}
		st->timeout_s = tmp.timeout_s;
	}
	if (on_node != NULL) {
		const char *s;
		char what[48];

		snprintf(what, sizeof(what), "steps[%zu].on", i);
		if (pipefile_scalar(on_node, what, &s, err) < 0)
			return -1;
		if (strcmp(s, "success") == 0)
			st->on = PIPEFILE_ON_SUCCESS;
		else if (strcmp(s, "failure") == 0)
			st->on = PIPEFILE_ON_FAILURE;
		else if (strcmp(s, "always") == 0)
			st->on = PIPEFILE_ON_ALWAYS;
		else
			return pipefile_fail(err, ERR_INVAL, on_node,
			                     "%s: expected success, failure or always, found '%s'", what,
			                     pipefile_show(show, s, on_node->data.scalar.length));
	}
	return 0;
}

static int pipefile_load_step(yaml_document_t *doc, const yaml_node_t *node, size_t i,
                              struct pipefile_step *st, struct err *err)
{
	char what[48], show[PIPEFILE_SHOW_BUF];
	const yaml_node_t *run_node = NULL, *name_node = NULL, *timeout_node = NULL, *on_node = NULL;
	const char *run = NULL, *name = NULL;
	yaml_node_pair_t *p;

	snprintf(what, sizeof(what), "steps[%zu]", i);
	if (node->type == YAML_SCALAR_NODE) {
		run_node = node;
	} else if (node->type == YAML_MAPPING_NODE) {
		for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			yaml_node_t *v = yaml_document_get_node(doc, p->value);
			const char *key;

			if (pipefile_scalar(k, what, &key, err) < 0)
				return -1;
			if (strcmp(key, "run") == 0 || strcmp(key, "name") == 0 ||
			    strcmp(key, "timeout") == 0 || strcmp(key, "on") == 0) {
				const yaml_node_t **slot = key[0] == 'r'   ? &run_node
				                           : key[0] == 'n' ? &name_node
				                           : key[0] == 't' ? &timeout_node
				                                           : &on_node;

				if (*slot != NULL)
					return pipefile_fail(err, ERR_INVAL, k, "%s: duplicate key '%s'",
					                     what, key);
				*slot = v;
			} else {
				return pipefile_fail(
				    err, ERR_INVAL, k,
				    "%s: unknown key '%s' (a step has name, run, timeout, on)", what,
				    pipefile_show(show, key, k->data.scalar.length));
			}
		}
		if (run_node == NULL)
			return pipefile_fail(err, ERR_INVAL, node, "%s: missing 'run'", what);
	} else {
		return pipefile_fail(err, ERR_INVAL, node, "%s: expected a mapping or a command, found %s",
		                     what, pipefile_kind(node));
	}

	snprintf(what, sizeof(what), "steps[%zu].run", i);
	if (pipefile_scalar(run_node, what, &run, err) < 0)
		return -1;
	if (pipefile_is_null(run_node) || pipefile_blank(run))
		return pipefile_fail(err, ERR_INVAL, run_node, "%s: empty command", what);
	if (name_node != NULL) {
		snprintf(what, sizeof(what), "steps[%zu].name", i);
		if (pipefile_scalar(name_node, what, &name, err) < 0)
			return -1;
		if (!pipefile_name_ok(name, name_node->data.scalar.length))
			return pipefile_fail(
			    err, ERR_INVAL, name_node,
			    "%s: must be one line of 1 to %d bytes without control characters", what,
			    PIPEFILE_MAX_NAME_BYTES);
		st->name = xstrdup(name);
	} else {
		/* Every message says "step %s": the default name is the number alone,
		 * so that an unnamed step reads "step 2", not "step step 2". */
		st->name = xasprintf("%zu", i + 1);
	}
	st->run = xstrdup(run);
	return pipefile_load_step_extra(timeout_node, on_node, i, st, err);
}

static int pipefile_load_steps(yaml_document_t *doc, const yaml_node_t *node, struct pipefile *pf,
                               struct err *err)
{
	size_t n, i;

	if (node->type != YAML_SEQUENCE_NODE ||
	    node->data.sequence.items.top == node->data.sequence.items.start)
		return pipefile_fail(err, ERR_INVAL, node, "steps: expected a non-empty sequence, found %s",
		                     node->type == YAML_SEQUENCE_NODE ? "an empty one"
		                     : pipefile_is_null(node)         ? "nothing"
		                                                      : pipefile_kind(node));
	n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	if (n > PIPEFILE_MAX_STEPS)
		return pipefile_fail(err, ERR_LIMIT, node, "steps: %zu steps, limit %d", n,
		                     PIPEFILE_MAX_STEPS);
	pf->steps = xcalloc(n, sizeof(*pf->steps));
	for (i = 0; i < n; i++) {
		yaml_node_t *item = yaml_document_get_node(doc, node->data.sequence.items.start[i]);

		int rc = pipefile_load_step(doc, item, i, &pf->steps[i], err);

		pf->n_steps = i + 1; /* freed by pipefile_free even half loaded */
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Relative, inside the workspace: no leading '/', no ".." component. */
static int pipefile_artifact_check(const yaml_node_t *node, const char *what, const char *s, struct err *err)
{
	char show[PIPEFILE_SHOW_BUF];
	size_t len = strlen(s);
	const char *c = s;

	if (len == 0 || len > PIPEFILE_MAX_PATH_BYTES)
		return pipefile_fail(err, ERR_INVAL, node, "%s: path must be 1 to %d bytes", what,
		                     PIPEFILE_MAX_PATH_BYTES);
	if (s[0] == '/')
		return pipefile_fail(err, ERR_INVAL, node,
		                     "%s: '%s' is absolute; paths are relative to the workspace", what,
		                     pipefile_show(show, s, len));
	while (*c != '\0') {
		size_t seg = strcspn(c, "/");

		if (seg == 2 && c[0] == '.' && c[1] == '.')
			return pipefile_fail(err, ERR_INVAL, node, "%s: '%s' has a '..' component", what,
			                     pipefile_show(show, s, len));
		c += seg;
		if (*c == '/')
			c++;
	}
	return 0;
}

static int pipefile_load_artifacts(yaml_document_t *doc, const yaml_node_t *node, struct pipefile *pf,
                                   struct err *err)
{
	size_t n, i;

	if (pipefile_is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "artifacts: expected a sequence, found %s",
		                     pipefile_kind(node));
	n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	for (i = 0; i < n; i++) {
		yaml_node_t *item = yaml_document_get_node(doc, node->data.sequence.items.start[i]);
		char what[32];
		const char *s;

		snprintf(what, sizeof(what), "artifacts[%zu]", i);
		if (pipefile_scalar(item, what, &s, err) < 0 ||
		    pipefile_artifact_check(item, what, s, err) < 0)
			return -1;
		strv_push(&pf->artifacts, s);
	}
	return 0;
}

/* A YAML boolean (true/yes/on, false/no/off) of key name into *out. */
static int pipefile_load_bool(const yaml_node_t *node, const char *name, int *out, struct err *err)
{
	static const char *const yes[] = {"true", "yes", "on", NULL};
	static const char *const no[] = {"false", "no", "off", NULL};
	char show[PIPEFILE_SHOW_BUF];
	const char *s;
	size_t i;

	if (pipefile_scalar(node, name, &s, err) < 0)
		return -1;
	for (i = 0; yes[i] != NULL; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return pipefile_fail(err, ERR_INVAL, node, "%s: expected true or false, found '%s'", name,
	                     pipefile_show(show, s, node->data.scalar.length));
}

static int pipefile_load_network(const yaml_node_t *node, struct pipefile *pf, struct err *err)
{
	return pipefile_load_bool(node, "network", &pf->network, err);
}

/* `mode: cross` or `mode: emulated` (see docs/recipes.md). */
static int pipefile_load_mode(const yaml_node_t *node, struct pipefile *pf, struct err *err)
{
	char show[PIPEFILE_SHOW_BUF];
	const char *s;

	if (pipefile_scalar(node, "mode", &s, err) < 0)
		return -1;
	if (strcmp(s, "cross") != 0 && strcmp(s, "emulated") != 0)
		return pipefile_fail(err, ERR_INVAL, node, "mode: expected cross or emulated, found '%s'",
		                     pipefile_show(show, s, node->data.scalar.length));
	free(pf->mode);
	pf->mode = xstrdup(s);
	return 0;
}

/* "90" (seconds), "90s", "30m", "2h". */
static int pipefile_load_timeout(const yaml_node_t *node, struct pipefile *pf, struct err *err)
{
	char show[PIPEFILE_SHOW_BUF];
	const char *s, *p;
	long v = 0, mult = 1;

	if (pipefile_scalar(node, "timeout", &s, err) < 0)
		return -1;
	for (p = s; *p >= '0' && *p <= '9'; p++)
		if (v <= PIPEFILE_MAX_TIMEOUT_S)
			v = v * 10 + (*p - '0');
	if (p != s && p[0] != '\0' && p[1] == '\0') {
		mult = p[0] == 's' ? 1 : p[0] == 'm' ? 60 : p[0] == 'h' ? 3600 : 0;
		p += mult != 0;
	}
	if (p == s || *p != '\0')
		return pipefile_fail(
		    err, ERR_INVAL, node,
		    "timeout: '%s' is not a duration (seconds, or a number followed by s, m or h)",
		    pipefile_show(show, s, node->data.scalar.length));
	if (v == 0 || v > PIPEFILE_MAX_TIMEOUT_S / mult)
		return pipefile_fail(err, ERR_INVAL, node, "timeout: must be from 1s to %ldh",
		                     PIPEFILE_MAX_TIMEOUT_S / 3600);
	pf->timeout_s = v * mult;
	return 0;
}

/* One `when:` list: a scalar or a sequence of scalars. */
static int pipefile_load_when_list(yaml_document_t *doc, const yaml_node_t *node, const char *key,
                                   struct strv *out, struct err *err)
{
	char what[48], show[PIPEFILE_SHOW_BUF];
	size_t n = 1, i;

	if (pipefile_is_null(node))
		return 0;
	if (node->type == YAML_SEQUENCE_NODE)
		n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	else if (node->type != YAML_SCALAR_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "when.%s: expected a sequence, found %s", key,
		                     pipefile_kind(node));
	if (n > PIPEFILE_MAX_WHEN)
		return pipefile_fail(err, ERR_LIMIT, node, "when.%s: %zu entries, limit %d", key, n,
		                     PIPEFILE_MAX_WHEN);
	for (i = 0; i < n; i++) {
		const yaml_node_t *item =
		    node->type == YAML_SCALAR_NODE
		        ? node
		        : yaml_document_get_node(doc, node->data.sequence.items.start[i]);
		const char *v;
		size_t len;

		snprintf(what, sizeof(what), "when.%s[%zu]", key, i);
		if (pipefile_scalar(item, what, &v, err) < 0)
			return -1;
		len = item->data.scalar.length;
		if (len == 0 || len > PIPEFILE_MAX_GLOB_BYTES || strcspn(v, PIPEFILE_CONTROL_CHARS) != len)
			return pipefile_fail(err, ERR_INVAL, item,
			                     "%s: must be 1 to %d bytes without control characters", what,
			                     PIPEFILE_MAX_GLOB_BYTES);
		if (strcmp(key, "event") == 0 && strcmp(v, "push") != 0 && strcmp(v, "tag") != 0 &&
		    strcmp(v, "manual") != 0 && strcmp(v, "pull_request") != 0 && strcmp(v, "cron") != 0)
			return pipefile_fail(
			    err, ERR_INVAL, item,
			    "%s: unknown event '%s' (known: push, tag, manual, pull_request, cron)", what,
			    pipefile_show(show, v, len));
		strv_push(out, v);
	}
	return 0;
}

static int pipefile_load_when(yaml_document_t *doc, const yaml_node_t *node, struct pipefile *pf,
                              struct err *err)
{
	static const char *const keys[] = {"branch", "tag", "event", "path"};
	struct strv *lists[] = {&pf->when.branch, &pf->when.tag, &pf->when.event, &pf->when.path};
	unsigned seen = 0;
	yaml_node_pair_t *p;

	if (pipefile_is_null(node))
		return 0;
	if (node->type != YAML_MAPPING_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "when: expected a mapping, found %s",
		                     pipefile_kind(node));
	for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		char show[PIPEFILE_SHOW_BUF];
		const char *key;
		size_t i;

		if (pipefile_scalar(k, "when key", &key, err) < 0)
			return -1;
		for (i = 0; i < 4; i++)
			if (strcmp(key, keys[i]) == 0)
				break;
		if (i == 4)
			return pipefile_fail(err, ERR_INVAL, k,
			                     "when: unknown key '%s' (known: branch, tag, event, path)",
			                     pipefile_show(show, key, k->data.scalar.length));
		if (seen & (1u << i))
			return pipefile_fail(err, ERR_INVAL, k, "when: duplicate key '%s'", key);
		seen |= 1u << i;
		if (pipefile_load_when_list(doc, v, keys[i], lists[i], err) < 0)
			return -1;
	}
	return 0;
}

/* ---- deploy: ---- */

static void pipefile_deploy_release(struct pipefile_deploy *d)
{
	free(d->group);
	strv_release(&d->on_branch);
	strv_release(&d->on_tag);
	free(d->install);
	strv_release(&d->files);
	free(d->target);
	free(d->restart);
	free(d->health);
	memset(d, 0, sizeof(*d));
}

/* A scalar of one line, 1 to max bytes, no control characters (tabs allowed
 * only when multiline is set: shell text). */
static int pipefile_deploy_text(const yaml_node_t *node, const char *what, size_t max, int multiline,
                                char **out, struct err *err)
{
	const char *s;
	size_t len;

	if (pipefile_scalar(node, what, &s, err) < 0)
		return -1;
	len = node->data.scalar.length;
	if (len == 0 || len > max || pipefile_blank(s))
		return pipefile_fail(err, ERR_INVAL, node, "%s: must be 1 to %zu bytes", what, max);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && !(multiline && (c == '\n' || c == '\t'))) || c == 0x7f)
			return pipefile_fail(err, ERR_INVAL, node, "%s: holds a control character", what);
	}
	free(*out);
	*out = xstrdup(s);
	return 0;
}

/* A non-negative integer scalar up to max. */
static int pipefile_deploy_int(const yaml_node_t *node, const char *what, long max, long *out,
                               struct err *err)
{
	char show[PIPEFILE_SHOW_BUF];
	const char *s, *p;
	long v = 0;

	if (pipefile_scalar(node, what, &s, err) < 0)
		return -1;
	for (p = s; *p >= '0' && *p <= '9'; p++)
		if (v <= max)
			v = v * 10 + (*p - '0');
	if (p == s || *p != '\0' || v > max)
		return pipefile_fail(err, ERR_INVAL, node, "%s: '%s' is not an integer from 0 to %ld", what,
		                     pipefile_show(show, s, node->data.scalar.length), max);
	*out = v;
	return 0;
}

/* [A-Za-z0-9._-]+, not starting with '.' or '-': a board group. */
static int pipefile_group_ok(const char *s, size_t len)
{
	if (len == 0 || len > 100 || s[0] == '.' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* One glob or a sequence of globs of `on:`. */
static int pipefile_deploy_globs(yaml_document_t *doc, const yaml_node_t *node, const char *what,
                                 struct strv *out, struct err *err)
{
	size_t n = 1, i;

	if (node->type == YAML_SEQUENCE_NODE)
		n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	else if (node->type != YAML_SCALAR_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "%s: expected a glob or a sequence, found %s",
		                     what, pipefile_kind(node));
	if (n == 0 || n > PIPEFILE_MAX_WHEN)
		return pipefile_fail(err, ERR_LIMIT, node, "%s: 1 to %d globs", what, PIPEFILE_MAX_WHEN);
	for (i = 0; i < n; i++) {
		const yaml_node_t *item =
		    node->type == YAML_SCALAR_NODE
		        ? node
		        : yaml_document_get_node(doc, node->data.sequence.items.start[i]);
		char w[96];
		char *g = NULL;

		snprintf(w, sizeof(w), "%s[%zu]", what, i);
		if (pipefile_deploy_text(item, w, PIPEFILE_MAX_GLOB_BYTES, 0, &g, err) < 0)
			return -1;
		strv_push(out, g);
		free(g);
	}
	return 0;
}

/* `on: {branch: GLOBS, tag: GLOBS}`. */
static int pipefile_deploy_on(yaml_document_t *doc, const yaml_node_t *node, struct pipefile_deploy *d,
                              const char *what, struct err *err)
{
	yaml_node_pair_t *p;

	if (node->type != YAML_MAPPING_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "%s.on: expected a mapping, found %s", what,
		                     pipefile_kind(node));
	for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		char show[PIPEFILE_SHOW_BUF], w[64];
		const char *key;
		struct strv *list;

		if (pipefile_scalar(k, "on key", &key, err) < 0)
			return -1;
		if (strcmp(key, "branch") == 0)
			list = &d->on_branch;
		else if (strcmp(key, "tag") == 0)
			list = &d->on_tag;
		else
			return pipefile_fail(err, ERR_INVAL, k,
			                     "%s.on: unknown key '%s' (known: branch, tag)", what,
			                     pipefile_show(show, key, k->data.scalar.length));
		if (list->n > 0)
			return pipefile_fail(err, ERR_INVAL, k, "%s.on: duplicate key '%s'", what, key);
		snprintf(w, sizeof(w), "%s.on.%s", what, key);
		if (pipefile_deploy_globs(doc, v, w, list, err) < 0)
			return -1;
	}
	return 0;
}

/* `strategy: {canary: N, batch: N | "P%"}`. */
static int pipefile_deploy_strategy(yaml_document_t *doc, const yaml_node_t *node, struct pipefile_deploy *d,
                                    const char *what, struct err *err)
{
	yaml_node_pair_t *p;
	char w[64], show[PIPEFILE_SHOW_BUF];

	if (node->type != YAML_MAPPING_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "%s.strategy: expected a mapping, found %s", what,
		                     pipefile_kind(node));
	for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		const char *key, *s;
		long n;

		if (pipefile_scalar(k, "strategy key", &key, err) < 0)
			return -1;
		snprintf(w, sizeof(w), "%s.strategy.%s", what,
		         strcmp(key, "canary") == 0 ? "canary" : "batch");
		if (strcmp(key, "canary") == 0) {
			if (pipefile_deploy_int(v, w, 1000, &n, err) < 0)
				return -1;
			d->canary = (int)n;
		} else if (strcmp(key, "batch") == 0) {
			size_t len;
			if (pipefile_scalar(v, w, &s, err) < 0)
				return -1;
			len = v->data.scalar.length;
			if (len > 1 && s[len - 1] == '%') {
				char num[8];
				long pct = 0;
				size_t i;
				if (len - 1 >= sizeof(num))
					return pipefile_fail(err, ERR_INVAL, v,
					                     "%s: percentage from 1%% to 100%%", w);
				for (i = 0; i + 1 < len; i++) {
					if (s[i] < '0' || s[i] > '9')
						return pipefile_fail(
						    err, ERR_INVAL, v,
						    "%s: '%s' is not a count or a percentage", w,
						    pipefile_show(show, s, len));
					pct = pct * 10 + (s[i] - '0');
				}
				if (pct < 1 || pct > 100)
					return pipefile_fail(err, ERR_INVAL, v,
					                     "%s: percentage from 1%% to 100%%", w);
				d->batch_pct = (int)pct;
				d->batch_count = 0;
			} else {
				if (pipefile_deploy_int(v, w, 1000, &n, err) < 0)
					return -1;
				if (n < 1)
					return pipefile_fail(err, ERR_INVAL, v,
					                     "%s: at least 1 board per batch", w);
				d->batch_count = (int)n;
				d->batch_pct = 0;
			}
		} else {
			return pipefile_fail(err, ERR_INVAL, k,
			                     "%s.strategy: unknown key '%s' (known: canary, batch)", what,
			                     pipefile_show(show, key, k->data.scalar.length));
		}
	}
	return 0;
}

static int pipefile_load_deploy(yaml_document_t *doc, const yaml_node_t *node, size_t idx,
                                struct pipefile_deploy *d, struct err *err)
{
	char what[32], w[64], show[PIPEFILE_SHOW_BUF];
	yaml_node_pair_t *p;
	unsigned seen = 0;

	snprintf(what, sizeof(what), "deploy[%zu]", idx);
	d->canary = 1;
	if (node->type != YAML_MAPPING_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "%s: expected a mapping, found %s", what,
		                     pipefile_kind(node));
	for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
		static const char *const keys[] = {"group",  "on",       "install", "files",
		                                   "target", "restart",  "health",  "health_timeout",
		                                   "keep",   "strategy", "approve"};
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		const char *key, *s;
		size_t i, n;
		long num;
		int rc = 0;

		if (pipefile_scalar(k, what, &key, err) < 0)
			return -1;
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(key, keys[i]) == 0)
				break;
		if (i == sizeof(keys) / sizeof(keys[0])) {
			char known[128] = "";

			for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
				pipefile_list_add(known, sizeof(known), keys[i]);
			return pipefile_fail(err, ERR_INVAL, k, "%s: unknown key '%s' (known: %s)", what,
			                     pipefile_show(show, key, k->data.scalar.length), known);
		}
		if (seen & (1u << i))
			return pipefile_fail(err, ERR_INVAL, k, "%s: duplicate key '%s'", what, key);
		seen |= 1u << i;
		snprintf(w, sizeof(w), "%s.%s", what, keys[i]);
		switch (i) {
		case 0:
			if (pipefile_scalar(v, w, &s, err) < 0)
				return -1;
			if (!pipefile_group_ok(s, v->data.scalar.length))
				return pipefile_fail(err, ERR_INVAL, v,
				                     "%s: '%s' is not a group name ([A-Za-z0-9._-]+)", w,
				                     pipefile_show(show, s, v->data.scalar.length));
			d->group = xstrdup(s);
			break;
		case 1:
			rc = pipefile_deploy_on(doc, v, d, what, err);
			break;
		case 2:
			if ((rc = pipefile_deploy_text(v, w, PIPEFILE_MAX_PATH_BYTES, 0, &d->install, err)) ==
			        0 &&
			    (d->install[0] != '/' || strstr(d->install, "/../") != NULL ||
			     strcmp(d->install, "/") == 0 || strchr(d->install, '\'') != NULL))
				return pipefile_fail(
				    err, ERR_INVAL, v,
				    "%s: '%s' must be an absolute directory other than /, without '..'", w,
				    pipefile_show(show, d->install, strlen(d->install)));
			break;
		case 3:
			if (v->type != YAML_SEQUENCE_NODE ||
			    v->data.sequence.items.top == v->data.sequence.items.start)
				return pipefile_fail(err, ERR_INVAL, v,
				                     "%s: expected a non-empty sequence of artifact names",
				                     w);
			n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
			if (n > 256)
				return pipefile_fail(err, ERR_LIMIT, v, "%s: %zu files, limit 256", w, n);
			for (i = 0; i < n; i++) {
				yaml_node_t *item =
				    yaml_document_get_node(doc, v->data.sequence.items.start[i]);
				char fw[128];
				snprintf(fw, sizeof(fw), "%s[%zu]", w, i);
				if (pipefile_scalar(item, fw, &s, err) < 0 ||
				    pipefile_artifact_check(item, fw, s, err) < 0)
					return -1;
				if (strchr(s, '*') || strchr(s, '?') || strchr(s, '['))
					return pipefile_fail(err, ERR_INVAL, item,
					                     "%s: an artifact name, not a glob", fw);
				strv_push(&d->files, s);
			}
			break;
		case 4:
			if (pipefile_scalar(v, w, &s, err) < 0)
				return -1;
			if (!pipefile_triple_ok(s, v->data.scalar.length))
				return pipefile_fail(err, ERR_INVAL, v, "%s: '%s' is not a target triple", w,
				                     pipefile_show(show, s, v->data.scalar.length));
			d->target = xstrdup(s);
			break;
		case 5:
			rc = pipefile_deploy_text(v, w, 4096, 1, &d->restart, err);
			break;
		case 6:
			rc = pipefile_deploy_text(v, w, 4096, 1, &d->health, err);
			break;
		case 7: {
			struct pipefile tmp = {0};
			if (pipefile_load_timeout(v, &tmp, err) < 0) {
				char msg[sizeof(err->msg)];
				snprintf(msg, sizeof(msg), "%s", err->msg);
				return err_set(err, err->code, "%s (%s)", msg, w);
			}
			if (tmp.timeout_s > 3600)
				return pipefile_fail(err, ERR_INVAL, v, "%s: at most 1h", w);
			d->health_timeout_s = tmp.timeout_s;
			break;
		}
		case 8:
			if ((rc = pipefile_deploy_int(v, w, 100, &num, err)) == 0)
				d->keep = (int)num;
			break;
		case 9:
			rc = pipefile_deploy_strategy(doc, v, d, what, err);
			break;
		case 10:
			rc = pipefile_load_bool(v, w, &d->approve, err);
			break;
		}
		if (rc < 0)
			return -1;
	}
	if (d->group == NULL)
		return pipefile_fail(err, ERR_INVAL, node, "%s: missing 'group'", what);
	if (d->install == NULL)
		return pipefile_fail(err, ERR_INVAL, node, "%s: missing 'install'", what);
	if (d->files.n == 0)
		return pipefile_fail(err, ERR_INVAL, node, "%s: missing 'files'", what);
	return 0;
}

static int pipefile_load_deploys(yaml_document_t *doc, const yaml_node_t *node, struct pipefile *pf,
                                 struct err *err)
{
	size_t n, i, j;

	if (pipefile_is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "deploy: expected a sequence, found %s",
		                     pipefile_kind(node));
	n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	if (n > PIPEFILE_MAX_DEPLOYS)
		return pipefile_fail(err, ERR_LIMIT, node, "deploy: %zu entries, limit %d", n,
		                     PIPEFILE_MAX_DEPLOYS);
	pf->deploys = xcalloc(n ? n : 1, sizeof(*pf->deploys));
	for (i = 0; i < n; i++) {
		yaml_node_t *item = yaml_document_get_node(doc, node->data.sequence.items.start[i]);

		pf->n_deploys = i + 1;
		if (pipefile_load_deploy(doc, item, i, &pf->deploys[i], err) < 0)
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(pf->deploys[j].group, pf->deploys[i].group) == 0)
				return pipefile_fail(err, ERR_INVAL, item,
				                     "deploy[%zu]: group '%s' already has an entry", i,
				                     pf->deploys[i].group);
	}
	return 0;
}

/* ---- jobs: named jobs, needs, labels, matrix ---- */

static int pipefile_job_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > PIPEFILE_MAX_JOB_NAME)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* A label "key=value": what agents take with --labels, no ',' (the store
 * joins a job's labels with commas). */
static int pipefile_label_ok(const char *s, size_t len)
{
	const char *eq = memchr(s, '=', len);

	if (len == 0 || len > 128 || eq == NULL || eq == s || eq == s + len - 1)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '=' || c == '/' || c == ':'))
			return 0;
	}
	return 1;
}

/* `labels: [site=plant-3, gpu=yes]` or `labels: {site: plant-3}`. */
static int pipefile_load_labels(yaml_document_t *doc, const yaml_node_t *node, struct strv *out,
                                struct err *err)
{
	char show[PIPEFILE_SHOW_BUF];
	size_t n;

	if (pipefile_is_null(node))
		return 0;
	if (node->type == YAML_SEQUENCE_NODE)
		n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	else if (node->type == YAML_MAPPING_NODE)
		n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
	else
		return pipefile_fail(err, ERR_INVAL, node,
		                     "labels: expected a sequence of key=value, found %s",
		                     pipefile_kind(node));
	if (n > PIPEFILE_MAX_LABELS)
		return pipefile_fail(err, ERR_LIMIT, node, "labels: %zu labels, limit %d", n,
		                     PIPEFILE_MAX_LABELS);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item, *val = NULL;
		const char *s, *v = NULL;
		char *label;

		if (node->type == YAML_SEQUENCE_NODE) {
			item = yaml_document_get_node(doc, node->data.sequence.items.start[i]);
		} else {
			item = yaml_document_get_node(doc, node->data.mapping.pairs.start[i].key);
			val = yaml_document_get_node(doc, node->data.mapping.pairs.start[i].value);
		}
		if (pipefile_scalar(item, "labels", &s, err) < 0 ||
		    (val != NULL && pipefile_scalar(val, "labels", &v, err) < 0))
			return -1;
		label = v != NULL ? xasprintf("%s=%s", s, v) : xstrdup(s);
		if (!pipefile_label_ok(label, strlen(label))) {
			pipefile_fail(err, ERR_INVAL, item,
			              "labels: '%s' is not key=value ([A-Za-z0-9._/:-], at most 128 bytes)",
			              pipefile_show(show, label, strlen(label)));
			free(label);
			return -1;
		}
		strv_push(out, label);
		free(label);
	}
	return 0;
}

static int pipefile_load_needs(yaml_document_t *doc, const yaml_node_t *node, struct pipefile_job *j,
                               struct err *err)
{
	char show[PIPEFILE_SHOW_BUF];
	size_t n;

	if (pipefile_is_null(node))
		return 0;
	if (node->type == YAML_SCALAR_NODE) {
		n = 1;
	} else if (node->type == YAML_SEQUENCE_NODE) {
		n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	} else {
		return pipefile_fail(err, ERR_INVAL, node,
		                     "needs: expected a sequence of job names, found %s",
		                     pipefile_kind(node));
	}
	if (n > PIPEFILE_MAX_NEEDS)
		return pipefile_fail(err, ERR_LIMIT, node, "needs: %zu jobs, limit %d", n,
		                     PIPEFILE_MAX_NEEDS);
	j->needs_at = xcalloc(2 * n + 1, sizeof(*j->needs_at));
	for (size_t i = 0; i < n; i++) {
		const yaml_node_t *item =
		    node->type == YAML_SCALAR_NODE
		        ? node
		        : yaml_document_get_node(doc, node->data.sequence.items.start[i]);
		const char *s;

		if (pipefile_scalar(item, "needs", &s, err) < 0)
			return -1;
		if (!pipefile_job_name_ok(s, item->data.scalar.length))
			return pipefile_fail(err, ERR_INVAL, item, "needs: '%s' is not a job name",
			                     pipefile_show(show, s, item->data.scalar.length));
		for (size_t k = 0; k < j->needs.n; k++)
			if (strcmp(j->needs.v[k], s) == 0)
				return pipefile_fail(err, ERR_INVAL, item, "needs: '%s' is listed twice", s);
		j->needs_at[2 * j->needs.n] = item->start_mark.line + 1;
		j->needs_at[2 * j->needs.n + 1] = item->start_mark.column + 1;
		strv_push(&j->needs, s);
	}
	return 0;
}

/* include/exclude: a sequence of mappings of scalars, each kept as "K=V". */
static int pipefile_load_cells(yaml_document_t *doc, const yaml_node_t *node, const char *what,
                               struct strv **out, size_t *n_out, struct err *err)
{
	size_t n;

	if (node->type != YAML_SEQUENCE_NODE)
		return pipefile_fail(err, ERR_INVAL, node,
		                     "matrix.%s: expected a sequence of mappings, found %s", what,
		                     pipefile_kind(node));
	n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	if (n > PIPEFILE_MAX_AXIS_VALUES)
		return pipefile_fail(err, ERR_LIMIT, node, "matrix.%s: %zu entries, limit %d", what, n,
		                     PIPEFILE_MAX_AXIS_VALUES);
	*out = xcalloc(n + 1, sizeof(**out));
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = yaml_document_get_node(doc, node->data.sequence.items.start[i]);
		yaml_node_pair_t *p;

		*n_out = i + 1;
		if (item->type != YAML_MAPPING_NODE ||
		    item->data.mapping.pairs.top == item->data.mapping.pairs.start)
			return pipefile_fail(err, ERR_INVAL, item,
			                     "matrix.%s[%zu]: expected a non-empty mapping", what, i);
		for (p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			yaml_node_t *v = yaml_document_get_node(doc, p->value);
			const char *key, *val;

			if (pipefile_scalar(k, "matrix", &key, err) < 0 ||
			    pipefile_scalar(v, "matrix", &val, err) < 0)
				return -1;
			if (!pipefile_name_ok(val, v->data.scalar.length) || v->data.scalar.length > 64)
				return pipefile_fail(
				    err, ERR_INVAL, v,
				    "matrix.%s[%zu].%s: a value is one line of 1 to 64 bytes", what, i, key);
			strv_pushf(&(*out)[i], "%s=%s", key, val);
		}
	}
	return 0;
}

static int pipefile_matrix_key_known(const struct pipefile_matrix *m, const char *kv)
{
	size_t klen = strcspn(kv, "=");

	if (klen == 6 && strncmp(kv, "target", 6) == 0)
		return 1;
	for (size_t i = 0; i < m->axes.n; i++)
		if (strlen(m->axes.v[i]) == klen && strncmp(m->axes.v[i], kv, klen) == 0)
			return 1;
	return 0;
}

/* matrix: {MODE: [debug, release], include: [...], exclude: [...]} */
static int pipefile_load_matrix(yaml_document_t *doc, const yaml_node_t *node, struct pipefile_matrix *m,
                                struct err *err)
{
	char show[PIPEFILE_SHOW_BUF];
	const yaml_node_t *inc = NULL, *exc = NULL;
	yaml_node_pair_t *p;

	if (node->type != YAML_MAPPING_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "matrix: expected a mapping, found %s",
		                     pipefile_kind(node));
	for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		const char *key;
		size_t n, klen;

		if (pipefile_scalar(k, "matrix key", &key, err) < 0)
			return -1;
		klen = k->data.scalar.length;
		if (strcmp(key, "include") == 0 || strcmp(key, "exclude") == 0) {
			if ((key[0] == 'i' ? inc : exc) != NULL)
				return pipefile_fail(err, ERR_INVAL, k, "matrix: duplicate key '%s'", key);
			*(key[0] == 'i' ? &inc : &exc) = v;
			continue;
		}
		if (strcmp(key, "target") == 0 || strcmp(key, "targets") == 0)
			return pipefile_fail(
			    err, ERR_INVAL, k,
			    "matrix: the target axis is the job's 'targets:', not a matrix key");
		if (!pipefile_env_key_ok(key, klen))
			return pipefile_fail(err, ERR_INVAL, k,
			                     "matrix: '%s' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
			                     pipefile_show(show, key, klen));
		for (size_t i = 0; i < m->axes.n; i++)
			if (strcmp(m->axes.v[i], key) == 0)
				return pipefile_fail(err, ERR_INVAL, k, "matrix: duplicate axis '%s'", key);
		if (m->axes.n >= PIPEFILE_MAX_AXES)
			return pipefile_fail(err, ERR_LIMIT, k, "matrix: more than %d axes",
			                     PIPEFILE_MAX_AXES);
		if (v->type != YAML_SEQUENCE_NODE ||
		    v->data.sequence.items.top == v->data.sequence.items.start)
			return pipefile_fail(err, ERR_INVAL, v,
			                     "matrix.%s: expected a non-empty sequence of values", key);
		n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
		if (n > PIPEFILE_MAX_AXIS_VALUES)
			return pipefile_fail(err, ERR_LIMIT, v, "matrix.%s: %zu values, limit %d", key, n,
			                     PIPEFILE_MAX_AXIS_VALUES);
		m->values = xrealloc(m->values, (m->axes.n + 1) * sizeof(*m->values));
		memset(&m->values[m->axes.n], 0, sizeof(*m->values));
		strv_push(&m->axes, key);
		for (size_t i = 0; i < n; i++) {
			yaml_node_t *item = yaml_document_get_node(doc, v->data.sequence.items.start[i]);
			struct strv *vals = &m->values[m->axes.n - 1];
			const char *s;

			if (pipefile_scalar(item, "matrix value", &s, err) < 0)
				return -1;
			if (!pipefile_name_ok(s, item->data.scalar.length) || item->data.scalar.length > 64)
				return pipefile_fail(err, ERR_INVAL, item,
				                     "matrix.%s: a value is one line of 1 to 64 bytes", key);
			for (size_t j = 0; j < vals->n; j++)
				if (strcmp(vals->v[j], s) == 0)
					return pipefile_fail(
					    err, ERR_INVAL, item, "matrix.%s: duplicate value '%s'", key,
					    pipefile_show(show, s, item->data.scalar.length));
			strv_push(vals, s);
		}
	}
	if (inc != NULL && pipefile_load_cells(doc, inc, "include", &m->include, &m->n_include, err) < 0)
		return -1;
	if (exc != NULL && pipefile_load_cells(doc, exc, "exclude", &m->exclude, &m->n_exclude, err) < 0)
		return -1;
	for (size_t i = 0; i < m->n_include + m->n_exclude; i++) {
		const struct strv *c = i < m->n_include ? &m->include[i] : &m->exclude[i - m->n_include];
		const yaml_node_t *at = i < m->n_include ? inc : exc;

		for (size_t j = 0; j < c->n; j++)
			if (!pipefile_matrix_key_known(m, c->v[j]))
				return pipefile_fail(err, ERR_INVAL, at,
				                     "matrix.%s: '%.*s' is neither an axis nor 'target'",
				                     i < m->n_include ? "include" : "exclude",
				                     (int)strcspn(c->v[j], "="), c->v[j]);
	}
	if (m->axes.n == 0 && m->n_include == 0)
		return pipefile_fail(err, ERR_INVAL, node, "matrix: no axis and no include");
	return 0;
}

static void pipefile_matrix_release(struct pipefile_matrix *m)
{
	for (size_t i = 0; i < m->axes.n; i++)
		strv_release(&m->values[i]);
	free(m->values);
	strv_release(&m->axes);
	for (size_t i = 0; i < m->n_include; i++)
		strv_release(&m->include[i]);
	free(m->include);
	for (size_t i = 0; i < m->n_exclude; i++)
		strv_release(&m->exclude[i]);
	free(m->exclude);
}

/* ---- services: ---- */

static void pipefile_service_release(struct pipefile_service *s)
{
	free(s->name);
	strv_release(&s->packages);
	free(s->command);
	free(s->ready);
	strv_release(&s->env);
}

static void pipefile_services_free(struct pipefile_service *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pipefile_service_release(&s[i]);
	free(s);
}

/* A service's name is a word of its log lines and file names: no dots. */
static int pipefile_service_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > PIPEFILE_MAX_SERVICE_NAME)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (i > 0 && (c == '_' || c == '-'))))
			return 0;
	}
	return 1;
}

/* `command:` or `ready:`: non-blank shell text of bounded size. */
static int pipefile_service_text(const yaml_node_t *node, const char *what, char **out, struct err *err)
{
	const char *s;

	if (pipefile_scalar(node, what, &s, err) < 0)
		return -1;
	if (pipefile_is_null(node) || pipefile_blank(s))
		return pipefile_fail(err, ERR_INVAL, node, "%s: empty command", what);
	if (node->data.scalar.length > PIPEFILE_MAX_SERVICE_TEXT)
		return pipefile_fail(err, ERR_LIMIT, node, "%s: %zu bytes, limit %d", what,
		                     node->data.scalar.length, PIPEFILE_MAX_SERVICE_TEXT);
	*out = xstrdup(s);
	return 0;
}

static int pipefile_service_packages(yaml_document_t *doc, const yaml_node_t *node, const char *name,
                                     struct pipefile_service *s, struct err *err)
{
	char what[PIPEFILE_SHOW_BUF + 48], show[PIPEFILE_SHOW_BUF];
	size_t n;

	if (pipefile_is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return pipefile_fail(err, ERR_INVAL, node,
		                     "services.%s.packages: expected a sequence, found %s", name,
		                     pipefile_kind(node));
	n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	if (n > PIPEFILE_MAX_TOOLS)
		return pipefile_fail(err, ERR_LIMIT, node, "services.%s.packages: %zu entries, limit %d",
		                     name, n, PIPEFILE_MAX_TOOLS);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = yaml_document_get_node(doc, node->data.sequence.items.start[i]);
		const char *t;

		snprintf(what, sizeof(what), "services.%s.packages[%zu]", name, i);
		if (pipefile_scalar(item, what, &t, err) < 0)
			return -1;
		if (!recipe_package_name_ok(t))
			return pipefile_fail(err, ERR_INVAL, item,
			                     "%s: '%s' is not a Debian package name ([a-z0-9][a-z0-9.+-]*, "
			                     "at most 128 bytes)",
			                     what, pipefile_show(show, t, item->data.scalar.length));
		for (size_t j = 0; j < s->packages.n; j++)
			if (strcmp(s->packages.v[j], t) == 0)
				return pipefile_fail(err, ERR_INVAL, item, "%s: duplicate package '%s'", what,
				                     t);
		strv_push(&s->packages, t);
	}
	return 0;
}

static const char *const pipefile_service_keys[] = {"packages", "command", "ready", "ready_timeout", "env"};
#define PIPEFILE_N_SERVICE_KEYS (sizeof(pipefile_service_keys) / sizeof(pipefile_service_keys[0]))

static int pipefile_load_service(yaml_document_t *doc, const yaml_node_t *kn, const yaml_node_t *node,
                                 struct pipefile_service *s, struct err *err)
{
	char show[PIPEFILE_SHOW_BUF], what[PIPEFILE_SHOW_BUF + 32];
	const yaml_node_t *given[PIPEFILE_N_SERVICE_KEYS] = {NULL};
	yaml_node_pair_t *p;
	const char *name;
	size_t i;

	if (pipefile_scalar(kn, "service name", &name, err) < 0)
		return -1;
	if (!pipefile_service_name_ok(name, kn->data.scalar.length))
		return pipefile_fail(err, ERR_INVAL, kn,
		                     "services: '%s' is not a service name ([A-Za-z0-9][A-Za-z0-9_-]*, at "
		                     "most %d bytes)",
		                     pipefile_show(show, name, kn->data.scalar.length),
		                     PIPEFILE_MAX_SERVICE_NAME);
	s->name = xstrdup(name);
	s->ready_timeout_s = PIPEFILE_SERVICE_READY_DEFAULT_S;
	if (node->type != YAML_MAPPING_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "services.%s: expected a mapping, found %s", name,
		                     pipefile_kind(node));
	for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		const char *key;

		if (pipefile_scalar(k, "service key", &key, err) < 0)
			return -1;
		for (i = 0; i < PIPEFILE_N_SERVICE_KEYS; i++)
			if (strcmp(key, pipefile_service_keys[i]) == 0)
				break;
		if (i == PIPEFILE_N_SERVICE_KEYS) {
			char known[96] = "";

			for (i = 0; i < PIPEFILE_N_SERVICE_KEYS; i++)
				pipefile_list_add(known, sizeof(known), pipefile_service_keys[i]);
			return pipefile_fail(err, ERR_INVAL, k, "services.%s: unknown key '%s' (known: %s)",
			                     name, pipefile_show(show, key, k->data.scalar.length), known);
		}
		if (given[i] != NULL)
			return pipefile_fail(err, ERR_INVAL, k, "services.%s: duplicate key '%s'", name, key);
		given[i] = yaml_document_get_node(doc, p->value);
	}
	if (given[1] == NULL)
		return pipefile_fail(err, ERR_INVAL, node, "services.%s: missing 'command'", name);
	if (given[2] == NULL)
		return pipefile_fail(err, ERR_INVAL, node,
		                     "services.%s: missing 'ready' (a command that succeeds once the "
		                     "service answers)",
		                     name);
	if (given[0] != NULL && pipefile_service_packages(doc, given[0], name, s, err) < 0)
		return -1;
	snprintf(what, sizeof(what), "services.%s.command", name);
	if (pipefile_service_text(given[1], what, &s->command, err) < 0)
		return -1;
	snprintf(what, sizeof(what), "services.%s.ready", name);
	if (pipefile_service_text(given[2], what, &s->ready, err) < 0)
		return -1;
	if (given[3] != NULL) {
		struct pipefile tmp = {0};

		if (pipefile_load_timeout(given[3], &tmp, err) < 0) {
			char msg[sizeof(err->msg)];
			snprintf(msg, sizeof(msg), "%s", err->msg);
			return err_set(err, err->code, "%s (services.%s.ready_timeout)", msg, name);
		}
		if (tmp.timeout_s > PIPEFILE_SERVICE_READY_MAX_S)
			return pipefile_fail(err, ERR_INVAL, given[3],
			                     "services.%s.ready_timeout: at most %ds", name,
			                     PIPEFILE_SERVICE_READY_MAX_S);
		s->ready_timeout_s = tmp.timeout_s;
	}
	if (given[4] != NULL) {
		struct pipefile tmp = {0};
		int rc = pipefile_load_env(doc, given[4], &tmp, err);

		s->env = tmp.env;
		if (rc < 0) {
			char msg[sizeof(err->msg)];
			snprintf(msg, sizeof(msg), "%s", err->msg);
			return err_set(err, err->code, "%s (services.%s)", msg, name);
		}
		if (s->env.n > PIPEFILE_MAX_SERVICE_ENV)
			return pipefile_fail(err, ERR_LIMIT, given[4],
			                     "services.%s.env: %zu variables, limit %d", name, s->env.n,
			                     PIPEFILE_MAX_SERVICE_ENV);
	}
	return 0;
}

/* `services: {db: {packages: [...], command: ..., ready: ...}}`. */
static int pipefile_load_services(yaml_document_t *doc, const yaml_node_t *node, struct pipefile *pf,
                                  struct err *err)
{
	size_t n;

	if (pipefile_is_null(node))
		return 0;
	if (node->type != YAML_MAPPING_NODE)
		return pipefile_fail(err, ERR_INVAL, node,
		                     "services: expected a mapping of services, found %s",
		                     pipefile_kind(node));
	n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
	if (n > PIPEFILE_MAX_SERVICES)
		return pipefile_fail(err, ERR_LIMIT, node, "services: %zu services, limit %d", n,
		                     PIPEFILE_MAX_SERVICES);
	pf->services = xcalloc(n + 1, sizeof(*pf->services));
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *k = yaml_document_get_node(doc, node->data.mapping.pairs.start[i].key);
		yaml_node_t *v = yaml_document_get_node(doc, node->data.mapping.pairs.start[i].value);

		pf->n_services = i + 1;
		if (pipefile_load_service(doc, k, v, &pf->services[i], err) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(pf->services[j].name, pf->services[i].name) == 0)
				return pipefile_fail(err, ERR_INVAL, k, "services: duplicate service '%s'",
				                     pf->services[i].name);
	}
	return 0;
}

/* A job's copy of the top-level services (its defaults). */
static void pipefile_services_copy(struct pipefile *dst, const struct pipefile *src)
{
	dst->services = xcalloc(src->n_services + 1, sizeof(*dst->services));
	dst->n_services = src->n_services;
	for (size_t i = 0; i < src->n_services; i++) {
		const struct pipefile_service *a = &src->services[i];
		struct pipefile_service *b = &dst->services[i];

		b->name = xstrdup(a->name);
		b->command = xstrdup(a->command);
		b->ready = xstrdup(a->ready);
		b->ready_timeout_s = a->ready_timeout_s;
		for (size_t k = 0; k < a->packages.n; k++)
			strv_push(&b->packages, a->packages.v[k]);
		for (size_t k = 0; k < a->env.n; k++)
			strv_push(&b->env, a->env.v[k]);
	}
}

static void pipefile_job_release(struct pipefile_job *j)
{
	free(j->name);
	pipefile_free(j->body);
	strv_release(&j->labels);
	strv_release(&j->needs);
	free(j->needs_at);
	pipefile_matrix_release(&j->matrix);
}

/* The keys of a job, and the bit each sets in pipefile_job.given. */
static const char *const pipefile_job_keys[] = {"targets", "steps",   "env",      "artifacts",
                                                "network", "timeout", "mode",     "labels",
                                                "needs",   "matrix",  "services", "approve"};
#define PIPEFILE_N_JOB_KEYS (sizeof(pipefile_job_keys) / sizeof(pipefile_job_keys[0]))

static int pipefile_load_job(yaml_document_t *doc, const yaml_node_t *kn, const yaml_node_t *node,
                             struct pipefile_job *j, struct err *err)
{
	char show[PIPEFILE_SHOW_BUF];
	yaml_node_pair_t *p;
	const char *name;
	size_t i;

	if (pipefile_scalar(kn, "job name", &name, err) < 0)
		return -1;
	if (!pipefile_job_name_ok(name, kn->data.scalar.length))
		return pipefile_fail(
		    err, ERR_INVAL, kn, "jobs: '%s' is not a job name ([A-Za-z0-9._-], 1 to %d bytes)",
		    pipefile_show(show, name, kn->data.scalar.length), PIPEFILE_MAX_JOB_NAME);
	j->name = xstrdup(name);
	j->line = kn->start_mark.line + 1;
	j->column = kn->start_mark.column + 1;
	j->body = xcalloc(1, sizeof(*j->body));
	if (node->type != YAML_MAPPING_NODE)
		return pipefile_fail(err, ERR_INVAL, node, "jobs.%s: expected a mapping, found %s", name,
		                     pipefile_kind(node));
	for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		const char *key;
		int rc = -1;

		if (pipefile_scalar(k, "job key", &key, err) < 0)
			return -1;
		for (i = 0; i < PIPEFILE_N_JOB_KEYS; i++)
			if (strcmp(key, pipefile_job_keys[i]) == 0)
				break;
		if (i == PIPEFILE_N_JOB_KEYS) {
			char known[200] = "";

			for (i = 0; i < PIPEFILE_N_JOB_KEYS; i++)
				pipefile_list_add(known, sizeof(known), pipefile_job_keys[i]);
			return pipefile_fail(err, ERR_INVAL, k, "jobs.%s: unknown key '%s' (known: %s)", name,
			                     pipefile_show(show, key, k->data.scalar.length), known);
		}
		if (j->given & (1u << i))
			return pipefile_fail(err, ERR_INVAL, k, "jobs.%s: duplicate key '%s'", name, key);
		j->given |= 1u << i;
		switch (i) {
		case 0:
			rc = pipefile_load_targets(doc, v, j->body, err);
			break;
		case 1:
			rc = pipefile_load_steps(doc, v, j->body, err);
			break;
		case 2:
			rc = pipefile_load_env(doc, v, j->body, err);
			break;
		case 3:
			rc = pipefile_load_artifacts(doc, v, j->body, err);
			break;
		case 4:
			rc = pipefile_load_network(v, j->body, err);
			break;
		case 5:
			rc = pipefile_load_timeout(v, j->body, err);
			break;
		case 6:
			rc = pipefile_load_mode(v, j->body, err);
			break;
		case 7:
			rc = pipefile_load_labels(doc, v, &j->labels, err);
			break;
		case 8:
			rc = pipefile_load_needs(doc, v, j, err);
			break;
		case 9:
			rc = pipefile_load_matrix(doc, v, &j->matrix, err);
			break;
		case 10:
			rc = pipefile_load_services(doc, v, j->body, err);
			break;
		case 11:
			rc = pipefile_load_bool(v, "approve", &j->approve, err);
			break;
		}
		if (rc < 0)
			return -1;
	}
	if (!(j->given & (1u << 1)))
		return pipefile_fail(err, ERR_INVAL, node, "jobs.%s: missing 'steps'", name);
	if (j->body->targets.n == 0)
		strv_push(&j->body->targets, "host");
	for (i = 0; i < j->matrix.n_include; i++)
		for (size_t c = 0; c < j->matrix.include[i].n; c++) {
			const char *kv = j->matrix.include[i].v[c];
			size_t t;

			if (strncmp(kv, "target=", 7) != 0)
				continue;
			for (t = 0; t < j->body->targets.n; t++)
				if (strcmp(j->body->targets.v[t], kv + 7) == 0)
					break;
			if (t == j->body->targets.n)
				return pipefile_fail(
				    err, ERR_INVAL, node,
				    "jobs.%s: matrix.include names target '%s', not one of the job's targets",
				    name, pipefile_show(show, kv + 7, strlen(kv + 7)));
		}
	return 0;
}

static int pipefile_load_jobs(yaml_document_t *doc, const yaml_node_t *node, struct pipefile *pf,
                              struct err *err)
{
	size_t n;

	if (node->type != YAML_MAPPING_NODE || node->data.mapping.pairs.top == node->data.mapping.pairs.start)
		return pipefile_fail(err, ERR_INVAL, node,
		                     "jobs: expected a non-empty mapping of jobs, found %s",
		                     pipefile_is_null(node) ? "nothing" : pipefile_kind(node));
	n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
	if (n > PIPEFILE_MAX_JOBS)
		return pipefile_fail(err, ERR_LIMIT, node, "jobs: %zu jobs, limit %d", n, PIPEFILE_MAX_JOBS);
	pf->jobs = xcalloc(n, sizeof(*pf->jobs));
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *k = yaml_document_get_node(doc, node->data.mapping.pairs.start[i].key);
		yaml_node_t *v = yaml_document_get_node(doc, node->data.mapping.pairs.start[i].value);

		pf->n_jobs = i + 1;
		if (pipefile_load_job(doc, k, v, &pf->jobs[i], err) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(pf->jobs[j].name, pf->jobs[i].name) == 0)
				return pipefile_fail(err, ERR_INVAL, k, "jobs: duplicate job '%s'",
				                     pf->jobs[i].name);
	}
	return 0;
}

static size_t pipefile_job_index(const struct pipefile *pf, const char *name)
{
	for (size_t i = 0; i < pf->n_jobs; i++)
		if (strcmp(pf->jobs[i].name, name) == 0)
			return i;
	return (size_t)-1;
}

/* Depth-first over needs: 0 unvisited, 1 on the path, 2 done (depth[]
 * holds the longest chain from the job, itself included). */
static int pipefile_needs_walk(const struct pipefile *pf, size_t i, unsigned char *mark, size_t *depth,
                               size_t *path, size_t n_path, struct err *err)
{
	const struct pipefile_job *j = &pf->jobs[i];
	size_t best = 0;

	mark[i] = 1;
	path[n_path++] = i;
	for (size_t k = 0; k < j->needs.n; k++) {
		size_t x = pipefile_job_index(pf, j->needs.v[k]);

		if (mark[x] == 1) {
			char cycle[200] = "";
			size_t from = 0;

			while (path[from] != x)
				from++;
			for (size_t c = from; c < n_path; c++)
				pipefile_list_add(cycle, sizeof(cycle), pf->jobs[path[c]].name);
			pipefile_list_add(cycle, sizeof(cycle), pf->jobs[x].name);
			for (char *c = cycle; (c = strstr(c, ", ")) != NULL;)
				memcpy(c, "->", 2);
			return err_set(err, ERR_INVAL, "line %zu, column %zu: jobs.%s: needs: cycle %s",
			               j->needs_at[2 * k], j->needs_at[2 * k + 1], j->name, cycle);
		}
		if (mark[x] == 0 && pipefile_needs_walk(pf, x, mark, depth, path, n_path, err) < 0)
			return -1;
		if (depth[x] > best)
			best = depth[x];
	}
	depth[i] = best + 1;
	if (depth[i] > PIPEFILE_MAX_DEPTH)
		return err_set(err, ERR_LIMIT,
		               "line %zu, column %zu: jobs.%s: needs: a chain of %zu jobs, limit %d", j->line,
		               j->column, j->name, depth[i], PIPEFILE_MAX_DEPTH);
	mark[i] = 2;
	return 0;
}

/* Every name in needs is a job, and the jobs form a DAG no deeper than
 * PIPEFILE_MAX_DEPTH. */
static int pipefile_check_needs(const struct pipefile *pf, struct err *err)
{
	unsigned char *mark = xcalloc(pf->n_jobs + 1, 1);
	size_t *depth = xcalloc(pf->n_jobs + 1, sizeof(*depth));
	size_t *path = xcalloc(pf->n_jobs + 1, sizeof(*path));
	int rc = -1;

	for (size_t i = 0; i < pf->n_jobs; i++) {
		const struct pipefile_job *j = &pf->jobs[i];

		for (size_t k = 0; k < j->needs.n; k++)
			if (pipefile_job_index(pf, j->needs.v[k]) == (size_t)-1) {
				err_set(err, ERR_INVAL,
				        "line %zu, column %zu: jobs.%s: needs: no job named '%s'",
				        j->needs_at[2 * k], j->needs_at[2 * k + 1], j->name, j->needs.v[k]);
				goto out;
			}
	}
	for (size_t i = 0; i < pf->n_jobs; i++)
		if (mark[i] == 0 && pipefile_needs_walk(pf, i, mark, depth, path, 0, err) < 0)
			goto out;
	rc = 0;
out:
	free(mark);
	free(depth);
	free(path);
	return rc;
}

/* Top-level env, network, timeout and mode are each job's defaults; the
 * top-level tools: hold for every job. */
static void pipefile_jobs_defaults(struct pipefile *pf)
{
	for (size_t i = 0; i < pf->n_jobs; i++) {
		struct pipefile *b = pf->jobs[i].body;
		unsigned given = pf->jobs[i].given;
		struct strv env = STRV_INIT;

		if (!(given & (1u << 4)))
			b->network = pf->network;
		if (!(given & (1u << 5)))
			b->timeout_s = pf->timeout_s;
		if (!(given & (1u << 6)) && pf->mode != NULL)
			b->mode = xstrdup(pf->mode);
		if (!(given & (1u << 10)) && pf->n_services > 0)
			pipefile_services_copy(b, pf);
		for (size_t t = 0; t < pf->tools.n; t++)
			strv_push(&b->tools, pf->tools.v[t]);
		for (size_t e = 0; e < pf->env.n; e++) {
			size_t klen = strcspn(pf->env.v[e], "=") + 1, k;

			for (k = 0; k < b->env.n; k++)
				if (strncmp(b->env.v[k], pf->env.v[e], klen) == 0)
					break;
			if (k == b->env.n)
				strv_push(&env, pf->env.v[e]);
		}
		for (size_t k = 0; k < b->env.n; k++)
			strv_push(&env, b->env.v[k]);
		strv_release(&b->env);
		b->env = env;
	}
}

static int pipefile_load_top(yaml_document_t *doc, const yaml_node_t *root, struct pipefile *pf,
                             struct err *err)
{
	unsigned seen = 0;
	yaml_node_pair_t *p;
	size_t i;
	int rc;

	if (root->type != YAML_MAPPING_NODE)
		return pipefile_fail(err, ERR_INVAL, root, "the pipeline file must be a mapping, found %s",
		                     pipefile_kind(root));
	for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		char show[PIPEFILE_SHOW_BUF];
		enum pipefile_key key;
		const char *name;

		if (pipefile_scalar(k, "top-level key", &name, err) < 0)
			return -1;
		for (i = 0; i < PIPEFILE_N_KEYS; i++)
			if (strcmp(name, pipefile_keys[i].name) == 0)
				break;
		if (i == PIPEFILE_N_KEYS) {
			char known[256] = "", reserved[64] = "";

			for (i = 0; i < PIPEFILE_N_KEYS; i++) {
				if (pipefile_keys[i].key == PIPEFILE_KEY_RESERVED)
					pipefile_list_add(reserved, sizeof(reserved), pipefile_keys[i].name);
				else
					pipefile_list_add(known, sizeof(known), pipefile_keys[i].name);
			}
			return pipefile_fail(
			    err, ERR_INVAL, k, "unknown key '%s' (known: %s; ignored for now: %s)",
			    pipefile_show(show, name, k->data.scalar.length), known, reserved);
		}
		key = pipefile_keys[i].key;
		if (key == PIPEFILE_KEY_RESERVED)
			continue;
		if (seen & key)
			return pipefile_fail(err, ERR_INVAL, k, "duplicate key '%s'", name);
		seen |= key;
		switch (key) {
		case PIPEFILE_KEY_TARGETS:
			rc = pipefile_load_targets(doc, v, pf, err);
			break;
		case PIPEFILE_KEY_ENV:
			rc = pipefile_load_env(doc, v, pf, err);
			break;
		case PIPEFILE_KEY_STEPS:
			rc = pipefile_load_steps(doc, v, pf, err);
			break;
		case PIPEFILE_KEY_ARTIFACTS:
			rc = pipefile_load_artifacts(doc, v, pf, err);
			break;
		case PIPEFILE_KEY_NETWORK:
			rc = pipefile_load_network(v, pf, err);
			break;
		case PIPEFILE_KEY_TIMEOUT:
			rc = pipefile_load_timeout(v, pf, err);
			break;
		case PIPEFILE_KEY_WHEN:
			rc = pipefile_load_when(doc, v, pf, err);
			break;
		case PIPEFILE_KEY_MODE:
			rc = pipefile_load_mode(v, pf, err);
			break;
		case PIPEFILE_KEY_DEPLOY:
			rc = pipefile_load_deploys(doc, v, pf, err);
			break;
		case PIPEFILE_KEY_JOBS:
			rc = pipefile_load_jobs(doc, v, pf, err);
			break;
		case PIPEFILE_KEY_TOOLS:
			rc = pipefile_load_tools(doc, v, pf, err);
			break;
		case PIPEFILE_KEY_SERVICES:
			rc = pipefile_load_services(doc, v, pf, err);
			break;
		case PIPEFILE_KEY_AUTO_CANCEL:
			rc = pipefile_load_bool(v, "auto_cancel", &pf->auto_cancel, err);
			break;
		case PIPEFILE_KEY_SUBMODULES: {
			int on = 1;
			rc = pipefile_load_bool(v, "submodules", &on, err);
			pf->no_submodules = !on;
			break;
		}
		default:
			rc = -1;
			break;
		}
		if (rc < 0)
			return -1;
	}
	if (seen & PIPEFILE_KEY_JOBS) {
		static const enum pipefile_key single[] = {PIPEFILE_KEY_STEPS, PIPEFILE_KEY_TARGETS,
		                                           PIPEFILE_KEY_ARTIFACTS};

		for (i = 0; i < sizeof(single) / sizeof(single[0]); i++) {
			if (!(seen & single[i]))
				continue;
			for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
				yaml_node_t *k = yaml_document_get_node(doc, p->key);
				const char *name = (const char *)k->data.scalar.value;
				size_t j;

				for (j = 0; j < PIPEFILE_N_KEYS; j++)
					if (strcmp(name, pipefile_keys[j].name) == 0 &&
					    pipefile_keys[j].key == single[i])
						return pipefile_fail(
						    err, ERR_INVAL, k,
						    "'%s' goes under a job when the file has 'jobs:'", name);
			}
		}
		pipefile_jobs_defaults(pf);
		for (i = 0; i < pf->n_jobs; i++)
			if (pf->jobs[i].body->n_services > 0 && pf->jobs[i].body->network)
				return err_set(err, ERR_INVAL,
				               "line %zu, column %zu: jobs.%s: services need the job's own "
				               "network namespace: 'network: true' cannot go with them",
				               pf->jobs[i].line, pf->jobs[i].column, pf->jobs[i].name);
		return pipefile_check_needs(pf, err);
	}
	if (!(seen & PIPEFILE_KEY_STEPS))
		return pipefile_fail(err, ERR_INVAL, root, "missing 'steps'");
	if (pf->n_services > 0 && pf->network)
		return pipefile_fail(err, ERR_INVAL, root,
		                     "services need the job's own network namespace: 'network: true' "
		                     "cannot go with them");
	if (pf->targets.n == 0)
		strv_push(&pf->targets, "host");
	return 0;
}

int pipefile_parse(const char *buf, size_t len, struct pipefile **out, struct err *err)
{
	yaml_parser_t parser;
	yaml_document_t doc, next;
	int parser_ok = 0, doc_ok = 0;
	struct pipefile *pf = NULL; /* owned until handed to *out */
	const yaml_node_t *root, *extra;
	const char *nul;
	int rc = -1;

	if (len > PIPEFILE_MAX_BYTES)
		return err_set(err, ERR_LIMIT, "pipeline file is %zu bytes, limit %d", len,
		               PIPEFILE_MAX_BYTES);
	if (buf == NULL)
		buf = "";
	if ((nul = memchr(buf, '\0', len)) != NULL)
		return err_set(err, ERR_INVAL, "line %zu: NUL byte in pipeline file",
		               pipefile_line_of(buf, len, (size_t)(nul - buf)));
	if (!yaml_parser_initialize(&parser)) {
		err_set(err, ERR_SYS, "yaml: cannot initialise parser");
		goto out;
	}
	parser_ok = 1;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		pipefile_yaml_error(&parser, buf, len, err);
		goto out;
	}
	doc_ok = 1;
	if ((root = yaml_document_get_root_node(&doc)) == NULL) {
		err_set(err, ERR_INVAL, "line 1: empty pipeline file: missing 'steps'");
		goto out;
	}
	if (!yaml_parser_load(&parser, &next)) {
		pipefile_yaml_error(&parser, buf, len, err);
		goto out;
	}
	if ((extra = yaml_document_get_root_node(&next)) != NULL) {
		pipefile_fail(err, ERR_INVAL, extra,
		              "a pipeline file holds one YAML document, found a second");
		yaml_document_delete(&next);
		goto out;
	}
	yaml_document_delete(&next);
	if (pipefile_check_tree(&doc, err) < 0)
		goto out;
	pf = xcalloc(1, sizeof(*pf));
	if (pipefile_load_top(&doc, root, pf, err) < 0)
		goto out;
	*out = pf;
	pf = NULL;
	rc = 0;
out:
	pipefile_free(pf);
	if (doc_ok)
		yaml_document_delete(&doc);
	if (parser_ok)
		yaml_parser_delete(&parser);
	return rc;
}

void pipefile_free(struct pipefile *pf)
{
	size_t i;

	if (pf == NULL)
		return;
	strv_release(&pf->targets);
	strv_release(&pf->tools);
	for (i = 0; i < pf->n_steps; i++) {
		free(pf->steps[i].name);
		free(pf->steps[i].run);
	}
	free(pf->steps);
	free(pf->mode);
	pipefile_services_free(pf->services, pf->n_services);
	strv_release(&pf->artifacts);
	strv_release(&pf->env);
	strv_release(&pf->when.branch);
	strv_release(&pf->when.tag);
	strv_release(&pf->when.event);
	strv_release(&pf->when.path);
	for (i = 0; i < pf->n_deploys; i++)
		pipefile_deploy_release(&pf->deploys[i]);
	free(pf->deploys);
	for (i = 0; i < pf->n_jobs; i++)
		pipefile_job_release(&pf->jobs[i]);
	free(pf->jobs);
	free(pf);
}

/* Splits the pattern at its first "**": the head must match a prefix of s
 * with fnmatch's FNM_PATHNAME rules, the rest (recursively) some suffix. */
static int pipefile_glob_depth(const char *pattern, const char *s, int depth)
{
	const char *star = strstr(pattern, "**");
	size_t slen = strlen(s), headlen, i, j;
	char *head;
	int hit = 0;

	if (star == NULL)
		return fnmatch(pattern, s, FNM_PATHNAME) == 0;
	if (depth >= 4)
		return 0;
	headlen = (size_t)(star - pattern);
	head = xstrndup(pattern, headlen);
	for (i = 0; i <= slen && !hit; i++) {
		char *prefix = xstrndup(s, i);
		int ok = fnmatch(head, prefix, FNM_PATHNAME) == 0;

		free(prefix);
		if (!ok)
			continue;
		/* "a/", two stars, "/b" also holds "a/b": the stars may stand
		 * for no directory at all. */
		if (headlen > 0 && head[headlen - 1] == '/' && star[2] == '/' &&
		    pipefile_glob_depth(star + 3, s + i, depth + 1))
			hit = 1;
		for (j = i; j <= slen && !hit; j++)
			if (pipefile_glob_depth(star + 2, s + j, depth + 1))
				hit = 1;
	}
	free(head);
	return hit;
}

int pipefile_glob_match(const char *pattern, const char *s)
{
	return pipefile_glob_depth(pattern, s, 0);
}

static int pipefile_any_glob(const struct strv *globs, const char *s)
{
	size_t i;

	for (i = 0; i < globs->n; i++)
		if (pipefile_glob_match(globs->v[i], s))
			return 1;
	return 0;
}

int pipefile_when_match(const struct pipefile_when *w, const char *ref, const char *event,
                        const char *const *paths, size_t n_paths)
{
	size_t i;

	if (w->event.n > 0) {
		for (i = 0; i < w->event.n; i++)
			if (strcmp(w->event.v[i], event) == 0)
				break;
		if (i == w->event.n)
			return 0;
	}
	if (w->branch.n > 0 && strncmp(ref, "refs/heads/", 11) == 0 &&
	    !pipefile_any_glob(&w->branch, ref + 11))
		return 0;
	if (w->tag.n > 0 && strncmp(ref, "refs/tags/", 10) == 0 && !pipefile_any_glob(&w->tag, ref + 10))
		return 0;
	if (w->path.n > 0 && paths != NULL && n_paths > 0) {
		for (i = 0; i < n_paths; i++)
			if (pipefile_any_glob(&w->path, paths[i]))
				break;
		if (i == n_paths)
			return 0;
	}
	return 1;
}

int pipefile_deploy_on_match(const struct pipefile_deploy *d, const char *ref)
{
	if (strncmp(ref, "refs/heads/", 11) == 0)
		return pipefile_any_glob(&d->on_branch, ref + 11);
	if (strncmp(ref, "refs/tags/", 10) == 0)
		return pipefile_any_glob(&d->on_tag, ref + 10);
	return 0;
}

/* ---- expansion into the jobs the server stores ---- */

const struct pipefile *pipefile_unit_body(const struct pipefile *pf, const struct pipefile_unit *u)
{
	return pf->n_jobs > 0 ? pf->jobs[u->job].body : pf;
}

void pipefile_units_free(struct pipefile_unit *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(u[i].name);
		strv_release(&u[i].env);
		free(u[i].needs);
	}
	free(u);
}

struct pipefile_units {
	struct pipefile_unit *v;
	size_t n;
};

/* Does the cell (target, kv) hold every "K=V" of c? */
static int pipefile_cell_matches(const struct strv *c, const char *target, const struct strv *kv)
{
	for (size_t i = 0; i < c->n; i++) {
		size_t k;

		if (strncmp(c->v[i], "target=", 7) == 0) {
			if (strcmp(c->v[i] + 7, target) != 0)
				return 0;
			continue;
		}
		for (k = 0; k < kv->n; k++)
			if (strcmp(kv->v[k], c->v[i]) == 0)
				break;
		if (k == kv->n)
			return 0;
	}
	return 1;
}

static int pipefile_unit_add(struct pipefile_units *us, const struct pipefile *pf, size_t job,
                             const char *target, const struct strv *kv, int matrix, struct err *err)
{
	const struct pipefile *b = pf->n_jobs > 0 ? pf->jobs[job].body : pf;
	const char *name = pf->n_jobs > 0 ? pf->jobs[job].name : "build";
	struct pipefile_unit *u;
	struct buf nb = BUF_INIT;

	if (us->n >= PIPEFILE_MAX_UNITS)
		return err_set(err, ERR_LIMIT,
		               "the jobs expand to more than %d jobs (targets x matrix cells), the limit",
		               PIPEFILE_MAX_UNITS);
	us->v = xrealloc(us->v, (us->n + 1) * sizeof(*us->v));
	u = &us->v[us->n++];
	memset(u, 0, sizeof(*u));
	u->job = job;
	u->target = target;
	buf_appendf(&nb, "%s", name);
	if (matrix) {
		buf_appendf(&nb, " (%s", target);
		for (size_t i = 0; i < kv->n; i++)
			buf_appendf(&nb, ", %s", kv->v[i]);
		buf_appendf(&nb, ")");
	}
	u->name = buf_detach(&nb, NULL);
	/* An include entry naming a cell the axes made already adds nothing. */
	for (size_t i = 0; i + 1 < us->n; i++)
		if (us->v[i].job == job && strcmp(us->v[i].target, target) == 0 &&
		    strcmp(us->v[i].name, u->name) == 0) {
			free(u->name);
			us->n--;
			return 0;
		}
	for (size_t e = 0; e < b->env.n; e++) {
		size_t klen = strcspn(b->env.v[e], "=") + 1, k;

		for (k = 0; k < kv->n; k++)
			if (strncmp(kv->v[k], b->env.v[e], klen) == 0)
				break;
		if (k == kv->n)
			strv_push(&u->env, b->env.v[e]);
	}
	for (size_t k = 0; k < kv->n; k++)
		strv_push(&u->env, kv->v[k]);
	return 0;
}

static int pipefile_expand_job(struct pipefile_units *us, const struct pipefile *pf, size_t job,
                               int (*wanted)(void *, const char *), void *arg, struct err *err)
{
	const struct pipefile *b = pf->n_jobs > 0 ? pf->jobs[job].body : pf;
	const struct pipefile_matrix *m = pf->n_jobs > 0 ? &pf->jobs[job].matrix : NULL;
	int matrix = m != NULL && (m->axes.n > 0 || m->n_include > 0);
	int rc = 0;

	for (size_t t = 0; t < b->targets.n && rc == 0; t++) {
		const char *target = b->targets.v[t];
		size_t idx[PIPEFILE_MAX_AXES] = {0};
		int done = 0;

		if (wanted != NULL && !wanted(arg, target))
			continue;
		if (!matrix) {
			struct strv none = STRV_INIT;
			rc = pipefile_unit_add(us, pf, job, target, &none, 0, err);
			continue;
		}
		while (m->axes.n > 0 && !done && rc == 0) {
			struct strv kv = STRV_INIT;
			int excluded = 0;
			size_t a;

			for (a = 0; a < m->axes.n; a++)
				strv_pushf(&kv, "%s=%s", m->axes.v[a], m->values[a].v[idx[a]]);
			for (size_t x = 0; x < m->n_exclude && !excluded; x++)
				excluded = pipefile_cell_matches(&m->exclude[x], target, &kv);
			if (!excluded)
				rc = pipefile_unit_add(us, pf, job, target, &kv, 1, err);
			strv_release(&kv);
			for (a = 0; a < m->axes.n; a++) {
				if (++idx[a] < m->values[a].n)
					break;
				idx[a] = 0;
			}
			done = a == m->axes.n;
		}
	}
	for (size_t i = 0; m != NULL && i < m->n_include && rc == 0; i++) {
		for (size_t t = 0; t < b->targets.n && rc == 0; t++) {
			const char *target = b->targets.v[t];
			struct strv kv = STRV_INIT;

			if (wanted != NULL && !wanted(arg, target))
				continue;
			/* In axis order, so that the name is the same as the axes' cell. */
			for (size_t a = 0; a < m->axes.n; a++) {
				size_t alen = strlen(m->axes.v[a]);

				for (size_t c = 0; c < m->include[i].n; c++)
					if (strncmp(m->include[i].v[c], m->axes.v[a], alen) == 0 &&
					    m->include[i].v[c][alen] == '=')
						strv_push(&kv, m->include[i].v[c]);
			}
			if (pipefile_cell_matches(&m->include[i], target, &kv)) /* else: another target's */
				rc = pipefile_unit_add(us, pf, job, target, &kv, 1, err);
			strv_release(&kv);
		}
	}
	return rc;
}

int pipefile_expand(const struct pipefile *pf, int (*wanted)(void *arg, const char *target), void *arg,
                    struct pipefile_unit **out, size_t *n_out, struct err *err)
{
	struct pipefile_units us = {NULL, 0};
	size_t n_jobs = pf->n_jobs > 0 ? pf->n_jobs : 1, edges = 0;

	*out = NULL;
	*n_out = 0;
	for (size_t j = 0; j < n_jobs; j++)
		if (pipefile_expand_job(&us, pf, j, wanted, arg, err) < 0)
			goto fail;
	for (size_t i = 0; i < us.n; i++) {
		struct pipefile_unit *u = &us.v[i];
		const struct pipefile_job *j = pf->n_jobs > 0 ? &pf->jobs[u->job] : NULL;

		for (size_t k = 0; j != NULL && k < j->needs.n; k++) {
			size_t x = pipefile_job_index(pf, j->needs.v[k]), same = 0;

			for (size_t w = 0; w < us.n; w++)
				same += us.v[w].job == x && strcmp(us.v[w].target, u->target) == 0;
			for (size_t w = 0; w < us.n; w++) {
				if (us.v[w].job != x || (same > 0 && strcmp(us.v[w].target, u->target) != 0))
					continue;
				if (++edges > PIPEFILE_MAX_EDGES) {
					err_set(
					    err, ERR_LIMIT,
					    "the jobs' needs expand to more than %d dependencies, the limit",
					    PIPEFILE_MAX_EDGES);
					goto fail;
				}
				u->needs = xrealloc(u->needs, (u->n_needs + 1) * sizeof(*u->needs));
				u->needs[u->n_needs++] = w;
			}
		}
	}
	*out = us.v;
	*n_out = us.n;
	return 0;
fail:
	pipefile_units_free(us.v, us.n);
	return -1;
}
