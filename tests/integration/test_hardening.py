"""Hardening, against the real binary:
- a refusal changes nothing: POST /api/books with "refresh": true and POST /api/refresh with ids,
  refused with 429 (64 refreshes of given books unfinished) or 503 (the store refused the job),
  leave no book behind, and never take away a book that was tracked before;
- a read-only database (the file, or its directory) still serves: /healthz answers 503
  {"status": "degraded", "reason": ...} naming why, the log says it, changes get a clear 503;
- fetch errors say what happened: a redirect from https to plain http, an HTTP/0.9 answer, a
  Content-Encoding we did not ask for, damaged compressed data, an untrusted certificate."""
import json
import os
import socket
import sqlite3
import subprocess
import threading
import time

from fixture_lib import FixtureStore, isbn10s
from service_lib import T, Service, run_cli, tmpdir

t = T()
d = tmpdir()


def tracked(svc):
    st, _, doc = svc.json("GET", "/api/books")
    return sorted(b["id"] for b in doc) if st == 200 else ("status", st, doc)


def isbn13(isbn10):
    core = "978" + isbn10[:9]
    s = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(core))
    return core + str((10 - s % 10) % 10)


# ---- 7. a refusal changes nothing: 429 --------------------------------------------------------
with FixtureStore() as store:
    store.config(default={"delay_ms": 3000})
    src = ["--source", "amazon.com=" + store.url("/dp/{isbn10}"), "--per-host", "1", "--rate", "0",
           "--retries", "0", "--grace", "0"]
    db = os.path.join(d, "busy.db")
    rc, _, err = run_cli(["add", "--db", db, "0132269937"])
    t.check(rc == 0, "429: one book tracked before", err)
    with Service(db, src) as svc:
        slow = isbn10s(64, start=300000000)
        codes = [svc.json("POST", "/api/refresh", {"isbns": [i]})[0] for i in slow]
        t.check(codes == [202] * 64, "429: 64 slow refreshes of single books start", codes)
        before = tracked(svc)
        t.check(len(before) == 65 and "9780132269933" in before, "429: 65 books tracked", before)
        fresh = isbn10s(3, start=310000000)
        for what, path, body in [
            ("POST /api/books with refresh", "/api/books", {"isbns": fresh + ["0132269937"], "refresh": True}),
            ("POST /api/books with refresh (ids)", "/api/books", {"ids": fresh, "refresh": True}),
            ("POST /api/refresh with ids", "/api/refresh", {"isbns": fresh + ["0132269937"]}),
        ]:
            st, h, doc = svc.json("POST", path, body)
            t.check(st == 429 and doc["error"]["code"] == "too_many_refreshes" and "location" not in h,
                    "429: %s is refused" % what, (st, doc))
            t.eq(tracked(svc), before, "429: %s added no book and removed none" % what)
            st, _, doc = svc.json("GET", "/api/books/" + fresh[0])
            t.check(st == 404, "429: %s: the refused book is not tracked" % what, (st, doc))
        st, _, doc = svc.json("GET", "/api/books/0132269937")
        t.check(st == 200 and doc["id"] == "9780132269933", "429: the book tracked before is still there", (st, doc))
        # Without "refresh" nothing is refused: the same books are added.
        st, _, doc = svc.json("POST", "/api/books", {"isbns": fresh})
        t.check(st == 201 and len(doc["added"]) == 3, "429: the same books without a refresh are added", (st, doc))


# ---- 7. a refusal changes nothing: 503 from the job's store write ------------------------------
def refused_by_store(svc, db, path, body):
    """Sends the request; as soon as its books are committed (another connection's commit changes
    PRAGMA data_version) takes the write lock and holds it longer than the job's store wait, so
    the job cannot be stored. Returns the answer (status, doc)."""
    con = sqlite3.connect(db, timeout=30, isolation_level=None)
    dv0 = con.execute("PRAGMA data_version").fetchone()[0]
    answer = {}
    th = threading.Thread(target=lambda: answer.update(r=svc.json("POST", path, body, timeout=120)))
    th.start()
    deadline = time.monotonic() + 30
    while th.is_alive() and time.monotonic() < deadline:
        if con.execute("PRAGMA data_version").fetchone()[0] != dv0:
            con.execute("BEGIN IMMEDIATE")
            time.sleep(2.5)
            con.execute("COMMIT")
            break
    th.join(120)
    con.close()
    st, _, doc = answer.get("r", (None, None, None))
    return st, doc


