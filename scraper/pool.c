/*
 * pool.c - the polite fetch pool: a bounded queue, worker threads and per-host permits.
 *
 * One mutex guards everything shared (queue, hosts, counters, stop state). A worker takes the
 * first queued request whose host can start one now (free in-flight slot, rate token, no pause),
 * so a slow or paused host never idles a worker while another host has work. A request that
 * needs another attempt goes back to the queue's front with a "not before" time instead of
 * sleeping in its worker: the backoff holds neither a worker nor a host slot, and shutdown
 * simply drops it.
 */
#include "scraper.h"
#include "keep.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/buf.h"
#include "../common/timeutil.h"
#include "fetch.h"
#include "source_internal.h"

#define BACKOFF_MAX_S 30.0
#define WORKERS_MAX 1024
#define PER_HOST_MAX 1024
#define QUEUE_MAX (1u << 20)

typedef struct pool_host {
    struct pool_host *next;
    char *key; /* "scheme://host:port", lower-case host */
    /* guarded by scr_pool.lock: */
    int in_flight;
    int64_t next_start_us;   /* token bucket with burst 1: earliest start of the next request */
    int64_t paused_until_us; /* cool-down after `blocked`, or the store's Retry-After */
} pool_host;

typedef struct pool_job {
    struct pool_job *next;
    const scr_source *src;
    scr_book book;
    char *url;               /* NULL when early_error is set */
    const char *early_error; /* static text: reported without fetching */
    pool_host *host;         /* NULL when early_error is set */
    scr_result_fn fn;
    void *ctx;
    int started; /* taken by a worker at least once (then counted in in_flight) */
    int attempts;
    int64_t start_us;      /* monotonic, when first taken: duration includes retry waits */
    int64_t not_before_us; /* backoff: not to be retried before this */
} pool_job;

typedef struct pool_worker {
    scr_pool *pool;
    scr_fetcher *fetcher; /* this worker's own easy handle */
    pthread_t thread;
    int running;  /* thread created (joined in scr_pool_free) */
    uint64_t rng; /* backoff jitter, worker-private */
} pool_worker;

struct scr_pool {
    scr_config cfg;          /* immutable after scr_pool_new; string members not kept */
    int64_t interval_us;     /* 1 / rate, 0 = unlimited */
    int64_t interval_all_us; /* 1 / rate_all, 0 = unlimited */
    scr_keep *keep;          /* kept pages, NULL = none */
    pthread_mutex_t lock;
    pthread_cond_t work_cv;  /* workers: new job, freed slot, requeued retry, stop */
    pthread_cond_t space_cv; /* submitters: room in the queue, stop */
    pthread_cond_t done_cv;  /* scr_pool_free: a started job finished, a submitter left */
    /* guarded by lock: */
    pool_job *head, *tail;     /* never-started jobs in submit order, retries in front */
    long queued;               /* never-started jobs in the queue */
    long in_flight;            /* started and not yet reported (fetching or in backoff) */
    int64_t next_start_all_us; /* the pool-wide token bucket (rate_all), burst 1 */
    int submitters;            /* threads inside scr_pool_submit */
    int stopping;              /* no new work; never-started jobs were abandoned */
    int aborting;              /* grace is over: stop everything */
    pool_host *hosts;
    /* set with aborting; read lock-free by the fetchers' progress callbacks */
    atomic_int abort_flag;
    int nworkers;
    pool_worker *workers;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Waits on cv until woken or until the monotonic deadline (the conds use CLOCK_MONOTONIC). */
static void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *lock, int64_t deadline_us)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_us / 1000000);
    ts.tv_nsec = (long)(deadline_us % 1000000) * 1000;
    int rc = pthread_cond_timedwait(cv, lock, &ts);
    (void)rc; /* ETIMEDOUT and spurious wake-ups alike: callers re-check their condition */
}

static uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]. */
static double backoff_s(pool_worker *w, int attempt)
{
    double step = w->pool->cfg.backoff_base_s;
    for (int i = 1; i < attempt && step < BACKOFF_MAX_S; i++)
        step *= 2;
    if (step > BACKOFF_MAX_S)
        step = BACKOFF_MAX_S;
    double unit = (double)(rng_next(&w->rng) >> 11) * (1.0 / 9007199254740992.0);
    return unit * step;
}

void scr_config_defaults(scr_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->workers = 8;
    cfg->per_host = 2;
    cfg->rate = 1.0;
    cfg->timeout_s = 30.0;
    cfg->retries = 2;
    cfg->cooldown_s = 60.0;
    cfg->backoff_base_s = 0.5;
    cfg->user_agent = NULL;
    cfg->proxy = NULL;
    cfg->queue_size = 1024;
}

