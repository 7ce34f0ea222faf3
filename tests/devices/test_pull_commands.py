"""The management commands: jamf_pull, and simulate_jamf firing webhooks at a running portal."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from devices import tasks
from devices.models import Computer, InventoryEvent
from tests.devices.jamf_helpers import connect, with_secret


def test_jamf_pull_command_full_then_incremental(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=7)
    out = io.StringIO()
    call_command("jamf_pull", "alpha", "--full", stdout=out)
    assert "alpha: full pull (v3)" in out.getvalue() and "7 created" in out.getvalue()
    call_command("jamf_pull", stdout=out)  # every tenant with credentials
    assert "alpha: incremental pull" in out.getvalue()
    assert Computer.objects.filter(tenant=tenant_a).count() == 7


def test_jamf_pull_command_reports_failure(simulator, tenant_a, jamf):
    connect(tenant_a, simulator, count=1)
    tenant_a.jamf_client_secret = "wrong"
    tenant_a.save()
    with pytest.raises(CommandError, match="1 pull"):
        call_command("jamf_pull", "alpha", stdout=io.StringIO(), stderr=io.StringIO())


def test_simulate_jamf_needs_a_secret_and_the_simulator(tenant_a):
    with pytest.raises(CommandError, match="simulator"):
        call_command("simulate_jamf", "alpha")
    with pytest.raises(CommandError, match="No tenant"):
        call_command("simulate_jamf", "nope")


@pytest.mark.django_db(transaction=True)
def test_simulate_jamf_changes_macs_and_fires_webhooks(live_server, simulator, jamf):
    from tests.factories import TenantFactory

    tenant = with_secret(connect(TenantFactory(slug="alpha"), simulator, count=15))
    call_command("jamf_pull", "alpha", "--full", stdout=io.StringIO())
    out = io.StringIO()
    call_command("simulate_jamf", "alpha", "--count", "6", "--kind", "inventory", "--add", "1",
                 "--portal-url", live_server.url, stdout=out)
    assert "7 webhooks" in out.getvalue() and "202 7" in out.getvalue()
    events = InventoryEvent.objects.filter(tenant=tenant, source="webhook")
    assert events.count() == 7
    for event in events:
        tasks.process_event(event.pk)
    assert set(events.values_list("status", flat=True)) == {"processed"}
    assert Computer.objects.filter(tenant=tenant).count() == 16  # the added Mac
    sent = {json.loads(e.raw_body)["event"]["jssID"] for e in events}
    assert set(jamf.servers["alpha"].overrides) == sent  # the webhooks are about the very Macs that changed


def _free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_simulate_jamf_fails_and_says_why_when_the_portal_is_not_there(simulator, jamf):
    """Issue 14: the demo posted to the wrong port and exited 0 with "ConnectionError 12"."""
    from tests.factories import TenantFactory

    with_secret(connect(TenantFactory(slug="alpha"), simulator, count=5))
    nowhere = "http://127.0.0.1:%d" % _free_port()
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"3 of 3 webhooks failed\. ConnectionError: the portal did not answer"):
        call_command("simulate_jamf", "alpha", "--count", "3", "--portal-url", nowhere, stdout=out)
    assert "ConnectionError 3" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_simulate_jamf_fails_when_the_portal_refuses_the_secret(live_server, simulator, jamf):
    from portal.models import Tenant
    from tests.factories import TenantFactory

    tenant = with_secret(connect(TenantFactory(slug="alpha"), simulator, count=5))
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)  # the receiver answers 401 for it
    out = io.StringIO()
    with pytest.raises(CommandError, match="2 of 2 webhooks failed. 401: the portal refused the webhook secret"):
        call_command("simulate_jamf", "alpha", "--count", "2", "--portal-url", live_server.url, stdout=out)
    assert "401 2" in out.getvalue()
