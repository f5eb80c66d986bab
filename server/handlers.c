/*
 * handlers.c - from a verdict to an answer: a route's handler, a dashboard file, or the
 * refusal of what the router or the transport would not let through. Threads: see handlers.h.
 */
#include "handlers_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"

int handlers_env_init(handlers_env *env, const srv_config *cfg, jobs *runner, resp_cache *cache,
                      dbpool *pool, char **err)
{
    memset(env, 0, sizeof *env);
    env->cfg = cfg;
    env->runner = runner;
    env->cache = cache;
    env->pool = pool;
    buf_init(&env->oom, 4096);
    env->health = calloc(1, sizeof *env->health);
    if (!env->health || render_error(&env->oom, "internal", "out of memory", NULL, 0) != BUF_OK ||
        buf_append(&env->oom, "\n", 1) != BUF_OK) {
        handlers_env_clear(env);
        if (err)
            *err = strdup("out of memory");
        return -1;
    }
    atomic_init(&env->health->degraded, -1);
    atomic_init(&env->health->busy_since_ms, 0);
    return 0;
}

void handlers_env_clear(handlers_env *env)
{
    buf_free(&env->oom);
    free(env->health);
    env->health = NULL;
}

static handler_fn handler_of(router_handler id)
{
    /* No default: the compiler names a route the switch forgets. */
    switch (id) {
    case ROUTE_BOOKS_LIST:
        return h_books_list;
    case ROUTE_BOOKS_ADD:
        return h_books_add;
    case ROUTE_BOOK_GET:
        return h_book_get;
    case ROUTE_BOOK_DELETE:
        return h_book_delete;
    case ROUTE_BOOK_PATCH:
        return h_book_patch;
    case ROUTE_BOOK_HISTORY:
        return h_book_history;
    case ROUTE_REFRESH:
        return h_refresh;
    case ROUTE_JOB_GET:
        return h_job_get;
    case ROUTE_JOBS_LIST:
        return h_jobs_list;
    case ROUTE_JOB_CANCEL:
        return h_job_cancel;
    case ROUTE_EXPORT:
        return h_export;
    case ROUTE_CONFIG:
        return h_config;
    case ROUTE_HEALTHZ:
        return h_healthz;
    case ROUTE_METRICS:
        return h_metrics;
    case ROUTE_ALERTS_LIST:
        return h_alerts_list;
    case ROUTE_ALERTS_ADD:
        return h_alerts_add;
    case ROUTE_ALERT_DELETE:
        return h_alert_delete;
    case ROUTE_ALERT_EVENTS:
        return h_alert_events;
    }
    return NULL;
}

/* Whether a route can answer without the store (a server started with cfg->store_down). */
static int works_without_store(router_handler id)
{
    return id == ROUTE_HEALTHZ || id == ROUTE_CONFIG || id == ROUTE_METRICS;
}

static void run_route(hctx *h, const router_match *m)
{
    handler_fn fn = handler_of(m->route->handler);
    if (!fn) {
        h_error(h, HTTP_INTERNAL_SERVER_ERROR, "internal", "no handler for this route");
        return;
    }
    const char *down = h->env->cfg->store_down;
    if (down && !works_without_store(m->route->handler)) {
        char message[1024];
        snprintf(message, sizeof message, "the database cannot be used: %s", down);
        h_error(h, HTTP_SERVICE_UNAVAILABLE, "unavailable", message);
        if (h_header(h, "Retry-After", "30") != 0)
            log_error("http: the 503 answer went out as a 500");
        return;
    }
    fn(h, m->arg);
    if (m->route->mutating && h->env->cache)
        cache_bump(h->env->cache); /* after the change is committed */
}

static void error_with_header(hctx *h, unsigned status, const char *code, const char *message,
                              const char *name, const char *value)
{
    h_error(h, status, code, message);
    if (h_header(h, name, value) != 0)
        log_error("http: the %u answer went out as a 500", status);
}

void handlers_answer(const handlers_env *env, const router_match *m, const srv_request *req,
                     srv_response *resp)
{
    hctx h = {.env = env, .req = req, .resp = resp};
    switch (m->verdict) {
    case ROUTER_OK:
        run_route(&h, m);
        break;
    case ROUTER_ASSET:
        h_asset(&h, m->asset);
        break;
    case ROUTER_BAD_REQUEST:
        h_error(&h, HTTP_BAD_REQUEST, "invalid_request", "HTTP/1.1 needs exactly one Host header");
        break;
    case ROUTER_MISDIRECTED:
        h_error(&h, HTTP_MISDIRECTED, "misdirected_request",
                "this server does not answer to that host name; if it is reached through a "
                "proxy under that name, start it with --public-url https://THAT-NAME");
        break;
    case ROUTER_PATH_TOO_LONG:
        h_error(&h, HTTP_URI_TOO_LONG, "invalid_query", "path too long");
        break;
    case ROUTER_NOT_FOUND:
        h_error(&h, HTTP_NOT_FOUND, "not_found", "no such path");
        break;
    case ROUTER_WRONG_METHOD:
        error_with_header(&h, HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                          "method not allowed on this path", "Allow", m->allow);
        break;
    case ROUTER_CROSS_SITE:
        h_error(&h, HTTP_FORBIDDEN, "forbidden_origin",
                "cross-site requests may not change anything");
        break;
    case ROUTER_UNAUTHORIZED:
        error_with_header(&h, HTTP_UNAUTHORIZED, "unauthorized",
                          "this server needs Authorization: Bearer TOKEN", "WWW-Authenticate",
                          "Bearer realm=\"bookrank\"");
        break;
    }
    dbpool_give(env->pool, h.store);
    if (!resp->status) {
        log_error("http: %s %s got no answer", req->method, req->path);
        h_error(&h, HTTP_INTERNAL_SERVER_ERROR, "internal", "no answer");
    }
}

void handlers_refuse(const handlers_env *env, srv_transport_err err, srv_response *resp)
{
    hctx h = {.env = env, .resp = resp};
    switch (err) {
    case SRV_FRAMING_CODING:
        h_error(&h, HTTP_BAD_REQUEST, "invalid_body",
                "only the chunked transfer coding is supported");
        return;
    case SRV_FRAMING_MIXED:
        h_error(&h, HTTP_BAD_REQUEST, "invalid_body",
                "Content-Length and Transfer-Encoding must not both be sent");
        return;
    case SRV_FRAMING_LENGTHS:
        h_error(&h, HTTP_BAD_REQUEST, "invalid_body", "more than one Content-Length header");
        return;
    case SRV_FRAMING_CODINGS:
        h_error(&h, HTTP_BAD_REQUEST, "invalid_body", "more than one Transfer-Encoding header");
        return;
    case SRV_BODY_TOO_LARGE:
        h_error(&h, HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                "request body larger than the limit");
        return;
    case SRV_TRANSPORT_NOMEM:
        h_oom(&h);
        return;
    case SRV_TRANSPORT_OK:
        break;
    }
    h_error(&h, HTTP_INTERNAL_SERVER_ERROR, "internal", "refused without a reason");
}
