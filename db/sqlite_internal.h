/*
 * sqlite_internal.h - private to the SQLite backend (sqlite*.c): its connection state, the
 * statement cache, transactions, error mapping and row readers shared by its files.
 *
 * Schema notes:
 * - observations is append-only history, indexed by (book_id, source, fetched_at); its rowid
 *   (id) breaks ties between equal fetched_at values everywhere ("newest" = greatest
 *   (fetched_at, id)).
 * - latest is a cache, one row per (book, source): the id of the newest observation, the
 *   previous rank, the newest ok observation, the best paid rank and the run of failures. It is refreshed from observations on every insert (two index seeks), so
 *   listing every book is one ordered join instead of a "greatest-per-group" query over the
 *   whole history. Anything that ever deletes single observations (retention) must refresh it.
 * - previous_rank is the rank of the newest observation of the same book and source that is
 *   older than the one it belongs to and has a rank, whatever its status: a blocked or failed
 *   fetch in between does not hide the last real rank, so "change since previous" compares two
 *   real ranks.
 *
 * Files: sqlite.c (open, configuration, statement cache, transactions, errors, the operations
 * table), sqlite_schema.c (migrations), sqlite_backup.c (online copies: db_backup and the copy
 * before a migration), sqlite_books.c, sqlite_observations.c, sqlite_jobs.c.
 */
#ifndef BOOKRANK_DB_SQLITE_INTERNAL_H
#define BOOKRANK_DB_SQLITE_INTERNAL_H

#include <sqlite3.h>
#include <string.h>

#include "backend.h"

/* Observation columns as db_sq_read_observation() expects them, from the alias o. */
#define OBS_COLUMNS                                                                                \
    "o.id, o.book_id, o.source, o.fetched_at, o.status, o.rank, o.rank_category, "                 \
    "o.categories, o.title, o.http_status, o.attempts, o.duration_ms, o.error, o.rank_free, "      \
    "o.format"
#define OBS_NCOLUMNS 15

/* Book columns as collect_books() reads them (alias b), then the latest row's previous rank and
 * last good observation, then the observation. */
#define BOOK_COLUMNS                                                                               \
    "b.id, b.isbn13, b.isbn10, b.asin, b.title, b.format, b.format_set, b.work, b.note, "          \
    "b.sources, b.added_at"
#define BOOK_NCOLUMNS 11
#define BOOK_COL_PREVIOUS BOOK_NCOLUMNS
#define BOOK_COL_LAST_OK (BOOK_NCOLUMNS + 1)
#define BOOK_COL_OBS (BOOK_NCOLUMNS + 4)

/* The books a filter selects (alias bb): ?1 source, ?2 status, ?3 id, ?4 tag, ?5 work, ?6 a
 * LIKE pattern for the text search, ?7 the id paging starts after. */
#define BOOK_FILTER                                                                                \
    " (?3 IS NULL OR bb.id = ?3)"                                                                  \
    " AND (?4 IS NULL OR EXISTS (SELECT 1 FROM book_tags t WHERE t.book_id = bb.id"                \
    "   AND t.tag = ?4))"                                                                          \
    " AND (?5 IS NULL OR bb.work = ?5)"                                                            \
    " AND (?6 IS NULL OR bb.title LIKE ?6 ESCAPE '\\' OR bb.id LIKE ?6 ESCAPE '\\'"                \
    "   OR bb.asin LIKE ?6 ESCAPE '\\' OR bb.work LIKE ?6 ESCAPE '\\'"                             \
    "   OR bb.note LIKE ?6 ESCAPE '\\')"                                                           \
    " AND (?7 IS NULL OR bb.id > ?7)"                                                              \
    " AND (?2 IS NULL OR EXISTS (SELECT 1 FROM latest l2"                                          \
    "   JOIN observations o2 ON o2.id = l2.observation_id"                                         \
    "   WHERE l2.book_id = bb.id AND (?1 IS NULL OR l2.source = ?1) AND o2.status = ?2))"

/* Book rows joined with their latest observations (and the last good one when the latest is
 * not ok), over the books the subquery `selected` picks. */
