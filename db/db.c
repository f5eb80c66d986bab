/*
 * db.c - the SQLite store (see db.h): connection setup, forward migrations, a per-handle cache
 * of prepared statements, and every query the service runs.
 *
 * Schema notes:
 * - observations is append-only history, indexed by (isbn13, source, fetched_at); its rowid
 *   (id) breaks ties between equal fetched_at values everywhere ("newest" = greatest
 *   (fetched_at, id)).
 * - latest is a cache, one row per (book, source): the id of the newest observation and the
 *   previous rank. It is refreshed from observations on every insert (two index seeks), so
 *   listing every book is one ordered join instead of a "greatest-per-group" query over the
 *   whole history. Anything that ever deletes single observations (retention) must refresh it.
 * - previous_rank is the rank of the newest observation of the same book and source that is
 *   older than the one it belongs to and has a rank, whatever its status: a blocked or failed
 *   fetch in between does not hide the last real rank, so "change since previous" compares two
 *   real ranks.
 */
#include "db.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "../common/timeutil.h"

#define DB_BUSY_TIMEOUT_MS 5000
#define DB_HISTORY_DEFAULT_LIMIT 500

_Static_assert(OBS_STATUS_COUNT == 5, "jobs.n_* columns and the status CHECK list every status");

/* ---- schema ------------------------------------------------------------------------------ */

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
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- statements -------------------------------------------------------------------------- */

/* Observation columns as read_observation() expects them, from the alias o. */
#define OBS_COLUMNS                                                                          \
    "o.id, o.isbn13, o.source, o.fetched_at, o.status, o.rank, o.rank_category, "           \
    "o.categories, o.title, o.http_status, o.attempts, o.duration_ms, o.error"

/* Book rows joined with their latest observations: ?1 source filter, ?2 status filter. */
#define BOOK_SELECT                                                                          \
    "SELECT b.isbn13, b.isbn10, b.title, b.added_at, l.previous_rank, " OBS_COLUMNS         \
    " FROM books b"                                                                          \
    " LEFT JOIN latest l ON l.isbn13 = b.isbn13 AND (?1 IS NULL OR l.source = ?1)"           \
    " LEFT JOIN observations o ON o.id = l.observation_id"
#define BOOK_STATUS_FILTER                                                                   \
    " (?2 IS NULL OR EXISTS (SELECT 1 FROM latest l2"                                        \
    "   JOIN observations o2 ON o2.id = l2.observation_id"                                   \
    "   WHERE l2.isbn13 = b.isbn13 AND (?1 IS NULL OR l2.source = ?1) AND o2.status = ?2))"
#define BOOK_COL_OBS 5

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_BOOK_ADD,
    ST_BOOK_REMOVE,
    ST_BOOK_EXISTS,
    ST_BOOKS_LIST,
    ST_BOOK_ONE,
    ST_BOOKS_ISBNS,
    ST_BOOKS_COUNT,
    ST_DATA_VERSION,
    ST_OBS_ADD,
    ST_LATEST_REFRESH,
    ST_TITLE_UPDATE,
    ST_HISTORY_ALL,
    ST_HISTORY_SOURCE,
    ST_PREVIOUS_RANK,
    ST_EXPORT,
    ST_JOB_CREATE,
    ST_JOB_UPDATE,
    ST_JOB_GET,
    ST_JOBS_UNFINISHED,
    ST_JOB_CANCEL,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    /* IMMEDIATE: take the write lock up front, where busy_timeout waits for it; a deferred
     * transaction that reads first and then writes fails at once with SQLITE_BUSY_SNAPSHOT
     * when another process committed in between. */
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT db_batch",
    [ST_RELEASE] = "RELEASE db_batch",
    [ST_ROLLBACK_TO] = "ROLLBACK TO db_batch",
    [ST_BOOK_ADD] = "INSERT INTO books(isbn13, isbn10, added_at) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT(isbn13) DO NOTHING",
    [ST_BOOK_REMOVE] = "DELETE FROM books WHERE isbn13 = ?1",
    [ST_BOOK_EXISTS] = "SELECT 1 FROM books WHERE isbn13 = ?1",
    [ST_BOOKS_LIST] = BOOK_SELECT " WHERE" BOOK_STATUS_FILTER
                                  " ORDER BY b.added_at, b.isbn13, l.source",
    [ST_BOOK_ONE] = BOOK_SELECT " WHERE b.isbn13 = ?3 AND" BOOK_STATUS_FILTER " ORDER BY l.source",
    [ST_BOOKS_ISBNS] = "SELECT isbn13, isbn10 FROM books ORDER BY added_at, isbn13",
    [ST_BOOKS_COUNT] = "SELECT count(*) FROM books",
    [ST_DATA_VERSION] = "PRAGMA data_version",
    /* The EXISTS skips observations of books removed while they were being fetched. */
    [ST_OBS_ADD] = "INSERT INTO observations(isbn13, source, fetched_at, status, rank,"
                   " rank_category, categories, title, http_status, attempts, duration_ms, error)"
                   " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12"
                   " WHERE EXISTS (SELECT 1 FROM books WHERE isbn13 = ?1)",
    /* Recomputed rather than patched, so observations arriving out of fetched_at order (two
     * processes, clock steps) still leave the right latest and previous rank. The "WHERE 1"
     * is what SQLite's grammar needs between INSERT ... SELECT and ON CONFLICT. */
    [ST_LATEST_REFRESH] =
        "INSERT INTO latest(isbn13, source, observation_id, previous_rank)"
        " SELECT n.isbn13, n.source, n.id,"
        "  (SELECT p.rank FROM observations p"
        "   WHERE p.isbn13 = n.isbn13 AND p.source = n.source AND p.rank IS NOT NULL"
        "     AND p.fetched_at <= n.fetched_at AND (p.fetched_at < n.fetched_at OR p.id < n.id)"
        "   ORDER BY p.fetched_at DESC, p.id DESC LIMIT 1)"
        " FROM (SELECT isbn13, source, id, fetched_at FROM observations"
        "       WHERE isbn13 = ?1 AND source = ?2 ORDER BY fetched_at DESC, id DESC LIMIT 1) n"
        " WHERE 1"
        " ON CONFLICT(isbn13, source) DO UPDATE SET observation_id = excluded.observation_id,"
        "  previous_rank = excluded.previous_rank",
    /* Only a title from the newest observation of its source replaces the book's title. */
    [ST_TITLE_UPDATE] = "UPDATE books SET title = ?2 WHERE isbn13 = ?1 AND title IS NOT ?2"
                        " AND EXISTS (SELECT 1 FROM latest"
                        "  WHERE isbn13 = ?1 AND source = ?3 AND observation_id = ?4)",
    [ST_HISTORY_ALL] = "SELECT " OBS_COLUMNS " FROM observations o"
                       " WHERE o.isbn13 = ?1 AND o.fetched_at >= ?2"
                       " ORDER BY o.fetched_at DESC, o.id DESC LIMIT ?3",
    [ST_HISTORY_SOURCE] = "SELECT " OBS_COLUMNS " FROM observations o"
                          " WHERE o.isbn13 = ?1 AND o.source = ?4 AND o.fetched_at >= ?2"
                          " ORDER BY o.fetched_at DESC, o.id DESC LIMIT ?3",
    [ST_PREVIOUS_RANK] = "SELECT rank FROM observations"
                         " WHERE isbn13 = ?1 AND source = ?2 AND rank IS NOT NULL"
                         "   AND fetched_at <= ?3 AND (fetched_at < ?3 OR id < ?4)"
                         " ORDER BY fetched_at DESC, id DESC LIMIT 1",
    [ST_EXPORT] = "SELECT " OBS_COLUMNS " FROM observations o ORDER BY o.fetched_at, o.id",
    [ST_JOB_CREATE] = "INSERT INTO jobs(state, all_books, total, done, n_ok, n_no_rank,"
                      " n_not_found, n_blocked, n_error, created_at, started_at, finished_at,"
                      " owner_pid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [ST_JOB_UPDATE] = "UPDATE jobs SET state = ?2, total = ?3, done = ?4, n_ok = ?5,"
                      " n_no_rank = ?6, n_not_found = ?7, n_blocked = ?8, n_error = ?9,"
                      " started_at = ?10, finished_at = ?11 WHERE id = ?1",
    [ST_JOB_GET] = "SELECT id, state, all_books, total, done, n_ok, n_no_rank, n_not_found,"
                   " n_blocked, n_error, created_at, started_at, finished_at, owner_pid"
                   " FROM jobs WHERE id = ?1",
    [ST_JOBS_UNFINISHED] = "SELECT id, owner_pid FROM jobs WHERE state IN ('queued', 'running')",
    [ST_JOB_CANCEL] = "UPDATE jobs SET state = 'cancelled', finished_at = ?2"
                      " WHERE id = ?1 AND state IN ('queued', 'running')",
};

