"""A store's redirects are followed only within the source's own site and port: a redirect to
another port (another service on the same machine), to another host name, or to a scheme other
than http(s) is refused and recorded as an `error` naming it, and the target never sees a
request. A redirect within the site is followed. (Loopback is allowed here only because the
source template itself points at loopback.)"""
import http.server
import json
import os
import threading

from service_lib import T, run_cli, tmpdir

t = T()
d = tmpdir()
PAGE = (b"<html><head><title>Redirected Book</title></head><body><h1 id='title'>Redirected Book</h1>"
        b"<ul><li id='SalesRank'><b>Best Sellers Rank:</b> #4,321 in Books</li></ul></body></html>")


def serve(handler_fn):
    hits = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            hits.append(self.path)
            status, headers, body = handler_fn(self.path)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, hits


other, other_hits = serve(lambda p: (200, {"Content-Type": "text/html"}, PAGE))
oport = other.server_address[1]
targets = {
    "/dp/0132269937": "http://127.0.0.1:%d/dp/0132269937" % oport,        # another port
    "/dp/0131103628": "http://localhost:%d/dp/0131103628",                 # another host name (port filled below)
    "/dp/080442957X": "ftp://127.0.0.1/dp/080442957X",                     # another scheme
    "/dp/0306406152": "/page/0306406152",                                  # same site: followed
}


def store_answer(path):
    if path.startswith("/page/"):
        return 200, {"Content-Type": "text/html"}, PAGE
    loc = targets.get(path)
    if loc is None:
        return 404, {}, b"no"
    if "%d" in loc:
        loc = loc % store.server_address[1]
    return 302, {"Location": loc}, b""


store, store_hits = serve(store_answer)
src = ["--source", "amazon.com=http://127.0.0.1:%d/dp/{asin}" % store.server_address[1],
       "--rate", "0", "--retries", "0"]
db = os.path.join(d, "redir.db")
rc, out, err = run_cli(["refresh", "--db", db] + src + ["0132269937", "0131103628", "080442957X", "0306406152"])
t.check(rc == 1, "refused redirects are errors: exit 1", out + err)


def latest(isbn):
    rc, out, _ = run_cli(["history", "--db", db, isbn, "--json"])
    obs = json.loads(out)["observations"] if rc == 0 else []
    return obs[0] if obs else {}


o = latest("0132269937")
t.check(o.get("status") == "error" and "another port" in (o.get("error") or ""),
        "a redirect to another port is refused, naming it", o)
o = latest("0131103628")
t.check(o.get("status") == "error" and "another site" in (o.get("error") or ""),
        "a redirect to another host name is refused, naming it", o)
o = latest("080442957X")
t.check(o.get("status") == "error" and "not http or https" in (o.get("error") or ""),
        "a redirect to another scheme is refused, naming it", o)
t.eq(other_hits, [], "the other service never got a request")
o = latest("0306406152")
t.check(o.get("status") == "ok" and o.get("rank") == 4321, "a redirect within the site is followed", o)
t.check("/page/0306406152" in store_hits, "the redirect target was fetched", store_hits)
other.shutdown()
store.shutdown()
t.done()
