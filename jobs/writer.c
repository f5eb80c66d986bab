/*
 * writer.c - the write side of refresh jobs: the curl workers' callback (jobs_on_result) queues
 * every finished fetch, and ONE writer thread appends them to the store in batches, together
 * with the progress of the jobs they belong to.
 *
 * Threads: jobs_on_result runs on the pool's worker threads (and on the thread stopping the
 * pool, for abandoned requests) and holds the runner lock only to append and count. The writer
 * thread holds it only to take a batch and to stage or publish progress; its store calls run
 * without any lock, on its own connection.
 *
 * When a batch is written: the first result into an empty queue wakes the writer, which then
 * gives the batch up to flush_ms to fill; JOBS_BATCH_MAX waiting results, or a job that has all
 * its results, cut the wait short. Nothing else wakes it, and it never walks the queue to count.
 */
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../common/log.h"
#include "../common/metrics.h"
#include "../common/timeutil.h"

/* ---- worker side ------------------------------------------------------------------------ */

/* A job with all its results in should not wait for the interval. Lock held. */
static void note_received_locked(jobs *j, job_run *run, int queued_one)
{
    assert(run->received <= run->rec.total);
    int wake = queued_one && (j->npending == 1 || j->npending == JOBS_BATCH_MAX);
    if (run->received == run->rec.total) {
        j->batch_due = 1;
        wake = 1;
    }
    if (wake)
        pthread_cond_signal(&j->wake_writer);
}

void jobs_on_result(void *ctx, observation *obs)
{
    const job_fetch *fetch = ctx;
    job_run *run = fetch->run;
    jobs *j = run->owner;
    pending *p = malloc(sizeof *p);
    if (!p && obs) {
        /* Out of memory: this observation is lost; count it as abandoned so the job ends. */
        obs_clear(obs);
        free(obs);
    }
    if (p) {
        p->run = run;
        p->fetch = fetch;
        p->obs = obs;
        p->next = NULL;
    }
    pthread_mutex_lock(&j->lock);
    run->received++;
    pthread_cond_broadcast(&j->fed);
    if (p) {
        if (j->tail)
            j->tail->next = p;
        else
            j->head = p;
        j->tail = p;
        j->npending++;
    } else {
        run->abandoned++;
    }
    note_received_locked(j, run, p != NULL);
    pthread_mutex_unlock(&j->lock);
}

void jobs_abandon_unsubmitted(job_run *run, int64_t count)
{
    jobs *j = run->owner;
    pthread_mutex_lock(&j->lock);
    run->abandoned += count;
    run->received += count;
    note_received_locked(j, run, 0);
    pthread_mutex_unlock(&j->lock);
}

/* ---- writer ------------------------------------------------------------------------------ */

/* Moves finished runs out of the active list. Lock held, after a commit. */
static void retire_finished_locked(jobs *j)
{
    job_run **pp = &j->runs;
    while (*pp) {
        job_run *r = *pp;
        if (!jobs_run_unfinished(r)) {
            *pp = r->next;
            r->next = j->finished;
            j->finished = r;
        } else {
            pp = &r->next;
        }
    }
}

/* Ends a job whose results are all in: done when everything was stored and nobody cancelled
 * it, else cancelled. */
static void settle_state(db_job *rec, int64_t abandoned, int cancel, int64_t now)
{
    assert(rec->done >= 0 && abandoned >= 0 && rec->done + abandoned <= rec->total);
    if (rec->state == JOB_DONE || rec->state == JOB_CANCELLED)
        return;
    assert(rec->state == JOB_RUNNING);
    if (rec->done + abandoned >= rec->total) {
        rec->state = abandoned || cancel ? JOB_CANCELLED : JOB_DONE;
        rec->finished_at_ms = now;
    }
}

/* Progress only moves forward: a finished job stays as it ended, a running one may end. */
static int valid_transition(db_job_state from, db_job_state to)
{
    return from == JOB_RUNNING ? to == JOB_RUNNING || to == JOB_DONE || to == JOB_CANCELLED
                               : from == to;
}

/*
 * Commits one batch (possibly empty: a job whose last results were abandoned still needs its
 * final row): observations plus the progress of every job, in one transaction. Progress is
 * staged on copies and published only after the commit, so whoever sees a job done (or `done`
 * grow) can read those observations; a batch that cannot be stored (disk full, read-only file,
 * the write lock held past the busy timeout) is kept for another attempt (returns 1: the
 * batch still belongs to the caller, nothing was published) unless `final`; a final or
 * hopeless failure is counted as abandoned, so the job ends `cancelled` and never claims
 * observations the store does not have. Returns 0 when the batch is done with (freed).
 */
