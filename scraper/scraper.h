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
 *  - scr_pool_*: any thread; the callback runs on a worker thread (abandoned requests: on the
 *    thread calling scr_pool_stop/scr_pool_free; see scr_result_fn).
 */
#ifndef BOOKRANK_SCRAPER_H
#define BOOKRANK_SCRAPER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/compiler.h"
#include "../common/isbn.h"
#include "../common/observation.h"

/* Hard cap on a fetched page; enforced while receiving. */
#define SCR_MAX_PAGE (8u * 1024u * 1024u)

/* What a scraper operation can fail with; 0 is success. What went wrong with a page itself
 * (blocked, not found, not understood) is not an error of the call: it is the observation. */
typedef enum scr_err {
    SCR_OK = 0,
    SCR_NOMEM,  /* out of memory: the result is unusable */
    SCR_INVALID /* a required argument was NULL */
} scr_err;

/* A short stable description of an error code ("out of memory", ...). */
const char *scr_strerror(scr_err err);

/* curl_global_init; 0 or -1. Call once from main before threads exist. */
BR_MUST_CHECK int scr_global_init(void);
void scr_global_cleanup(void);

/* ---- sources -------------------------------------------------------------------------- */

typedef struct scr_source scr_source;

/* Names of the built-in presets, NULL-terminated: "amazon.com", "amazon.co.uk", ... */
extern const char *const scr_preset_names[];

/*
 * A preset by name, optionally fetched from url_template instead of its own (NULL = the
 * preset's). Returns NULL with a malloc'd message in *err (caller frees) when the name is
 * unknown or the template is invalid (it must be http(s) and use {asin}, {id}, {isbn10} or
 * {isbn13}; presets use https://www.amazon.TLD/dp/{asin}).
 */
BR_MUST_CHECK scr_source *scr_source_new_preset(const char *name, const char *url_template,
                                                char **err);

/*
 * A custom source from its rules as text (the config file's "sources" entries). Fields not given
 * (NULL) are taken from the preset named in `base` (or amazon.com's when base is NULL); every
 * preset currently shares one multilingual rule set (English, German, French). Patterns are PCRE2
 * syntax in no-UTF mode (bytes; "(*UTF)" is refused), JIT-compiled, with match limits. What each
 * rule runs on and must capture:
 *   block_start  raw page. Its match end is where the block starts; the first entry must follow
 *                with only tags, blank space, colons, comments or <style>/<script> in between
 *                (else the match is taken for a mention elsewhere and the search goes on).
 *   rank         "block text" (extract.c: tags reduced to <name>/</name>, style/script/comments
 *                dropped, blank space and no-break spaces collapsed to one space, entities
 *                decoded except &lt; and &amp;), anchored at each entry. Group 1 = the number as
 *                written (digits with , . space ' separators), group 2 = the category. Entries
 *                may be separated by tags, blank space, , ; | and one "(...)"; a closing
 *                </ul> </td> </table> </div>... ends the block.
 *   title        raw page; group 1 = the title (first non-empty match wins).
 *   blocked      raw page; any match => blocked (replaces the built-in captcha markers).
 *   not_found    raw page; any match => not_found (only for pages without rank and title).
 * NULL with a malloc'd message in *err (naming the source and rule) when a pattern does not
 * compile, lacks its capture groups, the name or template is invalid, or base is unknown.
 */
typedef struct scr_rules {
    const char *name;         /* required */
    const char *url_template; /* required */
    const char *base;         /* preset whose rules fill what is not given */
    const char *block_start;  /* where the Best Sellers Rank block begins */
    const char *rank;         /* one rank entry: group 1 = number, group 2 = category */
    const char *title;        /* group 1 = title */
    const char *blocked;      /* any match => blocked (captcha / robot check) */
    const char *not_found;    /* any match => not_found */
} scr_rules;

