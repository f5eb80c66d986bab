/*
 * config.c - the JSON config file (--config FILE or BOOKRANK_CONFIG): option values by option
 * name, the custom sources ("sources": [{"name", "url", "base", rule patterns...}]) and the alert
 * rules ("alerts": [{"kind", "value", "book", "source", "notify"}]).
 * Numbers and booleans are kept as text so that one checker validates every layer.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int config_error(const cli_settings *s, const char *path, const char *what)
{
    cli_error(NULL, "config %s: %s", path, what);
    (void)s;
    return CLI_USAGE;
}

/* The "source" key: one name or a list of names. */
static int load_source_list(cli_settings *s, const char *path, json_t *val)
{
    s->nsources = 0;
    if (json_is_string(val)) {
        s->sources[s->nsources++] = json_string_value(val);
        return CLI_OK;
    }
    size_t k;
    json_t *item;
    if (!json_is_array(val))
        return config_error(s, path, "\"source\" must be a string or a list of strings");
    json_array_foreach(val, k, item) {
        if (!json_is_string(item) || s->nsources == CLI_MAX_SOURCES) {
            cli_error(NULL, "config %s: \"source\" must be strings (at most %d)", path,
                      CLI_MAX_SOURCES);
            return CLI_USAGE;
        }
        s->sources[s->nsources++] = json_string_value(item);
    }
    return CLI_OK;
}

/* Config files are small; a larger one is a mistake (a database given as --config). */
#define CONFIG_MAX ((size_t)1 << 20)

static int read_file(const char *path, buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error(NULL, "config %s: %s", path, strerror(errno));
        return CLI_USAGE;
    }
    char chunk[8192];
    size_t n;
    int rc = CLI_OK;
    while (rc == CLI_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(out, chunk, n) != BUF_OK) {
            cli_error(NULL, "config %s: larger than %zu bytes", path, CONFIG_MAX);
            rc = CLI_USAGE;
        }
    if (rc == CLI_OK && ferror(f)) {
        cli_error(NULL, "config %s: read error", path);
        rc = CLI_USAGE;
    }
    fclose(f);
    return rc;
}

/* The rule keys a custom source may have (scr_rules); anything else is named as unknown. */
static const char *const source_keys[] = {"name",  "url",     "base",      "block_start", "rank",
                                          "title", "blocked", "not_found", NULL};

static int check_custom_sources(const char *path, json_t *list)
{
    size_t i;
    json_t *item;
    if (!json_is_array(list)) {
        cli_error(NULL,
                  "config %s: \"sources\" must be a list of source objects "
                  "({\"name\": ..., \"url\": ...})",
                  path);
        return CLI_USAGE;
    }
    json_array_foreach(list, i, item) {
        const char *key;
        json_t *val;
        if (!json_is_object(item) || !json_is_string(json_object_get(item, "name"))) {
            cli_error(NULL, "config %s: \"sources\"[%zu] must be an object with a \"name\"", path,
                      i);
            return CLI_USAGE;
        }
        json_object_foreach(item, key, val) {
            size_t k = 0;
            while (source_keys[k] && strcmp(source_keys[k], key) != 0)
                k++;
            if (!source_keys[k]) {
                cli_error(NULL, "config %s: \"sources\"[%zu]: unknown key \"%s\"", path, i, key);
                return CLI_USAGE;
            }
            if (!json_is_string(val)) {
                cli_error(NULL, "config %s: \"sources\"[%zu]: \"%s\" must be a string", path, i,
                          key);
                return CLI_USAGE;
            }
        }
    }
    return CLI_OK;
}

