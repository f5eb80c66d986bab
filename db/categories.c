/*
 * categories.c - the stored form of an observation's category ranks (backend.h): JSON text
 * '[{"rank":..,"category":..}, ...]' in observations.categories, the same for every backend.
 * render/ owns that form (render_categories, render_categories_parse); this file only adapts
 * it to the store's error codes and ownership rules.
 */
#include "backend.h"

#include <stdlib.h>

#include "../common/buf.h"
#include "../render/render.h"

/* Far above anything a page lists (a handful of categories); a cap, like every buf has. */
#define DB_CATEGORIES_MAX (1u << 20)

static db_err buf_code(int rc)
{
    return rc == BUF_NOMEM ? DB_NOMEM : DB_ERROR;
}

char *db_categories_encode(const obs_category *cats, size_t n, db_err *status)
{
    *status = DB_OK;
    if (n == 0)
        return NULL;
    /* A category without a name has always been stored as "" (the writer would store null,
     * which reads back as no entry at all). */
    obs_category *named = NULL;
    for (size_t i = 0; i < n && !named; i++) {
        if (cats[i].category)
            continue;
        if (!(named = malloc(n * sizeof *named))) {
            *status = DB_NOMEM;
            return NULL;
        }
        for (size_t j = 0; j < n; j++) {
            named[j].rank = cats[j].rank;
            named[j].category = cats[j].category ? cats[j].category : (char *)"";
        }
    }
    buf out;
    buf_init(&out, DB_CATEGORIES_MAX);
    int rc = render_categories(&out, named ? named : cats, n);
    free(named);
    char *text = rc == BUF_OK ? buf_steal(&out, NULL) : NULL;
    buf_free(&out);
    if (!text)
        *status = rc == BUF_OK ? DB_NOMEM : buf_code(rc);
    return text;
}

db_err db_categories_decode(observation *obs, const char *text, size_t len)
{
    return render_categories_parse(obs, text, len) == 0 ? DB_OK : DB_NOMEM;
}
