"""The simulator's HTTPS server: routing, shared state, the control endpoint and the fault knobs.

Services (``simulator/microsoft.py``, ``simulator/jamf.py``) are objects with ``install(sim)``,
which adds routes with ``sim.route(method, regex)``, and ``reset()``, which forgets their state.
Everything listens on one port:

- ``/<tenant>/...``            Entra ID (MSAL takes the first path segment as the tenant)
- ``/graph/...``               Microsoft Graph
- ``/intune/...``              the Intune partner service
- ``/jamf/<slug>/...``         one Jamf Pro server per tenant slug
- ``/_sim/...``                control: faults, state, reset

Generic faults (before any handler, on every path but ``/_sim``): latency, 5xx errors, 429 with
Retry-After, dropped connections; each can be limited to path prefixes. Service-specific knobs
(rejecting fresh tokens, expiring a secret) live in ``sim.faults.extra`` and are read by the
services.
"""

import collections
import contextlib
import gc
import json
import logging
import random
import re
import socket
import ssl
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from simulator.certs import make_certificates

logger = logging.getLogger(__name__)


class HttpError(Exception):
    """Raised by a handler to answer with ``status`` and a JSON body."""

    def __init__(self, status, body=None, headers=None):
        super().__init__(status)
        self.status = status
        self.body = body if body is not None else {"error": {"code": str(status), "message": "error"}}
        self.headers = headers or {}


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: object  # email.message.Message: case-insensitive .get()
    body: bytes
    client: tuple = ("", 0)

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name):
        return self.query.get(name, [])

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise HttpError(400, {"error": {"code": "BadRequest", "message": "body is not JSON: %s" % exc}}) from None

    def form(self):
        return {k: v[-1] for k, v in urllib.parse.parse_qs(self.body.decode("utf-8", "replace")).items()}

    @property
    def bearer(self):
        value = self.headers.get("Authorization", "")
        return value[7:].strip() if value.lower().startswith("bearer ") else ""


@dataclass
class Response:
    status: int = 200
    body: object = None
    headers: dict = field(default_factory=dict)


DROP = object()  # a handler's answer: close the connection without answering (the work is done, the answer lost)


@dataclass
class Faults:
    error_rate: float = 0.0  # share of requests answered 503
    throttle_rate: float = 0.0  # share answered 429 with Retry-After
    retry_after: float = 1  # seconds, in the Retry-After header
    latency_ms: int = 0  # added to every request
    drop_rate: float = 0.0  # share of connections closed without an answer
    paths: list = field(default_factory=list)  # prefixes the faults apply to; empty = all
    extra: dict = field(default_factory=dict)  # service-specific knobs

    def applies_to(self, path):
        return not path.startswith("/_sim") and (not self.paths or any(path.startswith(p) for p in self.paths))


