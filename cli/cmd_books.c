/*
 * cmd_books.c - direct use of the store for scripts: add, remove, list, history.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/timeutil.h"
#include "../render/render.h"
#include "internal.h"

/* Caps on what one command prints through a buf (the shapes are rendered whole). */
#define CLI_OUTPUT_MAX ((size_t)1 << 30)

int cmd_add(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    isbn *books;
    int rc = cli_isbn_args(c, s->args, s->nargs, 1, &books);
    if (rc)
        return rc;
    db *d = cli_store_open(s, CLI_STORE_WRITE);
    int *added = calloc(s->nargs, sizeof *added);
    rc = CLI_WORK;
    if (d && added && db_books_add(d, books, s->nargs, added) == DB_OK) {
        for (size_t i = 0; i < s->nargs; i++)
            printf("%s %s\n", added[i] ? "added" : "already tracked", books[i].isbn13);
        rc = CLI_OK;
    } else if (d) {
        cli_error(c, "%s", added ? db_errmsg(d) : "out of memory");
    }
    free(added);
    free(books);
    db_close(d);
    return rc;
}

int cmd_remove(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    isbn *books;
    int rc = cli_isbn_args(c, s->args, s->nargs, 1, &books);
    if (rc)
        return rc;
    db *d = cli_store_open(s, CLI_STORE_WRITE);
    rc = d ? CLI_OK : CLI_WORK;
    for (size_t i = 0; d && i < s->nargs; i++) {
        int r = db_book_remove(d, books[i].isbn13);
        if (r == DB_OK) {
            printf("removed %s\n", books[i].isbn13);
        } else if (r == DB_NOTFOUND) {
            cli_error(c, "%s is not tracked", books[i].isbn13);
            rc = CLI_WORK;
        } else {
            cli_error(c, "%s", db_errmsg(d));
            rc = CLI_WORK;
            break;
        }
    }
    free(books);
    db_close(d);
    return rc;
}

static void print_book_text(const db_book *b)
{
    printf("%s  %s\n", b->isbn13, b->title ? b->title : "(title not seen yet)");
    for (size_t k = 0; k < b->nlatest; k++) {
        const observation *o = &b->latest[k];
        char rank[48] = "-", when[32];
        if (o->rank >= 0)
            cli_format_rank(o->rank, rank, sizeof rank);
        time_format_iso(o->fetched_at_ms, when, sizeof when);
        printf("    %-14s %-10s %-12s %s  %s\n", o->source, obs_status_name(o->status), rank,
               o->rank_category ? o->rank_category : "", when);
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
    db *d = cli_store_open(s, CLI_STORE_READ);
    if (!d)
        return CLI_WORK;
    db_book *books = NULL;
    size_t nb = 0;
    db_book_filter filter = {.status = status};
    int rc = CLI_OK;
    if (db_books_list(d, &filter, &books, &nb) != DB_OK) {
        cli_error(c, "%s", db_errmsg(d));
        rc = CLI_WORK;
    } else if (cli_opt_flag(s, OPT_JSON)) {
        buf out;
        buf_init(&out, CLI_OUTPUT_MAX);
        rc = cli_print_rendered(c, render_books(&out, books, nb, RENDER_PRETTY), &out);
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
        return cli_usage_error(c, "give exactly one ISBN");
    isbn book;
    char why[160];
    if (isbn_parse_explain(s->args[0], strlen(s->args[0]), &book, why, sizeof why) != ISBN_OK) {
        cli_error(c, "invalid ISBN '%s': %s", s->args[0], why);
        return CLI_USAGE;
    }
    db_history_query q = {.source = s->history_source,
                          .limit = (int)cli_opt_int(s, OPT_LIMIT, 0)};
    if (q.source && strchr(q.source, '='))
        return cli_usage_error(c, "--source takes a source name here, not NAME=URL ('%s')",
                               q.source);
    const char *since = cli_opt_text(s, OPT_SINCE);
    if (since && time_parse_iso(since, &q.since_ms))
        return cli_usage_error(c, "--since '%s' is not an ISO 8601 time", since);
    if (cli_opt_flag(s, OPT_JSON) && cli_opt_flag(s, OPT_CSV))
        return cli_usage_error(c, "--json and --csv exclude each other");
    db *d = cli_store_open(s, CLI_STORE_READ);
    if (!d)
        return CLI_WORK;
    int rc = CLI_OK;
    observation *obs = NULL;
    size_t nobs = 0;
    int found = db_history(d, book.isbn13, &q, &obs, &nobs);
    if (found == DB_NOTFOUND) {
        cli_error(c, "%s is not tracked", book.isbn13);
        rc = CLI_WORK;
    } else if (found != DB_OK) {
        cli_error(c, "%s", db_errmsg(d));
        rc = CLI_WORK;
    } else if (cli_opt_flag(s, OPT_JSON)) {
        buf out;
        buf_init(&out, CLI_OUTPUT_MAX);
        rc = cli_print_rendered(c, render_history(&out, book.isbn13, obs, nobs, RENDER_PRETTY),
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
