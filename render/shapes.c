/*
 * shapes.c - the JSON documents of the API and the CLI (SPEC §3), built with the writer.
 */
#include "render.h"

#include <string.h>

#include "../common/utf8.h"

void render_category_list(jw *w, const obs_category *cats, size_t n)
{
    jw_array_open(w);
    for (size_t i = 0; i < n; i++) {
        jw_object_open(w);
        jw_key(w, "rank");
        jw_int(w, cats[i].rank);
        jw_key(w, "category");
        jw_string(w, cats[i].category);
        jw_object_close(w);
    }
    jw_array_close(w);
}

/* The members of an observation object, without its braces. */
static void observation_members(jw *w, const observation *o)
{
    jw_key(w, "source");
    jw_string(w, o->source);
    jw_key(w, "status");
    jw_string(w, obs_status_name(o->status));
    jw_key(w, "rank");
    jw_rank(w, o->rank);
    jw_key(w, "rank_category");
    jw_string(w, o->rank_category);
    jw_key(w, "categories");
    render_category_list(w, o->categories, o->ncategories);
    jw_key(w, "fetched_at");
    jw_time(w, o->fetched_at_ms);
    jw_key(w, "previous_rank");
    jw_rank(w, o->previous_rank);
    jw_key(w, "error");
    jw_string(w, o->error);
    /* When this one is not ok: the last good one (null when there never was one). */
    jw_key(w, "last_ok");
    if (o->status != OBS_OK && o->last_ok_at_ms > 0) {
        jw_object_open(w);
        jw_key(w, "rank");
        jw_rank(w, o->last_ok_rank);
        jw_key(w, "rank_category");
        jw_string(w, o->last_ok_category);
        jw_key(w, "fetched_at");
        jw_time(w, o->last_ok_at_ms);
        jw_object_close(w);
    } else {
        jw_null(w);
    }
    jw_key(w, "title");
    jw_string(w, o->title);
    jw_key(w, "http_status");
    if (o->http_status)
        jw_int(w, o->http_status);
    else
        jw_null(w);
    jw_key(w, "attempts");
    jw_int(w, o->attempts);
    jw_key(w, "duration_ms");
    jw_int(w, o->duration_ms);
}

void render_observation(jw *w, const observation *o)
{
    jw_object_open(w);
    observation_members(w, o);
    jw_object_close(w);
}

/* "" as null: the book's optional fixed-size fields. */
static void string_or_null(jw *w, const char *s)
{
    jw_string(w, s && *s ? s : NULL);
}

void render_book(jw *w, const db_book *b)
{
    jw_object_open(w);
    jw_key(w, "id");
    jw_string(w, b->id);
    jw_key(w, "isbn13");
    string_or_null(w, b->isbn13);
    jw_key(w, "isbn10");
    string_or_null(w, b->isbn10);
    /* The ASIN the user attached, else the print edition's (its ISBN-10); a book without an
     * ISBN is its ASIN. */
    jw_key(w, "asin");
    string_or_null(w, b->asin[0] ? b->asin : b->isbn13[0] ? b->isbn10 : b->id);
    jw_key(w, "title");
    jw_string(w, b->title);
    jw_key(w, "format");
    jw_string(w, obs_format_name(b->format));
    jw_key(w, "work");
    jw_string(w, b->work);
    jw_key(w, "tags");
    jw_array_open(w);
    for (size_t i = 0; i < b->ntags; i++)
        jw_string(w, b->tags[i]);
    jw_array_close(w);
    jw_key(w, "note");
    jw_string(w, b->note);
    jw_key(w, "added_at");
    jw_time(w, b->added_at_ms);
    jw_key(w, "sources");
    if (b->sources) {
        jw_array_open(w);
        for (size_t i = 0; i < b->nsources; i++)
            jw_string(w, b->sources[i]);
        jw_array_close(w);
    } else {
        jw_null(w);
    }
    jw_key(w, "asins");
    jw_object_open(w);
    for (size_t i = 0; i < b->nasins; i++) {
        jw_key(w, b->asins[i].source);
        jw_string(w, b->asins[i].asin);
    }
    jw_object_close(w);
    jw_key(w, "latest");
    jw_array_open(w);
    for (size_t i = 0; i < b->nlatest; i++)
        render_observation(w, &b->latest[i]);
    jw_array_close(w);
    jw_object_close(w);
}

