/*
 * categories.c - the stored form of an observation's category ranks: written with the JSON
 * writer, read back with jansson (the only JSON parser in the project's read paths).
 */
#include "render.h"

#include <jansson.h>

int render_categories(buf *out, const obs_category *cats, size_t n)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    render_category_list(&w, cats, n);
    return jw_end(&w);
}

int render_categories_parse(observation *obs, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *arr = json_loadb(text, len, 0, &jerr);
    int ret = 0;
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
            ret = -1;
            break;
        }
    }
done:
    json_decref(arr);
    return ret;
}
