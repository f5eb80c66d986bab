/*
 * deliver.c - the delivery loop (SPEC §5): one thread that reads the store's outbox, claims due
 * rows, sends one message per target and rule kind, and records the outcome with the retry
 * schedule. All waiting (the store's lock, the network, the storm window, retries) happens on
 * this thread; other threads only set a flag (wake) or wait for it to finish a pass (drain).
 */
#include "notify.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/timeutil.h"
#include "../db/db.h"
#include "../render/render.h"

#define DEFAULT_RETRY_FIRST_MS 10000
#define DEFAULT_STORM_MS 60000
#define DEFAULT_POLL_MS 1000
#define DEFAULT_GIVE_UP_MS (24LL * 3600 * 1000)
#define BUSY_TIMEOUT_MS 1000
/* A claim lasts one attempt plus this: a process that dies mid-attempt leaves its rows to be
 * taken again by the next look after that. */
#define CLAIM_MARGIN_MS 5000
#define DUE_LIMIT 100
#define FETCHES_PER_PASS 20 /* at most 2,000 rows per pass before waiting again */
#define PRUNE_EVERY_MS (3600LL * 1000)
#define KEEP_MS (30LL * 24 * 3600 * 1000)
#define DB_WARN_EVERY_MS 60000 /* a store that keeps failing is logged once a minute */
#define SUBJECT_MAX 200
#define BATCH_JSON_MAX ((size_t)16 << 20)
#define BATCH_TEXT_MAX ((size_t)1 << 20)

struct notify_deliverer {
    /* Copies of the configuration: the sender borrows ncfg and its strings. */
    char *db_path;
    notify_config ncfg;
    char *strings[7];
    int64_t retry_first_ms, storm_ms, poll_ms, give_up_ms, claim_ms;

    /* Owned by the delivery thread (handed to it by start, back to stop after the join). */
    db *d;
    notify_sender *sender;
    int64_t last_prune_mono; /* 0: not yet */
    int64_t last_db_warn_mono;

    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake_cond; /* the thread waits on it: woken or stopping */
    pthread_cond_t done_cond; /* drainers wait on it: a pass finished */
    int woken;                /* guarded by lock */
    int stopping;             /* guarded by lock */
    uint64_t passes_started;  /* guarded by lock */
    uint64_t passes_done;     /* guarded by lock */
    int64_t pending;          /* guarded by lock: rows pending after the last pass */
    int64_t next_due_ms;      /* guarded by lock: when the first of them is due, 0 */
};

static char *dup_or_null(const char *s, int *oom)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *oom = 1;
    return c;
}

static int64_t positive_or(int64_t v, int64_t dflt)
{
    return v > 0 ? v : dflt;
}

/* An absolute CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait. */
static struct timespec mono_after(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ms < 0)
        ms = 0;
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static int should_stop(notify_deliverer *dv)
{
    pthread_mutex_lock(&dv->lock);
    int s = dv->stopping;
    pthread_mutex_unlock(&dv->lock);
    return s;
}

/* The store failed: logged, at most once a minute so an outage does not flood the log. */
static void db_warn(notify_deliverer *dv, const char *what, db_err rc)
{
    int64_t now = time_mono_ms();
    if (dv->last_db_warn_mono && now - dv->last_db_warn_mono < DB_WARN_EVERY_MS)
        return;
    dv->last_db_warn_mono = now;
    log_warn("alert delivery: %s: %s (%s)", what, db_strerror(rc), db_errmsg(dv->d));
}

/* What a log line may say about a target: its kind and host ("webhook hooks.example.com:8443",
 * "mailto example.org"), never the path, query or credentials, which may hold secrets. */
static void target_where(const char *target, char *out, size_t outlen)
{
    const char *colon = strchr(target, ':');
    size_t klen = colon ? (size_t)(colon - target) : strlen(target);
    const char *rest = colon ? colon + 1 : "";
    const char *host = "";
    size_t hlen = 0;
    if (klen == 6 && strncmp(target, "mailto", 6) == 0) {
        const char *at = strrchr(rest, '@');
        if (at) {
            host = at + 1;
            hlen = strcspn(host, "?>");
        }
    } else {
        const char *p = strstr(rest, "://");
        if (p) {
            host = p + 3;
            hlen = strcspn(host, "/?#");
            const char *at = memrchr(host, '@', hlen);
            if (at) {
                hlen -= (size_t)(at + 1 - host);
                host = at + 1;
            }
        }
    }
    if (klen > 16)
        klen = 16;
    if (hlen > 255)
        hlen = 255;
    if (snprintf(out, outlen, "%.*s %.*s", (int)klen, target, (int)hlen, host) < 0 && outlen)
        out[0] = '\0';
}

