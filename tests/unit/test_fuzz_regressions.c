/*
 * test_fuzz_regressions.c - replays the fuzz targets' committed inputs without libFuzzer or
 * clang: every file in tests/fuzz/regressions/<target>/ (inputs that once crashed or broke an
 * invariant, kept after the fix) and tests/fuzz/seeds/<target>/, through the same target code
 * and invariants as `make fuzz` (tests/fuzz/fuzz_<target>.c, #included here with FUZZ_REPLAY).
 * Memory errors show up under `make sanitize`, which builds this test with ASan and UBSan.
 *
 * Runs with the repository root as the working directory (as tests/run.sh does).
 */
#define FUZZ_REPLAY 1

#include "tests/fuzz/fuzz_body.c"
#include "tests/fuzz/fuzz_extract.c"
#include "tests/fuzz/fuzz_isbn.c"
#include "tests/fuzz/fuzz_route.c"

#include <dirent.h>

#include "tests/lib/check.h"

typedef void (*fuzz_target_fn)(const uint8_t *data, size_t size);

static const struct {
    const char *name;
    fuzz_target_fn fn;
} targets[] = {
    {"isbn", fuzz_isbn},
    {"extract", fuzz_extract},
    {"body", fuzz_body},
    {"route", fuzz_route},
};

/* Reads a whole file into an exact-size buffer (so that ASan sees reads past the input). */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *data = malloc(cap);
    while (data) {
        n += fread(data + n, 1, cap - n, f);
        if (n < cap)
            break;
        uint8_t *bigger = realloc(data, cap * 2);
        if (!bigger) {
            free(data);
            data = NULL;
            break;
        }
        data = bigger;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!data || bad) {
        free(data);
        return NULL;
    }
    uint8_t *exact = malloc(n ? n : 1);
    if (exact && n)
        memcpy(exact, data, n);
    free(data);
    *len = n;
    return exact;
}

static int visible(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Replays every file of dir through fn; returns how many were replayed, -1 when dir is absent. */
static int replay_dir(const char *target, fuzz_target_fn fn, const char *kind)
{
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fuzz/%s/%s", kind, target);
    struct dirent **names;
    int n = scandir(dir, &names, visible, alphasort);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        char path[512], what[600];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        snprintf(what, sizeof what, "fuzz %s replays %s/%s", target, kind, names[i]->d_name);
        size_t len = 0;
        uint8_t *data = read_file(path, &len);
        if (!data) {
            CHECK(0, what);
            printf("#   cannot read %s\n", path);
        } else {
            fuzz_failure[0] = '\0';
            fn(data, len);
            if (!CHECK(fuzz_failure[0] == '\0', what))
                printf("#   %s\n", fuzz_failure);
            free(data);
        }
        free(names[i]);
    }
    free(names);
    return n;
}

/* fuzz_route.c walks the router's own table; every route must be reachable through it, so
 * that the replayed inputs cover every pattern: a path made from each pattern ("*" as an ISBN)
 * routes to that route with its method. */
static void check_route_table(void)
{
    CHECK(router_nroutes > 0, "fuzz route: the router exports a route table");
    for (size_t i = 0; i < router_nroutes; i++) {
        const router_route *rt = &router_routes[i];
        char path[256] = "";
        const char *star = strchr(rt->pattern, '*');
        int n = star ? snprintf(path, sizeof path, "%.*s9780131103627%s", (int)(star - rt->pattern),
                                rt->pattern, star + 1)
                     : snprintf(path, sizeof path, "%s", rt->pattern);
        router_config cfg = {0};
        static router_match m;
        char what[300];
        snprintf(what, sizeof what, "fuzz route reaches %s %s", rt->method, rt->pattern);
        CHECK(n > 0 && (size_t)n < sizeof path &&
                  router_route_path(&cfg, rt->method, path, &m) == ROUTER_OK && m.route == rt,
              what);
    }
}

int main(void)
{
    check_route_table();
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        char what[128];
        int seeds = replay_dir(targets[t].name, targets[t].fn, "seeds");
        snprintf(what, sizeof what, "fuzz %s has seeds in tests/fuzz/seeds/%s", targets[t].name,
                 targets[t].name);
        CHECK(seeds > 0, what);
        replay_dir(targets[t].name, targets[t].fn, "regressions");
    }
    fuzz_extract_free_sources();
    return check_done();
}
