/*
 * cache.c - rendered answers of GET /api/books/{isbn}, kept until the store changes.
 *
 * The store's version is the sum of three monotonic counters: this server's own changes
 * (cache_bump after a mutation), the jobs writer's commits (jobs_commits), and commits by other
 * processes (a cron `bookrank refresh`), seen through PRAGMA data_version on a connection that
 * never writes, read at most every WATCH_INTERVAL_MS. An entry answers only for the version it
 * was rendered at, and the version is read before the store is, so a change during rendering
 * leaves a stale entry that is never served. Changes by another process show within
 * WATCH_INTERVAL_MS.
 *
 * Threads: any; slots are guarded by one rwlock, the watch connection by its own mutex.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../common/timeutil.h"

#define CACHE_SLOTS 8192           /* direct-mapped: a collision simply replaces */
#define CACHE_MAX_ENTRY 65536      /* larger answers are not kept */
#define WATCH_INTERVAL_MS 50

typedef struct cache_slot {
    char key[14];
    uint64_t version;
    char *data;                    /* owned */
    size_t len;
} cache_slot;

struct resp_cache {
    pthread_rwlock_t lock;
    cache_slot *slots;             /* guarded by lock */
    jobs *runner;
    _Atomic uint64_t local;        /* this server's own changes */
    _Atomic uint64_t external;     /* data_version changes seen */
    _Atomic int64_t next_watch_ms;
    pthread_mutex_t watch_lock;
    db *watch;                     /* guarded by watch_lock; never writes */
    int64_t last_data_version;     /* guarded by watch_lock */
};

resp_cache *cache_new(const char *db_path, jobs *runner, char **err)
{
    resp_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->slots = calloc(CACHE_SLOTS, sizeof *c->slots))) {
        free(c);
        *err = strdup("out of memory");
        return NULL;
    }
    c->watch = db_open(db_path, err);
    if (!c->watch || db_data_version(c->watch, &c->last_data_version) != DB_OK) {
        if (c->watch && !*err)
            *err = strdup(db_errmsg(c->watch));
        db_close(c->watch);
        free(c->slots);
        free(c);
        return NULL;
    }
    c->runner = runner;
    pthread_rwlock_init(&c->lock, NULL);
    pthread_mutex_init(&c->watch_lock, NULL);
    return c;
}

void cache_free(resp_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        free(c->slots[i].data);
    free(c->slots);
    db_close(c->watch);
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->watch_lock);
    free(c);
}

void cache_bump(resp_cache *c)
{
    atomic_fetch_add(&c->local, 1);
}

uint64_t cache_version(resp_cache *c)
{
    int64_t now = time_mono_ms();
    if (now >= atomic_load(&c->next_watch_ms) && pthread_mutex_trylock(&c->watch_lock) == 0) {
        int64_t v;
        if (db_data_version(c->watch, &v) != DB_OK || v != c->last_data_version) {
            c->last_data_version = v;
            atomic_fetch_add(&c->external, 1);
        }
        atomic_store(&c->next_watch_ms, now + WATCH_INTERVAL_MS);
        pthread_mutex_unlock(&c->watch_lock);
    }
    return atomic_load(&c->local) + atomic_load(&c->external) + jobs_commits(c->runner);
}

static size_t slot_of(const char *key)
{
    uint64_t h = 1469598103934665603u;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    return (size_t)(h % CACHE_SLOTS);
}

int cache_get(resp_cache *c, const char *key, uint64_t version, buf *out)
{
    int hit = 0;
    cache_slot *s = &c->slots[slot_of(key)];
    pthread_rwlock_rdlock(&c->lock);
    if (s->data && s->version == version && strcmp(s->key, key) == 0)
        hit = buf_append(out, s->data, s->len) == BUF_OK;
    pthread_rwlock_unlock(&c->lock);
    return hit;
}

void cache_put(resp_cache *c, const char *key, uint64_t version, const char *data, size_t len)
{
    if (len > CACHE_MAX_ENTRY || strlen(key) >= sizeof c->slots[0].key)
        return;
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    memcpy(copy, data, len);
    cache_slot *s = &c->slots[slot_of(key)];
    pthread_rwlock_wrlock(&c->lock);
    char *old = s->data;
    memcpy(s->key, key, strlen(key) + 1);
    s->version = version;
    s->data = copy;
    s->len = len;
    pthread_rwlock_unlock(&c->lock);
    free(old);
}
