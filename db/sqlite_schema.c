/*
 * sqlite_schema.c - the SQLite schema: the forward migration steps and the logic that brings a
 * just-opened file to the latest version (or refuses it): a new file is created only with
 * DB_OPEN_CREATE, an older schema is migrated only with DB_OPEN_MIGRATE and only after a copy of
 * the file is made, a newer one is always refused.
 */
#include "sqlite_internal.h"

#include <stdio.h>

_Static_assert(OBS_STATUS_COUNT == 5, "jobs.n_* columns and the status CHECK list every status");

/*
 * Forward migrations: step i takes a database from user_version i to i + 1, in one transaction.
 * Never edit a released step; append a new one.
 */
static const char *const migrations[] = {
    /* 0 -> 1: the initial schema. */
    "CREATE TABLE books ("
    "  isbn13   TEXT PRIMARY KEY NOT NULL"
    "           CHECK (length(isbn13) = 13 AND isbn13 NOT GLOB '*[^0-9]*'),"
    "  isbn10   TEXT NOT NULL DEFAULT '' CHECK (length(isbn10) IN (0, 10)),"
    "  title    TEXT,"
    "  added_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX books_by_added ON books(added_at, isbn13);"
    "CREATE TABLE observations ("
    "  id            INTEGER PRIMARY KEY,"
    "  isbn13        TEXT NOT NULL REFERENCES books(isbn13) ON DELETE CASCADE,"
    "  source        TEXT NOT NULL,"
    "  fetched_at    INTEGER NOT NULL,"
    "  status        TEXT NOT NULL"
    "                CHECK (status IN ('ok', 'no_rank', 'not_found', 'blocked', 'error')),"
    "  rank          INTEGER,"
    "  rank_category TEXT,"
    "  categories    TEXT,"
    "  title         TEXT,"
    "  http_status   INTEGER NOT NULL DEFAULT 0,"
    "  attempts      INTEGER NOT NULL DEFAULT 0,"
    "  duration_ms   INTEGER NOT NULL DEFAULT 0,"
    "  error         TEXT"
    ");"
    "CREATE INDEX observations_by_book ON observations(isbn13, source, fetched_at);"
    "CREATE TABLE latest ("
    "  isbn13         TEXT NOT NULL REFERENCES books(isbn13) ON DELETE CASCADE,"
    "  source         TEXT NOT NULL,"
    "  observation_id INTEGER NOT NULL,"
    "  previous_rank  INTEGER,"
    "  PRIMARY KEY (isbn13, source)"
    ") WITHOUT ROWID;"
    "CREATE TABLE jobs ("
    "  id          INTEGER PRIMARY KEY,"
    "  state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'cancelled')),"
    "  all_books   INTEGER NOT NULL DEFAULT 0,"
    "  total       INTEGER NOT NULL DEFAULT 0,"
    "  done        INTEGER NOT NULL DEFAULT 0,"
    "  n_ok        INTEGER NOT NULL DEFAULT 0,"
    "  n_no_rank   INTEGER NOT NULL DEFAULT 0,"
    "  n_not_found INTEGER NOT NULL DEFAULT 0,"
    "  n_blocked   INTEGER NOT NULL DEFAULT 0,"
    "  n_error     INTEGER NOT NULL DEFAULT 0,"
    "  created_at  INTEGER NOT NULL,"
    "  started_at  INTEGER NOT NULL DEFAULT 0,"
    "  finished_at INTEGER NOT NULL DEFAULT 0,"
    "  owner_pid   INTEGER NOT NULL"
    ");"
    "CREATE INDEX jobs_unfinished ON jobs(state) WHERE state IN ('queued', 'running');",
    /* 1 -> 2: a book's history across sources, newest first, without sorting all its rows
     * (the rowid, i.e. id, ends every index entry, so the ORDER BY is the index order). */
    "CREATE INDEX observations_by_book_time ON observations(isbn13, fetched_at);",
    /* 2 -> 3: books keyed by id (the ISBN-13, or the ASIN of a book without ISBN), with the
     * fields users set (ASINs, storefronts, work, format, tags, note); observations remember
     * free lists, the format a page showed and their job; latest keeps the last good
     * observation, the best rank and the run of failures (for alerts and honest status); jobs
     * say who started them and what they skipped. Runs with foreign keys off (see
     * migrate_step): the books table is rebuilt under its children. */
    "ALTER TABLE books RENAME COLUMN isbn13 TO id;"
    "ALTER TABLE observations RENAME COLUMN isbn13 TO book_id;"
    "ALTER TABLE latest RENAME COLUMN isbn13 TO book_id;"
    "CREATE TABLE books_v3 ("
    "  id         TEXT PRIMARY KEY NOT NULL"
    "             CHECK ((length(id) = 13 AND id NOT GLOB '*[^0-9]*')"
    "                 OR (length(id) = 10 AND id GLOB 'B*' AND id NOT GLOB '*[^0-9A-Z]*')),"
    "  isbn13     TEXT UNIQUE CHECK (isbn13 IS NULL OR length(isbn13) = 13),"
    "  isbn10     TEXT CHECK (isbn10 IS NULL OR length(isbn10) = 10),"
    "  asin       TEXT UNIQUE CHECK (asin IS NULL OR length(asin) = 10),"
    "  title      TEXT,"
    "  format     TEXT CHECK (format IS NULL"
    "             OR format IN ('paperback', 'hardcover', 'kindle', 'audiobook', 'other')),"
    "  format_set INTEGER NOT NULL DEFAULT 0,"
    "  work       TEXT,"
    "  note       TEXT,"
    "  sources    TEXT,"
    "  added_at   INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "INSERT INTO books_v3(id, isbn13, isbn10, title, added_at)"
    "  SELECT id, id, NULLIF(isbn10, ''), title, added_at FROM books;"
    "DROP TABLE books;"
    "ALTER TABLE books_v3 RENAME TO books;"
    "CREATE INDEX books_by_added ON books(added_at, id);"
    "CREATE INDEX books_by_work ON books(work, id) WHERE work IS NOT NULL;"
    "CREATE TABLE book_tags ("
    "  book_id TEXT NOT NULL REFERENCES books(id) ON DELETE CASCADE,"
    "  tag     TEXT NOT NULL,"
    "  PRIMARY KEY (book_id, tag)"
    ") WITHOUT ROWID;"
    "CREATE INDEX book_tags_by_tag ON book_tags(tag, book_id);"
    "CREATE TABLE book_asins ("
    "  book_id TEXT NOT NULL REFERENCES books(id) ON DELETE CASCADE,"
    "  source  TEXT NOT NULL,"
    "  asin    TEXT NOT NULL CHECK (length(asin) = 10),"
    "  PRIMARY KEY (book_id, source)"
    ") WITHOUT ROWID;"
    "ALTER TABLE observations ADD COLUMN rank_free INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE observations ADD COLUMN format TEXT;"
    "ALTER TABLE observations ADD COLUMN job_id INTEGER;"
    "CREATE INDEX observations_failed_by_job ON observations(job_id)"
    "  WHERE job_id IS NOT NULL AND status IN ('blocked', 'error');"
    "ALTER TABLE latest ADD COLUMN last_ok_id INTEGER;"
    "ALTER TABLE latest ADD COLUMN best_rank INTEGER;"
    "ALTER TABLE latest ADD COLUMN bad_streak INTEGER NOT NULL DEFAULT 0;"
    "UPDATE latest SET"
    "  last_ok_id = (SELECT o.id FROM observations o WHERE o.book_id = latest.book_id"
    "    AND o.source = latest.source AND o.status = 'ok'"
    "    ORDER BY o.fetched_at DESC, o.id DESC LIMIT 1),"
    "  best_rank = (SELECT min(o.rank) FROM observations o WHERE o.book_id = latest.book_id"
    "    AND o.source = latest.source AND o.status = 'ok');"
    "ALTER TABLE jobs ADD COLUMN started_by TEXT NOT NULL DEFAULT 'api'"
    "  CHECK (started_by IN ('api', 'schedule', 'cli'));"
    "ALTER TABLE jobs ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX jobs_by_created ON jobs(created_at);",
    /* 3 -> 4: alert rules, their per-(rule, book, source) state, and the outbox of events (one
     * row per event and target, each with its own delivery state). */
    "CREATE TABLE alert_rules ("
    "  n           INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind        TEXT NOT NULL,"
    "  value       REAL,"
    "  book_id     TEXT REFERENCES books(id) ON DELETE CASCADE,"
    "  source      TEXT,"
    "  targets     TEXT NOT NULL,"
    "  from_config INTEGER NOT NULL DEFAULT 0,"
    "  created_at  INTEGER NOT NULL"
    ");"
    "CREATE TABLE alert_state ("
    "  rule_n   INTEGER NOT NULL REFERENCES alert_rules(n) ON DELETE CASCADE,"
    "  book_id  TEXT NOT NULL,"
    "  source   TEXT NOT NULL,"
    "  is_true  INTEGER NOT NULL,"
    "  PRIMARY KEY (rule_n, book_id, source)"
    ") WITHOUT ROWID;"
    "CREATE TABLE alert_events ("
    "  id          INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  uid         TEXT NOT NULL,"
    "  rule_n      INTEGER NOT NULL,"
    "  kind        TEXT NOT NULL,"
    "  book_id     TEXT NOT NULL,"
    "  source      TEXT NOT NULL,"
    "  target      TEXT NOT NULL,"
    "  body        TEXT NOT NULL,"
    "  message     TEXT NOT NULL,"
    "  subject     TEXT NOT NULL,"
    "  state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),"
    "  attempts    INTEGER NOT NULL DEFAULT 0,"
    "  created_at  INTEGER NOT NULL,"
    "  next_at     INTEGER NOT NULL,"
    "  sent_at     INTEGER NOT NULL DEFAULT 0,"
    "  last_error  TEXT,"
    "  UNIQUE (uid, target)"
    ");"
    "CREATE INDEX alert_events_due ON alert_events(next_at) WHERE state = 'pending';"
    "CREATE INDEX alert_events_sent ON alert_events(target, kind, sent_at) WHERE state = 'sent';",
};

