/*
 * send.c - one message to one target over libcurl: HTTP POSTs for webhooks and chat services,
 * SMTP for mail. Every attempt has a timeout, follows no redirect, and reports what happened in
 * words a user can act on ("HTTP 404 from the webhook", "the mail server refused the sender").
 */
#include "../common/buf.h"
#include "notify.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../alerts/alerts.h"
#include "../common/timeutil.h"
#include "../render/render.h"

#ifndef BOOKRANK_VERSION
#define BOOKRANK_VERSION "dev"
#endif

#define RESPONSE_MAX 4096 /* what is kept of a target's answer, for messages */

struct notify_sender {
    const notify_config *cfg;
    CURL *curl;
    buf response;
    char errbuf[CURL_ERROR_SIZE];
};

const char *notify_strerror(notify_err err)
{
    switch (err) {
    case NOTIFY_OK:
        return "sent";
    case NOTIFY_FAILED:
        return "not delivered";
    case NOTIFY_CONFIG:
        return "cannot be sent as configured";
    case NOTIFY_NOMEM:
        return "out of memory";
    }
    return "unknown error";
}

notify_sender *notify_sender_new(const notify_config *cfg, char **err)
{
    notify_sender *s = calloc(1, sizeof *s);
    if (!s || !(s->curl = curl_easy_init())) {
        free(s);
        if (err)
            *err = strdup("out of memory");
        return NULL;
    }
    s->cfg = cfg;
    buf_init(&s->response, RESPONSE_MAX);
    return s;
}

void notify_sender_free(notify_sender *s)
{
    if (!s)
        return;
    curl_easy_cleanup(s->curl);
    buf_free(&s->response);
    free(s);
}

static size_t on_response(char *data, size_t size, size_t nmemb, void *userdata)
{
    notify_sender *s = userdata;
    size_t n = size * nmemb;
    /* Only the start of an answer is kept; the rest is read and dropped. */
    if (s->response.len < RESPONSE_MAX - 1)
        (void)buf_append(
            &s->response, data,
            n < RESPONSE_MAX - 1 - s->response.len ? n : RESPONSE_MAX - 1 - s->response.len);
    return n;
}

typedef struct upload {
    const char *data;
    size_t len, at;
} upload;

static size_t on_read(char *out, size_t size, size_t nmemb, void *userdata)
{
    upload *u = userdata;
    size_t room = size * nmemb, left = u->len - u->at;
    size_t n = left < room ? left : room;
    memcpy(out, u->data + u->at, n);
    u->at += n;
    return n;
}

/* Options every attempt shares. */
static CURLcode common_options(notify_sender *s)
{
    CURL *c = s->curl;
    curl_easy_reset(c);
    buf_reset(&s->response);
    s->errbuf[0] = '\0';
    long timeout_ms = (long)((s->cfg->timeout_s > 0 ? s->cfg->timeout_s : 10.0) * 1000.0);
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(c, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, s->errbuf);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_USERAGENT, s->cfg->user_agent ? s->cfg->user_agent : "bookrank/" BOOKRANK_VERSION);
    SET(CURLOPT_WRITEFUNCTION, on_response);
    SET(CURLOPT_WRITEDATA, s);
#undef SET
    return rc;
}

/* Runs the prepared transfer; NOTIFY_OK for a 2xx answer (HTTP) or an accepted mail. */
static notify_err perform(notify_sender *s, const char *what, int http, char *why, size_t whylen)
{
    CURLcode rc = curl_easy_perform(s->curl);
    if (rc != CURLE_OK) {
        why_printf(why, whylen, "%s: %s", what, s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc));
        return rc == CURLE_OUT_OF_MEMORY ? NOTIFY_NOMEM : NOTIFY_FAILED;
    }
    if (!http)
        return NOTIFY_OK;
    long code = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code <= 299)
        return NOTIFY_OK;
    why_printf(why, whylen, "%s answered HTTP %ld", what, code);
    return NOTIFY_FAILED;
}

