/* fetch.c - GETs over one reused libcurl easy handle, with every per-request limit applied. */
#include "fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../common/buf.h"
#include "../common/timeutil.h"

#ifndef BOOKRANK_VERSION
#define BOOKRANK_VERSION "dev"
#endif

#define FETCH_MAX_REDIRECTS 5L
#define RETRY_AFTER_MAX_S 60.0
/* Below this many bytes/s for LOW_SPEED_TIME seconds the transfer is abandoned: a stalled
 * connection should not hold a worker and a host slot for the whole total timeout. */
#define LOW_SPEED_LIMIT 64L
#define LOW_SPEED_TIME 20L
/* A worker keeps its body buffer between fetches only when it is this small: a worker spends
 * most of its time waiting for the store's answer, and hundreds of workers each sitting on a
 * page-sized buffer (a product page is 0.2-1.5 MB) would multiply the process's memory. */
#define BODY_KEEP_MAX (64u * 1024u)

struct scr_fetcher {
    const scr_fetch_policy *policy; /* of the fetch under way; NULL = no rules */
    int via_proxy;         /* every connection goes to the proxy: addresses are its business */
    char refused_addr[64]; /* the address on_open_socket refused ("" = none) */
    struct curl_slist *language; /* the Accept-Language header of the fetch under way */
    struct curl_slist *resolve;  /* BOOKRANK_TEST_RESOLVE */
    char language_value[128];
    CURL *curl;
    CURLM *multi; /* drives curl; owns the kept-alive connections; wakeable */
    const atomic_int *abort_flag;
    double timeout_s;
    buf body;              /* the answer being received, capped at SCR_MAX_PAGE */
    int too_big, nomem;    /* why the write callback refused data */
    double retry_after_s;  /* from the current answer's headers, -1 when none */
    char encoding[64];     /* the current answer's Content-Encoding ("" = none) */
    int connect_timed_out; /* the last attempt timed out before its connection was made */
    char errbuf[CURL_ERROR_SIZE];
};

int scr_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void scr_global_cleanup(void)
{
    curl_global_cleanup();
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    scr_fetcher *f = userdata;
    size_t n = size * nmemb;
    int rc = buf_append(&f->body, data, n);
    if (rc == BUF_TOOBIG) {
        f->too_big = 1;
        return 0; /* fewer bytes than offered makes libcurl stop with CURLE_WRITE_ERROR */
    }
    if (rc != BUF_OK) {
        f->nomem = 1;
        return 0;
    }
    return n;
}

/* Retry-After is either delay-seconds or an HTTP date (RFC 9110 10.2.3). */
static double parse_retry_after(const char *v)
{
    if (*v >= '0' && *v <= '9') {
        char *end;
        long s = strtol(v, &end, 10);
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end != '\0')
            return -1;
        return s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : (double)s;
    }
    time_t when = curl_getdate(v, NULL);
    if (when == (time_t)-1)
        return -1;
    double delta = difftime(when, time(NULL));
    if (delta < 0)
        delta = 0;
    return delta > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : delta;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    scr_fetcher *f = userdata;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    static const char coding[] = "content-encoding:";
    size_t name_len = sizeof name - 1, coding_len = sizeof coding - 1;

    if (n >= 5 && strncasecmp(data, "HTTP/", 5) == 0) {
        /* A new answer (after a redirect or a 100 Continue): forget the previous one's. */
        buf_reset(&f->body);
        f->retry_after_s = -1;
        f->encoding[0] = '\0';
    } else if (n > coding_len && strncasecmp(data, coding, coding_len) == 0) {
        /* Kept for the message when decoding fails: printable ASCII, lower case. */
        size_t i = coding_len, len = 0;
        while (i < n && (data[i] == ' ' || data[i] == '\t'))
            i++;
        for (; i < n && len < sizeof f->encoding - 1 && data[i] != '\r' && data[i] != '\n'; i++) {
            char ch = data[i] >= 'A' && data[i] <= 'Z' ? (char)(data[i] + 32) : data[i];
            f->encoding[len++] = ch >= 0x20 && ch < 0x7f ? ch : '?';
        }
        f->encoding[len] = '\0';
    } else if (n > name_len && strncasecmp(data, name, name_len) == 0) {
        char value[64];
        size_t i = name_len, len = 0;
        while (i < n && (data[i] == ' ' || data[i] == '\t'))
            i++;
        while (i < n && len < sizeof value - 1 && data[i] != '\r' && data[i] != '\n')
            value[len++] = data[i++];
        value[len] = '\0';
        f->retry_after_s = parse_retry_after(value);
    }
    return n;
}

