/*
 * sqlite.c - the SQLite backend's connection: opening and per-connection settings (WAL, busy
 * timeout), the cache of prepared statements, transactions and savepoints, the mapping of
 * SQLite's result codes onto db_err, and the operations table (backend.h) that db.c calls.
 */
#include "sqlite_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../common/timeutil.h"

/* ---- errors ------------------------------------------------------------------------------ */

db_err db_sq_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return DB_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return DB_BUSY;
    case SQLITE_FULL:
        return DB_FULL;
    case SQLITE_READONLY:
        return DB_READONLY;
    case SQLITE_NOMEM:
        return DB_NOMEM;
    case SQLITE_IOERR:
        return rc == SQLITE_IOERR_NOMEM ? DB_NOMEM : DB_ERROR;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return DB_CORRUPT;
    case SQLITE_CONSTRAINT:
        /* Only uniqueness is a conflict the caller can act on; CHECK, NOT NULL and foreign key
         * violations are bad input, reported as DB_ERROR as before. */
        return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY ? DB_CONFLICT
                                                                                    : DB_ERROR;
    default:
        return DB_ERROR;
    }
}

/* " (another connection held the database lock for more than 5 s)" for a lock error: the
 * caller learns that waiting was tried, and for how long. */
static void lock_note(const struct sq *s, int rc, char *out, size_t len)
{
    out[0] = '\0';
    if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
        return;
    int ms = s->busy_ms;
    int n = ms % 1000 == 0 && ms > 0
                ? snprintf(out, len,
                           " (another connection held the database lock for more than "
                           "%d s)",
                           ms / 1000)
                : snprintf(out, len,
                           " (another connection held the database lock for more than "
                           "%d ms)",
                           ms);
    if (n < 0 || (size_t)n >= len)
        out[0] = '\0';
}

db_err db_sq_fail_rc(db *d, int rc, const char *what, const char *detail)
{
    char note[96];
    lock_note(sq_of(d), rc, note, sizeof note);
    return db_fail(d, db_sq_code(rc), "%s: %s%s", what, detail, note);
}

db_err db_sq_fail(db *d, const char *what)
{
    sqlite3 *conn = sq_conn(d);
    return db_sq_fail_rc(d, sqlite3_extended_errcode(conn), what, sqlite3_errmsg(conn));
}

db_err db_sq_setup_fail(db *d, const char *path, const char *step)
{
    sqlite3 *conn = sq_conn(d);
    return db_fail(d, db_sq_code(sqlite3_extended_errcode(conn)), "%s: %s: %s", path, step,
                   sqlite3_errmsg(conn));
}

/* ---- statement cache --------------------------------------------------------------------- */

static const char *const stmt_sql[ST_COUNT] = {
#define SQ_STMT(id, sql) [id] = sql,
#include "sqlite_stmts.def"
#undef SQ_STMT
};

db_err db_sq_stmt(db *d, enum sq_stmt_id id, sqlite3_stmt **st)
{
    struct sq *s = sq_of(d);
    if (!s->stmts[id] && sqlite3_prepare_v3(s->conn, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                            &s->stmts[id], NULL) != SQLITE_OK) {
        s->stmts[id] = NULL;
        *st = NULL;
        return db_sq_fail(d, "prepare");
    }
    *st = s->stmts[id];
    return DB_OK;
}

