/*
 * cli.c - the entry: picks the command, applies the option layers in order, sets up logging and
 * libcurl, and runs the command.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "cli.h"
#include "internal.h"

static const cli_command commands[] = {
    {"serve", CMD_SERVE, "", "run the HTTP service (API + dashboard)"},
    {"refresh", CMD_REFRESH, "[ID...]",
     "fetch ranks now for the given books (tracking them) or all tracked books"},
    {"extract", CMD_EXTRACT, "FILE|-",
     "run a source's rules on a saved page and print what they read"},
    {"add", CMD_ADD, "ID...|-", "track books (ISBN, ASIN or product URL; - reads a list)"},
    {"remove", CMD_REMOVE, "ID...", "stop tracking books and drop their history"},
    {"edit", CMD_EDIT, "ID", "set a book's ASIN, work, format, tags or note"},
    {"list", CMD_LIST, "", "tracked books with their latest ranks"},
    {"history", CMD_HISTORY, "ID", "observations of one book, newest first"},
    {"migrate", CMD_MIGRATE, "", "upgrade the database schema (after copying the file)"},
    {"backup", CMD_BACKUP, "FILE", "write a consistent copy of the database (safe while serving)"},
    {"export", CMD_EXPORT, "", "every observation as CSV (as GET /api/export.csv), streamed"},
    {"alert", CMD_ALERT, "add|list|remove N|test TARGET",
     "alert rules: add one (--kind, --notify...), list them, remove one, send a sample message"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage_all(FILE *f)
{
    fprintf(f, "usage: bookrank COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-8s %-10s %s\n", commands[i].name, commands[i].args, commands[i].summary);
    fprintf(f, "\n`bookrank COMMAND --help` shows a command's options; `bookrank --version`.\n"
               "Options are also read from BOOKRANK_* environment variables and --config FILE.\n");
}

static int run(const cli_settings *s)
{
    switch (s->cmd->id) {
    case CMD_SERVE:
        return cmd_serve(s);
    case CMD_REFRESH:
        return cmd_refresh(s);
    case CMD_EXTRACT:
        return cmd_extract(s);
    case CMD_ADD:
        return cmd_add(s);
    case CMD_REMOVE:
        return cmd_remove(s);
    case CMD_LIST:
        return cmd_list(s);
    case CMD_HISTORY:
        return cmd_history(s);
    case CMD_EDIT:
        return cmd_edit(s);
    case CMD_MIGRATE:
        return cmd_migrate(s);
    case CMD_BACKUP:
        return cmd_backup(s);
    case CMD_ALERT:
        return cmd_alert(s);
    case CMD_EXPORT:
        return cmd_export(s);
    }
    return CLI_USAGE;
}

/* The option layers, lowest first. The command line decides which config file to read, so it
 * is parsed twice: once for --config and --help, then again on top of the lower layers. */
static int load_layers(cli_settings *s, int argc, char **argv, int *help)
{
    int rc = cli_args_parse(s, argc, argv);
    if (rc)
        return rc;
    *help = cli_opt_flag(s, OPT_HELP);
    if (*help)
        return CLI_OK;
    const char *config = cli_opt_text(s, OPT_CONFIG);
    if (!config)
        config = getenv("BOOKRANK_CONFIG");
    cli_settings_reset(s);
    if (config && *config && (rc = cli_config_load(s, config)))
        return rc;
    if ((rc = cli_env_load(s)) || (rc = cli_args_parse(s, argc, argv)))
        return rc;
    return cli_settings_check(s);
}

static int set_log_level(const cli_settings *s)
{
    const char *name = cli_opt_text(s, OPT_LOG_LEVEL);
    if (!name) {
        log_set_level(s->cmd->id == CMD_SERVE ? LOG_INFO : LOG_WARN);
        return CLI_OK;
    }
    int level = log_level_parse(name);
    if (level < 0)
        return cli_usage_error(s->cmd, "unknown --log-level '%s'", name);
    log_set_level((log_level)level);
    return CLI_OK;
}

static void settings_free(cli_settings *s)
{
    free(s->args);
    cli_rules_free(s->config_alerts, s->nconfig_alerts);
    cli_config_free(s);
    free(s->env_sources);
    free(s->env_public_urls);
    memset(s, 0, sizeof *s);
}

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage_all(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("bookrank %s\n", BOOKRANK_VERSION);
        return CLI_OK;
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage_all(stdout);
        return CLI_OK;
    }
    const cli_command *c = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0)
            c = &commands[i];
    if (!c)
        return cli_usage_error(NULL, "unknown command '%s'", name);

    cli_settings s;
    memset(&s, 0, sizeof s);
    s.cmd = c;
    int help = 0;
    int rc = load_layers(&s, argc - 2, argv + 2, &help);
    if (rc == CLI_OK && help)
        cli_usage(stdout, c);
    else if (rc == CLI_OK && (rc = set_log_level(&s)) == CLI_OK) {
        /* libcurl: fetching, and sending alerts (serve, refresh, alert test). */
        int scrapes = c->id & (CMD_SCRAPE | CMD_EXTRACT | CMD_ALERT);
        if (scrapes && scr_global_init()) {
            cli_error(NULL, "cannot initialise libcurl");
            rc = CLI_WORK;
        } else {
            rc = run(&s);
            if (scrapes)
                scr_global_cleanup();
        }
    }
    settings_free(&s);
    return rc;
}
