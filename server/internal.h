/*
 * internal.h - what server/http.c (daemon, request state, responses) and server/api.c (routes
 * and handlers) share. Private to server/.
 */
#ifndef BOOKRANK_SERVER_INTERNAL_H
#define BOOKRANK_SERVER_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>

#include "../common/buf.h"
#include "../common/isbn.h"
#include "server.h"

/* A store connection pool: each request borrows one connection at a time. */
typedef struct db_pool {
    pthread_mutex_t lock;
    db **free_list;            /* guarded by lock */
    size_t nfree, cap;         /* guarded by lock */
    const char *path;
} db_pool;

/* Rendered GET /api/books/{isbn} answers, valid for one store version (cache.c). */
typedef struct resp_cache resp_cache;
resp_cache *cache_new(const char *db_path, jobs *runner, char **err);
void cache_free(resp_cache *c);
/* The store's current version; read it before reading the store. */
uint64_t cache_version(resp_cache *c);
/* Marks a change made by this server (after it is committed). */
void cache_bump(resp_cache *c);
/* Appends the answer kept for key at version to out: 1, or 0 when there is none. */
int cache_get(resp_cache *c, const char *key, uint64_t version, buf *out);
void cache_put(resp_cache *c, const char *key, uint64_t version, const char *data, size_t len);

struct srv {
    srv_config cfg;
    jobs *runner;
    resp_cache *cache;
    struct MHD_Daemon *daemon;
    db_pool dbs;
    int port;
};

/* Per-request state, created on the first callback and freed in the completed callback. */
typedef struct request {
    srv *server;
    struct MHD_Connection *conn;
    const char *method;        /* borrowed from MHD for the request's life */
    const char *url;
    double started;
    buf body;
    int body_too_big;
    size_t discarded;          /* body bytes dropped after the cap was hit */
    int responded;
    db *store;                 /* borrowed from the pool while handling */
} request;

/* Sends a response and writes the access-log line. Takes ownership of nothing; copies data. */
enum MHD_Result req_send(request *r, unsigned status, const char *content_type, const void *data,
                         size_t len, const char *const *headers);
/* Like req_send, but hands body's memory to the response instead of copying it (body is left
 * empty). */
enum MHD_Result req_send_buf(request *r, unsigned status, const char *content_type, buf *body,
                             const char *const *headers);
/* Sends a JSON value (the reference is stolen). */
enum MHD_Result req_json(request *r, unsigned status, json_t *value, const char *const *headers);
/* {"error": {...}} with the given status; details is stolen (may be NULL). */
enum MHD_Result req_error(request *r, unsigned status, const char *code, const char *message,
                          json_t *details);
/* A store connection for this request (returned automatically when the request ends). */
db *req_db(request *r);
/* A query argument, or NULL. */
const char *req_arg(request *r, const char *name);
const char *req_header(request *r, const char *name);

/* An ISBN list read from a request body (parse.c). */
typedef struct api_isbn_list {
    isbn *items;               /* owned, valid entries in order */
    size_t n;
    int refresh;               /* JSON "refresh": true */
    /* On failure: */
    unsigned http_status;
    const char *code;          /* stable error code */
    char message[160];
    json_t *details;           /* owned: [{"index", "input", "reason"}] for invalid entries */
} api_isbn_list;

/* Parses a body of media type `type` ("application/json" or "text/plain", parameters removed):
 * JSON {"isbns": [...], "refresh": bool} or one ISBN per line / comma-separated. At most cap
 * entries. 0, or -1 with http_status, code, message (and details) set. Free with
 * api_isbn_list_free either way. */
int api_parse_isbns(const char *type, const char *body, size_t len, size_t cap, api_isbn_list *l);
void api_isbn_list_free(api_isbn_list *l);

/* Matches path against a route pattern where "*" takes one non-empty segment, copied into arg.
 * 1 on a match. */
int api_route_match(const char *pattern, const char *path, char *arg, size_t arglen);

/* The router: every request ends here once its body is in. */
enum MHD_Result api_dispatch(request *r);

#endif
