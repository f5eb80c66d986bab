/*
 * db.h - the store: books, observations and jobs, behind one interface whatever the backend.
 *
 * Today the backend is one SQLite file: WAL mode, synchronous=NORMAL, foreign keys on,
 * busy_timeout, schema versioned with PRAGMA user_version and migrated forward on open (after a
 * copy of the file is made). Prepared statements only. A PostgreSQL backend is planned behind the
 * same functions; db_connect() picks the backend from the location string.
 *
 * Threads: a db handle is one connection and belongs to ONE thread at a time (it may be handed
 * between threads, never used by two at once). Open one handle per thread. SQLite connections are
 * opened with SQLITE_OPEN_NOMUTEX (multi-thread mode), which is exactly that contract. Writers in
 * several handles or processes (serve's writer thread, a cron `bookrank refresh`) are serialised
 * by the store's write lock with a busy timeout (5 s unless db_set_busy_timeout says otherwise;
 * waiting longer is DB_BUSY, never a hang); readers never block and never see half a batch. Do
 * not carry an open handle across fork().
 *
 * Errors: operations return a db_err: DB_OK (0), DB_NOTFOUND (1, an answer, not a failure), or a
 * negative code, with the message in db_errmsg(handle) (valid until the next call on that
 * handle). Test `!= DB_OK` (or `< 0` where DB_NOTFOUND is a normal answer); never `== DB_ERROR`,
 * which is only the code for failures no other code describes. Constructors return NULL with a
 * malloc'd message in *err (and the code in *code, for db_connect).
 */
#ifndef BOOKRANK_DB_H
#define BOOKRANK_DB_H

#include <stddef.h>
#include <stdint.h>

#include "../common/compiler.h"
#include "../common/isbn.h"
#include "../common/observation.h"

typedef enum db_err {
    DB_OK = 0,
    DB_NOTFOUND = 1,    /* the book, job or database asked for does not exist */
    DB_ERROR = -1,      /* any failure without a more specific code below */
    DB_BUSY = -2,       /* another connection held the write lock longer than the busy timeout */
    DB_FULL = -3,       /* the disk, or the database, is full */
    DB_READONLY = -4,   /* read-only file, file system or handle */
    DB_NOMEM = -5,      /* out of memory */
    DB_CONFLICT = -6,   /* a uniqueness constraint was violated */
    DB_CORRUPT = -7,    /* not a database, or a malformed one */
    DB_SCHEMA = -8,     /* the schema is older than this build (needs `bookrank migrate`) or newer */
} db_err;

/* A short stable description of a code ("ok", "database is read-only", ...); never NULL. */
const char *db_strerror(db_err code);

typedef struct db db;

/* ---- opening -------------------------------------------------------------------------- */

/* Flags of db_connect. */
enum {
    /* Never writes, never creates, never migrates. A missing database is DB_NOTFOUND ("no
     * database at PATH", and no file appears), so is an empty SQLite file; an older schema is
     * DB_SCHEMA (the message says to run `bookrank migrate`). Cannot be combined with the two
     * below. */
    DB_OPEN_READ_ONLY = 1u << 0,
    /* Creates the database when it does not exist (or the file is empty) and gives it the
     * schema; a new file needs no copy. Without it a missing database or an empty file is
     * DB_NOTFOUND. */
    DB_OPEN_CREATE = 1u << 1,
    /* Migrates an older schema forward. Before the first step is applied to a database that
     * already has a schema, the file is copied to "PATH.bak-VERSION" (VERSION = the schema
     * version before the migration) with SQLite's online backup API; when that copy cannot be
     * written (or that file exists already: it is never overwritten) nothing is migrated and the
     * open fails; when a step fails after the copy, the copy is removed (the database is as it
     * was). Without this flag an older schema is DB_SCHEMA. */
    DB_OPEN_MIGRATE = 1u << 2,
};