BR_MUST_CHECK scr_source *scr_source_new_custom(const scr_rules *rules, char **err);
void scr_source_free(scr_source *src);                  /* NULL is a no-op */
const char *scr_source_name(const scr_source *src);     /* borrowed */
const char *scr_source_template(const scr_source *src); /* borrowed */
/* The Accept-Language its fetches send (the preset's store language; a custom source takes its
 * base's); NULL when none. Borrowed. */
const char *scr_source_accept_language(const scr_source *src);

/* What a source needs to know of a book to fetch it: its id and the values a URL template can
 * use. Empty strings for what the book does not have. */
typedef struct scr_book {
    char id[14]; /* ISBN-13 or ASIN: the observation's book_id */
    char isbn13[14];
    char isbn10[11];
    char asin[11]; /* the ASIN for this source: the book's per-store one, the one
                                attached to it, or its ISBN-10 */
} scr_book;

/* A book known only by its ISBN (tests, simple callers): its ASIN is its ISBN-10. */
void scr_book_from_isbn(const isbn *in, scr_book *out);

/* Whether src's template can be filled for book: a placeholder the book has no value for
 * ({asin} of a 979 book without an attached ASIN) means the source cannot address it, which is
 * a skip, not a failure (SPEC §1). */
int scr_source_can_address(const scr_source *src, const scr_book *book);

/* The URL for a book ({asin}, {id}, {isbn10}, {isbn13} filled in), malloc'd (caller frees).
 * NULL when the source cannot address the book, or out of memory. */
BR_MUST_CHECK char *scr_source_url(const scr_source *src, const scr_book *book);

/* ---- extraction ----------------------------------------------------------------------- */

/*
 * Classifies a fetched answer and reads the page. http_status is the final HTTP status, or 0 for a
 * page on its own (`bookrank extract`). Fills out->status, rank, rank_category, categories, title
 * and, for `error`, error (other members are left alone; what a previous call left in the filled
 * members is freed). out must be obs_init()ed.
 *
 *   len > SCR_MAX_PAGE                                   -> error "page too large ..."
 *   404, 410, or (no rank, no title) the not-found page  -> not_found
 *   captcha / robot check (other statuses), 403, 429     -> blocked (never any rank or title)
 *   other non-2xx (5xx, 503 without a captcha, 3xx...)   -> error "HTTP 503"
 *   2xx/0 with a rank                                    -> ok
 *   2xx/0 with a product title but no rank               -> no_rank
 *   2xx/0 with neither (empty, random HTML)              -> error "page not understood: ..."
 *
 * rank is the first rank of the Best Sellers Rank block and rank_category its top-level category
 * ("Books", "Kindle Store", "Fremdsprachige Bücher", ...); categories are the ranks listed under
 * it, page order, without the overall one; a ladder entry ("Books > Computers > C") is named by
 * its last, most specific step ("C"). title and category names are valid UTF-8 (invalid bytes
 * become U+FFFD), entities decoded, blank space collapsed and trimmed, at most 1000 bytes.
 *
 * Hostile input safe: any bytes (invalid UTF-8, NULs), bounded backtracking and bounded work per
 * page. Any thread, concurrently on one source.
 *
 * SCR_OK (0) with out filled; SCR_NOMEM when memory ran out (rank, categories and title are
 * then cleared); SCR_INVALID when out is NULL. (Not BR_MUST_CHECK only because existing tests
 * and the benchmark call it for the observation alone; a caller that stores out must check.)
 */
scr_err scr_extract(const scr_source *src, int http_status, const char *page, size_t len,
                    observation *out);

/* ---- fetch pool ----------------------------------------------------------------------- */

/*
 * Politeness, per host (scheme + host + port of the URL), shared by all workers: at most
 * per_host requests in flight and `rate` starts per second (token bucket, burst 1). Timeouts,
 * connection errors, 429 and 5xx (but not a 503 captcha) are retried with full-jitter
 * exponential backoff; a Retry-After (seconds or HTTP date, capped at 60 s) on 429/503 is
 * waited out and also pauses the host. A `blocked` answer pauses its host for cooldown_s. A
 * request waiting to retry holds no worker and no host slot.
 */