/* The delay before retry number `attempts` (1: the first retry): first, doubling. */
static int64_t retry_delay(int64_t first, int attempts)
{
    int64_t d = first;
    for (int i = 1; i < attempts && d < INT64_MAX / 4; i++)
        d *= 2;
    return d;
}

/* Cuts s->data to at most max bytes on a UTF-8 character boundary, ending it with an ellipsis. */
static void cut_subject(buf *s, size_t max)
{
    if (s->len <= max)
        return;
    size_t at = max - 3;
    while (at > 0 && ((unsigned char)s->data[at] & 0xC0) == 0x80)
        at--;
    s->len = at;
    s->data[at] = '\0';
    (void)buf_append_str(s, "\xe2\x80\xa6");
}

typedef struct batch {
    buf json, text, subject;
    char event_id[64];
    notify_message m;
} batch;

/* The message for rows (claimed, same target and kind): a row's own texts for one, the batch
 * shape for several. BUF_OK or a buf error. */
static int batch_build(batch *b, db_alert_event *const *rows, size_t n)
{
    buf_init(&b->json, BATCH_JSON_MAX);
    buf_init(&b->text, BATCH_TEXT_MAX);
    buf_init(&b->subject, 4096);
    memset(&b->m, 0, sizeof b->m);
    const db_alert_event *first = rows[0];
    if (n == 1) {
        b->m.event_id = first->uid;
        b->m.json = first->body ? first->body : "{}";
        b->m.json_len = strlen(b->m.json);
        b->m.text = first->message ? first->message : "";
        b->m.subject = first->subject ? first->subject : b->m.text;
        return BUF_OK;
    }
    /* The batch's id: its first event's and how many more, stable for a retry of the same rows;
     * each event inside carries its own id for deduplication. */
    if (snprintf(b->event_id, sizeof b->event_id, "%s+%zu", first->uid, n - 1) >=
        (int)sizeof b->event_id)
        b->event_id[sizeof b->event_id - 1] = '\0';
    const char **bodies = calloc(n, sizeof *bodies);
    if (!bodies)
        return BUF_NOMEM;
    for (size_t i = 0; i < n; i++)
        bodies[i] = rows[i]->body ? rows[i]->body : "{}";
    int rc = render_alert_batch(&b->json, bodies, n);
    free(bodies);
    if (rc == BUF_OK)
        rc = buf_printf(&b->subject, "%zu alerts: ", n);
    for (size_t i = 0; rc == BUF_OK && i < n; i++) {
        const char *line = rows[i]->message ? rows[i]->message : "";
        const char *subj = rows[i]->subject ? rows[i]->subject : line;
        rc = buf_printf(&b->text, "%s%s", i ? "\n" : "", line);
        /* Subjects past the limit are dropped (cut_subject marks the cut). */
        if (rc == BUF_OK && b->subject.len <= SUBJECT_MAX)
            rc = buf_printf(&b->subject, "%s%s", i ? "; " : "", subj);
    }
    if (rc != BUF_OK)
        return rc;
    cut_subject(&b->subject, SUBJECT_MAX);
    b->m.event_id = b->event_id;
    b->m.json = b->json.data;
    b->m.json_len = b->json.len;
    b->m.text = b->text.data ? b->text.data : "";
    b->m.subject = b->subject.data;
    return BUF_OK;
}

static void batch_free(batch *b)
{
    buf_free(&b->json);
    buf_free(&b->text);
    buf_free(&b->subject);
}

