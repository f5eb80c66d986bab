/*
 * sqlite_backup.c - copies of an SQLite store made with SQLite's online backup API: db_backup
 * (`bookrank backup FILE`, safe while `serve` writes) and the copy a migration makes first
 * ("PATH.bak-VERSION").
 *
 * The source connection holds ONE read transaction across every chunk of a copy. In WAL mode
 * that blocks no writer, and it is what makes the copy consistent and finite: a backup step
 * that opens its own read transaction sees the other connections' commits and starts the copy
 * over, which under a steady writer never ends. A copy never overwrites a file, and a failed
 * one leaves nothing behind.
 */
#include "sqlite_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/timeutil.h"

/* Pages per step (4 MiB at the default page size): between steps a busy file is waited for. */
#define BACKUP_CHUNK_PAGES 1024
#define BACKUP_PATH_MAX 4096
#define BACKUP_RETRY_NS (10 * 1000 * 1000)

/* What SQLite keeps beside a database file. A leftover journal next to a new copy would be
 * replayed into it on its first open. */
static const char *const side_suffixes[] = {"-journal", "-wal", "-shm"};
#define N_SIDE (sizeof side_suffixes / sizeof side_suffixes[0])

static db_err errno_code(int e)
{
    switch (e) {
    case ENOSPC:
    case EDQUOT:
        return DB_FULL;
    case EROFS:
        return DB_READONLY;
    case ENOMEM:
        return DB_NOMEM;
    default:
        return DB_ERROR;
    }
}

static int side_path(char *out, size_t len, const char *dest, size_t i)
{
    int n = snprintf(out, len, "%s%s", dest, side_suffixes[i]);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

void db_sq_backup_remove(const char *dest)
{
    char side[BACKUP_PATH_MAX];
    unlink(dest);
    for (size_t i = 0; i < N_SIDE; i++)
        if (side_path(side, sizeof side, dest, i) == 0)
            unlink(side);
}

/* Creates dest, empty, failing if it (or a file SQLite would take as belonging to it) exists:
 * O_EXCL makes the check and the creation one step, so two copies cannot share a file. */
static db_err claim(db *d, const char *what, const char *dest)
{
    char side[BACKUP_PATH_MAX], eb[128];
    if (strlen(dest) + 16 > sizeof side)
        return db_fail(d, DB_ERROR, "%s: the path is too long", what);
    int fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        /* what names dest already. */
        if (e == EEXIST)
            return db_fail(d, DB_ERROR,
                           "%s: the file exists already (a copy never overwrites "
                           "a file)",
                           what);
        return db_fail(d, errno_code(e), "%s: cannot create the file: %s", what,
                       strerror_r(e, eb, sizeof eb));
    }
    close(fd);
    for (size_t i = 0; i < N_SIDE; i++) {
        if (side_path(side, sizeof side, dest, i) == 0 && access(side, F_OK) == 0) {
            unlink(dest);
            return db_fail(d, DB_ERROR,
                           "%s: %s exists (left from an earlier copy?); remove it first", what,
                           side);
        }
    }
    return DB_OK;
}

