/*
 * categories.c - the stored form of an observation's category ranks: written with the JSON
 * writer, read back with the small exact decoder below.
 */
#include "render.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/utf8.h"

int render_categories(buf *out, const obs_category *cats, size_t n)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    render_category_list(&w, cats, n);
    return jw_end(&w);
}

/* ---- the decoder ---------------------------------------------------------------------------
 * A small reader for exactly what render_categories writes (an array of objects with an integer
 * "rank" and a string "category", in any order, other members skipped), so that reading history
 * needs no JSON library: jansson's parser drops characters or aborts when an allocation fails.
 * Anything else is "a value this writer never produced": skipped as a whole. */

typedef struct cat_lexer {
    const char *p, *end;
} cat_lexer;

static void skip_ws(cat_lexer *x)
{
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\n' || *x->p == '\t' || *x->p == '\r'))
        x->p++;
}

static int eat(cat_lexer *x, char c)
{
    skip_ws(x);
    if (x->p < x->end && *x->p == c) {
        x->p++;
        return 1;
    }
    return 0;
}

static int hex4(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* A JSON string into out (decoded); 0, -1 malformed, -2 out of memory. */
static int read_string(cat_lexer *x, buf *out)
{
    skip_ws(x);
    if (x->p >= x->end || *x->p != '"')
        return -1;
    x->p++;
    buf_reset(out);
    while (x->p < x->end && *x->p != '"') {
        int rc;
        if (*x->p != '\\') {
            const char *run = x->p;
            while (x->p < x->end && *x->p != '"' && *x->p != '\\')
                x->p++;
            rc = buf_append(out, run, (size_t)(x->p - run));
        } else {
            if (x->end - x->p < 2)
                return -1;
            char e = x->p[1];
            x->p += 2;
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e && simple) {
                static const char to[] = "\"\\/\b\f\n\r\t";
                rc = buf_append(out, &to[simple - "\"\\/bfnrt"], 1);
            } else if (e == 'u') {
                uint32_t cp, lo;
                if (x->end - x->p < 4 || hex4(x->p, &cp))
                    return -1;
                x->p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && x->end - x->p >= 6 && x->p[0] == '\\' &&
                    x->p[1] == 'u' && !hex4(x->p + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    x->p += 6;
                } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                    cp = 0xFFFD;
                }
                unsigned char u[4];
                size_t n = utf8_encode(u, cp);
                rc = buf_append(out, u, n);
            } else {
                return -1;
            }
        }
        if (rc != BUF_OK)
            return rc == BUF_NOMEM ? -2 : -1;
    }
    if (x->p >= x->end)
        return -1;
    x->p++;
    return buf_append(out, "", 1) == BUF_OK ? (out->len--, 0) : -2;
}

static int read_int(cat_lexer *x, int64_t *out)
{
    skip_ws(x);
    const char *q = x->p;
    int neg = q < x->end && *q == '-';
    q += neg;
    if (q >= x->end || *q < '0' || *q > '9')
        return -1;
    int64_t v = 0;
    while (q < x->end && *q >= '0' && *q <= '9') {
        if (v > (INT64_MAX - (*q - '0')) / 10)
            return -1;
        v = v * 10 + (*q++ - '0');
    }
    if (q < x->end && (*q == '.' || *q == 'e' || *q == 'E'))
        return -1; /* not an integer */
    x->p = q;
    *out = neg ? -v : v;
    return 0;
}

/* Skips one scalar value (a string, number, true, false, null); -1 when it is anything else. */
static int skip_scalar(cat_lexer *x, buf *scratch)
{
    skip_ws(x);
    if (x->p < x->end && *x->p == '"')
        return read_string(x, scratch) == 0 ? 0 : -1;
    const char *q = x->p;
    while (q < x->end && (strchr("+-.0123456789eE", *q) || (*q >= 'a' && *q <= 'z')))
        q++;
    if (q == x->p)
        return -1;
    x->p = q;
    return 0;
}

int render_categories_parse(observation *obs, const char *text, size_t len)
{
    cat_lexer x = {text, text + len};
    buf key, name;
    buf_init(&key, (size_t)1 << 20);
    buf_init(&name, (size_t)1 << 20);
    size_t before = obs->ncategories;
    int ret = 0, bad = 0;
    if (!eat(&x, '['))
        bad = 1;
    else if (!eat(&x, ']')) {
        do {
            int64_t rank = 0;
            int have_rank = 0, have_name = 0, r = 0;
            if (!eat(&x, '{')) {
                bad = 1;
                break;
            }
            if (!eat(&x, '}')) {
                do {
                    if ((r = read_string(&x, &key)) != 0 || !eat(&x, ':'))
                        break;
                    if (strcmp(key.data, "rank") == 0 && read_int(&x, &rank) == 0)
                        have_rank = 1;
                    else if (strcmp(key.data, "category") == 0 && (r = read_string(&x, &name)) == 0)
                        have_name = 1;
                    else if (r == -2 || skip_scalar(&x, &key) != 0) {
                        r = r == -2 ? -2 : -1;
                        break;
                    } else {
                        r = 0; /* another member, or one of the wrong type: skipped */
                    }
                } while (eat(&x, ','));
                if (r == -2) {
                    ret = -1;
                    break;
                }
                if (r != 0 || !eat(&x, '}')) {
                    bad = 1;
                    break;
                }
            }
            if (have_rank && have_name && obs_add_category(obs, rank, name.data, name.len) != 0) {
                ret = -1;
                break;
            }
        } while (eat(&x, ','));
        if (!ret && !bad && !eat(&x, ']'))
            bad = 1;
    }
    if (ret || bad) {
        /* Out of memory fails; a foreign value adds nothing. */
        while (obs->ncategories > before)
            free(obs->categories[--obs->ncategories].category);
    }
    buf_free(&key);
    buf_free(&name);
    return ret;
}
