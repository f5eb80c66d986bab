/*
 * alerts.c - the alert shapes: rules, the list of deliveries, the event JSON (SPEC §5) and a
 * batch of events for one target.
 */
#include "render.h"

#include <string.h>

void render_alert_rule(jw *w, const db_alert_rule *r)
{
    jw_object_open(w);
    jw_key(w, "n");
    jw_int(w, r->n);
    jw_key(w, "kind");
    jw_string(w, r->kind);
    jw_key(w, "value");
    if (r->has_value)
        jw_double(w, r->value);
    else
        jw_null(w);
    jw_key(w, "book");
    jw_string(w, r->book_id[0] ? r->book_id : NULL);
    jw_key(w, "source");
    jw_string(w, r->source[0] ? r->source : NULL);
    jw_key(w, "notify");
    jw_array_open(w);
    for (size_t i = 0; i < r->ntargets; i++)
        jw_string(w, r->targets[i]);
    jw_array_close(w);
    jw_key(w, "from_config");
    jw_bool(w, r->from_config);
    jw_key(w, "created_at");
    jw_time(w, r->created_at_ms);
    jw_object_close(w);
}

int render_alert_rules(buf *out, const db_alert_rule *rules, size_t n)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    jw_array_open(&w);
    for (size_t i = 0; i < n; i++)
        render_alert_rule(&w, &rules[i]);
    jw_array_close(&w);
    return jw_end(&w);
}

int render_alert_rule_doc(buf *out, const db_alert_rule *rule)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    jw_object_open(&w);
    jw_key(&w, "alert");
    render_alert_rule(&w, rule);
    jw_object_close(&w);
    return jw_end(&w);
}

int render_alert_events(buf *out, const db_alert_event *events, size_t n)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    jw_array_open(&w);
    for (size_t i = 0; i < n; i++) {
        const db_alert_event *e = &events[i];
        jw_object_open(&w);
        jw_key(&w, "id");
        jw_string(&w, e->uid);
        jw_key(&w, "row");
        jw_int(&w, e->id);
        jw_key(&w, "kind");
        jw_string(&w, e->kind);
        jw_key(&w, "rule");
        jw_int(&w, e->rule_n);
        jw_key(&w, "book");
        jw_string(&w, e->book_id);
        jw_key(&w, "source");
        jw_string(&w, e->source);
        jw_key(&w, "target");
        jw_string(&w, e->target);
        jw_key(&w, "state");
        jw_string(&w, db_event_state_name(e->state));
        jw_key(&w, "attempts");
        jw_int(&w, e->attempts);
        jw_key(&w, "message");
        jw_string(&w, e->message);
        jw_key(&w, "created_at");
        jw_time(&w, e->created_at_ms);
        jw_key(&w, "next_attempt_at");
        jw_time(&w, e->state == EVENT_PENDING ? e->next_at_ms : 0);
        jw_key(&w, "sent_at");
        jw_time(&w, e->sent_at_ms);
        jw_key(&w, "last_error");
        jw_string(&w, e->last_error);
        jw_object_close(&w);
    }
    jw_array_close(&w);
    return jw_end(&w);
}

int render_alert_event_body(buf *out, const char *event_id, const db_alert_rule *rule,
                            const db_book *book, const observation *obs, int64_t previous_rank,
                            const char *message, int64_t fired_at_ms)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    jw_object_open(&w);
    jw_key(&w, "id");
    jw_string(&w, event_id);
    jw_key(&w, "kind");
    jw_string(&w, rule->kind);
    jw_key(&w, "alert");
    render_alert_rule(&w, rule);
    jw_key(&w, "book");
    if (book)
        render_book(&w, book);
    else
        jw_null(&w);
    jw_key(&w, "source");
    jw_string(&w, obs->source);
    jw_key(&w, "observation");
    render_observation(&w, obs);
    jw_key(&w, "previous_rank");
    jw_rank(&w, previous_rank);
    jw_key(&w, "message");
    jw_string(&w, message);
    jw_key(&w, "fired_at");
    jw_time(&w, fired_at_ms);
    jw_object_close(&w);
    return jw_end(&w);
}

int render_alert_batch(buf *out, const char *const *bodies, size_t n)
{
    /* The bodies are event JSON this writer produced: joined as they are. */
    int rc = buf_append_str(out, "{\"batch\":true,\"events\":[");
    for (size_t i = 0; rc == BUF_OK && i < n; i++) {
        if (i)
            rc = buf_append(out, ",", 1);
        if (rc == BUF_OK)
            rc = buf_append_str(out, bodies[i] && bodies[i][0] ? bodies[i] : "null");
    }
    return rc == BUF_OK ? buf_append_str(out, "]}") : rc;
}
