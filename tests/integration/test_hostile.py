"""Hostile HTTP input against the live `bookrank serve`: a table of requests no honest client
sends (broken JSON, wrong types, NUL bytes and invalid UTF-8, oversized and lying framing, path
traversal, overflowing query values, non-HTTP bytes, odd methods). Each must get a 4xx with a
JSON error, or, where HTTP itself is broken and libmicrohttpd answers before our code runs, its
own short 4xx or a clean close; never a 5xx (except MHD's 505 for an unsupported HTTP version)
and never a hang. After every case the server must answer GET /healthz and the stored data must
be unchanged. README.md "## Security" describes what is accepted and why.
"""
import json
import os
import socket
import sqlite3
import threading
import time

from fixture_lib import FixtureStore, isbn10s
from service_lib import T, Service, run_cli, tmpdir

t = T()
d = tmpdir()
db = os.path.join(d, "hostile.db")
BOOKS = ["9780132269933", "9780131103627", "9780804429573", "9780306406157"]
CASE_TIMEOUT = 5.0
JSON_ONLY_PATH = b"/api/books"


# ---- a raw HTTP exchange that tells a response, a clean close, a reset and a hang apart ------

def split_response(buf):
    """(status, headers, body, complete) of the final response in buf (1xx skipped)."""
    while True:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if not sep:
            return None, {}, b"", False
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            return None, {}, b"", False
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.setdefault(k.strip().lower(), v.strip())
        if 100 <= status < 200:
            buf = rest
            continue
        n = headers.get("content-length")
        complete = n is not None and n.isdigit() and len(rest) >= int(n)
        return status, headers, rest, complete


