/*
 * internal.h - what the command line's files share (private to cli/): the command and option
 * tables, the layered settings, the source set, and the helpers every command uses.
 *
 * Flow: cli_main() picks the command, cli_settings_load() layers the option values (command line
 * > BOOKRANK_* environment > config file > defaults; every value is checked against its kind
 * and range whichever layer gave it), then the command's cmd_*() runs and returns the exit
 * status (CLI_OK, CLI_WORK, CLI_USAGE). Single-threaded except where a command says otherwise.
 */
#ifndef BOOKRANK_CLI_INTERNAL_H
#define BOOKRANK_CLI_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../alerts/alerts.h"
#include "../common/buf.h"
#include "../common/compiler.h"
#include "../common/isbn.h"
#include "../common/observation.h"
#include "../db/db.h"
#include "../scraper/scraper.h"

/* Exit statuses (SPEC §2). */
enum { CLI_OK = 0, CLI_WORK = 1, CLI_USAGE = 2 };

typedef enum cli_cmd {
    CMD_SERVE = 1 << 0,
    CMD_REFRESH = 1 << 1,
    CMD_EXTRACT = 1 << 2,
    CMD_ADD = 1 << 3,
    CMD_REMOVE = 1 << 4,
    CMD_LIST = 1 << 5,
    CMD_HISTORY = 1 << 6,
    CMD_EDIT = 1 << 7,
    CMD_MIGRATE = 1 << 8,
    CMD_BACKUP = 1 << 9,
    CMD_ALERT = 1 << 10,
    CMD_EXPORT = 1 << 11,
} cli_cmd;
#define CMD_ALL 0xffffu
#define CMD_DB                                                                                     \
    (CMD_SERVE | CMD_REFRESH | CMD_ADD | CMD_REMOVE | CMD_LIST | CMD_HISTORY | CMD_EDIT |          \
     CMD_MIGRATE | CMD_BACKUP | CMD_ALERT | CMD_EXPORT)
#define CMD_SCRAPE (CMD_SERVE | CMD_REFRESH)

typedef struct cli_command {
    const char *name;
    cli_cmd id;
    const char *args, *summary;
} cli_command;

/* Option ids, one per line of options.def: OPT_DB, OPT_WORKERS, ... */
typedef enum cli_opt {
#define OPT(id, name, env, kind, lo, hi, cmds, arg, help) OPT_##id,
#include "options.def"
#undef OPT
    OPT_COUNT
} cli_opt;

typedef enum cli_kind { KIND_FLAG, KIND_TEXT, KIND_INT, KIND_NUM, KIND_RATE } cli_kind;

typedef struct cli_optdef {
    const char *name, *env;
    cli_kind kind;
    double lo, hi;
    unsigned cmds;
    const char *arg, *help;
} cli_optdef;

extern const cli_optdef cli_options[OPT_COUNT];

/* How many --public-url one server takes. */
#define CLI_MAX_PUBLIC_URLS 8

/* Tags one `edit` may set. */
#define CLI_MAX_TAGS DB_MAX_TAGS

/* Targets one alert rule may have (--notify is repeatable). */
#define CLI_MAX_TARGETS ALERT_MAX_TARGETS

/* Sources one command may name (--source is repeatable). */
#define CLI_MAX_SOURCES OBS_MAX_SOURCES

/* Option values as text, layered. Values point into argv, the environment or the config file
 * (kept alive by `config`). */
typedef struct cli_settings {
    const cli_command *cmd;
    const char *value[OPT_COUNT];
    const char *sources[CLI_MAX_SOURCES];
    size_t nsources;
    const char *history_source;                   /* history's --source filter: command line only */
    const char *public_urls[CLI_MAX_PUBLIC_URLS]; /* --public-url, repeatable */
    size_t npublic_urls;
    const char *tags[CLI_MAX_TAGS]; /* edit --tag, repeatable (command line only) */
    size_t ntags;
    int tags_given;                      /* --tag was given (--tag "" alone clears the tags) */
    const char *notify[CLI_MAX_TARGETS]; /* alert add --notify, repeatable (command line only) */
    size_t nnotify;
    struct cli_rule *config_alerts; /* owned: the config file's "alerts" (NULL: none given) */
    size_t nconfig_alerts;
    char *env_public_urls; /* owned: BOOKRANK_PUBLIC_URL split in place */
    void *config;          /* owned: the parsed config file (a jansson value) */
    char *env_sources;     /* owned: BOOKRANK_SOURCE split in place */
    const char **args;     /* owned array: positional arguments (borrowed strings) */
    size_t nargs;
} cli_settings;

/* ---- options.c -------------------------------------------------------------------------- */

