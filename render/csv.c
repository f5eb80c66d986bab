/*
 * csv.c - the CSV export (RFC 4180): quoting, and the one guard against spreadsheet formulas.
 */
#include "render.h"

#include <string.h>

#include "../common/timeutil.h"
#include "../common/utf8.h"

int render_csv_header(buf *out)
{
    return buf_append_str(out, "isbn13,source,fetched_at,status,rank,rank_category,http_status,"
                               "error,id\r\n");
}

/* A quoted text field; NULL is an empty (unquoted) field. A leading = + - @ tab or CR would make a
 * spreadsheet evaluate the cell, so such a field gets a ' in front. Invalid UTF-8 becomes
 * U+FFFD like everywhere else. */
static int csv_field(buf *out, const char *s)
{
    if (!s)
        return BUF_OK;
    int rc = buf_append(out, "\"", 1);
    if (rc == BUF_OK && s[0] && strchr("=+-@\t\r", s[0]))
        rc = buf_append(out, "'", 1);
    for (const char *p = s; rc == BUF_OK && *p;) {
        const char *q = strchr(p, '"');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        rc = utf8_sanitize_append(out, p, n);
        if (rc == BUF_OK && q)
            rc = buf_append(out, "\"\"", 2);
        p = q ? q + 1 : p + n;
    }
    return rc == BUF_OK ? buf_append(out, "\"", 1) : rc;
}

int render_csv_row(buf *out, const observation *o)
{
    char iso[32];
    time_format_iso(o->fetched_at_ms, iso, sizeof iso);
    /* isbn13 is empty for a book without an ISBN; id names every book. */
    int rc = buf_printf(out, "%.13s,", strlen(o->book_id) == 13 ? o->book_id : "");
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
    return rc ? rc : buf_printf(out, ",%.13s\r\n", o->book_id);
}

int render_books_csv_header(buf *out)
{
    return buf_append_str(out, "id,isbn13,asin,title,format,work,tags,source,status,rank,"
                               "rank_category,fetched_at,last_ok_rank,last_ok_at\r\n");
}

static int csv_rank_time(buf *out, int64_t rank, int64_t at_ms)
{
    int rc = rank >= 0 ? buf_printf(out, "%lld", (long long)rank) : BUF_OK;
    rc = rc ? rc : buf_append(out, ",", 1);
    if (!rc && rank >= 0 && at_ms > 0) {
        char iso[32];
        time_format_iso(at_ms, iso, sizeof iso);
        rc = buf_append_str(out, iso);
    }
    return rc;
}

/* The book's own columns, up to and including the comma before source. */
static int csv_book_fields(buf *out, const db_book *b)
{
    /* asin as in the book object: attached, else the ISBN-10, else (no ISBN) the id. */
    const char *asin = b->asin[0] ? b->asin : b->isbn13[0] ? b->isbn10 : b->id;
    int rc = buf_printf(out, "%.13s,%.13s,%.10s,", b->id, b->isbn13, asin);
    rc = rc ? rc : csv_field(out, b->title);
    rc = rc ? rc
            : buf_printf(out, ",%s,",
                         b->format != OBS_FORMAT_UNKNOWN ? obs_format_name(b->format) : "");
    rc = rc ? rc : csv_field(out, b->work);
    rc = rc ? rc : buf_append(out, ",", 1);
    if (!rc && b->ntags) {
        buf joined;
        buf_init(&joined, (size_t)1 << 20);
        for (size_t i = 0; rc == BUF_OK && i < b->ntags; i++)
            rc = buf_printf(&joined, "%s%s", i ? "|" : "", b->tags[i]);
        rc = rc ? rc : buf_append(&joined, "", 1);
        rc = rc ? rc : csv_field(out, joined.data);
        buf_free(&joined);
    }
    return rc ? rc : buf_append(out, ",", 1);
}

int render_books_csv_row(buf *out, const db_book *b)
{
    int rc = BUF_OK;
    if (b->nlatest == 0) {
        rc = csv_book_fields(out, b);
        return rc ? rc : buf_append_str(out, ",,,,,,\r\n");
    }
    for (size_t k = 0; rc == BUF_OK && k < b->nlatest; k++) {
        const observation *o = &b->latest[k];
        char iso[32];
        time_format_iso(o->fetched_at_ms, iso, sizeof iso);
        rc = csv_book_fields(out, b);
        rc = rc ? rc : csv_field(out, o->source);
        rc = rc ? rc : buf_printf(out, ",%s,", obs_status_name(o->status));
        if (!rc && o->rank >= 0)
            rc = buf_printf(out, "%lld", (long long)o->rank);
        rc = rc ? rc : buf_append(out, ",", 1);
        rc = rc ? rc : csv_field(out, o->rank_category);
        rc = rc ? rc : buf_printf(out, ",%s,", iso);
        rc = rc ? rc : csv_rank_time(out, o->last_ok_rank, o->last_ok_at_ms);
        rc = rc ? rc : buf_append(out, "\r\n", 2);
    }
    return rc;
}
