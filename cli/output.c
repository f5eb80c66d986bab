/*
 * output.c - what every command shares: the store it opens, ISBN arguments, rank formatting and
 * printing rendered output.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *cli_db_path(const cli_settings *s)
{
    const char *p = cli_opt_text(s, OPT_DB);
    return p && *p ? p : "bookrank.db";
}

db *cli_store_open(const cli_settings *s, cli_store_mode mode)
{
    char *err = NULL;
    /* Reading commands migrate too for now; they open read-only once `bookrank migrate`
     * exists (the hardening issue). */
    (void)mode;
    db *d = db_open(cli_db_path(s), &err);
    if (!d) {
        cli_error(NULL, "%s", err ? err : "cannot open the database");
        free(err);
    }
    return d;
}

int cli_isbn_args(const cli_command *c, const char *const *args, size_t n, int need_one,
                  isbn **out)
{
    *out = NULL;
    if (need_one && n == 0)
        return cli_usage_error(c, "give at least one ISBN");
    isbn *books = calloc(n ? n : 1, sizeof *books);
    if (!books) {
        cli_error(c, "out of memory");
        return CLI_WORK;
    }
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        char why[160];
        if (isbn_parse_explain(args[i], strlen(args[i]), &books[i], why, sizeof why) != ISBN_OK) {
            cli_error(c, "invalid ISBN '%s': %s", args[i], why);
            bad++;
        }
    }
    if (bad) {
        cli_error(c, "nothing done (%d invalid)", bad);
        free(books);
        return CLI_USAGE;
    }
    *out = books;
    return CLI_OK;
}

void cli_format_rank(int64_t rank, char *out, size_t len)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)rank);
    size_t k = 0;
    if (len < 2 || n < 0)
        return;
    out[k++] = '#';
    for (int i = 0; i < n && k + 2 < len; i++) {
        if (i && (n - i) % 3 == 0)
            out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = '\0';
}

int cli_print_rendered(const cli_command *c, int rc, const buf *b)
{
    if (rc != BUF_OK) {
        cli_error(c, "%s", rc == BUF_TOOBIG ? "output too large" : "out of memory");
        return CLI_WORK;
    }
    if (b->len && fwrite(b->data, 1, b->len, stdout) != b->len) {
        cli_error(c, "cannot write the output");
        return CLI_WORK;
    }
    return fflush(stdout) == 0 ? CLI_OK : CLI_WORK;
}
