/*
 * test_pool.c - the fetch pool against the fixture store: every fault's status, retries,
 * per-host concurrency, rate, cool-down, shutdown, and throughput under the limits.
 *
 * Needs FIXTURE_STORE_BIN (the fixture_store binary) and FIXTURES (the real pages' folder).
 * Talks only to 127.0.0.1 (and "localhost", as a second host name for the same store).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/check.h"
#include "common/buf.h"
#include "common/isbn.h"
#include "common/timeutil.h"
#include "scraper/scraper.h"

extern char **environ;

static pid_t store_pid = -1;
static int store_stdin = -1;
static int store_port;

/* ---- the fixture store process ------------------------------------------------------- */

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

/* One request to the store's control API; the body as a malloc'd string or NULL. */
static char *store_call(const char *method, const char *path, const char *json)
{
    char url[128];
    buf b;
    buf_init(&b, 64u << 20);
    if (snprintf(url, sizeof url, "http://127.0.0.1:%d%s", store_port, path) >= (int)sizeof url)
        return NULL;
    CURL *c = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (json) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    long code = 0;
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK || code != 200) {
        printf("# %s %s: curl %d, HTTP %ld: %s\n", method, path, rc, code, b.data ? b.data : "");
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, NULL);
}

static json_t *store_stats(void);

/*
 * Installs a configuration: default scenario and per-key scenarios (a JSON object text).
 * First waits for the store to finish requests the previous test gave up on (their delays
 * still run there and would count as in flight against this test's limits).
 */
static int store_config(const char *dflt, json_t *books)
{
    for (int i = 0; i < 1000; i++) {
        json_t *stats = store_stats();
        long busy = stats ? (long)json_integer_value(json_object_get(stats, "in_flight")) : 0;
        json_decref(stats);
        if (busy == 0)
            break;
        usleep(10000);
    }
    json_t *cfg = json_object();
    json_object_set_new(cfg, "default", json_loads(dflt ? dflt : "{}", 0, NULL));
    json_object_set_new(cfg, "books", books ? books : json_object());
    char *text = json_dumps(cfg, JSON_COMPACT);
    json_decref(cfg);
    char *answer = text ? store_call("POST", "/_config", text) : NULL;
    free(text);
    int ok = answer != NULL;
    free(answer);
    return ok ? 0 : -1;
}

static json_t *store_stats(void)
{
    char *text = store_call("GET", "/_stats", NULL);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return j;
}

static long stats_int(json_t *stats, const char *key)
{
    return (long)json_integer_value(json_object_get(stats, key));
}

static long stats_host_max(json_t *stats, const char *host)
{
    char name[64];
    snprintf(name, sizeof name, "%s:%d", host, store_port);
    return (long)json_integer_value(
        json_object_get(json_object_get(stats, "max_in_flight_by_host"), name));
}

static long stats_hits(json_t *stats, const char *key)
{
    return (long)json_integer_value(json_object_get(json_object_get(stats, "hits"), key));
}

/* ---- books and sources ----------------------------------------------------------------- */

/* The n-th test book: a valid 978 ISBN whose ISBN-10 is the store key. */
static scr_book make_book(int n)
{
    char d[16];
    snprintf(d, sizeof d, "%09d", 100000000 + n % 100000000);
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
    scr_book book;
    scr_book_from_isbn(&b, &book);
    return book;
}

static scr_book parse_book(const char *s)
{
    isbn b;
    memset(&b, 0, sizeof b);
    if (isbn_parse(s, strlen(s), &b) != ISBN_OK)
        printf("# bad ISBN %s\n", s);
    scr_book book;
    scr_book_from_isbn(&b, &book);
    return book;
}

static scr_source *make_source(const char *preset, const char *host)
{
    char tmpl[128];
    snprintf(tmpl, sizeof tmpl, "http://%s:%d/dp/{isbn10}", host, store_port);
    char *err = NULL;
    scr_source *src = scr_source_new_preset(preset, tmpl, &err);
    if (!src)
        printf("# source %s: %s\n", preset, err ? err : "?");
    free(err);
    return src;
}

