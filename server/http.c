/*
 * http.c - the transport, and the only file that sees libmicrohttpd: the daemon (binding,
 * limits, poll loop), per-request state, the request as plain data (request.h), body
 * accumulation with its caps and drain rules, percent-decoding, and the one response path
 * (headers, access log, metrics).
 *
 * A request is judged on its headers (framing, announced length, then router_check) on the
 * first callback, before any body byte is kept; only a request that passed has its body
 * accumulated, and the handlers run once it is complete. It calls the router, the handlers and
 * the pool; nothing calls back into it.
 *
 * Threads: srv_start and srv_stop by the owner. libmicrohttpd's pool threads run the callbacks;
 * a connection stays on one thread, so a request's state is only touched by that thread. The
 * srv is read-only while the daemon runs.
 */
#include "server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/grow.h"
#include "../common/log.h"
#include "../common/metrics.h"
#include "../common/timeutil.h"
#include "../web/web.h"
#include "cache.h"
#include "dbpool.h"
#include "handlers.h"
#include "limits.h"
#include "request.h"
#include "router.h"

struct srv {
    srv_config cfg; /* defaults filled in; strings borrowed from the caller */
    jobs *runner;   /* borrowed */
    resp_cache *cache;
    dbpool *pool;
    handlers_env env;
    router_config routes;
    struct MHD_Daemon *daemon;
    int port;
};

/* Per-request state, made on the first callback and freed in the completed callback. */
typedef struct request_state {
    srv *server;
    struct MHD_Connection *conn;
    double started;
    srv_request req; /* strings borrowed from libmicrohttpd for the request's life */
    srv_arg *args;   /* owned array behind req.args */
    size_t args_cap;
    router_match match; /* the router's verdict on the headers */
    int keep;           /* body bytes are kept: the request passed every check */
    buf body;
    size_t received;           /* body bytes seen, kept or dropped */
    srv_transport_err refused; /* the transport's verdict (SRV_TRANSPORT_OK so far) */
    int responded;
} request_state;

/* ---- the request as plain data --------------------------------------------------------------- */

static int name_is(const char *key, const char *name)
{
    return strcasecmp(key, name) == 0;
}

/* The first of each header, like MHD_lookup_connection_value; counts the ones that matter
 * twice. */
static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    srv_request *q = cls;
    (void)kind;
    if (!key)
        return MHD_YES;
    const char **slot = NULL;
    if (name_is(key, MHD_HTTP_HEADER_HOST)) {
        q->nhost++;
        slot = &q->host;
    } else if (name_is(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        q->ncontent_length++;
        slot = &q->content_length;
    } else if (name_is(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        q->ntransfer_encoding++;
        slot = &q->transfer_encoding;
    } else if (name_is(key, MHD_HTTP_HEADER_ORIGIN)) {
        slot = &q->origin;
    } else if (name_is(key, "Sec-Fetch-Site")) {
        slot = &q->fetch_site;
    } else if (name_is(key, MHD_HTTP_HEADER_AUTHORIZATION)) {
        slot = &q->authorization;
    } else if (name_is(key, MHD_HTTP_HEADER_CONTENT_TYPE)) {
        slot = &q->content_type;
    } else if (name_is(key, MHD_HTTP_HEADER_EXPECT)) {
        slot = &q->expect;
    } else if (name_is(key, MHD_HTTP_HEADER_IF_NONE_MATCH)) {
        slot = &q->if_none_match;
    }
    if (slot && !*slot)
        *slot = value;
    return MHD_YES;
}

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                              const char *value)
{
    request_state *r = cls;
    (void)kind;
    srv_arg *grown = grow_to(r->args, &r->args_cap, r->req.nargs + 1, sizeof *r->args);
    if (!grown) {
        r->refused = SRV_TRANSPORT_NOMEM;
        return MHD_NO;
    }
    r->args = grown;
    r->args[r->req.nargs++] = (srv_arg){.name = key, .value = value};
    r->req.args = r->args;
    return MHD_YES;
}

static void read_request(request_state *r, const char *method, const char *url, const char *version)
{
    r->req.method = method;
    r->req.version = version;
    r->req.path = url;
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, on_header, &r->req);
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, on_arg, r);
}

/* ---- the one response path ------------------------------------------------------------------- */

/* How much of a client-chosen method or path goes into the access log. */
#define LOG_FIELD_MAX 256

/* Copies at most LOG_FIELD_MAX bytes of client-chosen text for the access log, control bytes
 * replaced by '?', so that a decoded "%0a" or an escape sequence in a path cannot forge or
 * garble log lines. */
static const char *log_safe(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    for (; in && *in && n + 4 < outlen && n < LOG_FIELD_MAX; in++)
        out[n++] = ((unsigned char)*in < 0x20 || *in == 0x7f) ? '?' : *in;
    if (in && *in && n + 4 <= outlen)
        for (int i = 0; i < 3; i++)
            out[n++] = '.';
    out[n] = '\0';
    return out;
}

