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
    /* method, pattern, handler, mutating, secret, open */
    {"GET", "/api/books", ROUTE_BOOKS_LIST, 0, 0, 0},
    {"POST", "/api/books", ROUTE_BOOKS_ADD, 1, 0, 0},
    {"GET", "/api/books/*", ROUTE_BOOK_GET, 0, 0, 0},
    {"DELETE", "/api/books/*", ROUTE_BOOK_DELETE, 1, 0, 0},
    {"PATCH", "/api/books/*", ROUTE_BOOK_PATCH, 1, 0, 0},
    {"GET", "/api/books/*/history", ROUTE_BOOK_HISTORY, 0, 0, 0},
    {"POST", "/api/refresh", ROUTE_REFRESH, 1, 0, 0},
    {"GET", "/api/jobs", ROUTE_JOBS_LIST, 0, 0, 0},
    {"GET", "/api/jobs/*", ROUTE_JOB_GET, 0, 0, 0},
    {"DELETE", "/api/jobs/*", ROUTE_JOB_CANCEL, 1, 0, 0},
    {"GET", "/api/export.csv", ROUTE_EXPORT, 0, 0, 0},
    /* The dashboard asks it whether a token is needed before it has one. */
    {"GET", "/api/config", ROUTE_CONFIG, 0, 0, 1},
    {"GET", "/healthz", ROUTE_HEALTHZ, 0, 0, 1},
    {"GET", "/metrics", ROUTE_METRICS, 0, 0, 0},
    /* Rules hold webhook addresses and mail addresses: the token for reads too (SPEC §3). */
    {"GET", "/api/alerts", ROUTE_ALERTS_LIST, 0, 1, 0},
    {"POST", "/api/alerts", ROUTE_ALERTS_ADD, 1, 1, 0},
    {"GET", "/api/alerts/events", ROUTE_ALERT_EVENTS, 0, 1, 0},
    {"DELETE", "/api/alerts/*", ROUTE_ALERT_DELETE, 1, 1, 0},
};
const size_t router_nroutes = sizeof router_routes / sizeof router_routes[0];

const char *router_strerror(router_verdict v)
{
    switch (v) {
    case ROUTER_OK:
        return "ok";
    case ROUTER_BAD_REQUEST:
        return "HTTP/1.1 needs exactly one Host header";
    case ROUTER_MISDIRECTED:
        return "not a host this server answers to";
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
        method = "GET"; /* libmicrohttpd sends HEAD answers without their body */
    if (strlen(path) > SRV_PATH_MAX)
        return m->verdict = ROUTER_PATH_TOO_LONG;

    /* A book may be named by its product URL (SPEC §3: every input form of §1), whose slashes
     * libmicrohttpd has decoded from %2F: a /api/books/ path whose rest looks like a URL is the
     * book routes with that rest (less a final /history) as their argument. */
    char url_arg[ROUTER_ARG_MAX] = "";
    const char *rest = strncmp(path, "/api/books/", 11) == 0 ? path + 11 : NULL;
    if (rest && strchr(rest, '/') &&
        (strncmp(rest, "http:", 5) == 0 || strncmp(rest, "https:", 6) == 0 ||
         strstr(rest, "/dp/") || strstr(rest, "/gp/"))) {
        size_t n = strlen(rest);
        int history = n > 8 && strcmp(rest + n - 8, "/history") == 0;
        n -= history ? 8 : 0;
        memcpy(url_arg, rest, n); /* n <= SRV_PATH_MAX: checked above */
        url_arg[n] = '\0';
        path = history ? "/api/books/_/history" : "/api/books/_";
    }

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
    if (m->route && url_arg[0])
        memcpy(m->arg, url_arg, sizeof url_arg);
    if (m->route)
        return m->verdict = ROUTER_OK;

    /* Anything outside /api/ that no route takes may be a file of the dashboard. */
    if (!m->allow[0] && strncmp(path, "/api/", 5) != 0 && strcmp(path, "/api") != 0 && cfg->asset &&
        (m->asset = cfg->asset(path)) != NULL) {
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

/* The host of a Host header value or of an origin's authority, lower case and without the
 * port or a trailing dot, into out: 0, or -1 when it does not fit or is empty. */
static int host_part(const char *v, size_t n, char *out, size_t outlen)
{
    size_t len;
    if (n && v[0] == '[') {
        const char *close = memchr(v, ']', n);
        if (!close)
            return -1;
        len = (size_t)(close - v) + 1;
    } else {
        const char *colon = memchr(v, ':', n);
        len = colon ? (size_t)(colon - v) : n;
    }
    if (len && v[len - 1] == '.')
        len--;
    if (len == 0 || len >= outlen)
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)((v[i] >= 'A' && v[i] <= 'Z') ? v[i] + 32 : v[i]);
    out[len] = '\0';
    return 0;
}

static int is_ipv4_literal(const char *h)
{
    int parts = 0, digits = 0;
    for (const char *p = h;; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++digits > 3)
                return 0;
        } else if (*p == '.' || *p == '\0') {
            if (digits == 0)
                return 0;
            parts++;
            digits = 0;
            if (*p == '\0')
                break;
        } else {
            return 0;
        }
    }
    return parts == 4;
}

