/*
 * bookrank.c - the command line: parses options (command line > environment > config file >
 * defaults) and wires the modules together. No SQL, HTTP or regexes here.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/isbn.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "db/db.h"
#include "jobs/jobs.h"
#include "scraper/scraper.h"
#include "server/server.h"
#include "web/web.h"

enum { EXIT_WORK = 1, EXIT_USAGE = 2 };

enum cmd {
    CMD_SERVE = 1 << 0, CMD_REFRESH = 1 << 1, CMD_EXTRACT = 1 << 2, CMD_ADD = 1 << 3,
    CMD_REMOVE = 1 << 4, CMD_LIST = 1 << 5, CMD_HISTORY = 1 << 6,
};
#define CMD_DB (CMD_SERVE | CMD_REFRESH | CMD_ADD | CMD_REMOVE | CMD_LIST | CMD_HISTORY)
#define CMD_SCRAPE (CMD_SERVE | CMD_REFRESH)

/* Every option: its name (also the config file key, with '-' or '_'), its environment variable,
 * the commands that take it, and its help. */
typedef struct optdef {
    const char *name;
    const char *env;
    int has_arg;
    unsigned cmds;
    const char *arg, *help;
} optdef;

static const optdef options[] = {
    {"db", "BOOKRANK_DB", 1, CMD_DB, "FILE", "SQLite database (default bookrank.db)"},
    {"config", "BOOKRANK_CONFIG", 1, ~0u, "FILE", "JSON config file (keys = option names)"},
    {"log-level", "BOOKRANK_LOG_LEVEL", 1, ~0u, "LEVEL", "debug, info, warn, error (default info)"},
    {"listen", "BOOKRANK_LISTEN", 1, CMD_SERVE, "ADDR:PORT", "listen address (default 127.0.0.1:8080)"},
    {"token", "BOOKRANK_TOKEN", 1, CMD_SERVE, "TOKEN", "require Authorization: Bearer TOKEN to change anything"},
    {"refresh-every", "BOOKRANK_REFRESH_EVERY", 1, CMD_SERVE, "DURATION", "refresh all books on a timer (30m, 6h, 1d; default off)"},
    {"threads", "BOOKRANK_THREADS", 1, CMD_SERVE, "N", "HTTP request threads (default: cores)"},
    {"grace", "BOOKRANK_GRACE", 1, CMD_SERVE | CMD_REFRESH, "SECONDS", "on shutdown, how long in-flight fetches may finish (default 10)"},
    {"source", "BOOKRANK_SOURCE", 1, CMD_SCRAPE | CMD_EXTRACT | CMD_HISTORY, "NAME[=URL]", "source preset, optionally at another URL template (repeatable)"},
    {"workers", "BOOKRANK_WORKERS", 1, CMD_SCRAPE, "N", "fetch threads (default 8)"},
    {"per-host", "BOOKRANK_PER_HOST", 1, CMD_SCRAPE, "N", "concurrent requests to one host (default 2)"},
    {"rate", "BOOKRANK_RATE", 1, CMD_SCRAPE, "R", "requests per second per host (default 1; 0 = unlimited)"},
    {"timeout", "BOOKRANK_TIMEOUT", 1, CMD_SCRAPE, "SECONDS", "per attempt (default 30)"},
    {"retries", "BOOKRANK_RETRIES", 1, CMD_SCRAPE, "N", "retries after the first attempt (default 2)"},
    {"cooldown", "BOOKRANK_COOLDOWN", 1, CMD_SCRAPE, "SECONDS", "pause a host after it blocks us (default 60; 0 = none)"},
    {"user-agent", "BOOKRANK_USER_AGENT", 1, CMD_SCRAPE, "STRING", "User-Agent header"},
    {"proxy", "BOOKRANK_PROXY", 1, CMD_SCRAPE, "URL", "HTTP(S) proxy"},
    {"json", NULL, 0, CMD_REFRESH | CMD_LIST | CMD_HISTORY, NULL, "print JSON"},
    {"csv", NULL, 0, CMD_HISTORY, NULL, "print CSV"},
    {"since", NULL, 1, CMD_HISTORY, "TIME", "only observations at or after (ISO 8601)"},
    {"limit", NULL, 1, CMD_HISTORY, "N", "at most N observations (default 500)"},
    {"status", NULL, 1, CMD_LIST, "STATUS", "only books whose latest status is STATUS"},
    {"help", NULL, 0, ~0u, NULL, "this help"},
};
#define NOPTIONS (sizeof options / sizeof options[0])
#define MAX_SOURCES 16

/* Option values as text, layered; index = position in options[]. Sources are a list. */
typedef struct settings {
    const char *value[NOPTIONS];
    const char *sources[MAX_SOURCES];
    size_t nsources;
    const char *history_source;   /* history's --source filter: command line only */
    json_t *config;               /* owned: the parsed config file (values point into it) */
    char *env_sources;            /* owned: copy of BOOKRANK_SOURCE split in place */
} settings;