static notify_err post(notify_sender *s, const char *url, const char *what, const char *type,
                       const char *body, size_t len, struct curl_slist *extra, char *why,
                       size_t whylen)
{
    char ctype[64];
    if (snprintf(ctype, sizeof ctype, "Content-Type: %s", type) >= (int)sizeof ctype)
        return NOTIFY_CONFIG;
    struct curl_slist *headers = curl_slist_append(extra, ctype);
    if (!headers) {
        curl_slist_free_all(extra);
        return NOTIFY_NOMEM;
    }
    CURLcode rc = common_options(s);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_URL, url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, headers);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, body);
    notify_err e;
    if (rc != CURLE_OK) {
        why_printf(why, whylen, "%s: %s", what, curl_easy_strerror(rc));
        e = NOTIFY_CONFIG;
    } else {
        e = perform(s, what, 1, why, whylen);
    }
    curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    return e;
}

/* Appends a header line to *list (kept on failure: the caller frees). */
static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    char line[512];
    if (snprintf(line, sizeof line, "%s: %s", name, value) >= (int)sizeof line)
        return -1;
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return -1;
    *list = l;
    return 0;
}

static notify_err send_webhook(notify_sender *s, const char *url, const notify_message *m,
                               char *why, size_t whylen)
{
    struct curl_slist *h = NULL;
    char signature[NOTIFY_SIGNATURE_LEN];
    if (add_header(&h, "X-Bookrank-Event", m->event_id ? m->event_id : "")) {
        curl_slist_free_all(h);
        return NOTIFY_NOMEM;
    }
    if (s->cfg->secret && *s->cfg->secret) {
        notify_sign(s->cfg->secret, m->json, m->json_len, signature);
        if (add_header(&h, "X-Bookrank-Signature", signature)) {
            curl_slist_free_all(h);
            return NOTIFY_NOMEM;
        }
    }
    return post(s, url, "the webhook", "application/json", m->json, m->json_len, h, why, whylen);
}

static notify_err send_chat(notify_sender *s, const char *url, const char *key, const char *what,
                            const notify_message *m, char *why, size_t whylen)
{
    buf body;
    buf_init(&body, (size_t)1 << 20);
    /* Discord refuses messages over 2,000 characters; Slack cuts long ones itself. */
    if (render_text_payload(&body, key, m->text, strcmp(key, "content") == 0 ? 2000 : 40000) !=
        BUF_OK) {
        buf_free(&body);
        return NOTIFY_NOMEM;
    }
    notify_err e = post(s, url, what, "application/json", body.data, body.len, NULL, why, whylen);
    buf_free(&body);
    return e;
}

/* An RFC 2047 encoded-word for a header value that is not plain ASCII ("=?UTF-8?B?...?="). */
static int header_word(buf *out, const char *value)
{
    int ascii = 1;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if (*p >= 0x80 || *p < 0x20)
            ascii = 0;
    if (ascii)
        return buf_append_str(out, value);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *v = (const unsigned char *)value;
    size_t n = strlen(value);
    int rc = buf_append_str(out, "=?UTF-8?B?");
    for (size_t i = 0; rc == BUF_OK && i < n; i += 3) {
        unsigned x = (unsigned)v[i] << 16 | (i + 1 < n ? (unsigned)v[i + 1] << 8 : 0) |
                     (i + 2 < n ? v[i + 2] : 0);
        char q[4] = {b64[x >> 18 & 63], b64[x >> 12 & 63], i + 1 < n ? b64[x >> 6 & 63] : '=',
                     i + 2 < n ? b64[x & 63] : '='};
        rc = buf_append(out, q, 4);
    }
    return rc == BUF_OK ? buf_append_str(out, "?=") : rc;
}

static notify_err send_ntfy(notify_sender *s, const char *url, const notify_message *m, char *why,
                            size_t whylen)
{
    struct curl_slist *h = NULL;
    buf title;
    buf_init(&title, 1024);
    int rc = header_word(&title, m->subject ? m->subject : "bookrank");
    if (rc != BUF_OK || add_header(&h, "Title", title.data) || add_header(&h, "Tags", "books")) {
        buf_free(&title);
        curl_slist_free_all(h);
        return NOTIFY_NOMEM;
    }
    buf_free(&title);
    const char *text = m->text ? m->text : "";
    return post(s, url, "ntfy", "text/plain; charset=utf-8", text, strlen(text), h, why, whylen);
}

