/*
 * scraper.h - reading ranks from store pages: sources, extraction, and the polite fetch pool.
 *
 * The scraper owns libcurl and PCRE2; nothing outside scraper/ includes their headers.
 *
 * Data flow: scr_pool_submit() puts a request on a bounded queue -> a worker thread waits for
 * its host's permit (per-host in-flight cap, token-bucket rate, cool-down after `blocked`) ->
 * fetches the page with its own reused curl easy handle (retries with backoff) -> scr_extract()
 * classifies and reads it -> the caller's callback receives the finished observation.
 *
 * Threads:
 *  - scr_global_init() once, before any other thread starts.
 *  - A scr_source is immutable after scr_source_new*(): share it read-only between any threads
 *    (compiled patterns are shared, match data is per call/thread). Free it only after every
 *    pool that uses it has been freed.
 *  - scr_extract(): any thread.
 *  - scr_pool_*: any thread; the callback runs on a worker thread.
 */
#ifndef BOOKRANK_SCRAPER_H
#define BOOKRANK_SCRAPER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/isbn.h"
#include "../common/observation.h"

/* Hard cap on a fetched page; enforced while receiving. */
#define SCR_MAX_PAGE (8u * 1024u * 1024u)

/* curl_global_init; 0 or -1. Call once from main before threads exist. */
int scr_global_init(void);
void scr_global_cleanup(void);

/* ---- sources -------------------------------------------------------------------------- */

typedef struct scr_source scr_source;

/* Names of the built-in presets, NULL-terminated: "amazon.com", "amazon.co.uk", ... */
extern const char *const scr_preset_names[];

/*
 * A preset by name, optionally fetched from url_template instead of its own (NULL = the
 * preset's). Returns NULL with a malloc'd message in *err (caller frees) when the name is
 * unknown or the template is invalid (it must be http(s) and contain {isbn10} or {isbn13}).
 */
scr_source *scr_source_new_preset(const char *name, const char *url_template, char **err);

/*
 * A custom source from its rules as text (the config file's "sources" entries). Fields not given
 * (NULL) are taken from the preset named in `base` (or amazon.com's when base is NULL).
 * Patterns are PCRE2 syntax; see README "Custom sources" for what each must capture.
 */
typedef struct scr_rules {
    const char *name;            /* required */
    const char *url_template;    /* required */
    const char *base;            /* preset whose rules fill what is not given */
    const char *block_start;     /* where the Best Sellers Rank block begins */
    const char *rank;            /* one rank entry: group 1 = number, group 2 = category */
    const char *title;           /* group 1 = title */
    const char *blocked;         /* any match => blocked (captcha / robot check) */
    const char *not_found;       /* any match => not_found */
} scr_rules;

scr_source *scr_source_new_custom(const scr_rules *rules, char **err);
void scr_source_free(scr_source *src);           /* NULL is a no-op */
const char *scr_source_name(const scr_source *src); /* borrowed */
const char *scr_source_template(const scr_source *src); /* borrowed */

/*
 * The URL for a book, malloc'd (caller frees). NULL when the template needs {isbn10} and the
 * book has none (979-prefixed) - the caller records that as an error observation.
 */
char *scr_source_url(const scr_source *src, const isbn *book);

/* ---- extraction ----------------------------------------------------------------------- */

/*
 * Classifies a fetched answer and reads the page. http_status is the final HTTP status, or 0 for a
 * page on its own (`bookrank extract`). Fills out->status, rank, rank_category, categories, title
 * and, for `error`, error (other members are left alone). out must be obs_init()ed.
 *
 *   404 or the not-found page            -> not_found
 *   captcha / robot check, 403, 429, 503 with a captcha -> blocked (never any rank)
 *   other 5xx, or a page the rules cannot understand     -> error with a message
 *   200 with a rank                      -> ok;   200 product page without rank -> no_rank
 *
 * Hostile input safe: any bytes (invalid UTF-8, NULs), bounded backtracking, len <= SCR_MAX_PAGE
 * (longer is an error). Returns 0, or -1 only when out of memory.
 */
int scr_extract(const scr_source *src, int http_status, const char *page, size_t len,
                observation *out);

/* ---- fetch pool ----------------------------------------------------------------------- */

typedef struct scr_config {
    int workers;            /* threads, default 8 */
    int per_host;           /* max in-flight requests per host, default 2 */
    double rate;            /* requests per second per host, default 1; 0 = unlimited */
    double timeout_s;       /* total timeout per attempt, default 30 (connect: min(10, this)) */
    int retries;            /* retries after the first attempt, default 2 */
    double cooldown_s;      /* host pause after a `blocked` answer, default 60; 0 = none */
    double backoff_base_s;  /* first backoff step, default 0.5; max backoff 30 s */
    const char *user_agent; /* borrowed; NULL = "bookrank/VERSION" */
    const char *proxy;      /* borrowed; NULL = none (libcurl's env proxies are ignored) */
    size_t queue_size;      /* bounded queue capacity, default 1024 */
} scr_config;

void scr_config_defaults(scr_config *cfg);

typedef struct scr_pool scr_pool;

/*
 * Called once per submitted request, on a worker thread. obs is the finished observation, owned
 * by the callee from now on (free it with obs_clear + whatever it was allocated in: it is a heap
 * observation, free() it after obs_clear). obs is NULL when the request was abandoned by
 * scr_pool_free (queued and never started, or still in flight after the grace period).
 */
typedef void (*scr_result_fn)(void *ctx, observation *obs);

/* Starts the workers. NULL with a malloc'd message in *err on failure. */
scr_pool *scr_pool_new(const scr_config *cfg, char **err);

/*
 * Queues one fetch of book from src. Blocks while the queue is full. 0, or -1 once the pool is
 * stopping (then the callback is not called).
 */
int scr_pool_submit(scr_pool *pool, const scr_source *src, const isbn *book, scr_result_fn fn,
                    void *ctx);

/*
 * Stops taking work, lets in-flight fetches finish for up to grace_ms, then aborts the rest;
 * queued requests that never started are reported abandoned (callback with NULL). Joins the
 * workers and frees the pool. NULL is a no-op.
 */
void scr_pool_free(scr_pool *pool, int grace_ms);

/* Snapshot of what the pool is doing, for metrics. Any thread. */
typedef struct scr_pool_stats {
    long queued;
    long in_flight;
} scr_pool_stats;
void scr_pool_stats_get(scr_pool *pool, scr_pool_stats *out);

#endif
