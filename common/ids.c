/* ids.c - book ids (ISBN or ASIN) from pasted text, product URLs and lists (see ids.h). */
#include "ids.h"

#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define INPUT_MAX 2048 /* longer input is not an id (a URL is at most this long) */
#define NORMAL_MAX 64  /* an ISBN with separators and a prefix fits */

const char *id_strerror(id_err err)
{
    switch (err) {
    case ID_OK:
        return "ok";
    case ID_ERR_EMPTY:
        return "empty";
    case ID_ERR_INVALID:
        return "not an ISBN or ASIN";
    case ID_ERR_SHORT_LINK:
        return "a short share link";
    case ID_ERR_URL:
        return "not an Amazon product URL";
    }
    return "invalid";
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int upper(int c)
{
    return c >= 'a' && c <= 'z' ? c - 32 : c;
}

static int is_alnum(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Case-insensitive: does s[0..n) start with the lower-case ASCII word w? */
static int starts_with(const char *s, size_t n, const char *w)
{
    size_t k = strlen(w);
    if (n < k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (lower((unsigned char)s[i]) != w[i])
            return 0;
    return 1;
}

/* Length of a blank at s: ASCII blank space, U+00A0, U+2000-U+200A, U+202F, U+3000; 0 if none. */
static size_t blank_len(const unsigned char *s, size_t n)
{
    if (n >= 1 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\r' || s[0] == '\n' || s[0] == '\f' ||
                   s[0] == '\v'))
        return 1;
    if (n >= 2 && s[0] == 0xc2 && s[1] == 0xa0)
        return 2;
    if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 && ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xaf))
        return 3;
    if (n >= 3 && s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80)
        return 3;
    return 0;
}

/* Length of a Unicode dash at s (U+2010-U+2015, U+2212), 0 if none. */
static size_t dash_len(const unsigned char *s, size_t n)
{
    if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 && s[2] >= 0x90 && s[2] <= 0x95)
        return 3;
    if (n >= 3 && s[0] == 0xe2 && s[1] == 0x88 && s[2] == 0x92)
        return 3;
    return 0;
}

static void trim(const char **s, size_t *n)
{
    const unsigned char *u = (const unsigned char *)*s;
    size_t len = *n, b;
    while (len && (b = blank_len(u, len))) {
        u += b;
        len -= b;
    }
    for (;;) {
        size_t cut = 0;
        for (size_t k = 1; k <= 3 && k <= len && !cut; k++)
            if (blank_len(u + len - k, k) == k)
                cut = k;
        if (!cut)
            break;
        len -= cut;
    }
    *s = (const char *)u;
    *n = len;
}

int asin_valid(const char *s, size_t len)
{
    if (len != ASIN_LEN || s[0] != 'B')
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    return 1;
}

int asin_normalize(const char *s, size_t len, char out[ASIN_LEN + 1])
{
    if (len != ASIN_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)upper((unsigned char)s[i]);
    out[len] = '\0';
    return asin_valid(out, len);
}

static void set_asin(book_id *out, const char *asin)
{
    memset(out, 0, sizeof *out);
    memcpy(out->id, asin, ASIN_LEN + 1);
    out->kind = ID_KIND_ASIN;
}

static void set_isbn(book_id *out, const isbn *b)
{
    memset(out, 0, sizeof *out);
    memcpy(out->id, b->isbn13, sizeof b->isbn13);
    memcpy(out->isbn13, b->isbn13, sizeof b->isbn13);
    memcpy(out->isbn10, b->isbn10, sizeof b->isbn10);
    out->kind = ID_KIND_ISBN;
}

/* A 10-character product id from a URL: the ISBN-10 it is, or an ASIN. */
static id_err product_id(const char *p, book_id *out, char *why, size_t whylen)
{
    isbn b;
    char asin[ASIN_LEN + 1];
    if (isbn_parse(p, ASIN_LEN, &b) == ISBN_OK) {
        set_isbn(out, &b);
        return ID_OK;
    }
    if (asin_normalize(p, ASIN_LEN, asin)) {
        set_asin(out, asin);
        return ID_OK;
    }
    why_printf(why, whylen, "the product id '%.10s' in the URL is neither an ISBN-10 nor an ASIN",
               p);
    return ID_ERR_INVALID;
}

/* Hosts of Amazon's short share links, which name no product until followed. */
static int short_link_host(const char *h, size_t n)
{
    static const char *const hosts[] = {"a.co",      "amzn.to",  "amzn.eu",
                                        "amzn.asia", "amzn.com", NULL};
    for (size_t i = 0; hosts[i]; i++)
        if (n == strlen(hosts[i]) && starts_with(h, n, hosts[i]))
            return 1;
    return 0;
}

