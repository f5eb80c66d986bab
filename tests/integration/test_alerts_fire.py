"""Alerts end to end, against a real loopback webhook receiver and SMTP sink: rules evaluated in
the writer's transaction fire once when they become true, not again while true, again after
they were false; new_best, trouble; the event JSON, its signature and id; mail with the title
and rank in the subject; a receiver that is down, then a server restart, still gets the event
once with the same id; events for one target and kind within the storm window arrive as one
batch; a cron `bookrank refresh` delivers too. Test knobs shorten the retry, storm and poll
times (BOOKRANK_TEST_RETRY_MS, BOOKRANK_TEST_STORM_MS, BOOKRANK_TEST_POLL_MS)."""
import json
import os
import time

from fixture_lib import FixtureStore
from receivers import SmtpSink, WebhookReceiver
from service_lib import T, Service, run_cli, tmpdir

t = T()
d = tmpdir()
SECRET = "s3cret"
KNOBS = {"BOOKRANK_TEST_RETRY_MS": "300", "BOOKRANK_TEST_STORM_MS": "1500",
         "BOOKRANK_TEST_POLL_MS": "100"}
A, B = "0132269937", "0131103628"          # their ISBN-13s: 9780132269933, 9780131103627


def events(hook, n, timeout=10):
    reqs = hook.wait_for(n, timeout=timeout)
    return [WebhookReceiver.json(r) for r in reqs]


