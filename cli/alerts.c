/*
 * alerts.c - what the commands share about alerts (SPEC §5): a rule as a user gives it (`alert
 * add`, the config file's "alerts"), the config file's rules synced into the store, the
 * delivery options, and the delivery loop that serve and refresh run.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/log.h"
#include "../notify/notify.h"
#include "internal.h"

void cli_rule_clear(cli_rule *r)
{
    if (!r)
        return;
    for (size_t k = 0; k < r->rule.ntargets; k++)
        free(r->rule.targets[k]);
    free(r->rule.targets);
    memset(r, 0, sizeof *r);
}

void cli_rules_free(cli_rule *rules, size_t n)
{
    for (size_t i = 0; rules && i < n; i++)
        cli_rule_clear(&rules[i]);
    free(rules);
}

/* A source name as the store keeps it: printable ASCII without blanks, '=' or ','. */
static int source_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof((db_alert_rule *)0)->source)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == ',' || s[i] == '=')
            return 0;
    return 1;
}

int cli_rule_make(const char *kind, int has_value, double value, const char *book,
                  const char *source, const char *const *targets, size_t ntargets, cli_rule *out,
                  const char **key, long *index, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    *index = -1;
    int k = kind ? alert_kind_parse(kind) : -1;
    if (k < 0) {
        *key = "kind";
        why_printf(why, whylen,
                   "%s%s%s (rank_better_than, rank_worse_than, new_best, change_pct, "
                   "trouble)",
                   kind ? "unknown kind '" : "a rule needs a kind", kind ? kind : "",
                   kind ? "'" : "");
        return -1;
    }
    *key = "notify";
    if (ntargets == 0 || ntargets > ALERT_MAX_TARGETS) {
        why_printf(why, whylen, "a rule needs 1 to %d targets to notify", ALERT_MAX_TARGETS);
        return -1;
    }
    for (size_t i = 0; i < ntargets; i++) {
        alert_target_kind tk;
        const char *rest;
        if (alert_target_parse(targets[i], &tk, &rest, why, whylen)) {
            *index = (long)i;
            return -1;
        }
    }
    /* The targets are good: what the check still finds is about the value. */
    *key = "value";
    if (alert_rule_check((alert_kind)k, has_value, value, targets, ntargets, why, whylen))
        return -1;
    *key = "source";
    if (source && !source_name_ok(source)) {
        why_printf(why, whylen, "'%.80s' is not a source name like amazon.com", source);
        return -1;
    }
    *key = "book";
    if (book) {
        char reason[160];
        id_err e = id_parse(book, strlen(book), &out->book, reason, sizeof reason);
        if (e != ID_OK) {
            why_printf(why, whylen, "'%.80s' is not a book id: %s", book,
                       reason[0] ? reason : id_strerror(e));
            return -1;
        }
        out->has_book = 1;
    }
    *key = NULL;
    db_alert_rule *r = &out->rule;
    snprintf(r->kind, sizeof r->kind, "%s", alert_kind_name((alert_kind)k));
    r->has_value = has_value;
    r->value = has_value ? value : 0;
    if (source)
        snprintf(r->source, sizeof r->source, "%s", source);
    if (!(r->targets = calloc(ntargets, sizeof *r->targets))) {
        why_printf(why, whylen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < ntargets; i++) {
        if (!(r->targets[i] = strdup(targets[i]))) {
            why_printf(why, whylen, "out of memory");
            cli_rule_clear(out);
            return -1;
        }
        r->ntargets = i + 1;
    }
    return 0;
}

int cli_alerts_sync(const cli_settings *s, db *d)
{
    /* Without a config file the store's config rules are left as they are: a cron `refresh`
     * run without --config must not take away what `serve --config` set up. */
    if (!s->config)
        return CLI_OK;
    size_t n = s->nconfig_alerts;
    db_alert_rule *rules = n ? calloc(n, sizeof *rules) : NULL;
    if (n && !rules) {
        cli_error(s->cmd, "out of memory");
        return CLI_WORK;
    }
    int rc = CLI_OK;
    for (size_t i = 0; i < n && rc == CLI_OK; i++) {
        const cli_rule *cr = &s->config_alerts[i];
        rules[i] = cr->rule;
        rules[i].from_config = 1;
        if (!cr->has_book)
            continue;
        db_err r = db_book_resolve(d, &cr->book, rules[i].book_id);
        if (r == DB_NOTFOUND) {
            memcpy(rules[i].book_id, cr->book.id, sizeof rules[i].book_id);
            log_warn("config: alert rule %zu names %s, which is not tracked (yet); it applies "
                     "once the book is tracked under that id",
                     i, cr->book.id);
        } else if (r != DB_OK) {
            cli_error(s->cmd, "config alert rules: %s", db_errmsg(d));
            rc = CLI_WORK;
        }
    }
    if (rc == CLI_OK && db_alerts_sync_config(d, rules, n) != DB_OK) {
        cli_error(s->cmd, "cannot store the config file's alert rules: %s", db_errmsg(d));
        rc = CLI_WORK;
    }
    if (rc == CLI_OK && n)
        log_info("%zu alert rule(s) from the config file", n);
    free(rules);
    return rc;
}

static const char *nonempty(const char *v)
{
    return v && *v ? v : NULL;
}

int cli_notify_load(const cli_settings *s, cli_notify *out)
{
    const cli_command *c = s->cmd;
    memset(out, 0, sizeof *out);
    out->smtp_url = nonempty(cli_opt_text(s, OPT_SMTP));
    out->smtp_from = nonempty(cli_opt_text(s, OPT_SMTP_FROM));
    out->smtp_ca_file = nonempty(cli_opt_text(s, OPT_SMTP_CA_FILE));
    out->smtp_user = nonempty(getenv("BOOKRANK_SMTP_USER"));
    out->smtp_password = getenv("BOOKRANK_SMTP_PASSWORD");
    if (out->smtp_url && strncasecmp(out->smtp_url, "smtp://", 7) != 0 &&
        strncasecmp(out->smtp_url, "smtps://", 8) != 0)
        return cli_usage_error(c, "--smtp '%s' must be smtp://HOST:PORT or smtps://HOST:PORT",
                               out->smtp_url);
    if (out->smtp_from) {
        char target[600], why[160];
        alert_target_kind tk;
        const char *rest;
        if ((size_t)snprintf(target, sizeof target, "mailto:%s", out->smtp_from) >= sizeof target ||
            alert_target_parse(target, &tk, &rest, why, sizeof why) != 0)
            return cli_usage_error(c,
                                   "--smtp-from '%.200s' is not a mail address like "
                                   "bookrank@example.org",
                                   out->smtp_from);
    }
    if (out->smtp_url && !out->smtp_from)
        return cli_usage_error(c, "--smtp needs --smtp-from ADDRESS (the sender of alert mail)");
    if (out->smtp_ca_file && access(out->smtp_ca_file, R_OK) != 0)
        return cli_usage_error(c, "--smtp-ca-file %s cannot be read", out->smtp_ca_file);
    const char *secret = cli_opt_text(s, OPT_NOTIFY_SECRET);
    const char *path = cli_opt_text(s, OPT_NOTIFY_SECRET_FILE);
    if (secret && path)
        return cli_usage_error(c, "give --notify-secret or --notify-secret-file, not both");
    if (path)
        return cli_read_secret_file(c, "notify-secret-file", path, &out->secret);
    if (secret && *secret && !(out->secret = strdup(secret))) {
        cli_error(c, "out of memory");
        return CLI_WORK;
    }
    return CLI_OK;
}

void cli_notify_free(cli_notify *n)
{
    if (!n)
        return;
    free(n->secret);
    memset(n, 0, sizeof *n);
}

/* A test knob in ms (so that tests need not wait for the real retry schedule); 0: the default. */
static int64_t test_ms(const char *name)
{
    const char *v = getenv(name);
    char *end;
    long long ms = v && *v ? strtoll(v, &end, 10) : 0;
    return v && *v && !*end && ms > 0 && ms <= 86400000LL ? (int64_t)ms : 0;
}

notify_deliverer *cli_deliverer_start(const cli_command *c, const char *db_path,
                                      const cli_notify *n)
{
    notify_deliver_config dc = {
        .db_path = db_path,
        .notify = {.smtp_url = n->smtp_url,
                   .smtp_from = n->smtp_from,
                   .smtp_user = n->smtp_user,
                   .smtp_password = n->smtp_password,
                   .smtp_ca_file = n->smtp_ca_file,
                   .secret = n->secret},
        .retry_first_ms = test_ms("BOOKRANK_TEST_RETRY_MS"),
        .storm_ms = test_ms("BOOKRANK_TEST_STORM_MS"),
        .poll_ms = test_ms("BOOKRANK_TEST_POLL_MS"),
        .give_up_ms = test_ms("BOOKRANK_TEST_GIVE_UP_MS"),
    };
    char *err = NULL;
    notify_deliverer *dv = notify_deliverer_start(&dc, &err);
    if (!dv)
        cli_error(c, "cannot start alert delivery: %s", err ? err : "out of memory");
    free(err);
    return dv;
}
