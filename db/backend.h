/*
 * backend.h - private to db/: what a store backend provides, and the handle every backend shares.
 *
 * db.c owns the public entry points: it checks arguments that do not depend on the backend,
 * then calls the handle's operations table. A backend (sqlite*.c today, PostgreSQL later) fills
 * one `struct db_backend`, keeps its connection state behind db.impl and reports failures as a
 * db_err with the message in db.errmsg (db_fail). Backend-neutral helpers shared by backends
 * (messages, job states and owners, the categories codec) are declared here too.
 */
#ifndef BOOKRANK_DB_BACKEND_H
#define BOOKRANK_DB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../common/compiler.h"
#include "db.h"

#define DB_BUSY_TIMEOUT_MS 5000
#define DB_HISTORY_DEFAULT_LIMIT 500

struct db_backend {
    const char *name;
    /* The schema version this build creates and migrates to. */
    int (*schema_latest)(void);
    /* Connects d (calloc'd, ops set) to location with db_connect's flags (already checked
     * for consistency); on success d->impl is set. On failure the message is in d->errmsg and
     * close is not called. */
    db_err (*open)(db *d, const char *location, unsigned flags);
    void (*close)(db *d);
    void (*set_busy_timeout)(db *d, int ms); /* ms >= 0 */
    db_err (*schema_version)(db *d, int *version);
    db_err (*backup)(db *d, const char *dest_path); /* dest_path is not empty */

    db_err (*books_add)(db *d, const book_id *ids, size_t n, int *added, char (*id_out)[14]);
    db_err (*book_resolve)(db *d, const book_id *in, char out[14]);
    db_err (*book_remove)(db *d, const char *id);
    db_err (*book_update)(db *d, const char *id, const db_book_patch *patch);
    db_err (*books_list)(db *d, const db_book_filter *filter, db_book **out, size_t *n);
    db_err (*targets)(db *d, const char *const *ids, size_t n, db_target **out, size_t *nout);
    db_err (*books_count)(db *d, int64_t *count);
    db_err (*data_version)(db *d, int64_t *version);

    db_err (*observations_add)(db *d, const observation *obs, size_t n, int64_t job_id);
    /* q is never NULL and q->limit is > 0; *out and *n are already cleared. */
    db_err (*history)(db *d, const char *id, const db_history_query *q, observation **out,
                      size_t *n);
    db_err (*export_all)(db *d, int (*fn)(void *ctx, const observation *obs), void *ctx);

    db_err (*job_create)(db *d, db_job *job);
    db_err (*job_update)(db *d, const db_job *job);
    db_err (*job_get)(db *d, int64_t id, db_job *out);
    db_err (*jobs_list)(db *d, int state, int limit, db_job **out, size_t *n);
    db_err (*job_failures)(db *d, int64_t job_id, int limit, observation **out, size_t *n);
    db_err (*jobs_cancel_unfinished)(db *d, int64_t now_ms, int *n);

    db_err (*alert_add)(db *d, db_alert_rule *rule);
    db_err (*alert_remove)(db *d, int64_t n);
    db_err (*alerts_list)(db *d, db_alert_rule **out, size_t *n);
    db_err (*alerts_sync_config)(db *d, const db_alert_rule *rules, size_t n);
    db_err (*alert_facts)(db *d, const observation *obs, db_alert_facts *out);
    db_err (*alert_state_get)(db *d, int64_t rule_n, const char *book, const char *source,
                              int *was_true);
    db_err (*alert_state_set)(db *d, int64_t rule_n, const char *book, const char *source,
                              int now_true);
    db_err (*alert_event_add)(db *d, const db_alert_event *ev, const char *const *targets,
                              size_t ntargets);
    db_err (*alert_events_due)(db *d, int64_t now_ms, int limit, db_alert_event **out, size_t *n);
    db_err (*alert_event_claim)(db *d, int64_t id, int64_t expect, int64_t until, int *claimed);
    db_err (*alert_event_done)(db *d, int64_t id, db_event_state state, int attempts,
                               int64_t next_at_ms, int64_t sent_at_ms, const char *error);
    db_err (*alert_events_recent)(db *d, int limit, db_alert_event **out, size_t *n);
    db_err (*alert_events_pending)(db *d, int64_t *count, int64_t *next_due_ms);
    db_err (*alert_last_sent)(db *d, const char *target, const char *kind, int64_t *at_ms);
    db_err (*alert_events_prune)(db *d, int64_t before_ms);

    db_err (*begin)(db *d);
    db_err (*commit)(db *d);
    db_err (*rollback)(db *d);
};

/* The handle. Belongs to one thread at a time (db.h), so nothing here needs a lock. */
struct db {
    const struct db_backend *ops;
    void *impl;       /* the backend's connection state */
    char errmsg[512]; /* the last failure's message */
};

extern const struct db_backend db_sqlite_backend;

/* Sets d->errmsg (truncated if long, always terminated). */
void db_set_err(db *d, const char *fmt, ...) BR_PRINTF(2, 3);
/* db_set_err, then returns code: `return db_fail(d, DB_NOMEM, "history: out of memory");` */
db_err db_fail(db *d, db_err code, const char *fmt, ...) BR_PRINTF(3, 4);

/* The state for a stored name; unknown names read as JOB_CANCELLED. */
db_job_state db_job_state_parse(const char *name);
/* Who started a job, from its stored name; unknown names read as JOB_BY_API. */
db_job_origin db_job_origin_parse(const char *name);
/* Whether the process that owns a job is gone (or is this one, which is cleaning up). */
int db_job_owner_gone(int64_t pid);

/*
 * The categories of an observation as stored: JSON text '[{"rank":..,"category":..}, ...]'
 * written and read by render/ (invalid UTF-8 in a name becomes U+FFFD there).
 * encode: malloc'd text (caller frees), or NULL with *status DB_OK when there are none, or NULL
 * with *status DB_NOMEM.
 * decode: appends to obs->categories. A malformed value (never written by us) is read as no
 * categories rather than failing the whole listing: DB_OK, or DB_NOMEM.
 */
BR_MUST_CHECK char *db_categories_encode(const obs_category *cats, size_t n, db_err *status);
BR_MUST_CHECK db_err db_categories_decode(observation *obs, const char *text, size_t len);

#endif
