/* test_db_backup.c - db_backup: a consistent copy of the whole store while another thread keeps
 * appending observations, and the destinations it refuses (an existing file, a missing
 * directory, a call inside a transaction) without leaving anything behind. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/ids.h"
#include "../../common/observation.h"
#include "../../common/timeutil.h"
#include "../../db/db.h"
#include "../lib/check.h"

/* Observations per writer transaction: a consistent copy holds a multiple of it. */
#define BATCH 10
/* Enough rows (long error texts) that the copy takes many backup steps. */
#define PREFILL_BATCHES 6000

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char path[8][160];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
    return p;
}

static void remove_tmpdir(void)
{
    DIR *dir = opendir(tmpdir);
    if (!dir)
        return;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlink(tmp_path(e->d_name));
    }
    closedir(dir);
    rmdir(tmpdir);
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* The id of the n-th valid 978 ISBN. */
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
    char why[128] = "";
    memset(&out, 0, sizeof out);
    if (id_parse(digits, 13, &out, why, sizeof why) != ID_OK)
        fprintf(stderr, "make_id(%d) made an invalid ISBN %s: %s\n", n, digits, why);
    return out;
}

/* One batch of BATCH observations of book, starting at time t. */
static db_err add_batch(db *d, const char *id, int64_t t)
{
    observation obs[BATCH];
    static const char filler[] = "a long error text, so that the rows fill many pages of the "
                                 "file and the copy needs many steps: 0123456789abcdef";
    for (int i = 0; i < BATCH; i++) {
        obs_init(&obs[i]);
        snprintf(obs[i].book_id, sizeof obs[i].book_id, "%s", id);
        obs_set_str(&obs[i].source, i % 2 ? "amazon.com" : "amazon.de");
        obs_set_str(&obs[i].error, filler);
        obs[i].fetched_at_ms = t + i;
        obs[i].status = OBS_OK;
        obs[i].rank = 1000 + i;
    }
    db_err rc = db_observations_add(d, obs, BATCH, 0);
    for (int i = 0; i < BATCH; i++)
        obs_clear(&obs[i]);
    return rc;
}

struct writer {
    const char *path;
    const char *id;
    atomic_int stop;
    atomic_long batches; /* committed so far */
    int errors;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char *err = NULL;
    db *d = db_open(w->path, &err);
    if (!d) {
        w->errors++;
        free(err);
        return NULL;
    }
    int64_t t = 10 * 1000 * 1000;
    while (!atomic_load(&w->stop)) {
        if (add_batch(d, w->id, t) != DB_OK) {
            w->errors++;
            break;
        }
        t += BATCH;
        atomic_fetch_add(&w->batches, 1);
    }
    db_close(d);
    return NULL;
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *conn = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &conn, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(conn, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(conn);
    return v;
}

static int integrity_ok(const char *path)
{
    sqlite3 *conn = NULL;
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_open_v2(path, &conn, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
             sqlite3_prepare_v2(conn, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    sqlite3_finalize(st);
    sqlite3_close(conn);
    return ok;
}

static int count_cb(void *ctx, const observation *obs)
{
    (void)obs;
    (*(int64_t *)ctx)++;
    return 0;
}

static void test_backup_while_writing(void)
{
    const char *path = tmp_path("live.db"), *dest = tmp_path("live-copy.db");
    char *err = NULL;
    db *d = db_open(path, &err);
    book_id a = make_id(1), b = make_id(2);
    book_id both[] = {a, b};
    CHECK(d && db_books_add(d, both, 2, NULL, NULL) == DB_OK, "setup: two books");
    int prefill_ok = 1;
    CHECK_INT(d ? db_begin(d) : DB_ERROR, DB_OK, "setup: one transaction for the prefill");
    for (int i = 0; d && i < PREFILL_BATCHES && prefill_ok; i++)
        prefill_ok = add_batch(d, a.id, (int64_t)i * BATCH) == DB_OK;
    CHECK(prefill_ok && d && db_commit(d) == DB_OK, "setup: prefill the history");
    int64_t pages = raw_int(path, "PRAGMA page_count");
    printf("#   %lld pages before the copy\n", (long long)pages);
    CHECK(pages > 3 * 1024, "setup: the store is several backup steps (1024 pages) long");
    db_close(d);

    struct writer w = {.path = path, .id = b.id};
    atomic_init(&w.stop, 0);
    atomic_init(&w.batches, 0);
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, writer_main, &w), 0, "start the writer thread");
    /* Let it get going, so the copy starts while it writes. */
    int64_t until = time_mono_ms() + 5000;
    while (atomic_load(&w.batches) < 20 && time_mono_ms() < until)
        nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);