void db_sq_release(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

db_err db_sq_run(db *d, enum sq_stmt_id id, const char *what)
{
    sqlite3_stmt *st;
    db_err ret = db_sq_stmt(d, id, &st);
    if (ret != DB_OK)
        return ret;
    int rc = sqlite3_step(st);
    ret = rc == SQLITE_DONE || rc == SQLITE_ROW ? DB_OK : db_sq_fail(d, what);
    db_sq_release(st);
    return ret;
}

int db_sq_col_dup(sqlite3_stmt *st, int i, char **out)
{
    *out = NULL;
    const char *s = sq_col_text(st, i);
    if (!s)
        return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : -1;
    *out = strdup(s);
    return *out ? 0 : -1;
}

/* ---- transactions ------------------------------------------------------------------------ */

db_err db_sq_tx_enter(db *d, enum sq_tx_mode *mode, const char *what)
{
    *mode = sqlite3_get_autocommit(sq_conn(d)) ? TX_OWN : TX_SAVEPOINT;
    return db_sq_run(d, *mode == TX_OWN ? ST_BEGIN : ST_SAVEPOINT, what);
}

db_err db_sq_tx_leave(db *d, enum sq_tx_mode mode, db_err rc, const char *what)
{
    if (rc >= 0) {
        db_err done = db_sq_run(d, mode == TX_OWN ? ST_COMMIT : ST_RELEASE, what);
        if (done == DB_OK)
            return rc;
        rc = done;
    }
    /* SQLite rolls the whole transaction back by itself after some errors (I/O, full disk,
     * out of memory); then there is nothing left to undo. */
    if (sqlite3_get_autocommit(sq_conn(d)))
        return rc;
    char saved[sizeof d->errmsg];
    memcpy(saved, d->errmsg, sizeof saved);
    if (mode == TX_OWN) {
        /* A transaction left open would swallow the next call's writes: insist. */
        for (int i = 0; i < 3 && !sqlite3_get_autocommit(sq_conn(d)); i++)
            (void)db_sq_run(d, ST_ROLLBACK, what);
    } else if (db_sq_run(d, ST_ROLLBACK_TO, what) == DB_OK) {
        (void)db_sq_run(d, ST_RELEASE, what);
    }
    memcpy(d->errmsg, saved, sizeof saved);
    return rc;
}

static db_err sq_begin(db *d)
{
    return db_sq_run(d, ST_BEGIN, "begin");
}

static db_err sq_rollback(db *d)
{
    /* Nothing to undo when SQLite already rolled back after an error. */
    if (sqlite3_get_autocommit(sq_conn(d)))
        return DB_OK;
    db_err rc = DB_OK;
    for (int i = 0; i < 3 && !sqlite3_get_autocommit(sq_conn(d)); i++)
        rc = db_sq_run(d, ST_ROLLBACK, "rollback");
    return rc;
}

static db_err sq_commit(db *d)
{
    db_err rc = db_sq_run(d, ST_COMMIT, "commit");
    if (rc == DB_OK)
        return DB_OK;
    char saved[sizeof d->errmsg];
    memcpy(saved, d->errmsg, sizeof saved);
    (void)sq_rollback(d);
    memcpy(d->errmsg, saved, sizeof saved);
    return rc;
}

/* ---- open, close ------------------------------------------------------------------------- */

/* Per-connection settings and the schema check. DB_BUSY when worth retrying. */
static db_err configure(db *d, const char *path, unsigned flags)
{
    sqlite3 *conn = sq_conn(d);
    if (!(flags & DB_OPEN_READ_ONLY)) {
        /* The first statement that reads the file: a non-SQLite file fails here with "file is
         * not a database". */
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(conn, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            sqlite3_finalize(st);
            return db_sq_setup_fail(d, path, "opening");
        }
        const char *mode = sq_col_text(st, 0);
        /* In-memory databases cannot use WAL; anything else refusing it is a real problem. */
        int wal_ok = mode && (strcmp(mode, "wal") == 0 || strcmp(mode, "memory") == 0);
        sqlite3_finalize(st);
        if (!wal_ok)
            return db_fail(d, DB_ERROR, "%s: cannot switch to WAL mode", path);
    }
    /* wal_autocheckpoint 4000 pages (16 MB of WAL, default 1000): a batch of observations
     * dirties index pages all over the file, and checkpointing four times less often writes
     * each hot page back (and fsyncs) four times less: ~45k -> ~60k appends/s on disk. */
    if (sqlite3_exec(conn,
                     "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                     " PRAGMA wal_autocheckpoint = 4000",
                     NULL, NULL, NULL) != SQLITE_OK)
        return db_sq_setup_fail(d, path, "opening");
    db_err rc = db_sq_check_schema(d, path, flags);
    /* The statements that end a transaction are prepared now, not on first use: undoing a
     * failed write must not itself need memory (out of memory would leave the transaction
     * open, and the next call would write into it and lose its changes on close). */
    static const enum sq_stmt_id enders[] = {ST_COMMIT, ST_ROLLBACK, ST_RELEASE, ST_ROLLBACK_TO};
    for (size_t i = 0; rc == DB_OK && i < sizeof enders / sizeof enders[0]; i++) {
        sqlite3_stmt *st;
        if ((rc = db_sq_stmt(d, enders[i], &st)) == DB_OK)
            db_sq_release(st);
    }
    return rc;
}

static void sq_close(db *d)
{
    struct sq *s = sq_of(d);
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    /* A transaction still open here is rolled back by SQLite on close. */
    sqlite3_close_v2(s->conn);
    free(s);
    d->impl = NULL;
}

/* The message for a file that could not be opened; a missing one is DB_NOTFOUND, which the
 * commands that only read turn into "no database at PATH". */
static db_err open_fail(db *d, const char *path, unsigned flags, int rc)
{
    struct stat st;
    if ((rc & 0xff) == SQLITE_CANTOPEN && !(flags & DB_OPEN_CREATE) && stat(path, &st) != 0 &&
        errno == ENOENT)
        return db_fail(d, DB_NOTFOUND, "no database at %s", path);
    sqlite3 *conn = sq_conn(d);
    return db_fail(d, db_sq_code(rc), "%s: %s", path,
                   conn ? sqlite3_errmsg(conn) : sqlite3_errstr(rc));
}

static db_err sq_open(db *d, const char *path, unsigned flags)
{
    int readonly = (flags & DB_OPEN_READ_ONLY) != 0;
    /* NOMUTEX (multi-thread mode): a handle is used by one thread at a time (db.h), so
     * SQLite's per-connection mutex would be pure overhead. */
    int oflags = SQLITE_OPEN_NOMUTEX | (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
                 (flags & DB_OPEN_CREATE ? SQLITE_OPEN_CREATE : 0);

    if (!sqlite3_threadsafe())
        return db_fail(d, DB_ERROR, "this SQLite library was built without thread support");
    struct sq *s = calloc(1, sizeof *s);
    if (!s)
        return db_fail(d, DB_NOMEM, "out of memory");
    s->busy_ms = DB_BUSY_TIMEOUT_MS;
    d->impl = s;
    int rc = sqlite3_open_v2(path, &s->conn, oflags, NULL);
    db_err ret;
    if (rc != SQLITE_OK) {
        ret = open_fail(d, path, flags, rc);
        goto fail;
    }
    sqlite3_busy_timeout(s->conn, s->busy_ms);
    /* Some setup steps get SQLITE_BUSY without SQLite's busy handler being called (switching a
     * brand-new file to WAL while another process creates it too: waiting there could
     * deadlock). Retrying the whole setup is safe, within the same time limit. */
    int64_t deadline = time_mono_ms() + s->busy_ms;
    while ((ret = configure(d, path, flags)) == DB_BUSY && time_mono_ms() < deadline)
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
    if (ret != DB_OK)
        goto fail;
    return DB_OK;
fail:
    sq_close(d);
    return ret;
}

static void sq_set_busy_timeout(db *d, int ms)
{
    struct sq *s = sq_of(d);
    s->busy_ms = ms;
    sqlite3_busy_timeout(s->conn, ms);
}

const struct db_backend db_sqlite_backend = {
    .name = "sqlite",
    .schema_latest = db_sq_schema_latest,
    .open = sq_open,
    .close = sq_close,
    .set_busy_timeout = sq_set_busy_timeout,
    .schema_version = db_sq_schema_version,
    .backup = db_sq_backup,
    .books_add = db_sq_books_add,
    .book_resolve = db_sq_book_resolve,
    .book_remove = db_sq_book_remove,
    .book_update = db_sq_book_update,
    .books_list = db_sq_books_list,
    .targets = db_sq_targets,
    .books_count = db_sq_books_count,
    .data_version = db_sq_data_version,
    .observations_add = db_sq_observations_add,
    .history = db_sq_history,
    .export_all = db_sq_export,
    .job_create = db_sq_job_create,
    .job_update = db_sq_job_update,
    .job_get = db_sq_job_get,
    .jobs_list = db_sq_jobs_list,
    .job_failures = db_sq_job_failures,
    .jobs_cancel_unfinished = db_sq_jobs_cancel_unfinished,
    .alert_add = db_sq_alert_add,
    .alert_remove = db_sq_alert_remove,
    .alerts_list = db_sq_alerts_list,
    .alerts_sync_config = db_sq_alerts_sync_config,
    .alert_facts = db_sq_alert_facts,
    .alert_state_get = db_sq_alert_state_get,
    .alert_state_set = db_sq_alert_state_set,
    .alert_event_add = db_sq_alert_event_add,
    .alert_events_due = db_sq_alert_events_due,
    .alert_event_claim = db_sq_alert_event_claim,
    .alert_event_done = db_sq_alert_event_done,
    .alert_events_recent = db_sq_alert_events_recent,
    .alert_events_pending = db_sq_alert_events_pending,
    .alert_last_sent = db_sq_alert_last_sent,
    .alert_events_prune = db_sq_alert_events_prune,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
};
