"""Catalogue-scale reads of the real `bookrank serve`: GET /api/books paging (?limit, ?after, the
Link header), ETag / If-None-Match on the book reads, history paging back with ?before= (and
`bookrank history --before`), and `bookrank export` with the ?id=, ?source=, ?since= filters of
GET /api/export.csv."""
import json
import os
import re
import sqlite3
import subprocess
import urllib.parse

from fixture_lib import bookrank_bin
from service_lib import T, Service, run_cli, tmpdir

t = T()
d = tmpdir()
db = os.path.join(d, "catalogue.db")


def isbn13(n):
    """A valid ISBN-13 with the 978 prefix from a number below 10**9."""
    body = "978%09d" % n
    s = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(body))
    return body + str((10 - s % 10) % 10)


def isbn10_of(i13):
    body = i13[3:12]
    s = sum(int(c) * (10 - i) for i, c in enumerate(body))
    c = (11 - s % 11) % 11
    return body + ("X" if c == 10 else str(c))


ids = [isbn13(13226990 + k * 7) for k in range(23)] + ["B0%08d" % k for k in (11, 22)]
all_sorted = sorted(ids)
rc, out, err = run_cli(["add", "--db", db] + ids)
t.check(rc == 0, "25 books added", err)

# Observations at known times (2026-11-01T00:00:00Z + k hours) for history and export.
T0 = 1793491200000  # 2026-11-01T00:00:00Z
HOUR = 3600 * 1000


def iso(ms):
    import datetime
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


book_a, book_b = all_sorted[0], all_sorted[1]
con = sqlite3.connect(db)
rows = []
for k in range(6):
    rows.append((book_a, "amazon.com", T0 + k * HOUR, "ok", 1000 + k))
    rows.append((book_a, "amazon.de", T0 + k * HOUR, "ok", 2000 + k))
    rows.append((book_b, "amazon.com", T0 + k * HOUR, "no_rank", None))
con.executemany("INSERT INTO observations(book_id, source, fetched_at, status, rank) VALUES (?,?,?,?,?)", rows)
con.commit()
con.close()


def link_next(h):
    v = h.get("link")
    if v is None:
        return None
    m = re.fullmatch(r'<([^>]*)>; rel="next"', v)
    return m.group(1) if m else "MALFORMED:" + v


