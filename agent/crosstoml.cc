/* Cross.toml through toml++ (C++17, Debian's libtomlplusplus); the rest of
 * anvil sees only the C API of crosstoml.h. No exception crosses it. */
extern "C" {
#include "common/err.h"
#include "common/xalloc.h"
}
#include "agent/crosstoml.h"

#include <cstdlib>
#include <string>
#include <string_view>

#include <toml++/toml.h>

namespace
{

/* Appends a string or an array of strings at node to out; anything else is
 * an error naming where. */
int take_strings(const toml::node *node, const char *where, struct strv *out, struct err *err)
{
	if (node == nullptr)
		return 0;
	if (const auto *s = node->as_string()) {
		strv_push(out, s->get().c_str());
		return 0;
	}
	const auto *arr = node->as_array();
	if (arr == nullptr)
		return err_set(err, ERR_INVAL, "line %u: %s must be an array of strings",
		               (unsigned)node->source().begin.line, where);
	for (const auto &item : *arr) {
		const auto *s = item.as_string();
		if (s == nullptr)
			return err_set(err, ERR_INVAL, "line %u: %s must hold only strings",
			               (unsigned)item.source().begin.line, where);
		if (s->get().find('\0') != std::string::npos)
			return err_set(err, ERR_INVAL, "line %u: %s holds a NUL byte",
			               (unsigned)item.source().begin.line, where);
		strv_push(out, s->get().c_str());
	}
	return 0;
}

void warn_docker_keys(const toml::table *t, const std::string &prefix, struct strv *warnings)
{
	static const char *const docker_only[] = {"image",     "dockerfile", "zig",     "xargo",
	                                          "build-std", "runner",     "context", nullptr};
	if (t == nullptr)
		return;
	for (int i = 0; docker_only[i] != nullptr; i++)
		/* target.<triple>.image is taken (crosstoml.image); the agent warns
		 * when its runner cannot use it. */
		if (t->contains(docker_only[i]) && !(i == 0 && prefix.rfind("target.", 0) == 0))
			strv_pushf(warnings,
			           "Cross.toml: %s%s needs cross-rs's Docker backend and is ignored here",
			           prefix.c_str(), docker_only[i]);
	if (const auto *env = (*t)["env"].as_table(); env != nullptr && env->contains("volumes"))
		strv_pushf(warnings,
		           "Cross.toml: %senv.volumes is ignored: jobs get the per repository x target "
		           "cache at /cache/build instead",
		           prefix.c_str());
}

} // namespace

extern "C" int crosstoml_parse(const char *buf, size_t len, const char *triple, struct crosstoml **out,
                               struct err *err)
{
	struct crosstoml *c = nullptr;

	*out = nullptr;
	if (len > CROSSTOML_MAX_BYTES)
		return err_set(err, ERR_LIMIT, "Cross.toml is %zu bytes, limit %d", len, CROSSTOML_MAX_BYTES);
	if (std::string_view(buf, len).find('\0') != std::string_view::npos)
		return err_set(err, ERR_INVAL, "Cross.toml holds a NUL byte");
	toml::table root;
	try {
		root = toml::parse(std::string_view(buf, len), std::string_view("Cross.toml"));
	} catch (const toml::parse_error &e) {
		return err_set(err, ERR_INVAL, "Cross.toml line %u, column %u: %.*s",
		               (unsigned)e.source().begin.line, (unsigned)e.source().begin.column,
		               (int)e.description().size(), e.description().data());
	} catch (const std::exception &e) {
		return err_set(err, ERR_INVAL, "Cross.toml: %s", e.what());
	}
	c = (struct crosstoml *)xcalloc(1, sizeof(*c));
	const toml::table *build = root["build"].as_table();
	const toml::table *target = root["target"][triple].as_table();
	std::string tprefix = std::string("target.") + triple + ".";

	if (build != nullptr) {
		if (take_strings((*build)["pre-build"].node(), "build.pre-build", &c->pre_build, err) < 0 ||
		    take_strings((*build)["env"]["passthrough"].node(), "build.env.passthrough",
		                 &c->passthrough, err) < 0)
			goto fail;
		if (const auto *dt = (*build)["default-target"].as_string())
			c->default_target = xstrdup(dt->get().c_str());
		warn_docker_keys(build, "build.", &c->warnings);
	}
	if (target != nullptr) {
		if (take_strings((*target)["pre-build"].node(), (tprefix + "pre-build").c_str(),
		                 &c->pre_build, err) < 0 ||
		    take_strings((*target)["env"]["passthrough"].node(),
		                 (tprefix + "env.passthrough").c_str(), &c->passthrough, err) < 0)
			goto fail;
		warn_docker_keys(target, tprefix, &c->warnings);
		/* cross-rs takes a string or a table with a name. */
		if (const auto *img = (*target)["image"].as_string())
			c->image = xstrdup(img->get().c_str());
		else if (const auto *name = (*target)["image"]["name"].as_string())
			c->image = xstrdup(name->get().c_str());
		else if ((*target).contains("image")) {
			err_set(err, ERR_INVAL, "Cross.toml: %simage: want a string or a table with a name",
			        tprefix.c_str());
			goto fail;
		}
	}
	*out = c;
	return 0;
fail:
	crosstoml_free(c);
	return -1;
}

extern "C" void crosstoml_free(struct crosstoml *c)
{
	if (c == nullptr)
		return;
	strv_release(&c->pre_build);
	strv_release(&c->passthrough);
	strv_release(&c->warnings);
	free(c->default_target);
	free(c->image);
	free(c);
}
