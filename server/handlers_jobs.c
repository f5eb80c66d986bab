/*
 * handlers_jobs.c - refreshes: starting one (POST /api/refresh, and POST /api/books with
 * "refresh": true) and reading a job. The jobs runner answers at once: no handler waits for a
 * fetch. Threads: see handlers.h.
 */
#include "handlers_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "limits.h"

/* How long taking back the books of a refused refresh waits for the store's write lock: longer
 * than a request's SRV_STORE_WAIT_MS, because a store that is briefly locked is a reason for the
 * refusal itself, and giving up here would leave the books behind. */
#define UNDO_WAIT_MS 15000

/* Takes back the books ids[i] with added[i] set (SPEC §3: a refused refresh adds no book), in
 * one transaction. 0, or -1 (logged) when the store would not let go of them. */
static int untrack_added(hctx *h, const char *const *ids, const int *added, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; added && i < n; i++)
        count += added[i] != 0;
    if (!count)
        return 0;
    db *d = h_db(h);
    if (!d) {
        log_error("store: %zu book(s) of a refused refresh stay tracked: no connection", count);
        return -1;
    }
    db_set_busy_timeout(d, UNDO_WAIT_MS);
    db_err rc = db_begin(d);
    for (size_t i = 0; rc == DB_OK && i < n; i++)
        if (added[i] && (rc = db_book_remove(d, ids[i])) == DB_NOTFOUND)
            rc = DB_OK; /* removed meanwhile by someone else: just as good */
    if (rc == DB_OK)
        rc = db_commit(d);
    else
        (void)db_rollback(d);
    if (rc != DB_OK)
        log_error("store: %zu book(s) of a refused refresh stay tracked: %s", count, db_errmsg(d));
    db_set_busy_timeout(d, SRV_STORE_WAIT_MS);
    return rc == DB_OK ? 0 : -1;
}

int h_start_job(hctx *h, const char *const *ids, const int *added, size_t n, db_job *job,
                int *joined)
{
    char why[256] = "";
    jobs_err rc = jobs_refresh(h->env->runner, ids, n, JOB_BY_API, job, joined, why, sizeof why);
    const char *message = why[0] ? why : jobs_strerror(rc);
    /* A store that refused the job: say why in the words /healthz uses (read-only, full). */
    char problem[1024], stated[1100], note[1200];
    if (rc == JOBS_STORE && h_store_problem(h, problem, sizeof problem) &&
        snprintf(stated, sizeof stated, "the refresh was not started: %s", problem) > 0)
        message = stated;
    if (rc != JOBS_OK && untrack_added(h, ids, added, n) != 0 &&
        snprintf(note, sizeof note,
                 "%s; the books this request added could not be taken back and stay tracked",
                 message) > 0)
        message = note;
    switch (rc) {
    case JOBS_OK:
        return 0;
    case JOBS_BUSY:
        h_error(h, HTTP_TOO_MANY_REQUESTS, "too_many_refreshes", message);
        break;
    case JOBS_NOMEM:
        h_oom(h);
        break;
    case JOBS_NOT_FOUND:
    case JOBS_FINISHED:
    case JOBS_STOPPING:
    case JOBS_STORE:
    case JOBS_SYSTEM:
        h_error(h, HTTP_SERVICE_UNAVAILABLE, "unavailable", message);
        break;
    }
    return -1;
}

void h_refresh(hctx *h, const char *arg)
{
    (void)arg;
    body_list l;
    if (h_read_isbns(h, &l, 1))
        return;
    /* Books named in a refresh become tracked, as with `bookrank refresh ID...`; when the
     * refresh is refused (429, 503), the ones added here are taken back. */
    int *added = l.n ? calloc(l.n, sizeof *added) : NULL;
    char(*stored)[14] = l.n ? calloc(l.n, sizeof *stored) : NULL;
    const char **ids = l.n ? calloc(l.n, sizeof *ids) : NULL;
    if (l.n && (!added || !stored || !ids)) {
        h_oom(h);
        goto done;
    }
    if (l.n) {
        db *d = h_db(h);
        db_err rc = d ? db_books_add(d, l.items, l.n, added, stored) : DB_ERROR;
        if (rc != DB_OK) {
            h_store_error(h, rc);
            goto done;
        }
        for (size_t i = 0; i < l.n; i++)
            ids[i] = stored[i];
    }
    db_job job;
    int joined;
    if (h_start_job(h, ids, added, l.n, &job, &joined) == 0) {
        char location[64];
        int n = snprintf(location, sizeof location, "/api/jobs/%lld", (long long)job.id);
        if (n < 0 || (size_t)n >= sizeof location)
            h_error(h, HTTP_INTERNAL_SERVER_ERROR, "internal", "cannot build the job's address");
        else if (h_header(h, "Location", location) == 0)
            h_json(h, render_job_doc(&h->resp->body, &job, joined), HTTP_ACCEPTED);
    }
done:
    free(ids);
    free(stored);
    free(added);
    body_list_free(&l);
}

