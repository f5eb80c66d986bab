/*
 * fuzz_route.c - fuzz target: what the server reads from a request line. api_route_match() over
 * the route patterns of server/api.c, the {isbn} path segment, and the query values parsed by
 * time_parse_iso() (?since=) and time_parse_duration() (the --refresh-every / config form).
 *
 * Input: a request target "PATH[?QUERY]" up to the first NUL. PATH is matched against every
 * pattern, with the router's 256-byte argument buffer and with a small one (1-16 bytes, from the
 * path length) allocated to its exact size. Every QUERY value ("k=v&k=v"), and the whole input,
 * goes to both time parsers.
 *
 * Invariants: api_route_match agrees with a simple reference matcher (prefix, one non-slash
 * segment that fits the buffer, suffix) and leaves a terminated argument; a segment that parses
 * as an ISBN is well formed and re-parses to itself; a parsed time written back by
 * time_format_iso parses to the same second (years 1970-9999); a parsed duration is > 0 and at
 * most 100 years, and parses back from its plain-seconds form.
 */
#include "fuzz_common.h"

#include "common/timeutil.h"
#include "server/internal.h"

/* The patterns of server/api.c's route table (kept in step by hand). */
static const char *const fuzz_route_patterns[] = {
    "/api/books", "/api/books/*", "/api/books/*/history", "/api/refresh", "/api/jobs/*",
    "/api/export.csv", "/api/config", "/healthz", "/metrics",
};

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
    char want[256];
    if (!arg)
        abort();
    int got = api_route_match(pattern, path, arg, arglen);
    int ref = fuzz_route_ref(pattern, path, arglen, want, sizeof want);
    FUZZ_CHECK(got == ref, "route %s, path '%.80s', arglen %zu: matched %d, expected %d", pattern,
               path, arglen, got, ref);
    if (got && ref) {
        FUZZ_CHECK(memchr(arg, '\0', arglen) && strcmp(arg, want) == 0,
                   "route %s, path '%.80s': argument '%.80s', expected '%s'", pattern, path,
                   memchr(arg, '\0', arglen) ? arg : "(unterminated)", want);
        /* The handlers of /api/books/... read the segment as an ISBN (path_isbn in api.c). */
        if (strncmp(pattern, "/api/books/*", 12) == 0) {
            isbn b;
            char why[160];
            if (isbn_parse_explain(arg, strlen(arg), &b, why, sizeof why) == ISBN_OK)
                fuzz_check_isbn(&b, "path segment");
            else
                FUZZ_CHECK(why[0] != '\0', "path segment: an error without a reason");
        }
    }
    free(arg);
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
                   "time '%.60s' = %lld ms, written back as '%s' = %lld ms", v, (long long)ms,
                   text, (long long)again);
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

    size_t nroutes = sizeof fuzz_route_patterns / sizeof fuzz_route_patterns[0];
    size_t small = 1 + strlen(path) % 16;
    for (size_t i = 0; i < nroutes; i++) {
        fuzz_route_one(fuzz_route_patterns[i], path, 256);
        fuzz_route_one(fuzz_route_patterns[i], path, small);
    }

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
