/*
 * metrics.h - process-wide counters for GET /metrics (Prometheus text format).
 *
 * One registry per process, guarded by its own mutex: any thread may record or render.
 * Gauges that belong to other modules (books tracked, jobs running, queue depth) are passed
 * in at render time instead of being mirrored here.
 */
#ifndef BOOKRANK_METRICS_H
#define BOOKRANK_METRICS_H

#include <stdint.h>

#include "buf.h"
#include "observation.h"

/* A finished fetch of one observation (http_status 0: no answer). A 2xx page that yields no rank
 * (`no_rank`, or `error` on a page the rules cannot read) counts as not understood: the share of
 * those among the source's last METRICS_PAGE_WINDOW pages is a gauge, and a warning is logged
 * when it jumps to half or more (after at least 20 pages; again only once it fell below a
 * quarter) - the early sign of new store markup. */
#define METRICS_PAGE_WINDOW 100
void metrics_fetch(const char *source, obs_status status, int http_status, int64_t duration_ms,
                   int attempts);
/* An answered HTTP request. */
void metrics_http(int code);

typedef struct metrics_gauges {
    int64_t books_tracked;
    int64_t jobs_active;
    int64_t queue_depth;
    int64_t fetches_in_flight;
    int64_t store_failing; /* 1 while the store refuses the writer's batches */
    int64_t store_held;    /* observations kept for the retry */
    int64_t store_lost;    /* observations given up on (refresh --store-wait) */
} metrics_gauges;

/* Appends the whole exposition to out. 0, or a BUF_* error. */
int metrics_render(buf *out, const metrics_gauges *gauges);

#endif