/* ---- collecting results ---------------------------------------------------------------- */

typedef struct results results;
typedef struct request {
    results *set;
    observation *obs; /* NULL until reported, or when abandoned */
    int reports;      /* how many times the callback ran for it (must end at 1) */
    int64_t done_ms;  /* monotonic, when reported */
} request;

struct results {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int done, abandoned;
    int n;
    request *req;
};

static void results_init(results *rs, int n)
{
    pthread_mutex_init(&rs->lock, NULL);
    pthread_cond_init(&rs->cv, NULL);
    rs->done = rs->abandoned = 0;
    rs->n = n;
    rs->req = calloc((size_t)n, sizeof *rs->req);
    for (int i = 0; i < n; i++)
        rs->req[i].set = rs;
}

static void results_free(results *rs)
{
    for (int i = 0; i < rs->n; i++) {
        obs_clear(rs->req[i].obs);
        free(rs->req[i].obs);
    }
    free(rs->req);
    pthread_cond_destroy(&rs->cv);
    pthread_mutex_destroy(&rs->lock);
}

static void on_result(void *ctx, observation *obs)
{
    request *r = ctx;
    results *rs = r->set;
    pthread_mutex_lock(&rs->lock);
    if (r->obs) { /* a second report: keep the first, count the fault */
        obs_clear(obs);
        free(obs);
    } else {
        r->obs = obs;
    }
    r->reports++;
    r->done_ms = time_mono_ms();
    rs->done++;
    if (!obs)
        rs->abandoned++;
    pthread_cond_broadcast(&rs->cv);
    pthread_mutex_unlock(&rs->lock);
}

/* Waits until `count` results arrived or timeout_ms passed; returns whether they did. */
static int results_wait(results *rs, int count, int timeout_ms)
{
    int64_t deadline = time_mono_ms() + timeout_ms;
    pthread_mutex_lock(&rs->lock);
    while (rs->done < count && time_mono_ms() < deadline) {
        pthread_mutex_unlock(&rs->lock);
        usleep(5000);
        pthread_mutex_lock(&rs->lock);
    }
    int ok = rs->done >= count;
    pthread_mutex_unlock(&rs->lock);
    return ok;
}

static int all_reported_once(results *rs)
{
    for (int i = 0; i < rs->n; i++)
        if (rs->req[i].reports != 1)
            return 0;
    return 1;
}

static scr_config test_config(int workers, int per_host, double rate)
{
    scr_config cfg;
    scr_config_defaults(&cfg);
    cfg.workers = workers;
    cfg.per_host = per_host;
    cfg.rate = rate;
    cfg.timeout_s = 10;
    cfg.retries = 1;
    cfg.cooldown_s = 0;
    cfg.backoff_base_s = 0.05;
    return cfg;
}