class Simulator:
    """One HTTPS server on loopback with the mounted services. ``start()`` runs it in a thread."""

    def __init__(self, host="127.0.0.1", port=0, cert_dir=None, seed=None):
        self.host = host
        self.port = port
        self.cert_dir = Path(cert_dir) if cert_dir else None
        self.routes = []
        self.services = []
        self.lock = threading.RLock()
        self.faults = Faults()
        self.seed = seed
        self.rng = random.Random(seed)
        self.log = collections.deque(maxlen=5000)  # (method, path, status) of recent requests
        self.counts = collections.Counter()  # "fault:503", "fault:429", "fault:drop", "route:<name>"
        self.server = None
        self.thread = None
        self.ca_path = None
        self._install_control()

    # -- set-up ------------------------------------------------------------------------------

    def route(self, method, pattern, name=None):
        """Register a handler for ``method`` and a full-match regex on the path."""
        regex = re.compile(pattern)

        def decorator(func):
            self.routes.append((method.upper(), regex, func, name or func.__name__))
            return func

        return decorator

    def mount(self, service):
        self.services.append(service)
        service.install(self)
        return service

    def service(self, cls):
        """The mounted service of that class."""
        for service in self.services:
            if isinstance(service, cls):
                return service
        raise LookupError(cls.__name__)

    def reset(self):
        with self.lock:
            # Back to the seed: the faults a test injects do not depend on what earlier tests asked for.
            self.rng.seed(self.seed)
            self.faults = Faults()
            self.log.clear()
            self.counts.clear()
            for service in self.services:
                service.reset()

    def set_faults(self, **knobs):
        with self.lock:
            for key, value in knobs.items():
                if hasattr(self.faults, key) and key != "extra":
                    setattr(self.faults, key, value)
                else:
                    self.faults.extra[key] = value

    @property
    def base_url(self):
        return "https://%s:%d" % (self.host, self.port)

    # -- running -----------------------------------------------------------------------------

    def start(self):
        if self.cert_dir is None:
            import tempfile

            self.cert_dir = Path(tempfile.mkdtemp(prefix="portal-sim-"))
        self.ca_path, cert_path, key_path = make_certificates(self.cert_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        handler = type("Handler", (_Handler,), {"sim": self})
        self.server = _TLSServer((self.host, self.port), handler, context)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="simulator", daemon=True)
        self.thread.start()
        return self

    def serve_forever(self):
        self.start()
        try:
            self.thread.join()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # -- dispatch ----------------------------------------------------------------------------

    def dispatch(self, request):
        """Return a Response, or None to drop the connection."""
        faults = self.faults
        if faults.applies_to(request.path):
            if faults.latency_ms:
                time.sleep(faults.latency_ms / 1000)
            roll = self.rng.random()
            if roll < faults.drop_rate:
                self.counts["fault:drop"] += 1
                return None
            roll -= faults.drop_rate
            if roll < faults.error_rate:
                self.counts["fault:503"] += 1
                return Response(503, {"error": {"code": "ServiceUnavailable", "message": "injected fault"}})
            roll -= faults.error_rate
            if roll < faults.throttle_rate:
                self.counts["fault:429"] += 1
                return Response(
                    429,
                    {"error": {"code": "TooManyRequests", "message": "injected throttling"}},
                    {"Retry-After": "%g" % faults.retry_after},
                )
        allowed = []
        for method, regex, func, name in self.routes:
            match = regex.fullmatch(request.path)
            if not match:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            self.counts["route:" + name] += 1
            try:
                result = func(request, **match.groupdict())
            except HttpError as exc:
                return Response(exc.status, exc.body, exc.headers)
            except Exception:  # a simulator bug must be visible, not a hang
                logger.error("simulator handler %s failed:\n%s", name, traceback.format_exc())
                return Response(500, {"error": {"code": "SimulatorBug", "message": traceback.format_exc()}})
            if result is DROP:
                self.counts["fault:drop_answer"] += 1
                return None
            if isinstance(result, Response):
                return result
            return Response(200, result)
        if allowed:
            return Response(405, {"error": {"code": "MethodNotAllowed", "message": ", ".join(allowed)}})
        return Response(404, {"error": {"code": "NotFound", "message": "no route for %s" % request.path}})

    def _install_control(self):
        @self.route("GET", r"/_sim/state")
        def state(request):
            with self.lock:
                return {
                    "faults": self.faults.__dict__,
                    "counts": dict(self.counts),
                    "services": {type(s).__name__: s.snapshot() for s in self.services if hasattr(s, "snapshot")},
                }

        @self.route("POST", r"/_sim/faults")
        def faults(request):
            knobs = request.json() or {}
            if not isinstance(knobs, dict):
                raise HttpError(400, {"error": {"code": "BadRequest", "message": "send a JSON object of knobs"}})
            self.set_faults(**knobs)
            return {"faults": self.faults.__dict__}

        @self.route("POST", r"/_sim/reset")
        def reset(request):
            self.reset()
            return {"reset": True}

        @self.route("POST", r"/_sim/gc")
        def settle_memory(request):
            # For benchmarks: collect, then move what the simulator holds out of the garbage collector's sight. A
            # simulator that has stored a million devices otherwise pauses for a full collection at times, and a
            # pause inside a timed phase made one run's delivery look 30 % slower than the others.
            collected = gc.collect()
            gc.freeze()
            return {"collected": collected, "frozen": gc.get_freeze_count()}


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address, handler, context):
        self.context = context
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        logger.debug("simulator: connection from %s failed", client_address, exc_info=True)

    def get_request(self):
        sock, addr = self.socket.accept()
        # The TLS handshake happens in the request's own thread (see _Handler.setup), so a slow
        # client never blocks the accept loop.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # header and body go out without waiting for the peer's ACK
    wbufsize = 65536  # and as one write, flushed at the end of each request
    sim = None  # set by Simulator.start
    server_version = "PortalSimulator/1.0"

    def setup(self):
        self.request.settimeout(30)
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError):
            self.close_connection = True
            raise
        super().setup()

    def handle(self):
        with contextlib.suppress(ssl.SSLError, ConnectionError, TimeoutError, OSError):
            super().handle()

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        logger.debug("%s %s", self.address_string(), format % args)

    def _serve(self):
        parsed = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=urllib.parse.unquote(parsed.path),
            query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            client=self.client_address,
        )
        response = self.sim.dispatch(request)
        if response is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.request.shutdown(socket.SHUT_RDWR)
            self.sim.log.append((request.method, request.path, 0))
            return
        self.sim.log.append((request.method, request.path, response.status))
        if isinstance(response.body, bytes):
            payload, content_type = response.body, "application/octet-stream"
        elif isinstance(response.body, str):
            payload, content_type = response.body.encode(), "text/plain; charset=utf-8"
        elif response.body is None and response.status in (202, 204):
            payload, content_type = b"", None
        else:
            payload, content_type = json.dumps(response.body).encode(), "application/json"
        self.send_response(response.status)
        if content_type and "Content-Type" not in response.headers:
            self.send_header("Content-Type", content_type)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve
