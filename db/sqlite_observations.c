/*
 * sqlite_observations.c - the SQLite backend's observations: appending (with the latest cache
 * and titles), reading rows back, a book's history with previous ranks, and the export.
 */
#include "sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "../common/grow.h"

int db_sq_read_observation(sqlite3_stmt *st, int c, observation *obs, int64_t *id)
{
    obs_init(obs);
    if (id)
        *id = sqlite3_column_int64(st, c);
    const char *book = sq_col_text(st, c + 1);
    snprintf(obs->book_id, sizeof obs->book_id, "%s", book ? book : "");
    obs->fetched_at_ms = sqlite3_column_int64(st, c + 3);
    const char *status = sq_col_text(st, c + 4);
    int s = status ? obs_status_parse(status) : -1;
    obs->status = s < 0 ? OBS_ERROR : (obs_status)s;
    obs->rank = sqlite3_column_type(st, c + 5) == SQLITE_NULL ? -1
                                                              : sqlite3_column_int64(st, c + 5);
    obs->http_status = sqlite3_column_int(st, c + 9);
    obs->attempts = sqlite3_column_int(st, c + 10);
    obs->duration_ms = sqlite3_column_int64(st, c + 11);
    obs->rank_free = sqlite3_column_int(st, c + 13);
    const char *format = sq_col_text(st, c + 14);
    int f = format ? obs_format_parse(format) : -1;
    obs->format = f > 0 ? (obs_format)f : OBS_FORMAT_UNKNOWN;
    if (db_sq_col_dup(st, c + 2, &obs->source) || db_sq_col_dup(st, c + 6, &obs->rank_category) ||
        db_sq_col_dup(st, c + 8, &obs->title) || db_sq_col_dup(st, c + 12, &obs->error))
        goto oom;
    const char *cats = sq_col_text(st, c + 7);
    if (cats && db_categories_decode(obs, cats, (size_t)sqlite3_column_bytes(st, c + 7)) != DB_OK)
        goto oom;
    return 0;
oom:
    obs_clear(obs);
    return -1;
}

/* ---- appending --------------------------------------------------------------------------- */

/* The best rank and the run of failures the latest row keeps, after obs: the best paid ok rank
 * ever, and how many blocked/error/not_found observations end the history (obs is assumed the
 * newest; one arriving out of order makes the run approximate, never the best rank). */
static db_err latest_after(db *d, const observation *obs, int64_t *best, int64_t *streak)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_LATEST_GET, &st);
    if (rc != DB_OK)
        return rc;
    sq_bind_fixed(st, 1, obs->book_id, sizeof obs->book_id);
    sq_bind_text(st, 2, obs->source);
    *best = -1;
    *streak = 0;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL)
            *best = sqlite3_column_int64(st, 0);
        *streak = sqlite3_column_int64(st, 1);
    } else if (step != SQLITE_DONE) {
        rc = db_sq_fail(d, "add observations (latest)");
    }
    db_sq_release(st);
    if (obs->status == OBS_OK && obs->rank >= 0 && !obs->rank_free &&
        (*best < 0 || obs->rank < *best))
        *best = obs->rank;
    int bad = obs->status == OBS_BLOCKED || obs->status == OBS_ERROR ||
              obs->status == OBS_NOT_FOUND;
    *streak = bad ? *streak + 1 : 0;
    return rc;
}

/* Runs the title or format update of a book from observation id (newest of its source). */
static db_err book_from_page(db *d, enum sq_stmt_id which, const observation *obs, int64_t id,
                             const char *value)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, which, &st);
    if (rc != DB_OK)
        return rc;
    sq_bind_fixed(st, 1, obs->book_id, sizeof obs->book_id);
    sq_bind_text(st, 2, value);
    sq_bind_text(st, 3, obs->source);
    sqlite3_bind_int64(st, 4, id);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_sq_fail(d, "add observations (book)");
    db_sq_release(st);
    return rc;
}

