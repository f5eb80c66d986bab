#!/usr/bin/env python3
"""bench.py - bookrank's benchmarks (run through tests/bench/run.sh, i.e. `make bench`).

    python3 tests/bench/bench.py --build BUILD --out OUT [--runs R] [SECTION...]

Sections (default: all, in this order): refresh extract api store memory.
Every comparison is measured side by side in the same run, alternating which side goes first,
and reported as the median of R runs (default 3; the machines are shared and noisy). Prints a
table at the end and writes it to OUT/results.md, with every raw figure in OUT/results.json.

Everything listens on 127.0.0.1 and every load is bounded in count and time. Servers started
here get stdin as a pipe (the fixture store and bare_mhd exit at EOF) and are stopped in
`finally` blocks, so an interrupted run leaves nothing behind.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

from fixture_lib import FixtureStore, fixtures_dir  # noqa: E402

CORES = os.cpu_count() or 1
LATENCY_S = 0.1          # fixture store delay per page
PAGE_BYTES = 200000      # fixture store page size
RESULTS = {}             # section -> figures, written to results.json
ROWS = []                # (section, measure, value, target, verdict) for the table


def log(msg):
    print(msg, flush=True)


def median(values):
    return statistics.median(values) if values else float("nan")


def row(section, measure, value, target="", ok=None):
    verdict = "" if ok is None else ("met" if ok else "MISSED")
    ROWS.append((section, measure, value, target, verdict))


# ---- helpers ---------------------------------------------------------------------------------

def isbn10s(n, start=100000):
    """n distinct valid 978-convertible ISBN-10s."""
    out = []
    body = start
    while len(out) < n:
        digits = "0%08d" % body
        body += 1
        total = sum((10 - i) * int(c) for i, c in enumerate(digits))
        check = (11 - total % 11) % 11
        out.append(digits + ("X" if check == 10 else str(check)))
    return out


def measured(argv, stdout=subprocess.DEVNULL, env=None, timeout=300):
    """Runs argv; (wall s, user s, sys s, peak RSS MB, exit status) from wait4's rusage."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=env)
    deadline = start + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, ru = os.wait4(proc.pid, 0)
            raise RuntimeError("timed out: %s" % " ".join(argv[:3]))
        time.sleep(0.005)
    wall = time.monotonic() - start
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime,
            "rss_mb": ru.ru_maxrss / 1024.0, "csw": ru.ru_nvcsw + ru.ru_nivcsw,
            "status": proc.returncode, "stderr": err[-2000:]}


