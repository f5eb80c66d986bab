/*
 * api.c - routing and the REST handlers (SPEC §3). Every response goes through req_send /
 * req_json / req_error; only this file decides HTTP statuses and error codes.
 *
 * Error codes (stable): invalid_json, invalid_body, invalid_isbn, invalid_query, too_many_isbns,
 * unauthorized, forbidden_origin, not_found, book_not_found, job_not_found, method_not_allowed,
 * payload_too_large, unsupported_media_type, too_many_refreshes, unavailable, internal.
 */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/isbn.h"
#include "../common/log.h"
#include "../common/metrics.h"
#include "../common/timeutil.h"
#include "../web/web.h"

#define PATH_MAX_SEGMENTS 8

static const char *const csp_headers[] = {
    "Content-Security-Policy",
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options", "DENY",
    "Referrer-Policy", "no-referrer",
    NULL, NULL,
};

/* ---- small helpers ------------------------------------------------------------------------ */

static enum MHD_Result store_error(request *r)
{
    log_error("store: %s", r->store ? db_errmsg(r->store) : "no connection");
    return req_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "the database is not available",
                     NULL);
}

/* Constant-time comparison of the Authorization header with "Bearer TOKEN". */
static int authorized(request *r)
{
    const char *token = r->server->cfg.token;
    if (!token || !*token)
        return 1;
    const char *h = req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    size_t hl = strlen(h), tl = strlen(token);
    unsigned char diff = hl != tl;
    for (size_t i = 0; i < tl; i++)
        diff |= (unsigned char)(token[i] ^ (i < hl ? h[i] : 0));
    return diff == 0;
}

/*
 * Whether a mutating request may come from where it comes from. Browsers send simple
 * cross-site POSTs (text/plain, empty body) without asking first, so without this any web page
 * could add books or start refreshes on a token-less server on localhost. A request with an
 * Origin must name this host; one marked cross-site by the browser is refused.
 */
static int same_origin(request *r)
{
    const char *site = req_header(r, "Sec-Fetch-Site");
    if (site && strcmp(site, "cross-site") == 0)
        return 0;
    const char *origin = req_header(r, "Origin");
    if (!origin)
        return 1;          /* not a browser, or a same-origin GET-style request */
    const char *host = req_header(r, MHD_HTTP_HEADER_HOST);
    const char *sep = strstr(origin, "://");
    return host && sep && strcasecmp(sep + 3, host) == 0;
}

/* Content type without parameters, lower-cased into out; "" when absent. */
static void media_type(request *r, char *out, size_t len)
{
    const char *ct = req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t n = 0;
    for (; ct && *ct && *ct != ';' && n + 1 < len; ct++)
        if (!isspace((unsigned char)*ct))
            out[n++] = (char)tolower((unsigned char)*ct);
    out[n] = '\0';
}

static int is_blank(const buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (!isspace((unsigned char)b->data[i]))
            return 0;
    return 1;
}

/* Reads the ISBN list of a POST body; on failure sends the error and returns -1. */
static int read_isbns(request *r, api_isbn_list *l, int *refresh, int allow_empty_body)
{
    char type[64];
    /* Only an empty body means "every book"; an explicit empty list is a mistake. */
    if (allow_empty_body && is_blank(&r->body)) {
        memset(l, 0, sizeof *l);
        if (refresh)
            *refresh = 0;
        return 0;
    }
    media_type(r, type, sizeof type);
    if (api_parse_isbns(type, r->body.data ? r->body.data : "", r->body.len,
                        r->server->cfg.max_isbns, l) == 0) {
        if (refresh)
            *refresh = l->refresh;
        if (l->n == 0) {
            api_isbn_list_free(l);
            req_error(r, MHD_HTTP_BAD_REQUEST, "invalid_body", "no ISBNs given", NULL);
            return -1;
        }
        return 0;
    }
    req_error(r, l->http_status, l->code, l->message, l->details);
    l->details = NULL;
    api_isbn_list_free(l);
    return -1;
}

/* ---- handlers ----------------------------------------------------------------------------- */

typedef enum MHD_Result (*handler_fn)(request *r, const char *arg);