struct db {
    sqlite3 *conn;
    sqlite3_stmt *stmts[ST_COUNT];   /* prepared on first use, reset after every use */
    char errmsg[512];
};

/* ---- errors ------------------------------------------------------------------------------ */

static void set_err(db *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(db *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* Truncation of a long message is acceptable; it stays NUL-terminated. */
    if (vsnprintf(d->errmsg, sizeof d->errmsg, fmt, ap) < 0)
        snprintf(d->errmsg, sizeof d->errmsg, "error (message unavailable)");
    va_end(ap);
}

/* Records SQLite's current error for the operation `what`; returns DB_ERROR. */
static int fail_sql(db *d, const char *what)
{
    int code = sqlite3_errcode(d->conn);
    set_err(d, "%s: %s%s", what, sqlite3_errmsg(d->conn),
            code == SQLITE_BUSY || code == SQLITE_LOCKED
                ? " (another connection held the database lock for more than 5 s)"
                : "");
    return DB_ERROR;
}

static char *open_errf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *open_errf(const char *fmt, ...)
{
    char *msg = malloc(512);
    if (!msg)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(msg, 512, fmt, ap) < 0)
        snprintf(msg, 512, "cannot open database");
    va_end(ap);
    return msg;
}

const char *db_errmsg(const db *d)
{
    return d ? d->errmsg : "no database";
}

/* ---- statement cache and transactions ---------------------------------------------------- */

/* The cached statement, prepared on first use; NULL (and the error set) when that fails. */
static sqlite3_stmt *stmt_get(db *d, enum stmt_id id)
{
    if (!d->stmts[id] && sqlite3_prepare_v3(d->conn, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                            &d->stmts[id], NULL) != SQLITE_OK) {
        fail_sql(d, "prepare");
        d->stmts[id] = NULL;
    }
    return d->stmts[id];
}

/* Returns a statement to the cache. Resetting matters: a SELECT left mid-way keeps its read
 * transaction (and WAL snapshot) open, which pins the WAL and hides later commits. */
