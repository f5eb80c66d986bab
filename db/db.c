/*
 * db.c - the store's public entry points (see db.h), the same for every backend: the backend
 * is chosen once, from the location string, when a handle is opened; every call then goes
 * through the handle's operations table (backend.h). What does not depend on the backend lives
 * here: argument checks, defaults, the handle's message, freeing results, job state names and
 * the "is the owner of this job gone" rule.
 */
#include "backend.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "../common/utf8.h"

/* ---- messages ---------------------------------------------------------------------------- */

static void set_err_v(db *d, const char *fmt, va_list ap) BR_PRINTF(2, 0);
static void set_err_v(db *d, const char *fmt, va_list ap)
{
    /* Truncation of a long message is acceptable; it stays NUL-terminated. */
    if (vsnprintf(d->errmsg, sizeof d->errmsg, fmt, ap) < 0)
        snprintf(d->errmsg, sizeof d->errmsg, "error (message unavailable)");
}

void db_set_err(db *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_err_v(d, fmt, ap);
    va_end(ap);
}

db_err db_fail(db *d, db_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_err_v(d, fmt, ap);
    va_end(ap);
    return code;
}

const char *db_strerror(db_err code)
{
    switch (code) {
    case DB_OK:
        return "ok";
    case DB_NOTFOUND:
        return "not found";
    case DB_ERROR:
        return "database error";
    case DB_BUSY:
        return "database is locked by another connection";
    case DB_FULL:
        return "disk or database is full";
    case DB_READONLY:
        return "database is read-only";
    case DB_NOMEM:
        return "out of memory";
    case DB_CONFLICT:
        return "already exists";
    case DB_CORRUPT:
        return "not a database, or a damaged one";
    case DB_SCHEMA:
        return "database schema does not match this bookrank";
    }
    return "unknown database error";
}

const char *db_errmsg(const db *d)
{
    return d ? d->errmsg : "no database";
}

/* ---- opening ----------------------------------------------------------------------------- */

/* Whether location is a libpq "keyword=value ..." string naming a host or a database: every
 * word must be a keyword=value pair (values may be 'quoted'), so an ordinary path is never
 * taken for one. */
static int is_pg_keyword_string(const char *p)
{
    int names_server = 0;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            return names_server;
        const char *key = p;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        size_t klen = (size_t)(p - key);
        while (isspace((unsigned char)*p))
            p++;
        if (klen == 0 || *p != '=')
            return 0;
        if ((klen == 4 && strncmp(key, "host", 4) == 0) ||
            (klen == 6 && strncmp(key, "dbname", 6) == 0))
            names_server = 1;
        p++;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\'') {
            for (p++; *p && *p != '\''; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (*p != '\'')
                return 0;
            p++;
        } else {
            while (*p && !isspace((unsigned char)*p))
                p++;
        }
    }
}

static int is_pg_location(const char *location)
{
    return strncmp(location, "postgresql://", 13) == 0 ||
           strncmp(location, "postgres://", 11) == 0 || is_pg_keyword_string(location);
}

/* The backend for a location; NULL (and the message) when that backend is not available. */
static const struct db_backend *backend_for(const char *location, const char **why)
{
    if (is_pg_location(location)) {
        /* The location is not repeated in the message: it may hold a password. */
        *why = "PostgreSQL support is not built in yet";
        return NULL;
    }
    return &db_sqlite_backend;
}

