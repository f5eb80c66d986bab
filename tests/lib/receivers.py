"""receivers - real loopback receivers for bookrank's alert integration tests (python3 stdlib only).

    from receivers import WebhookReceiver, SmtpSink

    with WebhookReceiver() as hook:                     # http://127.0.0.1:PORT, one thread per connection
        ... configure bookrank with hook.url("/hook") ...
        reqs = hook.wait_for(1, timeout=10)             # never raises: returns what arrived (check len)
        t.check(len(reqs) == 1 and hook.verify_signature(reqs[0], "secret"), "signed webhook")
        hook.fail_next(2, status=503)                   # the next 2 requests are answered 503
        hook.set_down(True)                             # connections refused, port kept reserved
        hook.set_down(False)                            # accepting again on the SAME port

    with SmtpSink(starttls=True, auth=("user", "password"), require_tls_for_auth=True) as smtp:
        ... configure bookrank with smtp.url(), trust smtp.ca_file ...
        msgs = smtp.wait_for(1, timeout=10)
        m = msgs[0]                                     # m.subject (decoded), m.text, m.msg["To"], m.tls,
                                                        # m.authenticated_as, m.mail_from, m.rcpt_to, m.data

Both receivers listen on 127.0.0.1 with an ephemeral port, run their accept loop in a thread and
each connection in its own thread, put a timeout on every socket (idle_timeout, 10 s unless told),
survive clients that disconnect at any point, and on exit (or set_down(True)) close the listening
socket, cut every open connection and join every thread they started. Python exceptions inside a
receiver (bugs, not client behaviour) are collected in `.errors`; a test can check it is empty.
Threads that could not be joined are counted in `.leaked_threads`.

Down/up: set_down(True) closes the listener and immediately binds a plain (non-listening) socket to
the same port, so connects get ECONNREFUSED and no other program can take the port; set_down(False)
listens on that socket again. Each switch takes a few tens of milliseconds (the accept loop polls
every 20 ms); both return only when the switch is complete, so no waiting is needed afterwards.

TLS: SmtpSink(starttls=True / implicit_tls=True) and WebhookReceiver(tls=True) make a throwaway
self-signed certificate (CN and subjectAltName 127.0.0.1 and localhost) with the `openssl` command in
a temporary directory (removed on exit); `.ca_file` is its path, for curl --cacert / CURLOPT_CAINFO.
"""
import base64
import binascii
import email
import email.policy
import hashlib
import hmac
import http.server
import json as _json
import os
import re
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

__all__ = ["WebhookReceiver", "SmtpSink", "HttpRequest", "SmtpMessage", "SmtpSession",
           "make_self_signed_cert", "signature_header"]

_ACCEPT_POLL_S = 0.02  # how often an accept loop notices a shutdown request
_JOIN_TIMEOUT_S = 5.0  # how long closing waits for the connection threads of one generation


