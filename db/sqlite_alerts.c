/*
 * sqlite_alerts.c - the SQLite backend's alert rules, their state, the facts the evaluator
 * needs, and the outbox of events (db.h, "alerts").
 *
 * A rule's targets are kept as one text, one target per line (a target never holds a line
 * break: alert_target_parse refuses control characters).
 */
#include "sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "../common/buf.h"
#include "../common/grow.h"
#include "../common/timeutil.h"

/* ---- rules ------------------------------------------------------------------------------ */

/* The targets as one text (malloc'd), NULL when out of memory. */
static char *join_targets(char *const *targets, size_t n)
{
    buf b;
    buf_init(&b, (size_t)1 << 20);
    int rc = BUF_OK;
    for (size_t i = 0; rc == BUF_OK && i < n; i++)
        rc = buf_printf(&b, "%s%s", i ? "\n" : "", targets[i]);
    if (rc == BUF_OK)
        rc = buf_append(&b, "", 1);
    if (rc != BUF_OK) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, NULL);
}

/* Splits a stored targets text into an owned array; -1 when out of memory. */
static int split_targets(const char *text, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!text || !*text)
        return 0;
    size_t cap = 0;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char **grown = grow_to(*out, &cap, *n + 1, sizeof *grown);
        char *one = grown ? strndup(p, len) : NULL;
        if (grown)
            *out = grown;
        if (!one) {
            for (size_t i = 0; i < *n; i++)
                free((*out)[i]);
            free(*out);
            *out = NULL;
            *n = 0;
            return -1;
        }
        (*out)[(*n)++] = one;
        p = e ? e + 1 : p + len;
    }
    return 0;
}

static void bind_rule(sqlite3_stmt *st, const db_alert_rule *r, const char *targets)
{
    sq_bind_text(st, 1, r->kind);
    if (r->has_value)
        sqlite3_bind_double(st, 2, r->value);
    else
        sqlite3_bind_null(st, 2);
    sq_bind_text(st, 3, r->book_id[0] ? r->book_id : NULL);
    sq_bind_text(st, 4, r->source[0] ? r->source : NULL);
    sq_bind_text(st, 5, targets);
}

static db_err insert_rule(db *d, db_alert_rule *rule, const char *targets)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_ALERT_ADD, &st);
    if (rc != DB_OK)
        return rc;
    if (rule->created_at_ms == 0)
        rule->created_at_ms = time_now_ms();
    bind_rule(st, rule, targets);
    sqlite3_bind_int(st, 6, rule->from_config ? 1 : 0);
    sqlite3_bind_int64(st, 7, rule->created_at_ms);
    if (sqlite3_step(st) == SQLITE_DONE)
        rule->n = sqlite3_last_insert_rowid(sq_conn(d));
    else
        rc = db_sq_fail(d, "add alert rule");
    db_sq_release(st);
    return rc;
}

db_err db_sq_alert_add(db *d, db_alert_rule *rule)
{
    char *targets = join_targets(rule->targets, rule->ntargets);
    if (!targets)
        return db_fail(d, DB_NOMEM, "out of memory");
    db_err rc = insert_rule(d, rule, targets);
    free(targets);
    return rc;
}

db_err db_sq_alert_remove(db *d, int64_t n)
{
    enum sq_tx_mode mode;
    db_err rc = db_sq_tx_enter(d, &mode, "remove alert rule");
    if (rc != DB_OK)
        return rc;
    sqlite3_stmt *st;
    if ((rc = db_sq_stmt(d, ST_ALERT_GET_CONFIG, &st)) == DB_OK) {
        sqlite3_bind_int64(st, 1, n);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            rc = sqlite3_column_int(st, 0) ? DB_CONFLICT : DB_OK;
        else if (step == SQLITE_DONE)
            rc = DB_NOTFOUND;
        else
            rc = db_sq_fail(d, "remove alert rule");
        db_sq_release(st);
    }
    if (rc == DB_NOTFOUND)
        db_fail(d, DB_NOTFOUND, "no alert rule %lld", (long long)n);
    if (rc == DB_CONFLICT)
        db_fail(d, DB_CONFLICT, "alert rule %lld comes from the config file: change it there",
                (long long)n);
    if (rc == DB_OK && (rc = db_sq_stmt(d, ST_ALERT_REMOVE, &st)) == DB_OK) {
        sqlite3_bind_int64(st, 1, n);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_sq_fail(d, "remove alert rule");
        db_sq_release(st);
    }
    /* A refusal (not found, from the config file) is an answer: nothing changed. */
    db_err left = db_sq_tx_leave(d, mode, rc == DB_OK ? DB_OK : DB_ERROR, "remove alert rule");
    return rc != DB_OK ? rc : left;
}

