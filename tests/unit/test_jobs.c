/*
 * test_jobs.c - refresh jobs end to end against the fixture store and a temporary SQLite file:
 * counts and stored observations, joining all-books refreshes, the JOBS_MAX_ACTIVE cap,
 * jobs_get/jobs_wait/jobs_stop, and that the runner's lock is never held across a store call
 * (a refresh stuck on SQLite's write lock must not stall lookups, metrics or the curl workers).
 *
 * Needs FIXTURE_STORE_BIN and FIXTURES (as tests/run.sh sets them). Talks only to 127.0.0.1.
 * Threads: the test starts its own callers; every wait has a deadline, so a stall fails a check
 * instead of hanging the run.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/check.h"
#include "common/buf.h"
#include "common/ids.h"
#include "common/isbn.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "db/db.h"
#include "jobs/jobs.h"
#include "scraper/scraper.h"

extern char **environ;

static pid_t store_pid = -1;
static int store_stdin = -1;
static int store_port;
static char tmp_dir[64];

/* ---- the fixture store process (as test_pool.c starts it) ---------------------------- */

static int store_start(void)
{
    const char *bin = getenv("FIXTURE_STORE_BIN");
    const char *dir = getenv("FIXTURES");
    if (!bin || !dir) {
        printf("# FIXTURE_STORE_BIN and FIXTURES must be set\n");
        return -1;
    }
    int in[2], out[2];
    if (pipe(in) != 0)
        return -1;
    if (pipe(out) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char *argv[] = {(char *)(uintptr_t)bin, "--port", "0", "--fixtures",
                    (char *)(uintptr_t)dir, NULL};
    int rc = posix_spawn(&store_pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    store_stdin = in[1]; /* kept open: the store exits when it closes */
    if (rc != 0) {
        close(out[0]);
        store_pid = -1;
        return -1;
    }
    FILE *f = fdopen(out[0], "r");
    char line[64];
    int ok = f && fgets(line, sizeof line, f) && sscanf(line, "PORT %d", &store_port) == 1;
    if (f)
        fclose(f);
    else
        close(out[0]);
    return ok ? 0 : -1;
}

static void store_stop(void)
{
    if (store_stdin >= 0)
        close(store_stdin);
    if (store_pid <= 0)
        return;
    kill(store_pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(store_pid, NULL, WNOHANG) == store_pid)
            return;
        usleep(10000);
    }
    kill(store_pid, SIGKILL);
    waitpid(store_pid, NULL, 0);
}

static size_t collect(char *data, size_t size, size_t nmemb, void *userdata)
{
    return buf_append(userdata, data, size * nmemb) == BUF_OK ? size * nmemb : 0;
}

/* One request to the store's control API (a POST when body is not NULL); its answer into
 * *answer (which may be NULL). 0 on HTTP 200, else -1. */
static int store_call(const char *path, const char *body, buf *answer)
{
    char url[128];
    if (snprintf(url, sizeof url, "http://127.0.0.1:%d%s", store_port, path) >= (int)sizeof url)
        return -1;
    buf b;
    buf_init(&b, 1u << 20);
    CURL *c = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    long code = 0;
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK || code != 200)
        printf("# store %s: curl %d, HTTP %ld: %s\n", path, rc, code, b.data ? b.data : "");
    if (answer)
        *answer = b;
    else
        buf_free(&b);
    return rc == CURLE_OK && code == 200 ? 0 : -1;
}

/* Installs the store's default scenario (a JSON object text); 0 or -1. */
static int store_scenario(const char *dflt)
{
    char body[256];
    if (snprintf(body, sizeof body, "{\"default\":%s,\"books\":{}}", dflt) >= (int)sizeof body)
        return -1;
    return store_call("/_config", body, NULL);
}

/* Book requests the store has answered or is answering since its last /_config; -1 when it
 * cannot say. */
static long store_requests(void)
{
    buf b;
    if (store_call("/_stats", NULL, &b) != 0) {
        buf_free(&b);
        return -1;
    }
    json_t *stats = b.data ? json_loadb(b.data, b.len, 0, NULL) : NULL;
    json_t *n = json_object_get(stats, "requests");
    long requests = json_is_integer(n) ? (long)json_integer_value(n) : -1;
    json_decref(stats);
    buf_free(&b);
    return requests;
}