/* The members of a job object, for render_job and render_job_detail. */
static void job_fields(jw *w, const db_job *job)
{
    jw_key(w, "id");
    jw_int(w, job->id);
    jw_key(w, "state");
    jw_string(w, db_job_state_name(job->state));
    jw_key(w, "started_by");
    jw_string(w, db_job_origin_name(job->started_by));
    jw_key(w, "total");
    jw_int(w, job->total);
    jw_key(w, "done");
    jw_int(w, job->done);
    jw_key(w, "skipped");
    jw_int(w, job->skipped);
    jw_key(w, "counts");
    jw_object_open(w);
    for (int s = 0; s < OBS_STATUS_COUNT; s++) {
        jw_key(w, obs_status_name((obs_status)s));
        jw_int(w, job->counts[s]);
    }
    jw_object_close(w);
    jw_key(w, "all_books");
    jw_bool(w, job->all_books);
    jw_key(w, "created_at");
    jw_time(w, job->created_at_ms);
    jw_key(w, "started_at");
    jw_time(w, job->started_at_ms);
    jw_key(w, "finished_at");
    jw_time(w, job->finished_at_ms);
}

void render_job(jw *w, const db_job *job)
{
    jw_object_open(w);
    job_fields(w, job);
    jw_object_close(w);
}

int render_books(buf *out, const db_book *books, size_t n, int flags)
{
    jw w;
    jw_begin(&w, out, flags);
    jw_array_open(&w);
    for (size_t i = 0; i < n; i++)
        render_book(&w, &books[i]);
    jw_array_close(&w);
    return jw_end(&w);
}

int render_book_doc(buf *out, const db_book *book, int flags)
{
    jw w;
    jw_begin(&w, out, flags);
    render_book(&w, book);
    return jw_end(&w);
}

int render_history(buf *out, const char *id, const char *isbn13, const observation *obs, size_t n,
                   int flags)
{
    jw w;
    jw_begin(&w, out, flags);
    jw_object_open(&w);
    jw_key(&w, "id");
    jw_string(&w, id);
    jw_key(&w, "isbn13");
    string_or_null(&w, isbn13);
    jw_key(&w, "observations");
    jw_array_open(&w);
    for (size_t i = 0; i < n; i++)
        render_observation(&w, &obs[i]);
    jw_array_close(&w);
    jw_object_close(&w);
    return jw_end(&w);
}

int render_job_doc(buf *out, const db_job *job, int joined)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    jw_object_open(&w);
    jw_key(&w, "job");
    render_job(&w, job);
    if (joined >= 0) {
        jw_key(&w, "joined");
        jw_bool(&w, joined);
    }
    jw_object_close(&w);
    return jw_end(&w);
}

int render_job_detail(buf *out, const db_job *job, const observation *failed, size_t n)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    jw_object_open(&w);
    jw_key(&w, "job");
    jw_object_open(&w);
    job_fields(&w, job);
    jw_key(&w, "failed");
    jw_array_open(&w);
    for (size_t i = 0; i < n; i++) {
        const observation *o = &failed[i];
        jw_object_open(&w);
        jw_key(&w, "id");
        jw_string(&w, o->book_id);
        jw_key(&w, "source");
        jw_string(&w, o->source);
        jw_key(&w, "status");
        jw_string(&w, obs_status_name(o->status));
        jw_key(&w, "error");
        jw_string(&w, o->error);
        jw_key(&w, "fetched_at");
        jw_time(&w, o->fetched_at_ms);
        jw_object_close(&w);
    }
    jw_array_close(&w);
    jw_object_close(&w);
    jw_object_close(&w);
    return jw_end(&w);
}

int render_jobs(buf *out, const db_job *jobs, size_t n, int64_t next_scheduled_ms)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    jw_object_open(&w);
    jw_key(&w, "jobs");
    jw_array_open(&w);
    for (size_t i = 0; i < n; i++)
        render_job(&w, &jobs[i]);
    jw_array_close(&w);
    jw_key(&w, "next_scheduled_at");
    jw_time(&w, next_scheduled_ms);
    jw_object_close(&w);
    return jw_end(&w);
}

int render_books_added(buf *out, const char *const *ids, const int *added, size_t n,
                       const db_job *job)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    jw_object_open(&w);
    for (int pass = 1; pass >= 0; pass--) {
        jw_key(&w, pass ? "added" : "already_tracked");
        jw_array_open(&w);
        for (size_t i = 0; i < n; i++)
            if (!added[i] == !pass)
                jw_string(&w, ids[i]);
        jw_array_close(&w);
    }
    if (job) {
        jw_key(&w, "job");
        render_job(&w, job);
    }
    jw_object_close(&w);
    return jw_end(&w);
}