#define BOOK_JOIN(selected)                                                                        \
    "SELECT " BOOK_COLUMNS                                                                         \
    ", l.previous_rank, lo.rank, lo.rank_category, lo.fetched_at, " OBS_COLUMNS " FROM (" selected \
    ") b"                                                                                          \
    " LEFT JOIN latest l ON l.book_id = b.id AND (?1 IS NULL OR l.source = ?1)"                    \
    " LEFT JOIN observations o ON o.id = l.observation_id"                                         \
    " LEFT JOIN observations lo ON lo.id = l.last_ok_id AND o.status <> 'ok'"

/* Job columns as the job reader expects them. */
#define JOB_COLUMNS                                                                                \
    "id, state, all_books, total, done, n_ok, n_no_rank, n_not_found, n_blocked, n_error,"         \
    " created_at, started_at, finished_at, owner_pid, started_by, skipped"

/* Alert event columns as the event reader expects them. */
#define EVENT_COLUMNS                                                                              \
    "id, uid, rule_n, kind, book_id, source, target, body, message, subject, state, attempts,"     \
    " created_at, next_at, sent_at, last_error"

enum sq_stmt_id {
#define SQ_STMT(id, sql) id,
#include "sqlite_stmts.def"
#undef SQ_STMT
    ST_COUNT
};

/* The backend state behind db.impl. */
struct sq {
    sqlite3 *conn;
    sqlite3_stmt *stmts[ST_COUNT]; /* prepared on first use, reset after every use */
    int busy_ms;                   /* how long to wait for another connection's lock */
};

static inline struct sq *sq_of(db *d)
{
    return (struct sq *)d->impl;
}

static inline sqlite3 *sq_conn(db *d)
{
    return sq_of(d)->conn;
}

/* ---- errors (sqlite.c) ----------------------------------------------------------------- */

/* The db_err for an SQLite result code (primary or extended). The one place that maps them. */
db_err db_sq_code(int sqlite_rc);
/* Records the connection's current error for the operation `what`; returns its db_err. */
db_err db_sq_fail(db *d, const char *what);
/* Records the failure rc (an SQLite result code) of `what`, described by detail, adding who held
 * the lock for a busy one; returns its db_err. */
db_err db_sq_fail_rc(db *d, int rc, const char *what, const char *detail);
/* Records a failed setup step of opening path; returns its db_err (DB_BUSY is worth a retry). */
db_err db_sq_setup_fail(db *d, const char *path, const char *step);

/* ---- statements (sqlite.c) ------------------------------------------------------------- */

/* The cached statement in *st, prepared on first use. */
BR_MUST_CHECK db_err db_sq_stmt(db *d, enum sq_stmt_id id, sqlite3_stmt **st);
/* Returns a statement to the cache (NULL is a no-op). Resetting matters: a SELECT left mid-way
 * keeps its read transaction (and WAL snapshot) open, which pins the WAL and hides later
 * commits. */
void db_sq_release(sqlite3_stmt *st);
/* Runs a cached statement whose rows are not needed. */
db_err db_sq_run(db *d, enum sq_stmt_id id, const char *what);

static inline int sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* Binds a fixed-size char array that may lack its terminator. */
static inline int sq_bind_fixed(sqlite3_stmt *st, int i, const char *s, size_t size)
{
    return sqlite3_bind_text(st, i, s, (int)strnlen(s, size), SQLITE_STATIC);
}

static inline const char *sq_col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* Copies a text column into a fresh string (NULL for SQL NULL); -1 when out of memory. */
int db_sq_col_dup(sqlite3_stmt *st, int i, char **out);

/* ---- transactions (sqlite.c) ----------------------------------------------------------- */

enum sq_tx_mode { TX_OWN, TX_SAVEPOINT };

/* Makes what follows atomic: its own IMMEDIATE transaction outside db_begin, a savepoint inside
 * one (so a failed batch is undone without ending the caller's transaction). */
BR_MUST_CHECK db_err db_sq_tx_enter(db *d, enum sq_tx_mode *mode, const char *what);
/* Commits when rc is an answer (DB_OK, DB_NOTFOUND), else undoes; returns rc, or the commit's
 * failure. The message of a failed rc is kept (the rollback's own failure would hide it). */
db_err db_sq_tx_leave(db *d, enum sq_tx_mode mode, db_err rc, const char *what);

/* ---- schema (sqlite_schema.c) ---------------------------------------------------------- */

