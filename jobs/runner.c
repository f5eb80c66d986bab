/*
 * runner.c - the jobs_* entry points: starting and stopping the runner, creating jobs, their
 * feeder threads, and reading a job's state.
 *
 * Threads (see internal.h for the two locks): jobs_refresh creates its job row on the control
 * connection under control_lock only; the runner lock is taken before that to check the cap and
 * to join a running all-books job, and after it to publish the new run. While a creation is
 * under way it is counted in `creating` (and an all-books one in `creating_all`), so the cap and
 * the join stay exact although the lock is dropped in between: a second all-books refresh waits
 * on `changed` for the first one's creation to end, then joins its job. jobs_get answers a
 * listed job under the runner lock and reads a stored one under control_lock alone.
 * A feeder thread per job submits its fetches; it touches the runner only through writer.c.
 * jobs_stop is called once, by the owner, when no other jobs_* call is running or will start.
 */
#include "../common/buf.h"
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/timeutil.h"

/* ---- feeders ------------------------------------------------------------------------------ */

/* How many fetches of one job may be submitted and not yet back: enough to keep every worker
 * busy, few enough that a cancel takes effect within about one round of fetches (the pool's
 * queue would otherwise hold the whole job). */
static size_t feed_window(const jobs *j)
{
    size_t w = j->cfg.scraper.workers > 0 ? (size_t)j->cfg.scraper.workers * 2 : 16;
    return w < 4 ? 4 : w;
}

/* Waits, lock not held on entry or exit, until fewer than the window of the run's submitted
 * fetches are outstanding; 1 when the run was cancelled meanwhile. */
static int wait_for_room(job_run *run, size_t submitted)
{
    jobs *j = run->owner;
    size_t window = feed_window(j);
    pthread_mutex_lock(&j->lock);
    while (!atomic_load(&run->cancel) && !j->stopping &&
           (submitted - (size_t)run->received >= window || j->store_failing)) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 200 * 1000000L; /* a bound, in case a wake is missed */
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->fed, &j->lock, &until);
    }
    pthread_mutex_unlock(&j->lock);
    return atomic_load(&run->cancel);
}

/* Submits every fetch of the run, at most a window ahead of the results; stops early when the
 * pool stops or the job is cancelled. */
static void *feeder_main(void *arg)
{
    job_run *run = arg;
    jobs *j = run->owner;
    size_t submitted = 0;

    for (size_t i = 0; i < run->nfetches; i++) {
        job_fetch *f = &run->fetches[i];
        if (wait_for_room(run, submitted))
            break;
        if (scr_pool_submit(j->pool, j->cfg.sources[f->source], &f->book, jobs_on_result, f))
            break;
        submitted++;
    }
    if (submitted < run->nfetches)
        jobs_abandon_unsubmitted(run, (int64_t)(run->nfetches - submitted));
    return NULL;
}

static void run_free(job_run *r)
{
    if (!r)
        return;
    free(r->fetches);
    db_targets_free(r->targets, r->ntargets);
    free(r);
}

static int by_id_then_position(const void *a, const void *b)
{
    const db_target *const *x = a, *const *y = b;
    int c = strcmp((*x)->id, (*y)->id);
    return c ? c : (*x < *y ? -1 : *x > *y);
}

/* A book named twice in one refresh is fetched once: keeps each target's first occurrence, in
 * the order given. 0, or -1 when out of memory. */
static int dedupe_targets(job_run *run)
{
    size_t n = run->ntargets;
    if (n < 2)
        return 0;
    db_target **sorted = malloc(n * sizeof *sorted);
    char *drop = calloc(n, 1);
    if (!sorted || !drop) {
        free(sorted);
        free(drop);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = &run->targets[i];
    qsort(sorted, n, sizeof *sorted, by_id_then_position);
    for (size_t i = 1; i < n; i++)
        if (strcmp(sorted[i]->id, sorted[i - 1]->id) == 0)
            drop[sorted[i] - run->targets] = 1;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (drop[i]) {
            db_targets_free_one(&run->targets[i]);
            continue;
        }
        run->targets[kept++] = run->targets[i];
    }
    run->ntargets = kept;
    free(sorted);
    free(drop);
    return 0;
}

