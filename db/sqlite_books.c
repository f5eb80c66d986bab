/*
 * sqlite_books.c - the SQLite backend's books: tracking and resolving ids, the fields users set,
 * listing with the latest observations, refresh targets and counts.
 */
#include "sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "../common/buf.h"
#include "../common/grow.h"
#include "../common/timeutil.h"

/* ---- tracking ------------------------------------------------------------------------------ */

db_err db_sq_book_resolve(db *d, const book_id *in, char out[14])
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_BOOK_RESOLVE, &st);
    if (rc != DB_OK)
        return rc;
    sq_bind_fixed(st, 1, in->id, sizeof in->id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *id = sq_col_text(st, 0);
        snprintf(out, 14, "%s", id ? id : "");
    } else if (step == SQLITE_DONE) {
        rc = db_fail(d, DB_NOTFOUND, "book %.13s is not tracked", in->id);
    } else {
        rc = db_sq_fail(d, "find book");
    }
    db_sq_release(st);
    return rc;
}

db_err db_sq_books_add(db *d, const book_id *ids, size_t n, int *added, char (*id_out)[14])
{
    enum sq_tx_mode mode;
    db_err rc = db_sq_tx_enter(d, &mode, "add books");
    if (rc != DB_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    int64_t now = time_now_ms();
    for (size_t i = 0; i < n && rc == DB_OK; i++) {
        const book_id *b = &ids[i];
        /* An ASIN attached to a book already tracked names that book. */
        char owner[14];
        if (b->kind == ID_KIND_ASIN) {
            rc = db_sq_book_resolve(d, b, owner);
            if (rc == DB_OK) {
                if (added)
                    added[i] = 0;
                if (id_out)
                    memcpy(id_out[i], owner, 14);
                continue;
            }
            if (rc != DB_NOTFOUND)
                break;
            rc = DB_OK;
        }
        if ((rc = db_sq_stmt(d, ST_BOOK_ADD, &st)) != DB_OK)
            break;
        sq_bind_fixed(st, 1, b->id, sizeof b->id);
        if (b->isbn13[0])
            sq_bind_fixed(st, 2, b->isbn13, sizeof b->isbn13);
        if (b->isbn10[0])
            sq_bind_fixed(st, 3, b->isbn10, sizeof b->isbn10);
        sqlite3_bind_int64(st, 4, now);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_sq_fail(d, "add books");
            break;
        }
        /* 0 when ON CONFLICT DO NOTHING skipped it: tracked already, or repeated in the batch. */
        if (added)
            added[i] = sqlite3_changes(sq_conn(d)) > 0;
        if (id_out)
            memcpy(id_out[i], b->id, 14);
        db_sq_release(st);
        st = NULL;
    }
    db_sq_release(st);
    return db_sq_tx_leave(d, mode, rc, "add books");
}

db_err db_sq_book_remove(db *d, const char *id)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_BOOK_REMOVE, &st);
    if (rc != DB_OK)
        return rc;
    sq_bind_text(st, 1, id);
    /* Observations, latest rows, tags and ASINs go with it through ON DELETE CASCADE. */
    rc = sqlite3_step(st) == SQLITE_DONE ? (sqlite3_changes(sq_conn(d)) > 0 ? DB_OK : DB_NOTFOUND)
                                         : db_sq_fail(d, "remove book");
    if (rc == DB_NOTFOUND)
        db_set_err(d, "book %s is not tracked", id ? id : "(null)");
    db_sq_release(st);
    return rc;
}

/* ---- the fields users set ------------------------------------------------------------------- */

/* Runs a cached statement with text parameters (NULL binds NULL) and an optional integer. */
static db_err run_text(db *d, enum sq_stmt_id which, const char *what, const char *a, const char *b,
                       const char *c)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, which, &st);
    if (rc != DB_OK)
        return rc;
    sq_bind_text(st, 1, a);
    sq_bind_text(st, 2, b);
    if (c)
        sq_bind_text(st, 3, c);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_sq_fail(d, what);
    db_sq_release(st);
    return rc;
}

/* DB_CONFLICT when another book has asin (as its id, its ASIN or a per-store one). */
static db_err asin_free(db *d, const char *id, const char *asin)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_ASIN_OWNER, &st);
    if (rc != DB_OK)
        return rc;
    sq_bind_text(st, 1, asin);
    sq_bind_text(st, 2, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = db_fail(d, DB_CONFLICT, "the ASIN %s belongs to another book (%s)", asin,
                     sq_col_text(st, 0) ? sq_col_text(st, 0) : "?");
    else if (step != SQLITE_DONE)
        rc = db_sq_fail(d, "update book");
    db_sq_release(st);
    return rc;
}

