/* test_deliver.c - the delivery loop (notify/deliver.c) against a real store and a loopback HTTP
 * receiver run by this test: sent once with its id and signature, retried after a 500, events of
 * one target and kind batched within the storm window (and other kinds not held back), due events
 * sent at start after a restart, mail without --smtp failed at once, giving up after give_up_ms,
 * drain's answers, two deliverers on one store sending each event once, and log lines that name
 * the host but never a URL's path or query. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/timeutil.h"
#include "../../db/db.h"
#include "../../notify/notify.h"
#include "../../scraper/scraper.h"
#include "../lib/check.h"

/* ---- a loopback HTTP receiver: one connection at a time, answers and closes ---------------- */

#define MAX_REQS 128

typedef struct req {
    char path[256];
    char event[128];
    char signature[128];
    char *body;
    int status;
    int64_t at_ms;
} req;

typedef struct receiver {
    int fd, port;
    pthread_t thread;
    pthread_mutex_t lock;
    int stop;           /* guarded by lock */
    int fail_next;      /* guarded by lock: answer this many requests 500 */
    req reqs[MAX_REQS]; /* guarded by lock */
    int n;              /* guarded by lock */
} receiver;

static void header_value(const char *head, const char *name, char *out, size_t outlen)
{
    char key[64];
    out[0] = '\0';
    snprintf(key, sizeof key, "\r\n%s:", name);
    const char *p = strcasestr(head, key);
    if (!p)
        return;
    p += strlen(key);
    while (*p == ' ')
        p++;
    size_t len = strcspn(p, "\r\n");
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

static void write_all(int fd, const char *s)
{
    size_t len = strlen(s);
    while (len) {
        ssize_t w = write(fd, s, len);
        if (w <= 0)
            return;
        s += w;
        len -= (size_t)w;
    }
}

static void serve_one(receiver *rx, int c)
{
    struct timeval tv = {5, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t cap = 1 << 20, len = 0;
    char *data = malloc(cap + 1);
    char *end = NULL;
    int continued = 0;
    size_t want = 0;
    for (;;) {
        if (end && len >= want)
            break;
        if (len == cap)
            goto out;
        ssize_t r = read(c, data + len, cap - len);
        if (r <= 0)
            goto out;
        len += (size_t)r;
        data[len] = '\0';
        if (!end && (end = strstr(data, "\r\n\r\n"))) {
            char cl[32], expect[64];
            *end = '\0';
            header_value(data, "Content-Length", cl, sizeof cl);
            header_value(data, "Expect", expect, sizeof expect);
            want = (size_t)(end + 4 - data) + (size_t)strtoul(cl, NULL, 10);
            if (!continued && strcasecmp(expect, "100-continue") == 0) {
                continued = 1;
                write_all(c, "HTTP/1.1 100 Continue\r\n\r\n");
            }
        }
    }
    req q;
    memset(&q, 0, sizeof q);
    q.at_ms = time_now_ms();
    sscanf(data, "%*s %255s", q.path);
    header_value(data, "X-Bookrank-Event", q.event, sizeof q.event);
    header_value(data, "X-Bookrank-Signature", q.signature, sizeof q.signature);
    q.body = strndup(end + 4, want - (size_t)(end + 4 - data));
    pthread_mutex_lock(&rx->lock);
    q.status = rx->fail_next > 0 ? 500 : 200;
    if (rx->fail_next > 0)
        rx->fail_next--;
    if (rx->n < MAX_REQS)
        rx->reqs[rx->n++] = q;
    else
        free(q.body);
    pthread_mutex_unlock(&rx->lock);
    write_all(c, q.status == 200
                     ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                     : "HTTP/1.1 500 Oops\r\nContent-Length: 4\r\nConnection: "
                       "close\r\n\r\noops");
out:
    free(data);
    close(c);
}

static void *receiver_main(void *arg)
{
    receiver *rx = arg;
    for (;;) {
        pthread_mutex_lock(&rx->lock);
        int stop = rx->stop;
        pthread_mutex_unlock(&rx->lock);
        if (stop)
            break;
        struct pollfd p = {.fd = rx->fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int c = accept(rx->fd, NULL, NULL);
        if (c >= 0)
            serve_one(rx, c);
    }
    return NULL;
}

static int receiver_start(receiver *rx)
{
    memset(rx, 0, sizeof *rx);
    pthread_mutex_init(&rx->lock, NULL);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if ((rx->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        bind(rx->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(rx->fd, 16) != 0 ||
        getsockname(rx->fd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    rx->port = ntohs(a.sin_port);
    return pthread_create(&rx->thread, NULL, receiver_main, rx);
}

static void receiver_stop(receiver *rx)
{
    pthread_mutex_lock(&rx->lock);
    rx->stop = 1;
    pthread_mutex_unlock(&rx->lock);
    pthread_join(rx->thread, NULL);
    close(rx->fd);
    for (int i = 0; i < rx->n; i++)
        free(rx->reqs[i].body);
}

/* Requests whose path starts with prefix, copied into out (borrowed bodies stay in rx). */
static int requests(receiver *rx, const char *prefix, req *out, int max)
{
    int k = 0;
    pthread_mutex_lock(&rx->lock);
    for (int i = 0; i < rx->n; i++)
        if (strncmp(rx->reqs[i].path, prefix, strlen(prefix)) == 0 && k < max)
            out[k++] = rx->reqs[i];
    pthread_mutex_unlock(&rx->lock);
    return k;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until at least count requests to prefix arrived, at most timeout_ms; how many did. */
static int wait_for(receiver *rx, const char *prefix, int count, int timeout_ms, req *out, int max)
{
    int64_t deadline = time_mono_ms() + timeout_ms;
    int k;
    while ((k = requests(rx, prefix, out, max)) < count && time_mono_ms() < deadline)
        sleep_ms(10);
    return k;
}

/* ---- the store ---------------------------------------------------------------------------- */

static char tmpdir[64];

static db_err add_event(db *d, const char *uid, const char *kind, const char *target)
{
    db_alert_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.uid, sizeof ev.uid, "%s", uid);
    snprintf(ev.kind, sizeof ev.kind, "%s", kind);
    snprintf(ev.book_id, sizeof ev.book_id, "9780134685991");
    snprintf(ev.source, sizeof ev.source, "amazon.com");
    ev.rule_n = 1;
    char body[256], message[128], subject[128];
    snprintf(message, sizeof message, "'Effective Java' is now #%d on amazon.com (%s)",
             (int)strlen(uid) * 100, uid);
    snprintf(subject, sizeof subject, "'Effective Java' is now #%d", (int)strlen(uid) * 100);
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"kind\":\"%s\",\"message\":\"%s\"}", uid, kind,
             message);
    ev.body = body;
    ev.message = message;
    ev.subject = subject;
    const char *targets[] = {target};
    return db_alert_event_add(d, &ev, targets, 1);
}

/* The row of event uid for target; 0 when found (free with db_alert_events_free(out, 1)). */
static int find_row(db *d, const char *uid, const char *target, db_alert_event *out)
{
    db_alert_event *ev = NULL;
    size_t n = 0;
    int found = -1;
    if (db_alert_events_recent(d, 1000, &ev, &n) != DB_OK)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (found < 0 && strcmp(ev[i].uid, uid) == 0 && ev[i].target &&
            strcmp(ev[i].target, target) == 0) {
            *out = ev[i];
            memset(&ev[i], 0, sizeof ev[i]);
            found = 0;
        }
    }
    db_alert_events_free(ev, n);
    return found;
}

static void row_free(db_alert_event *row)
{
    free(row->target);
    free(row->body);
    free(row->message);
    free(row->subject);
    free(row->last_error);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    char *s = calloc(1, 1 << 20);
    size_t n = fread(s, 1, (1 << 20) - 1, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* A loopback port nothing listens on. */
static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
        return 9;
    close(fd);
    return ntohs(a.sin_port);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bookrank-deliver-XXXXXX");
    if (!mkdtemp(tmpdir) || scr_global_init() != 0) {
        printf("not ok - setup\n");
        return 1;
    }
    char dbpath[128], logpath[128];
    snprintf(dbpath, sizeof dbpath, "%s/store.db", tmpdir);
    snprintf(logpath, sizeof logpath, "%s/log", tmpdir);
    CHECK(log_open_file(logpath) == 0, "the log goes to a file the test reads");

    char *err = NULL;
    db *d = db_open(dbpath, &err);
    if (!CHECK(d != NULL, "store opens")) {
        printf("# %s\n", err ? err : "");
        return check_done();
    }
    receiver rx;
    if (!CHECK(receiver_start(&rx) == 0, "loopback receiver listens"))
        return check_done();

    char t_one[128], t_retry[160], t_storm[128], t_resume[128], t_down[128];
    snprintf(t_one, sizeof t_one, "webhook:http://127.0.0.1:%d/one", rx.port);
    snprintf(t_retry, sizeof t_retry, "webhook:http://127.0.0.1:%d/retry?token=SECRET", rx.port);
    snprintf(t_storm, sizeof t_storm, "webhook:http://127.0.0.1:%d/storm", rx.port);
    snprintf(t_resume, sizeof t_resume, "webhook:http://127.0.0.1:%d/resume", rx.port);
    snprintf(t_down, sizeof t_down, "webhook:http://127.0.0.1:%d/down", closed_port());
    const char *t_mail = "mailto:author@example.org";

    notify_deliver_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.db_path = dbpath;
    cfg.notify.timeout_s = 5;
    cfg.notify.secret = "s3cret";
    cfg.retry_first_ms = 50;
    cfg.storm_ms = 700;
    cfg.poll_ms = 100;

    CHECK(notify_deliverer_start(NULL, &err) == NULL && err, "no config: NULL with a message");
    free(err);
    err = NULL;
    notify_deliverer_stop(NULL);
    notify_deliverer_wake(NULL);

    /* 1. An event stored before the start is sent by the first pass, once, with its id. */
    db_err rc = add_event(d, "ev-1", "rank_better_than", t_one);
    if (!CHECK(rc == DB_OK, "event stored")) {
        printf("# %s: %s\n", db_strerror(rc), db_errmsg(d));
        return check_done();
    }
    int64_t t0 = time_mono_ms();
    notify_deliverer *dv = notify_deliverer_start(&cfg, &err);
    if (!CHECK(dv != NULL, "deliverer starts")) {
        printf("# %s\n", err ? err : "");
        return check_done();
    }
    req r[16];
    int k = wait_for(&rx, "/one", 1, 5000, r, 16);
    CHECK_INT(k, 1, "a due event is sent at start");
    CHECK(time_mono_ms() - t0 < 2000, "at once, not after a poll");
    if (k >= 1) {
        CHECK_STR(r[0].event, "ev-1", "X-Bookrank-Event carries the event id");
        CHECK(r[0].body && strstr(r[0].body, "\"id\":\"ev-1\"") && r[0].body[0] == '{',
              "the body is the stored event JSON");
        char sig[NOTIFY_SIGNATURE_LEN];
        notify_sign("s3cret", r[0].body, strlen(r[0].body), sig);
        CHECK_STR(r[0].signature, sig, "signed with the secret");
    }
    sleep_ms(400);
    CHECK_INT(requests(&rx, "/one", r, 16), 1, "sent once only");
    db_alert_event row;
    if (CHECK(find_row(d, "ev-1", t_one, &row) == 0, "its row is there")) {
        CHECK_STR(db_event_state_name(row.state), db_event_state_name(EVENT_SENT), "row is sent");
        CHECK(row.sent_at_ms > 0, "sent_at recorded");
        CHECK_INT(row.attempts, 1, "one attempt");
        row_free(&row);
    }

    /* 2. A target answering 500 gets the event again after retry_first_ms. */
    pthread_mutex_lock(&rx.lock);
    rx.fail_next = 1;
    pthread_mutex_unlock(&rx.lock);
    CHECK(add_event(d, "ev-2", "rank_better_than", t_retry) == DB_OK, "event 2 stored");
    notify_deliverer_wake(dv);
    k = wait_for(&rx, "/retry", 2, 5000, r, 16);
    CHECK_INT(k, 2, "500, then retried");
    if (k >= 2) {
        CHECK_INT(r[0].status, 500, "first answer 500");
        CHECK_INT(r[1].status, 200, "second answer 200");
        CHECK(strcmp(r[0].event, "ev-2") == 0 && strcmp(r[1].event, "ev-2") == 0,
              "both attempts carry the same id");
        CHECK(r[1].at_ms - r[0].at_ms >= 40, "the retry waits retry_first_ms");
    }
    sleep_ms(300);
    CHECK_INT(requests(&rx, "/retry", r, 16), 2, "no attempt after the success");
    if (CHECK(find_row(d, "ev-2", t_retry, &row) == 0, "row 2 is there")) {
        CHECK(row.state == EVENT_SENT, "row 2 is sent");
        CHECK_INT(row.attempts, 2, "two attempts");
        row_free(&row);
    }
    char *log = read_text(logpath);
    char where[64];
    snprintf(where, sizeof where, "webhook 127.0.0.1:%d", rx.port);
    CHECK(strstr(log, where) && strstr(log, "HTTP 500"), "the failure is logged with host and why");
    CHECK(!strstr(log, "SECRET") && !strstr(log, "/retry"), "never the URL's path or query");
    free(log);

    /* 3. Two events for one target and kind in one commit: one batch message. */
    CHECK(db_begin(d) == DB_OK, "begin");
    CHECK(add_event(d, "ev-3a", "new_best", t_storm) == DB_OK &&
              add_event(d, "ev-3b", "new_best", t_storm) == DB_OK,
          "two events stored");
    CHECK(db_commit(d) == DB_OK, "commit");
    notify_deliverer_wake(dv);
    k = wait_for(&rx, "/storm", 1, 5000, r, 16);
    CHECK_INT(k, 1, "a batch arrived");
    int64_t first_at = k ? r[0].at_ms : 0;
    if (k >= 1) {
        CHECK(r[0].body && strncmp(r[0].body, "{\"batch\":true", 13) == 0 &&
                  strstr(r[0].body, "\"id\":\"ev-3a\"") && strstr(r[0].body, "\"id\":\"ev-3b\""),
              "one message holding both events");
        CHECK_STR(r[0].event, "ev-3a+1", "the batch's id: the first event's and how many more");
    }
    /* More within storm_ms wait for the window's end and go out together; another kind to the
     * same target is not held back. */
    CHECK(add_event(d, "ev-3c", "new_best", t_storm) == DB_OK, "event 3c stored");
    CHECK(add_event(d, "ev-3e", "trouble", t_storm) == DB_OK, "event 3e stored");
    notify_deliverer_wake(dv);
    sleep_ms(150);
    CHECK(add_event(d, "ev-3d", "new_best", t_storm) == DB_OK, "event 3d stored");
    notify_deliverer_wake(dv);
    k = wait_for(&rx, "/storm", 3, 5000, r, 16);
    CHECK_INT(k, 3, "three messages to the storm target");
    if (k >= 3) {
        CHECK_STR(r[1].event, "ev-3e", "another kind is sent at once");
        CHECK(r[1].at_ms - first_at < 600, "not held by the window of the other kind");
        CHECK(r[2].body && strncmp(r[2].body, "{\"batch\":true", 13) == 0 &&
                  strstr(r[2].body, "\"id\":\"ev-3c\"") && strstr(r[2].body, "\"id\":\"ev-3d\""),
              "the two that came within the window: one batch");
        CHECK(r[2].at_ms - first_at >= 700 - 20, "not before storm_ms after the last message");
        CHECK(r[2].at_ms - first_at < 700 + 1500, "soon after the window ends");
    }
    sleep_ms(300);
    CHECK_INT(requests(&rx, "/storm", r, 16), 3, "nothing more to the storm target");

    /* 4. Stopped: nothing is sent; started again: the due event goes out at once; drain waits
     * for it. */
    notify_deliverer_stop(dv);
    CHECK(add_event(d, "ev-4", "rank_worse_than", t_resume) == DB_OK, "event 4 stored");
    sleep_ms(300);
    CHECK_INT(requests(&rx, "/resume", r, 16), 0, "nothing sent while stopped");
    dv = notify_deliverer_start(&cfg, &err);
    if (!CHECK(dv != NULL, "deliverer starts again")) {
        printf("# %s\n", err ? err : "");
        return check_done();
    }
    int64_t t1 = time_mono_ms();
    CHECK_INT(notify_deliverer_drain(dv, 5000), 0, "drain: nothing left");
    CHECK(time_mono_ms() - t1 < 3000, "drain returns when the outbox is empty");
    CHECK_INT(requests(&rx, "/resume", r, 16), 1, "the pending event was sent after the restart");

    /* 5. Mail without --smtp: failed at once with the reason, not retried. */
    CHECK(add_event(d, "ev-5", "rank_better_than", t_mail) == DB_OK, "event 5 stored");
    notify_deliverer_wake(dv);
    CHECK_INT(notify_deliverer_drain(dv, 5000), 0, "drain: a failed row is not pending");
    if (CHECK(find_row(d, "ev-5", t_mail, &row) == 0, "row 5 is there")) {
        CHECK(row.state == EVENT_FAILED, "mail without smtp: failed");
        CHECK_INT(row.attempts, 1, "after one attempt");
        CHECK(row.last_error && strstr(row.last_error, "smtp"), "with the reason");
        row_free(&row);
    }
    t1 = time_mono_ms();
    CHECK_INT(notify_deliverer_drain(dv, 5000), 0, "drain with nothing pending");
    CHECK(time_mono_ms() - t1 < 1000, "returns at once");
    notify_deliverer_stop(dv);

    /* 6. A target that never answers: retried until give_up_ms, then failed; drain returns what
     * is left when its time is up. */
    notify_deliver_config quick = cfg;
    quick.give_up_ms = 500;
    CHECK(add_event(d, "ev-6", "trouble", t_down) == DB_OK, "event 6 stored");
    dv = notify_deliverer_start(&quick, &err);
    CHECK(dv != NULL, "deliverer with a short give-up starts");
    t1 = time_mono_ms();
    CHECK_INT(notify_deliverer_drain(dv, 150), 1, "drain times out with the row still pending");
    int64_t waited = time_mono_ms() - t1;
    /* It may return a little early: when the next retry would fall after its deadline. */
    if (!CHECK(waited >= 50 && waited < 1000, "at about its timeout"))
        printf("#   waited %lld ms\n", (long long)waited);
    CHECK_INT(notify_deliverer_drain(dv, 5000), 0, "given up within the drain");
    if (CHECK(find_row(d, "ev-6", t_down, &row) == 0, "row 6 is there")) {
        CHECK(row.state == EVENT_FAILED, "failed after give_up_ms");
        CHECK(row.attempts >= 3, "after several attempts");
        CHECK(row.last_error && row.last_error[0], "with the last reason");
        row_free(&row);
    }
    notify_deliverer_stop(dv);

    /* 7. Two deliverers on one store (two processes, say): each event is sent once. */
    notify_deliverer *a = notify_deliverer_start(&cfg, &err);
    notify_deliverer *b = notify_deliverer_start(&cfg, &err);
    CHECK(a && b, "two deliverers start");
    char targets[10][128];
    CHECK(db_begin(d) == DB_OK, "begin");
    for (int i = 0; i < 10; i++) {
        char uid[32];
        snprintf(uid, sizeof uid, "ev-7-%d", i);
        snprintf(targets[i], sizeof targets[i], "webhook:http://127.0.0.1:%d/dup/%d/", rx.port, i);
        CHECK(add_event(d, uid, "rank_better_than", targets[i]) == DB_OK, "event 7 stored");
    }
    CHECK(db_commit(d) == DB_OK, "commit");
    notify_deliverer_wake(a);
    notify_deliverer_wake(b);
    /* Rows the other one is sending count as pending, due when its claim ends: a drain may
     * return early with them, and the next one sees them sent. */
    int left_a = -1, left_b = -1;
    for (int round = 0; round < 5 && (left_a || left_b); round++) {
        left_a = notify_deliverer_drain(a, 5000);
        left_b = notify_deliverer_drain(b, 5000);
    }
    CHECK(left_a == 0 && left_b == 0, "both drained");
    sleep_ms(200);
    int once = 1;
    for (int i = 0; i < 10; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "/dup/%d/", i);
        if (requests(&rx, prefix, r, 16) != 1)
            once = 0;
    }
    CHECK(once, "every event sent exactly once by the two");
    notify_deliverer_stop(a);
    notify_deliverer_stop(b);

    /* The log, as comments, for whoever reads a failure. */
    log = read_text(logpath);
    char *save = NULL;
    for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        printf("# log: %s\n", line);
    free(log);

    receiver_stop(&rx);
    db_close(d);
    char path[160];
    const char *names[] = {"store.db", "store.db-wal", "store.db-shm", "log"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
    scr_global_cleanup();
    return check_done();
}