static const struct command {
    const char *name;
    enum cmd id;
    const char *args, *summary;
} commands[] = {
    {"serve", CMD_SERVE, "", "run the HTTP service (API + dashboard)"},
    {"refresh", CMD_REFRESH, "[ISBN...]", "fetch ranks now for the given books (tracking them) or all tracked books"},
    {"extract", CMD_EXTRACT, "FILE|-", "run a source's rules on a saved page and print what they read"},
    {"add", CMD_ADD, "ISBN...", "track books"},
    {"remove", CMD_REMOVE, "ISBN...", "stop tracking books and drop their history"},
    {"list", CMD_LIST, "", "tracked books with their latest ranks"},
    {"history", CMD_HISTORY, "ISBN", "observations of one book, newest first"},
};

static int find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const char *o = options[i].name;
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

static const char *opt(const settings *s, const char *name)
{
    return s->value[find_option(name, strlen(name))];
}

static void usage(FILE *f, const struct command *c)
{
    if (!c) {
        fprintf(f, "usage: bookrank COMMAND [options]\n\ncommands:\n");
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            fprintf(f, "  %-8s %-10s %s\n", commands[i].name, commands[i].args, commands[i].summary);
        fprintf(f, "\n`bookrank COMMAND --help` shows a command's options; `bookrank --version`.\n"
                   "Options are also read from BOOKRANK_* environment variables and --config FILE.\n");
        return;
    }
    fprintf(f, "usage: bookrank %s [options] %s\n  %s\n\noptions:\n", c->name, c->args, c->summary);
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (!(options[i].cmds & c->id))
            continue;
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", options[i].name, options[i].has_arg ? " " : "",
                 options[i].has_arg ? options[i].arg : "");
        fprintf(f, "  %-28s %s%s%s%s\n", left, options[i].help, options[i].env ? "  [$" : "",
                options[i].env ? options[i].env : "", options[i].env ? "]" : "");
    }
    if (c->id & CMD_SCRAPE || c->id == CMD_EXTRACT) {
        fprintf(f, "\nsource presets:");
        for (const char *const *p = scr_preset_names; *p; p++)
            fprintf(f, " %s", *p);
        fprintf(f, "\n");
    }
}

static int usage_error(const struct command *c, const char *fmt, const char *arg)
{
    fprintf(stderr, "bookrank%s%s: ", c ? " " : "", c ? c->name : "");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(try `bookrank %s%s--help`)\n", c ? c->name : "", c ? " " : "");
    return EXIT_USAGE;
}

/* ---- settings layers ---------------------------------------------------------------------- */

static int load_config(settings *s, const char *path, const struct command *c)
{
    json_error_t jerr;
    s->config = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!s->config) {
        fprintf(stderr, "bookrank: config %s: line %d: %s\n", path, jerr.line, jerr.text);
        return EXIT_USAGE;
    }
    if (!json_is_object(s->config)) {
        fprintf(stderr, "bookrank: config %s: must be a JSON object\n", path);
        return EXIT_USAGE;
    }
    const char *key;
    json_t *val;
    json_object_foreach(s->config, key, val) {
        if (strcmp(key, "sources") == 0)
            continue;           /* custom sources, read when sources are built */
        int i = find_option(key, strlen(key));
        if (i < 0 || !options[i].has_arg || strcmp(key, "config") == 0) {
            fprintf(stderr, "bookrank: config %s: unknown key \"%s\"\n", path, key);
            return EXIT_USAGE;
        }
        if (!(options[i].cmds & c->id))
            continue;
        if (strcmp(options[i].name, "source") == 0) {
            json_t *list = json_is_array(val) ? val : NULL;
            s->nsources = 0;
            if (json_is_string(val)) {
                s->sources[s->nsources++] = json_string_value(val);
                continue;
            }
            size_t k;
            json_t *item;
            json_array_foreach(list, k, item) {
                if (!json_is_string(item) || s->nsources == MAX_SOURCES) {
                    fprintf(stderr, "bookrank: config %s: \"source\" must be strings (at most %d)\n",
                            path, MAX_SOURCES);
                    return EXIT_USAGE;
                }
                s->sources[s->nsources++] = json_string_value(item);
            }
            continue;
        }
        if (json_is_string(val)) {
            s->value[i] = json_string_value(val);
        } else if (json_is_number(val) || json_is_boolean(val)) {
            /* Keep numbers as text so one parser validates every layer. */
            char *text = json_dumps(val, JSON_ENCODE_ANY);
            json_t *str = json_string(text ? text : "");
            free(text);
            json_object_set_new(s->config, key, str);
            s->value[i] = json_string_value(json_object_get(s->config, key));
        } else {
            fprintf(stderr, "bookrank: config %s: \"%s\" must be a string or number\n", path, key);
            return EXIT_USAGE;
        }
    }
    return 0;
}