with FixtureStore() as store:
    src = ["--source", "amazon.com=" + store.url("/dp/{isbn10}"), "--rate", "0", "--retries", "0"]
    db = os.path.join(d, "store503.db")
    rc, _, err = run_cli(["add", "--db", db, "0132269937"])
    with Service(db, src) as svc:
        before = tracked(svc)
        for what, path, key in [("POST /api/books with refresh", "/api/books", True),
                                ("POST /api/refresh with ids", "/api/refresh", False)]:
            provoked = False
            for attempt in range(4):
                # Many books: reading their fetches back for the job takes long enough for the
                # lock to be taken in between.
                books = isbn10s(9999, start=320000000 + attempt * 100000 + (0 if key else 50000))
                body = {"isbns": books + ["0132269937"]}
                if key:
                    body["refresh"] = True
                st, doc = refused_by_store(svc, db, path, body)
                if st == 503 and "job" in doc["error"]["message"]:
                    provoked = True
                    msg = doc["error"]["message"]
                    t.check(doc["error"]["code"] == "unavailable" and "lock" in msg and "taken back" not in msg,
                            "503: %s: unavailable, saying the database was locked" % what, doc)
                    now = tracked(svc)
                    t.check(now == before, "503: %s added no book and removed none (%s)" % (
                        what, "%d tracked, %d before" % (len(now), len(before)) if isinstance(now, list) else now))
                    break
                if st == 503:
                    t.eq(tracked(svc), before, "503 (the books' own write refused): %s added nothing" % what)
                elif st in (201, 202):
                    # The job was stored before the lock was taken: take the books back, try again.
                    for b in books:
                        svc.request("DELETE", "/api/books/" + b)
                    before = tracked(svc)
                else:
                    t.check(False, "503: %s: unexpected answer" % what, (st, doc))
                    break
            if not provoked:
                print("ok - skipped: could not make the store refuse the job of %s in 4 tries" % what)


# ---- 10. a read-only database: the file, or its directory -------------------------------------
def run(*argv):
    p = subprocess.run(list(argv), capture_output=True, timeout=30)
    return p.returncode, p.stderr.decode("utf-8", "replace").strip()


def readonly_file(path):
    """Makes the database file read-only for this process: chmod 444, or, for root (whom modes
    do not stop), the immutable attribute. (undo, None) or (None, why not)."""
    if os.getuid() != 0:
        os.chmod(path, 0o444)
        return (lambda: os.chmod(path, 0o644)), None
    rc, err = run("chattr", "+i", path)
    if rc != 0:
        return None, "chattr +i: " + err
    return (lambda: run("chattr", "-i", path)), None


def readonly_dir(src, view):
    """The directory src as seen read-only: chmod 555, or for root a read-only bind mount at
    view. (directory to use, undo) or (None, why not)."""
    if os.getuid() != 0:
        os.chmod(src, 0o555)
        return src, (lambda: os.chmod(src, 0o755))
    os.makedirs(view, exist_ok=True)
    rc, err = run("mount", "--bind", src, view)
    if rc != 0:
        return None, "mount --bind: " + err
    rc, err = run("mount", "-o", "remount,bind,ro", view)
    if rc != 0:
        run("umount", view)
        return None, "mount -o remount,bind,ro: " + err
    return view, (lambda: run("umount", view))


def db_facts(path):
    con = sqlite3.connect(path)
    try:
        return (con.execute("PRAGMA integrity_check").fetchone()[0],
                [r[0] for r in con.execute("SELECT id FROM books ORDER BY id")])
    finally:
        con.close()


