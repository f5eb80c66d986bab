/* test_db.c - the SQLite store: schema and migrations, books, observations, latest and previous
 * ranks, history, export, jobs, and concurrency across threads and processes. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/ids.h"
#include "../../common/observation.h"
#include "../../db/db.h"
#include "../lib/check.h"

static char tmpdir[64];

/* A path inside this run's temporary directory. */
static const char *tmp_path(const char *name)
{
    static char path[4][128];
    static int next;
    char *p = path[next++ % 4];
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

/* The id of a book from its ISBN or ASIN text. */
static book_id parse_id(const char *text)
{
    book_id out;
    char why[128] = "";
    memset(&out, 0, sizeof out);
    if (id_parse(text, strlen(text), &out, why, sizeof why) != ID_OK)
        fprintf(stderr, "parse_id(%s): %s\n", text, why);
    return out;
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
    return parse_id(digits);
}

static void make_obs(observation *o, const char *id, const char *source, int64_t at,
                     obs_status status, int64_t rank)
{
    obs_init(o);
    snprintf(o->book_id, sizeof o->book_id, "%s", id);
    obs_set_str(&o->source, source);
    o->fetched_at_ms = at;
    o->status = status;
    o->rank = rank;
    o->http_status = 200;
    o->attempts = 1;
    o->duration_ms = 42;
}

/* Adds one observation; returns the db result. */
static int add_one(db *d, const char *id, const char *source, int64_t at, obs_status status,
                   int64_t rank)
{
    observation o;
    make_obs(&o, id, source, at, status, rank);
    int rc = db_observations_add(d, &o, 1, 0);
    obs_clear(&o);
    return rc;
}

static int count_cb(void *ctx, const observation *obs)
{
    (void)obs;
    (*(int64_t *)ctx)++;
    return 0;
}

static int64_t count_observations(db *d)
{
    int64_t n = 0;
    if (db_export(d, count_cb, &n) != DB_OK)
        return -1;
    return n;
}

static int64_t raw_user_version(const char *path)
{
    sqlite3 *conn = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &conn, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(conn, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(conn);
    return v;
}

static int raw_exec(const char *path, const char *sql)
{
    sqlite3 *conn = NULL;
    int rc = sqlite3_open(path, &conn);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(conn, sql, NULL, NULL, NULL);
    sqlite3_close(conn);
    return rc;
}

static const observation *latest_of(const db_book *b, const char *source)
{
    for (size_t i = 0; i < b->nlatest; i++)
        if (strcmp(b->latest[i].source, source) == 0)
            return &b->latest[i];
    return NULL;
}

/* ---- open, migrations -------------------------------------------------------------------- */

static void test_open_and_migrate(void)
{
    const char *path = tmp_path("migrate.db");
    char *err = NULL;
    db *d = db_open(path, &err);
    CHECK(d != NULL && err == NULL, "open creates a new database");
    CHECK(raw_user_version(path) >= 1, "migrations set user_version");
    int64_t version = raw_user_version(path);
    CHECK_INT(version, db_schema_latest(), "a new database has the latest schema");

    book_id b = make_id(1);
    CHECK_INT(db_books_add(d, &b, 1, NULL, NULL), DB_OK, "add a book");
    db_close(d);

    d = db_open(path, &err);
    int64_t count = -1;
    CHECK(d && db_books_count(d, &count) == DB_OK && count == 1, "reopen keeps the data");
    CHECK_INT(raw_user_version(path), version, "reopen does not change the version");
    db_close(d);

    /* A database from a newer bookrank is refused with a message that says so. */
    CHECK_INT(raw_exec(path, "PRAGMA user_version = 999"), SQLITE_OK, "raw: bump user_version");
    d = db_open(path, &err);
    CHECK(d == NULL && err && strstr(err, "newer"), "newer schema is refused clearly");
    if (err)
        printf("#   %s\n", err);
    free(err);
    err = NULL;
    db_close(d);
    d = db_open_readonly(path, &err);
    CHECK(d == NULL && err && strstr(err, "newer"), "newer schema refused read-only too");
    free(err);
    err = NULL;
    db_close(d);
}

static void test_bad_files(void)
{
    char *err = NULL;
    const char *junk = tmp_path("junk.db");
    FILE *f = fopen(junk, "w");
    for (int i = 0; f && i < 200; i++)
        fputs("this is not an SQLite database, just text that is long enough\n", f);
    if (f)
        fclose(f);
    db *d = db_open(junk, &err);
    CHECK(d == NULL && err && strstr(err, "not a database"), "non-SQLite file: error on open");
    if (err)
        printf("#   %s\n", err);
    free(err);
    err = NULL;
    db_close(d);
    d = db_open_readonly(junk, &err);
    CHECK(d == NULL && err != NULL, "non-SQLite file: error on read-only open");
    free(err);
    err = NULL;

    const char *other = tmp_path("other.db");
    CHECK_INT(raw_exec(other, "CREATE TABLE t(x)"), SQLITE_OK, "raw: make an unrelated db");
    d = db_open(other, &err);
    CHECK(d == NULL && err && strstr(err, "not a bookrank database"),
          "unrelated SQLite database is not touched");
    free(err);
    err = NULL;

    d = db_open_readonly(tmp_path("missing.db"), &err);
    CHECK(d == NULL && err != NULL, "read-only open of a missing file fails");
    free(err);
    err = NULL;

    const char *empty = tmp_path("empty-ro.db");
    CHECK_INT(raw_exec(empty, "PRAGMA user_version = 0"), SQLITE_OK, "raw: empty SQLite file");
    d = db_open_readonly(empty, &err);
    CHECK(d == NULL && err && strstr(err, "not a bookrank database"),
          "read-only open never creates the schema");
    free(err);
    err = NULL;

    CHECK(db_open(NULL, &err) == NULL && err != NULL, "NULL path is an error");
    free(err);
    db_close(NULL);
    CHECK(db_errmsg(NULL) != NULL, "db_errmsg(NULL) is safe");
}

static void test_readonly(void)
{
    const char *path = tmp_path("ro.db");
    char *err = NULL;
    db *w = db_open(path, &err);
    book_id b = make_id(7);
    CHECK_INT(db_books_add(w, &b, 1, NULL, NULL), DB_OK, "setup: track the books");
    add_one(w, b.id, "amazon.com", 1000, OBS_OK, 5);
    db *r = db_open_readonly(path, &err);
    CHECK(r != NULL, "read-only open of a bookrank database");
    db_book book;
    CHECK(r && db_book_get(r, b.id, &book) == DB_OK && book.nlatest == 1,
          "read-only handle reads books");
    db_book_clear(&book);
    book_id c = make_id(8);
    CHECK(r && db_books_add(r, &c, 1, NULL, NULL) == DB_READONLY,
          "read-only handle refuses writes");
    if (r)
        printf("#   %s\n", db_errmsg(r));
    add_one(w, b.id, "amazon.com", 2000, OBS_OK, 4);
    CHECK(r && count_observations(r) == 2, "read-only handle sees later commits");
    db_close(r);
    db_close(w);

    /* After the last writer closed (and SQLite removed the -wal and -shm files). */
    r = db_open_readonly(path, &err);
    CHECK(r && count_observations(r) == 2, "read-only open with no writer around");
    if (!r)
        printf("#   %s\n", err);
    free(err);
    db_close(r);
}

/* Two processes creating the same new database at once: both end up with the schema. */
static void test_concurrent_create(void)
{
    const char *path = tmp_path("race.db");
    int go[2];
    if (pipe(go)) {
        CHECK(0, "pipe");
        return;
    }
    fflush(stdout); /* a child must not inherit (and repeat) buffered output */
    pid_t child = fork();
    if (child == 0) {
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(2);
        char *err = NULL;
        db *d = db_open(path, &err);
        if (!d)
            fprintf(stderr, "child: %s\n", err);
        int64_t n = -1;
        int ok = d && db_books_count(d, &n) == DB_OK && n >= 0;
        db_close(d);
        _exit(ok ? 0 : 1);
    }
    char *err = NULL;
    if (write(go[1], "x", 1) != 1)
        CHECK(0, "start the child");
    db *d = db_open(path, &err);
    CHECK(d != NULL, "concurrent create: this process opened it");
    if (!d)
        printf("#   %s\n", err);
    free(err);
    int status = -1;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "concurrent create: so did the other");
    book_id b = make_id(1);
    CHECK(d && db_books_add(d, &b, 1, NULL, NULL) == DB_OK, "concurrent create: schema usable");
    db_close(d);
    close(go[0]);
    close(go[1]);
}

/* ---- books ------------------------------------------------------------------------------- */

static void test_books(void)
{
    char *err = NULL;
    db *d = db_open(tmp_path("books.db"), &err);
    book_id a = make_id(1), b = make_id(2), c = make_id(3);
    book_id batch1[] = {a, b, a};
    int added[3] = {-1, -1, -1};
    CHECK_INT(db_books_add(d, batch1, 3, added, NULL), DB_OK, "add a batch with a duplicate");
    CHECK(added[0] == 1 && added[1] == 1 && added[2] == 0, "added flags: new, new, repeat");
    book_id batch2[] = {b, c};
    CHECK_INT(db_books_add(d, batch2, 2, added, NULL), DB_OK, "add a batch with a tracked book");
    CHECK(added[0] == 0 && added[1] == 1, "added flags: tracked, new");
    CHECK_INT(db_books_add(d, batch2, 2, NULL, NULL), DB_OK, "added may be NULL");

    db_target *list = NULL;
    size_t n = 0;
    CHECK(db_targets(d, NULL, 0, &list, &n) == DB_OK && n == 3, "three books tracked");
    int has_isbn10 = n == 3 && strcmp(list[0].id, a.id) == 0 &&
                     strcmp(list[0].isbn13, a.isbn13) == 0 &&
                     strcmp(list[0].isbn10, a.isbn10) == 0 && strlen(list[0].isbn10) == 10;
    CHECK(has_isbn10, "ISBN-13 and ISBN-10 stored");
    db_targets_free(list, n);

    /* A failing batch (a row violating a CHECK constraint in the middle) leaves nothing. */
    book_id d1 = make_id(4), bad, d2 = make_id(5);
    memset(&bad, 0, sizeof bad);
    memcpy(bad.id, "12345", 6);
    memcpy(bad.isbn13, "12345", 6);
    bad.kind = ID_KIND_ISBN;
    book_id batch3[] = {d1, bad, d2};
    CHECK_INT(db_books_add(d, batch3, 3, NULL, NULL), DB_ERROR, "a batch with a bad row fails");
    printf("#   %s\n", db_errmsg(d));
    int64_t count = -1;
    CHECK(db_books_count(d, &count) == DB_OK && count == 3, "failed batch added nothing");
    db_book book;
    CHECK_INT(db_book_get(d, d1.id, &book), DB_NOTFOUND, "row before the bad one undone");

    /* Inside db_begin: a failed batch is undone, the transaction goes on. */
    CHECK_INT(db_begin(d), DB_OK, "begin");
    CHECK_INT(db_books_add(d, &d1, 1, NULL, NULL), DB_OK, "add inside a transaction");
    book_id batch4[] = {d2, bad};
    CHECK_INT(db_books_add(d, batch4, 2, NULL, NULL), DB_ERROR,
              "failing batch inside a transaction");
    CHECK_INT(db_commit(d), DB_OK, "commit after a failed batch");
    CHECK(db_book_get(d, d1.id, &book) == DB_OK, "the good batch was committed");
    db_book_clear(&book);
    CHECK_INT(db_book_get(d, d2.id, &book), DB_NOTFOUND, "the failed batch was not");

    /* A batch in a rolled-back transaction leaves nothing. */
    CHECK_INT(db_begin(d), DB_OK, "begin again");
    CHECK_INT(db_books_add(d, &d2, 1, NULL, NULL), DB_OK, "add inside");
    CHECK_INT(add_one(d, d2.id, "amazon.com", 1, OBS_OK, 1), DB_OK, "observe inside");
    CHECK_INT(db_rollback(d), DB_OK, "rollback");
    CHECK_INT(db_book_get(d, d2.id, &book), DB_NOTFOUND, "rolled back batch left nothing");
    CHECK_INT(count_observations(d), 0, "rolled back observation left nothing");
    CHECK_INT(db_rollback(d), DB_OK, "rollback outside a transaction is harmless");

    /* Ordered by added_at, then id. */
    db_book *books = NULL;
    CHECK(db_books_list(d, NULL, &books, &n) == DB_OK && n == 4, "list four books");
    int ordered = n == 4 && strcmp(books[0].id, a.id) == 0 && strcmp(books[1].id, b.id) == 0 &&
                  strcmp(books[3].id, d1.id) == 0;
    CHECK(ordered, "list ordered by added_at then id");
    CHECK(n == 4 && strcmp(books[0].isbn13, a.isbn13) == 0 && books[0].asin[0] == '\0',
          "a listed ISBN book: isbn13 set, no ASIN attached");
    CHECK(n == 4 && books[0].nlatest == 0 && books[0].title == NULL && books[0].added_at_ms > 0,
          "never fetched: no latest, no title, added_at set");
    db_books_free(books, n);

    /* Remove drops history; the second time it is not found. */
    CHECK_INT(add_one(d, a.id, "amazon.com", 1000, OBS_OK, 10), DB_OK, "observe a");
    CHECK_INT(add_one(d, b.id, "amazon.com", 1000, OBS_OK, 20), DB_OK, "observe b");
    CHECK_INT(db_book_remove(d, a.id), DB_OK, "remove a");
    CHECK_INT(count_observations(d), 1, "a's observations are gone");
    CHECK_INT(db_book_remove(d, a.id), DB_NOTFOUND, "remove a again: not found");
    observation *hist = NULL;
    CHECK_INT(db_history(d, a.id, NULL, &hist, &n), DB_NOTFOUND, "history of removed book");
    CHECK_INT(db_books_add(d, &a, 1, NULL, NULL), DB_OK, "track a again");
    CHECK(db_history(d, a.id, NULL, &hist, &n) == DB_OK && n == 0,
          "re-added book starts without history");
    db_observations_free(hist, n);
    CHECK(db_book_get(d, a.id, &book) == DB_OK && book.nlatest == 0, "re-added book has no latest");
    db_book_clear(&book);
    db_book_clear(NULL);
    db_books_free(NULL, 0);
    db_close(d);
}

/* Books known by an ASIN only, ASINs attached to ISBN books, and the fields users set. */
static void test_asins_and_fields(void)
{
    char *err = NULL;
    db *d = db_open(tmp_path("asins.db"), &err);
    book_id print = make_id(41), kindle = parse_id("B01LW7X0JJ");
    CHECK(kindle.kind == ID_KIND_ASIN && strcmp(kindle.id, "B01LW7X0JJ") == 0 &&
              kindle.isbn13[0] == '\0' && kindle.isbn10[0] == '\0',
          "setup: an ASIN is an id of its own");
    book_id both[] = {print, kindle};
    int added[2] = {-1, -1};
    char ids[2][14] = {"", ""};
    CHECK_INT(db_books_add(d, both, 2, added, ids), DB_OK, "add an ISBN book and an ASIN-only one");
    CHECK(added[0] == 1 && added[1] == 1, "both are new");
    CHECK_STR(ids[0], print.id, "the ISBN book is tracked under its ISBN-13");
    CHECK_STR(ids[1], "B01LW7X0JJ", "the ASIN-only book is tracked under its ASIN");

    db_book *books = NULL;
    size_t n = 0;
    CHECK(db_books_list(d, NULL, &books, &n) == DB_OK && n == 2, "list both");
    const db_book *asin_only = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(books[i].id, "B01LW7X0JJ") == 0)
            asin_only = &books[i];
    CHECK(asin_only && asin_only->isbn13[0] == '\0' && asin_only->isbn10[0] == '\0',
          "listed with id == ASIN and no ISBN-13 or ISBN-10");
    db_books_free(books, n);

    char out[14] = "";
    book_id lower = parse_id("b01lw7x0jj");
    CHECK_INT(db_book_resolve(d, &lower, out), DB_OK, "resolve the ASIN typed in lower case");
    CHECK_STR(out, "B01LW7X0JJ", "it names the ASIN-only book");
    book_id other = parse_id("B000000001");
    CHECK_INT(db_book_resolve(d, &other, out), DB_NOTFOUND, "an untracked ASIN is not found");

    /* Observations of an ASIN-only book are keyed by its ASIN. */
    CHECK_INT(add_one(d, kindle.id, "amazon.com", 1000, OBS_OK, 25654), DB_OK,
              "observe the ASIN-only book");
    observation *h = NULL;
    CHECK(db_history(d, "B01LW7X0JJ", NULL, &h, &n) == DB_OK && n == 1 &&
              strcmp(h[0].book_id, "B01LW7X0JJ") == 0 && h[0].rank == 25654,
          "its history, under its ASIN");
    db_observations_free(h, n);

    /* An ASIN attached to an ISBN book names that book from then on. */
    db_book_patch attach = {.set = DB_SET_ASIN, .asin = "B000000001"};
    CHECK_INT(db_book_update(d, print.id, &attach), DB_OK, "attach an ASIN to the ISBN book");
    CHECK(db_book_resolve(d, &other, out) == DB_OK && strcmp(out, print.id) == 0,
          "the attached ASIN resolves to the ISBN book");
    added[0] = -1;
    CHECK(db_books_add(d, &other, 1, added, ids) == DB_OK && added[0] == 0 &&
              strcmp(ids[0], print.id) == 0,
          "adding the attached ASIN names the ISBN book, adds nothing");
    attach.asin = "B01LW7X0JJ";
    CHECK_INT(db_book_update(d, print.id, &attach), DB_CONFLICT,
              "another book's id cannot be attached as an ASIN");

    /* work, tags and note. */
    const char *tags[] = {"zeta", "alpha"};
    db_book_patch fields = {.set = DB_SET_WORK | DB_SET_TAGS | DB_SET_NOTE,
                            .work = "The Work",
                            .note = "a note\non two lines",
                            .tags = tags,
                            .ntags = 2};
    char why[128] = "";
    CHECK_INT(db_book_patch_check(&fields, why, sizeof why), 0, "a valid patch passes the check");
    CHECK_INT(db_book_update(d, kindle.id, &fields), DB_OK, "set work, tags and note");
    db_book book;
    CHECK_INT(db_book_get(d, kindle.id, &book), DB_OK, "get the book back");
    CHECK_STR(book.work, "The Work", "work round trip");
    CHECK_STR(book.note, "a note\non two lines", "note round trip");
    CHECK(book.ntags == 2 && strcmp(book.tags[0], "alpha") == 0 &&
              strcmp(book.tags[1], "zeta") == 0,
          "tags round trip, sorted");
    CHECK(book.nlatest == 1 && book.latest[0].rank == 25654, "latest of the ASIN-only book");
    db_book_clear(&book);
    db_book_filter f = {.tag = "alpha"};
    CHECK(db_books_list(d, &f, &books, &n) == DB_OK && n == 1 &&
              strcmp(books[0].id, kindle.id) == 0,
          "tag filter");
    db_books_free(books, n);
    f = (db_book_filter){.work = "The Work"};
    CHECK(db_books_list(d, &f, &books, &n) == DB_OK && n == 1, "work filter");
    db_books_free(books, n);
    CHECK_INT(db_book_update(d, "9780000000000", &fields), DB_NOTFOUND, "update an untracked book");

    /* Caps: a 64-byte tag is fine, a 65-byte one is refused (and changes nothing). */
    char tag64[65], tag65[66];
    memset(tag64, 't', 64);
    tag64[64] = '\0';
    memset(tag65, 't', 65);
    tag65[65] = '\0';
    const char *ok_tags[] = {tag64}, *long_tags[] = {tag65};
    db_book_patch ok_patch = {.set = DB_SET_TAGS, .tags = ok_tags, .ntags = 1};
    db_book_patch long_patch = {.set = DB_SET_TAGS, .tags = long_tags, .ntags = 1};
    CHECK_INT(db_book_patch_check(&ok_patch, why, sizeof why), 0, "a 64-byte tag fits");
    why[0] = '\0';
    CHECK(db_book_patch_check(&long_patch, why, sizeof why) == -1 && why[0] != '\0',
          "a 65-byte tag is refused, with a reason");
    printf("#   %s\n", why);
    CHECK(db_book_update(d, kindle.id, &long_patch) < 0, "db_book_update refuses it too");
    CHECK(db_book_get(d, kindle.id, &book) == DB_OK && book.ntags == 2,
          "the refused patch changed nothing");
    db_book_clear(&book);

    /* Removing by the ASIN id. */
    CHECK_INT(db_book_remove(d, kindle.id), DB_OK, "remove the ASIN-only book");
    CHECK_INT(db_book_get(d, kindle.id, &book), DB_NOTFOUND, "it is gone");
    CHECK_INT(count_observations(d), 0, "with its observations");
    db_close(d);
}

