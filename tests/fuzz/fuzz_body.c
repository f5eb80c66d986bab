/*
 * fuzz_body.c - fuzz target: body_parse() (server/body.c), the POST /api/books and
 * /api/refresh body parser. Needs no libmicrohttpd: only body.c, common/ and jansson.
 *
 * Input: byte 0 picks the media type (bits 0-1: application/json twice as often as text/plain,
 * or an unsupported type) and the cap (bits 2-4, from 0 up to 1000, mostly small); the rest is
 * the body, passed without a terminating NUL so that ASan sees any read past it.
 *
 * Invariants: success => n <= cap, no details, every item a well-formed book id (an ISBN or an
 * ASIN, fuzz_check_id) that re-parses to itself, and the items written back as a body of the
 * same type parse to the same list;
 * failure => a known error with a terminated message, details (a non-empty array of entries
 * with strictly increasing indexes, an echo of at most RENDER_ECHO_MAX + 1 bytes, taken from
 * the body for text/plain, and a reason) exactly for BODY_INVALID_ISBN, BODY_UNSUPPORTED_TYPE
 * exactly for an unsupported type.
 */
#include "fuzz_common.h"

#include "server/body.h"

static const char *const fuzz_body_types[4] = {
    "application/json",
    "text/plain",
    "Application/JSON; charset=utf-8",
    "application/x-www-form-urlencoded",
};
static const size_t fuzz_body_caps[8] = {0, 1, 2, 3, 5, 16, 100, 1000};

/* 1 JSON, 2 text, 0 unsupported; per entry of fuzz_body_types. */
static const int fuzz_body_kind[4] = {1, 2, 1, 0};

static int fuzz_body_type_kind(const char *type)
{
    for (size_t i = 0; i < 4; i++)
        if (fuzz_body_types[i] == type)
            return fuzz_body_kind[i];
    return 0;
}

static void fuzz_check_list(const body_list *l, body_err rc, const char *why, const char *type,
                            size_t cap, const char *body, size_t len)
{
    FUZZ_CHECK(rc >= BODY_OK && rc <= BODY_NOMEM, "%s: returned %d", type, (int)rc);
    FUZZ_CHECK(l->n <= cap, "%s: %zu items over cap %zu", type, l->n, cap);
    int kind = fuzz_body_type_kind(type), json = kind == 1, supported = kind != 0;
    if (rc == BODY_OK) {
        FUZZ_CHECK(supported, "%s: accepted an unsupported type", type);
        FUZZ_CHECK(l->details == NULL && l->ndetails == 0, "%s: success with details", type);
        FUZZ_CHECK(l->refresh == 0 || l->refresh == 1, "%s: refresh is %d", type, l->refresh);
        for (size_t i = 0; i < l->n; i++)
            fuzz_check_id(&l->items[i], type);
        return;
    }
    FUZZ_CHECK((rc == BODY_UNSUPPORTED_TYPE) == !supported, "%s: %s", type, body_strerror(rc));
    FUZZ_CHECK(memchr(why, '\0', 160) && why[0], "%s: %s without a message", type,
               body_strerror(rc));
    int invalid = rc == BODY_INVALID_ISBN;
    FUZZ_CHECK(invalid == (l->ndetails > 0) && (l->ndetails > 0) == (l->details != NULL),
               "%s: %s with %zu details", type, body_strerror(rc), l->ndetails);
    for (size_t i = 0; i < l->ndetails; i++) {
        const render_detail *d = &l->details[i];
        FUZZ_CHECK(d->reason && d->reason[0], "%s: detail %zu without a reason", type, i);
        FUZZ_CHECK(i == 0 || d->index > l->details[i - 1].index,
                   "%s: detail %zu index %zu after %zu", type, i, d->index,
                   i ? l->details[i - 1].index : 0);
        FUZZ_CHECK(d->input_len <= RENDER_ECHO_MAX + 1, "%s: detail %zu echoes %zu bytes", type, i,
                   d->input_len);
        if (!json) {
            /* A text entry is a slice of the body, echoed from its start. */
            FUZZ_CHECK(d->input != NULL && d->input_len > 0 &&
                           memmem(body, len, d->input, d->input_len) != NULL,
                       "%s: detail %zu does not echo the body", type, i);
        }
    }
}