db *db_connect(const char *location, unsigned flags, db_err *code, char **err)
{
    db *d = NULL;
    db_err rc = DB_OK;
    const char *why = NULL;
    char *msg = NULL;
    const struct db_backend *ops = NULL;
    const unsigned known = DB_OPEN_READ_ONLY | DB_OPEN_CREATE | DB_OPEN_MIGRATE;

    if (!location) {
        rc = DB_ERROR;
        why = "no database path";
    } else if (flags & ~known) {
        rc = DB_ERROR;
        why = "unknown flags for opening the database";
    } else if ((flags & DB_OPEN_READ_ONLY) && (flags & (DB_OPEN_CREATE | DB_OPEN_MIGRATE))) {
        rc = DB_ERROR;
        why = "a read-only connection cannot create or migrate the database";
    } else if (!(ops = backend_for(location, &why))) {
        rc = DB_ERROR;
    } else if (!(d = calloc(1, sizeof *d))) {
        rc = DB_NOMEM;
        why = "out of memory";
    } else {
        d->ops = ops;
        if ((rc = ops->open(d, location, flags)) != DB_OK) {
            msg = strdup(d->errmsg);
            free(d);
            d = NULL;
        }
    }
    if (why)
        msg = strdup(why);
    if (code)
        *code = rc;
    if (err)
        *err = msg;
    else
        free(msg);
    return d;
}

db *db_open(const char *path, char **err)
{
    return db_connect(path, DB_OPEN_CREATE | DB_OPEN_MIGRATE, NULL, err);
}

db *db_open_readonly(const char *path, char **err)
{
    return db_connect(path, DB_OPEN_READ_ONLY, NULL, err);
}

void db_close(db *d)
{
    if (!d)
        return;
    d->ops->close(d);
    free(d);
}

void db_set_busy_timeout(db *d, int ms)
{
    d->ops->set_busy_timeout(d, ms < 0 ? 0 : ms);
}

db_err db_schema_version(db *d, int *version)
{
    return d->ops->schema_version(d, version);
}

int db_schema_latest(void)
{
    /* The one backend every build has; others migrate to the same version numbers. */
    return db_sqlite_backend.schema_latest();
}

db_err db_backup(db *d, const char *dest_path)
{
    if (!dest_path || !*dest_path)
        return db_fail(d, DB_ERROR, "backup: no destination path");
    return d->ops->backup(d, dest_path);
}

/* ---- books ------------------------------------------------------------------------------- */

db_err db_books_add(db *d, const book_id *ids, size_t n, int *added, char (*id_out)[14])
{
    if (n == 0)
        return DB_OK;
    return d->ops->books_add(d, ids, n, added, id_out);
}

db_err db_book_resolve(db *d, const book_id *in, char out[14])
{
    if (!in)
        return db_fail(d, DB_ERROR, "no id given");
    return d->ops->book_resolve(d, in, out);
}

db_err db_book_remove(db *d, const char *id)
{
    if (!id)
        return db_fail(d, DB_ERROR, "no id given");
    return d->ops->book_remove(d, id);
}

/* Valid UTF-8 of 1..max bytes; without control characters unless lines (newlines and tabs)
 * are allowed. */
static int text_ok(const char *s, size_t max, int lines)
{
    size_t n = strlen(s);
    return n > 0 && n <= max && utf8_plain_text(s, n, lines);
}

int db_book_patch_check(const db_book_patch *p, char *why, size_t whylen)
{
    const char *bad = NULL;
    if ((p->set & DB_SET_ASIN) && p->asin && !asin_valid(p->asin, strlen(p->asin)))
        bad = "the ASIN is not 10 letters and digits";
    else if ((p->set & DB_SET_WORK) && p->work && !text_ok(p->work, DB_WORK_MAX, 0))
        bad = "the work must be 1 to 200 bytes of UTF-8 text on one line";
    else if ((p->set & DB_SET_NOTE) && p->note && !text_ok(p->note, DB_NOTE_MAX, 1))
        bad = "the note must be 1 to 2000 bytes of UTF-8 text";
    else if ((p->set & DB_SET_TAGS) && p->ntags > DB_MAX_TAGS)
        bad = "a book has at most 64 tags";
    else if ((p->set & DB_SET_ASINS) && p->nasins > DB_MAX_ASINS)
        bad = "a book has at most 32 per-storefront ASINs";
    for (size_t i = 0; !bad && (p->set & DB_SET_TAGS) && i < p->ntags; i++)
        if (!p->tags[i] || !text_ok(p->tags[i], DB_TAG_MAX, 0))
            bad = "a tag must be 1 to 64 bytes of UTF-8 text on one line";
    for (size_t i = 0; !bad && (p->set & DB_SET_ASINS) && i < p->nasins; i++)
        if (!p->asins[i].source[0] || !asin_valid(p->asins[i].asin, strlen(p->asins[i].asin)))
            bad = "a per-storefront ASIN needs a source and 10 letters and digits";
    if (!bad)
        return 0;
    snprintf(why, whylen, "%s", bad);
    return -1;
}

