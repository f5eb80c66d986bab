/*
 * cmd_books.c - direct use of the store for scripts: add, remove, edit, list, history, migrate,
 * backup, export.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/timeutil.h"
#include "../render/render.h"
#include "internal.h"

/* Caps on what one command prints through a buf (the shapes are rendered whole). */
#define CLI_OUTPUT_MAX ((size_t)1 << 30)

int cmd_add(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    book_id *ids;
    size_t n;
    int rc = cli_id_args(c, s->args, s->nargs, 1, &ids, &n);
    if (rc)
        return rc;
    db *d = NULL;
    int *added = calloc(n, sizeof *added);
    char(*tracked)[14] = calloc(n, sizeof *tracked);
    if (!added || !tracked) {
        cli_error(c, "out of memory");
        rc = CLI_WORK;
    } else if ((rc = cli_store_open(s, CLI_STORE_WRITE, &d)) == CLI_OK) {
        if (db_books_add(d, ids, n, added, tracked) == DB_OK) {
            for (size_t i = 0; i < n; i++) {
                if (strcmp(tracked[i], ids[i].id) != 0)
                    printf("already tracked %s (as %s)\n", ids[i].id, tracked[i]);
                else
                    printf("%s %s\n", added[i] ? "added" : "already tracked", ids[i].id);
            }
        } else {
            cli_error(c, "%s", db_errmsg(d));
            rc = CLI_WORK;
        }
    }
    free(added);
    free(tracked);
    free(ids);
    db_close(d);
    return rc;
}

int cmd_remove(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    book_id *ids;
    size_t n;
    int rc = cli_id_args(c, s->args, s->nargs, 1, &ids, &n);
    if (rc)
        return rc;
    db *d = NULL;
    if ((rc = cli_store_open(s, CLI_STORE_WRITE, &d)) != CLI_OK) {
        free(ids);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        char id[14];
        if (cli_resolve(c, d, &ids[i], id) != CLI_OK) {
            rc = CLI_WORK;
            continue;
        }
        db_err r = db_book_remove(d, id);
        if (r == DB_OK) {
            printf("removed %s\n", id);
        } else if (r == DB_NOTFOUND) {
            printf("removed %s\n", id); /* gone meanwhile: what was asked holds */
        } else {
            cli_error(c, "%s", db_errmsg(d));
            rc = CLI_WORK;
            break;
        }
    }
    free(ids);
    db_close(d);
    return rc;
}

/* edit's options into a patch (strings borrowed from the settings). CLI_OK or CLI_USAGE. */
static int edit_patch(const cli_settings *s, db_book_patch *p, char asin[11])
{
    const cli_command *c = s->cmd;
    const char *v;
    memset(p, 0, sizeof *p);
    if ((v = cli_opt_text(s, OPT_ASIN))) {
        p->set |= DB_SET_ASIN;
        if (*v && !asin_normalize(v, strlen(v), asin))
            return cli_usage_error(c, "--asin '%s' is not an ASIN (10 letters and digits)", v);
        p->asin = *v ? asin : NULL;
    }
    if ((v = cli_opt_text(s, OPT_WORK))) {
        p->set |= DB_SET_WORK;
        p->work = *v ? v : NULL;
    }
    if ((v = cli_opt_text(s, OPT_NOTE))) {
        p->set |= DB_SET_NOTE;
        p->note = *v ? v : NULL;
    }
    if ((v = cli_opt_text(s, OPT_FORMAT))) {
        int f = *v ? obs_format_parse(v) : OBS_FORMAT_UNKNOWN;
        if (f < 0 || (*v && f == OBS_FORMAT_UNKNOWN))
            return cli_usage_error(c,
                                   "unknown --format '%s' (paperback, hardcover, kindle, "
                                   "audiobook, other)",
                                   v);
        p->set |= DB_SET_FORMAT;
        p->format = (obs_format)f;
    }
    if (s->tags_given) {
        p->set |= DB_SET_TAGS;
        p->tags = s->tags;
        p->ntags = s->ntags;
    }
    if (!p->set)
        return cli_usage_error(c, "nothing to change: give --asin, --work, --format, --tag or "
                                  "--note");
    char why[160];
    if (db_book_patch_check(p, why, sizeof why))
        return cli_usage_error(c, "%s", why);
    return CLI_OK;
}