/* Records the outcome of one attempt for each row. */
static int record_outcome(notify_deliverer *dv, db_alert_event *const *rows, size_t n, notify_err e,
                          const char *why)
{
    int64_t now = time_now_ms();
    char where[300];
    target_where(rows[0]->target, where, sizeof where);
    int given_up = 0;
    int64_t next_min = 0;
    for (size_t i = 0; i < n; i++) {
        const db_alert_event *r = rows[i];
        int attempts = r->attempts < INT_MAX ? r->attempts + 1 : r->attempts;
        db_err rc;
        if (e == NOTIFY_OK) {
            rc = db_alert_event_done(dv->d, r->id, EVENT_SENT, attempts, 0, now, NULL);
        } else {
            int64_t created = r->created_at_ms > 0 ? r->created_at_ms : now;
            int64_t deadline = created + dv->give_up_ms;
            int64_t next = now + retry_delay(dv->retry_first_ms, attempts);
            if (next > deadline)
                next = deadline; /* one last attempt when the day ends */
            if (e == NOTIFY_CONFIG || now >= deadline) {
                given_up = 1;
                rc = db_alert_event_done(dv->d, r->id, EVENT_FAILED, attempts, 0, 0, why);
            } else {
                if (!next_min || next < next_min)
                    next_min = next;
                rc = db_alert_event_done(dv->d, r->id, EVENT_PENDING, attempts, next, 0, why);
            }
        }
        /* DB_NOTFOUND: the row went meanwhile (the alert's events were deleted): nothing to
         * record. */
        if (rc < 0) {
            db_warn(dv, "recording a delivery", rc);
            return -1;
        }
    }
    if (e == NOTIFY_OK) {
        log_debug("alert %s: %zu event(s) sent to %s", rows[0]->kind, n, where);
    } else if (e == NOTIFY_CONFIG) {
        log_warn("alert %s: delivery to %s failed, not retried: %s", rows[0]->kind, where, why);
    } else {
        char when[32] = "";
        if (next_min)
            time_format_iso(next_min, when, sizeof when);
        log_warn("alert %s: delivery to %s failed (%zu event(s)): %s; %s%s", rows[0]->kind, where,
                 n, why, given_up && !next_min ? "giving up" : "trying again at ",
                 given_up && !next_min ? "" : when);
    }
    return 0;
}

/* One target and rule kind: claims the rows, then postpones them (storm window) or sends them as
 * one message. 0, or -1 when the store failed (rows already claimed come back when their claim
 * ends). */
static int deliver_group(notify_deliverer *dv, db_alert_event **rows, size_t n)
{
    int64_t until = time_now_ms() + dv->claim_ms;
    size_t taken = 0;
    for (size_t i = 0; i < n; i++) {
        int claimed = 0;
        db_err rc = db_alert_event_claim(dv->d, rows[i]->id, rows[i]->next_at_ms, until, &claimed);
        if (rc != DB_OK) {
            db_warn(dv, "claiming an event", rc);
            return -1;
        }
        if (claimed)
            rows[taken++] = rows[i];
    }
    if (!taken)
        return 0;
    n = taken;

    int64_t last = 0, now = time_now_ms();
    db_err rc = db_alert_last_sent(dv->d, rows[0]->target, rows[0]->kind, &last);
    if (rc != DB_OK) {
        db_warn(dv, "reading the last delivery", rc);
        return -1;
    }
    if (last > 0 && now - last < dv->storm_ms) {
        /* A message went to this target for this kind less than storm_ms ago: these rows go
         * out together when the window ends (never later than storm_ms from now, should the
         * clock have gone back). */
        int64_t next = last + dv->storm_ms;
        if (next > now + dv->storm_ms)
            next = now + dv->storm_ms;
        for (size_t i = 0; i < n; i++) {
            rc = db_alert_event_done(dv->d, rows[i]->id, EVENT_PENDING, rows[i]->attempts, next, 0,
                                     rows[i]->last_error);
            if (rc < 0) {
                db_warn(dv, "postponing an event", rc);
                return -1;
            }
        }
        return 0;
    }

    batch b;
    char why[512] = "";
    notify_err e;
    if (batch_build(&b, rows, n) != BUF_OK) {
        e = NOTIFY_NOMEM;
        snprintf(why, sizeof why, "out of memory building the message");
    } else {
        e = notify_send(dv->sender, rows[0]->target, &b.m, why, sizeof why);
        if (e != NOTIFY_OK && !why[0])
            snprintf(why, sizeof why, "%s", notify_strerror(e));
    }
    batch_free(&b);
    /* Out of memory is worth another try later, like a target that did not answer. */
    return record_outcome(dv, rows, n, e == NOTIFY_NOMEM ? NOTIFY_FAILED : e, why);
}

static int same_group(const db_alert_event *a, const db_alert_event *b)
{
    return strcmp(a->kind, b->kind) == 0 && a->target && b->target &&
           strcmp(a->target, b->target) == 0;
}

/* Sends what is due. 0, 1 when rows were left for the next pass (more than a pass takes), or -1
 * when the store failed (the caller waits a poll before trying again). */
