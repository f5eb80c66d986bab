/* test_router.c - server/router: every route and method, HEAD as GET, 405 with its Allow list,
 * 404, the dashboard fallback, odd paths (trailing slashes, empty and over-long segments,
 * percent-encoded leftovers), the cross-site rule and the bearer token (also for reads of
 * /api/alerts*). Table-driven; no
 * libmicrohttpd and no server involved. */
#include <stdio.h>
#include <string.h>

#include "../../server/router.h"
#include "../../web/web.h"
#include "../lib/check.h"

/* A stand-in dashboard: only whether the answer is NULL matters to the router. Also claims two
 * paths under /api, which the router must never serve as files. */
static const char fake_file = 0;
static const struct web_asset *fake_assets(const char *path)
{
    static const char *const files[] = {"/", "/app.js", "/api", "/api/secret.js"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (strcmp(path, files[i]) == 0)
            return (const struct web_asset *)(const void *)&fake_file;
    return NULL;
}

typedef struct route_case {
    const char *method;
    const char *path;
    router_verdict verdict;
    int handler;       /* router_handler for ROUTER_OK, else -1 */
    const char *arg;   /* for ROUTER_OK */
    const char *allow; /* for ROUTER_WRONG_METHOD */
} route_case;

static const route_case route_cases[] = {
    /* every route, with its own method */
    {"GET", "/api/books", ROUTER_OK, ROUTE_BOOKS_LIST, "", NULL},
    {"POST", "/api/books", ROUTER_OK, ROUTE_BOOKS_ADD, "", NULL},
    {"GET", "/api/books/9780132269933", ROUTER_OK, ROUTE_BOOK_GET, "9780132269933", NULL},
    {"DELETE", "/api/books/0-13-226993-7", ROUTER_OK, ROUTE_BOOK_DELETE, "0-13-226993-7", NULL},
    {"PATCH", "/api/books/B00ZV9PXP2", ROUTER_OK, ROUTE_BOOK_PATCH, "B00ZV9PXP2", NULL},
    {"GET", "/api/books/x/history", ROUTER_OK, ROUTE_BOOK_HISTORY, "x", NULL},
    {"POST", "/api/refresh", ROUTER_OK, ROUTE_REFRESH, "", NULL},
    {"GET", "/api/jobs", ROUTER_OK, ROUTE_JOBS_LIST, "", NULL},
    {"GET", "/api/jobs/42", ROUTER_OK, ROUTE_JOB_GET, "42", NULL},
    {"DELETE", "/api/jobs/42", ROUTER_OK, ROUTE_JOB_CANCEL, "42", NULL},
    {"GET", "/api/export.csv", ROUTER_OK, ROUTE_EXPORT, "", NULL},
    {"GET", "/api/config", ROUTER_OK, ROUTE_CONFIG, "", NULL},
    {"GET", "/healthz", ROUTER_OK, ROUTE_HEALTHZ, "", NULL},
    {"GET", "/metrics", ROUTER_OK, ROUTE_METRICS, "", NULL},
    {"GET", "/api/alerts", ROUTER_OK, ROUTE_ALERTS_LIST, "", NULL},
    {"POST", "/api/alerts", ROUTER_OK, ROUTE_ALERTS_ADD, "", NULL},
    {"GET", "/api/alerts/events", ROUTER_OK, ROUTE_ALERT_EVENTS, "", NULL},
    {"DELETE", "/api/alerts/3", ROUTER_OK, ROUTE_ALERT_DELETE, "3", NULL},
    /* "events" is a rule number to DELETE: its handler answers 400 */
    {"DELETE", "/api/alerts/events", ROUTER_OK, ROUTE_ALERT_DELETE, "events", NULL},
    /* HEAD is GET */
    {"HEAD", "/api/books", ROUTER_OK, ROUTE_BOOKS_LIST, "", NULL},
    {"HEAD", "/api/books/abc", ROUTER_OK, ROUTE_BOOK_GET, "abc", NULL},
    {"HEAD", "/metrics", ROUTER_OK, ROUTE_METRICS, "", NULL},
    {"HEAD", "/api/jobs", ROUTER_OK, ROUTE_JOBS_LIST, "", NULL},
    {"HEAD", "/api/refresh", ROUTER_WRONG_METHOD, -1, NULL, "POST"},
    {"HEAD", "/api/alerts", ROUTER_OK, ROUTE_ALERTS_LIST, "", NULL},
    {"HEAD", "/api/alerts/events", ROUTER_OK, ROUTE_ALERT_EVENTS, "", NULL},
    /* wrong methods: Allow lists what the path takes, HEAD beside GET */
    {"PUT", "/api/books", ROUTER_WRONG_METHOD, -1, NULL, "GET, POST, HEAD"},
    {"DELETE", "/api/books", ROUTER_WRONG_METHOD, -1, NULL, "GET, POST, HEAD"},
    {"TRACE", "/api/books/1", ROUTER_WRONG_METHOD, -1, NULL, "GET, DELETE, PATCH, HEAD"},
    {"POST", "/api/books/1", ROUTER_WRONG_METHOD, -1, NULL, "GET, DELETE, PATCH, HEAD"},
    {"PATCH", "/api/books/x/history", ROUTER_WRONG_METHOD, -1, NULL, "GET, HEAD"},
    {"OPTIONS", "/api/books/x/history", ROUTER_WRONG_METHOD, -1, NULL, "GET, HEAD"},
    {"GET", "/api/refresh", ROUTER_WRONG_METHOD, -1, NULL, "POST"},
    {"POST", "/healthz", ROUTER_WRONG_METHOD, -1, NULL, "GET, HEAD"},
    {"PUT", "/api/jobs/1", ROUTER_WRONG_METHOD, -1, NULL, "GET, DELETE, HEAD"},
    {"POST", "/api/jobs", ROUTER_WRONG_METHOD, -1, NULL, "GET, HEAD"},
    {"DELETE", "/api/jobs", ROUTER_WRONG_METHOD, -1, NULL, "GET, HEAD"},
    {"PUT", "/api/alerts", ROUTER_WRONG_METHOD, -1, NULL, "GET, POST, HEAD"},
    {"DELETE", "/api/alerts", ROUTER_WRONG_METHOD, -1, NULL, "GET, POST, HEAD"},
    {"GET", "/api/alerts/3", ROUTER_WRONG_METHOD, -1, NULL, "DELETE"},
    {"PATCH", "/api/alerts/3", ROUTER_WRONG_METHOD, -1, NULL, "DELETE"},
    {"POST", "/api/alerts/events", ROUTER_WRONG_METHOD, -1, NULL, "GET, DELETE, HEAD"},
    {"get", "/healthz", ROUTER_WRONG_METHOD, -1, NULL, "GET, HEAD"},
    {"", "/metrics", ROUTER_WRONG_METHOD, -1, NULL, "GET, HEAD"},
    /* not found */
    {"GET", "/api/nope", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"POST", "/api/nope", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/nope", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "*", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/api/jobs/", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/API/books", ROUTER_NOT_FOUND, -1, NULL, NULL},
    /* the dashboard: GET and HEAD only, never under /api */
    {"GET", "/", ROUTER_ASSET, -1, NULL, NULL},
    {"HEAD", "/app.js", ROUTER_ASSET, -1, NULL, NULL},
    {"POST", "/", ROUTER_WRONG_METHOD, -1, NULL, "GET, HEAD"},
    {"DELETE", "/app.js", ROUTER_WRONG_METHOD, -1, NULL, "GET, HEAD"},
    {"GET", "/api", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/api/secret.js", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"POST", "/api/secret.js", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/app.js/", ROUTER_NOT_FOUND, -1, NULL, NULL},
    /* trailing slashes and empty segments */
    {"GET", "/api/books/", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/healthz/", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/api/books/x/", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/api/books/x/history/", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/api/books//history", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "//api/books", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/api//books", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/api/books/a/b", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/api/jobs/1/2", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/api/alerts/", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"DELETE", "/api/alerts/3/x", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/api/alerts/events/", ROUTER_NOT_FOUND, -1, NULL, NULL},
    /* percent-encoded leftovers are plain text to the router (http.c keeps "%00" as is) */
    {"GET", "/api/books/9780132269933%00", ROUTER_OK, ROUTE_BOOK_GET, "9780132269933%00", NULL},
    {"GET", "/api/books/..%2f..%2fetc", ROUTER_OK, ROUTE_BOOK_GET, "..%2f..%2fetc", NULL},
    {"GET", "/api%2fbooks", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/%2e%2e/etc/passwd", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {"GET", "/api/books/%ff%fe/history", ROUTER_OK, ROUTE_BOOK_HISTORY, "%ff%fe", NULL},
    {"GET", "/api/books/\xff\xfe", ROUTER_OK, ROUTE_BOOK_GET, "\xff\xfe", NULL},
};

static void check_route_case(const route_case *c, router_asset_fn assets)
{
    router_config cfg = {.token = NULL, .asset = assets};
    static router_match m;
    char what[300];
    router_verdict v = router_route_path(&cfg, c->method, c->path, &m);
    snprintf(what, sizeof what, "%s '%.60s' -> %s", c->method, c->path,
             router_strerror(c->verdict));
    if (!CHECK(v == c->verdict && m.verdict == v, what))
        printf("#   got %s\n", router_strerror(v));
    if (c->verdict == ROUTER_OK) {
        snprintf(what, sizeof what, "%s '%.60s': handler and argument", c->method, c->path);
        CHECK(m.route && (int)m.route->handler == c->handler, what);
        CHECK_STR(m.arg, c->arg, what);
    } else {
        snprintf(what, sizeof what, "%s '%.60s': no route", c->method, c->path);
        CHECK(m.route == NULL, what);
    }
    if (c->verdict == ROUTER_WRONG_METHOD) {
        snprintf(what, sizeof what, "%s '%.60s': Allow", c->method, c->path);
        CHECK_STR(m.allow, c->allow, what);
    }
    snprintf(what, sizeof what, "%s '%.60s': a file exactly for a dashboard verdict", c->method,
             c->path);
    CHECK((m.asset != NULL) == (c->verdict == ROUTER_ASSET), what);
}

static void test_routes(void)
{
    for (size_t i = 0; i < sizeof route_cases / sizeof route_cases[0]; i++)
        check_route_case(&route_cases[i], fake_assets);

    /* Without a dashboard the fallback is 404; with the real one "/" is index.html. */
    router_config none = {0}, real = {.asset = web_asset_find};
    static router_match m;
    CHECK(router_route_path(&none, "GET", "/", &m) == ROUTER_NOT_FOUND, "no dashboard: / is 404");
    CHECK(router_route_path(&none, "POST", "/app.js", &m) == ROUTER_NOT_FOUND,
          "no dashboard: POST /app.js is 404, not 405");
    CHECK(router_route_path(&real, "GET", "/", &m) == ROUTER_ASSET &&
              m.asset == web_asset_find("/"),
          "the real dashboard: / is its index");
    CHECK(router_route_path(&real, "GET", "/index.html", &m) == ROUTER_ASSET && m.asset &&
              m.asset->data == web_asset_find("/")->data,
          "the real dashboard: /index.html is the same page");
    CHECK(router_route_path(&real, "GET", "/js/main.js", &m) == ROUTER_ASSET,
          "the real dashboard: its modules under /js/");
}

static void test_table(void)
{
    CHECK(router_nroutes == 18, "eighteen routes");
    int dup = 0, mutating_ok = 1, upper = 1;
    for (size_t i = 0; i < router_nroutes; i++) {
        const router_route *r = &router_routes[i];
        for (size_t j = i + 1; j < router_nroutes; j++)
            dup |= strcmp(r->method, router_routes[j].method) == 0 &&
                   strcmp(r->pattern, router_routes[j].pattern) == 0;
        /* Only GET is safe here; everything else changes something and needs the checks. */
        mutating_ok &= r->mutating == (strcmp(r->method, "GET") != 0);
        upper &= strspn(r->method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(r->method);
        upper &= r->pattern[0] == '/';
    }
    CHECK(!dup, "no method and pattern twice");
    CHECK(mutating_ok, "exactly the non-GET routes are mutating");
    /* SPEC §3: /api/alerts* holds webhook addresses; nothing else is secret. */
    int secret_ok = 1;
    for (size_t i = 0; i < router_nroutes; i++)
        secret_ok &= router_routes[i].secret ==
                     (strncmp(router_routes[i].pattern, "/api/alerts", 11) == 0);
    CHECK(secret_ok, "exactly the /api/alerts routes are secret");
    CHECK(upper, "methods upper case, patterns absolute");
    for (int v = ROUTER_OK; v <= ROUTER_UNAUTHORIZED; v++)
        CHECK(strcmp(router_strerror((router_verdict)v), "unknown verdict") != 0,
              "every verdict has a name");
}

static void test_lengths(void)
{
    static char path[SRV_PATH_MAX + 64];
    static router_match m;
    router_config cfg = {0};
    const char *prefix = "/api/books/";
    size_t pl = strlen(prefix);

    /* The longest accepted path: its segment is the rest, and fits the argument. */
    memcpy(path, prefix, pl);
    memset(path + pl, '9', SRV_PATH_MAX - pl);
    path[SRV_PATH_MAX] = '\0';
    CHECK(router_route_path(&cfg, "GET", path, &m) == ROUTER_OK &&
              strlen(m.arg) == SRV_PATH_MAX - pl,
          "a path of SRV_PATH_MAX bytes routes, with its whole segment");
    path[SRV_PATH_MAX] = '9';
    path[SRV_PATH_MAX + 1] = '\0';
    CHECK(router_route_path(&cfg, "GET", path, &m) == ROUTER_PATH_TOO_LONG,
          "one byte more is too long");
    CHECK(router_route_path(&cfg, "POST", path, &m) == ROUTER_PATH_TOO_LONG,
          "too long whatever the method");
    memset(path, 'x', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    CHECK(router_route_path(&cfg, "GET", path, &m) == ROUTER_PATH_TOO_LONG,
          "a long path without a route is too long, not 404");
    CHECK(ROUTER_ARG_MAX == SRV_PATH_MAX + 1, "one argument size: a segment can be the whole path");

    /* router_segment_match on its own: the argument must fit with its NUL. */
    char small[4];
    CHECK(router_segment_match("/api/jobs/*", "/api/jobs/123", small, sizeof small) &&
              strcmp(small, "123") == 0,
          "a 3-byte segment fits 4 bytes");
    CHECK(!router_segment_match("/api/jobs/*", "/api/jobs/1234", small, sizeof small),
          "a 4-byte segment does not fit 4 bytes: no match");
    CHECK(!router_segment_match("/api/jobs/*", "/api/jobs/", small, sizeof small) && small[0] == 0,
          "an empty segment: no match, empty argument");
    CHECK(router_segment_match("/api/books/*/history", "/api/books/ab/history", small,
                               sizeof small) &&
              strcmp(small, "ab") == 0,
          "a segment in the middle");
    CHECK(!router_segment_match("/api/books/*/history", "/api/books/ab/historyx", small,
                                sizeof small),
          "the text after the segment must end the path");
    CHECK(!router_segment_match("/healthz", "/health", small, sizeof small),
          "a prefix of a pattern is no match");
}

/* ---- the checks of mutating requests --------------------------------------------------------- */

typedef struct check_case {
    const char *what;
    const char *method;
    const char *path;
    const char *host, *origin, *fetch_site, *authorization;
    const char *token;
    router_verdict verdict;
} check_case;

static const check_case check_cases[] = {
    {"POST without Origin", "POST", "/api/books", "127.0.0.1:8080", NULL, NULL, NULL, NULL,
     ROUTER_OK},
    {"POST from this origin", "POST", "/api/books", "127.0.0.1:8080", "http://127.0.0.1:8080", NULL,
     NULL, NULL, ROUTER_OK},
    {"Origin host compared without case", "DELETE", "/api/books/1", "localhost:8080",
     "http://LocalHost:8080", NULL, NULL, NULL, ROUTER_OK},
    {"https origin of this host", "POST", "/api/refresh", "[::1]", "https://[::1]", NULL, NULL,
     NULL, ROUTER_OK},
    {"Origin of another host", "POST", "/api/books", "127.0.0.1:8080", "http://evil.example", NULL,
     NULL, NULL, ROUTER_CROSS_SITE},
    {"PATCH from another host", "PATCH", "/api/books/1", "127.0.0.1:8080", "http://evil.example",
     NULL, NULL, NULL, ROUTER_CROSS_SITE},
    {"a job cancel from another site", "DELETE", "/api/jobs/1", "127.0.0.1", NULL, "cross-site",
     NULL, NULL, ROUTER_CROSS_SITE},
    {"Origin of another port", "POST", "/api/books", "127.0.0.1:8080", "http://127.0.0.1:8081",
     NULL, NULL, NULL, ROUTER_CROSS_SITE},
    {"Origin with a path is not this host", "POST", "/api/books", "127.0.0.1", "http://127.0.0.1/x",
     NULL, NULL, NULL, ROUTER_CROSS_SITE},
    {"Origin: null", "POST", "/api/books", "127.0.0.1", "null", NULL, NULL, NULL,
     ROUTER_CROSS_SITE},
    {"Origin without Host", "POST", "/api/books", NULL, "http://127.0.0.1", NULL, NULL, NULL,
     ROUTER_CROSS_SITE},
    {"Sec-Fetch-Site: cross-site, no Origin", "POST", "/api/refresh", "127.0.0.1", NULL,
     "cross-site", NULL, NULL, ROUTER_CROSS_SITE},
    {"Sec-Fetch-Site: cross-site beats a matching Origin", "POST", "/api/books", "127.0.0.1",
     "http://127.0.0.1", "cross-site", NULL, NULL, ROUTER_CROSS_SITE},
    {"Sec-Fetch-Site: same-origin", "POST", "/api/books", "127.0.0.1", NULL, "same-origin", NULL,
     NULL, ROUTER_OK},
    {"Sec-Fetch-Site: same-site", "POST", "/api/books", "127.0.0.1", NULL, "same-site", NULL, NULL,
     ROUTER_OK},
    {"Sec-Fetch-Site: none", "POST", "/api/books", "127.0.0.1", NULL, "none", NULL, NULL,
     ROUTER_OK},
    {"reading from another site is fine", "GET", "/api/books", "127.0.0.1", "http://evil.example",
     "cross-site", NULL, NULL, ROUTER_OK},
    {"a 404 is a 404 whatever the site", "POST", "/api/nope", "127.0.0.1", "http://evil.example",
     NULL, NULL, "s3cret", ROUTER_NOT_FOUND},
    {"a 405 is a 405 without the token", "PUT", "/api/books", "127.0.0.1", NULL, NULL, NULL,
     "s3cret", ROUTER_WRONG_METHOD},
    /* the token */
    {"token: none sent", "POST", "/api/books", "127.0.0.1", NULL, NULL, NULL, "s3cret",
     ROUTER_UNAUTHORIZED},
    {"token: right", "POST", "/api/books", "127.0.0.1", NULL, NULL, "Bearer s3cret", "s3cret",
     ROUTER_OK},
    {"token: scheme in lower case", "POST", "/api/books", "127.0.0.1", NULL, NULL, "bearer s3cret",
     "s3cret", ROUTER_OK},
    {"token: scheme in upper case", "DELETE", "/api/books/1", "127.0.0.1", NULL, NULL,
     "BEARER s3cret", "s3cret", ROUTER_OK},
    {"token: PATCH of a book needs it", "PATCH", "/api/books/1", "127.0.0.1", NULL, NULL, NULL,
     "s3cret", ROUTER_UNAUTHORIZED},
    {"token: cancelling a job needs it", "DELETE", "/api/jobs/1", "127.0.0.1", NULL, NULL, NULL,
     "s3cret", ROUTER_UNAUTHORIZED},
    {"token: listing jobs does not", "GET", "/api/jobs", "127.0.0.1", NULL, NULL, NULL, "s3cret",
     ROUTER_OK},
    {"token: wrong", "POST", "/api/books", "127.0.0.1", NULL, NULL, "Bearer wrong!", "s3cret",
     ROUTER_UNAUTHORIZED},
    {"token: a prefix (shorter)", "POST", "/api/books", "127.0.0.1", NULL, NULL, "Bearer s3cre",
     "s3cret", ROUTER_UNAUTHORIZED},
    {"token: one byte more", "POST", "/api/books", "127.0.0.1", NULL, NULL, "Bearer s3cret!",
     "s3cret", ROUTER_UNAUTHORIZED},
    {"token: case matters in the token", "POST", "/api/books", "127.0.0.1", NULL, NULL,
     "Bearer S3CRET", "s3cret", ROUTER_UNAUTHORIZED},
    {"token: Basic scheme", "POST", "/api/books", "127.0.0.1", NULL, NULL, "Basic s3cret", "s3cret",
     ROUTER_UNAUTHORIZED},
    {"token: no scheme", "POST", "/api/books", "127.0.0.1", NULL, NULL, "s3cret", "s3cret",
     ROUTER_UNAUTHORIZED},
    {"token: no space after the scheme", "POST", "/api/books", "127.0.0.1", NULL, NULL,
     "Bearers3cret", "s3cret", ROUTER_UNAUTHORIZED},
    {"token: two spaces", "POST", "/api/books", "127.0.0.1", NULL, NULL, "Bearer  s3cret", "s3cret",
     ROUTER_UNAUTHORIZED},
    {"token: scheme only", "POST", "/api/books", "127.0.0.1", NULL, NULL, "Bearer ", "s3cret",
     ROUTER_UNAUTHORIZED},
    {"token: empty header", "POST", "/api/books", "127.0.0.1", NULL, NULL, "", "s3cret",
     ROUTER_UNAUTHORIZED},
    {"token: not needed to read", "GET", "/api/books", "127.0.0.1", NULL, NULL, NULL, "s3cret",
     ROUTER_OK},
    /* SPEC §3: /api/alerts* needs the token for reads too whenever one is set */
    {"token: listing alert rules needs it", "GET", "/api/alerts", "127.0.0.1", NULL, NULL, NULL,
     "s3cret", ROUTER_UNAUTHORIZED},
    {"token: HEAD of alert rules needs it", "HEAD", "/api/alerts", "127.0.0.1", NULL, NULL, NULL,
     "s3cret", ROUTER_UNAUTHORIZED},
    {"token: alert events need it", "GET", "/api/alerts/events", "127.0.0.1", NULL, NULL, NULL,
     "s3cret", ROUTER_UNAUTHORIZED},
    {"token: a wrong one for alert events", "GET", "/api/alerts/events", "127.0.0.1", NULL, NULL,
     "Bearer nope", "s3cret", ROUTER_UNAUTHORIZED},
    {"token: adding an alert rule needs it", "POST", "/api/alerts", "127.0.0.1", NULL, NULL, NULL,
     "s3cret", ROUTER_UNAUTHORIZED},
    {"token: removing an alert rule needs it", "DELETE", "/api/alerts/1", "127.0.0.1", NULL, NULL,
     NULL, "s3cret", ROUTER_UNAUTHORIZED},
    {"token: alert rules with it", "GET", "/api/alerts", "127.0.0.1", NULL, NULL, "Bearer s3cret",
     "s3cret", ROUTER_OK},
    {"token: alert events with it", "GET", "/api/alerts/events", "127.0.0.1", NULL, NULL,
     "Bearer s3cret", "s3cret", ROUTER_OK},
    {"no token configured: alert rules are readable", "GET", "/api/alerts", "127.0.0.1", NULL, NULL,
     NULL, NULL, ROUTER_OK},
    {"a cross-site alert rule is refused", "POST", "/api/alerts", "127.0.0.1",
     "http://evil.example", NULL, NULL, NULL, ROUTER_CROSS_SITE},
    {"token: not needed for a file", "GET", "/", "127.0.0.1", NULL, NULL, NULL, "s3cret",
     ROUTER_ASSET},
    {"token: cross-site is said first", "POST", "/api/books", "127.0.0.1", "http://evil", NULL,
     "Bearer wrong", "s3cret", ROUTER_CROSS_SITE},
    {"no token configured: anything goes", "POST", "/api/books", "127.0.0.1", NULL, NULL, "Basic x",
     NULL, ROUTER_OK},
    {"empty token configured: anything goes", "POST", "/api/refresh", "127.0.0.1", NULL, NULL, NULL,
     "", ROUTER_OK},
};

static void test_checks(void)
{
    for (size_t i = 0; i < sizeof check_cases / sizeof check_cases[0]; i++) {
        const check_case *c = &check_cases[i];
        srv_request r = {.method = c->method,
                         .path = c->path,
                         .host = c->host,
                         .origin = c->origin,
                         .fetch_site = c->fetch_site,
                         .authorization = c->authorization,
                         .nhost = c->host ? 1 : 0,
                         /* HTTP/1.0 may leave Host out; the site rule is what is tested. */
                         .version = c->host ? "HTTP/1.1" : "HTTP/1.0"};
        router_config cfg = {.token = c->token, .asset = fake_assets};
        static router_match m;
        router_verdict v = router_check(&cfg, &r, &m);
        if (!CHECK(v == c->verdict && m.verdict == v, c->what))
            printf("#   got %s, want %s\n", router_strerror(v), router_strerror(c->verdict));
    }

    /* The comparison itself, including a token longer than the header and NUL-free lengths. */
    CHECK(router_token_ok("abc", "Bearer abc"), "token_ok: equal");
    CHECK(!router_token_ok("abc", "Bearer ab"), "token_ok: header shorter");
    CHECK(!router_token_ok("ab", "Bearer abc"), "token_ok: header longer");
    CHECK(!router_token_ok("abc", "Bearer abd"), "token_ok: last byte differs");
    CHECK(!router_token_ok("abc", "Bearer xbc"), "token_ok: first byte differs");
    CHECK(!router_token_ok("abc", NULL), "token_ok: no header");
    CHECK(router_token_ok(NULL, NULL) && router_token_ok("", "x"), "token_ok: no token");
}

/* SPEC §3: the Host values answered to, on every path; --public-url; --private; secrets. */
static void test_hosts(void)
{
    router_config cfg = {.asset = fake_assets};
    char why[200];
    CHECK(router_add_public_url(&cfg, "https://Books.Example.org/bookrank/", why, sizeof why) == 0,
          "a --public-url is taken");
    CHECK(router_add_public_url(&cfg, "http://proxy.example:8443", why, sizeof why) == 0,
          "a --public-url with a port is taken");
    CHECK(router_add_public_url(&cfg, "books.example.org", why, sizeof why) != 0 &&
              strstr(why, "--public-url"),
          "a --public-url without a scheme is refused");
    static const struct {
        const char *host;
        int ok;
    } hosts[] = {
        {"127.0.0.1:8080", 1},
        {"127.0.0.1", 1},
        {"10.1.2.3:80", 1},
        {"[::1]:8080", 1},
        {"[2001:db8::1]", 1},
        {"localhost", 1},
        {"LOCALHOST:1", 1},
        {"localhost.", 1},
        {"app.localhost:8080", 1},
        {"books.example.org", 1},
        {"BOOKS.example.org:443", 1},
        {"proxy.example:9", 1},
        {"evil.example", 0},
        {"evil.example:8080", 0},
        {"localhost.evil.example", 0},
        {"evillocalhost", 0},
        {"127.0.0.1.evil.example", 0},
        {"1.2.3", 0},
        {"1.2.3.4.5", 0},
        {"", 0},
        {":8080", 0},
        {"[::1", 0},
        {"books.example.org.evil", 0},
    };
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        char what[120];
        snprintf(what, sizeof what, "Host '%s' %s", hosts[i].host,
                 hosts[i].ok ? "answered" : "refused");
        CHECK(router_host_ok(&cfg, hosts[i].host) == hosts[i].ok, what);
    }

    static router_match m;
    srv_request r = {.method = "GET",
                     .path = "/api/books",
                     .host = "evil.example",
                     .nhost = 1,
                     .version = "HTTP/1.1"};
    CHECK_INT(router_check(&cfg, &r, &m), ROUTER_MISDIRECTED, "a read under another name: 421");
    r.path = "/";
    CHECK_INT(router_check(&cfg, &r, &m), ROUTER_MISDIRECTED,
              "the dashboard under another name: 421");
    r.path = "/nope";
    CHECK_INT(router_check(&cfg, &r, &m), ROUTER_MISDIRECTED, "even a 404 path: 421 first");
    r = (srv_request){.method = "GET", .path = "/api/books", .nhost = 0, .version = "HTTP/1.1"};
    CHECK_INT(router_check(&cfg, &r, &m), ROUTER_BAD_REQUEST, "HTTP/1.1 without Host: 400");
    r.version = "HTTP/1.0";
    CHECK_INT(router_check(&cfg, &r, &m), ROUTER_OK, "HTTP/1.0 without Host is fine");
    r = (srv_request){.method = "GET",
                      .path = "/api/books",
                      .host = "127.0.0.1",
                      .nhost = 2,
                      .version = "HTTP/1.1"};
    CHECK_INT(router_check(&cfg, &r, &m), ROUTER_BAD_REQUEST, "two Host headers: 400");

    /* Behind a proxy that sends its own upstream address as Host, the browser's Origin names
     * the public URL: a change is same-site. */
    r = (srv_request){.method = "POST",
                      .path = "/api/books",
                      .host = "127.0.0.1:8080",
                      .nhost = 1,
                      .version = "HTTP/1.1",
                      .origin = "https://books.example.org"};
    CHECK_INT(router_check(&cfg, &r, &m), ROUTER_OK, "Origin of a --public-url: same site");
    r.origin = "http://proxy.example:8443";
    CHECK_INT(router_check(&cfg, &r, &m), ROUTER_OK, "Origin of a --public-url with its port");
    r.origin = "http://proxy.example:8444";
    CHECK_INT(router_check(&cfg, &r, &m), ROUTER_CROSS_SITE,
              "another port of a --public-url: cross-site");
    r.origin = "https://evil.example";
    CHECK_INT(router_check(&cfg, &r, &m), ROUTER_CROSS_SITE, "another Origin: cross-site");

    /* --private: reads need the token; health and the dashboard's config question do not. */
    router_config priv = {.asset = fake_assets, .token = "t", .private_reads = 1};
    r = (srv_request){.method = "GET",
                      .path = "/api/books",
                      .host = "127.0.0.1",
                      .nhost = 1,
                      .version = "HTTP/1.1"};
    CHECK_INT(router_check(&priv, &r, &m), ROUTER_UNAUTHORIZED,
              "--private: a read without the token");
    r.authorization = "Bearer t";
    CHECK_INT(router_check(&priv, &r, &m), ROUTER_OK, "--private: a read with the token");
    r.authorization = NULL;
    r.path = "/healthz";
    CHECK_INT(router_check(&priv, &r, &m), ROUTER_OK, "--private: /healthz stays open");
    r.path = "/api/config";
    CHECK_INT(router_check(&priv, &r, &m), ROUTER_OK, "--private: /api/config stays open");
    r.path = "/metrics";
    CHECK_INT(router_check(&priv, &r, &m), ROUTER_UNAUTHORIZED, "--private: /metrics needs it");
    r.path = "/";
    CHECK_INT(router_check(&priv, &r, &m), ROUTER_ASSET,
              "--private: the page itself loads (it asks for the token)");
}

int main(void)
{
    test_hosts();
    test_table();
    test_routes();
    test_lengths();
    test_checks();
    return check_done();
}
