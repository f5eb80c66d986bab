"""Another process holding the database's write lock (a GUI browser, a long VACUUM) loses no
fetched data: the writer keeps the refused batch, pauses new fetches and retries until it
commits; /healthz and reads keep answering; a change request waits about a second, then gets
503 with Retry-After; `bookrank refresh` waits at most --store-wait, then exits 1 saying how
many observations it could not store. BOOKRANK_TEST_BUSY_MS shortens the runner's busy
timeout (a test knob) so the test waits fractions of a second, not the 5 s default."""
import os
import sqlite3
import subprocess
import time

from fixture_lib import FixtureStore, isbn10s
from service_lib import T, Service, run_cli, tmpdir, bookrank_bin

t = T()
d = tmpdir()
BOOKS = isbn10s(30, start=400000000)
KNOB = {"BOOKRANK_TEST_BUSY_MS": "200"}


def hold_lock(path):
    con = sqlite3.connect(path, timeout=10, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    return con


def stored(path):
    con = sqlite3.connect(path, timeout=30)
    n = con.execute("SELECT count(*) FROM observations").fetchone()[0]
    con.close()
    return n


with FixtureStore() as store:
    store.config(default={"delay_ms": 100})
    src = ["--source", "amazon.com=" + store.url("/dp/{asin}"), "--rate", "0", "--per-host", "2",
           "--workers", "2", "--retries", "0"]
    db = os.path.join(d, "lock.db")
    rc, _, err = run_cli(["add", "--db", db] + BOOKS)
    t.check(rc == 0, "30 books", err)

    with Service(db, src, env=KNOB) as svc:
        st, _, doc = svc.json("POST", "/api/refresh")
        jid = doc["job"]["id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            st, _, job = svc.json("GET", "/api/jobs/%d" % jid)
            if job["job"]["done"] >= 2:
                break
            time.sleep(0.02)
        lock = hold_lock(db)
        locked_at = time.monotonic()
        time.sleep(1.5)                       # several refused commits and retries
        before = store.stats()["requests"]
        time.sleep(1.0)
        after = store.stats()["requests"]
        t.check(after - before <= 1, "fetching pauses while the store refuses (%d -> %d requests)" % (before, after))
        t0 = time.monotonic()
        st, _, doc = svc.json("GET", "/healthz")
        t.check(st in (200, 503) and time.monotonic() - t0 < 1.0, "/healthz answers at once while locked",
                (st, doc, time.monotonic() - t0))
        st, _, doc = svc.json("GET", "/api/books")
        t.check(st == 200 and len(doc) == 30, "reads keep answering while locked", st)
        t0 = time.monotonic()
        st, h, doc = svc.json("POST", "/api/books", {"ids": ["0131103628"]})
        took = time.monotonic() - t0
        t.check(st == 503 and h.get("retry-after") and doc["error"]["code"] == "unavailable"
                and "busy" in doc["error"]["message"] and took < 3,
                "a change waits about a second, then 503 with Retry-After (%.1f s)" % took, (st, h, doc))
        st, _, job = svc.json("GET", "/api/jobs/%d" % jid)
        t.check(job["job"]["state"] == "running", "the job is not given up while the lock is held", job)
        st, _, body = svc.request("GET", "/metrics")
        t.check("bookrank_store_failing 1" in body.decode() and "bookrank_store_held_observations 0" not in body.decode(),
                "/metrics shows the store refusing and the observations held", body.decode()[-700:])
        lock.rollback()
        lock.close()
        job = svc.wait_job(jid, timeout=30)
        t.check(job and job["state"] == "done" and job["done"] == 30 and job["counts"]["ok"] == 30,
                "after the lock is gone: the job completes with every fetch stored", job)
        t.eq(stored(db), 30, "30 observations in the database, none lost")
        log = svc.log_text()
        t.check("keeping them and retrying" in log and "writing again after" in log,
                "the log says it kept the batch and when it wrote again", log[-1500:])
        st, _, doc = svc.json("POST", "/api/books", {"ids": ["0131103628"]})
        t.check(st == 201, "changes work again", (st, doc))

    # bookrank refresh (cron) with a short --store-wait: gives up, says so, exit 1
    store.config(default={"delay_ms": 200})
    env = dict(os.environ)
    env.update(KNOB)
    p = subprocess.Popen([bookrank_bin(), "refresh", "--db", db, "--store-wait", "1"] + src + BOOKS[:12],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    time.sleep(0.5)
    lock = hold_lock(db)
    try:
        out, err = p.communicate(timeout=60)
    finally:
        lock.rollback()
        lock.close()
    err = err.decode("utf-8", "replace")
    t.check(p.returncode == 1 and "could not be stored" in err and "--store-wait 1" in err,
            "refresh --store-wait 1 against a held lock: exit 1 naming what it could not store",
            (p.returncode, err[-600:]))

    # a lock shorter than --store-wait costs nothing
    n0 = stored(db)
    p = subprocess.Popen([bookrank_bin(), "refresh", "--db", db, "--store-wait", "30"] + src + BOOKS[:12],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    time.sleep(0.4)
    lock = hold_lock(db)
    time.sleep(1.5)
    lock.rollback()
    lock.close()
    out, err = p.communicate(timeout=60)
    t.check(p.returncode == 0, "refresh rides out a 1.5 s lock: exit 0", (p.returncode, err.decode()[-400:]))
    t.eq(stored(db) - n0, 12, "and stores all 12 observations")

t.done()
