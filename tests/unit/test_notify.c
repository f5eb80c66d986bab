/* test_notify.c - what notify/ builds without a network: webhook signatures (RFC 4231 vectors),
 * mail text (headers, encoded subjects, no header injection, CRLF), chat payloads. Delivery
 * itself is tested against real receivers on loopback in tests/integration/test_alerts.py. */
#include <stdio.h>
#include <string.h>

#include "../../notify/notify.h"
#include "../../render/render.h"
#include "../lib/check.h"

int main(void)
{
    char sig[NOTIFY_SIGNATURE_LEN];
    notify_sign("Jefe", "what do ya want for nothing?", 28, sig);
    CHECK_STR(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
              "HMAC-SHA256, RFC 4231 test case 2");
    notify_sign("key", "", 0, sig);
    CHECK_STR(sig, "sha256=5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0",
              "HMAC-SHA256 of an empty body");

    buf m;
    buf_init(&m, 1 << 16);
    CHECK_INT(notify_mail_compose(&m, "bookrank@example.org",
                                  "author@example.org\r\nBcc: x@evil.example",
                                  "'Core Python' is now #812 on amazon.com", "ev-1",
                                  "line one\nline two\r\n.dot line", 1764000000000),
              BUF_OK, "mail composes");
    CHECK(strstr(m.data, "Date: Mon, 24 Nov 2025 16:00:00 +0000\r\n") != NULL, "Date header");
    CHECK(strstr(m.data, "\r\nTo: author@example.orgBcc: x@evil.example\r\n") != NULL &&
              !strstr(m.data, "\r\nBcc:"),
          "CR and LF in a header value cannot add a header");
    CHECK(strstr(m.data, "\r\nSubject: 'Core Python' is now #812 on amazon.com\r\n") != NULL,
          "an ASCII subject is kept as it is");
    CHECK(strstr(m.data, "Message-ID: <ev-1@bookrank>") != NULL, "the event id is the Message-ID");
    CHECK(strstr(m.data, "Content-Type: text/plain; charset=utf-8\r\n") != NULL,
          "UTF-8 plain text");
    CHECK(strstr(m.data, "\r\n\r\nline one\r\nline two\r\n.dot line\r\n") != NULL,
          "body lines end with CRLF");

    buf_reset(&m);
    CHECK_INT(notify_mail_compose(&m, "a@b.example", "c@d.example",
                                  "'B\xc3\xbc"
                                  "cher f\xc3\xbcr alle' is now #3 on amazon.de",
                                  "e2", "x", 0),
              BUF_OK, "mail with a UTF-8 subject composes");
    CHECK(strstr(m.data, "Subject: =?UTF-8?B?") != NULL, "a UTF-8 subject is an RFC 2047 word");
    buf_free(&m);

    buf p;
    buf_init(&p, 1 << 16);
    CHECK_INT(render_text_payload(&p, "content", "'A \"quoted\" <b>' is now #1", 2000), BUF_OK,
              "payload");
    CHECK_STR(p.data, "{\"content\":\"'A \\\"quoted\\\" \\u003cb\\u003e' is now #1\"}",
              "a chat payload is JSON");
    buf_reset(&p);
    char long_text[3000];
    memset(long_text, 'x', sizeof long_text - 3);
    memcpy(long_text + sizeof long_text - 3, "\xc3\xa9", 3);
    CHECK_INT(render_text_payload(&p, "content", long_text, 2000), BUF_OK, "long payload");
    CHECK(p.len <= 2000 + 20 && strstr(p.data, "\xe2\x80\xa6\"}") != NULL,
          "cut to the limit with an ellipsis");
    buf_free(&p);
    CHECK_STR(notify_strerror(NOTIFY_CONFIG), "cannot be sent as configured", "strerror");
    return check_done();
}
