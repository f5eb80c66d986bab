/*
 * categories.c - the stored form of an observation's category ranks (backend.h): JSON text
 * '[{"rank":..,"category":..}, ...]' in observations.categories, the same for every backend.
 * jansson does the JSON for now (render/ takes JSON writing over later).
 */
#include "backend.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../common/utf8.h"

/* A JSON string for a category name; jansson only takes UTF-8, so invalid bytes become
 * U+FFFD first. NULL when out of memory. */
static json_t *name_string(const char *name)
{
    size_t len = strlen(name);
    if (utf8_valid(name, len))
        return json_stringn(name, len);
    char *clean = utf8_sanitize_dup(name, len);
    json_t *str = clean ? json_string(clean) : NULL;
    free(clean);
    return str;
}

char *db_categories_encode(const obs_category *cats, size_t n, db_err *status)
{
    *status = DB_OK;
    if (n == 0)
        return NULL;
    char *out = NULL;
    json_t *arr = json_array();
    if (!arr)
        goto done;
    for (size_t i = 0; i < n; i++) {
        json_t *str = name_string(cats[i].category ? cats[i].category : "");
        json_t *item = str ? json_pack("{s:I,s:o}", "rank", (json_int_t)cats[i].rank,
                                       "category", str)
                           : NULL;
        if (!item || json_array_append_new(arr, item))
            goto done;
    }
    out = json_dumps(arr, JSON_COMPACT);
done:
    json_decref(arr);
    if (!out)
        *status = DB_NOMEM;
    return out;
}

db_err db_categories_decode(observation *obs, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *arr = json_loadb(text, len, 0, &jerr);
    db_err rc = DB_OK;
    size_t i;
    json_t *item;
    if (!json_is_array(arr))
        goto done;
    json_array_foreach(arr, i, item) {
        json_t *rank = json_object_get(item, "rank");
        json_t *name = json_object_get(item, "category");
        if (!json_is_integer(rank) || !json_is_string(name))
            continue;
        if (obs_add_category(obs, json_integer_value(rank), json_string_value(name),
                             json_string_length(name))) {
            rc = DB_NOMEM;
            break;
        }
    }
done:
    json_decref(arr);
    return rc;
}
