/*
 * cache.h - rendered answers of GET /api/books/{isbn}, kept until the store changes. Private
 * to server/.
 *
 * The store's version is the sum of three monotonic counters: this server's own changes
 * (cache_bump after a mutation), the jobs writer's commits (jobs_commits), and commits by other
 * processes (a cron `bookrank refresh`), seen through the store's data version on a connection
 * that never writes, read at most every CACHE_WATCH_INTERVAL_MS. When that read fails the store
 * counts as changed, so a failing watch never serves a stale answer. An entry answers only for
 * the version it was rendered at, and the version is read before the store is, so a change
 * during rendering leaves a stale entry that is never served.
 *
 * Threads: every function but cache_new and cache_free may be called from any thread at once.
 * The slots are guarded by the cache's rwlock, the watch connection by its own mutex, the
 * counters are atomic.
 */
#ifndef BOOKRANK_SERVER_CACHE_H
#define BOOKRANK_SERVER_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../jobs/jobs.h"

#define CACHE_WATCH_INTERVAL_MS 50

typedef struct resp_cache resp_cache;

/* Opens the watch connection on db_path; runner is borrowed. NULL with a malloc'd message in
 * *err (err may be NULL). */
resp_cache *cache_new(const char *db_path, jobs *runner, char **err);
/* NULL is a no-op. */
void cache_free(resp_cache *c);
/* The store's current version; read it before reading the store. */
uint64_t cache_version(resp_cache *c);
/* Marks a change made by this server (after it is committed). */
void cache_bump(resp_cache *c);
/* Appends the answer kept for key at version to out: 1, or 0 when there is none (or out is
 * full). */
int cache_get(resp_cache *c, const char *key, uint64_t version, buf *out);
/* Keeps a copy of data[0..len) for key at version (silently not kept when too large or out of
 * memory: a cache may forget). */
void cache_put(resp_cache *c, const char *key, uint64_t version, const char *data, size_t len);

#endif
