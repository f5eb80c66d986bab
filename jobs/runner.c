/*
 * runner.c - the jobs_* entry points: starting and stopping the runner, creating jobs, their
 * feeder threads, and reading a job's state.
 *
 * Threads (see internal.h): every entry point takes the runner lock. A feeder thread per job
 * submits its fetches; it touches the runner only through writer.c. jobs_stop is called once,
 * by the owner, when no other jobs_* call is running or will start.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/timeutil.h"

/* ---- feeders ------------------------------------------------------------------------------ */

/* Submits every (book, source) pair; stops early when the pool stops. */
static void *feeder_main(void *arg)
{
    job_run *run = arg;
    jobs *j = run->owner;
    size_t submitted = 0, total = run->nbooks * j->cfg.nsources;

    for (size_t b = 0; b < run->nbooks; b++)
        for (size_t s = 0; s < j->cfg.nsources; s++) {
            if (scr_pool_submit(j->pool, j->cfg.sources[s], &run->books[b], jobs_on_result, run))
                goto stopped;
            submitted++;
        }
    return NULL;
stopped:
    jobs_abandon_unsubmitted(run, (int64_t)(total - submitted));
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
    if (pthread_create(&j->writer, NULL, jobs_writer_main, j) != 0) {
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
        active += jobs_run_unfinished(r);
    if (books && active >= JOBS_MAX_ACTIVE) {
        pthread_mutex_unlock(&j->lock);
        explain(why, whylen, "%d refreshes are running already; try again when one ends", active);
        return JOBS_BUSY;
    }
    if (!books) {
        for (job_run *r = j->runs; r; r = r->next)
            if (r->rec.all_books && jobs_run_unfinished(r)) {
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
        if (r->rec.id == id && jobs_run_unfinished(r))
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
        n += jobs_run_unfinished(r);
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
        if (jobs_run_unfinished(r)) {
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