static char *config_check(const scr_config *cfg)
{
    if (cfg->workers < 1 || cfg->workers > WORKERS_MAX)
        return buf_strdup_printf("workers must be 1..%d", WORKERS_MAX);
    if (cfg->per_host < 1 || cfg->per_host > PER_HOST_MAX)
        return buf_strdup_printf("per-host must be 1..%d", PER_HOST_MAX);
    if (!(cfg->rate >= 0 && cfg->rate <= 1e6))
        return buf_strdup_printf("rate must be 0 (unlimited) or a positive number of requests/s");
    if (!(cfg->timeout_s > 0 && cfg->timeout_s <= 3600))
        return buf_strdup_printf("timeout must be more than 0 and at most 3600 s");
    if (cfg->retries < 0 || cfg->retries > 100)
        return buf_strdup_printf("retries must be 0..100");
    if (!(cfg->cooldown_s >= 0 && cfg->cooldown_s <= 86400))
        return buf_strdup_printf("cooldown must be 0..86400 s");
    if (!(cfg->rate_all >= 0 && cfg->rate_all <= 1e6))
        return buf_strdup_printf(
            "rate-all must be 0 (unlimited) or a positive number of requests/s");
    if (cfg->keep_pages < 0 || cfg->keep_pages > 100000 || (cfg->keep_pages && !cfg->pages_dir))
        return buf_strdup_printf("keep-pages must be 0..100000, with a directory");
    if (!(cfg->backoff_base_s >= 0 && cfg->backoff_base_s <= BACKOFF_MAX_S))
        return buf_strdup_printf("backoff base must be 0..%g s", BACKOFF_MAX_S);
    if (cfg->queue_size < 1 || cfg->queue_size > QUEUE_MAX)
        return buf_strdup_printf("queue size must be 1..%u", QUEUE_MAX);
    return NULL;
}

static void job_free(pool_job *job)
{
    if (!job)
        return;
    free(job->url);
    free(job);
}

/* Removes job (whose predecessor is prev, NULL at the head) from the queue. Lock held. */
static void queue_unlink(scr_pool *p, pool_job *prev, pool_job *job)
{
    if (prev)
        prev->next = job->next;
    else
        p->head = job->next;
    if (p->tail == job)
        p->tail = prev;
    job->next = NULL;
}

/* Detaches the queued jobs (all, or only never-started ones) into a list. Lock held. */
static pool_job *queue_take_all(scr_pool *p, int only_unstarted)
{
    pool_job *out = NULL, **out_tail = &out;
    pool_job *prev = NULL, *job = p->head;
    while (job) {
        pool_job *next = job->next;
        if (!only_unstarted || !job->started) {
            queue_unlink(p, prev, job);
            if (job->started)
                p->in_flight--;
            else
                p->queued--;
            *out_tail = job;
            out_tail = &job->next;
        } else {
            prev = job;
        }
        job = next;
    }
    return out;
}

/* Calls back "abandoned" for each job of the list and frees them. No lock held. */
static void report_abandoned(pool_job *list)
{
    while (list) {
        pool_job *next = list->next;
        list->fn(list->ctx, NULL);
        job_free(list);
        list = next;
    }
}

/*
 * The host a URL's requests count against: scheme, lower-case host and port (default filled
 * in), so http://x and http://x:80 share limits while two ports on one machine do not.
 * Returns a malloc'd key or NULL when the URL does not parse.
 */
