/* utf8.c - UTF-8 validation, encoding and the U+FFFD sanitiser (see utf8.h). */
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
    if (avail == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80) {
        if (cp)
            *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    if (cp)
        *cp = v;
    return n;
}

size_t utf8_encode(unsigned char out[4], uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

int utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = utf8_decode(u + i, n - i, NULL);
        if (!len)
            return 0;
        i += len;
    }
    return 1;
}

int utf8_sanitize_append(buf *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t keep = out->len;
    size_t run = 0; /* start of the current run of valid bytes */
    int rc = BUF_OK;
    for (size_t i = 0; i < n;) {
        size_t len = u[i] < 0x80 ? 1 : utf8_decode(u + i, n - i, NULL);
        if (len) {
            i += len;
            continue;
        }
        if ((rc = buf_append(out, s + run, i - run)) != BUF_OK ||
            (rc = buf_append(out, UTF8_REPLACEMENT, 3)) != BUF_OK)
            break;
        run = ++i;
    }
    if (rc == BUF_OK)
        rc = buf_append(out, s + run, n - run);
    if (rc != BUF_OK) {
        out->len = keep;
        if (out->data)
            out->data[keep] = '\0';
    }
    return rc;
}

char *utf8_sanitize_dup(const char *s, size_t n)
{
    buf b;
    buf_init(&b, n <= (SIZE_MAX - 1) / 3 ? n * 3 : SIZE_MAX - 1);
    if (utf8_sanitize_append(&b, s, n) != BUF_OK) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, NULL);
}

size_t utf8_truncate(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    const unsigned char *u = (const unsigned char *)s;
    size_t cut = max;
    /* Step back over continuation bytes to the start of the character that would be cut: at
     * most three, the longest a valid character has (a run of stray continuation bytes is
     * invalid text, cut where it is). */
    while (cut > 0 && max - cut < 3 && (u[cut] & 0xc0) == 0x80)
        cut--;
    if ((u[cut] & 0xc0) == 0x80)
        cut = max;
    return cut;
}

int utf8_plain_text(const char *s, size_t n, int lines)
{
    if (!utf8_valid(s, n))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(lines && (c == '\n' || c == '\t'))) || c == 0x7f)
            return 0;
    }
    return 1;
}