static void load_env(settings *s, const struct command *c)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (!options[i].env || !(options[i].cmds & c->id))
            continue;
        const char *v = getenv(options[i].env);
        if (!v || !*v)
            continue;
        if (strcmp(options[i].name, "source") == 0) {
            free(s->env_sources);
            s->env_sources = strdup(v);
            s->nsources = 0;
            for (char *save = NULL, *tok = strtok_r(s->env_sources, ",", &save);
                 tok && s->nsources < MAX_SOURCES; tok = strtok_r(NULL, ",", &save))
                s->sources[s->nsources++] = tok;
        } else {
            s->value[i] = v;
        }
    }
}

/* Parses argv after the command; positional arguments are collected into args. */
static int parse_args(settings *s, const struct command *c, int argc, char **argv,
                      const char ***args, size_t *nargs)
{
    const char *cli_sources[MAX_SOURCES];
    size_t ncli = 0;
    int only_args = 0;
    *args = calloc((size_t)argc + 1, sizeof **args);
    *nargs = 0;
    if (!*args)
        return EXIT_WORK;
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        if (only_args || arg[0] != '-' || strcmp(arg, "-") == 0) {
            (*args)[(*nargs)++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_args = 1;
            continue;
        }
        if (arg[1] != '-')
            return usage_error(c, arg[1] == 'h' ? "use --help" : "unknown option %s", arg);
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int i = find_option(name, len);
        if (i < 0 || !(options[i].cmds & c->id))
            return usage_error(c, "unknown option %s", arg);
        const char *val = NULL;
        if (options[i].has_arg) {
            if (eq)
                val = eq + 1;
            else if (a + 1 < argc)
                val = argv[++a];
            else
                return usage_error(c, "option %s needs a value", arg);
        } else if (eq) {
            return usage_error(c, "option %s takes no value", arg);
        } else {
            val = "1";
        }
        if (strcmp(options[i].name, "source") == 0) {
            s->history_source = val;
            if (ncli == MAX_SOURCES)
                return usage_error(c, "too many --source options (at most %s)", "16");
            cli_sources[ncli++] = val;
        } else {
            s->value[i] = val;
        }
    }
    if (ncli) {
        memcpy(s->sources, cli_sources, ncli * sizeof *cli_sources);
        s->nsources = ncli;
    }
    return 0;
}

static int parse_int(const struct command *c, const char *name, const char *text, long lo, long hi,
                     long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi) {
        fprintf(stderr, "bookrank %s: --%s must be a whole number from %ld to %ld, not '%s'\n",
                c->name, name, lo, hi, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_num(const struct command *c, const char *name, const char *text, double lo,
                     double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "bookrank %s: --%s must be a number from %g to %g, not '%s'\n", c->name,
                name, lo, hi, text);
        return -1;
    }
    *out = v;
    return 0;
}

/* ---- sources ------------------------------------------------------------------------------ */

typedef struct source_set {
    scr_source *list[MAX_SOURCES];
    const char *names[MAX_SOURCES];
    size_t n;
} source_set;

static void sources_free(source_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        scr_source_free(set->list[i]);
    set->n = 0;
}

static const char *json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Builds the sources named by --source (default amazon.com), custom ones from the config. */
static int sources_build(const settings *s, const struct command *c, source_set *set)
{
    static const char *const fallback[] = {"amazon.com"};
    const char *const *names = s->nsources ? s->sources : fallback;
    size_t n = s->nsources ? s->nsources : 1;
    json_t *custom = s->config ? json_object_get(s->config, "sources") : NULL;

    set->n = 0;
    for (size_t i = 0; i < n; i++) {
        char name[128];
        const char *eq = strchr(names[i], '=');
        size_t len = eq ? (size_t)(eq - names[i]) : strlen(names[i]);
        if (len == 0 || len >= sizeof name) {
            fprintf(stderr, "bookrank %s: --source '%s' is not NAME or NAME=URL\n", c->name, names[i]);
            return -1;
        }
        memcpy(name, names[i], len);
        name[len] = '\0';
        for (size_t k = 0; k < set->n; k++)
            if (strcmp(set->names[k], name) == 0) {
                fprintf(stderr, "bookrank %s: source %s given twice\n", c->name, name);
                return -1;
            }
        char *err = NULL;
        scr_source *src = NULL;
        json_t *rules = NULL;
        size_t k;
        json_t *item;
        json_array_foreach(custom, k, item)
            if (json_is_object(item) && json_str(item, "name") && strcmp(json_str(item, "name"), name) == 0)
                rules = item;
        if (rules) {
            scr_rules r = {
                .name = name,
                .url_template = eq ? eq + 1 : json_str(rules, "url"),
                .base = json_str(rules, "base"),
                .block_start = json_str(rules, "block_start"),
                .rank = json_str(rules, "rank"),
                .title = json_str(rules, "title"),
                .blocked = json_str(rules, "blocked"),
                .not_found = json_str(rules, "not_found"),
            };
            src = scr_source_new_custom(&r, &err);
        } else {
            src = scr_source_new_preset(name, eq ? eq + 1 : NULL, &err);
        }
        if (!src) {
            fprintf(stderr, "bookrank %s: source %s: %s\n", c->name, name, err ? err : "invalid");
            free(err);
            return -1;
        }
        set->list[set->n] = src;
        set->names[set->n] = scr_source_name(src);
        set->n++;
    }
    return 0;
}

