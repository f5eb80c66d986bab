/* test_alerts.c - alert rules: kinds, values, targets, conditions, edge triggering, messages. */
#include <stdio.h>
#include <string.h>

#include "../../alerts/alerts.h"
#include "../lib/check.h"

static alert_facts ok_rank(int64_t rank, int64_t best, int64_t day_ago)
{
    return (
        alert_facts){.status = OBS_OK, .rank = rank, .best_before = best, .rank_day_ago = day_ago};
}

static alert_facts bad(obs_status st, int64_t in_a_row)
{
    return (alert_facts){.status = st,
                         .rank = -1,
                         .best_before = 100,
                         .rank_day_ago = 100,
                         .bad_in_a_row = in_a_row};
}

static void test_kinds_and_checks(void)
{
    for (int k = 0; k < ALERT_KIND_COUNT; k++)
        CHECK_INT(alert_kind_parse(alert_kind_name((alert_kind)k)), k, "kind name round-trips");
    CHECK_INT(alert_kind_parse("rank_better"), -1, "unknown kind");
    const char *t1[] = {"webhook:https://hooks.example/x"};
    const char *t2[] = {"mailto:author@example.org", "ntfy:http://127.0.0.1:1/topic"};
    char why[200];
    CHECK_INT(alert_rule_check(ALERT_RANK_BETTER_THAN, 1, 1000, t1, 1, why, sizeof why), 0,
              "a valid rule");
    CHECK_INT(alert_rule_check(ALERT_NEW_BEST, 0, 0, t2, 2, why, sizeof why), 0,
              "new_best without a value");
    CHECK(alert_rule_check(ALERT_NEW_BEST, 1, 5, t1, 1, why, sizeof why) && strstr(why, "no value"),
          "new_best with a value is refused");
    CHECK(alert_rule_check(ALERT_RANK_WORSE_THAN, 0, 0, t1, 1, why, sizeof why) &&
              strstr(why, "needs a value"),
          "a rank rule needs a value");
    CHECK(alert_rule_check(ALERT_RANK_WORSE_THAN, 1, 10.5, t1, 1, why, sizeof why) &&
              strstr(why, "whole"),
          "a rank is a whole number");
    CHECK_INT(alert_rule_check(ALERT_CHANGE_PCT, 1, 12.5, t1, 1, why, sizeof why), 0,
              "change_pct may be fractional");
    CHECK(alert_rule_check(ALERT_TROUBLE, 1, 0, t1, 1, why, sizeof why) != 0,
          "trouble 0 is refused");
    CHECK(alert_rule_check(ALERT_TROUBLE, 1, 3, t1, 0, why, sizeof why) && strstr(why, "target"),
          "a rule without targets is refused");
    static const struct {
        const char *target;
        int ok;
        alert_target_kind kind;
    } targets[] = {
        {"webhook:https://x.example/h", 1, TARGET_WEBHOOK},
        {"slack:https://hooks.slack.example/T", 1, TARGET_SLACK},
        {"discord:https://d.example/api/webhooks/1", 1, TARGET_DISCORD},
        {"ntfy:https://ntfy.example/t", 1, TARGET_NTFY},
        {"mailto:a.b@c.example", 1, TARGET_MAILTO},
        {"webhook:ftp://x/", 0, 0},
        {"webhook:https://", 0, 0},
        {"webhook:https://x/ y", 0, 0},
        {"mailto:nobody", 0, 0},
        {"mailto:a@b", 0, 0},
        {"mailto:a@b.example\r\nBcc: x@y.example", 0, 0},
        {"mailto:<a@b.example>", 0, 0},
        {"sms:+123", 0, 0},
        {"", 0, 0},
        {"webhook", 0, 0},
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        alert_target_kind k = TARGET_KIND_COUNT;
        const char *rest = NULL;
        char what[160];
        int rc = alert_target_parse(targets[i].target, &k, &rest, why, sizeof why);
        snprintf(what, sizeof what, "target '%s' %s", targets[i].target,
                 targets[i].ok ? "accepted" : "refused");
        CHECK((rc == 0) == targets[i].ok && (!targets[i].ok || k == targets[i].kind), what);
    }
}

