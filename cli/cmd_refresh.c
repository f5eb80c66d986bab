/*
 * cmd_refresh.c - `bookrank refresh [ISBN...]`: one refresh job run in this process (what cron
 * runs), one line per result (or --json at the end), a progress line on a terminal, exit 1 when
 * anything was blocked or failed.
 *
 * Threads: the observer runs on the jobs writer thread; it owns `results` and the printing until
 * jobs_stop() has returned, after which this thread reads them.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/timeutil.h"
#include "../jobs/jobs.h"
#include "../render/render.h"
#include "../common/grow.h"
#include "internal.h"

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
    progress bar;
    /* --json: writer thread until the runner stops */
    observation *results;
    size_t nresults, cap;
    int lost;                    /* results that could not be kept (out of memory) */
} refresh_out;

static void print_result(const observation *o)
{
    const char *title = o->title ? o->title : "?";
    if (o->status == OBS_OK) {
        char rank[48];
        cli_format_rank(o->rank, rank, sizeof rank);
        printf("- '%s' (%s) ranked %s on %s\n", title, o->isbn13, rank, o->source);
    } else {
        printf("- '%s' (%s) %s on %s%s%s\n", title, o->isbn13, obs_status_name(o->status),
               o->source, o->error ? ": " : "", o->error ? o->error : "");
    }
    fflush(stdout);
}

static void refresh_observer(void *ctx, int64_t job_id, const observation *o)
{
    refresh_out *out = ctx;
    (void)job_id;
    if (out->json) {
        observation *grown = grow_to(out->results, &out->cap, out->nresults + 1, sizeof *grown);
        if (grown) {
            out->results = grown;
            if (obs_copy(&out->results[out->nresults], o) == 0)
                out->nresults++;
            else
                out->lost++;
        } else {
            out->lost++;
        }
    } else {
        progress_clear(&out->bar);
        print_result(o);
    }
    progress_step(&out->bar);
}

static void results_free(refresh_out *out)
{
    for (size_t i = 0; i < out->nresults; i++)
        obs_clear(&out->results[i]);
    free(out->results);
    out->results = NULL;
    out->nresults = 0;
}

/* The progress line appears on a terminal; BOOKRANK_PROGRESS=1 asks for it anywhere (logs of a
 * long manual run, and the tests, which have no terminal). */
static int progress_wanted(int json)
{
    const char *force = getenv("BOOKRANK_PROGRESS");
    if (force && *force)
        return strcmp(force, "0") != 0;
    return !json && isatty(STDERR_FILENO);
}

static int print_summary(const cli_command *c, const db_job *job, refresh_out *out, double wall)
{
    if (out->json) {
        if (out->lost)
            cli_error(c, "%d results could not be kept for printing (out of memory)", out->lost);
        buf b;
        buf_init(&b, (size_t)1 << 30);
        int rc = cli_print_rendered(
            c, render_refresh(&b, job, out->results, out->nresults, wall, RENDER_PRETTY), &b);
        buf_free(&b);
        return rc;
    }
    printf("%lld of %lld fetched in %.1f s: %lld ok, %lld no_rank, %lld not_found, %lld blocked, "
           "%lld error%s\n",
           (long long)job->done, (long long)job->total, wall, (long long)job->counts[OBS_OK],
           (long long)job->counts[OBS_NO_RANK], (long long)job->counts[OBS_NOT_FOUND],
           (long long)job->counts[OBS_BLOCKED], (long long)job->counts[OBS_ERROR],
           job->state == JOB_CANCELLED ? " (interrupted)" : "");
    return CLI_OK;
}

int cmd_refresh(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    isbn *books;
    size_t n = s->nargs;
    int irc = cli_isbn_args(c, s->args, n, 0, &books);
    if (irc)
        return irc;
    cli_sources set = {0};
    if (cli_sources_build(s, &set)) {
        free(books);
        return CLI_USAGE;
    }
    long grace = cli_opt_int(s, OPT_GRACE, 10);
    jobs_config jc = {.db_path = cli_db_path(s), .flush_ms = 1000};
    cli_scraper_config(s, &jc.scraper);

    int rc = CLI_WORK;
    jobs *runner = NULL;
    refresh_out out = {.json = cli_opt_flag(s, OPT_JSON)};
    progress_init(&out.bar, progress_wanted(out.json));
    db *d = cli_store_open(s, CLI_STORE_WRITE);
    if (!d)
        goto done;
    if (n && db_books_add(d, books, n, NULL) != DB_OK) {
        cli_error(c, "%s", db_errmsg(d));
        goto done;
    }
    jc.sources = (const scr_source *const *)set.list;
    jc.nsources = set.n;
    jc.observer = refresh_observer;
    jc.observer_ctx = &out;
    install_stop_handlers();
    double started = time_mono_s();
    char *err = NULL;
    runner = jobs_start(&jc, &err);
    if (!runner) {
        cli_error(c, "%s", err ? err : "cannot start");
        free(err);
        goto done;
    }
    db_job job;
    int joined;
    char why[256];
    jobs_err jrc = jobs_refresh(runner, n ? books : NULL, n, &job, &joined, why, sizeof why);
    if (jrc != JOBS_OK) {
        cli_error(c, "%s", why[0] ? why : jobs_strerror(jrc));
        goto done;
    }
    progress_set_total(&out.bar, job.total);
    while (!jobs_wait(runner, job.id, 200))
        if (stop_signal)
            break;
    jobs_stop(runner, stop_signal ? (int)grace * 1000 : 0);
    runner = NULL;
    progress_clear(&out.bar);
    if (db_job_get(d, job.id, &job) != DB_OK) {
        cli_error(c, "%s", db_errmsg(d));
        goto done;
    }
    rc = print_summary(c, &job, &out, time_mono_s() - started);
    if (rc == CLI_OK &&
        (job.counts[OBS_BLOCKED] || job.counts[OBS_ERROR] || job.state != JOB_DONE))
        rc = CLI_WORK;
done:
    jobs_stop(runner, 0);
    results_free(&out);
    db_close(d);
    cli_sources_free(&set);
    free(books);
    return rc;
}
