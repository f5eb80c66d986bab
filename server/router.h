/*
 * router.h - where a request goes and whether it may: the route table, path matching, HEAD as
 * GET, the methods a path allows, the dashboard's files as the fallback, and the checks of a
 * mutating request (cross-site Origin / Sec-Fetch-Site, the bearer token in constant time).
 * Private to server/ (tests and the route fuzzer use it too; no library header).
 *
 * Everything here reads the request line and the headers only, so a request is judged before
 * any body byte is kept (http.c calls router_check on its first callback). The router returns
 * verdicts; the handlers decide which HTTP status and error code each one gets.
 *
 * Threads: the table is constant and the functions are pure: any thread.
 */
#ifndef BOOKRANK_SERVER_ROUTER_H
#define BOOKRANK_SERVER_ROUTER_H

#include <stddef.h>

#include "limits.h"
#include "request.h"

/* The handler a route leads to (handlers.c maps each to its function). */
typedef enum router_handler {
    ROUTE_BOOKS_LIST,
    ROUTE_BOOKS_ADD,
    ROUTE_BOOK_GET,
    ROUTE_BOOK_DELETE,
    ROUTE_BOOK_PATCH,
    ROUTE_BOOK_HISTORY,
    ROUTE_REFRESH,
    ROUTE_JOB_GET,
    ROUTE_JOBS_LIST,
    ROUTE_JOB_CANCEL,
    ROUTE_EXPORT,
    ROUTE_CONFIG,
    ROUTE_HEALTHZ,
    ROUTE_METRICS,
    ROUTE_ALERTS_LIST,
    ROUTE_ALERTS_ADD,
    ROUTE_ALERT_DELETE,
    ROUTE_ALERT_EVENTS
} router_handler;

typedef struct router_route {
    const char *method;
    const char *pattern; /* "*" takes one non-empty segment: the handler's argument */
    router_handler handler;
    int mutating; /* changes something: same-site only, and the token */
    int secret;   /* holds secrets (alert targets): the token whenever one is set */
    int open;     /* answered even with --private (health checks) */
} router_route;

extern const router_route router_routes[];
extern const size_t router_nroutes;

/* One size for a route's argument, wherever a path is matched: a segment can be the whole
 * (longest accepted) path. */
#define ROUTER_ARG_MAX (SRV_PATH_MAX + 1)
#define ROUTER_ALLOW_MAX 128

/* The dashboard's files: web_asset_find, or a test's own. */
struct web_asset;
typedef const struct web_asset *(*router_asset_fn)(const char *path);

/* Most --public-url names the server answers to. */
#define ROUTER_MAX_PUBLIC 8
#define ROUTER_HOST_MAX 256

typedef struct router_config {
    const char *token;     /* NULL or "" = no token needed */
    router_asset_fn asset; /* NULL = no dashboard */
    int private_reads;     /* --private: reads of the API need the token too */
    /* --public-url: the host names (lower case, no port) and origins ("https://name[:port]")
     * users reach the server at through a proxy. */
    char public_hosts[ROUTER_MAX_PUBLIC][ROUTER_HOST_MAX];
    char public_origins[ROUTER_MAX_PUBLIC][ROUTER_HOST_MAX + 16];
    size_t npublic;
} router_config;

/* Adds a --public-url ("https://books.example.org[:port][/path]"): 0, or -1 with why. */
BR_MUST_CHECK int router_add_public_url(router_config *cfg, const char *url, char *why,
                                        size_t whylen);

/* Whether a Host header value names this server (SPEC §3: IP literals, localhost and
 * *.localhost, the --public-url names; the port is not compared). DNS rebinding gives an
 * attacker's page our address under the attacker's name: that name is refused here. */
int router_host_ok(const router_config *cfg, const char *host);

typedef enum router_verdict {
    ROUTER_OK = 0,        /* route and arg are set */
    ROUTER_BAD_REQUEST,   /* HTTP/1.1 without exactly one Host header */
    ROUTER_MISDIRECTED,   /* a Host this server does not answer to */
    ROUTER_ASSET,         /* a dashboard file (GET or HEAD): asset is set */
    ROUTER_PATH_TOO_LONG, /* over SRV_PATH_MAX bytes */
    ROUTER_NOT_FOUND,
    ROUTER_WRONG_METHOD, /* allow lists the methods the path takes */
    ROUTER_CROSS_SITE,   /* a mutating request from another site */
    ROUTER_UNAUTHORIZED  /* a mutating request without the token */
} router_verdict;

typedef struct router_match {
    router_verdict verdict;
    const router_route *route; /* the matched route (also for CROSS_SITE, UNAUTHORIZED) */
    const struct web_asset *asset;
    char arg[ROUTER_ARG_MAX];     /* the "*" segment, "" when none */
    char allow[ROUTER_ALLOW_MAX]; /* "GET, POST, HEAD" for WRONG_METHOD */
} router_match;

/* A short stable name of a verdict ("not found", ...). */
const char *router_strerror(router_verdict v);

/* Matches path against one pattern; the "*" segment is copied into arg[0..arglen), and a
 * segment that does not fit is no match. 1 on a match. */
int router_segment_match(const char *pattern, const char *path, char *arg, size_t arglen);

/* Method and path only: ROUTER_OK, ROUTER_ASSET, ROUTER_PATH_TOO_LONG, ROUTER_NOT_FOUND or
 * ROUTER_WRONG_METHOD. Fills *m. */
router_verdict router_route_path(const router_config *cfg, const char *method, const char *path,
                                 router_match *m);

/* The whole verdict on a request's headers: Host, the route, then for a mutating route the
 * site check and the token (and the token for secret routes, and for every API read with
 * --private). Fills *m (m->verdict is the result). */
router_verdict router_check(const router_config *cfg, const srv_request *r, router_match *m);

/* Whether a mutating request may come from where it says it comes from: no Origin (not a
 * browser), or an Origin naming the request's own Host or a --public-url. */
int router_same_site(const router_config *cfg, const srv_request *r);
/* Whether an Authorization header value is "Bearer TOKEN" (scheme in any case), compared in
 * time that does not depend on where they differ. A NULL or empty token accepts anything. */
int router_token_ok(const char *token, const char *authorization);

#endif
