"""service_lib - run the real bookrank binary in integration tests (python3 stdlib only).

    from service_lib import T, Service, run_cli
    t = T()                                   # TAP-style "ok - ..." lines, counted by tests/run.sh
    with Service(db, ["--source", "amazon.com=" + template]) as svc:
        status, headers, body = svc.request("GET", "/api/books")
        t.check(status == 200, "list answers 200")
    t.done()                                  # exit status 1 when anything failed
"""
import http.client
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

from fixture_lib import bookrank_bin


class T:
    """Assertions that print one TAP-style line each and never stop the test."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what, detail=None):
        if cond:
            self.passed += 1
            print("ok - " + what)
        else:
            self.failed += 1
            print("not ok - " + what)
            if detail is not None:
                for line in str(detail)[:2000].splitlines():
                    print("#   " + line)
        sys.stdout.flush()
        return bool(cond)

    def eq(self, got, want, what):
        return self.check(got == want, what, "got  %r\nwant %r" % (got, want))

    def done(self):
        print("# %d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "WARNING: ThreadSanitizer", "runtime error:",
                     "ERROR: LeakSanitizer")


def report_sanitizer(where, text):
    """A sanitizer report anywhere in a child's output is a failure of the test."""
    for marker in SANITIZER_MARKERS:
        i = text.find(marker)
        if i >= 0:
            print("not ok - sanitizer report from %s" % where)
            for line in text[max(0, i - 200):i + 3000].splitlines():
                print("#   " + line)
            sys.stdout.flush()
            return True
    return False


def tmpdir():
    return tempfile.mkdtemp(prefix="bookrank-test-")


def run_cli(args, env=None, input=None, timeout=120):
    """Runs `bookrank ARGS`; returns (exit status, stdout, stderr) as text."""
    full_env = dict(os.environ)
    for k in list(full_env):
        if k.startswith("BOOKRANK_") and k != "BOOKRANK_BIN":
            del full_env[k]
    full_env.update(env or {})
    p = subprocess.run([bookrank_bin()] + list(args), env=full_env, input=input,
                       capture_output=True, timeout=timeout)
    err = p.stderr.decode("utf-8", "replace")
    report_sanitizer("bookrank " + " ".join(args[:1]), err)
    return p.returncode, p.stdout.decode("utf-8", "replace"), err


class Service:
    """`bookrank serve` on 127.0.0.1:<ephemeral> with its own database."""

    def __init__(self, db, extra_args=(), env=None, start_timeout=20, listen="127.0.0.1:0"):
        self.db = db
        self.log_path = db + ".serve.log"
        self.log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [bookrank_bin(), "serve", "--listen", listen, "--db", db] + list(extra_args),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.PIPE, env=full_env)
        self.port = None
        deadline = time.monotonic() + start_timeout
        buf = b""
        while self.port is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stderr], [], [], left)[0]:
                self.stop()
                raise RuntimeError("serve did not start: " + buf.decode("utf-8", "replace"))
            chunk = os.read(self.proc.stderr.fileno(), 4096)
            if not chunk:
                self.proc.wait()
                raise RuntimeError("serve exited: " + buf.decode("utf-8", "replace"))
            buf += chunk
            m = re.search(rb"listening on http://[^\s:]+:(\d+)", buf)
            if m:
                self.port = int(m.group(1))
        self.early_log = buf
        # Keep draining stderr into the log file so the server never blocks on a full pipe.
        import threading
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()

    def _drain_stderr(self):
        self.log.write(self.early_log)
        while True:
            chunk = os.read(self.proc.stderr.fileno(), 65536)
            if not chunk:
                break
            self.log.write(chunk)
            self.log.flush()

    def request(self, method, path, body=None, headers=None, timeout=30):
        """Returns (status, headers dict with lower-case names, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            h = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                h.setdefault("Content-Type", "application/json")
            elif isinstance(body, str):
                body = body.encode()
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None, timeout=30):
        """Like request, with the body decoded as JSON (None when empty)."""
        status, h, data = self.request(method, path, body, headers, timeout)
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = {"_raw": data[:500]}
        return status, h, doc

    def raw(self, data, timeout=10, shutdown_write=False):
        """Sends raw bytes (ignoring a server that stops reading early) and returns
        (status or None, headers dict, body bytes) of whatever it answered before closing."""
        import socket
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            try:
                sock.sendall(data)
                if shutdown_write:
                    sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass
            chunks = []
            try:
                while True:
                    c = sock.recv(65536)
                    if not c:
                        break
                    chunks.append(c)
                    head, sep, rest = b"".join(chunks).partition(b"\r\n\r\n")
                    if sep:
                        m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                        if m and len(rest) >= int(m.group(1)):
                            break
            except (ConnectionResetError, socket.timeout):
                pass
        finally:
            sock.close()
        resp = b"".join(chunks)
        head, _, body = resp.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0]) if lines else None
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return (int(m.group(1)) if m else None), headers, body

    def wait_job(self, job_id, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, _, doc = self.json("GET", "/api/jobs/%d" % job_id)
            if status == 200 and doc["job"]["state"] in ("done", "cancelled"):
                return doc["job"]
            time.sleep(0.05)
        return None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=30):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(30) is None:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        self._drain.join(5)
        report_sanitizer("bookrank serve", self.log_text())
        self.log.close()
