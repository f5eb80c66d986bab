/*
 * dbpool.h - the store connections of the request threads. Private to server/.
 *
 * A request borrows one connection (dbpool_take) and gives it back when it is done
 * (dbpool_give); in between the connection belongs to that request's thread alone, as db.h
 * requires. Up to cap idle connections are kept open for the next requests; more are closed.
 * A connection that failed is given back like any other (SQLite recovers on the next
 * statement).
 *
 * Threads: dbpool_take and dbpool_give from any thread (the idle list is guarded by the pool's
 * mutex); dbpool_new and dbpool_free by the owner, with no request running.
 */
#ifndef BOOKRANK_SERVER_DBPOOL_H
#define BOOKRANK_SERVER_DBPOOL_H

#include <stddef.h>

#include "../db/db.h"

typedef struct dbpool dbpool;

/* A pool on db_path (borrowed: it must outlive the pool) that keeps up to cap idle
 * connections. It opens one connection at once, so that a bad database fails here and not on
 * the first request. NULL with a malloc'd message in *err (err may be NULL). */
dbpool *dbpool_new(const char *db_path, size_t cap, char **err);
/* NULL is a no-op. */
void dbpool_free(dbpool *p);
/* An idle connection, or a new one; NULL (logged) when the store cannot be opened. */
db *dbpool_take(dbpool *p);
/* Gives a connection back; NULL is a no-op. */
void dbpool_give(dbpool *p, db *d);

#endif