/*
 * Opens the store at `location`:
 * - "postgresql://..." or "postgres://...", or a libpq "key=value ..." string naming host= or
 *   dbname=: PostgreSQL (not built in yet: fails with DB_ERROR and a message saying so);
 * - anything else is the path of an SQLite file (write "./dbname=x" for a file named like that).
 * A schema newer than this build is always refused (DB_SCHEMA, the message says to upgrade
 * bookrank); so is an SQLite file holding something else (DB_ERROR, left untouched) and a file
 * that is not SQLite at all (DB_CORRUPT).
 * NULL on failure, with the code in *code and a malloc'd message in *err (both may be NULL; the
 * caller frees *err). *code is DB_OK on success.
 */
BR_MUST_CHECK db *db_connect(const char *location, unsigned flags, db_err *code, char **err);
/* db_connect(path, DB_OPEN_CREATE | DB_OPEN_MIGRATE, NULL, err). */
BR_MUST_CHECK db *db_open(const char *path, char **err);
/* db_connect(path, DB_OPEN_READ_ONLY, NULL, err). */
BR_MUST_CHECK db *db_open_readonly(const char *path, char **err);
void db_close(db *d);                    /* NULL is a no-op */
const char *db_errmsg(const db *d);      /* borrowed */

/* How long a call waits for another connection's write lock before DB_BUSY, for this handle
 * (default 5000 ms; values below 0 count as 0). */
void db_set_busy_timeout(db *d, int ms);

/* The schema version of the open store (user_version for SQLite). */
BR_MUST_CHECK db_err db_schema_version(db *d, int *version);
/* The schema version this build creates and migrates to. */
int db_schema_latest(void);

/*
 * Copies the whole store (every table) to a new SQLite file at dest_path, consistent as of one
 * moment, while other connections go on writing (they are not blocked; the copy does not include
 * what they commit after it started). Copies in chunks; a chunk that meets a lock is retried
 * within the handle's busy timeout (then DB_BUSY). dest_path must not exist: it is never
 * overwritten (DB_ERROR). Not inside db_begin (DB_ERROR). A read-only handle may make a copy.
 * On failure nothing is left at dest_path.
 */
BR_MUST_CHECK db_err db_backup(db *d, const char *dest_path);

/* ---- books ---------------------------------------------------------------------------- */

/*
 * Tracks n books in one transaction. added[i] (if added is not NULL) is set to 1 when books[i]
 * was new, 0 when it was already tracked (or repeats an earlier entry). All or nothing: inside
 * db_begin it uses a savepoint, so a failed batch is undone and the outer transaction goes on.
 * Books added by one call share one added_at.
 */
BR_MUST_CHECK db_err db_books_add(db *d, const isbn *books, size_t n, int *added);
/* Stops tracking a book and deletes its observations. DB_NOTFOUND when it is not tracked. */
BR_MUST_CHECK db_err db_book_remove(db *d, const char *isbn13);

typedef struct db_book {
    char isbn13[14];
    char isbn10[11];
    char *title;              /* owned; latest title seen, NULL when none */
    int64_t added_at_ms;
    observation *latest;      /* owned array: latest observation per source, by source name */
    size_t nlatest;           /* (previous_rank set on each) */
} db_book;

/*
 * previous_rank of a latest observation (and of history rows): the rank of the newest older
 * observation of the same book and source that has a rank, whatever its status (a blocked or
 * failed fetch in between does not hide the last real rank); -1 when there is none.
 */
typedef struct db_book_filter {
    const char *status;       /* only books with a latest observation (of `source`, if set) in
                                 this status; such a book keeps all its latest observations */
    const char *source;       /* latest holds only that source (books are still all listed) */
    const char *isbn13;       /* only this book */
} db_book_filter;

/* Books ordered by added_at then isbn13, latest ordered by source name; one consistent
 * snapshot. *out is a malloc'd array (free with db_books_free), NULL when empty. */
BR_MUST_CHECK db_err db_books_list(db *d, const db_book_filter *filter, db_book **out, size_t *n);
/* One book; DB_NOTFOUND when not tracked. Free with db_book_clear. */
BR_MUST_CHECK db_err db_book_get(db *d, const char *isbn13, db_book *out);
void db_book_clear(db_book *b);
void db_books_free(db_book *books, size_t n);
/* All tracked ISBNs (malloc'd array, caller frees), ordered by added_at. */
BR_MUST_CHECK db_err db_books_isbns(db *d, isbn **out, size_t *n);
/* (Not BR_MUST_CHECK yet: server/api.c's metrics handler ignores it; *count is left as it was
 * on failure.) */
