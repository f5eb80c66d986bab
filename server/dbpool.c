/*
 * dbpool.c - the store connection pool (see dbpool.h for the thread rules).
 */
#include "dbpool.h"
#include "limits.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"

struct dbpool {
    pthread_mutex_t lock;
    db **idle;        /* guarded by lock */
    size_t nidle;     /* guarded by lock */
    size_t cap;       /* constant */
    const char *path; /* constant, borrowed */
};

dbpool *dbpool_new(const char *db_path, size_t cap, char **err)
{
    dbpool *p = calloc(1, sizeof *p);
    if (p && !(p->idle = calloc(cap ? cap : 1, sizeof *p->idle))) {
        free(p);
        p = NULL;
    }
    if (!p) {
        if (err)
            *err = strdup("out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    p->cap = cap;
    p->path = db_path;
    db *first = dbpool_take(p);
    if (!first) {
        if (err)
            *err = strdup("cannot open the database");
        dbpool_free(p);
        return NULL;
    }
    dbpool_give(p, first);
    return p;
}

void dbpool_free(dbpool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nidle; i++)
        db_close(p->idle[i]);
    free(p->idle);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

db *dbpool_take(dbpool *p)
{
    db *d = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->nidle)
        d = p->idle[--p->nidle];
    pthread_mutex_unlock(&p->lock);
    if (!d) {
        char *err = NULL;
        d = db_open(p->path, &err);
        if (!d) {
            log_error("store: %s", err ? err : "cannot open");
            free(err);
        } else {
            /* A request never pins its thread for long behind another process's lock. */
            db_set_busy_timeout(d, SRV_STORE_WAIT_MS);
        }
    }
    return d;
}

void dbpool_give(dbpool *p, db *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&p->lock);
    if (p->nidle < p->cap) {
        p->idle[p->nidle++] = d;
        d = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    db_close(d);
}