int render_health(buf *out, const char *status, const char *reason)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    jw_object_open(&w);
    jw_key(&w, "status");
    jw_string(&w, status);
    if (reason) {
        jw_key(&w, "reason");
        jw_string(&w, reason);
    }
    jw_object_close(&w);
    return jw_end(&w);
}

int render_config(buf *out, int auth_required, const char *version, const char *const *sources,
                  size_t nsources)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    jw_object_open(&w);
    jw_key(&w, "auth_required");
    jw_bool(&w, auth_required);
    jw_key(&w, "version");
    jw_string(&w, version);
    jw_key(&w, "sources");
    jw_array_open(&w);
    for (size_t i = 0; i < nsources; i++)
        jw_string(&w, sources[i]);
    jw_array_close(&w);
    jw_object_close(&w);
    return jw_end(&w);
}

int render_extract(buf *out, const observation *o, int flags)
{
    jw w;
    jw_begin(&w, out, flags);
    jw_object_open(&w);
    jw_key(&w, "status");
    jw_string(&w, obs_status_name(o->status));
    jw_key(&w, "rank");
    jw_rank(&w, o->rank);
    jw_key(&w, "rank_category");
    jw_string(&w, o->rank_category);
    jw_key(&w, "categories");
    render_category_list(&w, o->categories, o->ncategories);
    jw_key(&w, "title");
    jw_string(&w, o->title);
    jw_key(&w, "error");
    jw_string(&w, o->error);
    jw_object_close(&w);
    return jw_end(&w);
}

int render_refresh(buf *out, const db_job *job, const observation *results, size_t n,
                   double wall_seconds, int flags)
{
    jw w;
    jw_begin(&w, out, flags);
    jw_object_open(&w);
    jw_key(&w, "job");
    render_job(&w, job);
    jw_key(&w, "results");
    jw_array_open(&w);
    for (size_t i = 0; i < n; i++) {
        jw_object_open(&w);
        observation_members(&w, &results[i]);
        jw_key(&w, "id");
        jw_string(&w, results[i].book_id);
        jw_key(&w, "isbn13"); /* a book's id is its ISBN-13 when it has one */
        string_or_null(&w, strlen(results[i].book_id) == 13 ? results[i].book_id : NULL);
        jw_object_close(&w);
    }
    jw_array_close(&w);
    jw_key(&w, "wall_seconds");
    jw_double(&w, wall_seconds);
    jw_object_close(&w);
    return jw_end(&w);
}

int render_error(buf *out, const char *code, const char *message, const render_detail *details,
                 size_t ndetails)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    jw_object_open(&w);
    jw_key(&w, "error");
    jw_object_open(&w);
    jw_key(&w, "code");
    jw_string(&w, code);
    jw_key(&w, "message");
    jw_string(&w, message);
    jw_key(&w, "details");
    jw_array_open(&w);
    for (size_t i = 0; i < ndetails; i++) {
        const render_detail *d = &details[i];
        jw_object_open(&w);
        jw_key(&w, "index");
        jw_int(&w, (int64_t)d->index);
        jw_key(&w, "input");
        if (d->input)
            jw_string_n(&w, d->input, utf8_truncate(d->input, d->input_len, RENDER_ECHO_MAX));
        else
            jw_null(&w);
        jw_key(&w, "reason");
        jw_string(&w, d->reason);
        jw_object_close(&w);
    }
    jw_array_close(&w);
    jw_object_close(&w);
    jw_object_close(&w);
    return jw_end(&w);
}

int render_text_payload(buf *out, const char *key, const char *text, size_t max)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    jw_object_open(&w);
    jw_key(&w, key);
    size_t n = text ? strlen(text) : 0;
    if (n <= max) {
        jw_string_n(&w, text ? text : "", n);
    } else {
        buf cut;
        buf_init(&cut, max + 4);
        size_t keep = utf8_truncate(text, n, max > 3 ? max - 3 : 0);
        if (buf_append(&cut, text, keep) != BUF_OK || buf_append(&cut, "\xe2\x80\xa6", 3) != BUF_OK)
            w.rc = BUF_NOMEM;
        jw_string_n(&w, cut.data ? cut.data : "", cut.len);
        buf_free(&cut);
    }
    jw_object_close(&w);
    return jw_end(&w);
}
