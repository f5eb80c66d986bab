/*
 * alerting.c - alert rules evaluated by the jobs writer, inside the transaction that stores the
 * observations (SPEC §5): an event exists exactly when its observation does. The writer thread
 * only; store calls on the writer's connection.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../alerts/alerts.h"
#include "../common/log.h"
#include "../render/render.h"

static int rule_matches(const db_alert_rule *r, const observation *o)
{
    return (!r->book_id[0] || strncmp(r->book_id, o->book_id, sizeof o->book_id) == 0) &&
           (!r->source[0] || (o->source && strcmp(r->source, o->source) == 0));
}

/* A store failure that passes (the batch is retried) rather than one of this code. */
static int passing(db_err rc)
{
    return rc == DB_BUSY || rc == DB_FULL || rc == DB_READONLY;
}

/* Stores one event for rule r and observation o. */
static db_err fire(jobs *j, const db_alert_rule *r, alert_kind kind, const observation *o,
                   const db_alert_facts *f, int64_t now)
{
    static _Atomic unsigned long counter;
    db *d = j->writer_db;
    db_book book;
    int have_book = db_book_get(d, o->book_id, &book) == DB_OK;
    const char *title = o->title ? o->title : have_book ? book.title : NULL;
    char message[512];
    alert_message(kind, r->value, title, o->book_id, o->source, o, f->previous_rank,
                  f->bad_in_a_row, message, sizeof message);
    db_alert_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.uid, sizeof ev.uid, "e%lld-%ld-%lu", (long long)now, (long)getpid(),
             atomic_fetch_add(&counter, 1) + 1);
    ev.rule_n = r->n;
    snprintf(ev.kind, sizeof ev.kind, "%s", r->kind);
    memcpy(ev.book_id, o->book_id, sizeof ev.book_id);
    snprintf(ev.source, sizeof ev.source, "%s", o->source ? o->source : "");
    ev.message = message;
    ev.subject = message;
    ev.created_at_ms = now;
    buf body;
    buf_init(&body, (size_t)1 << 22);
    db_err rc = DB_NOMEM;
    if (render_alert_event_body(&body, ev.uid, r, have_book ? &book : NULL, o, f->previous_rank,
                                message, now) == BUF_OK &&
        buf_append(&body, "", 1) == BUF_OK) {
        ev.body = body.data;
        rc = db_alert_event_add(d, &ev, (const char *const *)r->targets, r->ntargets);
    }
    if (rc == DB_OK)
        log_info("alert %lld (%s) fired: %s", (long long)r->n, r->kind, message);
    buf_free(&body);
    if (have_book)
        db_book_clear(&book);
    return rc;
}

db_err jobs_evaluate_alerts(jobs *j, const observation *obs, size_t n, int64_t now, int *fired)
{
    db *d = j->writer_db;
    db_alert_rule *rules = NULL;
    size_t nrules = 0;
    *fired = 0;
    db_err rc = db_alerts_list(d, &rules, &nrules);
    for (size_t i = 0; rc == DB_OK && i < n; i++) {
        const observation *o = &obs[i];
        db_alert_facts f;
        int have_facts = 0;
        for (size_t k = 0; rc == DB_OK && k < nrules; k++) {
            const db_alert_rule *r = &rules[k];
            int kind = alert_kind_parse(r->kind);
            if (kind < 0 || !rule_matches(r, o))
                continue;
            if (!have_facts) {
                rc = db_alert_facts_get(d, o, &f);
                if (rc == DB_NOTFOUND) { /* skipped by the store (book removed) */
                    rc = DB_OK;
                    break;
                }
                if (rc != DB_OK)
                    break;
                have_facts = 1;
            }
            alert_facts af = {.status = o->status,
                              .rank = o->rank,
                              .best_before = f.best_before,
                              .rank_day_ago = f.rank_day_ago,
                              .bad_in_a_row = f.bad_in_a_row};
            int was_true = 0, now_true = 0;
            if ((rc = db_alert_state_get(d, r->n, o->book_id, o->source, &was_true)) != DB_OK)
                break;
            int go = alert_should_fire((alert_kind)kind, r->value, &af, was_true, &now_true);
            if (now_true != was_true &&
                (rc = db_alert_state_set(d, r->n, o->book_id, o->source, now_true)) != DB_OK)
                break;
            if (go && (rc = fire(j, r, (alert_kind)kind, o, &f, now)) == DB_OK)
                (*fired)++;
        }
    }
    db_alerts_free(rules, nrules);
    if (rc != DB_OK && !passing(rc)) {
        /* A failure of this code must not cost the observations: they are stored without
         * their events, and the log says so. */
        log_error("alerts: could not evaluate the rules for %zu observations: %s", n, db_errmsg(d));
        return DB_OK;
    }
    return rc;
}