db_err db_books_count(db *d, int64_t *count);
/* A number that changes whenever another connection (of any process) commits a change; a
 * connection's own commits do not change it. For caches: use a connection that never writes. */
BR_MUST_CHECK db_err db_data_version(db *d, int64_t *version);

/* ---- observations --------------------------------------------------------------------- */

/*
 * Appends n observations in one transaction (also updates each book's title when one was seen in
 * the newest observation of its source). Observations of books that are not tracked are skipped
 * (the book was removed meanwhile). Inside db_begin it uses a savepoint like db_books_add. The
 * observations are only read (the caller still owns them).
 */
BR_MUST_CHECK db_err db_observations_add(db *d, const observation *obs, size_t n);

typedef struct db_history_query {
    const char *source;       /* NULL = every source */
    int64_t since_ms;         /* observations at or after; 0 = all */
    int limit;                /* <= 0 = 500 */
} db_history_query;

/* Newest first (ties: later insert first), previous_rank set on each row. DB_NOTFOUND when the
 * book is not tracked. *out is a malloc'd array (free with db_observations_free). */
BR_MUST_CHECK db_err db_history(db *d, const char *isbn13, const db_history_query *q,
                                observation **out, size_t *n);
void db_observations_free(observation *obs, size_t n);

/* Every observation, oldest first (fetched_at, then insert order), one callback each (stop
 * early by returning non-zero), from one snapshot. obs is borrowed for the call; the callback
 * must not use this handle (another handle is fine). previous_rank is not set (-1). */
BR_MUST_CHECK db_err db_export(db *d, int (*fn)(void *ctx, const observation *obs), void *ctx);

/* ---- jobs ----------------------------------------------------------------------------- */

typedef enum db_job_state { JOB_QUEUED = 0, JOB_RUNNING, JOB_DONE, JOB_CANCELLED } db_job_state;
const char *db_job_state_name(db_job_state s);

typedef struct db_job {
    int64_t id;
    db_job_state state;
    int all_books;            /* a refresh of every tracked book */
    int64_t total, done;
    int64_t counts[OBS_STATUS_COUNT];
    int64_t created_at_ms, started_at_ms, finished_at_ms;   /* 0 = not yet */
    int64_t owner_pid;        /* process that created it (set by db_job_create) */
} db_job;

/* Inserts a job; sets job->id, job->owner_pid = getpid() and job->created_at_ms (now, if 0). */
BR_MUST_CHECK db_err db_job_create(db *d, db_job *job);
/* Writes state, total, done, counts, started_at and finished_at. DB_NOTFOUND for an unknown id. */
BR_MUST_CHECK db_err db_job_update(db *d, const db_job *job);
/* DB_NOTFOUND for an unknown id. */
BR_MUST_CHECK db_err db_job_get(db *d, int64_t id, db_job *out);
/* Marks queued or running jobs cancelled (after a crash or at shutdown); *n = how many. Only
 * jobs owned by this process or by a process that no longer exists (kill(pid, 0) says ESRCH):
 * a cron `bookrank refresh` running beside `serve` keeps its job. */
BR_MUST_CHECK db_err db_jobs_cancel_unfinished(db *d, int64_t now_ms, int *n);

/* ---- transactions --------------------------------------------------------------------- */

/* Groups several calls into one transaction (used by the writer to commit observations and job
 * progress together). Calls inside must not be nested begin/commit pairs. db_begin takes the
 * write lock at once (BEGIN IMMEDIATE). After a failure inside, call db_rollback (db_commit
 * also rolls back when the commit itself fails). db_rollback is not BR_MUST_CHECK: it runs on
 * error paths, and when it fails the connection rolls back on close anyway. */
BR_MUST_CHECK db_err db_begin(db *d);
BR_MUST_CHECK db_err db_commit(db *d);
db_err db_rollback(db *d);

#endif
