/* assets.h - the dashboard's static files, embedded in attestd at build
 * time by embed-assets.c from web/ (docs/dashboard.md). */
#ifndef ATTESTD_UI_ASSETS_H
#define ATTESTD_UI_ASSETS_H

#include <stddef.h>

struct att_ui_asset {
	const char *name;		/* file name under /ui/ */
	const char *ctype;
	const unsigned char *data;
	size_t len;
	const char *etag;		/* strong: "<first 16 bytes of SHA-256, hex>" */
};

extern const struct att_ui_asset att_ui_assets[];
extern const size_t att_ui_assets_count;

#endif