static int is_lock_error(int rc)
{
    return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* Copies the main database of src (outside any transaction) into the empty file dest. */
static db_err copy_db(db *d, sqlite3 *src, const char *dest, const char *what)
{
    sqlite3 *out = NULL;
    sqlite3_backup *bk = NULL;
    int reading = 0;
    db_err ret = DB_OK;
    int rc = sqlite3_open_v2(dest, &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        ret = db_sq_fail_rc(d, rc, what, out ? sqlite3_errmsg(out) : sqlite3_errstr(rc));
        goto done;
    }
    /* BEGIN alone reads nothing; the SELECT starts the read transaction (the snapshot). */
    if (sqlite3_exec(src, "BEGIN; SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) !=
        SQLITE_OK) {
        ret = db_sq_fail_rc(d, sqlite3_extended_errcode(src), what, sqlite3_errmsg(src));
        goto done;
    }
    reading = 1;
    if (!(bk = sqlite3_backup_init(out, "main", src, "main"))) {
        ret = db_sq_fail_rc(d, sqlite3_extended_errcode(out), what, sqlite3_errmsg(out));
        goto done;
    }
    int busy_ms = sq_of(d)->busy_ms;
    int64_t deadline = time_mono_ms() + busy_ms;
    for (;;) {
        rc = sqlite3_backup_step(bk, BACKUP_CHUNK_PAGES);
        if (rc == SQLITE_OK) {
            deadline = time_mono_ms() + busy_ms; /* progress: the wait starts afresh */
            continue;
        }
        if (!is_lock_error(rc) || time_mono_ms() >= deadline)
            break;
        nanosleep(&(struct timespec){.tv_nsec = BACKUP_RETRY_NS}, NULL);
    }
    int fin = sqlite3_backup_finish(bk);
    bk = NULL;
    if (rc != SQLITE_DONE)
        ret = db_sq_fail_rc(d, rc, what, sqlite3_errstr(rc));
    else if (fin != SQLITE_OK)
        ret = db_sq_fail_rc(d, fin, what, sqlite3_errmsg(out));
done:
    if (bk)
        sqlite3_backup_finish(bk);
    /* Only read: ending the transaction cannot lose anything. */
    if (reading && !sqlite3_get_autocommit(src))
        sqlite3_exec(src, "ROLLBACK", NULL, NULL, NULL);
    if (out && sqlite3_close(out) != SQLITE_OK) {
        if (ret == DB_OK)
            ret = db_sq_fail_rc(d, sqlite3_extended_errcode(out), what, sqlite3_errmsg(out));
        sqlite3_close_v2(out);
    }
    return ret;
}

/* Claims dest and copies src into it; removes what it made on failure. */
static db_err backup_into(db *d, sqlite3 *src, const char *dest, const char *what)
{
    db_err rc = claim(d, what, dest);
    if (rc != DB_OK)
        return rc;
    if ((rc = copy_db(d, src, dest, what)) != DB_OK)
        db_sq_backup_remove(dest);
    return rc;
}

db_err db_sq_backup(db *d, const char *dest_path)
{
    sqlite3 *conn = sq_conn(d);
    char what[BACKUP_PATH_MAX + 32];
    int n = snprintf(what, sizeof what, "backup to %s", dest_path);
    if (n < 0 || (size_t)n >= sizeof what)
        return db_fail(d, DB_ERROR, "backup: the destination path is too long");
    /* The copy needs its own read transaction; one of the caller's would also hide writes. */
    if (!sqlite3_get_autocommit(conn))
        return db_fail(d, DB_ERROR, "%s: not possible inside a transaction", what);
    return backup_into(d, conn, dest_path, what);
}

db_err db_sq_backup_file(db *d, const char *path, const char *dest)
{
    char what[2 * BACKUP_PATH_MAX + 64];
    int n = snprintf(what, sizeof what, "%s: migrating the schema: copy to %s", path, dest);
    if (n < 0 || (size_t)n >= sizeof what)
        return db_fail(d, DB_ERROR, "%s: migrating the schema: path too long for a copy", path);
    /* A connection of its own: d's holds the write lock, and the backup API cannot read from a
     * connection inside a write transaction. This one reads what is committed, which nobody
     * can change while that lock is held. */
    sqlite3 *src = NULL;
    int rc = sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    db_err ret;
    if (rc != SQLITE_OK) {
        ret = db_sq_fail_rc(d, rc, what, src ? sqlite3_errmsg(src) : sqlite3_errstr(rc));
    } else {
        sqlite3_busy_timeout(src, sq_of(d)->busy_ms);
        ret = backup_into(d, src, dest, what);
    }
    sqlite3_close_v2(src);
    if (ret != DB_OK) {
        char saved[sizeof d->errmsg];
        memcpy(saved, d->errmsg, sizeof saved);
        db_set_err(d, "%s; nothing was migrated", saved);
    }
    return ret;
}