/* "a,b,c" of the names (which hold no comma: source names are checked on configuration).
 * malloc'd, NULL when out of memory. */
static char *join_names(const char *const *names, size_t n)
{
    buf b;
    buf_init(&b, 1 << 16);
    int rc = buf_append(&b, "", 0);
    for (size_t i = 0; rc == BUF_OK && i < n; i++)
        rc = buf_printf(&b, "%s%s", i ? "," : "", names[i]);
    if (rc != BUF_OK) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, NULL);
}

static db_err update_fields(db *d, const char *id, const db_book_patch *p)
{
    db_err rc = DB_OK;
    if (p->set & DB_SET_ASIN) {
        if (p->asin && (rc = asin_free(d, id, p->asin)) != DB_OK)
            return rc;
        if ((rc = run_text(d, ST_BOOK_SET_ASIN, "update book", id, p->asin, NULL)) != DB_OK)
            return rc;
    }
    if (p->set & DB_SET_ASINS) {
        if ((rc = run_text(d, ST_ASINS_CLEAR, "update book", id, NULL, NULL)) != DB_OK)
            return rc;
        for (size_t i = 0; i < p->nasins; i++) {
            if ((rc = asin_free(d, id, p->asins[i].asin)) != DB_OK ||
                (rc = run_text(d, ST_ASIN_ADD, "update book", id, p->asins[i].source,
                               p->asins[i].asin)) != DB_OK)
                return rc;
        }
    }
    if (p->set & DB_SET_SOURCES) {
        char *joined = p->sources ? join_names(p->sources, p->nsources) : NULL;
        if (p->sources && !joined)
            return db_fail(d, DB_NOMEM, "update book: out of memory");
        rc = run_text(d, ST_BOOK_SET_SOURCES, "update book", id, joined, NULL);
        free(joined);
        if (rc != DB_OK)
            return rc;
    }
    if ((p->set & DB_SET_WORK) &&
        (rc = run_text(d, ST_BOOK_SET_WORK, "update book", id, p->work, NULL)) != DB_OK)
        return rc;
    if ((p->set & DB_SET_NOTE) &&
        (rc = run_text(d, ST_BOOK_SET_NOTE, "update book", id, p->note, NULL)) != DB_OK)
        return rc;
    if (p->set & DB_SET_FORMAT) {
        const char *name = obs_format_name(p->format);
        if ((rc = run_text(d, ST_BOOK_SET_FORMAT, "update book", id, name, name ? "1" : "0")) !=
            DB_OK)
            return rc;
    }
    if (p->set & DB_SET_TAGS) {
        if ((rc = run_text(d, ST_TAGS_CLEAR, "update book", id, NULL, NULL)) != DB_OK)
            return rc;
        for (size_t i = 0; i < p->ntags; i++)
            if ((rc = run_text(d, ST_TAG_ADD, "update book", id, p->tags[i], NULL)) != DB_OK)
                return rc;
    }
    return rc;
}

db_err db_sq_book_update(db *d, const char *id, const db_book_patch *patch)
{
    enum sq_tx_mode mode;
    db_err rc = db_sq_tx_enter(d, &mode, "update book");
    if (rc != DB_OK)
        return rc;
    sqlite3_stmt *st;
    if ((rc = db_sq_stmt(d, ST_BOOK_EXISTS, &st)) == DB_OK) {
        sq_bind_text(st, 1, id);
        int step = sqlite3_step(st);
        rc = step == SQLITE_ROW    ? DB_OK
             : step == SQLITE_DONE ? db_fail(d, DB_NOTFOUND, "book %s is not tracked", id)
                                   : db_sq_fail(d, "update book");
        db_sq_release(st);
    }
    if (rc == DB_OK)
        rc = update_fields(d, id, patch);
    /* DB_NOTFOUND is an answer, but nothing of a half-applied patch may stay. */
    db_err left = db_sq_tx_leave(d, mode, rc == DB_NOTFOUND ? DB_ERROR : rc, "update book");
    return rc == DB_NOTFOUND ? rc : left;
}

/* ---- listing --------------------------------------------------------------------------------- */