int scr_address_is_private(int family, const void *addr)
{
    const unsigned char *a = addr;
    if (family == AF_INET) {
        return a[0] == 0 || a[0] == 10 || a[0] == 127 || (a[0] == 169 && a[1] == 254) ||
               (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
               (a[0] == 100 && (a[1] & 0xc0) == 64) || a[0] >= 224;
    }
    if (family == AF_INET6) {
        static const unsigned char zero[15] = {0};
        if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1))
            return 1; /* :: and ::1 */
        if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || a[0] == 0xff)
            return 1; /* unique local, link-local, multicast */
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0)
            return scr_address_is_private(AF_INET, a + 12);
        return 0;
    }
    return 1;
}

/* The host and port of an http(s) URL: host into out (lower case), the port or 0. -1 when the
 * URL has no host. */
static int url_host(const char *url, char *out, size_t outlen, int *port, int *https)
{
    size_t skip = strncasecmp(url, "https://", 8) == 0  ? 8
                  : strncasecmp(url, "http://", 7) == 0 ? 7
                                                        : 0;
    if (!skip)
        return -1;
    *https = skip == 8;
    const char *h = url + skip;
    if (*h == '[') { /* [v6]:port */
        const char *close = strchr(h, ']');
        if (!close)
            return -1;
        h++;
        size_t n = (size_t)(close - h);
        if (n == 0 || n >= outlen)
            return -1;
        memcpy(out, h, n);
        out[n] = '\0';
        h = close + 1;
    } else {
        size_t n = strcspn(h, ":/?#");
        if (n == 0 || n >= outlen)
            return -1;
        for (size_t i = 0; i < n; i++)
            out[i] = (char)((h[i] >= 'A' && h[i] <= 'Z') ? h[i] + 32 : h[i]);
        out[n] = '\0';
        h += n;
    }
    *port = 0;
    if (*h == ':') {
        char *end;
        long v = strtol(h + 1, &end, 10);
        if (end == h + 1 || v <= 0 || v > 65535)
            return -1;
        *port = (int)v;
    }
    if ((*https && *port == 443) || (!*https && *port == 80))
        *port = 0;
    return 0;
}

void scr_fetch_policy_init(scr_fetch_policy *p, const char *url_template,
                           const char *accept_language)
{
    memset(p, 0, sizeof *p);
    p->accept_language = accept_language;
    int https;
    if (url_host(url_template, p->domain, sizeof p->domain, &p->port, &https) != 0) {
        p->domain[0] = '\0';
        return;
    }
    unsigned char addr[16];
    if (strcmp(p->domain, "localhost") == 0 ||
        (strlen(p->domain) > 10 && strcmp(p->domain + strlen(p->domain) - 10, ".localhost") == 0) ||
        (inet_pton(AF_INET, p->domain, addr) == 1 && scr_address_is_private(AF_INET, addr)) ||
        (inet_pton(AF_INET6, p->domain, addr) == 1 && scr_address_is_private(AF_INET6, addr)))
        p->private_ok = 1;
    if (strncmp(p->domain, "www.", 4) == 0)
        memmove(p->domain, p->domain + 4, strlen(p->domain + 4) + 1);
}

/* Why a redirect target is refused (a static message), or NULL when policy allows it. */
static const char *redirect_problem(const scr_fetch_policy *p, const char *from, const char *to)
{
    char host[256], from_host[256];
    int port, https, from_port, from_https;
    if (url_host(to, host, sizeof host, &port, &https) != 0)
        return "a redirect to an address that is not http or https";
    if (url_host(from, from_host, sizeof from_host, &from_port, &from_https) == 0 && from_https &&
        !https)
        return "a redirect from https to plain http";
    if (!p || !p->domain[0])
        return NULL;
    size_t hl = strlen(host), dl = strlen(p->domain);
    int in_domain = strcmp(host, p->domain) == 0 ||
                    (hl > dl && host[hl - dl - 1] == '.' && strcmp(host + hl - dl, p->domain) == 0);
    if (!in_domain)
        return "a redirect to another site";
    if (port != p->port)
        return "a redirect to another port";
    return NULL;
}

