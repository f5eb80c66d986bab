/*
 * sqlite_jobs.c - the SQLite backend's refresh jobs: create, update, read, and cancelling the
 * jobs left unfinished by this process or by dead ones.
 */
#include "sqlite_internal.h"

#include <stdlib.h>
#include <unistd.h>

#include "../common/grow.h"
#include "../common/timeutil.h"

db_err db_sq_job_create(db *d, db_job *job)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_JOB_CREATE, &st);
    if (rc != DB_OK)
        return rc;
    if (job->created_at_ms == 0)
        job->created_at_ms = time_now_ms();
    job->owner_pid = (int64_t)getpid();
    sq_bind_text(st, 1, db_job_state_name(job->state));
    sqlite3_bind_int(st, 2, job->all_books ? 1 : 0);
    sqlite3_bind_int64(st, 3, job->total);
    sqlite3_bind_int64(st, 4, job->done);
    for (int i = 0; i < OBS_STATUS_COUNT; i++)
        sqlite3_bind_int64(st, 5 + i, job->counts[i]);
    sqlite3_bind_int64(st, 10, job->created_at_ms);
    sqlite3_bind_int64(st, 11, job->started_at_ms);
    sqlite3_bind_int64(st, 12, job->finished_at_ms);
    sqlite3_bind_int64(st, 13, job->owner_pid);
    sq_bind_text(st, 14, db_job_origin_name(job->started_by));
    sqlite3_bind_int64(st, 15, job->skipped);
    if (sqlite3_step(st) == SQLITE_DONE)
        job->id = sqlite3_last_insert_rowid(sq_conn(d));
    else
        rc = db_sq_fail(d, "create job");
    db_sq_release(st);
    return rc;
}

db_err db_sq_job_update(db *d, const db_job *job)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_JOB_UPDATE, &st);
    if (rc != DB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, job->id);
    sq_bind_text(st, 2, db_job_state_name(job->state));
    sqlite3_bind_int64(st, 3, job->total);
    sqlite3_bind_int64(st, 4, job->done);
    for (int i = 0; i < OBS_STATUS_COUNT; i++)
        sqlite3_bind_int64(st, 5 + i, job->counts[i]);
    sqlite3_bind_int64(st, 10, job->started_at_ms);
    sqlite3_bind_int64(st, 11, job->finished_at_ms);
    sqlite3_bind_int64(st, 12, job->skipped);
    rc = sqlite3_step(st) == SQLITE_DONE ? (sqlite3_changes(sq_conn(d)) > 0 ? DB_OK : DB_NOTFOUND)
                                         : db_sq_fail(d, "update job");
    if (rc == DB_NOTFOUND)
        db_set_err(d, "no job %lld", (long long)job->id);
    db_sq_release(st);
    return rc;
}

/* Reads the JOB_COLUMNS of a row. */
static void read_job(sqlite3_stmt *st, db_job *out)
{
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    out->state = db_job_state_parse(sq_col_text(st, 1));
    out->all_books = sqlite3_column_int(st, 2);
    out->total = sqlite3_column_int64(st, 3);
    out->done = sqlite3_column_int64(st, 4);
    for (int i = 0; i < OBS_STATUS_COUNT; i++)
        out->counts[i] = sqlite3_column_int64(st, 5 + i);
    out->created_at_ms = sqlite3_column_int64(st, 10);
    out->started_at_ms = sqlite3_column_int64(st, 11);
    out->finished_at_ms = sqlite3_column_int64(st, 12);
    out->owner_pid = sqlite3_column_int64(st, 13);
    out->started_by = db_job_origin_parse(sq_col_text(st, 14));
    out->skipped = sqlite3_column_int64(st, 15);
}

db_err db_sq_job_get(db *d, int64_t id, db_job *out)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_JOB_GET, &st);
    if (rc != DB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        read_job(st, out);
    else if (step == SQLITE_DONE)
        rc = db_fail(d, DB_NOTFOUND, "no job %lld", (long long)id);
    else
        rc = db_sq_fail(d, "get job");
    db_sq_release(st);
    return rc;
}

db_err db_sq_jobs_list(db *d, int state, int limit, db_job **out, size_t *n)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_JOBS_LIST, &st);
    if (rc != DB_OK)
        return rc;
    if (state >= 0)
        sq_bind_text(st, 1, db_job_state_name((db_job_state)state));
    sqlite3_bind_int(st, 2, limit);
    db_job *list = NULL;
    size_t count = 0, cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        db_job *grown = grow_to(list, &cap, count + 1, sizeof *grown);
        if (!grown) {
            rc = db_fail(d, DB_NOMEM, "list jobs: out of memory");
            break;
        }
        list = grown;
        read_job(st, &list[count++]);
    }
    if (rc == DB_OK && step != SQLITE_DONE)
        rc = db_sq_fail(d, "list jobs");
    db_sq_release(st);
    if (rc != DB_OK) {
        free(list);
        return rc;
    }
    *out = list;
    *n = count;
    return DB_OK;
}

db_err db_sq_job_failures(db *d, int64_t job_id, int limit, observation **out, size_t *n)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_JOB_FAILURES, &st);
    if (rc != DB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, limit);
    observation *rows = NULL;
    size_t count = 0, cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        observation *grown = grow_to(rows, &cap, count + 1, sizeof *grown);
        if (!grown || db_sq_read_observation(st, 0, &grown[count], NULL)) {
            if (grown)
                rows = grown;
            rc = db_fail(d, DB_NOMEM, "job failures: out of memory");
            break;
        }
        rows = grown;
        count++;
    }
    if (rc == DB_OK && step != SQLITE_DONE)
        rc = db_sq_fail(d, "job failures");
    db_sq_release(st);
    if (rc != DB_OK) {
        db_observations_free(rows, count);
        return rc;
    }
    *out = rows;
    *n = count;
    return DB_OK;
}

db_err db_sq_jobs_cancel_unfinished(db *d, int64_t now_ms, int *n)
{
    enum sq_tx_mode mode;
    int64_t *ids = NULL;
    size_t count = 0, cap = 0;
    int cancelled = 0;
    db_err rc = db_sq_tx_enter(d, &mode, "cancel jobs");
    if (rc != DB_OK)
        return rc;
    int step;
    sqlite3_stmt *st = NULL;
    if ((rc = db_sq_stmt(d, ST_JOBS_UNFINISHED, &st)) != DB_OK)
        goto done;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (!db_job_owner_gone(sqlite3_column_int64(st, 1)))
            continue;
        int64_t *grown = grow_to(ids, &cap, count + 1, sizeof *grown);
        if (!grown) {
            rc = db_fail(d, DB_NOMEM, "cancel jobs: out of memory");
            goto done;
        }
        ids = grown;
        ids[count++] = sqlite3_column_int64(st, 0);
    }
    if (step != SQLITE_DONE) {
        rc = db_sq_fail(d, "cancel jobs");
        goto done;
    }
    db_sq_release(st);
    if ((rc = db_sq_stmt(d, ST_JOB_CANCEL, &st)) != DB_OK)
        goto done;
    for (size_t i = 0; i < count; i++) {
        sqlite3_bind_int64(st, 1, ids[i]);
        sqlite3_bind_int64(st, 2, now_ms);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_sq_fail(d, "cancel jobs");
            goto done;
        }
        cancelled += sqlite3_changes(sq_conn(d));
        sqlite3_reset(st);
    }
done:
    db_sq_release(st);
    free(ids);
    rc = db_sq_tx_leave(d, mode, rc, "cancel jobs");
    if (n && rc == DB_OK)
        *n = cancelled;
    return rc;
}
