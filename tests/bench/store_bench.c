/*
 * store_bench.c - the store (db/db.h) measured directly, and a fast seeder for the API benchmark.
 *
 *   store_bench append DIR [--books B] [--batch N] [--total M]
 *       Fresh database in DIR: tracks B books, then appends M observations (round robin over the
 *       books, a realistic ok row with two category ranks and a title) with db_observations_add
 *       in batches of N (one transaction each, as the writer thread commits). Prints
 *       {"obs_per_s": ..., "batch": N, "total": M, "seconds": ...}.
 *   store_bench history DIR [--obs K] [--queries Q]
 *       Fresh database in DIR with one book holding K observations; times db_history() for the
 *       newest 500 (the API default), for all K, and db_book_get(), Q times each. Prints medians
 *       in milliseconds as JSON.
 *   store_bench seed DB N [OBS]
 *       Tracks N generated books in DB with OBS (default 2) ok observations each, an hour apart.
 *
 * Wall-clock times (CLOCK_MONOTONIC): the store's cost is CPU plus fsync-free WAL writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/ids.h"
#include "common/isbn.h"
#include "common/observation.h"
#include "common/timeutil.h"
#include "tests/bench/median.h"
#include "db/db.h"

/* The i-th generated book: 978 0 <8 digits> + check, so it also has an ISBN-10. */
static int make_isbn(long i, isbn *out)
{
    char digits[14];
    snprintf(digits, sizeof digits, "9780%08ld", 10000000L + i % 90000000L);
    int sum = 0;
    for (int k = 0; k < 12; k++)
        sum += (digits[k] - '0') * (k % 2 ? 3 : 1);
    digits[12] = (char)('0' + (10 - sum % 10) % 10);
    digits[13] = '\0';
    return isbn_parse(digits, 13, out) == ISBN_OK ? 0 : -1;
}

static int fill_obs(observation *o, const isbn *b, int64_t at_ms, long serial)
{
    obs_init(o);
    memcpy(o->book_id, b->isbn13, sizeof o->book_id); /* an ISBN book's id is its ISBN-13 */
    o->fetched_at_ms = at_ms;
    o->status = OBS_OK;
    o->rank = 1000 + serial % 1999000;
    o->http_status = 200;
    o->attempts = 1;
    o->duration_ms = 100 + serial % 50;
    char title[64];
    snprintf(title, sizeof title, "Benchmark Book %s", b->isbn13);
    if (obs_set_str(&o->source, "amazon.com") || obs_set_str(&o->rank_category, "Books") ||
        obs_set_str(&o->title, title) ||
        obs_add_category(o, 1 + serial % 97, "Programming Languages", 21) ||
        obs_add_category(o, 1 + serial % 997, "Software Design", 15))
        return -1;
    return 0;
}

static db *open_fresh(const char *dir, const char *name, char *path, size_t pathlen)
{
    if (snprintf(path, pathlen, "%s/%s", dir, name) >= (int)pathlen)
        return NULL;
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        remove(p);
    }
    char *err = NULL;
    db *d = db_open(path, &err);
    if (!d) {
        fprintf(stderr, "db_open %s: %s\n", path, err ? err : "?");
        free(err);
    }
    return d;
}

static int add_books(db *d, long n, isbn **out)
{
    isbn *books = calloc((size_t)n, sizeof *books);
    book_id *ids = calloc((size_t)n, sizeof *ids);
    if (!books || !ids) {
        free(books);
        free(ids);
        return -1;
    }
    for (long i = 0; i < n; i++)
        if (make_isbn(i, &books[i]) ||
            id_parse(books[i].isbn13, strlen(books[i].isbn13), &ids[i], NULL, 0) != ID_OK) {
            free(books);
            free(ids);
            return -1;
        }
    db_err rc = db_books_add(d, ids, (size_t)n, NULL, NULL);
    free(ids);
    if (rc != DB_OK) {
        fprintf(stderr, "add books: %s\n", db_errmsg(d));
        free(books);
        return -1;
    }
    *out = books;
    return 0;
}

static long arg_long(int argc, char **argv, const char *name, long dflt)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return strtol(argv[i + 1], NULL, 10);
    return dflt;
}

static int bench_append(const char *dir, int argc, char **argv)
{
    long nbooks = arg_long(argc, argv, "--books", 1000);
    long batch = arg_long(argc, argv, "--batch", 1000);
    long total = arg_long(argc, argv, "--total", 200000);
    char path[4096];
    db *d = open_fresh(dir, "append.db", path, sizeof path);
    isbn *books = NULL;
    if (!d || nbooks < 1 || batch < 1 || add_books(d, nbooks, &books))
        return 1;
    observation *obs = calloc((size_t)batch, sizeof *obs);
    if (!obs)
        return 1;
    int64_t base_ms = (int64_t)time(NULL) * 1000 - total * 10;
    double busy = 0;
    for (long done = 0; done < total; done += batch) {
        long n = total - done < batch ? total - done : batch;
        /* Building the rows is the caller's work (the scraper's), not the store's: not timed. */
        for (long k = 0; k < n; k++)
            if (fill_obs(&obs[k], &books[(done + k) % nbooks], base_ms + (done + k) * 10, done + k))
                return 1;
        double t0 = time_mono_s();
        if (db_observations_add(d, obs, (size_t)n, 0) != DB_OK) {
            fprintf(stderr, "append: %s\n", db_errmsg(d));
            return 1;
        }
        busy += time_mono_s() - t0;
        for (long k = 0; k < n; k++)
            obs_clear(&obs[k]);
    }
    printf(
        "{\"obs_per_s\": %.0f, \"batch\": %ld, \"total\": %ld, \"books\": %ld, \"seconds\": %.3f}\n",
        (double)total / busy, batch, total, nbooks, busy);
    free(obs);
    free(books);
    db_close(d);
    return 0;
}

