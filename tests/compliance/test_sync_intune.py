"""manage.py sync_intune: evaluate and deliver now, or print the payloads with --dry-run."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from compliance.models import ComplianceReport
from portal.models import SyncRun
from tests.compliance.intune_helpers import microsoft
from tests.compliance.sync_helpers import registered_macs, statuses

pytestmark = pytest.mark.django_db
Status = ComplianceReport.Status


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("sync_intune", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_sync_evaluates_delivers_and_summarises(simulator, intune_tenant):
    registered_macs(intune_tenant, 7)

    out, _err = run("--tenant", "alpha", "--no-progress")

    assert "alpha: 7 Macs evaluated, 7 reports queued; 7 accepted by Intune in 2 messages, 0 failed, " \
           "7 completed by Intune so far, 0 waiting to be retried" in out
    assert statuses(intune_tenant) == {Status.COMPLETED: 7}
    assert microsoft(simulator).stats["uploads_applied"] == 2
    kinds = sorted(SyncRun.objects.values_list("kind", "status"))
    assert kinds == [("deliver", "succeeded"), ("evaluate", "succeeded"), ("status", "succeeded")]

    out, _err = run("--no-progress")  # every enabled tenant; nothing changed, nothing sent
    assert "alpha: 7 Macs evaluated, 0 reports queued; 0 accepted" in out


def test_dry_run_prints_the_payloads_and_writes_nothing(simulator, intune_tenant):
    mac, = registered_macs(intune_tenant, 1)

    out, _err = run("--tenant", "alpha", "--dry-run")

    assert "## %s / user0: new" % mac.name in out
    start = out.index("[")
    entities, _end = json.JSONDecoder().raw_decode(out[start:])
    assert [e["EntityType"] for e in entities] == [1, 4]
    assert entities[0]["DeviceName"] == mac.name
    assert "Dry run: 1 registered pairs, 1 reports would be queued, 0 unchanged; 0 already waiting" in out
    assert not ComplianceReport.objects.exists() and not SyncRun.objects.exists()
    assert microsoft(simulator).stats["uploads_applied"] == 0


def test_unknown_tenant_and_disabled_tenant(tenant_b):
    with pytest.raises(CommandError, match="No tenant with the slug 'nope'"):
        run("--tenant", "nope")
    out, _err = run("--tenant", tenant_b.slug)
    assert "the Intune integration is disabled; nothing sent" in out
    out, _err = run()
    assert "No active tenant has the Intune integration enabled." in out
