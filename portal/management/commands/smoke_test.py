"""manage.py smoke_test <public URL>: after a deployment, check the running portal answers as it should.

It asks over HTTP(S), as a browser and Jamf Pro would: the health URL, the admin sign-in page and every
stylesheet it links (a missing ``collectstatic`` makes the page a 500 or its CSS a 404), a landing page
and a webhook of a tenant that does not exist (404 and 401: the application reads its database), and,
for an https URL, that plain http is redirected to https. ``--via http://127.0.0.1:8000`` sends the same
requests to the web server behind the reverse proxy, with the Host and X-Forwarded-Proto headers the
proxy would add. Prints each step; exits non-zero when one fails.
"""

import re
import uuid
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from django.core.management.base import BaseCommand, CommandError

STYLESHEET_RE = re.compile(
    r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"|<link[^>]+href="([^"]+)"[^>]+rel="stylesheet"'
)


class Command(BaseCommand):
    help = "Check a deployed portal over HTTP(S): health, sign-in page and its static files, landing, webhooks."

    def add_arguments(self, parser):
        parser.add_argument("url", help="The portal's public URL (PORTAL_BASE_URL), e.g. https://portal.example.com")
        parser.add_argument(
            "--via", metavar="URL",
            help="Send the requests to this address instead (the web server behind the proxy), as the proxy would.",
        )
        parser.add_argument("--timeout", type=float, default=10.0)

    def handle(self, *args, **options):
        public = options["url"].rstrip("/")
        parts = urlsplit(public)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CommandError("Give the portal's URL, such as https://portal.example.com, not %r." % public)
        self.public = public
        self.via = (options["via"] or "").rstrip("/")
        self.headers = {}
        if self.via:
            self.headers = {"Host": parts.netloc, "X-Forwarded-Proto": parts.scheme}
        self.timeout = options["timeout"]
        self.session = requests.Session()
        self.failures = 0

        self.step("health", "/healthz", lambda r: r.status_code == 200 and r.text.strip() == "ok")
        # The sign-in page (allauth's; /admin/login/ redirects there), with the stylesheets it links.
        login = self.step(
            "admin sign-in page", "/accounts/login/", lambda r: r.status_code == 200 and "<form" in r.text
        )
        if login is not None:
            sheets = [a or b for a, b in STYLESHEET_RE.findall(login.text)]
            if not sheets:
                self.report(False, "static files", "the sign-in page links no stylesheet")
            for href in sheets:
                self.step("static file %s" % urlsplit(href).path, href, lambda r: r.status_code == 200)
        nobody = "smoke-%s" % uuid.uuid4().hex[:8]
        self.step("landing page of an unknown tenant answers 404", "/r/%s/" % nobody, lambda r: r.status_code == 404)
        self.step("webhook of an unknown tenant answers 401", "/hooks/jamf/%s/" % nobody,
                  lambda r: r.status_code == 401, method="POST", data=b"{}",
                  headers={"Content-Type": "application/json"})
        if parts.scheme == "https":
            self.step("plain http is redirected to https", "/admin/login/",
                      lambda r: r.status_code in (301, 302, 307, 308)
                      and r.headers.get("Location", "").startswith("https://"), scheme="http")
        if self.failures:
            raise CommandError("%d smoke test step(s) failed." % self.failures)
        self.stdout.write(self.style.SUCCESS("All smoke test steps passed."))

    def url_for(self, path, scheme=None):
        if self.via:
            base = self.via
            headers = dict(self.headers)
            if scheme:
                headers["X-Forwarded-Proto"] = scheme
            return urljoin(base + "/", path.lstrip("/")), headers
        base = self.public
        if scheme:
            parts = urlsplit(base)
            base = urlunsplit((scheme, parts.netloc, parts.path, "", ""))
        return urljoin(base + "/", path.lstrip("/")), {}

    def step(self, name, path, ok, method="GET", scheme=None, data=None, headers=None):
        url, extra = self.url_for(path, scheme)
        try:
            response = self.session.request(
                method, url, data=data, headers={**extra, **(headers or {})}, timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            self.report(False, name, "%s: %s" % (type(exc).__name__, exc))
            return None
        passed = bool(ok(response))
        self.report(passed, name, "%s %s → %d" % (method, path, response.status_code))
        return response if passed else None

    def report(self, passed, name, detail):
        if passed:
            self.stdout.write(self.style.SUCCESS("✓ %s" % name) + ": " + detail)
        else:
            self.failures += 1
            self.stdout.write(self.style.ERROR("✗ %s" % name) + ": " + detail)