int router_host_ok(const router_config *cfg, const char *host)
{
    char h[ROUTER_HOST_MAX];
    if (!host || host_part(host, strlen(host), h, sizeof h) != 0)
        return 0;
    if (h[0] == '[' || is_ipv4_literal(h))
        return 1; /* an address: no name an attacker could own */
    size_t n = strlen(h);
    if (strcmp(h, "localhost") == 0 || (n > 10 && strcmp(h + n - 10, ".localhost") == 0))
        return 1;
    for (size_t i = 0; cfg && i < cfg->npublic; i++)
        if (strcmp(h, cfg->public_hosts[i]) == 0)
            return 1;
    return 0;
}

int router_add_public_url(router_config *cfg, const char *url, char *why, size_t whylen)
{
    size_t skip = strncasecmp(url, "https://", 8) == 0  ? 8
                  : strncasecmp(url, "http://", 7) == 0 ? 7
                                                        : 0;
    const char *auth = url + skip;
    size_t alen = strcspn(auth, "/?#");
    char host[ROUTER_HOST_MAX];
    if (!skip || alen == 0 || host_part(auth, alen, host, sizeof host) != 0) {
        snprintf(why, whylen, "--public-url '%.80s' is not an http:// or https:// URL with a host",
                 url);
        return -1;
    }
    if (cfg->npublic == ROUTER_MAX_PUBLIC) {
        snprintf(why, whylen, "at most %d --public-url", ROUTER_MAX_PUBLIC);
        return -1;
    }
    memcpy(cfg->public_hosts[cfg->npublic], host, strlen(host) + 1);
    /* The origin a browser sends for pages under this URL: scheme://host[:port], lower case. */
    char *o = cfg->public_origins[cfg->npublic];
    size_t on = skip + alen;
    if (on >= sizeof cfg->public_origins[0]) {
        snprintf(why, whylen, "--public-url '%.80s' is too long", url);
        return -1;
    }
    for (size_t i = 0; i < on; i++)
        o[i] = (char)((url[i] >= 'A' && url[i] <= 'Z') ? url[i] + 32 : url[i]);
    o[on] = '\0';
    /* The default port is left out of an Origin. */
    size_t ol = strlen(o);
    if (skip == 8 && ol > 4 && strcmp(o + ol - 4, ":443") == 0)
        o[ol - 4] = '\0';
    if (skip == 7 && ol > 3 && strcmp(o + ol - 3, ":80") == 0)
        o[ol - 3] = '\0';
    cfg->npublic++;
    return 0;
}

int router_same_site(const router_config *cfg, const srv_request *r)
{
    /* Browsers send simple cross-site POSTs (text/plain, empty body) without asking first, so
     * without this any web page could add books or start refreshes on a token-less server on
     * localhost. A request with an Origin must name this host (or the address users reach it
     * at through a proxy); one the browser marks cross-site is refused. No Origin: not a
     * browser, or a same-origin GET-style request. */
    if (r->fetch_site && strcmp(r->fetch_site, "cross-site") == 0)
        return 0;
    if (!r->origin)
        return 1;
    const char *sep = strstr(r->origin, "://");
    if (r->host && sep && strcasecmp(sep + 3, r->host) == 0)
        return 1;
    for (size_t i = 0; cfg && i < cfg->npublic; i++)
        if (strcasecmp(r->origin, cfg->public_origins[i]) == 0)
            return 1;
    return 0;
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
    memset(m, 0, sizeof *m);
    /* RFC 9112 3.2: an HTTP/1.1 request has exactly one Host; with two, which one a proxy read
     * is anyone's guess. */
    int http11 = !r->version || strcmp(r->version, "HTTP/1.0") != 0;
    if (r->nhost > 1 || (http11 && r->nhost == 0))
        return m->verdict = ROUTER_BAD_REQUEST;
    if (r->host && !router_host_ok(cfg, r->host))
        return m->verdict = ROUTER_MISDIRECTED;
    router_verdict v = router_route_path(cfg, r->method, r->path, m);
    if (v != ROUTER_OK)
        return v;
    if (m->route->mutating && !router_same_site(cfg, r))
        return m->verdict = ROUTER_CROSS_SITE;
    int needs_token = m->route->mutating || m->route->secret ||
                      (cfg->private_reads && !m->route->open);
    if (needs_token && !router_token_ok(cfg->token, r->authorization))
        return m->verdict = ROUTER_UNAUTHORIZED;
    return v;
}
