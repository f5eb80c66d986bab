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

/* A finished fetch of one observation. */
void metrics_fetch(const char *source, obs_status status, int64_t duration_ms, int attempts);
/* An answered HTTP request. */
void metrics_http(int code);

typedef struct metrics_gauges {
    int64_t books_tracked;
    int64_t jobs_active;
    int64_t queue_depth;
    int64_t fetches_in_flight;
} metrics_gauges;

/* Appends the whole exposition to out. 0, or a BUF_* error. */
int metrics_render(buf *out, const metrics_gauges *gauges);

#endif
