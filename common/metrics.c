/* metrics.c - fixed-size counter tables; sources are few (the configured ones). */
#include "metrics.h"

#include "log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define MAX_SOURCES OBS_MAX_SOURCES

static const double latency_buckets_s[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NBUCKETS (sizeof latency_buckets_s / sizeof latency_buckets_s[0])

struct source_counters {
    char name[64];
    int64_t fetches[OBS_STATUS_COUNT];
    int64_t retries;
    int64_t latency_le[NBUCKETS]; /* cumulative at render time, per bucket here */
    int64_t latency_count;
    double latency_sum_s;
    unsigned char page_bad[METRICS_PAGE_WINDOW]; /* ring: 1 = a page not understood */
    int page_pos, page_n, page_nbad;
    int warned; /* the share is high, warned already */
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
/* Everything below is guarded by metrics_lock. */
static struct source_counters sources[MAX_SOURCES];
static int nsources;
/* Counted on every request: lock-free, one counter per status code. */
static _Atomic int64_t http_codes[600];

static struct source_counters *source_slot(const char *name)
{
    for (int i = 0; i < nsources; i++)
        if (strcmp(sources[i].name, name) == 0)
            return &sources[i];
    if (nsources == MAX_SOURCES)
        return &sources[MAX_SOURCES - 1];
    struct source_counters *s = &sources[nsources++];
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

/* Records one 2xx page in the source's window. Lock held; returns 1 when a warning is due. */
static int note_page(struct source_counters *s, int bad)
{
    if (s->page_n == METRICS_PAGE_WINDOW)
        s->page_nbad -= s->page_bad[s->page_pos];
    else
        s->page_n++;
    s->page_bad[s->page_pos] = (unsigned char)bad;
    s->page_nbad += bad;
    s->page_pos = (s->page_pos + 1) % METRICS_PAGE_WINDOW;
    if (s->warned && s->page_nbad * 4 < s->page_n)
        s->warned = 0;
    if (!s->warned && s->page_n >= 20 && s->page_nbad * 2 >= s->page_n) {
        s->warned = 1;
        return 1;
    }
    return 0;
}

void metrics_fetch(const char *source, obs_status status, int http_status, int64_t duration_ms,
                   int attempts)
{
    double secs = (double)duration_ms / 1000.0;
    int warn = 0, nbad = 0, n = 0;
    char name[64];
    pthread_mutex_lock(&metrics_lock);
    struct source_counters *s = source_slot(source ? source : "");
    if ((unsigned)status < OBS_STATUS_COUNT)
        s->fetches[status]++;
    if (attempts > 1)
        s->retries += attempts - 1;
    for (size_t b = 0; b < NBUCKETS; b++)
        if (secs <= latency_buckets_s[b]) {
            s->latency_le[b]++;
            break;
        }
    s->latency_count++;
    s->latency_sum_s += secs;
    if (http_status >= 200 && http_status < 300) {
        warn = note_page(s, status == OBS_NO_RANK || status == OBS_ERROR);
        nbad = s->page_nbad;
        n = s->page_n;
        memcpy(name, s->name, sizeof name);
    }
    pthread_mutex_unlock(&metrics_lock);
    if (warn)
        log_warn("%s: %d of the last %d pages showed no rank the rules could read; the store's "
                 "markup may have changed (start with --keep-pages and run `bookrank extract` on "
                 "the kept pages)",
                 name, nbad, n);
}

void metrics_http(int code)
{
    if (code >= 100 && code < 600)
        atomic_fetch_add_explicit(&http_codes[code], 1, memory_order_relaxed);
}

/* Label values here are source names and numbers; escape what the format requires anyway. */
static int append_label(buf *out, const char *value)
{
    for (const char *p = value; *p; p++) {
        int rc = 0;
        if (*p == '\\' || *p == '"')
            rc = buf_printf(out, "\\%c", *p);
        else if (*p == '\n')
            rc = buf_append_str(out, "\\n");
        else
            rc = buf_append(out, p, 1);
        if (rc)
            return rc;
    }
    return 0;
}

int metrics_render(buf *out, const metrics_gauges *g)
{
    int rc = 0;
    pthread_mutex_lock(&metrics_lock);
    rc |= buf_append_str(out,
                         "# HELP bookrank_fetches_total Finished fetches by source and status.\n"
                         "# TYPE bookrank_fetches_total counter\n");
    for (int i = 0; i < nsources; i++)
        for (int st = 0; st < OBS_STATUS_COUNT; st++) {
            rc |= buf_append_str(out, "bookrank_fetches_total{source=\"");
            rc |= append_label(out, sources[i].name);
            rc |= buf_printf(out, "\",status=\"%s\"} %lld\n", obs_status_name((obs_status)st),
                             (long long)sources[i].fetches[st]);
        }
    rc |= buf_append_str(out, "# HELP bookrank_fetch_retries_total Retried attempts by source.\n"
                              "# TYPE bookrank_fetch_retries_total counter\n");
    for (int i = 0; i < nsources; i++) {
        rc |= buf_append_str(out, "bookrank_fetch_retries_total{source=\"");
        rc |= append_label(out, sources[i].name);
        rc |= buf_printf(out, "\"} %lld\n", (long long)sources[i].retries);
    }
    rc |= buf_append_str(
        out, "# HELP bookrank_fetch_duration_seconds Time per fetch, retries included.\n"
             "# TYPE bookrank_fetch_duration_seconds histogram\n");
    for (int i = 0; i < nsources; i++) {
        int64_t cumulative = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cumulative += sources[i].latency_le[b];
            rc |= buf_append_str(out, "bookrank_fetch_duration_seconds_bucket{source=\"");
            rc |= append_label(out, sources[i].name);
            rc |= buf_printf(out, "\",le=\"%g\"} %lld\n", latency_buckets_s[b],
                             (long long)cumulative);
        }
        rc |= buf_append_str(out, "bookrank_fetch_duration_seconds_bucket{source=\"");
        rc |= append_label(out, sources[i].name);
        rc |= buf_printf(out, "\",le=\"+Inf\"} %lld\n", (long long)sources[i].latency_count);
        rc |= buf_append_str(out, "bookrank_fetch_duration_seconds_sum{source=\"");
        rc |= append_label(out, sources[i].name);
        rc |= buf_printf(out, "\"} %.3f\n", sources[i].latency_sum_s);
        rc |= buf_append_str(out, "bookrank_fetch_duration_seconds_count{source=\"");
        rc |= append_label(out, sources[i].name);
        rc |= buf_printf(out, "\"} %lld\n", (long long)sources[i].latency_count);
    }
    rc |= buf_printf(out,
                     "# HELP bookrank_pages_not_understood_ratio Share of the last %d pages "
                     "(2xx) per source that yielded no rank.\n"
                     "# TYPE bookrank_pages_not_understood_ratio gauge\n",
                     METRICS_PAGE_WINDOW);
    for (int i = 0; i < nsources; i++) {
        if (!sources[i].page_n)
            continue;
        rc |= buf_append_str(out, "bookrank_pages_not_understood_ratio{source=\"");
        rc |= append_label(out, sources[i].name);
        rc |= buf_printf(out, "\"} %.3f\n", (double)sources[i].page_nbad / sources[i].page_n);
    }
    rc |= buf_append_str(out, "# HELP bookrank_http_requests_total HTTP requests by status code.\n"
                              "# TYPE bookrank_http_requests_total counter\n");
    for (int code = 100; code < 600; code++) {
        int64_t n = atomic_load_explicit(&http_codes[code], memory_order_relaxed);
        if (n)
            rc |= buf_printf(out, "bookrank_http_requests_total{code=\"%d\"} %lld\n", code,
                             (long long)n);
    }
    pthread_mutex_unlock(&metrics_lock);
    rc |= buf_printf(out,
                     "# HELP bookrank_books_tracked Books tracked.\n"
                     "# TYPE bookrank_books_tracked gauge\nbookrank_books_tracked %lld\n"
                     "# HELP bookrank_jobs_running Refresh jobs queued or running.\n"
                     "# TYPE bookrank_jobs_running gauge\nbookrank_jobs_running %lld\n"
                     "# HELP bookrank_fetch_queue_depth Fetches waiting for a worker.\n"
                     "# TYPE bookrank_fetch_queue_depth gauge\nbookrank_fetch_queue_depth %lld\n"
                     "# HELP bookrank_fetches_in_flight Fetches being made now.\n"
                     "# TYPE bookrank_fetches_in_flight gauge\nbookrank_fetches_in_flight %lld\n"
                     "# HELP bookrank_store_failing 1 while the database refuses writes (locked "
                     "by another process, disk full, read-only); fetching pauses.\n"
                     "# TYPE bookrank_store_failing gauge\nbookrank_store_failing %lld\n"
                     "# HELP bookrank_store_held_observations Observations kept until the "
                     "database takes them.\n"
                     "# TYPE bookrank_store_held_observations gauge\n"
                     "bookrank_store_held_observations %lld\n"
                     "# HELP bookrank_store_lost_total Observations given up on.\n"
                     "# TYPE bookrank_store_lost_total counter\nbookrank_store_lost_total %lld\n",
                     (long long)g->books_tracked, (long long)g->jobs_active,
                     (long long)g->queue_depth, (long long)g->fetches_in_flight,
                     (long long)g->store_failing, (long long)g->store_held,
                     (long long)g->store_lost);
    return rc ? BUF_NOMEM : 0;
}