static scr_pool *pool_or_die(const scr_config *cfg)
{
    char *err = NULL;
    scr_pool *pool = scr_pool_new(cfg, &err);
    if (!pool) {
        printf("# scr_pool_new: %s\n", err ? err : "?");
        free(err);
    }
    return pool;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_config_checks(void)
{
    scr_config cfg;
    scr_config_defaults(&cfg);
    CHECK(cfg.workers == 8 && cfg.per_host == 2 && cfg.rate == 1.0 && cfg.timeout_s == 30 &&
              cfg.retries == 2 && cfg.cooldown_s == 60 && cfg.backoff_base_s == 0.5 &&
              cfg.queue_size == 1024 && !cfg.user_agent && !cfg.proxy,
          "config defaults match the contract");
    char *err = NULL;
    cfg.workers = 0;
    CHECK(!scr_pool_new(&cfg, &err) && err && strstr(err, "workers"), "workers 0 is refused");
    free(err);
    err = NULL;
    scr_config_defaults(&cfg);
    cfg.per_host = 0;
    CHECK(!scr_pool_new(&cfg, &err) && err && strstr(err, "per-host"), "per_host 0 is refused");
    free(err);
    err = NULL;
    scr_config_defaults(&cfg);
    cfg.rate = -1;
    CHECK(!scr_pool_new(&cfg, &err) && err, "negative rate is refused");
    free(err);
    err = NULL;
    scr_config_defaults(&cfg);
    cfg.timeout_s = 0;
    CHECK(!scr_pool_new(&cfg, &err) && err, "timeout 0 is refused");
    free(err);
    scr_pool_free(NULL, 0);
    CHECK(1, "scr_pool_free(NULL) is a no-op");
}

typedef struct fault_case {
    const char *name;
    const char *preset;   /* source preset; NULL = amazon.com */
    const char *scenario; /* JSON; NULL = none (the book is not configured) */
    const char *isbn;     /* NULL = a generated book */
    obs_status want;
    int attempts;          /* -1 = any */
    int64_t rank;          /* -1 = do not check */
    const char *error_has; /* substring of the error message, NULL = do not check */
    int hits;              /* requests the store must have seen for the key, -1 = any */
    int64_t min_ms;        /* duration_ms at least this (a Retry-After waited out) */
} fault_case;

static const fault_case faults[] = {
    {"404 page -> not_found, never retried", NULL, "{\"page\":\"not_found\"}", NULL, OBS_NOT_FOUND,
     1, -1, NULL, 1, 0},
    {"captcha 200 -> blocked", NULL, "{\"page\":\"captcha\"}", NULL, OBS_BLOCKED, 1, -1, NULL, 1,
     0},
    {"captcha 503 -> blocked, not retried", NULL, "{\"page\":\"captcha\",\"status\":503}", NULL,
     OBS_BLOCKED, 1, -1, NULL, 1, 0},
    {"429 + Retry-After then success -> ok after 2 attempts", NULL,
     "{\"fail_first\":1,\"fail_status\":429,\"retry_after\":\"1\",\"rank\":4321}", NULL, OBS_OK, 2,
     4321, NULL, 2, 900},
    {"503 once then success -> ok after 2 attempts", NULL, "{\"fail_first\":1,\"rank\":777}", NULL,
     OBS_OK, 2, 777, NULL, 2, 0},
    {"503 every time -> error after retries", NULL, "{\"fail_first\":100}", NULL, OBS_ERROR, 2, -1,
     NULL, 2, 0},
    {"reset mid-body -> error", NULL, "{\"fault\":\"reset\"}", NULL, OBS_ERROR, 2, -1, NULL, 2, 0},
    {"truncated body -> error", NULL, "{\"fault\":\"truncate\"}", NULL, OBS_ERROR, 2, -1, NULL, 2,
     0},
    {"slower than the timeout -> error after retries+1 attempts", NULL, "{\"delay_ms\":2500}", NULL,
     OBS_ERROR, 2, -1, "timeout after 1 s", 2, 0},
    {"streamed 20 MiB body -> error, aborted at the cap", NULL, "{\"fault\":\"huge\"}", NULL,
     OBS_ERROR, 1, -1, "page larger than 8 MiB", 1, 0},
    {"12 MB page with Content-Length -> error", NULL, "{\"size\":12000000}", NULL, OBS_ERROR, 1, -1,
     "page larger than 8 MiB", 1, 0},
    {"redirect loop -> error", NULL, "{\"fault\":\"redirect_loop\"}", NULL, OBS_ERROR, 1, -1,
     "too many redirects", -1, 0},
    {"empty 200 -> error", NULL, "{\"page\":\"empty\"}", NULL, OBS_ERROR, 1, -1, NULL, 1, 0},
    {"invalid UTF-8 and NULs -> ok", NULL, "{\"page\":\"invalid_utf8\",\"rank\":555}", NULL, OBS_OK,
     1, 555, NULL, 1, 0},
    {"gzip-encoded page -> ok", NULL, "{\"gzip\":true,\"size\":200000,\"rank\":999}", NULL, OBS_OK,
     1, 999, NULL, 1, 0},
    {"generated page with hostile title -> ok", NULL,
     "{\"rank\":123456,\"title\":\"<script>alert(1)</script> & \\\"x\\\"\"}", NULL, OBS_OK, 1,
     123456, NULL, 1, 0},
    {"product page without rank -> no_rank", NULL, "{\"page\":\"no_rank\"}", NULL, OBS_NO_RANK, 1,
     -1, NULL, 1, 0},
    {"real amazon.com page -> ok #5838", "amazon.com",
     "{\"page\":\"fixture:amazon_com_book_0131103628_2019_salesrank_li.html\"}", "0131103628",
     OBS_OK, 1, 5838, NULL, 1, 0},
    {"real amazon.ca page -> ok #23906", "amazon.ca",
     "{\"page\":\"fixture:amazon_ca_book_0131103628_2019_salesrank_li.html\"}", NULL, OBS_OK, 1,
     23906, NULL, 1, 0},
    {"real amazon.co.uk page -> ok #929084", "amazon.co.uk",
     "{\"page\":\"fixture:amazon_co_uk_book_1849757097_2024_detailbullets.html\"}", NULL, OBS_OK, 1,
     929084, NULL, 1, 0},
    {"real amazon.de page -> ok #13222", "amazon.de",
     "{\"page\":\"fixture:amazon_de_book_0131103628_2019_salesrank_li.html\"}", NULL, OBS_OK, 1,
     13222, NULL, 1, 0},
    {"real amazon.fr page -> ok #11406", "amazon.fr",
     "{\"page\":\"fixture:amazon_fr_book_2266309846_2022_detailbullets.html\"}", NULL, OBS_OK, 1,
     11406, NULL, 1, 0},
    {"real amazon.fr page without rank -> no_rank", "amazon.fr",
     "{\"page\":\"fixture:amazon_fr_book_2956470337_2021_no_rank.html\"}", NULL, OBS_NO_RANK, 1, -1,
     NULL, 1, 0},
    {"979 book with an {isbn10} template -> error without a fetch", NULL, NULL, "9791090636071",
     OBS_ERROR, 0, -1, "cannot address this book", 0, 0},
    {"429 + Retry-After as an HTTP date 3 s ahead -> waited out, ok", NULL,
     "{\"fail_first\":1,\"fail_status\":429,\"retry_after\":\"%s\"}", NULL, OBS_OK, 2, -1, NULL, 2,
     900},
};
#define NFAULTS (int)(sizeof faults / sizeof faults[0])

static void test_faults(void)
{
    scr_book books[NFAULTS];
    scr_source *sources[NFAULTS];
    json_t *cfg_books = json_object();
    char date[64];
    /* 3 s ahead: on a loaded machine the setup below may take a second or two before the
     * request is made, and the wait must still be one (the check asks for 900 ms). */
    time_t later = time(NULL) + 3;
    struct tm tm;
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&later, &tm));
    for (int i = 0; i < NFAULTS; i++) {
        books[i] = faults[i].isbn ? parse_book(faults[i].isbn) : make_book(1000 + i);
        sources[i] = make_source(faults[i].preset ? faults[i].preset : "amazon.com", "127.0.0.1");
        if (faults[i].scenario) {
            char scen[256];
            snprintf(scen, sizeof scen, faults[i].scenario, date);
            json_object_set_new(cfg_books, books[i].isbn10, json_loads(scen, 0, NULL));
        }
    }
    CHECK(store_config(NULL, cfg_books) == 0, "faults: store configured");

    scr_config cfg = test_config(NFAULTS, NFAULTS, 0); /* all at once: Retry-After pauses */
    cfg.timeout_s = 1;
    scr_pool *pool = pool_or_die(&cfg);
    CHECK(pool != NULL, "faults: pool starts");
    if (!pool)
        return;
    results rs;
    results_init(&rs, NFAULTS);
    int submitted = 1;
    for (int i = 0; i < NFAULTS; i++)
        submitted &= sources[i] &&
                     scr_pool_submit(pool, sources[i], &books[i], on_result, &rs.req[i]) == 0;
    CHECK(submitted, "faults: every request accepted");
    CHECK(results_wait(&rs, NFAULTS, 30000), "faults: every request reported");
    scr_pool_free(pool, 0);
    json_t *stats = store_stats();

    for (int i = 0; i < NFAULTS; i++) {
        const fault_case *fc = &faults[i];
        const observation *o = rs.req[i].obs;
        char what[200];
        snprintf(what, sizeof what, "%s", fc->name);
        int ok = o && o->status == fc->want && (fc->attempts < 0 || o->attempts == fc->attempts) &&
                 (fc->rank < 0 || o->rank == fc->rank) &&
                 (!fc->error_has || (o->error && strstr(o->error, fc->error_has))) &&
                 strcmp(o->book_id, books[i].id) == 0 && strcmp(o->book_id, books[i].isbn13) == 0 &&
                 o->source && strcmp(o->source, fc->preset ? fc->preset : "amazon.com") == 0 &&
                 o->fetched_at_ms > 1700000000000LL && o->duration_ms >= 0 &&
                 (fc->want != OBS_ERROR || (o->error && o->error[0])) &&
                 o->duration_ms >= fc->min_ms;
        CHECK(ok, what);
        if (!ok && o)
            printf("#   got status %s attempts %d rank %lld http %d error '%s' source %s "
                   "duration %lld ms\n",
                   obs_status_name(o->status), o->attempts, (long long)o->rank, o->http_status,
                   o->error ? o->error : "", o->source ? o->source : "(null)",
                   (long long)o->duration_ms);
        if (fc->hits >= 0 && fc->scenario) {
            snprintf(what, sizeof what, "%s: store saw %d request(s)", fc->name, fc->hits);
            CHECK_INT(stats_hits(stats, books[i].isbn10), fc->hits, what);
        }
    }
    const observation *ra = rs.req[3].obs;
    CHECK(ra && ra->http_status == 200, "429 then 200: the final answer's status is recorded");
    const observation *nf = rs.req[0].obs;
    CHECK(nf && nf->http_status == 404, "404: http_status recorded");
    CHECK(all_reported_once(&rs), "faults: each request reported exactly once");
    json_decref(stats);
    results_free(&rs);
    for (int i = 0; i < NFAULTS; i++)
        scr_source_free(sources[i]);
}

