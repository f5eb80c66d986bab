/*
 * http.c - the libmicrohttpd daemon: binding, limits, per-request state and body accumulation,
 * the single response path (headers, access log, metrics) and the store connection pool.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/metrics.h"
#include "../common/timeutil.h"
#include "../web/web.h"

/* How much of an oversized chunked body is drained before the connection is cut. */
#define DISCARD_MAX ((size_t)16 << 20)

/* ---- store connection pool ---------------------------------------------------------------- */

static db *pool_take(db_pool *p)
{
    db *d = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->nfree)
        d = p->free_list[--p->nfree];
    pthread_mutex_unlock(&p->lock);
    if (!d) {
        char *err = NULL;
        d = db_open(p->path, &err);
        if (!d) {
            log_error("store: %s", err ? err : "cannot open");
            free(err);
        }
    }
    return d;
}

static void pool_give(db_pool *p, db *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&p->lock);
    if (p->nfree < p->cap) {
        p->free_list[p->nfree++] = d;
        d = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    db_close(d);
}

/* ---- requests ----------------------------------------------------------------------------- */

db *req_db(request *r)
{
    if (!r->store)
        r->store = pool_take(&r->server->dbs);
    return r->store;
}

const char *req_arg(request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *req_header(request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* Copies at most 256 bytes of client-chosen text for the access log, control bytes replaced by
 * '?', so that a decoded "%0a" or an escape sequence in a path cannot forge or garble log lines. */
static const char *log_safe(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    for (; in && *in && n + 4 < outlen && n < 256; in++)
        out[n++] = ((unsigned char)*in < 0x20 || *in == 0x7f) ? '?' : *in;
    if (in && *in && n + 4 <= outlen)
        for (int i = 0; i < 3; i++)
            out[n++] = '.';
    out[n] = '\0';
    return out;
}

static enum MHD_Result send_response(request *r, unsigned status, const char *content_type,
                                     void *data, size_t len, enum MHD_ResponseMemoryMode mode,
                                     const char *const *headers)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, mode);
    if (!resp) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(data);
        return MHD_NO;
    }
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    for (const char *const *h = headers; h && h[0]; h += 2)
        MHD_add_response_header(resp, h[0], h[1]);
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->responded = 1;
    metrics_http((int)status);
    char method[32], url[264];
    log_info("%s %s %u %zu %.1fms", log_safe(r->method, method, sizeof method),
             log_safe(r->url, url, sizeof url), status, len, (time_mono_s() - r->started) * 1000.0);
    return ret;
}

enum MHD_Result req_send(request *r, unsigned status, const char *content_type, const void *data,
                         size_t len, const char *const *headers)
{
    return send_response(r, status, content_type, (void *)(uintptr_t)data, len,
                         MHD_RESPMEM_MUST_COPY, headers);
}

enum MHD_Result req_send_buf(request *r, unsigned status, const char *content_type, buf *body,
                             const char *const *headers)
{
    size_t len;
    char *data = buf_steal(body, &len);
    if (!data)
        return req_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory", NULL);
    return send_response(r, status, content_type, data, len, MHD_RESPMEM_MUST_FREE, headers);
}

enum MHD_Result req_json(request *r, unsigned status, json_t *value, const char *const *headers)
{
    buf out;
    buf_init(&out, (size_t)1 << 30);
    enum MHD_Result ret;
    if (!value || web_json_dump(&out, value) != BUF_OK) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode the response\",\"details\":[]}}";
        ret = req_send(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", oom, sizeof oom - 1, NULL);
    } else {
        buf_append(&out, "\n", 1);
        ret = req_send_buf(r, status, "application/json", &out, headers);
    }
    json_decref(value);
    buf_free(&out);
    return ret;
}

enum MHD_Result req_error(request *r, unsigned status, const char *code, const char *message,
                          json_t *details)
{
    return req_json(r, status, web_json_error(code, message, details), NULL);
}

static enum MHD_Result count_content_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    (void)kind;
    (void)value;
    if (key && strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        ++*(int *)cls;
    return MHD_YES;
}

/* Why the request's body framing cannot be trusted, or NULL. A transfer coding other than
 * chunked leaves no way to find the body's end; Content-Length beside Transfer-Encoding, or twice,
 * is how requests are smuggled past proxies that read the framing differently (RFC 9112 6.3). */
static const char *framing_problem(struct MHD_Connection *conn)
{
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_TRANSFER_ENCODING);
    int lengths = 0;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_content_length, &lengths);
    if (te && strcasecmp(te, "chunked") != 0)
        return "only the chunked transfer coding is supported";
    if (te && lengths)
        return "Content-Length and Transfer-Encoding must not both be sent";
    if (lengths > 1)
        return "more than one Content-Length header";
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    srv *s = cls;
    request *r = *req_cls;
    (void)version;

    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->server = s;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->started = time_mono_s();
        buf_init(&r->body, s->cfg.max_body);
        *req_cls = r;
        const char *framing = framing_problem(conn);
        if (framing) {
            r->body_too_big = 1;   /* whatever body follows is dropped, not stored */
            return req_error(r, MHD_HTTP_BAD_REQUEST, "invalid_body", framing, NULL);
        }
        /* An announced oversized body is never kept. A client that sent "Expect: 100-continue"
         * waits for our answer before sending it, so it gets the 413 at once. Most clients
         * (urllib, requests, many SDKs) send the whole body first and read only then: answering
         * and closing mid-upload resets the connection and the 413 is lost in their receive
         * buffer, so up to DISCARD_MAX the body is read and dropped and the 413 follows it. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (*end == '\0' && n > s->cfg.max_body) {
                r->body_too_big = 1;
                const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                                 MHD_HTTP_HEADER_EXPECT);
                if (n > DISCARD_MAX || (expect && strcasecmp(expect, "100-continue") == 0))
                    return req_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                                     "request body larger than the limit", NULL);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!r->body_too_big && buf_append(&r->body, upload_data, *upload_data_size) != BUF_OK)
            r->body_too_big = 1;
        if (r->body_too_big)
            r->discarded += *upload_data_size;
        *upload_data_size = 0;
        /* An oversized body of unannounced length (chunked) is read and dropped up to a point,
         * so that the client, still sending, can read the 413 at its end; past that the
         * connection is cut (libmicrohttpd refuses a response queued mid-body, and the MHD_NO
         * that follows closes the connection). */
        if (r->body_too_big && !r->responded && r->discarded > DISCARD_MAX)
            return req_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                             "request body larger than the limit", NULL);
        return MHD_YES;
    }
    if (r->responded)
        return MHD_YES;
    if (r->body_too_big)
        return req_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                         "request body larger than the limit", NULL);
    return api_dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    srv *s = cls;
    request *r = *req_cls;
    (void)conn;
    (void)toe;
    if (!r)
        return;
    pool_give(&s->dbs, r->store);
    buf_free(&r->body);
    free(r);
    *req_cls = NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decoding of the path and of query names and values, like MHD's own except that "%00"
 * stays as it is: a decoded NUL would silently cut the C string ("/api/books/ISBN%00/history"
 * would name the book itself), while the literal text fails validation like any bad input. */
