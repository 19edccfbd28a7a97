#ifndef ANVIL_GITSUB_H
#define ANVIL_GITSUB_H

/* Submodule paths and URLs as text: pure functions the server (which
 * resolves a commit's submodules, server/sched/submod.c) and the agent
 * (which checks what its spec says before it writes anything) share. The
 * text comes from an untrusted .gitmodules. Any thread. */

/* 1 when path is a workspace-relative path a submodule may be checked out
 * at: not empty, at most 1024 bytes, not absolute, no trailing "/", no
 * empty, ".", ".." or ".git" (any case) component, printable ASCII. */
int gitsub_path_ok(const char *path);

/* The key two repository URLs are compared by: "host[:port]/path" for a
 * network URL ("scheme://[user@]host[:port]/path" with scheme https, http,
 * ssh or git, or scp-like "[user@]host:path"; host lowercased), or
 * "file:/abs/path" for a local path ("/abs/path" or "file:///abs/path");
 * the path with "." and ".." segments resolved, no repeated, trailing "/"
 * or trailing ".git". NULL (no key: never matches) for anything else: a
 * transport ("ext::..."), another scheme, a relative path, a ".." above the
 * root, control characters. Caller frees. */
char *gitsub_url_key(const char *url);

/* Resolves a relative submodule URL ("./x", "../x") against base as git
 * does (base names a directory; each "../" drops one of its components); a
 * URL that is not relative is returned as is. NULL when the "../" climb
 * past the base's first component. Caller frees. */
char *gitsub_url_resolve(const char *base, const char *url);

#endif