/* Two host names for one store: each may have per_host requests in flight, no more. */
static void test_per_host(void)
{
    enum { PER_HOST = 3, N = 30 };
    scr_source *a = make_source("amazon.com", "127.0.0.1");
    scr_source *b = make_source("amazon.com", "localhost");
    CHECK(store_config("{\"delay_ms\":100}", NULL) == 0, "per-host: store configured");
    scr_config cfg = test_config(16, PER_HOST, 0);
    scr_pool *pool = pool_or_die(&cfg);
    if (!pool || !a || !b) {
        CHECK(0, "per-host: setup");
        return;
    }
    results rs;
    results_init(&rs, 2 * N);
    scr_book books[N];
    for (int i = 0; i < N; i++) {
        books[i] = make_book(2000 + i);
        scr_pool_submit(pool, a, &books[i], on_result, &rs.req[2 * i]);
        scr_pool_submit(pool, b, &books[i], on_result, &rs.req[2 * i + 1]);
    }
    CHECK(results_wait(&rs, 2 * N, 30000), "per-host: every request reported");
    scr_pool_free(pool, 0);
    int all_ok = 1;
    for (int i = 0; i < 2 * N; i++)
        all_ok &= rs.req[i].obs && rs.req[i].obs->status == OBS_OK;
    CHECK(all_ok, "per-host: every page ok");
    json_t *stats = store_stats();
    long m1 = stats_host_max(stats, "127.0.0.1"), m2 = stats_host_max(stats, "localhost");
    printf("# max in flight: 127.0.0.1 %ld, localhost %ld, overall %ld\n", m1, m2,
           stats_int(stats, "max_in_flight"));
    CHECK(m1 >= 1 && m1 <= PER_HOST, "per-host: 127.0.0.1 never over per_host");
    CHECK(m2 >= 1 && m2 <= PER_HOST, "per-host: localhost never over per_host");
    CHECK(m1 >= 2 && m2 >= 2, "per-host: each host did get parallel requests");
    CHECK(stats_int(stats, "max_in_flight") > PER_HOST,
          "per-host: the two hosts were fetched at the same time");
    json_decref(stats);
    results_free(&rs);
    scr_source_free(a);
    scr_source_free(b);
}

