"""Integration test of tests/tools/fixture_store: every scenario, fault and counter behaves as the
other integration tests and the benchmarks rely on. Prints "ok - ..." / "not ok - ..." lines.

    FIXTURE_STORE_BIN=build/tests/fixture_store FIXTURES=tests/fixtures python3 tests/integration/test_fixture_store.py
"""
import gzip
import html
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import fixture_lib  # noqa: E402
from fixture_lib import FixtureStore, default_categories, default_rank, format_rank  # noqa: E402

passed = failed = 0


def check(cond, what, detail=None):
    global passed, failed
    if cond:
        passed += 1
        print("ok - " + what)
    else:
        failed += 1
        print("not ok - " + what)
        if detail is not None:
            print("#   " + str(detail)[:600].replace("\n", "\n#   "))
    sys.stdout.flush()
    return cond


# -- a reader written on the real 2019 amazon.com page; the generated page must satisfy it -----
TITLE_RE = re.compile(rb'<span id="productTitle"[^>]*>(.*?)</span>', re.S)
RANK_RE = re.compile(rb'#([\d,]+)\s+in\s+([^(<\n]+?)\s*\(', re.S)
CAT_RE = re.compile(rb'<span class="zg_hrsr_rank">#([\d,]+)</span>\s*'
                    rb'<span class="zg_hrsr_ladder">in&nbsp;(.*?)</span>\s*</li>', re.S)
LEAF_RE = re.compile(rb'<a [^>]*>([^<]*)</a>(?:</b>)?$')


def read_page(page):
    """{'title', 'rank', 'category', 'categories': [(rank, leaf)]} as amazon.com rules read it."""
    out = {"title": None, "rank": None, "category": None, "categories": []}
    m = TITLE_RE.search(page)
    if m:
        out["title"] = html.unescape(m.group(1).decode("utf-8", "replace")).strip()
    at = page.find(b'<li id="SalesRank">')
    if at < 0:
        return out
    end = page.find(b"</ul>\n</li>", at)
    block = page[at:end if end > 0 else len(page)]
    m = RANK_RE.search(block)
    if m:
        out["rank"] = int(m.group(1).replace(b",", b""))
        out["category"] = html.unescape(m.group(2).decode()).strip()
    for m in CAT_RE.finditer(block):
        leaf = LEAF_RE.search(m.group(2))
        out["categories"].append((int(m.group(1).replace(b",", b"")),
                                  html.unescape(leaf.group(1).decode()) if leaf else None))
    return out


