/*
 * cmd_alert.c - `bookrank alert add|list|remove N|test TARGET` (SPEC §5): the alert rules in the
 * store, and a sample message sent straight to a target to try its address and the delivery
 * options (--smtp, --smtp-from, --notify-secret) before a real event needs them.
 *
 * Exit statuses: 0 done; 1 the work failed (a book not tracked, no such rule, a target that
 * did not take the sample); 2 bad usage (a bad rule, a rule that is defined in the config
 * file and so cannot be removed here).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/timeutil.h"
#include "../notify/notify.h"
#include "../render/render.h"
#include "internal.h"

/* A rule's value as people write it: 1000, 12.5; "-" for none. */
static void format_value(const db_alert_rule *r, char *out, size_t len)
{
    if (!r->has_value)
        snprintf(out, len, "-");
    else if (r->value == floor(r->value) && fabs(r->value) < 1e15)
        snprintf(out, len, "%.0f", r->value);
    else
        snprintf(out, len, "%g", r->value);
}

static int print_rule_json(const cli_command *c, const db_alert_rule *r)
{
    buf out;
    buf_init(&out, (size_t)1 << 24);
    int rc = render_alert_rule_doc(&out, r);
    if (rc == BUF_OK)
        rc = buf_append(&out, "\n", 1);
    rc = cli_print_rendered(c, rc, &out);
    buf_free(&out);
    return rc;
}

/* Options that belong to one verb only, given with another: a mistake worth saying. */
static int only_with(const cli_settings *s, const char *verb)
{
    static const struct {
        cli_opt id;
        const char *verbs;
    } owned[] = {{OPT_KIND, "add"}, {OPT_VALUE, "add"}, {OPT_BOOK, "add"}, {OPT_JSON, "add list"}};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        if (cli_opt_text(s, owned[i].id) && !strstr(owned[i].verbs, verb))
            return cli_usage_error(s->cmd, "--%s goes with `alert %s`",
                                   cli_options[owned[i].id].name,
                                   strchr(owned[i].verbs, ' ') ? "add` or `alert list" : "add");
    if (s->nnotify && strcmp(verb, "add") != 0)
        return cli_usage_error(s->cmd, "--notify goes with `alert add` (`alert test` takes the "
                                       "target as its argument)");
    if (s->history_source && strcmp(verb, "add") != 0)
        return cli_usage_error(s->cmd, "--source goes with `alert add`");
    return CLI_OK;
}

static int alert_add(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    if (s->nargs != 1)
        return cli_usage_error(c, "unexpected argument '%s'", s->args[1]);
    const char *kind = cli_opt_text(s, OPT_KIND), *vtext = cli_opt_text(s, OPT_VALUE);
    if (!kind)
        return cli_usage_error(c, "give --kind (rank_better_than, rank_worse_than, new_best, "
                                  "change_pct, trouble)");
    double value = 0;
    if (vtext) {
        char *end;
        value = strtod(vtext, &end);
        if (end == vtext || *end)
            return cli_usage_error(c, "--value '%s' is not a number", vtext);
    }
    if (!s->nnotify)
        return cli_usage_error(c, "give at least one --notify TARGET (webhook:URL, slack:URL, "
                                  "discord:URL, ntfy:URL, mailto:ADDRESS)");
    cli_rule cr;
    const char *key;
    long index;
    char why[300];
    if (cli_rule_make(kind, vtext != NULL, value, cli_opt_text(s, OPT_BOOK), s->history_source,
                      s->notify, s->nnotify, &cr, &key, &index, why, sizeof why)) {
        if (!key) {
            cli_error(c, "%s", why);
            return CLI_WORK;
        }
        if (index >= 0)
            return cli_usage_error(c, "--notify '%s': %s", s->notify[index], why);
        return cli_usage_error(c, "--%s: %s", key, why);
    }
    db *d = NULL;
    int rc = cli_store_open(s, CLI_STORE_WRITE, &d);
    if (rc == CLI_OK && cr.has_book)
        rc = cli_resolve(c, d, &cr.book, cr.rule.book_id);
    if (rc == CLI_OK && db_alert_add(d, &cr.rule) != DB_OK) {
        cli_error(c, "%s", db_errmsg(d));
        rc = CLI_WORK;
    }
    if (rc == CLI_OK) {
        if (cli_opt_flag(s, OPT_JSON)) {
            rc = print_rule_json(c, &cr.rule);
        } else {
            char value_text[48];
            format_value(&cr.rule, value_text, sizeof value_text);
            printf("added alert %lld: %s%s%s on %s, %s\n", (long long)cr.rule.n, cr.rule.kind,
                   cr.rule.has_value ? " " : "", cr.rule.has_value ? value_text : "",
                   cr.rule.book_id[0] ? cr.rule.book_id : "every book",
                   cr.rule.source[0] ? cr.rule.source : "every source");
        }
    }
    db_close(d);
    cli_rule_clear(&cr);
    return rc;
}

