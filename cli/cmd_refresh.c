/*
 * cmd_refresh.c - `bookrank refresh [ID...]`: one refresh job run in this process (what cron
 * runs): an "At <time> on <sources>:" line, one line per result (or --json at the end; --quiet:
 * only the failures), a progress line on a terminal, a summary naming the finish time; exit 1
 * when anything was blocked or failed. Alert rules fire as results are stored; what they fired
 * is delivered before the exit (waiting at most 30 s).
 *
 * Threads: the observer runs on the jobs writer thread; it owns `results` and the printing until
 * jobs_stop() has returned, after which this thread reads them.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/timeutil.h"
#include "../jobs/jobs.h"
#include "../notify/notify.h"
#include "../render/render.h"
#include "../common/grow.h"
#include "internal.h"

/* SPEC §5: a cron refresh waits at most this long for its alert deliveries. */
#define REFRESH_DELIVERY_WAIT_MS 30000

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
    int json, quiet;
    progress bar;
    char at_line[512]; /* "At ... on ...:", printed first (--quiet: before a failure) */
    int at_printed;
    /* --json: writer thread until the runner stops */
    observation *results;
    size_t nresults, cap;
    int lost; /* results that could not be kept (out of memory) */
} refresh_out;

static int is_failure(obs_status st)
{
    return st == OBS_BLOCKED || st == OBS_ERROR;
}

static void print_at_line(refresh_out *out)
{
    if (!out->at_printed) {
        fputs(out->at_line, stdout);
        out->at_printed = 1;
    }
}

/* One result; title is the page's, else the book's known title. */
static void print_result(refresh_out *out, const observation *o, const char *title)
{
    if (out->quiet && !is_failure(o->status))
        return;
    print_at_line(out);
    if (!title)
        title = "?";
    if (o->status == OBS_OK) {
        char rank[48];
        cli_format_rank(o->rank, rank, sizeof rank);
        printf("- '%s' (%s) ranked %s on %s\n", title, o->book_id, rank, o->source);
    } else {
        printf("- '%s' (%s) %s on %s%s%s", title, o->book_id, obs_status_name(o->status), o->source,
               o->error ? ": " : "", o->error ? o->error : "");
        if (o->last_ok_rank >= 0) {
            char rank[48], at[32];
            cli_format_rank(o->last_ok_rank, rank, sizeof rank);
            time_format_iso(o->last_ok_at_ms, at, sizeof at);
            printf(" (last ok %s at %s)", rank, at);
        }
        printf("\n");
    }
    fflush(stdout);
}

static void refresh_observer(void *ctx, int64_t job_id, const observation *o, const char *title)
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
        print_result(out, o, o->title ? o->title : title);
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

/* Wakes the delivery loop after a commit that stored alert events (jobs writer thread); the
 * loop starts after the runner, and the pointer is cleared only after jobs_stop. */
static void events_stored(void *ctx)
{
    _Atomic(notify_deliverer *) *dv = ctx;
    notify_deliverer *d = atomic_load(dv);
    if (d)
        notify_deliverer_wake(d);
}

/* Sends what the run fired (and anything left due by earlier runs): at most
 * REFRESH_DELIVERY_WAIT_MS, none when nothing is pending; then stops the loop. */
