"""The command line, run as the real binary: book commands, options, refresh, extract."""
import csv
import io
import json
import os
import sqlite3

from fixture_lib import FixtureStore, fixture_path, default_rank, format_rank, isbn10s
from service_lib import T, run_cli, tmpdir

t = T()
d = tmpdir()
db = os.path.join(d, "cli.db")

# --version, --help
rc, out, err = run_cli(["--version"])
t.check(rc == 0 and out.startswith("bookrank "), "--version prints the version", out + err)
rc, out, _ = run_cli(["--help"])
t.check(rc == 0 and "refresh" in out and "history" in out, "--help lists the commands")
for cmd in ["serve", "refresh", "extract", "add", "remove", "list", "history"]:
    rc, out, _ = run_cli([cmd, "--help"])
    t.check(rc == 0 and ("usage: bookrank " + cmd) in out, cmd + " --help")
rc, out, _ = run_cli(["refresh", "--help"])
t.check("--per-host" in out and "--rate" in out and "BOOKRANK_WORKERS" in out,
        "refresh --help shows scraping options and their environment variables")
rc, _, err = run_cli(["frobnicate"])
t.check(rc == 2 and "unknown command" in err, "unknown command exits 2", err)
rc, _, err = run_cli(["list", "--bogus"])
t.check(rc == 2 and "--bogus" in err, "unknown option exits 2 and names it", err)
rc, _, err = run_cli([])
t.check(rc == 2, "no command exits 2")

# add: a batch with one bad ISBN adds none
rc, out, err = run_cli(["add", "--db", db, "978-0-13-226993-3", "0132269938", "080442957X"])
t.check(rc == 2, "add with a bad check digit exits 2", (rc, out, err))
t.check("0132269938" in err and "check digit" in err, "the message names the bad input and why", err)
rc, out, _ = run_cli(["list", "--db", db, "--json"])
t.eq(json.loads(out) if rc == 0 else None, [], "nothing was added")

rc, out, err = run_cli(["add", "--db", db, "978-0-13-226993-3", "080442957x", "9791090636071"])
t.check(rc == 0, "add three valid ISBNs", err)
t.check(out.count("added ") == 3, "each reported added", out)
rc, out, _ = run_cli(["add", "--db", db, "0132269937"])
t.check(rc == 0 and "already tracked 9780132269933" in out, "ISBN-10 of a tracked book is already tracked", out)

rc, out, _ = run_cli(["list", "--db", db, "--json"])
books = json.loads(out)
t.eq([b["isbn13"] for b in books], ["9780132269933", "9780804429573", "9791090636071"], "list --json order")
t.eq(books[0]["isbn10"], "0132269937", "isbn10 derived")
t.eq(books[2]["isbn10"], None, "979 has no isbn10")
t.eq(books[0]["latest"], [], "never fetched: latest is []")
t.check(books[0]["added_at"].endswith("Z") and "T" in books[0]["added_at"], "added_at is ISO 8601 UTC")

# environment variable for the database
rc, out, _ = run_cli(["list", "--json"], env={"BOOKRANK_DB": db})
t.check(rc == 0 and len(json.loads(out)) == 3, "BOOKRANK_DB selects the database")
# config file (command line wins over it)
cfg = os.path.join(d, "cfg.json")
with open(cfg, "w") as f:
    json.dump({"db": os.path.join(d, "other.db")}, f)
rc, out, _ = run_cli(["list", "--json", "--config", cfg])
t.check(rc == 0 and json.loads(out) == [], "config file db is used")
rc, out, _ = run_cli(["list", "--json", "--config", cfg, "--db", db])
t.check(rc == 0 and len(json.loads(out)) == 3, "command line wins over config file")
with open(cfg, "w") as f:
    f.write("{not json")
rc, _, err = run_cli(["list", "--config", cfg])
t.check(rc == 2 and "config" in err, "broken config file exits 2", err)

# remove
rc, out, err = run_cli(["remove", "--db", db, "080442957X"])
t.check(rc == 0 and "removed 9780804429573" in out, "remove a book", out + err)
rc, _, err = run_cli(["remove", "--db", db, "080442957X"])
t.check(rc == 1 and "not tracked" in err, "removing an untracked book exits 1", err)
rc, _, err = run_cli(["remove", "--db", db, "12345"])
t.check(rc == 2 and "12345" in err, "remove with a malformed ISBN exits 2", err)

# history of a book never fetched
rc, out, _ = run_cli(["history", "--db", db, "9780132269933", "--json"])
t.check(rc == 0 and json.loads(out)["observations"] == [], "history --json of an unfetched book")
rc, _, err = run_cli(["history", "--db", db, "9780804429573"])
t.check(rc == 1 and "not tracked" in err, "history of an untracked book exits 1", err)
rc, _, err = run_cli(["history", "--db", db, "9780132269933", "--since", "yesterday"])
t.check(rc == 2 and "since" in err, "history --since with a bad date exits 2", err)

