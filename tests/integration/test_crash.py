"""Crash safety of the store: `kill -9` of `serve` and of a cron `bookrank refresh` in the middle
of a large refresh, SIGTERM during one, a disk that fills up during a refresh and a database on a
read-only file system. Afterwards PRAGMA integrity_check is ok, nothing reported done more than
a second before the kill is missing, the interrupted job shows `cancelled`, and a new refresh
completes. Disk-full and read-only cases need `mount -t tmpfs` (root in the test sandbox);
without it they print "ok - skipped: ..." lines.
"""
import os
import signal
import sqlite3
import subprocess
import time

from fixture_lib import FixtureStore, bookrank_bin, isbn10s
from service_lib import T, Service, run_cli, tmpdir

t = T()
d = tmpdir()
NBOOKS = 300
DELAY_MS = 100         # with --per-host 8: about 80 fetches a second, a refresh of ~4 s


ISBNS = isbn10s(NBOOKS)


def db_facts(path):
    """(integrity_check, observation count, {job id: (state, done, total)})."""
    con = sqlite3.connect(path, timeout=10)
    try:
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        nobs = con.execute("SELECT count(*) FROM observations").fetchone()[0]
        jobs = {row[0]: row[1:] for row in con.execute("SELECT id, state, done, total FROM jobs")}
    finally:
        con.close()
    return integrity, nobs, jobs


def fresh_db(name):
    path = os.path.join(d, name)
    rc, _, err = run_cli(["add", "--db", path] + ISBNS)
    t.check(rc == 0, "%s: %d books tracked" % (name, NBOOKS), err)
    return path


def poll_until_kill(svc, job_id, kill_after_done, settle=1.2):
    """Polls the job every 50 ms; returns [(monotonic time, done, state)] up to the moment the
    job has kill_after_done observations and first showed progress at least `settle` seconds
    before (so that some progress is more than a second old at the kill), or ended."""
    samples = []
    first = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        st, _, doc = svc.json("GET", "/api/jobs/%d" % job_id, timeout=5)
        if st == 200:
            now, done, state = time.monotonic(), doc["job"]["done"], doc["job"]["state"]
            samples.append((now, done, state))
            if done and first is None:
                first = now
            if state != "running" or (done >= kill_after_done and now - first >= settle):
                break
        time.sleep(0.05)
    return samples


def done_before(samples, kill_time, margin=1.0):
    """The highest progress reported at least `margin` seconds before the kill."""
    return max([done for when, done, _ in samples if when <= kill_time - margin] or [0])