/* ---- observations, latest, filters -------------------------------------------------------- */

static void test_latest_and_filters(void)
{
    char *err = NULL;
    db *d = db_open(tmp_path("latest.db"), &err);
    book_id a = make_id(11), b = make_id(12), c = make_id(13);
    book_id all[] = {a, b, c};
    CHECK_INT(db_books_add(d, all, 3, NULL, NULL), DB_OK, "setup: track the books");

    /* a on s1: ok 100, blocked, ok 90 -> latest 90, previous 100 (the blocked one has no rank). */
    CHECK_INT(add_one(d, a.id, "s1", 1000, OBS_OK, 100), DB_OK, "a s1 t1000");
    CHECK_INT(add_one(d, a.id, "s1", 2000, OBS_BLOCKED, -1), DB_OK, "a s1 t2000 blocked");
    CHECK_INT(add_one(d, a.id, "s1", 3000, OBS_OK, 90), DB_OK, "a s1 t3000");
    CHECK_INT(add_one(d, a.id, "s2", 1500, OBS_OK, 500), DB_OK, "a s2 t1500");
    CHECK_INT(add_one(d, b.id, "s1", 1000, OBS_NO_RANK, -1), DB_OK, "b s1 no_rank");

    db_book book;
    CHECK(db_book_get(d, a.id, &book) == DB_OK && book.nlatest == 2, "a has two latest");
    if (book.nlatest == 2) {
        CHECK_STR(book.latest[0].source, "s1", "latest ordered by source");
        CHECK_INT(book.latest[0].rank, 90, "s1 latest rank");
        CHECK_INT(book.latest[0].previous_rank, 100, "previous_rank skips the unranked one");
        CHECK_INT(book.latest[0].fetched_at_ms, 3000, "s1 latest fetched_at");
        CHECK_INT(book.latest[1].rank, 500, "s2 latest rank");
        CHECK_INT(book.latest[1].previous_rank, -1, "s2 has no previous rank");
        CHECK_INT(book.latest[0].http_status, 200, "http_status read back");
        CHECK_INT(book.latest[0].attempts, 1, "attempts read back");
        CHECK_INT(book.latest[0].duration_ms, 42, "duration read back");
    }
    db_book_clear(&book);

    /* Out of order: an older observation arriving late changes previous_rank, not latest. */
    CHECK_INT(add_one(d, a.id, "s1", 2500, OBS_OK, 95), DB_OK, "late arrival t2500");
    CHECK(db_book_get(d, a.id, &book) == DB_OK && book.nlatest == 2, "a still two latest");
    const observation *s1 = book.nlatest ? latest_of(&book, "s1") : NULL;
    CHECK(s1 && s1->rank == 90 && s1->previous_rank == 95,
          "late arrival: latest kept, previous 95");
    db_book_clear(&book);

    /* A latest blocked observation: no rank, previous_rank is the last real one. */
    CHECK_INT(add_one(d, a.id, "s1", 4000, OBS_BLOCKED, -1), DB_OK, "a s1 t4000 blocked");
    CHECK(db_book_get(d, a.id, &book) == DB_OK, "get a");
    s1 = latest_of(&book, "s1");
    CHECK(s1 && s1->status == OBS_BLOCKED && s1->rank == -1 && s1->previous_rank == 90,
          "latest blocked: rank -1, previous 90");
    db_book_clear(&book);

    /* Same fetched_at: the later insert is the latest. */
    CHECK_INT(add_one(d, c.id, "s1", 7000, OBS_OK, 1), DB_OK, "c t7000 rank 1");
    CHECK_INT(add_one(d, c.id, "s1", 7000, OBS_OK, 2), DB_OK, "c t7000 rank 2");
    CHECK(db_book_get(d, c.id, &book) == DB_OK && book.nlatest == 1 && book.latest[0].rank == 2 &&
              book.latest[0].previous_rank == 1,
          "ties on fetched_at: later insert wins");
    db_book_clear(&book);

    db_book *books = NULL;
    size_t n = 0;
    db_book_filter f = {.status = "blocked"};
    CHECK(db_books_list(d, &f, &books, &n) == DB_OK && n == 1 && strcmp(books[0].id, a.id) == 0 &&
              books[0].nlatest == 2,
          "status filter: the book with a blocked latest, all its latest");
    db_books_free(books, n);

    f = (db_book_filter){.status = "ok"};
    CHECK(db_books_list(d, &f, &books, &n) == DB_OK && n == 2, "status ok: a (s2) and c");
    db_books_free(books, n);

    f = (db_book_filter){.source = "s2"};
    CHECK(db_books_list(d, &f, &books, &n) == DB_OK && n == 3, "source filter lists all books");
    int only_s2 = n == 3 && books[0].nlatest == 1 && strcmp(books[0].latest[0].source, "s2") == 0 &&
                  books[1].nlatest == 0 && books[2].nlatest == 0;
    CHECK(only_s2, "source filter keeps only that source's latest");
    db_books_free(books, n);

    f = (db_book_filter){.source = "s2", .status = "blocked"};
    CHECK(db_books_list(d, &f, &books, &n) == DB_OK && n == 0,
          "status + source: a's blocked latest is on s1, not s2");
    db_books_free(books, n);

    f = (db_book_filter){.status = "no_rank", .id = b.id};
    CHECK(db_books_list(d, &f, &books, &n) == DB_OK && n == 1 && books[0].nlatest == 1,
          "id + status filter");
    db_books_free(books, n);
    f = (db_book_filter){.status = "ok", .id = b.id};
    CHECK(db_books_list(d, &f, &books, &n) == DB_OK && n == 0, "id + other status: none");
    db_books_free(books, n);
    CHECK_INT(db_book_get(d, "9780000000000", &book), DB_NOTFOUND, "get untracked book");

    /* Observations of untracked books are skipped; the rest of the batch is stored. */
    observation batch[2];
    make_obs(&batch[0], "9781111111113", "s1", 9000, OBS_OK, 3);
    make_obs(&batch[1], b.id, "s1", 9000, OBS_OK, 4);
    int64_t before = count_observations(d);
    CHECK_INT(db_observations_add(d, batch, 2, 0), DB_OK, "batch with an untracked book");
    CHECK_INT(count_observations(d), before + 1, "only the tracked book's observation stored");
    obs_clear(&batch[0]);
    obs_clear(&batch[1]);

    observation nosource;
    obs_init(&nosource);
    memcpy(nosource.book_id, b.id, 14);
    CHECK_INT(db_observations_add(d, &nosource, 1, 0), DB_ERROR, "observation without a source");
    CHECK_INT(db_observations_add(d, NULL, 0, 0), DB_OK, "empty batch");
    db_close(d);
}

