"""Throttles kept in the default cache (Redis when REDIS_URL is set): per API token, and per IP for the anonymous."""

from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    """One bucket per API token; a browser session counts as its user."""

    scope = "token"

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None
        token_key = getattr(request.auth, "token_key", None)
        ident = "token:%s" % token_key if token_key else "user:%s" % request.user.pk
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AnonymousRateThrottle(AnonRateThrottle):
    """One bucket per client IP for requests without valid credentials (wrong tokens included)."""

    scope = "anon"
