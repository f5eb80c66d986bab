/*
 * cmd_serve.c - `bookrank serve`: syncs the config file's alert rules, starts the jobs runner,
 * the alert delivery loop and the HTTP server, then this thread waits for signals and runs the
 * --refresh-every schedule until SIGINT/SIGTERM.
 *
 * Signals are taken synchronously here (sigtimedwait); every other thread blocks them, so no
 * handler runs on a worker or HTTP thread.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../common/buf.h"
#include "../common/log.h"
#include "../common/timeutil.h"
#include "../jobs/jobs.h"
#include "../notify/notify.h"
#include "../server/server.h"
#include "internal.h"

/* The shortest --refresh-every without --allow-short-interval (SPEC §2). */
#define CLI_MIN_REFRESH_EVERY_S 300

/* Each connection and each fetch's socket is a descriptor: use what the system allows. */
static void raise_descriptor_limit(void)
{
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max > 65536 ? 65536 : nofile.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &nofile) != 0)
            log_warn("cannot raise the descriptor limit; many connections may be refused");
    }
}

/* The token from --token or --token-file (malloc'd, caller frees; NULL = none). Returns CLI_OK
 * or CLI_USAGE after printing why. */
static int load_token(const cli_settings *s, char **out)
{
    const char *token = cli_opt_text(s, OPT_TOKEN), *path = cli_opt_text(s, OPT_TOKEN_FILE);
    *out = NULL;
    if (token && path)
        return cli_usage_error(s->cmd, "give --token or --token-file, not both");
    if (!path) {
        if (token && *token && !(*out = strdup(token))) {
            cli_error(s->cmd, "out of memory");
            return CLI_WORK;
        }
        return CLI_OK;
    }
    return cli_read_secret_file(s->cmd, "token-file", path, out);
}

/* Whether the --listen address only accepts connections from this machine. */
static int listen_is_loopback(const char *listen)
{
    return strncmp(listen, "127.", 4) == 0 || strncmp(listen, "[::1]:", 6) == 0 ||
           strncmp(listen, "localhost:", 10) == 0;
}

/* The schedule's interval in seconds (0 = off); -1 after printing why. */
static int64_t schedule_interval(const cli_settings *s)
{
    const char *every = cli_opt_text(s, OPT_REFRESH_EVERY);
    int64_t seconds = 0;
    if (!every || !*every || strcmp(every, "off") == 0)
        return 0;
    if (time_parse_duration(every, &seconds)) {
        cli_usage_error(s->cmd, "--refresh-every '%s' is not a duration like 30m, 6h or 1d", every);
        return -1;
    }
    /* A store asked for every book every few seconds soon answers with captchas: short
     * intervals are for test stores, and say so. */
    if (seconds < CLI_MIN_REFRESH_EVERY_S && !cli_opt_flag(s, OPT_ALLOW_SHORT_INTERVAL)) {
        cli_usage_error(s->cmd,
                        "--refresh-every '%s' is shorter than 5m; add "
                        "--allow-short-interval if you mean it (a test store, not Amazon)",
                        every);
        return -1;
    }
    return seconds;
}

/* Wakes the delivery loop after a commit that stored alert events (jobs writer thread). The
 * loop starts after the runner, so the pointer is set later; it is cleared only after
 * jobs_stop. */
static void events_stored(void *ctx)
{
    _Atomic(notify_deliverer *) *dv = ctx;
    notify_deliverer *d = atomic_load(dv);
    if (d)
        notify_deliverer_wake(d);
}

static void scheduled_refresh(jobs *runner)
{
    db_job job;
    int joined;
    char why[256];
    jobs_err jrc = jobs_refresh(runner, NULL, 0, JOB_BY_SCHEDULE, &job, &joined, why, sizeof why);
    if (jrc == JOBS_OK)
        log_info("scheduled refresh: job %lld%s", (long long)job.id,
                 joined ? " (already running)" : "");
    else
        log_error("scheduled refresh: %s", why[0] ? why : jobs_strerror(jrc));
}