/* ---- titles and categories --------------------------------------------------------------- */

static void test_title_and_categories(void)
{
    char *err = NULL;
    db *d = db_open(tmp_path("cats.db"), &err);
    book_id a = make_id(21);
    CHECK_INT(db_books_add(d, &a, 1, NULL, NULL), DB_OK, "setup: track the books");

    observation o;
    make_obs(&o, a.id, "amazon.com", 5000, OBS_OK, 1234);
    obs_set_str(&o.title, "First \"Title\" <b>");
    obs_set_str(&o.rank_category, "Books");
    const char *names[] = {
        "Python \"Programming\"",           "<script>alert('x')</script>",
        "Fremdsprachige Bücher — 日本語 😀", "back\\slash\ttab\nnewline",
        "bad \xff\xfe utf8 \xc3",
    };
    for (int i = 0; i < 5; i++)
        obs_add_category(&o, 10 + i, names[i], strlen(names[i]));
    CHECK_INT(db_observations_add(d, &o, 1, 0), DB_OK, "add an observation with categories");
    obs_clear(&o);

    db_book book;
    CHECK(db_book_get(d, a.id, &book) == DB_OK && book.nlatest == 1, "get it back");
    CHECK_STR(book.title, "First \"Title\" <b>", "book title from the observation");
    if (book.nlatest == 1) {
        const observation *l = &book.latest[0];
        CHECK_STR(l->rank_category, "Books", "rank_category round trip");
        CHECK_INT(l->ncategories, 5, "five categories");
        for (size_t i = 0; i < 4 && i < l->ncategories; i++) {
            CHECK_STR(l->categories[i].category, names[i], "category text round trip");
            CHECK_INT(l->categories[i].rank, 10 + (int)i, "category rank round trip");
        }
        if (l->ncategories == 5)
            CHECK_STR(l->categories[4].category, "bad \xef\xbf\xbd\xef\xbf\xbd utf8 \xef\xbf\xbd",
                      "invalid UTF-8 replaced by U+FFFD, not dropped");
        CHECK_STR(l->title, "First \"Title\" <b>", "observation title round trip");
        CHECK(l->error == NULL, "no error");
    }
    db_book_clear(&book);

    /* An older observation arriving late does not replace the title; a newer one does. */
    make_obs(&o, a.id, "amazon.com", 1000, OBS_OK, 1);
    obs_set_str(&o.title, "Old title");
    CHECK_INT(db_observations_add(d, &o, 1, 0), DB_OK, "setup: add the observation");
    obs_clear(&o);
    CHECK(db_book_get(d, a.id, &book) == DB_OK, "get");
    CHECK_STR(book.title, "First \"Title\" <b>", "older observation keeps the title");
    db_book_clear(&book);
    make_obs(&o, a.id, "amazon.com", 9000, OBS_ERROR, -1);
    obs_set_str(&o.error, "timeout after 30 s");
    CHECK_INT(db_observations_add(d, &o, 1, 0), DB_OK, "setup: add the observation");
    obs_clear(&o);
    CHECK(db_book_get(d, a.id, &book) == DB_OK, "get");
    CHECK_STR(book.title, "First \"Title\" <b>", "an observation without a title keeps it");
    CHECK(book.nlatest == 1 && book.latest[0].error &&
              strcmp(book.latest[0].error, "timeout after 30 s") == 0 &&
              book.latest[0].ncategories == 0 && book.latest[0].rank_category == NULL,
          "error observation round trip");
    db_book_clear(&book);
    make_obs(&o, a.id, "amazon.de", 10000, OBS_OK, 7);
    obs_set_str(&o.title, "Neuer Titel");
    CHECK_INT(db_observations_add(d, &o, 1, 0), DB_OK, "setup: add the observation");
    obs_clear(&o);
    CHECK(db_book_get(d, a.id, &book) == DB_OK, "get");
    CHECK_STR(book.title, "Neuer Titel", "a newer observation's title replaces it");
    db_book_clear(&book);
    db_close(d);
}