static db_err observation_insert(db *d, const observation *obs, int64_t job_id)
{
    db_err rc = DB_ERROR;
    char *cats = NULL;
    sqlite3_stmt *ins = NULL, *latest = NULL;
    if (!obs->source) {
        db_set_err(d, "add observations: observation of %.13s has no source", obs->book_id);
        goto done;
    }
    cats = db_categories_encode(obs->categories, obs->ncategories, &rc);
    if (rc != DB_OK) {
        db_set_err(d, "add observations: out of memory");
        goto done;
    }
    int64_t best, streak;
    if ((rc = latest_after(d, obs, &best, &streak)) != DB_OK)
        goto done;
    if ((rc = db_sq_stmt(d, ST_OBS_ADD, &ins)) != DB_OK)
        goto done;
    sq_bind_fixed(ins, 1, obs->book_id, sizeof obs->book_id);
    sq_bind_text(ins, 2, obs->source);
    sqlite3_bind_int64(ins, 3, obs->fetched_at_ms);
    sq_bind_text(ins, 4, obs_status_name(obs->status));
    if (obs->rank >= 0)
        sqlite3_bind_int64(ins, 5, obs->rank);
    sq_bind_text(ins, 6, obs->rank_category);
    sq_bind_text(ins, 7, cats);
    sq_bind_text(ins, 8, obs->title);
    sqlite3_bind_int(ins, 9, obs->http_status);
    sqlite3_bind_int(ins, 10, obs->attempts);
    sqlite3_bind_int64(ins, 11, obs->duration_ms);
    sq_bind_text(ins, 12, obs->error);
    sqlite3_bind_int(ins, 13, obs->rank_free ? 1 : 0);
    sq_bind_text(ins, 14, obs_format_name(obs->format));
    if (job_id > 0)
        sqlite3_bind_int64(ins, 15, job_id);
    if (sqlite3_step(ins) != SQLITE_DONE) {
        rc = db_sq_fail(d, "add observations");
        goto done;
    }
    if (sqlite3_changes(sq_conn(d)) == 0)
        goto done; /* DB_OK: the book is not tracked (any more) */
    int64_t id = sqlite3_last_insert_rowid(sq_conn(d));

    if ((rc = db_sq_stmt(d, ST_LATEST_REFRESH, &latest)) != DB_OK)
        goto done;
    sq_bind_fixed(latest, 1, obs->book_id, sizeof obs->book_id);
    sq_bind_text(latest, 2, obs->source);
    if (best >= 0)
        sqlite3_bind_int64(latest, 3, best);
    sqlite3_bind_int64(latest, 4, streak);
    if (sqlite3_step(latest) != SQLITE_DONE) {
        rc = db_sq_fail(d, "add observations (latest)");
        goto done;
    }
    if (obs->title && obs->title[0] &&
        (rc = book_from_page(d, ST_TITLE_UPDATE, obs, id, obs->title)) != DB_OK)
        goto done;
    if (obs->format != OBS_FORMAT_UNKNOWN)
        rc = book_from_page(d, ST_FORMAT_UPDATE, obs, id, obs_format_name(obs->format));
done:
    db_sq_release(ins);
    db_sq_release(latest);
    free(cats);
    return rc;
}

db_err db_sq_observations_add(db *d, const observation *obs, size_t n, int64_t job_id)
{
    enum sq_tx_mode mode;
    db_err rc = db_sq_tx_enter(d, &mode, "add observations");
    if (rc != DB_OK)
        return rc;
    for (size_t i = 0; i < n && rc == DB_OK; i++)
        rc = observation_insert(d, &obs[i], job_id);
    return db_sq_tx_leave(d, mode, rc, "add observations");
}

/* ---- history ----------------------------------------------------------------------------- */

/* The rank of the newest ranked observation of (book, source) on the same kind of list before
 * (fetched_at, id). */
static db_err previous_rank(db *d, const observation *obs, int64_t id, int64_t *rank)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_PREVIOUS_RANK, &st);
    if (rc != DB_OK)
        return rc;
    sq_bind_fixed(st, 1, obs->book_id, sizeof obs->book_id);
    sq_bind_text(st, 2, obs->source);
    sqlite3_bind_int64(st, 3, obs->fetched_at_ms);
    sqlite3_bind_int64(st, 4, id);
    sqlite3_bind_int(st, 5, obs->rank_free ? 1 : 0);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *rank = sqlite3_column_int64(st, 0);
    else if (step == SQLITE_DONE)
        *rank = -1;
    else
        rc = db_sq_fail(d, "history (previous rank)");
    db_sq_release(st);
    return rc;
}

