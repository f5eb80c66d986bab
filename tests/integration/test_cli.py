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
for cmd in ["serve", "refresh", "extract", "add", "remove", "edit", "list", "history", "migrate", "backup"]:
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
rc, out, err = run_cli(["list", "--db", db, "--json"])
t.check(rc == 2 and "no database" in err and not os.path.exists(db),
        "nothing was added: not even the database file (list refuses a missing one, exit 2)", (rc, err))

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
rc, out, err = run_cli(["list", "--json", "--config", cfg])
t.check(rc == 2 and "other.db" in err and not os.path.exists(os.path.join(d, "other.db")),
        "config file db is used (a read-only command refuses the missing file it names)", err)
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
    t.check("9791090636071" not in out.replace("9791090636071) skipped", "") and "1 skipped" in out,
            "a 979 book without an ASIN is skipped by an {isbn10} source, not an error", out)
    t.check(out.startswith("At 20") and out.splitlines()[0].endswith(" on amazon.com:"),
            "the first line says when and on which sources", out)

    # no arguments: all tracked books; --json
    store.config(default={"rank": 777})
    rc, out, err = run_cli(["refresh", "--db", rdb, "--json"] + src)
    doc = json.loads(out) if out.strip().startswith("{") else {}
    t.check(rc == 0, "refresh of all (with the 979 book the source cannot address) exits 0: a skip is no failure", out + err)
    t.eq(doc.get("job", {}).get("total"), 3, "refresh without arguments covers every tracked book it can address")
    t.eq(doc.get("job", {}).get("skipped"), 1, "the 979 book is counted as skipped")
    t.eq(sorted(r["id"] for r in doc.get("results", [])),
         ["9780131103627", "9780132269933", "9780804429573"], "--json results")

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
    t.eq(rows[0], ["isbn13", "source", "fetched_at", "status", "rank", "rank_category", "http_status", "error", "id"],
         "CSV header")
    t.check(len(rows) == 3 and rows[1][4] == "777" and rows[1][3] == "ok", "CSV rows", rows)
    rc, out, _ = run_cli(["history", "--db", rdb, "9780132269933", "--limit", "1", "--json"])
    t.eq(len(json.loads(out)["observations"]), 1, "history --limit")

    rc, out, err = run_cli(["refresh", "--db", rdb, "--json"] + src + ["9780132269933"])
    doc = json.loads(out) if out.strip().startswith("{") else {}
    res = doc.get("results", [{}])[0]
    t.check(res.get("rank") == 777 and res.get("previous_rank") == 777 and res.get("title") == "Fixture Book 0132269937",
            "refresh --json carries previous_rank (the rank before this one)", doc)

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

# a database written by release 0.1.0 (schema 2, ISBN keys; tests/fixtures/db/README.md):
# commands that only read refuse it untouched and say to migrate; `migrate` copies it first,
# then moves it to id keys keeping every observation
import hashlib
import shutil
old_db = os.path.join(d, "old.db")
shutil.copyfile(fixture_path("db/bookrank-0.1.0.db"), old_db)
def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
before = digest(old_db)
for cmd in (["history", "--db", old_db, "9780132269933"], ["list", "--db", old_db]):
    rc, out, err = run_cli(cmd)
    t.check(rc == 2 and "bookrank migrate" in err, "%s on an old schema says to migrate, exit 2" % cmd[0], (rc, err))
t.eq(digest(old_db), before, "reading commands left the old database byte for byte as it was")
rc, out, err = run_cli(["migrate", "--db", old_db])
t.check(rc == 0 and "migrated to schema 4" in out and old_db + ".bak-2" in out,
        "migrate says what it did and where the copy is", out + err)
bcon = sqlite3.connect(old_db + ".bak-2")
t.eq(bcon.execute("PRAGMA user_version").fetchone()[0], 2, "the copy keeps the old schema")
t.eq(bcon.execute("SELECT count(*) FROM observations WHERE isbn13 IS NOT NULL").fetchone()[0], 6,
     "the copy holds every observation as it was")
bcon.close()
rc, out, err = run_cli(["migrate", "--db", old_db])
t.check(rc == 0 and "nothing to do" in out, "migrate twice: nothing to do", out + err)
rc, out, err = run_cli(["history", "--db", old_db, "0132269937", "--json"])
obs = json.loads(out)["observations"] if rc == 0 else []
t.eq([(o["rank"], o["previous_rank"]) for o in obs], [(120001, 123456), (123456, None)],
     "history after migrating keeps the observations and their order")
rc, out, err = run_cli(["list", "--db", old_db, "--json"])
books = {b["id"]: b for b in json.loads(out)} if rc == 0 else {}
t.eq(sorted(books), ["9780131103627", "9780132269933", "9780306406157", "9780804429573", "9791090636071"],
     "every book survives the migration, keyed by id")
t.eq(books.get("9780131103627", {}).get("title"), "C Programming Language, 2nd Edition", "titles survive")
t.eq(sorted((b["latest"][0]["status"] if b["latest"] else None) for b in books.values()),
     ["blocked", "error", "not_found", "ok", "ok"], "every latest observation survives")