# extract on real pages
expect = [
    ("amazon.com", "amazon_com_book_0131103628_2019_salesrank_li.html", "ok", 5838, "Books"),
    ("amazon.de", "amazon_de_book_0131103628_2019_salesrank_li.html", "ok", 13222, "Bücher"),
    ("amazon.fr", "amazon_fr_book_2956470337_2021_no_rank.html", "no_rank", None, None),
    ("amazon.com", "amazon_com_captcha_robot_check_2020.html", "blocked", None, None),
]
for source, page, status, rank, category in expect:
    rc, out, err = run_cli(["extract", "--source", source, fixture_path(page)])
    doc = json.loads(out) if rc == 0 and out.strip() else {}
    t.check(doc.get("status") == status and doc.get("rank") == rank and doc.get("rank_category") == category,
            "extract %s %s -> %s %s" % (source, page[:30], status, rank), out + err)
with open(fixture_path("amazon_com_book_0131103628_2019_salesrank_li.html"), "rb") as f:
    rc, out, _ = run_cli(["extract", "--source", "amazon.com", "-"], input=f.read())
t.check(rc == 0 and json.loads(out)["rank"] == 5838, "extract reads standard input")
rc, _, err = run_cli(["extract", "--source", "amazon.nowhere", "-"], input=b"")
t.check(rc == 2 and "amazon.nowhere" in err, "extract with an unknown source exits 2", err)
rc, _, err = run_cli(["extract", "--source", "amazon.com", os.path.join(d, "missing.html")])
t.check(rc == 2 and "missing.html" in err, "extract of a missing file exits 2", err)

# a custom source from the config file (the README's example)
custom = os.path.join(d, "custom.json")
with open(custom, "w") as f:
    json.dump({"source": ["mystore"], "sources": [{
        "name": "mystore", "url": "https://books.example/item/{isbn13}", "base": "amazon.com",
        "block_start": "Sales rank:", "rank": "#?([0-9][0-9,.]*) in ([^<(]+)",
        "title": "<h1[^>]*>([^<]+)</h1>", "blocked": "captcha", "not_found": "no such item"}]}, f)
page = b"<html><h1 class='t'>My &amp; Book</h1><p>Sales rank: #4,321 in Books</p><p>x</p></html>"
rc, out, err = run_cli(["extract", "--config", custom, "-"], input=page)
doc = json.loads(out) if rc == 0 else {}
t.check(doc.get("status") == "ok" and doc.get("rank") == 4321 and doc.get("title") == "My & Book",
        "custom source from the config file reads its page", out + err)
rc, out, err = run_cli(["extract", "--config", custom, "-"], input=b"<html>please solve this captcha</html>")
t.check(rc == 0 and json.loads(out)["status"] == "blocked", "custom source's blocked pattern", out + err)
with open(custom, "w") as f:
    json.dump({"source": ["bad"], "sources": [{"name": "bad", "url": "ftp://x/{isbn13}"}]}, f)
rc, out, err = run_cli(["extract", "--config", custom, "-"], input=b"")
t.check(rc == 2 and "bad" in err, "a custom source with an ftp URL is refused", err)

