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
#include "../common/ids.h"
#include "../common/observation.h"

typedef enum db_err {
    DB_OK = 0,
    DB_NOTFOUND = 1,  /* the book, job or database asked for does not exist */
    DB_ERROR = -1,    /* any failure without a more specific code below */
    DB_BUSY = -2,     /* another connection held the write lock longer than the busy timeout */
    DB_FULL = -3,     /* the disk, or the database, is full */
    DB_READONLY = -4, /* read-only file, file system or handle */
    DB_NOMEM = -5,    /* out of memory */
    DB_CONFLICT = -6, /* a uniqueness constraint was violated */
    DB_CORRUPT = -7,  /* not a database, or a malformed one */
    DB_SCHEMA = -8,   /* the schema is older than this build (needs `bookrank migrate`) or newer */
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
void db_close(db *d);               /* NULL is a no-op */
const char *db_errmsg(const db *d); /* borrowed */

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

/* A per-storefront ASIN (audiobooks often have another ASIN on each store). */
typedef struct db_asin {
    char source[64];
    char asin[11];
} db_asin;

typedef struct db_book {
    char id[14];       /* ISBN-13 or ASIN */
    char isbn13[14];   /* "" for an ASIN-only book */
    char isbn10[11];   /* "" when none (an ASIN-only or a 979 book) */
    char asin[11];     /* the ASIN attached by the user, "" when none */
    char *title;       /* owned; latest title seen, NULL when none */
    obs_format format; /* as set by the user, else as the pages say; UNKNOWN: not known */
    int format_set;    /* the user set it (pages no longer change it) */
    char *work;        /* owned, NULL: the work this edition belongs to */
    char *note;        /* owned, NULL */
    char **tags;       /* owned array of owned strings, sorted */
    size_t ntags;
    char **sources; /* owned: the sources it is tracked on; NULL = every one */
    size_t nsources;
    db_asin *asins; /* owned: per-storefront ASINs, by source */
    size_t nasins;
    int64_t added_at_ms;
    observation *latest; /* owned array: latest observation per source, by source name,
                                 with previous_rank and (when not ok) last_ok set */
    size_t nlatest;
} db_book;

/*
 * Tracks n books in one transaction. added[i] (if added is not NULL) is set to 1 when ids[i] was
 * new, 0 when it was already tracked (or repeats an earlier entry); id_out[i] (if not NULL) gets
 * the id it is tracked under: an ASIN already attached to another book names that book. All or
 * nothing: inside db_begin it uses a savepoint, so a failed batch is undone and the outer
 * transaction goes on. Books added by one call share one added_at.
 */
BR_MUST_CHECK db_err db_books_add(db *d, const book_id *ids, size_t n, int *added,
                                  char (*id_out)[14]);
/* The id a book is tracked under, for any form of its id: the id itself, or the book an ASIN
 * is attached to. DB_NOTFOUND when it is not tracked. */
BR_MUST_CHECK db_err db_book_resolve(db *d, const book_id *in, char out[14]);
/* Stops tracking a book and deletes its observations. DB_NOTFOUND when it is not tracked. */
BR_MUST_CHECK db_err db_book_remove(db *d, const char *id);

/* What db_book_update changes: the fields whose bit is set (a NULL value clears it). */
enum {
    DB_SET_ASIN = 1u << 0,
    DB_SET_ASINS = 1u << 1,
    DB_SET_SOURCES = 1u << 2,
    DB_SET_WORK = 1u << 3,
    DB_SET_FORMAT = 1u << 4,
    DB_SET_TAGS = 1u << 5,
    DB_SET_NOTE = 1u << 6,
};
typedef struct db_book_patch {
    unsigned set;
    const char *asin;     /* an ASIN as stored (asin_valid), NULL clears */
    const db_asin *asins; /* replaces every per-storefront ASIN */
    size_t nasins;
    const char *const *sources; /* NULL (with DB_SET_SOURCES): every source */
    size_t nsources;
    const char *work, *note;
    obs_format format; /* UNKNOWN clears (pages may set it again) */
    const char *const *tags;
    size_t ntags;
} db_book_patch;
/* Caps on a book's fields (the API and the CLI refuse more; db_book_update checks them too). */
#define DB_MAX_TAGS 64
#define DB_TAG_MAX 64    /* bytes of one tag */
#define DB_WORK_MAX 200  /* bytes */
#define DB_NOTE_MAX 2000 /* bytes */
#define DB_MAX_ASINS 32  /* per-storefront ASINs */
/* 0 when the patch's values fit the caps above (tags non-empty, no control characters in tags
 * and work, ASINs valid); otherwise -1 with why. */
BR_MUST_CHECK int db_book_patch_check(const db_book_patch *patch, char *why, size_t whylen);
/* Changes a book's fields in one transaction. DB_NOTFOUND when it is not tracked; DB_CONFLICT
 * when an ASIN is another book's id or attached to another book (nothing changed then). */
BR_MUST_CHECK db_err db_book_update(db *d, const char *id, const db_book_patch *patch);

/*
 * previous_rank of a latest observation (and of history rows): the rank of the newest older
 * observation of the same book and source that has a rank on the same kind of list (a free
 * list's rank is never compared with a paid one), whatever its status (a blocked or failed fetch
 * in between does not hide the last real rank); -1 when there is none.
 */
typedef struct db_book_filter {
    const char *status; /* only books with a latest observation (of `source`, if set) in
                                 this status; such a book keeps all its latest observations */
    const char *source; /* latest holds only that source (books are still all listed) */
    const char *id;     /* only this book */
    const char *tag;    /* only books with this tag */
    const char *work;   /* only editions of this work */
    const char *q;      /* text in the title, id, ASIN, work or note (any case) */
    const char *after;  /* ids greater than this (paging in id order) */
    int limit;          /* at most this many books (0 = all); with after or limit the
                                 order is by id, otherwise by added_at then id */
} db_book_filter;

/* Books as the filter says, latest ordered by source name; one consistent snapshot. *out is a
 * malloc'd array (free with db_books_free), NULL when empty. */
BR_MUST_CHECK db_err db_books_list(db *d, const db_book_filter *filter, db_book **out, size_t *n);
/* One book (by its id as stored: resolve other forms first); DB_NOTFOUND when not tracked. Free
 * with db_book_clear. */
BR_MUST_CHECK db_err db_book_get(db *d, const char *id, db_book *out);
void db_book_clear(db_book *b);
void db_books_free(db_book *books, size_t n);

/* What a refresh needs of a book: its ids, the sources it is tracked on, its ASINs, and its
 * title for messages. */
typedef struct db_target {
    char id[14], isbn13[14], isbn10[11], asin[11];
    char *title;    /* owned, NULL */
    char **sources; /* owned, NULL = every source */
    size_t nsources;
    db_asin *asins; /* owned */
    size_t nasins;
} db_target;
/* The books ids[0..n) (as stored), or every tracked book when ids is NULL (ordered by added_at).
 * Unknown ids are left out. Free with db_targets_free. */
BR_MUST_CHECK db_err db_targets(db *d, const char *const *ids, size_t n, db_target **out,
                                size_t *nout);
void db_targets_free(db_target *t, size_t n);
/* Frees what one target owns (not the target itself). */
void db_targets_free_one(db_target *t);

/* (Not BR_MUST_CHECK: a metrics gauge; *count is left as it was on failure.) */
db_err db_books_count(db *d, int64_t *count);
/* A number that changes whenever another connection (of any process) commits a change; a
 * connection's own commits do not change it. For caches: use a connection that never writes. */
BR_MUST_CHECK db_err db_data_version(db *d, int64_t *version);

/* ---- observations --------------------------------------------------------------------- */

/*
 * Appends n observations in one transaction (also updates each book's title when one was seen in
 * the newest observation of its source, and its format when the page said one and the user set
 * none). Observations of books that are not tracked are skipped (the book was removed
 * meanwhile). job_id (0: none) is recorded with each, for the job's list of failures. Inside
 * db_begin it uses a savepoint like db_books_add. The observations are only read.
 */
BR_MUST_CHECK db_err db_observations_add(db *d, const observation *obs, size_t n, int64_t job_id);

typedef struct db_history_query {
    const char *source; /* NULL = every source */
    int64_t since_ms;   /* observations at or after; 0 = all */
    int64_t before_ms;  /* observations before; 0 = no bound */
    int limit;          /* <= 0 = 500 */
} db_history_query;

/* Newest first (ties: later insert first), previous_rank set on each row. DB_NOTFOUND when the
 * book is not tracked. *out is a malloc'd array (free with db_observations_free). */
BR_MUST_CHECK db_err db_history(db *d, const char *id, const db_history_query *q, observation **out,
                                size_t *n);
void db_observations_free(observation *obs, size_t n);

/* Every observation, oldest first (fetched_at, then insert order), one callback each (stop
 * early by returning non-zero), from one snapshot. obs is borrowed for the call; the callback
 * must not use this handle (another handle is fine). previous_rank is not set (-1). */
BR_MUST_CHECK db_err db_export(db *d, int (*fn)(void *ctx, const observation *obs), void *ctx);

/* Which rows of db_export a caller keeps (db_export itself hands over every row). */
typedef struct db_export_filter {
    const char *id;     /* only this book (its id as stored); NULL = every book */
    const char *source; /* only this source; NULL = every source */
    int64_t since_ms;   /* only observations at or after; 0 = all */
} db_export_filter;
/* Whether obs passes the filter. */
int db_export_wanted(const db_export_filter *f, const observation *obs);

/* ---- jobs ----------------------------------------------------------------------------- */

typedef enum db_job_state { JOB_QUEUED = 0, JOB_RUNNING, JOB_DONE, JOB_CANCELLED } db_job_state;
const char *db_job_state_name(db_job_state s);
/* The state for a name, or -1. */
int db_job_state_parse_name(const char *name);

/* Who started a job. */
typedef enum db_job_origin { JOB_BY_API = 0, JOB_BY_SCHEDULE, JOB_BY_CLI } db_job_origin;
const char *db_job_origin_name(db_job_origin o); /* "api", "schedule", "cli" */

typedef struct db_job {
    int64_t id;
    db_job_state state;
    db_job_origin started_by;
    int all_books;       /* a refresh of every tracked book */
    int64_t total, done; /* fetches to make, and made and stored */
    int64_t skipped;     /* (book, source) pairs the source cannot address: not fetched */
    int64_t counts[OBS_STATUS_COUNT];
    int64_t created_at_ms, started_at_ms, finished_at_ms; /* 0 = not yet */
    int64_t owner_pid; /* process that created it (set by db_job_create) */
} db_job;

/* Inserts a job; sets job->id, job->owner_pid = getpid() and job->created_at_ms (now, if 0). */
BR_MUST_CHECK db_err db_job_create(db *d, db_job *job);
/* Writes state, total, done, skipped, counts, started_at and finished_at. DB_NOTFOUND for an
 * unknown id. */
BR_MUST_CHECK db_err db_job_update(db *d, const db_job *job);
/* DB_NOTFOUND for an unknown id. */
BR_MUST_CHECK db_err db_job_get(db *d, int64_t id, db_job *out);
/* Recent jobs, newest first, at most limit (<= 0: 50), only in state (-1: any). *out is a
 * malloc'd array (caller frees), NULL when none. */
BR_MUST_CHECK db_err db_jobs_list(db *d, int state, int limit, db_job **out, size_t *n);
/* The job's failed fetches (blocked and error observations stored for it), at most limit.
 * Each observation carries book_id, source, status and error. Free with db_observations_free. */
BR_MUST_CHECK db_err db_job_failures(db *d, int64_t job_id, int limit, observation **out,
                                     size_t *n);
/* Marks queued or running jobs cancelled (after a crash or at shutdown); *n = how many. Only
 * jobs owned by this process or by a process that no longer exists (kill(pid, 0) says ESRCH):
 * a cron `bookrank refresh` running beside `serve` keeps its job. */
BR_MUST_CHECK db_err db_jobs_cancel_unfinished(db *d, int64_t now_ms, int *n);

/* ---- alerts (SPEC §5) ------------------------------------------------------------------
 * Rules, their per-(rule, book, source) state, and the outbox of events: one row per event and
 * target, so each target's delivery has its own state. The jobs writer evaluates rules inside
 * its transaction (db_alert_facts, db_alert_state, db_alert_event_add between
 * db_observations_add and db_commit): an event exists exactly when its observation does. The
 * delivery loop (notify/deliver.c) reads due rows, claims them, and records the outcome. */

typedef struct db_alert_rule {
    int64_t n;     /* its number (set by db_alert_add) */
    char kind[24]; /* alert_kind_name() */
    int has_value;
    double value;
    char book_id[14]; /* "" = every book */
    char source[64];  /* "" = every source */
    char **targets;   /* owned by lists (db_alerts_free); borrowed by db_alert_add */
    size_t ntargets;
    int from_config; /* from the config file: not removable through the API */
    int64_t created_at_ms;
} db_alert_rule;

/* Stores a rule (checked by the caller with alert_rule_check); sets rule->n and created_at. */
BR_MUST_CHECK db_err db_alert_add(db *d, db_alert_rule *rule);
/* DB_NOTFOUND for an unknown n; DB_CONFLICT for a rule from the config file. */
BR_MUST_CHECK db_err db_alert_remove(db *d, int64_t n);
/* Every rule, by n. Free with db_alerts_free. */
BR_MUST_CHECK db_err db_alerts_list(db *d, db_alert_rule **out, size_t *n);
void db_alerts_free(db_alert_rule *rules, size_t n);
/* Makes the config file's rules exactly `rules` in one transaction: a rule equal to a stored
 * config rule (kind, value, book, source, targets) keeps its number and state; the others are
 * added or removed. */
BR_MUST_CHECK db_err db_alerts_sync_config(db *d, const db_alert_rule *rules, size_t n);

/* What the evaluator needs about an observation already stored in this transaction (the
 * observation itself is left out of "earlier"). */
typedef struct db_alert_facts {
    int64_t best_before;   /* best earlier ok rank on the same kind of list, -1: none */
    int64_t rank_day_ago;  /* last ok rank at least 24 h older, -1: none */
    int64_t previous_rank; /* last earlier ok rank, -1: none */
    int64_t bad_in_a_row;  /* blocked/error/not_found in a row ending with this one */
} db_alert_facts;
BR_MUST_CHECK db_err db_alert_facts_get(db *d, const observation *obs, db_alert_facts *out);
/* A rule's state for a book and source: *was_true 0 when none is stored. */
BR_MUST_CHECK db_err db_alert_state_get(db *d, int64_t rule_n, const char *book_id,
                                        const char *source, int *was_true);
BR_MUST_CHECK db_err db_alert_state_set(db *d, int64_t rule_n, const char *book_id,
                                        const char *source, int now_true);

typedef enum db_event_state { EVENT_PENDING = 0, EVENT_SENT, EVENT_FAILED } db_event_state;
const char *db_event_state_name(db_event_state s);

typedef struct db_alert_event {
    int64_t id;   /* the row: one event for one target */
    char uid[40]; /* the event's id, shared by its targets' rows (deduplication) */
    int64_t rule_n;
    char kind[24];
    char book_id[14];
    char source[64];
    char *target;  /* owned */
    char *body;    /* owned: the event JSON */
    char *message; /* owned: one line */
    char *subject; /* owned: mail subject / ntfy title */
    db_event_state state;
    int attempts;
    int64_t created_at_ms, next_at_ms, sent_at_ms;
    char *last_error; /* owned, NULL */
} db_alert_event;

/* Adds one event for each target (state pending, due at once); ev's target is ignored. */
BR_MUST_CHECK db_err db_alert_event_add(db *d, const db_alert_event *ev, const char *const *targets,
                                        size_t ntargets);
/* Pending rows due at now_ms, oldest first, at most limit. Free with db_alert_events_free. */
BR_MUST_CHECK db_err db_alert_events_due(db *d, int64_t now_ms, int limit, db_alert_event **out,
                                         size_t *n);
/* Takes a due row for one attempt: moves its next_at from expect_next_at to until_ms. *claimed
 * is 0 when another process took it first (its next_at changed). */
BR_MUST_CHECK db_err db_alert_event_claim(db *d, int64_t id, int64_t expect_next_at,
                                          int64_t until_ms, int *claimed);
/* Records an attempt's outcome. */
BR_MUST_CHECK db_err db_alert_event_done(db *d, int64_t id, db_event_state state, int attempts,
                                         int64_t next_at_ms, int64_t sent_at_ms, const char *error);
/* The most recent rows, newest first, at most limit. */
BR_MUST_CHECK db_err db_alert_events_recent(db *d, int limit, db_alert_event **out, size_t *n);
/* How many rows are pending, and when the first is due (0 when none). */
BR_MUST_CHECK db_err db_alert_events_pending(db *d, int64_t *count, int64_t *next_due_ms);
/* When target last got a message for rule kind (sent rows), 0 when never. */
BR_MUST_CHECK db_err db_alert_last_sent(db *d, const char *target, const char *kind,
                                        int64_t *at_ms);
/* Deletes sent and failed rows created before before_ms. */
BR_MUST_CHECK db_err db_alert_events_prune(db *d, int64_t before_ms);
void db_alert_events_free(db_alert_event *events, size_t n);

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