static char *host_key(const char *url)
{
    char *key = NULL, *scheme = NULL, *host = NULL, *port = NULL;
    CURLU *u = curl_url();
    if (!u)
        return NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto done;
    for (char *c = host; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    key = buf_strdup_printf("%s://%s:%s", scheme, host, port);
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return key;
}

/* The host record for key, created on first use. Lock held. NULL when out of memory. */
static pool_host *host_get(scr_pool *p, const char *key)
{
    for (pool_host *h = p->hosts; h; h = h->next)
        if (strcmp(h->key, key) == 0)
            return h;
    pool_host *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->key = strdup(key);
    if (!h->key) {
        free(h);
        return NULL;
    }
    h->next = p->hosts;
    p->hosts = h;
    return h;
}

/*
 * Blocks until a job can start now and returns it with its host permit taken (slot + rate
 * token), or NULL when the worker should exit. "Can start" = its backoff is over and its host
 * has a free slot, a token and no pause; jobs without a host (early errors) start at once.
 */
static pool_job *take_job(scr_pool *p)
{
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (p->aborting || (p->stopping && !p->head)) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        int64_t now = mono_us();
        int64_t wake = INT64_MAX;
        pool_job *prev = NULL, *job = p->head;
        for (; job; prev = job, job = job->next) {
            int64_t ready = job->not_before_us;
            pool_host *h = job->host;
            if (h) {
                if (h->in_flight >= p->cfg.per_host)
                    continue; /* a slot release broadcasts work_cv */
                ready = max64(ready, max64(h->next_start_us, h->paused_until_us));
                ready = max64(ready, p->next_start_all_us);
            }
            if (ready <= now)
                break;
            if (ready < wake)
                wake = ready;
        }
        if (job) {
            queue_unlink(p, prev, job);
            if (job->host) {
                job->host->in_flight++;
                job->host->next_start_us = max64(now, job->host->next_start_us) + p->interval_us;
                p->next_start_all_us = max64(now, p->next_start_all_us) + p->interval_all_us;
            }
            if (!job->started) {
                job->started = 1;
                job->start_us = now;
                p->queued--;
                p->in_flight++;
                pthread_cond_signal(&p->space_cv);
            }
            pthread_mutex_unlock(&p->lock);
            return job;
        }
        if (wake == INT64_MAX)
            pthread_cond_wait(&p->work_cv, &p->lock);
        else
            cond_wait_until(&p->work_cv, &p->lock, wake);
    }
}

/* Hands a finished (or abandoned: obs NULL) started job to its callback and forgets it. */
static void job_finish(scr_pool *p, pool_job *job, observation *obs)
{
    job->fn(job->ctx, obs);
    job_free(job);
    pthread_mutex_lock(&p->lock);
    p->in_flight--;
    pthread_cond_broadcast(&p->done_cv);
    pthread_mutex_unlock(&p->lock);
}

static observation *obs_start(const pool_job *job)
{
    observation *obs = malloc(sizeof *obs);
    if (!obs)
        return NULL;
    obs_init(obs);
    memcpy(obs->book_id, job->book.id, sizeof obs->book_id);
    obs->book_id[sizeof obs->book_id - 1] = '\0';
    if (obs_set_str(&obs->source, scr_source_name(job->src)) != 0) {
        free(obs);
        return NULL;
    }
    return obs;
}

/* Reports a job that fails without a fetch (no ISBN-10 for the template, bad URL). */
static void run_early_error(scr_pool *p, pool_job *job)
{
    observation *obs = obs_start(job);
    if (obs) {
        obs->status = OBS_ERROR;
        obs->fetched_at_ms = time_now_ms();
        obs->duration_ms = 0;
        if (obs_set_str(&obs->error, job->early_error) != 0) {
            obs_clear(obs);
            free(obs);
            obs = NULL;
        }
    }
    job_finish(p, job, obs); /* out of memory: reported like an abandoned request */
}

/*
 * Classifies a fetched answer into ans (obs_init'ed). Returns whether another attempt may help:
 * 429 always (the store asked us to slow down, not to go away), 5xx unless the page is a
 * captcha (a 503 robot check is `blocked`, which is never retried).
 */
static int classify_answer(const pool_job *job, const scr_fetch_result *res, observation *ans)
{
    if (res->len == 0 && res->http_status >= 200 && res->http_status < 300) {
        /* Nothing to classify: an empty 2xx is a broken answer, not a page without a rank. */
        char msg[64];
        if (snprintf(msg, sizeof msg, "empty page (HTTP %d)", res->http_status) < 0)
            msg[0] = '\0';
        ans->status = OBS_ERROR;
        obs_set_str(&ans->error, msg);
        return 0;
    }
    if (scr_extract(job->src, res->http_status, res->body, res->len, ans) != SCR_OK) {
        obs_clear(ans);
        ans->status = OBS_ERROR;
        obs_set_str(&ans->error, "out of memory");
        return 0;
    }
    if (res->http_status == 429)
        return 1;
    return res->http_status >= 500 && ans->status != OBS_BLOCKED;
}

/*
 * One attempt of job, then either a requeue for another attempt or the final report. The
 * answer is classified before the host slot is given back, so a `blocked` host is paused
 * before any other worker can start a request to it.
 */