def raw_get(port, path, host=None, extra=b"", timeout=10):
    """GET over a bare socket, reading until EOF or error: (head, body, error)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    req = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + \
        (host or "127.0.0.1:%d" % port).encode() + b"\r\nConnection: close\r\n" + extra + b"\r\n"
    s.sendall(req)
    data, err = b"", None
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        err = e
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body, err


def header(head, name):
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower().encode():
            return v.strip().decode()
    return None


def parallel(fn, args_list):
    """Runs fn(*args) for every args at once (a barrier lines the threads up); results in order."""
    results = [None] * len(args_list)
    barrier = threading.Barrier(len(args_list))

    def run(i, args):
        barrier.wait()
        try:
            results[i] = fn(*args)
        except Exception as e:  # reported by the caller's checks
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_real_fixture_reader():
    # The reader below is only evidence if it reads the real page the generated one imitates.
    with open(fixture_lib.fixture_path("amazon_com_book_0131103628_2019_salesrank_li.html"), "rb") as f:
        got = read_page(f.read())
    check(got["rank"] == 5838 and got["category"] == "Books", "reader: real page rank #5,838 in Books", got)
    check(got["categories"][:1] == [(2, "C")], "reader: real page first category rank 2", got)
    check(got["title"] == "C Programming Language, 2nd Edition", "reader: real page title", got)


def test_generated(store):
    key = "0131103628"
    store.config()
    st, hd, body = store.get("/dp/" + key)
    check(st == 200, "generated: status 200", st)
    check(hd.get("content-type", "").startswith("text/html"), "generated: text/html", hd)
    got = read_page(body)
    r = default_rank(key)
    check(got["rank"] == r and got["category"] == "Books", "generated: default rank derived from key", (got, r))
    check(("#%s in Books" % format_rank(r)).encode() in body, "generated: rank printed with thousands commas")
    check(got["title"] == "Fixture Book " + key, "generated: default title", got["title"])
    check(got["categories"] == default_categories(r), "generated: default category ranks", got["categories"])
    check(body.count(b'id="SalesRank"') == 1 and body.count(b'id="productTitle"') == 1,
          "generated: one SalesRank block and one productTitle")
    check(b"<b>Amazon Best Sellers Rank:</b>" in body, "generated: real rank label")
    st2, _, body2 = store.get("/dp/" + key)
    check(body2 == body, "generated: same key gives the same page")
    _, _, body13 = store.get("/gp/product/9780131103627/")
    check(read_page(body13)["rank"] == default_rank("9780131103627"),
          "generated: ISBN-13 key, trailing slash ignored")

    hostile = "<script>alert('x')</script> & \"C\" Programming"
    store.config(books={
        key: {"title": hostile, "rank": 1234567, "category": "Kindle Store",
              "categories": [[2, "Books > Programming > C & C++"], [17, "Software"], [1234, "Textbooks"]]},
        "raw1": {"title": "<b>Bold</b> title", "title_raw": True, "categories": []},
    })
    _, _, body = store.get("/dp/" + key)
    got = read_page(body)
    check(got["rank"] == 1234567 and b"#1,234,567 in Kindle Store (" in body, "generated: configured rank and category", got)
    check(got["title"] == hostile, "generated: hostile title escaped, reads back exactly", got["title"])
    check(b"<script>alert" not in body, "generated: no raw <script> from the title")
    check(got["categories"] == [(2, "C & C++"), (17, "Software"), (1234, "Textbooks")],
          "generated: configured category ranks in order", got["categories"])
    check(b'in&nbsp;<a href="https://www.amazon.com/gp/bestsellers/books/' in body and
          b"</a> &gt; <a href=" in body and b"C & C++</a></b></span>" in body,
          "generated: ladder markup like the real page (raw & as Amazon prints it)")
    _, _, body = store.get("/dp/raw1")
    check(b'<span id="productTitle" class="a-size-extra-large"><b>Bold</b> title</span>' in body,
          "generated: title_raw puts markup in verbatim")
    check(b"zg_hrsr" not in body and read_page(body)["rank"] == default_rank("raw1"),
          "generated: empty categories -> no category list, rank still there")


def test_sizes(store):
    store.config(books={"s200": {"size": 200000, "rank": 42}, "s1m": {"size": 1000000, "rank": 5838},
                        "bad": {"page": "invalid_utf8", "size": 300000, "rank": 77}})
    _, _, body = store.get("/dp/s200")
    check(len(body) == 200000, "size: padded to exactly 200000 bytes", len(body))
    check(read_page(body)["rank"] == 42, "size: rank readable in padded page")
    _, _, body = store.get("/dp/s1m")
    check(len(body) == 1000000, "size: padded to exactly 1000000 bytes", len(body))
    t, r = body.find(b'id="productTitle"'), body.find(b'id="SalesRank"')
    check(100000 < t < r and r > 500000, "size: title and rank deep in the page like the real one", (t, r))
    check(body.count(b"SalesRank") == 1 and body.count(b"Best Sellers") == 1 and
          b"Robot Check" not in body and b"captcha" not in body.lower(),
          "size: filler holds nothing a rule could match")
    check(body.decode("utf-8", "strict") is not None, "size: filler is valid UTF-8")
    _, _, body = store.get("/dp/bad")
    check(len(body) == 300000 and read_page(body)["rank"] == 77, "invalid_utf8: rank still readable")
    title = TITLE_RE.search(body).group(1)
    check(b"\x00" in title and b"\xff" in title, "invalid_utf8: title has NUL and invalid bytes", title)
    try:
        body.decode("utf-8", "strict")
        bad = False
    except UnicodeDecodeError:
        bad = True
    check(bad and body.count(b"\x00") > 100, "invalid_utf8: filler has invalid UTF-8 and NULs")


def test_pages(store):
    store.config(books={
        "nr": {"page": "no_rank", "title": "Unranked"},
        "empty": {"page": "empty"},
        "nf": {"page": "not_found"},
        "nf200": {"page": "not_found", "status": 200},
        "cap": {"page": "captcha"},
        "cap503": {"page": "captcha", "status": 503},
        "fx": {"page": "fixture:amazon_fr_book_2956470337_2021_no_rank.html"},
        "err": {"status": 500},
    })
    st, _, body = store.get("/dp/nr")
    got = read_page(body)
    check(st == 200 and got["title"] == "Unranked" and b"SalesRank" not in body and
          b"Best Sellers Rank" not in body, "no_rank: title, no rank block", got)
    st, hd, body = store.get("/dp/empty")
    check(st == 200 and body == b"" and hd.get("content-length") == "0", "empty: 200 with 0 bytes", (st, hd))
    st, _, body = store.get("/dp/nf")
    check(st == 404 and b"<title>Page Not Found</title>" in body, "not_found: 404 not-found page", st)
    st, _, body = store.get("/dp/nf200")
    check(st == 200 and b"not a functioning page" in body, "not_found: status override 200", st)
    with open(fixture_lib.fixture_path("amazon_com_captcha_robot_check_2020.html"), "rb") as f:
        captcha = f.read()
    st, _, body = store.get("/dp/cap")
    check(st == 200 and body == captcha, "captcha: the real robot-check page", st)
    st, _, body = store.get("/dp/cap503")
    check(st == 503 and b"Robot Check" in body, "captcha: with status 503", st)
    with open(fixture_lib.fixture_path("amazon_fr_book_2956470337_2021_no_rank.html"), "rb") as f:
        want = f.read()
    st, _, body = store.get("/dp/fx")
    check(st == 200 and body == want, "fixture: file served byte for byte", (st, len(body), len(want)))
    st, _, body = store.get("/dp/err")
    check(st == 500 and read_page(body)["rank"] is not None, "status: generated page with 500", st)


def test_config_errors(store):
    def post(body):
        conn = http.client.HTTPConnection("127.0.0.1", store.port, timeout=10)
        conn.request("POST", "/_config", body=body)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, data

    for what, body in [("invalid JSON", b"{nope"),
                       ("unknown scenario key", b'{"default": {"delay": 5}}'),
                       ("unknown page", b'{"default": {"page": "weird"}}'),
                       ("unknown fault", b'{"default": {"fault": "explode"}}'),
                       ("fixture path escape", b'{"default": {"page": "fixture:../../etc/passwd"}}'),
                       ("missing fixture", b'{"default": {"page": "fixture:nope.html"}}'),
                       ("wrong type", b'{"books": {"1": {"rank": "12"}}}'),
                       ("bad category", b'{"books": {"1": {"categories": [[1]]}}}'),
                       ("top-level typo", b'{"book": {}}')]:
        st, data = post(body)
        ok = st == 400
        try:
            ok = ok and "error" in json.loads(data)
        except ValueError:
            ok = False
        check(ok, "config: 400 on " + what, (st, data))
    st, _ = post(b'{"default": {"rank": 9}}')
    check(st == 200 and read_page(store.get("/dp/x1")[2])["rank"] == 9, "config: good config still accepted after errors")
    st, _, _ = store.get("/_nope")
    check(st == 404, "control: unknown path 404", st)
    conn = http.client.HTTPConnection("127.0.0.1", store.port, timeout=10)
    conn.request("GET", "/_config")
    check(conn.getresponse().status == 405, "control: GET /_config is 405")
    conn.close()


def test_fail_first(store):
    store.config(books={"ff": {"fail_first": 2, "retry_after": "7", "rank": 11},
                        "fq": {"fail_first": 1, "fail_status": 429}})
    seen = [store.get("/dp/ff") for _ in range(3)]
    check([s[0] for s in seen] == [503, 503, 200], "fail_first: 2 x 503 then 200", [s[0] for s in seen])
    check(seen[0][1].get("retry-after") == "7" and seen[1][1].get("retry-after") == "7",
          "fail_first: Retry-After on failures")
    check("retry-after" not in seen[2][1] and read_page(seen[2][2])["rank"] == 11,
          "fail_first: later hit is the normal page")
    check(b"Robot Check" not in seen[0][2] and b"captcha" not in seen[0][2].lower(),
          "fail_first: error page is not a captcha")
    s1, h1, _ = store.get("/dp/fq")
    s2, _, _ = store.get("/dp/fq")
    check(s1 == 429 and "retry-after" not in h1 and s2 == 200, "fail_first: fail_status 429, no Retry-After unless set")
    check(store.stats()["hits"] == {"ff": 3, "fq": 2}, "fail_first: hits counted per key", store.stats()["hits"])
    store.reset()
    check(store.get("/dp/ff")[0] == 503, "fail_first: /_reset starts the count again")


def test_gzip(store):
    store.config(books={"gz": {"gzip": True, "size": 250000, "rank": 31}})
    st, hd, body = store.get("/dp/gz", headers={"Accept-Encoding": "gzip, deflate"})
    check(st == 200 and hd.get("content-encoding") == "gzip", "gzip: Content-Encoding gzip when accepted", hd)
    check(int(hd.get("content-length", 0)) == len(body) < 250000, "gzip: compressed length declared", len(body))
    plain = gzip.decompress(body)
    check(len(plain) == 250000 and read_page(plain)["rank"] == 31, "gzip: decompresses to the page")
    st, hd, body = store.get("/dp/gz")
    check(plain == body, "gzip: same page as without gzip")
    check("content-encoding" not in hd and len(body) == 250000 and hd.get("vary") == "Accept-Encoding",
          "gzip: identity when the client does not accept gzip", hd)
    st, hd, body = store.get("/dp/gz", headers={"Accept-Encoding": "gzip;q=0, identity"})
    check("content-encoding" not in hd, "gzip: q=0 refuses gzip")


def test_faults(store):
    store.config(books={"rst": {"fault": "reset", "size": 400000},
                        "trunc": {"fault": "truncate", "size": 100000},
                        "loop": {"fault": "redirect_loop"},
                        "huge": {"fault": "huge"}})
    head, body, err = raw_get(store.port, "/dp/rst")
    cl = int(header(head, "Content-Length") or 0)
    check(cl == 400000, "reset: full Content-Length declared", head[:200])
    check(len(body) < cl, "reset: client gets less than declared", (len(body), err))
    check(100000 < len(body) <= 200000, "reset: about half the body arrives first", len(body))
    check(isinstance(err, ConnectionResetError), "reset: then the connection is reset (RST)", err)
    try:
        store.get("/dp/rst")
        raised = None
    except (http.client.IncompleteRead, ConnectionError) as e:
        raised = e
    check(raised is not None, "reset: http client sees an error", raised)

    head, body, err = raw_get(store.port, "/dp/trunc")
    cl = int(header(head, "Content-Length") or 0)
    check(cl > 100000 and len(body) == 100000 and err is None, "truncate: Content-Length > bytes sent, then close",
          (cl, len(body), err))
    try:
        store.get("/dp/trunc")
        raised = None
    except http.client.IncompleteRead as e:
        raised = e
    check(raised is not None, "truncate: http client sees an incomplete read")

    path = "/dp/loop"
    for i in range(5):
        st, hd, _ = store.get(path)
        if st != 302:
            break
        loc = hd.get("location", "")
        path = loc.split(str(store.port), 1)[-1]
    check(st == 302 and loc == "http://127.0.0.1:%d/dp/loop" % store.port, "redirect_loop: 302 to itself, 5 times", (st, loc))
    check(store.stats()["hits"].get("loop") == 5, "redirect_loop: every hop is a hit")

    conn = http.client.HTTPConnection("127.0.0.1", store.port, timeout=30)
    conn.request("GET", "/dp/huge")
    r = conn.getresponse()
    total = 0
    while True:
        chunk = r.read(1 << 20)
        if not chunk:
            break
        total += len(chunk)
    conn.close()
    check(r.status == 200 and r.getheader("Content-Length") is None and total == 20 << 20,
          "huge: 200 streaming 20 MiB without Content-Length", (r.status, total))


def test_delay_and_stats(store):
    store.config(default={"delay_ms": 300})
    t0 = time.monotonic()
    st, _, _ = store.get("/dp/d1")
    check(st == 200 and time.monotonic() - t0 >= 0.3, "delay_ms: answer waits")

    store.reset()
    s = store.stats()
    check(s == {"requests": 0, "in_flight": 0, "max_in_flight": 0, "max_in_flight_by_host": {},
                "hits": {}, "arrivals_ms": []}, "stats: /_reset zeroes everything", s)
    res = parallel(store.get, [("/dp/c%d" % (i % 3),) for i in range(8)])
    check(all(not isinstance(r, Exception) and r[0] == 200 for r in res), "stats: 8 concurrent slow requests answered")
    s = store.stats()
    check(s["requests"] == 8 and s["in_flight"] == 0 and s["max_in_flight"] == 8,
          "stats: max_in_flight 8 with 8 concurrent", s)
    check(s["hits"] == {"c0": 3, "c1": 3, "c2": 2}, "stats: hits per key", s["hits"])
    a = s["arrivals_ms"]
    check(len(a) == 8 and a == sorted(a) and a[-1] - a[0] < 300, "stats: arrivals in order, together", a)
    check(s["max_in_flight_by_host"] == {"127.0.0.1:%d" % store.port: 8}, "stats: by Host header", s)

    store.config(default={"delay_ms": 400})
    jobs = [("/dp/h%d" % i, None, "127.0.0.1") for i in range(4)] + \
           [("/dp/h%d" % i, None, "localhost") for i in range(3)]
    res = parallel(store.get, jobs)
    s = store.stats()
    check(all(not isinstance(r, Exception) and r[0] == 200 for r in res), "two hosts: all answered")
    check(s["max_in_flight_by_host"] == {"127.0.0.1:%d" % store.port: 4, "localhost:%d" % store.port: 3},
          "two hosts: counted separately", s["max_in_flight_by_host"])
    check(s["max_in_flight"] == 7, "two hosts: overall max 7", s["max_in_flight"])

    # Sequential requests never overlap: this is what politeness tests rely on.
    store.config(default={"delay_ms": 20})
    for i in range(5):
        store.get("/dp/q%d" % i)
    s = store.stats()
    check(s["max_in_flight"] == 1 and s["requests"] == 5, "stats: sequential requests max_in_flight 1", s)


def test_load(store):
    # A benchmark-shaped load: many connections at once, slow answers, big pages.
    store.config(default={"delay_ms": 100, "size": 200000})
    n = 256

    def fetch(i):
        st, _, body = store.get("/dp/L%d" % i)
        return st, len(body), read_page(body)["rank"] == default_rank("L%d" % i)

    t0 = time.monotonic()
    res = parallel(fetch, [(i,) for i in range(n)])
    dt = time.monotonic() - t0
    good = sum(1 for r in res if not isinstance(r, Exception) and r == (200, 200000, True))
    check(good == n, "load: %d concurrent 200 KB pages all correct" % n, [r for r in res if r != (200, 200000, True)][:3])
    s = store.stats()
    check(s["requests"] == n and s["in_flight"] == 0 and s["max_in_flight"] >= 64,
          "load: counted, high concurrency reached", {k: s[k] for k in ("requests", "in_flight", "max_in_flight")})
    print("# load: %d requests x 200 KB, 100 ms delay, %d at once: %.2f s, max_in_flight %d"
          % (n, n, dt, s["max_in_flight"]))


def test_lifetime():
    binary = fixture_lib.fixture_store_bin()
    # stdin EOF ends it (a test that dies never leaves it running).
    p = subprocess.Popen([binary, "--port", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = p.stdout.readline()
    check(re.match(rb"^PORT [1-9][0-9]*\n$", line) is not None, "lifetime: prints PORT <n>", line)
    p.stdin.close()
    try:
        rc = p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    p.stdout.close()
    check(rc == 0, "lifetime: exits 0 when stdin reaches EOF", rc)

    p = subprocess.Popen([binary, "--port", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    p.stdout.readline()
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    p.stdin.close()
    p.stdout.close()
    check(rc == 0, "lifetime: exits 0 on SIGTERM", rc)

    # A background job's stdin is /dev/null: that must not end it at once.
    p = subprocess.Popen([binary, "--port", "0"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    port = int(p.stdout.readline().split()[1])
    time.sleep(0.3)
    alive = p.poll() is None
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/_stats")
        alive = alive and conn.getresponse().status == 200
        conn.close()
    except OSError:
        alive = False
    p.send_signal(signal.SIGINT)
    try:
        rc = p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    p.stdout.close()
    check(alive and rc == 0, "lifetime: stdin /dev/null keeps serving; SIGINT exits 0", (alive, rc))

    bad = subprocess.run([binary, "--bogus"], stdin=subprocess.DEVNULL, capture_output=True)
    check(bad.returncode == 2, "lifetime: bad usage exits 2", bad.returncode)


def main():
    test_real_fixture_reader()
    with FixtureStore() as store:
        check(store.port > 0, "start: listening on port %d" % store.port)
        for t in (test_generated, test_sizes, test_pages, test_config_errors, test_fail_first,
                  test_gzip, test_faults, test_delay_and_stats, test_load):
            try:
                t(store)
            except Exception as e:
                check(False, "%s raised %r" % (t.__name__, e))
    test_lifetime()
    print("# %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