/*
 * Sets previous_rank on every row of a newest-first history. Walking from the oldest row up,
 * each source (and kind of list: free or paid) carries its last rank forward; only the oldest row of each source in the window
 * needs a look further back (one index seek per source, not per row).
 */
static db_err fill_previous_ranks(db *d, observation *rows, const int64_t *ids, size_t n)
{
    struct carry {
        const char *source;
        int rank_free;
        int64_t rank;
    } *carry = NULL;
    size_t ncarry = 0, cap = 0;
    db_err rc = DB_OK;
    for (size_t k = n; k-- > 0 && rc == DB_OK;) {
        observation *o = &rows[k];
        size_t j = 0;
        while (j < ncarry &&
               (strcmp(carry[j].source, o->source) != 0 || carry[j].rank_free != o->rank_free))
            j++;
        if (j == ncarry) {
            struct carry *grown = grow_to(carry, &cap, ncarry + 1, sizeof *grown);
            if (!grown) {
                rc = db_fail(d, DB_NOMEM, "history: out of memory");
                break;
            }
            carry = grown;
            carry[j].source = o->source;
            carry[j].rank_free = o->rank_free;
            rc = previous_rank(d, o, ids[k], &carry[j].rank);
            ncarry++;
        }
        o->previous_rank = carry[j].rank;
        if (o->rank >= 0)
            carry[j].rank = o->rank;
    }
    free(carry);
    return rc;
}

static db_err book_exists(db *d, const char *id)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_BOOK_EXISTS, &st);
    if (rc != DB_OK)
        return rc;
    sq_bind_text(st, 1, id);
    int step = sqlite3_step(st);
    rc = step == SQLITE_ROW ? DB_OK : step == SQLITE_DONE ? DB_NOTFOUND : db_sq_fail(d, "history");
    if (rc == DB_NOTFOUND)
        db_set_err(d, "book %s is not tracked", id);
    db_sq_release(st);
    return rc;
}

db_err db_sq_history(db *d, const char *id, const db_history_query *q, observation **out, size_t *n)
{
    db_err rc = book_exists(d, id);
    if (rc != DB_OK)
        return rc;
    sqlite3_stmt *st;
    if ((rc = db_sq_stmt(d, q->source ? ST_HISTORY_SOURCE : ST_HISTORY_ALL, &st)) != DB_OK)
        return rc;
    sq_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, q->since_ms);
    sqlite3_bind_int(st, 3, q->limit);
    if (q->source)
        sq_bind_text(st, 4, q->source);
    sqlite3_bind_int64(st, 5, q->before_ms);

    observation *rows = NULL;
    int64_t *ids = NULL;
    size_t count = 0, rows_cap = 0, ids_cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        observation *grown = grow_to(rows, &rows_cap, count + 1, sizeof *grown);
        if (!grown)
            goto oom;
        rows = grown;
        int64_t *gids = grow_to(ids, &ids_cap, count + 1, sizeof *gids);
        if (!gids)
            goto oom;
        ids = gids;
        if (db_sq_read_observation(st, 0, &rows[count], &ids[count]))
            goto oom;
        count++;
    }
    if (step != SQLITE_DONE) {
        rc = db_sq_fail(d, "history");
        goto done;
    }
    db_sq_release(st);
    st = NULL;
    if ((rc = fill_previous_ranks(d, rows, ids, count)) != DB_OK)
        goto done;
    *out = rows;
    *n = count;
    rows = NULL;
    count = 0;
    goto done;
oom:
    rc = db_fail(d, DB_NOMEM, "history: out of memory");
done:
    db_sq_release(st);
    db_observations_free(rows, count);
    free(ids);
    return rc;
}

/* ---- export ------------------------------------------------------------------------------ */

db_err db_sq_export(db *d, int (*fn)(void *ctx, const observation *obs), void *ctx)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_EXPORT, &st);
    if (rc != DB_OK)
        return rc;
    observation obs;
    int step;
    /* One statement, so one read snapshot: the export is consistent even while writers run. */
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (db_sq_read_observation(st, 0, &obs, NULL)) {
            rc = db_fail(d, DB_NOMEM, "export: out of memory");
            break;
        }
        int stop = fn(ctx, &obs);
        obs_clear(&obs);
        if (stop)
            break;
    }
    if (rc == DB_OK && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = db_sq_fail(d, "export");
    db_sq_release(st);
    return rc;
}