static size_t on_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    char *out = s;
    for (const char *in = s; *in;) {
        int hi = in[0] == '%' ? hex_value(in[1]) : -1;
        int lo = hi >= 0 ? hex_value(in[2]) : -1;
        if (lo >= 0 && (hi | lo) != 0) {
            *out++ = (char)(hi << 4 | lo);
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
    return (size_t)(out - s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_debug("httpd: %s", line);
}

/* "127.0.0.1:8080", "localhost:8080", "[::1]:8080", "0.0.0.0:80", ":8080". */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, char **err)
{
    const char *colon = strrchr(listen, ':');
    char host[128];
    if (!colon) {
        *err = strdup("--listen must be ADDR:PORT");
        return -1;
    }
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host) {
        *err = strdup("--listen address too long");
        return -1;
    }
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535) {
        *err = strdup("--listen port must be 0-65535");
        return -1;
    }
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            goto bad;
        *len = sizeof *a6;
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    if (hl == 0 || strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "%s", "127.0.0.1");
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        goto bad;
    *len = sizeof *a4;
    return 0;
bad:
    *err = strdup("--listen address must be an IPv4 address or [IPv6]");
    return -1;
}

int srv_listen_check(const char *listen, char **err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    return parse_listen(listen, &ss, &len, err);
}

srv *srv_start(const srv_config *cfg, jobs *runner, char **err)
{
    srv *s = calloc(1, sizeof *s);
    if (!s) {
        *err = strdup("out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->runner = runner;
    if (!s->cfg.max_body)
        s->cfg.max_body = 1 << 20;
    if (!s->cfg.max_isbns)
        s->cfg.max_isbns = 10000;
    if (!s->cfg.connection_limit)
        s->cfg.connection_limit = 1024;
    if (!s->cfg.per_ip_limit)
        s->cfg.per_ip_limit = 256;
    if (!s->cfg.connection_timeout_s)
        s->cfg.connection_timeout_s = 30;
    if (s->cfg.threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        s->cfg.threads = cores > 0 ? (int)cores : 2;
    }
    pthread_mutex_init(&s->dbs.lock, NULL);
    s->dbs.path = cfg->db_path;
    s->dbs.cap = (size_t)s->cfg.threads + 4;
    s->dbs.free_list = calloc(s->dbs.cap, sizeof *s->dbs.free_list);

    struct sockaddr_storage ss;
    socklen_t sslen;
    if (!s->dbs.free_list || parse_listen(cfg->listen, &ss, &sslen, err))
        goto fail;
    /* Open the store once here so a bad database fails at startup, not on the first request. */
    db *first = pool_take(&s->dbs);
    if (!first) {
        *err = strdup("cannot open the database");
        goto fail;
    }
    pool_give(&s->dbs, first);
    s->cache = cache_new(cfg->db_path, runner, err);
    if (!s->cache)
        goto fail;

    /* poll(), not epoll: libmicrohttpd 0.9.75's edge-triggered epoll loop misses the end of a
     * connection in two hostile cases (a client that half-closes after an incomplete request
     * line, a URL whose query arguments overflow the connection's memory) and holds it until the
     * idle timeout; level-triggered poll closes at once. ITC: without it a pool thread blocked in
     * poll with idle connections only notices MHD_stop_daemon at its next timeout (~30 s). At
     * <= 1024 connections over the pool threads poll costs nothing measurable (tests/integration/test_hostile.py,
     * tests/integration/test_load.py: 1,000 slow connections, SIGTERM exits in milliseconds). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->cfg.threads,
        MHD_OPTION_CONNECTION_LIMIT, s->cfg.connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->cfg.per_ip_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, NULL,
        MHD_OPTION_END);
    if (!s->daemon) {
        size_t n = strlen(cfg->listen) + 64;
        *err = malloc(n);
        if (*err)
            snprintf(*err, n, "cannot listen on %s (address in use or not allowed?)", cfg->listen);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s;
fail:
    srv_stop(s);
    return NULL;
}

int srv_port(const srv *s)
{
    return s->port;
}

void srv_stop(srv *s)
{
    if (!s)
        return;
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    cache_free(s->cache);
    for (size_t i = 0; i < s->dbs.nfree; i++)
        db_close(s->dbs.free_list[i]);
    free(s->dbs.free_list);
    pthread_mutex_destroy(&s->dbs.lock);
    free(s);
}
