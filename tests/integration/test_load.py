"""Load on the live `bookrank serve`: 1,000 idle and slowloris connections (from 127.0.0.2-5, since
the server allows 256 per address and 1024 in all) do not stop a normal client on 127.0.0.1 from
being served within a second, and the server still stops cleanly with them open; then 200
concurrent API clients for 30 s (LOAD_SECONDS; 8 s under a sanitizer build) get no error while
the server's memory (VmRSS from /proc) stays flat. Under `make sanitize` LeakSanitizer checks the
server at its exit.
"""
import http.client
import os
import resource
import signal
import socket
import threading
import time

from fixture_lib import FixtureStore
from service_lib import T, Service, run_cli, tmpdir

t = T()
d = tmpdir()
SANITIZED = any(s in os.environ.get("BUILD", "") for s in ("asan", "tsan"))
LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", "8" if SANITIZED else "30"))
SLOW_SOURCES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
SLOW_PER_SOURCE = 250
BOOKS = ["9780132269933", "9780131103627", "9780804429573", "9780306406157"]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def timed_get(port, path, timeout=5):
    """(status, seconds) of one GET on a fresh connection from 127.0.0.1."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=("127.0.0.1", 0))
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.monotonic() - t0
    except OSError as e:
        return repr(e), time.monotonic() - t0
    finally:
        conn.close()


# Each slow connection is a descriptor here too: raise this process's soft limit as needed.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
need = len(SLOW_SOURCES) * SLOW_PER_SOURCE + 512
if soft != resource.RLIM_INFINITY and soft < need:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard) if hard != resource.RLIM_INFINITY else need, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
t.check(soft == resource.RLIM_INFINITY or soft >= need, "ulimit -n %s is enough for %d sockets" % (soft, need))

db = os.path.join(d, "load.db")
with FixtureStore() as store:
    src = ["--source", "amazon.com=" + store.url("/dp/{isbn10}"), "--rate", "0", "--per-host", "8",
           "--retries", "0"]
    rc, _, err = run_cli(["refresh", "--db", db] + src + BOOKS)
    t.check(rc == 0, "setup: books with observations", err)

    # ---- 1,000 idle and slowloris connections -------------------------------------------------
    with Service(db, src) as svc:
        slow, failed = [], []
        for n in range(len(SLOW_SOURCES) * SLOW_PER_SOURCE):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((SLOW_SOURCES[n % len(SLOW_SOURCES)], 0))
                s.settimeout(5)
                s.connect(("127.0.0.1", svc.port))
                # Half stay silent, half start a request and never finish its headers.
                if n % 2:
                    s.sendall(b"GET /api/books HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                s.setblocking(False)
                slow.append(s)
            except OSError as e:
                failed.append(repr(e))
                s.close()
        t.check(not failed and len(slow) == 1000, "1,000 slow connections opened from 127.0.0.2-5",
                (len(slow), failed[:3]))
        time.sleep(0.5)
        fds = open_fds(svc.proc.pid)
        t.check(fds >= 1000, "the server holds them (%d descriptors open)" % fds)

        worst, statuses = 0.0, []
        trickle_until = time.monotonic() + 6
        rounds = 0
        while time.monotonic() < trickle_until:
            # The slowloris half sends one more header byte every couple of seconds.
            if rounds % 4 == 0:
                for i, s in enumerate(slow):
                    if i % 2:
                        try:
                            s.send(b"a")
                        except OSError:
                            pass
            for path in ("/healthz", "/api/books", "/api/books/9780132269933/history"):
                st, secs = timed_get(svc.port, path)
                statuses.append(st)
                worst = max(worst, secs)
            rounds += 1
            time.sleep(0.5)
        t.check(all(st == 200 for st in statuses), "a normal client is served beside them (%d requests)"
                % len(statuses), statuses[:10])
        t.check(worst < 1.0, "every one within a second (worst %.0f ms)" % (worst * 1000))
        alive = sum(1 for s in slow if s.fileno() >= 0)
        t0 = time.monotonic()
        svc.signal(signal.SIGTERM)
        rc = svc.wait(30)
        t.check(rc == 0 and time.monotonic() - t0 < 10,
                "SIGTERM with %d slow connections open: exit 0 in %.1f s" % (alive, time.monotonic() - t0), rc)
        for s in slow:
            s.close()

    # ---- 200 concurrent API clients ---------------------------------------------------------------
    with Service(db, src) as svc:
        pid = svc.proc.pid
        paths = ["/api/books", "/api/books/9780132269933", "/api/books/0131103628/history?limit=5",
                 "/healthz", "/api/jobs/1", "/api/config", "/metrics", "/api/books?status=ok",
                 "/api/books/9780306406152"]            # last one: a 400 on purpose
        expect = {"/api/books/9780306406152": 400}
        stop_at = time.monotonic() + LOAD_SECONDS
        counts = {"requests": 0}
        errors = []
        lock = threading.Lock()

        def client(k):
            conn = None
            done = 0
            while time.monotonic() < stop_at:
                path = paths[(k + done) % len(paths)]
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=10)
                    if done % 25 == 24:      # a write now and then: re-adding a tracked book
                        conn.request("POST", "/api/books", body=b'{"isbns": ["9780132269933"]}',
                                     headers={"Content-Type": "application/json"})
                        want = 200     # nothing new: 200 (201 only when something was added)
                    else:
                        conn.request("GET", path)
                        want = expect.get(path, 200)
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status != want:
                        with lock:
                            errors.append((path, resp.status))
                    if resp.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        errors.append((path, repr(e)))
                    if conn:
                        conn.close()
                    conn = None
                done += 1
            if conn:
                conn.close()
            with lock:
                counts["requests"] += done

        samples = []
        threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(200)]
        started = time.monotonic()
        for th in threads:
            th.start()
        while time.monotonic() < stop_at:
            samples.append((time.monotonic() - started, rss_kib(pid)))
            time.sleep(min(1.0, max(0.05, stop_at - time.monotonic())))
        for th in threads:
            th.join(20)
        samples.append((time.monotonic() - started, rss_kib(pid)))
        elapsed = time.monotonic() - started
        total = counts["requests"]
        t.check(not errors and total > 0, "200 clients for %.0f s: %d requests (%.0f/s), no error"
                % (elapsed, total, total / elapsed), errors[:10])
        # Memory: compare the end with a sample a third of the way in (after warm-up: thread
        # stacks, SQLite page caches and MHD pools are in place by then).
        warm = [kib for when, kib in samples if when >= elapsed / 3][0]
        end = samples[-1][1]
        peak = max(kib for _, kib in samples)
        bound = warm * 2 + 64 * 1024 if SANITIZED else warm * 1.25 + 16 * 1024
        t.check(end <= bound, "RSS flat under load: %d KiB warm, %d KiB at the end, %d KiB peak (bound %d)"
                % (warm, end, peak, bound), samples)
        st, secs = timed_get(svc.port, "/healthz")
        t.check(st == 200, "healthy after the load (%.0f ms)" % (secs * 1000))
    t.eq(svc.proc.returncode, 0, "SIGTERM after the load: exit 0 (LeakSanitizer runs here under ASan)")

t.done()