def check_readonly_service(kind, db, names, reads_work):
    try:
        svc = Service(db, ["--source", "amazon.com=http://127.0.0.1:9/dp/{isbn10}"])
    except RuntimeError as e:
        t.check(False, "read-only %s: serve starts" % kind, str(e)[-800:])
        return
    with svc:
        t.check(True, "read-only %s: serve starts" % kind)
        st, _, doc = svc.json("GET", "/healthz")
        reason = (doc or {}).get("reason") or ""
        t.check(st == 503 and doc.get("status") == "degraded" and "read-only" in reason,
                "read-only %s: /healthz 503 degraded, naming why" % kind, (st, doc))
        t.check(names in reason, "read-only %s: the reason names %s" % (kind, names), reason)
        log = svc.log_text()
        t.check(reason and reason in log.split("GET /healthz")[0],
                "read-only %s: the log says why at start" % kind, log[-1200:])
        for what, method, path, body in [
            ("POST /api/books", "POST", "/api/books", {"isbns": ["0131103628"]}),
            ("POST /api/books with refresh", "POST", "/api/books", {"isbns": ["0131103628"], "refresh": True}),
            ("POST /api/refresh", "POST", "/api/refresh", None),
            ("POST /api/refresh with ids", "POST", "/api/refresh", {"isbns": ["0131103628"]}),
            ("PATCH /api/books/{id}", "PATCH", "/api/books/0132269937", {"note": "x"}),
            ("DELETE /api/books/{id}", "DELETE", "/api/books/0132269937", None),
        ]:
            st, h, doc = svc.json(method, path, body)
            msg = doc["error"]["message"] if st == 503 and doc and "error" in doc else ""
            t.check(st == 503 and doc["error"]["code"] == "unavailable" and "read-only" in msg,
                    "read-only %s: %s -> 503 saying the database is read-only" % (kind, what), (st, doc))
        st, _, doc = svc.json("GET", "/api/books")
        if reads_work:
            t.check(st == 200 and [b["id"] for b in doc] == ["9780132269933"],
                    "read-only %s: reads still work" % kind, (st, doc))
        else:
            t.check(st == 503 and doc["error"]["code"] == "unavailable" and "read-only" in doc["error"]["message"],
                    "read-only %s: a read the store cannot answer -> 503 saying why" % kind, (st, doc))
        st, _, doc = svc.json("GET", "/api/config")
        t.check(st == 200 and "sources" in doc, "read-only %s: /api/config answers" % kind, (st, doc))
        st, _, body = svc.request("GET", "/")
        t.check(st == 200 and b"<html" in body.lower(), "read-only %s: the dashboard loads" % kind, st)
        st, _, body = svc.request("GET", "/metrics")
        t.check(st == 200, "read-only %s: /metrics answers" % kind, st)
    t.eq(svc.proc.returncode, 0, "read-only %s: SIGTERM exits 0" % kind)


# The file: SQLite opens it read-only and can still create its -wal and -shm files beside it.
rodir = os.path.join(d, "rofile")
os.makedirs(rodir)
db = os.path.join(rodir, "ro.db")
rc, _, err = run_cli(["add", "--db", db, "0132269937"])
before = db_facts(db)
undo, why = readonly_file(db)
if not undo:
    print("ok - skipped: read-only file (%s)" % why)
else:
    try:
        check_readonly_service("file", db, os.path.realpath(db), reads_work=True)
    finally:
        undo()
    t.eq(db_facts(db), before, "read-only file: the database is as it was")

# The directory: SQLite cannot create the -wal and -shm files, so it cannot even read the file.
src = os.path.join(d, "rodir-src")
os.makedirs(src)
db = os.path.join(src, "ro.db")
rc, _, err = run_cli(["add", "--db", db, "0132269937"])
t.check(rc == 0 and not os.path.exists(db + "-wal"), "read-only directory: a database without -wal/-shm", err)
before = db_facts(db)
where, undo = readonly_dir(src, os.path.join(d, "rodir-view"))
if not where:
    print("ok - skipped: read-only directory (%s)" % undo)
else:
    try:
        # Served through a symbolic link from a writable directory (the test's log goes beside
        # it): the directory that counts is the real file's, where SQLite puts -wal and -shm.
        link = os.path.join(d, "rodir-link.db")
        os.symlink(os.path.join(where, "ro.db"), link)
        check_readonly_service("directory", link, os.path.realpath(where), reads_work=False)
    finally:
        undo()
    t.eq(db_facts(db), before, "read-only directory: the database is as it was")


# ---- 13. fetch errors say what happened ----------------------------------------------------------
PAGE = (b"<html><head><title>x</title></head><body><span id='productTitle'>Raw Page</span>"
        b"<li id='SalesRank'><b>Best Sellers Rank:</b> #1,234 in Books</li></body></html>")


def brotli(data):
    """data compressed with libbrotlienc (through ctypes), or None when it is not installed."""
    import ctypes
    import ctypes.util
    for name in ("libbrotlienc.so.1", ctypes.util.find_library("brotlienc") or ""):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        out = ctypes.create_string_buffer(len(data) + 1024)
        n = ctypes.c_size_t(len(out))
        if lib.BrotliEncoderCompress(11, 22, 0, ctypes.c_size_t(len(data)), data, ctypes.byref(n), out):
            return out.raw[:n.value]
    return None


