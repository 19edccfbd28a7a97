#include "server/store/pqbind.h"
#include "common/dynlib.h"

/* Process-wide by necessity, see common/dynlib.h. */
DYNLIB_DEFINE(pqbind, PQBIND_FUNCS, PQBIND_N, ANVIL_PQ_SONAME, NULL)