/* Every connection libcurl opens passes here: addresses outside the public internet are refused
 * unless the source itself points there (or a proxy makes the connections). */
static curl_socket_t on_open_socket(void *userdata, curlsocktype purpose, struct curl_sockaddr *a)
{
    scr_fetcher *f = userdata;
    (void)purpose;
    if (f->policy && !f->policy->private_ok && !f->via_proxy) {
        const void *raw = NULL;
        if (a->family == AF_INET)
            raw = &((const struct sockaddr_in *)(const void *)&a->addr)->sin_addr;
        else if (a->family == AF_INET6)
            raw = &((const struct sockaddr_in6 *)(const void *)&a->addr)->sin6_addr;
        if (!raw || scr_address_is_private(a->family, raw)) {
            if (!raw || !inet_ntop(a->family, raw, f->refused_addr, sizeof f->refused_addr))
                snprintf(f->refused_addr, sizeof f->refused_addr, "%s", "an unknown address");
            return CURL_SOCKET_BAD;
        }
    }
    return socket(a->family, a->socktype, a->protocol);
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const scr_fetcher *f = userdata;
    return atomic_load(f->abort_flag) ? 1 : 0;
}

scr_fetcher *scr_fetcher_new(const scr_config *cfg, const atomic_int *abort_flag, char **err)
{
    scr_fetcher *f = calloc(1, sizeof *f);
    if (!f) {
        *err = strdup("out of memory");
        return NULL;
    }
    buf_init(&f->body, SCR_MAX_PAGE);
    f->abort_flag = abort_flag;
    f->timeout_s = cfg->timeout_s;
    f->retry_after_s = -1;
    f->curl = curl_easy_init();
    f->multi = curl_multi_init();
    if (!f->curl || !f->multi) {
        *err = strdup("libcurl handle: out of memory");
        goto fail;
    }

    long timeout_ms = (long)ceil(cfg->timeout_s * 1000.0);
    long connect_ms = cfg->timeout_s < 10.0 ? timeout_ms : 10000L;
    const char *ua = cfg->user_agent ? cfg->user_agent : "bookrank/" BOOKRANK_VERSION;
    CURL *c = f->curl;
    CURLcode rc = CURLE_OK;
    /* Each setopt's result is folded into rc: the first failure is what gets reported. */
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(c, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_NOSIGNAL, 1L); /* worker threads: no SIGALRM for DNS timeouts */
    SET(CURLOPT_ERRORBUFFER, f->errbuf);
    /* Redirects are followed here, hop by hop, so that each target is checked (scr_fetch). */
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, f);
    SET(CURLOPT_ACCEPT_ENCODING, ""); /* every encoding this libcurl can decode */
    SET(CURLOPT_TIMEOUT_MS, timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    SET(CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_LIMIT);
    SET(CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME);
    /* Content-Length over the cap is refused before the body; the write callback catches the
     * rest (chunked, compressed, lying lengths). */
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SCR_MAX_PAGE);
    SET(CURLOPT_USERAGENT, ua);
    /* "" disables proxies, including the http_proxy/https_proxy environment variables. */
    SET(CURLOPT_PROXY, cfg->proxy ? cfg->proxy : "");
    f->via_proxy = cfg->proxy && *cfg->proxy;
    /* Test knob: "host:port:address" entries as curl --resolve takes them, so tests can give a
     * template a name that points at the fixture store. */
    const char *resolve = getenv("BOOKRANK_TEST_RESOLVE");
    if (resolve && *resolve) {
        f->resolve = curl_slist_append(NULL, resolve);
        if (!f->resolve) {
            *err = strdup("out of memory");
            goto fail;
        }
        SET(CURLOPT_RESOLVE, f->resolve);
    }
    /* Test knob: a CA bundle to trust instead of the system's, so tests can run an https store
     * with a throwaway certificate. It only adds trust in what the file names; verification
     * stays on. */
    const char *ca_file = getenv("BOOKRANK_TEST_CA_FILE");
    if (ca_file && *ca_file)
        SET(CURLOPT_CAINFO, ca_file);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, f);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, f);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, f);
    SET(CURLOPT_NOPROGRESS, 0L);
#undef SET
    if (rc != CURLE_OK) {
        *err = buf_strdup_printf("libcurl option: %s", curl_easy_strerror(rc));
        goto fail;
    }
    return f;

