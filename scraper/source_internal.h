/*
 * source_internal.h - the compiled rules of a source, shared by scraper/source.c (which builds
 * them) and scraper/extract.c (which runs them). Private to scraper/.
 *
 * A scr_source is immutable once built, so every member may be read from any thread. PCRE2
 * documents compiled patterns and match contexts as shareable read-only; match data is created
 * per scr_extract() call.
 */
#ifndef BOOKRANK_SCRAPER_SOURCE_INTERNAL_H
#define BOOKRANK_SCRAPER_SOURCE_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "fetch.h"
#include "scraper.h"

/* Marker rules (blocked, not_found) are lists so that each entry can be a plain literal that the
 * JIT finds with its SIMD first-character scan; one alternation of many literals would fall back
 * to a slow start-bitset scan over the whole page. */
#define SCR_MAX_MARKERS 8

typedef struct scr_marker_list {
    pcre2_code *code[SCR_MAX_MARKERS];
    size_t n;
} scr_marker_list;

struct scr_source {
    char *name;                     /* owned */
    char *url_template;             /* owned, validated */
    pcre2_code *block_start;        /* raw page: the Best Sellers Rank label */
    int builtin_labels;             /* block_start is the built-in label table, so the extractor
                                       may look near the store's bestseller links first */
    pcre2_code *rank;               /* normalized block text, compiled anchored */
    pcre2_code *title;              /* raw page */
    scr_marker_list blocked;        /* raw page */
    scr_marker_list not_found;      /* raw page */
    pcre2_match_context *match_ctx; /* match/depth limits; never changed after creation */
    scr_fetch_policy policy;        /* from the URL template and the preset's language */
};

/* The rules the pool's fetches of this source follow (borrowed, lives as long as src). */
const scr_fetch_policy *scr_source_fetch_policy(const scr_source *src);

#endif