/* Whether a book is tracked on the source named name (its own list, or every source). */
static int tracked_on(const db_target *t, const char *name)
{
    if (!t->sources)
        return 1;
    for (size_t i = 0; i < t->nsources; i++)
        if (strcmp(t->sources[i], name) == 0)
            return 1;
    return 0;
}

/* The run's fetches from its targets: every (book, source) pair the book is tracked on and the
 * source can address; the others it cannot address are counted as skipped. 0, or -1 when out
 * of memory. */
static int plan_fetches(jobs *j, job_run *run)
{
    size_t max = run->ntargets * j->cfg.nsources;
    run->fetches = max ? calloc(max, sizeof *run->fetches) : NULL;
    if (max && !run->fetches)
        return -1;
    for (size_t t = 0; t < run->ntargets; t++) {
        const db_target *b = &run->targets[t];
        for (size_t s = 0; s < j->cfg.nsources; s++) {
            const char *name = scr_source_name(j->cfg.sources[s]);
            if (!tracked_on(b, name))
                continue;
            job_fetch *f = &run->fetches[run->nfetches];
            memset(f, 0, sizeof *f);
            f->run = run;
            f->source = s;
            f->title = b->title;
            memcpy(f->book.id, b->id, sizeof f->book.id);
            memcpy(f->book.isbn13, b->isbn13, sizeof f->book.isbn13);
            memcpy(f->book.isbn10, b->isbn10, sizeof f->book.isbn10);
            /* The store's own ASIN for this book, else the one attached, else the ISBN-10 (a
             * book without an ISBN is its ASIN). */
            const char *asin = b->asin[0] ? b->asin : b->isbn13[0] ? b->isbn10 : b->id;
            for (size_t a = 0; a < b->nasins; a++)
                if (strcmp(b->asins[a].source, name) == 0)
                    asin = b->asins[a].asin;
            snprintf(f->book.asin, sizeof f->book.asin, "%.10s", asin);
            if (!scr_source_can_address(j->cfg.sources[s], &f->book)) {
                run->rec.skipped++;
                continue;
            }
            run->nfetches++;
        }
    }
    return 0;
}

/* Joins feeders of retired runs and frees them. Lock held. A retired run has all its results,
 * so its feeder has returned or is about to: the join does not wait for fetches. */
static void reap_finished_locked(jobs *j)
{
    while (j->finished) {
        job_run *r = j->finished;
        j->finished = r->next;
        if (r->feeder_started)
            pthread_join(r->feeder, NULL);
        run_free(r);
    }
}

static int unfinished_locked(const jobs *j)
{
    int n = 0;
    for (const job_run *r = j->runs; r; r = r->next)
        n += jobs_run_unfinished(r);
    return n;
}

/* ---- start ------------------------------------------------------------------------------- */

static void set_err(char **err, const char *msg)
{
    if (err)
        *err = strdup(msg);
}