/* ---- history and export ------------------------------------------------------------------ */

static int export_cb(void *ctx, const observation *obs)
{
    int64_t *state = ctx; /* [0] count, [1] last fetched_at, [2] out of order, [3] stop at */
    if (obs->fetched_at_ms < state[1])
        state[2]++;
    state[1] = obs->fetched_at_ms;
    state[0]++;
    return state[3] && state[0] >= state[3];
}

static void test_history_and_export(void)
{
    char *err = NULL;
    db *d = db_open(tmp_path("history.db"), &err);
    book_id a = make_id(31), b = make_id(32);
    book_id both[] = {a, b};
    CHECK_INT(db_books_add(d, both, 2, NULL, NULL), DB_OK, "setup: track the books");

    /* 600 observations on two sources, inserted in a shuffled time order. */
    observation *batch = calloc(600, sizeof *batch);
    for (int i = 0; i < 600; i++) {
        int t = (i * 7) % 600; /* 7 is coprime with 600: a permutation */
        make_obs(&batch[i], a.id, t % 2 ? "s2" : "s1", 10000 + t * 10, OBS_OK, 1000 + t);
    }
    CHECK_INT(db_observations_add(d, batch, 600, 0), DB_OK, "add 600 observations");
    db_observations_free(batch, 600);
    add_one(d, b.id, "s1", 5, OBS_OK, 1);

    observation *h = NULL;
    size_t n = 0;
    CHECK(db_history(d, a.id, NULL, &h, &n) == DB_OK && n == 500, "default limit 500");
    int newest_first = 1;
    for (size_t i = 1; i < n; i++)
        if (h[i].fetched_at_ms > h[i - 1].fetched_at_ms)
            newest_first = 0;
    CHECK(n && newest_first && h[0].fetched_at_ms == 10000 + 599 * 10, "newest first");
    /* Each row's previous rank is the rank of the previous row of the same source. */
    int prev_ok = n == 500;
    for (size_t i = 0; i + 2 < n; i++)
        if (h[i].previous_rank != h[i + 2].rank)
            prev_ok = 0;
    CHECK(prev_ok, "history previous_rank within the window");
    CHECK(n == 500 && h[499].previous_rank == h[499].rank - 2,
          "history previous_rank beyond the window");
    db_observations_free(h, n);

    db_history_query q = {.source = "s2", .since_ms = 10000 + 500 * 10, .limit = 0};
    CHECK(db_history(d, a.id, &q, &h, &n) == DB_OK && n == 50, "source + since");
    int only_s2 = 1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(h[i].source, "s2") || h[i].fetched_at_ms < q.since_ms)
            only_s2 = 0;
    CHECK(only_s2, "source and since respected");
    db_observations_free(h, n);

    q = (db_history_query){.limit = 3};
    CHECK(db_history(d, a.id, &q, &h, &n) == DB_OK && n == 3, "explicit limit");
    db_observations_free(h, n);
    q = (db_history_query){.since_ms = 10000 + 599 * 10};
    CHECK(db_history(d, a.id, &q, &h, &n) == DB_OK && n == 1, "since is inclusive");
    db_observations_free(h, n);
    q = (db_history_query){.before_ms = 10000 + 10 * 10};
    CHECK(db_history(d, a.id, &q, &h, &n) == DB_OK && n == 10 &&
              h[0].fetched_at_ms == 10000 + 9 * 10 && h[9].fetched_at_ms == 10000,
          "before is exclusive");
    db_observations_free(h, n);
    q = (db_history_query){.source = "s1",
                           .since_ms = 10000 + 100 * 10,
                           .before_ms = 10000 + 110 * 10};
    CHECK(db_history(d, a.id, &q, &h, &n) == DB_OK && n == 5 &&
              h[0].fetched_at_ms == 10000 + 108 * 10 && h[4].fetched_at_ms == 10000 + 100 * 10,
          "source + since + before");
    db_observations_free(h, n);
    q = (db_history_query){.source = "nope"};
    CHECK(db_history(d, a.id, &q, &h, &n) == DB_OK && n == 0 && h == NULL, "unknown source: empty");
    db_observations_free(h, n);

    /* Ties on fetched_at: the later insert first. */
    add_one(d, b.id, "s1", 100, OBS_OK, 11);
    add_one(d, b.id, "s1", 100, OBS_OK, 12);
    CHECK(db_history(d, b.id, NULL, &h, &n) == DB_OK && n == 3 && h[0].rank == 12 &&
              h[1].rank == 11 && h[2].rank == 1,
          "ties broken by insert order, newest first");
    CHECK(n == 3 && h[0].previous_rank == 11 && h[1].previous_rank == 1 && h[2].previous_rank == -1,
          "previous_rank follows the same order");
    db_observations_free(h, n);

    int64_t state[4] = {0, 0, 0, 0};
    CHECK_INT(db_export(d, export_cb, state), DB_OK, "export");
    CHECK_INT(state[0], 603, "export visits every observation");
    CHECK_INT(state[2], 0, "export is oldest first");
    int64_t stop[4] = {0, 0, 0, 10};
    CHECK(db_export(d, export_cb, stop) == DB_OK && stop[0] == 10, "export stops early");
    db_close(d);
}