def exchange(port, data, shut=False, timeout=CASE_TIMEOUT, src="127.0.0.1"):
    """Sends data (bytes, or a callable yielding pieces) from a second thread while reading.
    Returns {"status", "headers", "body", "outcome"}: outcome is "response" (a complete answer),
    "closed" (server closed: with or without an answer), "reset" or "hang" (nothing within
    timeout and the connection still open)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((src, 0))
    sock.connect(("127.0.0.1", port))

    def sender():
        try:
            for piece in (data() if callable(data) else [data]):
                sock.sendall(piece)
            if shut:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may stop reading once it has answered

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    buf, outcome = b"", "hang"
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            c = sock.recv(65536)
            if not c:
                outcome = "closed"
                break
            buf += c
            if split_response(buf)[3]:
                outcome = "response"
                break
    except socket.timeout:
        outcome = "hang"
    except ConnectionResetError:
        outcome = "reset"
    finally:
        sock.close()
        th.join(5)
    status, headers, body, _ = split_response(buf)
    return {"status": status, "headers": headers, "body": body, "outcome": outcome, "raw": buf}


# ---- expectations --------------------------------------------------------------------------

def json_error(res, statuses, codes):
    """A JSON error body {"error": {"code", "message", "details"}} with an expected status."""
    statuses = statuses if isinstance(statuses, tuple) else (statuses,)
    codes = codes if isinstance(codes, tuple) or codes is None else (codes,)
    if res["status"] not in statuses:
        return False
    if not res["headers"].get("content-type", "").startswith("application/json"):
        return False
    try:
        doc = json.loads(res["body"])          # strict: the body must be valid UTF-8 JSON
    except ValueError:
        return False
    err = doc.get("error") if isinstance(doc, dict) else None
    return isinstance(err, dict) and isinstance(err.get("message"), str) \
        and isinstance(err.get("details"), list) and (codes is None or err.get("code") in codes)


def J(statuses, codes=None):
    return lambda res: json_error(res, statuses, codes)


def MHD(*statuses, close_ok=False):
    """libmicrohttpd's own answer to broken HTTP (short HTML, Connection: close), or a clean
    close when close_ok."""
    def ok(res):
        if res["status"] in statuses:
            return res["outcome"] in ("response", "closed")
        return close_ok and res["status"] is None and res["outcome"] in ("closed", "reset")
    return ok


def CLOSED(also=()):
    """The server closes without hanging (a 4xx first is fine, e.g. for a truncated body)."""
    def ok(res):
        if res["outcome"] == "hang":
            return False
        return res["status"] is None or res["status"] in also or json_error(res, also, None)
    return ok


def SERVED(status):
    """A request that is odd but well-formed and harmless: answered normally, in JSON."""
    def ok(res):
        if res["status"] != status:
            return False
        try:
            json.loads(res["body"])
            return True
        except ValueError:
            return False
    return ok


# ---- request builders ------------------------------------------------------------------------

def req(method, path, body=None, ctype=None, headers=(), version=b"HTTP/1.1"):
    out = b"%s %s %s\r\nHost: 127.0.0.1\r\n" % (method, path, version)
    if ctype is not None:
        out += b"Content-Type: " + ctype + b"\r\n"
    for h in headers:
        out += h + b"\r\n"
    if body is not None:
        out += b"Content-Length: %d\r\n" % len(body)
    return out + b"\r\n" + (body or b"")


def post_json(body, path=b"/api/books"):
    return req(b"POST", path, body, b"application/json")


def post_text(body, path=b"/api/books"):
    return req(b"POST", path, body, b"text/plain")


def get(path, headers=()):
    return req(b"GET", path, headers=headers)


def chunked(pieces, path=b"/api/books", ctype=b"text/plain"):
    head = (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" % (path, ctype))

    def gen():
        yield head
        for p in pieces():
            yield b"%x\r\n%s\r\n" % (len(p), p)
        yield b"0\r\n\r\n"
    return gen


H = "/api/books/9780132269933/history"
MIB = 1 << 20
valid_many = json.dumps(isbn10s(10000)).encode()
rnd = bytes((i * 131 + 7) % 256 for i in range(4096))   # deterministic "random" bytes
rnd_no_nl = rnd.replace(b"\n", b"").replace(b"\r", b"")
client_hello = (b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03" + bytes(range(32)) + b"\x00\x00\x02\x13\x01"
                b"\x01\x00\x00\x99\x00\x00\x00\x0e\x00\x0c\x00\x00\x09localhost" + b"\x00" * 140)

# (name, request bytes or generator, half-close after sending, expectation)
CASES = [
    # -- JSON bodies: nesting, size, types ----------------------------------------------------
    ("JSON nested 400,000 deep", post_json(b"[" * 400000 + b"]" * 400000), False, J(400, "invalid_json")),
    ("JSON nested inside isbns", post_json(b'{"isbns":' + b"[" * 100000 + b"]" * 100000 + b"}"), False,
     J(400, "invalid_json")),
    ("JSON one 1,000,000-digit ISBN", post_json(b'{"isbns":["' + b"9" * 1000000 + b'"]}'), False,
     J(400, "invalid_isbn")),
    ("JSON 80,000 ISBNs (cap 10,000)", post_json(b'{"isbns":[' + b",".join([b'"0132269937"'] * 80000) + b"]}"),
     False, J(400, "too_many_isbns")),
    ("JSON 10,000 valid ISBNs but refresh is 1", post_json(b'{"isbns":' + valid_many + b', "refresh": 1}'), False,
     J(400, "invalid_body")),
    ("JSON 9,999 valid ISBNs + one bad: none added",
     post_json(json.dumps({"isbns": isbn10s(9999) + ["0132269938"]}).encode()), False, J(400, "invalid_isbn")),
    ("JSON body of 1 MiB + 1 byte", post_json(b'{"isbns":["' + b"0" * (MIB - 11) + b'"]}'), False,
     J(413, "payload_too_large")),
    ("JSON isbns is a string", post_json(b'{"isbns": "9780132269933"}'), False, J(400, "invalid_body")),
    ("JSON isbns is an object", post_json(b'{"isbns": {"0": "9780132269933"}}'), False, J(400, "invalid_body")),
    ("JSON isbns holds null, {}, [], true, 5", post_json(b'{"isbns": [null, {}, [], true, 5]}'), False,
     J(400, "invalid_isbn")),
    ("JSON top level is a number", post_json(b"42"), False, J(400, ("invalid_json", "invalid_body"))),
    ("JSON top level is null", post_json(b"null"), False, J(400, ("invalid_json", "invalid_body"))),
    ("JSON number 1e400", post_json(b'{"isbns": [1e400]}'), False, J(400, "invalid_json")),
    ("JSON integer 2^70", post_json(b'{"isbns": ["0132269937"], "refresh": 1180591620717411303424}'), False,
     J(400, ("invalid_json", "invalid_body"))),
    ("JSON \\u0000 inside a string", post_json(b'{"isbns": ["978\\u00000132269933"]}'), False,
     J(400, "invalid_json")),
    ("JSON raw NUL byte", post_json(b'{"isbns": ["978\x000132269933"]}'), False, J(400, "invalid_json")),
    ("JSON invalid UTF-8", post_json(b'{"isbns": ["\xff\xfe\xc0\xaf0132269937"]}'), False, J(400, "invalid_json")),
    ("JSON lone surrogate \\ud800", post_json(b'{"isbns": ["\\ud800"]}'), False, J(400, "invalid_json")),
    ("JSON duplicate keys", post_json(b'{"isbns": ["0132269937"], "isbns": []}'), False, J(400, "invalid_json")),
    ("JSON trailing garbage", post_json(b'{"isbns": ["0132269937"]} <script>'), False, J(400, "invalid_json")),
    ("JSON empty body to POST /api/books", post_json(b""), False, J(400, "invalid_json")),
    ("JSON refresh with a bad ISBN starts no job", post_json(b'{"isbns": ["0132269937", "x"]}', b"/api/refresh"),
     False, J(400, "invalid_isbn")),
    ("JSON refresh with isbns: 5", post_json(b'{"isbns": 5}', b"/api/refresh"), False, J(400, "invalid_body")),
    # -- text bodies, content types, headers -----------------------------------------------------
    ("text/plain invalid UTF-8 (echo stays valid JSON)", post_text(b"\xff\xfe\xed\xa0\x80\n0132269937"), False,
     J(400, "invalid_isbn")),
    ("text/plain NUL bytes", post_text(b"0132269937\x00\n\x00\x00"), False, J(400, "invalid_isbn")),
    ("text/plain 200,000 commas and one ISBN", post_text(b"," * 200000 + b"x"), False, J(400, "invalid_isbn")),
    ("Content-Type application/xml", req(b"POST", b"/api/books", b"<isbns/>", b"application/xml"), False,
     J(415, "unsupported_media_type")),
    ("Content-Type with NUL", req(b"POST", b"/api/books", b"0132269937", b"text/pl\x00ain"), False,
     J(415, "unsupported_media_type")),
    ("Content-Type invalid UTF-8", req(b"POST", b"/api/books", b"0132269937", b"\xff\xfe/\xc0"), False,
     J(415, "unsupported_media_type")),
    ("header value 70 KB", get(b"/healthz", [b"X-Big: " + b"a" * 70000]), False, MHD(431)),
    ("3,000 header lines", get(b"/healthz", [b"X-A: b"] * 3000), False, MHD(431)),
    ("header line without a colon", get(b"/healthz", [b"garbage"]), False, MHD(400)),
    # -- framing: Content-Length, chunked -----------------------------------------------------
    ("Content-Length 2,000,000 with Expect: 100-continue refused before the body",
     b"POST /api/books HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2000000\r\n"
     b"Expect: 100-continue\r\n\r\n", False, J(413, "payload_too_large")),
    ("Content-Length 2,000,000 without Expect, body sent: drained, then 413",
     b"POST /api/books HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2000000\r\n\r\n"
     + b"0132269937\n" * 181818 + b"01", False, J(413, "payload_too_large")),
    ("Content-Length 20 MiB without Expect: refused at once (past the drain limit)",
     b"POST /api/books HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 20971520\r\n\r\n", False,
     J(413, "payload_too_large")),
    ("Content-Length negative", b"POST /api/books HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", False,
     MHD(400)),
    ("Content-Length 10^23", b"POST /api/books HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
     False, MHD(413)),
    ("Content-Length not a number", b"POST /api/books HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n", False,
     MHD(400)),
    ("Content-Length lies (100, sends 2, closes)",
     b"POST /api/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{}", True,
     CLOSED()),
    ("Content-Length twice, different", b"POST /api/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Content-Length: 2\r\nContent-Length: 27\r\n\r\n{\"isbns\": [\"0132269937\"]}", False, J(400, "invalid_body")),
    ("Content-Length with Transfer-Encoding (smuggling)", b"POST /api/books HTTP/1.1\r\nHost: x\r\n"
     b"Content-Type: text/plain\r\nContent-Length: 15\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0132269937\r\n0\r\n\r\n",
     False, J(400, "invalid_body")),
    ("Transfer-Encoding gzip", b"POST /api/books HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
     b"Transfer-Encoding: gzip\r\n\r\n0132269937", False, J(400, "invalid_body")),
    ("chunked 3 MiB (cap 1 MiB)", chunked(lambda: [b"0132269937\n" * 6000] * 48), False, J(413, "payload_too_large")),
    ("chunked stream of 20 MiB: cut after 16 MiB", chunked(lambda: [b"x" * 65536] * 320), False, CLOSED((413,))),
    ("chunk size not hex", b"POST /api/books HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
     b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", False, MHD(400)),
    ("chunk size 2^80", b"POST /api/books HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
     b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nabc\r\n0\r\n\r\n", False, MHD(413)),
    ("chunk announces 2 MiB, sends 3 bytes, closes", b"POST /api/books HTTP/1.1\r\nHost: x\r\n"
     b"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\nabc", True, CLOSED((413,))),
    # -- paths -----------------------------------------------------------------------------------
    ("traversal /../../etc/passwd", get(b"/../../etc/passwd"), False, J(404, "not_found")),
    ("traversal /%2e%2e/%2e%2e/etc/passwd", get(b"/%2e%2e/%2e%2e/etc/passwd"), False, J(404, "not_found")),
    ("traversal //etc/passwd", get(b"//etc/passwd"), False, J(404, "not_found")),
    ("traversal /api/books/..%2f..%2fetc%2fpasswd", get(b"/api/books/..%2f..%2fetc%2fpasswd"), False,
     J((400, 404), ("invalid_isbn", "not_found"))),
    ("traversal /app.js/../../../etc/passwd", get(b"/app.js/../../../etc/passwd"), False, J(404, "not_found")),
    ("traversal %5c..%5c..%5cetc", get(b"/%5c..%5c..%5cetc%5cpasswd"), False, J(404, "not_found")),
    ("path %00 after the ISBN", get(b"/api/books/9780132269933%00/history"), False, J(400, "invalid_isbn")),
    ("DELETE with %00junk after the ISBN", req(b"DELETE", b"/api/books/9780132269933%00junk"), False,
     J(400, "invalid_isbn")),
    ("path invalid UTF-8 (raw)", get(b"/api/books/\xff\xfe\xc0\xaf"), False, J(400, "invalid_isbn")),
    ("path invalid UTF-8 (%ff)", get(b"/api/books/%ff%fe%c0%af"), False, J(400, "invalid_isbn")),
    ("path with %0a and escape codes (log forging)", get(b"/x%0a2026-01-01T00:00:00Z%20error%20forged%1b[31m"),
     False, J(404, "not_found")),
    ("path 3,000 bytes", get(b"/" + b"x" * 3000), False, J(414)),
    ("path 300 segments", get(b"/api/books/9780132269933/" + b"a/" * 300), False, J(404, "not_found")),
    ("request line 100 KB", get(b"/" + b"a" * 100000), False, MHD(414, 431)),
    ("ISBN of 300 digits", get(b"/api/books/" + b"9" * 300), False, J((400, 404), ("invalid_isbn", "not_found"))),
    # -- query strings ---------------------------------------------------------------------------
    ("limit=99999999999999999999", get(H.encode() + b"?limit=99999999999999999999"), False,
     J(400, "invalid_query")),
    ("limit=-1", get(H.encode() + b"?limit=-1"), False, J(400, "invalid_query")),
    ("limit=0x10", get(H.encode() + b"?limit=0x10"), False, J(400, "invalid_query")),
    ("limit=1%00", get(H.encode() + b"?limit=1%00"), False, J(400, "invalid_query")),
    ("limit=%ff", get(H.encode() + b"?limit=%ff"), False, J(400, "invalid_query")),
    ("since=9999-99-99", get(H.encode() + b"?since=9999-99-99"), False, J(400, "invalid_query")),
    ("since=2026-02-30", get(H.encode() + b"?since=2026-02-30"), False, J(400, "invalid_query")),
    ("since=2025-02-29 (not a leap year)", get(H.encode() + b"?since=2025-02-29"), False, J(400, "invalid_query")),
    ("since=99999-01-01T00:00:00Z", get(H.encode() + b"?since=99999-01-01T00:00:00Z"), False,
     J(400, "invalid_query")),
    ("since=2026-01-01T25:61:00Z", get(H.encode() + b"?since=2026-01-01T25:61:00Z"), False,
     J(400, "invalid_query")),
    ("since with %00", get(H.encode() + b"?since=2026-01-01%00T00:00:00Z"), False, J(400, "invalid_query")),
    ("since=<script>", get(H.encode() + b"?since=%3cscript%3ealert(1)%3c/script%3e"), False,
     J(400, "invalid_query")),
    ("status=%00", get(b"/api/books?status=%00"), False, J(400, "invalid_query")),
    ("status invalid UTF-8", get(b"/api/books?status=%ff%fe"), False, J(400, "invalid_query")),
    ("status=ok%0a", get(b"/api/books?status=ok%0a"), False, J(400, "invalid_query")),
    # MHD 0.9.75 runs out of its 64 KiB connection pool and drops its own 431: a clean close.
    ("2,000 query arguments", get(b"/api/books?" + b"a=1&" * 2000), False, CLOSED((414, 431))),
    # -- jobs ------------------------------------------------------------------------------------
    ("unknown job 123456789", get(b"/api/jobs/123456789"), False, J(404, "job_not_found")),
    ("job id 99999999999999999999", get(b"/api/jobs/99999999999999999999"), False, J(400, "invalid_query")),
    ("job id -1", get(b"/api/jobs/-1"), False, J(400, "invalid_query")),
    ("job id 0", get(b"/api/jobs/0"), False, J(400, "invalid_query")),
    ("job id 1e3", get(b"/api/jobs/1e3"), False, J(400, "invalid_query")),
    ("job id %00 1", get(b"/api/jobs/%001"), False, J(400, "invalid_query")),
    # -- methods ---------------------------------------------------------------------------------
    ("TRACE /", req(b"TRACE", b"/"), False, J(405, "method_not_allowed")),
    ("TRACE /api/books", req(b"TRACE", b"/api/books"), False, J(405, "method_not_allowed")),
    ("CONNECT 127.0.0.1:22", req(b"CONNECT", b"127.0.0.1:22"), False, J((400, 404, 405))),
    ("OPTIONS *", req(b"OPTIONS", b"*"), False, J((400, 404, 405))),
    ("OPTIONS /api/books", req(b"OPTIONS", b"/api/books"), False, J(405, "method_not_allowed")),
    ("PUT /api/refresh", req(b"PUT", b"/api/refresh", b"{}", b"application/json"), False,
     J(405, "method_not_allowed")),
    ("lower-case get", req(b"get", b"/healthz"), False, J(405, "method_not_allowed")),
    ("method of 200 letters", req(b"X" * 200, b"/api/books"), False, J(405, "method_not_allowed")),
    # -- not HTTP ----------------------------------------------------------------------------------
    ("random binary, no newline, then close", rnd_no_nl, True, CLOSED((400,))),
    ("random binary with newlines", rnd, False, MHD(400, 414, 431, close_ok=True)),
    ("TLS ClientHello", client_hello, True, MHD(400, close_ok=True)),
    ("HTTP/0.9 request", b"GET /\r\n", False, MHD(400, close_ok=True)),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", False, MHD(505)),
    ("HTTP/9.9", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", False, MHD(505)),
    ("HTTP/1.1 without CRLF, then close", b"GET /healthz HTTP/1.1", True, CLOSED()),
    ("nothing, then close", b"", True, CLOSED()),
    ("only empty lines, then close", b"\r\n" * 1000, True, CLOSED()),
    # -- odd but harmless: served normally -----------------------------------------------------
    ("NUL inside an unrelated header value", get(b"/api/books/9780132269933", [b"X-Trace: a\x00b\xff"]), False,
     SERVED(200)),
    ("500 empty query arguments and a key without value", get(b"/api/books?" + b"&" * 500 + b"status"), False,
     SERVED(200)),
    ("raw NUL in the path ends it (MHD keeps C strings)", get(b"/api/books/9780132269933\x00/history"), False,
     SERVED(200)),
]


def state_digest(svc):
    """What the hostile requests must not change: the API's view and the table counts."""
    parts = [svc.request("GET", "/api/books")[2], svc.request("GET", "/api/export.csv")[2]]
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        for table in ("books", "observations", "jobs"):
            parts.append(str(con.execute("SELECT count(*) FROM %s" % table).fetchone()[0]).encode())
    finally:
        con.close()
    return parts


