/*
 * notify.h - sending alert messages to their targets (SPEC §5): webhook (the event JSON, signed
 * with HMAC-SHA256 when a secret is set), Slack, Discord and ntfy (each in its own message
 * shape), and mail through libcurl's SMTP (smtp:// with STARTTLS when the server offers it, and
 * required when credentials are given; smtps://).
 *
 * notify/ owns this use of libcurl (the scraper owns the other) and OpenSSL's libcrypto for the
 * signature. The delivery loop (deliver.c) reads the store's outbox after each commit, sends what
 * is due with timeouts, and records the outcome with the retry schedule; it runs on its own
 * thread and never blocks fetching or HTTP threads.
 *
 * Threads: a notify_sender belongs to one thread (it keeps a curl handle). notify_sign() and
 * notify_mail_compose() are pure: any thread.
 */
#ifndef BOOKRANK_NOTIFY_H
#define BOOKRANK_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/compiler.h"

typedef struct notify_config {
    const char *smtp_url;  /* "smtp://host:port" or "smtps://host:port"; NULL: no mail */
    const char *smtp_from; /* envelope and From address */
    const char *smtp_user; /* credentials (from BOOKRANK_SMTP_USER/_PASSWORD); NULL: none */
    const char *smtp_password;
    const char *smtp_ca_file; /* a CA bundle to trust for a private mail server; NULL: system */
    const char *secret;       /* --notify-secret; NULL: webhook posts are not signed */
    double timeout_s;         /* per attempt, default 10 */
    const char *user_agent;   /* NULL: "bookrank/VERSION" */
} notify_config;

/* One message to one target. For a batch (several events for one target and rule kind within a
 * minute), json is {"batch": true, "events": [...]} and text holds one line per event. */
typedef struct notify_message {
    const char *event_id; /* X-Bookrank-Event and the mail's Message-ID */
    const char *json;     /* webhook body */
    size_t json_len;
    const char *text;    /* chat, ntfy and mail body: one line per event */
    const char *subject; /* mail subject and ntfy title: title and rank */
} notify_message;

typedef enum notify_err {
    NOTIFY_OK = 0,
    NOTIFY_FAILED, /* the target refused or could not be reached: try again later */
    NOTIFY_CONFIG, /* cannot be sent as configured (mail without --smtp): no retry */
    NOTIFY_NOMEM
} notify_err;
const char *notify_strerror(notify_err err);

typedef struct notify_sender notify_sender;

/* A sender with its own curl handle; cfg's strings are borrowed and must outlive it. NULL with a
 * malloc'd message in *err. curl_global_init must have run (scr_global_init). */
BR_MUST_CHECK notify_sender *notify_sender_new(const notify_config *cfg, char **err);
void notify_sender_free(notify_sender *s);

/* Sends m to target ("webhook:URL", "slack:URL", "discord:URL", "ntfy:URL", "mailto:ADDR"),
 * waiting at most the configured timeout. What went wrong goes into why[0..whylen). */
BR_MUST_CHECK notify_err notify_send(notify_sender *s, const char *target, const notify_message *m,
                                     char *why, size_t whylen);

/* "sha256=" and the lower-case hex HMAC-SHA256 of body with secret, into out (at least
 * NOTIFY_SIGNATURE_LEN bytes). */
#define NOTIFY_SIGNATURE_LEN (7 + 64 + 1)
void notify_sign(const char *secret, const char *body, size_t len, char *out);

/* The RFC 5322 message for a mail: Date, From, To, Subject (RFC 2047 when not ASCII),
 * Message-ID, MIME headers for UTF-8 plain text, CRLF line ends, then the body. Header values
 * are stripped of CR and LF, so no text can add a header. */
BR_MUST_CHECK int notify_mail_compose(buf *out, const char *from, const char *to,
                                      const char *subject, const char *message_id, const char *body,
                                      int64_t now_ms);

/* ---- the delivery loop (deliver.c) ---------------------------------------------------------
 * One thread with its own store connection and sender: it sends what is due in the outbox after
 * each commit (notify_deliverer_wake), every poll_ms (rows written by another process, retries)
 * and at start (events left due by an earlier run), and records each outcome. A row is claimed
 * before its attempt, so two processes never both send it. Rows of one target and rule kind are
 * sent as one message; a target gets at most one message per storm_ms per rule kind (later rows
 * wait and go out together). A failed attempt is retried after retry_first_ms, doubling, until
 * give_up_ms after the event was created; a target that cannot be sent to as configured (mail
 * without --smtp) fails at once. Sent and failed rows older than 30 days are pruned hourly. */

typedef struct notify_deliver_config {
    const char *db_path;    /* the store (SQLite path), opened by the delivery thread */
    notify_config notify;   /* the transports; strings copied by notify_deliverer_start */
    int64_t retry_first_ms; /* first retry delay; 0 or less: 10000 (doubles each time) */
    int64_t storm_ms;       /* one message per target and rule kind this often; 0: 60000 */
    int64_t poll_ms;        /* looks at the outbox at least this often; 0: 1000 */
    int64_t give_up_ms;     /* retries stop this long after creation; 0: one day */
} notify_deliver_config;

typedef struct notify_deliverer notify_deliverer;

/* Opens the store (busy timeout 1 s) and a sender, and starts the thread, which sends what is
 * due at once. cfg is copied. NULL with a malloc'd message in *err. scr_global_init (i.e.
 * curl_global_init) must have run. */
BR_MUST_CHECK notify_deliverer *notify_deliverer_start(const notify_deliver_config *cfg,
                                                       char **err);
/* Asks for a look at the outbox now (after a commit that stored events). Cheap, never blocks on
 * the store or the network; any thread. */
void notify_deliverer_wake(notify_deliverer *dv);
/* Waits, at most timeout_ms, until the outbox holds nothing pending, or until nothing pending
 * falls due before the timeout would end; looks at the outbox first (like wake), so events
 * committed before the call count. Returns the number of rows still pending (0: all delivered
 * or given up). Any thread but the delivery thread. */
int notify_deliverer_drain(notify_deliverer *dv, int timeout_ms);
/* Stops the thread after its current attempt (at most the send timeout), closes the store and
 * frees everything. Rows not attempted stay pending for the next start. NULL is a no-op. */
void notify_deliverer_stop(notify_deliverer *dv);

#endif
