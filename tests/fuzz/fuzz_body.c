/*
 * fuzz_body.c - fuzz target: api_parse_isbns(), the POST /api/books and /api/refresh body parser.
 *
 * Input: byte 0 picks the media type (bits 0-1: application/json twice as often as text/plain,
 * or an unsupported type) and the cap (bits 2-4, from 0 up to 1000, mostly small); the rest is
 * the body, passed without a terminating NUL so that ASan sees any read past it.
 *
 * Invariants: success => n <= cap, no details, every item a well-formed ISBN that re-parses to
 * itself, and the items written back as a body of the same type parse to the same list; failure
 * => a 400/415/500 status, a code and a terminated message, details (a non-empty array of
 * {index, input, reason}) exactly for invalid_isbn, 415 exactly for an unsupported type.
 */
#include "fuzz_common.h"

#include "server/internal.h"

static const char *const fuzz_body_types[4] = {
    "application/json", "text/plain", "application/json", "application/x-www-form-urlencoded",
};
static const size_t fuzz_body_caps[8] = {0, 1, 2, 3, 5, 16, 100, 1000};

static void fuzz_check_list(const api_isbn_list *l, int rc, const char *type, size_t cap)
{
    FUZZ_CHECK(rc == 0 || rc == -1, "%s: returned %d", type, rc);
    FUZZ_CHECK(l->n <= cap, "%s: %zu items over cap %zu", type, l->n, cap);
    int supported = strcmp(type, "application/json") == 0 || strcmp(type, "text/plain") == 0;
    if (rc == 0) {
        FUZZ_CHECK(supported, "%s: accepted an unsupported type", type);
        FUZZ_CHECK(l->details == NULL, "%s: success with details", type);
        FUZZ_CHECK(l->refresh == 0 || l->refresh == 1, "%s: refresh is %d", type, l->refresh);
        for (size_t i = 0; i < l->n; i++)
            fuzz_check_isbn(&l->items[i], type);
        return;
    }
    unsigned st = l->http_status;
    FUZZ_CHECK(st == 400 || st == 415 || st == 500, "%s: failure with HTTP %u", type, st);
    FUZZ_CHECK((st == 415) == !supported, "%s: HTTP %u", type, st);
    FUZZ_CHECK(l->code && l->code[0], "%s: failure without a code", type);
    FUZZ_CHECK(memchr(l->message, '\0', sizeof l->message) && l->message[0],
               "%s: failure without a message", type);
    int invalid = l->code && strcmp(l->code, "invalid_isbn") == 0;
    FUZZ_CHECK(invalid == (l->details != NULL), "%s: %s with%s details", type,
               l->code ? l->code : "(null)", l->details ? "" : "out");
    if (!l->details)
        return;
    FUZZ_CHECK(json_is_array(l->details) && json_array_size(l->details) > 0,
               "%s: details is not a non-empty array", type);
    size_t i;
    json_t *d;
    json_array_foreach(l->details, i, d) {
        json_t *input = json_object_get(d, "input");
        FUZZ_CHECK(json_is_integer(json_object_get(d, "index")) &&
                       json_is_string(json_object_get(d, "reason")) && input != NULL,
                   "%s: detail %zu is not {index, input, reason}", type, i);
        if (json_is_string(input))
            FUZZ_CHECK(fuzz_valid_utf8(json_string_value(input), json_string_length(input)),
                       "%s: detail %zu input is not valid UTF-8", type, i);
    }
}

/* Writes the parsed list back as a body of the same type; it must parse to the same list. */
static void fuzz_round_trip(const api_isbn_list *l, const char *type, size_t cap)
{
    int json = strcmp(type, "application/json") == 0;
    size_t room = 64 + l->n * 20;
    char *body = malloc(room);
    if (!body)
        abort();
    size_t len = 0;
    if (json)
        len += (size_t)snprintf(body + len, room - len, "{\"refresh\": %s, \"isbns\": [",
                                l->refresh ? "true" : "false");
    for (size_t i = 0; i < l->n; i++) {
        const char *s = (i % 2 && l->items[i].isbn10[0]) ? l->items[i].isbn10 : l->items[i].isbn13;
        len += (size_t)snprintf(body + len, room - len, json ? "%s\"%s\"" : "%s%s",
                                i ? (json ? ", " : "\n") : "", s);
    }
    if (json)
        len += (size_t)snprintf(body + len, room - len, "]}");
    api_isbn_list again;
    int rc = api_parse_isbns(type, body, len, cap, &again);
    FUZZ_CHECK(rc == 0 && again.n == l->n && again.refresh == l->refresh &&
                   (l->n == 0 || memcmp(again.items, l->items, l->n * sizeof *l->items) == 0),
               "%s: the parsed list written back does not parse to itself", type);
    api_isbn_list_free(&again);
    free(body);
}

static void fuzz_body(const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    const char *type = fuzz_body_types[data[0] & 3u];
    size_t cap = fuzz_body_caps[(data[0] >> 2) & 7u];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;

    api_isbn_list l;
    int rc = api_parse_isbns(type, body, len, cap, &l);
    fuzz_check_list(&l, rc, type, cap);
    if (rc == 0)
        fuzz_round_trip(&l, type, cap);
    api_isbn_list_free(&l);
    FUZZ_CHECK(l.items == NULL && l.details == NULL && l.n == 0, "api_isbn_list_free left data");
    api_isbn_list_free(&l);      /* twice is harmless */
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_body(data, size);
    return 0;
}
#endif
