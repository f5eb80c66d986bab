/*
 * fuzz_extract.c - fuzz target: scr_extract() on arbitrary page bytes with every preset.
 *
 * The whole input is the page; its first byte also picks the HTTP status the page came with
 * ('<', which real pages start with, picks 200). The page is read by the first presets into one
 * observation that is not cleared in between (scr_extract must free what the previous call left),
 * and by the first preset once more into a fresh observation (the result must not depend on it).
 *
 * Invariants (scraper.h): 0 returned; 404/410 -> not_found, 403/429 -> blocked, other non-2xx
 * -> never data; only ok/no_rank carry data; ok has rank >= 0; no_rank has a title and no rank;
 * error has a message; title and category names are non-empty, valid UTF-8, at most 1000 bytes,
 * trimmed, single-spaced and free of control characters; at most 64 categories, ranks >= 0.
 */
#include "fuzz_common.h"

#include "common/observation.h"
#include "scraper/scraper.h"

#define FUZZ_MAX_PRESETS 32
/* Every preset shares one rule set (scraper/source.c); each input is read by the first few, which
 * differ only in what they send (Accept-Language), so the fuzzer spends its time on inputs. */
#define FUZZ_READ_PRESETS 3

static const int fuzz_statuses[16] = {
    0, 200, 203, 204, 301, 403, 404, 410, 429, 500, 503, 0, 200, 200, 302, 200,
};

static scr_source *fuzz_sources[FUZZ_MAX_PRESETS];
static size_t fuzz_nsources;

static void fuzz_extract_sources(void)
{
    if (fuzz_nsources)
        return;
    for (size_t i = 0; scr_preset_names[i]; i++) {
        char *err = NULL;
        if (i >= FUZZ_MAX_PRESETS) {
            fprintf(stderr, "fuzz_extract: more than %d presets\n", FUZZ_MAX_PRESETS);
            abort();
        }
        fuzz_sources[i] = scr_source_new_preset(scr_preset_names[i], NULL, &err);
        if (!fuzz_sources[i]) {
            fprintf(stderr, "fuzz_extract: preset %s: %s\n", scr_preset_names[i],
                    err ? err : "out of memory");
            abort();
        }
        fuzz_nsources = i + 1;
    }
}

#ifdef FUZZ_REPLAY
static void fuzz_extract_free_sources(void)
{
    for (size_t i = 0; i < fuzz_nsources; i++)
        scr_source_free(fuzz_sources[i]);
    fuzz_nsources = 0;
}
#endif

static void fuzz_check_text(const char *s, const char *what, const char *preset)
{
    size_t n = strlen(s);
    FUZZ_CHECK(n > 0, "%s: empty %s", preset, what);
    FUZZ_CHECK(n <= 1000, "%s: %s of %zu bytes", preset, what, n);
    FUZZ_CHECK(fuzz_valid_utf8(s, n), "%s: %s is not valid UTF-8", preset, what);
    FUZZ_CHECK(n == 0 || (s[0] != ' ' && s[n - 1] != ' '), "%s: %s not trimmed: '%s'", preset, what,
               s);
    FUZZ_CHECK(strstr(s, "  ") == NULL, "%s: %s has a double space: '%s'", preset, what, s);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            fuzz_fail("%s: %s has control byte 0x%02x", preset, what, c);
            break;
        }
    }
}

static void fuzz_check_observation(const observation *o, int http, const char *preset)
{
    FUZZ_CHECK(o->status >= OBS_OK && o->status < OBS_STATUS_COUNT, "%s: bad status %d", preset,
               (int)o->status);
    if (http == 404 || http == 410)
        FUZZ_CHECK(o->status == OBS_NOT_FOUND, "%s: HTTP %d gave %s", preset, http,
                   obs_status_name(o->status));
    if (http == 403 || http == 429)
        FUZZ_CHECK(o->status == OBS_BLOCKED, "%s: HTTP %d gave %s", preset, http,
                   obs_status_name(o->status));
    if (http != 0 && (http < 200 || http > 299))
        FUZZ_CHECK(o->status != OBS_OK && o->status != OBS_NO_RANK, "%s: HTTP %d gave %s", preset,
                   http, obs_status_name(o->status));
    if (o->status == OBS_ERROR)
        FUZZ_CHECK(o->error && o->error[0], "%s: error without a message", preset);
    if (o->status == OBS_OK) {
        FUZZ_CHECK(o->rank >= 0, "%s: ok with rank %lld", preset, (long long)o->rank);
    } else if (o->status == OBS_NO_RANK) {
        FUZZ_CHECK(o->rank == -1, "%s: no_rank with rank %lld", preset, (long long)o->rank);
        FUZZ_CHECK(o->title != NULL, "%s: no_rank without a title", preset);
        FUZZ_CHECK(o->rank_category == NULL && o->ncategories == 0, "%s: no_rank with categories",
                   preset);
    } else {
        FUZZ_CHECK(o->rank == -1 && !o->title && !o->rank_category && o->ncategories == 0 &&
                       !o->categories,
                   "%s: %s carries data", preset, obs_status_name(o->status));
    }
    if (o->title)
        fuzz_check_text(o->title, "title", preset);
    if (o->rank_category)
        fuzz_check_text(o->rank_category, "rank category", preset);
    FUZZ_CHECK(o->ncategories <= 64, "%s: %zu categories", preset, o->ncategories);
    for (size_t i = 0; i < o->ncategories; i++) {
        FUZZ_CHECK(o->categories[i].rank >= 0, "%s: category rank %lld", preset,
                   (long long)o->categories[i].rank);
        FUZZ_CHECK(o->categories[i].category != NULL, "%s: category without a name", preset);
        if (o->categories[i].category)
            fuzz_check_text(o->categories[i].category, "category", preset);
    }
}

static int fuzz_same_str(const char *a, const char *b)
{
    return a && b ? strcmp(a, b) == 0 : a == b;
}

static int fuzz_same_result(const observation *a, const observation *b)
{
    if (a->status != b->status || a->rank != b->rank || a->ncategories != b->ncategories ||
        !fuzz_same_str(a->title, b->title) || !fuzz_same_str(a->rank_category, b->rank_category))
        return 0;
    for (size_t i = 0; i < a->ncategories; i++)
        if (a->categories[i].rank != b->categories[i].rank ||
            !fuzz_same_str(a->categories[i].category, b->categories[i].category))
            return 0;
    return 1;
}

static void fuzz_extract(const uint8_t *data, size_t size)
{
    fuzz_extract_sources();
    int http = fuzz_statuses[size ? data[0] & 15u : 0];
    const char *page = (const char *)data;

    observation reused, fresh;
    obs_init(&reused);
    obs_init(&fresh);
    for (size_t i = 0; i < fuzz_nsources && i < FUZZ_READ_PRESETS; i++) {
        const char *name = scr_source_name(fuzz_sources[i]);
        int rc = scr_extract(fuzz_sources[i], http, page, size, &reused);
        FUZZ_CHECK(rc == 0, "%s: scr_extract returned %d", name, rc);
        fuzz_check_observation(&reused, http, name);
        if (i == 0) {
            rc = scr_extract(fuzz_sources[0], http, page, size, &fresh);
            FUZZ_CHECK(rc == 0, "%s: scr_extract returned %d", name, rc);
            FUZZ_CHECK(fuzz_same_result(&reused, &fresh),
                       "%s: a second read of the same page differs", name);
        }
    }
    obs_clear(&reused);
    obs_clear(&fresh);
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_extract(data, size);
    return 0;
}
#endif