static int deliver_pass(notify_deliverer *dv)
{
    int64_t mono = time_mono_ms();
    if (!dv->last_prune_mono || mono - dv->last_prune_mono >= PRUNE_EVERY_MS) {
        db_err rc = db_alert_events_prune(dv->d, time_now_ms() - KEEP_MS);
        if (rc != DB_OK)
            db_warn(dv, "pruning old events", rc);
        else
            dv->last_prune_mono = mono;
    }
    for (int fetch = 0; fetch < FETCHES_PER_PASS; fetch++) {
        db_alert_event *ev = NULL;
        size_t n = 0;
        db_err rc = db_alert_events_due(dv->d, time_now_ms(), DUE_LIMIT, &ev, &n);
        if (rc != DB_OK) {
            db_warn(dv, "reading due events", rc);
            return -1;
        }
        db_alert_event **group = n ? calloc(n, sizeof *group) : NULL;
        char *done = n ? calloc(n, 1) : NULL;
        int failed = 0;
        if (n && (!group || !done)) {
            log_warn("alert delivery: out of memory");
            failed = 1;
        }
        /* Each row is claimed, postponed or sent by its group, so the next fetch sees the
         * rows this one did not reach. */
        for (size_t i = 0; !failed && i < n; i++) {
            if (done[i] || !ev[i].target)
                continue;
            size_t g = 0;
            for (size_t j = i; j < n; j++) {
                if (!done[j] && same_group(&ev[i], &ev[j])) {
                    done[j] = 1;
                    group[g++] = &ev[j];
                }
            }
            if (deliver_group(dv, group, g) != 0)
                failed = 1;
            else if (should_stop(dv))
                break;
        }
        free(group);
        free(done);
        db_alert_events_free(ev, n);
        if (failed)
            return -1;
        if (n < DUE_LIMIT || should_stop(dv))
            return 0;
    }
    return 1;
}

static void *deliver_main(void *arg)
{
    notify_deliverer *dv = arg;
    int64_t wait_ms = 0;
    for (;;) {
        pthread_mutex_lock(&dv->lock);
        struct timespec until = mono_after(wait_ms);
        while (!dv->stopping && !dv->woken) {
            if (pthread_cond_timedwait(&dv->wake_cond, &dv->lock, &until) == ETIMEDOUT)
                break;
        }
        if (dv->stopping) {
            pthread_mutex_unlock(&dv->lock);
            break;
        }
        dv->woken = 0;
        dv->passes_started++;
        pthread_mutex_unlock(&dv->lock);

        int64_t pass_start = time_now_ms();
        int more = deliver_pass(dv);
        int failed = more < 0;

        int64_t count = 0, next_due = 0;
        db_err rc = db_alert_events_pending(dv->d, &count, &next_due);
        if (rc != DB_OK) {
            db_warn(dv, "counting pending events", rc);
            failed = 1;
        }
        /* Until the first row falls due, or the next poll for rows written elsewhere. A row
         * that was due when this pass began and is due still (its group could not be handled)
         * waits for the poll: no busy loop. */
        wait_ms = dv->poll_ms;
        if (more > 0) {
            wait_ms = 0;
        } else if (!failed && count > 0 && next_due > 0) {
            int64_t until_due = next_due - time_now_ms();
            if (until_due > 0 && until_due < wait_ms)
                wait_ms = until_due;
            else if (until_due <= 0 && next_due > pass_start)
                wait_ms = 0;
        }
        pthread_mutex_lock(&dv->lock);
        if (rc == DB_OK) {
            dv->pending = count;
            dv->next_due_ms = next_due;
        }
        dv->passes_done++;
        pthread_cond_broadcast(&dv->done_cond);
        pthread_mutex_unlock(&dv->lock);
    }
    return NULL;
}

static void deliverer_free(notify_deliverer *dv)
{
    notify_sender_free(dv->sender);
    db_close(dv->d);
    for (size_t i = 0; i < sizeof dv->strings / sizeof dv->strings[0]; i++)
        free(dv->strings[i]);
    free(dv->db_path);
    free(dv);
}