/* Writes the parsed list back as a body of the same type; it must parse to the same list. */
static void fuzz_round_trip(const body_list *l, const char *type, size_t cap)
{
    int json = fuzz_body_type_kind(type) == 1;
    size_t room = 64 + l->n * 20;
    char *body = malloc(room);
    if (!body)
        abort();
    size_t len = 0;
    if (json)
        len += (size_t)snprintf(body + len, room - len, "{\"refresh\": %s, \"isbns\": [",
                                l->refresh ? "true" : "false");
    for (size_t i = 0; i < l->n; i++) {
        const char *s = (i % 2 && l->items[i].isbn10[0]) ? l->items[i].isbn10 : l->items[i].id;
        len += (size_t)snprintf(body + len, room - len, json ? "%s\"%s\"" : "%s%s",
                                i ? (json ? ", " : "\n") : "", s);
    }
    if (json)
        len += (size_t)snprintf(body + len, room - len, "]}");
    body_list again;
    char why[160];
    body_err rc = body_parse(type, body, len, cap, &again, why, sizeof why);
    FUZZ_CHECK(rc == BODY_OK && again.n == l->n && again.refresh == l->refresh &&
                   (l->n == 0 || memcmp(again.items, l->items, l->n * sizeof *l->items) == 0),
               "%s: the parsed list written back does not parse to itself", type);
    body_list_free(&again);
    free(body);
}

/* A PATCH body: what body_parse_patch accepts fits the store's caps (db_book_patch_check's
 * rules, restated here: the fuzz build has no store). */
static void fuzz_patch(const char *type, const char *body, size_t len)
{
    body_patch bp;
    char why[200];
    body_err rc = body_parse_patch(type, body, len, &bp, why, sizeof why);
    FUZZ_CHECK(rc >= BODY_OK && rc <= BODY_NOMEM, "patch: returned %d", (int)rc);
    if (rc != BODY_OK) {
        FUZZ_CHECK(memchr(why, '\0', sizeof why) && why[0], "patch: %s without a message",
                   body_strerror(rc));
        return;
    }
    const db_book_patch *p = &bp.patch;
    if ((p->set & DB_SET_ASIN) && p->asin)
        FUZZ_CHECK(asin_valid(p->asin, strlen(p->asin)), "patch: ASIN '%s' accepted", p->asin);
    if ((p->set & DB_SET_WORK) && p->work)
        FUZZ_CHECK(strlen(p->work) >= 1 && strlen(p->work) <= DB_WORK_MAX, "patch: work length");
    if ((p->set & DB_SET_NOTE) && p->note)
        FUZZ_CHECK(strlen(p->note) >= 1 && strlen(p->note) <= DB_NOTE_MAX, "patch: note length");
    FUZZ_CHECK(!(p->set & DB_SET_TAGS) || p->ntags <= DB_MAX_TAGS, "patch: %zu tags", p->ntags);
    for (size_t i = 0; (p->set & DB_SET_TAGS) && i < p->ntags; i++)
        FUZZ_CHECK(p->tags[i] && strlen(p->tags[i]) >= 1 && strlen(p->tags[i]) <= DB_TAG_MAX,
                   "patch: tag %zu", i);
    for (size_t i = 0; (p->set & DB_SET_ASINS) && i < p->nasins; i++)
        FUZZ_CHECK(p->asins[i].source[0] && asin_valid(p->asins[i].asin, strlen(p->asins[i].asin)),
                   "patch: per-storefront ASIN %zu", i);
    body_patch_free(&bp);
}

static void fuzz_body(const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    const char *type = fuzz_body_types[data[0] & 3u];
    size_t cap = fuzz_body_caps[(data[0] >> 2) & 7u];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;

    body_list l;
    char why[160];
    body_err rc = body_parse(type, body, len, cap, &l, why, sizeof why);
    fuzz_check_list(&l, rc, why, type, cap, body, len);
    if (rc == BODY_OK)
        fuzz_round_trip(&l, type, cap);
    body_list_free(&l);
    FUZZ_CHECK(l.items == NULL && l.details == NULL && l.n == 0 && l.ndetails == 0,
               "body_list_free left data");
    body_list_free(&l); /* twice is harmless */
    fuzz_patch(type, body, len);
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_body(data, size);
    return 0;
}
#endif
