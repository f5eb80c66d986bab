"""The REST API of the real `bookrank serve` against the fixture store: the full cycle, every
error path, both body types, job joining, the schedule, concurrency and shutdown."""
import csv
import io
import json
import os
import signal
import sqlite3
import threading
import time

from fixture_lib import FixtureStore, isbn10s
from service_lib import T, Service, run_cli, tmpdir

t = T()
d = tmpdir()

with FixtureStore() as store:
    store.config(books={"0132269937": {"title": "Core Python Programming", "rank": 123456},
                        "0131103628": {"page": "fixture:amazon_com_book_0131103628_2019_salesrank_li.html"}})
    src = ["--source", "amazon.com=" + store.url("/dp/{isbn10}"), "--rate", "0", "--per-host", "8",
           "--retries", "0"]
    db = os.path.join(d, "api.db")
    with Service(db, src) as svc:
        st, h, doc = svc.json("GET", "/healthz")
        t.check(st == 200 and doc == {"status": "ok"}, "healthz", doc)

        # ---- full cycle -------------------------------------------------------------------
        st, h, doc = svc.json("POST", "/api/books", {"isbns": ["978-0-13-226993-3", "0131103628"]})
        t.check(st == 201 and doc["added"] == ["9780132269933", "9780131103627"] and doc["already_tracked"] == [],
                "POST /api/books adds", doc)
        st, h, doc = svc.json("POST", "/api/books", "0132269937\n9780131103627, 080442957X\n\n",
                              headers={"Content-Type": "text/plain; charset=utf-8"})
        t.check(st == 201 and doc["added"] == ["9780804429573"]
                and doc["already_tracked"] == ["9780132269933", "9780131103627"],
                "text/plain body: lines and commas", doc)
        st, h, doc = svc.json("GET", "/api/books/0132269937")
        t.check(st == 200 and doc["isbn13"] == "9780132269933" and doc["latest"] == [],
                "GET one book by any ISBN form, never fetched", doc)

        st, h, doc = svc.json("POST", "/api/refresh")
        t.check(st == 202 and doc["job"]["state"] in ("queued", "running", "done"), "POST /api/refresh -> 202", doc)
        t.eq(h.get("location"), "/api/jobs/%d" % doc["job"]["id"], "Location header")
        job = svc.wait_job(doc["job"]["id"])
        t.check(job and job["state"] == "done" and job["done"] == 3 and job["total"] == 3,
                "job finishes with done == total", job)
        t.check(job and job["counts"]["ok"] == 3 and job["finished_at"].endswith("Z"), "job counts per status", job)
        st, h, doc = svc.json("GET", "/api/books/9780132269933")
        lat = doc["latest"][0] if doc.get("latest") else {}
        t.check(lat["status"] == "ok" and lat["rank"] == 123456 and lat["rank_category"] == "Books",
                "book shows its rank", lat)
        t.eq(doc["title"], "Core Python Programming", "title from the page")
        t.eq(lat["previous_rank"], None, "previous_rank null after one observation")

        store.config(books={"0132269937": {"title": "Core Python Programming", "rank": 100000}})
        st, h, doc = svc.json("POST", "/api/refresh", {"isbns": ["9780132269933"]})
        t.check(st == 202 and doc["job"]["total"] == 1, "refresh of one book", doc)
        svc.wait_job(doc["job"]["id"])
        st, h, doc = svc.json("GET", "/api/books/9780132269933/history")
        obs = doc["observations"]
        t.eq([o["rank"] for o in obs], [100000, 123456], "history newest first")
        t.eq(obs[0]["previous_rank"], 123456, "previous rank in history")
        st, h, doc = svc.json("GET", "/api/books/9780132269933/history?limit=1")
        t.eq(len(doc["observations"]), 1, "history ?limit")
        st, h, doc = svc.json("GET", "/api/books/9780132269933/history?since=2999-01-01T00:00:00Z")
        t.eq(doc["observations"], [], "history ?since in the future")
        st, h, doc = svc.json("GET", "/api/books/9780132269933/history?source=amazon.de")
        t.eq(doc["observations"], [], "history ?source filters")
        st, h, doc = svc.json("GET", "/api/books?status=ok")
        t.eq(len(doc), 3, "GET /api/books?status=ok")
        st, h, doc = svc.json("GET", "/api/books?status=blocked")
        t.eq(doc, [], "GET /api/books?status=blocked")

        st, h, body = svc.request("GET", "/api/export.csv")
        rows = list(csv.reader(io.StringIO(body.decode())))
        t.check(st == 200 and h["content-type"].startswith("text/csv"), "export is CSV")
        t.eq(rows[0], ["isbn13", "source", "fetched_at", "status", "rank", "rank_category", "http_status", "error", "id"],
             "export header")
        t.eq(len(rows), 5, "export has every observation")

        st, h, body = svc.request("DELETE", "/api/books/9780132269933")
        t.check(st == 204 and body == b"", "DELETE -> 204")
        st, h, doc = svc.json("GET", "/api/books/9780132269933")
        t.check(st == 404 and doc["error"]["code"] == "book_not_found", "deleted book is gone", doc)
        st, h, body = svc.request("GET", "/api/export.csv")
        t.eq(body.decode().count("9780132269933"), 0, "its history is dropped")

        # ---- errors ----------------------------------------------------------------------
        def err(method, path, body=None, headers=None, status=None, code=None, what=""):
            st, h, doc = svc.json(method, path, body, headers)
            ok = st == status and isinstance(doc, dict) and doc.get("error", {}).get("code") == code \
                and isinstance(doc["error"].get("message"), str)
            t.check(ok, "%s %s -> %d %s %s" % (method, path[:40], status, code, what), (st, doc))
            return h, doc

        before = svc.json("GET", "/api/books")[2]
        h, doc = err("POST", "/api/books", {"isbns": ["9780132269933", "0132269938", "abc", 42]}, status=400,
                     code="invalid_isbn", what="per-entry details")
        det = doc.get("error", {}).get("details", [])
        t.eq([x["index"] for x in det], [1, 2, 3], "details name each bad entry's index")
        t.check(det and det[0]["input"] == "0132269938" and "check digit" in det[0]["reason"], "details say why", det)
        t.eq(svc.json("GET", "/api/books")[2], before, "nothing added when any entry is invalid")
        err("POST", "/api/books", "{not json", {"Content-Type": "application/json"}, 400, "invalid_json")
        err("POST", "/api/books", {"isbns": "9780132269933"}, status=400, code="invalid_body")
        err("POST", "/api/books", {"isbns": []}, status=400, code="invalid_body", what="empty list")
        err("POST", "/api/books", [1, 2], status=400, code="invalid_body", what="array body")
        err("POST", "/api/books", "0132269937", {"Content-Type": "application/xml"}, 415, "unsupported_media_type")
        err("POST", "/api/books", "0132269937", {}, 415, "unsupported_media_type", "no content type")
        err("POST", "/api/books", {"isbns": ["0132269937"] * 10001}, status=400, code="too_many_isbns")
        big = b"0132269937\n" * 120000
        st, h, body = svc.raw(b"POST /api/books HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                              b"Content-Length: %d\r\n\r\n" % len(big) + big)
        t.check(st == 413 and b"payload_too_large" in body, "body over 1 MiB (Content-Length) -> 413 before reading it",
                (st, body[:200]))
        # A plain client (urllib, requests: no Expect: 100-continue) sends the whole body before
        # it reads; the 413 must still reach it, not a reset or a broken pipe.
        import http.client as _hc
        plain = []
        for size in (2 << 20, 5 << 20, 15 << 20) * 3:
            c = _hc.HTTPConnection("127.0.0.1", svc.port, timeout=30)
            try:
                c.request("POST", "/api/books", body=b"x" * size, headers={"Content-Type": "text/plain"})
                r = c.getresponse()
                plain.append((r.status, b"payload_too_large" in r.read()))
            except (BrokenPipeError, ConnectionResetError, _hc.HTTPException) as e:
                plain.append(type(e).__name__)
            finally:
                c.close()
        t.eq(plain, [(413, True)] * 9, "body of 2, 5 and 15 MiB from a plain client: the 413 arrives every time")
        piece = b"0132269937\n" * 5957
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(20)) + b"0\r\n\r\n"
        st, h, body = svc.raw(b"POST /api/books HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
        t.check(st == 413 and b"payload_too_large" in body, "chunked body over 1 MiB -> 413", (st, body[:200]))
        err("GET", "/api/books/12345", status=400, code="invalid_isbn")
        err("GET", "/api/books/9780306406157", status=404, code="book_not_found")
        err("GET", "/api/nope", status=404, code="not_found")
        err("GET", "/../../etc/passwd", status=404, code="not_found")
        err("GET", "/api/jobs/999999", status=404, code="job_not_found")
        err("GET", "/api/jobs/abc", status=400, code="invalid_query")
        err("GET", "/api/books?status=great", status=400, code="invalid_query")
        err("GET", "/api/books/9780131103627/history?since=yesterday", status=400, code="invalid_query")
        err("GET", "/api/books/9780131103627/history?limit=-5", status=400, code="invalid_query")
        err("GET", "/api/books/9780131103627/history?limit=99999999999999999999", status=400, code="invalid_query")
        err("POST", "/api/refresh", {"isbns": []}, status=400, code="invalid_body", what="explicit empty list")
        err("GET", "/api/books/" + "9" * 600, status=400, code="invalid_isbn", what="long path segment")
        before = svc.json("GET", "/api/books")[2]
        err("POST", "/api/books", "0306406152", {"Content-Type": "text/plain", "Origin": "http://evil.example"},
            403, "forbidden_origin", "cross-site form post")
        err("POST", "/api/refresh", None, {"Sec-Fetch-Site": "cross-site"}, 403, "forbidden_origin")
        t.eq(svc.json("GET", "/api/books")[2], before, "cross-site requests changed nothing")
        st, _, doc = svc.json("POST", "/api/books", {"isbns": ["0306406152"]},
                              {"Origin": "http://127.0.0.1:%d" % svc.port})
        t.check(st == 201, "same-origin POST with Origin is allowed", doc)
        svc.request("DELETE", "/api/books/0306406152")
        h, _ = err("PUT", "/api/books", {"isbns": []}, status=405, code="method_not_allowed")
        t.check("GET" in h.get("allow", "") and "POST" in h.get("allow", ""), "405 has Allow", h)
        h, _ = err("POST", "/healthz", status=405, code="method_not_allowed")
        t.check("GET" in h.get("allow", ""), "405 Allow on healthz", h)

        # ---- dashboard, metrics --------------------------------------------------------------
        st, h, body = svc.request("GET", "/")
        t.check(st == 200 and h["content-type"].startswith("text/html"), "dashboard HTML")
        t.check("default-src 'self'" in h.get("content-security-policy", "") and h.get("x-content-type-options") == "nosniff",
                "CSP and nosniff on HTML", h)
        st, h, body = svc.request("GET", "/metrics")
        text = body.decode()
        t.check(st == 200 and 'bookrank_fetches_total{source="amazon.com",status="ok"} 4' in text,
                "metrics count fetches by source and status", text[:1500])
        t.check("bookrank_fetch_duration_seconds_bucket" in text and "bookrank_books_tracked 2" in text
                and "bookrank_jobs_running 0" in text and 'bookrank_http_requests_total{code="200"}' in text,
                "metrics histogram and gauges", text[-1500:])

        # ---- refresh: true on POST /api/books, job join ----------------------------------------
        store.config(default={"delay_ms": 300})
        st, h, doc = svc.json("POST", "/api/books", {"isbns": ["9780306406157"], "refresh": True})
        t.check(st == 201 and "job" in doc and doc["job"]["total"] == 1, "POST /api/books refresh:true starts a job", doc)
        svc.wait_job(doc["job"]["id"])
        store.reset()
        st1, _, a = svc.json("POST", "/api/refresh")
        st2, _, b = svc.json("POST", "/api/refresh", b"", {"Content-Type": "application/json"})
        t.check(st1 == 202 and st2 == 202 and a["job"]["id"] == b["job"]["id"], "refresh of all while one runs joins it",
                (a, b))
        t.check(b.get("joined") is True, "the join is reported", b)
        job = svc.wait_job(a["job"]["id"])
        t.eq(job and job["total"], 3, "joined job fetched each book once")
        hits = store.stats()["hits"]
        t.check(all(v == 1 for v in hits.values()) and len(hits) == 3, "no duplicate fetches", hits)

        # ---- 50 concurrent clients while a refresh runs --------------------------------------
        store.config(default={"delay_ms": 200})
        st, _, doc = svc.json("POST", "/api/refresh")
        errors = []

        def client(n):
            for i in range(10):
                try:
                    paths = ["/api/books", "/api/books/9780131103627", "/healthz", "/api/jobs/%d" % doc["job"]["id"]]
                    s, _, _ = svc.request("GET", paths[(n + i) % len(paths)])
                    if s != 200:
                        errors.append(s)
                except Exception as e:  # noqa: BLE001 - any failure counts
                    errors.append(repr(e))
        threads = [threading.Thread(target=client, args=(n,)) for n in range(50)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        t.eq(errors, [], "50 concurrent clients x 10 requests during a refresh: all 200")
        svc.wait_job(doc["job"]["id"])
    t.eq(svc.proc.returncode, 0, "SIGTERM when idle exits 0")

    # ---- at most 64 unfinished refreshes of given books --------------------------------------
    store.config(default={"delay_ms": 2000})
    with Service(os.path.join(d, "cap.db"), src) as svc:
        codes = [svc.json("POST", "/api/refresh", {"isbns": ["0132269937"]})[0] for _ in range(70)]
        t.check(codes.count(202) == 64 and codes.count(429) == 6, "the 65th concurrent refresh gets 429",
                codes)
        st, _, doc = svc.json("POST", "/api/refresh", {"isbns": ["0132269937"]})
        t.eq(doc["error"]["code"], "too_many_refreshes", "429 says why")
    store.config()

    # ---- token ----------------------------------------------------------------------------
    with Service(os.path.join(d, "tok.db"), src + ["--token", "s3cret"]) as svc:
        st, _, doc = svc.json("POST", "/api/books", {"isbns": ["0132269937"]})
        t.check(st == 401 and doc["error"]["code"] == "unauthorized", "mutating without token -> 401", doc)
        st, _, doc = svc.json("POST", "/api/books", {"isbns": ["0132269937"]}, {"Authorization": "Bearer wrong"})
        t.eq(st, 401, "wrong token -> 401")
        st, _, doc = svc.json("POST", "/api/books", {"isbns": ["0132269937"]}, {"Authorization": "Bearer s3cret"})
        t.eq(st, 201, "right token -> 201")
        st, _, doc = svc.json("DELETE", "/api/books/0132269937")
        t.eq(st, 401, "DELETE without token -> 401")
        st, _, doc = svc.json("GET", "/api/books")
        t.check(st == 200 and len(doc) == 1, "reading needs no token")
        st, _, doc = svc.json("GET", "/api/config")
        t.eq(doc.get("auth_required"), True, "/api/config says a token is required")

    # ---- schedule ---------------------------------------------------------------------------
    sdb = os.path.join(d, "sched.db")
    run_cli(["add", "--db", sdb, "0132269937"])
    store.config()
    with Service(sdb, src + ["--refresh-every", "1s", "--allow-short-interval"]) as svc:
        time.sleep(3.5)
        st, _, doc = svc.json("GET", "/api/books/0132269937/history")
        n = len(doc["observations"])
        t.check(2 <= n <= 4, "--refresh-every 1s refreshed on its own (%d observations in 3.5 s)" % n, doc)
        # cron beside serve on the same database; serve's cached answer follows it
        svc.json("GET", "/api/books/0132269937")
        store.config(books={"0132269937": {"rank": 4242}})
        rc, out, err = run_cli(["refresh", "--db", sdb] + src[:2] + ["--rate", "0"])
        t.check(rc == 0, "bookrank refresh works beside a running serve", out + err)
        time.sleep(0.2)
        st, _, doc = svc.json("GET", "/api/books/0132269937")
        t.eq(doc["latest"][0]["rank"], 4242, "a change by another process shows within 0.2 s")

    # ---- SIGTERM during a refresh -------------------------------------------------------------
    tdb = os.path.join(d, "term.db")
    run_cli(["add", "--db", tdb, "0132269937", "0131103628", "080442957X"])
    isbns = isbn10s(60)
    run_cli(["add", "--db", tdb] + isbns)
    store.config(default={"delay_ms": 400})
    with Service(tdb, src[:-4] + ["--per-host", "4", "--workers", "4", "--grace", "2"]) as svc:
        st, _, doc = svc.json("POST", "/api/refresh")
        job_id = doc["job"]["id"]
        time.sleep(2.5)
        st, _, mid = svc.json("GET", "/api/jobs/%d" % job_id)
        svc.signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = svc.wait(30)
        t.eq(rc, 0, "SIGTERM during a refresh exits 0")
        t.check(time.monotonic() - t0 < 10, "and within the grace period")
    con = sqlite3.connect(tdb)
    state, done = con.execute("SELECT state, done FROM jobs WHERE id = ?", (job_id,)).fetchone()
    nobs = con.execute("SELECT count(*) FROM observations").fetchone()[0]
    t.eq(state, "cancelled", "the interrupted job is stored as cancelled, not running")
    t.check(nobs >= mid["job"]["done"] and nobs == done, "nothing reported done was lost (%d stored, %d reported)"
            % (nobs, mid["job"]["done"]))
    t.check(0 < nobs < 63, "the refresh was really interrupted (%d of 63)" % nobs)
    t.eq(con.execute("PRAGMA integrity_check").fetchone()[0], "ok", "integrity_check after SIGTERM")
    con.close()
    with Service(tdb, src) as svc:
        st, _, doc = svc.json("GET", "/api/jobs/%d" % job_id)
        t.eq(doc["job"]["state"], "cancelled", "after restart the job still shows cancelled")

t.done()
