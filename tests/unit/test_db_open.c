/* test_db_open.c - opening the store (db_connect and its flags): missing files, older and newer
 * schemas, migration with its backup copy, a database written by release 0.1.0, the busy
 * timeout, read-only files, error codes and messages, and the PostgreSQL locations that are not
 * built in yet. The release database comes from $FIXTURES/db (default tests/fixtures/db). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../common/ids.h"
#include "../../common/observation.h"
#include "../../common/timeutil.h"
#include "../../db/db.h"
#include "../lib/check.h"

static char tmpdir[64];

/* A path inside this run's temporary directory. */
static const char *tmp_path(const char *name)
{
    static char path[8][160];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
    return p;
}

static void remove_dir(const char *dir)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return;
    struct dirent *e;
    char p[400];
    while ((e = readdir(dh))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p) {
            if (unlink(p) != 0 && errno == EISDIR)
                rmdir(p);
        }
    }
    closedir(dh);
    rmdir(dir);
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* path + suffix, in a rotating static buffer. */
static const char *with_suffix(const char *path, const char *suffix)
{
    static char out[4][200];
    static int next;
    char *p = out[next++ % 4];
    snprintf(p, sizeof out[0], "%s%s", path, suffix);
    return p;
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

/* The whole file, malloc'd; NULL when it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t cap = 0, n = 0;
    *len = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (n == cap) {
            char *grown = realloc(data, cap ? cap * 2 : 65536);
            if (!grown) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = grown;
            cap = cap ? cap * 2 : 65536;
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return data;
}

static int same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    return a && b && alen == blen && memcmp(a, b, alen) == 0;
}

/* Writes data[0..len) to a new file at path; 0 or -1. */
static int write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
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

static int raw_exec(const char *path, const char *sql)
{
    sqlite3 *conn = NULL;
    int rc = sqlite3_open(path, &conn);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(conn, sql, NULL, NULL, NULL);
    sqlite3_close(conn);
    return rc;
}

/* Appends every row of `sql` to *out as text, one line per row. 0 or -1. */
static int dump_query(sqlite3 *conn, const char *sql, char **out, size_t *len)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(conn, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const char *v = (const char *)sqlite3_column_text(st, c);
            size_t vlen = v ? strlen(v) : 4;
            char *grown = realloc(*out, *len + vlen + 3);
            if (!grown) {
                sqlite3_finalize(st);
                return -1;
            }
            *out = grown;
            memcpy(*out + *len, v ? v : "NULL", vlen);
            *len += vlen;
            (*out)[(*len)++] = c + 1 < sqlite3_column_count(st) ? '|' : '\n';
            (*out)[*len] = '\0';
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Everything a bookrank database holds, as text: the schema, user_version and every row of every
 * table. NULL when it cannot be read. */
static char *dump_db(const char *path)
{
    static const char *const queries[] = {
        "PRAGMA user_version",
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name",
        "SELECT * FROM books ORDER BY isbn13",
        "SELECT * FROM observations ORDER BY id",
        "SELECT * FROM latest ORDER BY isbn13, source",
        "SELECT * FROM jobs ORDER BY id",
    };
    sqlite3 *conn = NULL;
    char *out = NULL;
    size_t len = 0;
    int ok = sqlite3_open_v2(path, &conn, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK;
    for (size_t i = 0; ok && i < sizeof queries / sizeof queries[0]; i++)
        ok = dump_query(conn, queries[i], &out, &len) == 0;
    sqlite3_close(conn);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

/* Migration step 0 -> 1 as released (db/sqlite_schema.c), applied with plain sqlite3 calls:
 * the database an older bookrank left behind. */
static const char *const schema_v1 =
    "CREATE TABLE books ("
    "  isbn13   TEXT PRIMARY KEY NOT NULL"
    "           CHECK (length(isbn13) = 13 AND isbn13 NOT GLOB '*[^0-9]*'),"
    "  isbn10   TEXT NOT NULL DEFAULT '' CHECK (length(isbn10) IN (0, 10)),"
    "  title    TEXT,"
    "  added_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX books_by_added ON books(added_at, isbn13);"
    "CREATE TABLE observations ("
    "  id            INTEGER PRIMARY KEY,"
    "  isbn13        TEXT NOT NULL REFERENCES books(isbn13) ON DELETE CASCADE,"
    "  source        TEXT NOT NULL,"
    "  fetched_at    INTEGER NOT NULL,"
    "  status        TEXT NOT NULL"
    "                CHECK (status IN ('ok', 'no_rank', 'not_found', 'blocked', 'error')),"
    "  rank          INTEGER,"
    "  rank_category TEXT,"
    "  categories    TEXT,"
    "  title         TEXT,"
    "  http_status   INTEGER NOT NULL DEFAULT 0,"
    "  attempts      INTEGER NOT NULL DEFAULT 0,"
    "  duration_ms   INTEGER NOT NULL DEFAULT 0,"
    "  error         TEXT"
    ");"
    "CREATE INDEX observations_by_book ON observations(isbn13, source, fetched_at);"
    "CREATE TABLE latest ("
    "  isbn13         TEXT NOT NULL REFERENCES books(isbn13) ON DELETE CASCADE,"
    "  source         TEXT NOT NULL,"
    "  observation_id INTEGER NOT NULL,"
    "  previous_rank  INTEGER,"
    "  PRIMARY KEY (isbn13, source)"
    ") WITHOUT ROWID;"
    "CREATE TABLE jobs ("
    "  id          INTEGER PRIMARY KEY,"
    "  state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'cancelled')),"
    "  all_books   INTEGER NOT NULL DEFAULT 0,"
    "  total       INTEGER NOT NULL DEFAULT 0,"
    "  done        INTEGER NOT NULL DEFAULT 0,"
    "  n_ok        INTEGER NOT NULL DEFAULT 0,"
    "  n_no_rank   INTEGER NOT NULL DEFAULT 0,"
    "  n_not_found INTEGER NOT NULL DEFAULT 0,"
    "  n_blocked   INTEGER NOT NULL DEFAULT 0,"
    "  n_error     INTEGER NOT NULL DEFAULT 0,"
    "  created_at  INTEGER NOT NULL,"
    "  started_at  INTEGER NOT NULL DEFAULT 0,"
    "  finished_at INTEGER NOT NULL DEFAULT 0,"
    "  owner_pid   INTEGER NOT NULL"
    ");"
    "CREATE INDEX jobs_unfinished ON jobs(state) WHERE state IN ('queued', 'running');";

/* A version-1 database with two books, three observations (one with categories), their latest
 * rows and a job. SQLITE_OK or the failing code. */
static int make_v1(const char *path)
{
    book_id a = make_id(1), b = make_id(2);
    char sql[2048];
    int n = snprintf(
        sql, sizeof sql,
        "BEGIN;"
        "INSERT INTO books VALUES ('%s', '%s', 'A title', 1000), ('%s', '', NULL, 1001);"
        "INSERT INTO observations VALUES"
        " (1, '%s', 'amazon.com', 2000, 'ok', 120, 'Books', "
        "   '[{\"rank\":3,\"category\":\"Compilers\"}]', 'A title', 200, 1, 40, NULL),"
        " (2, '%s', 'amazon.com', 3000, 'blocked', NULL, NULL, NULL, NULL, 503, 2, 80, 'captcha'),"
        " (3, '%s', 'amazon.de', 2500, 'ok', 9, 'Bücher', NULL, NULL, 200, 1, 30, NULL);"
        "INSERT INTO latest VALUES ('%s', 'amazon.com', 2, 120), ('%s', 'amazon.de', 3, NULL);"
        "INSERT INTO jobs(state, total, done, n_ok, created_at, owner_pid)"
        " VALUES ('done', 2, 2, 1, 1500, 1);"
        "PRAGMA user_version = 1;"
        "COMMIT;",
        a.isbn13, a.isbn10, b.isbn13, a.isbn13, a.isbn13, b.isbn13, a.isbn13, b.isbn13);
    if (n < 0 || n >= (int)sizeof sql)
        return SQLITE_TOOBIG;
    sqlite3 *conn = NULL;
    int rc = sqlite3_open(path, &conn);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(conn, schema_v1, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(conn, sql, NULL, NULL, NULL);
    sqlite3_close(conn);
    return rc;
}

static int contains(const char *s, const char *part)
{
    return s && strstr(s, part) != NULL;
}

static int count_obs_cb(void *ctx, const observation *obs)
{
    (void)obs;
    (*(int64_t *)ctx)++;
    return 0;
}

/* db_connect that frees the message (printed for the log) and returns the code. */
static db_err connect_code(const char *location, unsigned flags, char *msg, size_t msglen)
{
    db_err code = DB_OK;
    char *err = NULL;
    db *d = db_connect(location, flags, &code, &err);
    if (msg)
        snprintf(msg, msglen, "%s", err ? err : "");
    if (err)
        printf("#   %s\n", err);
    free(err);
    db_close(d);
    if (d && code != DB_OK)
        return (db_err)99; /* a handle and a failure code at once: never right */
    return code;
}

/* ---- missing files ----------------------------------------------------------------------- */

static void test_missing(void)
{
    const char *path = tmp_path("missing.db");
    char msg[512];
    db_err code = (db_err)42;
    char *err = NULL;
    db *d = db_connect(path, DB_OPEN_READ_ONLY, &code, &err);
    CHECK(d == NULL, "read-only: a missing file does not open");
    CHECK_INT(code, DB_NOTFOUND, "read-only: a missing file is DB_NOTFOUND");
    char want[300];
    snprintf(want, sizeof want, "no database at %s", path);
    CHECK_STR(err, want, "read-only: the message says there is no database at PATH");
    free(err);
    db_close(d);
    CHECK(!exists(path) && !exists(with_suffix(path, "-wal")) &&
              !exists(with_suffix(path, "-shm")) && !exists(with_suffix(path, "-journal")),
          "read-only: no file is created");

    err = NULL;
    d = db_open_readonly(path, &err);
    CHECK(d == NULL && contains(err, "no database at"), "db_open_readonly says the same");
    free(err);
    CHECK(!exists(path), "db_open_readonly creates nothing either");

    CHECK_INT(connect_code(path, DB_OPEN_MIGRATE, msg, sizeof msg), DB_NOTFOUND,
              "read-write without DB_OPEN_CREATE: a missing file is DB_NOTFOUND");
    CHECK(!exists(path), "read-write without DB_OPEN_CREATE creates nothing");

    d = db_connect(path, DB_OPEN_CREATE, &code, NULL);
    CHECK(d != NULL && code == DB_OK, "DB_OPEN_CREATE creates it");
    int version = -1;
    CHECK(d && db_schema_version(d, &version) == DB_OK && version == db_schema_latest(),
          "a new database has the latest schema");
    db_close(d);
    CHECK(!exists(with_suffix(path, ".bak-0")), "a brand-new file gets no backup copy");
    CHECK(db_schema_latest() >= 2, "db_schema_latest counts the released steps");

    /* An empty SQLite file is not a bookrank database, and only CREATE makes it one. */
    const char *empty = tmp_path("empty.db");
    CHECK_INT(raw_exec(empty, "PRAGMA user_version = 0"), SQLITE_OK, "raw: an empty SQLite file");
    CHECK_INT(connect_code(empty, DB_OPEN_READ_ONLY, msg, sizeof msg), DB_NOTFOUND,
              "read-only: an empty file has no bookrank database");
    CHECK(contains(msg, "not a bookrank database"), "and says so");
    CHECK_INT(raw_int(empty, "SELECT count(*) FROM sqlite_master"), 0,
              "read-only open of an empty file creates no schema");

    const char *junk = tmp_path("junk.db");
    FILE *f = fopen(junk, "w");
    for (int i = 0; f && i < 100; i++)
        fputs("not an SQLite file, only text long enough to fill its first page\n", f);
    if (f)
        fclose(f);
    CHECK_INT(connect_code(junk, DB_OPEN_CREATE | DB_OPEN_MIGRATE, msg, sizeof msg), DB_CORRUPT,
              "a file that is not SQLite is DB_CORRUPT");
    CHECK_INT(connect_code(junk, DB_OPEN_READ_ONLY, msg, sizeof msg), DB_CORRUPT, "read-only too");

    CHECK_INT(connect_code(path, DB_OPEN_READ_ONLY | DB_OPEN_CREATE, msg, sizeof msg), DB_ERROR,
              "DB_OPEN_READ_ONLY with DB_OPEN_CREATE is refused");
    CHECK_INT(connect_code(path, DB_OPEN_READ_ONLY | DB_OPEN_MIGRATE, msg, sizeof msg), DB_ERROR,
              "DB_OPEN_READ_ONLY with DB_OPEN_MIGRATE is refused");
    CHECK_INT(connect_code(path, 1u << 9, msg, sizeof msg), DB_ERROR, "unknown flags are refused");
    CHECK_INT(connect_code(NULL, DB_OPEN_READ_ONLY, msg, sizeof msg), DB_ERROR,
              "a NULL location is DB_ERROR");
}

/* ---- schema versions --------------------------------------------------------------------- */

static void test_old_schema_read_only(void)
{
    const char *path = tmp_path("v1-ro.db");
    char msg[512];
    CHECK_INT(make_v1(path), SQLITE_OK, "raw: a version-1 database");
    size_t before_len = 0, after_len = 0;
    char *before = slurp(path, &before_len);
    CHECK(before && before_len > 0, "raw: read the version-1 file");

    CHECK_INT(connect_code(path, DB_OPEN_READ_ONLY, msg, sizeof msg), DB_SCHEMA,
              "read-only: an older schema is DB_SCHEMA");
    CHECK(contains(msg, "bookrank migrate"), "read-only: the message says to run bookrank migrate");
    char *after = slurp(path, &after_len);
    CHECK(same_bytes(before, before_len, after, after_len),
          "read-only: the old file is unchanged, byte for byte");
    free(after);
    CHECK(!exists(with_suffix(path, ".bak-1")), "read-only: no backup copy is made");
    CHECK(!exists(with_suffix(path, "-wal")) && !exists(with_suffix(path, "-journal")),
          "read-only: no journal appears");

    char *err = NULL;
    db *d = db_open_readonly(path, &err);
    CHECK(d == NULL && contains(err, "bookrank migrate"),
          "db_open_readonly refuses it the same way");
    free(err);

    /* Read-write but without DB_OPEN_MIGRATE: refused too, and not migrated. */
    CHECK_INT(connect_code(path, DB_OPEN_CREATE, msg, sizeof msg), DB_SCHEMA,
              "without DB_OPEN_MIGRATE an older schema is DB_SCHEMA");
    CHECK(contains(msg, "bookrank migrate"), "and the message says to run bookrank migrate");
    CHECK_INT(raw_int(path, "PRAGMA user_version"), 1, "without DB_OPEN_MIGRATE nothing migrates");
    CHECK(!exists(with_suffix(path, ".bak-1")), "without DB_OPEN_MIGRATE no copy is made");
    free(before);
}

static void test_newer_schema(void)
{
    const char *path = tmp_path("newer.db");
    char msg[512], *err = NULL;
    db *d = db_open(path, &err);
    CHECK(d != NULL, "setup: a new database");
    db_close(d);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", db_schema_latest() + 1);
    CHECK_INT(raw_exec(path, sql), SQLITE_OK, "raw: a schema one version newer");
    size_t before_len = 0, after_len = 0;
    char *before = slurp(path, &before_len);

    CHECK_INT(connect_code(path, DB_OPEN_READ_ONLY, msg, sizeof msg), DB_SCHEMA,
              "read-only: a newer schema is DB_SCHEMA");
    CHECK(contains(msg, "upgrade bookrank"), "read-only: the message says to upgrade bookrank");
    char *after = slurp(path, &after_len);
    CHECK(same_bytes(before, before_len, after, after_len),
          "read-only: the newer file is unchanged, byte for byte");
    free(after);
    CHECK_INT(connect_code(path, DB_OPEN_CREATE | DB_OPEN_MIGRATE, msg, sizeof msg), DB_SCHEMA,
              "with DB_OPEN_MIGRATE a newer schema is still refused");
    CHECK(contains(msg, "upgrade bookrank"), "and the message says to upgrade bookrank");
    CHECK_INT(raw_int(path, "PRAGMA user_version"), db_schema_latest() + 1,
              "a newer schema is never migrated");
    char newer_bak[32], latest_bak[32];
    snprintf(newer_bak, sizeof newer_bak, ".bak-%d", db_schema_latest() + 1);
    snprintf(latest_bak, sizeof latest_bak, ".bak-%d", db_schema_latest());
    CHECK(!exists(with_suffix(path, newer_bak)) && !exists(with_suffix(path, latest_bak)),
          "a newer schema is never copied");
    free(before);
}

/* ---- migration --------------------------------------------------------------------------- */

static void test_migrate_with_backup(void)
{
    const char *path = tmp_path("v1.db");
    const char *bak = with_suffix(path, ".bak-1");
    char latest_bak[32];
    snprintf(latest_bak, sizeof latest_bak, ".bak-%d", db_schema_latest());
    CHECK_INT(make_v1(path), SQLITE_OK, "raw: a version-1 database");
    char *original = dump_db(path);
    CHECK(original && contains(original, "Compilers"), "raw: dump the version-1 database");

    db_err code = (db_err)42;
    char *err = NULL;
    db *d = db_connect(path, DB_OPEN_MIGRATE, &code, &err);
    CHECK(d != NULL && code == DB_OK, "DB_OPEN_MIGRATE migrates a version-1 database");
    if (err)
        printf("#   %s\n", err);
    free(err);
    int version = -1;
    CHECK(d && db_schema_version(d, &version) == DB_OK && version == db_schema_latest(),
          "after migrating, the schema is the latest");
    db_book book;
    memset(&book, 0, sizeof book);
    book_id a = make_id(1), b = make_id(2);
    CHECK(d && db_book_get(d, a.id, &book) == DB_OK && book.nlatest == 1 &&
              book.latest[0].status == OBS_BLOCKED && book.latest[0].previous_rank == 120,
          "the migrated database keeps its data");
    CHECK(book.nlatest == 1 && book.latest[0].last_ok_rank == 120 &&
              book.latest[0].last_ok_at_ms == 2000 &&
              contains(book.latest[0].last_ok_category, "Books"),
          "migrating fills the last good observation of a latest that is not ok");
    CHECK(strcmp(book.id, a.id) == 0 && strcmp(book.isbn13, a.isbn13) == 0 &&
              strcmp(book.isbn10, a.isbn10) == 0 && book.asin[0] == '\0' &&
              contains(book.title, "A title") && book.added_at_ms == 1000,
          "a migrated book: id and isbn13 are its ISBN-13, isbn10, title and added_at kept");
    db_book_clear(&book);
    CHECK(d && db_book_get(d, b.id, &book) == DB_OK && book.isbn10[0] == '\0' &&
              book.title == NULL && book.nlatest == 1 && book.latest[0].rank == 9,
          "a migrated book without ISBN-10 or title");
    db_book_clear(&book);
    observation *h = NULL;
    size_t n = 0;
    CHECK(d && db_history(d, a.id, NULL, &h, &n) == DB_OK && n == 2 && h[1].ncategories == 1 &&
              strcmp(h[1].categories[0].category, "Compilers") == 0,
          "history and categories read back after migrating");
    db_observations_free(h, n);
    db_close(d);

    CHECK(exists(bak), "the file was copied to PATH.bak-1 first");
    CHECK_INT(raw_int(bak, "PRAGMA user_version"), 1, "the copy has the schema before migrating");
    char *copy = dump_db(bak);
    CHECK(original && copy && strcmp(original, copy) == 0,
          "the copy holds exactly what the version-1 database held");
    free(copy);
    sqlite3 *conn = NULL;
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_open_v2(bak, &conn, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
             sqlite3_prepare_v2(conn, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    sqlite3_finalize(st);
    sqlite3_close(conn);
    CHECK(ok, "the copy passes integrity_check");

    /* Opening the migrated database again copies nothing more. */
    d = db_connect(path, DB_OPEN_MIGRATE, &code, NULL);
    CHECK(d != NULL, "reopen the migrated database");
    db_close(d);
    CHECK(!exists(with_suffix(path, ".bak-2")) && !exists(with_suffix(path, latest_bak)),
          "an up-to-date schema is not copied (nor each step of the migration)");

    /* db_open migrates too (serve, refresh, add), with the same copy. */
    const char *path2 = tmp_path("v1-open.db");
    CHECK_INT(make_v1(path2), SQLITE_OK, "raw: another version-1 database");
    d = db_open(path2, &err);
    CHECK(d != NULL && exists(with_suffix(path2, ".bak-1")), "db_open migrates after a copy");
    db_close(d);
    free(original);
}

static void test_migrate_backup_fails(void)
{
    char msg[512];
    /* The copy's name is taken: never overwritten, and nothing migrates. */
    const char *path = tmp_path("v1-taken.db");
    const char *bak = with_suffix(path, ".bak-1");
    CHECK_INT(make_v1(path), SQLITE_OK, "raw: a version-1 database");
    FILE *f = fopen(bak, "w");
    if (f) {
        fputs("keep me", f);
        fclose(f);
    }
    CHECK_INT(connect_code(path, DB_OPEN_CREATE | DB_OPEN_MIGRATE, msg, sizeof msg), DB_ERROR,
              "a copy that cannot be written stops the migration");
    CHECK(contains(msg, ".bak-1") && contains(msg, "nothing was migrated"),
          "the message names the copy and says nothing was migrated");
    CHECK_INT(raw_int(path, "PRAGMA user_version"), 1, "the database keeps its version");
    size_t len = 0;
    char *kept = slurp(bak, &len);
    CHECK(same_bytes(kept, len, "keep me", 7), "the existing file is not overwritten");
    free(kept);

    /* The copy's directory does not exist... a file in the way of a directory does the same:
     * PATH.bak-1 is a directory. */
    const char *path2 = tmp_path("v1-dir.db");
    CHECK_INT(make_v1(path2), SQLITE_OK, "raw: another version-1 database");
    CHECK_INT(mkdir(with_suffix(path2, ".bak-1"), 0700), 0, "raw: a directory named PATH.bak-1");
    CHECK(connect_code(path2, DB_OPEN_CREATE | DB_OPEN_MIGRATE, msg, sizeof msg) != DB_OK,
          "a directory in the way stops the migration too");
    CHECK_INT(raw_int(path2, "PRAGMA user_version"), 1, "and the database keeps its version");
    rmdir(with_suffix(path2, ".bak-1"));
    CHECK_INT(connect_code(path2, DB_OPEN_CREATE | DB_OPEN_MIGRATE, msg, sizeof msg), DB_OK,
              "once the way is clear, the migration works");
    CHECK_INT(raw_int(path2, "PRAGMA user_version"), db_schema_latest(), "and is done");

    /* A step that fails after the copy was made: the copy goes (it would block every retry),
     * the database stays as it was. Step 1 -> 2 creates this index; here it exists already. */
    const char *path3 = tmp_path("v1-step-fails.db");
    const char *bak3 = with_suffix(path3, ".bak-1");
    CHECK_INT(make_v1(path3), SQLITE_OK, "raw: a third version-1 database");
    CHECK_INT(raw_exec(path3, "CREATE INDEX observations_by_book_time ON observations(isbn13)"),
              SQLITE_OK, "raw: an object in the way of step 1 -> 2");
    CHECK(connect_code(path3, DB_OPEN_CREATE | DB_OPEN_MIGRATE, msg, sizeof msg) != DB_OK,
          "a failing migration step fails the open");
    CHECK_INT(raw_int(path3, "PRAGMA user_version"), 1, "the database keeps its version");
    CHECK(!exists(bak3) && !exists(with_suffix(bak3, "-journal")),
          "the copy made before the failed step is removed");
    CHECK_INT(raw_exec(path3, "DROP INDEX observations_by_book_time"), SQLITE_OK,
              "raw: clear the way");
    CHECK_INT(connect_code(path3, DB_OPEN_CREATE | DB_OPEN_MIGRATE, msg, sizeof msg), DB_OK,
              "the retry migrates");
    CHECK(exists(bak3) && raw_int(bak3, "PRAGMA user_version") == 1, "and makes its copy again");
}

/* ---- a database written by release 0.1.0 ------------------------------------------------- */

/* What tests/fixtures/db/bookrank-0.1.0.db holds (see its README; counted with sqlite3 on a
 * pristine copy). */
#define RELEASE_SCHEMA 2
#define RELEASE_BOOKS 5
#define RELEASE_OBSERVATIONS 6
#define RELEASE_JOBS 2

static const struct {
    const char *id, *isbn10, *title;
    int observations;
    obs_status latest;
} release_books[RELEASE_BOOKS] = {
    {"9780131103627", "0131103628", "C Programming Language, 2nd Edition", 1, OBS_OK},
    {"9780132269933", "0132269937", "Core Python Programming", 2, OBS_OK},
    {"9780306406157", "0306406152", NULL, 1, OBS_NOT_FOUND},
    {"9780804429573", "080442957X", NULL, 1, OBS_BLOCKED},
    {"9791090636071", "", NULL, 1, OBS_ERROR},
};

static const char *release_fixture(void)
{
    static char path[512];
    const char *dir = getenv("FIXTURES");
    snprintf(path, sizeof path, "%s/db/bookrank-0.1.0.db", dir && *dir ? dir : "tests/fixtures");
    return path;
}

/* The migrated books and observations, through the store's API. */
static void release_checks(db *d)
{
    db_book *books = NULL;
    size_t n = 0;
    CHECK(db_books_list(d, NULL, &books, &n) == DB_OK && n == RELEASE_BOOKS,
          "0.1.0: every book is still tracked");
    for (size_t k = 0; k < RELEASE_BOOKS; k++) {
        const db_book *b = NULL;
        for (size_t i = 0; i < n; i++)
            if (strcmp(books[i].id, release_books[k].id) == 0)
                b = &books[i];
        char what[160];
        snprintf(what, sizeof what, "0.1.0: book %s keeps its id, ISBN-13, ISBN-10 and title",
                 release_books[k].id);
        const char *title = release_books[k].title;
        CHECK(b && strcmp(b->isbn13, release_books[k].id) == 0 &&
                  strcmp(b->isbn10, release_books[k].isbn10) == 0 && b->asin[0] == '\0' &&
                  (title ? b->title && strcmp(b->title, title) == 0 : b->title == NULL) &&
                  b->added_at_ms == 1796217733222,
              what);
        snprintf(what, sizeof what, "0.1.0: book %s keeps its latest observation (%s)",
                 release_books[k].id, obs_status_name(release_books[k].latest));
        CHECK(b && b->nlatest == 1 && strcmp(b->latest[0].source, "amazon.com") == 0 &&
                  b->latest[0].status == release_books[k].latest &&
                  strcmp(b->latest[0].book_id, release_books[k].id) == 0,
              what);
        observation *h = NULL;
        size_t nh = 0;
        snprintf(what, sizeof what, "0.1.0: book %s keeps its %d observation%s",
                 release_books[k].id, release_books[k].observations,
                 release_books[k].observations == 1 ? "" : "s");
        CHECK(db_history(d, release_books[k].id, NULL, &h, &nh) == DB_OK &&
                  nh == (size_t)release_books[k].observations,
              what);
        db_observations_free(h, nh);
    }
    db_books_free(books, n);

    /* One known row: observation 4 of the fixture. */
    db_book book;
    CHECK_INT(db_book_get(d, "9780131103627", &book), DB_OK, "0.1.0: get a migrated book");
    const observation *l = book.nlatest == 1 ? &book.latest[0] : NULL;
    CHECK(l && strcmp(l->book_id, "9780131103627") == 0 && strcmp(l->source, "amazon.com") == 0 &&
              l->status == OBS_OK && l->rank == 5838 && l->fetched_at_ms == 1796217733239,
          "0.1.0: a known row keeps its book id, source, rank and fetched_at");
    CHECK(l && l->rank_category && strcmp(l->rank_category, "Books") == 0 && l->ncategories >= 2 &&
              l->categories[0].rank == 2 && strcmp(l->categories[0].category, "C") == 0 &&
              l->http_status == 200 && l->attempts == 1 && l->duration_ms == 3 &&
              l->previous_rank == -1,
          "0.1.0: and its category ranks, HTTP status, attempts and duration");
    CHECK(l && l->rank_free == 0 && l->format == OBS_FORMAT_UNKNOWN,
          "0.1.0: an old observation is on a paid list, of no known format");
    db_book_clear(&book);
    CHECK(db_book_get(d, "9780132269933", &book) == DB_OK && book.nlatest == 1 &&
              book.latest[0].rank == 120001 && book.latest[0].previous_rank == 123456,
          "0.1.0: the latest of a book fetched twice, with its previous rank");
    db_book_clear(&book);
    CHECK(db_book_get(d, "9791090636071", &book) == DB_OK && book.nlatest == 1 &&
              book.latest[0].error &&
              strcmp(book.latest[0].error, "no ISBN-10 for 979 prefix") == 0 &&
              book.latest[0].last_ok_rank == -1,
          "0.1.0: an error row keeps its message (and there is no last good rank)");
    db_book_clear(&book);

    int64_t seen = 0;
    CHECK(db_export(d, count_obs_cb, &seen) == DB_OK && seen == RELEASE_OBSERVATIONS,
          "0.1.0: every observation is still there");
    int64_t count = -1;
    CHECK(db_books_count(d, &count) == DB_OK && count == RELEASE_BOOKS, "0.1.0: the book count");

    db_job *jobs = NULL;
    size_t nj = 0;
    CHECK(db_jobs_list(d, -1, 0, &jobs, &nj) == DB_OK && nj == RELEASE_JOBS,
          "0.1.0: the jobs are still there");
    const db_job *first = nj == RELEASE_JOBS ? &jobs[1] : NULL; /* newest first */
    CHECK(first && first->id == 1 && first->state == JOB_DONE && first->all_books == 1 &&
              first->total == 5 && first->done == 5 && first->counts[OBS_OK] == 2 &&
              first->counts[OBS_NOT_FOUND] == 1 && first->counts[OBS_BLOCKED] == 1 &&
              first->counts[OBS_ERROR] == 1 && first->skipped == 0,
          "0.1.0: a job keeps its state and counts");
    free(jobs);
}

static void test_release_0_1_0(void)
{
    const char *fixture = release_fixture();
    size_t fixture_len = 0;
    char *pristine = slurp(fixture, &fixture_len);
    if (!CHECK(pristine && fixture_len > 0, "0.1.0: the release database is there")) {
        printf("#   cannot read %s\n", fixture);
        free(pristine);
        return;
    }
    const char *path = tmp_path("release-0.1.0.db");
    char bak_suffix[32];
    snprintf(bak_suffix, sizeof bak_suffix, ".bak-%d", RELEASE_SCHEMA);
    const char *bak = with_suffix(path, bak_suffix);
    CHECK_INT(write_file(path, pristine, fixture_len), 0, "0.1.0: copy it to a temporary file");
    CHECK_INT(raw_int(path, "PRAGMA user_version"), RELEASE_SCHEMA,
              "0.1.0: the copy has the release's schema");
    CHECK(raw_int(path, "SELECT count(*) FROM books") == RELEASE_BOOKS &&
              raw_int(path, "SELECT count(*) FROM observations") == RELEASE_OBSERVATIONS &&
              raw_int(path, "SELECT count(*) FROM jobs") == RELEASE_JOBS,
          "0.1.0: the copy holds the books, observations and jobs its README lists");
    char *before = dump_db(path);
    CHECK(before != NULL, "0.1.0: dump the release database");

    /* Read-only: refused, and the file is left exactly as it was. */
    const char *ro = tmp_path("release-0.1.0-ro.db");
    CHECK_INT(write_file(ro, pristine, fixture_len), 0, "0.1.0: a second copy");
    char msg[512];
    CHECK_INT(connect_code(ro, DB_OPEN_READ_ONLY, msg, sizeof msg), DB_SCHEMA,
              "0.1.0: read-only, the release database is DB_SCHEMA");
    CHECK(contains(msg, "bookrank migrate"), "0.1.0: the message says to run bookrank migrate");
    size_t ro_len = 0;
    char *ro_after = slurp(ro, &ro_len);
    CHECK(same_bytes(pristine, fixture_len, ro_after, ro_len),
          "0.1.0: read-only leaves the file byte-identical");
    free(ro_after);
    CHECK(!exists(with_suffix(ro, bak_suffix)) && !exists(with_suffix(ro, "-wal")) &&
              !exists(with_suffix(ro, "-journal")),
          "0.1.0: read-only makes no copy and no journal");

    /* Migrating. */
    db_err code = (db_err)42;
    char *err = NULL;
    db *d = db_connect(path, DB_OPEN_MIGRATE, &code, &err);
    CHECK(d != NULL && code == DB_OK, "0.1.0: DB_OPEN_MIGRATE migrates the release database");
    if (err)
        printf("#   %s\n", err);
    free(err);
    int version = -1;
    CHECK(d && db_schema_version(d, &version) == DB_OK && version == db_schema_latest(),
          "0.1.0: after migrating, the schema is the latest");
    CHECK(exists(bak), "0.1.0: the file was copied to PATH.bak-2 first");
    if (d)
        release_checks(d);
    db_close(d);

    CHECK_INT(raw_int(path, "SELECT count(*) FROM observations"), RELEASE_OBSERVATIONS,
              "0.1.0: raw: every observation row is still in the file");
    CHECK_INT(raw_int(path, "SELECT count(*) FROM books WHERE id = isbn13"), RELEASE_BOOKS,
              "0.1.0: raw: every book is keyed by its ISBN-13");
    CHECK_INT(raw_int(path, "SELECT count(*) FROM observations o JOIN books b ON b.id = o.book_id"),
              RELEASE_OBSERVATIONS, "0.1.0: raw: every observation belongs to its book");
    CHECK_INT(raw_int(path, "SELECT count(*) FROM pragma_foreign_key_check"), 0,
              "0.1.0: raw: no dangling references");

    /* The copy is the release database as it was. */
    CHECK_INT(raw_int(bak, "PRAGMA user_version"), RELEASE_SCHEMA,
              "0.1.0: the copy has the schema before migrating");
    char *copy = dump_db(bak);
    CHECK(before && copy && strcmp(before, copy) == 0,
          "0.1.0: the copy holds exactly what the release database held");
    free(copy);
    free(before);

    /* Opening it again migrates and copies nothing more. */
    char latest_bak[32];
    snprintf(latest_bak, sizeof latest_bak, ".bak-%d", db_schema_latest());
    d = db_connect(path, DB_OPEN_MIGRATE, &code, NULL);
    CHECK(d != NULL, "0.1.0: reopen the migrated database");
    db_close(d);
    CHECK(!exists(with_suffix(path, latest_bak)), "0.1.0: an up-to-date schema is not copied");

    size_t now_len = 0;
    char *now = slurp(fixture, &now_len);
    CHECK(same_bytes(pristine, fixture_len, now, now_len),
          "0.1.0: the committed release database was not touched");
    free(now);
    free(pristine);
}

/* ---- busy -------------------------------------------------------------------------------- */

static void test_busy_timeout(void)
{
    const char *path = tmp_path("busy.db");
    char *err = NULL;
    db *d = db_open(path, &err);
    CHECK(d != NULL, "setup: open");
    sqlite3 *other = NULL;
    CHECK(sqlite3_open(path, &other) == SQLITE_OK &&
              sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK,
          "another connection takes the write lock");
    db_set_busy_timeout(d, 100);
    book_id b = make_id(50);
    int64_t t0 = time_mono_ms();
    db_err rc = d ? db_books_add(d, &b, 1, NULL, NULL) : DB_ERROR;
    int64_t waited = time_mono_ms() - t0;
    CHECK_INT(rc, DB_BUSY, "a write past the busy timeout is DB_BUSY");
    printf("#   waited %lld ms: %s\n", (long long)waited, d ? db_errmsg(d) : "");
    CHECK(waited >= 90 && waited < 2000, "it waited about the timeout (100 ms), not 5 s");
    CHECK(d && contains(db_errmsg(d), "held the database lock") && contains(db_errmsg(d), "100 ms"),
          "the message says the lock was held, and for how long");
    CHECK_STR(db_strerror(rc), "database is locked by another connection", "db_strerror(DB_BUSY)");
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    CHECK(d && db_books_add(d, &b, 1, NULL, NULL) == DB_OK,
          "the write works once the lock is free");

    /* Transactions wait the same time. */
    sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    db_set_busy_timeout(d, 50);
    t0 = time_mono_ms();
    rc = d ? db_begin(d) : DB_ERROR;
    waited = time_mono_ms() - t0;
    CHECK(rc == DB_BUSY && waited < 2000, "db_begin past the busy timeout is DB_BUSY");
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    db_close(d);
}

/* ---- read-only files --------------------------------------------------------------------- */

/* The checks on a 0444 copy; run by an unprivileged user (root writes to any file). */
static void readonly_file_checks(const char *copy)
{
    char *err = NULL;
    db_err code = (db_err)42;
    db *d = db_connect(copy, DB_OPEN_CREATE | DB_OPEN_MIGRATE, &code, &err);
    CHECK(d != NULL, "a chmod 0444 file opens read-write (as far as it can)");
    if (err)
        printf("#   %s\n", err);
    free(err);
    if (!d)
        return;
    book_id b = make_id(61);
    db_err rc = db_books_add(d, &b, 1, NULL, NULL);
    CHECK_INT(rc, DB_READONLY, "a write to a read-only file is DB_READONLY");
    printf("#   %s\n", db_errmsg(d));
    CHECK(contains(db_errmsg(d), "readonly") || contains(db_errmsg(d), "read-only"),
          "with a message that says why");
    CHECK_STR(db_strerror(rc), "database is read-only", "db_strerror(DB_READONLY)");
    db_job job = {.state = JOB_QUEUED};
    CHECK_INT(db_job_create(d, &job), DB_READONLY, "every write is DB_READONLY");
    int64_t count = -1;
    CHECK(db_books_count(d, &count) == DB_OK && count == 1, "reads still work");
    db_close(d);
}

static void test_readonly_file(void)
{
    char dir[] = "/tmp/test_db_ro.XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp for the read-only test");
        return;
    }
    /* Open to everyone: the unprivileged child makes the -shm file beside the copy. */
    chmod(dir, 0777);
    char orig[96], copy[96];
    snprintf(orig, sizeof orig, "%s/orig.db", dir);
    snprintf(copy, sizeof copy, "%s/copy.db", dir);
    char *err = NULL;
    db *d = db_open(orig, &err);
    book_id b = make_id(60);
    CHECK(d && db_books_add(d, &b, 1, NULL, NULL) == DB_OK, "setup: a database with a book");
    CHECK(d && db_backup(d, copy) == DB_OK, "setup: db_backup makes the copy");
    db_close(d);
    CHECK_INT(chmod(copy, 0444), 0, "setup: chmod 0444 the copy");

    if (geteuid() != 0) {
        readonly_file_checks(copy);
    } else {
        fflush(stdout); /* a child must not inherit (and repeat) buffered output */
        pid_t child = fork();
        if (child == 0) {
            /* nobody:nogroup; the checks print their own lines, the exit status their sum. */
            if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
                printf("not ok - cannot drop root to run the read-only checks: %s\n",
                       strerror(errno));
                fflush(stdout);
                _exit(2);
            }
            check_failed = 0; /* the parent's count came along with fork() */
            readonly_file_checks(copy);
            fflush(stdout);
            _exit(check_failed ? 1 : 0);
        }
        int status = -1;
        waitpid(child, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "read-only file checks (as an unprivileged user) all passed");
    }
    chmod(copy, 0644);
    remove_dir(dir);
}

/* ---- codes and locations ----------------------------------------------------------------- */

static void test_strerror(void)
{
    static const struct {
        db_err code;
        int value;
        const char *text;
    } codes[] = {
        {DB_OK, 0, "ok"},
        {DB_NOTFOUND, 1, "not found"},
        {DB_ERROR, -1, "database error"},
        {DB_BUSY, -2, "database is locked by another connection"},
        {DB_FULL, -3, "disk or database is full"},
        {DB_READONLY, -4, "database is read-only"},
        {DB_NOMEM, -5, "out of memory"},
        {DB_CONFLICT, -6, "already exists"},
        {DB_CORRUPT, -7, "not a database, or a damaged one"},
        {DB_SCHEMA, -8, "database schema does not match this bookrank"},
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "db_strerror(%d)", codes[i].value);
        CHECK_INT(codes[i].code, codes[i].value, "a code keeps its value");
        CHECK_STR(db_strerror(codes[i].code), codes[i].text, what);
    }
    CHECK_STR(db_strerror((db_err)42), "unknown database error", "db_strerror of an unknown code");
}

static void test_postgres_locations(void)
{
    static const char *const pg[] = {
        "postgresql://bookrank:s3cret@db.example/bookrank", "postgres://localhost/bookrank",
        "host=localhost dbname=bookrank password=s3cret",   "dbname=bookrank",
        "  host = '/var/run/postgresql'  user=bookrank",
    };
    for (size_t i = 0; i < sizeof pg / sizeof pg[0]; i++) {
        db_err code = DB_OK;
        char *err = NULL;
        db *d = db_connect(pg[i], DB_OPEN_CREATE | DB_OPEN_MIGRATE, &code, &err);
        char what[160];
        snprintf(what, sizeof what, "PostgreSQL location %zu is refused clearly", i);
        CHECK(d == NULL && code == DB_ERROR, what);
        CHECK_STR(err, "PostgreSQL support is not built in yet", "the PostgreSQL message");
        CHECK(!contains(err, "s3cret"), "the message never repeats the location (passwords)");
        free(err);
        db_close(d);
        CHECK(!exists(pg[i]), "no SQLite file is made for a PostgreSQL location");
    }
    /* A path with '=' in it is still a path when it does not read as libpq keywords. */
    const char *odd = tmp_path("rank=1.db");
    db *d = db_connect(odd, DB_OPEN_CREATE, NULL, NULL);
    CHECK(d != NULL, "a file name with '=' is an SQLite path");
    db_close(d);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_db_open.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_missing();
    test_old_schema_read_only();
    test_newer_schema();
    test_migrate_with_backup();
    test_migrate_backup_fails();
    test_release_0_1_0();
    test_busy_timeout();
    test_readonly_file();
    test_strerror();
    test_postgres_locations();
    remove_dir(tmpdir);
    return check_done();
}
