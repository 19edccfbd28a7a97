#include "server/store/pqbind.h"
#include "common/dynlib.h"

static const char *const pqbind_names[PQBIND_N] = {
#define PQBIND_NAME(f) #f,
    PQBIND_FUNCS(PQBIND_NAME)
#undef PQBIND_NAME
};

/* Process-wide by necessity, see common/dynlib.h. */
static void *pqbind_slots[PQBIND_N];
static struct dynlib pqbind_lib = DYNLIB_INIT(ANVIL_PQ_SONAME, pqbind_names, pqbind_slots, NULL);

int pqbind_load(struct err *err)
{
	return dynlib_load(&pqbind_lib, err);
}

void *pqbind_sym(enum pqbind_sym i)
{
	return dynlib_slot(&pqbind_lib, i);
}
