#!/usr/bin/env python3
"""baseline.py - the seed's way to refresh ranks, kept as the yardstick for `bookrank refresh`.

    baseline.py --db FILE --url TEMPLATE [--workers N] ISBN10...

ThreadPoolExecutor(N) + urllib.request + one `re` pattern + sqlite3: fetch every book's page
(TEMPLATE with {isbn10} replaced), read the rank with one regular expression, insert one row per
book. Rows are inserted by the main thread as fetches finish, in one transaction (the lean
version of the seed: a commit per row would only make the baseline slower). Prints
"ok N of M" and exits 0 when every page gave a rank, 1 otherwise.
"""
import argparse
import concurrent.futures
import re
import sqlite3
import sys
import time
import urllib.request

RANK = re.compile(rb"Best Sellers Rank:(?:\s|<[^>]*>)*#?([0-9][0-9,]*) in ([^<(]+)")


def fetch(template, isbn10):
    url = template.replace("{isbn10}", isbn10)
    started = time.time()
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            page = resp.read()
            status = resp.status
    except Exception as exc:  # the seed recorded any failure as an error row
        return isbn10, started, 0, None, None, str(exc)
    m = RANK.search(page)
    if not m:
        return isbn10, started, status, None, None, "no rank"
    rank = int(m.group(1).replace(b",", b""))
    return isbn10, started, status, rank, m.group(2).strip().decode("utf-8", "replace"), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--workers", type=int, default=64)
    ap.add_argument("isbns", nargs="+")
    args = ap.parse_args()

    db = sqlite3.connect(args.db)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE IF NOT EXISTS observations (isbn10 TEXT, fetched_at REAL,"
               " http_status INTEGER, rank INTEGER, category TEXT, error TEXT)")
    ok = 0
    with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
        futures = [pool.submit(fetch, args.url, i) for i in args.isbns]
        for fut in concurrent.futures.as_completed(futures):
            row = fut.result()
            db.execute("INSERT INTO observations VALUES (?, ?, ?, ?, ?, ?)", row)
            ok += row[3] is not None
    db.commit()
    db.close()
    print("ok %d of %d" % (ok, len(args.isbns)))
    return 0 if ok == len(args.isbns) else 1


if __name__ == "__main__":
    sys.exit(main())