static int scraper_config(const settings *s, const struct command *c, scr_config *cfg)
{
    long v;
    double d;
    scr_config_defaults(cfg);
    const char *t;
    if ((t = opt(s, "workers"))) {
        if (parse_int(c, "workers", t, 1, 1024, &v)) return -1;
        cfg->workers = (int)v;
    }
    if ((t = opt(s, "per-host"))) {
        if (parse_int(c, "per-host", t, 1, 1024, &v)) return -1;
        cfg->per_host = (int)v;
    }
    if ((t = opt(s, "rate"))) {
        if (parse_num(c, "rate", t, 0, 1e6, &d)) return -1;
        cfg->rate = d;
    }
    if ((t = opt(s, "timeout"))) {
        if (parse_num(c, "timeout", t, 0.1, 3600, &d)) return -1;
        cfg->timeout_s = d;
    }
    if ((t = opt(s, "retries"))) {
        if (parse_int(c, "retries", t, 0, 20, &v)) return -1;
        cfg->retries = (int)v;
    }
    if ((t = opt(s, "cooldown"))) {
        if (parse_num(c, "cooldown", t, 0, 86400, &d)) return -1;
        cfg->cooldown_s = d;
    }
    cfg->user_agent = opt(s, "user-agent");
    cfg->proxy = opt(s, "proxy");
    return 0;
}

static const char *db_path(const settings *s)
{
    const char *p = opt(s, "db");
    return p && *p ? p : "bookrank.db";
}

static db *open_db(const settings *s, int readonly)
{
    char *err = NULL;
    db *d = readonly ? db_open_readonly(db_path(s), &err) : db_open(db_path(s), &err);
    if (!d) {
        fprintf(stderr, "bookrank: %s\n", err ? err : "cannot open the database");
        free(err);
    }
    return d;
}

/* Parses ISBN arguments; every bad one is reported; returns a malloc'd array or NULL. */
static isbn *parse_isbns(const struct command *c, const char **args, size_t n, int *bad)
{
    isbn *out = calloc(n ? n : 1, sizeof *out);
    *bad = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char why[160];
        if (isbn_parse_explain(args[i], strlen(args[i]), &out[i], why, sizeof why) != ISBN_OK) {
            fprintf(stderr, "bookrank %s: invalid ISBN '%s': %s\n", c->name, args[i], why);
            (*bad)++;
        }
    }
    return out;
}

/* ---- commands ----------------------------------------------------------------------------- */

/* The ISBN arguments of add/remove/refresh, all valid, or an exit status (nothing is done when
 * any is invalid). */
static int isbn_args(const struct command *c, const char **args, size_t n, int need_one,
                     isbn **out)
{
    *out = NULL;
    if (need_one && n == 0)
        return usage_error(c, "%s", "give at least one ISBN");
    int bad;
    isbn *books = parse_isbns(c, args, n, &bad);
    if (!books)
        return EXIT_WORK;
    if (bad) {
        fprintf(stderr, "bookrank %s: nothing done (%d invalid)\n", c->name, bad);
        free(books);
        return EXIT_USAGE;
    }
    *out = books;
    return 0;
}

static int cmd_add(const settings *s, const struct command *c, const char **args, size_t n)
{
    isbn *books;
    int rc = isbn_args(c, args, n, 1, &books);
    if (rc)
        return rc;
    db *d = open_db(s, 0);
    int *added = calloc(n, sizeof *added);
    rc = EXIT_WORK;
    if (d && added && db_books_add(d, books, n, added) == DB_OK) {
        for (size_t i = 0; i < n; i++)
            printf("%s %s\n", added[i] ? "added" : "already tracked", books[i].isbn13);
        rc = 0;
    } else if (d) {
        fprintf(stderr, "bookrank add: %s\n", db_errmsg(d));
    }
    free(added);
    free(books);
    db_close(d);
    return rc;
}

static int cmd_remove(const settings *s, const struct command *c, const char **args, size_t n)
{
    isbn *books;
    int rc = isbn_args(c, args, n, 1, &books);
    if (rc)
        return rc;
    db *d = open_db(s, 0);
    rc = d ? 0 : EXIT_WORK;
    for (size_t i = 0; d && i < n; i++) {
        int r = db_book_remove(d, books[i].isbn13);
        if (r == DB_OK) {
            printf("removed %s\n", books[i].isbn13);
        } else if (r == DB_NOTFOUND) {
            fprintf(stderr, "bookrank remove: %s is not tracked\n", books[i].isbn13);
            rc = EXIT_WORK;
        } else {
            fprintf(stderr, "bookrank remove: %s\n", db_errmsg(d));
            rc = EXIT_WORK;
            break;
        }
    }
    free(books);
    db_close(d);
    return rc;
}