/* ---- jobs -------------------------------------------------------------------------------- */

/* In a child process: create a running job in path, close. */
static int child_create_job(const char *path)
{
    char *err = NULL;
    db *d = db_open(path, &err);
    if (!d)
        return 1;
    db_job job = {.state = JOB_RUNNING, .all_books = 1, .total = 5};
    int rc = db_job_create(d, &job);
    db_close(d);
    return rc == DB_OK ? 0 : 1;
}

static void test_jobs(void)
{
    const char *path = tmp_path("jobs.db");
    char *err = NULL;
    db *d = db_open(path, &err);
    db_job job = {.state = JOB_QUEUED, .all_books = 1, .total = 3};
    CHECK(db_job_create(d, &job) == DB_OK && job.id > 0, "create a job");
    CHECK(job.created_at_ms > 0 && job.owner_pid == getpid(), "created_at and owner set");
    job.state = JOB_RUNNING;
    job.started_at_ms = job.created_at_ms + 1;
    job.done = 2;
    job.counts[OBS_OK] = 1;
    job.counts[OBS_BLOCKED] = 1;
    CHECK_INT(db_job_update(d, &job), DB_OK, "update it");
    db_job got;
    CHECK_INT(db_job_get(d, job.id, &got), DB_OK, "get it");
    CHECK(got.state == JOB_RUNNING && got.done == 2 && got.total == 3 && got.all_books == 1 &&
              got.counts[OBS_OK] == 1 && got.counts[OBS_BLOCKED] == 1 &&
              got.counts[OBS_ERROR] == 0 && got.started_at_ms == job.started_at_ms &&
              got.finished_at_ms == 0 && got.owner_pid == getpid(),
          "fields round trip");
    job.state = JOB_DONE;
    job.done = 3;
    job.finished_at_ms = job.started_at_ms + 5;
    CHECK_INT(db_job_update(d, &job), DB_OK, "setup: update the job");
    CHECK(db_job_get(d, job.id, &got) == DB_OK && got.state == JOB_DONE &&
              got.finished_at_ms == job.finished_at_ms,
          "finished job");
    CHECK_INT(db_job_get(d, 999999, &got), DB_NOTFOUND, "unknown job");
    db_job ghost = {.id = 999999};
    CHECK_INT(db_job_update(d, &ghost), DB_NOTFOUND, "update of an unknown job");
    CHECK_STR(db_job_state_name(JOB_CANCELLED), "cancelled", "state names");

    db_job mine = {.state = JOB_RUNNING};
    CHECK_INT(db_job_create(d, &mine), DB_OK, "setup: create a second job");
    /* No handle may cross fork(): close before, reopen after. */
    db_close(d);

    /* A job whose owner died (a crashed cron refresh). */
    fflush(stdout); /* a child must not inherit (and repeat) buffered output */
    pid_t dead = fork();
    if (dead == 0)
        _exit(child_create_job(path));
    int status = -1;
    waitpid(dead, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "dead child created its job");

    /* A job whose owner is alive (a cron refresh running beside serve). */
    int to_parent[2], to_child[2];
    if (pipe(to_parent) || pipe(to_child)) {
        CHECK(0, "pipe");
        return;
    }
    fflush(stdout); /* a child must not inherit (and repeat) buffered output */
    pid_t alive = fork();
    if (alive == 0) {
        char c = child_create_job(path) ? 'f' : 'k';
        if (write(to_parent[1], &c, 1) != 1)
            _exit(1);
        ssize_t r = read(to_child[0], &c, 1); /* stay alive until told */
        _exit(r == 1 ? 0 : 1);
    }
    char c = 0;
    CHECK(read(to_parent[0], &c, 1) == 1 && c == 'k', "live child created its job");

    d = db_open(path, &err);
    int n = -1;
    CHECK_INT(db_jobs_cancel_unfinished(d, 123456, &n), DB_OK, "cancel unfinished");
    CHECK_INT(n, 2, "ours and the dead owner's job cancelled, not the live one's");
    CHECK(db_job_get(d, mine.id, &got) == DB_OK && got.state == JOB_CANCELLED &&
              got.finished_at_ms == 123456,
          "our job cancelled with finished_at");
    CHECK(db_job_get(d, job.id, &got) == DB_OK && got.state == JOB_DONE, "done job untouched");
    db_job live;
    CHECK(db_job_get(d, mine.id + 2, &live) == DB_OK && live.state == JOB_RUNNING &&
              live.owner_pid == alive,
          "live owner's job still running");
    db_close(d);

    if (write(to_child[1], "x", 1) != 1)
        CHECK(0, "release the child");
    waitpid(alive, &status, 0);
    close(to_parent[0]);
    close(to_parent[1]);
    close(to_child[0]);
    close(to_child[1]);
    d = db_open(path, &err);
    CHECK(db_jobs_cancel_unfinished(d, 2, &n) == DB_OK && n == 1,
          "after its owner exits, that job is cancelled too");
    CHECK(db_jobs_cancel_unfinished(d, 3, &n) == DB_OK && n == 0, "nothing left to cancel");
    db_close(d);
}

