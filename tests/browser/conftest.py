"""Headless Chromium for browser tests: Debian's ``chromium`` driven by Playwright for Python.

No browser is ever downloaded: Playwright launches ``/usr/bin/chromium`` (``PORTAL_CHROMIUM``
overrides it). When Chromium or Playwright is missing the tests skip with the reason, unless
``PORTAL_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which turns that skip into a failure.

Playwright's sync API keeps an asyncio loop running in the thread that starts it, and Django
refuses ORM calls from such a thread; so the browser lives in a thread of its own and tests hand
it plain functions (``browser.run(fn, ...)``), keeping the ORM usable in the test itself.
Screenshots go to ``test-results/``.
"""

import os
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache

from tests.browser.pages import RESULTS_DIR

CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_required():
    return os.environ.get("PORTAL_REQUIRE_BROWSER", "").strip() == "1"


def unavailable(reason):
    """Skip, or fail when PORTAL_REQUIRE_BROWSER=1 says the browser tests must run."""
    if browser_required():
        pytest.fail("Browser tests are required (PORTAL_REQUIRE_BROWSER=1) but %s" % reason, pytrace=False)
    pytest.skip("Browser tests skipped: %s" % reason)


def missing_reason():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -r requirements-dev.txt)."
    if not os.access(CHROMIUM, os.X_OK):
        return "Chromium was not found at %s (apt-get install -y chromium)." % CHROMIUM
    return None


class Browser:
    """One headless Chromium per test process, driven from its own thread."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="playwright")
        self._playwright = self._browser = None
        self._pool.submit(self._start).result(timeout=120)

    def _start(self):
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000
        )

    def run(self, fn, *args, timeout=120, **kwargs):
        """Call ``fn(browser, *args, **kwargs)`` in the browser's thread and return its result (``timeout`` s)."""
        return self._pool.submit(fn, self._browser, *args, **kwargs).result(timeout=timeout)

    def _stop(self):
        if self._browser is not None:
            self._browser.close()
        if self._playwright is not None:
            self._playwright.stop()

    def close(self):
        try:
            self._pool.submit(self._stop).result(timeout=60)
        finally:
            self._pool.shutdown(wait=True)


@pytest.fixture(scope="session")
def _browser_session():
    reason = missing_reason()
    if reason:
        yield reason
        return
    try:
        browser = Browser()
    except Exception as exc:  # a Chromium that will not start is "missing" for our purpose
        yield "Chromium at %s did not start: %s" % (CHROMIUM, exc)
        return
    yield browser
    browser.close()


@pytest.fixture
def browser(_browser_session):
    if isinstance(_browser_session, str):
        unavailable(_browser_session)
    RESULTS_DIR.mkdir(exist_ok=True)
    return _browser_session


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


class OffsiteSite:
    """A stand-in for a tenant's own https site (a custom landing page) on loopback, with TLS.

    Playwright does not route the request a redirect leads to, so a redirect off the portal must
    land on a real server: this one, never the network. ``paths`` records what was asked for.
    """

    def __init__(self, cert_dir):
        from simulator.certs import make_certificates

        _, cert_path, key_path = make_certificates(cert_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        site = self
        self.paths = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site.paths.append(self.path)
                body = b"<!DOCTYPE html><title>Tenant site</title><h1>The tenant's own page (stub)</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="offsite-site", daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def offsite_site(tmp_path):
    site = OffsiteSite(tmp_path / "certs")
    yield site
    site.close()