static void run_attempt(pool_worker *w, pool_job *job)
{
    scr_pool *p = w->pool;
    pool_host *h = job->host;
    scr_fetch_result res;
    observation ans;
    int retry = 0;

    obs_init(&ans);
    job->attempts++;
    scr_fetch_err fetched = scr_fetch(w->fetcher, job->url, scr_source_fetch_policy(job->src),
                                      &res);
    if (fetched == FETCH_OK) {
        retry = classify_answer(job, &res, &ans);
        if (p->keep && ans.status != OBS_OK)
            scr_keep_page(p->keep, scr_source_name(job->src), job->book.id, ans.status,
                          res.http_status, res.body, res.len);
    } else if (fetched != FETCH_ABORTED) {
        retry = scr_fetch_retryable(fetched);
        ans.status = OBS_ERROR;
        obs_set_str(&ans.error, res.why);
    }
    scr_fetcher_release(w->fetcher); /* res.body is not used from here on */
    int64_t now = mono_us();

    pthread_mutex_lock(&p->lock);
    h->in_flight--;
    if (res.err == FETCH_OK && res.retry_after_s >= 0 &&
        (res.http_status == 429 || res.http_status == 503))
        h->paused_until_us = max64(h->paused_until_us, now + (int64_t)(res.retry_after_s * 1e6));
    int requeue = retry && job->attempts <= p->cfg.retries && !p->aborting;
    if (requeue) {
        double wait_s = backoff_s(w, job->attempts);
        if (res.retry_after_s > wait_s)
            wait_s = res.retry_after_s;
        job->not_before_us = now + (int64_t)(wait_s * 1e6);
        job->next = p->head;
        p->head = job;
        if (!p->tail)
            p->tail = job;
    } else if (ans.status == OBS_BLOCKED && p->cfg.cooldown_s > 0) {
        h->paused_until_us = max64(h->paused_until_us, now + (int64_t)(p->cfg.cooldown_s * 1e6));
    }
    /* A slot is free, or a retry is waiting. With nothing queued no worker can use the slot:
     * waking hundreds of idle workers on every finished request at the tail of a refresh would
     * only burn CPU. A stopping pool always wakes them (they exit once the queue is empty). */
    if (p->head || p->stopping)
        pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->lock);

    if (requeue || res.err == FETCH_ABORTED) {
        obs_clear(&ans);
        if (!requeue)
            job_finish(p, job, NULL);
        return;
    }
    /* An error without its message means memory ran out: report it like an abandoned one. */
    observation *obs = obs_start(job);
    if (!obs || (ans.status == OBS_ERROR && !ans.error)) {
        obs_clear(&ans);
        obs_clear(obs);
        free(obs);
        job_finish(p, job, NULL);
        return;
    }
    char *source = obs->source;
    *obs = ans; /* ownership of ans's members moves to obs */
    obs->source = source;
    memcpy(obs->book_id, job->book.id, sizeof obs->book_id);
    obs->http_status = res.http_status;
    obs->attempts = job->attempts;
    obs->duration_ms = (mono_us() - job->start_us) / 1000;
    obs->fetched_at_ms = time_now_ms();
    job_finish(p, job, obs);
}

static void *worker_main(void *arg)
{
    pool_worker *w = arg;
    pool_job *job;
    while ((job = take_job(w->pool)) != NULL) {
        if (job->early_error)
            run_early_error(w->pool, job);
        else
            run_attempt(w, job);
    }
    return NULL;
}