/* Frees what jobs_start set up; the threads are gone (or were never started). */
static void jobs_destroy(jobs *j)
{
    db_close(j->writer_db);
    db_close(j->control);
    pthread_cond_destroy(&j->wake_writer);
    pthread_cond_destroy(&j->fed);
    pthread_cond_destroy(&j->changed);
    pthread_mutex_destroy(&j->control_lock);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

jobs *jobs_start(const jobs_config *cfg, char **err)
{
    jobs *j = calloc(1, sizeof *j);
    if (!j) {
        set_err(err, "out of memory");
        return NULL;
    }
    j->cfg = *cfg;
    pthread_mutex_init(&j->lock, NULL);
    pthread_mutex_init(&j->control_lock, NULL);
    /* Deadlines on the monotonic clock: a wall-clock step must not stall commits. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&j->changed, &attr);
    pthread_cond_init(&j->wake_writer, &attr);
    pthread_cond_init(&j->fed, &attr);
    pthread_condattr_destroy(&attr);

    /* No other thread exists yet: the connections need no lock here. */
    char *dberr = NULL;
    j->control = db_open(cfg->db_path, &dberr);
    if (!j->control)
        goto fail_db;
    j->writer_db = db_open(cfg->db_path, &dberr);
    if (!j->writer_db)
        goto fail_db;
    if (cfg->busy_timeout_ms > 0) {
        db_set_busy_timeout(j->control, cfg->busy_timeout_ms);
        db_set_busy_timeout(j->writer_db, cfg->busy_timeout_ms);
    }
    int cancelled = 0;
    if (db_jobs_cancel_unfinished(j->control, time_now_ms(), &cancelled) != DB_OK)
        log_warn("store: could not mark interrupted jobs: %s", db_errmsg(j->control));
    else if (cancelled)
        log_info("%d interrupted job(s) marked cancelled", cancelled);

    j->pool = scr_pool_new(&cfg->scraper, err);
    if (!j->pool)
        goto fail;
    if (pthread_create(&j->writer, NULL, jobs_writer_main, j) != 0) {
        set_err(err, "cannot start the writer thread");
        goto fail;
    }
    return j;

fail_db:
    if (err)
        *err = dberr ? dberr : strdup("cannot open the database");
    else
        free(dberr);
fail:
    scr_pool_free(j->pool, 0);
    jobs_destroy(j);
    return NULL;
}

/* ---- refresh ----------------------------------------------------------------------------- */

const char *jobs_strerror(jobs_err err)
{
    switch (err) {
    case JOBS_OK:
        return "ok";
    case JOBS_NOT_FOUND:
        return "no such job";
    case JOBS_BUSY:
        return "too many refreshes are running";
    case JOBS_STOPPING:
        return "shutting down";
    case JOBS_STORE:
        return "the store is not available";
    case JOBS_NOMEM:
        return "out of memory";
    case JOBS_SYSTEM:
        return "cannot start a thread";
    case JOBS_FINISHED:
        return "the job has ended";
    }
    return "unknown error";
}

/* Writes a detail message into the caller's buffer (if any). */

/*
 * Under the runner lock: may a refresh start now? JOBS_OK (and the creation is counted in
 * `creating`), JOBS_OK with *joined set and *out filled (a running all-books job), or an error.
 * Waits (on `changed`, lock released) only for another all-books creation to end.
 */
static jobs_err admit_locked(jobs *j, int all_books, db_job *out, int *joined, char *why,
                             size_t whylen)
{
    for (;;) {
        if (j->stopping) {
            why_printf(why, whylen, "%s", "shutting down");
            return JOBS_STOPPING;
        }
        reap_finished_locked(j);
        if (!all_books) {
            /* Creations under way count: the lock is dropped while they talk to the store. */
            int active = unfinished_locked(j) + j->creating;
            if (active >= JOBS_MAX_ACTIVE) {
                why_printf(why, whylen, "%d refreshes are running already; try again when one ends",
                           active);
                return JOBS_BUSY;
            }
            break;
        }
        for (job_run *r = j->runs; r; r = r->next)
            if (r->rec.all_books && jobs_run_unfinished(r)) {
                *out = r->rec;
                *joined = 1;
                return JOBS_OK;
            }
        if (!j->creating_all)
            break;
        /* Another all-books job is being created: its run is published (or its creation
         * fails) before creating_all drops, and then this refresh joins it (or tries itself). */
        pthread_cond_wait(&j->changed, &j->lock);
    }
    j->creating++;
    if (all_books)
        j->creating_all = 1;
    return JOBS_OK;
}

/* Ends a creation counted by admit_locked. Lock held. */
static void creation_end_locked(jobs *j, int all_books)
{
    assert(j->creating > 0);
    assert(!all_books || j->creating_all);
    j->creating--;
    if (all_books)
        j->creating_all = 0;
    pthread_cond_broadcast(&j->changed);
}

/* Stores a created job as cancelled, because it will never run. No lock held. */
static void cancel_row(jobs *j, db_job *rec)
{
    assert(rec->state == JOB_RUNNING);
    rec->state = JOB_CANCELLED;
    rec->finished_at_ms = time_now_ms();
    pthread_mutex_lock(&j->control_lock);
    if (db_job_update(j->control, rec) != DB_OK)
        log_error("store: could not cancel job %lld: %s", (long long)rec->id,
                  db_errmsg(j->control));
    pthread_mutex_unlock(&j->control_lock);
}

/* The books, fetches and the job row of a new run, on the control connection. No runner lock. */
static jobs_err create_run(jobs *j, job_run *run, const char *const *ids, size_t n,
                           db_job_origin by, char *why, size_t whylen)
{
    jobs_err rc = JOBS_OK;
    pthread_mutex_lock(&j->control_lock);
    if (db_targets(j->control, ids, n, &run->targets, &run->ntargets) != DB_OK) {
        why_printf(why, whylen, "store: %s", db_errmsg(j->control));
        rc = JOBS_STORE;
    } else if (ids && dedupe_targets(run) != 0) {
        why_printf(why, whylen, "%s", "out of memory");
        rc = JOBS_NOMEM;
    } else if (plan_fetches(j, run) != 0) {
        why_printf(why, whylen, "%s", "out of memory");
        rc = JOBS_NOMEM;
    }
    if (rc == JOBS_OK) {
        int64_t now = time_now_ms();
        run->rec.all_books = ids == NULL;
        run->rec.started_by = by;
        run->rec.total = (int64_t)run->nfetches;
        run->rec.state = JOB_RUNNING;
        run->rec.created_at_ms = run->rec.started_at_ms = now;
        if (run->rec.total == 0) {
            run->rec.state = JOB_DONE;
            run->rec.finished_at_ms = now;
        }
        if (db_job_create(j->control, &run->rec) != DB_OK) {
            why_printf(why, whylen, "store: %s", db_errmsg(j->control));
            rc = JOBS_STORE;
        }
    }
    pthread_mutex_unlock(&j->control_lock);
    return rc;
}

jobs_err jobs_refresh(jobs *j, const char *const *ids, size_t n, db_job_origin by, db_job *out,
                      int *joined, char *why, size_t whylen)
{
    int all = ids == NULL;
    *joined = 0;
    why_printf(why, whylen, "%s", "");

    pthread_mutex_lock(&j->lock);
    jobs_err rc = admit_locked(j, all, out, joined, why, whylen);
    pthread_mutex_unlock(&j->lock);
    if (rc != JOBS_OK || *joined)
        return rc;

    job_run *run = calloc(1, sizeof *run);
    if (!run) {
        why_printf(why, whylen, "%s", "out of memory");
        rc = JOBS_NOMEM;
    } else {
        run->owner = j;
        rc = create_run(j, run, ids, n, by, why, whylen);
    }
    if (rc != JOBS_OK || run->rec.total == 0) {
        /* Nothing to run: an error, or a job with nothing to fetch (stored done already). */
        if (rc == JOBS_OK)
            *out = run->rec;
        pthread_mutex_lock(&j->lock);
        creation_end_locked(j, all);
        pthread_mutex_unlock(&j->lock);
        run_free(run);
        return rc;
    }

    /* Publish and start the feeder in one hold of the lock: the writer must see the run listed
     * before any of its results can be queued. */
    size_t nbooks = run->ntargets; /* once listed, the run may be retired and freed any time */
    pthread_mutex_lock(&j->lock);
    if (j->stopping) {
        why_printf(why, whylen, "%s", "shutting down");
        rc = JOBS_STOPPING;
    } else if (pthread_create(&run->feeder, NULL, feeder_main, run) != 0) {
        why_printf(why, whylen, "%s", "cannot start a feeder thread");
        rc = JOBS_SYSTEM;
    } else {
        run->feeder_started = 1;
        run->next = j->runs;
        j->runs = run;
        *out = run->rec;
        creation_end_locked(j, all);
    }
    pthread_mutex_unlock(&j->lock);
    if (rc != JOBS_OK) {
        /* Still counted as creating, so jobs_stop keeps the control connection open for this. */
        cancel_row(j, &run->rec);
        pthread_mutex_lock(&j->lock);
        creation_end_locked(j, all);
        pthread_mutex_unlock(&j->lock);
        run_free(run);
        return rc;
    }
    log_info("job %lld: refreshing %zu book(s) from %zu source(s)", (long long)out->id, nbooks,
             j->cfg.nsources);
    return JOBS_OK;
}

/* ---- reading ------------------------------------------------------------------------------ */

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
    pthread_mutex_unlock(&j->lock);
    /* Not listed: of an earlier run, or retired after its final row was committed, so the
     * stored row is its last state. */
    pthread_mutex_lock(&j->control_lock);
    int rc = db_job_get(j->control, id, out);
    pthread_mutex_unlock(&j->control_lock);
    return rc == DB_OK ? JOBS_OK : rc == DB_NOTFOUND ? JOBS_NOT_FOUND : JOBS_STORE;
}

