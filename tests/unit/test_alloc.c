/* test_alloc.c - every "out of memory" branch of the store, the encoders and buf: a counting
 * malloc (alloc_hook.h) makes the n-th allocation of an operation fail, for n = 1, 2, ... until
 * a run needs no more than n - 1 allocations. Each run must not crash or leak, must report a
 * failure code (BUF_NOMEM, DB_NOMEM or DB_ERROR, -1, NULL) or succeed with exactly the output of
 * a run without failures, and must leave things usable: the buffer unchanged where documented,
 * the database intact (integrity_check, no transaction left open), with all its data, and a
 * retry of the same operation succeeding (and still there after a reopen). Two modes: only the
 * n-th allocation fails ("once"), or it and every later one until the call returns ("from").
 *
 * Each scenario and mode runs in a child process: a crash is reported with its n and the sweep
 * goes on after it. Operations of up to a few hundred allocations get every n; longer ones (the
 * store: a new database is ~20000) every n up to half a budget, then a stride. Each scenario's
 * line gives its counts. BOOKRANK_ALLOC_FULL=1: every n (up to 5000 runs per scenario and
 * mode); BOOKRANK_ALLOC_ONLY=text: only the scenarios whose name holds text. */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../common/buf.h"
#include "../../common/ids.h"
#include "../../common/observation.h"
#include "../../common/utf8.h"
#include "../../db/db.h"
#include "../../render/render.h"
#include "../lib/check.h"
#include "alloc_hook.h"

#define N_MAX 5000 /* runs per scenario and mode at most */
#define SHOW_MAX 3 /* "not ok" lines printed per scenario and mode */

/* ---- bookkeeping --------------------------------------------------------------------------- */

/* A scenario in one mode: its counters live in shared memory, so they survive a child that
 * crashed (the parent reports the crash and starts a new child after the n that crashed). */
typedef struct scen {
    const char *name;
    int mode;
    long n;     /* the run in progress (0: the reference run) */
    long calls; /* allocations of the operation in the reference run */
    long runs, injected, errors, absorbed, bad, leaks, crashes;
    long op_calls, calls0;
    long done;  /* the n that needed no failure (0: capped or gave up) */
    long notes; /* runs with something worth a comment (scenario-specific) */
    long bad_first;
    int shown;
    int quiet; /* a restarted child's reference run: its findings are known */
} scen;

struct shared {
    scen sc;
    long resume;        /* a restarted child goes on after this n */
    int finished;       /* the child's sweep ended (it may still fail at exit: LeakSanitizer) */
    int passed, failed; /* the child's checks */
};
static struct shared *shm;
static scen *cur;

/* Runs per scenario and mode: every n up to half the scenario's budget, then a stride that keeps
 * the total near the budget (BOOKRANK_ALLOC_FULL=1: every n, up to N_MAX runs). */
static int full_sweep;

static const char *mode_name(int mode)
{
    return mode == ALLOC_FAIL_ONCE ? "once" : "from";
}

/* check_report, with the counts kept where the parent reads them. */
static void report(int ok, int line, const char *what)
{
    check_report(ok, __FILE__, line, what);
    shm->passed = check_passed;
    shm->failed = check_failed;
}

/* Counts a wrong run; prints the first few (returns 1 when it printed). */
static int bad_at(int line, const char *fmt, ...) BR_PRINTF(2, 3);
static int bad_at(int line, const char *fmt, ...)
{
    alloc_disarm();
    if (cur->quiet)
        return 0;
    cur->bad++;
    if (!cur->bad_first)
        cur->bad_first = cur->n;
    if (cur->shown >= SHOW_MAX)
        return 0;
    cur->shown++;
    char msg[400], what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(what, sizeof what, "%s [%s] n=%ld: %s", cur->name, mode_name(cur->mode), cur->n, msg);
    report(0, line, what);
    return 1;
}
#define BAD(...) bad_at(__LINE__, __VA_ARGS__)

/* Prints where two texts first differ, for the first wrong runs. */
static void show_diff(const char *got, const char *want)
{
    if (!got || !want)
        return;
    size_t i = 0;
    while (got[i] && got[i] == want[i])
        i++;
    size_t from = i > 40 ? i - 40 : 0;
    printf("#   first difference at byte %zu\n#   got  ", i);
    for (size_t k = from; got[k] && k < i + 40; k++)
        putchar((unsigned char)got[k] < 0x20 ? '.' : got[k]);
    printf("\n#   want ");
    for (size_t k = from; want[k] && k < i + 40; k++)
        putchar((unsigned char)want[k] < 0x20 ? '.' : want[k]);
    putchar('\n');
}

/* Arms the failure of the n-th allocation from now (huge n: none). */
static void arm(long n)
{
    cur->calls0 = alloc_count();
    alloc_fail_after(n, cur->mode);
}

/* Disarms; returns how many failures were injected. */
static long disarm(void)
{
    alloc_disarm();
    long inj = alloc_failures();
    cur->injected += inj;
    cur->op_calls += alloc_count() - cur->calls0;
    return inj;
}

/* Records a run's outcome: a reported failure, or success (absorbing any injected failure). */
static void outcome(int failed, long injected)
{
    if (cur->n == 0)
        return;
    if (failed)
        cur->errors++;
    else if (injected)
        cur->absorbed++;
    if (failed && !injected)
        BAD("reported a failure without any injected one");
}

/* One run: sets up, arms with n, calls, disarms, checks; returns the failures injected. */
typedef long (*run_fn)(void *ctx, long n);

#define NO_FAILURE (1L << 40)

static long next_n(long n, long calls, long budget)
{
    long dense = budget / 2;
    if (full_sweep || n < dense || calls <= budget)
        return n + 1;
    return n + (calls - dense) / (budget - dense) + 1;
}

static void sweep_child(run_fn fn, void *ctx, long budget)
{
    cur = &shm->sc;
    /* A run without failures first: the reference output, and the lazy one-time allocations
     * (SQLite's initialisation, stdio, time zone) are made before leaks are counted. */
    cur->quiet = 1;
    cur->n = 0;
    long inj0 = cur->injected;
    (void)fn(ctx, NO_FAILURE); /* the lazy allocations of a fresh process */
    cur->quiet = shm->resume != 0;
    cur->op_calls = 0;
    (void)fn(ctx, NO_FAILURE);
    cur->injected = inj0;
    cur->calls = cur->op_calls;
    cur->quiet = 0;
    long n = shm->resume ? next_n(shm->resume, cur->calls, budget) : 1;
    for (; cur->runs < N_MAX; n = next_n(n, cur->calls, budget)) {
        cur->n = n;
        long live0 = alloc_live();
        long injected = fn(ctx, n);
        long leaked = alloc_live() - live0;
        cur->runs++;
        if (leaked > 0) {
            cur->leaks++;
            BAD("%ld block(s) leaked", leaked);
        }
        if (!injected) {
            cur->done = n;
            break;
        }
    }
}

#define CRASH_MAX 5

/* Sweeps n for one scenario and mode in child processes; reports crashes and the counts. */
static const char *only; /* BOOKRANK_ALLOC_ONLY: only the scenarios whose name holds it */

