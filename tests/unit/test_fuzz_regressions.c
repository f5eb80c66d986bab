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

/* fuzz_route.c keeps its own copy of server/api.c's route patterns: every pattern of the route
 * table ({"METHOD", "/pattern", ...} lines) must be in it. */
static void check_route_patterns(void)
{
    FILE *f = fopen("server/api.c", "r");
    if (!CHECK(f != NULL, "fuzz route: server/api.c readable"))
        return;
    char line[512];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = line + strspn(line, " \t");
        if (p[0] != '{' || p[1] != '"')
            continue;
        size_t m = strspn(p + 2, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        if (m == 0 || strncmp(p + 2 + m, "\", \"/", 5) != 0)
            continue;
        const char *pat = p + 2 + m + 4;
        size_t len = strcspn(pat, "\"");
        int found = 0;
        for (size_t i = 0; i < sizeof fuzz_route_patterns / sizeof fuzz_route_patterns[0]; i++)
            if (strlen(fuzz_route_patterns[i]) == len && strncmp(fuzz_route_patterns[i], pat, len) == 0)
                found = 1;
        char what[300];
        snprintf(what, sizeof what, "fuzz route covers %.*s %.*s of server/api.c", (int)m, p + 2,
                 (int)len, pat);
        CHECK(found, what);
        seen++;
    }
    fclose(f);
    CHECK(seen > 0, "fuzz route: server/api.c has a route table");
}

int main(void)
{
    check_route_patterns();
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
