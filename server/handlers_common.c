/*
 * handlers_common.c - the answers every handler gives: errors, the store connection, finishing
 * a rendered body, and reading the two inputs several routes share (an ISBN list body, an
 * {isbn} path segment). Threads: see handlers.h.
 */
#include "handlers_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "../common/log.h"
#include "limits.h"

db *h_db(hctx *h)
{
    if (!h->store && h->env->pool) /* no pool: serving without the store (store_down) */
        h->store = dbpool_take(h->env->pool);
    return h->store;
}

void h_body_cap(hctx *h, size_t max)
{
    buf_free(&h->resp->body);
    buf_init(&h->resp->body, max);
}

/* The answer prepared at start: it needs no memory. */
static void oom_answer(hctx *h)
{
    srv_response *r = h->resp;
    buf_free(&r->body);
    r->nheaders = 0;
    r->status = HTTP_INTERNAL_SERVER_ERROR;
    r->content_type = CONTENT_TYPE_JSON;
    r->fixed = h->env->oom.data;
    r->fixed_len = h->env->oom.len;
}

void h_error_details(hctx *h, unsigned status, const char *code, const char *message,
                     const render_detail *details, size_t ndetails)
{
    srv_response *r = h->resp;
    /* An error can follow a half-written answer: start again, with room for any details. */
    h_body_cap(h, SRV_RESPONSE_MAX);
    r->nheaders = 0;
    r->fixed = NULL;
    r->fixed_len = 0;
    r->dashboard = 0;
    int rc = render_error(&r->body, code, message, details, ndetails);
    if (rc == BUF_OK)
        rc = buf_append(&r->body, "\n", 1);
    if (rc != BUF_OK) {
        oom_answer(h);
        return;
    }
    r->status = status;
    r->content_type = CONTENT_TYPE_JSON;
}

void h_error(hctx *h, unsigned status, const char *code, const char *message)
{
    h_error_details(h, status, code, message, NULL, 0);
}

void h_oom(hctx *h)
{
    h_error(h, HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
}

int h_query_int(hctx *h, const char *name, long lo, long hi, int *out)
{
    const char *v = srv_request_arg(h->req, name);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s must be a whole number from %ld to %ld", name, lo, hi);
        h_error(h, HTTP_BAD_REQUEST, "invalid_query", msg);
        return -1;
    }
    *out = (int)n;
    return 1;
}

int h_query_book(hctx *h, const char *name, const char *v, char out[14])
{
    book_id b;
    char why[160];
    if (id_parse(v, strlen(v), &b, why, sizeof why) != ID_OK) {
        char msg[220];
        snprintf(msg, sizeof msg, "%s must be a book id: %s", name, why);
        h_error(h, HTTP_BAD_REQUEST, "invalid_query", msg);
        return -1;
    }
    db *d = h_db(h);
    db_err rc = d ? db_book_resolve(d, &b, out) : DB_ERROR;
    if (rc == DB_NOTFOUND) {
        snprintf(out, 14, "%s", b.id);
        return 1;
    }
    if (rc != DB_OK) {
        h_store_error(h, rc);
        return -1;
    }
    return 0;
}

void h_store_error(hctx *h, db_err code)
{
    const char *detail = h->store ? db_errmsg(h->store) : "no connection";
    if (code == DB_NOMEM) {
        h_oom(h);
        return;
    }
    log_error("store: %s", detail);
    /* Say what is wrong in words a user can act on; a busy store is worth retrying soon. */
    const char *message = code == DB_BUSY       ? "the database is busy (another process holds its "
                                                  "write lock); try again in a few seconds"
                          : code == DB_FULL     ? "the disk (or the database) is full"
                          : code == DB_READONLY ? "the database is read-only"
                          : code == DB_CORRUPT  ? "the database file is damaged"
                                                : "the database is not available";
    h_error(h, HTTP_SERVICE_UNAVAILABLE, "unavailable", message);
    if (h_header(h, "Retry-After", code == DB_BUSY ? "2" : "30") != 0)
        return;
}

void h_finish(hctx *h, int rc, unsigned status, const char *content_type,
              const char *too_big_message)
{
    if (rc == BUF_TOOBIG)
        h_error(h, HTTP_INTERNAL_SERVER_ERROR, "internal", too_big_message);
    else if (rc != BUF_OK)
        h_oom(h);
    else {
        h->resp->status = status;
        h->resp->content_type = content_type;
    }
}

