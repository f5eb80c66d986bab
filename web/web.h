/*
 * web.h - what the browser gets: the dashboard's HTML, CSS and JS, embedded into the binary at
 * build time from the files in web/ (no network or files needed at run time).
 *
 * Read-only data: any thread.
 */
#ifndef BOOKRANK_WEB_H
#define BOOKRANK_WEB_H

#include <stddef.h>

typedef struct web_asset {
    const char *path;          /* "/", "/app.js", "/style.css", ... */
    const char *content_type;
    const unsigned char *data;
    size_t len;
} web_asset;

/* The asset served at path, or NULL. "/" is index.html. */
const web_asset *web_asset_find(const char *path);

#endif