static enum MHD_Result start_job(request *r, const isbn *books, size_t n, int all, unsigned status,
                                 json_t *extra)
{
    db_job job;
    int joined;
    char why[256];
    jobs_err rc = jobs_refresh(r->server->runner, all ? NULL : books, n, &job, &joined, why,
                               sizeof why);
    if (rc != JOBS_OK) {
        enum MHD_Result ret =
            rc == JOBS_BUSY
                ? req_error(r, MHD_HTTP_TOO_MANY_REQUESTS, "too_many_refreshes",
                            why[0] ? why : jobs_strerror(rc), NULL)
                : req_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                            why[0] ? why : jobs_strerror(rc), NULL);
        json_decref(extra);
        return ret;
    }
    char location[64];
    snprintf(location, sizeof location, "/api/jobs/%lld", (long long)job.id);
    const char *const headers[] = {MHD_HTTP_HEADER_LOCATION, location, NULL, NULL};
    json_t *body = extra ? extra : json_object();
    json_object_set_new(body, "job", web_json_job(&job));
    if (!extra)
        json_object_set_new(body, "joined", json_boolean(joined));
    return req_json(r, status, body, extra ? NULL : headers);
}

static enum MHD_Result books_post(request *r, const char *arg)
{
    (void)arg;
    api_isbn_list l;
    int refresh;
    if (read_isbns(r, &l, &refresh, 0))
        return MHD_YES;
    db *d = req_db(r);
    int *added = calloc(l.n, sizeof *added);
    enum MHD_Result ret;
    if (!d || !added || db_books_add(d, l.items, l.n, added) != DB_OK) {
        ret = store_error(r);
        goto done;
    }
    json_t *a = json_array(), *already = json_array();
    for (size_t i = 0; i < l.n; i++)
        json_array_append_new(added[i] ? a : already, json_string(l.items[i].isbn13));
    json_t *body = json_pack("{s:o, s:o}", "added", a, "already_tracked", already);
    ret = refresh ? start_job(r, l.items, l.n, 0, MHD_HTTP_CREATED, body)
                  : req_json(r, MHD_HTTP_CREATED, body, NULL);
done:
    free(added);
    api_isbn_list_free(&l);
    return ret;
}

static enum MHD_Result books_list(request *r, const char *arg)
{
    (void)arg;
    const char *status = req_arg(r, "status"), *source = req_arg(r, "source");
    if (status && obs_status_parse(status) < 0)
        return req_error(r, MHD_HTTP_BAD_REQUEST, "invalid_query",
                         "status must be ok, no_rank, not_found, blocked or error", NULL);
    db *d = req_db(r);
    db_book *books = NULL;
    size_t n = 0;
    db_book_filter f = {.status = status, .source = source};
    if (!d || db_books_list(d, &f, &books, &n) != DB_OK)
        return store_error(r);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, web_json_book(&books[i]));
    db_books_free(books, n);
    return req_json(r, MHD_HTTP_OK, arr, NULL);
}

/* Parses the {isbn} path segment; sends 400 and returns -1 when invalid. */
static int path_isbn(request *r, const char *arg, isbn *out)
{
    char why[160];
    if (isbn_parse_explain(arg, strlen(arg), out, why, sizeof why) != ISBN_OK) {
        json_t *details = json_pack("[{s:i, s:s%, s:s}]", "index", 0, "input", arg,
                                    strlen(arg) > 64 ? (size_t)64 : strlen(arg), "reason", why);
        req_error(r, MHD_HTTP_BAD_REQUEST, "invalid_isbn", why, details);
        return -1;
    }
    return 0;
}

static enum MHD_Result book_get(request *r, const char *arg)
{
    isbn b;
    if (path_isbn(r, arg, &b))
        return MHD_YES;
    /* The most frequent read: answered from the cache while the store has not changed. */
    buf out;
    buf_init(&out, (size_t)1 << 24);
    uint64_t version = cache_version(r->server->cache);
    if (cache_get(r->server->cache, b.isbn13, version, &out))
        return req_send_buf(r, MHD_HTTP_OK, "application/json", &out, NULL);
    db *d = req_db(r);
    if (!d)
        return store_error(r);
    db_book book;
    int rc = db_book_get(d, b.isbn13, &book);
    if (rc == DB_NOTFOUND)
        return req_error(r, MHD_HTTP_NOT_FOUND, "book_not_found", "that book is not tracked", NULL);
    if (rc != DB_OK)
        return store_error(r);
    json_t *body = web_json_book(&book);
    db_book_clear(&book);
    int dumped = body && web_json_dump(&out, body) == BUF_OK && buf_append(&out, "\n", 1) == BUF_OK;
    json_decref(body);
    if (!dumped) {
        buf_free(&out);
        return req_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "cannot encode the book", NULL);
    }
    cache_put(r->server->cache, b.isbn13, version, out.data, out.len);
    return req_send_buf(r, MHD_HTTP_OK, "application/json", &out, NULL);
}

static enum MHD_Result book_delete(request *r, const char *arg)
{
    isbn b;
    if (path_isbn(r, arg, &b))
        return MHD_YES;
    db *d = req_db(r);
    if (!d)
        return store_error(r);
    int rc = db_book_remove(d, b.isbn13);
    if (rc == DB_NOTFOUND)
        return req_error(r, MHD_HTTP_NOT_FOUND, "book_not_found", "that book is not tracked", NULL);
    if (rc != DB_OK)
        return store_error(r);
    return req_send(r, MHD_HTTP_NO_CONTENT, NULL, "", 0, NULL);
}