db_err db_sq_alerts_list(db *d, db_alert_rule **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_ALERTS_LIST, &st);
    if (rc != DB_OK)
        return rc;
    size_t cap = 0;
    int step;
    while (rc == DB_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        db_alert_rule *grown = grow_to(*out, &cap, *n + 1, sizeof *grown);
        if (!grown) {
            rc = db_fail(d, DB_NOMEM, "out of memory");
            break;
        }
        *out = grown;
        db_alert_rule *r = &(*out)[*n];
        memset(r, 0, sizeof *r);
        r->n = sqlite3_column_int64(st, 0);
        snprintf(r->kind, sizeof r->kind, "%s", sq_col_text(st, 1) ? sq_col_text(st, 1) : "");
        r->has_value = sqlite3_column_type(st, 2) != SQLITE_NULL;
        r->value = sqlite3_column_double(st, 2);
        snprintf(r->book_id, sizeof r->book_id, "%s", sq_col_text(st, 3) ? sq_col_text(st, 3) : "");
        snprintf(r->source, sizeof r->source, "%s", sq_col_text(st, 4) ? sq_col_text(st, 4) : "");
        r->from_config = sqlite3_column_int(st, 6);
        r->created_at_ms = sqlite3_column_int64(st, 7);
        (*n)++;
        if (split_targets(sq_col_text(st, 5), &r->targets, &r->ntargets) != 0)
            rc = db_fail(d, DB_NOMEM, "out of memory");
    }
    if (rc == DB_OK && step != SQLITE_DONE)
        rc = db_sq_fail(d, "list alert rules");
    db_sq_release(st);
    if (rc != DB_OK) {
        db_alerts_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

db_err db_sq_alerts_sync_config(db *d, const db_alert_rule *rules, size_t n)
{
    enum sq_tx_mode mode;
    db_err rc = db_sq_tx_enter(d, &mode, "sync alert rules");
    if (rc != DB_OK)
        return rc;
    buf keep;
    buf_init(&keep, (size_t)1 << 20);
    int brc = buf_append(&keep, "[", 1);
    for (size_t i = 0; rc == DB_OK && i < n; i++) {
        db_alert_rule r = rules[i];
        r.from_config = 1;
        char *targets = join_targets(r.targets, r.ntargets);
        if (!targets) {
            rc = db_fail(d, DB_NOMEM, "out of memory");
            break;
        }
        sqlite3_stmt *st;
        int64_t found = 0;
        if ((rc = db_sq_stmt(d, ST_ALERT_FIND_CONFIG, &st)) == DB_OK) {
            bind_rule(st, &r, targets);
            int step = sqlite3_step(st);
            if (step == SQLITE_ROW)
                found = sqlite3_column_int64(st, 0);
            else if (step != SQLITE_DONE)
                rc = db_sq_fail(d, "sync alert rules");
            db_sq_release(st);
        }
        if (rc == DB_OK && !found && (rc = insert_rule(d, &r, targets)) == DB_OK)
            found = r.n;
        free(targets);
        if (rc == DB_OK)
            brc |= buf_printf(&keep, "%s%lld", i ? "," : "", (long long)found);
    }
    brc |= buf_append(&keep, "]", 2); /* with the terminator */
    if (rc == DB_OK && brc != BUF_OK)
        rc = db_fail(d, DB_NOMEM, "out of memory");
    sqlite3_stmt *st;
    if (rc == DB_OK && (rc = db_sq_stmt(d, ST_ALERT_REMOVE_CONFIG, &st)) == DB_OK) {
        sq_bind_text(st, 1, keep.data);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_sq_fail(d, "sync alert rules");
        db_sq_release(st);
    }
    buf_free(&keep);
    return db_sq_tx_leave(d, mode, rc, "sync alert rules");
}

/* ---- facts and state -------------------------------------------------------------------- */

/* One integer (or -1 for no row / NULL) from a statement already bound. */
static db_err step_int(db *d, sqlite3_stmt *st, int64_t *out, const char *what)
{
    int step = sqlite3_step(st);
    *out = -1;
    if (step == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL)
            *out = sqlite3_column_int64(st, 0);
        return DB_OK;
    }
    return step == SQLITE_DONE ? DB_OK : db_sq_fail(d, what);
}