static int print_json(json_t *value)
{
    if (!value)
        return EXIT_WORK;
    int rc = json_dumpf(value, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    json_decref(value);
    fputc('\n', stdout);
    return rc ? EXIT_WORK : 0;
}

static void format_rank(int64_t rank, char *out, size_t len)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)rank);
    size_t k = 0;
    if (len < 2)
        return;
    out[k++] = '#';
    for (int i = 0; i < n && k + 2 < len; i++) {
        if (i && (n - i) % 3 == 0)
            out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = '\0';
}

static int cmd_list(const settings *s, const struct command *c, const char **args, size_t n)
{
    (void)args;
    if (n)
        return usage_error(c, "unexpected argument '%s'", args[0]);
    const char *status = opt(s, "status");
    if (status && obs_status_parse(status) < 0)
        return usage_error(c, "unknown status '%s' (ok, no_rank, not_found, blocked, error)", status);
    db *d = open_db(s, 0);
    if (!d)
        return EXIT_WORK;
    db_book *books = NULL;
    size_t nb = 0;
    db_book_filter filter = {.status = status};
    int rc = 0;
    if (db_books_list(d, &filter, &books, &nb) != DB_OK) {
        fprintf(stderr, "bookrank list: %s\n", db_errmsg(d));
        rc = EXIT_WORK;
    } else if (opt(s, "json")) {
        json_t *arr = json_array();
        for (size_t i = 0; i < nb; i++)
            json_array_append_new(arr, web_json_book(&books[i]));
        rc = print_json(arr);
    } else {
        for (size_t i = 0; i < nb; i++) {
            printf("%s  %s\n", books[i].isbn13, books[i].title ? books[i].title : "(title not seen yet)");
            for (size_t k = 0; k < books[i].nlatest; k++) {
                const observation *o = &books[i].latest[k];
                char rank[48] = "-", when[32];
                if (o->rank >= 0)
                    format_rank(o->rank, rank, sizeof rank);
                time_format_iso(o->fetched_at_ms, when, sizeof when);
                printf("    %-14s %-10s %-12s %s  %s\n", o->source, obs_status_name(o->status), rank,
                       o->rank_category ? o->rank_category : "", when);
            }
        }
    }
    db_books_free(books, nb);
    db_close(d);
    return rc;
}

static int print_csv_row(void *ctx, const observation *o)
{
    buf *b = ctx;
    buf_reset(b);
    if (web_csv_row(b, o))
        return -1;
    fwrite(b->data, 1, b->len, stdout);
    return 0;
}

static int cmd_history(const settings *s, const struct command *c, const char **args, size_t n)
{
    if (n != 1)
        return usage_error(c, "%s", "give exactly one ISBN");
    isbn book;
    char why[160];
    if (isbn_parse_explain(args[0], strlen(args[0]), &book, why, sizeof why) != ISBN_OK) {
        fprintf(stderr, "bookrank history: invalid ISBN '%s': %s\n", args[0], why);
        return EXIT_USAGE;
    }
    db_history_query q = {.source = s->history_source};
    if (q.source && strchr(q.source, '='))
        return usage_error(c, "--source takes a source name here, not NAME=URL ('%s')", q.source);
    long limit;
    if (opt(s, "limit")) {
        if (parse_int(c, "limit", opt(s, "limit"), 1, 1000000, &limit))
            return EXIT_USAGE;
        q.limit = (int)limit;
    }
    if (opt(s, "since") && time_parse_iso(opt(s, "since"), &q.since_ms))
        return usage_error(c, "--since '%s' is not an ISO 8601 time", opt(s, "since"));
    if (opt(s, "json") && opt(s, "csv"))
        return usage_error(c, "%s", "--json and --csv exclude each other");
    db *d = open_db(s, 0);
    if (!d)
        return EXIT_WORK;
    int rc = 0;
    observation *obs = NULL;
    size_t nobs = 0;
    int found = db_history(d, book.isbn13, &q, &obs, &nobs);
    if (found == DB_NOTFOUND) {
        fprintf(stderr, "bookrank history: %s is not tracked\n", book.isbn13);
        rc = EXIT_WORK;
    } else if (found != DB_OK) {
        fprintf(stderr, "bookrank history: %s\n", db_errmsg(d));
        rc = EXIT_WORK;
    } else if (opt(s, "json")) {
        json_t *arr = json_array();
        for (size_t i = 0; i < nobs; i++)
            json_array_append_new(arr, web_json_observation(&obs[i]));
        rc = print_json(json_pack("{s:s, s:o}", "isbn13", book.isbn13, "observations", arr));
    } else if (opt(s, "csv")) {
        buf line;
        buf_init(&line, 1 << 20);
        web_csv_header(&line);
        fwrite(line.data, 1, line.len, stdout);
        for (size_t i = 0; i < nobs; i++)
            print_csv_row(&line, &obs[i]);
        buf_free(&line);
    } else {
        for (size_t i = 0; i < nobs; i++) {
            char when[32], rank[48] = "-";
            time_format_iso(obs[i].fetched_at_ms, when, sizeof when);
            if (obs[i].rank >= 0)
                format_rank(obs[i].rank, rank, sizeof rank);
            printf("%s  %-14s %-10s %-12s %s%s%s\n", when, obs[i].source, obs_status_name(obs[i].status),
                   rank, obs[i].rank_category ? obs[i].rank_category : "",
                   obs[i].error ? "  " : "", obs[i].error ? obs[i].error : "");
        }
    }
    db_observations_free(obs, nobs);
    db_close(d);
    return rc;
}

