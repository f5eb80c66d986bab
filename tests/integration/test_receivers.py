"""Self-test of tests/lib/receivers.py: the webhook receiver and the SMTP sink, driven by real clients
(http.client, urllib, smtplib and the curl command line, i.e. libcurl, which the product uses), so the
alert tests can trust what they record. Prints "ok - ..." / "not ok - ..." lines.

    PYTHONPATH=tests/lib python3 tests/integration/test_receivers.py
"""
import base64
import email.message
import hashlib
import hmac
import http.client
import json
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from receivers import HttpRequest, SmtpSink, WebhookReceiver, signature_header  # noqa: E402
from service_lib import T  # noqa: E402

t = T()
START = time.monotonic()
BASE_THREADS = threading.active_count()
TMP = tempfile.mkdtemp(prefix="bookrank-receivers-")
CURL = shutil.which("curl")


def curl(*args, timeout=30):
    """Runs curl; returns (exit status, stdout, stderr) as text."""
    p = subprocess.run([CURL, "-sS", "--max-time", "20"] + [str(a) for a in args],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def write_msg(name, lines):
    """A message file with CRLF line ends (what a mail client uploads)."""
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(b"".join((l.encode("utf-8") if isinstance(l, str) else l) + b"\r\n" for l in lines))
    return path


def post(port, path, body, headers=None, method="POST", timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def refused(port):
    """True when a TCP connect to 127.0.0.1:port is refused."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def wait_until(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


class Raw:
    """A line-oriented raw client for poking at the SMTP sink."""

    def __init__(self, port, timeout=5):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.s.makefile("rb")

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                return None, lines
            lines.append(line.decode().rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), lines

    def cmd(self, line):
        self.s.sendall(line if isinstance(line, bytes) else (line + "\r\n").encode())
        return self.reply()[0]

    def close(self):
        self.f.close()
        self.s.close()


def eq(got, want, what, detail=None):
    """t.eq with an optional detail printed under a failure."""
    return t.check(got == want, what, "got  %r\nwant %r%s" % (
        got, want, "" if detail is None else "\n" + str(detail)))


all_errors = []
leaks = []


def finished(r):
    all_errors.extend(r.errors)
    leaks.append(r.leaked_threads)


# == webhook receiver ===================================================================================
def test_webhook_basics():
    hook = WebhookReceiver()
    with hook:
        t.check(hook.url().startswith("http://127.0.0.1:") and hook.url().endswith("/hook")
                and hook.url() == "http://127.0.0.1:%d/hook" % hook.port, "webhook url()",
                hook.url())
        eq(hook.url("x/y"), "http://127.0.0.1:%d/x/y" % hook.port, "webhook url(path)")
        body = json.dumps({"event": "rank_below", "isbn": "0131103628", "rank": 17}).encode()
        before_m, before_w = time.monotonic(), time.time()
        status, headers, data = post(hook.port, "/hook", body,
                                     {"Content-Type": "application/json",
                                      "X-Bookrank-Event": "evt-42", "X-Mixed-Case": "Yes"})
        after_m = time.monotonic()
        eq((status, data), (200, b'{"ok":true}'), "webhook answers 200 with a JSON body")
        reqs = hook.requests()
        eq(len(reqs), 1, "one request recorded")
        r = reqs[0] if reqs else HttpRequest(method=None, path=None, headers={}, body=b"",
                                             t_mono=0, t_wall=0, status=None, seq=-1, tls=None)
        eq((r.method, r.path, r.body), ("POST", "/hook", body), "method, path, raw body recorded")
        eq(r.headers.get("x-bookrank-event"), "evt-42", "headers recorded with lower-case names")
        eq(r.header("X-Mixed-Case"), "Yes", "header() looks names up case-insensitively")
        eq(r.headers.get("content-type"), "application/json", "content-type recorded")
        t.check(before_m <= r.t_mono <= after_m, "monotonic arrival time recorded",
                (before_m, r.t_mono, after_m))
        t.check(abs(r.t_wall - before_w) < 5, "wall arrival time recorded", (r.t_wall, before_w))
        eq((r.status, r.seq, r.tls), (200, 0, False), "answered status, sequence number, no TLS")
        eq(hook.json(r), {"event": "rank_below", "isbn": "0131103628", "rank": 17},
             "json(req) decodes the body")
        hook.requests().clear()
        eq(len(hook.requests()), 1, "requests() is a copy")

        # urllib, a GET with a query string
        with urllib.request.urlopen(hook.url("/q?a=1&b=%C3%A9"), timeout=10) as resp:
            eq(resp.status, 200, "urllib GET answered")
        r = hook.requests()[-1]
        eq((r.method, r.path, r.body), ("GET", "/q?a=1&b=%C3%A9", b""), "GET with query recorded")
        bad = HttpRequest(body=b"{not json", headers={})
        eq(hook.json(bad), None, "json(req) is None for a body that is not JSON")

        # keep-alive: two requests on one connection, both recorded
        conn = http.client.HTTPConnection("127.0.0.1", hook.port, timeout=10)
        for i in range(2):
            conn.request("POST", "/ka", body=b"n=%d" % i)
            resp = conn.getresponse()
            resp.read()
        conn.close()
        ka = [x for x in hook.requests() if x.path == "/ka"]
        t.check(len(ka) == 2 and ka[0].client == ka[1].client and [x.body for x in ka] ==
                [b"n=0", b"n=1"], "two keep-alive requests on one connection recorded", ka)

        # chunked transfer encoding is reassembled
        conn = http.client.HTTPConnection("127.0.0.1", hook.port, timeout=10)
        conn.request("POST", "/chunked", body=iter([b"hello ", b"chunked ", b"world"]),
                     encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        r = hook.requests()[-1]
        eq((resp.status, r.path, r.body), (200, "/chunked", b"hello chunked world"),
             "chunked body reassembled")

        # curl (libcurl) with Expect: 100-continue (libcurl sends it for big bodies)
        big = json.dumps({"text": "x" * 5000, "emoji": "\U0001F4DA"}).encode()
        path = os.path.join(TMP, "big.json")
        with open(path, "wb") as f:
            f.write(big)
        sig = signature_header(big, "s3cret")
        rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-H",
                            "Content-Type: application/json", "-H", "X-Bookrank-Signature: " + sig,
                            "-H", "Expect: 100-continue", "--expect100-timeout", "5",
                            "--data-binary", "@" + path, hook.url("/curl"))
        code, _, took = out.partition(" ")
        eq((rc, code), (0, "200"), "curl POST answered 200", err)
        t.check(float(took or 99) < 4, "100 Continue sent (curl did not wait out its timeout)", took)
        r = hook.requests()[-1]
        eq((r.path, r.body), ("/curl", big), "curl body (5 kB) recorded byte for byte")
        eq(r.headers.get("expect"), "100-continue", "curl used Expect: 100-continue")
        t.check(hook.verify_signature(r, "s3cret"), "signature made for curl's body verifies")
        # curl -H "Content-Type: application/json" --data-binary: JSON of the body
        eq(hook.json(r), json.loads(big), "json(req) of curl's body")
        eq(hook.aborted, 0, "no aborted request so far")
    finished(hook)
    t.check(refused(hook.port), "webhook port refuses connections after close")


def test_webhook_signature():
    with WebhookReceiver() as hook:
        body = b'{"event":"test","n":1}'
        secret = "top secret \u00e9"
        good = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        eq(signature_header(body, secret), good, "signature_header computes sha256=<hex>")
        post(hook.port, "/sig", body, {"X-Bookrank-Signature": good, "X-Bookrank-Event": "e1"})
        post(hook.port, "/sig", body, {"X-Bookrank-Event": "e2"})
        post(hook.port, "/sig", body, {"X-Bookrank-Signature": good.upper().replace("SHA256=",
                                                                                    "sha256=")})
        reqs = hook.wait_for(3, timeout=5)
        eq(len(reqs), 3, "three signature requests recorded")
        if len(reqs) < 3:
            return
        signed, unsigned, upper = reqs
        t.check(hook.verify_signature(signed, secret) is True, "signature verifies with the right secret")
        t.check(hook.verify_signature(signed, secret.encode()) is True, "secret may be bytes")
        t.check(hook.verify_signature(signed, "top secret e") is False,
                "signature fails with a wrong secret")
        tampered = HttpRequest(**dict(signed.__dict__, body=body.replace(b"1", b"2")))
        t.check(hook.verify_signature(tampered, secret) is False, "signature fails on a tampered body")
        t.check(hook.verify_signature(unsigned, secret) is False, "no signature header: False")
        t.check(hook.verify_signature(upper, secret) is False,
                "upper-case hex is rejected (the contract says lower-case)")
    finished(hook)


def test_webhook_failures():
    with WebhookReceiver() as hook:
        hook.fail_next(2, status=503, headers={"Retry-After": "7"})
        got = [post(hook.port, "/f", b"%d" % i) for i in range(3)]
        eq([g[0] for g in got], [503, 503, 200], "fail_next(2, 503): two 503 then 200")
        eq(got[0][1].get("retry-after"), "7", "fail_next headers sent (Retry-After)")
        eq([r.status for r in hook.requests()], [503, 503, 200], "answered statuses recorded")
        eq([r.body for r in hook.requests()], [b"0", b"1", b"2"], "failed requests are recorded too")

        hook.fail_next(1)
        rc, out, err = curl("-f", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "x",
                            hook.url())
        t.check(rc == 22 and out == "500", "curl -f reports fail_next's default 500 as an error",
                (rc, out, err))
        rc, out, err = curl("-f", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "x",
                            hook.url())
        eq((rc, out), (0, "200"), "after fail_next(1), curl succeeds again")
        hook.fail_next(5)
        hook.fail_next(0)
        eq(post(hook.port, "/f", b"")[0], 200, "fail_next(0) cancels")

        hook.status, hook.response_body = 202, b"accepted"
        st, _, data = post(hook.port, "/f", b"")
        eq((st, data), (202, b"accepted"), "status / response_body knobs")
        hook.status, hook.response_body = 200, b'{"ok":true}'

        hook.drop_next(1)
        try:
            post(hook.port, "/drop", b"dropped")
            dropped = False
        except (http.client.HTTPException, ConnectionError) as e:
            dropped = isinstance(e, (http.client.RemoteDisconnected, ConnectionError,
                                     http.client.BadStatusLine))
        t.check(dropped, "drop_next: the client sees the connection closed without an answer")
        r = hook.requests()[-1]
        eq((r.path, r.body, r.status), ("/drop", b"dropped", None), "dropped request recorded")
        eq(post(hook.port, "/f", b"")[0], 200, "after drop_next(1), answers again")

        hook.delay_s = 0.3
        t0 = time.monotonic()
        st = post(hook.port, "/slow", b"")[0]
        took = time.monotonic() - t0
        hook.delay_s = 0
        t.check(st == 200 and 0.3 <= took < 3, "delay_s delays the answer", took)
        t.check(hook.requests()[-1].t_mono - t0 < 0.25,
                "a delayed request is recorded on arrival, before the answer")

        # a client that goes away in the middle of its body
        s = socket.create_connection(("127.0.0.1", hook.port), timeout=5)
        s.sendall(b"POST /partial HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        s.close()
        t.check(wait_until(lambda: hook.aborted == 1), "a body cut short is counted in aborted",
                hook.aborted)
        t.check(all(r.path != "/partial" for r in hook.requests()), "and is not recorded")
        s = socket.create_connection(("127.0.0.1", hook.port), timeout=5)
        s.sendall(b"POST /x HTTP/1.1\r\nHo")
        s.close()
        eq(post(hook.port, "/after", b"ok")[0], 200, "the receiver still answers after those")
    finished(hook)

    with WebhookReceiver(idle_timeout=0.5) as hook:
        s = socket.create_connection(("127.0.0.1", hook.port), timeout=5)
        t0 = time.monotonic()
        try:
            closed = s.recv(100) == b""
        except OSError:
            closed = True
        took = time.monotonic() - t0
        s.close()
        t.check(closed and 0.4 < took < 3, "an idle connection is closed after idle_timeout", took)
    finished(hook)


def test_webhook_wait_for():
    with WebhookReceiver() as hook:
        def later():
            time.sleep(0.2)
            post(hook.port, "/a", b"1")
            post(hook.port, "/b", b"2")
        th = threading.Thread(target=later)
        t0 = time.monotonic()
        th.start()
        got = hook.wait_for(2, timeout=10)
        took = time.monotonic() - t0
        th.join()
        t.check(len(got) == 2 and 0.15 < took < 5, "wait_for(2) returns once two arrived", took)
        got = hook.wait_for(1, timeout=5, match=lambda r: r.path == "/b")
        t.check(len(got) == 1 and got[0].body == b"2", "wait_for(match=...) filters", got)
        t0 = time.monotonic()
        got = hook.wait_for(3, timeout=0.3)
        took = time.monotonic() - t0
        t.check(len(got) == 2 and 0.28 < took < 2,
                "wait_for on timeout returns what it has (no exception)", (len(got), took))
        hook.clear()
        eq(hook.requests(), [], "clear() forgets requests")
    finished(hook)


def test_webhook_down_up():
    with WebhookReceiver() as hook:
        port = hook.port
        eq(post(port, "/1", b"")[0], 200, "up: answers")
        # an open keep-alive connection and an in-flight delayed request while going down
        ka = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        ka.request("POST", "/ka", body=b"")
        ka.getresponse().read()
        hook.delay_s = 5
        result = {}

        def slow():
            t0 = time.monotonic()
            try:
                result["status"] = post(port, "/slow", b"")[0]
            except (OSError, http.client.HTTPException) as e:
                result["error"] = e
            result["took"] = time.monotonic() - t0
        th = threading.Thread(target=slow)
        th.start()
        hook.wait_for(1, timeout=5, match=lambda r: r.path == "/slow")
        t0 = time.monotonic()
        hook.set_down(True)
        down_took = time.monotonic() - t0
        th.join(10)
        hook.delay_s = 0
        t.check(hook.is_down and down_took < 2, "set_down(True) returns promptly", down_took)
        t.check("error" in result and result.get("took", 99) < 3,
                "an in-flight delayed request is cut when going down", result)
        t.check(refused(port), "down: connections are refused")
        try:
            ka.request("POST", "/ka2", body=b"")
            ka.getresponse().read()
            ka_ok = True
        except (OSError, http.client.HTTPException):
            ka_ok = False
        ka.close()
        t.check(not ka_ok, "down: an open keep-alive connection was cut")
        rc, _, err = curl("--data-binary", "x", hook.url())
        eq(rc, 7, "down: curl cannot connect (exit 7)")
        try:
            urllib.request.urlopen(hook.url(), data=b"x", timeout=5)
            url_err = None
        except urllib.error.URLError as e:
            url_err = e.reason
        t.check(isinstance(url_err, ConnectionRefusedError), "down: urllib gets ConnectionRefused",
                url_err)
        t.check(refused(port), "still refused a moment later")
        t0 = time.monotonic()
        hook.set_down(False)
        up_took = time.monotonic() - t0
        t.check(not hook.is_down and up_took < 1, "set_down(False) returns promptly", up_took)
        eq(hook.port, port, "same port after coming back")
        eq(post(port, "/2", b"back")[0], 200, "up again: answers on the same port at once")
        hook.set_down(False)
        eq(post(port, "/3", b"")[0], 200, "set_down(False) twice is harmless")
        for i in range(3):
            hook.set_down(True)
            r1 = refused(port)
            hook.set_down(False)
            r2 = post(port, "/cycle", b"%d" % i)[0]
            if not (r1 and r2 == 200):
                break
        t.check(r1 and r2 == 200, "three more down/up cycles on the same port")
        eq([r.path for r in hook.requests()][-1], "/cycle", "requests recorded across down/up")
    finished(hook)


def test_webhook_tls():
    with WebhookReceiver(tls=True) as hook:
        t.check(hook.url().startswith("https://127.0.0.1:") and os.path.exists(hook.ca_file),
                "https url() and ca_file", (hook.url(), hook.ca_file))
        ctx = ssl.create_default_context(cafile=hook.ca_file)
        conn = http.client.HTTPSConnection("127.0.0.1", hook.port, timeout=10, context=ctx)
        conn.request("POST", "/tls", body=b"secure")
        st = conn.getresponse().status
        conn.close()
        r = hook.requests()[-1] if hook.requests() else None
        t.check(st == 200 and r is not None and r.tls and r.body == b"secure",
                "HTTPS POST verified against ca_file and recorded with tls", r)
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", hook.port, timeout=10,
                                               context=ssl.create_default_context())
            conn.request("POST", "/tls", body=b"x")
            conn.getresponse()
            untrusted = False
        except ssl.SSLCertVerificationError:
            untrusted = True
        t.check(untrusted, "the certificate is not trusted without ca_file")
        rc, out, err = curl("--cacert", hook.ca_file, "-o", "/dev/null", "-w", "%{http_code}",
                            "--data-binary", "c", hook.url())
        eq((rc, out), (0, "200"), "curl --cacert ca_file: https works", err)
        rc, out, err = curl("--cacert", hook.ca_file, "--data-binary", "c",
                            "https://localhost:%d/hook" % hook.port)
        eq(rc, 0, "the certificate also names localhost", err)
        rc, out, err = curl("--data-binary", "c", hook.url())
        eq(rc, 60, "curl without --cacert refuses the self-signed certificate (exit 60)")
        t.check(len(hook.requests()) == 3, "failed handshakes record nothing", hook.requests())
        hook.set_down(True)
        t.check(refused(hook.port), "TLS receiver down: refused")
        hook.set_down(False)
        rc, _, err = curl("--cacert", hook.ca_file, "--data-binary", "c", hook.url())
        eq(rc, 0, "TLS receiver back up on the same port", err)
        ca = hook.ca_file
    finished(hook)
    t.check(not os.path.exists(ca), "the certificate's temp dir is removed on close")


# == SMTP sink ==========================================================================================
PLAIN_MSG = ["From: Bookrank <alerts@bookrank.example>", "To: reader@example.org",
             "Subject: Rank alert", "Message-ID: <1@bookrank.example>",
             "Content-Type: text/plain; charset=utf-8", "", "Rank of 0131103628 is now 17.",
             "Second line."]


def curl_mail(sink, msgfile, *extra, rcpts=("reader@example.org",), url=None):
    args = ["--url", url or sink.url(), "--mail-from", "alerts@bookrank.example"]
    for r in rcpts:
        args += ["--mail-rcpt", r]
    return curl(*(args + ["--upload-file", msgfile] + list(extra)))


def test_smtp_plain():
    with SmtpSink() as sink:
        eq(sink.url(), "smtp://127.0.0.1:%d" % sink.port, "smtp url()")
        eq(sink.ca_file, None, "no ca_file without TLS")
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            code, _ = c.ehlo("client.example")
            eq(code, 250, "smtplib EHLO")
            t.check(not c.has_extn("starttls") and not c.has_extn("auth"),
                    "plain sink advertises neither STARTTLS nor AUTH", c.esmtp_features)
            refused_ = c.sendmail("a@b.example", ["c@d.example", "e@f.example"],
                                  "\r\n".join(PLAIN_MSG) + "\r\n")
            eq(refused_, {}, "smtplib sendmail accepted for both recipients")
        msgs = sink.wait_for(1, timeout=5)
        eq(len(msgs), 1, "smtplib message recorded")
        m = msgs[0]
        eq((m.mail_from, m.rcpt_to), ("a@b.example", ["c@d.example", "e@f.example"]), "envelope")
        eq(m.subject, "Rank alert", "subject parsed")
        eq(m.header("To"), "reader@example.org", "header() reads a header")
        eq(m.msg["Message-ID"], "<1@bookrank.example>", "msg[...] reads a header")
        eq(m.text, "Rank of 0131103628 is now 17.\nSecond line.\n", "text body decoded")
        eq(m.data, ("\r\n".join(PLAIN_MSG) + "\r\n").encode(), "raw data bytes (CRLF) recorded")
        eq((m.tls, m.authenticated_as, m.bare_lf), (False, None, False),
             "no TLS, no auth, no bare LF")
        eq(m.helo, "EHLO client.example", "EHLO name recorded")
        ended = sink.wait_sessions_ended(1, timeout=5)
        t.check(len(ended) == 1 and ended[0].end == "quit" and "QUIT" in ended[0].commands,
                "session recorded, ended by QUIT", ended)

        path = write_msg("plain.eml", PLAIN_MSG)
        rc, out, err = curl_mail(sink, path, rcpts=("r1@example.org", "r2@example.org"))
        eq(rc, 0, "curl smtp:// plain message sent", err)
        msgs = sink.wait_for(2, timeout=5)
        m = msgs[-1]
        eq((m.mail_from, m.rcpt_to), ("alerts@bookrank.example", ["r1@example.org",
                                                                   "r2@example.org"]),
             "curl envelope recorded")
        eq((m.subject, m.text, m.tls), ("Rank alert", "Rank of 0131103628 is now 17.\nSecond line.\n",
                                          False), "curl message parsed, not TLS")

        rc, _, err = curl_mail(sink, path, "--ssl")
        eq(rc, 0, "curl --ssl (try STARTTLS) falls back to plain when not offered", err)
        t.check(len(sink.messages()) == 3 and not sink.messages()[-1].tls,
                "that message arrived unencrypted")
        rc, _, err = curl_mail(sink, path, "--ssl-reqd")
        t.check(rc != 0, "curl --ssl-reqd fails when STARTTLS is not offered", (rc, err))
        eq(len(sink.messages()), 3, "and nothing was delivered")

        # smtplib and a HELO-only client
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            c.helo("old.example")
            c.sendmail("", ["x@y.example"], "Subject: bounce\r\n\r\nnull sender\r\n")
        m = sink.wait_for(4, timeout=5)[-1]
        eq((m.helo, m.mail_from, m.subject), ("HELO old.example", "", "bounce"),
             "HELO and the null sender <>")
    finished(sink)
    t.check(refused(sink.port), "smtp port refuses after close")


def test_smtp_protocol():
    with SmtpSink() as sink:
        r = Raw(sink.port)
        code, lines = r.reply()
        t.check(code == 220 and "ESMTP" in lines[0], "greeting 220 ESMTP", lines)
        eq(r.cmd("MAIL FROM:<a@b.example>"), 503, "MAIL before EHLO: 503")
        eq(r.cmd("EHLO raw.example"), 250, "EHLO")
        eq(r.cmd("NOOP"), 250, "NOOP")
        eq(r.cmd("RCPT TO:<c@d.example>"), 503, "RCPT before MAIL: 503")
        eq(r.cmd("DATA"), 503, "DATA before MAIL: 503")
        eq(r.cmd("FROB"), 500, "unknown command: 500")
        eq(r.cmd("STARTTLS"), 502, "STARTTLS on a sink without TLS: 502")
        eq(r.cmd("AUTH PLAIN"), 502, "AUTH on a sink without auth: 502")
        eq(r.cmd("MAIL FROM:a@b.example"), 501, "MAIL without <>: 501")
        eq(r.cmd("MAIL FROM:<a@b.example> SIZE=100"), 250, "MAIL FROM with a parameter")
        eq(r.cmd("DATA"), 554, "DATA without recipients: 554")
        eq(r.cmd("RSET"), 250, "RSET")
        eq(r.cmd("RCPT TO:<c@d.example>"), 503, "RSET forgot the sender")
        eq(r.cmd("mail from:<a@b.example> BODY=8BITMIME"), 250, "commands are case-insensitive")
        eq(r.cmd("RCPT TO:<c@d.example>"), 250, "RCPT")
        eq(r.cmd("DATA"), 354, "DATA: 354")
        r.s.sendall(b"Subject: stuffed\r\n\r\n..leading dot\r\n...two dots\r\n..\r\nbare\nLF\r\n"
                    b".\r\n")
        eq(r.reply()[0], 250, "end of data accepted with 250")
        eq(r.cmd("QUIT"), 221, "QUIT: 221")
        r.close()
        m = sink.wait_for(1, timeout=5)
        m = m[0] if m else None
        t.check(m is not None and m.data == b"Subject: stuffed\r\n\r\n.leading dot\r\n..two dots\r\n"
                b".\r\nbare\nLF\r\n", "dot-unstuffing of raw data; only CRLF.CRLF ends it",
                m and m.data)
        t.check(m is not None and m.bare_lf, "a bare LF in the data is flagged (bare_lf)")
        eq(m and m.mail_params, "BODY=8BITMIME", "MAIL parameters recorded")

        # pipelined commands in one write
        r = Raw(sink.port)
        r.reply()
        r.s.sendall(b"EHLO p.example\r\nMAIL FROM:<p@p.example>\r\nRCPT TO:<q@q.example>\r\n"
                    b"DATA\r\n")
        codes = [r.reply()[0] for _ in range(4)]
        r.s.sendall(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        codes += [r.reply()[0], r.reply()[0]]
        r.close()
        eq(codes, [250, 250, 250, 354, 250, 221], "pipelined commands answered in order")
        eq(sink.wait_for(2, timeout=5)[-1].subject, "pipelined", "pipelined message recorded")

        # a client that disconnects in the middle of DATA
        r = Raw(sink.port)
        r.reply()
        for c in ("EHLO cut.example", "MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "DATA"):
            r.cmd(c)
        r.s.sendall(b"Subject: never finished\r\n\r\nhalf a mess")
        r.close()
        ended = sink.wait_sessions_ended(3, timeout=5)
        t.check(len(ended) == 3 and ended[-1].end == "disconnect",
                "disconnect mid-DATA ends the session as 'disconnect'", ended)
        eq(len(sink.messages()), 2, "a message cut short is not recorded")
        # a client that connects and leaves at once
        socket.create_connection(("127.0.0.1", sink.port), timeout=5).close()
        t.check(len(sink.wait_sessions_ended(4, timeout=5)) == 4, "connect-and-leave handled")

        sink.rejected_recipients.add("nobody@d.example")
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            bad = c.sendmail("a@b.example", ["ok@d.example", "Nobody@d.example"],
                             "Subject: partial\r\n\r\nx\r\n")
        t.check(list(bad) == ["Nobody@d.example"] and bad["Nobody@d.example"][0] == 550,
                "rejected_recipients: RCPT gets 550", bad)
        eq(sink.wait_for(3, timeout=5)[-1].rcpt_to, ["ok@d.example"],
             "only the accepted recipient is recorded")
        sink.rejected_recipients.clear()
        sink.clear()
        t.check(sink.messages() == [] and sink.sessions() == [], "clear() forgets everything")
    finished(sink)

    with SmtpSink(idle_timeout=0.5) as sink:
        r = Raw(sink.port)
        r.reply()
        t0 = time.monotonic()
        code, _ = r.reply()
        eof = r.f.readline() == b""
        took = time.monotonic() - t0
        r.close()
        t.check(code == 421 and eof and 0.4 < took < 3, "idle client gets 421 then EOF", (code, took))
        ended = sink.wait_sessions_ended(1, timeout=5)
        t.check(len(ended) == 1 and ended[0].end == "timeout", "session ended by 'timeout'", ended)
    finished(sink)


def test_smtp_utf8_and_dots():
    with SmtpSink() as sink:
        subject = "B\u00fccher \u2013 Rang 17 \U0001F4DA"
        enc = "=?UTF-8?B?" + base64.b64encode(subject.encode()).decode() + "?="
        path = write_msg("utf8.eml", ["From: alerts@bookrank.example", "To: r@example.org",
                                      "Subject: " + enc, "MIME-Version: 1.0",
                                      "Content-Type: text/plain; charset=utf-8",
                                      "Content-Transfer-Encoding: 8bit", "",
                                      "Gr\u00fc\u00dfe aus K\u00f6ln"])
        rc, _, err = curl_mail(sink, path)
        eq(rc, 0, "curl sends a message with an RFC 2047 subject", err)
        m = sink.wait_for(1, timeout=5)[-1]
        eq(m.subject, subject, "RFC 2047 (B) UTF-8 subject decoded")
        t.check(enc.encode() in m.data, "raw data keeps the encoded form")
        eq(m.text, "Gr\u00fc\u00dfe aus K\u00f6ln\n", "8bit UTF-8 body decoded")

        em = email.message.EmailMessage()
        em["From"] = "alerts@bookrank.example"
        em["To"] = "r@example.org"
        em["Subject"] = "R\u00e9sum\u00e9: na\u00efve \u00fcber " * 4   # long: folded, encoded
        em.set_content("\u00e9t\u00e9 " * 30, cte="quoted-printable")
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            c.send_message(em)
        m = sink.wait_for(2, timeout=5)[-1]
        eq(m.subject, em["Subject"], "long folded encoded subject (smtplib) decoded")
        t.check(b"=?utf-8?" in m.data.lower(), "it was sent encoded", m.data[:300])
        eq(m.text, "\u00e9t\u00e9 " * 30 + "\n", "quoted-printable body decoded")

        body = [".hidden line", "..two dots", ".", "after the lone dot", " . not a dot line"]
        path = write_msg("dots.eml", ["From: alerts@bookrank.example", "To: r@example.org",
                                      "Subject: dots", ""] + body)
        rc, _, err = curl_mail(sink, path)
        eq(rc, 0, "curl sends lines starting with dots", err)
        m = sink.wait_for(3, timeout=5)[-1]
        eq(m.text, "\n".join(body) + "\n", "curl's dot-stuffed lines come back unstuffed")
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            c.sendmail("a@b.example", ["c@d.example"],
                       "Subject: dots2\r\n\r\n" + "\r\n".join(body) + "\r\n")
        m = sink.wait_for(4, timeout=5)[-1]
        eq(m.text, "\n".join(body) + "\n", "smtplib's dot-stuffed lines come back unstuffed")
        cmds = [s.commands for s in sink.sessions()]
        t.check(all(".hidden line" not in c for c in cmds), "data lines are not logged as commands")
    finished(sink)


def test_smtp_tls():
    with SmtpSink(starttls=True) as sink:
        t.check(sink.ca_file and os.path.exists(sink.ca_file), "starttls sink has a ca_file")
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            c.ehlo("x.example")
            t.check(c.has_extn("starttls"), "STARTTLS advertised")
        path = write_msg("tls.eml", PLAIN_MSG)
        rc, _, err = curl_mail(sink, path, "--ssl", "--cacert", sink.ca_file)
        eq(rc, 0, "curl --ssl --cacert: STARTTLS used", err)
        m = sink.wait_for(1, timeout=5)
        t.check(len(m) == 1 and m[0].tls and m[0].subject == "Rank alert",
                "message recorded with tls=True", m)
        sess = [s for s in sink.wait_sessions_ended(2, timeout=5) if s.starttls]
        t.check(len(sess) == 1 and sess[0].tls and
                [c.split(" ")[0].upper() for c in sess[0].commands].count("EHLO") == 2,
                "session: STARTTLS then a second EHLO", sess)
        rc, _, err = curl_mail(sink, path, "--ssl-reqd", "--cacert", sink.ca_file)
        eq(rc, 0, "curl --ssl-reqd --cacert works", err)
        t.check(len(sink.wait_for(2, timeout=5)) == 2 and sink.messages()[-1].tls,
                "second message over TLS too")
        rc, _, err = curl_mail(sink, path, "--ssl-reqd")
        eq(rc, 60, "curl without --cacert rejects the self-signed certificate (exit 60)")
        eq(len(sink.messages()), 2, "nothing delivered after a rejected certificate")
        last = sink.wait_sessions_ended(4, timeout=5)[-1]
        t.check(last.end and last.end.startswith("tls-failed"), "session ended 'tls-failed'", last)
        rc, _, err = curl_mail(sink, path)
        t.check(rc == 0 and not sink.wait_for(3, timeout=5)[-1].tls,
                "curl without --ssl stays plain on a STARTTLS sink", (rc, err))

        ctx = ssl.create_default_context(cafile=sink.ca_file)
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            c.starttls(context=ctx)
            c.ehlo("after.example")
            t.check(not c.has_extn("starttls"), "STARTTLS no longer advertised after TLS")
            eq(c.docmd("STARTTLS")[0], 503, "second STARTTLS: 503")
            c.sendmail("a@b.example", ["c@d.example"], "Subject: smtplib tls\r\n\r\nx\r\n")
        m = sink.wait_for(4, timeout=5)[-1]
        t.check(m.tls and m.subject == "smtplib tls" and m.helo == "EHLO after.example",
                "smtplib starttls message recorded with tls", m)
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            c.starttls(context=ctx)
            c.ehlo("x")
            c.docmd("MAIL FROM:<a@b.example>")
            c.close()                 # no QUIT: smtplib's exit then finds no connection
        ended = sink.wait_sessions_ended(7, timeout=5)
        t.check(len(ended) == 7 and ended[-1].end == "disconnect",
                "a TLS client that vanishes ends as 'disconnect'", [s.end for s in ended])
    finished(sink)

    with SmtpSink(implicit_tls=True) as sink:
        t.check(sink.url() == "smtps://127.0.0.1:%d" % sink.port, "smtps url()", sink.url())
        path = write_msg("smtps.eml", PLAIN_MSG)
        rc, _, err = curl_mail(sink, path, "--cacert", sink.ca_file)
        eq(rc, 0, "curl smtps:// (implicit TLS) with --cacert", err)
        m = sink.wait_for(1, timeout=5)
        t.check(len(m) == 1 and m[0].tls and m[0].text.startswith("Rank of"),
                "smtps message recorded with tls=True", m)
        rc, _, err = curl_mail(sink, path)
        eq(rc, 60, "smtps:// without --cacert: certificate refused (exit 60)")
        ctx = ssl.create_default_context(cafile=sink.ca_file)
        with smtplib.SMTP_SSL("127.0.0.1", sink.port, timeout=10, context=ctx) as c:
            c.ehlo("ssl.example")
            t.check(not c.has_extn("starttls"), "implicit TLS sink does not offer STARTTLS")
            c.sendmail("a@b.example", ["c@d.example"], "Subject: smtps\r\n\r\nx\r\n")
        t.check(sink.wait_for(2, timeout=5)[-1].tls, "smtplib SMTP_SSL message has tls")
        rc, _, err = curl_mail(sink, path, "--max-time", "1", url="smtp://127.0.0.1:%d" % sink.port)
        t.check(rc != 0, "plain smtp:// against the implicit TLS port fails", rc)
        eq(len(sink.messages()), 2, "and delivers nothing")
    finished(sink)
    try:
        SmtpSink(starttls=True, implicit_tls=True)
        both = False
    except ValueError:
        both = True
    t.check(both, "starttls and implicit_tls together are refused")


def test_smtp_auth():
    creds = ("user", "p@ss word:1")      # curl splits --user at the first colon only
    with SmtpSink(starttls=True, auth=creds, require_tls_for_auth=True) as sink:
        path = write_msg("auth.eml", PLAIN_MSG)
        ca = sink.ca_file
        rc, _, err = curl_mail(sink, path, "--ssl-reqd", "--cacert", ca,
                               "--user", "%s:%s" % creds)
        eq(rc, 0, "curl --ssl-reqd --user: AUTH over TLS accepted", err)
        m = sink.wait_for(1, timeout=5)
        t.check(len(m) == 1 and m[0].authenticated_as == "user" and m[0].tls,
                "message recorded as authenticated_as='user' over TLS", m)
        a = sink.sessions()[-1].auth
        t.check(len(a) == 1 and a[0]["ok"] and a[0]["tls"] and a[0]["mechanism"] == "PLAIN",
                "auth record: PLAIN, ok, over TLS", a)
        rc, _, err = curl_mail(sink, path, "--ssl-reqd", "--cacert", ca, "--user", "%s:%s" % creds,
                               "--login-options", "AUTH=LOGIN")
        eq(rc, 0, "curl AUTH=LOGIN over TLS accepted", err)
        a = sink.wait_sessions_ended(2, timeout=5)[-1].auth
        t.check(len(a) == 1 and a[0]["ok"] and a[0]["mechanism"] == "LOGIN",
                "auth record: LOGIN, ok", a)
        rc, _, err = curl_mail(sink, path, "--ssl-reqd", "--cacert", ca, "--user", "user:wrong")
        eq(rc, 67, "wrong password: curl reports login denied (exit 67)")
        a = sink.wait_sessions_ended(3, timeout=5)[-1].auth
        t.check(len(a) == 1 and not a[0]["ok"] and a[0]["code"] == 535, "auth record: 535", a)
        eq(len(sink.messages()), 2, "nothing delivered after a failed login")

        # AUTH before STARTTLS: 538
        rc, _, err = curl_mail(sink, path, "--user", "%s:%s" % creds)
        t.check(rc != 0, "curl AUTH without TLS is refused", (rc, err))
        a = sink.wait_sessions_ended(4, timeout=5)[-1].auth
        t.check(len(a) == 1 and a[0]["code"] == 538 and not a[0]["tls"] and
                not a[0]["credentials_sent"], "auth record: 538 before TLS, no credentials sent", a)
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            c.ehlo("x")
            try:
                c.login(*creds)
                code = 235
            except smtplib.SMTPAuthenticationError as e:
                code = e.smtp_code
        eq(code, 538, "smtplib login before STARTTLS: 538")
        a = sink.wait_sessions_ended(5, timeout=5)[-1].auth
        t.check(a and all(x["code"] == 538 and x["credentials_sent"] and x["user"] == "user"
                          for x in a), "smtplib sent credentials in the clear: recorded", a)
        eq(len(sink.messages()), 2, "nothing delivered by refused logins")

        ctx = ssl.create_default_context(cafile=ca)
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            c.starttls(context=ctx)
            c.ehlo("x")
            c.user, c.password = creds
            code, _ = c.auth("LOGIN", c.auth_login)     # LOGIN with an initial response
            c.sendmail("a@b.example", ["c@d.example"], "Subject: login\r\n\r\nx\r\n")
        eq(code, 235, "smtplib AUTH LOGIN (initial response) over TLS")
        m = sink.wait_for(3, timeout=5)[-1]
        eq((m.subject, m.authenticated_as), ("login", "user"), "smtplib message authenticated")
    finished(sink)

    with SmtpSink(auth=("u", "pw"), require_auth=True) as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            try:
                c.sendmail("a@b.example", ["c@d.example"], "Subject: x\r\n\r\nx\r\n")
                code = 250
            except smtplib.SMTPSenderRefused as e:
                code = e.smtp_code
        eq(code, 530, "require_auth: MAIL without AUTH gets 530")
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            c.login("u", "pw")        # no TLS required on this sink
            c.sendmail("a@b.example", ["c@d.example"], "Subject: ok\r\n\r\nx\r\n")
        m = sink.wait_for(1, timeout=5)
        t.check(len(m) == 1 and m[0].authenticated_as == "u" and not m[0].tls,
                "plaintext AUTH allowed without require_tls_for_auth", m)
        r = Raw(sink.port)
        r.reply()
        r.cmd("EHLO raw")
        eq(r.cmd("AUTH PLAIN"), 334, "AUTH PLAIN without initial response: 334")
        eq(r.cmd("*"), 501, "cancelled with '*': 501")
        eq(r.cmd("AUTH PLAIN !!!notbase64"), 501, "undecodable AUTH PLAIN: 501")
        eq(r.cmd("AUTH CRAM-MD5"), 504, "unknown mechanism: 504")
        eq(r.cmd("AUTH PLAIN " + base64.b64encode(b"\0u\0pw").decode()), 235, "AUTH PLAIN ok")
        eq(r.cmd("AUTH PLAIN " + base64.b64encode(b"\0u\0pw").decode()), 503, "second AUTH: 503")
        r.cmd("QUIT")
        r.close()
    finished(sink)


def test_smtp_fail_and_down():
    with SmtpSink(starttls=True) as sink:
        path = write_msg("fail.eml", PLAIN_MSG)
        sink.fail_next(1)
        rc, _, err = curl_mail(sink, path, "--ssl-reqd", "--cacert", sink.ca_file)
        t.check(rc != 0 and "451" in err, "fail_next(1): curl reports the 451 as an error",
                (rc, err))
        eq(len(sink.messages()), 0, "nothing delivered on 451")
        rc, _, err = curl_mail(sink, path, "--ssl-reqd", "--cacert", sink.ca_file)
        eq(rc, 0, "next curl succeeds", err)
        eq(len(sink.wait_for(1, timeout=5)), 1, "and is recorded")

        sink.fail_next(2, code=452)
        codes = []
        for _ in range(3):
            with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
                try:
                    c.sendmail("a@b.example", ["c@d.example"], "Subject: x\r\n\r\nx\r\n")
                    codes.append(250)
                except smtplib.SMTPSenderRefused as e:
                    codes.append(e.smtp_code)
        eq(codes, [452, 452, 250], "fail_next(2, code=452) with smtplib, then success")
        sink.fail_next(1, code=550)
        rc, _, err = curl_mail(sink, path)
        t.check(rc != 0 and "550" in err, "fail_next(1, code=550): permanent failure", (rc, err))

        port = sink.port
        r = Raw(port)            # an idle session open while the sink goes down
        r.reply()
        t0 = time.monotonic()
        sink.set_down(True)
        took = time.monotonic() - t0
        t.check(took < 2, "SMTP set_down(True) returns promptly", took)
        t.check(refused(port), "SMTP down: connections refused")
        t.check(r.f.readline() == b"", "the open session was cut")
        r.close()
        rc, _, err = curl_mail(sink, path)
        eq(rc, 7, "down: curl cannot connect (exit 7)")
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=5).quit()
            err2 = None
        except OSError as e:
            err2 = e
        t.check(isinstance(err2, ConnectionRefusedError), "down: smtplib gets ConnectionRefused", err2)
        sink.set_down(False)
        eq(sink.port, port, "SMTP back on the same port")
        rc, _, err = curl_mail(sink, path, "--ssl-reqd", "--cacert", sink.ca_file)
        eq(rc, 0, "SMTP up again: curl STARTTLS delivers", err)
        t.check(len(sink.wait_for(3, timeout=5)) == 3, "messages recorded across down/up")
        t.check(any(s.end == "shutdown" for s in sink.sessions()),
                "the cut session ended as 'shutdown'", [s.end for s in sink.sessions()])
        r = Raw(port)            # and one open while the sink closes
        r.reply()
        t0 = time.monotonic()
    finished(sink)
    t.check(r.f.readline() == b"" and time.monotonic() - t0 < 2, "close cuts an open session")
    r.close()


# == run =================================================================================================
if CURL is None:
    t.check(False, "curl command found")
for fn in (test_webhook_basics, test_webhook_signature, test_webhook_failures, test_webhook_wait_for,
           test_webhook_down_up, test_webhook_tls, test_smtp_plain, test_smtp_protocol,
           test_smtp_utf8_and_dots, test_smtp_tls, test_smtp_auth, test_smtp_fail_and_down):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - a crash is one failure, the rest still runs
        import traceback
        t.check(False, "%s ran to the end" % fn.__name__, traceback.format_exc())

eq(all_errors, [], "no exception inside any receiver")
eq(sum(leaks), 0, "no receiver thread had to be abandoned")
t.check(wait_until(lambda: threading.active_count() == BASE_THREADS, 5),
        "no lingering threads after the receivers closed",
        [th.name for th in threading.enumerate()])
shutil.rmtree(TMP, ignore_errors=True)
print("# run time %.1fs" % (time.monotonic() - START))
t.done()
