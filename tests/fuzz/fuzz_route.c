/*
 * fuzz_route.c - fuzz target: what the server reads from a request line and its headers. The
 * router (server/router.c) over its own exported route table, the book-id path segment, the
 * bearer-token comparison, and the query values parsed by time_parse_iso() (?since=) and
 * time_parse_duration() (the --refresh-every / config form).
 *
 * Input: a request target "PATH[?QUERY]" up to the first NUL. PATH is matched against every
 * pattern of router_routes with the router's own argument size (ROUTER_ARG_MAX) and with a small
 * buffer (1-16 bytes, from the path length) allocated to its exact size, then routed with each
 * of a few methods, with and without a stand-in dashboard. The whole input is also compared as
 * an Authorization header value against a fixed token. Every QUERY value ("k=v&k=v"), and the
 * whole input, goes to both time parsers.
 *
 * Invariants: router_segment_match agrees with a simple reference matcher (prefix, one
 * non-slash segment that fits the buffer, suffix) and leaves a terminated argument; the route
 * verdict is the one the reference matches imply (too long, the route of the method, 405 with
 * exactly the methods that match plus HEAD beside GET, a dashboard file outside /api/, not
 * found), a /api/books/ path holding a product URL being read as the book routes with the URL
 * as their argument; a segment that parses as a book id is well formed and re-parses to
 * itself; the token comparison agrees with a plain one; a parsed time written back by
 * time_format_iso parses to the same second (years 1970-9999); a parsed duration is > 0 and at
 * most 100 years, and parses back from its plain-seconds form.
 */
#include "fuzz_common.h"

#include <strings.h>

#include "common/timeutil.h"
#include "server/router.h"

/* Reference matcher: the pattern's text before '*', one non-empty segment without '/' that fits
 * arglen with its NUL, then the pattern's text after '*'. */
static int fuzz_route_ref(const char *pattern, const char *path, size_t arglen, char *want,
                          size_t wantlen)
{
    want[0] = '\0';
    const char *star = strchr(pattern, '*');
    if (!star)
        return strcmp(pattern, path) == 0;
    size_t pre = (size_t)(star - pattern), suf = strlen(star + 1), plen = strlen(path);
    if (plen < pre + suf || strncmp(path, pattern, pre) != 0 ||
        strcmp(path + plen - suf, star + 1) != 0)
        return 0;
    size_t seg = plen - pre - suf;
    if (seg == 0 || seg + 1 > arglen || seg + 1 > wantlen || memchr(path + pre, '/', seg))
        return 0;
    memcpy(want, path + pre, seg);
    want[seg] = '\0';
    return 1;
}

static void fuzz_route_one(const char *pattern, const char *path, size_t arglen)
{
    char *arg = malloc(arglen);
    static char want[ROUTER_ARG_MAX];
    if (!arg)
        abort();
    int got = router_segment_match(pattern, path, arg, arglen);
    int ref = fuzz_route_ref(pattern, path, arglen, want, sizeof want);
    FUZZ_CHECK(got == ref, "route %s, path '%.80s', arglen %zu: matched %d, expected %d", pattern,
               path, arglen, got, ref);
    if (got && ref) {
        FUZZ_CHECK(memchr(arg, '\0', arglen) && strcmp(arg, want) == 0,
                   "route %s, path '%.80s': argument '%.80s', expected '%.80s'", pattern, path,
                   memchr(arg, '\0', arglen) ? arg : "(unterminated)", want);
        /* The handlers of /api/books/... read the segment as a book id (h_path_id). */
        if (strncmp(pattern, "/api/books/*", 12) == 0) {
            book_id b;
            char why[160];
            if (id_parse(arg, strlen(arg), &b, why, sizeof why) == ID_OK)
                fuzz_check_id(&b, "path segment");
            else
                FUZZ_CHECK(why[0] != '\0', "path segment: an error without a reason");
        }
    }
    free(arg);
}

