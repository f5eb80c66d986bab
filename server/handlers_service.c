/*
 * handlers_service.c - what is not a book or a job: the CSV export, /api/config, /healthz,
 * /metrics and the dashboard's files. Threads: see handlers.h.
 */
#include "handlers_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/metrics.h"
#include "../common/timeutil.h"
#include "../web/web.h"
#include "limits.h"

/* How long /healthz waits for the write lock: a writer commits in milliseconds. */
#define HEALTH_LOCK_WAIT_MS 100
/* Another process holding the write lock longer than this makes the service degraded. */
#define HEALTH_BUSY_DEGRADED_MS 60000

typedef struct export_ctx {
    buf *out;
    int rc;             /* the first BUF_* error of a row */
    db_export_filter f; /* which rows */
} export_ctx;

static int export_row(void *ctx, const observation *obs)
{
    export_ctx *e = ctx;
    if (!db_export_wanted(&e->f, obs))
        return 0;
    e->rc = render_csv_row(e->out, obs);
    return e->rc != BUF_OK;
}

/* ?id=, ?source=, ?since= of the export into f (the id in id). 0, or -1 after answering. */
static int export_args(hctx *h, db_export_filter *f, char id[14])
{
    const char *v = srv_request_arg(h->req, "id");
    memset(f, 0, sizeof *f);
    if (v) {
        int r = h_query_book(h, "id", v, id);
        if (r == 1)
            h_error(h, HTTP_NOT_FOUND, "book_not_found", "that book is not tracked");
        if (r != 0)
            return -1;
        f->id = id;
    }
    f->source = srv_request_arg(h->req, "source");
    if ((v = srv_request_arg(h->req, "since")) && time_parse_iso(v, &f->since_ms) != 0) {
        h_error(h, HTTP_BAD_REQUEST, "invalid_query",
                "since must be an ISO 8601 time like 2026-11-24T12:00:00Z");
        return -1;
    }
    return 0;
}

void h_export(hctx *h, const char *arg)
{
    (void)arg;
    db *d = h_db(h);
    if (!d) {
        h_store_error(h, DB_ERROR);
        return;
    }
    export_ctx e = {.out = &h->resp->body};
    char id[14];
    if (export_args(h, &e.f, id))
        return;
    h_body_cap(h, SRV_EXPORT_MAX);
    e.rc = render_csv_header(&h->resp->body);
    db_err erc = e.rc == BUF_OK ? db_export(d, export_row, &e) : DB_OK;
    if (erc != DB_OK && e.rc == BUF_OK) {
        h_store_error(h, erc);
        return;
    }
    if (e.rc == BUF_OK &&
        h_header(h, "Content-Disposition", "attachment; filename=\"bookrank.csv\""))
        return;
    h_finish(h, e.rc, HTTP_OK, "text/csv; charset=utf-8",
             "export larger than " SRV_STR(SRV_EXPORT_MAX_MIB) " MiB");
}

static void say(char *why, size_t len, const char *fmt, ...) BR_PRINTF(3, 4);
static void say(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(why, len, fmt, ap) < 0)
        why[0] = '\0';
    va_end(ap);
}

static int readonly_errno(int e)
{
    return e == EROFS || e == EACCES || e == EPERM;
}

/*
 * What the file system says about the database file: 1 (read-only file or directory), 2 (a
 * read-only file system) or 3 (the disk is full) with why, 0 when nothing is wrong or the
 * location is no file (a PostgreSQL one; a missing file is db_connect's to report). Symbolic
 * links are followed, as SQLite does: its -wal and -shm files live beside the real file.
 */