with FixtureStore() as store:
    src = ["--source", "amazon.com=" + store.url("/dp/{isbn10}"), "--rate", "0", "--per-host", "8",
           "--retries", "0"]
    rc, out, err = run_cli(["refresh", "--db", db] + src + BOOKS)
    t.check(rc == 0, "setup: four books tracked with one observation each", out + err)

    with Service(db, src) as svc:
        before = state_digest(svc)
        t.check(b"9780132269933" in before[0] and before[2:] == [b"4", b"4", b"1"], "setup: state read",
                before[2:])
        started = time.monotonic()
        for name, data, shut, expect in CASES:
            res = exchange(svc.port, data, shut)
            five = res["status"] is not None and res["status"] >= 500 and res["status"] != 505
            t.check(expect(res) and not five and res["outcome"] != "hang",
                    "%s -> %s %s" % (name, res["status"], res["outcome"]),
                    (res["status"], res["outcome"], res["headers"], res["raw"][:400]))
            st, _, body = svc.request("GET", "/healthz", timeout=5)
            alive = svc.proc.poll() is None
            t.check(alive and st == 200 and json.loads(body) == {"status": "ok"} and state_digest(svc) == before,
                    "  after it: healthy, data unchanged", (alive, st, body))
        t.check(len(CASES) >= 40, "%d hostile cases in %.1f s" % (len(CASES), time.monotonic() - started))

        # Hostile methods and paths are logged, but cannot forge log lines or emit escape codes.
        time.sleep(0.2)
        log = svc.log_text()
        t.check("forged" in log and "\x1b" not in log and "\n2026-01-01T00:00:00Z error forged" not in log,
                "access log neutralises control characters in paths",
                [line for line in log.splitlines() if "forged" in line])

    # ---- the token: malformed Authorization headers ------------------------------------------
    with Service(db, src + ["--token", "s3cret"]) as svc:
        body = b'{"isbns": ["0131103628"]}'
        for name, auth in [("no Authorization", None), ("Bearer without token", b"Bearer"),
                           ("token prefix", b"Bearer s3cre"), ("token + 1 byte", b"Bearer s3cret!"),
                           ("Basic scheme", b"Basic czNjcmV0"), ("token with NUL inside", b"Bearer s3\x00cret"),
                           ("invalid UTF-8 token", b"Bearer \xff\xfe\xfd\xfc\xfb\xfa"),
                           ("8 KB token", b"Bearer " + b"s" * 8000)]:
            hdrs = [b"Authorization: " + auth] if auth is not None else []
            res = exchange(svc.port, req(b"POST", b"/api/books", body, b"application/json", hdrs))
            t.check(json_error(res, 401, "unauthorized") and "www-authenticate" in res["headers"],
                    "token: %s -> 401" % name, (res["status"], res["raw"][:300]))
        res = exchange(svc.port, req(b"POST", b"/api/books", body, b"application/json",
                                     [b"Authorization: Bearer " + b"s" * 70000]))
        t.check(MHD(431)(res), "token: 70 KB Authorization header -> MHD 431", (res["status"], res["raw"][:200]))
        t.eq(state_digest(svc), before, "token: nothing changed")

t.done()
