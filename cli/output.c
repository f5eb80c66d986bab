/*
 * output.c - what every command shares: the store it opens, ISBN arguments, secrets kept in
 * files, rank formatting and printing rendered output.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/grow.h"
#include "internal.h"

const char *cli_db_path(const cli_settings *s)
{
    const char *p = cli_opt_text(s, OPT_DB);
    return p && *p ? p : "bookrank.db";
}

int cli_store_open(const cli_settings *s, cli_store_mode mode, db **out)
{
    static const unsigned flags[] = {
        [CLI_STORE_READ] = DB_OPEN_READ_ONLY,
        [CLI_STORE_WRITE] = DB_OPEN_CREATE | DB_OPEN_MIGRATE,
        [CLI_STORE_MIGRATE] = DB_OPEN_MIGRATE,
    };
    char *err = NULL;
    db_err code = DB_OK;
    *out = db_connect(cli_db_path(s), flags[mode], &code, &err);
    if (*out)
        return CLI_OK;
    cli_error(s->cmd, "%s", err ? err : db_strerror(code));
    free(err);
    /* A missing file, or one that needs `bookrank migrate` (or a newer bookrank), is the
     * user's input; anything else is a failure of the work. */
    return code == DB_NOTFOUND || code == DB_SCHEMA ? CLI_USAGE : CLI_WORK;
}

typedef struct id_collect {
    const cli_command *c;
    book_id *ids;
    size_t n, cap;
    int bad, nomem;
} id_collect;

static int collect_id(void *ctx, size_t index, const char *entry, size_t len)
{
    id_collect *ic = ctx;
    (void)index;
    char why[160];
    book_id id;
    id_err e = id_parse(entry, len, &id, why, sizeof why);
    if (e != ID_OK) {
        cli_error(ic->c, "invalid id '%.*s': %s", (int)(len > 200 ? 200 : len), entry,
                  why[0] ? why : id_strerror(e));
        ic->bad++;
        return 0;
    }
    book_id *grown = grow_to(ic->ids, &ic->cap, ic->n + 1, sizeof *grown);
    if (!grown) {
        ic->nomem = 1;
        return 1;
    }
    ic->ids = grown;
    ic->ids[ic->n++] = id;
    return 0;
}

/* All of standard input into a malloc'd NUL-terminated buffer (at most CLI_STDIN_MAX bytes). */
#define CLI_STDIN_MAX ((size_t)64 << 20)
static char *read_stdin(size_t *len, int *toobig)
{
    buf b;
    buf_init(&b, CLI_STDIN_MAX);
    char chunk[65536];
    size_t n;
    *toobig = 0;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        int rc = buf_append(&b, chunk, n);
        if (rc != BUF_OK) {
            *toobig = rc == BUF_TOOBIG;
            buf_free(&b);
            return NULL;
        }
    }
    if (ferror(stdin)) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, len);
}

int cli_id_args(const cli_command *c, const char *const *args, size_t n, int need_one,
                book_id **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    id_collect ic = {.c = c};
    int from_stdin = 0;
    for (size_t i = 0; i < n && !ic.nomem; i++) {
        if (strcmp(args[i], "-") != 0) {
            size_t before = ic.n + (size_t)ic.bad;
            if (id_list_split(args[i], strlen(args[i]), collect_id, &ic) == 0 &&
                before == ic.n + (size_t)ic.bad) {
                cli_error(c, "invalid id '%s': empty", args[i]);
                ic.bad++;
            }
            continue;
        }
        if (from_stdin++) {
            free(ic.ids);
            return cli_usage_error(c, "'-' (standard input) may be given once");
        }
        size_t len = 0;
        int toobig = 0;
        char *text = read_stdin(&len, &toobig);
        if (!text) {
            cli_error(c, "%s",
                      toobig ? "standard input is larger than 64 MiB"
                             : "cannot read standard input");
            free(ic.ids);
            return toobig ? CLI_USAGE : CLI_WORK;
        }
        (void)id_list_split(text, len, collect_id, &ic);
        free(text);
    }
    if (ic.nomem) {
        free(ic.ids);
        cli_error(c, "out of memory");
        return CLI_WORK;
    }
    if (ic.bad) {
        free(ic.ids);
        cli_error(c, "nothing done (%d invalid)", ic.bad);
        return CLI_USAGE;
    }
    if (need_one && ic.n == 0) {
        free(ic.ids);
        return cli_usage_error(c, "give at least one id (ISBN, ASIN or product URL)%s",
                               from_stdin ? "; standard input held none" : "");
    }
    *out = ic.ids;
    *nout = ic.n;
    return CLI_OK;
}

int cli_resolve(const cli_command *c, db *d, const book_id *in, char out[14])
{
    db_err rc = db_book_resolve(d, in, out);
    if (rc == DB_OK)
        return CLI_OK;
    if (rc == DB_NOTFOUND)
        cli_error(c, "%s is not tracked", in->id);
    else
        cli_error(c, "%s", db_errmsg(d));
    return CLI_WORK;
}

int cli_test_busy_ms(int def)
{
    const char *v = getenv("BOOKRANK_TEST_BUSY_MS");
    char *end;
    long ms = v && *v ? strtol(v, &end, 10) : -1;
    return v && *v && !*end && ms >= 0 && ms <= 600000 ? (int)ms : def;
}

int cli_read_secret_file(const cli_command *c, const char *option, const char *path, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error(c, "--%s %s: %s", option, path, strerror(errno));
        return CLI_USAGE;
    }
    char text[4097];
    size_t n = fread(text, 1, sizeof text, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n == sizeof text) {
        cli_error(c, "--%s %s: %s", option, path, bad ? "read error" : "longer than 4096 bytes");
        return CLI_USAGE;
    }
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
        n--;
    text[n] = '\0';
    if (n == 0 || strlen(text) != n) {
        cli_error(c, "--%s %s: %s", option, path, n ? "holds a NUL byte" : "is empty");
        return CLI_USAGE;
    }
    if (!(*out = strdup(text))) {
        cli_error(c, "out of memory");
        return CLI_WORK;
    }
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
