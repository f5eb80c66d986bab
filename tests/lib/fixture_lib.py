"""fixture_lib - helpers for bookrank's integration tests (python3 stdlib only).

    from fixture_lib import FixtureStore, bookrank_bin

    with FixtureStore() as store:
        store.config(default={"delay_ms": 50}, books={"0131103628": {"rank": 5838}})
        template = store.url("/dp/{isbn10}")        # http://127.0.0.1:PORT/dp/{isbn10}
        ... run bookrank against template ...
        assert store.stats()["max_in_flight"] <= 2

The store (tests/tools/fixture_store.c) answers any GET whose last path segment is a book key with the
scenario configured for that key (or the default one). Scenario keys: page ("generated",
"fixture:<file>", "captcha", "not_found", "no_rank", "empty", "invalid_utf8"), title, title_raw,
rank, category, categories, status, delay_ms, size, gzip, fail_first, fail_status, retry_after,
fault ("reset", "truncate", "redirect_loop", "huge"). Unknown keys are rejected with 400.

Binaries and data are found through the environment, as tests/run.sh sets it:
BOOKRANK_BIN, FIXTURE_STORE_BIN, FIXTURES (fallbacks: ./build/...; tests/fixtures).
"""
import http.client
import json
import os
import select
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _build_dir():
    return os.path.join(ROOT, os.environ.get("BUILD", "build"))


def bookrank_bin():
    """Path of the bookrank binary under test."""
    return os.environ.get("BOOKRANK_BIN") or os.path.join(_build_dir(), "bookrank")


def fixture_store_bin():
    """Path of the fixture store binary."""
    return os.environ.get("FIXTURE_STORE_BIN") or os.path.join(_build_dir(), "tests", "fixture_store")


def fixtures_dir():
    """Directory of the real store pages (README.md there lists what each holds)."""
    env = os.environ.get("FIXTURES")
    if env:
        return env
    return os.path.join(ROOT, "tests", "fixtures")


def fixture_path(name):
    return os.path.join(fixtures_dir(), name)


def default_rank(key):
    """The rank a generated page shows for `key` when the scenario sets none (FNV-1a based)."""
    h = 2166136261
    for b in key.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return 1 + h % 2000000


def default_title(key):
    return "Fixture Book " + key


def default_categories(rank):
    """Category ranks a generated page lists when the scenario sets no `categories`."""
    return [(1 + rank % 97, "Programming Languages"), (1 + rank % 997, "Software Design")]


def isbn10s(n, start=100000000):
    """n distinct valid ISBN-10s (check digits computed), deterministic for a given start."""
    out = []
    for k in range(n):
        nine = "%09d" % (start + k * 7919)
        s = sum(int(c) * (10 - i) for i, c in enumerate(nine))
        c = (11 - s % 11) % 11
        out.append(nine + ("X" if c == 10 else str(c)))
    return out


def format_rank(n):
    """1234567 -> '1,234,567' (amazon.com style)."""
    return "{:,}".format(n)


class FixtureStoreError(Exception):
    pass


class FixtureStore:
    """A running fixture store on 127.0.0.1:<ephemeral port>. Use as a context manager."""

    def __init__(self, binary=None, fixtures=None, start_timeout=10.0):
        binary = binary or fixture_store_bin()
        fixtures = fixtures or fixtures_dir()
        if not os.access(binary, os.X_OK):
            raise FixtureStoreError("fixture store binary not found: %s (set FIXTURE_STORE_BIN)" % binary)
        # stdin is a pipe we never write: when this process dies the store sees EOF and exits.
        self.proc = subprocess.Popen([binary, "--port", "0", "--fixtures", fixtures],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.port = None
        deadline = time.monotonic() + start_timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.close()
                raise FixtureStoreError("fixture store did not print its PORT line")
            ch = os.read(self.proc.stdout.fileno(), 1)
            if not ch:
                self.close()
                raise FixtureStoreError("fixture store exited before listening")
            line += ch
        parts = line.decode().split()
        if len(parts) != 2 or parts[0] != "PORT":
            self.close()
            raise FixtureStoreError("unexpected first line from fixture store: %r" % line)
        self.port = int(parts[1])
        self.host = "127.0.0.1"

    # -- addresses -------------------------------------------------------------------------
    def base(self, host="127.0.0.1"):
        """'http://HOST:PORT'. host='localhost' gives a second, separately counted host."""
        return "http://%s:%d" % (host, self.port)

    def url(self, template_path="/dp/{isbn10}", host="127.0.0.1"):
        """A source URL template on this store, e.g. url('/dp/{isbn13}')."""
        if not template_path.startswith("/"):
            template_path = "/" + template_path
        return self.base(host) + template_path

    # -- control ---------------------------------------------------------------------------
    def _call(self, method, path, body=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise FixtureStoreError("%s %s -> %d %s" % (method, path, resp.status, data[:300]))
        return json.loads(data)

    def config(self, default=None, books=None):
        """Replaces the whole configuration and zeroes the counters."""
        cfg = {}
        if default is not None:
            cfg["default"] = default
        if books is not None:
            cfg["books"] = books
        return self._call("POST", "/_config", json.dumps(cfg).encode())

    def stats(self):
        """{"requests", "in_flight", "max_in_flight", "max_in_flight_by_host", "hits", "arrivals_ms"}"""
        return self._call("GET", "/_stats")

    def reset(self):
        """Zeroes the counters (hits too, so fail_first counts again); keeps the config."""
        return self._call("POST", "/_reset", b"")

    def get(self, path, headers=None, host=None, timeout=30):
        """One raw GET (no redirects followed, no decompression): (status, headers dict, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if host:
                hdrs["Host"] = "%s:%d" % (host, self.port)
            conn.request("GET", path, headers=hdrs)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()

    # -- lifetime --------------------------------------------------------------------------
    def close(self):
        proc = getattr(self, "proc", None)
        if proc is None:
            return
        self.proc = None
        try:
            proc.stdin.close()
        except OSError:
            pass
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        self.close()
