"""Every edition over the API of the real `bookrank serve`: ids in every form (ISBN with Unicode
dashes, ASIN in any case, product URLs of any storefront, short links refused), the book's
fields set with PATCH, ASINs that make a 979 book fetchable, per-storefront ASINs, books limited
to some storefronts, sources that cannot address a book skip it, and the jobs list and cancel."""
import os
import urllib.parse

from fixture_lib import FixtureStore, isbn10s
from service_lib import T, Service, run_cli, tmpdir

t = T()
d = tmpdir()


def q(s):
    return urllib.parse.quote(s, safe="")


with FixtureStore() as store:
    store.config(default={"rank": 4242})
    src = ["--source", "amazon.com=" + store.url("/dp/{asin}"),
           "--source", "amazon.de=" + store.url("/de/{asin}"),
           "--rate", "0", "--per-host", "8", "--retries", "0"]
    with Service(os.path.join(d, "reach.db"), src) as svc:
        # ---- ids in every form ------------------------------------------------------------
        st, _, doc = svc.json("POST", "/api/books", {"ids": [
            "ISBN-13: 978\u20110\u201113\u2011226993\u20113",
            "https://www.amazon.co.jp/-/en/dp/b01lw7x0jj/ref=sr_1_1?keywords=a,b",
            "b004vhazh6",
            "9791090636071"]})
        t.check(st == 201 and doc.get("added") == ["9780132269933", "B01LW7X0JJ", "B004VHAZH6", "9791090636071"],
                "POST /api/books: an ISBN with Unicode dashes and a prefix, a product URL, an ASIN", doc)
        st, _, doc = svc.json("POST", "/api/books", "https://www.amazon.com/gp/product/B01LW7X0JJ\n",
                              headers={"Content-Type": "text/plain"})
        t.check(st == 200 and doc.get("already_tracked") == ["B01LW7X0JJ"] and doc.get("added") == [],
                "the same ASIN from a /gp/product/ URL is already tracked: 200", doc)
        st, _, doc = svc.json("POST", "/api/books", {"ids": ["B01LW7X0JJ", "https://a.co/d/3xAmpLe"]})
        t.check(st == 400 and doc["error"]["details"][0]["index"] == 1 and
                "product page" in doc["error"]["details"][0]["reason"],
                "a short share link is refused with a clear reason, nothing added", doc)
        st, _, doc = svc.json("GET", "/api/books/" + q("https://www.amazon.de/dp/B01LW7X0JJ?th=1"))
        t.check(st == 200 and doc.get("id") == "B01LW7X0JJ" and doc.get("isbn13") is None,
                "GET a book by a product URL: an ASIN book has isbn13 null", doc)
        st, _, doc = svc.json("GET", "/api/books/b01lw7x0jj")
        t.check(st == 200 and doc.get("id") == "B01LW7X0JJ", "GET by a lower-case ASIN", doc)
        st, _, doc = svc.json("GET", "/api/books/B0NOTTHERE")
        t.check(st == 404 and doc["error"]["code"] == "book_not_found", "an untracked ASIN is 404", doc)
        st, _, doc = svc.json("GET", "/api/books/hello")
        t.check(st == 400, "a path segment that is no id is 400", doc)

        # ---- PATCH ------------------------------------------------------------------------
        st, _, doc = svc.json("PATCH", "/api/books/0132269937", {
            "work": "Core Python", "format": "paperback", "tags": ["python", "classic"],
            "note": "first\nedition", "asin": "b00corepy1"})
        t.check(st == 200 and doc.get("work") == "Core Python" and doc.get("format") == "paperback"
                and sorted(doc.get("tags", [])) == ["classic", "python"] and doc.get("note") == "first\nedition"
                and doc.get("asin") == "B00COREPY1", "PATCH sets work, format, tags, note and the ASIN", doc)
        st, _, doc = svc.json("GET", "/api/books/b00corepy1")
        t.check(st == 200 and doc.get("id") == "9780132269933", "the attached ASIN finds the book", doc)
        st, _, doc = svc.json("PATCH", "/api/books/B004VHAZH6", {"asin": "B00COREPY1"})
        t.check(st == 409 and doc["error"]["code"] == "conflict", "an ASIN attached to another book: 409", doc)
        st, _, before = svc.json("GET", "/api/books/9780132269933")
        for body, what in [({"colour": "red"}, "an unknown key"), ({"asin": "12"}, "a malformed ASIN"),
                           ({"tags": ["x" * 65]}, "a tag over 64 bytes"), ({"format": "scroll"}, "an unknown format"),
                           ({"note": "x" * 2001}, "a note over 2000 bytes"), ("[1", "broken JSON")]:
            st, _, doc = svc.json("PATCH", "/api/books/9780132269933", body,
                                  headers={"Content-Type": "application/json"})
            t.check(st == 400 and "error" in doc, "PATCH with %s: 400" % what, doc)
        st, _, after = svc.json("GET", "/api/books/9780132269933")
        t.eq(after, before, "refused PATCHes changed nothing")
        st, _, doc = svc.json("PATCH", "/api/books/9780000000002", {"note": "x"})
        t.check(st == 404, "PATCH of an untracked book: 404", doc)
        st, _, doc = svc.json("PATCH", "/api/books/9780132269933", {"tags": None, "note": None})
        t.check(st == 200 and doc.get("tags") == [] and doc.get("note") is None, "null clears", doc)

        # ---- a 979 book: skipped until it has an ASIN; per-storefront ASINs; sources --------
        st, _, doc = svc.json("POST", "/api/refresh", {"ids": ["9791090636071"]})
        job = svc.wait_job(doc["job"]["id"]) if st == 202 else {}
        t.check(job.get("state") == "done" and job.get("total") == 0 and job.get("skipped") == 2,
                "a 979 book without an ASIN is skipped on both storefronts, not failed", job)
        st, _, doc = svc.json("PATCH", "/api/books/9791090636071",
                              {"asin": "B0979AAAAA", "asins": {"amazon.de": "B0979DEDEA"}})
        t.check(st == 200 and doc.get("asins") == {"amazon.de": "B0979DEDEA"}, "a per-storefront ASIN", doc)
        st, _, doc = svc.json("GET", "/api/books/b0979dedea")
        t.check(st == 200 and doc.get("id") == "9791090636071", "a per-storefront ASIN finds its book", doc)
        st, _, doc = svc.json("POST", "/api/books", {"ids": ["B0979DEDEA"]})
        t.check(st == 200 and doc.get("already_tracked") == ["9791090636071"],
                "adding a per-storefront ASIN names the book that has it, adds nothing", doc)
        store.reset()
        st, _, doc = svc.json("POST", "/api/refresh", {"ids": ["9791090636071"]})
        job = svc.wait_job(doc["job"]["id"]) if st == 202 else {}
        hits = store.stats().get("hits", {})
        t.check(job.get("done") == 2 and job.get("counts", {}).get("ok") == 2, "with ASINs both storefronts fetch it", job)
        t.eq(sorted(hits), ["B0979AAAAA", "B0979DEDEA"], "amazon.com used the ASIN, amazon.de its own")
        st, _, doc = svc.json("PATCH", "/api/books/B004VHAZH6", {"sources": ["amazon.de"]})
        t.check(st == 200 and doc.get("sources") == ["amazon.de"], "a book limited to one storefront", doc)
        store.reset()
        st, _, doc = svc.json("POST", "/api/refresh", {"ids": ["B004VHAZH6"]})
        job = svc.wait_job(doc["job"]["id"]) if st == 202 else {}
        t.check(job.get("total") == 1 and store.stats().get("requests") == 1,
                "it is fetched on that storefront only", (job, store.stats()))
        st, _, doc = svc.json("GET", "/api/books/B004VHAZH6")
        t.eq([o["source"] for o in doc.get("latest", [])], ["amazon.de"], "its latest: that storefront")

        # ---- jobs list and cancel ----------------------------------------------------------
        st, _, doc = svc.json("GET", "/api/jobs")
        t.check(st == 200 and len(doc.get("jobs", [])) >= 3 and "next_scheduled_at" in doc,
                "GET /api/jobs lists the jobs", doc)
        ids = [j["id"] for j in doc.get("jobs", [])]
        t.eq(ids, sorted(ids, reverse=True), "newest first")
        t.check(all(j.get("started_by") == "api" for j in doc.get("jobs", [])), "started_by api", doc)
        st, _, doc = svc.json("GET", "/api/jobs?limit=1&state=done")
        t.check(st == 200 and len(doc["jobs"]) == 1 and doc["jobs"][0]["state"] == "done", "?limit and ?state", doc)
        st, _, doc = svc.json("GET", "/api/jobs?state=sleeping")
        t.check(st == 400, "an unknown state is 400", doc)
        st, _, doc = svc.json("DELETE", "/api/jobs/%d" % ids[0])
        t.check(st == 409, "cancelling a finished job: 409", doc)
        st, _, doc = svc.json("DELETE", "/api/jobs/999999")
        t.check(st == 404, "cancelling an unknown job: 404", doc)

        store.config(default={"rank": 4242, "delay_ms": 200})
        bulk = isbn10s(60, start=200000000)
        st, _, doc = svc.json("POST", "/api/books", {"ids": bulk, "refresh": True})
        jid = doc.get("job", {}).get("id") if st == 201 else None
        st, _, doc = svc.json("DELETE", "/api/jobs/%s" % jid)
        t.check(st == 202, "DELETE of a running job: 202", doc)
        job = svc.wait_job(jid) if jid else {}
        t.check(job.get("state") == "cancelled" and job.get("done", 0) < job.get("total", 0),
                "the cancelled job ends cancelled before fetching everything", job)
        st, _, doc = svc.json("DELETE", "/api/jobs/%s" % jid)
        t.check(st == 409, "cancelling it again: 409", doc)

    # ---- --rate-all: one cap across every host; --keep-pages; pages not understood ----------
    store.config(default={"page": "no_rank"})
    two = ["--source", "amazon.com=" + store.url("/dp/{asin}"),
           "--source", "amazon.de=" + store.url("/de/{asin}", host="localhost"),
           "--rate", "100", "--per-host", "8", "--retries", "0", "--rate-all", "20", "--keep-pages", "3"]
    kdb = os.path.join(d, "keep.db")
    with Service(kdb, two) as svc:
        books = isbn10s(22, start=300000000)
        store.reset()
        st, _, doc = svc.json("POST", "/api/books", {"ids": books, "refresh": True})
        job = svc.wait_job(doc["job"]["id"]) if st == 201 else {}
        arr = sorted(store.stats().get("arrivals_ms", []))
        gaps = [b - a for a, b in zip(arr, arr[1:])]
        t.check(job.get("done") == 44 and len(arr) == 44, "44 fetches over two hosts", (job, len(arr)))
        t.check(gaps and min(gaps) >= 40, "--rate-all 20: starts at least ~50 ms apart across both hosts "
                "(smallest gap %s ms)" % (min(gaps) if gaps else None), gaps)
        pages = sorted(os.listdir(kdb + ".pages")) if os.path.isdir(kdb + ".pages") else []
        t.eq(len(pages), 3, "--keep-pages 3 keeps the last 3 pages that were not ok")
        t.check(all("_no_rank_200.html" in p for p in pages), "named by time, source, id, status", pages)
        if pages:
            rc, out, err = run_cli(["extract", "--source", "amazon.com", os.path.join(kdb + ".pages", pages[-1])])
            t.check(rc == 0 and '"no_rank"' in out, "bookrank extract reads a kept page", out + err)
        st, _, body = svc.request("GET", "/metrics")
        text = body.decode()
        t.check('bookrank_pages_not_understood_ratio{source="amazon.com"} 1.000' in text,
                "/metrics: the share of pages not understood per source", text[-600:])
        t.check("markup may have changed" in svc.log_text(), "the log warns when the share jumps", svc.log_text()[-800:])

t.done()
