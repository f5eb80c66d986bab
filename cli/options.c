/*
 * options.c - the option table (options.def), the environment and command-line layers, typed
 * access by option id, range checks, and the usage and error messages every command prints.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const cli_optdef cli_options[OPT_COUNT] = {
#define OPT(id, name, env, kind, lo, hi, cmds, arg, help)                                          \
    [OPT_##id] = {name, env, KIND_##kind, lo, hi, cmds, arg, help},
#include "options.def"
#undef OPT
};

/* ---- messages ------------------------------------------------------------------------------ */

static void vmessage(const cli_command *c, const char *fmt, va_list ap) BR_PRINTF(2, 0);
static void vmessage(const cli_command *c, const char *fmt, va_list ap)
{
    fprintf(stderr, "bookrank%s%s: ", c ? " " : "", c ? c->name : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_error(const cli_command *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(c, fmt, ap);
    va_end(ap);
}

int cli_usage_error(const cli_command *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(c, fmt, ap);
    va_end(ap);
    fprintf(stderr, "(try `bookrank %s%s--help`)\n", c ? c->name : "", c ? " " : "");
    return CLI_USAGE;
}

void cli_usage(FILE *f, const cli_command *c)
{
    fprintf(f, "usage: bookrank %s [options] %s\n  %s\n\noptions:\n", c->name, c->args, c->summary);
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const cli_optdef *o = &cli_options[i];
        if (!(o->cmds & c->id))
            continue;
        char left[64];
        if (snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "") < 0)
            left[0] = '\0';
        fprintf(f, "  %-28s %s%s%s%s\n", left, o->help, o->env ? "  [$" : "", o->env ? o->env : "",
                o->env ? "]" : "");
    }
    if (c->id & (CMD_SCRAPE | CMD_EXTRACT)) {
        fprintf(f, "\nsource presets:");
        for (const char *const *p = scr_preset_names; *p; p++)
            fprintf(f, " %s", *p);
        fprintf(f, "\n");
    }
}

/* ---- lookup -------------------------------------------------------------------------------- */

int cli_option_find(const char *name, size_t len)
{
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const char *o = cli_options[i].name;
        if (strlen(o) != len)
            continue;
        size_t k;
        for (k = 0; k < len; k++)
            if (!(o[k] == name[k] || (o[k] == '-' && name[k] == '_')))
                break;
        if (k == len)
            return (int)i;
    }
    return -1;
}

const char *cli_opt_text(const cli_settings *s, cli_opt id)
{
    return (unsigned)id < OPT_COUNT ? s->value[id] : NULL;
}

int cli_opt_flag(const cli_settings *s, cli_opt id)
{
    return cli_opt_text(s, id) != NULL;
}

long cli_opt_int(const cli_settings *s, cli_opt id, long def)
{
    const char *t = cli_opt_text(s, id);
    return t ? strtol(t, NULL, 10) : def;
}

double cli_opt_num(const cli_settings *s, cli_opt id, double def)
{
    const char *t = cli_opt_text(s, id);
    return t ? strtod(t, NULL) : def;
}

/* ---- layers -------------------------------------------------------------------------------- */

int cli_env_load(cli_settings *s)
{
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const cli_optdef *o = &cli_options[i];
        if (!o->env || !(o->cmds & s->cmd->id))
            continue;
        const char *v = getenv(o->env);
        if (!v || !*v)
            continue;
        if (o->kind == KIND_FLAG) {
            if (strcmp(v, "0") != 0 && strcmp(v, "false") != 0 && strcmp(v, "no") != 0)
                s->value[i] = "1";
            continue;
        }
        if (i == OPT_PUBLIC_URL) {
            free(s->env_public_urls);
            if (!(s->env_public_urls = strdup(v))) {
                cli_error(s->cmd, "out of memory");
                return CLI_WORK;
            }
            s->npublic_urls = 0;
            for (char *save = NULL, *tok = strtok_r(s->env_public_urls, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save)) {
                if (s->npublic_urls == CLI_MAX_PUBLIC_URLS)
                    return cli_usage_error(s->cmd, "%s names more than %d URLs", o->env,
                                           CLI_MAX_PUBLIC_URLS);
                s->public_urls[s->npublic_urls++] = tok;
            }
            continue;
        }
        if (i != OPT_SOURCE) {
            s->value[i] = v;
            continue;
        }
        free(s->env_sources);
        s->env_sources = strdup(v);
        if (!s->env_sources) {
            cli_error(s->cmd, "out of memory");
            return CLI_WORK;
        }
        s->nsources = 0;
        for (char *save = NULL, *tok = strtok_r(s->env_sources, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ' || *tok == '\t')
                tok++;
            for (size_t k = strlen(tok); k > 0 && (tok[k - 1] == ' ' || tok[k - 1] == '\t'); k--)
                tok[k - 1] = '\0';
            if (!*tok)
                continue;
            if (s->nsources == CLI_MAX_SOURCES)
                return cli_usage_error(s->cmd, "%s names more than %d sources", o->env,
                                       CLI_MAX_SOURCES);
            s->sources[s->nsources++] = tok;
        }
        /* A list of separators only is a mistake, not a request for the default source. */
        if (s->nsources == 0)
            return cli_usage_error(s->cmd, "%s='%s' names no source", o->env, v);
    }
    return CLI_OK;
}