with Service(db) as svc:
    # ---- 1. paging ---------------------------------------------------------------------------
    st, h, whole = svc.json("GET", "/api/books")
    t.check(st == 200 and isinstance(whole, list) and len(whole) == 25 and "link" not in h,
            "without limit: the whole list as an array, no Link", (st, h))

    st, h, page = svc.json("GET", "/api/books?limit=10")
    t.check(st == 200 and isinstance(page, list), "limit: the answer stays an array", page)
    t.eq([b["id"] for b in page], all_sorted[:10], "limit=10: the first 10 books in id order")
    t.eq(link_next(h), "/api/books?limit=10&after=" + all_sorted[9],
         "Link rel=next names limit and the last id of the page")

    seen, url, pages = [], "/api/books?limit=10", 0
    while url and pages < 10:
        st, h, page = svc.json("GET", url)
        if st != 200:
            break
        seen += [b["id"] for b in page]
        pages += 1
        url = link_next(h)
    t.eq((pages, seen), (3, all_sorted), "following Link walks every book once, in id order, in 3 pages")
    st, h, page = svc.json("GET", "/api/books?limit=10&after=" + all_sorted[19])
    t.check(st == 200 and len(page) == 5 and "link" not in h, "the last page has no Link", h)
    st, h, page = svc.json("GET", "/api/books?limit=25")
    t.check(st == 200 and len(page) == 25 and "link" not in h, "limit = the count exactly: no Link", h)
    st, h, page = svc.json("GET", "/api/books?limit=24")
    t.check(st == 200 and len(page) == 24 and link_next(h) is not None, "limit = count - 1: a Link", h)

    # after in other id forms: ISBN-10, hyphenated ISBN-13, an ASIN attached to a book
    pivot = all_sorted[4]
    want = [b["id"] for b in svc.json("GET", "/api/books?limit=3&after=" + pivot)[2]]
    t.eq(want, all_sorted[5:8], "after=ID: the books after it")
    for form in (isbn10_of(pivot), pivot[:3] + "-" + pivot[3:4] + "-" + pivot[4:9] + "-" + pivot[9:12] + "-" + pivot[12],
                 "https://www.amazon.com/dp/" + isbn10_of(pivot)):
        st, h, page = svc.json("GET", "/api/books?limit=3&after=" + urllib.parse.quote(form, safe=""))
        t.check(st == 200 and [b["id"] for b in page] == want, "after takes the id form %r" % form, (st, page))
    st, _, _ = svc.json("PATCH", "/api/books/" + pivot, {"asin": "B0ATTACHED"})
    st, h, page = svc.json("GET", "/api/books?limit=3&after=B0ATTACHED")
    t.check(st == 200 and [b["id"] for b in page] == want,
            "after=an ASIN attached to a book pages from that book", (st, page))
    st, h, page = svc.json("GET", "/api/books?after=" + all_sorted[20])
    t.check(st == 200 and [b["id"] for b in page] == all_sorted[21:] and "link" not in h,
            "after without limit: every book after it, no Link", page)
    st, h, page = svc.json("GET", "/api/books?limit=5&after=9789999999991")
    t.check(st == 200 and [b["id"] for b in page] == all_sorted[23:],
            "after an id that is not tracked still marks the place", page)

    for bad in ("0", "10001", "-1", "abc", "5x", ""):
        st, h, doc = svc.json("GET", "/api/books?limit=" + bad)
        t.check(st == 400 and doc["error"]["code"] == "invalid_query", "limit=%r -> 400 invalid_query" % bad, doc)
    st, h, doc = svc.json("GET", "/api/books?limit=10000")
    t.check(st == 200 and len(doc) == 25, "limit=10000 is allowed", st)
    for bad in ("xyz", "9780132269934", "B0"):
        st, h, doc = svc.json("GET", "/api/books?limit=5&after=" + bad)
        t.check(st == 400 and doc["error"]["code"] == "invalid_query", "after=%r -> 400 invalid_query" % bad, doc)

    # the other query parameters are kept in the Link, escaped
    tagged = all_sorted[2:9]
    for i in tagged:
        svc.json("PATCH", "/api/books/" + i, {"tags": ["big list"], "note": "a&b c"})
    seen, url, pages = [], "/api/books?tag=big+list&q=a%26b%20c&limit=3", 0
    links = []
    while url and pages < 10:
        st, h, page = svc.json("GET", url)
        if st != 200:
            break
        seen += [b["id"] for b in page]
        pages += 1
        url = link_next(h)
        links.append(url)
    t.eq(seen, tagged, "paging with ?tag= and ?q= walks only the matching books")
    t.check(links[0] and "tag=big%20list" in links[0] and "q=a%26b%20c" in links[0],
            "Link keeps the other query parameters, percent-encoded", links)

    # ---- 2. ETag -----------------------------------------------------------------------------
    def etag_case(path, what):
        st, h, body = svc.request("GET", path)
        tag = h.get("etag", "")
        t.check(st == 200 and re.fullmatch(r'"[0-9a-f]{16}"', tag), what + ": a strong ETag", h)
        st2, h2, body2 = svc.request("GET", path)
        t.check(st2 == 200 and h2.get("etag") == tag and body2 == body, what + ": the same body, the same ETag")
        st, h3, b3 = svc.request("GET", path, headers={"If-None-Match": tag})
        t.check(st == 304 and b3 == b"" and h3.get("etag") == tag, what + ": If-None-Match -> 304, no body, ETag",
                (st, h3, b3))
        for inm in ('"0000000000000000", ' + tag, "*", "W/" + tag, '"x",' + tag + ' , "y"'):
            st, _, b3 = svc.request("GET", path, headers={"If-None-Match": inm})
            t.check(st == 304 and b3 == b"", what + ": If-None-Match %s -> 304" % inm.replace(tag, "TAG"), st)
        st, _, b3 = svc.request("GET", path, headers={"If-None-Match": '"0123456789abcdef"'})
        t.check(st == 200 and b3 == body, what + ": another tag -> 200 with the body", st)
        return tag

    list_tag = etag_case("/api/books", "GET /api/books")
    page_tag = etag_case("/api/books?limit=5", "GET /api/books?limit=5")
    t.check(page_tag != list_tag, "a page has its own ETag")
    book_tag = etag_case("/api/books/" + book_a, "GET /api/books/{id}")
    hist_tag = etag_case("/api/books/" + book_a + "/history", "GET /api/books/{id}/history")

    st, _, _ = svc.json("PATCH", "/api/books/" + book_a, {"note": "changed"})
    for path, old, what in (("/api/books", list_tag, "list"), ("/api/books/" + book_a, book_tag, "book")):
        st, h, body = svc.request("GET", path, headers={"If-None-Match": old})
        t.check(st == 200 and body and h.get("etag") not in (None, old),
                "after a change the old ETag of the %s no longer matches (200, new tag)" % what, (st, h))
    con = sqlite3.connect(db)
    con.execute("INSERT INTO observations(book_id, source, fetched_at, status, rank) VALUES (?,?,?,?,?)",
                (book_a, "amazon.com", T0 + 10 * HOUR, "ok", 999))
    con.commit()
    con.close()
    st, h, body = svc.request("GET", "/api/books/" + book_a + "/history", headers={"If-None-Match": hist_tag})
    t.check(st == 200 and h.get("etag") not in (None, hist_tag), "a new observation changes the history's ETag", (st, h))
    st, h, _ = svc.request("GET", "/api/books/9789999999991")
    t.check(st == 404 and "etag" not in h, "an error has no ETag", h)
    st, h, _ = svc.request("GET", "/api/books/9789999999991", headers={"If-None-Match": "*"})
    t.check(st == 404, "If-None-Match: * on an unknown book is still 404", st)

    # ---- 3. history ?before= -----------------------------------------------------------------
    hp = "/api/books/" + book_a + "/history?source=amazon.com"
    st, _, doc = svc.json("GET", hp + "&before=" + iso(T0 + 3 * HOUR))
    t.eq((st, [o["rank"] for o in doc["observations"]]), (200, [1002, 1001, 1000]),
         "before=TIME: only observations strictly before, newest first")
    st, _, doc = svc.json("GET", hp + "&before=" + iso(T0 + 3 * HOUR + 1000))
    t.eq([o["rank"] for o in doc["observations"]], [1003, 1002, 1001, 1000], "before a second later includes it")
    st, _, doc = svc.json("GET", hp + "&since=" + iso(T0 + HOUR) + "&before=" + iso(T0 + 4 * HOUR))
    t.eq([o["rank"] for o in doc["observations"]], [1003, 1002, 1001], "since and before together: [since, before)")
    got, url = [], hp + "&limit=2"
    for _ in range(10):
        st, _, doc = svc.json("GET", url)
        obs = doc["observations"]
        if not obs:
            break
        got += [o["rank"] for o in obs]
        url = hp + "&limit=2&before=" + obs[-1]["fetched_at"]
    t.eq(got, [999, 1005, 1004, 1003, 1002, 1001, 1000], "paging back with limit and before walks the whole history")
    for bad in ("yesterday", "2026-13-01T00:00:00Z", "", "1793491200"):
        st, _, doc = svc.json("GET", hp + "&before=" + urllib.parse.quote(bad))
        t.check(st == 400 and doc["error"]["code"] == "invalid_query" and "before" in doc["error"]["message"],
                "before=%r -> 400 invalid_query naming before" % bad, doc)

    # ---- 4. export filters -------------------------------------------------------------------
    st, h, full = svc.request("GET", "/api/export.csv")
    t.check(st == 200 and full.startswith(b"isbn13,source,fetched_at,status,rank,rank_category,http_status,error,id\r\n"),
            "export keeps its columns", full[:200])
    full_lines = full.decode().split("\r\n")[1:-1]
    t.eq(len(full_lines), 19, "export: every observation")

    def export_lines(query):
        st, h, body = svc.request("GET", "/api/export.csv" + query)
        return st, body.decode().split("\r\n")[1:-1] if st == 200 else body

    st, lines = export_lines("?id=" + isbn10_of(book_a))
    t.check(st == 200 and len(lines) == 13 and all(l.endswith("," + book_a) for l in lines),
            "?id= (any id form): only that book's rows", lines)
    st, lines = export_lines("?source=amazon.de")
    t.check(st == 200 and len(lines) == 6 and all(',"amazon.de",' in l for l in lines), "?source=: only that source", lines)
    st, lines = export_lines("?since=" + iso(T0 + 4 * HOUR))
    t.check(st == 200 and len(lines) == 7, "?since=: observations at or after", lines)
    st, lines = export_lines("?id=" + book_b + "&source=amazon.com&since=" + iso(T0 + 5 * HOUR))
    t.check(st == 200 and len(lines) == 1 and lines[0].endswith("," + book_b), "filters combine", lines)
    st, lines = export_lines("?source=nowhere.example")
    t.check(st == 200 and lines == [], "an unknown source: the header only", lines)
    for q, what in (("?id=xyz", "a malformed id"), ("?since=yesterday", "a bad since")):
        st, h, body = svc.request("GET", "/api/export.csv" + q)
        t.check(st == 400 and json.loads(body)["error"]["code"] == "invalid_query", "export %s -> 400 invalid_query" % what,
                (st, body))
    st, h, body = svc.request("GET", "/api/export.csv?id=9789999999991")
    t.check(st == 404 and json.loads(body)["error"]["code"] == "book_not_found", "export ?id= of an untracked book -> 404",
            (st, body))

    # ---- the CLI: export and history --before (safe while serve runs) -------------------------
    rc, out, err = run_cli(["export", "--db", db])
    t.check(rc == 0 and out.encode() == full, "bookrank export prints exactly GET /api/export.csv", (rc, err, out[:300]))
    rc, out, err = run_cli(["export", "--db", db, "--id", isbn10_of(book_a), "--source", "amazon.com",
                            "--since", iso(T0 + 2 * HOUR)])
    st, h, body = svc.request("GET", "/api/export.csv?id=%s&source=amazon.com&since=%s" % (book_a, iso(T0 + 2 * HOUR)))
    t.check(rc == 0 and out.encode() == body and len(out.split("\r\n")) == 2 + 5,
            "export --id --source --since = the API's filtered CSV", (rc, err, out))