fail:
    scr_fetcher_free(f);
    return NULL;
}

void scr_fetcher_free(scr_fetcher *f)
{
    if (!f)
        return;
    if (f->curl)
        curl_easy_cleanup(f->curl);
    if (f->multi)
        curl_multi_cleanup(f->multi);
    curl_slist_free_all(f->language);
    curl_slist_free_all(f->resolve);
    buf_free(&f->body);
    free(f);
}

int scr_fetch_retryable(scr_fetch_err err)
{
    return err == FETCH_TIMEOUT || err == FETCH_CONNECT;
}

static void set_error(scr_fetch_result *out, scr_fetch_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(scr_fetch_result *out, scr_fetch_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(out->why, sizeof out->why, fmt, ap) < 0)
        out->why[0] = '\0';
    va_end(ap);
    out->err = err;
}

/* The content codings this libcurl decodes, which CURLOPT_ACCEPT_ENCODING "" asks for. */
static void accepted_encodings(char *out, size_t len)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    int z = v && (v->features & CURL_VERSION_LIBZ), b = v && (v->features & CURL_VERSION_BROTLI);
#ifdef CURL_VERSION_ZSTD
    int zs = v && (v->features & CURL_VERSION_ZSTD);
#else
    int zs = 0;
#endif
    if (snprintf(out, len, "%s%s%s", z ? "gzip, deflate" : "", b ? (z ? ", br" : "br") : "",
                 zs ? (z || b ? ", zstd" : "zstd") : "") < 0 ||
        !out[0])
        snprintf(out, len, "%s", "no compression");
}

/* The first coding of an answer's Content-Encoding that is not one we asked for ("identity"
 * needs no decoding), copied into out; 0 when every coding is one we take. */
static int unasked_encoding(const char *encoding, const char *accepted, char *out, size_t len)
{
    const char *p = encoding;
    while (*p) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, " ,");
        if (n == 0)
            break;
        const char *name = p;
        size_t len_name = n;
        if (n == 6 && strncmp(p, "x-gzip", 6) == 0)
            name += 2, len_name = 4; /* an old spelling libcurl takes as gzip */
        int known = n == 8 && strncmp(p, "identity", 8) == 0;
        for (const char *a = accepted; !known && *a;) {
            a += strspn(a, " ,");
            size_t m = strcspn(a, " ,");
            known = m == len_name && strncmp(a, name, m) == 0;
            a += m;
        }
        if (!known) {
            snprintf(out, len, "%.*s", (int)n, p);
            return 1;
        }
        p += n;
    }
    return 0;
}

/* A page whose compression could not be undone: a coding we never asked for, or damaged data
 * in one we did. */
static void encoding_error(scr_fetcher *f, const char *detail, scr_fetch_result *out)
{
    char accepted[64], unasked[64];
    accepted_encodings(accepted, sizeof accepted);
    if (f->encoding[0] && unasked_encoding(f->encoding, accepted, unasked, sizeof unasked))
        set_error(out, FETCH_OTHER,
                  "the store sent the page as Content-Encoding: %s, which we did not ask for "
                  "(we take %s)",
                  unasked, accepted);
    else if (f->encoding[0])
        set_error(out, FETCH_OTHER,
                  "the page's %s-compressed data is damaged and cannot be decompressed (%s)",
                  f->encoding, detail);
    else
        set_error(out, FETCH_OTHER, "the page's compression cannot be undone: %s", detail);
}

