/* mail.c - the RFC 5322 text of an alert mail, and the HMAC signature of webhook bodies. */
#include "notify.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void notify_sign(const char *secret, const char *body, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    memcpy(out, "sha256=", 7);
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, mac, &n))
        n = 0;
    for (unsigned int i = 0; i < n && i < 32; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[8 + 2 * i] = hex[mac[i] & 15];
    }
    out[7 + 2 * (n < 32 ? n : 32)] = '\0';
}

/* A header value with CR, LF and other controls dropped. */
static int header_value(buf *out, const char *v)
{
    int rc = BUF_OK;
    for (const unsigned char *p = (const unsigned char *)v; rc == BUF_OK && *p; p++)
        if (*p >= 0x20 && *p != 0x7f)
            rc = buf_append(out, p, 1);
    return rc;
}

/* Subject as an RFC 2047 encoded-word when it is not plain ASCII (base64, one word per 45 bytes
 * of text so that encoded lines stay under 78 characters). */
static int subject_value(buf *out, const char *subject)
{
    int ascii = 1;
    for (const unsigned char *p = (const unsigned char *)subject; *p; p++)
        if (*p >= 0x80)
            ascii = 0;
    if (ascii)
        return header_value(out, subject);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    buf clean;
    buf_init(&clean, 4096);
    int rc = header_value(&clean, subject);
    const unsigned char *v = (const unsigned char *)(clean.data ? clean.data : "");
    size_t n = clean.len, i = 0;
    while (rc == BUF_OK && i < n) {
        /* A word ends on a character boundary: never split a UTF-8 sequence. */
        size_t end = i + 45 < n ? i + 45 : n;
        while (end < n && end > i && (v[end] & 0xc0) == 0x80)
            end--;
        rc = buf_append_str(out, i ? "\r\n =?UTF-8?B?" : "=?UTF-8?B?");
        for (size_t k = i; rc == BUF_OK && k < end; k += 3) {
            unsigned x = (unsigned)v[k] << 16 | (k + 1 < end ? (unsigned)v[k + 1] << 8 : 0) |
                         (k + 2 < end ? v[k + 2] : 0);
            char q[4] = {b64[x >> 18 & 63], b64[x >> 12 & 63], k + 1 < end ? b64[x >> 6 & 63] : '=',
                         k + 2 < end ? b64[x & 63] : '='};
            rc = buf_append(out, q, 4);
        }
        if (rc == BUF_OK)
            rc = buf_append_str(out, "?=");
        i = end;
    }
    buf_free(&clean);
    return rc;
}

int notify_mail_compose(buf *out, const char *from, const char *to, const char *subject,
                        const char *message_id, const char *body, int64_t now_ms)
{
    char date[64];
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm))
        date[0] = '\0';
    int rc = buf_printf(out, "Date: %s\r\nFrom: ", date);
    rc = rc ? rc : header_value(out, from);
    rc = rc ? rc : buf_append_str(out, "\r\nTo: ");
    rc = rc ? rc : header_value(out, to);
    rc = rc ? rc : buf_append_str(out, "\r\nSubject: ");
    rc = rc ? rc : subject_value(out, subject);
    rc = rc ? rc : buf_append_str(out, "\r\nMessage-ID: <");
    rc = rc ? rc : header_value(out, message_id && *message_id ? message_id : "alert");
    rc = rc ? rc
            : buf_append_str(out, "@bookrank>\r\nMIME-Version: 1.0\r\n"
                                  "Content-Type: text/plain; charset=utf-8\r\n"
                                  "Content-Transfer-Encoding: 8bit\r\n"
                                  "Auto-Submitted: auto-generated\r\n\r\n");
    /* Body lines end with CRLF; a bare LF in the text becomes one. */
    for (const char *p = body; rc == BUF_OK && *p; p++) {
        if (*p == '\n' && (p == body || p[-1] != '\r'))
            rc = buf_append(out, "\r\n", 2);
        else if (*p != '\r' || p[1] == '\n')
            rc = buf_append(out, p, 1);
    }
    return rc ? rc : buf_append_str(out, "\r\n");
}
