/*
 * alerts.h - alert rules (SPEC §5): what they are, when they hold, and what their messages say.
 *
 * A rule watches observations of one book or every book, on one source or every source, and
 * notifies its targets when its condition BECOMES true for a (book, source): edge-triggered, so
 * it fires once and not again until the condition has been false. A new rule starts as false.
 * This module only decides; the store keeps rules, per-(rule, book, source) state and the events
 * (the outbox), the jobs writer evaluates in the transaction that stores the observation, and
 * notify/ delivers.
 *
 * Kinds:
 *   rank_better_than V   rank < V                      judged on ok observations only
 *   rank_worse_than V    rank > V                      (a captcha neither makes nor breaks
 *   new_best             better than every earlier      a rank rule: its state stays)
 *                        ok rank of that book and source (needs an earlier one to beat)
 *   change_pct V         |new - old| / old * 100 >= V against the last ok observation at least
 *                        24 h older
 *   trouble V            V observations in a row blocked, error or not_found
 *
 * Pure functions on caller-owned data: any thread.
 */
#ifndef BOOKRANK_ALERTS_H
#define BOOKRANK_ALERTS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/compiler.h"
#include "../common/observation.h"

typedef enum alert_kind {
    ALERT_RANK_BETTER_THAN = 0,
    ALERT_RANK_WORSE_THAN,
    ALERT_NEW_BEST,
    ALERT_CHANGE_PCT,
    ALERT_TROUBLE,
    ALERT_KIND_COUNT
} alert_kind;

/* "rank_better_than", ...; alert_kind_parse returns -1 for an unknown name. */
const char *alert_kind_name(alert_kind kind);
int alert_kind_parse(const char *name);
/* Whether the kind takes a value (every kind but new_best). */
int alert_kind_has_value(alert_kind kind);

/* The delivery channels of SPEC §5. */
typedef enum alert_target_kind {
    TARGET_WEBHOOK = 0,
    TARGET_SLACK,
    TARGET_DISCORD,
    TARGET_NTFY,
    TARGET_MAILTO,
    TARGET_KIND_COUNT
} alert_target_kind;

/* Checks a target ("webhook:https://...", "mailto:a@b.example"). 0 with *kind set and *rest
 * pointing at the URL or address inside target, or -1 with the reason in why. */
BR_MUST_CHECK int alert_target_parse(const char *target, alert_target_kind *kind, const char **rest,
                                     char *why, size_t whylen);
const char *alert_target_kind_name(alert_target_kind kind);

/* Most targets one rule may have, and the longest target text. */
#define ALERT_MAX_TARGETS 16
#define ALERT_TARGET_MAX 2048
/* A day: change_pct compares with an observation at least this much older. */
#define ALERT_CHANGE_WINDOW_MS (24LL * 3600 * 1000)

/* Checks a rule's kind, value and targets as given by a user (API, CLI, config file): 0, or -1
 * with the reason in why. value_given says whether a value came with it. */
BR_MUST_CHECK int alert_rule_check(alert_kind kind, int value_given, double value,
                                   const char *const *targets, size_t ntargets, char *why,
                                   size_t whylen);

/* What the evaluator needs to know about one new observation of a (book, source). The store
 * fills it from its history, in the writer's transaction. */
typedef struct alert_facts {
    obs_status status;
    int64_t rank;         /* -1 when none */
    int64_t best_before;  /* best (lowest) earlier ok rank of the book and source, -1: none */
    int64_t rank_day_ago; /* the last ok rank at least ALERT_CHANGE_WINDOW_MS older, -1 */
    int64_t bad_in_a_row; /* consecutive blocked/error/not_found ending with this one */
} alert_facts;

/* The condition of a rule for one new observation: 1 true, 0 false, -1 "not judged" (a rank
 * rule on an observation without a rank: the previous state stands). */
int alert_condition(alert_kind kind, double value, const alert_facts *facts);

/* Whether to fire: the condition became true (was false or unknown before). *now_true is the
 * state to store. */
int alert_should_fire(alert_kind kind, double value, const alert_facts *facts, int was_true,
                      int *now_true);

/* The event's message (SPEC §5): "'Title' is now #812 on amazon.com (was #1,204)" and for trouble
 * "'Title' failed 3 times in a row on amazon.com (blocked: captcha page)". title may be NULL (the
 * id is used). Writes into out[0..outlen), always NUL-terminated. */
void alert_message(alert_kind kind, double value, const char *title, const char *id,
                   const char *source, const observation *obs, int64_t previous_rank,
                   int64_t bad_in_a_row, char *out, size_t outlen);

#endif
