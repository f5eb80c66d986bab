/*
 * sources.c - the sources a command reads (--source NAME[=URL], default amazon.com; custom ones
 * from the config file) and the scraper settings.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void cli_sources_free(cli_sources *set)
{
    for (size_t i = 0; i < set->n; i++)
        scr_source_free(set->list[i]);
    set->n = 0;
}

int cli_sources_build(const cli_settings *s, cli_sources *set)
{
    static const char *const fallback[] = {"amazon.com"};
    const char *const *names = s->nsources ? s->sources : fallback;
    size_t n = s->nsources ? s->nsources : 1;
    const cli_command *c = s->cmd;

    set->n = 0;
    for (size_t i = 0; i < n; i++) {
        char name[128];
        const char *eq = strchr(names[i], '=');
        size_t len = eq ? (size_t)(eq - names[i]) : strlen(names[i]);
        if (len == 0 || len >= sizeof name) {
            cli_error(c, "--source '%s' is not NAME or NAME=URL", names[i]);
            goto fail;
        }
        memcpy(name, names[i], len);
        name[len] = '\0';
        for (size_t k = 0; k < set->n; k++)
            if (strcmp(set->names[k], name) == 0) {
                cli_error(c, "source %s given twice", name);
                goto fail;
            }
        char *err = NULL;
        scr_rules rules;
        scr_source *src;
        if (cli_config_custom_source(s, name, &rules)) {
            if (eq)
                rules.url_template = eq + 1;
            src = scr_source_new_custom(&rules, &err);
        } else {
            src = scr_source_new_preset(name, eq ? eq + 1 : NULL, &err);
        }
        if (!src) {
            cli_error(c, "source %s: %s", name, err ? err : "invalid");
            free(err);
            goto fail;
        }
        set->list[set->n] = src;
        set->names[set->n] = scr_source_name(src);
        set->n++;
    }
    return CLI_OK;
fail:
    cli_sources_free(set);
    return CLI_USAGE;
}

void cli_scraper_config(const cli_settings *s, scr_config *cfg)
{
    scr_config_defaults(cfg);
    cfg->workers = (int)cli_opt_int(s, OPT_WORKERS, cfg->workers);
    cfg->per_host = (int)cli_opt_int(s, OPT_PER_HOST, cfg->per_host);
    cfg->rate = cli_opt_num(s, OPT_RATE, cfg->rate);
    cfg->timeout_s = cli_opt_num(s, OPT_TIMEOUT, cfg->timeout_s);
    cfg->retries = (int)cli_opt_int(s, OPT_RETRIES, cfg->retries);
    cfg->cooldown_s = cli_opt_num(s, OPT_COOLDOWN, cfg->cooldown_s);
    cfg->user_agent = cli_opt_text(s, OPT_USER_AGENT);
    cfg->proxy = cli_opt_text(s, OPT_PROXY);
    /* --rate 0 means a mirror or a test store: no cross-host cap either, unless asked for. */
    cfg->rate_all = cli_opt_num(s, OPT_RATE_ALL, cfg->rate == 0 ? 0 : SCR_RATE_ALL_DEFAULT);
    cfg->keep_pages = (int)cli_opt_int(s, OPT_KEEP_PAGES, 0);
    if (cfg->keep_pages) {
        /* One command configures one pool: the directory name lives as long as the process. */
        static char pages_dir[4096];
        if ((size_t)snprintf(pages_dir, sizeof pages_dir, "%s.pages", cli_db_path(s)) <
            sizeof pages_dir)
            cfg->pages_dir = pages_dir;
    }
}
