#include "common/eventbind.h"
#include "common/dynlib.h"

/* Process-wide by necessity, see common/dynlib.h. */
DYNLIB_DEFINE(eventbind, EVENTBIND_FUNCS, EVENTBIND_N, ANVIL_EVENT_SONAME, NULL)