static void test_rate(void)
{
    enum { N = 20 };
    scr_source *src = make_source("amazon.com", "127.0.0.1");
    CHECK(store_config(NULL, NULL) == 0, "rate: store configured");
    scr_config cfg = test_config(4, 4, 5.0);
    scr_pool *pool = pool_or_die(&cfg);
    if (!pool || !src) {
        CHECK(0, "rate: setup");
        return;
    }
    results rs;
    results_init(&rs, N);
    int64_t t0 = time_mono_ms();
    for (int i = 0; i < N; i++) {
        scr_book book = make_book(3000 + i);
        scr_pool_submit(pool, src, &book, on_result, &rs.req[i]);
    }
    CHECK(results_wait(&rs, N, 30000), "rate: every request reported");
    int64_t elapsed = time_mono_ms() - t0;
    scr_pool_free(pool, 0);
    json_t *stats = store_stats();
    json_t *arr = json_object_get(stats, "arrivals_ms");
    int64_t min_gap = INT64_MAX;
    for (size_t i = 1; i < json_array_size(arr); i++) {
        int64_t gap = json_integer_value(json_array_get(arr, i)) -
                      json_integer_value(json_array_get(arr, i - 1));
        if (gap < min_gap)
            min_gap = gap;
    }
    printf("# rate 5/s: %d requests in %lld ms, smallest arrival gap %lld ms\n", N,
           (long long)elapsed, (long long)min_gap);
    CHECK_INT(json_array_size(arr), N, "rate: store saw every request once");
    CHECK(elapsed >= 3700 && elapsed < 10000, "rate 5/s: 20 requests take about 3.8 s");
    CHECK(min_gap >= 150, "rate 5/s: requests arrive at least ~200 ms apart");
    json_decref(stats);
    results_free(&rs);
    scr_source_free(src);
}