/* A stand-in dashboard of two files; only whether the answer is NULL matters to the router. */
static const struct web_asset *fuzz_route_asset(const char *path)
{
    static const char file = 0;
    if (strcmp(path, "/") == 0 || strcmp(path, "/app.js") == 0)
        return (const struct web_asset *)(const void *)&file;
    return NULL;
}

/* Whether allow, a ", "-separated list, names method. */
static int fuzz_allow_has(const char *allow, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)) != NULL; p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return 0;
}

/* A book named by its product URL (SPEC §3: a path's {id} takes every input form; libmicrohttpd
 * has decoded the URL's %2F into slashes): a /api/books/ path whose rest holds a slash and starts
 * with http: or https:, or holds /dp/ or /gp/, is read as the book routes with that rest (less a
 * final /history) as their argument. Returns the path the route table is matched against and
 * leaves the argument in url_arg ("" when path names no book by URL). */
static const char *fuzz_route_book_url(const char *path, char *url_arg, size_t arglen)
{
    url_arg[0] = '\0';
    if (strncmp(path, "/api/books/", 11) != 0)
        return path;
    const char *rest = path + 11;
    if (!strchr(rest, '/'))
        return path;
    if (strncmp(rest, "http:", 5) != 0 && strncmp(rest, "https:", 6) != 0 &&
        !strstr(rest, "/dp/") && !strstr(rest, "/gp/"))
        return path;
    size_t n = strlen(rest);
    int history = n > 8 && strcmp(rest + n - 8, "/history") == 0;
    if (history)
        n -= 8;
    if (n + 1 > arglen)
        abort(); /* the caller passes room for any path of at most SRV_PATH_MAX bytes */
    memcpy(url_arg, rest, n);
    url_arg[n] = '\0';
    return history ? "/api/books/_/history" : "/api/books/_";
}

static void fuzz_route_verdict(const char *request_path, const char *method, router_asset_fn asset)
{
    router_config cfg = {.token = NULL, .asset = asset};
    static router_match m;
    router_verdict v = router_route_path(&cfg, method, request_path, &m);
    FUZZ_CHECK(v == m.verdict, "%s '%.80s': returned %d, recorded %d", method, request_path, (int)v,
               (int)m.verdict);
    if (strlen(request_path) > SRV_PATH_MAX) {
        FUZZ_CHECK(v == ROUTER_PATH_TOO_LONG, "%s of a %zu-byte path: verdict %d", method,
                   strlen(request_path), (int)v);
        return;
    }
    static char url_arg[ROUTER_ARG_MAX];
    const char *path = fuzz_route_book_url(request_path, url_arg, sizeof url_arg);
    const char *as = strcmp(method, "HEAD") == 0 ? "GET" : method;
    static char want[ROUTER_ARG_MAX];
    const router_route *expect = NULL;
    int any = 0, get = 0;
    for (size_t i = 0; i < router_nroutes; i++) {
        if (!fuzz_route_ref(router_routes[i].pattern, path, ROUTER_ARG_MAX, want, sizeof want))
            continue;
        any = 1;
        get |= strcmp(router_routes[i].method, "GET") == 0;
        if (strcmp(router_routes[i].method, as) == 0) {
            FUZZ_CHECK(!expect, "'%.80s': two %s routes match", request_path, as);
            expect = &router_routes[i];
        }
        FUZZ_CHECK(v == ROUTER_OK || fuzz_allow_has(m.allow, router_routes[i].method),
                   "%s '%.80s': Allow '%s' lacks %s", method, request_path, m.allow,
                   router_routes[i].method);
    }
    if (expect) {
        FUZZ_CHECK(v == ROUTER_OK && m.route == expect, "%s '%.80s': verdict %d, expected %s %s",
                   method, request_path, (int)v, expect->method, expect->pattern);
        FUZZ_CHECK(!url_arg[0] || strcmp(m.arg, url_arg) == 0,
                   "%s '%.80s': argument '%.80s', expected the product URL '%.80s'", method,
                   request_path, m.arg, url_arg);
        return;
    }
    int api = strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0;
    int file = !any && !api && asset && asset(path);
    if (file && strcmp(as, "GET") == 0) {
        FUZZ_CHECK(v == ROUTER_ASSET && m.asset != NULL, "%s '%.80s': a file, verdict %d", method,
                   request_path, (int)v);
        return;
    }
    if (any || file) {
        FUZZ_CHECK(v == ROUTER_WRONG_METHOD, "%s '%.80s': verdict %d, expected 405", method,
                   request_path, (int)v);
        FUZZ_CHECK(fuzz_allow_has(m.allow, "HEAD") == (get || file),
                   "%s '%.80s': Allow '%s' and HEAD", method, request_path, m.allow);
        FUZZ_CHECK(!file || strcmp(m.allow, "GET, HEAD") == 0, "%s '%.80s': a file allows '%s'",
                   method, request_path, m.allow);
        return;
    }
    FUZZ_CHECK(v == ROUTER_NOT_FOUND, "%s '%.80s': verdict %d, expected not found", method,
               request_path, (int)v);
}

