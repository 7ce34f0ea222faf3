"""Functions that run in the browser's thread (see conftest.Browser.run): visit a page, report on it."""

from dataclasses import dataclass, field
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results"

# Sent for every request that would leave the live server (a tenant's logo, a custom landing
# page): the browser tests never reach the network.
LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="48"><rect width="160" height="48" rx="6" '
    'fill="#1f3b73"/><text x="80" y="31" font-family="sans-serif" font-size="18" fill="#fff" '
    'text-anchor="middle">LOGO</text></svg>'
)
OFFSITE_HTML = "<!DOCTYPE html><title>Off-site page</title><h1>Off-site page (stub)</h1>"

# WCAG 2 contrast of every visible element with its own text against its effective background.
CONTRAST_JS = """
() => {
  const parse = (c) => {
    const p = c.match(/[\\d.]+/g).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const background = (el) => {
    for (; el; el = el.parentElement) { const c = parse(getComputedStyle(el).backgroundColor); if (c.a > 0) return c; }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const failures = [];
  for (const el of document.querySelectorAll('body *')) {
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || box.right < 0 || box.bottom < 0) continue;
    const a = lum(parse(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) failures.push(el.tagName + ' "' + el.textContent.trim().slice(0, 40) + '" ' + ratio.toFixed(2));
  }
  return failures;
}
"""

REPORT_JS = """
() => ({
  title: document.title,
  lang: document.documentElement.lang,
  h1: (document.querySelector('h1') || {}).innerText || '',
  sections: [...document.querySelectorAll('section.path')].map((s) => s.id),
  links: [...document.querySelectorAll('a')].map((a) => ({text: a.innerText.trim(), href: a.getAttribute('href')})),
  images: [...document.images].map((i) => ({alt: i.getAttribute('alt'), loaded: i.complete && i.naturalWidth > 0})),
  text: document.body.innerText,
  styled: getComputedStyle(document.querySelector('main') || document.body).maxWidth !== 'none',
  overflow: document.documentElement.scrollWidth > window.innerWidth,
})
"""


@dataclass
class PageReport:
    status: int
    url: str
    redirects: list = field(default_factory=list)  # (status, url) of each redirect followed
    offsite: list = field(default_factory=list)  # off-site URLs the page asked for
    console_errors: list = field(default_factory=list)
    contrast_failures: list = field(default_factory=list)
    info: dict = field(default_factory=dict)
    screenshot: str = ""


def visit(browser, url, name, *, local_origin, logo_url="", width=1000, color_scheme="light"):
    """Open ``url`` with JavaScript off, answer off-site requests locally, screenshot and report.

    Playwright does not route the request a redirect leads to; a test that follows a redirect
    off the portal points it at a loopback server (conftest.OffsiteSite), whose self-made
    certificate the context accepts.
    """
    context = browser.new_context(
        java_script_enabled=False,
        viewport={"width": width, "height": 900},
        color_scheme=color_scheme,
        ignore_https_errors=True,
    )
    offsite, console_errors = [], []

    def route(route):
        request_url = route.request.url
        if request_url.startswith(local_origin):
            route.continue_()
        elif logo_url and request_url == logo_url:
            offsite.append(request_url)
            route.fulfill(status=200, content_type="image/svg+xml", body=LOGO_SVG)
        else:
            offsite.append(request_url)
            route.fulfill(status=200, content_type="text/html", body=OFFSITE_HTML)

    try:
        context.route("**/*", route)
        page = context.new_page()
        page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
        response = page.goto(url, wait_until="load")
        redirects, request = [], response.request.redirected_from
        while request is not None:
            redirects.insert(0, (request.response().status, request.url))
            request = request.redirected_from
        path = RESULTS_DIR / ("%s.png" % name)
        page.screenshot(path=str(path), full_page=True)
        return PageReport(
            status=redirects[0][0] if redirects else response.status,
            url=page.url,
            redirects=redirects,
            offsite=offsite,
            console_errors=console_errors,
            contrast_failures=page.evaluate(CONTRAST_JS),
            info=page.evaluate(REPORT_JS),
            screenshot=str(path),
        )
    finally:
        context.close()
