/*
 * internal.h - the refresh runner's shared state, private to jobs/: runner.c (the jobs_* entry
 * points, job creation, feeders, shutdown) and writer.c (on_result and the writer thread).
 *
 * Two locks, never held together:
 *  - jobs.lock, "the runner lock": the job lists, the writer queue and every counter. Every
 *    curl worker takes it in on_result, so it is held only for bookkeeping: NO store call, no
 *    waiting on anything but its own condition variables.
 *  - jobs.control_lock: the control connection (listing books, creating and cancelling job rows,
 *    reading stored jobs). It may be held for as long as SQLite's busy timeout.
 * The writer's connection belongs to the writer thread (and to jobs_stop once it is joined).
 */
#ifndef BOOKRANK_JOBS_INTERNAL_H
#define BOOKRANK_JOBS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs.h"

/* A batch is written at once when this many results are waiting, else after flush_ms. */
#define JOBS_BATCH_MAX 512

struct job_fetch;

/* One job in progress. */
typedef struct job_run {
    db_job rec;        /* lock: live state; rec.done counts committed observations */
    int64_t abandoned; /* lock: fetches that will never produce an observation */
    int64_t received;  /* lock: results in (queued for the writer, or abandoned) */
    /* The writer stages progress under the lock, commits without it, then publishes under it
     * again; a run published in between was not staged and must be left alone. */
    int in_batch;             /* lock: staged for the batch being committed */
    db_job staged;            /* lock (writer): rec with the batch being committed */
    int64_t staged_abandoned; /* lock (writer): abandoned results in that batch */
    int64_t staged_failed;    /* lock (writer): observations in that batch */
    /* owned; immutable once published (the feeder and the writer read them) */
    struct job_fetch *fetches; /* the (book, source) pairs to fetch */
    size_t nfetches;
    db_target *targets; /* the books (their titles are the fetches' known titles) */
    size_t ntargets;
    pthread_t feeder;   /* lock (with feeder_started) */
    int feeder_started; /* lock: joined by reap_finished_locked or jobs_stop */
    _Atomic int cancel; /* jobs_cancel asked: the feeder stops, the job ends cancelled */
    struct jobs *owner;
    struct job_run *next; /* lock */
} job_run;

/* One fetch of a job: a book as the source addresses it (the pool's callback context). */
typedef struct job_fetch {
    struct job_run *run;
    scr_book book;
    size_t source;     /* index into jobs_config.sources */
    const char *title; /* borrowed from the run's targets, NULL */
} job_fetch;

/* One finished fetch waiting for the writer. */
typedef struct pending {
    job_run *run;
    const job_fetch *fetch; /* what it was (for the known title); NULL when abandoned */
    observation *obs;       /* owned; NULL when abandoned */
    struct pending *next;
} pending;

struct jobs {
    jobs_config cfg; /* immutable after jobs_start */
    scr_pool *pool;  /* immutable from jobs_start until jobs_stop frees it */

    pthread_mutex_t lock;        /* the runner lock (see above) */
    pthread_cond_t changed;      /* lock: progress or state changed, a creation ended */
    pthread_cond_t wake_writer;  /* lock: a batch is due (see writer.c), or writer_exit */
    pthread_cond_t fed;          /* lock: a result came in or a job was cancelled (feeders wait
                                    on it while their window of outstanding fetches is full) */
    job_run *runs;               /* lock: published jobs, unfinished or not yet retired */
    job_run *finished;           /* lock: retired runs whose feeder is still to be joined */
    int creating;                /* lock: refreshes creating their job outside the lock */
    int creating_all;            /* lock: one of them is an all-books refresh */
    int stopping;                /* lock */
    pending *head, *tail;        /* lock: the writer queue */
    size_t npending;             /* lock: entries in it */
    int batch_due;               /* lock: some job has all its results: write without waiting */
    int writer_exit;             /* lock */
    int store_failing;           /* lock: the store refuses batches now; feeders pause */
    int64_t store_failing_since; /* lock: wall clock ms */
    int64_t store_lost;          /* lock: observations given up on */
    int64_t store_held;          /* lock: observations in the batch being retried */
    char store_why[200];         /* lock */
    pthread_t writer;
    _Atomic uint64_t commits; /* bumped after each commit, before progress is published */
    db *writer_db;            /* writer thread; jobs_stop after joining it */

    pthread_mutex_t control_lock; /* never taken with lock held */
    db *control;                  /* control_lock */
};

static inline int jobs_run_unfinished(const job_run *r)
{
    return r->rec.state == JOB_QUEUED || r->rec.state == JOB_RUNNING;
}

/* Records the result of a fetch (ctx: its job_fetch; obs owned by the callee, NULL = abandoned);
 * the scraper pool's callback. Takes the runner lock briefly, never touches the store. */
void jobs_on_result(void *ctx, observation *obs);

/* Counts `count` fetches of run that will never be made (its feeder stopped early). Takes the
 * runner lock. */
void jobs_abandon_unsubmitted(job_run *run, int64_t count);

/* Evaluates the alert rules for observations just stored in the writer's open transaction and
 * stores the events (alerting.c); *fired counts them. DB_OK, or a passing store failure
 * (busy, full, read-only) that fails the batch; other failures are logged and cost only the
 * events. Writer thread. */
db_err jobs_evaluate_alerts(jobs *j, const observation *obs, size_t n, int64_t now, int *fired);

/* The writer thread (arg: the jobs). Exits once writer_exit is set and the queue is written. */
void *jobs_writer_main(void *arg);

#endif