static int read_all(FILE *f, buf *out)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(out, chunk, n))
            return -1;
    return ferror(f) ? -1 : 0;
}

static int cmd_extract(const settings *s, const struct command *c, const char **args, size_t n)
{
    if (n != 1)
        return usage_error(c, "%s", "give one FILE (or - for standard input)");
    if (s->nsources > 1)
        return usage_error(c, "%s", "give one --source");
    source_set set = {0};
    if (sources_build(s, c, &set))
        return EXIT_USAGE;
    FILE *f = strcmp(args[0], "-") == 0 ? stdin : fopen(args[0], "rb");
    if (!f) {
        fprintf(stderr, "bookrank extract: %s: %s\n", args[0], strerror(errno));
        sources_free(&set);
        return EXIT_USAGE;
    }
    buf page;
    buf_init(&page, SCR_MAX_PAGE + 1);
    int rc = 0;
    if (read_all(f, &page)) {
        fprintf(stderr, "bookrank extract: %s: %s\n", args[0],
                page.len >= SCR_MAX_PAGE ? "larger than 8 MiB" : "read error");
        rc = EXIT_USAGE;
    } else {
        observation o;
        obs_init(&o);
        if (scr_extract(set.list[0], 0, page.data ? page.data : "", page.len, &o)) {
            fprintf(stderr, "bookrank extract: out of memory\n");
            rc = EXIT_WORK;
        } else {
            json_t *cats = json_array();
            for (size_t i = 0; i < o.ncategories; i++)
                json_array_append_new(cats, json_pack("{s:I, s:s?}", "rank", (json_int_t)o.categories[i].rank,
                                                      "category", o.categories[i].category));
            rc = print_json(json_pack("{s:s, s:o, s:s?, s:o, s:s?, s:s?}", "status",
                                      obs_status_name(o.status), "rank",
                                      o.rank >= 0 ? json_integer(o.rank) : json_null(), "rank_category",
                                      o.rank_category, "categories", cats, "title", o.title, "error",
                                      o.error));
        }
        obs_clear(&o);
    }
    if (f != stdin)
        fclose(f);
    buf_free(&page);
    sources_free(&set);
    return rc;
}

/* ---- refresh ------------------------------------------------------------------------------ */

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

static void install_stop_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

typedef struct refresh_out {
    int json;
    int tty;
    int64_t total;
    int64_t seen;      /* observer thread only */
    json_t *results;   /* --json: observer thread only until the job ends */
} refresh_out;

static void refresh_observer(void *ctx, int64_t job_id, const observation *o)
{
    refresh_out *out = ctx;
    (void)job_id;
    out->seen++;
    if (out->json) {
        json_t *item = web_json_observation(o);
        json_object_set_new(item, "isbn13", json_string(o->isbn13));
        json_array_append_new(out->results, item);
    } else {
        if (out->tty)
            fputs("\r\033[K", stderr);
        const char *title = o->title ? o->title : "?";
        if (o->status == OBS_OK) {
            char rank[48];
            format_rank(o->rank, rank, sizeof rank);
            printf("- '%s' (%s) ranked %s on %s\n", title, o->isbn13, rank, o->source);
        } else {
            printf("- '%s' (%s) %s on %s%s%s\n", title, o->isbn13, obs_status_name(o->status),
                   o->source, o->error ? ": " : "", o->error ? o->error : "");
        }
        fflush(stdout);
    }
    if (out->tty) {
        int width = 30, filled = out->total ? (int)(out->seen * width / out->total) : width;
        fprintf(stderr, "\r[%.*s%*s] %lld/%lld", filled, "##############################",
                width - filled, "", (long long)out->seen, (long long)out->total);
    }
}