with FixtureStore() as store:
    store.config(default={"delay_ms": DELAY_MS})
    src = ["--source", "amazon.com=" + store.url("/dp/{isbn10}"), "--rate", "0", "--per-host", "8",
           "--workers", "8", "--retries", "0"]

    # ---- kill -9 of serve during a large refresh -------------------------------------------------
    db = fresh_db("kill9.db")
    svc = Service(db, src)
    try:
        st, _, doc = svc.json("POST", "/api/refresh")
        job_id = doc["job"]["id"]
        samples = poll_until_kill(svc, job_id, kill_after_done=NBOOKS // 2)
        kill_time = time.monotonic()
        svc.proc.send_signal(signal.SIGKILL)
        svc.wait(10)
    finally:
        svc.__exit__(None, None, None)
    last = samples[-1] if samples else (0, 0, "?")
    t.check(last[2] == "running" and 0 < last[1] < NBOOKS, "kill -9 of serve mid-refresh (%d of %d done)"
            % (last[1], NBOOKS), samples[-3:])
    integrity, nobs, jobs = db_facts(db)
    t.eq(integrity, "ok", "after kill -9: integrity_check ok")
    reported = done_before(samples, kill_time)
    t.check(reported > 0 and nobs >= reported,
            "after kill -9: all %d observations reported done > 1 s before the kill are stored (%d stored)"
            % (reported, nobs))
    t.check(nobs < NBOOKS, "after kill -9: the refresh really was cut short (%d of %d)" % (nobs, NBOOKS))
    t.eq(jobs.get(job_id, ("?",))[0], "running", "after kill -9: the job row still says running")
    store.config(default={"delay_ms": 5})
    with Service(db, src) as svc:
        st, _, doc = svc.json("GET", "/api/jobs/%d" % job_id)
        t.check(st == 200 and doc["job"]["state"] == "cancelled", "after restart: the interrupted job is cancelled",
                doc)
        t.check(doc["job"]["done"] <= nobs, "after restart: its done count is what was stored", (doc, nobs))
        st, _, doc = svc.json("POST", "/api/refresh")
        job = svc.wait_job(doc["job"]["id"], timeout=90)
        t.check(job and job["state"] == "done" and job["done"] == NBOOKS, "after restart: a new refresh completes",
                job)
    t.eq(svc.proc.returncode, 0, "after restart: SIGTERM exits 0")
    integrity, nobs2, _ = db_facts(db)
    t.check(integrity == "ok" and nobs2 == nobs + NBOOKS, "after restart: integrity ok, %d + %d observations"
            % (nobs, NBOOKS), (integrity, nobs2))

    # ---- SIGTERM of serve during a large refresh ------------------------------------------------
    store.config(default={"delay_ms": DELAY_MS})
    db = fresh_db("term.db")
    with Service(db, src + ["--grace", "3"]) as svc:
        st, _, doc = svc.json("POST", "/api/refresh")
        job_id = doc["job"]["id"]
        samples = poll_until_kill(svc, job_id, kill_after_done=NBOOKS // 3, settle=0)
        t0 = time.monotonic()
        svc.signal(signal.SIGTERM)
        rc = svc.wait(30)
        stop_s = time.monotonic() - t0
    t.eq(rc, 0, "SIGTERM mid-refresh: exit 0")
    t.check(stop_s < 8, "SIGTERM mid-refresh: stopped within the grace period (%.1f s)" % stop_s)
    integrity, nobs, jobs = db_facts(db)
    state, done, total = jobs.get(job_id, ("?", -1, -1))
    t.eq(integrity, "ok", "SIGTERM mid-refresh: integrity_check ok")
    t.check(state == "cancelled" and done == nobs and samples[-1][1] <= nobs < NBOOKS,
            "SIGTERM mid-refresh: job stored as cancelled with done == %d stored observations" % nobs,
            (state, done, nobs, samples[-1]))

    # ---- kill -9 of a cron `bookrank refresh` ----------------------------------------------------
    db = fresh_db("cron.db")
    proc = subprocess.Popen([bookrank_bin(), "refresh", "--db", db] + src, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    printed, started = [], time.monotonic()
    os.set_blocking(proc.stdout.fileno(), False)
    buf = b""
    while time.monotonic() - started < 30 and len(printed) < NBOOKS // 2:
        chunk = proc.stdout.read() or b""
        buf += chunk
        *lines, buf = buf.split(b"\n")
        printed += [line for line in lines if line.startswith(b"- ")]
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    integrity, nobs, jobs = db_facts(db)
    t.check(0 < len(printed) < NBOOKS, "kill -9 of `bookrank refresh` after %d printed lines" % len(printed))
    t.eq(integrity, "ok", "cron kill -9: integrity_check ok")
    t.check(nobs >= len(printed), "cron kill -9: every printed observation is stored (%d printed, %d stored)"
            % (len(printed), nobs))
    cron_job = max(jobs) if jobs else None
    t.eq(jobs.get(cron_job, ("?",))[0], "running", "cron kill -9: its job row still says running")
    store.config(default={"delay_ms": 5})
    rc, out, err = run_cli(["refresh", "--db", db] + src)
    t.check(rc == 0 and ("%d of %d fetched" % (NBOOKS, NBOOKS)) in out, "cron kill -9: the next refresh completes",
            out[-300:] + err[-300:])
    integrity, nobs2, jobs = db_facts(db)
    t.check(integrity == "ok" and jobs[cron_job][0] == "cancelled" and nobs2 == nobs + NBOOKS,
            "cron kill -9: the killed run's job is now cancelled", (integrity, jobs.get(cron_job), nobs, nobs2))


# ---- disk full and read-only, on a small tmpfs --------------------------------------------------
def mount_tmpfs(where, size):
    os.makedirs(where, exist_ok=True)
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", where],
                           capture_output=True, timeout=10)
        return p.returncode == 0, p.stderr.decode("utf-8", "replace").strip()
    except (OSError, subprocess.SubprocessError) as e:
        return False, str(e)


def umount(where):
    for _ in range(20):
        if subprocess.run(["umount", where], capture_output=True).returncode == 0:
            return
        time.sleep(0.25)


def fill(path):
    """Writes to path until the file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass
    os.close(fd)


mnt = os.path.join(d, "small")
ok, why = mount_tmpfs(mnt, "1m")
if not ok:
    print("ok - skipped: disk-full and read-only cases need `mount -t tmpfs` (%s)" % why)
    print("ok - skipped: read-only database")
else:
    try:
        # The database lives on the 1 MiB tmpfs; its path is a symlink from the normal disk so
        # that the server's log (next to the path given) does not fill up with it.
        real = os.path.join(mnt, "full.db")
        db = os.path.join(d, "full-link.db")
        os.symlink(real, db)
        rc, _, err = run_cli(["add", "--db", db] + ISBNS)
        t.check(rc == 0, "disk full: %d books on a 1 MiB tmpfs" % NBOOKS, err)
        with FixtureStore() as store:
            store.config(default={"delay_ms": 40})
            src = ["--source", "amazon.com=" + store.url("/dp/{isbn10}"), "--rate", "0", "--per-host", "8",
                   "--retries", "0"]
            with Service(db, src) as svc:
                st, _, doc = svc.json("POST", "/api/refresh")
                job_id = doc["job"]["id"]
                poll_until_kill(svc, job_id, kill_after_done=20, settle=0)
                fill(os.path.join(mnt, "filler"))
                # The writer keeps the refused batch and retries; the job is not given up.
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and "keeping them and retrying" not in svc.log_text():
                    time.sleep(0.1)
                log = svc.log_text()
                t.check("database or disk is full" in log and "keeping them and retrying" in log,
                        "disk full: the server log says so, and that it keeps the results", log[-800:])
                st, _, doc = svc.json("GET", "/api/jobs/%d" % job_id)
                t.check(doc["job"]["state"] == "running" and doc["job"]["done"] < NBOOKS,
                        "disk full mid-refresh: the job waits (running), nothing is thrown away", doc)
                st, _, doc = svc.json("POST", "/api/books", {"isbns": ["0131103628"]})
                t.check(st == 503 and doc["error"]["code"] == "unavailable" and "full" in doc["error"]["message"],
                        "disk full: adding a book -> 503 unavailable saying the disk is full", (st, doc))
                st, _, doc = svc.json("PATCH", "/api/books/" + ISBNS[0], {"note": "x" * 1500})
                t.check(st == 503 and "full" in doc["error"]["message"], "disk full: a change -> 503 saying the disk is full",
                        (st, doc))
                st, _, doc = svc.json("GET", "/healthz")
                t.check(st == 503 and doc["status"] == "degraded" and "full" in doc["reason"],
                        "disk full: /healthz 503 degraded, saying the disk is full", (st, doc))
                st, _, doc = svc.json("POST", "/api/refresh", {"isbns": ["0131103628"]})
                t.check(st == 503 and "full" in doc["error"]["message"],
                        "disk full: a new refresh -> 503 saying the disk is full", (st, doc))
                st, _, doc = svc.json("GET", "/api/books?limit=1")
                t.check(st == 200, "disk full: reads still work", doc)
                rc, out, err = run_cli(["refresh", "--db", db, "--store-wait", "1"] + src + ISBNS[:3])
                t.check(rc == 1 and "full" in err, "disk full: `bookrank refresh` exits 1 and says the disk is full",
                        (rc, err[-400:]))
                os.unlink(os.path.join(mnt, "filler"))
                job = svc.wait_job(job_id, timeout=60)
                t.check(job and job["state"] == "done" and job["done"] == NBOOKS,
                        "disk full, then space freed: the job completes with every fetch stored", job)
                stored = job["done"] if job else -1
            t.eq(svc.proc.returncode, 0, "disk full: SIGTERM still exits 0")
            integrity, nobs, jobs = db_facts(db)
            t.check(integrity == "ok" and nobs == stored and jobs[job_id][1] == stored,
                    "disk full: no corruption; stored == what the job reported (%d)" % stored,
                    (integrity, nobs, jobs.get(job_id)))
            store.config(default={"delay_ms": 0})
            rc, out, err = run_cli(["refresh", "--db", db] + src + ISBNS[:50])
            t.check(rc == 0, "disk full: after freeing space a refresh works again", err[-400:])
            t.eq(db_facts(db)[2][job_id][0], "done", "disk full: the job is stored as done")

        # Read-only: the same file system remounted read-only.
        integrity, nobs, _ = db_facts(db)
        ro = subprocess.run(["mount", "-o", "remount,ro", mnt], capture_output=True)
        if ro.returncode != 0:
            print("ok - skipped: read-only database (remount failed: %s)" % ro.stderr.decode().strip())
        else:
            rc, _, err = run_cli(["add", "--db", db, "0131103628"])
            t.check(rc == 1 and err.strip() and "bookrank" in err, "read-only: `add` exits 1 with a message",
                    (rc, err))
            rc, _, err = run_cli(["refresh", "--db", db, "--source", "amazon.com=http://127.0.0.1:9/{isbn10}"])
            t.check(rc == 1 and err.strip(), "read-only: `refresh` exits 1 with a message", (rc, err))
            # serve starts all the same, and says why it cannot take changes (test_hardening.py
            # has the details).
            try:
                with Service(db) as svc:
                    st, _, doc = svc.json("GET", "/healthz")
                    t.check(st == 503 and doc["status"] == "degraded" and "read-only" in doc["reason"],
                            "read-only: `serve` starts; /healthz 503 degraded, saying read-only", (st, doc))
                    st, _, doc = svc.json("POST", "/api/books", {"isbns": ["0131103628"]})
                    t.check(st == 503 and "read-only" in doc["error"]["message"],
                            "read-only: `serve` refuses a change with 503 saying read-only", (st, doc))
                t.eq(svc.proc.returncode, 0, "read-only: `serve` exits 0 on SIGTERM")
            except RuntimeError as e:
                t.check(False, "read-only: `serve` starts", str(e)[-600:])
            subprocess.run(["mount", "-o", "remount,rw", mnt], capture_output=True)
            integrity, nobs2, _ = db_facts(db)
            t.check(integrity == "ok" and nobs2 == nobs, "read-only: the database is untouched", (integrity, nobs2))
    finally:
        umount(mnt)

t.done()