static notify_err send_mail(notify_sender *s, const char *to, const notify_message *m, char *why,
                            size_t whylen)
{
    const notify_config *cfg = s->cfg;
    if (!cfg->smtp_url || !*cfg->smtp_url || !cfg->smtp_from || !*cfg->smtp_from) {
        why_printf(why, whylen, "mail needs --smtp and --smtp-from");
        return NOTIFY_CONFIG;
    }
    buf msg;
    buf_init(&msg, (size_t)1 << 20);
    if (notify_mail_compose(&msg, cfg->smtp_from, to, m->subject ? m->subject : "bookrank",
                            m->event_id, m->text ? m->text : "", time_now_ms()) != BUF_OK) {
        buf_free(&msg);
        return NOTIFY_NOMEM;
    }
    char from[512], rcpt[512];
    struct curl_slist *rcpts = NULL;
    upload u = {.data = msg.data, .len = msg.len};
    notify_err e = NOTIFY_NOMEM;
    if (snprintf(from, sizeof from, "<%s>", cfg->smtp_from) >= (int)sizeof from ||
        snprintf(rcpt, sizeof rcpt, "<%s>", to) >= (int)sizeof rcpt ||
        !(rcpts = curl_slist_append(NULL, rcpt)))
        goto done;
    int creds = cfg->smtp_user && *cfg->smtp_user;
    int implicit_tls = strncasecmp(cfg->smtp_url, "smtps://", 8) == 0;
    CURLcode rc = common_options(s);
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(s->curl, opt, val);                                              \
    } while (0)
    SET(CURLOPT_URL, cfg->smtp_url);
    SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    SET(CURLOPT_MAIL_FROM, from);
    SET(CURLOPT_MAIL_RCPT, rcpts);
    SET(CURLOPT_READFUNCTION, on_read);
    SET(CURLOPT_READDATA, &u);
    SET(CURLOPT_UPLOAD, 1L);
    /* STARTTLS whenever the server offers it; required when a password would otherwise travel
     * in the clear. smtps:// is TLS from the first byte. */
    if (!implicit_tls)
        SET(CURLOPT_USE_SSL, creds ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
    if (creds) {
        SET(CURLOPT_USERNAME, cfg->smtp_user);
        SET(CURLOPT_PASSWORD, cfg->smtp_password ? cfg->smtp_password : "");
    }
    if (cfg->smtp_ca_file && *cfg->smtp_ca_file)
        SET(CURLOPT_CAINFO, cfg->smtp_ca_file);
#undef SET
    if (rc != CURLE_OK) {
        why_printf(why, whylen, "mail: %s", curl_easy_strerror(rc));
        e = NOTIFY_CONFIG;
    } else {
        e = perform(s, "the mail server", 0, why, whylen);
    }
done:
    curl_easy_setopt(s->curl, CURLOPT_MAIL_RCPT, NULL);
    curl_slist_free_all(rcpts);
    buf_free(&msg);
    return e;
}

notify_err notify_send(notify_sender *s, const char *target, const notify_message *m, char *why,
                       size_t whylen)
{
    alert_target_kind kind;
    const char *rest;
    why_printf(why, whylen, "%s", "");
    if (alert_target_parse(target, &kind, &rest, why, whylen) != 0)
        return NOTIFY_CONFIG;
    switch (kind) {
    case TARGET_WEBHOOK:
        return send_webhook(s, rest, m, why, whylen);
    case TARGET_SLACK:
        return send_chat(s, rest, "text", "Slack", m, why, whylen);
    case TARGET_DISCORD:
        return send_chat(s, rest, "content", "Discord", m, why, whylen);
    case TARGET_NTFY:
        return send_ntfy(s, rest, m, why, whylen);
    case TARGET_MAILTO:
        return send_mail(s, rest, m, why, whylen);
    case TARGET_KIND_COUNT:
        break;
    }
    return NOTIFY_CONFIG;
}
