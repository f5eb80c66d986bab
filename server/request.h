/*
 * request.h - a request and its response as plain data. Private to server/.
 *
 * http.c fills an srv_request from libmicrohttpd and turns an srv_response into libmicrohttpd's;
 * the router and the handlers see only these two structs, so they can be built and tested
 * without libmicrohttpd (no library header here or in request.c).
 *
 * Threads: a request and its response belong to the thread handling the request.
 */
#ifndef BOOKRANK_SERVER_REQUEST_H
#define BOOKRANK_SERVER_REQUEST_H

#include <stddef.h>

#include "../common/buf.h"
#include "../common/compiler.h"

/* One query argument; value is NULL for a bare name ("?status"). */
typedef struct srv_arg {
    const char *name;
    const char *value;
} srv_arg;

/*
 * Every string is borrowed from the transport for the request's life; a header that was not
 * sent is NULL. When a header is sent more than once, its field holds the first one (as
 * libmicrohttpd's lookup does) and the counts say how many there were.
 */
typedef struct srv_request {
    const char *method;  /* as sent: "GET", "HEAD", "get", ... */
    const char *version; /* "HTTP/1.1", "HTTP/1.0" */
    const char *path;    /* percent-decoded, without the query */
    const srv_arg *args; /* percent-decoded, in order */
    size_t nargs;
    const char *host;
    const char *origin;
    const char *fetch_site; /* Sec-Fetch-Site */
    const char *authorization;
    const char *content_type;
    const char *content_length;
    const char *transfer_encoding;
    const char *expect;
    const char *if_none_match;
    unsigned nhost, ncontent_length, ntransfer_encoding;
    /* Set once the whole body is in (NULL before, and for a request whose body was dropped). */
    const char *body;
    size_t body_len;
} srv_request;

/* The first value of query argument name (names compare without case, like libmicrohttpd's);
 * NULL when absent or bare. */
const char *srv_request_arg(const srv_request *r, const char *name);

/* What the transport refuses before a handler runs; the handlers turn it into a response. */
typedef enum srv_transport_err {
    SRV_TRANSPORT_OK = 0,
    SRV_FRAMING_CODING,  /* a transfer coding other than chunked */
    SRV_FRAMING_MIXED,   /* Content-Length beside Transfer-Encoding */
    SRV_FRAMING_LENGTHS, /* more than one Content-Length */
    SRV_FRAMING_CODINGS, /* more than one Transfer-Encoding header */
    SRV_BODY_TOO_LARGE,  /* over srv_config.max_body */
    SRV_TRANSPORT_NOMEM  /* the request could not be held in memory */
} srv_transport_err;

/* Why the body's framing cannot be trusted, from the headers alone. A transfer coding other than
 * chunked leaves no way to find the body's end; Content-Length beside Transfer-Encoding, or
 * twice, is how requests are smuggled past proxies that read the framing differently (RFC 9112
 * 6.3). */
srv_transport_err srv_request_framing(const srv_request *r);
/* The announced body length: 1 with *n when Content-Length is a plain decimal number, else 0. */
int srv_request_length(const srv_request *r, unsigned long long *n);
/* Whether the client waits for "100 Continue" before it sends the body. */
int srv_request_expects_continue(const srv_request *r);

/* ---- responses ------------------------------------------------------------------------------- */

#define SRV_RESPONSE_HEADERS 4
#define SRV_HEADER_VALUE_MAX 4096 /* a Link header repeats the query */

typedef struct srv_header {
    const char *name; /* a string literal */
    char value[SRV_HEADER_VALUE_MAX];
} srv_header;

/*
 * The body is either `body` (owned, handed to the transport) or, when fixed is not NULL,
 * fixed[0..fixed_len): read-only data that outlives every response (a dashboard file).
 * content_type NULL sends no Content-Type (204). dashboard adds the dashboard's security
 * headers (Content-Security-Policy, X-Frame-Options, Referrer-Policy).
 */
typedef struct srv_response {
    unsigned status;          /* 0 until a handler has answered */
    const char *content_type; /* a string literal or static data */
    buf body;
    const void *fixed;
    size_t fixed_len;
    srv_header headers[SRV_RESPONSE_HEADERS];
    size_t nheaders;
    int dashboard;
} srv_response;

/* An empty response whose body may grow to max bytes. */
void srv_response_init(srv_response *r, size_t max);
/* Adds a header (value copied): 0, or -1 when there is no room (a bug in a handler). */
BR_MUST_CHECK int srv_response_header(srv_response *r, const char *name, const char *value);
/* Frees the body; the response can be initialised again. */
void srv_response_clear(srv_response *r);

#endif
