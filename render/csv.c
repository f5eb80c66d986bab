/*
 * csv.c - the CSV export (RFC 4180): quoting, and the one guard against spreadsheet formulas.
 */
#include "render.h"

#include <string.h>

#include "../common/timeutil.h"
#include "../common/utf8.h"

int render_csv_header(buf *out)
{
    return buf_append_str(out,
                          "isbn13,source,fetched_at,status,rank,rank_category,http_status,error\r\n");
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
    int rc = buf_printf(out, "%.13s,", o->isbn13);
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
