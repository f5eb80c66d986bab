/*
 * jobs.h - refresh runs. A job is one refresh over a set of books (every tracked book, or a
 * given list): a feeder thread per job submits one fetch per book and source to the scraper
 * pool; every finished observation goes to ONE writer thread that appends them to the store in
 * batches, together with the job's progress, committing at least every flush_ms (so a crash
 * loses only fetches still in flight; a batch whose commit fails is counted as abandoned, so a
 * job's final `done` never counts an observation that is not stored). A refresh of all books
 * asked while one runs (or is being created) joins it.
 *
 * The runner owns: the scraper pool, the writer thread and its store connection, and a control
 * connection for creating and reading jobs (with its own lock: a store that is slow or locked by
 * another process delays jobs_refresh and jobs_get of stored jobs, never the curl workers,
 * jobs_get of a running job, jobs_active or jobs_pool_stats). Sources are borrowed and must
 * outlive the runner.
 *
 * Threads: every function may be called from any thread, except jobs_stop (once, by the owner).
 * The observer runs on the writer thread after each commit.
 */
#ifndef BOOKRANK_JOBS_H
#define BOOKRANK_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/compiler.h"
#include "../common/observation.h"
#include "../db/db.h"
#include "../scraper/scraper.h"

typedef struct jobs jobs;

/* Called after an observation is committed; obs is borrowed for the call, and so is title: the
 * book's known title (for messages about a fetch that read none), NULL when none is known. */
typedef void (*jobs_observer_fn)(void *ctx, int64_t job_id, const observation *obs,
                                 const char *title);

typedef struct jobs_config {
    const char *db_path;
    scr_config scraper;
    const scr_source *const *sources; /* borrowed, nsources >= 1 */
    size_t nsources;
    int flush_ms; /* commit interval, default 1000 */
    /* A batch the store refuses for a reason that passes (its write lock held by another
     * process past the busy timeout, a full disk, a read-only file) is kept and retried with a
     * backoff of up to 5 s, and new fetches pause meanwhile (the ones under way finish: memory
     * stays bounded). store_wait_ms > 0 gives up after the store has refused that long (the
     * results are then lost and their jobs end cancelled); 0 retries until jobs_stop. */
    int store_wait_ms;
    int busy_timeout_ms; /* the runner's store connections (0: db's default) */
    /* Called on the writer thread after a commit that stored alert events (e.g. to wake the
     * delivery loop); optional, must not block. */
    void (*events_stored)(void *ctx);
    void *events_ctx;
    jobs_observer_fn observer; /* optional */
    void *observer_ctx;
} jobs_config;

/* Starts the pool and the writer. Marks jobs left unfinished by a dead process as cancelled.
 * NULL with a malloc'd message in *err on failure. */
jobs *jobs_start(const jobs_config *cfg, char **err);

/* What a jobs_* call can fail with; 0 is success. */
typedef enum jobs_err {
    JOBS_OK = 0,
    JOBS_NOT_FOUND, /* no such job */
    JOBS_BUSY,      /* JOBS_MAX_ACTIVE refreshes of given books are unfinished already */
    JOBS_STOPPING,  /* the runner is shutting down */
    JOBS_STORE,     /* the store could not be read or written */
    JOBS_NOMEM,
    JOBS_SYSTEM,  /* a thread could not be started */
    JOBS_FINISHED /* jobs_cancel: the job has ended already */
} jobs_err;

/* A short stable description of an error code ("no such job", ...). */
const char *jobs_strerror(jobs_err err);

/*
 * Starts a refresh of the books ids[0..n) (as the store has them: resolve other forms first;
 * ids not tracked are left out); ids == NULL means every tracked book, and joins a running
 * all-books job instead of starting another (*joined = 1). Each book is fetched from every
 * configured source it is tracked on; a source that cannot address it (no ASIN for an {asin}
 * template) skips it, counted in the job's `skipped`. by says who asked. Never blocks on
 * fetching. JOBS_OK and *out filled with the job as it is now; otherwise an error, with the
 * details written into why[0..whylen) (why may be NULL).
 */
#define JOBS_MAX_ACTIVE 64
BR_MUST_CHECK jobs_err jobs_refresh(jobs *j, const char *const *ids, size_t n, db_job_origin by,
                                    db_job *out, int *joined, char *why, size_t whylen);

/* The job's live state (or as stored, for jobs of earlier runs): JOBS_OK, JOBS_NOT_FOUND or
 * JOBS_STORE. */
BR_MUST_CHECK jobs_err jobs_get(jobs *j, int64_t id, db_job *out);

/* How the store takes the writer's batches: 0 when the last commit worked; otherwise 1 with
 * since_ms (wall clock) when the refusals began, and why (the store's message) - for /healthz
 * and `bookrank refresh`. lost counts observations given up on (store_wait_ms) since start. */
typedef struct jobs_store_state {
    int failing;
    int64_t since_ms;
    int64_t lost;
    int64_t held; /* observations waiting for the store to take them */
    char why[200];
} jobs_store_state;
void jobs_store_health(jobs *j, jobs_store_state *out);

/* Cancels a running job of this process: no more of its fetches are submitted (a job keeps at
 * most 2 x workers fetches submitted ahead of its results; those still run and are stored), and
 * it ends `cancelled` once they are in. JOBS_OK with *out as it is now (still running),
 * JOBS_FINISHED (with *out) when it has ended already, JOBS_NOT_FOUND, or JOBS_STORE. */
BR_MUST_CHECK jobs_err jobs_cancel(jobs *j, int64_t id, db_job *out, char *why, size_t whylen);

/* Waits until the job is done or cancelled, at most timeout_ms (< 0 = forever).
 * 1 when finished, 0 on timeout. */
int jobs_wait(jobs *j, int64_t id, int timeout_ms);

/* Counts the writer's commits: changes whenever observations or job progress were stored. */
uint64_t jobs_commits(jobs *j);

/* Number of jobs queued or running. */
int jobs_active(jobs *j);
void jobs_pool_stats(jobs *j, scr_pool_stats *out);

/*
 * Stops: no new jobs; in-flight fetches may finish for grace_ms, then are abandoned; everything
 * received is committed; unfinished jobs are stored as cancelled. Frees the runner. NULL is a
 * no-op.
 */
void jobs_stop(jobs *j, int grace_ms);

#endif