db_err db_sq_alert_facts(db *d, const observation *o, db_alert_facts *out)
{
    out->best_before = out->rank_day_ago = out->previous_rank = -1;
    out->bad_in_a_row = 0;
    sqlite3_stmt *st;
    int64_t id = -1;
    db_err rc = db_sq_stmt(d, ST_FACT_OBS_ID, &st);
    if (rc != DB_OK)
        return rc;
    sq_bind_fixed(st, 1, o->book_id, sizeof o->book_id);
    sq_bind_text(st, 2, o->source);
    sqlite3_bind_int64(st, 3, o->fetched_at_ms);
    rc = step_int(d, st, &id, "alert facts");
    db_sq_release(st);
    if (rc != DB_OK)
        return rc;
    if (id < 0)
        return db_fail(d, DB_NOTFOUND, "the observation is not stored");

    if ((rc = db_sq_stmt(d, ST_FACT_BEST, &st)) != DB_OK)
        return rc;
    sq_bind_fixed(st, 1, o->book_id, sizeof o->book_id);
    sq_bind_text(st, 2, o->source);
    sqlite3_bind_int(st, 3, o->rank_free ? 1 : 0);
    sqlite3_bind_int64(st, 4, id);
    sqlite3_bind_int64(st, 5, o->fetched_at_ms);
    rc = step_int(d, st, &out->best_before, "alert facts");
    db_sq_release(st);

    if (rc == DB_OK && (rc = db_sq_stmt(d, ST_FACT_DAY_AGO, &st)) == DB_OK) {
        sq_bind_fixed(st, 1, o->book_id, sizeof o->book_id);
        sq_bind_text(st, 2, o->source);
        sqlite3_bind_int(st, 3, o->rank_free ? 1 : 0);
        sqlite3_bind_int64(st, 4, o->fetched_at_ms - 24LL * 3600 * 1000);
        rc = step_int(d, st, &out->rank_day_ago, "alert facts");
        db_sq_release(st);
    }
    if (rc == DB_OK && (rc = db_sq_stmt(d, ST_FACT_PREVIOUS, &st)) == DB_OK) {
        sq_bind_fixed(st, 1, o->book_id, sizeof o->book_id);
        sq_bind_text(st, 2, o->source);
        sqlite3_bind_int64(st, 3, id);
        sqlite3_bind_int64(st, 4, o->fetched_at_ms);
        rc = step_int(d, st, &out->previous_rank, "alert facts");
        db_sq_release(st);
    }
    if (rc == DB_OK && (rc = db_sq_stmt(d, ST_FACT_RECENT, &st)) == DB_OK) {
        sq_bind_fixed(st, 1, o->book_id, sizeof o->book_id);
        sq_bind_text(st, 2, o->source);
        sqlite3_bind_int64(st, 3, o->fetched_at_ms);
        sqlite3_bind_int64(st, 4, id);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            const char *s = sq_col_text(st, 0);
            if (!s || !(strcmp(s, "blocked") == 0 || strcmp(s, "error") == 0 ||
                        strcmp(s, "not_found") == 0))
                break;
            out->bad_in_a_row++;
        }
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            rc = db_sq_fail(d, "alert facts");
        db_sq_release(st);
    }
    return rc;
}