static void stmt_release(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

/* Runs a statement that returns no rows we need. */
static int stmt_run(db *d, enum stmt_id id, const char *what)
{
    sqlite3_stmt *st = stmt_get(d, id);
    if (!st)
        return DB_ERROR;
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE || rc == SQLITE_ROW ? DB_OK : fail_sql(d, what);
    stmt_release(st);
    return ret;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* Binds a fixed-size char array that may lack its terminator. */
static int bind_fixed(sqlite3_stmt *st, int i, const char *s, size_t size)
{
    return sqlite3_bind_text(st, i, s, (int)strnlen(s, size), SQLITE_STATIC);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* Copies a text column into a fresh string (NULL for SQL NULL); -1 when out of memory. */
static int col_dup(sqlite3_stmt *st, int i, char **out)
{
    *out = NULL;
    const char *s = col_text(st, i);
    if (!s)
        return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : -1;
    *out = strdup(s);
    return *out ? 0 : -1;
}

enum tx_mode { TX_OWN, TX_SAVEPOINT };

/*
 * Makes what follows atomic: its own IMMEDIATE transaction outside db_begin, a savepoint inside
 * one (so a failed batch is undone without ending the caller's transaction).
 */
static int tx_enter(db *d, enum tx_mode *mode, const char *what)
{
    *mode = sqlite3_get_autocommit(d->conn) ? TX_OWN : TX_SAVEPOINT;
    return stmt_run(d, *mode == TX_OWN ? ST_BEGIN : ST_SAVEPOINT, what);
}

/* Commits when rc is not DB_ERROR, else undoes; returns rc, or DB_ERROR if the commit failed.
 * The error message of a failed rc is kept (the rollback's own failure would hide it). */
static int tx_leave(db *d, enum tx_mode mode, int rc, const char *what)
{
    if (rc != DB_ERROR) {
        if (stmt_run(d, mode == TX_OWN ? ST_COMMIT : ST_RELEASE, what) == DB_OK)
            return rc;
        rc = DB_ERROR;
    }
    /* SQLite rolls the whole transaction back by itself after some errors (I/O, full disk,
     * out of memory); then there is nothing left to undo. */
    if (sqlite3_get_autocommit(d->conn))
        return rc;
    char saved[sizeof d->errmsg];
    memcpy(saved, d->errmsg, sizeof saved);
    if (mode == TX_OWN) {
        stmt_run(d, ST_ROLLBACK, what);
    } else if (stmt_run(d, ST_ROLLBACK_TO, what) == DB_OK) {
        stmt_run(d, ST_RELEASE, what);
    }
    memcpy(d->errmsg, saved, sizeof saved);
    return rc;
}

int db_begin(db *d)
{
    return stmt_run(d, ST_BEGIN, "begin");
}

int db_commit(db *d)
{
    if (stmt_run(d, ST_COMMIT, "commit") == DB_OK)
        return DB_OK;
    char saved[sizeof d->errmsg];
    memcpy(saved, d->errmsg, sizeof saved);
    db_rollback(d);
    memcpy(d->errmsg, saved, sizeof saved);
    return DB_ERROR;
}

int db_rollback(db *d)
{
    /* Nothing to undo when SQLite already rolled back after an error. */
    if (sqlite3_get_autocommit(d->conn))
        return DB_OK;
    return stmt_run(d, ST_ROLLBACK, "rollback");
}

/* ---- open, migrate, close ---------------------------------------------------------------- */

/* Reads one integer from a constant query (PRAGMA or count). */
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

/* Records a failed setup step in *msg; 1 when SQLite said busy (worth retrying), else -1. */
static int setup_fail(sqlite3 *conn, char **msg, const char *path, const char *step)
{
    int busy = (sqlite3_extended_errcode(conn) & 0xff) == SQLITE_BUSY;
    free(*msg);
    *msg = open_errf("%s: %s: %s", path, step, sqlite3_errmsg(conn));
    return busy ? 1 : -1;
}

/* Applies migration step `from` in one transaction, unless another process did meanwhile.
 * 0, or as setup_fail. */
static int migrate_step(sqlite3 *conn, int from, const char *path, char **msg)
{
    char setver[64];
    int64_t version = 0, objects = 0;
    int ret = -1;
    if (sqlite3_exec(conn, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return setup_fail(conn, msg, path, "migrating the schema");
    /* Re-read under the write lock: a second process may have migrated first. */
    if (query_int(conn, "PRAGMA user_version", &version) != SQLITE_OK)
        goto fail;
    if (version == 0) {
        /* A version-0 file that already has tables belongs to something else: leave it be.
         * Checked under the lock, where a concurrent first migration cannot be half-seen. */
        if (query_int(conn, "SELECT count(*) FROM sqlite_master", &objects) != SQLITE_OK)
            goto fail;
        if (objects > 0) {
            *msg = open_errf("%s: not a bookrank database (it has other tables)", path);
            goto rollback;
        }
    }
    if (version == from) {
        /* PRAGMA takes no parameters; the value is our own integer, not user data. */
        if (snprintf(setver, sizeof setver, "PRAGMA user_version = %d", from + 1) >=
            (int)sizeof setver)
            goto fail;
        if (sqlite3_exec(conn, migrations[from], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(conn, setver, NULL, NULL, NULL) != SQLITE_OK)
            goto fail;
    }
    if (sqlite3_exec(conn, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    return 0;
fail:
    ret = setup_fail(conn, msg, path, "migrating the schema");
rollback:
    if (!sqlite3_get_autocommit(conn))
        sqlite3_exec(conn, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

/* Brings the schema to SCHEMA_VERSION (or checks it, read-only). 0, or as setup_fail. */
static int check_version(sqlite3 *conn, const char *path, int readonly, char **msg)
{
    for (;;) {
        int64_t version = 0;
        if (query_int(conn, "PRAGMA user_version", &version) != SQLITE_OK)
            return setup_fail(conn, msg, path, "reading the schema version");
        if (version > SCHEMA_VERSION) {
            *msg = open_errf("%s: the database has schema version %lld, newer than this "
                             "bookrank understands (%d); upgrade bookrank",
                             path, (long long)version, SCHEMA_VERSION);
            return -1;
        }
        if (version == SCHEMA_VERSION)
            return 0;
        if (readonly) {
            *msg = open_errf("%s: %s (schema version %lld, need %d); open it read-write once "
                             "to create or migrate it",
                             path, version ? "old schema" : "not a bookrank database",
                             (long long)version, SCHEMA_VERSION);
            return -1;
        }
        int rc = migrate_step(conn, (int)version, path, msg);
        if (rc)
            return rc;
    }
}

/* Per-connection settings and the schema check. 0, or as setup_fail. */
static int configure(sqlite3 *conn, const char *path, int readonly, char **msg)
{
    if (!readonly) {
        /* The first statement that reads the file: a non-SQLite file fails here with "file is
         * not a database". */
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(conn, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            sqlite3_finalize(st);
            return setup_fail(conn, msg, path, "opening");
        }
        const char *mode = col_text(st, 0);
        /* In-memory databases cannot use WAL; anything else refusing it is a real problem. */
        int wal_ok = mode && (strcmp(mode, "wal") == 0 || strcmp(mode, "memory") == 0);
        sqlite3_finalize(st);
        if (!wal_ok) {
            *msg = open_errf("%s: cannot switch to WAL mode", path);
            return -1;
        }
    }
    /* wal_autocheckpoint 4000 pages (16 MB of WAL, default 1000): a batch of observations
     * dirties index pages all over the file, and checkpointing four times less often writes
     * each hot page back (and fsyncs) four times less: ~45k -> ~60k appends/s on disk. */
    if (sqlite3_exec(conn,
                     "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                     " PRAGMA wal_autocheckpoint = 4000",
                     NULL, NULL, NULL) != SQLITE_OK)
        return setup_fail(conn, msg, path, "opening");
    return check_version(conn, path, readonly, msg);
}

static db *open_mode(const char *path, int readonly, char **err)
{
    db *d = NULL;
    sqlite3 *conn = NULL;
    char *msg = NULL;
    /* NOMUTEX (multi-thread mode): a handle is used by one thread at a time (db.h), so
     * SQLite's per-connection mutex would be pure overhead. */
    int flags = SQLITE_OPEN_NOMUTEX |
                (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);

    if (!path) {
        msg = open_errf("no database path");
        goto done;
    }
    if (!sqlite3_threadsafe()) {
        msg = open_errf("this SQLite library was built without thread support");
        goto done;
    }
    int rc = sqlite3_open_v2(path, &conn, flags, NULL);
    if (rc != SQLITE_OK) {
        msg = open_errf("%s: %s", path, conn ? sqlite3_errmsg(conn) : sqlite3_errstr(rc));
        goto done;
    }
    sqlite3_busy_timeout(conn, DB_BUSY_TIMEOUT_MS);
    /* Some setup steps get SQLITE_BUSY without SQLite's busy handler being called (switching a
     * brand-new file to WAL while another process creates it too: waiting there could
     * deadlock). Retrying the whole setup is safe, within the same time limit. */
    int64_t deadline = time_mono_ms() + DB_BUSY_TIMEOUT_MS;
    while ((rc = configure(conn, path, readonly, &msg)) == 1 && time_mono_ms() < deadline)
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
    if (rc)
        goto done;
    free(msg);
    msg = NULL;
    d = calloc(1, sizeof *d);
    if (!d) {
        msg = open_errf("out of memory");
        goto done;
    }
    d->conn = conn;
    conn = NULL;
done:
    sqlite3_close_v2(conn);
    if (err)
        *err = msg;
    else
        free(msg);
    return d;
}

db *db_open(const char *path, char **err)
{
    return open_mode(path, 0, err);
}

db *db_open_readonly(const char *path, char **err)
{
    return open_mode(path, 1, err);
}

void db_close(db *d)
{
    if (!d)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(d->stmts[i]);
    /* A transaction still open here is rolled back by SQLite on close. */
    sqlite3_close_v2(d->conn);
    free(d);
}

/* ---- categories as JSON ------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 when it is not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
        cp = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        cp = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* A copy of s with every invalid UTF-8 byte replaced by U+FFFD (jansson only takes UTF-8). */
static char *utf8_sanitize(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = n < SIZE_MAX / 3 ? malloc(n * 3 + 1) : NULL;
    if (!out)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq_len(u + i, n - i);
        if (len) {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

/* *out = '[{"rank":..,"category":..}, ...]' (malloc'd), or NULL when there are none.
 * -1 when out of memory. */
static int categories_encode(const observation *obs, char **out)
{
    *out = NULL;
    if (obs->ncategories == 0)
        return 0;
    int ret = -1;
    json_t *arr = json_array();
    if (!arr)
        goto done;
    for (size_t i = 0; i < obs->ncategories; i++) {
        const char *name = obs->categories[i].category ? obs->categories[i].category : "";
        json_t *str = json_string(name);
        if (!str) {
            char *clean = utf8_sanitize(name);
            str = clean ? json_string(clean) : NULL;
            free(clean);
        }
        json_t *item = str ? json_pack("{s:I,s:o}", "rank", (json_int_t)obs->categories[i].rank,
                                       "category", str)
                           : NULL;
        if (!item || json_array_append_new(arr, item))
            goto done;
    }
    *out = json_dumps(arr, JSON_COMPACT);
    ret = *out ? 0 : -1;
done:
    json_decref(arr);
    return ret;
}

/* Fills obs->categories from the stored JSON. A malformed value (never written by us) is read
 * as no categories rather than failing the whole listing. -1 only when out of memory. */
static int categories_decode(observation *obs, const char *text, size_t len)
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

/* ---- reading rows ------------------------------------------------------------------------ */

/* Reads the OBS_COLUMNS starting at column c into obs (initialised here). *id may be NULL.
 * -1 when out of memory (obs is then cleared). */
static int read_observation(sqlite3_stmt *st, int c, observation *obs, int64_t *id)
{
    obs_init(obs);
    if (id)
        *id = sqlite3_column_int64(st, c);
    const char *isbn13 = col_text(st, c + 1);
    snprintf(obs->isbn13, sizeof obs->isbn13, "%s", isbn13 ? isbn13 : "");
    obs->fetched_at_ms = sqlite3_column_int64(st, c + 3);
    const char *status = col_text(st, c + 4);
    int s = status ? obs_status_parse(status) : -1;
    obs->status = s < 0 ? OBS_ERROR : (obs_status)s;
    obs->rank = sqlite3_column_type(st, c + 5) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, c + 5);
    obs->http_status = sqlite3_column_int(st, c + 9);
    obs->attempts = sqlite3_column_int(st, c + 10);
    obs->duration_ms = sqlite3_column_int64(st, c + 11);
    if (col_dup(st, c + 2, &obs->source) || col_dup(st, c + 6, &obs->rank_category) ||
        col_dup(st, c + 8, &obs->title) || col_dup(st, c + 12, &obs->error))
        goto oom;
    const char *cats = col_text(st, c + 7);
    if (cats && categories_decode(obs, cats, (size_t)sqlite3_column_bytes(st, c + 7)))
        goto oom;
    return 0;
oom:
    obs_clear(obs);
    return -1;
}

/* ---- books ------------------------------------------------------------------------------- */

int db_books_add(db *d, const isbn *books, size_t n, int *added)
{
    enum tx_mode mode;
    if (n == 0)
        return DB_OK;
    if (tx_enter(d, &mode, "add books"))
        return DB_ERROR;
    int rc = DB_ERROR;
    sqlite3_stmt *st = stmt_get(d, ST_BOOK_ADD);
    if (!st)
        goto done;
    int64_t now = time_now_ms();
    for (size_t i = 0; i < n; i++) {
        bind_fixed(st, 1, books[i].isbn13, sizeof books[i].isbn13);
        bind_fixed(st, 2, books[i].isbn10, sizeof books[i].isbn10);
        sqlite3_bind_int64(st, 3, now);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fail_sql(d, "add books");
            goto done;
        }
        /* 0 when ON CONFLICT DO NOTHING skipped it: tracked already, or repeated in the batch. */
        if (added)
            added[i] = sqlite3_changes(d->conn) > 0;
        sqlite3_reset(st);
    }
    rc = DB_OK;
done:
    stmt_release(st);
    return tx_leave(d, mode, rc, "add books");
}

int db_book_remove(db *d, const char *isbn13)
{
    sqlite3_stmt *st = stmt_get(d, ST_BOOK_REMOVE);
    if (!st)
        return DB_ERROR;
    bind_text(st, 1, isbn13);
    /* Observations and latest rows go with it through ON DELETE CASCADE. */
    int rc = sqlite3_step(st) == SQLITE_DONE
                 ? (sqlite3_changes(d->conn) > 0 ? DB_OK : DB_NOTFOUND)
                 : fail_sql(d, "remove book");
    if (rc == DB_NOTFOUND)
        set_err(d, "book %s is not tracked", isbn13 ? isbn13 : "(null)");
    stmt_release(st);
    return rc;
}

void db_book_clear(db_book *b)
{
    if (!b)
        return;
    free(b->title);
    for (size_t i = 0; i < b->nlatest; i++)
        obs_clear(&b->latest[i]);
    free(b->latest);
    memset(b, 0, sizeof *b);
}

void db_books_free(db_book *books, size_t n)
{
    if (!books)
        return;
    for (size_t i = 0; i < n; i++)
        db_book_clear(&books[i]);
    free(books);
}

/* Steps a BOOK_SELECT statement (rows grouped by book) into an array of books. */
static int collect_books(db *d, sqlite3_stmt *st, db_book **out, size_t *n)
{
    db_book *books = NULL;
    size_t count = 0, cap = 0;
    int rc = DB_ERROR, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *isbn13 = col_text(st, 0);
        if (!isbn13)
            goto oom;
        db_book *b = count ? &books[count - 1] : NULL;
        if (!b || strcmp(b->isbn13, isbn13) != 0) {
            if (count == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                db_book *grown = realloc(books, ncap * sizeof *grown);
                if (!grown)
                    goto oom;
                books = grown;
                cap = ncap;
            }
            b = &books[count++];
            memset(b, 0, sizeof *b);
            const char *isbn10 = col_text(st, 1);
            snprintf(b->isbn13, sizeof b->isbn13, "%s", isbn13);
            snprintf(b->isbn10, sizeof b->isbn10, "%s", isbn10 ? isbn10 : "");
            b->added_at_ms = sqlite3_column_int64(st, 3);
            if (col_dup(st, 2, &b->title))
                goto oom;
        }
        if (sqlite3_column_type(st, BOOK_COL_OBS) == SQLITE_NULL)
            continue;  /* never fetched (or nothing from the filtered source) */
        observation *grown = realloc(b->latest, (b->nlatest + 1) * sizeof *grown);
        if (!grown)
            goto oom;
        b->latest = grown;
        if (read_observation(st, BOOK_COL_OBS, &b->latest[b->nlatest], NULL))
            goto oom;
        b->latest[b->nlatest].previous_rank =
            sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 4);
        b->nlatest++;
    }
    if (step != SQLITE_DONE) {
        fail_sql(d, "list books");
        goto done;
    }
    *out = books;
    *n = count;
    books = NULL;
    count = 0;
    rc = DB_OK;
    goto done;
oom:
    set_err(d, "list books: out of memory");
done:
    db_books_free(books, count);
    return rc;
}

int db_books_list(db *d, const db_book_filter *filter, db_book **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int one = filter && filter->isbn13;
    sqlite3_stmt *st = stmt_get(d, one ? ST_BOOK_ONE : ST_BOOKS_LIST);
    if (!st)
        return DB_ERROR;
    if (filter) {
        bind_text(st, 1, filter->source);
        bind_text(st, 2, filter->status);
        if (one)
            bind_text(st, 3, filter->isbn13);
    }
    int rc = collect_books(d, st, out, n);
    stmt_release(st);
    return rc;
}

int db_book_get(db *d, const char *isbn13, db_book *out)
{
    db_book *books = NULL;
    size_t n = 0;
    db_book_filter filter = {.isbn13 = isbn13};
    memset(out, 0, sizeof *out);
    if (!isbn13) {
        set_err(d, "no ISBN given");
        return DB_ERROR;
    }
    int rc = db_books_list(d, &filter, &books, &n);
    if (rc == DB_OK && n == 0) {
        set_err(d, "book %s is not tracked", isbn13);
        rc = DB_NOTFOUND;
    }
    if (rc == DB_OK) {
        *out = books[0];   /* moves ownership; the array itself is freed below */
        memset(&books[0], 0, sizeof books[0]);
    }
    db_books_free(books, n);
    return rc;
}

int db_books_isbns(db *d, isbn **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = stmt_get(d, ST_BOOKS_ISBNS);
    if (!st)
        return DB_ERROR;
    isbn *list = NULL;
    size_t count = 0, cap = 0;
    int rc = DB_ERROR, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            isbn *grown = realloc(list, ncap * sizeof *grown);
            if (!grown) {
                set_err(d, "list ISBNs: out of memory");
                goto done;
            }
            list = grown;
            cap = ncap;
        }
        const char *i13 = col_text(st, 0), *i10 = col_text(st, 1);
        snprintf(list[count].isbn13, sizeof list[count].isbn13, "%s", i13 ? i13 : "");
        snprintf(list[count].isbn10, sizeof list[count].isbn10, "%s", i10 ? i10 : "");
        count++;
    }
    if (step != SQLITE_DONE) {
        fail_sql(d, "list ISBNs");
        goto done;
    }
    *out = list;
    *n = count;
    list = NULL;
    rc = DB_OK;
done:
    free(list);
    stmt_release(st);
    return rc;
}

/* Runs a cached statement that answers one integer. */
static int single_int(db *d, enum stmt_id which, const char *what, int64_t *out)
{
    sqlite3_stmt *st = stmt_get(d, which);
    if (!st)
        return DB_ERROR;
    int rc = DB_OK;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = fail_sql(d, what);
    stmt_release(st);
    return rc;
}

int db_books_count(db *d, int64_t *count)
{
    return single_int(d, ST_BOOKS_COUNT, "count books", count);
}

int db_data_version(db *d, int64_t *version)
{
    return single_int(d, ST_DATA_VERSION, "data_version", version);
}

/* ---- observations ------------------------------------------------------------------------ */

static int observation_insert(db *d, const observation *obs)
{
    int rc = DB_ERROR;
    char *cats = NULL;
    sqlite3_stmt *ins = NULL, *latest = NULL, *title = NULL;
    if (!obs->source) {
        set_err(d, "add observations: observation of %.13s has no source", obs->isbn13);
        goto done;
    }
    if (categories_encode(obs, &cats)) {
        set_err(d, "add observations: out of memory");
        goto done;
    }
    if (!(ins = stmt_get(d, ST_OBS_ADD)))
        goto done;
    bind_fixed(ins, 1, obs->isbn13, sizeof obs->isbn13);
    bind_text(ins, 2, obs->source);
    sqlite3_bind_int64(ins, 3, obs->fetched_at_ms);
    bind_text(ins, 4, obs_status_name(obs->status));
    if (obs->rank >= 0)
        sqlite3_bind_int64(ins, 5, obs->rank);
    bind_text(ins, 6, obs->rank_category);
    bind_text(ins, 7, cats);
    bind_text(ins, 8, obs->title);
    sqlite3_bind_int(ins, 9, obs->http_status);
    sqlite3_bind_int(ins, 10, obs->attempts);
    sqlite3_bind_int64(ins, 11, obs->duration_ms);
    bind_text(ins, 12, obs->error);
    if (sqlite3_step(ins) != SQLITE_DONE) {
        fail_sql(d, "add observations");
        goto done;
    }
    if (sqlite3_changes(d->conn) == 0) {
        rc = DB_OK;   /* the book is not tracked (any more) */
        goto done;
    }
    int64_t id = sqlite3_last_insert_rowid(d->conn);

    if (!(latest = stmt_get(d, ST_LATEST_REFRESH)))
        goto done;
    bind_fixed(latest, 1, obs->isbn13, sizeof obs->isbn13);
    bind_text(latest, 2, obs->source);
    if (sqlite3_step(latest) != SQLITE_DONE) {
        fail_sql(d, "add observations (latest)");
        goto done;
    }
    if (obs->title && obs->title[0]) {
        if (!(title = stmt_get(d, ST_TITLE_UPDATE)))
            goto done;
        bind_fixed(title, 1, obs->isbn13, sizeof obs->isbn13);
        bind_text(title, 2, obs->title);
        bind_text(title, 3, obs->source);
        sqlite3_bind_int64(title, 4, id);
        if (sqlite3_step(title) != SQLITE_DONE) {
            fail_sql(d, "add observations (title)");
            goto done;
        }
    }
    rc = DB_OK;
done:
    stmt_release(ins);
    stmt_release(latest);
    stmt_release(title);
    free(cats);
    return rc;
}

int db_observations_add(db *d, const observation *obs, size_t n)
{
    enum tx_mode mode;
    if (n == 0)
        return DB_OK;
    if (tx_enter(d, &mode, "add observations"))
        return DB_ERROR;
    int rc = DB_OK;
    for (size_t i = 0; i < n && rc == DB_OK; i++)
        rc = observation_insert(d, &obs[i]);
    return tx_leave(d, mode, rc, "add observations");
}

void db_observations_free(observation *obs, size_t n)
{
    if (!obs)
        return;
    for (size_t i = 0; i < n; i++)
        obs_clear(&obs[i]);
    free(obs);
}

/* The rank of the newest ranked observation of (isbn13, source) before (fetched_at, id). */
static int previous_rank(db *d, const observation *obs, int64_t id, int64_t *rank)
{
    sqlite3_stmt *st = stmt_get(d, ST_PREVIOUS_RANK);
    if (!st)
        return DB_ERROR;
    bind_fixed(st, 1, obs->isbn13, sizeof obs->isbn13);
    bind_text(st, 2, obs->source);
    sqlite3_bind_int64(st, 3, obs->fetched_at_ms);
    sqlite3_bind_int64(st, 4, id);
    int rc = DB_OK, step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *rank = sqlite3_column_int64(st, 0);
    else if (step == SQLITE_DONE)
        *rank = -1;
    else
        rc = fail_sql(d, "history (previous rank)");
    stmt_release(st);
    return rc;
}

/*
 * Sets previous_rank on every row of a newest-first history. Walking from the oldest row up,
 * each source carries its last rank forward; only the oldest row of each source in the window
 * needs a look further back (one index seek per source, not per row).
 */
static int fill_previous_ranks(db *d, observation *rows, const int64_t *ids, size_t n)
{
    struct carry {
        const char *source;
        int64_t rank;
    } *carry = NULL;
    size_t ncarry = 0;
    int rc = DB_OK;
    for (size_t k = n; k-- > 0 && rc == DB_OK;) {
        observation *o = &rows[k];
        size_t j = 0;
        while (j < ncarry && strcmp(carry[j].source, o->source) != 0)
            j++;
        if (j == ncarry) {
            struct carry *grown = realloc(carry, (ncarry + 1) * sizeof *grown);
            if (!grown) {
                set_err(d, "history: out of memory");
                rc = DB_ERROR;
                break;
            }
            carry = grown;
            carry[j].source = o->source;
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

static int book_exists(db *d, const char *isbn13)
{
    sqlite3_stmt *st = stmt_get(d, ST_BOOK_EXISTS);
    if (!st)
        return DB_ERROR;
    bind_text(st, 1, isbn13);
    int step = sqlite3_step(st);
    int rc = step == SQLITE_ROW ? DB_OK : step == SQLITE_DONE ? DB_NOTFOUND : fail_sql(d, "history");
    if (rc == DB_NOTFOUND)
        set_err(d, "book %s is not tracked", isbn13);
    stmt_release(st);
    return rc;
}

int db_history(db *d, const char *isbn13, const db_history_query *q, observation **out,
               size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!isbn13) {
        set_err(d, "no ISBN given");
        return DB_ERROR;
    }
    int rc = book_exists(d, isbn13);
    if (rc != DB_OK)
        return rc;
    const char *source = q ? q->source : NULL;
    int limit = q && q->limit > 0 ? q->limit : DB_HISTORY_DEFAULT_LIMIT;
    sqlite3_stmt *st = stmt_get(d, source ? ST_HISTORY_SOURCE : ST_HISTORY_ALL);
    if (!st)
        return DB_ERROR;
    bind_text(st, 1, isbn13);
    sqlite3_bind_int64(st, 2, q ? q->since_ms : 0);
    sqlite3_bind_int(st, 3, limit);
    if (source)
        bind_text(st, 4, source);

    observation *rows = NULL;
    int64_t *ids = NULL;
    size_t count = 0, cap = 0;
    int step;
    rc = DB_ERROR;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            observation *grown = realloc(rows, ncap * sizeof *grown);
            if (!grown)
                goto oom;
            rows = grown;
            int64_t *gids = realloc(ids, ncap * sizeof *gids);
            if (!gids)
                goto oom;
            ids = gids;
            cap = ncap;
        }
        if (read_observation(st, 0, &rows[count], &ids[count]))
            goto oom;
        count++;
    }
    if (step != SQLITE_DONE) {
        fail_sql(d, "history");
        goto done;
    }
    stmt_release(st);
    st = NULL;
    if (fill_previous_ranks(d, rows, ids, count))
        goto done;
    *out = rows;
    *n = count;
    rows = NULL;
    count = 0;
    rc = DB_OK;
    goto done;
oom:
    set_err(d, "history: out of memory");
done:
    stmt_release(st);
    db_observations_free(rows, count);
    free(ids);
    return rc;
}

int db_export(db *d, int (*fn)(void *ctx, const observation *obs), void *ctx)
{
    sqlite3_stmt *st = stmt_get(d, ST_EXPORT);
    if (!st)
        return DB_ERROR;
    observation obs;
    int rc = DB_OK, step;
    /* One statement, so one read snapshot: the export is consistent even while writers run. */
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (read_observation(st, 0, &obs, NULL)) {
            set_err(d, "export: out of memory");
            rc = DB_ERROR;
            break;
        }
        int stop = fn(ctx, &obs);
        obs_clear(&obs);
        if (stop)
            break;
    }
    if (rc == DB_OK && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = fail_sql(d, "export");
    stmt_release(st);
    return rc;
}

/* ---- jobs -------------------------------------------------------------------------------- */

static const char *const job_state_names[] = {"queued", "running", "done", "cancelled"};

const char *db_job_state_name(db_job_state s)
{
    return (unsigned)s < sizeof job_state_names / sizeof job_state_names[0] ? job_state_names[s]
                                                                          : "cancelled";
}

static db_job_state job_state_parse(const char *s)
{
    for (int i = 0; s && i < (int)(sizeof job_state_names / sizeof job_state_names[0]); i++)
        if (strcmp(s, job_state_names[i]) == 0)
            return (db_job_state)i;
    return JOB_CANCELLED;
}

int db_job_create(db *d, db_job *job)
{
    sqlite3_stmt *st = stmt_get(d, ST_JOB_CREATE);
    if (!st)
        return DB_ERROR;
    if (job->created_at_ms == 0)
        job->created_at_ms = time_now_ms();
    job->owner_pid = (int64_t)getpid();
    bind_text(st, 1, db_job_state_name(job->state));
    sqlite3_bind_int(st, 2, job->all_books ? 1 : 0);
    sqlite3_bind_int64(st, 3, job->total);
    sqlite3_bind_int64(st, 4, job->done);
    for (int i = 0; i < OBS_STATUS_COUNT; i++)
        sqlite3_bind_int64(st, 5 + i, job->counts[i]);
    sqlite3_bind_int64(st, 10, job->created_at_ms);
    sqlite3_bind_int64(st, 11, job->started_at_ms);
    sqlite3_bind_int64(st, 12, job->finished_at_ms);
    sqlite3_bind_int64(st, 13, job->owner_pid);
    int rc = DB_OK;
    if (sqlite3_step(st) == SQLITE_DONE)
        job->id = sqlite3_last_insert_rowid(d->conn);
    else
        rc = fail_sql(d, "create job");
    stmt_release(st);
    return rc;
}

int db_job_update(db *d, const db_job *job)
{
    sqlite3_stmt *st = stmt_get(d, ST_JOB_UPDATE);
    if (!st)
        return DB_ERROR;
    sqlite3_bind_int64(st, 1, job->id);
    bind_text(st, 2, db_job_state_name(job->state));
    sqlite3_bind_int64(st, 3, job->total);
    sqlite3_bind_int64(st, 4, job->done);
    for (int i = 0; i < OBS_STATUS_COUNT; i++)
        sqlite3_bind_int64(st, 5 + i, job->counts[i]);
    sqlite3_bind_int64(st, 10, job->started_at_ms);
    sqlite3_bind_int64(st, 11, job->finished_at_ms);
    int rc = sqlite3_step(st) == SQLITE_DONE
                 ? (sqlite3_changes(d->conn) > 0 ? DB_OK : DB_NOTFOUND)
                 : fail_sql(d, "update job");
    if (rc == DB_NOTFOUND)
        set_err(d, "no job %lld", (long long)job->id);
    stmt_release(st);
    return rc;
}

int db_job_get(db *d, int64_t id, db_job *out)
{
    sqlite3_stmt *st = stmt_get(d, ST_JOB_GET);
    if (!st)
        return DB_ERROR;
    memset(out, 0, sizeof *out);
    sqlite3_bind_int64(st, 1, id);
    int rc = DB_OK, step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        out->state = job_state_parse(col_text(st, 1));
        out->all_books = sqlite3_column_int(st, 2);
        out->total = sqlite3_column_int64(st, 3);
        out->done = sqlite3_column_int64(st, 4);
        for (int i = 0; i < OBS_STATUS_COUNT; i++)
            out->counts[i] = sqlite3_column_int64(st, 5 + i);
        out->created_at_ms = sqlite3_column_int64(st, 10);
        out->started_at_ms = sqlite3_column_int64(st, 11);
        out->finished_at_ms = sqlite3_column_int64(st, 12);
        out->owner_pid = sqlite3_column_int64(st, 13);
    } else if (step == SQLITE_DONE) {
        set_err(d, "no job %lld", (long long)id);
        rc = DB_NOTFOUND;
    } else {
        rc = fail_sql(d, "get job");
    }
    stmt_release(st);
    return rc;
}

/* Whether the process that owns a job is gone. Another live process (a cron refresh beside
 * serve) still owns its jobs; EPERM means it lives under another user. */
static int owner_is_gone(int64_t pid)
{
    if (pid <= 0 || pid > INT32_MAX)
        return 1;   /* kill(0 or -1, 0) would probe process groups, not a process */
    if ((pid_t)pid == getpid())
        return 1;   /* ours: this process is the one cleaning up */
    return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

int db_jobs_cancel_unfinished(db *d, int64_t now_ms, int *n)
{
    enum tx_mode mode;
    int64_t *ids = NULL;
    size_t count = 0, cap = 0;
    int cancelled = 0;
    if (n)
        *n = 0;
    if (tx_enter(d, &mode, "cancel jobs"))
        return DB_ERROR;
    int rc = DB_ERROR, step;
    sqlite3_stmt *st = stmt_get(d, ST_JOBS_UNFINISHED);
    if (!st)
        goto done;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (!owner_is_gone(sqlite3_column_int64(st, 1)))
            continue;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            int64_t *grown = realloc(ids, ncap * sizeof *grown);
            if (!grown) {
                set_err(d, "cancel jobs: out of memory");
                goto done;
            }
            ids = grown;
            cap = ncap;
        }
        ids[count++] = sqlite3_column_int64(st, 0);
    }
    if (step != SQLITE_DONE) {
        fail_sql(d, "cancel jobs");
        goto done;
    }
    stmt_release(st);
    if (!(st = stmt_get(d, ST_JOB_CANCEL)))
        goto done;
    for (size_t i = 0; i < count; i++) {
        sqlite3_bind_int64(st, 1, ids[i]);
        sqlite3_bind_int64(st, 2, now_ms);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fail_sql(d, "cancel jobs");
            goto done;
        }
        cancelled += sqlite3_changes(d->conn);
        sqlite3_reset(st);
    }
    rc = DB_OK;
done:
    stmt_release(st);
    free(ids);
    rc = tx_leave(d, mode, rc, "cancel jobs");
    if (n && rc == DB_OK)
        *n = cancelled;
    return rc;
}