static void test_cooldown(void)
{
    scr_source *a = make_source("amazon.com", "127.0.0.1");
    scr_source *b = make_source("amazon.com", "localhost");
    scr_book captcha = make_book(4000), next = make_book(4001), other = make_book(4002);
    json_t *books = json_object();
    json_object_set_new(books, captcha.isbn10, json_loads("{\"page\":\"captcha\"}", 0, NULL));
    json_object_set_new(books, other.isbn10, json_loads("{\"delay_ms\":100}", 0, NULL));
    CHECK(store_config(NULL, books) == 0, "cooldown: store configured");
    /* One worker: it must skip the paused host's request and serve the other host first. */
    scr_config cfg = test_config(1, 1, 0);
    cfg.cooldown_s = 1.0;
    scr_pool *pool = pool_or_die(&cfg);
    if (!pool || !a || !b) {
        CHECK(0, "cooldown: setup");
        return;
    }
    results rs;
    results_init(&rs, 3);
    scr_pool_submit(pool, a, &captcha, on_result, &rs.req[0]);
    scr_pool_submit(pool, a, &next, on_result, &rs.req[1]);
    scr_pool_submit(pool, b, &other, on_result, &rs.req[2]);
    CHECK(results_wait(&rs, 3, 10000), "cooldown: every request reported");
    scr_pool_free(pool, 0);
    request *r = rs.req;
    CHECK(r[0].obs && r[0].obs->status == OBS_BLOCKED, "cooldown: captcha is blocked");
    CHECK(r[1].obs && r[1].obs->status == OBS_OK && r[2].obs && r[2].obs->status == OBS_OK,
          "cooldown: the other books are ok");
    int64_t gap_same = r[1].done_ms - r[0].done_ms, gap_other = r[2].done_ms - r[0].done_ms;
    printf("# after blocked: same host +%lld ms, other host +%lld ms\n", (long long)gap_same,
           (long long)gap_other);
    CHECK(gap_same >= 950, "cooldown: the blocked host waits cooldown_s before its next request");
    CHECK(gap_other < 700, "cooldown: another host is not paused (and the worker served it)");
    results_free(&rs);
    scr_source_free(a);
    scr_source_free(b);
}