static int cmd_refresh(const settings *s, const struct command *c, const char **args, size_t n)
{
    isbn *books;
    int irc = isbn_args(c, args, n, 0, &books);
    if (irc)
        return irc;
    source_set set = {0};
    jobs_config jc = {.db_path = db_path(s), .flush_ms = 1000};
    long grace = 10;
    if (scraper_config(s, c, &jc.scraper) || sources_build(s, c, &set) ||
        (opt(s, "grace") && parse_int(c, "grace", opt(s, "grace"), 0, 3600, &grace))) {
        sources_free(&set);
        free(books);
        return EXIT_USAGE;
    }
    int rc = EXIT_WORK;
    jobs *runner = NULL;
    db *d = open_db(s, 0);
    if (!d)
        goto done;
    if (n && db_books_add(d, books, n, NULL) != DB_OK) {
        fprintf(stderr, "bookrank refresh: %s\n", db_errmsg(d));
        goto done;
    }
    refresh_out out = {.json = opt(s, "json") != NULL, .tty = isatty(STDERR_FILENO) && !opt(s, "json")};
    if (out.json)
        out.results = json_array();
    jc.sources = (const scr_source *const *)set.list;
    jc.nsources = set.n;
    jc.observer = refresh_observer;
    jc.observer_ctx = &out;
    char *err = NULL;
    install_stop_handlers();
    double started = time_mono_s();
    runner = jobs_start(&jc, &err);
    if (!runner) {
        fprintf(stderr, "bookrank refresh: %s\n", err ? err : "cannot start");
        free(err);
        json_decref(out.results);
        goto done;
    }
    db_job job;
    int joined;
    char why[256];
    jobs_err jrc = jobs_refresh(runner, n ? books : NULL, n, &job, &joined, why, sizeof why);
    if (jrc != JOBS_OK) {
        fprintf(stderr, "bookrank refresh: %s\n", why[0] ? why : jobs_strerror(jrc));
        json_decref(out.results);
        goto done;
    }
    out.total = job.total;
    while (!jobs_wait(runner, job.id, 200))
        if (stop_signal)
            break;
    jobs_stop(runner, stop_signal ? (int)grace * 1000 : 0);
    runner = NULL;
    if (out.tty)
        fputs("\r\033[K", stderr);
    if (db_job_get(d, job.id, &job) != DB_OK) {
        fprintf(stderr, "bookrank refresh: %s\n", db_errmsg(d));
        json_decref(out.results);
        goto done;
    }
    double wall = time_mono_s() - started;
    if (out.json) {
        rc = print_json(json_pack("{s:o, s:o, s:f}", "job", web_json_job(&job), "results",
                                  out.results, "wall_seconds", wall));
        if (rc)
            goto done;
    } else {
        printf("%lld of %lld fetched in %.1f s: %lld ok, %lld no_rank, %lld not_found, %lld blocked, "
               "%lld error%s\n",
               (long long)job.done, (long long)job.total, wall, (long long)job.counts[OBS_OK],
               (long long)job.counts[OBS_NO_RANK], (long long)job.counts[OBS_NOT_FOUND],
               (long long)job.counts[OBS_BLOCKED], (long long)job.counts[OBS_ERROR],
               job.state == JOB_CANCELLED ? " (interrupted)" : "");
    }
    rc = (job.counts[OBS_BLOCKED] || job.counts[OBS_ERROR] || job.state != JOB_DONE) ? EXIT_WORK : 0;
done:
    jobs_stop(runner, 0);
    db_close(d);
    sources_free(&set);
    free(books);
    return rc;
}

/* ---- serve -------------------------------------------------------------------------------- */

