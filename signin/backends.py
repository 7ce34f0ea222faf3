"""Password authentication, which a setting can turn off for MSP staff (they then sign in with Microsoft)."""

from allauth.account.auth_backends import AuthenticationBackend
from django.conf import settings

from portal.tenancy import is_msp_staff


class PasswordBackend(AuthenticationBackend):
    """allauth's backend (Django's ModelBackend underneath), refusing MSP staff passwords when
    ``PORTAL_STAFF_PASSWORD_LOGIN`` is off. A refusal counts as a failed attempt for the lockout."""

    def authenticate(self, request, **credentials):
        user = super().authenticate(request, **credentials)
        if user is not None and not settings.PORTAL_STAFF_PASSWORD_LOGIN and is_msp_staff(user):
            return None
        return user