rc, out, err = run_cli(["export", "--db", db, "--since", "yesterday"])
t.check(rc == 2 and "since" in err, "export --since with a bad time exits 2", err)
rc, out, err = run_cli(["export", "--db", db, "--id", "xyz"])
t.check(rc == 2 and "--id" in err, "export --id with a bad id exits 2", err)
rc, out, err = run_cli(["export", "--db", db, "--id", "9789999999991"])
t.check(rc == 1 and "not tracked" in err, "export --id of an untracked book exits 1", err)
rc, out, err = run_cli(["export", "--db", db, "extra"])
t.check(rc == 2, "export takes no positional argument", err)
rc, out, err = run_cli(["export", "--db", os.path.join(d, "missing.db")])
t.check(rc != 0 and not os.path.exists(os.path.join(d, "missing.db")), "export refuses a missing database", err)
rc, out, err = run_cli(["--help"])
t.check("export" in out, "--help lists export", out)

rc, out, err = run_cli(["history", "--db", db, book_a, "--source", "amazon.com", "--before", iso(T0 + 2 * HOUR), "--json"])
t.check(rc == 0 and [o["rank"] for o in json.loads(out)["observations"]] == [1001, 1000],
        "history --before: strictly before", (rc, err, out[:300]))
rc, out, err = run_cli(["history", "--db", db, book_a, "--before", "soon"])
t.check(rc == 2 and "--before" in err, "history --before with a bad time exits 2", err)