/* ---- concurrency ------------------------------------------------------------------------- */

#define BATCH 250
#define BATCHES 20

struct reader_state {
    const char *path;
    atomic_int writer_done;
    int errors, partial, reads;
    int64_t last;
};

static void *reader_main(void *arg)
{
    struct reader_state *rs = arg;
    char *err = NULL;
    db *d = db_open_readonly(rs->path, &err);
    if (!d) {
        rs->errors++;
        free(err);
        return NULL;
    }
    /* Keep reading until the writer is done, then once more to see the final state. */
    for (int finishing = 0; finishing < 2;) {
        if (atomic_load(&rs->writer_done))
            finishing++;
        int64_t n = count_observations(d);
        rs->reads++;
        if (n < 0) {
            rs->errors++;
            continue;
        }
        if (n % BATCH)
            rs->partial++;
        if (n < rs->last)
            rs->partial++;
        rs->last = n;
    }
    db_close(d);
    return NULL;
}

static void test_reader_thread(void)
{
    const char *path = tmp_path("threads.db");
    char *err = NULL;
    db *w = db_open(path, &err);
    book_id books[10];
    for (int i = 0; i < 10; i++)
        books[i] = make_id(100 + i);
    CHECK_INT(db_books_add(w, books, 10, NULL, NULL), DB_OK, "setup: track the books");

    struct reader_state rs = {.path = path};
    atomic_init(&rs.writer_done, 0);
    pthread_t tid;
    pthread_create(&tid, NULL, reader_main, &rs);
    observation *batch = calloc(BATCH, sizeof *batch);
    int write_errors = 0;
    for (int k = 0; k < BATCHES; k++) {
        for (int i = 0; i < BATCH; i++)
            make_obs(&batch[i], books[i % 10].id, "amazon.com", k * 1000 + i, OBS_OK, i + 1);
        if (db_observations_add(w, batch, BATCH, 0) != DB_OK)
            write_errors++;
        for (int i = 0; i < BATCH; i++)
            obs_clear(&batch[i]);
    }
    free(batch);
    atomic_store(&rs.writer_done, 1);
    pthread_join(tid, NULL);
    CHECK_INT(write_errors, 0, "writer thread: every batch stored");
    CHECK_INT(rs.errors, 0, "reader thread: never an error");
    CHECK_INT(rs.partial, 0, "reader thread: only whole batches, never going back");
    CHECK(rs.reads >= 2, "reader thread: read while writing");
    CHECK_INT(rs.last, BATCH * BATCHES, "reader thread: sees every batch at the end");
    printf("#   reader made %d reads during %d batch writes\n", rs.reads, BATCHES);
    db_close(w);
}

