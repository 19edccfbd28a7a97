#include "common/curlbind.h"
#include "common/dynlib.h"

static int curlbind_init(struct err *err)
{
	CURLcode cc = curl_global_init(CURL_GLOBAL_DEFAULT);

	if (cc != CURLE_OK)
		return err_set(err, ERR_SYS, "curl_global_init: %s", curl_easy_strerror(cc));
	return 0;
}

/* Process-wide by necessity, see common/dynlib.h. */
DYNLIB_DEFINE(curlbind, CURLBIND_FUNCS, CURLBIND_N, ANVIL_CURL_SONAME, curlbind_init)