/* Turns a libcurl failure into one of our classes and a message a user can act on. */
static void classify(scr_fetcher *f, CURLcode rc, scr_fetch_result *out)
{
    const char *detail = f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_OK:
        out->err = FETCH_OK;
        out->why[0] = '\0';
        break;
    case CURLE_ABORTED_BY_CALLBACK:
        set_error(out, FETCH_ABORTED, "aborted: shutting down");
        break;
    case CURLE_FILESIZE_EXCEEDED:
        set_error(out, FETCH_TOO_BIG, "page larger than 8 MiB");
        break;
    case CURLE_WRITE_ERROR:
        if (f->too_big)
            set_error(out, FETCH_TOO_BIG, "page larger than 8 MiB");
        else if (f->nomem)
            set_error(out, FETCH_NOMEM, "out of memory");
        else if (strstr(detail, "ncoding") || strstr(detail, "ecompress"))
            encoding_error(f, detail, out);
        else
            set_error(out, FETCH_OTHER, "write error: %s", detail);
        break;
    case CURLE_OUT_OF_MEMORY:
        set_error(out, FETCH_NOMEM, "out of memory");
        break;
    case CURLE_OPERATION_TIMEDOUT:
        if (f->connect_timed_out)
            set_error(out, FETCH_TIMEOUT, "connect timeout after %g s",
                      f->timeout_s < 10.0 ? f->timeout_s : 10.0);
        else if (strstr(f->errbuf, "too slow"))
            set_error(out, FETCH_TIMEOUT, "transfer too slow (under %ld bytes/s for %ld s)",
                      LOW_SPEED_LIMIT, LOW_SPEED_TIME);
        else if (strncmp(f->errbuf, "Connection time", 15) == 0 ||
                 strncmp(f->errbuf, "Failed to connect", 17) == 0)
            set_error(out, FETCH_TIMEOUT, "connect timeout after %g s",
                      f->timeout_s < 10.0 ? f->timeout_s : 10.0);
        else
            set_error(out, FETCH_TIMEOUT, "timeout after %g s", f->timeout_s);
        break;
    case CURLE_TOO_MANY_REDIRECTS:
        set_error(out, FETCH_REDIRECTS, "too many redirects");
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        set_error(out, FETCH_CONNECT, "could not resolve host");
        break;
    case CURLE_COULDNT_RESOLVE_PROXY:
        set_error(out, FETCH_CONNECT, "could not resolve proxy");
        break;
    case CURLE_COULDNT_CONNECT:
        if (f->refused_addr[0])
            set_error(out, FETCH_REFUSED,
                      "refused to connect to %s: not a public address, and the "
                      "source's URL does not point there",
                      f->refused_addr);
        else
            set_error(out, FETCH_CONNECT, "could not connect: %s", detail);
        break;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        set_error(out, FETCH_CONNECT, "connection reset");
        break;
    case CURLE_PARTIAL_FILE:
        set_error(out, FETCH_CONNECT, "connection closed before the whole page arrived");
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
        if (strstr(detail, "HTTP/0.9"))
            set_error(out, FETCH_OTHER, "the store answered without HTTP headers (HTTP/0.9)");
        else
            set_error(out, FETCH_OTHER, "unsupported protocol (http and https only)");
        break;
    case CURLE_BAD_CONTENT_ENCODING:
        encoding_error(f, detail, out);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
        set_error(out, FETCH_OTHER, "the store's TLS certificate is not trusted: %s", detail);
        break;
    case CURLE_SSL_CONNECT_ERROR:
        set_error(out, FETCH_OTHER, "TLS handshake with the store failed: %s", detail);
        break;
    case CURLE_SSL_CACERT_BADFILE:
        set_error(out, FETCH_OTHER, "cannot read the CA certificates to check the store's: %s",
                  detail);
        break;
    case CURLE_WEIRD_SERVER_REPLY:
        set_error(out, FETCH_OTHER, "the store's answer is not valid HTTP: %s", detail);
        break;
    default:
        set_error(out, FETCH_OTHER, "fetch failed: %s", detail);
        break;
    }
}

/*
 * curl_easy_perform's loop, run on our own multi handle so that scr_fetcher_wake() can cut a
 * wait short: an abort takes effect at once instead of at the next progress tick.
 */
static CURLcode perform(scr_fetcher *f)
{
    CURLcode rc = CURLE_ABORTED_BY_CALLBACK;
    if (curl_multi_add_handle(f->multi, f->curl) != CURLM_OK)
        return CURLE_OUT_OF_MEMORY;
    int running = 1;
    while (!atomic_load(f->abort_flag)) {
        if (curl_multi_perform(f->multi, &running) != CURLM_OK) {
            rc = CURLE_OUT_OF_MEMORY;
            break;
        }
        if (!running) {
            int left;
            CURLMsg *msg = curl_multi_info_read(f->multi, &left);
            rc = msg && msg->msg == CURLMSG_DONE ? msg->data.result : CURLE_RECV_ERROR;
            break;
        }
        if (curl_multi_poll(f->multi, NULL, 0, 1000, NULL) != CURLM_OK) {
            rc = CURLE_OUT_OF_MEMORY;
            break;
        }
    }
    curl_multi_remove_handle(f->multi, f->curl);
    return rc;
}

