/*
 * cache.c - the answer cache of GET /api/books/{isbn} (see cache.h for the versioning rule and
 * the thread rules).
 */
#include "cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../common/timeutil.h"
#include "../db/db.h"

#define CACHE_SLOTS 8192      /* direct-mapped: a collision simply replaces */
#define CACHE_MAX_ENTRY 65536 /* larger answers are not kept */

typedef struct cache_slot {
    char key[14];
    uint64_t version;
    char *data; /* owned */
    size_t len;
} cache_slot;

struct resp_cache {
    pthread_rwlock_t lock;
    cache_slot *slots;         /* guarded by lock */
    jobs *runner;              /* borrowed; set before any thread sees the cache */
    _Atomic uint64_t local;    /* this server's own changes */
    _Atomic uint64_t external; /* data_version changes seen (and failed reads) */
    _Atomic int64_t next_watch_ms;
    pthread_mutex_t watch_lock;
    db *watch;                 /* guarded by watch_lock; never writes */
    int64_t last_data_version; /* guarded by watch_lock */
};

resp_cache *cache_new(const char *db_path, jobs *runner, char **err)
{
    resp_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->slots = calloc(CACHE_SLOTS, sizeof *c->slots))) {
        free(c);
        if (err)
            *err = strdup("out of memory");
        return NULL;
    }
    char *open_err = NULL;
    c->watch = db_open(db_path, &open_err);
    if (!c->watch || db_data_version(c->watch, &c->last_data_version) != DB_OK) {
        if (!open_err)
            open_err = strdup(c->watch ? db_errmsg(c->watch) : "cannot open the database");
        if (err)
            *err = open_err;
        else
            free(open_err);
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
        int64_t v = 0;
        if (db_data_version(c->watch, &v) != DB_OK) {
            /* Whether another process wrote is unknown: count it as a change. */
            atomic_fetch_add(&c->external, 1);
        } else if (v != c->last_data_version) {
            c->last_data_version = v;
            atomic_fetch_add(&c->external, 1);
        }
        atomic_store(&c->next_watch_ms, now + CACHE_WATCH_INTERVAL_MS);
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
