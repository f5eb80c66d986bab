/* test_db_alerts.c - the store's side of alerts: rules (add, list, remove, the config file's
 * rules synced without losing their state), the facts the evaluator reads, per-(rule, book,
 * source) state, and the outbox (due, claim, outcome, recent, pending, last sent, prune). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/ids.h"
#include "../../common/observation.h"
#include "../../db/db.h"
#include "../lib/check.h"

static char dir[64];

static book_id id_of(const char *text)
{
    book_id b;
    char why[128];
    memset(&b, 0, sizeof b);
    if (id_parse(text, strlen(text), &b, why, sizeof why) != ID_OK)
        fprintf(stderr, "bad id %s: %s\n", text, why);
    return b;
}

static observation make_obs(const char *id, char *source, obs_status st, int64_t rank, int64_t at)
{
    observation o;
    obs_init(&o);
    snprintf(o.book_id, sizeof o.book_id, "%s", id);
    o.source = source; /* borrowed: never cleared */
    o.status = st;
    o.rank = rank;
    o.fetched_at_ms = at;
    return o;
}

static void test_rules(db *d)
{
    char *t1[] = {"webhook:http://127.0.0.1:9/hook", "mailto:a@example.org"};
    db_alert_rule r = {.kind = "rank_better_than",
                       .has_value = 1,
                       .value = 1000,
                       .targets = t1,
                       .ntargets = 2};
    CHECK_INT(db_alert_add(d, &r), DB_OK, "add a rule");
    CHECK(r.n > 0 && r.created_at_ms > 0, "it gets a number and a time");
    char *t2[] = {"ntfy:http://127.0.0.1:9/topic"};
    db_alert_rule c = {.kind = "new_best", .targets = t2, .ntargets = 1};
    snprintf(c.book_id, sizeof c.book_id, "9780132269933");
    CHECK_INT(db_alerts_sync_config(d, &c, 1), DB_OK, "a config rule");
    db_alert_rule *list = NULL;
    size_t n = 0;
    CHECK(db_alerts_list(d, &list, &n) == DB_OK && n == 2, "two rules listed");
    int64_t config_n = 0;
    if (n == 2) {
        CHECK(strcmp(list[0].kind, "rank_better_than") == 0 && list[0].has_value &&
                  list[0].value == 1000 && list[0].ntargets == 2 &&
                  strcmp(list[0].targets[1], "mailto:a@example.org") == 0 && !list[0].from_config,
              "the API rule reads back whole");
        CHECK(strcmp(list[1].kind, "new_best") == 0 && !list[1].has_value &&
                  strcmp(list[1].book_id, "9780132269933") == 0 && list[1].from_config,
              "the config rule reads back whole");
        config_n = list[1].n;
    }
    db_alerts_free(list, n);
    CHECK_INT(db_alert_remove(d, config_n), DB_CONFLICT, "a config rule cannot be removed");
    CHECK(strstr(db_errmsg(d), "config") != NULL, "the message says why");
    CHECK_INT(db_alert_remove(d, 999), DB_NOTFOUND, "an unknown rule");
    CHECK_INT(db_alert_state_set(d, config_n, "9780132269933", "amazon.com", 1), DB_OK,
              "state of the config rule");
    CHECK_INT(db_alerts_sync_config(d, &c, 1), DB_OK, "the same config again");
    int was = 0;
    CHECK(db_alert_state_get(d, config_n, "9780132269933", "amazon.com", &was) == DB_OK && was,
          "an unchanged config rule keeps its number and state");
    CHECK_INT(db_alerts_sync_config(d, NULL, 0), DB_OK, "a config without rules");
    CHECK(db_alerts_list(d, &list, &n) == DB_OK && n == 1 && !list[0].from_config,
          "the config rule is gone, the API rule stays");
    db_alerts_free(list, n);
    CHECK_INT(db_alert_remove(d, r.n), DB_OK, "remove the API rule");
    CHECK(db_alerts_list(d, &list, &n) == DB_OK && n == 0, "no rules left");
    db_alerts_free(list, n);
    char *bad[] = {"webhook:http://x\nInjected: 1"};
    db_alert_rule b = {.kind = "trouble",
                       .has_value = 1,
                       .value = 3,
                       .targets = bad,
                       .ntargets = 1};
    CHECK_INT(db_alert_add(d, &b), DB_ERROR, "a target with a line break is refused");
}

static void test_facts(db *d)
{
    const char *id = "9780132269933";
    int64_t day = 24LL * 3600 * 1000, t0 = 1700000000000LL;
    observation obs[] = {
        make_obs(id, "amazon.com", OBS_OK, 5000, t0),
        make_obs(id, "amazon.com", OBS_OK, 3000, t0 + day / 2),
        make_obs(id, "amazon.de", OBS_OK, 10, t0 + day / 2), /* another source */
        make_obs(id, "amazon.com", OBS_BLOCKED, -1, t0 + day + 1000),
        make_obs(id, "amazon.com", OBS_ERROR, -1, t0 + day + 2000),
        make_obs(id, "amazon.com", OBS_OK, 4000, t0 + day + 3000),
    };
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        CHECK_INT(db_observations_add(d, &obs[i], 1, 0), DB_OK, "store an observation");
    db_alert_facts f;
    CHECK_INT(db_alert_facts_get(d, &obs[5], &f), DB_OK, "facts of the newest");
    CHECK_INT(f.best_before, 3000, "best earlier ok rank of that source");
    CHECK_INT(f.rank_day_ago, 5000, "the last ok rank at least 24 h older");
    CHECK_INT(f.previous_rank, 3000, "the previous ok rank");
    CHECK_INT(f.bad_in_a_row, 0, "an ok observation ends a run of failures");
    CHECK_INT(db_alert_facts_get(d, &obs[4], &f), DB_OK, "facts of the error");
    CHECK_INT(f.bad_in_a_row, 2, "blocked then error: two in a row");
    CHECK_INT(db_alert_facts_get(d, &obs[0], &f), DB_OK, "facts of the first");
    CHECK(f.best_before == -1 && f.rank_day_ago == -1 && f.previous_rank == -1,
          "the first observation has nothing before it");
    observation missing = make_obs(id, "amazon.com", OBS_OK, 1, t0 - 5);
    CHECK_INT(db_alert_facts_get(d, &missing, &f), DB_NOTFOUND, "an observation not stored");
}

