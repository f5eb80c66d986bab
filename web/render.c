/* render.c - JSON and CSV encodings of books, observations and jobs. */
#include "web.h"

#include <string.h>

#include "../common/timeutil.h"

json_t *web_json_time(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char iso[32];
    time_format_iso(ms, iso, sizeof iso);
    return json_string(iso);
}

/* Scraped text is untrusted: jansson rejects invalid UTF-8, so fall back to a placeholder
 * instead of dropping the record. */
static json_t *text_or_null(const char *s)
{
    if (!s)
        return json_null();
    json_t *v = json_string(s);
    return v ? v : json_string("\xef\xbf\xbd");
}

static json_t *rank_or_null(int64_t rank)
{
    return rank < 0 ? json_null() : json_integer(rank);
}

json_t *web_json_observation(const observation *o)
{
    json_t *cats = json_array();
    for (size_t i = 0; i < o->ncategories; i++)
        json_array_append_new(cats, json_pack("{s:I, s:o}", "rank", (json_int_t)o->categories[i].rank,
                                              "category", text_or_null(o->categories[i].category)));
    return json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:I}",
                     "source", text_or_null(o->source),
                     "status", obs_status_name(o->status),
                     "rank", rank_or_null(o->rank),
                     "rank_category", text_or_null(o->rank_category),
                     "categories", cats,
                     "fetched_at", web_json_time(o->fetched_at_ms),
                     "previous_rank", rank_or_null(o->previous_rank),
                     "error", text_or_null(o->error),
                     "title", text_or_null(o->title),
                     "http_status", o->http_status ? json_integer(o->http_status) : json_null(),
                     "attempts", o->attempts,
                     "duration_ms", (json_int_t)o->duration_ms);
}

json_t *web_json_book(const db_book *b)
{
    json_t *latest = json_array();
    for (size_t i = 0; i < b->nlatest; i++)
        json_array_append_new(latest, web_json_observation(&b->latest[i]));
    return json_pack("{s:s, s:o, s:o, s:o, s:o}",
                     "isbn13", b->isbn13,
                     "isbn10", b->isbn10[0] ? json_string(b->isbn10) : json_null(),
                     "title", text_or_null(b->title),
                     "added_at", web_json_time(b->added_at_ms),
                     "latest", latest);
}

json_t *web_json_job(const db_job *job)
{
    json_t *counts = json_object();
    for (int s = 0; s < OBS_STATUS_COUNT; s++)
        json_object_set_new(counts, obs_status_name((obs_status)s), json_integer(job->counts[s]));
    return json_pack("{s:I, s:s, s:I, s:I, s:o, s:b, s:o, s:o, s:o}",
                     "id", (json_int_t)job->id,
                     "state", db_job_state_name(job->state),
                     "total", (json_int_t)job->total,
                     "done", (json_int_t)job->done,
                     "counts", counts,
                     "all_books", job->all_books,
                     "created_at", web_json_time(job->created_at_ms),
                     "started_at", web_json_time(job->started_at_ms),
                     "finished_at", web_json_time(job->finished_at_ms));
}

json_t *web_json_error(const char *code, const char *message, json_t *details)
{
    return json_pack("{s:{s:s, s:o, s:o}}", "error", "code", code, "message",
                     text_or_null(message), "details", details ? details : json_array());
}

static int dump_cb(const char *data, size_t size, void *ctx)
{
    return buf_append(ctx, data, size) == BUF_OK ? 0 : -1;
}

int web_json_dump(buf *out, const json_t *value)
{
    return json_dump_callback(value, dump_cb, out, JSON_COMPACT | JSON_ENCODE_ANY) == 0
               ? BUF_OK
               : BUF_TOOBIG;
}

int web_csv_header(buf *out)
{
    return buf_append_str(out, "isbn13,source,fetched_at,status,rank,rank_category,http_status,error\r\n");
}

static int csv_field(buf *out, const char *s)
{
    if (!s)
        return 0;
    int rc = buf_append(out, "\"", 1);
    /* A leading = + - @ makes spreadsheets evaluate the cell; neutralise it. */
    if (!rc && strchr("=+-@\t\r", s[0]) && s[0])
        rc = buf_append(out, "'", 1);
    for (const char *p = s; !rc && *p; p++)
        rc = *p == '"' ? buf_append(out, "\"\"", 2) : buf_append(out, p, 1);
    return rc ? rc : buf_append(out, "\"", 1);
}

int web_csv_row(buf *out, const observation *o)
{
    char iso[32];
    time_format_iso(o->fetched_at_ms, iso, sizeof iso);
    int rc = buf_printf(out, "%s,", o->isbn13);
    rc = rc ? rc : csv_field(out, o->source);
    rc = rc ? rc : buf_printf(out, ",%s,%s,", iso, obs_status_name(o->status));
    if (!rc && o->rank >= 0)
        rc = buf_printf(out, "%lld", (long long)o->rank);
    rc = rc ? rc : buf_append(out, ",", 1);
    rc = rc ? rc : csv_field(out, o->rank_category);
    rc = rc ? rc : buf_append(out, ",", 1);
    if (!rc && o->http_status)
        rc = buf_printf(out, "%d", o->http_status);
    rc = rc ? rc : buf_append(out, ",", 1);
    rc = rc ? rc : csv_field(out, o->error);
    return rc ? rc : buf_append(out, "\r\n", 2);
}