#define PROC_BATCHES 40
#define PROC_BATCH 100

/* Appends PROC_BATCHES batches for one book; 0 on success. */
static int write_batches(const char *path, const char *id, int tag)
{
    char *err = NULL;
    db *d = db_open(path, &err);
    if (!d) {
        fprintf(stderr, "open: %s\n", err);
        free(err);
        return 1;
    }
    int failures = 0;
    observation batch[PROC_BATCH];
    for (int k = 0; k < PROC_BATCHES; k++) {
        for (int i = 0; i < PROC_BATCH; i++)
            make_obs(&batch[i], id, tag ? "amazon.de" : "amazon.com", k * 1000 + i, OBS_OK, i + 1);
        if (db_observations_add(d, batch, PROC_BATCH, 0) != DB_OK) {
            fprintf(stderr, "writer %d: %s\n", tag, db_errmsg(d));
            failures++;
        }
        for (int i = 0; i < PROC_BATCH; i++)
            obs_clear(&batch[i]);
    }
    db_close(d);
    return failures ? 1 : 0;
}

static void test_two_processes(void)
{
    const char *path = tmp_path("procs.db");
    char *err = NULL;
    db *d = db_open(path, &err);
    book_id a = make_id(201), b = make_id(202);
    book_id both[] = {a, b};
    CHECK_INT(db_books_add(d, both, 2, NULL, NULL), DB_OK, "setup: track the books");
    db_close(d); /* no handle may cross fork() */

    fflush(stdout); /* a child must not inherit (and repeat) buffered output */
    pid_t child = fork();
    if (child == 0)
        _exit(write_batches(path, b.id, 1));
    int mine = write_batches(path, a.id, 0);
    int status = -1;
    waitpid(child, &status, 0);
    CHECK_INT(mine, 0, "two processes: this one's batches all stored");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "two processes: the child's too");

    d = db_open(path, &err);
    observation *h = NULL;
    size_t n = 0;
    db_history_query q = {.limit = 100000};
    CHECK(db_history(d, a.id, &q, &h, &n) == DB_OK && n == PROC_BATCHES * PROC_BATCH,
          "two processes: nothing lost (parent)");
    db_observations_free(h, n);
    CHECK(db_history(d, b.id, &q, &h, &n) == DB_OK && n == PROC_BATCHES * PROC_BATCH,
          "two processes: nothing lost (child)");
    db_observations_free(h, n);
    db_close(d);
}