# constant memory: a large export does not grow with the store
big = os.path.join(d, "big.db")
rc, _, err = run_cli(["add", "--db", big, book_a])
con = sqlite3.connect(big)
con.executemany("INSERT INTO observations(book_id, source, fetched_at, status, rank, rank_category, error) "
                "VALUES (?,?,?,?,?,?,?)",
                ((book_a, "amazon.com", T0 + k * 1000, "ok", k, "Books " + "x" * 100, "e" * 100)
                 for k in range(300000)))
con.commit()
con.close()


def export_rss(path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKRANK_")}
    with open(os.devnull, "wb") as null:
        p = subprocess.Popen([bookrank_bin(), "export", "--db", path], stdout=null, stderr=subprocess.PIPE, env=env)
        p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
    return os.waitstatus_to_exitcode(status), ru.ru_maxrss  # KiB


rc_small, small_rss = export_rss(db)
rc_big, big_rss = export_rss(big)
t.check(rc_small == 0 and rc_big == 0, "export of ~80 MB of CSV", (rc_small, rc_big))
# A sanitizer's allocator keeps freed memory in quarantine, so RSS says nothing there; the plain
# build (make test) measures it.
if any(s in os.environ.get("BUILD", "") for s in ("asan", "tsan")):
    print("ok - skipped under a sanitizer build: constant memory of export (measured by make test)")
else:
    t.check(big_rss < small_rss + 30 * 1024,
            "export of ~80 MB of CSV runs in constant memory (max RSS %d KiB vs %d KiB)" % (big_rss, small_rss))

t.done()