# refresh against the fixture store
with FixtureStore() as store:
    store.config(books={
        "0132269937": {"title": "Core Python Programming", "rank": 123456},
        "080442957X": {"page": "captcha"},
        "0131103628": {"page": "fixture:amazon_com_book_0131103628_2019_salesrank_li.html"},
    })
    src = ["--source", "amazon.com=" + store.url("/dp/{isbn10}"), "--rate", "0", "--retries", "0"]
    rdb = os.path.join(d, "refresh.db")
    rc, out, err = run_cli(["refresh", "--db", rdb] + src + ["9780132269933", "0131103628"])
    t.check(rc == 0, "refresh of two good books exits 0", out + err)
    t.check("- 'Core Python Programming' (9780132269933) ranked #123,456 on amazon.com" in out,
            "one line per book in the seed's format", out)
    t.check("(9780131103627) ranked #5,838 on amazon.com" in out, "the real page's rank", out)
    t.check("2 ok" in out, "summary counts", out)
    rc, out, _ = run_cli(["list", "--db", rdb, "--json"])
    books = {b["isbn13"]: b for b in json.loads(out)}
    t.eq(sorted(books), ["9780131103627", "9780132269933"], "refreshed books became tracked")
    lat = books["9780132269933"]["latest"][0]
    t.check(lat["status"] == "ok" and lat["rank"] == 123456 and lat["source"] == "amazon.com",
            "latest observation stored", lat)
    t.eq(books["9780132269933"]["title"], "Core Python Programming", "title stored")

    # a 979 book (no ISBN-10) and a captcha -> exit 1
    rc, out, err = run_cli(["refresh", "--db", rdb] + src + ["080442957X", "9791090636071"])
    t.check(rc == 1, "refresh with blocked/error observations exits 1", out + err)
    t.check("blocked on amazon.com" in out, "blocked is reported", out)
    t.check("(9791090636071) error" in out, "979 without ISBN-10 is an error for {isbn10} sources", out)

    # no arguments: all tracked books; --json
    store.config(default={"rank": 777})
    rc, out, err = run_cli(["refresh", "--db", rdb, "--json"] + src)
    doc = json.loads(out) if out.strip().startswith("{") else {}
    t.check(rc == 1, "refresh of all (still has the 979 book) exits 1", out + err)
    t.eq(doc.get("job", {}).get("total"), 4, "refresh without arguments covers every tracked book")
    t.eq(sorted(r["isbn13"] for r in doc.get("results", [])),
         ["9780131103627", "9780132269933", "9780804429573", "9791090636071"], "--json results")

    # the progress line (a terminal's; BOOKRANK_PROGRESS=1 forces it): drawn by the jobs writer
    # thread while the main thread learns the job's total - under `make tsan` this is the race
    # check for the progress path
    store.config(default={"rank": 778, "delay_ms": 20})
    pbooks = isbn10s(40, start=300000000)
    rc, out, err = run_cli(["refresh", "--db", os.path.join(d, "progress.db"), "--per-host", "8"] + src + pbooks,
                           env={"BOOKRANK_PROGRESS": "1"})
    t.check(rc == 0 and "] 40/40" in err and "\r\033[K" in err, "progress line drawn up to 40/40", err[-300:])
    t.eq(out.count(" ranked #778 on amazon.com"), 40, "every result printed beside the progress line")
    store.config(default={"rank": 777})

    # history formats
    rc, out, _ = run_cli(["history", "--db", rdb, "9780132269933", "--json"])
    obs = json.loads(out)["observations"]
    t.eq([o["rank"] for o in obs], [777, 123456], "history newest first")
    t.eq(obs[0]["previous_rank"], 123456, "previous_rank")
    rc, out, _ = run_cli(["history", "--db", rdb, "9780132269933", "--csv"])
    rows = list(csv.reader(io.StringIO(out)))
    t.eq(rows[0], ["isbn13", "source", "fetched_at", "status", "rank", "rank_category", "http_status", "error"],
         "CSV header")
    t.check(len(rows) == 3 and rows[1][4] == "777" and rows[1][3] == "ok", "CSV rows", rows)
    rc, out, _ = run_cli(["history", "--db", rdb, "9780132269933", "--limit", "1", "--json"])
    t.eq(len(json.loads(out)["observations"]), 1, "history --limit")

    # refresh with a bad ISBN changes nothing
    rc, _, err = run_cli(["refresh", "--db", rdb] + src + ["0132269938"])
    t.check(rc == 2 and "0132269938" in err, "refresh with a bad ISBN exits 2", err)
    rc, _, err = run_cli(["refresh", "--db", rdb, "--workers", "zero"] + src)
    t.check(rc == 2 and "workers" in err, "bad --workers exits 2", err)

# the database is a real SQLite file in WAL mode
con = sqlite3.connect(os.path.join(d, "refresh.db"))
t.eq(con.execute("PRAGMA journal_mode").fetchone()[0], "wal", "database is in WAL mode")
t.eq(con.execute("PRAGMA integrity_check").fetchone()[0], "ok", "integrity_check ok")
con.close()

# a version-1 database (before the history index) is migrated forward, keeping its data
old_db = os.path.join(d, "refresh.db")
con = sqlite3.connect(old_db)
con.execute("DROP INDEX observations_by_book_time")
con.execute("PRAGMA user_version = 1")
con.commit()
con.close()
rc, out, err = run_cli(["history", "--db", old_db, "9780132269933", "--json"])
t.check(rc == 0 and len(json.loads(out)["observations"]) == 2, "history after migrating 1 -> 2", out + err)
con = sqlite3.connect(old_db)
t.eq(con.execute("PRAGMA user_version").fetchone()[0], 2, "user_version is 2 after migration")
plan = " ".join(r[-1] for r in con.execute(
    "EXPLAIN QUERY PLAN SELECT * FROM observations WHERE isbn13 = '9780132269933' AND fetched_at >= 0"
    " ORDER BY fetched_at DESC, id DESC LIMIT 500"))
t.check("observations_by_book_time" in plan and "TEMP B-TREE" not in plan,
        "history of all sources reads the index in order, no sort", plan)
con.close()
t.done()