with FixtureStore() as store, WebhookReceiver() as hook, SmtpSink() as smtp:
    src = ["--source", "amazon.com=" + store.url("/dp/{asin}"), "--rate", "0", "--per-host", "4",
           "--retries", "0", "--cooldown", "0", "--notify-secret", SECRET, "--smtp", smtp.url(),
           "--smtp-from", "bookrank@example.org"]
    db = os.path.join(d, "alerts.db")
    store.config(books={A: {"title": "Core Python", "rank": 5000}, B: {"title": "The C Book", "rank": 40}})

    def refresh(svc, ids):
        st, _, doc = svc.json("POST", "/api/refresh", {"ids": ids})
        return svc.wait_job(doc["job"]["id"]) if st == 202 else None

    with Service(db, src, env=KNOBS) as svc:
        st, _, doc = svc.json("POST", "/api/books", {"ids": [A, B]})
        t.check(st == 201, "two books", doc)
        rules = [
            {"kind": "rank_better_than", "value": 1000, "book": A, "notify": ["webhook:" + hook.url("/better")]},
            {"kind": "new_best", "book": B, "notify": ["webhook:" + hook.url("/best"), "mailto:author@example.org"]},
            {"kind": "trouble", "value": 2, "book": A, "notify": ["webhook:" + hook.url("/trouble")]},
        ]
        for r in rules:
            st, _, doc = svc.json("POST", "/api/alerts", r)
            t.check(st == 201 and doc["alert"]["n"] > 0, "rule %s added" % r["kind"], doc)

        refresh(svc, [A, B])                   # A 5000 (false), B 40 (first: nothing to beat)
        time.sleep(1.0)
        t.eq(len(hook.requests()), 0, "nothing fires on the first observations")

        store.config(books={A: {"title": "Core Python", "rank": 800}, B: {"title": "The C Book", "rank": 30}})
        t0 = time.monotonic()
        refresh(svc, [A, B])
        better = hook.wait_for(1, timeout=10, match=lambda r: r.path == "/better")
        latency = time.monotonic() - t0
        t.eq(len(better), 1, "rank_better_than fires when it becomes true")
        if better:
            req = better[0]
            ev = WebhookReceiver.json(req)
            t.check(WebhookReceiver.verify_signature(req, SECRET), "the post is signed (X-Bookrank-Signature)",
                    req.headers)
            t.check(ev and ev["kind"] == "rank_better_than" and ev["book"]["id"] == "9780132269933"
                    and ev["observation"]["rank"] == 800 and ev["previous_rank"] == 5000
                    and "#800" in ev["message"] and "Core Python" in ev["message"] and ev["id"],
                    "the event JSON: kind, book, observation, previous rank, message", ev)
            t.check(req.header("X-Bookrank-Event") == ev["id"], "the event id in a header too", req.headers)
            print("# delivery latency after the refresh request: %.2f s" % latency)
        best = hook.wait_for(1, timeout=10, match=lambda r: r.path == "/best")
        t.check(len(best) == 1 and WebhookReceiver.json(best[0])["kind"] == "new_best",
                "new_best fires when an earlier rank is beaten", [r.path for r in hook.requests()])
        mails = smtp.wait_for(1, timeout=10)
        t.check(len(mails) == 1 and "The C Book" in mails[0].subject and "#30" in mails[0].subject,
                "mail: the title and the rank in the subject", [m.subject for m in mails])

        store.config(books={A: {"title": "Core Python", "rank": 700}, B: {"title": "The C Book", "rank": 30}})
        refresh(svc, [A, B])
        time.sleep(1.0)
        t.eq(len([r for r in hook.requests() if r.path == "/better"]), 1, "not again while it stays true")
        t.eq(len([r for r in hook.requests() if r.path == "/best"]), 1, "an equal rank is no new best")

        store.config(books={A: {"title": "Core Python", "rank": 1500}})
        refresh(svc, [A])
        store.config(books={A: {"title": "Core Python", "rank": 900}})
        refresh(svc, [A])
        again = hook.wait_for(2, timeout=10, match=lambda r: r.path == "/better")
        t.eq(len(again), 2, "again after it was false")

        store.config(books={A: {"page": "captcha"}})
        refresh(svc, [A])
        time.sleep(0.5)
        t.eq(len([r for r in hook.requests() if r.path == "/trouble"]), 0, "trouble 2: one failure is not yet trouble")
        refresh(svc, [A])
        trouble = hook.wait_for(1, timeout=10, match=lambda r: r.path == "/trouble")
        t.check(len(trouble) == 1 and "blocked" in WebhookReceiver.json(trouble[0])["message"],
                "trouble fires at the second failure in a row, naming it", [WebhookReceiver.json(r) for r in trouble])
        refresh(svc, [A])
        time.sleep(0.5)
        t.eq(len([r for r in hook.requests() if r.path == "/trouble"]), 1, "and not at the third")
        st, _, doc = svc.json("GET", "/api/alerts/events")
        t.check(st == 200 and any(e["state"] == "sent" for e in doc), "GET /api/alerts/events lists deliveries", doc)

    # a receiver that is down, then a restart: delivered once, same id
    hook.clear()
    hook.set_down(True)
    store.config(books={A: {"title": "Core Python", "rank": 5000}})
    with Service(db, src, env=KNOBS) as svc:
        refresh(svc, [A])                      # false again
        store.config(books={A: {"title": "Core Python", "rank": 10}})
        refresh(svc, [A])                      # fires; the receiver is down
        time.sleep(1.0)
        st, _, doc = svc.json("GET", "/api/alerts/events")
        pend = [e for e in doc if e["target"].endswith("/better") and e["state"] == "pending"]
        t.check(pend and pend[0]["attempts"] >= 1 and pend[0]["last_error"], "a failed delivery stays pending with its error",
                doc[:3])
        uid = pend[0]["id"] if pend else None
    hook.set_down(False)
    with Service(db, src, env=KNOBS) as svc:
        got = hook.wait_for(1, timeout=15, match=lambda r: r.path == "/better")
        t.check(len(got) == 1 and WebhookReceiver.json(got[0])["id"] == uid,
                "after a restart the pending event is delivered, with the same id", [WebhookReceiver.json(r) for r in got])
        time.sleep(1.0)
        t.eq(len([r for r in hook.requests() if r.path == "/better"]), 1, "exactly once")

        # storms: two events for one target and kind within the window -> one batch
        hook.clear()
        st, _, doc = svc.json("POST", "/api/alerts", {"kind": "rank_worse_than", "value": 100000,
                                                     "notify": ["webhook:" + hook.url("/storm")]})
        store.config(books={A: {"rank": 200000}, B: {"rank": 300000}})
        refresh(svc, [A])
        first = hook.wait_for(1, timeout=10, match=lambda r: r.path == "/storm")
        refresh(svc, [B])
        store.config(books={A: {"rank": 50}, B: {"rank": 50}})
        refresh(svc, [A, B])
        store.config(books={A: {"rank": 200000}, B: {"rank": 300000}})
        refresh(svc, [A, B])
        storm = hook.wait_for(2, timeout=10, match=lambda r: r.path == "/storm")
        docs = [WebhookReceiver.json(r) for r in storm]
        t.check(len(storm) == 2 and docs[1].get("batch") is True and len(docs[1]["events"]) >= 2,
                "more events within the storm window arrive as one batch", docs)

    # a cron refresh evaluates and delivers before it exits
    hook.clear()
    store.config(books={A: {"title": "Core Python", "rank": 5000}})
    rc, out, err = run_cli(["refresh", "--db", db] + src + [A], env=KNOBS)
    store.config(books={A: {"title": "Core Python", "rank": 20}})
    rc, out, err = run_cli(["refresh", "--db", db] + src + [A], env=KNOBS)
    got = hook.wait_for(1, timeout=1, match=lambda r: r.path == "/better")
    t.check(rc == 0 and len(got) == 1, "`bookrank refresh` delivered the event before it exited", (rc, err[-400:]))

t.done()
