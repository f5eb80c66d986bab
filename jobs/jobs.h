/*
 * jobs.h - refresh runs. A job is one refresh over a set of books (every tracked book, or a
 * given list): a feeder thread per job submits one fetch per book and source to the scraper
 * pool; every finished observation goes to ONE writer thread that appends them to the store in
 * batches, together with the job's progress, committing at least every flush_ms (so a crash
 * loses only fetches still in flight; a batch whose commit fails is counted as abandoned, so a
 * job's final `done` never counts an observation that is not stored). A refresh of all books asked while one runs joins it.
 *
 * The runner owns: the scraper pool, the writer thread and its store connection, and a control
 * connection for creating jobs (guarded by the runner's lock). Sources are borrowed and must
 * outlive the runner.
 *
 * Threads: every function may be called from any thread, except jobs_stop (once, by the owner).
 * The observer runs on the writer thread after each commit.
 */
#ifndef BOOKRANK_JOBS_H
#define BOOKRANK_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/isbn.h"
#include "../common/observation.h"
#include "../db/db.h"
#include "../scraper/scraper.h"

typedef struct jobs jobs;

/* Called after an observation is committed; obs is borrowed for the call. */
typedef void (*jobs_observer_fn)(void *ctx, int64_t job_id, const observation *obs);

typedef struct jobs_config {
    const char *db_path;
    scr_config scraper;
    const scr_source *const *sources;   /* borrowed, nsources >= 1 */
    size_t nsources;
    int flush_ms;                       /* commit interval, default 1000 */
    jobs_observer_fn observer;          /* optional */
    void *observer_ctx;
} jobs_config;

/* Starts the pool and the writer. Marks jobs left unfinished by a dead process as cancelled.
 * NULL with a malloc'd message in *err on failure. */
jobs *jobs_start(const jobs_config *cfg, char **err);

/*
 * Starts a refresh of books[0..n), which must be tracked already; books == NULL means every
 * tracked book, and joins a running all-books job instead of starting another (*joined = 1).
 * Never blocks on fetching. 0 and *out filled with the job as it is now, JOBS_BUSY when
 * JOBS_MAX_ACTIVE jobs of given books are unfinished already (an all-books refresh always joins
 * or starts), or -1; both with a malloc'd message in *err.
 */
#define JOBS_MAX_ACTIVE 64
enum { JOBS_BUSY = -2 };
int jobs_refresh(jobs *j, const isbn *books, size_t n, db_job *out, int *joined, char **err);

/* The job's live state (or as stored, for jobs of earlier runs). DB_OK, DB_NOTFOUND or DB_ERROR. */
int jobs_get(jobs *j, int64_t id, db_job *out);

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