void h_json(hctx *h, int rc, unsigned status)
{
    if (rc == BUF_OK)
        rc = buf_append(&h->resp->body, "\n", 1);
    h_finish(h, rc, status, CONTENT_TYPE_JSON, "cannot encode the response");
}

/* Whether an If-None-Match value names tag (quoted, as sent in ETag): "*", or a list of entity
 * tags compared weakly (RFC 9110 13.1.2: a W/ prefix is ignored). */
static int etag_listed(const char *list, const char *tag)
{
    size_t taglen = strlen(tag);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p != '"')
            return 0; /* malformed: never a match */
        const char *end = strchr(p + 1, '"');
        if (!end)
            return 0;
        if ((size_t)(end + 1 - p) == taglen && memcmp(p, tag, taglen) == 0)
            return 1;
        p = end + 1;
    }
    return 0;
}

void h_etag(hctx *h)
{
    srv_response *r = h->resp;
    if (r->status != HTTP_OK || r->fixed)
        return;
    /* FNV-1a 64 over the body: a strong validator (the same bytes, the same tag). */
    uint64_t hash = 14695981039346656037u;
    for (size_t i = 0; i < r->body.len; i++) {
        hash ^= (unsigned char)r->body.data[i];
        hash *= 1099511628211u;
    }
    char tag[24];
    snprintf(tag, sizeof tag, "\"%016llx\"", (unsigned long long)hash);
    if (h_header(h, "ETag", tag) != 0)
        return;
    if (h->req->if_none_match && etag_listed(h->req->if_none_match, tag)) {
        buf_reset(&r->body);
        r->status = HTTP_NOT_MODIFIED;
    }
}

int h_header(hctx *h, const char *name, const char *value)
{
    if (srv_response_header(h->resp, name, value) == 0)
        return 0;
    log_error("http: no room for the %s header", name);
    h_error(h, HTTP_INTERNAL_SERVER_ERROR, "internal", "cannot build the response headers");
    return -1;
}

int h_read_isbns(hctx *h, body_list *l, int allow_blank)
{
    const srv_request *r = h->req;
    memset(l, 0, sizeof *l);
    /* Only an empty body means "every book"; an explicit empty list is a mistake. */
    if (allow_blank && body_is_blank(r->body, r->body_len))
        return 0;
    char why[160];
    body_err e = body_parse(r->content_type, r->body, r->body_len, h->env->cfg->max_isbns, l, why,
                            sizeof why);
    switch (e) {
    case BODY_OK:
        if (l->n)
            return 0;
        h_error(h, HTTP_BAD_REQUEST, "invalid_body", "no ids given");
        break;
    case BODY_INVALID_JSON:
        h_error(h, HTTP_BAD_REQUEST, "invalid_json", why);
        break;
    case BODY_INVALID:
        h_error(h, HTTP_BAD_REQUEST, "invalid_body", why);
        break;
    case BODY_INVALID_ISBN:
        h_error_details(h, HTTP_BAD_REQUEST, "invalid_isbn", why, l->details, l->ndetails);
        break;
    case BODY_TOO_MANY:
        h_error(h, HTTP_BAD_REQUEST, "too_many_isbns", why);
        break;
    case BODY_UNSUPPORTED_TYPE:
        h_error(h, HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", why);
        break;
    case BODY_NOMEM:
        h_oom(h);
        break;
    }
    body_list_free(l);
    return -1;
}

int h_path_id(hctx *h, const char *arg, book_id *out)
{
    char why[160];
    if (id_parse(arg, strlen(arg), out, why, sizeof why) == ID_OK)
        return 0;
    render_detail d = {.index = 0, .input = arg, .input_len = strlen(arg), .reason = why};
    h_error_details(h, HTTP_BAD_REQUEST, "invalid_isbn", why, &d, 1);
    return -1;
}

int h_path_book(hctx *h, const char *arg, char id[14])
{
    book_id b;
    if (h_path_id(h, arg, &b))
        return -1;
    db *d = h_db(h);
    db_err rc = d ? db_book_resolve(d, &b, id) : DB_ERROR;
    if (rc == DB_OK)
        return 0;
    if (rc == DB_NOTFOUND)
        h_error(h, HTTP_NOT_FOUND, "book_not_found", "that book is not tracked");
    else
        h_store_error(h, rc);
    return -1;
}