static enum MHD_Result book_history(request *r, const char *arg)
{
    isbn b;
    if (path_isbn(r, arg, &b))
        return MHD_YES;
    db_history_query q = {.source = req_arg(r, "source"), .limit = 500};
    const char *since = req_arg(r, "since"), *limit = req_arg(r, "limit");
    if (since && time_parse_iso(since, &q.since_ms))
        return req_error(r, MHD_HTTP_BAD_REQUEST, "invalid_query",
                         "since must be an ISO 8601 time like 2026-11-24T12:00:00Z", NULL);
    if (limit) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (end == limit || *end || v < 1 || v > 100000)
            return req_error(r, MHD_HTTP_BAD_REQUEST, "invalid_query",
                             "limit must be a whole number from 1 to 100000", NULL);
        q.limit = (int)v;
    }
    db *d = req_db(r);
    if (!d)
        return store_error(r);
    observation *obs = NULL;
    size_t n = 0;
    int rc = db_history(d, b.isbn13, &q, &obs, &n);
    if (rc == DB_NOTFOUND)
        return req_error(r, MHD_HTTP_NOT_FOUND, "book_not_found", "that book is not tracked", NULL);
    if (rc != DB_OK)
        return store_error(r);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, web_json_observation(&obs[i]));
    db_observations_free(obs, n);
    return req_json(r, MHD_HTTP_OK, json_pack("{s:s, s:o}", "isbn13", b.isbn13, "observations", arr),
                    NULL);
}

static enum MHD_Result refresh_post(request *r, const char *arg)
{
    (void)arg;
    api_isbn_list l;
    if (read_isbns(r, &l, NULL, 1))
        return MHD_YES;
    enum MHD_Result ret;
    if (l.n) {
        /* Books named in a refresh become tracked, as with `bookrank refresh ISBN...`. */
        db *d = req_db(r);
        if (!d || db_books_add(d, l.items, l.n, NULL) != DB_OK) {
            ret = store_error(r);
            goto done;
        }
    }
    ret = start_job(r, l.items, l.n, l.n == 0, MHD_HTTP_ACCEPTED, NULL);
done:
    api_isbn_list_free(&l);
    return ret;
}

static enum MHD_Result job_get(request *r, const char *arg)
{
    char *end;
    long long id = strtoll(arg, &end, 10);
    if (end == arg || *end || id <= 0 || strlen(arg) > 18)
        return req_error(r, MHD_HTTP_BAD_REQUEST, "invalid_query", "a job id is a positive number", NULL);
    db_job job;
    jobs_err rc = jobs_get(r->server->runner, id, &job);
    if (rc == JOBS_NOT_FOUND)
        return req_error(r, MHD_HTTP_NOT_FOUND, "job_not_found", "no such job", NULL);
    if (rc != JOBS_OK)
        return store_error(r);
    return req_json(r, MHD_HTTP_OK, json_pack("{s:o}", "job", web_json_job(&job)), NULL);
}

typedef struct export_ctx {
    buf *out;
    int failed;
} export_ctx;

static int export_row(void *ctx, const observation *obs)
{
    export_ctx *e = ctx;
    if (web_csv_row(e->out, obs)) {
        e->failed = 1;
        return 1;
    }
    return 0;
}

static enum MHD_Result export_csv(request *r, const char *arg)
{
    (void)arg;
    db *d = req_db(r);
    if (!d)
        return store_error(r);
    buf out;
    buf_init(&out, (size_t)512 << 20);
    export_ctx e = {.out = &out};
    web_csv_header(&out);
    enum MHD_Result ret;
    if (db_export(d, export_row, &e) != DB_OK && !e.failed)
        ret = store_error(r);
    else if (e.failed)
        ret = req_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "export larger than 512 MiB", NULL);
    else {
        const char *const headers[] = {"Content-Disposition", "attachment; filename=\"bookrank.csv\"",
                                       NULL, NULL};
        ret = req_send_buf(r, MHD_HTTP_OK, "text/csv; charset=utf-8", &out, headers);
    }
    buf_free(&out);
    return ret;
}