static void print_rules_text(const db_alert_rule *rules, size_t n)
{
    if (n == 0) {
        printf("no alert rules\n");
        return;
    }
    printf("%-4s %-16s %-8s %-13s %-14s %s\n", "N", "KIND", "VALUE", "BOOK", "SOURCE", "NOTIFY");
    for (size_t i = 0; i < n; i++) {
        const db_alert_rule *r = &rules[i];
        char value[48];
        format_value(r, value, sizeof value);
        printf("%-4lld %-16s %-8s %-13s %-14s", (long long)r->n, r->kind, value,
               r->book_id[0] ? r->book_id : "any", r->source[0] ? r->source : "any");
        for (size_t k = 0; k < r->ntargets; k++)
            printf("%s%s", k ? ", " : " ", r->targets[k]);
        printf("%s\n", r->from_config ? "  (config file)" : "");
    }
}

static int alert_list(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    if (s->nargs != 1)
        return cli_usage_error(c, "unexpected argument '%s'", s->args[1]);
    db *d = NULL;
    int rc = cli_store_open(s, CLI_STORE_READ, &d);
    if (rc)
        return rc;
    db_alert_rule *rules = NULL;
    size_t n = 0;
    if (db_alerts_list(d, &rules, &n) != DB_OK) {
        cli_error(c, "%s", db_errmsg(d));
        rc = CLI_WORK;
    } else if (cli_opt_flag(s, OPT_JSON)) {
        buf out;
        buf_init(&out, (size_t)1 << 28);
        int r = render_alert_rules(&out, rules, n);
        if (r == BUF_OK)
            r = buf_append(&out, "\n", 1);
        rc = cli_print_rendered(c, r, &out);
        buf_free(&out);
    } else {
        print_rules_text(rules, n);
    }
    db_alerts_free(rules, n);
    db_close(d);
    return rc;
}

static int alert_remove(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    if (s->nargs != 2)
        return cli_usage_error(c, "give the number of the rule to remove (see `bookrank alert "
                                  "list`)");
    const char *arg = s->args[1];
    char *end;
    long long n = strtoll(arg, &end, 10);
    if (end == arg || *end || n <= 0)
        return cli_usage_error(c, "'%s' is not a rule number (see `bookrank alert list`)", arg);
    db *d = NULL;
    int rc = cli_store_open(s, CLI_STORE_MIGRATE, &d);
    if (rc)
        return rc;
    db_err r = db_alert_remove(d, n);
    if (r == DB_OK) {
        printf("removed alert %lld\n", n);
    } else if (r == DB_NOTFOUND) {
        cli_error(c, "no alert rule %lld", n);
        rc = CLI_WORK;
    } else if (r == DB_CONFLICT) {
        cli_error(c,
                  "alert %lld is defined in the config file: remove it there (the file's "
                  "rules are synced when serve or refresh starts)",
                  n);
        rc = CLI_USAGE;
    } else {
        cli_error(c, "%s", db_errmsg(d));
        rc = CLI_WORK;
    }
    db_close(d);
    return rc;
}

