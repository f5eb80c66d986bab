"""What an operator meets: option ranges in every layer, config-file mistakes named, a token kept
out of the command line, a log file reopened on SIGHUP (which never stops the service), and the
warning for a service exposed without a token."""
import json
import os
import signal
import time

from fixture_lib import FixtureStore, isbn10s
from service_lib import T, Service, run_cli, tmpdir

t = T()
d = tmpdir()
db = os.path.join(d, "op.db")

# ---- numeric options: SPEC §2 ranges, whatever layer gives them ------------------------------
for args, env, what in [
    (["--rate", "1e-13"], {}, "--rate 1e-13 (once an overflow that meant unlimited)"),
    (["--rate", "1001"], {}, "--rate above 1000"),
    (["--rate", "-1"], {}, "--rate negative"),
    (["--timeout", "0.5"], {}, "--timeout under 1 s"),
    (["--timeout", "601"], {}, "--timeout over 600 s"),
    (["--retries", "11"], {}, "--retries over 10"),
    (["--workers", "1025"], {}, "--workers over 1024"),
    (["--per-host", "0"], {}, "--per-host 0"),
    (["--cooldown", "86401"], {}, "--cooldown over a day"),
    ([], {"BOOKRANK_RATE": "5000"}, "BOOKRANK_RATE out of range"),
    ([], {"BOOKRANK_WORKERS": "0"}, "BOOKRANK_WORKERS out of range"),
]:
    rc, out, err = run_cli(["refresh", "--db", db] + args, env=env)
    name = (args[0] if args else list(env)[0]).lstrip("-").replace("BOOKRANK_", "").lower().replace("_", "-")
    t.check(rc == 2 and name in err, "%s: exit 2 naming the option" % what, (rc, err))
t.check(not os.path.exists(db), "a refused command created no database")
cfg = os.path.join(d, "rate.json")
with open(cfg, "w") as f:
    json.dump({"rate": 1e-13}, f)
rc, _, err = run_cli(["refresh", "--db", db, "--config", cfg])
t.check(rc == 2 and "--rate" in err, "a config-file value out of range: exit 2", err)
rc, _, err = run_cli(["refresh", "--db", db, "--rate", "0.001", "--timeout", "1", "--retries", "10", "--help"])
t.check(rc == 0, "values at the ends of the ranges are accepted", err)

# ---- the config file ---------------------------------------------------------------------------
bom = os.path.join(d, "bom.json")
with open(bom, "wb") as f:
    f.write(b"\xef\xbb\xbf" + json.dumps({"db": db}).encode())