/* Splits "a,b" into a malloc'd array of malloc'd names; 0, or -1 when out of memory. */
static int split_names(const char *text, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!text)
        return 0;
    size_t cap = 0;
    for (const char *p = text;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len) {
            char **grown = grow_to(*out, &cap, *n + 1, sizeof *grown);
            char *name = grown ? strndup(p, len) : NULL;
            if (!name) {
                if (grown)
                    *out = grown;
                return -1;
            }
            *out = grown;
            (*out)[(*n)++] = name;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (!*out) { /* "" stored: no source at all (an empty list) */
        *out = calloc(1, sizeof **out);
        if (!*out)
            return -1;
    }
    return 0;
}

/* Fills a new book from the BOOK_COLUMNS of a row; -1 when out of memory. */
static int read_book(sqlite3_stmt *st, db_book *b)
{
    memset(b, 0, sizeof *b);
    const char *id = sq_col_text(st, 0), *i13 = sq_col_text(st, 1), *i10 = sq_col_text(st, 2),
               *asin = sq_col_text(st, 3), *format = sq_col_text(st, 5);
    snprintf(b->id, sizeof b->id, "%s", id ? id : "");
    snprintf(b->isbn13, sizeof b->isbn13, "%s", i13 ? i13 : "");
    snprintf(b->isbn10, sizeof b->isbn10, "%s", i10 ? i10 : "");
    snprintf(b->asin, sizeof b->asin, "%s", asin ? asin : "");
    int f = format ? obs_format_parse(format) : -1;
    b->format = f > 0 ? (obs_format)f : OBS_FORMAT_UNKNOWN;
    b->format_set = sqlite3_column_int(st, 6);
    b->added_at_ms = sqlite3_column_int64(st, 10);
    if (db_sq_col_dup(st, 4, &b->title) || db_sq_col_dup(st, 7, &b->work) ||
        db_sq_col_dup(st, 8, &b->note) ||
        split_names(sq_col_text(st, 9), &b->sources, &b->nsources))
        return -1;
    return 0;
}

/* Steps a BOOK_JOIN statement (rows grouped by book) into an array of books. */
static db_err collect_books(db *d, sqlite3_stmt *st, db_book **out, size_t *n)
{
    db_book *books = NULL;
    size_t count = 0, cap = 0;
    size_t latest_cap = 0; /* of the last book's latest array, the only one still growing */
    db_err rc = DB_NOMEM;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = sq_col_text(st, 0);
        if (!id)
            goto oom;
        db_book *b = count ? &books[count - 1] : NULL;
        if (!b || strcmp(b->id, id) != 0) {
            db_book *grown = grow_to(books, &cap, count + 1, sizeof *grown);
            if (!grown)
                goto oom;
            books = grown;
            b = &books[count++];
            latest_cap = 0;
            if (read_book(st, b))
                goto oom;
        }
        if (sqlite3_column_type(st, BOOK_COL_OBS) == SQLITE_NULL)
            continue; /* never fetched (or nothing from the filtered source) */
        observation *grown = grow_to(b->latest, &latest_cap, b->nlatest + 1, sizeof *grown);
        if (!grown)
            goto oom;
        b->latest = grown;
        observation *o = &b->latest[b->nlatest];
        if (db_sq_read_observation(st, BOOK_COL_OBS, o, NULL))
            goto oom;
        b->nlatest++;
        o->previous_rank = sqlite3_column_type(st, BOOK_COL_PREVIOUS) == SQLITE_NULL
                               ? -1
                               : sqlite3_column_int64(st, BOOK_COL_PREVIOUS);
        if (sqlite3_column_type(st, BOOK_COL_LAST_OK + 2) != SQLITE_NULL) {
            o->last_ok_rank = sqlite3_column_type(st, BOOK_COL_LAST_OK) == SQLITE_NULL
                                  ? -1
                                  : sqlite3_column_int64(st, BOOK_COL_LAST_OK);
            o->last_ok_at_ms = sqlite3_column_int64(st, BOOK_COL_LAST_OK + 2);
            if (db_sq_col_dup(st, BOOK_COL_LAST_OK + 1, &o->last_ok_category))
                goto oom;
        }
    }
    if (step != SQLITE_DONE) {
        rc = db_sq_fail(d, "list books");
        goto done;
    }
    *out = books;
    *n = count;
    books = NULL;
    count = 0;
    rc = DB_OK;
    goto done;
oom:
    db_set_err(d, "list books: out of memory");
done:
    db_books_free(books, count);
    return rc;
}