/* ---- books, the store file, the runner ------------------------------------------------ */

/* The n-th test book: a valid 978 ISBN whose ISBN-10 is the fixture store's key. */
static isbn make_book(int n)
{
    char d[16];
    snprintf(d, sizeof d, "%09d", 200000000 + n);
    int sum = 0;
    for (int i = 0; i < 9; i++)
        sum += (10 - i) * (d[i] - '0');
    int check = (11 - sum % 11) % 11;
    d[9] = check == 10 ? 'X' : (char)('0' + check);
    d[10] = '\0';
    isbn b;
    memset(&b, 0, sizeof b);
    if (isbn_parse(d, 10, &b) != ISBN_OK)
        printf("# bad generated ISBN %s\n", d);
    return b;
}

/* A fresh store file <tmp_dir>/<name>.db tracking nbooks books (written into books, which
 * may be NULL). Returns 0 or -1. */
static int make_store(const char *name, int nbooks, isbn *books, char *path, size_t pathlen)
{
    if (snprintf(path, pathlen, "%s/%s.db", tmp_dir, name) >= (int)pathlen)
        return -1;
    char *err = NULL;
    db *d = db_open(path, &err);
    if (!d) {
        printf("# db_open %s: %s\n", path, err ? err : "?");
        free(err);
        return -1;
    }
    isbn *list = calloc((size_t)(nbooks ? nbooks : 1), sizeof *list);
    book_id *bids = calloc((size_t)(nbooks ? nbooks : 1), sizeof *bids);
    int rc = list && bids ? 0 : -1;
    for (int i = 0; rc == 0 && i < nbooks; i++) {
        list[i] = make_book(i);
        char why[128];
        if (id_parse(list[i].isbn13, strlen(list[i].isbn13), &bids[i], why, sizeof why) != ID_OK ||
            strcmp(bids[i].id, list[i].isbn13) != 0) {
            printf("# id_parse %s: %s\n", list[i].isbn13, why);
            rc = -1;
        }
    }
    if (rc == 0 && nbooks && db_books_add(d, bids, (size_t)nbooks, NULL, NULL) != DB_OK) {
        printf("# db_books_add: %s\n", db_errmsg(d));
        rc = -1;
    }
    if (rc == 0 && books)
        memcpy(books, list, (size_t)nbooks * sizeof *list);
    free(list);
    free(bids);
    db_close(d);
    return rc;
}

static void remove_store(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[256];
        if (snprintf(p, sizeof p, "%s%s", path, suffixes[i]) < (int)sizeof p)
            unlink(p);
    }
}

static scr_source *sources[2];
static atomic_long observed; /* observer calls, all runners */

static void observer(void *ctx, int64_t job_id, const observation *obs, const char *title)
{
    (void)ctx, (void)job_id, (void)obs, (void)title;
    atomic_fetch_add(&observed, 1);
}

/* The ids of books[0..n) as the store has them (an ISBN book's id is its ISBN-13); points into
 * books. */
static void book_ids(const isbn *books, size_t n, const char **ids)
{
    for (size_t i = 0; i < n; i++)
        ids[i] = books[i].isbn13;
}

/* A runner with the scraper's queue holding at most queue_size fetches (0: the default). */
static jobs *runner_start_queue(const char *path, size_t nsources, int workers, int flush_ms,
                                size_t queue_size)
{
    jobs_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.db_path = path;
    scr_config_defaults(&cfg.scraper);
    cfg.scraper.workers = workers;
    cfg.scraper.per_host = workers;
    cfg.scraper.rate = 0;
    cfg.scraper.timeout_s = 20;
    cfg.scraper.retries = 0;
    cfg.scraper.cooldown_s = 0;
    cfg.scraper.backoff_base_s = 0.05;
    if (queue_size)
        cfg.scraper.queue_size = queue_size;
    cfg.sources = (const scr_source *const *)sources;
    cfg.nsources = nsources;
    cfg.flush_ms = flush_ms;
    cfg.observer = observer;
    char *err = NULL;
    jobs *j = jobs_start(&cfg, &err);
    if (!j)
        printf("# jobs_start: %s\n", err ? err : "?");
    free(err);
    return j;
}

