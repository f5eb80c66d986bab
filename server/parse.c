/*
 * parse.c - the pure parts of request handling, kept apart from libmicrohttpd so they can be
 * unit-tested and fuzzed directly: ISBN-list bodies (JSON and text/plain) and path matching.
 */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_isbn_list_free(api_isbn_list *l)
{
    if (!l)
        return;
    free(l->items);
    json_decref(l->details);
    l->items = NULL;
    l->details = NULL;
    l->n = 0;
}

static int fail(api_isbn_list *l, unsigned status, const char *code, const char *message)
{
    l->http_status = status;
    l->code = code;
    snprintf(l->message, sizeof l->message, "%s", message);
    return -1;
}

static void add_detail(api_isbn_list *l, size_t index, json_t *input, const char *reason)
{
    if (!l->details)
        l->details = json_array();
    json_array_append_new(l->details, json_pack("{s:I, s:o, s:s}", "index", (json_int_t)index,
                                                "input", input ? input : json_string("\xef\xbf\xbd"),
                                                "reason", reason));
}

static void push(api_isbn_list *l, size_t index, const char *text, size_t len)
{
    char why[160];
    isbn parsed;
    if (isbn_parse_explain(text, len, &parsed, why, sizeof why) != ISBN_OK) {
        /* Echo at most 64 bytes of the input; jansson refuses invalid UTF-8 (then a U+FFFD). */
        add_detail(l, index, json_stringn(text, len > 64 ? 64 : len), why);
        return;
    }
    l->items[l->n++] = parsed;
}

int api_parse_isbns(const char *type, const char *body, size_t len, size_t cap, api_isbn_list *l)
{
    memset(l, 0, sizeof *l);
    l->items = calloc(cap ? cap : 1, sizeof *l->items);
    if (!l->items)
        return fail(l, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
    if (strcmp(type, "application/json") == 0) {
        json_error_t jerr;
        json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc)
            return fail(l, MHD_HTTP_BAD_REQUEST, "invalid_json", jerr.text);
        json_t *list = json_object_get(doc, "isbns");
        json_t *refresh = json_object_get(doc, "refresh");
        int rc = 0;
        if (!json_is_object(doc))
            rc = fail(l, MHD_HTTP_BAD_REQUEST, "invalid_body",
                      "the body must be a JSON object like {\"isbns\": [...]}");
        else if (!json_is_array(list))
            rc = fail(l, MHD_HTTP_BAD_REQUEST, "invalid_body", "\"isbns\" must be an array of strings");
        else if (refresh && !json_is_boolean(refresh))
            rc = fail(l, MHD_HTTP_BAD_REQUEST, "invalid_body", "\"refresh\" must be true or false");
        else if (json_array_size(list) > cap)
            rc = fail(l, MHD_HTTP_BAD_REQUEST, "too_many_isbns", "too many ISBNs in one request");
        if (rc) {
            json_decref(doc);
            return rc;
        }
        l->refresh = json_is_true(refresh);
        size_t i;
        json_t *item;
        json_array_foreach(list, i, item) {
            if (json_is_string(item))
                push(l, i, json_string_value(item), json_string_length(item));
            else
                add_detail(l, i, json_deep_copy(item), "not a string");
        }
        json_decref(doc);
    } else if (strcmp(type, "text/plain") == 0) {
        const char *p = body, *end = body + len;
        size_t index = 0;
        while (p < end) {
            const char *q = p;
            while (q < end && *q != '\n' && *q != ',')
                q++;
            const char *a = p, *b = q;
            while (a < b && isspace((unsigned char)*a))
                a++;
            while (b > a && isspace((unsigned char)b[-1]))
                b--;
            if (b > a) {
                if (index >= cap) {
                    /* As for JSON: too many is the error, not the invalid entries seen so far. */
                    json_decref(l->details);
                    l->details = NULL;
                    return fail(l, MHD_HTTP_BAD_REQUEST, "too_many_isbns",
                                "too many ISBNs in one request");
                }
                push(l, index++, a, (size_t)(b - a));
            }
            p = q + 1;
        }
    } else {
        return fail(l, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                    "send application/json or text/plain");
    }
    if (l->details) {
        size_t bad = json_array_size(l->details);
        char msg[96];
        snprintf(msg, sizeof msg, "%zu invalid ISBN%s; nothing was changed", bad, bad == 1 ? "" : "s");
        return fail(l, MHD_HTTP_BAD_REQUEST, "invalid_isbn", msg);
    }
    return 0;
}

int api_route_match(const char *pattern, const char *path, char *arg, size_t arglen)
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