static id_err parse_url(const char *s, size_t n, book_id *out, char *why, size_t whylen)
{
    for (size_t k = 0; k < n; k++)
        if (blank_len((const unsigned char *)s + k, n - k)) {
            why_printf(why, whylen, "a URL with blank space in it (one URL per entry)");
            return ID_ERR_URL;
        }
    size_t i = 0;
    if (starts_with(s, n, "https://"))
        i = 8;
    else if (starts_with(s, n, "http://"))
        i = 7;
    size_t host = i;
    while (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#' && s[i] != ':')
        i++;
    const char *h = s + host;
    size_t hn = i - host;
    if (short_link_host(h, hn)) {
        why_printf(why, whylen,
                   "short share links like %.*s/... cannot be read: open it in a browser "
                   "and paste the product page's address (with /dp/ in it)",
                   (int)hn, h);
        return ID_ERR_SHORT_LINK;
    }
    static const char *const sub[] = {"www.", "smile.", "m.", NULL};
    for (size_t k = 0; sub[k]; k++)
        if (starts_with(h, hn, sub[k])) {
            h += strlen(sub[k]);
            hn -= strlen(sub[k]);
            break;
        }
    if (!starts_with(h, hn, "amazon.") || hn <= 7) {
        why_printf(why, whylen,
                   "a URL that is not an Amazon product page (give an ISBN, an ASIN or an "
                   "Amazon /dp/ link)");
        return ID_ERR_URL;
    }
    static const char *const markers[] = {
        "/dp/", "/gp/product/", "/gp/aw/d/", "/exec/obidos/asin/", "/o/asin/", NULL};
    for (size_t p = i; p < n; p++) {
        if (s[p] == '?' || s[p] == '#')
            break;
        for (size_t k = 0; markers[k]; k++) {
            size_t ml = strlen(markers[k]);
            if (!starts_with(s + p, n - p, markers[k]))
                continue;
            size_t at = p + ml, e = at;
            while (e < n && is_alnum((unsigned char)s[e]))
                e++;
            if (e - at == ASIN_LEN && (e == n || strchr("/?#&;", s[e])))
                return product_id(s + at, out, why, whylen);
        }
    }
    why_printf(why, whylen, "this Amazon URL names no product (expected /dp/ID or /gp/product/ID)");
    return ID_ERR_URL;
}

static int looks_like_url(const char *s, size_t n)
{
    if (starts_with(s, n, "http://") || starts_with(s, n, "https://") ||
        starts_with(s, n, "www.") || starts_with(s, n, "a.co/") || starts_with(s, n, "amzn."))
        return 1;
    return starts_with(s, n, "amazon.") && memchr(s, '/', n) != NULL;
}

id_err id_parse(const char *in, size_t len, book_id *out, char *why, size_t whylen)
{
    why_printf(why, whylen, "%s", "");
    trim(&in, &len);
    if (len == 0) {
        why_printf(why, whylen, "empty");
        return ID_ERR_EMPTY;
    }
    if (len > INPUT_MAX) {
        why_printf(why, whylen, "too long to be an ISBN, an ASIN or a product URL");
        return ID_ERR_INVALID;
    }
    if (looks_like_url(in, len))
        return parse_url(in, len, out, why, whylen);

    /* An "ISBN", "ISBN-13:", "isbn10 " prefix is a label, not part of the number. */
    size_t i = 0;
    if (starts_with(in, len, "isbn")) {
        i = 4;
        if (i < len && (in[i] == '-' || in[i] == ' '))
            i++;
        if (starts_with(in + i, len - i, "13") || starts_with(in + i, len - i, "10"))
            i += 2;
        if (i < len && in[i] == ':')
            i++;
    }
    /* Unicode dashes and spaces become the ASCII separators isbn.h knows. */
    char norm[NORMAL_MAX];
    size_t n = 0;
    const unsigned char *u = (const unsigned char *)in;
    while (i < len) {
        size_t d = dash_len(u + i, len - i), b = d ? 0 : blank_len(u + i, len - i);
        if (n + 1 >= sizeof norm) {
            why_printf(why, whylen, "too long to be an ISBN or an ASIN");
            return ID_ERR_INVALID;
        }
        if (d || b) {
            norm[n++] = d ? '-' : ' ';
            i += d + b;
        } else {
            norm[n++] = in[i++];
        }
    }
    char asin[ASIN_LEN + 1];
    if (n == ASIN_LEN && (norm[0] == 'B' || norm[0] == 'b')) {
        if (asin_normalize(norm, n, asin)) {
            set_asin(out, asin);
            return ID_OK;
        }
        why_printf(why, whylen, "not an ASIN: an ASIN is B and nine letters or digits");
        return ID_ERR_INVALID;
    }
    isbn b;
    char reason[160];
    if (isbn_parse_explain(norm, n, &b, reason, sizeof reason) != ISBN_OK) {
        why_printf(why, whylen, "%s", reason);
        return ID_ERR_INVALID;
    }
    set_isbn(out, &b);
    return ID_OK;
}

/* One piece between separators: one entry when it is one id as a whole, else its blank-separated
 * words. Returns non-zero when fn asked to stop. */
static int emit_piece(const char *s, size_t n, id_entry_fn fn, void *ctx, size_t *index)
{
    trim(&s, &n);
    if (n == 0)
        return 0;
    book_id probe;
    if (id_parse(s, n, &probe, NULL, 0) == ID_OK)
        return fn(ctx, (*index)++, s, n);
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t b;
        while (i < n && (b = blank_len(u + i, n - i)))
            i += b;
        size_t start = i;
        while (i < n && !blank_len(u + i, n - i))
            i++;
        if (i > start && fn(ctx, (*index)++, s + start, i - start))
            return 1;
    }
    return 0;
}

size_t id_list_split(const char *text, size_t len, id_entry_fn fn, void *ctx)
{
    size_t index = 0, start = 0, i = 0;
    const unsigned char *u = (const unsigned char *)text;
    while (i < len) {
        /* A URL's query may hold commas; it runs to the next blank or line end. */
        int token_start = i == start || blank_len(u + i - 1, 1);
        if (token_start && looks_like_url(text + i, len - i)) {
            while (i < len && text[i] != '\n' && !blank_len(u + i, len - i))
                i++;
            continue;
        }
        if (text[i] == '\n' || text[i] == ',' || text[i] == ';') {
            if (emit_piece(text + start, i - start, fn, ctx, &index))
                return index;
            start = i + 1;
        }
        i++;
    }
    emit_piece(text + start, len - start, fn, ctx, &index);
    return index;
}
