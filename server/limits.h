/*
 * limits.h - every size cap and range of the HTTP service, named once. Private to server/.
 *
 * The request caps are srv_config defaults (an operator may change them); the rest are fixed.
 * Constants only: any thread.
 */
#ifndef BOOKRANK_SERVER_LIMITS_H
#define BOOKRANK_SERVER_LIMITS_H

#include <stddef.h>

/* A limit's number as a string literal, for messages that state it. */
#define SRV_STR(x) SRV_STR_(x)
#define SRV_STR_(x) #x

/* ---- srv_config defaults ------------------------------------------------------------------ */
#define SRV_MAX_BODY_DEFAULT ((size_t)1 << 20) /* request body */
#define SRV_MAX_ISBNS_DEFAULT ((size_t)10000)  /* ISBNs in one request */
#define SRV_CONNECTION_LIMIT_DEFAULT 1024u
#define SRV_PER_IP_LIMIT_DEFAULT 256u
#define SRV_CONNECTION_TIMEOUT_DEFAULT 30u /* seconds idle */

/* ---- the transport -------------------------------------------------------------------------- */
/* An oversized body is read and dropped up to here so that a client that sends it all before
 * reading still gets the 413; past it (or announced past it) the answer comes at once. */
#define SRV_DRAIN_MAX ((size_t)16 << 20)
/* What libmicrohttpd may use per connection for the request line, headers and arguments. */
#define SRV_CONNECTION_MEMORY ((size_t)64 * 1024)
/* Store connections kept open beyond one per request thread. */
#define SRV_POOL_SPARE 4

/* ---- requests -------------------------------------------------------------------------------- */
/* How long a request waits for another process's write lock before 503 with Retry-After. */
#define SRV_STORE_WAIT_MS 1000
#define SRV_PATH_MAX 2048        /* longer paths get 414 */
#define SRV_JOB_ID_MAX_DIGITS 18 /* fits an int64_t */
#define SRV_HISTORY_LIMIT_DEFAULT 500
#define SRV_HISTORY_LIMIT_MIN 1
#define SRV_HISTORY_LIMIT_MAX 100000
#define SRV_BOOKS_LIMIT_MIN 1 /* GET /api/books?limit= */
#define SRV_BOOKS_LIMIT_MAX 10000
#define SRV_JOBS_LIST_DEFAULT 20 /* GET /api/jobs */
#define SRV_JOBS_LIST_MAX 1000
#define SRV_JOB_FAILURES_MAX 1000   /* failed fetches shown by GET /api/jobs/{id} */
#define SRV_ALERT_EVENTS_DEFAULT 50 /* GET /api/alerts/events */
#define SRV_ALERT_EVENTS_MAX 1000

/* ---- responses ------------------------------------------------------------------------------- */
#define SRV_RESPONSE_MAX ((size_t)1 << 30) /* any JSON answer */
#define SRV_BOOK_MAX ((size_t)1 << 24)     /* GET /api/books/{isbn} */
#define SRV_EXPORT_MAX_MIB 512             /* GET /api/export.csv */
#define SRV_EXPORT_MAX ((size_t)SRV_EXPORT_MAX_MIB << 20)
#define SRV_METRICS_MAX ((size_t)1 << 20) /* GET /metrics */

#endif