/* The layers, applied by cli_main() from the lowest up: config file (config.c), environment,
 * command line. Each returns CLI_OK or an exit status after printing why. */
BR_MUST_CHECK int cli_env_load(cli_settings *s);
/* argv after the command name; also collects the positional arguments into s->args. */
BR_MUST_CHECK int cli_args_parse(cli_settings *s, int argc, char **argv);
/* Checks every value that is set against its option's kind and range. */
BR_MUST_CHECK int cli_settings_check(const cli_settings *s);
/* Forgets the option values (not the config file), before the layers are applied again. */
void cli_settings_reset(cli_settings *s);
/* The option for a name of len bytes ('-' or '_'), or -1. */
int cli_option_find(const char *name, size_t len);
/* The option's value as text, NULL when no layer set it. */
const char *cli_opt_text(const cli_settings *s, cli_opt id);
/* Whether a flag option is set. */
int cli_opt_flag(const cli_settings *s, cli_opt id);
/* The option's value as a whole number or a number (cli_settings_check validated it); def when
 * not set. */
long cli_opt_int(const cli_settings *s, cli_opt id, long def);
double cli_opt_num(const cli_settings *s, cli_opt id, double def);

/* "bookrank CMD: <message>\n(try `bookrank CMD --help`)" on stderr; returns CLI_USAGE. */
int cli_usage_error(const cli_command *c, const char *fmt, ...) BR_PRINTF(2, 3);
/* "bookrank CMD: <message>" on stderr. */
void cli_error(const cli_command *c, const char *fmt, ...) BR_PRINTF(2, 3);
void cli_usage(FILE *f, const cli_command *c);

/* ---- config.c --------------------------------------------------------------------------- */

/* Reads the config file into s (values for the options of s->cmd, and the custom sources).
 * CLI_OK or CLI_USAGE after printing why. */
BR_MUST_CHECK int cli_config_load(cli_settings *s, const char *path);
/* Frees the parsed config file (the values that pointed into it become invalid). */
void cli_config_free(cli_settings *s);
/* The custom source rules named `name` in the config file, if any: fills r (strings borrowed
 * from the config) and returns 1; 0 when the config has none by that name. */
int cli_config_custom_source(const cli_settings *s, const char *name, scr_rules *r);

/* ---- alerts.c: alert rules from the user, the config file's rules, the notify options ---- */

/* One alert rule as a user gave it: checked, with its targets copied (owned). */
typedef struct cli_rule {
    db_alert_rule rule; /* book_id "" until resolved; targets owned */
    int has_book;
    book_id book; /* the book as given, when has_book */
} cli_rule;

/* Checks a rule given by kind name, value, book (any id form, NULL: every book), source name
 * (NULL: every source) and targets, and fills *out (free with cli_rule_clear). 0, or -1 with
 * the key that is wrong ("kind", "value", "book", "source", "notify") in *key, the index of a
 * wrong target in *index (else -1) and the reason in why. */
BR_MUST_CHECK int cli_rule_make(const char *kind, int has_value, double value, const char *book,
                                const char *source, const char *const *targets, size_t ntargets,
                                cli_rule *out, const char **key, long *index, char *why,
                                size_t whylen);
/* Frees one rule's copies (cli_rule_clear) or an array of rules; NULL is a no-op. */
void cli_rule_clear(cli_rule *r);
void cli_rules_free(cli_rule *rules, size_t n);
/* When a config file is in use: makes the store's config-file rules exactly its "alerts" (none
 * when it has no such key), with each rule's book resolved to the id it is tracked under (a
 * book not tracked yet keeps the id as given, with a warning). Nothing without a config file.
 * CLI_OK, or CLI_WORK after printing why. */
BR_MUST_CHECK int cli_alerts_sync(const cli_settings *s, db *d);

/* The transports of alert delivery from --smtp, --smtp-from, --smtp-ca-file, --notify-secret
 * (or --notify-secret-file) and $BOOKRANK_SMTP_USER / $BOOKRANK_SMTP_PASSWORD. */
typedef struct cli_notify {
    const char *smtp_url, *smtp_from, *smtp_user, *smtp_password, *smtp_ca_file;
    char *secret; /* owned; NULL: posts are not signed */
} cli_notify;
/* CLI_OK, or CLI_USAGE / CLI_WORK after printing why (a bad --smtp URL or sender, an unreadable
 * secret file). Free with cli_notify_free. */
BR_MUST_CHECK int cli_notify_load(const cli_settings *s, cli_notify *out);
void cli_notify_free(cli_notify *n);
/* The delivery loop on db_path with these transports and the test knobs of the environment
 * (BOOKRANK_TEST_RETRY_MS, BOOKRANK_TEST_STORM_MS, BOOKRANK_TEST_POLL_MS, BOOKRANK_TEST_GIVE_UP_MS).
 * NULL after printing why. */
