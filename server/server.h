/*
 * server.h - the HTTP service: REST API (SPEC §3), dashboard, /healthz and /metrics, on
 * libmicrohttpd with an internal thread pool (poll loop, see http.c). Only server/ includes microhttpd.h and only
 * server/ maps errors to HTTP statuses.
 *
 * Handlers never block on scraping: refreshes go to the jobs runner, which answers at once.
 * Each request thread borrows its own store connection from a small pool.
 *
 * Inside (each file's header says what it owns): http.c, the transport and the only file that
 * sees libmicrohttpd, fills a request.h srv_request, asks router.c for a verdict on the headers,
 * and hands the complete request to handlers.c, which decides every status and writes every
 * body with render/; the handlers use body.c (request bodies), cache.c and dbpool.c. Limits are
 * named in limits.h. Calls go one way; nothing calls back into http.c.
 *
 * Threads: srv_start and srv_stop from the owning thread; the server's threads call into jobs
 * (any thread) and db (one connection per request at a time).
 */
#ifndef BOOKRANK_SERVER_H
#define BOOKRANK_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "../jobs/jobs.h"

typedef struct srv_config {
    const char *listen; /* "ADDR:PORT", "[v6]:PORT"; port 0 = ephemeral */
    const char *db_path;
    const char *token;               /* NULL or "" = no auth */
    const char *const *source_names; /* configured sources, shown by GET /api/config */
    size_t nsources;
    int threads;                    /* request threads; 0 = number of cores */
    size_t max_body;                /* request body cap, default 1 MiB */
    size_t max_isbns;               /* per request, default 10000 */
    unsigned connection_limit;      /* default 1024 */
    unsigned per_ip_limit;          /* default 256 */
    unsigned connection_timeout_s;  /* idle timeout, default 30 */
    const char *const *public_urls; /* --public-url: where users reach it through a proxy */
    size_t npublic_urls;
    int private_reads; /* --private: reads need the token too */
    /* When the next scheduled refresh starts (Unix ms; 0 = none), for GET /api/jobs. Called
     * from request threads; NULL when nothing is scheduled. */
    int64_t (*next_scheduled)(void *ctx);
    void *schedule_ctx;
    /* Non-NULL: the store could not be opened, for this reason (a read-only directory: SQLite
     * cannot create its -wal and -shm files), and the server runs without it and without a
     * jobs runner: /healthz answers 503 degraded with this reason, /api/config, /metrics and
     * the dashboard's files answer, every other route 503 naming it. */
    const char *store_down;
} srv_config;

typedef struct srv srv;

/* Whether a --listen value is well-formed: 0, or -1 with a malloc'd message in *err. */
int srv_listen_check(const char *listen, char **err);
/* Whether the store at db_path (a file) exists but this process may not write it: its file, or
 * the directory SQLite must create the file's -wal and -shm in, is read-only. 1 with the reason
 * (naming the file or directory and the system's word) in why[0..len), else 0. */
int srv_store_readonly(const char *db_path, char *why, size_t len);
/* Binds and starts serving; logs when the store cannot be written (read-only, disk full). NULL
 * with a malloc'd message in *err. jobs is borrowed; NULL only with cfg->store_down set. */
srv *srv_start(const srv_config *cfg, jobs *runner, char **err);
/* The bound port (useful with port 0). */
int srv_port(const srv *s);
/* Stops accepting; waits for in-flight requests; frees. NULL is a no-op. */
void srv_stop(srv *s);

#endif