static jobs *runner_start(const char *path, size_t nsources, int workers, int flush_ms)
{
    return runner_start_queue(path, nsources, workers, flush_ms, 0);
}

static int count_row(void *ctx, const observation *obs)
{
    (void)obs;
    (*(long *)ctx)++;
    return 0;
}

/* Observations stored in the file, all books. -1 when the store cannot be read. */
static long stored_rows(const char *path)
{
    char *err = NULL;
    db *d = db_open(path, &err);
    free(err);
    long n = 0;
    if (!d || db_export(d, count_row, &n) != DB_OK)
        n = -1;
    db_close(d);
    return n;
}

static int stored_job(const char *path, int64_t id, db_job *out)
{
    char *err = NULL;
    db *d = db_open(path, &err);
    free(err);
    int rc = d ? db_job_get(d, id, out) : DB_ERROR;
    db_close(d);
    return rc;
}

/* ---- a refresh of N books -------------------------------------------------------------- */

static void test_refresh_counts(void)
{
    enum { N = 30 };
    char path[256];
    isbn books[N];
    if (!CHECK(make_store("counts", N, books, path, sizeof path) == 0,
               "counts: store with books") ||
        !CHECK(store_scenario("{}") == 0, "counts: fixture store configured"))
        return;
    long observed_before = atomic_load(&observed);
    jobs *j = runner_start(path, 2, 4, 100);
    if (!CHECK(j != NULL, "counts: runner starts"))
        return;
    db_job job;
    int joined = -1;
    char why[128];
    jobs_err rc = jobs_refresh(j, NULL, 0, JOB_BY_SCHEDULE, &job, &joined, why, sizeof why);
    CHECK_INT(rc, JOBS_OK, "counts: all-books refresh starts");
    CHECK_INT(joined, 0, "counts: a new job, not joined");
    CHECK_INT(job.total, 2 * N, "counts: total = books x sources");
    CHECK(job.all_books, "counts: marked as all books");
    CHECK_STR(db_job_origin_name(job.started_by), "schedule", "counts: started_by as asked");
    CHECK_INT(job.skipped, 0, "counts: nothing skipped");
    CHECK_INT(jobs_wait(j, job.id, 30000), 1, "counts: job finishes");
    db_job now;
    CHECK_INT(jobs_get(j, job.id, &now), JOBS_OK, "counts: jobs_get after the end");
    CHECK_STR(db_job_state_name(now.state), "done", "counts: state done");
    CHECK_INT(now.done, 2 * N, "counts: done = total");
    CHECK_INT(now.counts[OBS_OK], 2 * N, "counts: every fetch ok");
    CHECK(now.finished_at_ms >= now.started_at_ms && now.finished_at_ms > 0,
          "counts: finished_at set");
    CHECK_INT(jobs_active(j), 0, "counts: nothing active afterwards");
    CHECK_INT(atomic_load(&observed) - observed_before, 2 * N,
              "counts: the observer saw every committed observation");
    jobs_stop(j, 0);

    /* Every observation is in the store: one per book and source. */
    char *err = NULL;
    db *d = db_open(path, &err);
    free(err);
    int per_book_ok = d != NULL;
    for (int i = 0; d && i < N; i++) {
        observation *obs = NULL;
        size_t n = 0;
        db_history_query q = {.source = NULL, .since_ms = 0, .limit = 0};
        if (db_history(d, books[i].isbn13, &q, &obs, &n) != DB_OK || n != 2 ||
            strcmp(obs[0].source, obs[1].source) == 0 || obs[0].status != OBS_OK ||
            obs[1].status != OBS_OK)
            per_book_ok = 0;
        db_observations_free(obs, n);
    }
    CHECK(per_book_ok, "counts: each book has one ok observation per source stored");
    db_close(d);
    CHECK_INT(stored_rows(path), 2 * N, "counts: stored rows = done");

    /* A later runner answers from the store. */
    j = runner_start(path, 2, 1, 100);
    if (CHECK(j != NULL, "counts: second runner starts")) {
        db_job old;
        CHECK_INT(jobs_get(j, job.id, &old), JOBS_OK, "counts: stored job found by a new runner");
        CHECK(old.state == JOB_DONE && old.done == 2 * N, "counts: stored job reads done");
        CHECK(old.started_by == JOB_BY_SCHEDULE && old.skipped == 0,
              "counts: stored job keeps started_by and skipped");
        CHECK_INT(jobs_get(j, 987654321, &old), JOBS_NOT_FOUND, "unknown job id: JOBS_NOT_FOUND");
        CHECK_STR(jobs_strerror(JOBS_NOT_FOUND), "no such job", "jobs_strerror(JOBS_NOT_FOUND)");
        jobs_stop(j, 0);
    }
    remove_store(path);
}