notify_deliverer *notify_deliverer_start(const notify_deliver_config *cfg, char **err)
{
    if (err)
        *err = NULL;
    if (!cfg || !cfg->db_path || !*cfg->db_path) {
        if (err)
            *err = strdup("alert delivery needs the store's path");
        return NULL;
    }
    notify_deliverer *dv = calloc(1, sizeof *dv);
    if (!dv) {
        if (err)
            *err = strdup("out of memory");
        return NULL;
    }
    int oom = 0;
    dv->db_path = dup_or_null(cfg->db_path, &oom);
    dv->ncfg = cfg->notify;
    const char **fields[] = {&dv->ncfg.smtp_url,      &dv->ncfg.smtp_from,    &dv->ncfg.smtp_user,
                             &dv->ncfg.smtp_password, &dv->ncfg.smtp_ca_file, &dv->ncfg.secret,
                             &dv->ncfg.user_agent};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        dv->strings[i] = dup_or_null(*fields[i], &oom);
        *fields[i] = dv->strings[i];
    }
    if (oom) {
        deliverer_free(dv);
        if (err)
            *err = strdup("out of memory");
        return NULL;
    }
    dv->retry_first_ms = positive_or(cfg->retry_first_ms, DEFAULT_RETRY_FIRST_MS);
    dv->storm_ms = positive_or(cfg->storm_ms, DEFAULT_STORM_MS);
    dv->poll_ms = positive_or(cfg->poll_ms, DEFAULT_POLL_MS);
    dv->give_up_ms = positive_or(cfg->give_up_ms, DEFAULT_GIVE_UP_MS);
    double timeout_s = dv->ncfg.timeout_s > 0 ? dv->ncfg.timeout_s : 10.0;
    dv->claim_ms = (int64_t)(timeout_s * 1000.0) + CLAIM_MARGIN_MS;

    char *dberr = NULL;
    if (!(dv->d = db_open(dv->db_path, &dberr))) {
        if (err)
            *err = buf_strdup_printf("alert delivery: %s", dberr ? dberr : "cannot open the store");
        free(dberr);
        deliverer_free(dv);
        return NULL;
    }
    db_set_busy_timeout(dv->d, BUSY_TIMEOUT_MS);
    if (!(dv->sender = notify_sender_new(&dv->ncfg, err))) {
        deliverer_free(dv);
        return NULL;
    }

    pthread_condattr_t ca;
    int ok = pthread_mutex_init(&dv->lock, NULL) == 0;
    if (ok && pthread_condattr_init(&ca) == 0) {
        ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&dv->wake_cond, &ca) == 0 &&
             pthread_cond_init(&dv->done_cond, &ca) == 0;
        pthread_condattr_destroy(&ca);
    } else {
        ok = 0;
    }
    dv->woken = 1; /* the first pass runs at once: events left due by an earlier run */
    if (!ok || pthread_create(&dv->thread, NULL, deliver_main, dv) != 0) {
        if (err)
            *err = strdup("alert delivery: cannot start its thread");
        deliverer_free(dv);
        return NULL;
    }
    return dv;
}

void notify_deliverer_wake(notify_deliverer *dv)
{
    if (!dv)
        return;
    pthread_mutex_lock(&dv->lock);
    dv->woken = 1;
    pthread_cond_signal(&dv->wake_cond);
    pthread_mutex_unlock(&dv->lock);
}

int notify_deliverer_drain(notify_deliverer *dv, int timeout_ms)
{
    if (!dv)
        return 0;
    int64_t deadline = time_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&dv->lock);
    /* A pass that starts after this call sees everything committed before it. */
    uint64_t want = dv->passes_started + 1;
    dv->woken = 1;
    pthread_cond_signal(&dv->wake_cond);
    for (;;) {
        int64_t left = deadline - time_mono_ms();
        if (dv->passes_done >= want) {
            if (dv->pending <= 0)
                break;
            /* Nothing pending falls due before the deadline: waiting would not help. */
            if (dv->next_due_ms > 0 && dv->next_due_ms - time_now_ms() > left)
                break;
        }
        if (left <= 0 || dv->stopping)
            break;
        struct timespec until = mono_after(left);
        (void)pthread_cond_timedwait(&dv->done_cond, &dv->lock, &until);
    }
    int64_t left = dv->pending;
    pthread_mutex_unlock(&dv->lock);
    return left > INT_MAX ? INT_MAX : (int)(left < 0 ? 0 : left);
}

void notify_deliverer_stop(notify_deliverer *dv)
{
    if (!dv)
        return;
    pthread_mutex_lock(&dv->lock);
    dv->stopping = 1;
    pthread_cond_signal(&dv->wake_cond);
    pthread_cond_broadcast(&dv->done_cond);
    pthread_mutex_unlock(&dv->lock);
    pthread_join(dv->thread, NULL);
    pthread_cond_destroy(&dv->wake_cond);
    pthread_cond_destroy(&dv->done_cond);
    pthread_mutex_destroy(&dv->lock);
    deliverer_free(dv);
}