typedef struct scr_config {
    int workers;            /* threads, default 8 */
    int per_host;           /* max in-flight requests per host, default 2 */
    double rate;            /* requests per second per host, default 1; 0 = unlimited */
    double timeout_s;       /* total timeout per attempt, default 30 (connect: min(10, this)) */
    int retries;            /* retries after the first attempt, default 2 */
    double cooldown_s;      /* host pause after a `blocked` answer, default 60; 0 = none */
    double backoff_base_s;  /* first backoff step, default 0.5; max backoff 30 s */
    const char *user_agent; /* copied by scr_pool_new; NULL = "bookrank/VERSION" */
    const char *proxy;      /* copied by scr_pool_new; NULL = none (env proxies are ignored) */
    size_t queue_size;      /* bounded queue capacity, default 1024 */
    double rate_all;        /* requests per second across every host of the pool (all of one
                               company's storefronts are one bot detector); 0 = no such cap
                               (the library default; the CLI's is SCR_RATE_ALL_DEFAULT) */
    int keep_pages;         /* keep the last N pages that were not `ok` (0 = none) ... */
    const char *pages_dir;  /* ... in this directory (created; copied by scr_pool_new) */
} scr_config;

/* The command line's default for rate_all: a few storefronts at their --rate of 1/s each, not
 * 21 requests a second from one address. */
#define SCR_RATE_ALL_DEFAULT 4.0

void scr_config_defaults(scr_config *cfg);

typedef struct scr_pool scr_pool;

/*
 * Called exactly once per accepted request (scr_pool_submit returned 0). obs is the finished
 * observation, owned by the callee from now on: a heap observation, obs_clear() then free() it.
 * obs is NULL when the request was abandoned by scr_pool_stop/scr_pool_free (queued and never
 * started, waiting to retry, or still in flight after the grace period), or in the unlikely
 * case that memory ran out while building the observation.
 *
 * Thread: finished requests and aborted in-flight ones are reported on worker threads,
 * concurrently with each other; requests abandoned from the queue are reported on the thread
 * calling scr_pool_stop/scr_pool_free, before it returns. The callback must not call
 * scr_pool_submit on the same pool (it could wait for queue space that only it can free).
 */
typedef void (*scr_result_fn)(void *ctx, observation *obs);

/* Starts the workers. NULL with a malloc'd message in *err on failure. */
BR_MUST_CHECK scr_pool *scr_pool_new(const scr_config *cfg, char **err);

/*
 * Queues one fetch of book from src (borrowed: it must outlive the pool). Blocks while the queue
 * is full. 0, or -1 once the pool is stopping or out of memory (then the callback is not called).
 * A book the source cannot address (scr_source_can_address: the caller should skip it) is still
 * accepted and reported as an `error` observation (attempts 0) saying which id is missing.
 */
int scr_pool_submit(scr_pool *pool, const scr_source *src, const scr_book *book, scr_result_fn fn,
                    void *ctx);

/*
 * Stops taking work: scr_pool_submit returns -1 from now on (also in threads blocked in it), and
 * queued requests that never started are reported abandoned (callback with NULL) on this thread.
 * Started requests go on. Any thread, idempotent. Use it to unblock a submitting thread and join
 * it before scr_pool_free: no scr_pool_submit may start once scr_pool_free has been called.
 */
void scr_pool_stop(scr_pool *pool);

/*
 * scr_pool_stop, then lets started requests (fetching, or waiting out a retry backoff) finish for
 * up to grace_ms, then aborts the rest (running transfers stop at once) and
 * reports them abandoned. Joins the workers and frees the pool. NULL is a no-op.
 */
void scr_pool_free(scr_pool *pool, int grace_ms);

/* Snapshot of what the pool is doing, for metrics. Any thread; a NULL pool reads as idle. */
typedef struct scr_pool_stats {
    long queued;    /* accepted, not started */
    long in_flight; /* started, not yet reported (fetching or waiting to retry) */
} scr_pool_stats;
void scr_pool_stats_get(scr_pool *pool, scr_pool_stats *out);

#endif
