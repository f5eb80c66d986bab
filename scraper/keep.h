/*
 * keep.h - the last N fetched pages that were not `ok`, kept on disk for `bookrank extract`
 * (--keep-pages N): when a store changes its markup, the pages it now serves are at hand.
 *
 * Files are named "<UTC time>_<source>_<id>_<status>.html" (time first: names sort by age) in
 * one directory; after each write the oldest beyond N are removed, so the directory holds at
 * most N pages of at most the fetch cap (8 MiB) each. A page is written to a temporary name and
 * renamed, so a reader never sees half a page. Private to scraper/; any thread (one mutex).
 */
#ifndef BOOKRANK_SCRAPER_KEEP_H
#define BOOKRANK_SCRAPER_KEEP_H

#include <stddef.h>

#include "../common/compiler.h"
#include "../common/observation.h"

typedef struct scr_keep scr_keep;

/* Creates dir if needed (mode 0700: pages may carry cookies' effects, nobody else's business).
 * NULL with a malloc'd message in *err. */
BR_MUST_CHECK scr_keep *scr_keep_new(const char *dir, int max_pages, char **err);
void scr_keep_free(scr_keep *k); /* NULL is a no-op */
/* Keeps one page (best effort: a failure is logged once, never fails the fetch). */
void scr_keep_page(scr_keep *k, const char *source, const char *id, obs_status status,
                   int http_status, const char *page, size_t len);

#endif