/* Steps that rebuild a table others refer to run with foreign keys off (SQLite would otherwise
 * cascade the DROP of the old table into its children); the keys are checked before commit. */
static int step_without_foreign_keys(int from)
{
    return from == 2;
}
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* Reads one integer from a constant query (PRAGMA or count); an SQLite result code. */
static int query_int(sqlite3 *conn, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(conn, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    /* finalize keeps the error message of a failed step for the caller. */
    sqlite3_finalize(st);
    return rc;
}

/* Applies migration step `from` in one transaction, unless another process did meanwhile.
 * While *backup_due, the file is first copied to "path.bak-FROM" under the write lock, so that
 * no other process migrates between the copy and the step, and two processes opening an old
 * file at once make one copy. */
static db_err migrate_step(db *d, int from, const char *path, int *backup_due)
{
    sqlite3 *conn = sq_conn(d);
    char setver[64], dest[4096];
    int64_t version = 0, objects = 0;
    int copied = 0;
    db_err ret;
    int fk_off = step_without_foreign_keys(from);
    /* PRAGMA foreign_keys cannot change inside a transaction. */
    if (fk_off && sqlite3_exec(conn, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL) != SQLITE_OK)
        return db_sq_setup_fail(d, path, "migrating the schema");
    if (sqlite3_exec(conn, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        ret = db_sq_setup_fail(d, path, "migrating the schema");
        if (fk_off)
            sqlite3_exec(conn, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
        return ret;
    }
    /* Re-read under the write lock: a second process may have migrated first. */
    if (query_int(conn, "PRAGMA user_version", &version) != SQLITE_OK)
        goto fail;
    if (version == 0) {
        /* A version-0 file that already has tables belongs to something else: leave it be.
         * Checked under the lock, where a concurrent first migration cannot be half-seen. */
        if (query_int(conn, "SELECT count(*) FROM sqlite_master", &objects) != SQLITE_OK)
            goto fail;
        if (objects > 0) {
            ret = db_fail(d, DB_ERROR, "%s: not a bookrank database (it has other tables)", path);
            goto rollback;
        }
    }
    if (version == from) {
        if (*backup_due) {
            int len = snprintf(dest, sizeof dest, "%s.bak-%d", path, from);
            if (len < 0 || len >= (int)sizeof dest) {
                ret = db_fail(d, DB_ERROR, "%s: migrating the schema: path too long for a copy",
                              path);
                goto rollback;
            }
            if ((ret = db_sq_backup_file(d, path, dest)) != DB_OK)
                goto rollback;
            copied = 1;
            *backup_due = 0;
        }
        /* PRAGMA takes no parameters; the value is our own integer, not user data. */
        int n = snprintf(setver, sizeof setver, "PRAGMA user_version = %d", from + 1);
        if (n < 0 || n >= (int)sizeof setver) {
            ret = db_fail(d, DB_ERROR, "%s: migrating the schema: version out of range", path);
            goto rollback;
        }
        if (sqlite3_exec(conn, migrations[from], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(conn, setver, NULL, NULL, NULL) != SQLITE_OK)
            goto fail;
        int64_t dangling = 0;
        if (fk_off) {
            if (query_int(conn, "SELECT count(*) FROM pragma_foreign_key_check", &dangling) !=
                SQLITE_OK)
                goto fail;
            if (dangling) {
                ret = db_fail(d, DB_CORRUPT,
                              "%s: migrating the schema: %lld rows refer to "
                              "missing books",
                              path, (long long)dangling);
                goto rollback;
            }
        }
    }
    if (sqlite3_exec(conn, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (fk_off)
        sqlite3_exec(conn, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    return DB_OK;
fail:
    ret = db_sq_setup_fail(d, path, "migrating the schema");
rollback:
    if (!sqlite3_get_autocommit(conn))
        sqlite3_exec(conn, "ROLLBACK", NULL, NULL, NULL);
    if (fk_off)
        sqlite3_exec(conn, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    /* The step failed after the copy was made: the copy is the database as it still is, and
     * left in place it would stop every later attempt (a copy is never overwritten). Kept when
     * the file's version cannot be confirmed unchanged. */
    if (copied && query_int(conn, "PRAGMA user_version", &version) == SQLITE_OK &&
        version == from) {
        db_sq_backup_remove(dest);
        *backup_due = 1;
    }
    return ret;
}

/* The schema version and, for version 0, how many schema objects the file has, from one read
 * snapshot (two separate reads could straddle another process's first migration). */
static db_err read_state(db *d, const char *path, int64_t *version, int64_t *objects)
{
    sqlite3 *conn = sq_conn(d);
    db_err rc = DB_OK;
    *objects = 0;
    if (sqlite3_exec(conn, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return db_sq_setup_fail(d, path, "reading the schema version");
    if (query_int(conn, "PRAGMA user_version", version) != SQLITE_OK ||
        (*version == 0 &&
         query_int(conn, "SELECT count(*) FROM sqlite_master", objects) != SQLITE_OK))
        rc = db_sq_setup_fail(d, path, "reading the schema version");
    /* A read transaction: ending it cannot lose anything, whatever COMMIT says. */
    sqlite3_exec(conn, rc == DB_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

db_err db_sq_check_schema(db *d, const char *path, unsigned flags)
{
    int creating = 0, backup_due = -1;
    for (;;) {
        int64_t version = 0, objects = 0;
        db_err rc = read_state(d, path, &version, &objects);
        if (rc != DB_OK)
            return rc;
        if (version > SCHEMA_VERSION)
            return db_fail(d, DB_SCHEMA,
                           "%s: the database has schema version %lld, newer than this bookrank "
                           "understands (%d); upgrade bookrank",
                           path, (long long)version, SCHEMA_VERSION);
        if (version == SCHEMA_VERSION)
            return DB_OK;
        if (version == 0 && objects > 0)
            return db_fail(d, DB_ERROR, "%s: not a bookrank database (it has other tables)", path);
        if (backup_due < 0) {
            /* Decided once, from the version found on opening: a new file has nothing to keep,
             * and the steps that create it are not a migration. */
            creating = version == 0;
            backup_due = !creating;
        }
        if (version == 0 && !(flags & DB_OPEN_CREATE))
            return db_fail(d, DB_NOTFOUND, "%s: not a bookrank database (it has no schema yet)",
                           path);
        if (!creating && !(flags & DB_OPEN_MIGRATE))
            return db_fail(d, DB_SCHEMA,
                           "%s: the database has schema version %lld, older than this bookrank "
                           "uses (%d); run `bookrank migrate` to upgrade it",
                           path, (long long)version, SCHEMA_VERSION);
        if ((rc = migrate_step(d, (int)version, path, &backup_due)) != DB_OK)
            return rc;
    }
}

int db_sq_schema_latest(void)
{
    return SCHEMA_VERSION;
}

db_err db_sq_schema_version(db *d, int *version)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_USER_VERSION, &st);
    if (rc != DB_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    else
        rc = db_sq_fail(d, "schema version");
    db_sq_release(st);
    return rc;
}