    db *bk = db_open(path, &err);
    long before = atomic_load(&w.batches);
    int64_t t0 = time_mono_ms();
    db_err rc = bk ? db_backup(bk, dest) : DB_ERROR;
    int64_t took = time_mono_ms() - t0;
    long after = atomic_load(&w.batches);
    if (rc != DB_OK && bk)
        printf("#   %s\n", db_errmsg(bk));
    CHECK_INT(rc, DB_OK, "db_backup while another thread appends");
    printf("#   copy took %lld ms; the writer committed %ld batches meanwhile\n", (long long)took,
           after - before);
    CHECK(after > before, "the writer was not blocked by the copy");
    atomic_store(&w.stop, 1);
    pthread_join(th, NULL);
    CHECK_INT(w.errors, 0, "the writer saw no errors");
    db_close(bk);

    CHECK(integrity_ok(dest), "the copy passes integrity_check");
    int64_t n = raw_int(dest, "SELECT count(*) FROM observations");
    int64_t lo = (int64_t)(PREFILL_BATCHES + before) * BATCH,
            hi = (int64_t)(PREFILL_BATCHES + after + 1) * BATCH;
    printf("#   the copy holds %lld observations (%lld..%lld)\n", (long long)n, (long long)lo,
           (long long)hi);
    CHECK(n % BATCH == 0, "the copy holds whole batches only (one snapshot)");
    CHECK(n >= lo && n <= hi, "the copy holds what was committed when it ran");
    CHECK_INT(raw_int(dest, "SELECT count(*) FROM latest l WHERE l.observation_id <>"
                            " (SELECT max(id) FROM observations o"
                            "  WHERE o.book_id = l.book_id AND o.source = l.source)"),
              0, "the copy's latest rows match its observations");

    db *c = db_open_readonly(dest, &err);
    CHECK(c != NULL, "the copy opens as a bookrank database");
    if (!c) {
        printf("#   %s\n", err ? err : "");
        free(err);
        err = NULL;
    }
    int64_t seen = 0, books = -1;
    CHECK(c && db_export(c, count_cb, &seen) == DB_OK && seen == n,
          "the copy exports every observation it holds");
    CHECK(c && db_books_count(c, &books) == DB_OK && books == 2, "the copy holds both books");
    int version = -1;
    CHECK(c && db_schema_version(c, &version) == DB_OK && version == db_schema_latest(),
          "the copy has the same schema");
    db_close(c);
}

static void test_backup_refusals(void)
{
    const char *path = tmp_path("small.db");
    char *err = NULL;
    db *d = db_open(path, &err);
    book_id a = make_id(3);
    CHECK(d && db_books_add(d, &a, 1, NULL, NULL) == DB_OK, "setup: a book");
    if (!d)
        return;

    const char *taken = tmp_path("taken.db");
    FILE *f = fopen(taken, "w");
    if (f) {
        fputs("keep me", f);
        fclose(f);
    }
    CHECK_INT(db_backup(d, taken), DB_ERROR, "an existing destination is refused");
    printf("#   %s\n", db_errmsg(d));
    CHECK(strstr(db_errmsg(d), "exists already") && strstr(db_errmsg(d), taken),
          "with a message that names it and says why");
    char got[16] = "";
    f = fopen(taken, "r");
    if (f) {
        if (!fgets(got, sizeof got, f))
            got[0] = '\0';
        fclose(f);
    }
    CHECK_STR(got, "keep me", "the existing file is not touched");

    const char *nodir = tmp_path("no/such/dir/copy.db");
    CHECK(db_backup(d, nodir) != DB_OK, "a destination in a missing directory fails");
    printf("#   %s\n", db_errmsg(d));

    CHECK_INT(db_backup(d, ""), DB_ERROR, "an empty destination is refused");

    const char *intx = tmp_path("in-tx.db");
    CHECK_INT(db_begin(d), DB_OK, "begin");
    CHECK_INT(db_backup(d, intx), DB_ERROR, "no backup inside a transaction");
    CHECK(!exists(intx), "and no file is left");
    (void)db_rollback(d);

    /* A stale journal beside the destination would be replayed into the copy. */
    const char *stale = tmp_path("stale.db"), *stale_journal = tmp_path("stale.db-journal");
    f = fopen(stale_journal, "w");
    if (f) {
        fputs("junk", f);
        fclose(f);
    }
    CHECK(db_backup(d, stale) != DB_OK && !exists(stale),
          "a leftover journal beside the destination is refused, nothing left");

    /* A read-only handle can make a copy: it only reads. */
    db *r = db_open_readonly(path, &err);
    const char *rocopy = tmp_path("ro-copy.db");
    CHECK(r && db_backup(r, rocopy) == DB_OK && integrity_ok(rocopy) &&
              raw_int(rocopy, "SELECT count(*) FROM books") == 1,
          "a read-only handle makes a good copy");
    db_close(r);
    CHECK(db_backup(d, rocopy) != DB_OK, "a second copy to the same name is refused");
    db_close(d);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_db_backup.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_backup_while_writing();
    test_backup_refusals();
    remove_tmpdir();
    return check_done();
}