static int cmd_serve(const settings *s, const struct command *c, const char **args, size_t n)
{
    if (n)
        return usage_error(c, "unexpected argument '%s'", args[0]);
    source_set set = {0};
    jobs_config jc = {.db_path = db_path(s), .flush_ms = 1000};
    srv_config sc = {.listen = opt(s, "listen") ? opt(s, "listen") : "127.0.0.1:8080",
                     .db_path = db_path(s), .token = opt(s, "token")};
    long grace = 10, threads = 0;
    int64_t every = 0;
    if (scraper_config(s, c, &jc.scraper) || sources_build(s, c, &set) ||
        (opt(s, "grace") && parse_int(c, "grace", opt(s, "grace"), 0, 3600, &grace)) ||
        (opt(s, "threads") && parse_int(c, "threads", opt(s, "threads"), 1, 256, &threads))) {
        sources_free(&set);
        return EXIT_USAGE;
    }
    if (opt(s, "refresh-every") && *opt(s, "refresh-every") &&
        strcmp(opt(s, "refresh-every"), "off") != 0 &&
        time_parse_duration(opt(s, "refresh-every"), &every)) {
        sources_free(&set);
        return usage_error(c, "--refresh-every '%s' is not a duration like 30m, 6h or 1d",
                           opt(s, "refresh-every"));
    }
    /* Each connection and each worker's socket is a descriptor: use what the system allows. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max > 65536 ? 65536 : nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    char *lerr = NULL;
    if (srv_listen_check(sc.listen, &lerr)) {
        int urc = usage_error(c, "%s", lerr ? lerr : "bad --listen");
        free(lerr);
        sources_free(&set);
        return urc;
    }
    sc.threads = (int)threads;
    sc.source_names = set.names;
    sc.nsources = set.n;
    jc.sources = (const scr_source *const *)set.list;
    jc.nsources = set.n;

    /* Signals are taken synchronously by this thread; every other thread blocks them. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char *err = NULL;
    int rc = EXIT_WORK;
    srv *server = NULL;
    jobs *runner = jobs_start(&jc, &err);
    if (!runner)
        goto fail;
    server = srv_start(&sc, runner, &err);
    if (!server)
        goto fail;
    /* Always printed (whatever the log level): scripts and tests wait for this line. */
    fprintf(stderr, "listening on http://%.*s:%d\n",
            (int)(strrchr(sc.listen, ':') ? strrchr(sc.listen, ':') - sc.listen : 0), sc.listen,
            srv_port(server));
    log_info("database %s, %zu source(s)%s", sc.db_path, set.n,
             sc.token && *sc.token ? ", token required for changes" : "");
    if (every)
        log_info("refreshing all books every %lld s", (long long)every);

    int64_t next_refresh = every ? time_mono_ms() + every * 1000 : 0;
    for (;;) {
        struct timespec wait = {1, 0};
        if (every) {
            int64_t left = next_refresh - time_mono_ms();
            if (left < 0)
                left = 0;
            wait.tv_sec = left / 1000;
            wait.tv_nsec = (left % 1000) * 1000000;
        }
        int sig = sigtimedwait(&stop_set, NULL, &wait);
        if (sig == SIGINT || sig == SIGTERM) {
            log_info("%s: stopping (grace %ld s)", sig == SIGINT ? "SIGINT" : "SIGTERM", grace);
            break;
        }
        if (every && time_mono_ms() >= next_refresh) {
            db_job job;
            int joined;
            char why[256];
            jobs_err jrc = jobs_refresh(runner, NULL, 0, &job, &joined, why, sizeof why);
            if (jrc == JOBS_OK)
                log_info("scheduled refresh: job %lld%s", (long long)job.id,
                         joined ? " (already running)" : "");
            else
                log_error("scheduled refresh: %s", why[0] ? why : jobs_strerror(jrc));
            next_refresh = time_mono_ms() + every * 1000;
        }
    }
    srv_stop(server);
    jobs_stop(runner, (int)grace * 1000);
    sources_free(&set);
    log_info("stopped");
    return 0;
fail:
    fprintf(stderr, "bookrank serve: %s\n", err ? err : "cannot start");
    free(err);
    srv_stop(server);
    jobs_stop(runner, 0);
    sources_free(&set);
    return rc;
}

/* ---- main --------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr, NULL);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("bookrank %s\n", BOOKRANK_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout, NULL);
        return 0;
    }
    const struct command *c = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            c = &commands[i];
    if (!c)
        return usage_error(NULL, "unknown command '%s'", argv[1]);

    settings s;
    memset(&s, 0, sizeof s);
    const char **args = NULL;
    size_t nargs = 0;
    int rc;

    /* The command line decides which config file to read, so it is parsed twice: once to find
     * --config and --help, then again over the lower layers so it wins. */
    if ((rc = parse_args(&s, c, argc - 2, argv + 2, &args, &nargs)))
        goto done;
    if (opt(&s, "help")) {
        usage(stdout, c);
        goto done;
    }
    const char *config = opt(&s, "config") ? opt(&s, "config") : getenv("BOOKRANK_CONFIG");
    memset(s.value, 0, sizeof s.value);
    s.nsources = 0;
    free(args);
    args = NULL;
    if (config && *config && (rc = load_config(&s, config, c)))
        goto done;
    load_env(&s, c);
    if ((rc = parse_args(&s, c, argc - 2, argv + 2, &args, &nargs)))
        goto done;
    if (opt(&s, "log-level")) {
        int level = log_level_parse(opt(&s, "log-level"));
        if (level < 0) {
            rc = usage_error(c, "unknown --log-level '%s'", opt(&s, "log-level"));
            goto done;
        }
        log_set_level((log_level)level);
    } else if (c->id != CMD_SERVE) {
        log_set_level(LOG_WARN);
    }
    if (c->id & (CMD_SCRAPE | CMD_EXTRACT) && scr_global_init()) {
        fprintf(stderr, "bookrank: cannot initialise libcurl\n");
        rc = EXIT_WORK;
        goto done;
    }
    switch (c->id) {
    case CMD_SERVE: rc = cmd_serve(&s, c, args, nargs); break;
    case CMD_REFRESH: rc = cmd_refresh(&s, c, args, nargs); break;
    case CMD_EXTRACT: rc = cmd_extract(&s, c, args, nargs); break;
    case CMD_ADD: rc = cmd_add(&s, c, args, nargs); break;
    case CMD_REMOVE: rc = cmd_remove(&s, c, args, nargs); break;
    case CMD_LIST: rc = cmd_list(&s, c, args, nargs); break;
    case CMD_HISTORY: rc = cmd_history(&s, c, args, nargs); break;
    }
    if (c->id & (CMD_SCRAPE | CMD_EXTRACT))
        scr_global_cleanup();
done:
    free(args);
    json_decref(s.config);
    free(s.env_sources);
    return rc;
}
