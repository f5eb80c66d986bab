"""Alert rules through the real binary (SPEC §2, §3, §5): the /api/alerts routes (create, list,
every 400, the token for reads, delete 204/404, a config file rule's 409), the `bookrank alert`
command (add, list, remove, test and their exit codes), the config file's "alerts" list (checked,
synced at start), --refresh-every's lower bound, and one rule firing end to end: a cron
`bookrank refresh` delivers what it fired to a webhook before it exits, signed."""
import json
import os
import time

from fixture_lib import FixtureStore
from receivers import SmtpSink, WebhookReceiver
from service_lib import T, Service, run_cli, tmpdir

t = T()
d = tmpdir()
TOKEN = "s3cret-token"


def write_config(name, doc):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def error_code(doc):
    return (doc or {}).get("error", {}).get("code")


with FixtureStore() as store, WebhookReceiver() as hook:
    store.config(books={"0132269937": {"title": "Core Python Programming", "rank": 123456}})
    src = ["--source", "amazon.com=" + store.url("/dp/{isbn10}"), "--rate", "0", "--retries", "0"]
    db = os.path.join(d, "api.db")
    run_cli(["add", "--db", db, "0132269937"])

    # ---- the API, without a token ---------------------------------------------------------------
    with Service(db, src) as svc:
        st, h, doc = svc.json("GET", "/api/alerts")
        t.check(st == 200 and doc == [], "GET /api/alerts: no rules yet", doc)
        rule = {"kind": "rank_better_than", "value": 1000, "book": "0-13-226993-7",
                "source": "amazon.com", "notify": ["webhook:" + hook.url("/a")]}
        st, h, doc = svc.json("POST", "/api/alerts", rule)
        a = (doc or {}).get("alert", {})
        t.check(st == 201 and a.get("kind") == "rank_better_than" and a.get("value") == 1000,
                "POST /api/alerts: 201 with the rule", doc)
        t.eq(a.get("book"), "9780132269933", "the book (an ISBN-10 with hyphens) is stored as its id")
        t.eq(a.get("notify"), ["webhook:" + hook.url("/a")], "the targets as given")
        t.eq(a.get("from_config"), False, "an API rule is not from the config file")
        t.eq(h.get("location"), "/api/alerts/%s" % a.get("n"), "Location names the rule")
        first_n = a.get("n")
        st, h, doc = svc.json("POST", "/api/alerts", {"kind": "new_best",
                                                      "notify": ["mailto:author@example.org",
                                                                 "ntfy:https://ntfy.sh/books"]})
        b = (doc or {}).get("alert", {})
        t.check(st == 201 and b.get("value") is None and b.get("book") is None
                and b.get("source") is None, "new_best without a value, every book and source", doc)
        st, h, doc = svc.json("POST", "/api/alerts",
                              {"kind": "change_pct", "value": 12.5, "book": None, "source": None,
                               "notify": ["slack:https://hooks.slack.com/services/x"]})
        t.check(st == 201 and doc["alert"]["value"] == 12.5, "change_pct takes a fraction", doc)
        st, h, doc = svc.json("POST", "/api/alerts",
                              {"kind": "trouble", "value": 3,
                               "book": "https://www.amazon.de/-/en/dp/0132269937/ref=x?th=1",
                               "notify": ["discord:https://discord.com/api/webhooks/1/x"]})
        t.check(st == 201 and doc["alert"]["book"] == "9780132269933",
                "a product URL names the book", doc)
        st, h, doc = svc.json("GET", "/api/alerts")
        t.check(st == 200 and [r["n"] for r in doc] == sorted(r["n"] for r in doc) and len(doc) == 4,
                "GET lists every rule by number", doc)
        t.check(all(set(r) >= {"n", "kind", "value", "book", "source", "notify"} for r in doc),
                "each rule has n, kind, value, book, source, notify", doc)

        bad = [
            ({"kind": "rank_best", "value": 5, "notify": ["webhook:https://x.example"]},
             "invalid_body", "kind", "an unknown kind"),
            ({"value": 5, "notify": ["webhook:https://x.example"]}, "invalid_body", "kind",
             "no kind"),
            ({"kind": "rank_worse_than", "notify": ["webhook:https://x.example"]}, "invalid_body",
             "value", "a kind that needs a value without one"),
            ({"kind": "new_best", "value": 3, "notify": ["webhook:https://x.example"]},
             "invalid_body", "value", "new_best with a value"),
            ({"kind": "trouble", "value": 0, "notify": ["webhook:https://x.example"]},
             "invalid_body", "value", "a value of 0"),
            ({"kind": "rank_better_than", "value": 10.5, "notify": ["webhook:https://x.example"]},
             "invalid_body", "value", "a rank that is not whole"),
            ({"kind": "rank_better_than", "value": "100", "notify": ["webhook:https://x.example"]},
             "invalid_body", "value", "a value that is a string"),
            ({"kind": "new_best", "notify": []}, "invalid_body", "notify", "no targets"),
            ({"kind": "new_best"}, "invalid_body", "notify", "no notify key"),
            ({"kind": "new_best", "notify": ["webhook:ftp://x.example"]}, "invalid_body", "notify",
             "a webhook that is not http(s)"),
            ({"kind": "new_best", "notify": ["pager:12345"]}, "invalid_body", "notify",
             "an unknown target kind"),
            ({"kind": "new_best", "notify": ["mailto:not-an-address"]}, "invalid_body", "notify",
             "a bad mail address"),
            ({"kind": "new_best", "notify": [42]}, "invalid_body", "notify", "a target that is not text"),
            ({"kind": "new_best", "notify": ["webhook:https://x.example"] * 17}, "invalid_body",
             "notify", "too many targets"),
            ({"kind": "new_best", "source": "amazon com", "notify": ["webhook:https://x.example"]},
             "invalid_body", "source", "a bad source name"),
            ({"kind": "new_best", "nofity": ["webhook:https://x.example"]}, "invalid_body", "nofity",
             "an unknown key"),
            ({"kind": "new_best", "book": "9780132269934", "notify": ["webhook:https://x.example"]},
             "invalid_isbn", "book", "a book id with a bad check digit"),
            ({"kind": "new_best", "book": 9780132269933, "notify": ["webhook:https://x.example"]},
             "invalid_body", "book", "a book that is a number"),
        ]
        for body, code, word, what in bad:
            st, h, doc = svc.json("POST", "/api/alerts", body)
            msg = (doc or {}).get("error", {}).get("message", "")
            t.check(st == 400 and error_code(doc) == code and word in msg,
                    "POST /api/alerts 400 %s (%s, message names %s)" % (what, code, word), doc)
        st, h, doc = svc.json("POST", "/api/alerts", {"kind": "new_best", "book": "97801322699",
                                                      "notify": ["webhook:https://x.example"]})
        det = (doc or {}).get("error", {}).get("details") or [{}]
        t.check(st == 400 and det[0].get("input") == "97801322699" and det[0].get("reason"),
                "a bad book is named in the details", doc)
        st, h, doc = svc.json("POST", "/api/alerts", {"kind": "new_best", "book": "0131103628",
                                                      "notify": ["webhook:https://x.example"]})
        t.check(st == 404 and error_code(doc) == "book_not_found",
                "a book that is not tracked: 404 book_not_found", doc)
        st, h, doc = svc.json("POST", "/api/alerts", '{"kind": "new_best", ',
                              headers={"Content-Type": "application/json"})
        t.check(st == 400 and error_code(doc) == "invalid_json", "broken JSON: 400 invalid_json", doc)
        st, h, doc = svc.json("POST", "/api/alerts", '{"kind": "new_best", "kind": "trouble"}',
                              headers={"Content-Type": "application/json"})
        t.check(st == 400 and error_code(doc) == "invalid_json", "a duplicate key: 400", doc)
        st, h, doc = svc.json("POST", "/api/alerts", "[]", headers={"Content-Type": "application/json"})
        t.check(st == 400 and error_code(doc) == "invalid_body", "not an object: 400", doc)
        st, h, doc = svc.json("POST", "/api/alerts", "kind=new_best",
                              headers={"Content-Type": "text/plain"})
        t.check(st == 415 and error_code(doc) == "unsupported_media_type", "text/plain: 415", doc)
        st, h, doc = svc.json("GET", "/api/alerts")
        t.eq(len(doc), 4, "no refused rule was stored")

        st, h, body = svc.request("DELETE", "/api/alerts/%d" % first_n)
        t.check(st == 204 and body == b"", "DELETE /api/alerts/{n}: 204, no body", body)
        st, h, doc = svc.json("DELETE", "/api/alerts/%d" % first_n)
        t.check(st == 404 and error_code(doc) == "alert_not_found", "DELETE it again: 404", doc)
        st, h, doc = svc.json("DELETE", "/api/alerts/999999")
        t.check(st == 404 and error_code(doc) == "alert_not_found", "DELETE an unknown number: 404", doc)
        st, h, doc = svc.json("DELETE", "/api/alerts/x1")
        t.check(st == 400 and error_code(doc) == "invalid_query", "DELETE a non-number: 400", doc)
        st, h, doc = svc.json("GET", "/api/alerts")
        t.check(len(doc) == 3 and first_n not in [r["n"] for r in doc], "the rule is gone", doc)
        st, h, doc = svc.json("GET", "/api/alerts/3")
        t.check(st == 405 and h.get("allow") == "DELETE", "GET of one rule: 405, Allow: DELETE", h)

        st, h, doc = svc.json("GET", "/api/alerts/events")
        t.check(st == 200 and doc == [], "GET /api/alerts/events: none yet", doc)
        for q, want in (("?limit=1", 200), ("?limit=1000", 200), ("?limit=0", 400),
                        ("?limit=1001", 400), ("?limit=x", 400)):
            st, h, doc = svc.json("GET", "/api/alerts/events" + q)
            t.check(st == want and (want == 200 or error_code(doc) == "invalid_query"),
                    "GET /api/alerts/events%s: %d" % (q, want), doc)

    # ---- the token: reads of /api/alerts* need it too -------------------------------------------
    with Service(db, src + ["--token", TOKEN]) as svc:
        auth = {"Authorization": "Bearer " + TOKEN}
        for method, path, body in (("GET", "/api/alerts", None), ("HEAD", "/api/alerts", None),
                                   ("GET", "/api/alerts/events", None),
                                   ("POST", "/api/alerts", {"kind": "new_best",
                                                            "notify": ["webhook:https://x.example"]}),
                                   ("DELETE", "/api/alerts/1", None)):
            st, h, _ = svc.request(method, path, body)
            t.check(st == 401 and "bearer" in h.get("www-authenticate", "").lower(),
                    "with a token set, %s %s without it: 401" % (method, path), st)
            st, h, _ = svc.request(method, path, body, headers={"Authorization": "Bearer wrong"})
            t.eq(st, 401, "with a token set, %s %s with a wrong one: 401" % (method, path))
        st, h, doc = svc.json("GET", "/api/alerts", headers=auth)
        t.check(st == 200 and len(doc) == 3, "GET /api/alerts with the token", doc)
        st, h, doc = svc.json("GET", "/api/alerts/events", headers=auth)
        t.check(st == 200 and isinstance(doc, list), "GET /api/alerts/events with the token", doc)
        st, h, doc = svc.json("GET", "/api/books")
        t.check(st == 200 and len(doc) == 1, "other reads still need no token", doc)

    # ---- the CLI ----------------------------------------------------------------------------------
    cdb = os.path.join(d, "cli.db")
    rc, out, err = run_cli(["alert", "list", "--db", cdb])
    t.check(rc == 2 and "no database" in err, "alert list on a missing database: exit 2", err)
    t.check(not os.path.exists(cdb), "alert list creates no database")
    run_cli(["add", "--db", cdb, "0132269937"])
    rc, out, err = run_cli(["alert", "list", "--db", cdb])
    t.check(rc == 0 and "no alert rules" in out, "alert list: none yet", out + err)
    rc, out, err = run_cli(["alert", "add", "--db", cdb, "--kind", "rank_better_than", "--value",
                            "5000", "--book", "978-0-13-226993-3", "--source", "amazon.de",
                            "--notify", "webhook:https://example.org/hook",
                            "--notify", "mailto:author@example.org"])
    t.check(rc == 0 and out.startswith("added alert 1:"), "alert add: exit 0, says its number",
            out + err)
    rc, out, err = run_cli(["alert", "add", "--db", cdb, "--kind", "new_best", "--json",
                            "--notify", "ntfy:https://ntfy.sh/mybooks"])
    doc = json.loads(out) if rc == 0 else {}
    t.check(rc == 0 and doc.get("alert", {}).get("n") == 2 and doc["alert"]["value"] is None,
            "alert add --json prints the rule", out + err)
    rc, out, err = run_cli(["alert", "list", "--db", cdb])
    lines = out.splitlines()
    t.check(rc == 0 and len(lines) == 3 and lines[0].split()[:6] ==
            ["N", "KIND", "VALUE", "BOOK", "SOURCE", "NOTIFY"], "alert list: a table", out)
    t.check(len(lines) == 3 and lines[1].split()[:5] == ["1", "rank_better_than", "5000",
                                                          "9780132269933", "amazon.de"]
            and "webhook:https://example.org/hook, mailto:author@example.org" in lines[1],
            "alert list: n, kind, value, book, source, targets", out)
    rc, out, err = run_cli(["alert", "list", "--db", cdb, "--json"])
    rules = json.loads(out) if rc == 0 else []
    t.check(rc == 0 and [r["n"] for r in rules] == [1, 2] and rules[0]["source"] == "amazon.de"
            and rules[0]["notify"] == ["webhook:https://example.org/hook", "mailto:author@example.org"],
            "alert list --json: the API's array", out + err)
    for args, want, word, what in (
            (["--kind", "rank_best", "--value", "3", "--notify", "webhook:https://x.example"], 2,
             "--kind", "an unknown kind"),
            (["--value", "3", "--notify", "webhook:https://x.example"], 2, "--kind", "no kind"),
            (["--kind", "trouble", "--notify", "webhook:https://x.example"], 2, "--value",
             "no value for trouble"),
            (["--kind", "trouble", "--value", "three", "--notify", "webhook:https://x.example"], 2,
             "--value", "a value that is not a number"),
            (["--kind", "new_best", "--value", "3", "--notify", "webhook:https://x.example"], 2,
             "--value", "a value for new_best"),
            (["--kind", "new_best"], 2, "--notify", "no target"),
            (["--kind", "new_best", "--notify", "telegram:123"], 2, "telegram:123",
             "an unknown target"),
            (["--kind", "new_best", "--notify", "mailto:nobody"], 2, "mailto", "a bad address"),
            (["--kind", "new_best", "--book", "12345", "--notify", "webhook:https://x.example"], 2,
             "--book", "a bad book id"),
            (["--kind", "new_best", "--source", "amazon.de=https://x/{asin}",
              "--notify", "webhook:https://x.example"], 2, "--source", "a source with a URL"),
            (["--kind", "new_best", "--book", "0131103628", "--notify", "webhook:https://x.example"], 1,
             "not tracked", "a book that is not tracked")):
        rc, out, err = run_cli(["alert", "add", "--db", cdb] + args)
        t.check(rc == want and word in err, "alert add with %s: exit %d naming %s" % (what, want, word),
                "rc=%d\n%s" % (rc, err))
    rc, out, err = run_cli(["alert", "list", "--db", cdb, "--json"])
    t.eq(len(json.loads(out)), 2, "refused rules were not stored")
    rc, out, err = run_cli(["alert", "list", "--db", cdb, "--kind", "new_best"])
    t.check(rc == 2 and "--kind" in err, "alert list --kind: exit 2 (an option of add)", err)
    rc, out, err = run_cli(["alert", "frobnicate", "--db", cdb])
    t.check(rc == 2 and "add, list, remove" in err, "an unknown verb: exit 2", err)
    rc, out, err = run_cli(["alert", "--db", cdb])
    t.check(rc == 2, "no verb: exit 2", err)
    rc, out, err = run_cli(["alert", "remove", "--db", cdb, "1"])
    t.check(rc == 0 and "removed alert 1" in out, "alert remove N: exit 0", out + err)
    rc, out, err = run_cli(["alert", "remove", "--db", cdb, "1"])
    t.check(rc == 1 and "no alert rule 1" in err, "alert remove of a removed rule: exit 1", err)
    rc, out, err = run_cli(["alert", "remove", "--db", cdb, "two"])
    t.check(rc == 2, "alert remove of a non-number: exit 2", err)
    rc, out, err = run_cli(["alert", "remove", "--db", cdb])
    t.check(rc == 2, "alert remove without a number: exit 2", err)
    rc, out, err = run_cli(["alert", "remove", "--db", os.path.join(d, "none.db"), "1"])
    t.check(rc == 2 and not os.path.exists(os.path.join(d, "none.db")),
            "alert remove on a missing database: exit 2, no file made", err)
    rc, out, err = run_cli(["alert", "list", "--db", cdb, "--json"])
    t.eq([r["n"] for r in json.loads(out)], [2], "alert list after the remove")

    # ---- alert test: a sample straight to the target ---------------------------------------------
    hook.clear()
    rc, out, err = run_cli(["alert", "test", "webhook:" + hook.url("/sample"),
                            "--notify-secret", "hush"])
    reqs = hook.wait_for(1, timeout=10)
    t.check(rc == 0 and "sent" in out, "alert test webhook: exit 0", out + err)
    body = WebhookReceiver.json(reqs[0]) if reqs else None
    t.check(len(reqs) == 1 and reqs[0].method == "POST" and reqs[0].path == "/sample",
            "the sample was POSTed to the webhook", reqs)
    t.check(body is not None and {"id", "kind", "alert", "book", "source", "observation",
                                  "previous_rank", "message", "fired_at"} <= set(body),
            "the sample has the event JSON's keys", body)
    t.check(body is not None and "#812" in body["message"] and "amazon.com" in body["message"]
            and "test" in body["message"].lower(), "the sample's message says it is a test", body)
    t.check(reqs and WebhookReceiver.verify_signature(reqs[0], "hush"),
            "the sample is signed with --notify-secret", reqs[0].headers if reqs else None)
    secret_file = os.path.join(d, "secret.txt")
    with open(secret_file, "w") as f:
        f.write("from-a-file\n")
    hook.clear()
    rc, out, err = run_cli(["alert", "test", "webhook:" + hook.url("/sample2"),
                            "--notify-secret-file", secret_file])
    reqs = hook.wait_for(1, timeout=10)
    t.check(rc == 0 and reqs and WebhookReceiver.verify_signature(reqs[0], "from-a-file"),
            "--notify-secret-file signs with the file's secret", out + err)
    rc, out, err = run_cli(["alert", "test", "webhook:" + hook.url("/x"), "--notify-secret", "a",
                            "--notify-secret-file", secret_file])
    t.eq(rc, 2, "--notify-secret and --notify-secret-file together: exit 2")
    hook.fail_next(1, status=500)
    rc, out, err = run_cli(["alert", "test", "webhook:" + hook.url("/failing")])
    t.check(rc == 1 and "500" in err, "a target answering 500: exit 1 with the reason", err)
    rc, out, err = run_cli(["alert", "test", "webhook:http://127.0.0.1:1/nothing-here"])
    t.check(rc == 1 and err.strip(), "a target that cannot be reached: exit 1 with the reason", err)
    rc, out, err = run_cli(["alert", "test", "pager:123"])
    t.check(rc == 2 and "unknown target" in err, "alert test of an unknown target kind: exit 2", err)
    rc, out, err = run_cli(["alert", "test", "mailto:author@example.org"])
    t.check(rc == 2 and "--smtp" in err, "alert test mailto: without --smtp: exit 2", err)
    rc, out, err = run_cli(["alert", "test", "mailto:author@example.org", "--smtp",
                            "http://mail.example:25", "--smtp-from", "bookrank@example.org"])
    t.check(rc == 2 and "--smtp" in err, "an --smtp that is not smtp(s)://: exit 2", err)
    rc, out, err = run_cli(["alert", "test", "mailto:author@example.org", "--smtp",
                            "smtp://127.0.0.1:25"])
    t.check(rc == 2 and "--smtp-from" in err, "--smtp without --smtp-from: exit 2", err)
    with SmtpSink() as smtp:
        rc, out, err = run_cli(["alert", "test", "mailto:author@example.org", "--smtp", smtp.url(),
                                "--smtp-from", "bookrank@example.org"])
        msgs = smtp.wait_for(1, timeout=10)
        t.check(rc == 0 and len(msgs) == 1 and msgs[0].rcpt_to == ["author@example.org"]
                and "#812" in (msgs[0].subject or ""), "alert test mailto: a mail with the rank "
                "in its subject", (rc, err, msgs))

    # ---- the config file's "alerts" ---------------------------------------------------------------
    kdb = os.path.join(d, "config.db")
    run_cli(["add", "--db", kdb, "0132269937"])
    rules_v1 = [{"kind": "trouble", "value": 3, "notify": ["ntfy:https://ntfy.sh/books"]},
                {"kind": "new_best", "book": "0132269937", "source": "amazon.com",
                 "notify": ["webhook:https://example.org/best"]}]
    cfg = write_config("alerts.json", {"alerts": rules_v1})
    with Service(kdb, src + ["--config", cfg]) as svc:
        st, h, doc = svc.json("GET", "/api/alerts")
        t.check(st == 200 and len(doc) == 2 and all(r["from_config"] for r in doc),
                "serve --config: the file's rules are in the store, marked from_config", doc)
        t.check(len(doc) == 2 and doc[1]["book"] == "9780132269933",
                "a config rule's book is stored as its id", doc)
        config_ns = [r["n"] for r in doc]
        st, h, doc = svc.json("DELETE", "/api/alerts/%d" % config_ns[0])
        t.check(st == 409 and error_code(doc) == "conflict" and "config" in doc["error"]["message"],
                "DELETE of a config rule: 409", doc)
        st, h, doc = svc.json("POST", "/api/alerts", {"kind": "new_best",
                                                      "notify": ["webhook:https://example.org/api"]})
        api_n = (doc or {}).get("alert", {}).get("n")
        t.check(st == 201 and doc["alert"]["from_config"] is False, "an API rule beside them", doc)
    rc, out, err = run_cli(["alert", "remove", "--db", kdb, str(config_ns[0])])
    t.check(rc == 2 and "config file" in err, "alert remove of a config rule: exit 2", err)
    rc, out, err = run_cli(["alert", "list", "--db", kdb])
    t.check(rc == 0 and "(config file)" in out, "alert list marks config rules", out)

    # A changed file: the unchanged rule keeps its number, the dropped one goes, API rules stay.
    rules_v2 = [rules_v1[1], {"kind": "rank_worse_than", "value": 500000,
                              "notify": ["discord:https://discord.com/api/webhooks/1/x"]}]
    cfg2 = write_config("alerts2.json", {"alerts": rules_v2})
    rc, out, err = run_cli(["alert", "list", "--db", kdb, "--config", cfg2, "--json"])
    t.check(rc == 0 and len(json.loads(out)) == 3, "alert list does not sync the config file",
            out + err)
    rc, out, err = run_cli(["refresh", "--db", kdb, "--config", cfg2] + src + ["--quiet"])
    t.eq(rc, 0, "refresh --config works")
    rc, out, err = run_cli(["alert", "list", "--db", kdb, "--json"])
    doc = json.loads(out) if rc == 0 else []
    by_kind = {r["kind"]: r for r in doc}
    t.check(set(by_kind) == {"new_best", "rank_worse_than"} and len(doc) == 3,
            "refresh --config synced the changed file's rules", doc)
    t.check("new_best" in by_kind and config_ns[1] in [r["n"] for r in doc if r["from_config"]],
            "an unchanged config rule keeps its number", doc)
    t.check(api_n in [r["n"] for r in doc if not r["from_config"]], "the API rule stays", doc)
    rc, out, err = run_cli(["refresh", "--db", kdb] + src + ["--quiet"])
    rc, out, err = run_cli(["alert", "list", "--db", kdb, "--json"])
    t.eq(len(json.loads(out)), 3, "a refresh without a config file leaves the config rules alone")
    cfg3 = write_config("noalerts.json", {"retries": 0})
    with Service(kdb, src + ["--config", cfg3]) as svc:
        st, h, doc = svc.json("GET", "/api/alerts")
        t.check(st == 200 and [r["n"] for r in doc] == [api_n],
                "a config file without \"alerts\" removes the config rules", doc)

    for doc, words, what in (
            ({"alerts": {"kind": "new_best"}}, ['"alerts"'], "alerts that is not a list"),
            ({"alerts": [{"kind": "new_best", "notify": ["webhook:https://x.example"]}, "x"]},
             ['"alerts"[1]'], "an entry that is not an object"),
            ({"alerts": [{"kind": "new_best", "notify": ["webhook:https://x.example"]},
                         {"kind": "trouble", "value": 3, "notify": ["webhook:https://x.example",
                                                                   "pager:1"]}]},
             ['"alerts"[1]', '"notify"[1]'], "a bad target"),
            ({"alerts": [{"kind": "trouble", "notify": ["webhook:https://x.example"]}]},
             ['"alerts"[0]', '"value"'], "a missing value"),
            ({"alerts": [{"kind": "trouble", "value": "3", "notify": ["webhook:https://x.example"]}]},
             ['"alerts"[0]', '"value"'], "a value that is a string"),
            ({"alerts": [{"kind": "sometimes", "notify": ["webhook:https://x.example"]}]},
             ['"alerts"[0]', '"kind"'], "an unknown kind"),
            ({"alerts": [{"kind": "new_best", "book": "123", "notify": ["webhook:https://x.example"]}]},
             ['"alerts"[0]', '"book"'], "a bad book"),
            ({"alerts": [{"kind": "new_best", "notfy": ["webhook:https://x.example"]}]},
             ['"alerts"[0]', '"notfy"'], "an unknown key"),
            ({"kind": "new_best"}, ['"kind"', '"alerts"'], "a rule's key at the top level")):
        path = write_config("bad.json", doc)
        rc, out, err = run_cli(["list", "--db", kdb, "--config", path])
        t.check(rc == 2 and all(w in err for w in words),
                "a config file with %s: exit 2 naming %s" % (what, " ".join(words)), err)
    rc, out, err = run_cli(["serve", "--db", kdb, "--listen", "127.0.0.1:0", "--config", path],
                           timeout=30)
    t.eq(rc, 2, "serve refuses a bad config file's alerts: exit 2")

    # ---- one rule end to end: fired by a cron refresh and delivered before it exits ---------------
    edb = os.path.join(d, "e2e.db")
    run_cli(["add", "--db", edb, "0132269937"])
    hook.clear()
    rc, out, err = run_cli(["alert", "add", "--db", edb, "--kind", "rank_better_than", "--value",
                            "200000", "--notify", "webhook:" + hook.url("/fired")])
    t.eq(rc, 0, "a rule for the end-to-end check")
    started = time.monotonic()
    rc, out, err = run_cli(["refresh", "--db", edb, "--notify-secret", "e2e"] + src,
                           env={"BOOKRANK_TEST_POLL_MS": "100"})
    took = time.monotonic() - started
    reqs = hook.requests()
    t.check(rc == 0 and len(reqs) == 1, "refresh: the rule fired and was delivered before exit",
            "rc=%d took %.1f s\n%s%s\n%r" % (rc, took, out, err, reqs))
    ev = WebhookReceiver.json(reqs[0]) if reqs else {}
    t.check(ev and ev.get("kind") == "rank_better_than" and ev["observation"]["rank"] == 123456
            and "#123,456" in ev.get("message", ""), "the event names the rank", ev)
    t.check(reqs and WebhookReceiver.verify_signature(reqs[0], "e2e"), "the event is signed")
    with Service(edb, src) as svc:
        st, h, doc = svc.json("GET", "/api/alerts/events")
        t.check(st == 200 and len(doc) == 1 and doc[0]["state"] == "sent"
                and doc[0]["target"] == "webhook:" + hook.url("/fired"),
                "GET /api/alerts/events: the delivery, sent", doc)
    started = time.monotonic()
    rc, out, err = run_cli(["refresh", "--db", edb] + src)
    took = time.monotonic() - started
    t.check(rc == 0 and len(hook.requests()) == 1 and took < 10,
            "a second refresh: still true, nothing fired, no wait (%.1f s)" % took, out + err)

    # ---- --refresh-every: at least 5 minutes unless asked -----------------------------------------
    rc, out, err = run_cli(["serve", "--db", edb, "--listen", "127.0.0.1:0", "--refresh-every",
                            "1m"], timeout=30)
    t.check(rc == 2 and "--allow-short-interval" in err,
            "--refresh-every 1m: exit 2 naming --allow-short-interval", err)
    with Service(edb, src + ["--refresh-every", "5m"]) as svc:
        time.sleep(0.3)
        t.check("first scheduled refresh at" in svc.log_text(),
                "the log says when the first scheduled refresh runs", svc.log_text())
    with Service(edb, src + ["--refresh-every", "2s", "--allow-short-interval"]) as svc:
        st, h, doc = svc.json("GET", "/api/jobs")
        t.check(st == 200 and doc.get("next_scheduled_at"), "--allow-short-interval lets 2s run", doc)

t.done()
