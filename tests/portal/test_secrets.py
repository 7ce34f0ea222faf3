import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from portal.models import ClientSecret, Tenant
from tests.factories import ClientSecretFactory

pytestmark = pytest.mark.django_db


def raw_column(table, column, pk):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s FROM %s WHERE id = %%s" % (column, table), [pk])
        return cursor.fetchone()[0]


def test_the_database_never_holds_the_clear_secret(tenant_a):
    secret = ClientSecretFactory(tenant=tenant_a, value="Qx8~very-secret-value")
    tenant_a.jamf_client_secret = "jamf-api-secret-123"
    tenant_a.save()
    stored = raw_column("portal_clientsecret", "value", secret.pk)
    assert "very-secret" not in stored and stored.startswith("gAAAA")
    assert "jamf-api-secret" not in raw_column("portal_tenant", "jamf_client_secret", tenant_a.pk)
    assert ClientSecret.objects.get(pk=secret.pk).value == "Qx8~very-secret-value"
    assert Tenant.objects.get(pk=tenant_a.pk).jamf_client_secret == "jamf-api-secret-123"


def test_a_rotated_key_still_decrypts_and_reencrypt_moves_to_the_new_key(tenant_a, settings):
    old_key = settings.PORTAL_ENCRYPTION_KEYS[0]
    secret = ClientSecretFactory(tenant=tenant_a, value="before-rotation")
    new_key = Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEYS = [new_key, old_key]
    assert ClientSecret.objects.get(pk=secret.pk).value == "before-rotation"

    call_command("reencrypt_secrets", stdout=io.StringIO())
    token = raw_column("portal_clientsecret", "value", secret.pk)
    Fernet(new_key.encode()).decrypt(token.encode())  # readable with the new key alone
    settings.PORTAL_ENCRYPTION_KEYS = [new_key]
    assert ClientSecret.objects.get(pk=secret.pk).value == "before-rotation"


def test_a_missing_key_fails_with_a_clear_message_and_no_secret(tenant_a, settings):
    secret = ClientSecretFactory(tenant=tenant_a, value="hidden-value")
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(Exception, match="cannot be decrypted") as excinfo:
        ClientSecret.objects.get(pk=secret.pk)
    assert "hidden-value" not in str(excinfo.value)