static void pool_destroy(scr_pool *p)
{
    for (int i = 0; i < p->nworkers; i++)
        scr_fetcher_free(p->workers[i].fetcher);
    free(p->workers);
    while (p->hosts) {
        pool_host *next = p->hosts->next;
        free(p->hosts->key);
        free(p->hosts);
        p->hosts = next;
    }
    scr_keep_free(p->keep);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->space_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

scr_pool *scr_pool_new(const scr_config *cfg, char **err)
{
    *err = config_check(cfg);
    if (*err)
        return NULL;
    scr_pool *p = calloc(1, sizeof *p);
    if (!p) {
        *err = strdup("out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    p->cfg.user_agent = NULL; /* borrowed strings: libcurl copied them into each handle */
    p->cfg.proxy = NULL;
    p->interval_us = cfg->rate > 0 ? (int64_t)(1e6 / cfg->rate) : 0;
    p->interval_all_us = cfg->rate_all > 0 ? (int64_t)(1e6 / cfg->rate_all) : 0;
    p->cfg.pages_dir = NULL;
    atomic_init(&p->abort_flag, 0);

    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work_cv, &attr);
    pthread_cond_init(&p->space_cv, &attr);
    pthread_cond_init(&p->done_cv, &attr);
    pthread_condattr_destroy(&attr);

    if (cfg->keep_pages && !(p->keep = scr_keep_new(cfg->pages_dir, cfg->keep_pages, err))) {
        pool_destroy(p);
        return NULL;
    }
    p->workers = calloc((size_t)cfg->workers, sizeof *p->workers);
    if (!p->workers) {
        *err = strdup("out of memory");
        pool_destroy(p);
        return NULL;
    }
    p->nworkers = cfg->workers;
    uint64_t seed = (uint64_t)mono_us() ^ ((uint64_t)(uintptr_t)p << 16);
    for (int i = 0; i < p->nworkers; i++) {
        pool_worker *w = &p->workers[i];
        w->pool = p;
        w->rng = (seed + 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1)) | 1;
        w->fetcher = scr_fetcher_new(cfg, &p->abort_flag, err);
        if (!w->fetcher) {
            pool_destroy(p);
            return NULL;
        }
    }
    for (int i = 0; i < p->nworkers; i++) {
        int rc = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
        if (rc != 0) {
            *err = buf_strdup_printf("cannot start worker thread: %s", strerror(rc));
            scr_pool_free(p, 0);
            return NULL;
        }
        p->workers[i].running = 1;
    }
    return p;
}

int scr_pool_submit(scr_pool *pool, const scr_source *src, const scr_book *book, scr_result_fn fn,
                    void *ctx)
{
    pool_job *job = calloc(1, sizeof *job);
    if (!job)
        return -1;
    job->src = src;
    job->book = *book;
    job->fn = fn;
    job->ctx = ctx;
    char *key = NULL;
    job->url = scr_source_url(src, book);
    if (!job->url)
        job->early_error = scr_source_can_address(src, book)
                               ? "out of memory"
                               : "the source cannot address this book: its URL template needs an "
                                 "ASIN (or an ISBN-10, which a 979 ISBN lacks)";
    else if (!(key = host_key(job->url)))
        job->early_error = "invalid URL";

    int rc = -1;
    pthread_mutex_lock(&pool->lock);
    if (key && !(job->host = host_get(pool, key)))
        goto unlock;
    pool->submitters++;
    while (!pool->stopping && pool->queued >= (long)pool->cfg.queue_size)
        pthread_cond_wait(&pool->space_cv, &pool->lock);
    pool->submitters--;
    if (pool->submitters == 0)
        pthread_cond_broadcast(&pool->done_cv);
    if (pool->stopping)
        goto unlock;
    if (pool->tail)
        pool->tail->next = job;
    else
        pool->head = job;
    pool->tail = job;
    pool->queued++;
    job = NULL;
    rc = 0;
    pthread_cond_signal(&pool->work_cv);
unlock:
    pthread_mutex_unlock(&pool->lock);
    free(key);
    job_free(job);
    return rc;
}

void scr_pool_stop(scr_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pool_job *abandoned = queue_take_all(pool, 1);
    pthread_cond_broadcast(&pool->work_cv);
    pthread_cond_broadcast(&pool->space_cv);
    pthread_mutex_unlock(&pool->lock);
    report_abandoned(abandoned);
}

void scr_pool_free(scr_pool *pool, int grace_ms)
{
    if (!pool)
        return;
    scr_pool_stop(pool);

    int64_t deadline = mono_us() + (int64_t)(grace_ms > 0 ? grace_ms : 0) * 1000;
    pthread_mutex_lock(&pool->lock);
    while (pool->in_flight > 0 && mono_us() < deadline)
        cond_wait_until(&pool->done_cv, &pool->lock, deadline);
    pool->aborting = 1;
    atomic_store(&pool->abort_flag, 1);
    for (int i = 0; i < pool->nworkers; i++)
        scr_fetcher_wake(pool->workers[i].fetcher);
    pool_job *abandoned = queue_take_all(pool, 0); /* retries waiting out their backoff */
    pthread_cond_broadcast(&pool->work_cv);
    pthread_cond_broadcast(&pool->space_cv);
    while (pool->submitters > 0)
        pthread_cond_wait(&pool->done_cv, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    report_abandoned(abandoned);

    for (int i = 0; i < pool->nworkers; i++)
        if (pool->workers[i].running)
            pthread_join(pool->workers[i].thread, NULL);
    pool_destroy(pool);
}

void scr_pool_stats_get(scr_pool *pool, scr_pool_stats *out)
{
    out->queued = out->in_flight = 0;
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    out->queued = pool->queued;
    out->in_flight = pool->in_flight;
    pthread_mutex_unlock(&pool->lock);
}