void scr_fetcher_wake(scr_fetcher *f)
{
    if (f && f->multi)
        curl_multi_wakeup(f->multi);
}

void scr_fetcher_release(scr_fetcher *f)
{
    if (f->body.cap > BODY_KEEP_MAX) {
        buf_free(&f->body);
        buf_init(&f->body, SCR_MAX_PAGE);
    }
}

/* A URL as a message may show it: printable ASCII, cut with "..." to fit out. */
static void url_for_message(const char *url, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = url; *p && n + 4 < outlen; p++)
        out[n++] = (*p > 0x20 && *p < 0x7f) ? *p : '?';
    if (url[n] && n + 3 < outlen)
        for (int i = 0; i < 3; i++)
            out[n++] = '.';
    out[n] = '\0';
}

/* Sets the Accept-Language header for this fetch (kept while the language stays the same). */
static CURLcode set_language(scr_fetcher *f, const char *lang)
{
    if (!lang) {
        curl_slist_free_all(f->language);
        f->language = NULL;
        f->language_value[0] = '\0';
        return curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, NULL);
    }
    if (f->language && strcmp(lang, f->language_value) == 0)
        return CURLE_OK;
    char header[160];
    if (snprintf(header, sizeof header, "Accept-Language: %s", lang) >= (int)sizeof header ||
        snprintf(f->language_value, sizeof f->language_value, "%s", lang) >=
            (int)sizeof f->language_value)
        return CURLE_BAD_FUNCTION_ARGUMENT;
    struct curl_slist *l = curl_slist_append(NULL, header);
    if (!l)
        return CURLE_OUT_OF_MEMORY;
    curl_slist_free_all(f->language);
    f->language = l;
    return curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, l);
}

#define URL_MAX 4096

scr_fetch_err scr_fetch(scr_fetcher *f, const char *url, const scr_fetch_policy *policy,
                        scr_fetch_result *out)
{
    scr_fetcher_release(f);
    f->policy = policy;
    char current[URL_MAX];
    if (snprintf(current, sizeof current, "%s", url) >= (int)sizeof current) {
        memset(out, 0, sizeof *out);
        out->body = "";
        set_error(out, FETCH_OTHER, "URL longer than %d bytes", URL_MAX);
        return out->err;
    }
    CURLcode rc = set_language(f, policy ? policy->accept_language : NULL);
    long code = 0;
    const char *refused = NULL;
    for (int hop = 0;; hop++) {
        buf_reset(&f->body);
        f->too_big = 0;
        f->nomem = 0;
        f->retry_after_s = -1;
        f->encoding[0] = '\0';
        f->errbuf[0] = '\0';
        f->refused_addr[0] = '\0';
        f->connect_timed_out = 0;
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(f->curl, CURLOPT_URL, current);
        if (rc == CURLE_OK)
            rc = perform(f);
        if (rc == CURLE_OPERATION_TIMEDOUT) {
            curl_off_t connected = 0;
            f->connect_timed_out = curl_easy_getinfo(f->curl, CURLINFO_CONNECT_TIME_T,
                                                     &connected) == CURLE_OK &&
                                   connected == 0;
        }
        code = 0;
        if (curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
            code = 0;
        char *next = NULL;
        if (rc != CURLE_OK || code < 300 || code > 399 ||
            curl_easy_getinfo(f->curl, CURLINFO_REDIRECT_URL, &next) != CURLE_OK || !next)
            break;
        if (hop == (int)FETCH_MAX_REDIRECTS) {
            rc = CURLE_TOO_MANY_REDIRECTS;
            break;
        }
        if ((refused = redirect_problem(policy, current, next)) != NULL) {
            char shown[96];
            url_for_message(next, shown, sizeof shown);
            out->http_status = (int)code;
            out->retry_after_s = -1;
            out->body = "";
            out->len = 0;
            set_error(out, FETCH_REFUSED, "%s (%s) not followed", refused, shown);
            return out->err;
        }
        if (snprintf(current, sizeof current, "%s", next) >= (int)sizeof current) {
            rc = CURLE_URL_MALFORMAT;
            break;
        }
    }
    out->http_status = (int)code;
    out->retry_after_s = f->retry_after_s;
    out->body = f->body.data ? f->body.data : "";
    out->len = f->body.len;
    classify(f, rc, out);
    return out->err;
}