/* The {id} of a job path; -1 after answering 400. */
static int job_id_arg(hctx *h, const char *arg, long long *id)
{
    char *end;
    *id = strtoll(arg, &end, 10);
    if (end == arg || *end || *id <= 0 || strlen(arg) > SRV_JOB_ID_MAX_DIGITS) {
        h_error(h, HTTP_BAD_REQUEST, "invalid_query", "a job id is a positive number");
        return -1;
    }
    return 0;
}

void h_job_get(hctx *h, const char *arg)
{
    long long id;
    if (job_id_arg(h, arg, &id))
        return;
    db_job job;
    jobs_err rc = jobs_get(h->env->runner, id, &job);
    if (rc == JOBS_NOT_FOUND) {
        h_error(h, HTTP_NOT_FOUND, "job_not_found", "no such job");
        return;
    }
    if (rc != JOBS_OK) {
        log_error("store: job %lld: %s", id, jobs_strerror(rc));
        h_error(h, HTTP_SERVICE_UNAVAILABLE, "unavailable", "the database is not available");
        return;
    }
    /* A job lists the fetches that failed (as far as they are stored). */
    observation *failed = NULL;
    size_t nfailed = 0;
    db *d = h_db(h);
    db_err frc = d ? db_job_failures(d, job.id, SRV_JOB_FAILURES_MAX, &failed, &nfailed) : DB_ERROR;
    if (frc != DB_OK) {
        h_store_error(h, frc);
        return;
    }
    h_json(h, render_job_detail(&h->resp->body, &job, failed, nfailed), HTTP_OK);
    db_observations_free(failed, nfailed);
}

void h_jobs_list(hctx *h, const char *arg)
{
    (void)arg;
    const char *state = srv_request_arg(h->req, "state");
    int st = -1, lim = SRV_JOBS_LIST_DEFAULT;
    if (state && (st = db_job_state_parse_name(state)) < 0) {
        h_error(h, HTTP_BAD_REQUEST, "invalid_query",
                "state must be queued, running, done or cancelled");
        return;
    }
    if (h_query_int(h, "limit", 1, SRV_JOBS_LIST_MAX, &lim) < 0)
        return;
    db *d = h_db(h);
    db_job *list = NULL;
    size_t n = 0;
    db_err rc = d ? db_jobs_list(d, st, lim, &list, &n) : DB_ERROR;
    if (rc != DB_OK) {
        h_store_error(h, rc);
        return;
    }
    /* Jobs this process runs answer with their live progress (the stored row lags a commit). */
    for (size_t i = 0; i < n; i++) {
        db_job live;
        if (list[i].state == JOB_RUNNING && jobs_get(h->env->runner, list[i].id, &live) == JOBS_OK)
            list[i] = live;
    }
    int64_t next = h->env->cfg->next_scheduled
                       ? h->env->cfg->next_scheduled(h->env->cfg->schedule_ctx)
                       : 0;
    h_json(h, render_jobs(&h->resp->body, list, n, next), HTTP_OK);
    free(list);
}

void h_job_cancel(hctx *h, const char *arg)
{
    long long id;
    if (job_id_arg(h, arg, &id))
        return;
    db_job job;
    char why[200] = "";
    jobs_err rc = jobs_cancel(h->env->runner, id, &job, why, sizeof why);
    switch (rc) {
    case JOBS_OK:
        h_json(h, render_job_doc(&h->resp->body, &job, -1), HTTP_ACCEPTED);
        return;
    case JOBS_NOT_FOUND:
        h_error(h, HTTP_NOT_FOUND, "job_not_found", "no such job");
        return;
    case JOBS_FINISHED:
        /* Not running in this process: ended, or run by another one (a cron refresh). */
        h_error(h, HTTP_CONFLICT, "conflict",
                job.state == JOB_QUEUED || job.state == JOB_RUNNING
                    ? "that job runs in another process (a `bookrank refresh`): stop it there"
                    : "that job has already ended");
        return;
    case JOBS_NOMEM:
        h_oom(h);
        return;
    default:
        h_error(h, HTTP_SERVICE_UNAVAILABLE, "unavailable", why[0] ? why : jobs_strerror(rc));
        return;
    }
}
