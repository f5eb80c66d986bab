/* jobs.c - refresh jobs: feeders -> scraper pool -> one writer thread -> store. */
#include "jobs.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/buf.h"
#include "../common/log.h"
#include "../common/metrics.h"
#include "../common/timeutil.h"

/* One job in progress. Fields are guarded by jobs.lock unless noted. */
typedef struct job_run {
    db_job rec;                  /* live state; rec.done counts committed observations */
    int64_t abandoned;           /* fetches that will never produce an observation */
    int64_t received;            /* results handed to the writer queue (incl. abandoned) */
    db_job staged;               /* writer thread: rec with the batch being committed */
    int64_t staged_abandoned;    /* writer thread: abandoned results in that batch */
    int64_t staged_failed;       /* writer thread: observations in that batch */
    isbn *books;                 /* owned; the books to fetch (feeder reads without lock) */
    size_t nbooks;
    pthread_t feeder;
    int feeder_started;
    struct jobs *owner;
    struct job_run *next;
} job_run;

/* One finished fetch waiting for the writer. */
typedef struct pending {
    job_run *run;
    observation *obs;            /* owned; NULL when abandoned */
    struct pending *next;
} pending;

struct jobs {
    jobs_config cfg;
    scr_pool *pool;
    db *control;                 /* guarded by lock */
    pthread_mutex_t lock;
    pthread_cond_t changed;      /* job progress or state changed */
    pthread_cond_t wake_writer;  /* pending work or stopping */
    job_run *runs;               /* active jobs, guarded by lock */
    job_run *finished;           /* finished runs whose feeder is still to be joined */
    pending *head, *tail;        /* writer queue, guarded by lock */
    int stopping;                /* guarded by lock */
    int writer_exit;             /* guarded by lock */
    pthread_t writer;
    _Atomic uint64_t commits;    /* bumped after each commit, before progress is published */
    db *writer_db;               /* writer thread only */
};

/* ---- worker side ------------------------------------------------------------------------ */

static void on_result(void *ctx, observation *obs)
{
    job_run *run = ctx;
    jobs *j = run->owner;
    pending *p = malloc(sizeof *p);
    if (!p) {
        /* Out of memory: this observation is lost; count it as abandoned so the job ends. */
        if (obs) {
            obs_clear(obs);
            free(obs);
        }
        obs = NULL;
    }
    pthread_mutex_lock(&j->lock);
    run->received++;
    if (p) {
        p->run = run;
        p->obs = obs;
        p->next = NULL;
        if (j->tail)
            j->tail->next = p;
        else
            j->head = p;
        j->tail = p;
    } else {
        run->abandoned++;
    }
    pthread_cond_signal(&j->wake_writer);
    pthread_mutex_unlock(&j->lock);
}