static int write_batch(jobs *j, pending *batch, int final)
{
    size_t n = 0;
    for (pending *p = batch; p; p = p->next)
        if (p->obs)
            n++;
    observation *arr = n ? calloc(n, sizeof *arr) : NULL;
    int64_t *job_ids = n ? calloc(n, sizeof *job_ids) : NULL;
    if (arr && job_ids) {
        size_t k = 0;
        for (pending *p = batch; p; p = p->next)
            if (p->obs) {
                job_ids[k] = p->run->rec.id;
                arr[k++] = *p->obs; /* shallow: the pending entries keep ownership */
            }
    } else {
        free(arr);
        arr = NULL;
    }

    int64_t now = time_now_ms();
    pthread_mutex_lock(&j->lock);
    size_t nruns = 0;
    for (job_run *r = j->runs; r; r = r->next) {
        r->in_batch = 1;
        r->staged = r->rec;
        r->staged_abandoned = 0;
        r->staged_failed = 0;
        nruns++;
    }
    for (pending *p = batch; p; p = p->next) {
        /* A result's run was published before its feeder started, so it was staged above. */
        assert(p->run->in_batch);
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
        settle_state(&r->staged, r->abandoned + r->staged_abandoned, atomic_load(&r->cancel), now);
        if (snap)
            snap[ns++] = r->staged;
    }
    pthread_mutex_unlock(&j->lock);

    db_err code = db_begin(j->writer_db);
    /* Each observation remembers its job (for the job's list of failures): one call per run of
     * the same job in the batch. */
    for (size_t i = 0, e; code == DB_OK && arr && i < n; i = e) {
        for (e = i + 1; e < n && job_ids[e] == job_ids[i]; e++)
            ;
        code = db_observations_add(j->writer_db, arr + i, e - i, job_ids[i]);
    }
    int fired = 0;
    if (code == DB_OK && arr && n)
        code = jobs_evaluate_alerts(j, arr, n, now, &fired);
    for (size_t i = 0; code == DB_OK && i < ns; i++)
        code = db_job_update(j->writer_db, &snap[i]);
    if (code == DB_OK)
        code = db_commit(j->writer_db);
    int ok = code == DB_OK;
    char why[200] = "";
    if (!ok) {
        snprintf(why, sizeof why, "%s", db_errmsg(j->writer_db));
        db_rollback(j->writer_db);
    }
    /* Passing trouble is worth waiting out: nothing of the batch is lost. */
    int passing = code == DB_BUSY || code == DB_FULL || code == DB_READONLY;
    if (!ok && passing && !final && (arr || !n)) {
        pthread_mutex_lock(&j->lock);
        for (job_run *r = j->runs; r; r = r->next)
            r->in_batch = 0; /* nothing staged is published */
        if (!j->store_failing) {
            j->store_failing = 1;
            j->store_failing_since = now;
        }
        j->store_held = (int64_t)n;
        snprintf(j->store_why, sizeof j->store_why, "%s", why);
        pthread_mutex_unlock(&j->lock);
        free(snap);
        free(arr);
        free(job_ids);
        return 1;
    }
    if (!ok)
        log_error("store: could not commit %zu observations: %s%s", n, why,
                  passing ? " (giving up on them)" : "");

    if (ok)
        atomic_fetch_add(&j->commits, 1);
    if (ok && fired && j->cfg.events_stored)
        j->cfg.events_stored(j->cfg.events_ctx);
    pthread_mutex_lock(&j->lock);
    if (ok && j->store_failing) {
        log_info("store: writing again after %.1f s; %zu held observations stored",
                 (double)(now - j->store_failing_since) / 1000.0, n);
        j->store_failing = 0;
        pthread_cond_broadcast(&j->fed); /* the feeders go on */
    } else if (!ok) {
        j->store_lost += (int64_t)n;
        snprintf(j->store_why, sizeof j->store_why, "%s", why);
        if (j->store_failing) {
            j->store_failing = 0; /* given up: the next batch starts afresh */
            pthread_cond_broadcast(&j->fed);
        }
    }
    j->store_held = 0;
    for (job_run *r = j->runs; r; r = r->next) {
        if (!r->in_batch)
            continue; /* published while the batch was being committed */
        r->in_batch = 0;
        if (ok) {
            assert(valid_transition(r->rec.state, r->staged.state));
            r->rec = r->staged;
            r->abandoned += r->staged_abandoned;
        } else {
            r->abandoned += r->staged_abandoned + r->staged_failed;
            settle_state(&r->rec, r->abandoned, atomic_load(&r->cancel), now);
        }
        assert(r->rec.done + r->abandoned <= r->received && r->received <= r->rec.total);
    }
    pthread_mutex_unlock(&j->lock);
    if (n && !arr)
        log_error("store: out of memory, %zu observations lost", n);

    for (pending *p = batch; p; p = p->next) {
        if (!p->obs)
            continue;
        metrics_fetch(p->obs->source, p->obs->status, p->obs->http_status, p->obs->duration_ms,
                      p->obs->attempts);
        if (j->cfg.observer)
            j->cfg.observer(j->cfg.observer_ctx, p->run->rec.id, p->obs,
                            p->fetch ? p->fetch->title : NULL);
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
    free(job_ids);
    while (batch) {
        pending *next = batch->next;
        if (batch->obs) {
            obs_clear(batch->obs);
            free(batch->obs);
        }
        free(batch);
        batch = next;
    }
    return 0;
}

void jobs_store_health(jobs *j, jobs_store_state *out)
{
    pthread_mutex_lock(&j->lock);
    out->failing = j->store_failing;
    out->since_ms = j->store_failing_since;
    out->lost = j->store_lost;
    out->held = j->store_held;
    snprintf(out->why, sizeof out->why, "%s", j->store_why);
    pthread_mutex_unlock(&j->lock);
}

/* The deadline ms from now on the monotonic clock. */
static struct timespec deadline_in(int64_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t ns = t.tv_nsec + (ms % 1000) * 1000000;
    t.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    t.tv_nsec = (long)(ns % 1000000000);
    return t;
}

/* Appends list b to list a (either may be NULL). */
static pending *concat(pending *a, pending *b)
{
    if (!a)
        return b;
    pending *t = a;
    while (t->next)
        t = t->next;
    t->next = b;
    return a;
}

/* Whether the batch must be written now rather than at the end of the interval. Lock held. */
static int batch_now_locked(const jobs *j)
{
    return j->writer_exit || j->batch_due || j->npending >= JOBS_BATCH_MAX;
}

/* Backoff between attempts at a batch the store refused: doubles up to 5 s. */
#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 5000

void *jobs_writer_main(void *arg)
{
    jobs *j = arg;
    int flush_ms = j->cfg.flush_ms > 0 ? j->cfg.flush_ms : 1000;
    pending *held = NULL; /* a batch the store refused, retried first */
    int held_due = 0;
    int64_t retry_ms = RETRY_FIRST_MS, failing_since = 0, last_log = 0;

    pthread_mutex_lock(&j->lock);
    for (;;) {
        if (held) {
            /* Wait out the backoff (new results join the held batch); shutdown cuts it short. */
            struct timespec until = deadline_in(retry_ms);
            while (!j->writer_exit)
                if (pthread_cond_timedwait(&j->wake_writer, &j->lock, &until) == ETIMEDOUT)
                    break;
        } else {
            while (!j->head && !batch_now_locked(j))
                pthread_cond_wait(&j->wake_writer, &j->lock);
            if (!batch_now_locked(j)) {
                /* The first result is in: give the batch up to flush_ms to fill. */
                struct timespec deadline = deadline_in(flush_ms);
                while (!batch_now_locked(j))
                    if (pthread_cond_timedwait(&j->wake_writer, &j->lock, &deadline) == ETIMEDOUT)
                        break;
            }
        }
        pending *batch = concat(held, j->head);
        int due = j->batch_due || held_due;
        assert((j->head != NULL) == (j->npending > 0));
        j->head = j->tail = NULL;
        j->npending = 0;
        j->batch_due = 0;
        int exiting = j->writer_exit;
        pthread_mutex_unlock(&j->lock);
        held = NULL;
        held_due = 0;
        int64_t now = time_mono_ms();
        int give_up = exiting || (j->cfg.store_wait_ms > 0 && failing_since &&
                                  now - failing_since >= j->cfg.store_wait_ms);
        if ((batch || due) && write_batch(j, batch, give_up)) {
            held = batch;
            held_due = due;
            if (!failing_since)
                failing_since = now;
            jobs_store_state st;
            jobs_store_health(j, &st);
            /* Say it at once, then at most every 30 s. */
            if (!last_log || now - last_log >= 30000) {
                log_warn("store: could not commit %lld observations (%s); keeping them and "
                         "retrying every %lld ms, new fetches paused",
                         (long long)st.held, st.why, (long long)retry_ms);
                last_log = now;
            }
            retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
        } else {
            failing_since = 0;
            last_log = 0;
            retry_ms = RETRY_FIRST_MS;
        }
        pthread_mutex_lock(&j->lock);
        if (exiting && !j->head && !held)
            break;
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}