def remove_db(path):
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def http_post(port, path, body=b"", timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_listening(port, proc, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on port %d" % port)


def stop(proc, timeout=15):
    if proc is None or proc.poll() is not None:
        return
    try:
        if proc.stdin:
            proc.stdin.close()
    except OSError:
        pass
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_kb(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Serve:
    """`bookrank serve` on an ephemeral loopback port; stderr (the log) goes to a file."""

    def __init__(self, bookrank, db, extra=(), log_path=None):
        self.log_path = log_path or db + ".serve.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([bookrank, "serve", "--listen", "127.0.0.1:0", "--db", db]
                                     + list(extra), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        self.port = None
        deadline = time.monotonic() + 20
        while self.port is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("serve did not start: " + open(self.log_path).read()[-500:])
            with open(self.log_path, "rb") as f:
                m = re.search(rb"listening on http://[^\s:]+:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.02)

    def close(self):
        stop(self.proc)
        self.log.close()


class Piped:
    """A helper server that prints "PORT n" and exits when its stdin closes."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != b"PORT":
            stop(self.proc)
            raise RuntimeError("%s did not print its port" % argv[0])
        self.port = int(line[1])

    def close(self):
        stop(self.proc)
        self.proc.stdout.close()


class Nginx:
    """nginx in the foreground with a minimal config of our own, serving root_dir."""

    def __init__(self, prefix, root_dir):
        self.port = free_port()
        conf = os.path.join(prefix, "nginx.conf")
        user = "user root root;\n" if os.geteuid() == 0 else ""
        with open(conf, "w") as f:
            f.write("""%sdaemon off;
worker_processes %d;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    types { }
    default_type application/json;
    client_body_temp_path %s/tmp;
    proxy_temp_path %s/tmp;
    fastcgi_temp_path %s/tmp;
    uwsgi_temp_path %s/tmp;
    scgi_temp_path %s/tmp;
    server {
        listen 127.0.0.1:%d;
        root %s;
    }
}
""" % (user, CORES, prefix, prefix, prefix, prefix, prefix, prefix, prefix, self.port, root_dir))
        os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
        self.proc = subprocess.Popen(["nginx", "-p", prefix, "-c", conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_listening(self.port, self.proc)

    def close(self):
        stop(self.proc)   # SIGTERM = fast shutdown of master and workers


def wrk(url, threads=2, connections=64, seconds=5, timeout_s=10):
    """Runs wrk; {"rps", "p50_ms", "p90_ms", "p99_ms", "errors", "requests"}."""
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds,
                          "--timeout", "%ds" % timeout_s, "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 60)
    text = out.stdout

    def to_ms(v, unit):
        return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}[unit]

    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
           "requests": int(re.search(r"(\d+) requests in", text).group(1)), "errors": 0}
    for pct in ("50", "90", "99"):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+([\d.]+)(us|ms|s|m)\s*$" % pct, text, re.M)
        res["p%s_ms" % pct] = to_ms(m.group(1), m.group(2)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        res["errors"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        res["errors"] += sum(int(x) for x in m.groups())
    return res


# ---- 1. refresh throughput -------------------------------------------------------------------

def count_ok_bookrank(db):
    with sqlite3.connect(db) as c:
        return c.execute("SELECT count(*) FROM observations WHERE status = 'ok'").fetchone()[0]


def count_ok_baseline(db):
    with sqlite3.connect(db) as c:
        return c.execute("SELECT count(*) FROM observations WHERE rank IS NOT NULL").fetchone()[0]


def refresh_case(a, store, tmp, n, workers, runs):
    isbns = isbn10s(n)
    ideal = n * LATENCY_S / workers
    url = store.url("/dp/{isbn10}")
    ours_argv = [a.bookrank, "refresh", "--source", "amazon.com=" + url, "--workers", str(workers),
                 "--per-host", str(workers), "--rate", "0", "--retries", "0"]
    base_argv = [sys.executable, os.path.join(HERE, "baseline.py"), "--url", url,
                 "--workers", str(workers)]
    results = {"ours": [], "baseline": []}
    for r in range(runs):
        order = ["ours", "baseline"] if r % 2 == 0 else ["baseline", "ours"]
        for side in order:
            db = os.path.join(tmp, "%s.db" % side)
            remove_db(db)
            store.reset()
            if side == "ours":
                m = measured(ours_argv[:2] + ["--db", db] + ours_argv[2:] + isbns)
                ok = count_ok_bookrank(db)
            else:
                m = measured(base_argv + ["--db", db] + isbns)
                ok = count_ok_baseline(db)
            st = store.stats()
            m["ok"] = ok
            m["max_in_flight"] = st["max_in_flight"]
            if m["status"] != 0 or ok != n:
                raise RuntimeError("%s refresh: status %s, %d of %d ok: %s"
                                   % (side, m["status"], ok, n, m["stderr"]))
            del m["stderr"]
            results[side].append(m)
            log("  refresh N=%d workers=%d %-8s wall %.2fs (ideal %.2fs) user %.2fs sys %.2fs "
                "rss %.1f MB in-flight %d csw %d" % (n, workers, side, m["wall"], ideal, m["user"],
                                                     m["sys"], m["rss_mb"], m["max_in_flight"],
                                                     m["csw"]))
    remove_db(os.path.join(tmp, "ours.db"))
    remove_db(os.path.join(tmp, "baseline.db"))

    def med(side, key):
        return median([x[key] for x in results[side]])

    # Ratios are computed per run (the two sides of one run saw the same machine state).
    cpu_ratio = median([(o["user"] + o["sys"]) / (b["user"] + b["sys"])
                        for o, b in zip(results["ours"], results["baseline"])])
    rss_ratio = median([o["rss_mb"] / b["rss_mb"]
                        for o, b in zip(results["ours"], results["baseline"])])
    wall_ratio = med("ours", "wall") / ideal
    base_wall_ratio = med("baseline", "wall") / ideal
    tag = "N=%d, %d workers" % (n, workers)
    row("refresh", "%s: wall (ideal %.2f s)" % (tag, ideal),
        "%.2f s = %.2fx ideal (baseline %.2f s = %.2fx)" % (med("ours", "wall"), wall_ratio,
                                                             med("baseline", "wall"),
                                                             base_wall_ratio),
        "<= 1.10x ideal", wall_ratio <= 1.10)
    row("refresh", "%s: CPU user / sys" % tag,
        "%.2f / %.2f s (baseline %.2f / %.2f s), ratio %.2f"
        % (med("ours", "user"), med("ours", "sys"), med("baseline", "user"),
           med("baseline", "sys"), cpu_ratio),
        "<= 0.70x baseline", cpu_ratio <= 0.70)
    row("refresh", "%s: peak RSS" % tag,
        "%.1f MB (baseline %.1f MB), ratio %.2f" % (med("ours", "rss_mb"),
                                                    med("baseline", "rss_mb"), rss_ratio),
        "<= baseline", rss_ratio <= 1.0)
    return {"n": n, "workers": workers, "ideal_s": ideal, "runs": results,
            "wall_ratio": wall_ratio, "cpu_ratio": cpu_ratio, "rss_ratio": rss_ratio}


def section_refresh(a, tmp):
    out = []
    with FixtureStore(binary=a.fixture_store) as store:
        store.config(default={"delay_ms": int(LATENCY_S * 1000), "size": PAGE_BYTES})
        out.append(refresh_case(a, store, tmp, 1500, 64, a.runs))
        out.append(refresh_case(a, store, tmp, 5000, 256, a.runs))
    RESULTS["refresh"] = out


# ---- 2. extraction ---------------------------------------------------------------------------

def section_extract(a, tmp):
    out = subprocess.run([os.path.join(a.out, "extract_bench"), "--rounds", "5", "--seconds", "1",
                          fixtures_dir()], capture_output=True, text=True, check=True, timeout=120)
    res = json.loads(out.stdout)
    RESULTS["extract"] = res
    log("  extract %.0f MB/s per core (rounds %s)" % (res["mb_s"], res["rounds_mb_s"]))
    row("extract", "scr_extract over %d fixture pages (%.1f MB), one core"
        % (len(res["pages"]), res["total_bytes"] / 1e6),
        "%.0f MB/s" % res["mb_s"], ">= 1000 MB/s", res["mb_s"] >= 1000)
    for p in res["pages"]:
        log("    %-60s %8d B  %-8s %7.1f us" % (p["file"], p["bytes"], p["status"], p["us"]))
    pages = [p for p in res["pages"] if p["bytes"] > 100000]
    row("extract", "time per page (%d real pages, 0.5-1.5 MB)" % len(pages),
        "median %.0f us, max %.0f us" % (median([p["us"] for p in pages]),
                                         max(p["us"] for p in pages)))


# ---- 3. read API -----------------------------------------------------------------------------

def seed(a, db, n):
    remove_db(db)
    out = subprocess.run([os.path.join(a.out, "store_bench"), "seed", db, str(n), "2"],
                         capture_output=True, text=True, check=True, timeout=300)
    return out.stdout.strip()


def section_api(a, tmp):
    secs = a.wrk_seconds
    db2k = os.path.join(tmp, "api2k.db")
    isbn13 = seed(a, db2k, 2000)
    servers = []
    res = {"book": {}, "list": {}}
    try:
        warn = Serve(a.bookrank, db2k, ["--log-level", "warn"], os.path.join(tmp, "warn.log"))
        servers.append(warn)
        info = Serve(a.bookrank, db2k, [], os.path.join(tmp, "info.log"))
        servers.append(info)
        path = "/api/books/%s" % isbn13
        status, body = http_get(warn.port, path)
        if status != 200:
            raise RuntimeError("GET %s -> %d" % (path, status))
        body_file = os.path.join(tmp, "book.json")
        with open(body_file, "wb") as f:
            f.write(body)
        www = os.path.join(tmp, "www")
        os.makedirs(os.path.join(www, "api", "books"), exist_ok=True)
        shutil.copy(body_file, os.path.join(www, "api", "books", isbn13))
        for d in (tmp, www, os.path.join(www, "api"), os.path.join(www, "api", "books")):
            os.chmod(d, 0o755)
        os.chmod(os.path.join(www, "api", "books", isbn13), 0o644)
        bare = Piped([os.path.join(a.out, "bare_mhd"), body_file])
        servers.append(bare)
        nginx_dir = os.path.join(tmp, "nginx")
        os.makedirs(nginx_dir, exist_ok=True)
        nginx = Nginx(nginx_dir, www)
        servers.append(nginx)
        targets = [("bookrank", warn.port), ("bookrank-info-log", info.port),
                   ("bare-mhd", bare.port), ("nginx", nginx.port)]
        for name, port in targets:   # warm-up, and a check that every target answers the same
            st, got = http_get(port, path)
            if st != 200 or got != body:
                raise RuntimeError("%s answers %d with different bytes" % (name, st))
            wrk("http://127.0.0.1:%d%s" % (port, path), seconds=1)
        runs = {name: [] for name, _ in targets}
        for r in range(a.runs):
            k = r % len(targets)
            for name, port in targets[k:] + targets[:k]:
                w = wrk("http://127.0.0.1:%d%s" % (port, path), seconds=secs)
                runs[name].append(w)
                log("  GET /api/books/{isbn} %-18s %8.0f req/s  p50 %.2f ms  p99 %.2f ms  "
                    "errors %d" % (name, w["rps"], w["p50_ms"], w["p99_ms"], w["errors"]))
        res["book"] = {"bytes": len(body), "runs": runs}

        def med(name, key):
            return median([x[key] for x in runs[name]])

        def ratio(name, other):
            return median([x["rps"] / y["rps"] for x, y in zip(runs[name], runs[other])])

        r_bare = ratio("bookrank", "bare-mhd")
        res["book"]["ratio_bare"] = r_bare
        res["book"]["ratio_nginx"] = ratio("bookrank", "nginx")
        res["book"]["ratio_info_bare"] = ratio("bookrank-info-log", "bare-mhd")
        row("api", "GET /api/books/{isbn} (2,000 books, %d B), --log-level warn" % len(body),
            "%.0f req/s, p99 %.2f ms" % (med("bookrank", "rps"), med("bookrank", "p99_ms")))
        row("api", "  vs bare libmicrohttpd daemon",
            "%.0f req/s, p99 %.2f ms; ratio %.2f" % (med("bare-mhd", "rps"),
                                                    med("bare-mhd", "p99_ms"), r_bare),
            ">= 0.85x bare", r_bare >= 0.85)
        row("api", "  vs nginx static file",
            "%.0f req/s, p99 %.2f ms; ratio %.2f" % (med("nginx", "rps"), med("nginx", "p99_ms"),
                                                    res["book"]["ratio_nginx"]))
        row("api", "  default log level (info, access line per request)",
            "%.0f req/s, p99 %.2f ms; ratio to bare %.2f"
            % (med("bookrank-info-log", "rps"), med("bookrank-info-log", "p99_ms"),
               res["book"]["ratio_info_bare"]))
        res["serve_rss_after_load_kb"] = rss_kb(warn.proc.pid)
        res["serve_hwm_kb"] = rss_kb(warn.proc.pid, "VmHWM")

        # GET /api/books: one client, so the latency is the request's own cost.
        for n, server in ((2000, warn), (20000, None)):
            own = None
            if server is None:
                db20k = os.path.join(tmp, "api20k.db")
                seed(a, db20k, n)
                own = Serve(a.bookrank, db20k, ["--log-level", "warn"],
                            os.path.join(tmp, "warn20k.log"))
                servers.append(own)
                server = own
            st, got = http_get(server.port, "/api/books")
            if st != 200:
                raise RuntimeError("GET /api/books -> %d" % st)
            list_runs = [wrk("http://127.0.0.1:%d/api/books" % server.port, threads=1,
                             connections=1, seconds=secs, timeout_s=30) for _ in range(a.runs)]
            p50 = median([w["p50_ms"] for w in list_runs])
            p99 = median([w["p99_ms"] for w in list_runs])
            res["list"][str(n)] = {"bytes": len(got), "runs": list_runs, "p50_ms": p50}
            log("  GET /api/books (%d books, %.1f MB) p50 %.1f ms p99 %.1f ms"
                % (n, len(got) / 1e6, p50, p99))
            row("api", "GET /api/books, %d books (%.1f MB), 1 client" % (n, len(got) / 1e6),
                "p50 %.1f ms, p99 %.1f ms, %.1f req/s"
                % (p50, p99, median([w["rps"] for w in list_runs])),
                "p50 <= 50 ms" if n == 2000 else "", (p50 <= 50) if n == 2000 else None)
            if own:
                res["serve_20k_hwm_kb"] = rss_kb(own.proc.pid, "VmHWM")
        l2, l20 = res["list"]["2000"]["p50_ms"], res["list"]["20000"]["p50_ms"]
        row("api", "GET /api/books growth 2,000 -> 20,000 books", "x%.1f p50" % (l20 / l2))
    finally:
        for s in reversed(servers):
            s.close()
    RESULTS["api"] = res


# ---- 4. store --------------------------------------------------------------------------------

def section_store(a, tmp):
    tool = os.path.join(a.out, "store_bench")
    res = {"append": [], "append_100": None, "history": None}
    for _ in range(a.runs):
        out = subprocess.run([tool, "append", tmp, "--batch", "1000", "--total", "200000"],
                             capture_output=True, text=True, check=True, timeout=300)
        res["append"].append(json.loads(out.stdout))
        log("  append batch 1000: %.0f obs/s" % res["append"][-1]["obs_per_s"])
    out = subprocess.run([tool, "append", tmp, "--batch", "100", "--total", "50000"],
                         capture_output=True, text=True, check=True, timeout=300)
    res["append_100"] = json.loads(out.stdout)
    out = subprocess.run([tool, "history", tmp, "--obs", "10000", "--queries", "21"],
                         capture_output=True, text=True, check=True, timeout=300)
    res["history"] = json.loads(out.stdout)
    for name in ("append.db", "history.db"):
        remove_db(os.path.join(tmp, name))
    rate = median([x["obs_per_s"] for x in res["append"]])
    log("  append batch 100: %.0f obs/s; history %s" % (res["append_100"]["obs_per_s"],
                                                         res["history"]))
    row("store", "append, batches of 1,000 (200k rows over 1,000 books)", "%.0f obs/s" % rate,
        ">= 50,000/s", rate >= 50000)
    row("store", "append, batches of 100", "%.0f obs/s" % res["append_100"]["obs_per_s"])
    h = res["history"]
    row("store", "history of a book with 10,000 observations",
        "newest 500: %.1f ms; all 10,000: %.1f ms; book + latest: %.3f ms"
        % (h["history_500_ms"], h["history_all_ms"], h["book_get_ms"]))
    RESULTS["store"] = res


# ---- 5. memory -------------------------------------------------------------------------------

def section_memory(a, tmp):
    res = {}
    db = os.path.join(tmp, "idle.db")
    remove_db(db)
    s = Serve(a.bookrank, db, ["--log-level", "warn"], os.path.join(tmp, "idle.log"))
    try:
        time.sleep(1.0)
        res["idle_rss_kb"] = rss_kb(s.proc.pid)
        http_get(s.port, "/api/books")
        http_get(s.port, "/")
        time.sleep(0.2)
        res["idle_after_requests_rss_kb"] = rss_kb(s.proc.pid)
    finally:
        s.close()
    row("memory", "idle serve (empty store; after a first request)",
        "%.1f MB; %.1f MB" % (res["idle_rss_kb"] / 1024, res["idle_after_requests_rss_kb"] / 1024))

    n, workers, size = 1024, 256, 1000000
    isbns = isbn10s(n)
    with FixtureStore(binary=a.fixture_store) as store:
        store.config(default={"delay_ms": int(LATENCY_S * 1000), "size": size})
        url = store.url("/dp/{isbn10}")
        opts = ["--source", "amazon.com=" + url, "--workers", str(workers),
                "--per-host", str(workers), "--rate", "0", "--retries", "0"]
        # CLI refresh: peak RSS from rusage.
        db = os.path.join(tmp, "mem-cli.db")
        remove_db(db)
        m = measured([a.bookrank, "refresh", "--db", db] + opts + isbns)
        ok = count_ok_bookrank(db)
        if m["status"] != 0 or ok != n:
            raise RuntimeError("1 MB refresh: status %s, %d ok: %s" % (m["status"], ok,
                                                                       m["stderr"]))
        res["cli_refresh_1mb"] = {k: m[k] for k in ("wall", "user", "sys", "rss_mb")}
        # serve: an all-books refresh through the API, peak RSS from VmHWM.
        db = os.path.join(tmp, "mem-serve.db")
        remove_db(db)
        subprocess.run([a.bookrank, "add", "--db", db] + isbns, check=True,
                       stdout=subprocess.DEVNULL, timeout=60)
        s = Serve(a.bookrank, db, ["--log-level", "warn"] + opts, os.path.join(tmp, "mem.log"))
        try:
            before = rss_kb(s.proc.pid)
            st, body = http_post(s.port, "/api/refresh")  # empty body: every book
            if st != 202:
                raise RuntimeError("POST /api/refresh -> %d %s" % (st, body[:200]))
            job = json.loads(body)["job"]
            deadline = time.monotonic() + 120
            peak_sampled = 0
            while time.monotonic() < deadline:
                peak_sampled = max(peak_sampled, rss_kb(s.proc.pid))
                st, body = http_get(s.port, "/api/jobs/%s" % job["id"])
                if json.loads(body)["job"]["state"] in ("done", "cancelled"):
                    break
                time.sleep(0.05)
            res["serve_refresh_1mb"] = {"before_kb": before, "hwm_kb": rss_kb(s.proc.pid, "VmHWM"),
                                        "after_kb": rss_kb(s.proc.pid)}
        finally:
            s.close()
    for name in ("idle.db", "mem-cli.db", "mem-serve.db"):
        remove_db(os.path.join(tmp, name))
    c = res["cli_refresh_1mb"]
    row("memory", "refresh of %d books, 1 MB pages, 256 workers (CLI)" % n,
        "peak RSS %.1f MB (wall %.2f s)" % (c["rss_mb"], c["wall"]))
    sv = res["serve_refresh_1mb"]
    row("memory", "same refresh through serve (POST /api/refresh)",
        "peak RSS %.1f MB (before %.1f, after %.1f)"
        % (sv["hwm_kb"] / 1024, sv["before_kb"] / 1024, sv["after_kb"] / 1024))
    RESULTS["memory"] = res


# ---- main ------------------------------------------------------------------------------------

SECTIONS = {"refresh": section_refresh, "extract": section_extract, "api": section_api,
            "store": section_store, "memory": section_memory}


def table():
    lines = ["| part | measure | result (median of runs) | target | |", "|---|---|---|---|---|"]
    for r in ROWS:
        lines.append("| %s | %s | %s | %s | %s |" % r)
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default=None)
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    ap.add_argument("--wrk-seconds", type=int, default=int(os.environ.get("BENCH_WRK_SECONDS", "5")))
    ap.add_argument("sections", nargs="*", default=list(SECTIONS))
    a = ap.parse_args()
    a.build = os.path.abspath(os.path.join(ROOT, a.build))
    a.out = os.path.abspath(a.out or os.path.join(a.build, "bench"))
    a.bookrank = os.path.join(a.build, "bookrank")
    a.fixture_store = os.path.join(a.build, "tests", "fixture_store")
    for s in a.sections:
        if s not in SECTIONS:
            ap.error("unknown section %r (have: %s)" % (s, " ".join(SECTIONS)))
    started = time.monotonic()
    log("bookrank benchmarks: %d cores, %d runs per comparison, load average %s"
        % (CORES, a.runs, " ".join("%.2f" % x for x in os.getloadavg())))
    tmp = tempfile.mkdtemp(prefix="bookrank-bench-")
    try:
        for s in a.sections:
            t = time.monotonic()
            log("== %s" % s)
            SECTIONS[s](a, tmp)
            log("   (%.0f s)" % (time.monotonic() - t))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - started
    text = table()
    note = ("%s, %d cores, load average at the end %s, %d runs, %.0f s"
            % (time.strftime("%Y-%m-%d %H:%M"), CORES,
               " ".join("%.2f" % x for x in os.getloadavg()), a.runs, elapsed))
    log("\n" + text + "\n\n" + note)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(text + "\n\n" + note + "\n")
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"note": note, "results": RESULTS, "rows": ROWS}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
