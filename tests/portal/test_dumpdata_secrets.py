"""manage.py dumpdata prints secrets only as ciphertext, and loaddata reads that ciphertext back."""

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from portal.fields import SERIALIZED_PREFIX, decrypt
from portal.models import ClientSecret, Tenant
from tests.factories import ClientSecretFactory

pytestmark = pytest.mark.django_db

CLEAR = {"entra": "Qx8~entra-client-secret-value", "jamf": "jamf-api-client-secret-123",
         "hook": "webhook-secret-0123456789-abcdefghijkl"}


@pytest.fixture
def stored(tenant_a):
    tenant_a.jamf_client_secret = CLEAR["jamf"]
    tenant_a.webhook_secret = CLEAR["hook"]
    tenant_a.save()
    ClientSecretFactory(tenant=tenant_a, value=CLEAR["entra"])
    return tenant_a


def dump():
    out = io.StringIO()
    call_command("dumpdata", "portal.tenant", "portal.clientsecret", stdout=out)
    return out.getvalue()


def test_dumpdata_prints_no_secret_in_clear(stored):
    text = dump()
    for value in CLEAR.values():
        assert value not in text
    rows = {(row["model"], row["pk"]): row["fields"] for row in json.loads(text)}
    tenant = rows[("portal.tenant", stored.pk)]
    for name, clear in (("jamf_client_secret", CLEAR["jamf"]), ("webhook_secret", CLEAR["hook"])):
        assert tenant[name].startswith(SERIALIZED_PREFIX)
        assert decrypt(tenant[name][len(SERIALIZED_PREFIX):]) == clear
    secret = next(fields for (model, _), fields in rows.items() if model == "portal.clientsecret")
    assert secret["value"].startswith(SERIALIZED_PREFIX)


def test_loaddata_reads_the_ciphertext_back(stored, tmp_path):
    fixture = tmp_path / "backup.json"
    fixture.write_text(dump())
    ClientSecret.objects.all().delete()
    Tenant.objects.filter(pk=stored.pk).update(jamf_client_secret="", webhook_secret="")
    call_command("loaddata", str(fixture), stdout=io.StringIO())
    tenant = Tenant.objects.get(pk=stored.pk)
    assert (tenant.jamf_client_secret, tenant.webhook_secret) == (CLEAR["jamf"], CLEAR["hook"])
    assert ClientSecret.objects.get(tenant=tenant).value == CLEAR["entra"]


def test_a_form_cannot_pass_ciphertext_for_a_secret(stored):
    token = json.loads(dump())[0]["fields"]["jamf_client_secret"]
    stored.jamf_client_secret = token
    with pytest.raises(ValidationError) as excinfo:
        stored.full_clean()
    assert "jamf_client_secret" in excinfo.value.message_dict