class RawStore:
    """A loopback "store" that answers with raw bytes, as no HTTP library would: the answer for
    a request is answers[first path segment]. Records each request's head."""

    def __init__(self, answers):
        self.answers = answers
        self.heads = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def url(self, mode):
        return "http://127.0.0.1:%d/%s/dp/{isbn10}" % (self.port, mode)

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(5)
                head = b""
                try:
                    while b"\r\n\r\n" not in head:
                        chunk = c.recv(4096)
                        if not chunk:
                            break
                        head += chunk
                    self.heads.append(head.decode("latin-1"))
                    mode = head.split(b" ")[1].split(b"/")[1].decode() if b" /" in head else ""
                    c.sendall(self.answers.get(mode, b"HTTP/1.1 500 x\r\nContent-Length: 0\r\n\r\n"))
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def answer(encoding, body):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: %s\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (encoding, len(body))) + body


def fetch_error(template, env=None):
    """The observation of one `bookrank refresh` of one book from template: (status, error)."""
    db = os.path.join(d, "fetch-%d.db" % time.monotonic_ns())
    rc, out, err = run_cli(["refresh", "--json", "--db", db, "--retries", "0", "--source",
                            "amazon.com=" + template, "0132269937"], env=env)
    try:
        r = json.loads(out)["results"][0]
        return r["status"], r["error"] or ""
    except (ValueError, KeyError, IndexError):
        return None, "no result: rc %d %s %s" % (rc, out[-300:], err[-300:])


br_page = brotli(PAGE)
raw = RawStore({
    "http09": PAGE,
    "brbad": answer(b"br", b"\x1b\xff\xff\xff this is not brotli at all" * 4),
    "brok": answer(b"br", br_page or b""),
    "gzbad": answer(b"gzip", b"\x1f\x8b\x08\x00 not really gzip" * 4),
    "compress": answer(b"compress", b"\x1f\x9d\x90 lzw bytes"),
})
try:
    st, e = fetch_error(raw.url("http09"))
    t.check(st == "error" and "HTTP/0.9" in e and "without" in e,
            "an HTTP/0.9 answer (no status line, no headers) is named as such", (st, e))
    st, e = fetch_error(raw.url("compress"))
    t.check(st == "error" and "compress" in e and "did not ask for" in e,
            "an answer in a Content-Encoding we did not ask for names it", (st, e))
    accept = [h for h in raw.heads if "/compress/" in h]
    accept = accept[0].lower().split("accept-encoding:")[1].split("\r\n")[0] if accept and "accept-encoding:" in accept[0].lower() else ""
    st, e = fetch_error(raw.url("gzbad"))
    t.check(st == "error" and "gzip" in e and "damaged" in e and "cannot decode" not in e,
            "damaged gzip data is named as damaged (not as a compression we cannot decode)", (st, e))
    st, e = fetch_error(raw.url("brbad"))
    if "br" in [a.strip() for a in accept.split(",")]:
        t.check(st == "error" and "br" in e and "damaged" in e and "cannot decode" not in e,
                "damaged brotli data (br, which we asked for) is named as damaged", (st, e))
        if br_page:
            st, e = fetch_error(raw.url("brok"))
            t.check(st == "ok", "a brotli page (br, which we asked for) is read", (st, e))
        else:
            print("ok - skipped: a brotli page is read (no libbrotlienc to make one)")
    else:
        t.check(st == "error" and "br" in e and "did not ask for" in e,
                "a brotli answer, which this build did not ask for, names the encoding", (st, e))
    t.check(accept != "", "the fetcher says which encodings it takes (Accept-Encoding: %s)" % accept.strip(), raw.heads[:1])
finally:
    raw.close()

# https -> plain http: the redirect is not followed, and the message says why.
from receivers import WebhookReceiver  # noqa: E402  (tests/lib, like the others)

with FixtureStore() as store, WebhookReceiver(tls=True) as tls:
    target = store.url("/dp/0132269937")
    tls.fail_next(100, status=301, body=b"", headers={"Location": target})
    st, e = fetch_error(tls.url("/dp/{isbn10}"))
    t.check(st == "error" and "certificate" in e and "fetch failed" not in e,
            "an https store whose certificate is not trusted: the message says so", (st, e))
    st, e = fetch_error(tls.url("/dp/{isbn10}"), env={"BOOKRANK_TEST_CA_FILE": tls.ca_file})
    t.check(st == "error" and "https to plain http" in e and target in e,
            "a redirect from https to plain http is refused, naming it", (st, e))
    t.eq(store.stats()["requests"], 0, "the plain http address was never asked")


t.done()
