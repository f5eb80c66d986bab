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

int h_start_job(hctx *h, const isbn *books, size_t n, db_job *job, int *joined)
{
    char why[256] = "";
    jobs_err rc = jobs_refresh(h->env->runner, books, n, job, joined, why, sizeof why);
    const char *message = why[0] ? why : jobs_strerror(rc);
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
    /* Books named in a refresh become tracked, as with `bookrank refresh ISBN...`. */
    if (l.n) {
        db *d = h_db(h);
        if (!d || db_books_add(d, l.items, l.n, NULL) != DB_OK) {
            h_store_error(h);
            body_list_free(&l);
            return;
        }
    }
    db_job job;
    int joined;
    if (h_start_job(h, l.n ? l.items : NULL, l.n, &job, &joined) == 0) {
        char location[64];
        int n = snprintf(location, sizeof location, "/api/jobs/%lld", (long long)job.id);
        if (n < 0 || (size_t)n >= sizeof location)
            h_error(h, HTTP_INTERNAL_SERVER_ERROR, "internal", "cannot build the job's address");
        else if (h_header(h, "Location", location) == 0)
            h_json(h, render_job_doc(&h->resp->body, &job, joined), HTTP_ACCEPTED);
    }
    body_list_free(&l);
}

void h_job_get(hctx *h, const char *arg)
{
    char *end;
    long long id = strtoll(arg, &end, 10);
    if (end == arg || *end || id <= 0 || strlen(arg) > SRV_JOB_ID_MAX_DIGITS) {
        h_error(h, HTTP_BAD_REQUEST, "invalid_query", "a job id is a positive number");
        return;
    }
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
    h_json(h, render_job_doc(&h->resp->body, &job, -1), HTTP_OK);
}