struct notify_deliverer;
struct notify_deliverer *cli_deliverer_start(const cli_command *c, const char *db_path,
                                             const cli_notify *n);

/* ---- sources.c -------------------------------------------------------------------------- */

typedef struct cli_sources {
    scr_source *list[CLI_MAX_SOURCES];
    const char *names[CLI_MAX_SOURCES]; /* borrowed from the sources */
    size_t n;
} cli_sources;

/* Builds the sources named by --source (default amazon.com). CLI_OK or CLI_USAGE. */
BR_MUST_CHECK int cli_sources_build(const cli_settings *s, cli_sources *set);
void cli_sources_free(cli_sources *set);
/* The scraper settings (--workers, --rate, ...). */
void cli_scraper_config(const cli_settings *s, scr_config *cfg);

/* ---- common helpers (output.c) ---------------------------------------------------------- */

typedef enum cli_store_mode {
    CLI_STORE_READ,    /* read-only: never creates, writes or migrates */
    CLI_STORE_WRITE,   /* creates a missing database, migrates an older one */
    CLI_STORE_MIGRATE, /* migrates an existing database, never creates one */
} cli_store_mode;
/* Opens the store named by --db (default bookrank.db) into *out. CLI_OK, or after printing why
 * CLI_USAGE (no database there, or one that needs `bookrank migrate` or a newer bookrank) or
 * CLI_WORK. */
BR_MUST_CHECK int cli_store_open(const cli_settings *s, cli_store_mode mode, db **out);
const char *cli_db_path(const cli_settings *s);
/* Parses id arguments (ISBN, ASIN, product URL; each argument is split like a pasted list, and
 * "-" reads the list from standard input): every bad one is reported. CLI_OK with a malloc'd
 * array in *out (caller frees; NULL when none), CLI_USAGE when any is invalid (nothing is done
 * then), CLI_WORK when out of memory or standard input cannot be read. */
BR_MUST_CHECK int cli_id_args(const cli_command *c, const char *const *args, size_t n, int need_one,
                              book_id **out, size_t *nout);
/* The id a book is tracked under (db_book_resolve); CLI_WORK after printing why when it is not
 * tracked or the store fails. */
BR_MUST_CHECK int cli_resolve(const cli_command *c, db *d, const book_id *in, char out[14]);
/* The busy timeout of the jobs' store connections: def, or BOOKRANK_TEST_BUSY_MS (a test knob,
 * so that tests of a locked database need not wait seconds). */
int cli_test_busy_ms(int def);
/* A secret kept in a file (--token-file, --notify-secret-file): its text without the line end
 * and blanks at the end, at most 4096 bytes, not empty, no NUL byte. CLI_OK with a malloc'd
 * copy in *out, or CLI_USAGE / CLI_WORK after printing why (naming option). */
BR_MUST_CHECK int cli_read_secret_file(const cli_command *c, const char *option, const char *path,
                                       char **out);
/* "#1,234" into out. */
void cli_format_rank(int64_t rank, char *out, size_t len);
/* Writes b to stdout; CLI_OK or CLI_WORK (and a message) when rendering had failed (rc) or the
 * write fails. */
int cli_print_rendered(const cli_command *c, int rc, const buf *b);

/* ---- progress.c: the refresh progress line on stderr ("[#####     ] 12/40") ----------------
 * progress_set_total() is called by the thread that starts the job, progress_step() by the jobs
 * writer thread as results commit, progress_clear() by either: the counters are atomic and each
 * draw is one write(2). */
typedef struct progress {
    int enabled;           /* set once before any thread starts */
    _Atomic int64_t total; /* 0 until the job is known */
    _Atomic int64_t seen;
} progress;

void progress_init(progress *p, int enabled);
void progress_set_total(progress *p, int64_t total);
/* Counts one finished result and redraws. */
void progress_step(progress *p);
/* Erases the line (before other output, and at the end). */
void progress_clear(const progress *p);

/* ---- commands --------------------------------------------------------------------------- */

int cmd_serve(const cli_settings *s);
int cmd_refresh(const cli_settings *s);
int cmd_extract(const cli_settings *s);
int cmd_add(const cli_settings *s);
int cmd_remove(const cli_settings *s);
int cmd_list(const cli_settings *s);
int cmd_history(const cli_settings *s);
int cmd_edit(const cli_settings *s);
int cmd_migrate(const cli_settings *s);
int cmd_backup(const cli_settings *s);
int cmd_export(const cli_settings *s);
int cmd_alert(const cli_settings *s);

#endif
