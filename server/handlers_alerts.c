/*
 * handlers_alerts.c - /api/alerts (SPEC §5): the rules (list, add, remove) and the recent
 * deliveries. The router asks for the token on every one of these whenever a token is set,
 * reads too: rules hold webhook URLs (often secrets themselves) and mail addresses.
 * Threads: see handlers.h.
 */
#include "handlers_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"

void h_alerts_list(hctx *h, const char *arg)
{
    (void)arg;
    db *d = h_db(h);
    db_alert_rule *rules = NULL;
    size_t n = 0;
    db_err rc = d ? db_alerts_list(d, &rules, &n) : DB_ERROR;
    if (rc != DB_OK) {
        h_store_error(h, rc);
        return;
    }
    int rrc = render_alert_rules(&h->resp->body, rules, n);
    db_alerts_free(rules, n);
    h_json(h, rrc, HTTP_OK);
}

void h_alerts_add(hctx *h, const char *arg)
{
    (void)arg;
    const srv_request *r = h->req;
    body_alert a;
    char why[300];
    body_err e = body_parse_alert(r->content_type, r->body, r->body_len, &a, why, sizeof why);
    switch (e) {
    case BODY_OK:
        break;
    case BODY_INVALID_JSON:
        h_error(h, HTTP_BAD_REQUEST, "invalid_json", why);
        goto done;
    case BODY_INVALID:
    case BODY_TOO_MANY:
        h_error(h, HTTP_BAD_REQUEST, "invalid_body", why);
        goto done;
    case BODY_INVALID_ISBN:
        h_error_details(h, HTTP_BAD_REQUEST, "invalid_isbn", why, &a.detail, 1);
        goto done;
    case BODY_UNSUPPORTED_TYPE:
        h_error(h, HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", why);
        goto done;
    case BODY_NOMEM:
        h_oom(h);
        goto done;
    }
    db *d = h_db(h);
    db_err rc = d ? DB_OK : DB_ERROR;
    /* A rule names a tracked book, by the id it is stored under (an ASIN attached to a book
     * tracked under its ISBN names that book): an unknown one is a 404, as on /api/books. */
    if (a.has_book && d) {
        rc = db_book_resolve(d, &a.book, a.rule.book_id);
        if (rc == DB_NOTFOUND) {
            h_error(h, HTTP_NOT_FOUND, "book_not_found",
                    "that book is not tracked: add it first (POST /api/books)");
            goto done;
        }
    }
    if (rc == DB_OK)
        rc = db_alert_add(d, &a.rule);
    if (rc != DB_OK) {
        h_store_error(h, rc);
        goto done;
    }
    char location[48];
    int n = snprintf(location, sizeof location, "/api/alerts/%lld", (long long)a.rule.n);
    if (n < 0 || (size_t)n >= sizeof location)
        h_error(h, HTTP_INTERNAL_SERVER_ERROR, "internal", "cannot build the rule's address");
    else if (h_header(h, "Location", location) == 0)
        h_json(h, render_alert_rule_doc(&h->resp->body, &a.rule), HTTP_CREATED);
done:
    body_alert_free(&a);
}

void h_alert_delete(hctx *h, const char *arg)
{
    char *end;
    long long n = strtoll(arg, &end, 10);
    if (end == arg || *end || n <= 0 || strlen(arg) > SRV_JOB_ID_MAX_DIGITS) {
        h_error(h, HTTP_BAD_REQUEST, "invalid_query", "a rule's number is a positive number");
        return;
    }
    db *d = h_db(h);
    db_err rc = d ? db_alert_remove(d, n) : DB_ERROR;
    switch (rc) {
    case DB_OK:
        h_finish(h, BUF_OK, HTTP_NO_CONTENT, NULL, NULL);
        return;
    case DB_NOTFOUND:
        h_error(h, HTTP_NOT_FOUND, "alert_not_found", "no such alert rule");
        return;
    case DB_CONFLICT:
        h_error(h, HTTP_CONFLICT, "conflict",
                "that rule is defined in the config file; remove it there (it is synced when "
                "serve or refresh starts)");
        return;
    default:
        h_store_error(h, rc);
        return;
    }
}

void h_alert_events(hctx *h, const char *arg)
{
    (void)arg;
    int lim = SRV_ALERT_EVENTS_DEFAULT;
    if (h_query_int(h, "limit", 1, SRV_ALERT_EVENTS_MAX, &lim) < 0)
        return;
    db *d = h_db(h);
    db_alert_event *events = NULL;
    size_t n = 0;
    db_err rc = d ? db_alert_events_recent(d, lim, &events, &n) : DB_ERROR;
    if (rc != DB_OK) {
        h_store_error(h, rc);
        return;
    }
    int rrc = render_alert_events(&h->resp->body, events, n);
    db_alert_events_free(events, n);
    h_json(h, rrc, HTTP_OK);
}