/* ---- two concurrent all-books refreshes give one job ----------------------------------- */

typedef struct refresh_call {
    jobs *j;
    const char *const *ids; /* NULL = all books */
    size_t n;
    jobs_err rc;
    db_job job;
    int joined;
    char why[160];
    atomic_int returned;
    int64_t returned_ms;
} refresh_call;

static void *refresh_thread(void *arg)
{
    refresh_call *c = arg;
    c->rc = jobs_refresh(c->j, c->ids, c->n, JOB_BY_API, &c->job, &c->joined, c->why,
                         sizeof c->why);
    c->returned_ms = time_mono_ms();
    atomic_store(&c->returned, 1);
    return NULL;
}

static void test_join(void)
{
    char path[256];
    if (!CHECK(make_store("join", 20, NULL, path, sizeof path) == 0, "join: store with books") ||
        !CHECK(store_scenario("{\"delay_ms\":300}") == 0, "join: fixture store slow"))
        return;
    jobs *j = runner_start(path, 1, 2, 100);
    if (!CHECK(j != NULL, "join: runner starts"))
        return;
    /* Another connection holds the write lock, so both requests are inside jobs_refresh at the
     * same time: the window between "is one running?" and "here is the new one" is wide open. */
    char *err = NULL;
    db *other = db_open(path, &err);
    free(err);
    int locked = other && db_begin(other) == DB_OK;
    CHECK(locked, "join: another connection holds the write lock");
    refresh_call a = {.j = j}, b = {.j = j};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, refresh_thread, &a);
    pthread_create(&tb, NULL, refresh_thread, &b);
    usleep(300 * 1000);
    if (locked)
        db_rollback(other);
    db_close(other);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.rc == JOBS_OK && b.rc == JOBS_OK, "join: both requests succeed");
    CHECK_INT(a.job.id, b.job.id, "join: both got the same job");
    CHECK_INT(a.joined + b.joined, 1, "join: exactly one of them joined");
    db_job extra;
    CHECK_INT(stored_job(path, a.job.id + 1, &extra), DB_NOTFOUND, "join: no second job row");
    CHECK_INT(stored_job(path, a.job.id - 1, &extra), DB_NOTFOUND, "join: no earlier job row");

    /* A third request while it runs joins it too. */
    refresh_call c = {.j = j};
    refresh_thread(&c);
    CHECK(c.rc == JOBS_OK && c.joined && c.job.id == a.job.id, "join: a later request joins");
    jobs_stop(j, 0);
    remove_store(path);
}

/* ---- JOBS_MAX_ACTIVE ------------------------------------------------------------------- */

