/*
 * router.c - the route table and the request checks that need only the headers. Pure functions
 * over constant data: any thread.
 */
#include "router.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Patterns never overlap for one method, so at most one route matches a method and path. */
const router_route router_routes[] = {
    {"GET", "/api/books", ROUTE_BOOKS_LIST, 0},
    {"POST", "/api/books", ROUTE_BOOKS_ADD, 1},
    {"GET", "/api/books/*", ROUTE_BOOK_GET, 0},
    {"DELETE", "/api/books/*", ROUTE_BOOK_DELETE, 1},
    {"GET", "/api/books/*/history", ROUTE_BOOK_HISTORY, 0},
    {"POST", "/api/refresh", ROUTE_REFRESH, 1},
    {"GET", "/api/jobs/*", ROUTE_JOB_GET, 0},
    {"GET", "/api/export.csv", ROUTE_EXPORT, 0},
    {"GET", "/api/config", ROUTE_CONFIG, 0},
    {"GET", "/healthz", ROUTE_HEALTHZ, 0},
    {"GET", "/metrics", ROUTE_METRICS, 0},
};
const size_t router_nroutes = sizeof router_routes / sizeof router_routes[0];

const char *router_strerror(router_verdict v)
{
    switch (v) {
    case ROUTER_OK:
        return "ok";
    case ROUTER_ASSET:
        return "a dashboard file";
    case ROUTER_PATH_TOO_LONG:
        return "path too long";
    case ROUTER_NOT_FOUND:
        return "no such path";
    case ROUTER_WRONG_METHOD:
        return "method not allowed on this path";
    case ROUTER_CROSS_SITE:
        return "cross-site request";
    case ROUTER_UNAUTHORIZED:
        return "token missing or wrong";
    }
    return "unknown verdict";
}

int router_segment_match(const char *pattern, const char *path, char *arg, size_t arglen)
{
    arg[0] = '\0';
    while (*pattern && *path) {
        if (*pattern == '*') {
            size_t n = 0;
            while (*path && *path != '/') {
                if (n + 1 >= arglen)
                    return 0;
                arg[n++] = *path++;
            }
            arg[n] = '\0';
            if (n == 0)
                return 0;
            pattern++;
            continue;
        }
        if (*pattern != *path)
            return 0;
        pattern++;
        path++;
    }
    return *pattern == '\0' && *path == '\0';
}

static void allow_add(char *allow, const char *method)
{
    size_t used = strlen(allow);
    /* The longest list (four methods) fits: a cut one would be a bug in the table. */
    snprintf(allow + used, ROUTER_ALLOW_MAX - used, "%s%s", used ? ", " : "", method);
}

router_verdict router_route_path(const router_config *cfg, const char *method, const char *path,
                                 router_match *m)
{
    memset(m, 0, offsetof(router_match, arg));
    m->arg[0] = m->allow[0] = '\0';
    if (strcmp(method, "HEAD") == 0)
        method = "GET";       /* libmicrohttpd sends HEAD answers without their body */
    if (strlen(path) > SRV_PATH_MAX)
        return m->verdict = ROUTER_PATH_TOO_LONG;

    char seg[ROUTER_ARG_MAX];
    for (size_t i = 0; i < router_nroutes; i++) {
        if (!router_segment_match(router_routes[i].pattern, path, seg, sizeof seg))
            continue;
        allow_add(m->allow, router_routes[i].method);
        if (!m->route && strcmp(router_routes[i].method, method) == 0) {
            m->route = &router_routes[i];
            memcpy(m->arg, seg, sizeof seg);
        }
    }
    if (m->route)
        return m->verdict = ROUTER_OK;

    /* Anything outside /api/ that no route takes may be a file of the dashboard. */
    if (!m->allow[0] && strncmp(path, "/api/", 5) != 0 && strcmp(path, "/api") != 0 &&
        cfg->asset && (m->asset = cfg->asset(path)) != NULL) {
        if (strcmp(method, "GET") == 0)
            return m->verdict = ROUTER_ASSET;
        m->asset = NULL;
        allow_add(m->allow, "GET");
    }
    if (!m->allow[0])
        return m->verdict = ROUTER_NOT_FOUND;
    if (strstr(m->allow, "GET") && !strstr(m->allow, "HEAD"))
        allow_add(m->allow, "HEAD");
    return m->verdict = ROUTER_WRONG_METHOD;
}

int router_same_site(const srv_request *r)
{
    /* Browsers send simple cross-site POSTs (text/plain, empty body) without asking first, so
     * without this any web page could add books or start refreshes on a token-less server on
     * localhost. A request with an Origin must name this host; one the browser marks
     * cross-site is refused. No Origin: not a browser, or a same-origin GET-style request. */
    if (r->fetch_site && strcmp(r->fetch_site, "cross-site") == 0)
        return 0;
    if (!r->origin)
        return 1;
    const char *sep = strstr(r->origin, "://");
    return r->host && sep && strcasecmp(sep + 3, r->host) == 0;
}

int router_token_ok(const char *token, const char *authorization)
{
    if (!token || !*token)
        return 1;
    const char *h = authorization;
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    /* Every byte of the token is looked at whatever the header holds, so the time taken does
     * not say how much of a guess was right. */
    size_t hl = strlen(h), tl = strlen(token);
    unsigned char diff = hl != tl;
    for (size_t i = 0; i < tl; i++)
        diff |= (unsigned char)(token[i] ^ (i < hl ? h[i] : 0));
    return diff == 0;
}

router_verdict router_check(const router_config *cfg, const srv_request *r, router_match *m)
{
    router_verdict v = router_route_path(cfg, r->method, r->path, m);
    if (v != ROUTER_OK || !m->route->mutating)
        return v;
    if (!router_same_site(r))
        return m->verdict = ROUTER_CROSS_SITE;
    if (!router_token_ok(cfg->token, r->authorization))
        return m->verdict = ROUTER_UNAUTHORIZED;
    return v;
}
