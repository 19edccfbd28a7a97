#ifndef ANVIL_API_H
#define ANVIL_API_H

#include <stddef.h>

#include "server/http.h"

/* The JSON API routes of docs/api.md: the table the HTTP edge dispatches. */
extern const struct http_route api_routes[];
extern const size_t api_routes_count;

#endif