db_err db_book_update(db *d, const char *id, const db_book_patch *patch)
{
    if (!id || !patch)
        return db_fail(d, DB_ERROR, "no id or change given");
    char why[128];
    if (db_book_patch_check(patch, why, sizeof why))
        return db_fail(d, DB_ERROR, "%s", why);
    for (size_t i = 0; (patch->set & DB_SET_SOURCES) && patch->sources && i < patch->nsources; i++)
        if (!patch->sources[i][0] || strchr(patch->sources[i], ','))
            return db_fail(d, DB_ERROR, "a source name is empty or holds a comma");
    return d->ops->book_update(d, id, patch);
}

db_err db_books_list(db *d, const db_book_filter *filter, db_book **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return d->ops->books_list(d, filter, out, n);
}

db_err db_book_get(db *d, const char *id, db_book *out)
{
    db_book *books = NULL;
    size_t n = 0;
    db_book_filter filter = {.id = id};
    memset(out, 0, sizeof *out);
    if (!id)
        return db_fail(d, DB_ERROR, "no id given");
    db_err rc = db_books_list(d, &filter, &books, &n);
    if (rc == DB_OK && n == 0)
        rc = db_fail(d, DB_NOTFOUND, "book %s is not tracked", id);
    if (rc == DB_OK) {
        *out = books[0]; /* moves ownership; the array itself is freed below */
        memset(&books[0], 0, sizeof books[0]);
    }
    db_books_free(books, n);
    return rc;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

void db_book_clear(db_book *b)
{
    if (!b)
        return;
    free(b->title);
    free(b->work);
    free(b->note);
    free_names(b->tags, b->ntags);
    free_names(b->sources, b->nsources);
    free(b->asins);
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

db_err db_targets(db *d, const char *const *ids, size_t n, db_target **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (ids && n == 0)
        return DB_OK;
    return d->ops->targets(d, ids, n, out, nout);
}

void db_targets_free_one(db_target *t)
{
    free(t->title);
    free_names(t->sources, t->nsources);
    free(t->asins);
    memset(t, 0, sizeof *t);
}

void db_targets_free(db_target *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        db_targets_free_one(&t[i]);
    free(t);
}

db_err db_books_count(db *d, int64_t *count)
{
    return d->ops->books_count(d, count);
}

db_err db_data_version(db *d, int64_t *version)
{
    return d->ops->data_version(d, version);
}

/* ---- observations ------------------------------------------------------------------------ */

db_err db_observations_add(db *d, const observation *obs, size_t n, int64_t job_id)
{
    if (n == 0)
        return DB_OK;
    return d->ops->observations_add(d, obs, n, job_id);
}

db_err db_history(db *d, const char *id, const db_history_query *q, observation **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!id)
        return db_fail(d, DB_ERROR, "no id given");
    db_history_query query = q ? *q : (db_history_query){.source = NULL};
    if (query.limit <= 0)
        query.limit = DB_HISTORY_DEFAULT_LIMIT;
    return d->ops->history(d, id, &query, out, n);
}

void db_observations_free(observation *obs, size_t n)
{
    if (!obs)
        return;
    for (size_t i = 0; i < n; i++)
        obs_clear(&obs[i]);
    free(obs);
}

db_err db_export(db *d, int (*fn)(void *ctx, const observation *obs), void *ctx)
{
    return d->ops->export_all(d, fn, ctx);
}

int db_export_wanted(const db_export_filter *f, const observation *obs)
{
    return (!f->id || strcmp(obs->book_id, f->id) == 0) &&
           (!f->source || (obs->source && strcmp(obs->source, f->source) == 0)) &&
           obs->fetched_at_ms >= f->since_ms;
}

/* ---- jobs -------------------------------------------------------------------------------- */

static const char *const job_state_names[] = {"queued", "running", "done", "cancelled"};

const char *db_job_state_name(db_job_state s)
{
    return (unsigned)s < sizeof job_state_names / sizeof job_state_names[0] ? job_state_names[s]
                                                                            : "cancelled";
}

int db_job_state_parse_name(const char *s)
{
    for (int i = 0; s && i < (int)(sizeof job_state_names / sizeof job_state_names[0]); i++)
        if (strcmp(s, job_state_names[i]) == 0)
            return i;
    return -1;
}

db_job_state db_job_state_parse(const char *s)
{
    int i = db_job_state_parse_name(s);
    return i < 0 ? JOB_CANCELLED : (db_job_state)i;
}

static const char *const job_origin_names[] = {"api", "schedule", "cli"};

const char *db_job_origin_name(db_job_origin o)
{
    return (unsigned)o < sizeof job_origin_names / sizeof job_origin_names[0] ? job_origin_names[o]
                                                                              : "api";
}

db_job_origin db_job_origin_parse(const char *s)
{
    for (int i = 0; s && i < (int)(sizeof job_origin_names / sizeof job_origin_names[0]); i++)
        if (strcmp(s, job_origin_names[i]) == 0)
            return (db_job_origin)i;
    return JOB_BY_API;
}

/* Another live process (a cron refresh beside serve) still owns its jobs; EPERM means it lives
 * under another user. */
int db_job_owner_gone(int64_t pid)
{
    if (pid <= 0 || pid > INT32_MAX)
        return 1; /* kill(0 or -1, 0) would probe process groups, not a process */
    if ((pid_t)pid == getpid())
        return 1; /* ours: this process is the one cleaning up */
    return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

db_err db_job_create(db *d, db_job *job)
{
    return d->ops->job_create(d, job);
}

db_err db_job_update(db *d, const db_job *job)
{
    return d->ops->job_update(d, job);
}

db_err db_job_get(db *d, int64_t id, db_job *out)
{
    memset(out, 0, sizeof *out);
    return d->ops->job_get(d, id, out);
}

db_err db_jobs_list(db *d, int state, int limit, db_job **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return d->ops->jobs_list(d, state, limit > 0 ? limit : 50, out, n);
}

db_err db_job_failures(db *d, int64_t job_id, int limit, observation **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return d->ops->job_failures(d, job_id, limit > 0 ? limit : 100, out, n);
}

db_err db_jobs_cancel_unfinished(db *d, int64_t now_ms, int *n)
{
    if (n)
        *n = 0;
    return d->ops->jobs_cancel_unfinished(d, now_ms, n);
}

/* ---- alerts ------------------------------------------------------------------------------ */

const char *db_event_state_name(db_event_state s)
{
    switch (s) {
    case EVENT_PENDING:
        return "pending";
    case EVENT_SENT:
        return "sent";
    case EVENT_FAILED:
        return "failed";
    }
    return "pending";
}

db_err db_alert_add(db *d, db_alert_rule *rule)
{
    if (!rule || !rule->kind[0] || rule->ntargets == 0)
        return db_fail(d, DB_ERROR, "an alert rule needs a kind and a target");
    for (size_t i = 0; i < rule->ntargets; i++)
        if (!rule->targets[i] || !rule->targets[i][0] || strchr(rule->targets[i], '\n'))
            return db_fail(d, DB_ERROR, "an alert target is empty or holds a line break");
    return d->ops->alert_add(d, rule);
}

db_err db_alert_remove(db *d, int64_t n)
{
    return d->ops->alert_remove(d, n);
}

db_err db_alerts_list(db *d, db_alert_rule **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return d->ops->alerts_list(d, out, n);
}

void db_alerts_free(db_alert_rule *rules, size_t n)
{
    for (size_t i = 0; rules && i < n; i++) {
        for (size_t k = 0; k < rules[i].ntargets; k++)
            free(rules[i].targets[k]);
        free(rules[i].targets);
    }
    free(rules);
}

db_err db_alerts_sync_config(db *d, const db_alert_rule *rules, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < rules[i].ntargets; k++)
            if (!rules[i].targets[k] || !rules[i].targets[k][0] ||
                strchr(rules[i].targets[k], '\n'))
                return db_fail(d, DB_ERROR, "an alert target is empty or holds a line break");
    return d->ops->alerts_sync_config(d, rules, n);
}

db_err db_alert_facts_get(db *d, const observation *obs, db_alert_facts *out)
{
    return d->ops->alert_facts(d, obs, out);
}

db_err db_alert_state_get(db *d, int64_t rule_n, const char *book, const char *source,
                          int *was_true)
{
    *was_true = 0;
    return d->ops->alert_state_get(d, rule_n, book, source, was_true);
}

db_err db_alert_state_set(db *d, int64_t rule_n, const char *book, const char *source, int now_true)
{
    return d->ops->alert_state_set(d, rule_n, book, source, now_true);
}

db_err db_alert_event_add(db *d, const db_alert_event *ev, const char *const *targets,
                          size_t ntargets)
{
    if (!ev || !ev->uid[0])
        return db_fail(d, DB_ERROR, "an alert event needs an id");
    return d->ops->alert_event_add(d, ev, targets, ntargets);
}

db_err db_alert_events_due(db *d, int64_t now_ms, int limit, db_alert_event **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return d->ops->alert_events_due(d, now_ms, limit, out, n);
}

db_err db_alert_event_claim(db *d, int64_t id, int64_t expect_next_at, int64_t until_ms,
                            int *claimed)
{
    return d->ops->alert_event_claim(d, id, expect_next_at, until_ms, claimed);
}

db_err db_alert_event_done(db *d, int64_t id, db_event_state state, int attempts,
                           int64_t next_at_ms, int64_t sent_at_ms, const char *error)
{
    return d->ops->alert_event_done(d, id, state, attempts, next_at_ms, sent_at_ms, error);
}

db_err db_alert_events_recent(db *d, int limit, db_alert_event **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return d->ops->alert_events_recent(d, limit, out, n);
}

db_err db_alert_events_pending(db *d, int64_t *count, int64_t *next_due_ms)
{
    return d->ops->alert_events_pending(d, count, next_due_ms);
}

db_err db_alert_last_sent(db *d, const char *target, const char *kind, int64_t *at_ms)
{
    *at_ms = 0;
    return d->ops->alert_last_sent(d, target, kind, at_ms);
}

db_err db_alert_events_prune(db *d, int64_t before_ms)
{
    return d->ops->alert_events_prune(d, before_ms);
}

void db_alert_events_free(db_alert_event *events, size_t n)
{
    for (size_t i = 0; events && i < n; i++) {
        free(events[i].target);
        free(events[i].body);
        free(events[i].message);
        free(events[i].subject);
        free(events[i].last_error);
    }
    free(events);
}

/* ---- transactions ------------------------------------------------------------------------ */

db_err db_begin(db *d)
{
    return d->ops->begin(d);
}

db_err db_commit(db *d)
{
    return d->ops->commit(d);
}

db_err db_rollback(db *d)
{
    return d->ops->rollback(d);
}
