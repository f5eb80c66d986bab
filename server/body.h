/*
 * body.h - the id lists of POST /api/books and POST /api/refresh, the changes of PATCH
 * /api/books/{id}, and the alert rules of POST /api/alerts, read from a request body.
 * Private to server/ (tests and the body fuzzer use it too; no library header: jansson stays in
 * body.c). No HTTP here: the handlers decide what status each error gets.
 *
 * Media types (parameters such as "; charset=utf-8" are ignored, case and blanks too):
 *  - application/json: an object {"isbns": ["...", ...], "refresh": true|false} ("ids" for
 *    "isbns" works too); duplicate keys are an error; "refresh" is optional;
 *  - text/plain: the list rule of SPEC §1 (common/ids.h: newlines, commas and semicolons
 *    separate; a line that is not one id is split at blank space).
 * Every entry must be an id in one of its forms (ISBN, ASIN, product URL); one bad entry fails
 * the whole list (nothing is changed), and
 * each bad entry is named in the details. More than cap entries is BODY_TOO_MANY, whatever the
 * entries are.
 *
 * Threads: pure functions; a body_list belongs to its caller.
 */
#ifndef BOOKRANK_SERVER_BODY_H
#define BOOKRANK_SERVER_BODY_H

#include <stddef.h>

#include "../alerts/alerts.h"
#include "../common/compiler.h"
#include "../common/ids.h"
#include "../db/db.h"
#include "../render/render.h"

typedef enum body_err {
    BODY_OK = 0,
    BODY_INVALID_JSON,     /* not JSON (why: the parser's message) */
    BODY_INVALID,          /* JSON, but not {"isbns": [...], "refresh": bool} */
    BODY_INVALID_ISBN,     /* some entries are not ISBNs: see details */
    BODY_TOO_MANY,         /* more than cap entries */
    BODY_UNSUPPORTED_TYPE, /* neither application/json nor text/plain */
    BODY_NOMEM
} body_err;

/* A short stable description ("invalid JSON", ...). */
const char *body_strerror(body_err err);

typedef struct body_detail_text body_detail_text;

typedef struct body_list {
    book_id *items; /* owned: the entries in order (on BODY_OK) */
    size_t n;
    int refresh; /* JSON "refresh": true */
    /* On BODY_INVALID_ISBN: one entry per bad input, ready for render_error. An input that was
     * not text (a JSON number, object...) has input NULL. The strings are owned by the list. */
    render_detail *details;
    size_t ndetails;
    body_detail_text *text; /* owned storage behind details */
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

/* ---- PATCH /api/books/{id} -------------------------------------------------------------------
 * A JSON object with any of: "asin" (string or null), "asins" ({"amazon.de": "B0..."} or null),
 * "sources" (array of names or null = every source), "work", "note" (string or null), "format"
 * (paperback, hardcover, kindle, audiobook, other, or null), "tags" (array of strings or null).
 * Any other key is an error. ASINs are checked and stored upper-case; texts must be valid UTF-8
 * without control characters and are cut nowhere: too long is an error. */
#define BODY_MAX_TAGS DB_MAX_TAGS
#define BODY_TAG_MAX DB_TAG_MAX
#define BODY_WORK_MAX DB_WORK_MAX
#define BODY_NOTE_MAX DB_NOTE_MAX
#define BODY_MAX_ASINS DB_MAX_ASINS

typedef struct body_patch {
    db_book_patch patch; /* points into the storage below */
    char asin[11];
    db_asin asins[BODY_MAX_ASINS];
    char *strings; /* owned: the texts patch points at */
    const char *tags[BODY_MAX_TAGS];
    const char *sources[64];
} body_patch;

/* Parses a PATCH body. BODY_OK with *out filled (free with body_patch_free), or BODY_INVALID_JSON,
 * BODY_INVALID, BODY_UNSUPPORTED_TYPE or BODY_NOMEM with the reason in why. */
BR_MUST_CHECK body_err body_parse_patch(const char *content_type, const char *body, size_t len,
                                        body_patch *out, char *why, size_t whylen);
void body_patch_free(body_patch *p);

/* ---- POST /api/alerts -------------------------------------------------------------------------
 * A JSON object {"kind": K, "value": V, "book": ID or null, "source": NAME or null, "notify":
 * [TARGET, ...]} (SPEC §5). "value" is a number, required except for new_best (which takes none:
 * leave it out or give null); "book" and "source" may be left out (every book, every source);
 * any other key is an error. The rule is checked with alert_rule_check (kind, value, targets),
 * and the reason says which key is wrong. The book is read in any id form (BODY_INVALID_ISBN with
 * one detail when it is not an id) but not looked up: the handler resolves it to the stored id. */
typedef struct body_alert {
    db_alert_rule rule; /* kind, value, source and targets set; book_id "" */
    int has_book;
    book_id book;                     /* the book as parsed, when has_book */
    char *targets[ALERT_MAX_TARGETS]; /* owned copies; rule.targets points here */
    render_detail detail; /* on BODY_INVALID_ISBN: the bad book (points into the below) */
    char detail_input[RENDER_ECHO_MAX + 1];
    char detail_reason[160];
} body_alert;

/* Parses a POST /api/alerts body. BODY_OK with *out filled (free with body_alert_free), or
 * BODY_INVALID_JSON, BODY_INVALID (why names the key), BODY_INVALID_ISBN (a bad "book"),
 * BODY_UNSUPPORTED_TYPE (not application/json) or BODY_NOMEM. */
BR_MUST_CHECK body_err body_parse_alert(const char *content_type, const char *body, size_t len,
                                        body_alert *out, char *why, size_t whylen);
/* Frees the copies; NULL is a no-op. */
void body_alert_free(body_alert *a);

/* The media type of a Content-Type value: parameters dropped, blanks removed, lower case, into
 * out[0..outlen) (cut to fit); "" for NULL. */
void body_media_type(const char *content_type, char *out, size_t outlen);
/* Whether body[0..len) holds nothing but blank space ("no body": refresh every book). */
int body_is_blank(const char *body, size_t len);

#endif
