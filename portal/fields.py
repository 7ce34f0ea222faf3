"""Encrypted model fields: secrets are stored as MultiFernet tokens, never in clear.

Keys come from ``settings.PORTAL_ENCRYPTION_KEYS`` (newest first). Encryption always uses the
newest key; decryption tries each key, so a rotation only needs the new key put first and
``manage.py reencrypt_secrets`` run once.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


@lru_cache(maxsize=8)
def _multifernet(keys):
    try:
        return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "PORTAL_ENCRYPTION_KEYS must be a comma-separated list of Fernet keys (32 url-safe base64 bytes)."
        ) from exc


def get_fernet():
    keys = tuple(settings.PORTAL_ENCRYPTION_KEYS)
    if not keys:
        raise ImproperlyConfigured("PORTAL_ENCRYPTION_KEYS is empty.")
    return _multifernet(keys)


def encrypt(value):
    return get_fernet().encrypt(value.encode()).decode()


def decrypt(token):
    try:
        return get_fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        # Never include the token or the key in the message.
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with PORTAL_ENCRYPTION_KEYS: was a key removed?"
        ) from exc


#: How a secret appears in ``manage.py dumpdata`` output: this prefix and a Fernet token, never the value.
SERIALIZED_PREFIX = "encrypted:"


class EncryptedTextField(models.TextField):
    """A text field whose database column holds only the Fernet token of the value.

    The empty string means "not set" and is stored as is, so ``has_secret`` checks stay cheap.
    Serialized (``dumpdata``), the value is ``encrypted:<Fernet token>``; ``loaddata`` reads that back
    with the same keys. Forms and ``full_clean`` refuse the prefixed form, so only a fixture can use it.
    """

    def value_to_string(self, obj):
        value = self.value_from_object(obj)
        if value is None or value == "":
            return value
        return SERIALIZED_PREFIX + encrypt(value)

    def to_python(self, value):
        if isinstance(value, str) and value.startswith(SERIALIZED_PREFIX):
            return decrypt(value[len(SERIALIZED_PREFIX):])
        return super().to_python(value)

    def clean(self, value, model_instance):
        if isinstance(value, str) and value.startswith(SERIALIZED_PREFIX):
            raise ValidationError(_("Enter the secret itself."), code="invalid")
        return super().clean(value, model_instance)

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)


def rotate_token(token):
    """Re-encrypt a stored token with the newest key (MultiFernet.rotate keeps the timestamp)."""
    if not token:
        return token
    return get_fernet().rotate(token.encode()).decode()
