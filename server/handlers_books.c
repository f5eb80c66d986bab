/*
 * handlers_books.c - /api/books: list, add, one book (answered from the cache while the store
 * has not changed), change its fields, delete, history. Threads: see handlers.h.
 */
#include "handlers_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/observation.h"
#include "../common/timeutil.h"
#include "limits.h"

/* Appends s percent-encoded for a query (everything but the unreserved characters). */
static int query_escape(buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = BUF_OK;
    for (const unsigned char *p = (const unsigned char *)s; rc == BUF_OK && *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p)) {
            rc = buf_append(out, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = buf_append(out, e, 3);
        }
    }
    return rc;
}

/* The Link header of the next page: the same query with limit and after replaced. 0, or -1
 * after answering the error. */
static int next_link(hctx *h, int limit, const char *last)
{
    buf link;
    buf_init(&link, SRV_HEADER_VALUE_MAX);
    int rc = buf_printf(&link, "</api/books?limit=%d&after=%s", limit, last);
    for (size_t i = 0; rc == BUF_OK && i < h->req->nargs; i++) {
        const srv_arg *a = &h->req->args[i];
        if (!a->name || strcasecmp(a->name, "limit") == 0 || strcasecmp(a->name, "after") == 0)
            continue;
        rc = buf_append(&link, "&", 1);
        rc = rc ? rc : query_escape(&link, a->name);
        if (!rc && a->value) {
            rc = buf_append(&link, "=", 1);
            rc = rc ? rc : query_escape(&link, a->value);
        }
    }
    rc = rc ? rc : buf_append(&link, ">; rel=\"next\"", sizeof ">; rel=\"next\"");
    if (rc == BUF_TOOBIG)
        h_error(h, HTTP_BAD_REQUEST, "invalid_query", "the query is too long to page through");
    else if (rc != BUF_OK)
        h_oom(h);
    int ret = rc == BUF_OK ? h_header(h, "Link", link.data) : -1;
    buf_free(&link);
    return ret;
}

/* ?limit= and ?after= of GET /api/books into the filter (after in after_id). 0, or -1 after
 * answering 400 (or 503). */
static int page_args(hctx *h, db_book_filter *f, char after_id[14])
{
    const char *after = srv_request_arg(h->req, "after");
    if (h_query_int(h, "limit", SRV_BOOKS_LIMIT_MIN, SRV_BOOKS_LIMIT_MAX, &f->limit) < 0)
        return -1;
    if (after) {
        /* An ASIN names the book it is attached to; a book removed since the last page still
         * marks the place (its id as written). */
        if (h_query_book(h, "after", after, after_id) < 0)
            return -1;
        f->after = after_id;
    }
    return 0;
}

void h_books_list(hctx *h, const char *arg)
{
    (void)arg;
    db_book_filter f = {.status = srv_request_arg(h->req, "status"),
                        .source = srv_request_arg(h->req, "source"),
                        .tag = srv_request_arg(h->req, "tag"),
                        .work = srv_request_arg(h->req, "work"),
                        .q = srv_request_arg(h->req, "q")};
    if (f.status && obs_status_parse(f.status) < 0) {
        h_error(h, HTTP_BAD_REQUEST, "invalid_query",
                "status must be ok, no_rank, not_found, blocked or error");
        return;
    }
    char after_id[14];
    if (page_args(h, &f, after_id))
        return;
    int limit = f.limit;
    if (limit)
        f.limit = limit + 1; /* one more says whether another page follows */
    db *d = h_db(h);
    db_book *books = NULL;
    size_t n = 0;
    db_err rc = d ? db_books_list(d, &f, &books, &n) : DB_ERROR;
    if (rc != DB_OK) {
        h_store_error(h, rc);
        return;
    }
    size_t shown = limit && n > (size_t)limit ? (size_t)limit : n;
    int more = shown < n;
    if (more && next_link(h, limit, books[shown - 1].id)) {
        db_books_free(books, n);
        return;
    }
    int brc = render_books(&h->resp->body, books, shown, RENDER_COMPACT);
    db_books_free(books, n);
    h_json(h, brc, HTTP_OK);
    h_etag(h);
}