con = sqlite3.connect(old_db)
t.eq(con.execute("PRAGMA user_version").fetchone()[0], 4, "user_version is 4 after migration")
t.eq(con.execute("SELECT count(*) FROM observations").fetchone()[0], 6, "all 6 observations are there")
plan = " ".join(r[-1] for r in con.execute(
    "EXPLAIN QUERY PLAN SELECT * FROM observations WHERE book_id = '9780132269933' AND fetched_at >= 0"
    " ORDER BY fetched_at DESC, id DESC LIMIT 500"))
t.check("observations_by_book_time" in plan and "TEMP B-TREE" not in plan,
        "history of all sources reads the index in order, no sort", plan)
con.close()
rc, out, err = run_cli(["migrate", "--db", os.path.join(d, "none.db")])
t.check(rc == 2 and not os.path.exists(os.path.join(d, "none.db")), "migrate of a missing file exits 2, creates nothing", err)

# backup: a copy that opens; never over an existing file
bak = os.path.join(d, "copy.db")
rc, out, err = run_cli(["backup", "--db", old_db, bak])
t.check(rc == 0 and os.path.exists(bak), "backup writes the copy", out + err)
rc, out, _ = run_cli(["list", "--db", bak, "--json"])
t.eq(len(json.loads(out)) if rc == 0 else -1, 5, "the copy holds every book")
rc, out, err = run_cli(["backup", "--db", old_db, bak])
t.check(rc == 2 and "exists" in err, "backup over an existing file is refused", err)

# ids in every form, `add -`, edit, list --csv
iddb = os.path.join(d, "ids.db")
rc, out, err = run_cli(["add", "--db", iddb, "-"],
                       input=b"https://www.amazon.de/-/en/dp/b01lw7x0jj/ref=sr_1_1?keywords=x,y\n"
                             b"ISBN-13: 978\xe2\x80\x910\xe2\x80\x9113\xe2\x80\x91226993\xe2\x80\x913; B004VHAZH6\n")
t.check(rc == 0 and out.splitlines() == ["added B01LW7X0JJ", "added 9780132269933", "added B004VHAZH6"],
        "add - reads a pasted list: a product URL, an ISBN with Unicode dashes and a prefix, an ASIN", out + err)
rc, out, err = run_cli(["add", "--db", iddb, "B01LW7X0JJ", "a.co/d/abc123"])
t.check(rc == 2 and "a.co" in err and "product page" in err, "a short share link is refused with a clear message", err)
rc, out, err = run_cli(["add", "--db", iddb, "hello"])
t.check(rc == 2 and "'hello'" in err, "a word that is no id is named", err)
rc, out, err = run_cli(["edit", "--db", iddb, "9780132269933", "--asin", "b00abcdefg", "--work", "Core Python",
                        "--format", "paperback", "--tag", "python", "--tag", "classic", "--note", "first edition"])
t.check(rc == 0 and "edited 9780132269933" in out, "edit sets the fields", out + err)
rc, out, err = run_cli(["edit", "--db", iddb, "b00abcdefg", "--tag", ""])
t.check(rc == 0 and "edited 9780132269933" in out, "edit finds a book by its attached ASIN", out + err)
rc, out, err = run_cli(["edit", "--db", iddb, "B01LW7X0JJ", "--asin", "B00ABCDEFG"])
t.check(rc == 2, "an ASIN attached to another book is refused", (rc, out, err))
rc, out, err = run_cli(["edit", "--db", iddb, "B01LW7X0JJ", "--format", "scroll"])
t.check(rc == 2 and "scroll" in err, "an unknown format is refused", err)
rc, out, err = run_cli(["edit", "--db", iddb, "B01LW7X0JJ", "--tag", "x" * 65])
t.check(rc == 2 and "tag" in err, "a tag over 64 bytes is refused", err)
rc, out, err = run_cli(["edit", "--db", iddb, "B01LW7X0JJ"])
t.check(rc == 2 and "nothing to change" in err, "edit without a field exits 2", err)
rc, out, _ = run_cli(["list", "--db", iddb, "--json"])
b = {x["id"]: x for x in json.loads(out)}.get("9780132269933", {})
t.eq((b.get("asin"), b.get("work"), b.get("format"), b.get("tags"), b.get("note")),
     ("B00ABCDEFG", "Core Python", "paperback", [], "first edition"), "the book object carries the fields")
rc, out, _ = run_cli(["list", "--db", iddb, "--csv"])
rows = list(csv.reader(io.StringIO(out)))
t.eq(rows[0][:7], ["id", "isbn13", "asin", "title", "format", "work", "tags"], "list --csv header")
t.eq(sorted(r[0] for r in rows[1:]), ["9780132269933", "B004VHAZH6", "B01LW7X0JJ"], "list --csv: one row per book")
rc, out, err = run_cli(["history", "--db", iddb, "https://www.amazon.com/dp/B01LW7X0JJ", "--json"])
t.check(rc == 0 and json.loads(out)["id"] == "B01LW7X0JJ" and json.loads(out)["isbn13"] is None,
        "history takes a product URL; an ASIN book has isbn13 null", out + err)
rc, out, err = run_cli(["remove", "--db", iddb, "b00abcdefg"])
t.check(rc == 0 and "removed 9780132269933" in out, "remove by the attached ASIN removes the book", out + err)
t.done()
