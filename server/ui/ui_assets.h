#ifndef ANVIL_UI_ASSETS_H
#define ANVIL_UI_ASSETS_H

#include <stddef.h>

/* The UI's static files, embedded from server/ui/ by server/ui/embed.sh. */
struct ui_asset {
	const char *name; /* "app.css", served as /static/app.css */
	const char *content_type;
	const char *data;
	size_t size;
};

extern const struct ui_asset ui_assets[];
extern const size_t ui_assets_count;

#endif