db_err db_sq_alert_state_get(db *d, int64_t rule_n, const char *book, const char *source,
                             int *was_true)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_ALERT_STATE_GET, &st);
    if (rc != DB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, rule_n);
    sq_bind_text(st, 2, book);
    sq_bind_text(st, 3, source);
    int64_t v;
    rc = step_int(d, st, &v, "alert state");
    db_sq_release(st);
    *was_true = rc == DB_OK && v > 0;
    return rc;
}

db_err db_sq_alert_state_set(db *d, int64_t rule_n, const char *book, const char *source,
                             int now_true)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_ALERT_STATE_SET, &st);
    if (rc != DB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, rule_n);
    sq_bind_text(st, 2, book);
    sq_bind_text(st, 3, source);
    sqlite3_bind_int(st, 4, now_true ? 1 : 0);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_sq_fail(d, "alert state");
    db_sq_release(st);
    return rc;
}

/* ---- the outbox ------------------------------------------------------------------------- */

db_err db_sq_alert_event_add(db *d, const db_alert_event *ev, const char *const *targets,
                             size_t ntargets)
{
    enum sq_tx_mode mode;
    db_err rc = db_sq_tx_enter(d, &mode, "store alert event");
    if (rc != DB_OK)
        return rc;
    int64_t now = ev->created_at_ms ? ev->created_at_ms : time_now_ms();
    for (size_t i = 0; rc == DB_OK && i < ntargets; i++) {
        sqlite3_stmt *st;
        if ((rc = db_sq_stmt(d, ST_EVENT_ADD, &st)) != DB_OK)
            break;
        sq_bind_fixed(st, 1, ev->uid, sizeof ev->uid);
        sqlite3_bind_int64(st, 2, ev->rule_n);
        sq_bind_fixed(st, 3, ev->kind, sizeof ev->kind);
        sq_bind_fixed(st, 4, ev->book_id, sizeof ev->book_id);
        sq_bind_fixed(st, 5, ev->source, sizeof ev->source);
        sq_bind_text(st, 6, targets[i]);
        sq_bind_text(st, 7, ev->body ? ev->body : "{}");
        sq_bind_text(st, 8, ev->message ? ev->message : "");
        sq_bind_text(st, 9, ev->subject ? ev->subject : "");
        sqlite3_bind_int64(st, 10, now);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_sq_fail(d, "store alert event");
        db_sq_release(st);
    }
    return db_sq_tx_leave(d, mode, rc, "store alert event");
}

static db_event_state state_parse(const char *s)
{
    return s && strcmp(s, "sent") == 0     ? EVENT_SENT
           : s && strcmp(s, "failed") == 0 ? EVENT_FAILED
                                           : EVENT_PENDING;
}

/* Reads EVENT_COLUMNS rows of a bound statement into a malloc'd array. */
static db_err read_events(db *d, sqlite3_stmt *st, db_alert_event **out, size_t *n,
                          const char *what)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    db_err rc = DB_OK;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        db_alert_event *grown = grow_to(*out, &cap, *n + 1, sizeof *grown);
        if (!grown) {
            rc = db_fail(d, DB_NOMEM, "out of memory");
            break;
        }
        *out = grown;
        db_alert_event *e = &(*out)[*n];
        memset(e, 0, sizeof *e);
        (*n)++;
        e->id = sqlite3_column_int64(st, 0);
        snprintf(e->uid, sizeof e->uid, "%s", sq_col_text(st, 1) ? sq_col_text(st, 1) : "");
        e->rule_n = sqlite3_column_int64(st, 2);
        snprintf(e->kind, sizeof e->kind, "%s", sq_col_text(st, 3) ? sq_col_text(st, 3) : "");
        snprintf(e->book_id, sizeof e->book_id, "%s", sq_col_text(st, 4) ? sq_col_text(st, 4) : "");
        snprintf(e->source, sizeof e->source, "%s", sq_col_text(st, 5) ? sq_col_text(st, 5) : "");
        e->state = state_parse(sq_col_text(st, 10));
        e->attempts = sqlite3_column_int(st, 11);
        e->created_at_ms = sqlite3_column_int64(st, 12);
        e->next_at_ms = sqlite3_column_int64(st, 13);
        e->sent_at_ms = sqlite3_column_int64(st, 14);
        if (db_sq_col_dup(st, 6, &e->target) || db_sq_col_dup(st, 7, &e->body) ||
            db_sq_col_dup(st, 8, &e->message) || db_sq_col_dup(st, 9, &e->subject) ||
            db_sq_col_dup(st, 15, &e->last_error)) {
            rc = db_fail(d, DB_NOMEM, "out of memory");
            break;
        }
    }
    if (rc == DB_OK && step != SQLITE_DONE)
        rc = db_sq_fail(d, what);
    if (rc != DB_OK) {
        db_alert_events_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

db_err db_sq_alert_events_due(db *d, int64_t now_ms, int limit, db_alert_event **out, size_t *n)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_EVENTS_DUE, &st);
    if (rc != DB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int(st, 2, limit > 0 ? limit : 100);
    rc = read_events(d, st, out, n, "due alert events");
    db_sq_release(st);
    return rc;
}