/* A second connection holding the write lock past busy_timeout makes a write fail, not hang. */
static void test_busy_is_error(void)
{
    const char *path = tmp_path("busy.db");
    char *err = NULL;
    db *a = db_open(path, &err), *b = db_open(path, &err);
    book_id x = make_id(301);
    CHECK_INT(db_begin(a), DB_OK, "first handle takes the write lock");
    CHECK_INT(db_books_add(a, &x, 1, NULL, NULL), DB_OK, "setup: track the books");
    int rc = db_books_add(b, &x, 1, NULL, NULL);
    CHECK_INT(rc, DB_BUSY, "second writer gives up after busy_timeout");
    CHECK(strstr(db_errmsg(b), "locked") != NULL, "with a message that says why");
    printf("#   %s\n", db_errmsg(b));
    CHECK_INT(db_commit(a), DB_OK, "first handle commits");
    int added = -1;
    CHECK(db_books_add(b, &x, 1, &added, NULL) == DB_OK && added == 0, "second writer works after");
    db_close(a);
    db_close(b);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_db.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_open_and_migrate();
    test_bad_files();
    test_readonly();
    test_concurrent_create();
    test_books();
    test_asins_and_fields();
    test_latest_and_filters();
    test_title_and_categories();
    test_history_and_export();
    test_jobs();
    test_reader_thread();
    test_two_processes();
    test_busy_is_error();
    remove_tmpdir();
    return check_done();
}