static int bench_history(const char *dir, int argc, char **argv)
{
    long k = arg_long(argc, argv, "--obs", 10000);
    int queries = (int)arg_long(argc, argv, "--queries", 21);
    char path[4096];
    db *d = open_fresh(dir, "history.db", path, sizeof path);
    isbn *books = NULL;
    /* A few other books with history too, so the index holds more than the one being read. */
    if (!d || k < 1 || queries < 1 || queries > 1000 || add_books(d, 100, &books))
        return 1;
    enum { BATCH = 1000 };
    static observation obs[BATCH];
    int64_t base_ms = (int64_t)time(NULL) * 1000 - k * 3600000LL;
    for (long done = 0; done < k; done += BATCH) {
        long n = k - done < BATCH ? k - done : BATCH;
        for (long j = 0; j < n; j++)
            if (fill_obs(&obs[j], &books[0], base_ms + (done + j) * 3600000LL, done + j))
                return 1;
        if (db_observations_add(d, obs, (size_t)n, 0) != DB_OK)
            return 1;
        for (long j = 0; j < n; j++)
            obs_clear(&obs[j]);
    }
    for (long b = 1; b < 100; b++) {
        for (int j = 0; j < 100; j++)
            if (fill_obs(&obs[j], &books[b], base_ms + j * 3600000LL, j))
                return 1;
        if (db_observations_add(d, obs, 100, 0) != DB_OK)
            return 1;
        for (int j = 0; j < 100; j++)
            obs_clear(&obs[j]);
    }
    db_close(d);
    char *err = NULL;
    d = db_open(path, &err);
    if (!d)
        return 1;

    double t500[1000], tall[1000], tbook[1000];
    size_t n500 = 0, nall = 0;
    for (int q = 0; q < queries; q++) {
        observation *rows;
        size_t n;
        db_history_query hq = {.source = NULL, .since_ms = 0, .before_ms = 0, .limit = 500};
        double t0 = time_mono_s();
        if (db_history(d, books[0].isbn13, &hq, &rows, &n) != DB_OK)
            return 1;
        t500[q] = (time_mono_s() - t0) * 1e3;
        db_observations_free(rows, n);
        n500 = n;
        hq.limit = (int)k;
        t0 = time_mono_s();
        if (db_history(d, books[0].isbn13, &hq, &rows, &n) != DB_OK)
            return 1;
        tall[q] = (time_mono_s() - t0) * 1e3;
        db_observations_free(rows, n);
        nall = n;
        db_book b;
        t0 = time_mono_s();
        if (db_book_get(d, books[0].isbn13, &b) != DB_OK)
            return 1;
        tbook[q] = (time_mono_s() - t0) * 1e3;
        db_book_clear(&b);
    }
    printf("{\"observations\": %ld, \"history_500_ms\": %.3f, \"rows_500\": %zu, "
           "\"history_all_ms\": %.3f, \"rows_all\": %zu, \"book_get_ms\": %.3f}\n",
           k, median(t500, queries), n500, median(tall, queries), nall, median(tbook, queries));
    free(books);
    db_close(d);
    return 0;
}

static int seed(const char *path, long n, long per_book)
{
    char *err = NULL;
    db *d = db_open(path, &err);
    isbn *books = NULL;
    if (!d) {
        fprintf(stderr, "db_open %s: %s\n", path, err ? err : "?");
        return 1;
    }
    if (n < 1 || per_book < 0 || add_books(d, n, &books))
        return 1;
    enum { BATCH = 1000 };
    static observation obs[BATCH];
    int64_t base_ms = (int64_t)time(NULL) * 1000 - per_book * 3600000LL;
    long serial = 0;
    for (long round = 0; round < per_book; round++) {
        for (long done = 0; done < n; done += BATCH) {
            long m = n - done < BATCH ? n - done : BATCH;
            for (long j = 0; j < m; j++, serial++)
                if (fill_obs(&obs[j], &books[done + j], base_ms + round * 3600000LL, serial))
                    return 1;
            if (db_observations_add(d, obs, (size_t)m, 0) != DB_OK) {
                fprintf(stderr, "seed: %s\n", db_errmsg(d));
                return 1;
            }
            for (long j = 0; j < m; j++)
                obs_clear(&obs[j]);
        }
    }
    /* The first book's ISBN-13, for the caller to query. */
    printf("%s\n", books[0].isbn13);
    free(books);
    db_close(d);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "append") == 0)
        return bench_append(argv[2], argc - 3, argv + 3);
    if (argc >= 3 && strcmp(argv[1], "history") == 0)
        return bench_history(argv[2], argc - 3, argv + 3);
    if (argc >= 4 && strcmp(argv[1], "seed") == 0)
        return seed(argv[2], strtol(argv[3], NULL, 10), argc >= 5 ? strtol(argv[4], NULL, 10) : 2);
    fprintf(stderr, "usage: store_bench append DIR [--books B] [--batch N] [--total M]\n"
                    "       store_bench history DIR [--obs K] [--queries Q]\n"
                    "       store_bench seed DB N [OBS]\n");
    return 2;
}