static void fuzz_route_token(const char *header)
{
    static const char token[] = "s3cret";
    int ref = strncasecmp(header, "Bearer ", 7) == 0 && strcmp(header + 7, token) == 0;
    FUZZ_CHECK(router_token_ok(token, header) == ref, "token: '%.80s' accepted %d, expected %d",
               header, !ref, ref);
    FUZZ_CHECK(router_token_ok(NULL, header) && router_token_ok("", header),
               "token: no token must accept '%.80s'", header);
}

static void fuzz_time_value(const char *v)
{
    int64_t ms = 0;
    if (time_parse_iso(v, &ms) == 0 && ms >= 0 && ms < INT64_C(253402300800000)) {
        char text[32];
        time_format_iso(ms, text, sizeof text);
        int64_t again = -1;
        int rc = time_parse_iso(text, &again);
        FUZZ_CHECK(rc == 0 && again == ms - ms % 1000,
                   "time '%.60s' = %lld ms, written back as '%s' = %lld ms", v, (long long)ms, text,
                   (long long)again);
    }
    int64_t secs = 0;
    if (time_parse_duration(v, &secs) == 0) {
        FUZZ_CHECK(secs > 0 && secs <= INT64_C(100) * 365 * 86400,
                   "duration '%.60s' = %lld s is out of range", v, (long long)secs);
        char text[32];
        snprintf(text, sizeof text, "%lld", (long long)secs);
        int64_t again = -1;
        FUZZ_CHECK(time_parse_duration(text, &again) == 0 && again == secs,
                   "duration '%.60s' = %lld s does not parse back from '%s'", v, (long long)secs,
                   text);
    }
}

static void fuzz_route(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "get"};
    char *s = fuzz_cstr(data, size);
    char *query = strchr(s, '?');
    char *path = s;
    if (query) {
        size_t plen = (size_t)(query - s);
        path = malloc(plen + 1);
        if (!path)
            abort();
        memcpy(path, s, plen);
        path[plen] = '\0';
    }

    size_t small = 1 + strlen(path) % 16;
    for (size_t i = 0; i < router_nroutes; i++) {
        fuzz_route_one(router_routes[i].pattern, path, ROUTER_ARG_MAX);
        fuzz_route_one(router_routes[i].pattern, path, small);
    }
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        fuzz_route_verdict(path, methods[i], NULL);
        fuzz_route_verdict(path, methods[i], fuzz_route_asset);
    }
    fuzz_route_token(s);

    fuzz_time_value(s);
    if (query) {
        /* Each value of "k=v&k=v", cut out into its own exact-size string. */
        for (char *p = query + 1; *p;) {
            size_t n = strcspn(p, "&");
            char *eq = memchr(p, '=', n);
            const char *v = eq ? eq + 1 : p;
            size_t vlen = n - (size_t)(v - p);
            char *value = malloc(vlen + 1);
            if (!value)
                abort();
            memcpy(value, v, vlen);
            value[vlen] = '\0';
            fuzz_time_value(value);
            free(value);
            p += n;
            if (*p == '&')
                p++;
        }
        free(path);
    }
    free(s);
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_route(data, size);
    return 0;
}
#endif
