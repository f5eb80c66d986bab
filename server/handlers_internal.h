/*
 * handlers_internal.h - what the handler files share: the per-request context, the common
 * answers (handlers_common.c) and each resource's handlers (handlers_books.c, handlers_jobs.c,
 * handlers_alerts.c, handlers_service.c). Private to the handlers; http.c uses handlers.h.
 *
 * Calls go one way: handlers.c -> handlers_{books,jobs,alerts,service}.c -> handlers_common.c, and
 * handlers_books.c -> handlers_jobs.c (a POST /api/books with "refresh": true starts a job).
 *
 * Threads: an hctx belongs to the request thread that made it.
 */
#ifndef BOOKRANK_SERVER_HANDLERS_INTERNAL_H
#define BOOKRANK_SERVER_HANDLERS_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "../common/compiler.h"
#include "../common/isbn.h"
#include "../render/render.h"
#include "body.h"
#include "handlers.h"

/* The statuses the service answers with. */
enum {
    HTTP_OK = 200,
    HTTP_CREATED = 201,
    HTTP_ACCEPTED = 202,
    HTTP_NO_CONTENT = 204,
    HTTP_NOT_MODIFIED = 304,
    HTTP_BAD_REQUEST = 400,
    HTTP_UNAUTHORIZED = 401,
    HTTP_FORBIDDEN = 403,
    HTTP_MISDIRECTED = 421,
    HTTP_NOT_FOUND = 404,
    HTTP_METHOD_NOT_ALLOWED = 405,
    HTTP_CONFLICT = 409,
    HTTP_CONTENT_TOO_LARGE = 413,
    HTTP_URI_TOO_LONG = 414,
    HTTP_UNSUPPORTED_MEDIA_TYPE = 415,
    HTTP_TOO_MANY_REQUESTS = 429,
    HTTP_INTERNAL_SERVER_ERROR = 500,
    HTTP_SERVICE_UNAVAILABLE = 503
};

#define CONTENT_TYPE_JSON "application/json"

/* What /healthz found last (handlers_service.c); shared by the request threads. */
struct handlers_health {
    _Atomic int degraded;          /* -1: not looked yet, 0: writable, 1: not */
    _Atomic int64_t busy_since_ms; /* monotonic; 0: the write lock was free at the last look */
};

/* One request being handled. */
typedef struct hctx {
    const handlers_env *env;
    const srv_request *req;
    srv_response *resp;
    db *store; /* borrowed from env->pool by h_db, given back after the call */
} hctx;

typedef void (*handler_fn)(hctx *h, const char *arg);

/* ---- handlers_common.c: answers every handler gives ---------------------------------------- */

/* The request's store connection (NULL when the store cannot be opened). */
db *h_db(hctx *h);
/* {"error": ...} with status; replaces whatever the response held (headers too). */
void h_error(hctx *h, unsigned status, const char *code, const char *message);
void h_error_details(hctx *h, unsigned status, const char *code, const char *message,
                     const render_detail *details, size_t ndetails);
/* 500 internal "out of memory". */
void h_oom(hctx *h);
/* The answer to a failed store call: 503 unavailable saying what is wrong (busy, disk full,
 * read-only) with Retry-After, or 500 out of memory; the store's message is logged. */
/* The query parameter `name` as a whole number in [lo, hi] into *out: 1, 0 when it is absent
 * (*out untouched), or -1 after answering 400 naming the range. */
int h_query_int(hctx *h, const char *name, long lo, long hi, int *out);
/* A query parameter `name` (value v) that names a book in any id form, resolved into out (the
 * id as stored). 0, 1 when it is not tracked (out holds the parsed id: a removed book still
 * marks a place), or -1 after answering 400 (not an id) or 503 (store). */
int h_query_book(hctx *h, const char *name, const char *v, char out[14]);
void h_store_error(hctx *h, db_err code);
/* Finishes an answer a render_* call (result rc) wrote into the body: on BUF_OK sets status and
 * type; otherwise answers 500 (too_big_message when the answer outgrew its cap). */
void h_finish(hctx *h, int rc, unsigned status, const char *content_type,
              const char *too_big_message);
/* Like h_finish for JSON, ending the body with a newline. */
void h_json(hctx *h, int rc, unsigned status);
/* For a finished 200 answer in the body: adds a strong ETag computed from the body, and when the
 * request's If-None-Match names it (or is "*") turns the answer into a 304 with no body. Call
 * last, after every other header. */
void h_etag(hctx *h);
/* Adds a response header; on failure (a bug: no room) answers 500 and returns -1. */
BR_MUST_CHECK int h_header(hctx *h, const char *name, const char *value);
/* Starts the body afresh with room for max bytes. */
void h_body_cap(hctx *h, size_t max);
/* Reads the ISBN list of the body. 0 with the list (l->n == 0 only when allow_blank and the
 * body is blank), or -1 after answering the error. Free the list after 0. */
BR_MUST_CHECK int h_read_isbns(hctx *h, body_list *l, int allow_blank);
/* Reads the {id} path segment in any id form; -1 after answering 400. */
BR_MUST_CHECK int h_path_id(hctx *h, const char *arg, book_id *out);
/* Reads the {id} path segment and finds the book it names (an ASIN may be attached to a book
 * tracked under its ISBN): 0 with the stored id, or -1 after answering 400, 404 or 503. */
BR_MUST_CHECK int h_path_book(hctx *h, const char *arg, char id[14]);

/* ---- handlers_books.c ------------------------------------------------------------------------ */
void h_books_list(hctx *h, const char *arg);
void h_books_add(hctx *h, const char *arg);
void h_book_get(hctx *h, const char *arg);
void h_book_delete(hctx *h, const char *arg);
void h_book_patch(hctx *h, const char *arg);
void h_book_history(hctx *h, const char *arg);

/* ---- handlers_jobs.c ------------------------------------------------------------------------- */
void h_refresh(hctx *h, const char *arg);
void h_job_get(hctx *h, const char *arg);
/* Starts a refresh of the books ids[0..n) as stored (NULL: every book). 0 with *job and
 * *joined, or -1 after answering the error; then the books with added[i] set (the ones the
 * request has just tracked; added may be NULL) are taken back first, so that a refusal changes
 * nothing. */
BR_MUST_CHECK int h_start_job(hctx *h, const char *const *ids, const int *added, size_t n,
                              db_job *job, int *joined);
void h_jobs_list(hctx *h, const char *arg);
void h_job_cancel(hctx *h, const char *arg);

/* ---- handlers_alerts.c ----------------------------------------------------------------------- */
void h_alerts_list(hctx *h, const char *arg);
void h_alerts_add(hctx *h, const char *arg);
void h_alert_delete(hctx *h, const char *arg);
void h_alert_events(hctx *h, const char *arg);

/* ---- handlers_service.c ---------------------------------------------------------------------- */
void h_export(hctx *h, const char *arg);
void h_config(hctx *h, const char *arg);
void h_healthz(hctx *h, const char *arg);
/* Why the store cannot be written now (read-only file or directory, read-only file system,
 * disk full, not opened, another process holding the write lock for over a minute): 1 with the
 * reason in why[0..len), or 0 when it can. Takes the write lock for a moment to find out. */
int h_store_problem(hctx *h, char *why, size_t len);
void h_metrics(hctx *h, const char *arg);
void h_asset(hctx *h, const struct web_asset *asset);

#endif