static long pool_in_flight(scr_pool *pool, long *queued)
{
    scr_pool_stats st;
    scr_pool_stats_get(pool, &st);
    if (queued)
        *queued = st.queued;
    return st.in_flight;
}

static int wait_in_flight(scr_pool *pool, long want)
{
    for (int i = 0; i < 400; i++) {
        if (pool_in_flight(pool, NULL) == want)
            return 1;
        usleep(5000);
    }
    return 0;
}

static void test_shutdown(void)
{
    scr_source *src = make_source("amazon.com", "127.0.0.1");
    if (!src) {
        CHECK(0, "shutdown: setup");
        return;
    }

    /* In-flight requests far longer than the grace: aborted and reported abandoned. */
    CHECK(store_config("{\"delay_ms\":3000}", NULL) == 0, "shutdown: store configured");
    scr_config cfg = test_config(4, 4, 0);
    scr_pool *pool = pool_or_die(&cfg);
    results rs;
    results_init(&rs, 10);
    for (int i = 0; i < 10; i++) {
        scr_book book = make_book(5000 + i);
        scr_pool_submit(pool, src, &book, on_result, &rs.req[i]);
    }
    CHECK(wait_in_flight(pool, 4), "shutdown: 4 requests in flight");
    long queued = -1;
    pool_in_flight(pool, &queued);
    CHECK_INT(queued, 6, "shutdown: 6 requests queued");
    usleep(100000);
    int64_t t0 = time_mono_ms();
    scr_pool_free(pool, 300);
    int64_t took = time_mono_ms() - t0;
    printf("# free(grace 300 ms) with 4 long requests in flight took %lld ms\n", (long long)took);
    CHECK(took >= 280 && took < 1800, "shutdown: in-flight requests aborted soon after the grace");
    CHECK_INT(rs.abandoned, 10, "shutdown: all 10 reported abandoned");
    CHECK(all_reported_once(&rs), "shutdown: each reported exactly once");
    results_free(&rs);

    /* Short requests within the grace finish normally; the queued ones are abandoned. */
    CHECK(store_config("{\"delay_ms\":400}", NULL) == 0, "shutdown 2: store configured");
    cfg = test_config(2, 2, 0);
    pool = pool_or_die(&cfg);
    results_init(&rs, 6);
    for (int i = 0; i < 6; i++) {
        scr_book book = make_book(5100 + i);
        scr_pool_submit(pool, src, &book, on_result, &rs.req[i]);
    }
    CHECK(wait_in_flight(pool, 2), "shutdown 2: 2 requests in flight");
    scr_pool_stop(pool);
    scr_book late = make_book(5199);
    request dummy = {&rs, NULL, 0, 0};
    CHECK_INT(scr_pool_submit(pool, src, &late, on_result, &dummy), -1,
              "shutdown 2: submit after stop is refused");
    t0 = time_mono_ms();
    scr_pool_free(pool, 5000);
    took = time_mono_ms() - t0;
    CHECK(took < 2000, "shutdown 2: free returns once in-flight requests finish");
    CHECK_INT(rs.abandoned, 4, "shutdown 2: the 4 queued requests are abandoned");
    int finished = 0;
    for (int i = 0; i < 6; i++)
        finished += rs.req[i].obs && rs.req[i].obs->status == OBS_OK;
    CHECK_INT(finished, 2, "shutdown 2: the 2 in-flight requests finish ok within the grace");
    CHECK(all_reported_once(&rs) && dummy.reports == 0, "shutdown 2: each reported exactly once");
    results_free(&rs);

    /* A retry waiting out a long Retry-After is dropped at once, not slept through. */
    scr_book book = make_book(5200);
    json_t *books = json_object();
    json_object_set_new(books, book.isbn10,
                        json_loads("{\"fail_first\":9,\"retry_after\":\"60\"}", 0, NULL));
    CHECK(store_config(NULL, books) == 0, "shutdown 3: store configured");
    cfg = test_config(2, 2, 0);
    cfg.retries = 3;
    pool = pool_or_die(&cfg);
    results_init(&rs, 1);
    scr_pool_submit(pool, src, &book, on_result, &rs.req[0]);
    int saw_hit = 0;
    for (int i = 0; i < 200 && !saw_hit; i++) {
        json_t *stats = store_stats();
        saw_hit = stats_hits(stats, book.isbn10) >= 1;
        json_decref(stats);
        usleep(10000);
    }
    usleep(100000);
    CHECK(saw_hit && pool_in_flight(pool, NULL) == 1, "shutdown 3: request waiting to retry");
    t0 = time_mono_ms();
    scr_pool_free(pool, 200);
    took = time_mono_ms() - t0;
    CHECK(took < 1000, "shutdown 3: a backoff wait does not delay shutdown");
    CHECK_INT(rs.abandoned, 1, "shutdown 3: the waiting retry is reported abandoned");
    results_free(&rs);
    scr_source_free(src);
}