int cmd_edit(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    if (s->nargs != 1)
        return cli_usage_error(c, "give exactly one id");
    book_id in;
    char why[160], asin[11];
    id_err e = id_parse(s->args[0], strlen(s->args[0]), &in, why, sizeof why);
    if (e != ID_OK)
        return cli_usage_error(c, "invalid id '%s': %s", s->args[0], why[0] ? why : id_strerror(e));
    db_book_patch patch;
    int rc = edit_patch(s, &patch, asin);
    if (rc)
        return rc;
    db *d = NULL;
    if ((rc = cli_store_open(s, CLI_STORE_WRITE, &d)) != CLI_OK)
        return rc;
    char id[14];
    if ((rc = cli_resolve(c, d, &in, id)) == CLI_OK) {
        db_err r = db_book_update(d, id, &patch);
        if (r == DB_OK) {
            printf("edited %s\n", id);
        } else {
            cli_error(c, "%s", r == DB_NOTFOUND ? "the book is no longer tracked" : db_errmsg(d));
            rc = r == DB_CONFLICT ? CLI_USAGE : CLI_WORK;
        }
    }
    db_close(d);
    return rc;
}

int cmd_migrate(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    if (s->nargs)
        return cli_usage_error(c, "unexpected argument '%s'", s->args[0]);
    const char *path = cli_db_path(s);
    db *d = NULL;
    char *err = NULL;
    db_err code = DB_OK;
    /* Read-only first: an up-to-date file is left alone. */
    d = db_connect(path, DB_OPEN_READ_ONLY, &code, &err);
    free(err);
    if (d) {
        db_close(d);
        printf("%s is at schema %d: nothing to do\n", path, db_schema_latest());
        return CLI_OK;
    }
    if (code != DB_SCHEMA) {
        int rc = cli_store_open(s, CLI_STORE_READ, &d); /* prints why */
        db_close(d);
        return rc ? rc : CLI_WORK;
    }
    int rc = cli_store_open(s, CLI_STORE_MIGRATE, &d);
    if (rc)
        return rc;
    db_close(d);
    printf("%s migrated to schema %d", path, db_schema_latest());
    for (int v = db_schema_latest() - 1; v >= 1; v--) {
        char bak[4096];
        if ((size_t)snprintf(bak, sizeof bak, "%s.bak-%d", path, v) < sizeof bak &&
            access(bak, F_OK) == 0) {
            printf("; the file as it was is kept at %s", bak);
            break;
        }
    }
    printf("\n");
    return CLI_OK;
}

int cmd_backup(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    if (s->nargs != 1)
        return cli_usage_error(c, "give the file to write the copy to");
    const char *dest = s->args[0];
    if (access(dest, F_OK) == 0)
        return cli_usage_error(c, "%s exists: a backup never overwrites a file", dest);
    db *d = NULL;
    int rc = cli_store_open(s, CLI_STORE_READ, &d);
    if (rc)
        return rc;
    if (db_backup(d, dest) != DB_OK) {
        cli_error(c, "%s", db_errmsg(d));
        rc = CLI_WORK;
    } else {
        printf("copied %s to %s\n", cli_db_path(s), dest);
    }
    db_close(d);
    return rc;
}

static void print_book_text(const db_book *b)
{
    printf("%s  %s%s%s\n", b->id, b->title ? b->title : "(title not seen yet)",
           b->format != OBS_FORMAT_UNKNOWN ? "  " : "",
           b->format != OBS_FORMAT_UNKNOWN ? obs_format_name(b->format) : "");
    for (size_t k = 0; k < b->nlatest; k++) {
        const observation *o = &b->latest[k];
        char rank[48] = "-", when[32];
        if (o->rank >= 0)
            cli_format_rank(o->rank, rank, sizeof rank);
        time_format_iso(o->fetched_at_ms, when, sizeof when);
        printf("    %-14s %-10s %-12s %s  %s", o->source, obs_status_name(o->status), rank,
               o->rank_category ? o->rank_category : "", when);
        if (o->status != OBS_OK && o->last_ok_rank >= 0) {
            char last[48], at[32];
            cli_format_rank(o->last_ok_rank, last, sizeof last);
            time_format_iso(o->last_ok_at_ms, at, sizeof at);
            printf("  (last ok %s at %s)", last, at);
        }
        printf("\n");
    }
}