/* A sample event like a real one (SPEC §5), marked as a test in its message. */
static int alert_test(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    if (s->nargs != 2)
        return cli_usage_error(c, "give the target to send a sample to, e.g. "
                                  "webhook:https://example.org/hook or mailto:you@example.org");
    const char *target = s->args[1];
    alert_target_kind tk;
    const char *rest;
    char why[512];
    if (alert_target_parse(target, &tk, &rest, why, sizeof why))
        return cli_usage_error(c, "%s", why);
    cli_notify nc;
    int rc = cli_notify_load(s, &nc);
    if (rc)
        return rc;
    if (tk == TARGET_MAILTO && !nc.smtp_url) {
        cli_notify_free(&nc);
        return cli_usage_error(c, "mail needs --smtp smtp://HOST:PORT and --smtp-from ADDRESS");
    }
    notify_config cfg = {.smtp_url = nc.smtp_url,
                         .smtp_from = nc.smtp_from,
                         .smtp_user = nc.smtp_user,
                         .smtp_password = nc.smtp_password,
                         .smtp_ca_file = nc.smtp_ca_file,
                         .secret = nc.secret};

    int64_t now = time_now_ms();
    char target_copy[ALERT_TARGET_MAX + 1];
    snprintf(target_copy, sizeof target_copy, "%s", target); /* fits: checked above */
    char *targets[1] = {target_copy};
    db_alert_rule rule = {.n = 0,
                          .kind = "rank_better_than",
                          .has_value = 1,
                          .value = 1000,
                          .targets = targets,
                          .ntargets = 1,
                          .created_at_ms = now};
    db_book book = {.id = "9780132269933",
                    .isbn13 = "9780132269933",
                    .isbn10 = "0132269937",
                    .added_at_ms = now};
    char title[] = "Core Python Programming", source[] = "amazon.com", category[] = "Books";
    book.title = title;
    observation obs;
    obs_init(&obs);
    memcpy(obs.book_id, book.id, sizeof obs.book_id);
    obs.source = source;
    obs.status = OBS_OK;
    obs.rank = 812;
    obs.rank_category = category;
    obs.fetched_at_ms = now;
    obs.http_status = 200;
    obs.attempts = 1;
    char line[512], message[600], event_id[40];
    alert_message(ALERT_RANK_BETTER_THAN, 1000, title, book.id, source, &obs, 1204, 0, line,
                  sizeof line);
    snprintf(message, sizeof message, "Test from bookrank: %s", line);
    snprintf(event_id, sizeof event_id, "test-%lld", (long long)now);

    buf body;
    buf_init(&body, (size_t)1 << 20);
    notify_sender *sender = NULL;
    char *err = NULL;
    if (render_alert_event_body(&body, event_id, &rule, &book, &obs, 1204, message, now) !=
        BUF_OK) {
        cli_error(c, "out of memory");
        rc = CLI_WORK;
    } else if (!(sender = notify_sender_new(&cfg, &err))) {
        cli_error(c, "%s", err ? err : "out of memory");
        rc = CLI_WORK;
    } else {
        notify_message m = {.event_id = event_id,
                            .json = body.data,
                            .json_len = body.len,
                            .text = message,
                            .subject = message};
        notify_err e = notify_send(sender, target, &m, why, sizeof why);
        if (e == NOTIFY_OK) {
            printf("sent a sample alert to %s\n", target);
        } else {
            cli_error(c, "%s: %s", target, why[0] ? why : notify_strerror(e));
            rc = CLI_WORK;
        }
    }
    free(err);
    notify_sender_free(sender);
    buf_free(&body);
    cli_notify_free(&nc);
    return rc;
}

int cmd_alert(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    if (s->nargs == 0)
        return cli_usage_error(c, "give what to do: add, list, remove N or test TARGET");
    const char *verb = s->args[0];
    static const char *const verbs[] = {"add", "list", "remove", "test"};
    size_t v = 0;
    while (v < 4 && strcmp(verbs[v], verb) != 0)
        v++;
    if (v == 4)
        return cli_usage_error(c, "unknown '%s': give add, list, remove N or test TARGET", verb);
    int rc = only_with(s, verb);
    if (rc)
        return rc;
    switch (v) {
    case 0:
        return alert_add(s);
    case 1:
        return alert_list(s);
    case 2:
        return alert_remove(s);
    default:
        return alert_test(s);
    }
}