static int by_id(const void *a, const void *b)
{
    const db_book *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

/* The book with this id among the sorted pointers, or NULL. */
static db_book *find_book(db_book **sorted, size_t n, const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(sorted[mid]->id, id);
        if (c == 0)
            return sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Attaches tags and per-store ASINs to the listed books: one pass over each table (none at all
 * when the tables are empty), not one query per book. */
static db_err attach_extras(db *d, db_book *books, size_t n)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_HAS_EXTRAS, &st);
    if (rc != DB_OK)
        return rc;
    int tags = 0, asins = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        tags = sqlite3_column_int(st, 0);
        asins = sqlite3_column_int(st, 1);
    } else {
        rc = db_sq_fail(d, "list books");
    }
    db_sq_release(st);
    if (rc != DB_OK || (!tags && !asins) || n == 0)
        return rc;
    db_book **sorted = malloc(n * sizeof *sorted);
    if (!sorted)
        return db_fail(d, DB_NOMEM, "list books: out of memory");
    for (size_t i = 0; i < n; i++)
        sorted[i] = &books[i];
    qsort(sorted, n, sizeof *sorted, by_id);
    for (int pass = 0; pass < 2 && rc == DB_OK; pass++) {
        if ((pass == 0 && !tags) || (pass == 1 && !asins))
            continue;
        if ((rc = db_sq_stmt(d, pass == 0 ? ST_TAGS_ALL : ST_ASINS_ALL, &st)) != DB_OK)
            break;
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            const char *id = sq_col_text(st, 0);
            db_book *b = id ? find_book(sorted, n, id) : NULL;
            if (!b)
                continue;
            if (pass == 0) {
                char **grown = realloc(b->tags, (b->ntags + 1) * sizeof *grown);
                char *tag = grown ? strdup(sq_col_text(st, 1) ? sq_col_text(st, 1) : "") : NULL;
                if (grown)
                    b->tags = grown;
                if (!tag) {
                    rc = db_fail(d, DB_NOMEM, "list books: out of memory");
                    break;
                }
                b->tags[b->ntags++] = tag;
            } else {
                db_asin *grown = realloc(b->asins, (b->nasins + 1) * sizeof *grown);
                if (!grown) {
                    rc = db_fail(d, DB_NOMEM, "list books: out of memory");
                    break;
                }
                b->asins = grown;
                db_asin *a = &b->asins[b->nasins++];
                const char *source = sq_col_text(st, 1), *asin = sq_col_text(st, 2);
                snprintf(a->source, sizeof a->source, "%s", source ? source : "");
                snprintf(a->asin, sizeof a->asin, "%s", asin ? asin : "");
            }
        }
        if (rc == DB_OK && step != SQLITE_DONE)
            rc = db_sq_fail(d, "list books");
        db_sq_release(st);
    }
    free(sorted);
    return rc;
}

/* "%text%" with LIKE's wildcards escaped; malloc'd, NULL when out of memory. */
static char *like_pattern(const char *text)
{
    buf b;
    buf_init(&b, 4096);
    int rc = buf_append(&b, "%", 1);
    for (const char *p = text; rc == BUF_OK && *p; p++)
        rc = (*p == '%' || *p == '_' || *p == '\\') ? buf_printf(&b, "\\%c", *p)
                                                    : buf_append(&b, p, 1);
    if (rc == BUF_OK)
        rc = buf_append(&b, "%", 1);
    if (rc != BUF_OK) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, NULL);
}