int cmd_list(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    if (s->nargs)
        return cli_usage_error(c, "unexpected argument '%s'", s->args[0]);
    const char *status = cli_opt_text(s, OPT_STATUS);
    if (status && obs_status_parse(status) < 0)
        return cli_usage_error(c, "unknown status '%s' (ok, no_rank, not_found, blocked, error)",
                               status);
    if (cli_opt_flag(s, OPT_JSON) && cli_opt_flag(s, OPT_CSV))
        return cli_usage_error(c, "--json and --csv exclude each other");
    if (s->history_source && strchr(s->history_source, '='))
        return cli_usage_error(c, "--source takes a source name here, not NAME=URL ('%s')",
                               s->history_source);
    db *d = NULL;
    int rc = cli_store_open(s, CLI_STORE_READ, &d);
    if (rc)
        return rc;
    db_book *books = NULL;
    size_t nb = 0;
    db_book_filter filter = {.status = status, .source = s->history_source};
    if (db_books_list(d, &filter, &books, &nb) != DB_OK) {
        cli_error(c, "%s", db_errmsg(d));
        rc = CLI_WORK;
    } else if (cli_opt_flag(s, OPT_JSON)) {
        buf out;
        buf_init(&out, CLI_OUTPUT_MAX);
        rc = cli_print_rendered(c, render_books(&out, books, nb, RENDER_PRETTY), &out);
        buf_free(&out);
    } else if (cli_opt_flag(s, OPT_CSV)) {
        buf out;
        buf_init(&out, CLI_OUTPUT_MAX);
        int r = render_books_csv_header(&out);
        for (size_t i = 0; r == BUF_OK && i < nb; i++)
            r = render_books_csv_row(&out, &books[i]);
        rc = cli_print_rendered(c, r, &out);
        buf_free(&out);
    } else {
        for (size_t i = 0; i < nb; i++)
            print_book_text(&books[i]);
    }
    db_books_free(books, nb);
    db_close(d);
    return rc;
}

static int print_history_csv(const cli_command *c, const observation *obs, size_t n)
{
    buf line;
    buf_init(&line, (size_t)1 << 20);
    int rc = render_csv_header(&line);
    for (size_t i = 0; rc == BUF_OK && i < n; i++) {
        if (fwrite(line.data, 1, line.len, stdout) != line.len)
            rc = BUF_NOMEM;
        buf_reset(&line);
        rc = rc == BUF_OK ? render_csv_row(&line, &obs[i]) : rc;
    }
    rc = cli_print_rendered(c, rc, &line);
    buf_free(&line);
    return rc;
}

static void print_history_text(const observation *obs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char when[32], rank[48] = "-";
        time_format_iso(obs[i].fetched_at_ms, when, sizeof when);
        if (obs[i].rank >= 0)
            cli_format_rank(obs[i].rank, rank, sizeof rank);
        printf("%s  %-14s %-10s %-12s %s%s%s\n", when, obs[i].source,
               obs_status_name(obs[i].status), rank,
               obs[i].rank_category ? obs[i].rank_category : "", obs[i].error ? "  " : "",
               obs[i].error ? obs[i].error : "");
    }
}

