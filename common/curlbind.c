#include "common/curlbind.h"
#include "common/dynlib.h"

static const char *const curlbind_names[CURLBIND_N] = {
#define CURLBIND_NAME(f) #f,
    CURLBIND_FUNCS(CURLBIND_NAME)
#undef CURLBIND_NAME
};

static int curlbind_init(struct err *err)
{
	CURLcode cc = curl_global_init(CURL_GLOBAL_DEFAULT);

	if (cc != CURLE_OK)
		return err_set(err, ERR_SYS, "curl_global_init: %s", curl_easy_strerror(cc));
	return 0;
}

/* Process-wide by necessity, see common/dynlib.h. */
static void *curlbind_slots[CURLBIND_N];
static struct dynlib curlbind_lib =
    DYNLIB_INIT(ANVIL_CURL_SONAME, curlbind_names, curlbind_slots, curlbind_init);

int curlbind_load(struct err *err)
{
	return dynlib_load(&curlbind_lib, err);
}

void *curlbind_sym(enum curlbind_sym i)
{
	return dynlib_slot(&curlbind_lib, i);
}

int curlbind_loaded(void)
{
	return dynlib_is_loaded(&curlbind_lib);
}