db_err db_sq_books_list(db *d, const db_book_filter *f, db_book **out, size_t *n)
{
    static const db_book_filter none = {0};
    if (!f)
        f = &none;
    int paged = f->after || f->limit > 0;
    char *pattern = f->q && *f->q ? like_pattern(f->q) : NULL;
    if (f->q && *f->q && !pattern)
        return db_fail(d, DB_NOMEM, "list books: out of memory");
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, paged ? ST_BOOKS_PAGE : ST_BOOKS_LIST, &st);
    if (rc == DB_OK) {
        sq_bind_text(st, 1, f->source);
        sq_bind_text(st, 2, f->status);
        sq_bind_text(st, 3, f->id);
        sq_bind_text(st, 4, f->tag);
        sq_bind_text(st, 5, f->work);
        sq_bind_text(st, 6, pattern);
        sq_bind_text(st, 7, f->after);
        if (paged)
            sqlite3_bind_int(st, 8, f->limit > 0 ? f->limit : -1);
        rc = collect_books(d, st, out, n);
        db_sq_release(st);
    }
    free(pattern);
    if (rc == DB_OK && (rc = attach_extras(d, *out, *n)) != DB_OK) {
        db_books_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- refresh targets ------------------------------------------------------------------------- */

static int read_target(sqlite3_stmt *st, db_target *t)
{
    memset(t, 0, sizeof *t);
    const char *id = sq_col_text(st, 0), *i13 = sq_col_text(st, 1), *i10 = sq_col_text(st, 2),
               *asin = sq_col_text(st, 3);
    snprintf(t->id, sizeof t->id, "%s", id ? id : "");
    snprintf(t->isbn13, sizeof t->isbn13, "%s", i13 ? i13 : "");
    snprintf(t->isbn10, sizeof t->isbn10, "%s", i10 ? i10 : "");
    snprintf(t->asin, sizeof t->asin, "%s", asin ? asin : "");
    if (db_sq_col_dup(st, 4, &t->title) ||
        split_names(sq_col_text(st, 5), &t->sources, &t->nsources))
        return -1;
    return 0;
}

static int by_target_id(const void *a, const void *b)
{
    const db_target *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

db_err db_sq_targets(db *d, const char *const *ids, size_t n, db_target **out, size_t *nout)
{
    db_target *list = NULL;
    size_t count = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    db_err rc = DB_OK;
    /* One snapshot for the books and their ASINs. */
    int own = sqlite3_get_autocommit(sq_conn(d));
    if (own && sqlite3_exec(sq_conn(d), "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return db_sq_fail(d, "refresh targets");
    for (size_t k = 0; rc == DB_OK && k < (ids ? n : 1); k++) {
        if ((rc = db_sq_stmt(d, ids ? ST_TARGET_ONE : ST_TARGETS_ALL, &st)) != DB_OK)
            break;
        if (ids)
            sq_bind_text(st, 1, ids[k]);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            db_target *grown = grow_to(list, &cap, count + 1, sizeof *grown);
            if (!grown || read_target(st, &grown[count])) {
                if (grown) {
                    list = grown;
                    count++;
                }
                rc = db_fail(d, DB_NOMEM, "refresh targets: out of memory");
                break;
            }
            list = grown;
            count++;
        }
        if (rc == DB_OK && step != SQLITE_DONE)
            rc = db_sq_fail(d, "refresh targets");
        db_sq_release(st);
        st = NULL;
    }
    /* Per-store ASINs, in one pass. */
    if (rc == DB_OK && count && (rc = db_sq_stmt(d, ST_ASINS_ALL, &st)) == DB_OK) {
        db_target **sorted = malloc(count * sizeof *sorted);
        if (!sorted)
            rc = db_fail(d, DB_NOMEM, "refresh targets: out of memory");
        for (size_t i = 0; sorted && i < count; i++)
            sorted[i] = &list[i];
        if (sorted)
            qsort(sorted, count, sizeof *sorted, by_target_id);
        int step = SQLITE_DONE;
        while (sorted && (step = sqlite3_step(st)) == SQLITE_ROW) {
            db_target key, *kp = &key, **hit;
            snprintf(key.id, sizeof key.id, "%s", sq_col_text(st, 0) ? sq_col_text(st, 0) : "");
            hit = bsearch(&kp, sorted, count, sizeof *sorted, by_target_id);
            if (!hit)
                continue;
            db_asin *grown = realloc((*hit)->asins, ((*hit)->nasins + 1) * sizeof *grown);
            if (!grown) {
                rc = db_fail(d, DB_NOMEM, "refresh targets: out of memory");
                break;
            }
            (*hit)->asins = grown;
            db_asin *a = &grown[(*hit)->nasins++];
            snprintf(a->source, sizeof a->source, "%s",
                     sq_col_text(st, 1) ? sq_col_text(st, 1) : "");
            snprintf(a->asin, sizeof a->asin, "%s", sq_col_text(st, 2) ? sq_col_text(st, 2) : "");
        }
        if (rc == DB_OK && step != SQLITE_DONE)
            rc = db_sq_fail(d, "refresh targets");
        free(sorted);
        db_sq_release(st);
    }
    if (own)
        sqlite3_exec(sq_conn(d), "COMMIT", NULL, NULL, NULL);
    if (rc != DB_OK) {
        db_targets_free(list, count);
        return rc;
    }
    *out = list;
    *nout = count;
    return DB_OK;
}

/* ---- counts ------------------------------------------------------------------------------------ */

/* Runs a cached statement that answers one integer. */
static db_err single_int(db *d, enum sq_stmt_id which, const char *what, int64_t *out)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, which, &st);
    if (rc != DB_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = db_sq_fail(d, what);
    db_sq_release(st);
    return rc;
}

db_err db_sq_books_count(db *d, int64_t *count)
{
    return single_int(d, ST_BOOKS_COUNT, "count books", count);
}

db_err db_sq_data_version(db *d, int64_t *version)
{
    return single_int(d, ST_DATA_VERSION, "data_version", version);
}