/* Checks the schema of the just-opened connection against this build and, as db_connect's
 * flags allow, creates it or migrates it forward (after copying the file: db_sq_backup_file).
 * DB_BUSY when worth retrying. */
db_err db_sq_check_schema(db *d, const char *path, unsigned flags);
int db_sq_schema_latest(void);
db_err db_sq_schema_version(db *d, int *version);

/* ---- copies (sqlite_backup.c) ---------------------------------------------------------- */

/* The backend's db_backup. */
db_err db_sq_backup(db *d, const char *dest_path);
/* Copies the database file at path, as committed, to the new file dest (another connection
 * reads it, so d's own connection may hold the write lock meanwhile). */
db_err db_sq_backup_file(db *d, const char *path, const char *dest);
/* Removes a copy made by db_sq_backup_file, with the files SQLite may have left beside it. */
void db_sq_backup_remove(const char *dest);

/* ---- rows (sqlite_observations.c) ------------------------------------------------------ */

/* Reads the OBS_COLUMNS starting at column c into obs (initialised here). *id may be NULL.
 * -1 when out of memory (obs is then cleared). */
int db_sq_read_observation(sqlite3_stmt *st, int c, observation *obs, int64_t *id);

/* ---- operations (one file each) -------------------------------------------------------- */

db_err db_sq_books_add(db *d, const book_id *ids, size_t n, int *added, char (*id_out)[14]);
db_err db_sq_book_resolve(db *d, const book_id *in, char out[14]);
db_err db_sq_book_remove(db *d, const char *id);
db_err db_sq_book_update(db *d, const char *id, const db_book_patch *patch);
db_err db_sq_books_list(db *d, const db_book_filter *filter, db_book **out, size_t *n);
db_err db_sq_targets(db *d, const char *const *ids, size_t n, db_target **out, size_t *nout);
db_err db_sq_books_count(db *d, int64_t *count);
db_err db_sq_data_version(db *d, int64_t *version);

db_err db_sq_observations_add(db *d, const observation *obs, size_t n, int64_t job_id);
db_err db_sq_history(db *d, const char *id, const db_history_query *q, observation **out,
                     size_t *n);
db_err db_sq_export(db *d, int (*fn)(void *ctx, const observation *obs), void *ctx);

db_err db_sq_job_create(db *d, db_job *job);
db_err db_sq_job_update(db *d, const db_job *job);
db_err db_sq_job_get(db *d, int64_t id, db_job *out);
db_err db_sq_jobs_list(db *d, int state, int limit, db_job **out, size_t *n);
db_err db_sq_job_failures(db *d, int64_t job_id, int limit, observation **out, size_t *n);
db_err db_sq_jobs_cancel_unfinished(db *d, int64_t now_ms, int *n);

db_err db_sq_alert_add(db *d, db_alert_rule *rule);
db_err db_sq_alert_remove(db *d, int64_t n);
db_err db_sq_alerts_list(db *d, db_alert_rule **out, size_t *n);
db_err db_sq_alerts_sync_config(db *d, const db_alert_rule *rules, size_t n);
db_err db_sq_alert_facts(db *d, const observation *obs, db_alert_facts *out);
db_err db_sq_alert_state_get(db *d, int64_t rule_n, const char *book, const char *source,
                             int *was_true);
db_err db_sq_alert_state_set(db *d, int64_t rule_n, const char *book, const char *source,
                             int now_true);
db_err db_sq_alert_event_add(db *d, const db_alert_event *ev, const char *const *targets,
                             size_t ntargets);
db_err db_sq_alert_events_due(db *d, int64_t now_ms, int limit, db_alert_event **out, size_t *n);
db_err db_sq_alert_event_claim(db *d, int64_t id, int64_t expect, int64_t until, int *claimed);
db_err db_sq_alert_event_done(db *d, int64_t id, db_event_state state, int attempts,
                              int64_t next_at_ms, int64_t sent_at_ms, const char *error);
db_err db_sq_alert_events_recent(db *d, int limit, db_alert_event **out, size_t *n);
db_err db_sq_alert_events_pending(db *d, int64_t *count, int64_t *next_due_ms);
db_err db_sq_alert_last_sent(db *d, const char *target, const char *kind, int64_t *at_ms);
db_err db_sq_alert_events_prune(db *d, int64_t before_ms);

#endif