db_err db_sq_alert_event_claim(db *d, int64_t id, int64_t expect, int64_t until, int *claimed)
{
    sqlite3_stmt *st;
    *claimed = 0;
    db_err rc = db_sq_stmt(d, ST_EVENT_CLAIM, &st);
    if (rc != DB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, expect);
    sqlite3_bind_int64(st, 3, until);
    if (sqlite3_step(st) == SQLITE_DONE)
        *claimed = sqlite3_changes(sq_conn(d)) > 0;
    else
        rc = db_sq_fail(d, "claim alert event");
    db_sq_release(st);
    return rc;
}

db_err db_sq_alert_event_done(db *d, int64_t id, db_event_state state, int attempts,
                              int64_t next_at_ms, int64_t sent_at_ms, const char *error)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_EVENT_DONE, &st);
    if (rc != DB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sq_bind_text(st, 2, db_event_state_name(state));
    sqlite3_bind_int(st, 3, attempts);
    sqlite3_bind_int64(st, 4, next_at_ms);
    sqlite3_bind_int64(st, 5, sent_at_ms);
    sq_bind_text(st, 6, error);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_sq_fail(d, "record alert delivery");
    else if (sqlite3_changes(sq_conn(d)) == 0)
        rc = db_fail(d, DB_NOTFOUND, "no such alert event");
    db_sq_release(st);
    return rc;
}

db_err db_sq_alert_events_recent(db *d, int limit, db_alert_event **out, size_t *n)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_EVENTS_RECENT, &st);
    if (rc != DB_OK)
        return rc;
    sqlite3_bind_int(st, 1, limit > 0 ? limit : 50);
    rc = read_events(d, st, out, n, "recent alert events");
    db_sq_release(st);
    return rc;
}

db_err db_sq_alert_events_pending(db *d, int64_t *count, int64_t *next_due_ms)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_EVENTS_PENDING, &st);
    if (rc != DB_OK)
        return rc;
    *count = 0;
    *next_due_ms = 0;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *count = sqlite3_column_int64(st, 0);
        *next_due_ms = sqlite3_column_type(st, 1) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 1);
    } else if (step != SQLITE_DONE) {
        rc = db_sq_fail(d, "pending alert events");
    }
    db_sq_release(st);
    return rc;
}

db_err db_sq_alert_last_sent(db *d, const char *target, const char *kind, int64_t *at_ms)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_EVENT_LAST_SENT, &st);
    if (rc != DB_OK)
        return rc;
    sq_bind_text(st, 1, target);
    sq_bind_text(st, 2, kind);
    rc = step_int(d, st, at_ms, "last alert delivery");
    if (*at_ms < 0)
        *at_ms = 0;
    db_sq_release(st);
    return rc;
}

db_err db_sq_alert_events_prune(db *d, int64_t before_ms)
{
    sqlite3_stmt *st;
    db_err rc = db_sq_stmt(d, ST_EVENTS_PRUNE, &st);
    if (rc != DB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, before_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_sq_fail(d, "prune alert events");
    db_sq_release(st);
    return rc;
}