static void test_outbox(db *d)
{
    const char *targets[] = {"webhook:http://127.0.0.1:9/a", "slack:http://127.0.0.1:9/b"};
    db_alert_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.uid, sizeof ev.uid, "e1");
    ev.rule_n = 7;
    snprintf(ev.kind, sizeof ev.kind, "new_best");
    snprintf(ev.book_id, sizeof ev.book_id, "9780132269933");
    snprintf(ev.source, sizeof ev.source, "amazon.com");
    ev.body = "{\"id\":\"e1\"}";
    ev.message = "'Core' is now #812 on amazon.com (was #1,204)";
    ev.subject = ev.message;
    ev.created_at_ms = 1000;
    CHECK_INT(db_alert_event_add(d, &ev, targets, 2), DB_OK, "an event for two targets");
    CHECK_INT(db_alert_event_add(d, &ev, targets, 1), DB_CONFLICT,
              "the same event id for the same target twice is refused");
    int64_t count = 0, next = 0;
    CHECK(db_alert_events_pending(d, &count, &next) == DB_OK && count == 2 && next == 1000,
          "two rows pending, due at once");
    db_alert_event *due = NULL;
    size_t n = 0;
    CHECK(db_alert_events_due(d, 999, 10, &due, &n) == DB_OK && n == 0, "nothing due before");
    db_alert_events_free(due, n);
    CHECK(db_alert_events_due(d, 5000, 10, &due, &n) == DB_OK && n == 2, "both due");
    if (n == 2) {
        CHECK(strcmp(due[0].uid, "e1") == 0 && strcmp(due[0].target, targets[0]) == 0 &&
                  strcmp(due[0].body, ev.body) == 0 && strcmp(due[0].message, ev.message) == 0 &&
                  due[0].state == EVENT_PENDING && due[0].attempts == 0,
              "a due row reads back whole");
        int claimed = 0;
        CHECK(db_alert_event_claim(d, due[0].id, due[0].next_at_ms, 9000, &claimed) == DB_OK &&
                  claimed,
              "claim a row");
        CHECK(db_alert_event_claim(d, due[0].id, due[0].next_at_ms, 9000, &claimed) == DB_OK &&
                  !claimed,
              "a second claim of the same row loses");
        CHECK_INT(db_alert_event_done(d, due[0].id, EVENT_SENT, 1, 0, 6000, NULL), DB_OK, "sent");
        CHECK_INT(db_alert_event_done(d, due[1].id, EVENT_PENDING, 1, 20000, 0, "HTTP 500"), DB_OK,
                  "failed once, retried later");
    }
    db_alert_events_free(due, n);
    int64_t at = 0;
    CHECK(db_alert_last_sent(d, targets[0], "new_best", &at) == DB_OK && at == 6000,
          "when the target last got this kind");
    CHECK(db_alert_last_sent(d, targets[1], "new_best", &at) == DB_OK && at == 0, "never sent");
    CHECK(db_alert_events_recent(d, 10, &due, &n) == DB_OK && n == 2 && due[0].attempts == 1 &&
              due[0].last_error && strcmp(due[0].last_error, "HTTP 500") == 0 &&
              due[1].state == EVENT_SENT,
          "recent rows, newest first, with their outcome");
    db_alert_events_free(due, n);
    CHECK(db_alert_events_pending(d, &count, &next) == DB_OK && count == 1 && next == 20000,
          "one pending, due at its retry");
    CHECK_INT(db_alert_events_prune(d, 2000), DB_OK, "prune delivered rows");
    CHECK(db_alert_events_recent(d, 10, &due, &n) == DB_OK && n == 1 &&
              due[0].state == EVENT_PENDING,
          "the sent row is pruned, the pending one kept");
    db_alert_events_free(due, n);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_db_alerts.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    char path[128];
    snprintf(path, sizeof path, "%s/a.db", dir);
    char *err = NULL;
    db *d = db_open(path, &err);
    CHECK(d != NULL, "open");
    if (!d) {
        fprintf(stderr, "%s\n", err ? err : "?");
        free(err);
        return check_done();
    }
    book_id b = id_of("9780132269933");
    CHECK_INT(db_books_add(d, &b, 1, NULL, NULL), DB_OK, "a book");
    test_rules(d);
    test_facts(d);
    test_outbox(d);
    db_close(d);
    unlink(path);
    char side[160];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    rmdir(dir);
    return check_done();
}
