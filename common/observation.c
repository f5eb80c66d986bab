/* observation.c - lifetime helpers for observation records. */
#include "observation.h"

#include <stdlib.h>
#include <string.h>

static const char *const status_names[OBS_STATUS_COUNT] = {
    "ok", "no_rank", "not_found", "blocked", "error",
};

const char *obs_status_name(obs_status status)
{
    if ((unsigned)status >= OBS_STATUS_COUNT)
        return "error";
    return status_names[status];
}

static const char *const format_names[OBS_FORMAT_COUNT] = {
    NULL, "paperback", "hardcover", "kindle", "audiobook", "other",
};

const char *obs_format_name(obs_format format)
{
    return (unsigned)format < OBS_FORMAT_COUNT ? format_names[format] : NULL;
}

int obs_format_parse(const char *name)
{
    for (int i = 1; name && i < OBS_FORMAT_COUNT; i++)
        if (strcmp(name, format_names[i]) == 0)
            return i;
    return -1;
}

int obs_status_parse(const char *name)
{
    for (int i = 0; i < OBS_STATUS_COUNT; i++)
        if (strcmp(name, status_names[i]) == 0)
            return i;
    return -1;
}

void obs_init(observation *obs)
{
    memset(obs, 0, sizeof *obs);
    obs->rank = -1;
    obs->previous_rank = -1;
    obs->last_ok_rank = -1;
}

void obs_clear(observation *obs)
{
    if (!obs)
        return;
    free(obs->source);
    free(obs->rank_category);
    for (size_t i = 0; i < obs->ncategories; i++)
        free(obs->categories[i].category);
    free(obs->categories);
    free(obs->title);
    free(obs->error);
    free(obs->last_ok_category);
    obs_init(obs);
}

int obs_add_category(observation *obs, int64_t rank, const char *category, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, category, len);
    copy[len] = '\0';
    obs_category *grown = realloc(obs->categories, (obs->ncategories + 1) * sizeof *grown);
    if (!grown) {
        free(copy);
        return -1;
    }
    obs->categories = grown;
    obs->categories[obs->ncategories].rank = rank;
    obs->categories[obs->ncategories].category = copy;
    obs->ncategories++;
    return 0;
}

int obs_set_str(char **field, const char *s)
{
    char *copy = NULL;
    if (s && !(copy = strdup(s)))
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

int obs_copy(observation *dst, const observation *src)
{
    obs_init(dst);
    memcpy(dst->book_id, src->book_id, sizeof dst->book_id);
    dst->last_ok_rank = src->last_ok_rank;
    dst->last_ok_at_ms = src->last_ok_at_ms;
    dst->fetched_at_ms = src->fetched_at_ms;
    dst->status = src->status;
    dst->rank = src->rank;
    dst->http_status = src->http_status;
    dst->attempts = src->attempts;
    dst->duration_ms = src->duration_ms;
    dst->previous_rank = src->previous_rank;
    dst->rank_free = src->rank_free;
    dst->format = src->format;
    if (obs_set_str(&dst->source, src->source) ||
        obs_set_str(&dst->rank_category, src->rank_category) ||
        obs_set_str(&dst->title, src->title) || obs_set_str(&dst->error, src->error) ||
        obs_set_str(&dst->last_ok_category, src->last_ok_category))
        goto fail;
    for (size_t i = 0; i < src->ncategories; i++) {
        const obs_category *c = &src->categories[i];
        if (obs_add_category(dst, c->rank, c->category, strlen(c->category)))
            goto fail;
    }
    return 0;
fail:
    obs_clear(dst);
    return -1;
}