/* The dashboard's pages may load only their own files and may not be framed. */
static const char *const dashboard_headers[] = {
    "Content-Security-Policy",
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options",
    "DENY",
    "Referrer-Policy",
    "no-referrer",
    NULL,
    NULL,
};

/* Queues resp (which it empties), counts it and writes the access-log line. */
static enum MHD_Result send_response(request_state *r, srv_response *resp)
{
    void *data;
    size_t len;
    enum MHD_ResponseMemoryMode mode;
    if (resp->fixed) {
        data = (void *)(uintptr_t)resp->fixed; /* MHD only reads PERSISTENT data */
        len = resp->fixed_len;
        mode = MHD_RESPMEM_PERSISTENT;
    } else if (resp->body.len == 0) {
        data = (void *)(uintptr_t) "";
        len = 0;
        mode = MHD_RESPMEM_PERSISTENT;
    } else {
        data = buf_steal(&resp->body, &len); /* never NULL: the buf holds data */
        mode = MHD_RESPMEM_MUST_FREE;
    }
    struct MHD_Response *mr = MHD_create_response_from_buffer(len, data, mode);
    if (!mr) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(data);
        srv_response_clear(resp);
        return MHD_NO;
    }
    if (resp->content_type)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    for (size_t i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(mr, resp->headers[i].name, resp->headers[i].value);
    for (const char *const *h = dashboard_headers; resp->dashboard && h[0]; h += 2)
        MHD_add_response_header(mr, h[0], h[1]);
    enum MHD_Result ret = MHD_queue_response(r->conn, resp->status, mr);
    MHD_destroy_response(mr);
    r->responded = 1;
    metrics_http((int)resp->status);
    char method[32], url[LOG_FIELD_MAX + 8];
    log_info("%s %s %u %zu %.1fms", log_safe(r->req.method, method, sizeof method),
             log_safe(r->req.path, url, sizeof url), resp->status, len,
             (time_mono_s() - r->started) * 1000.0);
    srv_response_clear(resp);
    return ret;
}

static enum MHD_Result refuse(request_state *r, srv_transport_err err)
{
    srv_response resp;
    srv_response_init(&resp, SRV_RESPONSE_MAX);
    handlers_refuse(&r->server->env, err, &resp);
    return send_response(r, &resp);
}

static enum MHD_Result answer(request_state *r)
{
    srv_response resp;
    srv_response_init(&resp, SRV_RESPONSE_MAX);
    handlers_answer(&r->server->env, &r->match, &r->req, &resp);
    return send_response(r, &resp);
}

/* ---- the request callbacks ------------------------------------------------------------------- */

/* The first callback: the request line and headers are in, no body byte yet. */
static enum MHD_Result on_headers(srv *s, request_state *r)
{
    srv_transport_err framing = srv_request_framing(&r->req);
    if (framing) {
        /* Whatever body follows is dropped, not stored. */
        r->refused = framing;
        return refuse(r, framing);
    }
    /* An announced oversized body is never kept. A client that sent "Expect: 100-continue"
     * waits for our answer before sending it, so it gets the 413 at once. Most clients
     * (urllib, requests, many SDKs) send the whole body first and read only then: answering
     * and closing mid-upload resets the connection and the 413 is lost in their receive
     * buffer, so up to SRV_DRAIN_MAX the body is read and dropped and the 413 follows it. */
    int waits = srv_request_expects_continue(&r->req);
    unsigned long long announced;
    if (srv_request_length(&r->req, &announced) && announced > s->cfg.max_body) {
        r->refused = SRV_BODY_TOO_LARGE;
        if (announced > SRV_DRAIN_MAX || waits)
            return refuse(r, SRV_BODY_TOO_LARGE);
        return MHD_YES;
    }
    if (r->refused) /* the arguments did not fit in memory */
        return MHD_YES;
    router_verdict v = router_check(&s->routes, &r->req, &r->match);
    if (v == ROUTER_OK || v == ROUTER_ASSET) {
        r->keep = 1;
        return MHD_YES;
    }
    /* Refused on its headers: the body is dropped. A client waiting for "100 Continue" gets
     * the answer instead and never sends it; the others get it once their body is read. */
    return waits ? answer(r) : MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    srv *s = cls;
    request_state *r = *req_cls;

    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->server = s;
        r->conn = conn;
        r->started = time_mono_s();
        buf_init(&r->body, s->cfg.max_body);
        *req_cls = r;
        read_request(r, method, url, version);
        return on_headers(s, r);
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        r->received = n > SIZE_MAX - r->received ? SIZE_MAX : r->received + n;
        if (r->keep && !r->refused) {
            int rc = buf_append(&r->body, upload_data, n);
            if (rc == BUF_NOMEM)
                r->refused = SRV_TRANSPORT_NOMEM;
            if (rc != BUF_OK)
                buf_free(&r->body);
        }
        /* Too large wins over every other refusal, as it does when announced. */
        if (r->received > s->cfg.max_body)
            r->refused = SRV_BODY_TOO_LARGE;
        /* An oversized body of unannounced length (chunked) is read and dropped up to a point,
         * so that the client, still sending, can read the 413 at its end; past that the
         * connection is cut (libmicrohttpd refuses a response queued mid-body, and the MHD_NO
         * that follows closes the connection). */
        if (r->refused == SRV_BODY_TOO_LARGE && !r->responded && r->received > SRV_DRAIN_MAX)
            return refuse(r, SRV_BODY_TOO_LARGE);
        return MHD_YES;
    }
    if (r->responded)
        return MHD_YES;
    if (r->refused)
        return refuse(r, r->refused);
    if (r->keep) {
        r->req.body = r->body.data ? r->body.data : "";
        r->req.body_len = r->body.len;
    }
    return answer(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    request_state *r = *req_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (!r)
        return;
    buf_free(&r->body);
    free(r->args);
    free(r);
    *req_cls = NULL;
}