static void test_busy(void)
{
    enum { N = JOBS_MAX_ACTIVE + 8 };
    char path[256];
    isbn books[N];
    if (!CHECK(make_store("busy", N, books, path, sizeof path) == 0, "busy: store with books") ||
        !CHECK(store_scenario("{\"delay_ms\":4000}") == 0, "busy: fixture store slow"))
        return;
    jobs *j = runner_start(path, 1, 1, 100);
    if (!CHECK(j != NULL, "busy: runner starts"))
        return;
    const char *ids[N];
    book_ids(books, N, ids);
    int ok = 0;
    db_job job;
    int joined;
    char why[160];
    for (int i = 0; i < JOBS_MAX_ACTIVE; i++)
        ok += jobs_refresh(j, &ids[i], 1, JOB_BY_API, &job, &joined, why, sizeof why) == JOBS_OK;
    CHECK_INT(ok, JOBS_MAX_ACTIVE, "busy: JOBS_MAX_ACTIVE given-book refreshes start");
    CHECK_INT(jobs_active(j), JOBS_MAX_ACTIVE, "busy: all of them active");
    jobs_err rc = jobs_refresh(j, &ids[JOBS_MAX_ACTIVE], 1, JOB_BY_API, &job, &joined, why,
                               sizeof why);
    CHECK_INT(rc, JOBS_BUSY, "busy: one more is JOBS_BUSY");
    CHECK(why[0] != '\0', "busy: with a reason");
    rc = jobs_refresh(j, NULL, 0, JOB_BY_SCHEDULE, &job, &joined, why, sizeof why);
    CHECK(rc == JOBS_OK && !joined, "busy: an all-books refresh is not capped");
    CHECK_INT(jobs_active(j), JOBS_MAX_ACTIVE + 1, "busy: 65 active");
    rc = jobs_refresh(j, &ids[JOBS_MAX_ACTIVE + 1], 1, JOB_BY_API, &job, &joined, why, sizeof why);
    CHECK_INT(rc, JOBS_BUSY, "busy: still JOBS_BUSY");
    jobs_stop(j, 0);
    db_job last;
    CHECK(stored_job(path, job.id, &last) == DB_OK && last.state == JOB_CANCELLED,
          "busy: jobs cut by jobs_stop are stored cancelled");
    remove_store(path);
}

/* ---- jobs_wait ------------------------------------------------------------------------- */

static void test_wait(void)
{
    char path[256];
    isbn books[2];
    if (!CHECK(make_store("wait", 2, books, path, sizeof path) == 0, "wait: store with books") ||
        !CHECK(store_scenario("{\"delay_ms\":1500}") == 0, "wait: fixture store slow"))
        return;
    jobs *j = runner_start(path, 1, 2, 100);
    if (!CHECK(j != NULL, "wait: runner starts"))
        return;
    const char *ids[2];
    book_ids(books, 2, ids);
    db_job job;
    int joined;
    char why[160];
    CHECK_INT(jobs_refresh(j, ids, 2, JOB_BY_CLI, &job, &joined, why, sizeof why), JOBS_OK,
              "wait: refresh of given books starts");
    CHECK(!job.all_books && job.total == 2, "wait: 2 fetches, not all books");
    CHECK_STR(db_job_origin_name(job.started_by), "cli", "wait: started_by cli");
    int64_t t0 = time_mono_ms();
    CHECK_INT(jobs_wait(j, job.id, 200), 0, "wait: times out on a slow job");
    int64_t waited = time_mono_ms() - t0;
    CHECK(waited >= 150 && waited < 1400, "wait: for about the timeout");
    CHECK_INT(jobs_wait(j, job.id, 20000), 1, "wait: returns 1 once done");
    db_job now;
    CHECK(jobs_get(j, job.id, &now) == JOBS_OK && now.state == JOB_DONE && now.done == 2,
          "wait: done with both observations");
    CHECK_INT(jobs_wait(j, job.id, 0), 1, "wait: a finished job returns at once");
    jobs_stop(j, 0);
    remove_store(path);
}

/* ---- jobs_stop with a short grace ------------------------------------------------------ */

static void test_stop(void)
{
    enum { N = 40 };
    char path[256];
    if (!CHECK(make_store("stop", N, NULL, path, sizeof path) == 0, "stop: store with books") ||
        !CHECK(store_scenario("{\"delay_ms\":100}") == 0, "stop: fixture store configured"))
        return;
    jobs *j = runner_start(path, 1, 2, 100);
    if (!CHECK(j != NULL, "stop: runner starts"))
        return;
    db_job job;
    int joined;
    char why[160];
    CHECK_INT(jobs_refresh(j, NULL, 0, JOB_BY_API, &job, &joined, why, sizeof why), JOBS_OK,
              "stop: refresh starts");
    usleep(600 * 1000);
    jobs_stop(j, 50);
    db_job last;
    CHECK_INT(stored_job(path, job.id, &last), DB_OK, "stop: job row readable");
    CHECK_STR(db_job_state_name(last.state), "cancelled", "stop: job stored cancelled");
    long rows = stored_rows(path);
    printf("# stop: done %lld of %lld, %ld rows stored\n", (long long)last.done,
           (long long)last.total, rows);
    CHECK(last.done <= rows, "stop: done never counts an observation that is not stored");
    CHECK(last.done < last.total, "stop: the job was cut short");
    CHECK(last.finished_at_ms > 0, "stop: finished_at set");
    remove_store(path);
}