int cli_args_parse(cli_settings *s, int argc, char **argv)
{
    const cli_command *c = s->cmd;
    const char *from_argv[CLI_MAX_SOURCES], *urls[CLI_MAX_PUBLIC_URLS];
    size_t ncli = 0, nurls = 0;
    s->ntags = 0;
    s->tags_given = 0;
    s->nnotify = 0;
    int only_args = 0;
    free(s->args);
    s->args = calloc((size_t)argc + 1, sizeof *s->args);
    s->nargs = 0;
    if (!s->args) {
        cli_error(c, "out of memory");
        return CLI_WORK;
    }
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        if (only_args || arg[0] != '-' || strcmp(arg, "-") == 0) {
            s->args[s->nargs++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_args = 1;
            continue;
        }
        if (arg[1] != '-') {
            if (arg[1] == 'h')
                return cli_usage_error(c, "use --help");
            return cli_usage_error(c, "unknown option %s", arg);
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int i = cli_option_find(name, len);
        if (i < 0 || !(cli_options[i].cmds & c->id))
            return cli_usage_error(c, "unknown option %s", arg);
        const char *val;
        if (cli_options[i].kind != KIND_FLAG) {
            if (eq)
                val = eq + 1;
            else if (a + 1 < argc)
                val = argv[++a];
            else
                return cli_usage_error(c, "option %s needs a value", arg);
        } else if (eq) {
            return cli_usage_error(c, "option %s takes no value", arg);
        } else {
            val = "1";
        }
        if (i == OPT_PUBLIC_URL) {
            if (nurls == CLI_MAX_PUBLIC_URLS)
                return cli_usage_error(c, "too many --public-url options (at most %d)",
                                       CLI_MAX_PUBLIC_URLS);
            urls[nurls++] = val;
        } else if (i == OPT_TAG) {
            s->tags_given = 1;
            if (!*val)
                continue;
            if (s->ntags == CLI_MAX_TAGS)
                return cli_usage_error(c, "too many --tag options (at most %d)", CLI_MAX_TAGS);
            s->tags[s->ntags++] = val;
        } else if (i == OPT_NOTIFY) {
            if (s->nnotify == CLI_MAX_TARGETS)
                return cli_usage_error(c, "too many --notify options (at most %d)",
                                       CLI_MAX_TARGETS);
            s->notify[s->nnotify++] = val;
        } else if (i == OPT_SOURCE) {
            s->history_source = val;
            if (ncli == CLI_MAX_SOURCES)
                return cli_usage_error(c, "too many --source options (at most %d)",
                                       CLI_MAX_SOURCES);
            from_argv[ncli++] = val;
        } else {
            s->value[i] = val;
        }
    }
    if (ncli) {
        memcpy(s->sources, from_argv, ncli * sizeof *from_argv);
        s->nsources = ncli;
    }
    if (nurls) {
        memcpy(s->public_urls, urls, nurls * sizeof *urls);
        s->npublic_urls = nurls;
    }
    return CLI_OK;
}

/* Checks one value against its option; prints why and returns -1 when it does not fit. */
static int check_value(const cli_command *c, const cli_optdef *o, const char *text)
{
    char *end;
    errno = 0;
    switch (o->kind) {
    case KIND_FLAG:
    case KIND_TEXT:
        return 0;
    case KIND_INT: {
        long v = strtol(text, &end, 10);
        if (errno || end == text || *end || v < (long)o->lo || v > (long)o->hi) {
            cli_error(c, "--%s must be a whole number from %ld to %ld, not '%s'", o->name,
                      (long)o->lo, (long)o->hi, text);
            return -1;
        }
        return 0;
    }
    case KIND_NUM:
    case KIND_RATE: {
        double v = strtod(text, &end);
        int zero_ok = o->kind == KIND_RATE && v == 0;
        if (errno || end == text || *end || !(zero_ok || (v >= o->lo && v <= o->hi))) {
            cli_error(c, "--%s must be %sa number from %g to %g, not '%s'", o->name,
                      o->kind == KIND_RATE ? "0 or " : "", o->lo, o->hi, text);
            return -1;
        }
        return 0;
    }
    }
    return 0;
}

int cli_settings_check(const cli_settings *s)
{
    for (size_t i = 0; i < OPT_COUNT; i++)
        if (s->value[i] && check_value(s->cmd, &cli_options[i], s->value[i]))
            return CLI_USAGE;
    return CLI_OK;
}

void cli_settings_reset(cli_settings *s)
{
    memset(s->value, 0, sizeof s->value);
    s->nsources = 0;
    s->npublic_urls = 0;
    s->history_source = NULL;
}
