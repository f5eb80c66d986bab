/*
 * web.h - the dashboard's files (HTML, CSS, JS modules, icon), embedded into the binary at
 * build time from web/ by web/mkassets.c: no network or files are needed at run time.
 *
 * Read-only data: any thread.
 */
#ifndef BOOKRANK_WEB_H
#define BOOKRANK_WEB_H

#include <stddef.h>

typedef struct web_asset {
    const char *path; /* "/", "/index.html", "/style.css", "/js/main.js", ... */
    const char *content_type;
    const unsigned char *data;
    size_t len;
} web_asset;

/* The asset served at path, or NULL. Each file of web/ is served at its path under web/
 * (web/js/main.js at "/js/main.js"); "/" is index.html too. */
const web_asset *web_asset_find(const char *path);

#endif