/* ---- jobs_cancel ------------------------------------------------------------------------ */

static void test_cancel(void)
{
    enum { N = 100 };
    char path[256];
    isbn books[N];
    if (!CHECK(make_store("cancel", N, books, path, sizeof path) == 0,
               "cancel: store with books") ||
        !CHECK(store_scenario("{\"delay_ms\":100}") == 0, "cancel: fixture store configured"))
        return;
    /* A small pool queue too (beside the runner's own window of fetches submitted ahead), so
     * the feeder has to wait for room and a cancel stops real work. */
    jobs *j = runner_start_queue(path, 1, 2, 100, 4);
    if (!CHECK(j != NULL, "cancel: runner starts"))
        return;
    const char *ids[N];
    book_ids(books, N, ids);
    db_job job;
    int joined;
    char why[160];
    CHECK_INT(jobs_refresh(j, ids, N, JOB_BY_API, &job, &joined, why, sizeof why), JOBS_OK,
              "cancel: refresh starts");
    CHECK_INT(job.total, N, "cancel: one fetch per book");
    db_job now = job;
    for (int i = 0; i < 1000 && now.done == 0; i++) {
        usleep(10 * 1000);
        if (jobs_get(j, job.id, &now) != JOBS_OK)
            break;
    }
    CHECK(now.done > 0 && now.state == JOB_RUNNING, "cancel: the job has progress and runs");

    db_job out;
    memset(&out, 0, sizeof out);
    CHECK_INT(jobs_cancel(j, job.id, &out, why, sizeof why), JOBS_OK, "cancel: a running job");
    CHECK(out.id == job.id && out.state == JOB_RUNNING, "cancel: *out is the job, still running");
    CHECK_INT(jobs_wait(j, job.id, 20000), 1, "cancel: the job ends soon");
    db_job end;
    CHECK_INT(jobs_get(j, job.id, &end), JOBS_OK, "cancel: jobs_get after the end");
    CHECK_STR(db_job_state_name(end.state), "cancelled", "cancel: the job ends cancelled");
    printf("# cancel: done %lld of %lld\n", (long long)end.done, (long long)end.total);
    CHECK(end.done < end.total, "cancel: fewer than all fetched");
    CHECK(end.done >= now.done, "cancel: what was done before stays done");
    CHECK(end.finished_at_ms > 0, "cancel: finished_at set");

    memset(&out, 0, sizeof out);
    CHECK_INT(jobs_cancel(j, job.id, &out, why, sizeof why), JOBS_FINISHED,
              "cancel: cancelling an ended job is JOBS_FINISHED");
    CHECK(out.id == job.id && out.state == JOB_CANCELLED, "cancel: ... with the job as it ended");
    CHECK_INT(jobs_cancel(j, 987654321, &out, why, sizeof why), JOBS_NOT_FOUND,
              "cancel: an unknown id is JOBS_NOT_FOUND");
    jobs_stop(j, 0);

    db_job last;
    CHECK_INT(stored_job(path, job.id, &last), DB_OK, "cancel: job row readable");
    CHECK_STR(db_job_state_name(last.state), "cancelled", "cancel: stored cancelled");
    CHECK(last.done == end.done, "cancel: stored done as reported");
    CHECK_INT(stored_rows(path), last.done, "cancel: stored rows = done");
    remove_store(path);
}

/* ---- a book a source cannot address is skipped ----------------------------------------- */