jobs_err jobs_cancel(jobs *j, int64_t id, db_job *out, char *why, size_t whylen)
{
    why_printf(why, whylen, "%s", "");
    pthread_mutex_lock(&j->lock);
    reap_finished_locked(j);
    for (job_run *r = j->runs; r; r = r->next)
        if (r->rec.id == id) {
            jobs_err rc = JOBS_FINISHED;
            if (jobs_run_unfinished(r)) {
                atomic_store(&r->cancel, 1);
                pthread_cond_broadcast(&j->fed);
                rc = JOBS_OK;
            }
            *out = r->rec;
            pthread_mutex_unlock(&j->lock);
            if (rc == JOBS_OK)
                log_info("job %lld: cancel asked; fetches already in flight still finish",
                         (long long)id);
            return rc;
        }
    pthread_mutex_unlock(&j->lock);
    /* Not running here: a job of an earlier run has ended (jobs_start cancelled the ones a dead
     * process left), so all that is left to say is whether it exists. */
    jobs_err rc = jobs_get(j, id, out);
    if (rc == JOBS_OK)
        rc = JOBS_FINISHED;
    if (rc == JOBS_STORE)
        why_printf(why, whylen, "%s", "the store is not available");
    return rc;
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
    pthread_mutex_lock(&j->lock);
    reap_finished_locked(j);
    int n = unfinished_locked(j);
    pthread_mutex_unlock(&j->lock);
    return n;
}