int cmd_history(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    if (s->nargs != 1)
        return cli_usage_error(c, "give exactly one id");
    book_id in;
    char why[160];
    id_err e = id_parse(s->args[0], strlen(s->args[0]), &in, why, sizeof why);
    if (e != ID_OK)
        return cli_usage_error(c, "invalid id '%s': %s", s->args[0], why[0] ? why : id_strerror(e));
    db_history_query q = {.source = s->history_source, .limit = (int)cli_opt_int(s, OPT_LIMIT, 0)};
    if (q.source && strchr(q.source, '='))
        return cli_usage_error(c, "--source takes a source name here, not NAME=URL ('%s')",
                               q.source);
    const char *since = cli_opt_text(s, OPT_SINCE);
    if (since && time_parse_iso(since, &q.since_ms))
        return cli_usage_error(c, "--since '%s' is not an ISO 8601 time", since);
    const char *before = cli_opt_text(s, OPT_BEFORE);
    if (before && time_parse_iso(before, &q.before_ms))
        return cli_usage_error(c, "--before '%s' is not an ISO 8601 time", before);
    if (cli_opt_flag(s, OPT_JSON) && cli_opt_flag(s, OPT_CSV))
        return cli_usage_error(c, "--json and --csv exclude each other");
    db *d = NULL;
    int rc = cli_store_open(s, CLI_STORE_READ, &d);
    if (rc)
        return rc;
    observation *obs = NULL;
    size_t nobs = 0;
    char id[14];
    if ((rc = cli_resolve(c, d, &in, id)) != CLI_OK) {
        db_close(d);
        return rc;
    }
    int found = db_history(d, id, &q, &obs, &nobs);
    if (found == DB_NOTFOUND) {
        cli_error(c, "%s is not tracked", id);
        rc = CLI_WORK;
    } else if (found != DB_OK) {
        cli_error(c, "%s", db_errmsg(d));
        rc = CLI_WORK;
    } else if (cli_opt_flag(s, OPT_JSON)) {
        buf out;
        buf_init(&out, CLI_OUTPUT_MAX);
        rc = cli_print_rendered(
            c, render_history(&out, id, strlen(id) == 13 ? id : NULL, obs, nobs, RENDER_PRETTY),
            &out);
        buf_free(&out);
    } else if (cli_opt_flag(s, OPT_CSV)) {
        rc = print_history_csv(c, obs, nobs);
    } else {
        print_history_text(obs, nobs);
    }
    db_observations_free(obs, nobs);
    db_close(d);
    return rc;
}

typedef struct export_out {
    buf line;           /* one row at a time: constant memory whatever the store holds */
    int rc;             /* the first BUF_* error, or BUF_NOMEM for a failed write */
    db_export_filter f; /* which rows */
} export_out;

static int export_line(void *ctx, const observation *obs)
{
    export_out *e = ctx;
    if (!db_export_wanted(&e->f, obs))
        return 0;
    buf_reset(&e->line);
    e->rc = render_csv_row(&e->line, obs);
    if (e->rc == BUF_OK && fwrite(e->line.data, 1, e->line.len, stdout) != e->line.len)
        e->rc = BUF_NOMEM;
    return e->rc != BUF_OK;
}

int cmd_export(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    if (s->nargs)
        return cli_usage_error(c, "unexpected argument '%s' (--id ID for one book)", s->args[0]);
    export_out e = {.rc = BUF_OK};
    e.f.source = s->history_source;
    if (e.f.source && strchr(e.f.source, '='))
        return cli_usage_error(c, "--source takes a source name here, not NAME=URL ('%s')",
                               e.f.source);
    const char *since = cli_opt_text(s, OPT_SINCE);
    if (since && time_parse_iso(since, &e.f.since_ms))
        return cli_usage_error(c, "--since '%s' is not an ISO 8601 time", since);
    const char *idtext = cli_opt_text(s, OPT_ID);
    book_id in;
    char why[160], id[14];
    if (idtext) {
        id_err ie = id_parse(idtext, strlen(idtext), &in, why, sizeof why);
        if (ie != ID_OK)
            return cli_usage_error(c, "invalid --id '%s': %s", idtext,
                                   why[0] ? why : id_strerror(ie));
    }
    db *d = NULL;
    int rc = cli_store_open(s, CLI_STORE_READ, &d);
    if (rc)
        return rc;
    if (idtext && (rc = cli_resolve(c, d, &in, id)) != CLI_OK) {
        db_close(d);
        return rc;
    }
    e.f.id = idtext ? id : NULL;
    buf_init(&e.line, (size_t)1 << 24);
    e.rc = render_csv_header(&e.line);
    if (e.rc == BUF_OK && fwrite(e.line.data, 1, e.line.len, stdout) != e.line.len)
        e.rc = BUF_NOMEM;
    db_err erc = e.rc == BUF_OK ? db_export(d, export_line, &e) : DB_OK;
    if (erc != DB_OK && e.rc == BUF_OK) {
        cli_error(c, "%s", db_errmsg(d));
        rc = CLI_WORK;
    } else if (e.rc != BUF_OK || fflush(stdout) != 0) {
        cli_error(c, "%s", e.rc == BUF_TOOBIG ? "a row is too large" : "cannot write the output");
        rc = CLI_WORK;
    }
    buf_free(&e.line);
    db_close(d);
    return rc;
}