void h_books_add(hctx *h, const char *arg)
{
    (void)arg;
    body_list l;
    if (h_read_isbns(h, &l, 0))
        return;
    int *added = calloc(l.n, sizeof *added);
    char(*stored)[14] = calloc(l.n, sizeof *stored);
    const char **ids = calloc(l.n, sizeof *ids);
    db *d = h_db(h);
    db_job job;
    int joined;
    db_err rc;
    if (!added || !ids || !stored) {
        h_oom(h);
        goto done;
    }
    if (!d || (rc = db_books_add(d, l.items, l.n, added, stored)) != DB_OK) {
        h_store_error(h, d ? rc : DB_ERROR);
        goto done;
    }
    for (size_t i = 0; i < l.n; i++)
        ids[i] = stored[i];
    /* Refused (429, 503): h_start_job takes back the books added here (a refusal adds none). */
    if (l.refresh && h_start_job(h, ids, added, l.n, &job, &joined) != 0)
        goto done;
    size_t nadded = 0;
    for (size_t i = 0; i < l.n; i++)
        nadded += added[i] != 0;
    int brc = render_books_added(&h->resp->body, ids, added, l.n, l.refresh ? &job : NULL);
    h_json(h, brc, nadded ? HTTP_CREATED : HTTP_OK);
done:
    free(ids);
    free(stored);
    free(added);
    body_list_free(&l);
}

void h_book_get(hctx *h, const char *arg)
{
    book_id b;
    if (h_path_id(h, arg, &b))
        return;
    resp_cache *cache = h->env->cache;
    buf *out = &h->resp->body;
    h_body_cap(h, SRV_BOOK_MAX);
    /* The most frequent read: answered from the cache while the store has not changed. The key
     * is the id as asked (an ASIN may name a book tracked under its ISBN). */
    uint64_t version = cache_version(cache);
    if (cache_get(cache, b.id, version, out)) {
        h_finish(h, BUF_OK, HTTP_OK, CONTENT_TYPE_JSON, NULL);
        h_etag(h);
        return;
    }
    char id[14];
    if (h_path_book(h, arg, id))
        return;
    db_book book;
    db_err found = db_book_get(h_db(h), id, &book);
    if (found == DB_NOTFOUND) {
        h_error(h, HTTP_NOT_FOUND, "book_not_found", "that book is not tracked");
        return;
    }
    if (found != DB_OK) {
        h_store_error(h, found);
        return;
    }
    int rc = render_book_doc(out, &book, RENDER_COMPACT);
    db_book_clear(&book);
    if (rc == BUF_OK)
        rc = buf_append(out, "\n", 1);
    if (rc == BUF_OK)
        cache_put(cache, b.id, version, out->data, out->len);
    h_finish(h, rc, HTTP_OK, CONTENT_TYPE_JSON, "cannot encode the book");
    h_etag(h);
}

/* Whether every source a patch names is one this server reads. */
static const char *unknown_source(const handlers_env *env, const db_book_patch *p)
{
    for (size_t i = 0; (p->set & DB_SET_SOURCES) && p->sources && i < p->nsources; i++) {
        size_t k = 0;
        while (k < env->cfg->nsources && strcmp(env->cfg->source_names[k], p->sources[i]) != 0)
            k++;
        if (k == env->cfg->nsources)
            return p->sources[i];
    }
    for (size_t i = 0; (p->set & DB_SET_ASINS) && i < p->nasins; i++) {
        size_t k = 0;
        while (k < env->cfg->nsources && strcmp(env->cfg->source_names[k], p->asins[i].source) != 0)
            k++;
        if (k == env->cfg->nsources)
            return p->asins[i].source;
    }
    return NULL;
}

