/*
 * handlers.h - the one place HTTP statuses and error codes are decided: the REST handlers
 * (SPEC §3), the dashboard's files, and the answers to everything the router and the transport
 * refuse. Private to server/; http.c calls it, it never calls http.c.
 *
 * Error codes (stable): invalid_json, invalid_body, invalid_isbn, invalid_query, too_many_isbns,
 * unauthorized, forbidden_origin, not_found, book_not_found, job_not_found, alert_not_found,
 * method_not_allowed, conflict, payload_too_large, unsupported_media_type, too_many_refreshes,
 * unavailable, internal. Every
 * body is written by render/; a handler that runs out of memory answers 500 "internal" with
 * "out of memory" (prepared at start, so that answer needs no memory).
 *
 * Threads: handlers_answer and handlers_refuse from any request thread at once (the env is
 * read-only once initialised; the store connection a handler uses is borrowed from the pool
 * for the call); handlers_env_init and handlers_env_clear by the owner, with no request
 * running.
 */
#ifndef BOOKRANK_SERVER_HANDLERS_H
#define BOOKRANK_SERVER_HANDLERS_H

#include "../common/buf.h"
#include "../jobs/jobs.h"
#include "cache.h"
#include "dbpool.h"
#include "request.h"
#include "router.h"
#include "server.h"

typedef struct handlers_health handlers_health;

typedef struct handlers_env {
    const srv_config *cfg;   /* borrowed, defaults filled in */
    jobs *runner;            /* borrowed; NULL (with pool and cache) when cfg->store_down */
    resp_cache *cache;       /* borrowed */
    dbpool *pool;            /* borrowed */
    buf oom;                 /* owned: the rendered out-of-memory answer */
    handlers_health *health; /* owned: what /healthz last said (atomics) */
} handlers_env;

/* 0, or -1 with a malloc'd message in *err (err may be NULL). Everything is borrowed. */
int handlers_env_init(handlers_env *env, const srv_config *cfg, jobs *runner, resp_cache *cache,
                      dbpool *pool, char **err);
void handlers_env_clear(handlers_env *env);

/* Looks at the store as /healthz does and logs when it cannot be written (at start). */
void handlers_check_store(const handlers_env *env);
/* srv_store_readonly (server.h); 2 instead of 1 for a read-only file system. */
int handlers_store_readonly(const char *db_path, char *why, size_t len);

/* Answers a request the router has judged, whatever the verdict: runs the route's handler
 * (req->body holds the whole body), serves the dashboard file, or refuses. resp must be
 * initialised; it always holds an answer afterwards. */
void handlers_answer(const handlers_env *env, const router_match *m, const srv_request *req,
                     srv_response *resp);
/* Answers a request the transport refused (err is not SRV_TRANSPORT_OK). */
void handlers_refuse(const handlers_env *env, srv_transport_err err, srv_response *resp);

#endif
