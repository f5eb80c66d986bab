/*
 * cmd_extract.c - `bookrank extract --source NAME FILE|-`: a source's rules on a saved page,
 * printed as JSON (for users writing or debugging source rules).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../render/render.h"
#include "internal.h"

static int read_all(FILE *f, buf *out)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(out, chunk, n))
            return -1;
    return ferror(f) ? -1 : 0;
}

int cmd_extract(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    if (s->nargs != 1)
        return cli_usage_error(c, "give one FILE (or - for standard input)");
    if (s->nsources > 1)
        return cli_usage_error(c, "give one --source");
    cli_sources set = {0};
    if (cli_sources_build(s, &set))
        return CLI_USAGE;
    const char *path = s->args[0];
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        cli_error(c, "%s: %s", path, strerror(errno));
        cli_sources_free(&set);
        return CLI_USAGE;
    }
    buf page;
    buf_init(&page, SCR_MAX_PAGE + 1);
    int rc;
    if (read_all(f, &page)) {
        cli_error(c, "%s: %s", path, page.len >= SCR_MAX_PAGE ? "larger than 8 MiB" : "read error");
        rc = CLI_USAGE;
    } else {
        observation o;
        obs_init(&o);
        if (scr_extract(set.list[0], 0, page.data ? page.data : "", page.len, &o)) {
            cli_error(c, "out of memory");
            rc = CLI_WORK;
        } else {
            buf out;
            buf_init(&out, (size_t)1 << 20);
            rc = cli_print_rendered(c, render_extract(&out, &o, RENDER_PRETTY), &out);
            buf_free(&out);
        }
        obs_clear(&o);
    }
    if (f != stdin)
        fclose(f);
    buf_free(&page);
    cli_sources_free(&set);
    return rc;
}