static enum MHD_Result healthz(request *r, const char *arg)
{
    (void)arg;
    db *d = req_db(r);
    int64_t n;
    if (!d || db_books_count(d, &n) != DB_OK)
        return req_json(r, MHD_HTTP_SERVICE_UNAVAILABLE, json_pack("{s:s}", "status", "unavailable"), NULL);
    return req_json(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"), NULL);
}

static enum MHD_Result metrics(request *r, const char *arg)
{
    (void)arg;
    metrics_gauges g = {0};
    db *d = req_db(r);
    if (d)
        db_books_count(d, &g.books_tracked);
    scr_pool_stats ps;
    jobs_pool_stats(r->server->runner, &ps);
    g.jobs_active = jobs_active(r->server->runner);
    g.queue_depth = ps.queued;
    g.fetches_in_flight = ps.in_flight;
    buf out;
    buf_init(&out, 1 << 20);
    metrics_render(&out, &g);
    enum MHD_Result ret = req_send(r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                                   out.data ? out.data : "", out.len, NULL);
    buf_free(&out);
    return ret;
}

static enum MHD_Result config_get(request *r, const char *arg)
{
    (void)arg;
    json_t *sources = json_array();
    for (size_t i = 0; i < r->server->cfg.nsources; i++)
        json_array_append_new(sources, json_string(r->server->cfg.source_names[i]));
    const char *token = r->server->cfg.token;
    return req_json(r, MHD_HTTP_OK,
                    json_pack("{s:b, s:s, s:o}", "auth_required", token && *token, "version",
                              BOOKRANK_VERSION, "sources", sources),
                    NULL);
}

static enum MHD_Result asset(request *r, const char *arg)
{
    const web_asset *a = web_asset_find(arg);
    if (!a)
        return req_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such path", NULL);
    return req_send(r, MHD_HTTP_OK, a->content_type, a->data, a->len, csp_headers);
}

/* ---- routing ------------------------------------------------------------------------------ */

/* A route's pattern is matched segment by segment; "*" takes one segment (the handler's arg). */
static const struct route {
    const char *method;
    const char *pattern;
    handler_fn fn;
    int mutating;
} routes[] = {
    {"GET", "/api/books", books_list, 0},
    {"POST", "/api/books", books_post, 1},
    {"GET", "/api/books/*", book_get, 0},
    {"DELETE", "/api/books/*", book_delete, 1},
    {"GET", "/api/books/*/history", book_history, 0},
    {"POST", "/api/refresh", refresh_post, 1},
    {"GET", "/api/jobs/*", job_get, 0},
    {"GET", "/api/export.csv", export_csv, 0},
    {"GET", "/api/config", config_get, 0},
    {"GET", "/healthz", healthz, 0},
    {"GET", "/metrics", metrics, 0},
};

enum MHD_Result api_dispatch(request *r)
{
    const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
    char arg[2048 + 1];
    const struct route *found = NULL;
    char allow[128] = "";
    size_t nroutes = sizeof routes / sizeof routes[0];

    if (strlen(r->url) > 2048)
        return req_error(r, MHD_HTTP_URI_TOO_LONG, "invalid_query", "path too long", NULL);
    for (size_t i = 0; i < nroutes; i++) {
        char seg[sizeof arg];
        if (!api_route_match(routes[i].pattern, r->url, seg, sizeof seg))
            continue;
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "", routes[i].method);
        if (strcmp(routes[i].method, method) == 0) {
            found = &routes[i];
            memcpy(arg, seg, sizeof arg);
        }
    }
    if (!found && !allow[0] && strncmp(r->url, "/api/", 5) != 0 && strcmp(r->url, "/api") != 0 &&
        web_asset_find(r->url)) {
        if (strcmp(method, "GET") == 0)
            return asset(r, r->url);
        snprintf(allow, sizeof allow, "GET, HEAD");
    }
    if (!found && allow[0]) {
        if (strstr(allow, "GET") && !strstr(allow, "HEAD")) {
            size_t used = strlen(allow);
            snprintf(allow + used, sizeof allow - used, ", HEAD");
        }
        const char *const headers[] = {MHD_HTTP_HEADER_ALLOW, allow, NULL, NULL};
        return req_json(r, MHD_HTTP_METHOD_NOT_ALLOWED,
                        web_json_error("method_not_allowed", "method not allowed on this path", NULL),
                        headers);
    }
    if (!found)
        return req_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such path", NULL);
    if (found->mutating && !same_origin(r))
        return req_error(r, MHD_HTTP_FORBIDDEN, "forbidden_origin",
                         "cross-site requests may not change anything", NULL);
    if (found->mutating && !authorized(r)) {
        const char *const headers[] = {MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"bookrank\"",
                                       NULL, NULL};
        return req_json(r, MHD_HTTP_UNAUTHORIZED,
                        web_json_error("unauthorized", "this server needs Authorization: Bearer TOKEN",
                                       NULL),
                        headers);
    }
    enum MHD_Result ret = found->fn(r, arg);
    if (found->mutating)
        cache_bump(r->server->cache);    /* after the change is committed */
    return ret;
}