/* Many books at the limits: the time must be close to what the limits imply. */
static double run_bulk(int n, int workers, int per_host, int delay_ms, int64_t *elapsed_ms,
                       long *max_in_flight, int *all_ok)
{
    scr_source *src = make_source("amazon.com", "127.0.0.1");
    char dflt[64];
    snprintf(dflt, sizeof dflt, "{\"delay_ms\":%d}", delay_ms);
    if (!src || store_config(dflt, NULL) != 0)
        return 0;
    scr_config cfg = test_config(workers, per_host, 0);
    cfg.queue_size = 32; /* small, so submit has to wait for room */
    scr_pool *pool = pool_or_die(&cfg);
    results rs;
    results_init(&rs, n);
    int64_t t0 = time_mono_ms();
    for (int i = 0; i < n; i++) {
        scr_book book = make_book(10000 + i);
        scr_pool_submit(pool, src, &book, on_result, &rs.req[i]);
    }
    int done = results_wait(&rs, n, 60000);
    *elapsed_ms = time_mono_ms() - t0;
    scr_pool_free(pool, 0);
    *all_ok = done;
    for (int i = 0; i < n; i++)
        *all_ok &= rs.req[i].obs && rs.req[i].obs->status == OBS_OK;
    json_t *stats = store_stats();
    *max_in_flight = stats_int(stats, "max_in_flight");
    if (stats_int(stats, "requests") != n) {
        printf("# store saw %ld requests, want %d\n", stats_int(stats, "requests"), n);
        *all_ok = 0;
    }
    json_decref(stats);
    results_free(&rs);
    scr_source_free(src);
    return *elapsed_ms > 0 ? n * 1000.0 / (double)*elapsed_ms : 0;
}

static void test_bulk(void)
{
    int64_t ms;
    long max_in_flight;
    int all_ok;
    double pps = run_bulk(320, 16, 16, 50, &ms, &max_in_flight, &all_ok);
    printf("# bulk: 320 books, 16 workers, per_host 16, 50 ms latency: %lld ms, %.0f pages/s, "
           "max in flight %ld\n",
           (long long)ms, pps, max_in_flight);
    CHECK(all_ok, "bulk: 320 books all ok");
    CHECK(max_in_flight <= 16 && max_in_flight >= 12, "bulk: up to per_host 16 in flight");
    /* 320 / 16 * 50 ms = 1 s at the limits; allow slow machines and sanitizers. */
    CHECK(ms >= 950 && ms < 6000, "bulk: takes about what the limits imply");

    pps = run_bulk(1000, 8, 8, 0, &ms, &max_in_flight, &all_ok);
    printf("# throughput: 1000 books, 8 workers, per_host 8, no latency: %lld ms, %.0f pages/s\n",
           (long long)ms, pps);
    CHECK(all_ok, "throughput run: 1000 books all ok");
}

int main(void)
{
    if (scr_global_init() != 0) {
        CHECK(0, "scr_global_init");
        return check_done();
    }
    test_config_checks();
    if (!CHECK(store_start() == 0, "fixture store starts")) {
        store_stop();
        return check_done();
    }
    test_faults();
    test_per_host();
    test_rate();
    test_cooldown();
    test_shutdown();
    test_bulk();
    store_stop();
    scr_global_cleanup();
    return check_done();
}