static void sweep(const char *name, int mode, run_fn fn, void *ctx, long budget)
{
    if (only && !strstr(name, only))
        return;
    memset(shm, 0, sizeof *shm);
    scen *sc = &shm->sc;
    sc->name = name;
    sc->mode = mode;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char what[600];
    for (;;) {
        fflush(stdout);
        shm->finished = 0;
        shm->passed = shm->failed = 0;
        pid_t pid = fork();
        if (pid < 0) {
            CHECK(0, "fork");
            return;
        }
        if (pid == 0) {
            check_passed = check_failed = 0;
            sweep_child(fn, ctx, budget);
            shm->finished = 1;
            fflush(stdout);
            exit(0); /* not _exit: LeakSanitizer runs at exit */
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
            ;
        check_passed += shm->passed;
        check_failed += shm->failed;
        int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (shm->finished) {
            if (!clean) {
                sc->bad++;
                snprintf(what, sizeof what,
                         "%s [%s]: exited with status %d after its last run "
                         "(a LeakSanitizer report above?)",
                         name, mode_name(mode),
                         WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
                check_report(0, __FILE__, __LINE__, what);
            }
            break;
        }
        sc->bad++;
        sc->crashes++;
        sc->runs++;
        if (!sc->bad_first)
            sc->bad_first = sc->n;
        snprintf(what, sizeof what, "%s [%s] n=%ld: crashed (%s %d)", name, mode_name(mode), sc->n,
                 WIFSIGNALED(status) ? "signal" : "exit status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        check_report(0, __FILE__, __LINE__, what);
        if (sc->n == 0 || sc->crashes >= CRASH_MAX) {
            printf("#   giving up on %s [%s] after %ld crashes\n", name, mode_name(mode),
                   sc->crashes);
            break;
        }
        shm->resume = sc->n;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    snprintf(what, sizeof what,
             "%s [%s]: %ld allocations, %ld runs%s, %ld failures injected: %ld reported, %ld "
             "absorbed; %ld wrong (%ld ms)",
             name, mode_name(mode), sc->calls, sc->runs,
             !sc->done             ? " (capped)"
             : sc->runs < sc->done ? " (sampled)"
                                   : "",
             sc->injected, sc->errors, sc->absorbed, sc->bad, ms);
    check_report(sc->bad == 0, __FILE__, __LINE__, what);
    if (sc->bad)
        printf("#   first wrong run: n=%ld (%ld leaking, %ld crashing)\n", sc->bad_first, sc->leaks,
               sc->crashes);
}

#define RUNS_DEFAULT 400

static void sweep_both(const char *name, run_fn fn, void *ctx)
{
    sweep(name, ALLOC_FAIL_ONCE, fn, ctx, RUNS_DEFAULT);
    sweep(name, ALLOC_FAIL_FROM, fn, ctx, RUNS_DEFAULT);
}

/* The store's scenarios cost a few milliseconds a run (each opens and checks a database): the
 * sampled budgets keep the whole test at a few seconds; BOOKRANK_ALLOC_FULL=1 runs every n. */
static void sweep_db(const char *name, run_fn fn, void *ctx, long once, long from)
{
    sweep(name, ALLOC_FAIL_ONCE, fn, ctx, once);
    sweep(name, ALLOC_FAIL_FROM, fn, ctx, from);
}

/* A string constant where a struct wants a char * it will not write through. */
static char *unconst(const char *s)
{
    char *p;
    memcpy(&p, &s, sizeof p);
    return p;
}

/* ---- hostile text ------------------------------------------------------------------------- */

#define HOSTILE_TITLE                                                                              \
    "Dune \"Messiah\" <script>alert('x')</script> \\ & \x01\x1f\x7f \xff\xfe\xc0\xaf"              \
    " caf\xc3\xa9 \xe2\x80\xa8 end"
#define HOSTILE_CAT1 "Books > \"Sci-Fi\" & <Fantasy>"
#define HOSTILE_CAT2 "<script>document.write(1)</script>\x02"
#define HOSTILE_CAT3 "\xc3\xa9t\xc3\xa9 \xed\xa0\x80 bad \xf5"
#define HOSTILE_ERR "=HYPERLINK(\"http://x\",\"click\")\r\n\t\"quoted\""

static char long_text[6000];

static void init_long_text(void)
{
    for (size_t i = 0; i < sizeof long_text - 1; i++)
        long_text[i] = "ab\"<>&\x01\xff cd\xc3\xa9"[i % 13];
    long_text[sizeof long_text - 1] = '\0';
}

/* ---- the counting malloc itself ----------------------------------------------------------- */

static void test_hook(void)
{
    long c0 = alloc_count();
    char *s = NULL;
    CHECK(obs_set_str(&s, "x") == 0 && alloc_count() == c0 + 1,
          "strdup (through obs_set_str) is counted");
    free(s);
    /* Called through pointers: a compiler may otherwise drop a strdup whose result is only
     * tested and freed. */
    static char *(*volatile dup)(const char *) = strdup;
    static char *(*volatile ndup)(const char *, size_t) = strndup;
    c0 = alloc_count();
    char *t = ndup("abcdef", 3);
    CHECK(t && strcmp(t, "abc") == 0 && alloc_count() == c0 + 1, "strndup is counted");
    free(t);
    alloc_fail_after(1, ALLOC_FAIL_ONCE);
    t = dup("boom");
    long inj = alloc_failures();
    alloc_disarm();
    CHECK(t == NULL && inj == 1, "an injected failure makes strdup return NULL");
    free(t);

    c0 = alloc_count();
    char *m = sqlite3_mprintf("%s-%d", "sqlite", 3);
    CHECK(m && alloc_count() > c0, "SQLite's allocations are counted");
    sqlite3_free(m);
    alloc_fail_after(1, ALLOC_FAIL_ONCE);
    m = sqlite3_mprintf("%s-%d", "sqlite", 3);
    alloc_disarm();
    CHECK(m == NULL, "and fail when injected (sqlite3_mprintf returns NULL)");
    sqlite3_free(m);

    c0 = alloc_count();
    json_t *j = json_string("jansson");
    CHECK(j && alloc_count() > c0, "jansson's allocations are counted");
    json_decref(j);

    long live0 = alloc_live();
    buf b;
    buf_init(&b, 1 << 20);
    c0 = alloc_count();
    int rc = buf_append(&b, "0123456789", 10);
    CHECK(rc == BUF_OK && alloc_count() == c0 + 1 && alloc_live() == live0 + 1,
          "realloc(NULL, n) is counted as one live block");
    buf_free(&b);
    CHECK(alloc_live() == live0, "free releases it");

    c0 = alloc_count();
    buf_init(&b, 4);
    CHECK(buf_append(&b, "too long", 8) == BUF_TOOBIG && alloc_count() == c0,
          "buf_append past the cap is BUF_TOOBIG without allocating");
    buf_free(&b);
#ifdef ALLOC_HOOK_ASAN
    printf("# under ASan: malloc forwards to libasan's through dlsym(RTLD_NEXT)\n");
#endif
}

/* ---- ids: no allocation at all ------------------------------------------------------------ */

static const char *const id_inputs[] = {
    "978-0-13-226993-3",
    "0132269937",
    " ISBN-13: 978\xe2\x80\x90"
    "0132269933 ",
    "b01lw7x0jj",
    "https://www.amazon.de/-/en/dp/0131103628/ref=sr_1_1?keywords=c,d;e",
    "https://a.co/d/3xYzAbC",
    "https://www.example.com/dp/B01LW7X0JJ",
    "978-0-13-226993-4",
    "",
    "\xff\xfe<script>",
    long_text,
};

static int count_entry(void *ctx, size_t index, const char *entry, size_t len)
{
    (void)index;
    (void)entry;
    (void)len;
    (*(size_t *)ctx)++;
    return 0;
}

static void test_ids(void)
{
    long c0 = alloc_count(), live0 = alloc_live();
    alloc_fail_after(1, ALLOC_FAIL_FROM);
    int oks = 0;
    for (size_t i = 0; i < sizeof id_inputs / sizeof id_inputs[0]; i++) {
        book_id out;
        char why[200];
        oks += id_parse(id_inputs[i], strlen(id_inputs[i]), &out, why, sizeof why) == ID_OK;
        oks += id_parse(id_inputs[i], strlen(id_inputs[i]), &out, NULL, 0) == ID_OK;
    }
    long inj = alloc_failures();
    alloc_disarm();
    CHECK(alloc_count() == c0 && inj == 0 && alloc_live() == live0,
          "id_parse allocates nothing (every form, errors too)");
    CHECK(oks == 10, "id_parse still parses with every allocation failing");

    static const char list[] =
        "9780132269933, 0132269937;B01LW7X0JJ\n978 0 13 226993 3\n"
        "https://www.amazon.com/dp/B01LW7X0JJ?a=1,2;3 ISBN 978-0-13-226993-3\n\xff,,;;\n";
    size_t want_seen = 0;
    size_t want_n = id_list_split(list, sizeof list - 1, count_entry, &want_seen);
    c0 = alloc_count();
    alloc_fail_after(1, ALLOC_FAIL_FROM);
    size_t seen = 0;
    size_t n = id_list_split(list, sizeof list - 1, count_entry, &seen);
    size_t n2 = id_list_split(long_text, strlen(long_text), count_entry, &seen);
    char asin[ASIN_LEN + 1];
    int norm = asin_normalize("b01lw7x0jj", 10, asin) + asin_valid("B01LW7X0JJ", 10);
    inj = alloc_failures();
    alloc_disarm();
    CHECK(alloc_count() == c0 && inj == 0, "id_list_split and the ASIN helpers allocate nothing");
    CHECK(n == want_n && want_n == 8 && seen == n + n2 && norm == 2,
          "and give the same answers meanwhile");
}

/* ---- buf ----------------------------------------------------------------------------------- */

static char snapshot[1 << 15];

/* One step of a buffer's life; the step number says which call. */
static int buf_step(buf *b, int step)
{
    switch (step) {
    case 0:
        return buf_append(b, long_text, 100);
    case 1:
        return buf_printf(b, "[%d:%s]", 42, "short");
    case 2:
        return buf_append_str(b, "<append_str>");
    case 3:
        return buf_append(b, long_text + 7, 300);
    case 4:
        return buf_printf(b, "%s|%lld", long_text + 1000, (long long)-7); /* > 256: the long path */
    case 5:
        return buf_append(b, long_text, 5000);
    case 6:
        return buf_printf(b, "%.*s", 2000, long_text + 11);
    case 7:
        return buf_append(b, "", 0);
    }
    return -99;
}
#define BUF_STEPS 8

static char *buf_want;
static size_t buf_want_len;

static long run_buf_steps(void *ctx, long n)
{
    (void)ctx;
    buf b;
    buf_init(&b, 1 << 20);
    arm(n);
    int armed = 1;
    long inj = 0;
    int failed = 0;
    for (int s = 0; s < BUF_STEPS; s++) {
        size_t len = b.len;
        if (len)
            memcpy(snapshot, b.data, len);
        int rc = buf_step(&b, s);
        if (rc == BUF_OK)
            continue;
        if (armed) {
            inj = disarm();
            armed = 0;
        }
        failed = 1;
        if (rc != BUF_NOMEM)
            BAD("step %d: %d instead of BUF_NOMEM", s, rc);
        if (b.len != len || (len && memcmp(b.data, snapshot, len) != 0) ||
            (b.data && b.data[b.len] != '\0'))
            BAD("step %d: a failed append changed the content", s);
        if ((rc = buf_step(&b, s)) != BUF_OK)
            BAD("step %d: the retry failed (%d)", s, rc);
    }
    if (armed)
        inj = disarm();
    outcome(failed, inj);
    if (n == NO_FAILURE) {
        free(buf_want);
        buf_want_len = b.len;
        buf_want = buf_steal(&b, NULL);
        return 0;
    }
    if (b.len != buf_want_len || memcmp(b.data, buf_want, b.len) != 0)
        BAD("content differs from a run without failures");
    size_t len = 0;
    char *stolen = buf_steal(&b, &len);
    if (!stolen || len != buf_want_len)
        BAD("buf_steal after the run");
    free(stolen);
    buf_free(&b);
    return inj;
}

static long run_buf_steal_empty(void *ctx, long n)
{
    (void)ctx;
    buf b;
    buf_init(&b, 100);
    /* The block buf_steal will get is likely this one again: not zeroed. */
    char *dirt = malloc(256);
    if (dirt) {
        memset(dirt, 'X', 256);
        free(dirt);
    }
    arm(n);
    size_t len = 99;
    char *p = buf_steal(&b, &len);
    long inj = disarm();
    outcome(p == NULL, inj);
    if (p && (p[0] != '\0' || len != 0))
        BAD("buf_steal of a buf that never had an append returns a block without its NUL "
            "(buf.h: the data is always NUL-terminated)");
    if (!p && (b.data || b.len))
        BAD("a failed buf_steal left the buf changed");
    free(p);
    if (buf_append(&b, "ok", 2) != BUF_OK || strcmp(b.data, "ok") != 0)
        BAD("the buf is not usable after buf_steal");
    buf_free(&b);
    return inj;
}

static long run_strdup_printf(void *ctx, long n)
{
    (void)ctx;
    static char want[4000];
    snprintf(want, sizeof want, "%.3000s-%d", long_text, 42);
    arm(n);
    char *p = buf_strdup_printf("%.3000s-%d", long_text, 42);
    long inj = disarm();
    outcome(p == NULL, inj);
    if (p && strcmp(p, want) != 0)
        BAD("buf_strdup_printf: wrong text");
    free(p);
    return inj;
}

static const char dirty[] =
    "ok \xff\xfe bad \xc0\xaf over \xed\xa0\x80 sur \xe2\x82 cut caf\xc3\xa9 "
    "\xf4\x90\x80\x80 big";
static char *sanitized;

static long run_sanitize_append(void *ctx, long n)
{
    (void)ctx;
    buf b;
    buf_init(&b, 1 << 16);
    int rc = buf_append_str(&b, "PREFIX:");
    rc = rc ? rc : buf_append(&b, long_text, 240); /* 247 of 256: the next append grows it */
    if (rc != BUF_OK)
        BAD("setup");
    size_t keep = b.len;
    memcpy(snapshot, b.data, keep);
    arm(n);
    rc = BUF_OK;
    for (int i = 0; i < 20 && rc == BUF_OK; i++)
        rc = utf8_sanitize_append(&b, dirty, sizeof dirty - 1);
    long inj = disarm();
    outcome(rc != BUF_OK, inj);
    if (rc != BUF_OK && rc != BUF_NOMEM)
        BAD("utf8_sanitize_append: %d instead of BUF_NOMEM", rc);
    if (rc == BUF_OK && n == NO_FAILURE) {
        free(sanitized);
        sanitized = strdup(b.data);
    } else if (rc == BUF_OK && (!sanitized || strcmp(b.data, sanitized) != 0)) {
        BAD("utf8_sanitize_append: wrong text");
    } else if (rc != BUF_OK &&
               (b.len < keep || memcmp(b.data, snapshot, keep) != 0 ||
                (b.len - keep) % (sanitized ? (strlen(sanitized) - keep) / 20 : 1) != 0 ||
                b.data[b.len] != '\0')) {
        BAD("a failed utf8_sanitize_append did not keep what the buf had");
    }
    buf_free(&b);
    return inj;
}

static long run_sanitize_dup(void *ctx, long n)
{
    (void)ctx;
    static char want[512];
    arm(n);
    char *p = utf8_sanitize_dup(dirty, sizeof dirty - 1);
    long inj = disarm();
    outcome(p == NULL, inj);
    if (n == NO_FAILURE && p)
        snprintf(want, sizeof want, "%s", p);
    else if (p && strcmp(p, want) != 0)
        BAD("utf8_sanitize_dup: wrong text");
    if (p && !utf8_valid(p, strlen(p)))
        BAD("utf8_sanitize_dup: not valid UTF-8");
    free(p);
    return inj;
}

static void group_buf(void)
{
    sweep_both("buf_append/buf_printf/buf_append_str", run_buf_steps, NULL);
    sweep_both("buf_steal (empty)", run_buf_steal_empty, NULL);
    sweep_both("buf_strdup_printf", run_strdup_printf, NULL);
    sweep_both("utf8_sanitize_append", run_sanitize_append, NULL);
    sweep_both("utf8_sanitize_dup", run_sanitize_dup, NULL);
    free(buf_want);
    free(sanitized);
}

/* ---- render -------------------------------------------------------------------------------- */

static obs_category cats_a[] = {{12, (char *)HOSTILE_CAT1},
                                {3, (char *)HOSTILE_CAT2},
                                {7, (char *)HOSTILE_CAT3},
                                {1, (char *)""}};
static char *tags_a[] = {(char *)"<b>tag</b>", (char *)"quote\"d", (char *)"caf\xc3\xa9"};
static char *sources_a[] = {(char *)"amazon.com", (char *)"amazon.de\"<x>"};
static db_asin asins_a[] = {{"amazon.de", "B0DEASIN01"}, {"amazon\"<fr>", "B0FRASIN01"}};

static observation make_observation(const char *id, const char *source, int64_t at,
                                    obs_status status, int64_t rank, int ncats)
{
    observation o;
    obs_init(&o);
    snprintf(o.book_id, sizeof o.book_id, "%s", id);
    o.source = unconst(source);
    o.fetched_at_ms = at;
    o.status = status;
    o.rank = rank;
    o.rank_category = rank >= 0 ? (char *)HOSTILE_CAT1 : NULL;
    o.categories = ncats ? cats_a : NULL;
    o.ncategories = (size_t)ncats;
    o.title = (char *)HOSTILE_TITLE;
    o.http_status = status == OBS_OK ? 200 : 503;
    o.attempts = 2;
    o.duration_ms = 1234;
    o.error = status == OBS_OK ? NULL : (char *)HOSTILE_ERR;
    o.previous_rank = rank >= 0 ? rank + 10 : -1;
    if (status != OBS_OK) {
        o.last_ok_rank = 77;
        o.last_ok_category = (char *)HOSTILE_CAT2;
        o.last_ok_at_ms = at - 1000;
    }
    return o;
}

static observation obs_list[4];
static db_book books_r[3];

static void init_render_data(void)
{
    obs_list[0] = make_observation("9780132269933", "amazon.com", 1764000000000, OBS_OK, 450, 4);
    obs_list[1] = make_observation("9780132269933", "amazon.de\"<x>", 1764000100000, OBS_BLOCKED,
                                   -1, 0);
    obs_list[2] = make_observation("B01LW7X0JJ", "amazon.com", 1764000200000, OBS_ERROR, -1, 2);
    obs_list[3] = make_observation("9780132269933", "amazon.co.uk", 1764000300000, OBS_NO_RANK, -1,
                                   1);
    memset(books_r, 0, sizeof books_r);
    db_book *b = &books_r[0];
    snprintf(b->id, sizeof b->id, "9780132269933");
    snprintf(b->isbn13, sizeof b->isbn13, "9780132269933");
    snprintf(b->isbn10, sizeof b->isbn10, "0132269937");
    b->title = (char *)HOSTILE_TITLE;
    b->format = OBS_FORMAT_HARDCOVER;
    b->format_set = 1;
    b->work = (char *)"Dune \"saga\" <i>";
    b->note = (char *)"line1\n</script>\t& \xff";
    b->tags = tags_a;
    b->ntags = 3;
    b->sources = sources_a;
    b->nsources = 2;
    b->asins = asins_a;
    b->nasins = 2;
    b->added_at_ms = 1763000000000;
    b->latest = obs_list;
    b->nlatest = 2;
    b = &books_r[1];
    snprintf(b->id, sizeof b->id, "B01LW7X0JJ");
    snprintf(b->asin, sizeof b->asin, "B0ATTACH01");
    b->title = long_text;
    b->latest = &obs_list[2];
    b->nlatest = 1;
    b = &books_r[2];
    snprintf(b->id, sizeof b->id, "9791090636071");
    snprintf(b->isbn13, sizeof b->isbn13, "9791090636071");
    b->note = long_text + 3000;
}

typedef int (*render_call)(buf *out);

static int r_books(buf *out)
{
    return render_books(out, books_r, 3, RENDER_COMPACT);
}
static int r_books_pretty(buf *out)
{
    return render_books(out, books_r, 3, RENDER_PRETTY);
}
static int r_book_doc(buf *out)
{
    return render_book_doc(out, &books_r[0], RENDER_PRETTY);
}
static int r_history(buf *out)
{
    return render_history(out, "9780132269933", "9780132269933", obs_list, 4, RENDER_COMPACT);
}
static int r_error(buf *out)
{
    static const render_detail details[] = {
        {0, HOSTILE_TITLE, sizeof HOSTILE_TITLE - 1, "not an ISBN <b>\"x\"</b>"},
        {1, NULL, 0, "not text"},
        {7, long_text, sizeof long_text - 1, HOSTILE_ERR},
    };
    return render_error(out, "invalid_ids", "3 entries \"could not\" be read </script>", details,
                        3);
}
static int r_books_csv(buf *out)
{
    int rc = render_books_csv_header(out);
    for (int i = 0; i < 3 && rc == BUF_OK; i++)
        rc = render_books_csv_row(out, &books_r[i]);
    return rc;
}
static int r_csv(buf *out)
{
    int rc = render_csv_header(out);
    for (int i = 0; i < 4 && rc == BUF_OK; i++)
        rc = render_csv_row(out, &obs_list[i]);
    return rc;
}
static int r_categories(buf *out)
{
    return render_categories(out, cats_a, 4);
}
static int r_extract(buf *out)
{
    return render_extract(out, &obs_list[0], RENDER_PRETTY);
}
static int r_text_payload(buf *out)
{
    return render_text_payload(out, "text", long_text, 3000);
}
static int r_refresh(buf *out)
{
    db_job job = {.id = 7,
                  .state = JOB_DONE,
                  .total = 4,
                  .done = 4,
                  .created_at_ms = 1764000000000};
    return render_refresh(out, &job, obs_list, 4, 1.5, RENDER_COMPACT);
}

struct render_case {
    const char *name;
    render_call call;
    int json;
    const char *prefix; /* already in the buf before the call */
    char *want;
    size_t want_len;
};

static long run_render(void *ctx, long n)
{
    struct render_case *rc_ = ctx;
    size_t plen = rc_->prefix ? strlen(rc_->prefix) : 0;
    buf b;
    buf_init(&b, 1 << 22);
    if (plen && buf_append(&b, rc_->prefix, plen) != BUF_OK)
        BAD("setup");
    arm(n);
    int rc = rc_->call(&b);
    long inj = disarm();
    outcome(rc != BUF_OK, inj);
    if (n == NO_FAILURE) {
        if (rc != BUF_OK)
            BAD("fails without any injected failure");
        rc_->want_len = b.len - plen;
        free(rc_->want);
        rc_->want = malloc(rc_->want_len + 1);
        memcpy(rc_->want, b.data + plen, rc_->want_len + 1);
        if (rc_->json && cur->mode == ALLOC_FAIL_ONCE && !cur->quiet) {
            json_error_t e;
            json_t *v = json_loadb(rc_->want, rc_->want_len, 0, &e);
            char what[200];
            snprintf(what, sizeof what, "%s: the reference output is JSON", rc_->name);
            report(v != NULL, __LINE__, what);
            if (!v)
                printf("#   %s\n", e.text);
            json_decref(v);
        }
    } else if (rc == BUF_OK) {
        if (b.len != plen + rc_->want_len || memcmp(b.data + plen, rc_->want, rc_->want_len) != 0)
            BAD("succeeded with other output (%zu bytes, want %zu)", b.len - plen, rc_->want_len);
    } else if (rc != BUF_NOMEM) {
        BAD("%d instead of BUF_NOMEM", rc);
    }
    if (plen && (b.len < plen || memcmp(b.data, rc_->prefix, plen) != 0))
        BAD("the buf's earlier content was changed");
    /* The caller discards a partial value and tries again. */
    buf_reset(&b);
    if (rc_->call(&b) != BUF_OK || b.len != rc_->want_len ||
        memcmp(b.data, rc_->want, rc_->want_len) != 0)
        BAD("a retry on the same buf differs");
    buf_free(&b);
    return inj;
}

/* render_categories_parse: the stored form read back. */
static char *cats_text;
static long run_categories_parse(void *ctx, long n)
{
    (void)ctx;
    observation o;
    obs_init(&o);
    arm(n);
    int rc = render_categories_parse(&o, cats_text, strlen(cats_text));
    long inj = disarm();
    outcome(rc != 0, inj);
    if (rc != 0 && rc != -1)
        BAD("render_categories_parse: %d", rc);
    if (rc == 0) {
        int same = o.ncategories == 4;
        buf b;
        buf_init(&b, 1 << 20);
        if (same && (render_categories(&b, o.categories, o.ncategories) != BUF_OK ||
                     strcmp(b.data, cats_text) != 0))
            same = 0;
        buf_free(&b);
        if (!same)
            BAD("render_categories_parse succeeded with %zu of 4 categories", o.ncategories);
    }
    obs_clear(&o);
    return inj;
}

/* obs_copy: a deep copy or -1 with dst initialised. */
static long run_obs_copy(void *ctx, long n)
{
    (void)ctx;
    observation dst;
    memset(&dst, 0x5a, sizeof dst);
    arm(n);
    int rc = obs_copy(&dst, &obs_list[1]);
    long inj = disarm();
    outcome(rc != 0, inj);
    if (rc == 0) {
        buf x, y;
        buf_init(&x, 1 << 20);
        buf_init(&y, 1 << 20);
        jw w;
        jw_begin(&w, &x, 0);
        render_observation(&w, &dst);
        int r1 = jw_end(&w);
        jw_begin(&w, &y, 0);
        render_observation(&w, &obs_list[1]);
        int r2 = jw_end(&w);
        if (r1 || r2 || strcmp(x.data, y.data) != 0 || strcmp(dst.book_id, obs_list[1].book_id))
            BAD("obs_copy succeeded with a different observation");
        buf_free(&x);
        buf_free(&y);
    } else if (dst.source || dst.title || dst.error || dst.categories || dst.rank != -1 ||
               dst.last_ok_category) {
        BAD("a failed obs_copy did not leave dst initialised");
    }
    obs_clear(&dst);
    return inj;
}

static void group_render(void)
{
    struct render_case cases[] = {
        {"render_books", r_books, 1, NULL, NULL, 0},
        {"render_books (pretty, after other output)", r_books_pretty, 1, "[1,2,3]\n", NULL, 0},
        {"render_book_doc", r_book_doc, 1, NULL, NULL, 0},
        {"render_history", r_history, 1, NULL, NULL, 0},
        {"render_error", r_error, 1, NULL, NULL, 0},
        {"render_books_csv_row", r_books_csv, 0, NULL, NULL, 0},
        {"render_csv_row", r_csv, 0, "isbn13\r\n", NULL, 0},
        {"render_categories", r_categories, 1, NULL, NULL, 0},
        {"render_extract", r_extract, 1, NULL, NULL, 0},
        {"render_text_payload", r_text_payload, 1, NULL, NULL, 0},
        {"render_refresh", r_refresh, 1, NULL, NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        sweep_both(cases[i].name, run_render, &cases[i]);
    buf b;
    buf_init(&b, 1 << 20);
    if (render_categories(&b, cats_a, 4) != BUF_OK)
        CHECK(0, "render_categories");
    cats_text = b.data;
    sweep_both("render_categories_parse", run_categories_parse, NULL);
    buf_free(&b);
    sweep_both("obs_copy", run_obs_copy, NULL);
}

/* ---- the store ----------------------------------------------------------------------------- */

static char tmpdir[128];

static const char *tmp_path(const char *name)
{
    static char path[8][512];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
    return p;
}

static void remove_db_files(const char *path)
{
    char p[300];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-journal", path);
    unlink(p);
    for (int v = 0; v < 10; v++) {
        snprintf(p, sizeof p, "%s.bak-%d", path, v);
        unlink(p);
    }
}

/* How many "PATH.bak-N" copies exist. */
static int count_backups(const char *path)
{
    int n = 0;
    char p[300];
    for (int v = 0; v < 10; v++) {
        snprintf(p, sizeof p, "%s.bak-%d", path, v);
        n += access(p, F_OK) == 0;
    }
    return n;
}

static int copy_file(const char *from, const char *to)
{
    remove_db_files(to);
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int ok = in >= 0 && out >= 0;
    char chunk[65536];
    ssize_t r;
    while (ok && (r = read(in, chunk, sizeof chunk)) > 0)
        ok = write(out, chunk, (size_t)r) == r;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return ok ? 0 : -1;
}

/* Whether another connection can take the write lock at once (no transaction left open). */
static int write_lock_free(const char *path)
{
    sqlite3 *c = NULL;
    int ok = sqlite3_open_v2(path, &c, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
             sqlite3_exec(c, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
    if (ok)
        ok = sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(c);
    return ok;
}

/* integrity_check and foreign_key_check on a raw connection; NULL when fine, else a reason. */
static const char *integrity(const char *path)
{
    static char why[300];
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    const char *ret = NULL;
    if (sqlite3_open_v2(path, &c, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        ret = "cannot open";
        goto done;
    }
    if (sqlite3_prepare_v2(c, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        ret = "integrity_check did not run";
        goto done;
    }
    const char *res = (const char *)sqlite3_column_text(st, 0);
    if (!res || strcmp(res, "ok") != 0) {
        snprintf(why, sizeof why, "integrity_check: %.200s", res ? res : "(null)");
        ret = why;
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(c, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        ret = "foreign_key_check found dangling rows";
done:
    sqlite3_finalize(st);
    sqlite3_close(c);
    return ret;
}

static book_id make_id(int n)
{
    char digits[16];
    snprintf(digits, sizeof digits, "978%09d", n);
    int sum = 0;
    for (int i = 0; i < 12; i++)
        sum += (digits[i] - '0') * (i % 2 ? 3 : 1);
    digits[12] = (char)('0' + (10 - sum % 10) % 10);
    digits[13] = '\0';
    book_id out;
    memset(&out, 0, sizeof out);
    if (id_parse(digits, 13, &out, NULL, 0) != ID_OK)
        CHECK(0, "make_id");
    return out;
}

static book_id asin_id(const char *asin)
{
    book_id out;
    memset(&out, 0, sizeof out);
    if (id_parse(asin, strlen(asin), &out, NULL, 0) != ID_OK)
        CHECK(0, "asin_id");
    return out;
}

static book_id B1, B2, A1;

static int serialize_obs(buf *out, const observation *o)
{
    jw w;
    jw_begin(&w, out, RENDER_COMPACT);
    jw_array_open(&w);
    jw_string(&w, o->book_id);
    render_observation(&w, o);
    jw_int(&w, o->format);
    jw_int(&w, o->rank_free);
    jw_array_close(&w);
    int rc = jw_end(&w);
    return rc ? rc : buf_append(out, "\n", 1);
}

struct export_ctx {
    buf *out;
    int rc;
};

static int export_cb(void *ctx, const observation *o)
{
    struct export_ctx *e = ctx;
    alloc_suspend(); /* the test's own work inside an armed call */
    if (e->rc == BUF_OK)
        e->rc = serialize_obs(e->out, o);
    alloc_resume();
    return 0;
}

/* Everything the store holds, as text (added_at left out: books added by a run get the time of
 * the run); NULL (and why) when the handle cannot read it. */
static char *digest(db *d, const char **why)
{
    buf b;
    buf_init(&b, 1 << 24);
    db_book *books = NULL;
    size_t n = 0;
    db_err rc = db_books_list(d, NULL, &books, &n);
    if (rc != DB_OK) {
        *why = db_errmsg(d);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        books[i].added_at_ms = 0;
    int brc = render_books(&b, books, n, RENDER_PRETTY);
    db_books_free(books, n);
    db_target *t = NULL;
    size_t nt = 0;
    if ((rc = db_targets(d, NULL, 0, &t, &nt)) != DB_OK) {
        *why = db_errmsg(d);
        buf_free(&b);
        return NULL;
    }
    for (size_t i = 0; i < nt && brc == BUF_OK; i++) {
        brc = buf_printf(&b, "target %s %s %s %s %s", t[i].id, t[i].isbn13, t[i].isbn10, t[i].asin,
                         t[i].title ? t[i].title : "-");
        for (size_t k = 0; brc == BUF_OK && t[i].sources && k < t[i].nsources; k++)
            brc = buf_printf(&b, " s=%s", t[i].sources[k]);
        for (size_t k = 0; brc == BUF_OK && k < t[i].nasins; k++)
            brc = buf_printf(&b, " a=%s:%s", t[i].asins[k].source, t[i].asins[k].asin);
        brc = brc ? brc : buf_append(&b, "\n", 1);
    }
    db_targets_free(t, nt);
    struct export_ctx e = {&b, brc};
    if ((rc = db_export(d, export_cb, &e)) != DB_OK || e.rc != BUF_OK) {
        *why = rc ? db_errmsg(d) : "serializing";
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, NULL);
}

static void patch_b1(db_book_patch *p)
{
    static const db_asin asins[] = {{"amazon.de", "B0DEASIN01"}};
    static const char *const sources[] = {"amazon.com", "amazon.de"};
    static const char *const tags[] = {"<b>tag</b>", "quote\"d", "caf\xc3\xa9"};
    memset(p, 0, sizeof *p);
    p->set = DB_SET_ASIN | DB_SET_ASINS | DB_SET_SOURCES | DB_SET_WORK | DB_SET_NOTE |
             DB_SET_FORMAT | DB_SET_TAGS;
    p->asin = "B0ATTACH01";
    p->asins = asins;
    p->nasins = 1;
    p->sources = sources;
    p->nsources = 2;
    p->work = "Dune \"saga\" <i>";
    p->note = "line1\n</script>\t& 50%_off \\o/";
    p->format = OBS_FORMAT_HARDCOVER;
    p->tags = tags;
    p->ntags = 3;
}

static void patch_b2(db_book_patch *p)
{
    static const db_asin asins[] = {{"amazon.co.uk", "B0UKASIN01"}, {"amazon.fr", "B0FRASIN01"}};
    static const char *const sources[] = {"amazon.com", "amazon.co.uk"};
    static const char *const tags[] = {"t1", "<t2>", "t\"3\"", "z"};
    memset(p, 0, sizeof *p);
    p->set = DB_SET_ASIN | DB_SET_ASINS | DB_SET_SOURCES | DB_SET_WORK | DB_SET_NOTE |
             DB_SET_FORMAT | DB_SET_TAGS;
    p->asin = "B0UPDATE01";
    p->asins = asins;
    p->nasins = 2;
    p->sources = sources;
    p->nsources = 2;
    p->work = "W\"2\" & <w>";
    p->note = "n\n<script>alert(1)</script>";
    p->format = OBS_FORMAT_PAPERBACK;
    p->tags = tags;
    p->ntags = 4;
}

static observation db_obs(const book_id *b, const char *source, int64_t at, obs_status status,
                          int64_t rank, int ncats, const char *title, obs_format format)
{
    observation o = make_observation(b->id, source, at, status, rank, ncats);
    o.title = unconst(title);
    o.format = format;
    o.previous_rank = -1;
    o.last_ok_rank = -1;
    o.last_ok_category = NULL;
    o.last_ok_at_ms = 0;
    return o;
}

/* The store every scenario starts from. */
static int make_template(const char *path)
{
    remove_db_files(path);
    char *err = NULL;
    db *d = db_open(path, &err);
    if (!d) {
        printf("# template: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    book_id ids[] = {B1, B2, A1};
    db_book_patch p;
    patch_b1(&p);
    observation obs[] = {
        db_obs(&B1, "amazon.com", 1000000, OBS_OK, 500, 4, "Dune <script>\x01\xff",
               OBS_FORMAT_UNKNOWN),
        db_obs(&B1, "amazon.com", 2000000, OBS_BLOCKED, -1, 0, NULL, OBS_FORMAT_UNKNOWN),
        db_obs(&B1, "amazon.com", 3000000, OBS_OK, 450, 2, HOSTILE_TITLE, OBS_FORMAT_UNKNOWN),
        db_obs(&B1, "amazon.de", 1500000, OBS_OK, 80, 1, "Der W\xc3\xbcstenplanet",
               OBS_FORMAT_UNKNOWN),
        db_obs(&B2, "amazon.com", 1200000, OBS_ERROR, -1, 0, NULL, OBS_FORMAT_UNKNOWN),
        db_obs(&A1, "amazon.com", 1300000, OBS_OK, 9, 3, "Kindle \"ed\"", OBS_FORMAT_KINDLE),
    };
    int ok = db_books_add(d, ids, 3, NULL, NULL) == DB_OK &&
             db_book_update(d, B1.id, &p) == DB_OK && db_observations_add(d, obs, 6, 0) == DB_OK;
    if (!ok)
        printf("# template: %s\n", db_errmsg(d));
    db_close(d);
    return ok ? 0 : -1;
}

static char *digest_template;

/* ---- opening a new file ---- */

static char *digest_empty;

static long run_db_open(void *ctx, long n)
{
    (void)ctx;
    const char *path = tmp_path("open.db");
    remove_db_files(path);
    db_err code = DB_OK;
    char *err = NULL;
    arm(n);
    db *d = db_connect(path, DB_OPEN_CREATE | DB_OPEN_MIGRATE, &code, &err);
    long inj = disarm();
    outcome(d == NULL, inj);
    if (d && (code != DB_OK || err))
        BAD("opened, with code %d and a message", code);
    if (!d && code != DB_NOMEM && code != DB_ERROR)
        BAD("failed with %s (%d) instead of out of memory: %s", db_strerror(code), code,
            err ? err : "(no message)");
    if (!d && !err && inj == 0)
        BAD("failed without a message");
    free(err);
    err = NULL;
    if (!d) {
        d = db_open(path, &err);
        if (!d) {
            BAD("the retry failed: %s", err ? err : "(no message)");
            free(err);
            return inj;
        }
        if (count_backups(path))
            cur->notes++; /* a retry after a half-made file copies it first */
    }
    int version = 0;
    if (db_schema_version(d, &version) != DB_OK || version != db_schema_latest())
        BAD("schema version %d, want %d", version, db_schema_latest());
    const char *why = NULL;
    char *dg = digest(d, &why);
    if (n == NO_FAILURE) {
        free(digest_empty);
        digest_empty = dg;
        dg = NULL;
    } else if (!dg || !digest_empty || strcmp(dg, digest_empty) != 0) {
        BAD("a new store is not empty (%s)", dg ? "other content" : why);
    }
    free(dg);
    book_id b = make_id(5);
    if (db_books_add(d, &b, 1, NULL, NULL) != DB_OK)
        BAD("cannot add a book afterwards: %s", db_errmsg(d));
    db_close(d);
    const char *bad = integrity(path);
    if (bad)
        BAD("%s", bad);
    return inj;
}

/* ---- writes ---- */

struct write_case {
    const char *name;
    db_err (*call)(db *d, void *out);
    int (*check_out)(const void *out, const void *want); /* 0 when equal */
    size_t out_size;
    void *want_out;
    char *want_digest;
};

struct add_out {
    int added[6];
    char id_out[6][14];
};

static book_id add_batch[6];

static db_err w_books_add(db *d, void *out)
{
    struct add_out *o = out;
    return db_books_add(d, add_batch, 6, o->added, o->id_out);
}

static int check_add_out(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(struct add_out));
}

static db_err w_book_update(db *d, void *out)
{
    (void)out;
    db_book_patch p;
    patch_b2(&p);
    return db_book_update(d, B2.id, &p);
}

static observation add_obs[4];

static db_err w_observations_add(db *d, void *out)
{
    (void)out;
    return db_observations_add(d, add_obs, 4, 0);
}

static long run_db_write(void *ctx, long n)
{
    struct write_case *wc = ctx;
    const char *path = tmp_path("write.db");
    if (copy_file(tmp_path("template.db"), path) != 0) {
        BAD("copy the template");
        return 0;
    }
    char *err = NULL;
    db *d = db_open(path, &err);
    if (!d) {
        BAD("setup open: %s", err ? err : "?");
        free(err);
        return 0;
    }
    unsigned char out[sizeof(struct add_out)];
    memset(out, 0x55, sizeof out);
    arm(n);
    db_err rc = wc->call(d, out);
    long inj = disarm();
    outcome(rc != DB_OK, inj);
    if (rc != DB_OK && rc != DB_NOMEM && rc != DB_ERROR)
        BAD("%s (%d) instead of out of memory: %s", db_strerror(rc), rc, db_errmsg(d));
    if (rc != DB_OK && !db_errmsg(d)[0])
        BAD("failed without a message");
    if (!write_lock_free(path))
        BAD("%s left its transaction open: another connection cannot write (%s)",
            rc == DB_OK ? "a successful call" : "the failed call", db_errmsg(d));
    const char *why = NULL;
    char *dg = digest(d, &why);
    if (!dg) {
        BAD("the handle cannot read the store after the failure: %s", why);
    } else if (n == NO_FAILURE) {
        if (rc != DB_OK)
            BAD("fails without any injected failure: %s", db_errmsg(d));
        free(wc->want_digest);
        wc->want_digest = dg;
        dg = NULL;
        if (wc->out_size) {
            free(wc->want_out);
            wc->want_out = malloc(wc->out_size);
            memcpy(wc->want_out, out, wc->out_size);
        }
    } else if (rc == DB_OK) {
        if (strcmp(dg, wc->want_digest) != 0 &&
            BAD("succeeded, but the store holds something else"))
            show_diff(dg, wc->want_digest);
        if (wc->out_size && wc->check_out(out, wc->want_out))
            BAD("succeeded with other added/id_out answers");
    } else if (strcmp(dg, digest_template) != 0) {
        if (BAD("failed, but changed the store (not all or nothing)"))
            show_diff(dg, digest_template);
    }
    free(dg);
    dg = NULL;
    if (rc != DB_OK && n != NO_FAILURE) {
        /* The same handle, allocations working again: the retry succeeds. */
        memset(out, 0x55, sizeof out);
        db_err again = wc->call(d, out);
        if (again != DB_OK)
            BAD("the retry on the same handle failed: %s", db_errmsg(d));
        else if (wc->out_size && wc->check_out(out, wc->want_out))
            BAD("the retry gave other added/id_out answers");
    }
    db_close(d);
    const char *bad = integrity(path);
    if (bad)
        BAD("%s", bad);
    if (n != NO_FAILURE) {
        d = db_open(path, &err);
        if (!d) {
            BAD("reopen: %s", err ? err : "?");
            free(err);
        } else {
            dg = digest(d, &why);
            if (!dg || strcmp(dg, wc->want_digest) != 0)
                BAD("%s, but after closing and reopening the store its changes are gone",
                    rc == DB_OK ? "the call succeeded" : "the retry succeeded");
            free(dg);
            db_close(d);
        }
    }
    return inj;
}

/* ---- reads ---- */

struct read_case {
    const char *name;
    /* The armed call; its result serialized into out (disarmed) unless it failed. */
    db_err (*call)(db *d, buf *out, long n);
    char *want;
};

static db_err rd_history(db *d, buf *out, long n)
{
    observation *obs = NULL;
    size_t count = 77;
    arm(n);
    db_err rc = db_history(d, B1.id, NULL, &obs, &count);
    disarm();
    if (rc != DB_OK && (obs || count)) {
        BAD("a failed db_history returned rows");
        db_observations_free(obs, count);
        return rc;
    }
    if (rc == DB_OK && render_history(out, B1.id, B1.isbn13, obs, count, RENDER_PRETTY) != BUF_OK)
        BAD("render");
    for (size_t i = 0; rc == DB_OK && i < count; i++) { /* what the JSON leaves out */
        if (buf_printf(out, "%d/%d ", obs[i].format, obs[i].rank_free) != BUF_OK)
            BAD("render");
    }
    db_observations_free(obs, count);
    return rc;
}

static db_err list_books(db *d, buf *out, long n, const db_book_filter *f)
{
    db_book *books = NULL;
    size_t count = 77;
    arm(n);
    db_err rc = db_books_list(d, f, &books, &count);
    disarm();
    if (rc != DB_OK && (books || count)) {
        BAD("a failed db_books_list returned books");
        db_books_free(books, count);
        return rc;
    }
    if (rc == DB_OK && render_books(out, books, count, RENDER_PRETTY) != BUF_OK)
        BAD("render");
    db_books_free(books, count);
    return rc;
}

static db_err rd_books_all(db *d, buf *out, long n)
{
    return list_books(d, out, n, NULL);
}

static db_err rd_books_query(db *d, buf *out, long n)
{
    db_book_filter f = {.q = "50%_off \\", .limit = 10}; /* LIKE's wildcards, escaped */
    return list_books(d, out, n, &f);
}

static db_err rd_books_tag(db *d, buf *out, long n)
{
    db_book_filter f = {.q = "e",
                        .tag = "quote\"d",
                        .after = "9780000000000",
                        .source = "amazon.com"};
    return list_books(d, out, n, &f);
}

static db_err rd_export(db *d, buf *out, long n)
{
    struct export_ctx e = {out, BUF_OK};
    arm(n);
    db_err rc = db_export(d, export_cb, &e);
    disarm();
    if (e.rc != BUF_OK)
        BAD("render");
    return rc;
}

static db_err rd_book_get(db *d, buf *out, long n)
{
    db_book b;
    arm(n);
    db_err rc = db_book_get(d, B1.id, &b);
    disarm();
    if (rc == DB_OK && render_book_doc(out, &b, RENDER_PRETTY) != BUF_OK)
        BAD("render");
    db_book_clear(&b);
    return rc;
}

static long run_db_read(void *ctx, long n)
{
    struct read_case *rc_ = ctx;
    const char *path = tmp_path("read.db");
    char *err = NULL;
    db *d = db_open(path, &err);
    if (!d) {
        BAD("setup open: %s", err ? err : "?");
        free(err);
        return 0;
    }
    buf out;
    buf_init(&out, 1 << 24);
    long inj0 = cur->injected;
    db_err rc = rc_->call(d, &out, n);
    long inj = cur->injected - inj0;
    outcome(rc != DB_OK, inj);
    if (rc != DB_OK && rc != DB_NOMEM && rc != DB_ERROR)
        BAD("%s (%d) instead of out of memory: %s", db_strerror(rc), rc, db_errmsg(d));
    if (n == NO_FAILURE) {
        if (rc != DB_OK)
            BAD("fails without any injected failure: %s", db_errmsg(d));
        free(rc_->want);
        rc_->want = buf_steal(&out, NULL);
    } else if (rc == DB_OK) {
        if ((!rc_->want || strcmp(out.data ? out.data : "", rc_->want) != 0) &&
            BAD("succeeded with other data"))
            show_diff(out.data ? out.data : "", rc_->want);
    } else if (out.len && (!rc_->want || strncmp(out.data, rc_->want, out.len) != 0)) {
        if (BAD("failed after handing out rows that differ"))
            show_diff(out.data, rc_->want);
    }
    if (n != NO_FAILURE) {
        buf_reset(&out);
        if (rc_->call(d, &out, NO_FAILURE) != DB_OK)
            BAD("the retry on the same handle failed: %s", db_errmsg(d));
        else if (!rc_->want || strcmp(out.data ? out.data : "", rc_->want) != 0)
            BAD("the retry on the same handle read other data");
    }
    buf_free(&out);
    db_close(d);
    return inj;
}

static void group_db(void)
{
    B1 = make_id(1);
    B2 = make_id(2);
    A1 = asin_id("B0ALLOC001");
    const char *tpl = tmp_path("template.db");
    if (!CHECK(make_template(tpl) == 0, "db: the template store is made"))
        return;
    char *err = NULL;
    db *d = db_open(tpl, &err);
    const char *why = NULL;
    digest_template = d ? digest(d, &why) : NULL;
    db_close(d);
    free(err);
    if (!CHECK(digest_template != NULL, "db: the template store is read back"))
        return;
    CHECK(integrity(tpl) == NULL, "db: the template store passes integrity_check");

    /* Opening a new file. */
    for (int mode = 0; mode < 2; mode++) {
        sweep("db_open (new file)", mode, run_db_open, NULL, mode == ALLOC_FAIL_ONCE ? 120 : 50);
        long open_backups = shm->sc.notes;
        if (open_backups)
            printf("#   db_open [%s]: %ld retries found a half-made new file (schema version "
                   "between 0 and the latest) and copied it to PATH.bak-N before finishing it\n",
                   mode_name(mode), open_backups);
    }
    free(digest_empty);

    add_batch[0] = make_id(10);
    add_batch[1] = B1;                    /* tracked */
    add_batch[2] = make_id(10);           /* repeats the first */
    add_batch[3] = asin_id("B0NEWASIN1"); /* a new ASIN-only book */
    add_batch[4] = asin_id("B0ATTACH01"); /* the ASIN attached to B1 */
    add_batch[5] = make_id(11);
    book_id untracked = make_id(99);
    add_obs[0] = db_obs(&B1, "amazon.com", 4000000, OBS_OK, 300, 4, "New <title> \"x\"",
                        OBS_FORMAT_PAPERBACK);
    add_obs[1] = db_obs(&B2, "amazon.co.uk", 4100000, OBS_NO_RANK, -1, 1, "B2 \xff title",
                        OBS_FORMAT_AUDIOBOOK);
    add_obs[2] = db_obs(&A1, "amazon.com", 4200000, OBS_NOT_FOUND, -1, 0, NULL, OBS_FORMAT_UNKNOWN);
    add_obs[3] = db_obs(&untracked, "amazon.com", 4300000, OBS_OK, 1, 1, "gone", OBS_FORMAT_OTHER);

    struct write_case writes[] = {
        {"db_books_add", w_books_add, check_add_out, sizeof(struct add_out), NULL, NULL},
        {"db_book_update", w_book_update, NULL, 0, NULL, NULL},
        {"db_observations_add", w_observations_add, NULL, 0, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        sweep_db(writes[i].name, run_db_write, &writes[i], 200, 150);
        free(writes[i].want_out);
        free(writes[i].want_digest);
    }

    if (!CHECK(copy_file(tpl, tmp_path("read.db")) == 0, "db: copy the template for reads"))
        return;
    struct read_case reads[] = {
        {"db_history", rd_history, NULL},
        {"db_books_list", rd_books_all, NULL},
        {"db_books_list (q, limit)", rd_books_query, NULL},
        {"db_books_list (q, tag, after, source)", rd_books_tag, NULL},
        {"db_book_get", rd_book_get, NULL},
        {"db_export", rd_export, NULL},
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        sweep_db(reads[i].name, run_db_read, &reads[i], 200, 120);
        free(reads[i].want);
    }
    free(digest_template);
}

/* ---- main ---------------------------------------------------------------------------------- */

static void remove_tmpdir(void)
{
    DIR *dir = opendir(tmpdir);
    if (!dir)
        return;
    struct dirent *e;
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlink(tmp_path(e->d_name));
    closedir(dir);
    rmdir(tmpdir);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!alloc_hook_sound()) {
        printf("ok - skipped under a sanitizer whose malloc cannot be wrapped (ThreadSanitizer)\n");
        return check_done();
    }
    init_long_text();
    init_render_data();
    shm = mmap(NULL, sizeof *shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    /* tmpfs when there is one: thousands of small databases are made. */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/test_alloc.XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_hook();
    test_ids();
    only = getenv("BOOKRANK_ALLOC_ONLY");
    full_sweep = getenv("BOOKRANK_ALLOC_FULL") && strcmp(getenv("BOOKRANK_ALLOC_FULL"), "1") == 0;
    group_buf();
    group_render();
    group_db();
    remove_tmpdir();
    return check_done();
}
