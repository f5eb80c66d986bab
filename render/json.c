/*
 * json.c - the JSON writer: structure (commas, nesting, indentation), and the one string escaper.
 *
 * Escaping: '"' and '\\' as themselves escaped; control bytes, DEL, '<', '>', '&', U+2028 and
 * U+2029 as \uXXXX (the short forms \n \t \r \b \f for those that have one); every byte that does
 * not start a valid UTF-8 sequence becomes U+FFFD (the same rule as common/utf8.c, which decides
 * validity). Everything else is copied in runs, so plain text costs one memcpy per run.
 */
#include "render.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../common/timeutil.h"
#include "../common/utf8.h"

void jw_begin(jw *w, buf *out, int flags)
{
    memset(w, 0, sizeof *w);
    w->out = out;
    w->pretty = flags & RENDER_PRETTY;
}

int jw_end(jw *w)
{
    if (w->rc == BUF_OK && w->depth != 0)
        w->rc = BUF_NOMEM; /* unbalanced: a bug in a shape, never silently valid JSON */
    if (w->rc == BUF_OK && w->pretty)
        w->rc = buf_append(w->out, "\n", 1);
    return w->rc;
}

static void put(jw *w, const char *s, size_t n)
{
    if (w->rc == BUF_OK)
        w->rc = buf_append(w->out, s, n);
}

static void newline_indent(jw *w)
{
    static const char spaces[] = "                                                                ";
    put(w, "\n", 1);
    for (unsigned d = 0; d < w->depth && w->rc == BUF_OK; d++)
        put(w, spaces, 2);
}

/* What comes before a value: nothing after a key, else a comma when the container has items. */
static void before_value(jw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth == 0)
        return;
    uint64_t bit = (uint64_t)1 << (w->depth - 1);
    if (w->has_items & bit)
        put(w, ",", 1);
    w->has_items |= bit;
    if (w->pretty)
        newline_indent(w);
}

static void open_container(jw *w, char c)
{
    before_value(w);
    if (w->depth >= JW_MAX_DEPTH) {
        w->rc = w->rc ? w->rc : BUF_TOOBIG;
        return;
    }
    put(w, &c, 1);
    w->depth++;
    w->has_items &= ~((uint64_t)1 << (w->depth - 1));
}

static void close_container(jw *w, char c)
{
    if (w->depth == 0) {
        w->rc = w->rc ? w->rc : BUF_NOMEM;
        return;
    }
    int had = (w->has_items >> (w->depth - 1)) & 1;
    w->depth--;
    if (w->pretty && had)
        newline_indent(w);
    put(w, &c, 1);
}

void jw_object_open(jw *w)
{
    open_container(w, '{');
}

void jw_object_close(jw *w)
{
    close_container(w, '}');
}

void jw_array_open(jw *w)
{
    open_container(w, '[');
}

void jw_array_close(jw *w)
{
    close_container(w, ']');
}

/* The escaped body of a string (without quotes). */
static void put_escaped(jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0;
    for (size_t i = 0; i < n && w->rc == BUF_OK;) {
        unsigned char c = u[i];
        char esc[8];
        size_t elen = 0, used = 1;
        if (c >= 0x80) {
            uint32_t cp;
            used = utf8_decode(u + i, n - i, &cp);
            if (used == 0) {
                memcpy(esc, UTF8_REPLACEMENT, 3);
                elen = 3;
                used = 1;
            } else if (cp == 0x2028 || cp == 0x2029) {
                memcpy(esc, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
                elen = 6;
            } else {
                i += used;
                continue;
            }
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c == '\n' || c == '\t' || c == '\r' || c == '\b' || c == '\f') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : c == '\r' ? 'r' : c == '\b' ? 'b' : 'f';
            elen = 2;
        } else if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&') {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        } else {
            i++;
            continue;
        }
        put(w, s + run, i - run);
        put(w, esc, elen);
        i += used;
        run = i;
    }
    put(w, s + run, n - run);
}

void jw_key(jw *w, const char *key)
{
    before_value(w);
    put(w, "\"", 1);
    put_escaped(w, key, strlen(key));
    put(w, w->pretty ? "\": " : "\":", w->pretty ? 3 : 2);
    w->after_key = 1;
}

void jw_string_n(jw *w, const char *s, size_t n)
{
    before_value(w);
    if (!s) {
        put(w, "null", 4);
        return;
    }
    put(w, "\"", 1);
    put_escaped(w, s, n);
    put(w, "\"", 1);
}

void jw_string(jw *w, const char *s)
{
    jw_string_n(w, s, s ? strlen(s) : 0);
}

void jw_int(jw *w, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", (long long)v);
    before_value(w);
    if (n > 0 && (size_t)n < sizeof num)
        put(w, num, (size_t)n);
    else
        w->rc = w->rc ? w->rc : BUF_NOMEM;
}

void jw_rank(jw *w, int64_t rank)
{
    if (rank < 0)
        jw_null(w);
    else
        jw_int(w, rank);
}

void jw_double(jw *w, double v)
{
    char num[48];
    if (!isfinite(v)) {
        jw_null(w);
        return;
    }
    int n = snprintf(num, sizeof num, "%.6g", v);
    before_value(w);
    if (n > 0 && (size_t)n < sizeof num)
        put(w, num, (size_t)n);
    else
        w->rc = w->rc ? w->rc : BUF_NOMEM;
}

void jw_bool(jw *w, int v)
{
    before_value(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_null(jw *w)
{
    before_value(w);
    put(w, "null", 4);
}

void jw_time(jw *w, int64_t ms)
{
    if (ms <= 0) {
        jw_null(w);
        return;
    }
    char iso[32];
    time_format_iso(ms, iso, sizeof iso);
    jw_string(w, iso);
}