/* When the next scheduled refresh starts (wall clock ms, 0 = none): written by the serve loop,
 * read by HTTP threads for GET /api/jobs. */
static _Atomic int64_t next_scheduled_ms;

static int64_t next_scheduled(void *ctx)
{
    (void)ctx;
    return atomic_load(&next_scheduled_ms);
}

/* Waits for SIGINT/SIGTERM, starting the scheduled refreshes meanwhile. */
static void serve_loop(const sigset_t *stop_set, jobs *runner, int64_t every, long grace)
{
    int64_t next_refresh = every ? time_mono_ms() + every * 1000 : 0;
    atomic_store(&next_scheduled_ms, every ? time_now_ms() + every * 1000 : 0);
    for (;;) {
        struct timespec wait = {1, 0};
        if (every) {
            int64_t left = next_refresh - time_mono_ms();
            if (left < 0)
                left = 0;
            wait.tv_sec = left / 1000;
            wait.tv_nsec = (left % 1000) * 1000000;
        }
        int sig = sigtimedwait(stop_set, NULL, &wait);
        if (sig == SIGHUP) {
            /* Operators send it after rotating logs; it must never stop the service. */
            if (log_reopen() != 0)
                log_error("SIGHUP: cannot reopen the log file: %s", strerror(errno));
            log_info("SIGHUP: log file reopened; carrying on");
            continue;
        }
        if (sig == SIGINT || sig == SIGTERM) {
            log_info("%s: stopping (grace %ld s)", sig == SIGINT ? "SIGINT" : "SIGTERM", grace);
            return;
        }
        if (every && time_mono_ms() >= next_refresh) {
            scheduled_refresh(runner);
            next_refresh = time_mono_ms() + every * 1000;
            atomic_store(&next_scheduled_ms, time_now_ms() + every * 1000);
        }
    }
}

