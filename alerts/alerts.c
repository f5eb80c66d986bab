/* alerts.c - alert kinds, targets, conditions and messages (see alerts.h). */
#include "../common/buf.h"
#include "alerts.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const kind_names[ALERT_KIND_COUNT] = {
    "rank_better_than", "rank_worse_than", "new_best", "change_pct", "trouble",
};

static const char *const target_names[TARGET_KIND_COUNT] = {
    "webhook", "slack", "discord", "ntfy", "mailto",
};

const char *alert_kind_name(alert_kind kind)
{
    return (unsigned)kind < ALERT_KIND_COUNT ? kind_names[kind] : "unknown";
}

int alert_kind_parse(const char *name)
{
    for (int i = 0; name && i < ALERT_KIND_COUNT; i++)
        if (strcmp(name, kind_names[i]) == 0)
            return i;
    return -1;
}

int alert_kind_has_value(alert_kind kind)
{
    return kind != ALERT_NEW_BEST;
}

const char *alert_target_kind_name(alert_target_kind kind)
{
    return (unsigned)kind < TARGET_KIND_COUNT ? target_names[kind] : "unknown";
}

/* An http(s) URL with a host and no blank or control byte. */
static int url_ok(const char *u)
{
    size_t skip = strncasecmp(u, "https://", 8) == 0  ? 8
                  : strncasecmp(u, "http://", 7) == 0 ? 7
                                                      : 0;
    if (!skip || !u[skip] || u[skip] == '/')
        return 0;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* local@domain with a dot in the domain; no blank, control, comma, angle bracket or quote. */
static int address_ok(const char *a)
{
    const char *at = strchr(a, '@');
    if (!at || at == a || strchr(at + 1, '@') || !strchr(at + 1, '.') || at[1] == '.' ||
        a[strlen(a) - 1] == '.')
        return 0;
    for (const unsigned char *p = (const unsigned char *)a; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || strchr(",;<>\"()[]\\", *p))
            return 0;
    return 1;
}

int alert_target_parse(const char *target, alert_target_kind *kind, const char **rest, char *why,
                       size_t whylen)
{
    if (!target || !*target) {
        why_printf(why, whylen, "an empty target");
        return -1;
    }
    if (strlen(target) > ALERT_TARGET_MAX) {
        why_printf(why, whylen, "a target longer than %d bytes", ALERT_TARGET_MAX);
        return -1;
    }
    for (int k = 0; k < TARGET_KIND_COUNT; k++) {
        size_t n = strlen(target_names[k]);
        if (strncmp(target, target_names[k], n) != 0 || target[n] != ':')
            continue;
        const char *r = target + n + 1;
        int ok = k == TARGET_MAILTO ? address_ok(r) : url_ok(r);
        if (!ok) {
            why_printf(why, whylen,
                       k == TARGET_MAILTO ? "mailto: needs an address like author@example.org"
                                          : "%s: needs an http:// or https:// URL",
                       target_names[k]);
            return -1;
        }
        *kind = (alert_target_kind)k;
        *rest = r;
        return 0;
    }
    why_printf(why, whylen,
               "unknown target '%.40s' (webhook:URL, slack:URL, discord:URL, ntfy:URL, "
               "mailto:ADDRESS)",
               target);
    return -1;
}

int alert_rule_check(alert_kind kind, int value_given, double value, const char *const *targets,
                     size_t ntargets, char *why, size_t whylen)
{
    if ((unsigned)kind >= ALERT_KIND_COUNT) {
        why_printf(why, whylen,
                   "unknown kind (rank_better_than, rank_worse_than, new_best, "
                   "change_pct, trouble)");
        return -1;
    }
    if (alert_kind_has_value(kind) && !value_given) {
        why_printf(why, whylen, "%s needs a value", kind_names[kind]);
        return -1;
    }
    if (!alert_kind_has_value(kind) && value_given) {
        why_printf(why, whylen, "new_best takes no value");
        return -1;
    }
    if (value_given) {
        int whole = kind != ALERT_CHANGE_PCT;
        if (!isfinite(value) || value <= 0 || value > 1e12 || (whole && value != floor(value)) ||
            (kind == ALERT_TROUBLE && value > 1000)) {
            why_printf(why, whylen, "%s needs a %s above 0%s", kind_names[kind],
                       whole ? "whole number" : "number",
                       kind == ALERT_TROUBLE ? " (at most 1000)" : "");
            return -1;
        }
    }
    if (ntargets == 0) {
        why_printf(why, whylen, "a rule needs at least one target to notify");
        return -1;
    }
    if (ntargets > ALERT_MAX_TARGETS) {
        why_printf(why, whylen, "at most %d targets per rule", ALERT_MAX_TARGETS);
        return -1;
    }
    for (size_t i = 0; i < ntargets; i++) {
        alert_target_kind tk;
        const char *rest;
        if (alert_target_parse(targets[i], &tk, &rest, why, whylen))
            return -1;
    }
    return 0;
}

int alert_condition(alert_kind kind, double value, const alert_facts *f)
{
    int bad = f->status == OBS_BLOCKED || f->status == OBS_ERROR || f->status == OBS_NOT_FOUND;
    if (kind == ALERT_TROUBLE)
        return bad && (double)f->bad_in_a_row >= value;
    if (f->status != OBS_OK || f->rank < 0)
        return -1;
    switch (kind) {
    case ALERT_RANK_BETTER_THAN:
        return (double)f->rank < value;
    case ALERT_RANK_WORSE_THAN:
        return (double)f->rank > value;
    case ALERT_NEW_BEST:
        return f->best_before >= 0 && f->rank < f->best_before;
    case ALERT_CHANGE_PCT:
        if (f->rank_day_ago <= 0)
            return 0;
        return fabs((double)(f->rank - f->rank_day_ago)) * 100.0 / (double)f->rank_day_ago >= value;
    default:
        return 0;
    }
}

int alert_should_fire(alert_kind kind, double value, const alert_facts *facts, int was_true,
                      int *now_true)
{
    int c = alert_condition(kind, value, facts);
    if (c < 0) {
        *now_true = was_true;
        return 0;
    }
    *now_true = c;
    return c && !was_true;
}

/* "#1,234" */
static void rank_text(int64_t rank, char *out, size_t len)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)rank);
    size_t k = 0;
    if (len < 2 || n < 0)
        return;
    out[k++] = '#';
    for (int i = 0; i < n && k + 2 < len; i++) {
        if (i && (n - i) % 3 == 0)
            out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = '\0';
}

void alert_message(alert_kind kind, double value, const char *title, const char *id,
                   const char *source, const observation *obs, int64_t previous_rank,
                   int64_t bad_in_a_row, char *out, size_t outlen)
{
    char name[300], now[32], was[32];
    if (snprintf(name, sizeof name, "%s", title && *title ? title : id) < 0)
        name[0] = '\0';
    rank_text(obs->rank, now, sizeof now);
    rank_text(previous_rank, was, sizeof was);
    int n;
    if (kind == ALERT_TROUBLE) {
        n = snprintf(out, outlen, "'%s' failed %lld time%s in a row on %s (%s%s%s)", name,
                     (long long)bad_in_a_row, bad_in_a_row == 1 ? "" : "s", source,
                     obs_status_name(obs->status), obs->error ? ": " : "",
                     obs->error ? obs->error : "");
    } else if (previous_rank >= 0) {
        n = snprintf(out, outlen, "'%s' is now %s on %s (was %s)%s", name, now, source, was,
                     kind == ALERT_NEW_BEST ? ", its best yet" : "");
    } else {
        n = snprintf(out, outlen, "'%s' is now %s on %s", name, now, source);
    }
    (void)value;
    if (n < 0 && outlen)
        out[0] = '\0';
}