static void deliver_and_stop(notify_deliverer *dv)
{
    if (!dv)
        return;
    int pending = stop_signal ? 0 : notify_deliverer_drain(dv, REFRESH_DELIVERY_WAIT_MS);
    if (pending > 0)
        log_warn("%d alert deliver%s still pending: retried by the next refresh or by serve",
                 pending, pending == 1 ? "y is" : "ies are");
    notify_deliverer_stop(dv);
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

/* previous_rank of each result, as the store has it now (the rank before this one of the same
 * book and source). Best effort: a result whose history cannot be read keeps null. */
static void fill_previous_ranks(db *d, refresh_out *out)
{
    for (size_t i = 0; i < out->nresults; i++) {
        observation *r = &out->results[i];
        db_history_query q = {.source = r->source, .limit = 1};
        observation *h = NULL;
        size_t n = 0;
        if (db_history(d, r->book_id, &q, &h, &n) == DB_OK && n == 1 &&
            h[0].fetched_at_ms == r->fetched_at_ms)
            r->previous_rank = h[0].previous_rank;
        db_observations_free(h, n);
    }
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
    int trouble = job->counts[OBS_BLOCKED] || job->counts[OBS_ERROR] || job->state != JOB_DONE;
    if (out->quiet && !trouble)
        return CLI_OK;
    print_at_line(out);
    char finished[32];
    time_format_iso(job->finished_at_ms > 0 ? job->finished_at_ms : time_now_ms(), finished,
                    sizeof finished);
    printf("%lld of %lld fetched in %.1f s, finished at %s: %lld ok, %lld no_rank, "
           "%lld not_found, %lld blocked, %lld error",
           (long long)job->done, (long long)job->total, wall, finished,
           (long long)job->counts[OBS_OK], (long long)job->counts[OBS_NO_RANK],
           (long long)job->counts[OBS_NOT_FOUND], (long long)job->counts[OBS_BLOCKED],
           (long long)job->counts[OBS_ERROR]);
    if (job->skipped)
        printf(", %lld skipped (a source that cannot address the book)", (long long)job->skipped);
    printf("%s\n", job->state == JOB_CANCELLED ? " (interrupted)" : "");
    return CLI_OK;
}

/* "At 2026-12-02T06:00:00Z on amazon.com, amazon.de:\n" */
static void format_at_line(refresh_out *out, const cli_sources *set)
{
    char now[32];
    time_format_iso(time_now_ms(), now, sizeof now);
    size_t len = (size_t)snprintf(out->at_line, sizeof out->at_line, "At %s on ", now);
    for (size_t i = 0; i < set->n && len < sizeof out->at_line; i++)
        len += (size_t)snprintf(out->at_line + len, sizeof out->at_line - len, "%s%s",
                                i ? ", " : "", set->names[i]);
    if (len + 3 > sizeof out->at_line)
        len = sizeof out->at_line - 3;
    memcpy(out->at_line + len, ":\n", 3);
}

int cmd_refresh(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    book_id *ids = NULL;
    size_t n = 0;
    int irc = cli_id_args(c, s->args, s->nargs, 0, &ids, &n);
    if (irc)
        return irc;
    if (cli_opt_flag(s, OPT_JSON) && cli_opt_flag(s, OPT_QUIET)) {
        free(ids);
        return cli_usage_error(c, "--json and --quiet exclude each other");
    }
    cli_sources set = {0};
    if (cli_sources_build(s, &set)) {
        free(ids);
        return CLI_USAGE;
    }
    cli_notify nc;
    int nrc = cli_notify_load(s, &nc);
    if (nrc) {
        cli_sources_free(&set);
        free(ids);
        return nrc;
    }
    long grace = cli_opt_int(s, OPT_GRACE, 10);
    long store_wait = cli_opt_int(s, OPT_STORE_WAIT, 60);
    static _Atomic(notify_deliverer *) deliverer;
    jobs_config jc = {.db_path = cli_db_path(s),
                      .flush_ms = 1000,
                      .store_wait_ms = (int)store_wait * 1000,
                      .busy_timeout_ms = cli_test_busy_ms(0),
                      .events_stored = events_stored,
                      .events_ctx = &deliverer};
    cli_scraper_config(s, &jc.scraper);

    int rc = CLI_WORK;
    jobs *runner = NULL;
    notify_deliverer *dv = NULL;
    refresh_out out = {.json = cli_opt_flag(s, OPT_JSON), .quiet = cli_opt_flag(s, OPT_QUIET)};
    progress_init(&out.bar, progress_wanted(out.json));
    char(*tracked)[14] = n ? calloc(n, sizeof *tracked) : NULL;
    const char **keys = n ? calloc(n, sizeof *keys) : NULL;
    db *d = NULL;
    if (n && (!tracked || !keys)) {
        cli_error(c, "out of memory");
        goto done;
    }
    if ((rc = cli_store_open(s, CLI_STORE_WRITE, &d)) != CLI_OK ||
        (rc = cli_alerts_sync(s, d)) != CLI_OK)
        goto done;
    rc = CLI_WORK;
    if (n && db_books_add(d, ids, n, NULL, tracked) != DB_OK) {
        cli_error(c, "%s", db_errmsg(d));
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        keys[i] = tracked[i];
    jc.sources = (const scr_source *const *)set.list;
    jc.nsources = set.n;
    jc.observer = refresh_observer;
    jc.observer_ctx = &out;
    install_stop_handlers();
    format_at_line(&out, &set);
    if (!out.json && !out.quiet)
        print_at_line(&out);
    double started = time_mono_s();
    char *err = NULL;
    runner = jobs_start(&jc, &err);
    if (!runner) {
        cli_error(c, "%s", err ? err : "cannot start");
        free(err);
        goto done;
    }
    /* Without it the refresh still runs: its events stay pending for the next run or serve. */
    atomic_store(&deliverer, dv = cli_deliverer_start(c, jc.db_path, &nc));
    db_job job;
    int joined;
    char why[256];
    jobs_err jrc = jobs_refresh(runner, n ? keys : NULL, n, JOB_BY_CLI, &job, &joined, why,
                                sizeof why);
    if (jrc != JOBS_OK) {
        cli_error(c, "%s", why[0] ? why : jobs_strerror(jrc));
        goto done;
    }
    progress_set_total(&out.bar, job.total);
    while (!jobs_wait(runner, job.id, 200))
        if (stop_signal)
            break;
    jobs_store_state store;
    jobs_store_health(runner, &store);
    jobs_stop(runner, stop_signal ? (int)grace * 1000 : 0);
    runner = NULL;
    progress_clear(&out.bar);
    if (db_job_get(d, job.id, &job) != DB_OK) {
        cli_error(c, "%s", db_errmsg(d));
        goto done;
    }
    if (out.json)
        fill_previous_ranks(d, &out);
    rc = print_summary(c, &job, &out, time_mono_s() - started);
    if (store.lost)
        cli_error(c,
                  "%lld observations could not be stored: %s (the database refused them for "
                  "--store-wait %ld s)",
                  (long long)store.lost, store.why, store_wait);
    if (rc == CLI_OK && (job.counts[OBS_BLOCKED] || job.counts[OBS_ERROR] || job.state != JOB_DONE))
        rc = CLI_WORK;
done:
    jobs_stop(runner, 0);
    /* After the summary (cron mails it as it comes), once the writer has stopped. */
    atomic_store(&deliverer, NULL);
    deliver_and_stop(dv);
    cli_notify_free(&nc);
    results_free(&out);
    db_close(d);
    cli_sources_free(&set);
    free(keys);
    free(tracked);
    free(ids);
    return rc;
}