# -- certificate ------------------------------------------------------------------------------------
def make_self_signed_cert(directory):
    """Writes cert.pem and key.pem into `directory` with `openssl req -x509`; returns their paths."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-days", "2", "-keyout", key, "-out", cert],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    if p.returncode != 0 or not os.path.exists(cert):
        raise RuntimeError("openssl req failed: " + p.stderr.decode("utf-8", "replace")[-1000:])
    return cert, key


class _CertDir:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bookrank-cert-")
        try:
            self.cert, self.key = make_self_signed_cert(self.dir)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, self.key)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# -- the machinery both receivers share ----------------------------------------------------------------
def _reserve(port):
    """A socket bound to 127.0.0.1:port (0: any free port) that does not listen yet."""
    deadline = time.monotonic() + 5.0
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return s
        except OSError:
            s.close()
            if port == 0 or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _is_disconnect(exc):
    return isinstance(exc, (ConnectionError, TimeoutError, socket.timeout, ssl.SSLError,
                            BrokenPipeError, EOFError)) or (
        isinstance(exc, OSError) and exc.errno in (9, 32, 54, 104, 107, 110))


class _Conn:
    """One accepted connection: its file descriptor (stable across TLS wrapping) and thread."""

    def __init__(self, sock):
        self.fd = sock.fileno()
        self.thread = None

    def cut(self):
        # shutdown(2) acts on the socket itself, so a duplicate of the descriptor wakes up whichever
        # thread is blocked on the connection, plain or TLS, without touching its Python objects.
        try:
            s = socket.socket(fileno=os.dup(self.fd))
        except OSError:
            return
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            s.close()


class _ManagedMixin:
    """Accept loop in a thread; every connection in a tracked thread with a socket timeout."""

    owner = None

    def _setup(self, owner, sock):
        self.owner = owner
        self.closing = threading.Event()       # set when this generation goes down
        self.conns = {}                        # _Conn -> thread, guarded by self.conns_lock
        self.conns_lock = threading.Lock()
        self.socket.close()                    # the one the constructor made; use the reserved one
        self.socket = sock
        self.server_address = sock.getsockname()
        self.server_name, self.server_port = self.server_address[0], self.server_address[1]
        self.socket.listen(64)
        self.thread = threading.Thread(target=self.serve_forever, args=(_ACCEPT_POLL_S,),
                                       name="%s-accept-%d" % (type(owner).__name__, self.server_port),
                                       daemon=True)
        self.thread.start()

    def process_request(self, request, client_address):
        conn = _Conn(request)
        t = threading.Thread(target=self._conn_main, args=(conn, request, client_address),
                             name="%s-conn-%s" % (type(self.owner).__name__, client_address[1]),
                             daemon=True)
        conn.thread = t
        with self.conns_lock:
            self.conns[conn] = t
        t.start()

    def _conn_main(self, conn, request, client_address):
        sock = request
        try:
            sock.settimeout(self.owner.idle_timeout)
            if self.closing.is_set():
                return
            self.owner._serve_connection(self, sock, client_address)
        except Exception as e:  # noqa: BLE001 - a receiver must never die of one connection
            if not _is_disconnect(e):
                self.owner._note_error("connection from %s:%s" % client_address[:2])
        finally:
            with self.conns_lock:
                self.conns.pop(conn, None)
            try:
                sock.close()
            except OSError:
                pass

    def stop(self):
        """Stops accepting, closes the listener's socket object (not the port: see _Generation),
        cuts every connection and joins the threads. Returns the number of threads left running."""
        self.closing.set()
        self.shutdown()
        self.thread.join(_JOIN_TIMEOUT_S)
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            c.cut()
        deadline = time.monotonic() + _JOIN_TIMEOUT_S
        leaked = 0
        for c in conns:
            c.thread.join(max(0.0, deadline - time.monotonic()))
            if c.thread.is_alive():
                leaked += 1
        if self.thread.is_alive():
            leaked += 1
        return leaked

    def handle_error(self, request, client_address):  # socketserver's hook; we handle errors ourselves
        self.owner._note_error("accept loop")


class _Receiver:
    """Lifecycle shared by WebhookReceiver and SmtpSink: start, set_down, close, context manager."""

    _server_class = None

    def __init__(self, port, idle_timeout, tls):
        self.idle_timeout = idle_timeout
        self.errors = []          # tracebacks of exceptions inside the receiver (should stay empty)
        self.leaked_threads = 0   # threads that did not end when the receiver went down or closed
        self.lock = threading.Condition()
        self._state_lock = threading.Lock()
        self._server = None
        self._down = False
        self._closed = False
        self._certs = _CertDir() if tls else None
        self.ca_file = self._certs.cert if self._certs else None
        try:
            sock = _reserve(port)
            self.port = sock.getsockname()[1]
            self._start(sock)
        except BaseException:
            if self._certs:
                self._certs.remove()
            raise

    @property
    def ssl_context(self):
        """The server-side ssl.SSLContext (None without TLS)."""
        return self._certs.ctx if self._certs else None

    def _start(self, sock):
        srv = self._server_class(("127.0.0.1", self.port), self._handler_class(),
                                 bind_and_activate=False)
        try:
            srv._setup(self, sock)
        except BaseException:
            sock.close()
            raise
        self._server = srv

    def _handler_class(self):
        return socketserver.BaseRequestHandler

    def _note_error(self, where):
        with self.lock:
            self.errors.append("%s: %s" % (where, traceback.format_exc()))

    def set_down(self, down=True):
        """True: stop accepting (connections are refused; open ones are cut) but keep the port.
        False: accept again on the same port. Returns when the switch is complete."""
        with self._state_lock:
            if self._closed:
                raise RuntimeError("receiver is closed")
            if down and not self._down:
                srv, self._server = self._server, None
                self.leaked_threads += srv.stop()
                srv.server_close()
                # The port stays ours: bound, not listening (SYNs to it get RST).
                self._reserved = _reserve(self.port)
                self._down = True
            elif not down and self._down:
                self._start(self._reserved)
                self._reserved = None
                self._down = False

    @property
    def is_down(self):
        return self._down

    def close(self):
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            if self._server is not None:
                self.leaked_threads += self._server.stop()
                self._server.server_close()
                self._server = None
            if getattr(self, "_reserved", None) is not None:
                self._reserved.close()
                self._reserved = None
            if self._certs:
                self._certs.remove()
        if self.leaked_threads:
            sys.stderr.write("receivers: %s left %d thread(s) running\n"
                             % (type(self).__name__, self.leaked_threads))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _wait(self, items_fn, count, timeout, match):
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                got = [x for x in items_fn() if match is None or match(x)]
                left = deadline - time.monotonic()
                if len(got) >= count or left <= 0:
                    return got
                self.lock.wait(left)


# -- webhook ------------------------------------------------------------------------------------------
def signature_header(body, secret):
    """The X-Bookrank-Signature value a sender should put on `body`: 'sha256=<lower-case hex>'."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if isinstance(body, str):
        body = body.encode("utf-8")
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class HttpRequest:
    """One request as the WebhookReceiver got it.

    method, path (with the query string), version ("HTTP/1.1"), headers (dict, lower-case names,
    repeated headers joined with ", "), header_list ([(name as sent, value)]), body (bytes, chunked
    encoding removed), t_mono / t_wall (time.monotonic() / time.time() when the body was complete),
    status (what the receiver answered; None when it dropped the connection instead), client
    ((host, port)), tls (bool), seq (0, 1, 2, ... in arrival order)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def __repr__(self):
        return "HttpRequest(#%d %s %s status=%r body=%r)" % (
            self.seq, self.method, self.path, self.status, self.body[:200])


class _WebhookServer(_ManagedMixin, http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class _WebhookHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"     # keep-alive and Expect: 100-continue, as libcurl uses them
    server_version = "bookrank-test-webhook/1"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except Exception as e:  # noqa: BLE001
            if not _is_disconnect(e):
                raise
            self.close_connection = True

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = []
            while True:
                line = self.rfile.readline(65537)
                if not line.endswith(b"\n"):
                    return None
                size = int(line.split(b";", 1)[0].strip() or b"x", 16)
                if size == 0:
                    while True:  # trailers until the empty line
                        line = self.rfile.readline(65537)
                        if not line.endswith(b"\n"):
                            return None
                        if line in (b"\r\n", b"\n"):
                            return b"".join(out)
                chunk = self.rfile.read(size)
                if len(chunk) != size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                    return None
                out.append(chunk)
        n = self.headers.get("Content-Length")
        if n is None:
            return b""
        n = int(n)
        body = self.rfile.read(n) if n else b""
        return body if len(body) == n else None

    def _any(self):
        owner = self.server.owner
        try:
            body = self._read_body()
        except ValueError:
            body = None
        if body is None:   # the client went away (or sent garbage) before the body was complete
            with owner.lock:
                owner.aborted += 1
            self.close_connection = True
            return
        with owner.lock:
            extra_headers = {}
            if owner._drop_left > 0:
                owner._drop_left -= 1
                status, payload = None, b""
            elif owner._fail_left > 0:
                owner._fail_left -= 1
                status, payload = owner._fail_status, owner._fail_body
                extra_headers = dict(owner._fail_headers)
            else:
                status, payload = owner.status, owner.response_body
            delay = owner.delay_s
            hdrs = {}
            for k, v in self.headers.items():
                k = k.lower()
                hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
            req = HttpRequest(method=self.command, path=self.path, version=self.request_version,
                              headers=hdrs, header_list=list(self.headers.items()), body=body,
                              t_mono=time.monotonic(), t_wall=time.time(), status=status,
                              client=self.client_address[:2], tls=isinstance(self.connection,
                                                                             ssl.SSLSocket),
                              seq=len(owner._requests))
            owner._requests.append(req)
            owner.lock.notify_all()
        if delay and self.server.closing.wait(delay):
            self.close_connection = True
            return
        if status is None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in extra_headers.items():
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any


class WebhookReceiver(_Receiver):
    """HTTP(S) server on 127.0.0.1:<free port> recording every request (see HttpRequest).

    Knobs (plain attributes, change them any time): status (200) and response_body (b'{"ok":true}')
    for ordinary answers; delay_s (0) before each answer (a delayed answer is abandoned when the
    receiver goes down or closes). Methods fail_next, drop_next, set_down change behaviour too."""

    _server_class = _WebhookServer

    def __init__(self, port=0, tls=False, idle_timeout=10.0):
        self._requests = []
        self.aborted = 0              # requests whose client went away before the body was complete
        self.status = 200
        self.response_body = b'{"ok":true}'
        self.delay_s = 0.0
        self._fail_left = 0
        self._fail_status = 500
        self._fail_body = b""
        self._fail_headers = {}
        self._drop_left = 0
        self.tls = tls
        super().__init__(port, idle_timeout, tls)

    def _handler_class(self):
        return _WebhookHandler

    def _serve_connection(self, srv, sock, client_address):
        if self._certs:
            sock = self._certs.ctx.wrap_socket(sock, server_side=True)  # handshake: socket timeout
        try:
            _WebhookHandler(sock, client_address, srv)
        finally:
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass

    # -- addresses --
    def base(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def url(self, path="/hook"):
        if not path.startswith("/"):
            path = "/" + path
        return self.base() + path

    # -- knobs --
    def fail_next(self, n, status=500, body=b'{"error":"fail_next"}', headers=None):
        """Answers the next n requests with `status` (and `body`, extra `headers` such as
        {"Retry-After": "1"}) instead of the ordinary answer. n=0 cancels."""
        with self.lock:
            self._fail_left = n
            self._fail_status = status
            self._fail_body = body
            self._fail_headers = dict(headers or {})

    def drop_next(self, n):
        """Reads the next n requests completely, records them (status None) and closes the
        connection without answering. n=0 cancels."""
        with self.lock:
            self._drop_left = n

    # -- records --
    def requests(self):
        """A copy of the list of complete requests, in arrival order."""
        with self.lock:
            return list(self._requests)

    def clear(self):
        """Forgets recorded requests (and the aborted count); knobs are kept."""
        with self.lock:
            self._requests = []
            self.aborted = 0

    def wait_for(self, count, timeout=10.0, match=None):
        """Waits until at least `count` requests (those for which match(req) is true, when given)
        have arrived, and returns them. Never raises: on timeout it returns what it has, so
        check len() of the result (t.eq(len(reqs), 1, ...))."""
        return self._wait(lambda: self._requests, count, timeout, match)

    @staticmethod
    def verify_signature(req, secret):
        """True when req's X-Bookrank-Signature is 'sha256=' + the lower-case hex HMAC-SHA256 of
        its raw body with `secret` (str or bytes); compared in constant time. False when missing."""
        got = req.headers.get("x-bookrank-signature")
        if got is None:
            return False
        return hmac.compare_digest(got.strip().encode("utf-8", "replace"),
                                   signature_header(req.body, secret).encode("ascii"))

    @staticmethod
    def json(req):
        """The body decoded as UTF-8 JSON, or None when it is not."""
        try:
            return _json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None


# -- SMTP ---------------------------------------------------------------------------------------------
class _Disconnected(Exception):
    pass


class SmtpMessage:
    """One message the SmtpSink accepted (250 after DATA).

    mail_from (str, '' for the null sender), rcpt_to ([str]), mail_params (the text after
    MAIL FROM:<...>), data (bytes as received after dot-unstuffing, CRLF line ends, without the final
    '.' line), bare_lf (True when data holds an LF not preceded by CR), msg (email.message.EmailMessage
    parsed with policy=email.policy.default; msg["To"], msg.get_all("Received"), ...), subject (decoded
    str or None), text (the text/plain body decoded, line ends as "\n", or None), tls (bool: the session was encrypted),
    authenticated_as (user name or None), helo ("EHLO name" / "HELO name"), t_mono / t_wall, seq."""

    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.parse_error = None
        try:
            self.msg = email.message_from_bytes(self.data, policy=email.policy.default)
        except Exception as e:  # noqa: BLE001 - the policy parser is lenient; be safe anyway
            self.msg, self.parse_error = None, repr(e)
        self.subject = None
        self.text = None
        if self.msg is not None:
            try:
                s = self.msg["Subject"]
                self.subject = None if s is None else str(s)
                body = self.msg.get_body(preferencelist=("plain",))
                self.text = None if body is None else body.get_content().replace("\r\n", "\n")
            except Exception as e:  # noqa: BLE001
                self.parse_error = repr(e)

    @property
    def headers(self):
        """The parsed message (an EmailMessage: ['Subject'], .get_all(name), .items())."""
        return self.msg

    def header(self, name, default=None):
        v = self.msg.get(name) if self.msg is not None else None
        return default if v is None else str(v)

    def __repr__(self):
        return "SmtpMessage(#%d from=%r to=%r subject=%r tls=%r auth=%r)" % (
            self.seq, self.mail_from, self.rcpt_to, self.subject, self.tls, self.authenticated_as)


class SmtpSession:
    """One SMTP connection: peer, t_start, implicit_tls, starttls (bool: upgraded), tls (encrypted at
    the end), commands ([str], every command line as received, DATA content excepted), auth ([dict
    mechanism, user, ok, code, tls, credentials_sent]), replies ([int] codes sent), end ('quit',
    'disconnect', 'timeout', 'tls-failed: ...' (handshake), 'tls-error: ...' (later), 'shutdown'
    (cut by set_down/close), 'error' (a bug in the sink) or None while open)."""

    def __init__(self, peer, implicit_tls):
        self.peer = peer
        self.t_start = time.monotonic()
        self.implicit_tls = implicit_tls
        self.starttls = False
        self.tls = implicit_tls
        self.commands = []
        self.auth = []
        self.replies = []
        self.end = None

    def __repr__(self):
        return "SmtpSession(%s tls=%r end=%r commands=%r)" % (self.peer, self.tls, self.end,
                                                              self.commands[:20])


class _SmtpServer(_ManagedMixin, socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False


_MAX_LINE = 1 << 20
_MAX_DATA = 32 << 20


class _SmtpConnection:
    def __init__(self, sink, srv, sock, peer):
        self.sink, self.srv, self.sock = sink, srv, sock
        self.buf = b""
        self.tls = sink.implicit_tls
        self.sess = SmtpSession(peer[:2], sink.implicit_tls)
        self.helo = None
        self.user = None
        self.reset()

    def reset(self):
        self.mail_from = None
        self.mail_params = ""
        self.rcpts = []

    # -- I/O --
    def send(self, code, text, more=()):
        lines = list(more)
        out = []
        all_lines = [text] + lines
        for i, line in enumerate(all_lines):
            out.append("%d%s%s\r\n" % (code, "-" if i < len(all_lines) - 1 else " ", line))
        self.sock.sendall("".join(out).encode("utf-8"))
        with self.sink.lock:
            self.sess.replies.append(code)

    def readline(self, sep=b"\n"):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + len(sep):]
                return line
            if len(self.buf) > _MAX_LINE:
                raise _Disconnected("line too long")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise _Disconnected("eof")
            self.buf += chunk

    def command(self):
        line = self.readline(b"\n")
        if line.endswith(b"\r"):
            line = line[:-1]
        s = line.decode("utf-8", "replace")
        with self.sink.lock:
            self.sess.commands.append(s)
        return s

    # -- session --
    def run(self):
        with self.sink.lock:
            self.sink._sessions.append(self.sess)
        try:
            if self.sink.implicit_tls:
                try:
                    self.sock = self.sink._certs.ctx.wrap_socket(self.sock, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    self._end("tls-failed: %s" % e)
                    return
            self.send(220, "%s ESMTP bookrank test sink" % self.sink.hostname)
            while True:
                line = self.command()
                verb, _, arg = line.partition(" ")
                verb = verb.upper()
                fn = getattr(self, "cmd_" + verb, None)
                if fn is None:
                    self.send(500, "5.5.2 Command not recognized")
                    continue
                if fn(arg.strip()) == "quit":
                    self._end("quit")
                    return
        except _TlsFailed as e:
            self._end("tls-failed: %s" % e)
        except (_Disconnected, ConnectionError, BrokenPipeError, ssl.SSLEOFError,
                ssl.SSLZeroReturnError):
            self._end("shutdown" if self.srv.closing.is_set() else "disconnect")
        except (TimeoutError, socket.timeout):
            try:
                self.send(421, "4.4.2 %s Idle timeout, closing connection" % self.sink.hostname)
            except OSError:
                pass
            self._end("timeout")
        except ssl.SSLError as e:
            self._end("shutdown" if self.srv.closing.is_set() else "tls-error: %s" % e)
        except OSError:
            self._end("shutdown" if self.srv.closing.is_set() else "disconnect")
        except Exception:
            self._end("error")
            raise
        finally:
            try:
                self.sock.close()
            except OSError:
                pass

    def _end(self, how):
        with self.sink.lock:
            if self.sess.end is None:
                self.sess.end = how
            self.sess.tls = self.tls
            self.sink.lock.notify_all()

    # -- commands --
    def _ehlo_lines(self):
        lines = ["PIPELINING", "SIZE %d" % _MAX_DATA, "8BITMIME", "SMTPUTF8"]
        if self.sink.starttls and not self.tls:
            lines.append("STARTTLS")
        if self.sink.auth is not None:
            lines.append("AUTH PLAIN LOGIN")
        return lines

    def cmd_EHLO(self, arg):
        if not arg:
            return self.send(501, "5.5.4 EHLO needs a domain")
        self.helo = "EHLO " + arg
        self.reset()
        self.send(250, "%s greets %s" % (self.sink.hostname, arg), self._ehlo_lines())

    def cmd_HELO(self, arg):
        if not arg:
            return self.send(501, "5.5.4 HELO needs a domain")
        self.helo = "HELO " + arg
        self.reset()
        self.send(250, self.sink.hostname)

    def cmd_STARTTLS(self, arg):
        if not self.sink.starttls or self.tls:
            return self.send(502 if not self.sink.starttls else 503,
                             "5.5.1 STARTTLS not available" if not self.sink.starttls
                             else "5.5.1 TLS already active")
        if arg:
            return self.send(501, "5.5.4 No parameters allowed")
        self.send(220, "2.0.0 Ready to start TLS")
        self.buf = b""   # RFC 3207: anything pipelined after STARTTLS is discarded
        try:
            self.sock = self.sink._certs.ctx.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            raise _TlsFailed(str(e))
        self.tls = True
        with self.sink.lock:
            self.sess.starttls = True
            self.sess.tls = True
        self.helo = None     # the client must say EHLO again; state from before is forgotten
        self.user = None
        self.reset()

    def _auth_record(self, mech, user, ok, code, sent):
        with self.sink.lock:
            self.sess.auth.append({"mechanism": mech, "user": user, "ok": ok, "code": code,
                                   "tls": self.tls, "credentials_sent": sent})

    def _b64(self, s):
        if s == "=":
            return b""
        return base64.b64decode(s.encode("ascii"), validate=True)

    def cmd_AUTH(self, arg):
        if self.sink.auth is None:
            return self.send(502, "5.5.1 AUTH not available")
        if self.helo is None or not self.helo.startswith("EHLO"):
            return self.send(503, "5.5.1 EHLO first")
        if self.user is not None:
            return self.send(503, "5.5.1 Already authenticated")
        if self.mail_from is not None:
            return self.send(503, "5.5.1 AUTH not allowed during a mail transaction")
        mech, _, initial = arg.partition(" ")
        mech, initial = mech.upper(), initial.strip()
        if mech not in ("PLAIN", "LOGIN"):
            return self.send(504, "5.5.4 Unrecognized authentication type")
        if self.sink.require_tls_for_auth and not self.tls:
            user = None
            if initial and mech == "PLAIN":
                try:
                    user = self._b64(initial).split(b"\0")[1].decode("utf-8", "replace")
                except (binascii.Error, ValueError, IndexError):
                    pass
            elif initial:
                try:
                    user = self._b64(initial).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    pass
            self._auth_record(mech, user, False, 538, bool(initial))
            return self.send(538, "5.7.11 Encryption required for requested authentication "
                                  "mechanism")
        try:
            if mech == "PLAIN":
                if not initial:
                    self.send(334, "")
                    initial = self.command()
                    if initial == "*":
                        self._auth_record(mech, None, False, 501, False)
                        return self.send(501, "5.7.0 Authentication cancelled")
                parts = self._b64(initial).split(b"\0")
                if len(parts) != 3:
                    raise ValueError("PLAIN needs authzid NUL authcid NUL passwd")
                user, password = parts[1].decode("utf-8"), parts[2].decode("utf-8")
            else:
                if initial:
                    user_b = self._b64(initial)
                else:
                    self.send(334, "VXNlcm5hbWU6")   # "Username:"
                    r = self.command()
                    if r == "*":
                        self._auth_record(mech, None, False, 501, False)
                        return self.send(501, "5.7.0 Authentication cancelled")
                    user_b = self._b64(r)
                self.send(334, "UGFzc3dvcmQ6")       # "Password:"
                r = self.command()
                if r == "*":
                    self._auth_record(mech, user_b.decode("utf-8", "replace"), False, 501, False)
                    return self.send(501, "5.7.0 Authentication cancelled")
                user, password = user_b.decode("utf-8"), self._b64(r).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            self._auth_record(mech, None, False, 501, True)
            return self.send(501, "5.5.2 Cannot decode response")
        ok = (user, password) == tuple(self.sink.auth)
        self._auth_record(mech, user, ok, 235 if ok else 535, True)
        if not ok:
            return self.send(535, "5.7.8 Authentication credentials invalid")
        self.user = user
        self.send(235, "2.7.0 Authentication successful")

    _MAIL_RE = re.compile(r"(?i)^FROM:\s*<([^<>]*)>\s*(.*)$")
    _RCPT_RE = re.compile(r"(?i)^TO:\s*<([^<>]+)>\s*(.*)$")

    def cmd_MAIL(self, arg):
        if self.helo is None:
            return self.send(503, "5.5.1 EHLO or HELO first")
        if self.mail_from is not None:
            return self.send(503, "5.5.1 Nested MAIL command")
        m = self._MAIL_RE.match(arg)
        if not m:
            return self.send(501, "5.5.4 Syntax: MAIL FROM:<address>")
        if self.sink.require_auth and self.user is None:
            return self.send(530, "5.7.0 Authentication required")
        with self.sink.lock:
            fail = self.sink._fail_left > 0
            if fail:
                self.sink._fail_left -= 1
                code = self.sink._fail_code
        if fail:
            return self.send(code, "%d.3.0 Failure requested by the test (fail_next)" % (code // 100))
        self.mail_from, self.mail_params = m.group(1), m.group(2)
        self.send(250, "2.1.0 Sender OK")

    def cmd_RCPT(self, arg):
        if self.mail_from is None:
            return self.send(503, "5.5.1 MAIL first")
        m = self._RCPT_RE.match(arg)
        if not m:
            return self.send(501, "5.5.4 Syntax: RCPT TO:<address>")
        with self.sink.lock:
            rejected = m.group(1).lower() in {a.lower() for a in self.sink.rejected_recipients}
        if rejected:
            return self.send(550, "5.1.1 Mailbox unavailable")
        self.rcpts.append(m.group(1))
        self.send(250, "2.1.5 Recipient OK")

    def cmd_DATA(self, arg):
        if self.mail_from is None:
            return self.send(503, "5.5.1 MAIL first")
        if not self.rcpts:
            return self.send(554, "5.5.1 No valid recipients")
        self.send(354, "End data with <CR><LF>.<CR><LF>")
        lines, size, bare_lf, too_big = [], 0, False, False
        while True:
            line = self.readline(b"\r\n")     # strict: only CRLF ends a line (bare LF is data)
            if line == b".":
                break
            if line.startswith(b"."):
                line = line[1:]                # dot-unstuffing
            if b"\n" in line:
                bare_lf = True
            size += len(line) + 2
            if size > _MAX_DATA:
                too_big = True
            else:
                lines.append(line)
        if too_big:
            self.reset()
            return self.send(552, "5.3.4 Message too big")
        data = b"".join(l + b"\r\n" for l in lines)
        with self.sink.lock:
            msg = SmtpMessage(mail_from=self.mail_from, rcpt_to=list(self.rcpts),
                              mail_params=self.mail_params, data=data, bare_lf=bare_lf,
                              tls=self.tls, authenticated_as=self.user, helo=self.helo,
                              peer=self.sess.peer, t_mono=time.monotonic(), t_wall=time.time(),
                              seq=len(self.sink._messages))
            self.sink._messages.append(msg)
            self.sink.lock.notify_all()
        self.reset()
        self.send(250, "2.0.0 Ok: queued as %d" % msg.seq)

    def cmd_RSET(self, arg):
        self.reset()
        self.send(250, "2.0.0 Ok")

    def cmd_NOOP(self, arg):
        self.send(250, "2.0.0 Ok")

    def cmd_VRFY(self, arg):
        self.send(252, "2.5.0 Cannot VRFY user")

    def cmd_HELP(self, arg):
        self.send(214, "2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP QUIT STARTTLS AUTH")

    def cmd_QUIT(self, arg):
        try:
            self.send(221, "2.0.0 Bye")
        except OSError:
            pass
        return "quit"


class _TlsFailed(Exception):
    pass


class SmtpSink(_Receiver):
    """ESMTP server on 127.0.0.1:<free port> that accepts and records mail (see SmtpMessage).

    starttls: advertise STARTTLS and upgrade on request; implicit_tls: TLS from the first byte
    (smtps://); auth=(user, password): advertise AUTH PLAIN LOGIN (also before STARTTLS, so a client
    that would send credentials in the clear is caught), accept both; require_tls_for_auth: AUTH
    before TLS gets 538 (recorded in sessions()[i].auth); require_auth: MAIL without AUTH gets 530.
    Knobs: fail_next, rejected_recipients (a set: RCPT TO those addresses gets 550), set_down."""

    _server_class = _SmtpServer

    def __init__(self, starttls=False, implicit_tls=False, auth=None, require_tls_for_auth=False,
                 require_auth=False, port=0, idle_timeout=10.0, hostname="sink.bookrank.test"):
        if starttls and implicit_tls:
            raise ValueError("choose starttls (smtp://) or implicit_tls (smtps://), not both")
        if auth is not None and (len(auth) != 2):
            raise ValueError("auth must be (user, password)")
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.auth = tuple(auth) if auth is not None else None
        self.require_tls_for_auth = require_tls_for_auth
        self.require_auth = require_auth
        self.hostname = hostname
        self.rejected_recipients = set()
        self._messages = []
        self._sessions = []
        self._fail_left = 0
        self._fail_code = 451
        super().__init__(port, idle_timeout, starttls or implicit_tls)

    def _serve_connection(self, srv, sock, client_address):
        c = _SmtpConnection(self, srv, sock, client_address)
        try:
            c.run()
        finally:
            try:
                c.sock.close()
            except OSError:
                pass

    def url(self):
        return "%s://127.0.0.1:%d" % ("smtps" if self.implicit_tls else "smtp", self.port)

    def fail_next(self, n, code=451):
        """The next n MAIL FROM commands get `code` (4xx: temporary, 5xx: permanent). n=0 cancels."""
        with self.lock:
            self._fail_left = n
            self._fail_code = code

    def messages(self):
        """A copy of the list of accepted messages, in order."""
        with self.lock:
            return list(self._messages)

    def sessions(self):
        """A copy of the list of SMTP sessions (connections), open ones included."""
        with self.lock:
            return list(self._sessions)

    def clear(self):
        """Forgets recorded messages and sessions; knobs are kept."""
        with self.lock:
            self._messages = []
            self._sessions = []

    def wait_for(self, count, timeout=10.0, match=None):
        """Waits until at least `count` messages (those for which match(msg) is true, when given)
        were accepted and returns them. Never raises: on timeout it returns what it has."""
        return self._wait(lambda: self._messages, count, timeout, match)

    def wait_sessions_ended(self, count, timeout=10.0):
        """Waits until at least `count` sessions have ended; returns the ended ones."""
        return self._wait(lambda: self._sessions, count, timeout, lambda s: s.end is not None)
