/*
 * body.h - the ISBN lists of POST /api/books and POST /api/refresh, read from a request body.
 * Private to server/ (tests and the body fuzzer use it too; no library header: jansson stays in
 * body.c). No HTTP here: the handlers decide what status each error gets.
 *
 * Media types (parameters such as "; charset=utf-8" are ignored, case and blanks too):
 *  - application/json: an object {"isbns": ["...", ...], "refresh": true|false}; duplicate keys
 *    are an error; "refresh" is optional;
 *  - text/plain: entries separated by newlines and commas, blank space around them trimmed,
 *    empty entries skipped.
 * Every entry must be an ISBN; one bad entry fails the whole list (nothing is changed), and
 * each bad entry is named in the details. More than cap entries is BODY_TOO_MANY, whatever the
 * entries are.
 *
 * Threads: pure functions; a body_list belongs to its caller.
 */
#ifndef BOOKRANK_SERVER_BODY_H
#define BOOKRANK_SERVER_BODY_H

#include <stddef.h>

#include "../common/compiler.h"
#include "../common/isbn.h"
#include "../render/render.h"

typedef enum body_err {
    BODY_OK = 0,
    BODY_INVALID_JSON,           /* not JSON (why: the parser's message) */
    BODY_INVALID,                /* JSON, but not {"isbns": [...], "refresh": bool} */
    BODY_INVALID_ISBN,           /* some entries are not ISBNs: see details */
    BODY_TOO_MANY,               /* more than cap entries */
    BODY_UNSUPPORTED_TYPE,       /* neither application/json nor text/plain */
    BODY_NOMEM
} body_err;

/* A short stable description ("invalid JSON", ...). */
const char *body_strerror(body_err err);

typedef struct body_detail_text body_detail_text;

typedef struct body_list {
    isbn *items;                 /* owned: the entries in order (on BODY_OK) */
    size_t n;
    int refresh;                 /* JSON "refresh": true */
    /* On BODY_INVALID_ISBN: one entry per bad input, ready for render_error. An input that was
     * not text (a JSON number, object...) has input NULL. The strings are owned by the list. */
    render_detail *details;
    size_t ndetails;
    body_detail_text *text;      /* owned storage behind details */
} body_list;

/*
 * Parses body[0..len) (not NUL-terminated) sent with Content-Type content_type (NULL when
 * absent), keeping at most cap entries. BODY_OK with the list, or an error with a message in
 * why[0..whylen) (why may be NULL) and, for BODY_INVALID_ISBN, the details. Free the list with
 * body_list_free either way.
 */
BR_MUST_CHECK body_err body_parse(const char *content_type, const char *body, size_t len,
                                  size_t cap, body_list *out, char *why, size_t whylen);
/* Frees and empties the list; NULL and an empty list are no-ops. */
void body_list_free(body_list *l);

/* The media type of a Content-Type value: parameters dropped, blanks removed, lower case, into
 * out[0..outlen) (cut to fit); "" for NULL. */
void body_media_type(const char *content_type, char *out, size_t outlen);
/* Whether body[0..len) holds nothing but blank space ("no body": refresh every book). */
int body_is_blank(const char *body, size_t len);

#endif
