"""Throttle admin logins (design section 8): too many failures lock out that address and that user.

Failures are counted in the cache (Redis when ``REDIS_URL`` is set, so every web server shares the
counts) per client address and per username, for ``ADMIN_LOGIN_WINDOW`` seconds. At
``ADMIN_LOGIN_MAX_FAILURES`` the login form answers 429 until the window passes; a successful
login clears the username's count.
"""

import hashlib

from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.http import HttpResponse
from django.utils.translation import gettext as _


def _keys(request):
    address = request.META.get("REMOTE_ADDR", "")
    username = (request.POST.get("username") or "").strip().lower()
    keys = ["admin-login:ip:" + hashlib.sha256(address.encode()).hexdigest()]
    if username:
        keys.append("admin-login:user:" + hashlib.sha256(username.encode()).hexdigest())
    return keys


def _limits():
    return getattr(settings, "ADMIN_LOGIN_MAX_FAILURES", 10), getattr(settings, "ADMIN_LOGIN_WINDOW", 900)


def throttled_login(request, extra_context=None):
    """The admin's login view, refusing further attempts after too many failures."""
    max_failures, window = _limits()
    keys = _keys(request) if request.method == "POST" else []
    if keys and any((cache.get(key) or 0) >= max_failures for key in keys):
        minutes = max(1, window // 60)
        response = HttpResponse(
            _("Too many failed sign-in attempts. Try again in %(minutes)d minutes.") % {"minutes": minutes},
            status=429, content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = str(window)
        return response
    response = admin.site.login(request, extra_context)
    if keys:
        if response.status_code == 302:  # signed in
            cache.delete_many(keys[1:])
        else:  # the form came back: the credentials were refused
            for key in keys:
                cache.add(key, 0, window)
                try:
                    cache.incr(key)
                except ValueError:  # expired between add and incr
                    cache.set(key, 1, window)
    return response
