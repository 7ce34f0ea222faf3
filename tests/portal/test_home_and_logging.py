"""A home at /, a favicon, and admin 403s logged once, in one line (issue 15, item 11)."""

import io
import logging

import pytest

pytestmark = pytest.mark.django_db


def test_home_is_a_small_portal_page_not_a_debug_404(client, settings):
    settings.DEBUG = True  # where Django would show its URL list for an unknown page
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<title>Mac compliance portal</title>" in page and "<h1>" in page
    assert 'href="/admin/"' in page and 'href="/api/docs/"' in page
    assert "Page not found" not in page and 'rel="icon"' in page


def test_view_site_leads_home(client, msp_user):
    client.force_login(msp_user)
    page = client.get("/admin/").content.decode()
    assert '<a href="/">View site</a>' in page


def test_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("portal/favicon.svg")


def console_handlers(name):
    """The plain stream handlers a record of logger ``name`` reaches (pytest's capture handlers aside)."""
    logger, found = logging.getLogger(name), []
    while logger is not None:
        found += [h for h in logger.handlers if type(h) is logging.StreamHandler]
        if not logger.propagate:
            break
        logger = logger.parent
    return found


def test_an_admin_403_is_logged_once_without_a_traceback(client, tenant_a, admin_a, settings):
    settings.DEBUG = True  # Django's own console handler printed in DEBUG, beside the root's
    output = io.StringIO()
    handlers = console_handlers("django.request")
    streams = [handler.setStream(output) for handler in handlers]
    try:
        client.force_login(admin_a)
        assert client.get("/admin/portal/tenant/add/").status_code == 403  # only MSP staff add tenants
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            handler.setStream(stream)
    text = output.getvalue()
    assert text.count("Forbidden (Permission denied): /admin/portal/tenant/add/") == 1, text
    assert "Traceback" not in text


def test_a_server_error_keeps_its_traceback():
    from portal.logging import ClientErrorsWithoutTraceback

    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Internal Server Error", (), exc_info)
    record.status_code = 500
    assert ClientErrorsWithoutTraceback().filter(record) and record.exc_info is exc_info
    record.status_code = 403
    assert ClientErrorsWithoutTraceback().filter(record) and record.exc_info is None
