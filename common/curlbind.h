#ifndef ANVIL_CURLBIND_H
#define ANVIL_CURLBIND_H

/* libcurl, bound at run time (common/dynlib.h). Include this instead of
 * <curl/curl.h>; call curlbind_load before the first curl call on a path
 * (httpc_new does). The type-checking wrappers of curl_easy_setopt are off:
 * the macros below name the functions themselves. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "common/err.h"

#define CURLBIND_FUNCS(X)                                                                                    \
	X(curl_global_init)                                                                                  \
	X(curl_easy_init)                                                                                    \
	X(curl_easy_reset)                                                                                   \
	X(curl_easy_setopt)                                                                                  \
	X(curl_easy_perform)                                                                                 \
	X(curl_easy_getinfo)                                                                                 \
	X(curl_easy_cleanup)                                                                                 \
	X(curl_easy_strerror)                                                                                \
	X(curl_slist_append)                                                                                 \
	X(curl_slist_free_all)

enum curlbind_sym {
#define CURLBIND_ENUM(f) CURLBIND_##f,
	CURLBIND_FUNCS(CURLBIND_ENUM)
#undef CURLBIND_ENUM
	    CURLBIND_N
};

/* Loads libcurl and runs curl_global_init once per process; ERR_SYS when
 * libcurl cannot be loaded. */
int curlbind_load(struct err *err);
void *curlbind_sym(enum curlbind_sym i);
/* 1 once this process has loaded libcurl (tests read it). */
int curlbind_loaded(void);

#define CURLBIND(f)      ((__typeof__(&f))curlbind_sym(CURLBIND_##f))
#define curl_global_init CURLBIND(curl_global_init)
#define curl_easy_init   CURLBIND(curl_easy_init)
#define curl_easy_reset  CURLBIND(curl_easy_reset)
#undef curl_easy_setopt /* curl.h defines both as calls to themselves */
#define curl_easy_setopt  CURLBIND(curl_easy_setopt)
#define curl_easy_perform CURLBIND(curl_easy_perform)
#undef curl_easy_getinfo
#define curl_easy_getinfo   CURLBIND(curl_easy_getinfo)
#define curl_easy_cleanup   CURLBIND(curl_easy_cleanup)
#define curl_easy_strerror  CURLBIND(curl_easy_strerror)
#define curl_slist_append   CURLBIND(curl_slist_append)
#define curl_slist_free_all CURLBIND(curl_slist_free_all)

#endif