/* Submits every (book, source) pair; stops early when the pool stops. */
static void *feeder_main(void *arg)
{
    job_run *run = arg;
    jobs *j = run->owner;
    size_t submitted = 0, total = run->nbooks * j->cfg.nsources;

    for (size_t b = 0; b < run->nbooks; b++)
        for (size_t s = 0; s < j->cfg.nsources; s++) {
            if (scr_pool_submit(j->pool, j->cfg.sources[s], &run->books[b], on_result, run))
                goto stopped;
            submitted++;
        }
    return NULL;
stopped:
    pthread_mutex_lock(&j->lock);
    run->abandoned += (int64_t)(total - submitted);
    run->received += (int64_t)(total - submitted);
    pthread_cond_signal(&j->wake_writer);
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

/* ---- writer ------------------------------------------------------------------------------ */

static int run_unfinished(const job_run *r)
{
    return r->rec.state == JOB_QUEUED || r->rec.state == JOB_RUNNING;
}

/* Moves finished runs out of the active list. Called with lock held, after a commit. */
static void retire_finished_locked(jobs *j)
{
    job_run **pp = &j->runs;
    while (*pp) {
        job_run *r = *pp;
        if (!run_unfinished(r)) {
            *pp = r->next;
            r->next = j->finished;
            j->finished = r;
        } else {
            pp = &r->next;
        }
    }
}

/* Whether some job has every result in hand, so its batch should not wait. Lock held. */
static int some_job_complete_locked(const jobs *j)
{
    for (const job_run *r = j->runs; r; r = r->next)
        if (r->received >= r->rec.total && r->rec.state == JOB_RUNNING)
            return 1;
    return 0;
}

/* Ends a job whose results are all in: done when everything was stored, else cancelled. */
static void settle_state(db_job *rec, int64_t abandoned, int64_t now)
{
    if (rec->state == JOB_DONE || rec->state == JOB_CANCELLED)
        return;
    if (rec->done + abandoned >= rec->total) {
        rec->state = abandoned ? JOB_CANCELLED : JOB_DONE;
        rec->finished_at_ms = now;
    }
}

/*
 * Commits one batch: observations plus the progress of every job they belong to, in one
 * transaction. Progress is staged on copies and published only after the commit, so whoever
 * sees a job done (or `done` grow) can read those observations; a batch that cannot be stored
 * (disk full, read-only file) is counted as abandoned, so the job ends `cancelled` and never
 * claims observations the store does not have.
 */
static void write_batch(jobs *j, pending *batch)
{
    size_t n = 0;
    for (pending *p = batch; p; p = p->next)
        if (p->obs)
            n++;
    observation *arr = n ? calloc(n, sizeof *arr) : NULL;
    if (arr) {
        size_t k = 0;
        for (pending *p = batch; p; p = p->next)
            if (p->obs)
                arr[k++] = *p->obs;     /* shallow: the pending entries keep ownership */
    }

    int64_t now = time_now_ms();
    pthread_mutex_lock(&j->lock);
    size_t nruns = 0;
    for (job_run *r = j->runs; r; r = r->next) {
        r->staged = r->rec;
        r->staged_abandoned = 0;
        r->staged_failed = 0;
        nruns++;
    }
    for (pending *p = batch; p; p = p->next) {
        if (p->obs) {
            p->run->staged.done++;
            p->run->staged.counts[p->obs->status]++;
            p->run->staged_failed++;
        } else {
            p->run->staged_abandoned++;
        }
    }
    db_job *snap = nruns ? calloc(nruns, sizeof *snap) : NULL;
    size_t ns = 0;
    for (job_run *r = j->runs; r; r = r->next) {
        settle_state(&r->staged, r->abandoned + r->staged_abandoned, now);
        if (snap)
            snap[ns++] = r->staged;
    }
    pthread_mutex_unlock(&j->lock);

    int ok = db_begin(j->writer_db) == DB_OK;
    if (ok && n && arr)
        ok = db_observations_add(j->writer_db, arr, n) == DB_OK;
    for (size_t i = 0; ok && i < ns; i++)
        ok = db_job_update(j->writer_db, &snap[i]) == DB_OK;
    if (ok)
        ok = db_commit(j->writer_db) == DB_OK;
    if (!ok) {
        log_error("store: could not commit %zu observations: %s", n, db_errmsg(j->writer_db));
        db_rollback(j->writer_db);
    }

    if (ok)
        atomic_fetch_add(&j->commits, 1);
    pthread_mutex_lock(&j->lock);
    for (job_run *r = j->runs; r; r = r->next) {
        if (ok) {
            r->rec = r->staged;
            r->abandoned += r->staged_abandoned;
        } else {
            r->abandoned += r->staged_abandoned + r->staged_failed;
            settle_state(&r->rec, r->abandoned, now);
        }
    }
    pthread_mutex_unlock(&j->lock);
    if (n && !arr)
        log_error("store: out of memory, %zu observations lost", n);

    for (pending *p = batch; p; p = p->next) {
        if (!p->obs)
            continue;
        metrics_fetch(p->obs->source, p->obs->status, p->obs->duration_ms, p->obs->attempts);
        if (j->cfg.observer)
            j->cfg.observer(j->cfg.observer_ctx, p->run->rec.id, p->obs);
    }
    pthread_mutex_lock(&j->lock);
    /* A finished run whose final row could not be stored stays listed (and answers jobs_get
     * from memory) until a later commit stores it; otherwise the store's stale row would show
     * it running forever. */
    if (ok)
        retire_finished_locked(j);
    pthread_cond_broadcast(&j->changed);
    pthread_mutex_unlock(&j->lock);

    free(snap);
    free(arr);
    while (batch) {
        pending *next = batch->next;
        if (batch->obs) {
            obs_clear(batch->obs);
            free(batch->obs);
        }
        free(batch);
        batch = next;
    }
}

static void *writer_main(void *arg)
{
    jobs *j = arg;
    int flush_ms = j->cfg.flush_ms > 0 ? j->cfg.flush_ms : 1000;

    pthread_mutex_lock(&j->lock);
    for (;;) {
        if (!j->head && !j->writer_exit) {
            /* Wait for the first item, then give the batch up to flush_ms to fill. */
            pthread_cond_wait(&j->wake_writer, &j->lock);
            continue;
        }
        if (j->head && !j->writer_exit) {
            struct timespec deadline;
            clock_gettime(CLOCK_MONOTONIC, &deadline);
            int64_t ns = deadline.tv_nsec + (int64_t)(flush_ms % 1000) * 1000000;
            deadline.tv_sec += flush_ms / 1000 + ns / 1000000000;
            deadline.tv_nsec = ns % 1000000000;
            /* Commit when the batch is large or the interval is over, whichever first. */
            for (;;) {
                size_t count = 0;
                for (pending *p = j->head; p && count < 512; p = p->next)
                    count++;
                if (count >= 512 || j->writer_exit || some_job_complete_locked(j))
                    break;
                if (pthread_cond_timedwait(&j->wake_writer, &j->lock, &deadline) == ETIMEDOUT)
                    break;
            }
        }
        pending *batch = j->head;
        j->head = j->tail = NULL;
        int exiting = j->writer_exit;
        pthread_mutex_unlock(&j->lock);
        if (batch)
            write_batch(j, batch);
        pthread_mutex_lock(&j->lock);
        if (exiting && !j->head)
            break;
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

/* ---- public ------------------------------------------------------------------------------ */

/* Frees what jobs_start set up; the threads are gone (or were never started). */
static void jobs_destroy(jobs *j)
{
    db_close(j->writer_db);
    db_close(j->control);
    pthread_cond_destroy(&j->wake_writer);
    pthread_cond_destroy(&j->changed);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

jobs *jobs_start(const jobs_config *cfg, char **err)
{
    jobs *j = calloc(1, sizeof *j);
    if (!j) {
        *err = strdup("out of memory");
        return NULL;
    }
    j->cfg = *cfg;
    pthread_mutex_init(&j->lock, NULL);
    /* Deadlines on the monotonic clock: a wall-clock step must not stall commits. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&j->changed, &attr);
    pthread_cond_init(&j->wake_writer, &attr);
    pthread_condattr_destroy(&attr);

    char *dberr = NULL;
    j->control = db_open(cfg->db_path, &dberr);
    if (!j->control)
        goto fail_db;
    j->writer_db = db_open(cfg->db_path, &dberr);
    if (!j->writer_db)
        goto fail_db;
    int cancelled = 0;
    if (db_jobs_cancel_unfinished(j->control, time_now_ms(), &cancelled) != DB_OK)
        log_warn("store: could not mark interrupted jobs: %s", db_errmsg(j->control));
    else if (cancelled)
        log_info("%d interrupted job(s) marked cancelled", cancelled);

    j->pool = scr_pool_new(&cfg->scraper, err);
    if (!j->pool)
        goto fail;
    if (pthread_create(&j->writer, NULL, writer_main, j) != 0) {
        *err = strdup("cannot start the writer thread");
        goto fail;
    }
    return j;

fail_db:
    *err = dberr ? dberr : strdup("cannot open the database");
fail:
    scr_pool_free(j->pool, 0);
    jobs_destroy(j);
    return NULL;
}

static void run_free(job_run *r)
{
    if (!r)
        return;
    free(r->books);
    free(r);
}

static void reap_finished_locked(jobs *j);

const char *jobs_strerror(jobs_err err)
{
    switch (err) {
    case JOBS_OK: return "ok";
    case JOBS_NOT_FOUND: return "no such job";
    case JOBS_BUSY: return "too many refreshes are running";
    case JOBS_STOPPING: return "shutting down";
    case JOBS_STORE: return "the store is not available";
    case JOBS_NOMEM: return "out of memory";
    case JOBS_SYSTEM: return "cannot start a thread";
    }
    return "unknown error";
}

/* Writes a detail message into the caller's buffer (if any). */
static void explain(char *why, size_t whylen, const char *fmt, ...) BR_PRINTF(3, 4);
static void explain(char *why, size_t whylen, const char *fmt, ...)
{
    if (!why || whylen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(why, whylen, fmt, ap) < 0)
        why[0] = '\0';
    va_end(ap);
}

jobs_err jobs_refresh(jobs *j, const isbn *books, size_t n, db_job *out, int *joined, char *why,
                      size_t whylen)
{
    jobs_err rc = JOBS_NOMEM;
    *joined = 0;
    explain(why, whylen, "%s", "");
    pthread_mutex_lock(&j->lock);
    if (j->stopping) {
        pthread_mutex_unlock(&j->lock);
        explain(why, whylen, "%s", "shutting down");
        return JOBS_STOPPING;
    }
    reap_finished_locked(j);
    int active = 0;
    for (job_run *r = j->runs; r; r = r->next)
        active += run_unfinished(r);
    if (books && active >= JOBS_MAX_ACTIVE) {
        pthread_mutex_unlock(&j->lock);
        explain(why, whylen, "%d refreshes are running already; try again when one ends", active);
        return JOBS_BUSY;
    }
    if (!books) {
        for (job_run *r = j->runs; r; r = r->next)
            if (r->rec.all_books && run_unfinished(r)) {
                *out = r->rec;
                *joined = 1;
                pthread_mutex_unlock(&j->lock);
                return JOBS_OK;
            }
    }
    job_run *run = calloc(1, sizeof *run);
    if (!run)
        goto nomem;
    run->owner = j;
    if (books) {
        run->books = malloc((n ? n : 1) * sizeof *run->books);
        if (!run->books)
            goto nomem;
        memcpy(run->books, books, n * sizeof *books);
        run->nbooks = n;
    } else if (db_books_isbns(j->control, &run->books, &run->nbooks) != DB_OK) {
        explain(why, whylen, "store: %s", db_errmsg(j->control));
        rc = JOBS_STORE;
        goto fail;
    }
    int64_t now = time_now_ms();
    run->rec.all_books = books == NULL;
    run->rec.total = (int64_t)(run->nbooks * j->cfg.nsources);
    run->rec.state = JOB_RUNNING;
    run->rec.created_at_ms = run->rec.started_at_ms = now;
    if (run->rec.total == 0) {
        run->rec.state = JOB_DONE;
        run->rec.finished_at_ms = now;
    }
    if (db_job_create(j->control, &run->rec) != DB_OK) {
        explain(why, whylen, "store: %s", db_errmsg(j->control));
        rc = JOBS_STORE;
        goto fail;
    }
    *out = run->rec;
    if (run->rec.total == 0) {
        pthread_mutex_unlock(&j->lock);
        run_free(run);
        return JOBS_OK;
    }
    if (pthread_create(&run->feeder, NULL, feeder_main, run) != 0) {
        run->rec.state = JOB_CANCELLED;
        run->rec.finished_at_ms = now;
        if (db_job_update(j->control, &run->rec) != DB_OK)
            log_error("store: could not cancel job %lld: %s", (long long)run->rec.id,
                      db_errmsg(j->control));
        explain(why, whylen, "%s", "cannot start a feeder thread");
        rc = JOBS_SYSTEM;
        goto fail;
    }
    run->feeder_started = 1;
    size_t n_books = run->nbooks;   /* run belongs to the writer once listed */
    run->next = j->runs;
    j->runs = run;
    pthread_mutex_unlock(&j->lock);
    log_info("job %lld: refreshing %zu book(s) from %zu source(s)", (long long)out->id,
             n_books, j->cfg.nsources);
    return JOBS_OK;

nomem:
    explain(why, whylen, "%s", "out of memory");
    rc = JOBS_NOMEM;
fail:
    pthread_mutex_unlock(&j->lock);
    run_free(run);
    return rc;
}

/* Joins feeders of finished runs and frees them. Lock held. */
static void reap_finished_locked(jobs *j)
{
    while (j->finished) {
        job_run *r = j->finished;
        j->finished = r->next;
        if (r->feeder_started)
            pthread_join(r->feeder, NULL);   /* already returned: every fetch came back */
        run_free(r);
    }
}

jobs_err jobs_get(jobs *j, int64_t id, db_job *out)
{
    pthread_mutex_lock(&j->lock);
    reap_finished_locked(j);
    for (job_run *r = j->runs; r; r = r->next)
        if (r->rec.id == id) {
            *out = r->rec;
            pthread_mutex_unlock(&j->lock);
            return JOBS_OK;
        }
    int rc = db_job_get(j->control, id, out);
    pthread_mutex_unlock(&j->lock);
    return rc == DB_OK ? JOBS_OK : rc == DB_NOTFOUND ? JOBS_NOT_FOUND : JOBS_STORE;
}

static int run_active_locked(jobs *j, int64_t id)
{
    for (job_run *r = j->runs; r; r = r->next)
        if (r->rec.id == id && run_unfinished(r))
            return 1;
    return 0;
}

int jobs_wait(jobs *j, int64_t id, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms >= 0) {
        int64_t ns = deadline.tv_nsec + (int64_t)(timeout_ms % 1000) * 1000000;
        deadline.tv_sec += timeout_ms / 1000 + ns / 1000000000;
        deadline.tv_nsec = ns % 1000000000;
    }
    pthread_mutex_lock(&j->lock);
    int finished = 1;
    while (run_active_locked(j, id)) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&j->changed, &j->lock);
        } else if (pthread_cond_timedwait(&j->changed, &j->lock, &deadline) == ETIMEDOUT) {
            finished = !run_active_locked(j, id);
            break;
        }
    }
    reap_finished_locked(j);
    pthread_mutex_unlock(&j->lock);
    return finished;
}

uint64_t jobs_commits(jobs *j)
{
    return atomic_load(&j->commits);
}

int jobs_active(jobs *j)
{
    int n = 0;
    pthread_mutex_lock(&j->lock);
    reap_finished_locked(j);
    for (job_run *r = j->runs; r; r = r->next)
        n += run_unfinished(r);
    pthread_mutex_unlock(&j->lock);
    return n;
}

void jobs_pool_stats(jobs *j, scr_pool_stats *out)
{
    scr_pool_stats_get(j->pool, out);
}

void jobs_stop(jobs *j, int grace_ms)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->lock);
    j->stopping = 1;
    pthread_mutex_unlock(&j->lock);

    /* Feeders' submits fail from now on; join them before the pool goes away under them.
     * Then in-flight fetches finish within the grace period or come back abandoned. */
    scr_pool_stop(j->pool);
    pthread_mutex_lock(&j->lock);
    for (;;) {
        /* The writer may move runs between the lists while the lock is dropped: rescan. */
        job_run *r = j->runs;
        while (r && !r->feeder_started)
            r = r->next;
        for (job_run *f = j->finished; !r && f; f = f->next)
            if (f->feeder_started)
                r = f;
        if (!r)
            break;
        r->feeder_started = 0;
        pthread_t feeder = r->feeder;
        pthread_mutex_unlock(&j->lock);
        pthread_join(feeder, NULL);
        pthread_mutex_lock(&j->lock);
    }
    pthread_mutex_unlock(&j->lock);
    scr_pool_free(j->pool, grace_ms);
    pthread_mutex_lock(&j->lock);
    j->pool = NULL;
    j->writer_exit = 1;
    pthread_cond_signal(&j->wake_writer);
    pthread_mutex_unlock(&j->lock);
    pthread_join(j->writer, NULL);

    /* Whatever is still not finished never will be; a finished run still listed is one whose
     * final row could not be stored yet: one more try. */
    int64_t now = time_now_ms();
    for (job_run *r = j->runs; r; r = r->next) {
        if (run_unfinished(r)) {
            r->rec.state = JOB_CANCELLED;
            r->rec.finished_at_ms = now;
        }
        if (db_job_update(j->writer_db, &r->rec) != DB_OK)
            log_error("store: could not store the end of job %lld: %s", (long long)r->rec.id,
                      db_errmsg(j->writer_db));
    }
    while (j->runs) {
        job_run *r = j->runs;
        j->runs = r->next;
        run_free(r);
    }
    reap_finished_locked(j);
    jobs_destroy(j);
}
