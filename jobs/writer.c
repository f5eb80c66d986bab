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
 * the write lock held past the busy timeout) is counted as abandoned, so the job ends
 * `cancelled` and never claims observations the store does not have.
 */
static void write_batch(jobs *j, pending *batch)
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
                arr[k++] = *p->obs;     /* shallow: the pending entries keep ownership */
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

    int ok = db_begin(j->writer_db) == DB_OK;
    /* Each observation remembers its job (for the job's list of failures): one call per run of
     * the same job in the batch. */
    for (size_t i = 0, e; ok && arr && i < n; i = e) {
        for (e = i + 1; e < n && job_ids[e] == job_ids[i]; e++)
            ;
        ok = db_observations_add(j->writer_db, arr + i, e - i, job_ids[i]) == DB_OK;
    }
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
        if (!r->in_batch)
            continue;           /* published while the batch was being committed */
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
}

/* Whether the batch must be written now rather than at the end of the interval. Lock held. */
static int batch_now_locked(const jobs *j)
{
    return j->writer_exit || j->batch_due || j->npending >= JOBS_BATCH_MAX;
}

void *jobs_writer_main(void *arg)
{
    jobs *j = arg;
    int flush_ms = j->cfg.flush_ms > 0 ? j->cfg.flush_ms : 1000;

    pthread_mutex_lock(&j->lock);
    for (;;) {
        while (!j->head && !batch_now_locked(j))
            pthread_cond_wait(&j->wake_writer, &j->lock);
        if (!batch_now_locked(j)) {
            /* The first result is in: give the batch up to flush_ms to fill. */
            struct timespec deadline;
            clock_gettime(CLOCK_MONOTONIC, &deadline);
            int64_t ns = deadline.tv_nsec + (int64_t)(flush_ms % 1000) * 1000000;
            deadline.tv_sec += flush_ms / 1000 + ns / 1000000000;
            deadline.tv_nsec = ns % 1000000000;
            while (!batch_now_locked(j))
                if (pthread_cond_timedwait(&j->wake_writer, &j->lock, &deadline) == ETIMEDOUT)
                    break;
        }
        pending *batch = j->head;
        int due = j->batch_due;
        assert((batch != NULL) == (j->npending > 0));
        j->head = j->tail = NULL;
        j->npending = 0;
        j->batch_due = 0;
        int exiting = j->writer_exit;
        pthread_mutex_unlock(&j->lock);
        if (batch || due)
            write_batch(j, batch);
        pthread_mutex_lock(&j->lock);
        if (exiting && !j->head)
            break;
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}