/* ---- the daemon ------------------------------------------------------------------------------ */

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

int srv_store_readonly(const char *db_path, char *why, size_t len)
{
    return handlers_store_readonly(db_path, why, len) != 0;
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
        s->cfg.max_body = SRV_MAX_BODY_DEFAULT;
    if (!s->cfg.max_isbns)
        s->cfg.max_isbns = SRV_MAX_ISBNS_DEFAULT;
    if (!s->cfg.connection_limit)
        s->cfg.connection_limit = SRV_CONNECTION_LIMIT_DEFAULT;
    if (!s->cfg.per_ip_limit)
        s->cfg.per_ip_limit = SRV_PER_IP_LIMIT_DEFAULT;
    if (!s->cfg.connection_timeout_s)
        s->cfg.connection_timeout_s = SRV_CONNECTION_TIMEOUT_DEFAULT;
    if (s->cfg.threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        s->cfg.threads = cores > 0 ? (int)cores : 2;
    }
    s->routes = (router_config){.token = s->cfg.token,
                                .asset = web_asset_find,
                                .private_reads = s->cfg.private_reads};
    for (size_t i = 0; i < s->cfg.npublic_urls; i++) {
        char why[200];
        if (router_add_public_url(&s->routes, s->cfg.public_urls[i], why, sizeof why) != 0) {
            *err = strdup(why);
            srv_stop(s);
            return NULL;
        }
    }
    /* A client that closes mid-answer must not kill the process. libmicrohttpd keeps SIGPIPE
     * away where the platform lets it (MSG_NOSIGNAL); elsewhere it is ignored here. */
    if (MHD_is_feature_supported(MHD_FEATURE_AUTOSUPPRESS_SIGPIPE) != MHD_YES)
        signal(SIGPIPE, SIG_IGN);

    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_listen(cfg->listen, &ss, &sslen, err))
        goto fail;
    if (runner) {
        s->pool = dbpool_new(cfg->db_path, (size_t)s->cfg.threads + SRV_POOL_SPARE, err);
        if (!s->pool)
            goto fail;
        s->cache = cache_new(cfg->db_path, runner, err);
        if (!s->cache)
            goto fail;
    } else if (!cfg->store_down) {
        *err = strdup("no jobs runner");
        goto fail;
    }
    if (handlers_env_init(&s->env, &s->cfg, runner, s->cache, s->pool, err))
        goto fail;
    handlers_check_store(&s->env);

    /* poll(), not epoll: libmicrohttpd 0.9.75's edge-triggered epoll loop misses the end of a
     * connection in two hostile cases (a client that half-closes after an incomplete request
     * line, a URL whose query arguments overflow the connection's memory) and holds it until the
     * idle timeout; level-triggered poll closes at once. ITC: without it a pool thread blocked in
     * poll with idle connections only notices MHD_stop_daemon at its next timeout (~30 s). At
     * <= 1024 connections over the pool threads poll costs nothing measurable (tests/integration/test_hostile.py,
     * tests/integration/test_load.py: 1,000 slow connections, SIGTERM exits in milliseconds). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)s->cfg.threads, MHD_OPTION_CONNECTION_LIMIT, s->cfg.connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->cfg.per_ip_limit, MHD_OPTION_CONNECTION_TIMEOUT,
        s->cfg.connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, SRV_CONNECTION_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_UNESCAPE_CALLBACK, on_unescape,
        NULL, MHD_OPTION_END);
    if (!s->daemon) {
        *err = buf_strdup_printf("cannot listen on %s (address in use or not allowed?)",
                                 cfg->listen);
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
    handlers_env_clear(&s->env);
    cache_free(s->cache);
    dbpool_free(s->pool);
    free(s);
}