static void test_skipped(void)
{
    char path[256];
    isbn books[1];
    if (!CHECK(make_store("skipped", 1, books, path, sizeof path) == 0,
               "skipped: store with a book") ||
        !CHECK(store_scenario("{}") == 0, "skipped: fixture store configured"))
        return;
    /* A 979 book has no ISBN-10: the sources' {isbn10} template cannot address it. */
    char *err = NULL;
    db *d = db_open(path, &err);
    free(err);
    book_id modern;
    char why[160];
    int ok = d && id_parse("9791090636071", 13, &modern, why, sizeof why) == ID_OK &&
             db_books_add(d, &modern, 1, NULL, NULL) == DB_OK;
    db_close(d);
    if (!CHECK(ok, "skipped: a 979 book tracked"))
        return;
    jobs *j = runner_start(path, 2, 2, 100);
    if (!CHECK(j != NULL, "skipped: runner starts"))
        return;
    db_job job;
    int joined;
    CHECK_INT(jobs_refresh(j, NULL, 0, JOB_BY_API, &job, &joined, why, sizeof why), JOBS_OK,
              "skipped: refresh starts");
    CHECK_INT(job.total, 2, "skipped: only the addressable book is fetched, from both sources");
    CHECK_INT(job.skipped, 2, "skipped: the 979 book counts as skipped on both sources");
    CHECK_INT(jobs_wait(j, job.id, 20000), 1, "skipped: job finishes");
    db_job end;
    CHECK(jobs_get(j, job.id, &end) == JOBS_OK && end.state == JOB_DONE && end.done == 2 &&
              end.counts[OBS_ERROR] == 0,
          "skipped: done, and a skip is not an error");
    jobs_stop(j, 0);
    db_job last;
    CHECK(stored_job(path, job.id, &last) == DB_OK && last.skipped == 2, "skipped: stored");
    remove_store(path);
}

/* ---- the runner lock is never held across a store call --------------------------------- */

typedef struct probe {
    jobs *j;
    int64_t id;
    jobs_err get_rc;
    db_job job;
    int active;
    scr_pool_stats stats;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int finished; /* guarded by lock */
} probe;