static int store_fs_problem(const char *db_path, char *why, size_t len)
{
    char real[PATH_MAX];
    struct stat st;
    if (!db_path || !realpath(db_path, real) || stat(real, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    if (access(real, W_OK) != 0 && readonly_errno(errno)) {
        int e = errno;
        if (e == EROFS)
            say(why, len, "the database file %s is on a read-only file system", real);
        else
            say(why, len, "the database file %s is read-only (%s)", real, strerror(e));
        return e == EROFS ? 2 : 1;
    }
    char dir[PATH_MAX];
    const char *slash = strrchr(real, '/');
    size_t dlen = slash ? (size_t)(slash - real) : 0;
    memcpy(dir, real, dlen);
    dir[dlen] = '\0';
    if (dlen == 0)
        snprintf(dir, sizeof dir, "%s", slash ? "/" : ".");
    if (access(dir, W_OK) != 0 && readonly_errno(errno)) {
        int e = errno;
        /* SQLite writes through FILE-wal and FILE-shm: in a directory it may not write, they
         * must exist already and be writable. */
        char wal[PATH_MAX + 8], shm[PATH_MAX + 8];
        int side = snprintf(wal, sizeof wal, "%s-wal", real) < (int)sizeof wal &&
                   snprintf(shm, sizeof shm, "%s-shm", real) < (int)sizeof shm &&
                   access(wal, W_OK) == 0 && access(shm, W_OK) == 0;
        if (e == EROFS || !side) {
            const char *base = slash ? slash + 1 : real;
            say(why, len,
                "the directory %s holding the database is read-only (%s): SQLite cannot create "
                "%s-wal and %s-shm there",
                dir, strerror(e), base, base);
            return e == EROFS ? 2 : 1;
        }
    }
    struct statvfs vfs;
    /* root may use the blocks kept in reserve for it. */
    if (statvfs(dir, &vfs) == 0 && (geteuid() == 0 ? vfs.f_bfree : vfs.f_bavail) == 0) {
        say(why, len, "the disk holding the database (%s) is full", dir);
        return 3;
    }
    return 0;
}

int handlers_store_readonly(const char *db_path, char *why, size_t len)
{
    int p = store_fs_problem(db_path, why, len);
    return p == 3 ? 0 : p;
}

int h_store_problem(hctx *h, char *why, size_t len)
{
    const handlers_env *env = h->env;
    if (env->cfg->store_down) {
        say(why, len, "%s", env->cfg->store_down);
        return 1;
    }
    db *d = h_db(h);
    int64_t n;
    if (!d) {
        say(why, len, "%s", "the database cannot be opened (the log says why)");
        return 1;
    }
    if (db_books_count(d, &n) != DB_OK) {
        say(why, len, "the database cannot be read: %s", db_errmsg(d));
        return 1;
    }
    /* Whether a write could start: the one question every backend answers (a file SQLite
     * opened read-only refuses here). Nothing is written; a lock held by a committing writer
     * is waited for briefly. */
    db_set_busy_timeout(d, HEALTH_LOCK_WAIT_MS);
    db_err rc = db_begin(d);
    char detail[300];
    say(detail, sizeof detail, "%s", rc == DB_OK ? "" : db_errmsg(d));
    if (rc == DB_OK)
        (void)db_rollback(d);
    db_set_busy_timeout(d, SRV_STORE_WAIT_MS);
    char fs[700];
    int fsp = store_fs_problem(env->cfg->db_path, fs, sizeof fs);
    handlers_health *hh = env->health;
    if (rc == DB_BUSY && !fsp) {
        int64_t now = time_mono_ms(), since = 0;
        if (!atomic_compare_exchange_strong(&hh->busy_since_ms, &since, now) &&
            now - since >= HEALTH_BUSY_DEGRADED_MS) {
            say(why, len, "another process has held the database's write lock for %lld s",
                (long long)((now - since) / 1000));
            return 1;
        }
        return 0; /* held for a moment: a commit, a cron refresh */
    }
    atomic_store(&hh->busy_since_ms, 0);
    if (fsp) {
        say(why, len, "%s", fs);
        return 1;
    }
    /* The writer's batches, refused for over a minute (whatever the reason). */
    jobs_store_state ws = {0};
    if (env->runner)
        jobs_store_health(env->runner, &ws);
    if (ws.failing && time_now_ms() - ws.since_ms >= HEALTH_BUSY_DEGRADED_MS) {
        say(why, len, "the database has refused the fetched ranks for %lld s: %s",
            (long long)((time_now_ms() - ws.since_ms) / 1000), ws.why);
        return 1;
    }
    if (rc == DB_READONLY) {
        say(why, len, "the database is read-only (%s)", detail);
        return 1;
    }
    if (rc != DB_OK) {
        say(why, len, "the database cannot be written: %s", detail);
        return 1;
    }
    return 0;
}

/* Logs when the answer changes: an operator reads why in the log, once. */
static void note_health(const handlers_env *env, int degraded, const char *why)
{
    int was = atomic_exchange(&env->health->degraded, degraded);
    if (was == degraded)
        return;
    if (degraded)
        log_error("store: degraded: %s; changes are refused (503) until it is fixed", why);
    else if (was == 1)
        log_info("store: the database can be written again");
}

void handlers_check_store(const handlers_env *env)
{
    hctx h = {.env = env};
    char why[1024];
    int degraded = h_store_problem(&h, why, sizeof why);
    note_health(env, degraded, why);
    dbpool_give(env->pool, h.store);
}

void h_healthz(hctx *h, const char *arg)
{
    (void)arg;
    char why[1024];
    int degraded = h_store_problem(h, why, sizeof why);
    note_health(h->env, degraded, why);
    h_json(h, render_health(&h->resp->body, degraded ? "degraded" : "ok", degraded ? why : NULL),
           degraded ? HTTP_SERVICE_UNAVAILABLE : HTTP_OK);
}

void h_metrics(hctx *h, const char *arg)
{
    (void)arg;
    metrics_gauges g = {0};
    db *d = h_db(h);
    if (d && db_books_count(d, &g.books_tracked) != DB_OK)
        g.books_tracked = 0; /* the other metrics are still worth having */
    scr_pool_stats ps = {0};
    if (h->env->runner) { /* none while serving without the store */
        jobs_pool_stats(h->env->runner, &ps);
        g.jobs_active = jobs_active(h->env->runner);
    }
    g.queue_depth = ps.queued;
    g.fetches_in_flight = ps.in_flight;
    jobs_store_state store = {0};
    if (h->env->runner)
        jobs_store_health(h->env->runner, &store);
    g.store_failing = store.failing;
    g.store_held = store.held;
    g.store_lost = store.lost;
    h_body_cap(h, SRV_METRICS_MAX);
    h_finish(h, metrics_render(&h->resp->body, &g), HTTP_OK,
             "text/plain; version=0.0.4; charset=utf-8", "metrics larger than the limit");
}

void h_config(hctx *h, const char *arg)
{
    (void)arg;
    const srv_config *cfg = h->env->cfg;
    int rc = render_config(&h->resp->body, cfg->token && *cfg->token, BOOKRANK_VERSION,
                           cfg->source_names, cfg->nsources);
    h_json(h, rc, HTTP_OK);
}

void h_asset(hctx *h, const struct web_asset *a)
{
    srv_response *r = h->resp;
    r->status = HTTP_OK;
    r->content_type = a->content_type;
    r->fixed = a->data;
    r->fixed_len = a->len;
    r->dashboard = 1;
}