static void test_conditions(void)
{
    alert_facts f = ok_rank(900, 1000, 1200);
    CHECK_INT(alert_condition(ALERT_RANK_BETTER_THAN, 1000, &f), 1, "900 is better than 1000");
    CHECK_INT(alert_condition(ALERT_RANK_BETTER_THAN, 900, &f), 0, "not better than itself");
    CHECK_INT(alert_condition(ALERT_RANK_WORSE_THAN, 800, &f), 1, "900 is worse than 800");
    CHECK_INT(alert_condition(ALERT_NEW_BEST, 0, &f), 1, "900 beats the best 1000");
    alert_facts first = ok_rank(900, -1, -1);
    CHECK_INT(alert_condition(ALERT_NEW_BEST, 0, &first), 0,
              "the first observation is no new best");
    CHECK_INT(alert_condition(ALERT_CHANGE_PCT, 25, &f), 1, "900 vs 1200 is 25%: >= 25 holds");
    f = ok_rank(900, 1000, 1200);
    CHECK_INT(alert_condition(ALERT_CHANGE_PCT, 25.0, &f) ||
                  alert_condition(ALERT_CHANGE_PCT, 24.9, &f),
              1, "a 25% move against a day ago");
    CHECK_INT(alert_condition(ALERT_CHANGE_PCT, 26, &f), 0, "but not 26%");
    alert_facts worse = ok_rank(1500, 1000, 1000);
    CHECK_INT(alert_condition(ALERT_CHANGE_PCT, 50, &worse), 1, "a 50% drop counts too");
    CHECK_INT(alert_condition(ALERT_CHANGE_PCT, 10, &first), 0, "no observation a day ago: false");
    alert_facts captcha = bad(OBS_BLOCKED, 2);
    CHECK_INT(alert_condition(ALERT_RANK_BETTER_THAN, 1000, &captcha), -1,
              "a captcha is not judged by rank rules");
    CHECK_INT(alert_condition(ALERT_TROUBLE, 3, &captcha), 0, "two bad in a row is not three");
    captcha.bad_in_a_row = 3;
    CHECK_INT(alert_condition(ALERT_TROUBLE, 3, &captcha), 1, "three bad in a row");
    alert_facts nf = bad(OBS_NOT_FOUND, 1);
    CHECK_INT(alert_condition(ALERT_TROUBLE, 1, &nf), 1, "not_found is trouble");
    alert_facts norank = {.status = OBS_NO_RANK, .rank = -1};
    CHECK_INT(alert_condition(ALERT_TROUBLE, 1, &norank), 0, "no_rank is not trouble");
}

static void test_edges(void)
{
    /* rank_better_than 1000 over a sequence: fires when it becomes true, not while it stays true,
     * again after it was false; a captcha in between changes nothing. */
    int64_t ranks[] = {1200, 900, 800, -2, 700, 1100, 950};
    int want[] = {0, 1, 0, 0, 0, 0, 1};
    int state = 0, fired[7];
    for (int i = 0; i < 7; i++) {
        alert_facts f = ranks[i] == -2 ? bad(OBS_BLOCKED, 1) : ok_rank(ranks[i], -1, -1);
        fired[i] = alert_should_fire(ALERT_RANK_BETTER_THAN, 1000, &f, state, &state);
    }
    CHECK(memcmp(fired, want, sizeof want) == 0,
          "edge-triggered: fires at 900, then again at 950 after 1100");
}

static void test_messages(void)
{
    observation o;
    obs_init(&o);
    o.rank = 812;
    char msg[300];
    alert_message(ALERT_RANK_BETTER_THAN, 1000, "Core Python", "9780132269933", "amazon.com", &o,
                  1204, 0, msg, sizeof msg);
    CHECK_STR(msg, "'Core Python' is now #812 on amazon.com (was #1,204)",
              "message names title, store and ranks");
    alert_message(ALERT_NEW_BEST, 0, NULL, "B01LW7X0JJ", "amazon.de", &o, -1, 0, msg, sizeof msg);
    CHECK_STR(msg, "'B01LW7X0JJ' is now #812 on amazon.de", "no title: the id; no previous rank");
    o.status = OBS_BLOCKED;
    o.error = (char *)"captcha page";
    alert_message(ALERT_TROUBLE, 3, "T", "x", "amazon.com", &o, -1, 3, msg, sizeof msg);
    CHECK_STR(msg, "'T' failed 3 times in a row on amazon.com (blocked: captcha page)",
              "trouble message");
    char tiny[8];
    alert_message(ALERT_NEW_BEST, 0, "A very long title", "x", "amazon.com", &o, 1, 0, tiny,
                  sizeof tiny);
    CHECK_INT(strlen(tiny), 7, "a short buffer is filled and terminated");
}

int main(void)
{
    test_kinds_and_checks();
    test_conditions();
    test_edges();
    test_messages();
    return check_done();
}