static void *probe_thread(void *arg)
{
    probe *p = arg;
    p->get_rc = jobs_get(p->j, p->id, &p->job);
    p->active = jobs_active(p->j);
    jobs_pool_stats(p->j, &p->stats);
    pthread_mutex_lock(&p->lock);
    p->finished = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Waits up to ms for the probe; whether it finished. */
static int probe_wait(probe *p, int ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    while (!p->finished && pthread_cond_timedwait(&p->cv, &p->lock, &deadline) == 0)
        ;
    int done = p->finished;
    pthread_mutex_unlock(&p->lock);
    return done;
}

static long pool_backlog(jobs *j)
{
    scr_pool_stats s;
    jobs_pool_stats(j, &s);
    return s.queued + s.in_flight;
}

static void test_lock(void)
{
    enum { N = 400 };
    char path[256];
    isbn books[N];
    if (!CHECK(make_store("lock", N, books, path, sizeof path) == 0, "lock: store with books") ||
        !CHECK(store_scenario("{\"delay_ms\":20}") == 0, "lock: fixture store configured"))
        return;
    jobs *j = runner_start(path, 1, 2, 100);
    if (!CHECK(j != NULL, "lock: runner starts"))
        return;
    db_job running;
    int joined;
    char why[160];
    CHECK_INT(jobs_refresh(j, NULL, 0, JOB_BY_SCHEDULE, &running, &joined, why, sizeof why),
              JOBS_OK, "lock: a long all-books job starts");
    db_job now = running;
    for (int i = 0; i < 1000 && now.done == 0; i++) {
        usleep(10 * 1000);
        if (jobs_get(j, running.id, &now) != JOBS_OK)
            break;
    }
    CHECK(now.done > 0 && now.state == JOB_RUNNING, "lock: it has committed progress and runs");

    /* Another connection takes SQLite's write lock; a refresh of a given book now waits for it
     * inside its db_job_create (up to the 5 s busy timeout). */
    char *err = NULL;
    db *other = db_open(path, &err);
    free(err);
    int locked = other && db_begin(other) == DB_OK;
    CHECK(locked, "lock: another connection holds the write lock");
    int64_t locked_at = time_mono_ms();
    const char *first = books[0].isbn13;
    refresh_call blocked = {.j = j, .ids = &first, .n = 1};
    pthread_t tb;
    pthread_create(&tb, NULL, refresh_thread, &blocked);
    usleep(300 * 1000);
    printf("# lock: the refresh %s on the store\n",
           atomic_load(&blocked.returned) ? "did not block" : "is blocked");

    /* Lookups and metrics from another thread must not wait for it (watchdog: 3 s). */
    probe p = {.j = j, .id = running.id};
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.cv, NULL);
    pthread_t tp;
    pthread_create(&tp, NULL, probe_thread, &p);
    int answered = probe_wait(&p, 3000);
    int64_t answered_ms = time_mono_ms() - locked_at;
    CHECK(answered, "lock: jobs_get, jobs_active and jobs_pool_stats return while the store is "
                    "locked by another connection");
    if (answered) {
        CHECK_INT(p.get_rc, JOBS_OK, "lock: jobs_get of the running job answers");
        CHECK(p.job.id == running.id && p.job.state == JOB_RUNNING,
              "lock: ... with the running job");
        CHECK(p.active >= 1, "lock: jobs_active counts it");
        printf("# lock: answered %lld ms after the store was locked\n", (long long)answered_ms);
    }

    /* The curl workers hand in results through on_result and go on fetching: the store keeps
     * seeing requests. (The pool's backlog is no measure: a job keeps only 2 x workers fetches
     * submitted ahead of its results.) */
    long before = store_requests();
    long backlog = pool_backlog(j);
    usleep(800 * 1000);
    long after = store_requests();
    printf("# lock: %ld fetches in 800 ms with the store locked (pool backlog %ld -> %ld)\n",
           after - before, backlog, pool_backlog(j));
    CHECK(before >= 0 && after - before >= 10,
          "lock: workers keep delivering results (on_result does not wait for the store)");

    if (locked)
        db_rollback(other);
    db_close(other);
    /* After the release everything must come back; if not, fail instead of hanging. */
    if (!probe_wait(&p, 15000)) {
        CHECK(0, "lock: the probe returned after the store was released");
        printf("# giving up: a thread is stuck\n");
        check_done();
        fflush(stdout);
        _exit(1);
    }
    pthread_join(tp, NULL);
    pthread_join(tb, NULL);
    CHECK_INT(blocked.rc, JOBS_OK, "lock: the blocked refresh succeeds once the store is free");
    CHECK(blocked.rc != JOBS_OK || blocked.job.id > running.id, "lock: ... as a new job");
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.lock);
    jobs_stop(j, 0);
    remove_store(path);
}

int main(void)
{
    log_set_level(LOG_WARN);
    if (scr_global_init() != 0) {
        CHECK(0, "scr_global_init");
        return check_done();
    }
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_jobs.XXXXXX");
    if (!CHECK(mkdtemp(tmp_dir) != NULL, "temporary directory")) {
        scr_global_cleanup();
        return check_done();
    }
    if (!CHECK(store_start() == 0, "fixture store starts")) {
        store_stop();
        rmdir(tmp_dir);
        return check_done();
    }
    char tmpl[128];
    snprintf(tmpl, sizeof tmpl, "http://127.0.0.1:%d/dp/{isbn10}", store_port);
    const char *names[2] = {"amazon.com", "amazon.de"};
    for (int i = 0; i < 2; i++) {
        char *err = NULL;
        sources[i] = scr_source_new_preset(names[i], tmpl, &err);
        if (!CHECK(sources[i] != NULL, "source for the fixture store"))
            printf("# %s\n", err ? err : "?");
        free(err);
    }
    if (sources[0] && sources[1]) {
        test_refresh_counts();
        test_join();
        test_busy();
        test_wait();
        test_stop();
        test_cancel();
        test_skipped();
        test_lock();
    }
    for (int i = 0; i < 2; i++)
        scr_source_free(sources[i]);
    store_stop();
    rmdir(tmp_dir);
    scr_global_cleanup();
    return check_done();
}
