"""What the portal adds to django-axes (docs/security.md, "Lockouts").

- The client address axes counts is ``portal.client_address.client_ip`` (``PORTAL_TRUSTED_PROXIES``).
- :class:`LockoutHandler`: axes' database handler (attempts live in the database, so every worker
  and server shares them) with one limit per lockout parameter: axes compares the largest count of
  all parameters with one ``AXES_FAILURE_LIMIT``, so each count is scaled to that limit first.
- :func:`count_wrong_mfa_code`: a wrong MFA code counts as a failed sign-in, like a wrong password.
"""

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit, get_lockout_parameters
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.db.models import Sum


def failure_limit(request, credentials):
    """axes' one limit (``AXES_FAILURE_LIMIT``): failures for one username from one address."""
    return settings.LOGIN_FAILURE_LIMIT


def parameter_limit(parameter):
    """Failures allowed for one lockout parameter (a name or a list of names)."""
    if parameter == "ip_address":
        return settings.LOGIN_ADDRESS_FAILURE_LIMIT
    return settings.LOGIN_FAILURE_LIMIT


class LockoutHandler(AxesDatabaseHandler):
    """Axes' database handler with a limit per lockout parameter, and a success that clears its own failures."""

    def get_failures(self, request, credentials=None):
        # Locked when any parameter's count reaches its own limit: with L the common limit,
        # count * L // own >= L exactly when count >= own.
        common = get_failure_limit(request, credentials)
        parameters = get_lockout_parameters(request, credentials)
        worst = 0
        for parameter, attempts in zip(parameters, self.get_user_attempts(request, credentials), strict=True):
            count = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            worst = max(worst, count * common // parameter_limit(parameter))
        return worst

    def user_logged_in(self, sender, request, user, **kwargs):
        super().user_logged_in(sender, request, user, **kwargs)
        # Only this user's failures from this address: the address's count for other usernames stays,
        # so one valid account cannot wipe the traces of a password spray from the same address.
        ip_address = getattr(request, "axes_ip_address", None)
        if ip_address:
            AccessAttempt.objects.filter(username=user.get_username(), ip_address=ip_address).delete()


def count_wrong_mfa_code(sender, request, user, **kwargs):
    """allauth.mfa's ``authentication_failed`` (a wrong code at sign-in or reauthentication) as Django's
    ``user_login_failed``, which axes records: wrong codes then count in the database with wrong passwords, per
    username and address, and lock the password step in every worker. allauth's own limit on codes
    (``ACCOUNT_RATE_LIMITS["login_failed"]``) lives in the cache: per process without ``REDIS_URL``."""
    user_login_failed.send(sender=__name__, credentials={"username": user.get_username()}, request=request)
