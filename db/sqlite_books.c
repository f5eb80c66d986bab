/*
 * sqlite_books.c - the SQLite backend's books: tracking, removing, listing with their latest
 * observations, ISBN lists and counts.
 */
#include "sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "../common/grow.h"
#include "../common/timeutil.h"

db_err db_sq_books_add(db *d, const isbn *books, size_t n, int *added)
{
    enum sq_tx_mode mode;
    db_err rc = db_sq_tx_enter(d, &mode, "add books");
    if (rc != DB_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = db_sq_stmt(d, ST_BOOK_ADD, &st)) != DB_OK)
        goto done;
    int64_t now = time_now_ms();
    for (size_t i = 0; i < n; i++) {
        sq_bind_fixed(st, 1, books[i].isbn13, sizeof books[i].isbn13);
        sq_bind_fixed(st, 2, books[i].isbn10, sizeof books[i].isbn10);
        sqlite3_bind_int64(st, 3, now);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_sq_fail(d, "add books");
            goto done;
        }
        /* 0 when ON CONFLICT DO NOTHING skipped it: tracked already, or repeated in the batch. */
        if (added)
            added[i] = sqlite3_changes(sq_conn(d)) > 0;
        sqlite3_reset(st);
    }
done:
    db_sq_release(st);
    return db_sq_tx_leave(d, mode, rc, "add books");
}

db_err db_sq_book_remove(db *d, const char *isbn13)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_BOOK_REMOVE, &st);
    if (rc != DB_OK)
        return rc;
    sq_bind_text(st, 1, isbn13);
    /* Observations and latest rows go with it through ON DELETE CASCADE. */
    rc = sqlite3_step(st) == SQLITE_DONE
             ? (sqlite3_changes(sq_conn(d)) > 0 ? DB_OK : DB_NOTFOUND)
             : db_sq_fail(d, "remove book");
    if (rc == DB_NOTFOUND)
        db_set_err(d, "book %s is not tracked", isbn13 ? isbn13 : "(null)");
    db_sq_release(st);
    return rc;
}

/* Steps a BOOK_SELECT statement (rows grouped by book) into an array of books. */
static db_err collect_books(db *d, sqlite3_stmt *st, db_book **out, size_t *n)
{
    db_book *books = NULL;
    size_t count = 0, cap = 0;
    size_t latest_cap = 0;   /* of the last book's latest array, the only one still growing */
    db_err rc = DB_NOMEM;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *isbn13 = sq_col_text(st, 0);
        if (!isbn13)
            goto oom;
        db_book *b = count ? &books[count - 1] : NULL;
        if (!b || strcmp(b->isbn13, isbn13) != 0) {
            db_book *grown = grow_to(books, &cap, count + 1, sizeof *grown);
            if (!grown)
                goto oom;
            books = grown;
            b = &books[count++];
            memset(b, 0, sizeof *b);
            latest_cap = 0;
            const char *isbn10 = sq_col_text(st, 1);
            snprintf(b->isbn13, sizeof b->isbn13, "%s", isbn13);
            snprintf(b->isbn10, sizeof b->isbn10, "%s", isbn10 ? isbn10 : "");
            b->added_at_ms = sqlite3_column_int64(st, 3);
            if (db_sq_col_dup(st, 2, &b->title))
                goto oom;
        }
        if (sqlite3_column_type(st, BOOK_COL_OBS) == SQLITE_NULL)
            continue;  /* never fetched (or nothing from the filtered source) */
        observation *grown = grow_to(b->latest, &latest_cap, b->nlatest + 1, sizeof *grown);
        if (!grown)
            goto oom;
        b->latest = grown;
        if (db_sq_read_observation(st, BOOK_COL_OBS, &b->latest[b->nlatest], NULL))
            goto oom;
        b->latest[b->nlatest].previous_rank =
            sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 4);
        b->nlatest++;
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

db_err db_sq_books_list(db *d, const db_book_filter *filter, db_book **out, size_t *n)
{
    int one = filter && filter->isbn13;
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, one ? ST_BOOK_ONE : ST_BOOKS_LIST, &st);
    if (rc != DB_OK)
        return rc;
    if (filter) {
        sq_bind_text(st, 1, filter->source);
        sq_bind_text(st, 2, filter->status);
        if (one)
            sq_bind_text(st, 3, filter->isbn13);
    }
    rc = collect_books(d, st, out, n);
    db_sq_release(st);
    return rc;
}

db_err db_sq_books_isbns(db *d, isbn **out, size_t *n)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_BOOKS_ISBNS, &st);
    if (rc != DB_OK)
        return rc;
    isbn *list = NULL;
    size_t count = 0, cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        isbn *grown = grow_to(list, &cap, count + 1, sizeof *grown);
        if (!grown) {
            rc = db_fail(d, DB_NOMEM, "list ISBNs: out of memory");
            goto done;
        }
        list = grown;
        const char *i13 = sq_col_text(st, 0), *i10 = sq_col_text(st, 1);
        snprintf(list[count].isbn13, sizeof list[count].isbn13, "%s", i13 ? i13 : "");
        snprintf(list[count].isbn10, sizeof list[count].isbn10, "%s", i10 ? i10 : "");
        count++;
    }
    if (step != SQLITE_DONE) {
        rc = db_sq_fail(d, "list ISBNs");
        goto done;
    }
    *out = list;
    *n = count;
    list = NULL;
done:
    free(list);
    db_sq_release(st);
    return rc;
}

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