void h_book_patch(hctx *h, const char *arg)
{
    char id[14];
    if (h_path_book(h, arg, id))
        return;
    body_patch p;
    char why[200];
    body_err e = body_parse_patch(h->req->content_type, h->req->body, h->req->body_len, &p, why,
                                  sizeof why);
    if (e != BODY_OK) {
        if (e == BODY_NOMEM)
            h_oom(h);
        else
            h_error(h, e == BODY_UNSUPPORTED_TYPE ? HTTP_UNSUPPORTED_MEDIA_TYPE : HTTP_BAD_REQUEST,
                    e == BODY_INVALID_JSON       ? "invalid_json"
                    : e == BODY_UNSUPPORTED_TYPE ? "unsupported_media_type"
                                                 : "invalid_body",
                    why);
        return;
    }
    const char *unknown = unknown_source(h->env, &p.patch);
    if (unknown) {
        char msg[160];
        snprintf(msg, sizeof msg, "%.64s is not a source this server reads", unknown);
        h_error(h, HTTP_BAD_REQUEST, "invalid_body", msg);
        body_patch_free(&p);
        return;
    }
    db *d = h_db(h);
    db_err rc = db_book_update(d, id, &p.patch);
    body_patch_free(&p);
    if (rc == DB_CONFLICT) {
        h_error(h, HTTP_CONFLICT, "conflict", db_errmsg(d));
        return;
    }
    if (rc == DB_NOTFOUND) {
        h_error(h, HTTP_NOT_FOUND, "book_not_found", "that book is not tracked");
        return;
    }
    if (rc != DB_OK) {
        h_store_error(h, rc);
        return;
    }
    db_book book;
    if ((rc = db_book_get(d, id, &book)) != DB_OK) {
        h_store_error(h, rc);
        return;
    }
    int brc = render_book_doc(&h->resp->body, &book, RENDER_COMPACT);
    db_book_clear(&book);
    h_json(h, brc, HTTP_OK);
}

void h_book_delete(hctx *h, const char *arg)
{
    char id[14];
    if (h_path_book(h, arg, id))
        return;
    db_err rc = db_book_remove(h_db(h), id);
    if (rc == DB_NOTFOUND)
        h_error(h, HTTP_NOT_FOUND, "book_not_found", "that book is not tracked");
    else if (rc != DB_OK)
        h_store_error(h, rc);
    else
        h_finish(h, BUF_OK, HTTP_NO_CONTENT, NULL, NULL);
}

/* An ISBN 8601 time query argument into *ms; -1 after answering 400. */
static int time_arg(hctx *h, const char *name, int64_t *ms)
{
    const char *v = srv_request_arg(h->req, name);
    if (!v)
        return 0;
    if (time_parse_iso(v, ms) == 0)
        return 0;
    char msg[120];
    snprintf(msg, sizeof msg, "%s must be an ISO 8601 time like 2026-11-24T12:00:00Z", name);
    h_error(h, HTTP_BAD_REQUEST, "invalid_query", msg);
    return -1;
}

void h_book_history(hctx *h, const char *arg)
{
    char id[14];
    if (h_path_book(h, arg, id))
        return;
    db_history_query q = {.source = srv_request_arg(h->req, "source"),
                          .limit = SRV_HISTORY_LIMIT_DEFAULT};
    if (time_arg(h, "since", &q.since_ms) || time_arg(h, "before", &q.before_ms) ||
        h_query_int(h, "limit", SRV_HISTORY_LIMIT_MIN, SRV_HISTORY_LIMIT_MAX, &q.limit) < 0)
        return;
    db *d = h_db(h);
    observation *obs = NULL;
    size_t n = 0;
    db_err found = db_history(d, id, &q, &obs, &n);
    if (found == DB_NOTFOUND) {
        h_error(h, HTTP_NOT_FOUND, "book_not_found", "that book is not tracked");
        return;
    }
    if (found != DB_OK) {
        h_store_error(h, found);
        return;
    }
    int rc = render_history(&h->resp->body, id, strlen(id) == 13 ? id : NULL, obs, n,
                            RENDER_COMPACT);
    db_observations_free(obs, n);
    h_json(h, rc, HTTP_OK);
    h_etag(h);
}