void jobs_pool_stats(jobs *j, scr_pool_stats *out)
{
    scr_pool_stats_get(j->pool, out);
}

/* ---- stop -------------------------------------------------------------------------------- */

void jobs_stop(jobs *j, int grace_ms)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->lock);
    j->stopping = 1;
    pthread_cond_broadcast(&j->fed);
    /* No creation starts from now on; those under way use the control connection and may
     * publish a feeder (at most one busy timeout): let them end first. */
    while (j->creating)
        pthread_cond_wait(&j->changed, &j->lock);
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

    /* Only this thread is left, and the writer's connection is ours now. Whatever is still not
     * finished never will be; a finished run still listed is one whose final row could not be
     * stored yet: one more try. */
    int64_t now = time_now_ms();
    pthread_mutex_lock(&j->lock);
    assert(!j->head && j->npending == 0 && !j->creating);
    job_run *left = j->runs;
    j->runs = NULL;
    reap_finished_locked(j);
    pthread_mutex_unlock(&j->lock);
    for (job_run *r = left; r; r = r->next) {
        if (jobs_run_unfinished(r)) {
            r->rec.state = JOB_CANCELLED;
            r->rec.finished_at_ms = now;
        }
        if (db_job_update(j->writer_db, &r->rec) != DB_OK)
            log_error("store: could not store the end of job %lld: %s", (long long)r->rec.id,
                      db_errmsg(j->writer_db));
    }
    while (left) {
        job_run *r = left;
        left = r->next;
        run_free(r);
    }
    /* A jobs_get still reading the store (a caller's race with the shutdown) ends first. */
    pthread_mutex_lock(&j->control_lock);
    pthread_mutex_unlock(&j->control_lock);
    jobs_destroy(j);
}