/* One entry of "alerts": the keys of POST /api/alerts. */
static int load_alert(const char *path, size_t i, json_t *item, cli_rule *out)
{
    json_t *kind = NULL, *value = NULL, *book = NULL, *source = NULL, *notify = NULL, *v;
    const char *key;
    if (!json_is_object(item)) {
        cli_error(NULL,
                  "config %s: \"alerts\"[%zu] must be an object like {\"kind\": "
                  "\"rank_better_than\", \"value\": 1000, \"notify\": [...]}",
                  path, i);
        return CLI_USAGE;
    }
    json_object_foreach(item, key, v) {
        json_t **slot = strcmp(key, "kind") == 0     ? &kind
                        : strcmp(key, "value") == 0  ? &value
                        : strcmp(key, "book") == 0   ? &book
                        : strcmp(key, "source") == 0 ? &source
                        : strcmp(key, "notify") == 0 ? &notify
                                                     : NULL;
        if (!slot) {
            cli_error(NULL,
                      "config %s: \"alerts\"[%zu]: unknown key \"%s\" (kind, value, book, "
                      "source, notify)",
                      path, i, key);
            return CLI_USAGE;
        }
        *slot = v;
    }
    /* The types first; cli_rule_make checks the values. */
    const char *bad = NULL, *want = NULL;
    if (kind && !json_is_string(kind))
        bad = "kind", want = "a kind name";
    else if (value && !json_is_null(value) && !json_is_number(value))
        bad = "value", want = "a number";
    else if (book && !json_is_null(book) && !json_is_string(book))
        bad = "book", want = "null or a book id";
    else if (source && !json_is_null(source) && !json_is_string(source))
        bad = "source", want = "null or a source name";
    else if (!json_is_array(notify) || json_array_size(notify) > CLI_MAX_TARGETS)
        bad = "notify", want = "a list of 1 to 16 targets (webhook:URL, mailto:ADDRESS...)";
    const char *targets[CLI_MAX_TARGETS];
    size_t k;
    json_array_foreach(notify, k, v) {
        if (bad)
            break;
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            bad = "notify", want = "a list of strings";
        else
            targets[k] = json_string_value(v);
    }
    if (bad) {
        cli_error(NULL, "config %s: \"alerts\"[%zu]: \"%s\" must be %s", path, i, bad, want);
        return CLI_USAGE;
    }
    char why[300];
    long index;
    int has_value = value && !json_is_null(value);
    if (cli_rule_make(json_string_value(kind), has_value, has_value ? json_number_value(value) : 0,
                      json_string_value(book), json_string_value(source), targets,
                      json_array_size(notify), out, &key, &index, why, sizeof why)) {
        if (!key) {
            cli_error(NULL, "%s", why);
            return CLI_WORK;
        }
        char at[32] = "";
        if (index >= 0)
            snprintf(at, sizeof at, "[%ld]", index);
        cli_error(NULL, "config %s: \"alerts\"[%zu]: \"%s\"%s: %s", path, i, key, at, why);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* "alerts": a list of rules, kept in s->config_alerts (checked now, whatever the command, so a
 * mistake shows at once; used by serve and refresh). */
static int load_alerts(cli_settings *s, const char *path, json_t *list)
{
    if (!json_is_array(list)) {
        cli_error(NULL,
                  "config %s: \"alerts\" must be a list of rule objects ({\"kind\": ..., "
                  "\"notify\": [...]})",
                  path);
        return CLI_USAGE;
    }
    cli_rules_free(s->config_alerts, s->nconfig_alerts);
    s->config_alerts = NULL;
    s->nconfig_alerts = 0;
    size_t n = json_array_size(list);
    if (n == 0)
        return CLI_OK;
    if (!(s->config_alerts = calloc(n, sizeof *s->config_alerts))) {
        cli_error(NULL, "out of memory");
        return CLI_WORK;
    }
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        int rc = load_alert(path, i, item, &s->config_alerts[i]);
        if (rc)
            return rc;
        s->nconfig_alerts = i + 1;
    }
    return CLI_OK;
}

/* Whether an option's value has a type the option can take (values are checked later). */
static int check_type(const char *path, const char *key, int i, json_t *val)
{
    const char *want = NULL;
    if (i == OPT_SOURCE || i == OPT_PUBLIC_URL) {
        int ok = json_is_string(val) || json_is_array(val);
        size_t k;
        json_t *item;
        json_array_foreach(val, k, item)
            ok = ok && json_is_string(item);
        want = ok ? NULL : "a string or a list of strings";
    } else if (cli_options[i].kind == KIND_FLAG) {
        want = json_is_boolean(val) ? NULL : "true or false";
    } else if (!json_is_string(val) && !json_is_number(val) && !json_is_boolean(val)) {
        want = "a string or number";
    }
    if (!want)
        return CLI_OK;
    cli_error(NULL, "config %s: \"%s\" must be %s", path, key, want);
    return CLI_USAGE;
}

int cli_config_load(cli_settings *s, const char *path)
{
    buf file;
    buf_init(&file, CONFIG_MAX);
    int rrc = read_file(path, &file);
    if (rrc) {
        buf_free(&file);
        return rrc;
    }
    /* Editors on some systems save UTF-8 with a byte order mark; it is not part of the JSON. */
    size_t skip = file.len >= 3 && memcmp(file.data, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    json_error_t jerr;
    json_t *config = json_loadb(file.data ? file.data + skip : "", file.len - skip,
                                JSON_REJECT_DUPLICATES, &jerr);
    buf_free(&file);
    if (!config) {
        cli_error(NULL, "config %s: line %d: %s", path, jerr.line, jerr.text);
        return CLI_USAGE;
    }
    json_decref(s->config);
    s->config = config;
    if (!json_is_object(config))
        return config_error(s, path, "must be a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach(config, key, val) {
        if (strcmp(key, "sources") == 0) {
            int rc = check_custom_sources(path, val);
            if (rc)
                return rc;
            continue; /* used when sources are built */
        }
        if (strcmp(key, "alerts") == 0) {
            int rc = load_alerts(s, path, val);
            if (rc)
                return rc;
            continue;
        }
        int i = cli_option_find(key, strlen(key));
        if (i == OPT_KIND || i == OPT_VALUE || i == OPT_BOOK || i == OPT_NOTIFY) {
            cli_error(NULL,
                      "config %s: unknown key \"%s\" (alert rules go in the \"alerts\" "
                      "list)",
                      path, key);
            return CLI_USAGE;
        }
        if (i < 0 ||
            (cli_options[i].kind == KIND_FLAG && i != OPT_PRIVATE &&
             i != OPT_ALLOW_SHORT_INTERVAL) ||
            i == OPT_CONFIG) {
            cli_error(NULL, "config %s: unknown key \"%s\"", path, key);
            return CLI_USAGE;
        }
        /* Types are checked whatever the command: a mistake in a file that serve, refresh and
         * the others share shows on the first command that reads it. */
        int trc = check_type(path, key, i, val);
        if (trc)
            return trc;
        if (!(cli_options[i].cmds & s->cmd->id))
            continue;
        if (i == OPT_SOURCE) {
            int rc = load_source_list(s, path, val);
            if (rc)
                return rc;
            continue;
        }
        if (i == OPT_PUBLIC_URL) {
            s->npublic_urls = 0;
            json_t *item;
            size_t k;
            if (json_is_string(val)) {
                s->public_urls[s->npublic_urls++] = json_string_value(val);
                continue;
            }
            json_array_foreach(val, k, item) {
                if (!json_is_string(item) || s->npublic_urls == CLI_MAX_PUBLIC_URLS) {
                    cli_error(NULL, "config %s: \"public-url\" must be strings (at most %d)", path,
                              CLI_MAX_PUBLIC_URLS);
                    return CLI_USAGE;
                }
                s->public_urls[s->npublic_urls++] = json_string_value(item);
            }
            if (!json_is_array(val)) {
                cli_error(NULL, "config %s: \"public-url\" must be a string or a list of strings",
                          path);
                return CLI_USAGE;
            }
            continue;
        }
        if (cli_options[i].kind == KIND_FLAG) {
            if (!json_is_boolean(val)) {
                cli_error(NULL, "config %s: \"%s\" must be true or false", path, key);
                return CLI_USAGE;
            }
            s->value[i] = json_is_true(val) ? "1" : NULL;
            continue;
        }
        if (json_is_string(val)) {
            s->value[i] = json_string_value(val);
        } else if (json_is_number(val) || json_is_boolean(val)) {
            char *text = json_dumps(val, JSON_ENCODE_ANY);
            json_t *str = text ? json_string(text) : NULL;
            free(text);
            if (!str || json_object_set_new(config, key, str)) {
                cli_error(NULL, "out of memory");
                return CLI_WORK;
            }
            s->value[i] = json_string_value(json_object_get(config, key));
        } else {
            cli_error(NULL, "config %s: \"%s\" must be a string or number", path, key);
            return CLI_USAGE;
        }
    }
    return CLI_OK;
}

void cli_config_free(cli_settings *s)
{
    json_decref(s->config);
    s->config = NULL;
}

static const char *str_member(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

int cli_config_custom_source(const cli_settings *s, const char *name, scr_rules *r)
{
    json_t *custom = s->config ? json_object_get(s->config, "sources") : NULL;
    json_t *rules = NULL, *item;
    size_t k;
    json_array_foreach(custom, k, item)
        if (json_is_object(item) && str_member(item, "name") &&
            strcmp(str_member(item, "name"), name) == 0)
            rules = item;
    if (!rules)
        return 0;
    *r = (scr_rules){
        .name = name,
        .url_template = str_member(rules, "url"),
        .base = str_member(rules, "base"),
        .block_start = str_member(rules, "block_start"),
        .rank = str_member(rules, "rank"),
        .title = str_member(rules, "title"),
        .blocked = str_member(rules, "blocked"),
        .not_found = str_member(rules, "not_found"),
    };
    return 1;
}
