/* fetch.c - GETs over one reused libcurl easy handle, with every per-request limit applied. */
#include "fetch.h"

#include <curl/curl.h>
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
    CURL *curl;
    CURLM *multi;           /* drives curl; owns the kept-alive connections; wakeable */
    const atomic_int *abort_flag;
    double timeout_s;
    buf body;               /* the answer being received, capped at SCR_MAX_PAGE */
    int too_big, nomem;     /* why the write callback refused data */
    double retry_after_s;   /* from the current answer's headers, -1 when none */
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
    size_t name_len = sizeof name - 1;

    if (n >= 5 && strncasecmp(data, "HTTP/", 5) == 0) {
        /* A new answer (after a redirect or a 100 Continue): forget the previous one's. */
        buf_reset(&f->body);
        f->retry_after_s = -1;
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
#define SET(opt, val) \
    do { \
        if (rc == CURLE_OK) \
            rc = curl_easy_setopt(c, opt, val); \
    } while (0)
    SET(CURLOPT_NOSIGNAL, 1L);               /* worker threads: no SIGALRM for DNS timeouts */
    SET(CURLOPT_ERRORBUFFER, f->errbuf);
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, FETCH_MAX_REDIRECTS);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_ACCEPT_ENCODING, "");        /* every encoding this libcurl can decode */
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
        else
            set_error(out, FETCH_OTHER, "write error: %s", detail);
        break;
    case CURLE_OUT_OF_MEMORY:
        set_error(out, FETCH_NOMEM, "out of memory");
        break;
    case CURLE_OPERATION_TIMEDOUT:
        if (strstr(f->errbuf, "too slow"))
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
        set_error(out, FETCH_OTHER, "unsupported protocol (http and https only)");
        break;
    case CURLE_BAD_CONTENT_ENCODING:
        set_error(out, FETCH_OTHER, "bad content encoding");
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

scr_fetch_err scr_fetch(scr_fetcher *f, const char *url, scr_fetch_result *out)
{
    scr_fetcher_release(f);
    buf_reset(&f->body);
    f->too_big = 0;
    f->nomem = 0;
    f->retry_after_s = -1;
    f->errbuf[0] = '\0';

    CURLcode rc = curl_easy_setopt(f->curl, CURLOPT_URL, url);
    if (rc == CURLE_OK)
        rc = perform(f);

    long code = 0;
    if (curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
        code = 0;
    out->http_status = (int)code;
    out->retry_after_s = f->retry_after_s;
    out->body = f->body.data ? f->body.data : "";
    out->len = f->body.len;
    classify(f, rc, out);
    return out->err;
}