run_cli(["add", "--db", db, "0132269937"])
rc, out, err = run_cli(["list", "--json", "--config", bom])
t.check(rc == 0 and json.loads(out)[0]["isbn13"] == "9780132269933", "a config file with a UTF-8 BOM is read", err)
for doc, needle, what in [
    ({"sources": "x"}, '"sources"', "\"sources\" that is not a list"),
    ({"sources": [{"name": "s", "url": "https://x/{isbn13}", "blok_start": "x"}]}, '"blok_start"',
     "a misspelt rule key in a custom source"),
    ({"sources": [{"url": "https://x/{isbn13}"}]}, '"name"', "a custom source without a name"),
    ({"sources": [{"name": "s", "rank": 5}]}, '"rank"', "a rule that is not a string"),
    ({"wokers": 4}, '"wokers"', "an unknown option key"),
]:
    path = os.path.join(d, "bad.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    rc, _, err = run_cli(["list", "--db", db, "--config", path])
    t.check(rc == 2 and needle in err, "config: %s is named (exit 2)" % what, (rc, err))
rc, _, err = run_cli(["list", "--db", db, "--config", os.path.join(d, "missing.json")])
t.check(rc == 2 and "missing.json" in err, "a missing config file: exit 2 naming it", err)
# Every command reads the file the same way: a BOM is skipped, a wrong type or an unknown key is
# named, also for the commands that use the key (serve, refresh) and after a BOM.
bomdb = os.path.join(d, "bom-add.db")
with open(bom, "wb") as f:
    f.write(b"\xef\xbb\xbf" + json.dumps({"db": bomdb, "rate": 0.5}).encode())
rc, out, err = run_cli(["add", "--config", bom, "0131103628"])
t.check(rc == 0 and os.path.exists(bomdb), "a config file with a UTF-8 BOM is read by a writing command", (rc, err))
for cmd in (["serve", "--listen", "127.0.0.1:0"], ["refresh"], ["add", "0131103628"]):
    for doc, needle, what, bom_first in [
        ({"sources": "x"}, '"sources"', "\"sources\": \"x\"", False),
        ({"sources": {"name": "x"}}, '"sources"', "\"sources\" as one object", False),
        ({"source": 5}, '"source"', "\"source\": 5", False),
        ({"workers": [4]}, '"workers"', "\"workers\": [4]", False),
        ({"public-url": 5}, '"public-url"', "\"public-url\": 5", False),
        ({"private": "yes"}, '"private"', "\"private\": \"yes\"", False),
        ({"refresh-evry": "6h"}, '"refresh-evry"', "an unknown key", False),
        ({"wokers": 4}, '"wokers"', "an unknown key after a BOM", True),
    ]:
        path = os.path.join(d, "bad-%s.json" % cmd[0])
        with open(path, "wb") as f:
            f.write((b"\xef\xbb\xbf" if bom_first else b"") + json.dumps(doc).encode())
        rc, _, err = run_cli(cmd + ["--db", os.path.join(d, "cfg-check.db"), "--config", path], timeout=20)
        t.check(rc == 2 and needle in err and path in err and "listening" not in err,
                "config: %s: `%s` exits 2 naming the key and the file" % (what, cmd[0]), (rc, err))
path = os.path.join(d, "other-command.json")
with open(path, "w") as f:
    json.dump({"listen": "127.0.0.1:9", "refresh-every": "6h", "workers": 3}, f)
rc, _, err = run_cli(["list", "--db", db, "--config", path])
t.check(rc == 0, "config: keys of other commands (listen, refresh-every) are not refused by `list`", (rc, err))
for value in (",,,", " , "):
    rc, _, err = run_cli(["refresh", "--db", db], env={"BOOKRANK_SOURCE": value})
    t.check(rc == 2 and "BOOKRANK_SOURCE" in err, "BOOKRANK_SOURCE=%r names no source: refused" % value, err)

# ---- serve: token file, log file and SIGHUP, exposure warning ------------------------------------
with FixtureStore() as store:
    store.config(default={"delay_ms": 100})
    src = ["--source", "amazon.com=" + store.url("/dp/{isbn10}"), "--rate", "0", "--per-host", "4",
           "--retries", "0"]
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("s3cret-token\n")
    os.chmod(tok, 0o600)
    log = os.path.join(d, "serve.log")
    books = isbn10s(24, start=500000000)
    run_cli(["add", "--db", db] + books)
    with Service(db, src + ["--token-file", tok, "--log-file", log]) as svc:
        st, _, _ = svc.json("POST", "/api/books", {"isbns": ["0131103628"]})
        t.eq(st, 401, "--token-file: a change without the token is refused")
        st, _, _ = svc.json("POST", "/api/books", {"isbns": ["0131103628"]},
                            headers={"Authorization": "Bearer s3cret-token"})
        t.eq(st, 201, "--token-file: the token read from the file (newline stripped) is accepted")
        with open("/proc/%d/cmdline" % svc.proc.pid, "rb") as f:
            t.check(b"s3cret" not in f.read(), "the token is not on the command line")
        st, _, doc = svc.json("POST", "/api/refresh", headers={"Authorization": "Bearer s3cret-token"})
        job = doc["job"]["id"]
        time.sleep(0.3)
        os.rename(log, log + ".1")          # what logrotate does
        svc.signal(signal.SIGHUP)
        time.sleep(0.3)
        t.eq(svc.proc.poll(), None, "SIGHUP during a refresh does not stop serve")
        done = svc.wait_job(job)
        t.check(done and done["state"] == "done" and done["done"] == done["total"],
                "the refresh goes on to the end after SIGHUP", done)
        st, _, _ = svc.json("GET", "/healthz")
        t.eq(st, 200, "serve still answers after SIGHUP")
    with open(log + ".1") as f:
        old = f.read()
    with open(log) as f:
        new = f.read()
    t.check("POST /api/books 401" in old, "the log went to --log-file", old[-500:])
    t.check("SIGHUP" in new and "stopped" in new, "after SIGHUP the log continues in a new file", new[-500:])

    rc, _, err = run_cli(["serve", "--db", db, "--token", "a", "--token-file", tok])
    t.check(rc == 2 and "--token-file" in err, "--token and --token-file together: exit 2", err)
    empty = os.path.join(d, "empty-token")
    open(empty, "w").close()
    rc, _, err = run_cli(["serve", "--db", db, "--token-file", empty])
    t.check(rc == 2 and "empty" in err, "an empty token file: exit 2", err)
    rc, _, err = run_cli(["serve", "--db", db, "--token-file", os.path.join(d, "nope")])
    t.check(rc == 2 and "nope" in err, "a missing token file: exit 2", err)

    with Service(db, src, listen="0.0.0.0:0") as svc:
        time.sleep(0.2)
        t.check("without a token" in svc.log_text(), "serve on a non-loopback address without a token warns",
                svc.log_text()[-400:])
    with Service(db, src) as svc:
        time.sleep(0.2)
        t.check("without a token" not in svc.log_text(), "no warning on loopback")
t.done()