int cmd_serve(const cli_settings *s)
{
    const cli_command *c = s->cmd;
    if (s->nargs)
        return cli_usage_error(c, "unexpected argument '%s'", s->args[0]);
    const char *listen = cli_opt_text(s, OPT_LISTEN) ? cli_opt_text(s, OPT_LISTEN)
                                                     : "127.0.0.1:8080";
    char *lerr = NULL;
    if (srv_listen_check(listen, &lerr)) {
        int urc = cli_usage_error(c, "%s", lerr ? lerr : "bad --listen");
        free(lerr);
        return urc;
    }
    int64_t every = schedule_interval(s);
    if (every < 0)
        return CLI_USAGE;
    const char *log_file = cli_opt_text(s, OPT_LOG_FILE);
    if (log_file && log_open_file(log_file) != 0) {
        cli_error(c, "--log-file %s: %s", log_file, strerror(errno));
        return CLI_USAGE;
    }
    char *token = NULL;
    int trc = load_token(s, &token);
    if (trc)
        return trc;
    cli_sources set = {0};
    if (cli_sources_build(s, &set)) {
        free(token);
        return CLI_USAGE;
    }
    cli_notify nc;
    if ((trc = cli_notify_load(s, &nc)) != CLI_OK) {
        cli_sources_free(&set);
        free(token);
        return trc;
    }
    /* A read-only store is served anyway (reads, and /healthz saying why changes fail). */
    char readonly[1024];
    int store_readonly = srv_store_readonly(cli_db_path(s), readonly, sizeof readonly);
    /* The config file's alert rules are in the store before anything can fire them. */
    db *sync_db = NULL;
    if (store_readonly) {
        if (s->nconfig_alerts)
            log_warn("the config file's alert rules are not stored: %s", readonly);
    } else if ((trc = cli_store_open(s, CLI_STORE_WRITE, &sync_db)) == CLI_OK) {
        trc = cli_alerts_sync(s, sync_db);
    }
    db_close(sync_db);
    if (trc != CLI_OK) {
        cli_notify_free(&nc);
        cli_sources_free(&set);
        free(token);
        return trc;
    }
    long grace = cli_opt_int(s, OPT_GRACE, 10);
    static _Atomic(notify_deliverer *) deliverer;
    /* The jobs' control connection serves HTTP threads too: it waits as briefly as they do. */
    jobs_config jc = {.db_path = cli_db_path(s),
                      .flush_ms = 1000,
                      .sources = (const scr_source *const *)set.list,
                      .nsources = set.n,
                      .busy_timeout_ms = cli_test_busy_ms(1000),
                      .events_stored = events_stored,
                      .events_ctx = &deliverer};
    cli_scraper_config(s, &jc.scraper);
    srv_config sc = {.listen = listen,
                     .db_path = cli_db_path(s),
                     .token = token,
                     .threads = (int)cli_opt_int(s, OPT_THREADS, 0),
                     .source_names = set.names,
                     .nsources = set.n,
                     .public_urls = s->public_urls,
                     .npublic_urls = s->npublic_urls,
                     .private_reads = cli_opt_flag(s, OPT_PRIVATE),
                     .next_scheduled = next_scheduled};
    if (sc.private_reads && !token) {
        cli_notify_free(&nc);
        cli_sources_free(&set);
        free(token);
        return cli_usage_error(c, "--private needs a token (--token-file or --token)");
    }
    raise_descriptor_limit();

    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char *err = NULL;
    srv *server = NULL;
    notify_deliverer *dv = NULL;
    char *store_down = NULL;
    jobs *runner = jobs_start(&jc, &err);
    if (!runner && store_readonly) {
        /* Not even readable (SQLite needs its -wal and -shm files beside the database): serve
         * without it, so that /healthz and every answer can say why. */
        store_down = buf_strdup_printf("%s (%s)", readonly, err ? err : "cannot open it");
        free(err);
        err = NULL;
        sc.store_down = store_down ? store_down : readonly;
        if (every)
            log_warn("--refresh-every is off: there is no database to refresh into");
        every = 0;
    }
    if (runner)
        atomic_store(&deliverer, dv = cli_deliverer_start(c, jc.db_path, &nc));
    if ((!runner && !sc.store_down) || (runner && !dv) ||
        !(server = srv_start(&sc, runner, &err))) {
        if (!runner || dv)
            cli_error(c, "%s", err ? err : "cannot start");
        free(err);
        free(store_down);
        srv_stop(server);
        jobs_stop(runner, 0);
        atomic_store(&deliverer, NULL);
        notify_deliverer_stop(dv);
        cli_notify_free(&nc);
        cli_sources_free(&set);
        free(token);
        return CLI_WORK;
    }
    /* Always printed (whatever the log level): scripts and tests wait for this line. */
    const char *colon = strrchr(listen, ':');
    fprintf(stderr, "listening on http://%.*s:%d\n", (int)(colon ? colon - listen : 0), listen,
            srv_port(server));
    log_info("database %s, %zu source(s)%s", sc.db_path, set.n,
             sc.token && *sc.token ? ", token required for changes" : "");
    if (!listen_is_loopback(listen) && !token)
        log_warn("listening on %s without a token: anyone who can reach it can change and "
                 "refresh everything; set --token-file (and see the README's Security section)",
                 listen);
    if (every) {
        char first[32];
        time_format_iso(time_now_ms() + every * 1000, first, sizeof first);
        log_info("refreshing all books every %lld s; the first scheduled refresh at %s",
                 (long long)every, first);
    }
    serve_loop(&stop_set, runner, every, grace);
    srv_stop(server);
    jobs_stop(runner, (int)grace * 1000);
    /* After the writer has stopped: nothing wakes the loop any more. Events not sent yet stay
     * pending for the next start. */
    atomic_store(&deliverer, NULL);
    notify_deliverer_stop(dv);
    cli_notify_free(&nc);
    cli_sources_free(&set);
    free(token);
    free(store_down);
    log_info("stopped");
    return CLI_OK;
}
