/*
 * handlers_books.c - /api/books: list, add, one book (answered from the cache while the store
 * has not changed), delete, history. Threads: see handlers.h.
 */
#include "handlers_internal.h"

#include <stdlib.h>

#include "../common/observation.h"
#include "../common/timeutil.h"
#include "limits.h"

void h_books_list(hctx *h, const char *arg)
{
    (void)arg;
    const char *status = srv_request_arg(h->req, "status");
    const char *source = srv_request_arg(h->req, "source");
    if (status && obs_status_parse(status) < 0) {
        h_error(h, HTTP_BAD_REQUEST, "invalid_query",
                "status must be ok, no_rank, not_found, blocked or error");
        return;
    }
    db *d = h_db(h);
    db_book *books = NULL;
    size_t n = 0;
    db_book_filter f = {.status = status, .source = source};
    if (!d || db_books_list(d, &f, &books, &n) != DB_OK) {
        h_store_error(h);
        return;
    }
    int rc = render_books(&h->resp->body, books, n, RENDER_COMPACT);
    db_books_free(books, n);
    h_json(h, rc, HTTP_OK);
}

void h_books_add(hctx *h, const char *arg)
{
    (void)arg;
    body_list l;
    if (h_read_isbns(h, &l, 0))
        return;
    int *added = calloc(l.n, sizeof *added);
    const char **ids = calloc(l.n, sizeof *ids);
    db *d = h_db(h);
    db_job job;
    int joined;
    if (!added || !ids)
        h_oom(h);
    else if (!d || db_books_add(d, l.items, l.n, added) != DB_OK)
        h_store_error(h);
    else if (!l.refresh || h_start_job(h, l.items, l.n, &job, &joined) == 0) {
        for (size_t i = 0; i < l.n; i++)
            ids[i] = l.items[i].isbn13;
        int rc = render_books_added(&h->resp->body, ids, added, l.n, l.refresh ? &job : NULL);
        h_json(h, rc, HTTP_CREATED);
    }
    free(ids);
    free(added);
    body_list_free(&l);
}

void h_book_get(hctx *h, const char *arg)
{
    isbn b;
    if (h_path_isbn(h, arg, &b))
        return;
    resp_cache *cache = h->env->cache;
    buf *out = &h->resp->body;
    h_body_cap(h, SRV_BOOK_MAX);
    /* The most frequent read: answered from the cache while the store has not changed. */
    uint64_t version = cache_version(cache);
    if (cache_get(cache, b.isbn13, version, out)) {
        h_finish(h, BUF_OK, HTTP_OK, CONTENT_TYPE_JSON, NULL);
        return;
    }
    db *d = h_db(h);
    if (!d) {
        h_store_error(h);
        return;
    }
    db_book book;
    int found = db_book_get(d, b.isbn13, &book);
    if (found == DB_NOTFOUND) {
        h_error(h, HTTP_NOT_FOUND, "book_not_found", "that book is not tracked");
        return;
    }
    if (found != DB_OK) {
        h_store_error(h);
        return;
    }
    int rc = render_book_doc(out, &book, RENDER_COMPACT);
    db_book_clear(&book);
    if (rc == BUF_OK)
        rc = buf_append(out, "\n", 1);
    if (rc == BUF_OK)
        cache_put(cache, b.isbn13, version, out->data, out->len);
    h_finish(h, rc, HTTP_OK, CONTENT_TYPE_JSON, "cannot encode the book");
}

void h_book_delete(hctx *h, const char *arg)
{
    isbn b;
    if (h_path_isbn(h, arg, &b))
        return;
    db *d = h_db(h);
    if (!d) {
        h_store_error(h);
        return;
    }
    int rc = db_book_remove(d, b.isbn13);
    if (rc == DB_NOTFOUND)
        h_error(h, HTTP_NOT_FOUND, "book_not_found", "that book is not tracked");
    else if (rc != DB_OK)
        h_store_error(h);
    else
        h_finish(h, BUF_OK, HTTP_NO_CONTENT, NULL, NULL);
}

void h_book_history(hctx *h, const char *arg)
{
    isbn b;
    if (h_path_isbn(h, arg, &b))
        return;
    db_history_query q = {.source = srv_request_arg(h->req, "source"),
                          .limit = SRV_HISTORY_LIMIT_DEFAULT};
    const char *since = srv_request_arg(h->req, "since");
    const char *limit = srv_request_arg(h->req, "limit");
    if (since && time_parse_iso(since, &q.since_ms)) {
        h_error(h, HTTP_BAD_REQUEST, "invalid_query",
                "since must be an ISO 8601 time like 2026-11-24T12:00:00Z");
        return;
    }
    if (limit) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (end == limit || *end || v < SRV_HISTORY_LIMIT_MIN || v > SRV_HISTORY_LIMIT_MAX) {
            h_error(h, HTTP_BAD_REQUEST, "invalid_query",
                    "limit must be a whole number from " SRV_STR(SRV_HISTORY_LIMIT_MIN) " to "
                        SRV_STR(SRV_HISTORY_LIMIT_MAX));
            return;
        }
        q.limit = (int)v;
    }
    db *d = h_db(h);
    if (!d) {
        h_store_error(h);
        return;
    }
    observation *obs = NULL;
    size_t n = 0;
    int found = db_history(d, b.isbn13, &q, &obs, &n);
    if (found == DB_NOTFOUND) {
        h_error(h, HTTP_NOT_FOUND, "book_not_found", "that book is not tracked");
        return;
    }
    if (found != DB_OK) {
        h_store_error(h);
        return;
    }
    int rc = render_history(&h->resp->body, b.isbn13, obs, n, RENDER_COMPACT);
    db_observations_free(obs, n);
    h_json(h, rc, HTTP_OK);
}
