"""bookrank behind a real nginx, as the README's block sets it up, and the Host rule that keeps DNS
rebinding out: a page on another site that resolves its own name to our address gets 421 on
every path; --public-url names the address users reach the service at."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import time

from service_lib import T, Service, tmpdir

t = T()
d = tmpdir()
db = os.path.join(d, "proxy.db")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ask(port, method, path, host, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = {"Host": host}
    h.update(headers or {})
    if body is not None:
        body = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    return r.status, doc


# ---- the Host rule, straight to the service ---------------------------------------------------
with Service(db) as svc:
    for host in ("evil.example", "evil.example:%d" % svc.port, "127.0.0.1.evil.example"):
        for path in ("/api/books", "/", "/healthz", "/api/nope"):
            st, doc = ask(svc.port, "GET", path, host)
            t.check(st == 421 and doc and doc["error"]["code"] == "misdirected_request"
                    and "--public-url" in doc["error"]["message"],
                    "Host %s, GET %s -> 421 naming --public-url" % (host, path), (st, doc))
    st, doc = ask(svc.port, "POST", "/api/books", "evil.example", {"isbns": ["0132269937"]})
    t.eq(st, 421, "a change under a rebound name -> 421")
    st, doc = ask(svc.port, "GET", "/api/books", "127.0.0.1")
    t.check(st == 200 and doc == [], "nothing was added under the rebound name", doc)
    for host in ("127.0.0.1:%d" % svc.port, "localhost:%d" % svc.port, "app.localhost", "[::1]:1"):
        st, _ = ask(svc.port, "GET", "/api/books", host)
        t.eq(st, 200, "Host %s is answered" % host)
    # framing: two Hosts, no Host in HTTP/1.1, two Transfer-Encoding headers
    for raw, what in [
        (b"GET /api/books HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n", "two Host headers"),
        (b"GET /api/books HTTP/1.1\r\n\r\n", "HTTP/1.1 without Host"),
        (b"POST /api/books HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
         b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "two Transfer-Encoding headers"),
    ]:
        st, h, body = svc.raw(raw)
        t.eq(st, 400, "%s -> 400" % what)
    st, h, body = svc.raw(b"GET /api/books HTTP/1.0\r\n\r\n")
    t.eq(st, 200, "HTTP/1.0 without Host is answered")

# ---- behind nginx ---------------------------------------------------------------------------------
nginx = shutil.which("nginx") or "/usr/sbin/nginx"
if not os.path.exists(nginx):
    t.check(False, "nginx is installed (.ci/deps installs nginx-light)")
    t.done()


def start_nginx(upstream, host_header):
    port = free_port()
    prefix = os.path.join(d, "nginx-%d" % port)
    os.makedirs(os.path.join(prefix, "logs"))
    # The README's block, on a plain port instead of 443 (TLS is nginx's business, not ours).
    conf = """
daemon off; master_process off; worker_processes 1;
error_log %(p)s/logs/error.log; pid %(p)s/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %(p)s/body; proxy_temp_path %(p)s/proxy; fastcgi_temp_path %(p)s/fcgi;
  uwsgi_temp_path %(p)s/uwsgi; scgi_temp_path %(p)s/scgi;
  server {
    listen 127.0.0.1:%(port)d;
    server_name books.example.org;
    client_max_body_size 1m;
    location / {
      proxy_pass http://127.0.0.1:%(up)d;
      %(host)s
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header Authorization $http_authorization;
    }
  }
}
""" % {"p": prefix, "port": port, "up": upstream, "host": host_header}
    path = os.path.join(prefix, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    proc = subprocess.Popen([nginx, "-p", prefix, "-c", path], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nginx did not start: " + proc.stderr.read().decode("utf-8", "replace"))


ORIGIN = {"Origin": "https://books.example.org"}
for header, what in [("proxy_set_header Host $host;", "Host passed on"),
                     ("", "nginx's default Host (the upstream address)")]:
    with Service(db, ["--public-url", "https://books.example.org"]) as svc:
        proc, port = start_nginx(svc.port, header)
        try:
            st, doc = ask(port, "GET", "/api/books", "books.example.org")
            t.eq(st, 200, "%s: a read through nginx" % what)
            st, doc = ask(port, "POST", "/api/books", "books.example.org", {"isbns": ["0132269937"]}, ORIGIN)
            t.check(st in (200, 201), "%s: a change from the dashboard's origin through nginx" % what, (st, doc))
            st, doc = ask(port, "DELETE", "/api/books/0132269937", "books.example.org", None, ORIGIN)
            t.eq(st, 204, "%s: a delete from the dashboard through nginx" % what)
            st, doc = ask(port, "POST", "/api/books", "books.example.org", {"isbns": ["0132269937"]},
                          {"Origin": "https://evil.example"})
            t.eq(st, 403, "%s: a change from another origin through nginx is refused" % what)
        finally:
            proc.terminate()
            proc.wait(10)

# Without --public-url, the proxied name is not answered (the message says what to add).
with Service(db) as svc:
    proc, port = start_nginx(svc.port, "proxy_set_header Host $host;")
    try:
        st, doc = ask(port, "GET", "/api/books", "books.example.org")
        t.check(st == 421 and "--public-url" in doc["error"]["message"],
                "without --public-url the proxied name gets 421 saying what to add", (st, doc))
    finally:
        proc.terminate()
        proc.wait(10)
t.done()
