"""CompliancePolicy: validation, the scoped admin, re-evaluation on change, and the best-practice view."""

import pydoc

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_q.models import OrmQ

from compliance.evaluation import evaluate_tenant
from compliance.models import CompliancePolicy
from devices.models import Computer
from tests.factories import ComputerFactory, UserAccountFactory

pytestmark = pytest.mark.django_db


def run_queued_tasks():
    """Run what django-q2's ORM broker holds, as a worker would; returns the (func, args) run."""
    ran = []
    for row in OrmQ.objects.order_by("id"):
        task = row.task
        pydoc.locate(task["func"])(*task["args"], **task["kwargs"])
        ran.append((task["func"], task["args"]))
        row.delete()
    return ran


def form_data(tenant, **overrides):
    data = {
        "tenant": tenant.pk, "name": "Baseline", "description": "", "enabled": "on", "min_os_version": "",
        "max_os_version": "", "min_os_build": "", "max_os_build": "", "gatekeeper": "", "password_min_length": "",
        "password_type": "", "password_min_character_sets": "", "password_expiration_days": "",
        "password_history": "", "screensaver_minutes": "", "max_inventory_age_days": "",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.mark.parametrize("fields,error_field", [
    ({"min_os_version": "fourteen"}, "min_os_version"),
    ({"max_os_version": "15.1 beta"}, "max_os_version"),
    ({"min_os_build": "14.7"}, "min_os_build"),
    ({"min_os_version": "15.0", "max_os_version": "14.7.1"}, "max_os_version"),
    ({"min_os_build": "24A348", "max_os_build": "23H222"}, "max_os_build"),
    ({"password_min_length": 2}, "password_min_length"),
    ({"password_min_character_sets": 5}, "password_min_character_sets"),
])
def test_invalid_policies_are_refused(tenant_a, fields, error_field):
    policy = CompliancePolicy(tenant=tenant_a, name="P", **fields)
    with pytest.raises(ValidationError) as exc:
        policy.full_clean()
    assert error_field in exc.value.message_dict


def test_valid_policy_is_cleaned(tenant_a):
    policy = CompliancePolicy(tenant=tenant_a, name="P", min_os_version=" 14.7.1 (a) ", max_os_version="15",
                              min_os_build="23H222")
    policy.full_clean()
    assert policy.min_os_version == "14.7.1 (a)"


def test_a_policy_change_in_the_admin_re_evaluates_the_tenant(
    client, tenant_a, tenant_b, admin_a, django_capture_on_commit_callbacks
):
    unencrypted = ComputerFactory(tenant=tenant_a, filevault_state="NOT_ENCRYPTED", entra_device_id="d")
    UserAccountFactory(computer=unencrypted, entra_device_id="d", entra_user_id="u")
    other = ComputerFactory(tenant=tenant_b, filevault_state="NOT_ENCRYPTED")
    evaluate_tenant(tenant_a.pk)
    evaluate_tenant(tenant_b.pk)
    assert Computer.objects.get(pk=unencrypted.pk).failed_rules == ["no_policy"]

    client.force_login(admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/compliance/compliancepolicy/add/",
                               form_data(tenant_a, require_filevault="on"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert run_queued_tasks() == [("compliance.tasks.evaluate_tenant_task", (tenant_a.pk,))]
    computer = Computer.objects.get(pk=unencrypted.pk)
    assert (computer.compliance_status, computer.failed_rules) == ("notCompliant", ["filevault_off"])
    assert computer.user_accounts.get().failed_rules == ["filevault_off"]
    assert Computer.objects.get(pk=other.pk).failed_rules == ["no_policy"]  # the other tenant is untouched

    policy = CompliancePolicy.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/compliance/compliancepolicy/%d/change/" % policy.pk, form_data(tenant_a))
    assert response.status_code == 302
    run_queued_tasks()
    assert Computer.objects.get(pk=unencrypted.pk).compliance_status == "compliant"

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/compliance/compliancepolicy/%d/delete/" % policy.pk, {"post": "yes"})
    assert response.status_code == 302
    assert run_queued_tasks() == [("compliance.tasks.evaluate_tenant_task", (tenant_a.pk,))]
    assert Computer.objects.get(pk=unencrypted.pk).failed_rules == ["no_policy"]


def test_policy_admin_is_scoped(client, tenant_a, tenant_b, admin_a, viewer_a, admin_b):
    mine = CompliancePolicy.objects.bulk_create([CompliancePolicy(tenant=tenant_a, name="A policy")])[0]
    CompliancePolicy.objects.bulk_create([CompliancePolicy(tenant=tenant_b, name="B policy")])

    client.force_login(admin_b)
    listing = client.get("/admin/compliance/compliancepolicy/")
    assert [p.name for p in listing.context["cl"].result_list] == ["B policy"]
    assert client.get("/admin/compliance/compliancepolicy/%d/change/" % mine.pk).status_code == 302  # not found
    response = client.post("/admin/compliance/compliancepolicy/add/", form_data(tenant_a, name="Sneaky"))
    assert response.status_code == 200 and "tenant" in response.context["adminform"].form.errors
    assert not CompliancePolicy.objects.filter(name="Sneaky").exists()

    client.force_login(viewer_a)
    assert client.get("/admin/compliance/compliancepolicy/%d/change/" % mine.pk).status_code == 200
    assert client.get("/admin/compliance/compliancepolicy/add/").status_code == 403
    response = client.post("/admin/compliance/compliancepolicy/%d/change/" % mine.pk,
                           form_data(tenant_a, name="Renamed"))
    assert response.status_code == 403
    assert CompliancePolicy.objects.get(pk=mine.pk).name == "A policy"


@pytest.fixture
def evaluated(tenant_a, tenant_b):
    CompliancePolicy.objects.bulk_create([
        CompliancePolicy(tenant=tenant_a, name="Baseline", require_filevault=True, password_min_length=12),
        CompliancePolicy(tenant=tenant_b, name="B", require_filevault=True),
    ])
    macs = []
    for n, (filevault, length) in enumerate([("ENCRYPTED", 12), ("NOT_ENCRYPTED", 12), ("NOT_ENCRYPTED", 8)]):
        computer = ComputerFactory(tenant=tenant_a, name="Mac %d" % n, filevault_state=filevault,
                                   entra_device_id="d%d" % n, company_portal_version="5.0",
                                   company_portal_seen_at=timezone.now())
        UserAccountFactory(computer=computer, entra_device_id="d%d" % n, entra_user_id="u%d" % n,
                           password_min_length=length)
        macs.append(computer)
    ComputerFactory(tenant=tenant_b, filevault_state="NOT_ENCRYPTED")
    evaluate_tenant(tenant_a.pk)
    evaluate_tenant(tenant_b.pk)
    return macs


def rows_of(response):
    return {row["rule"].code: row for row in response.context["rows"]}


def test_best_practice_view(client, evaluated, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.get("/admin/compliance/compliancepolicy/best-practice/")
    assert response.status_code == 200
    assert response.context["tenant"] == tenant_a
    rows = rows_of(response)
    assert rows["filevault_off"]["failing"] == 2
    assert rows["filevault_off"]["requirements"] == [{"policy": "Baseline", "text": "required"}]
    assert rows["password_min_length"]["failing"] == 1
    assert rows["password_min_length"]["requirements"] == [{"policy": "Baseline", "text": "at least 12"}]
    assert rows["validity_expired"]["failing"] == 0
    assert "sip_off" not in rows  # not configured and nobody fails it
    html = response.content.decode()
    assert "Security &amp; Privacy payload that enables FileVault" in html
    link = rows["filevault_off"]["url"]
    assert link == "/admin/devices/computer/?tenant__id__exact=%d&failing_rule=filevault_off" % tenant_a.pk
    assert link.replace("&", "&amp;") in html
    listed = client.get(link)
    assert sorted(c.name for c in listed.context["cl"].result_list) == ["Mac 1", "Mac 2"]
    groups = {g["label"]: g["count"] for g in response.context["groups"]}
    assert groups["Registered (Company Portal and an Entra device ID)"] == 3
    assert groups["Registered and compliant"] == 1


def test_best_practice_view_is_scoped(client, evaluated, viewer_a, tenant_a, tenant_b, msp_user):
    client.force_login(viewer_a)
    assert client.get("/admin/compliance/compliancepolicy/best-practice/").status_code == 200
    assert client.get("/admin/compliance/compliancepolicy/best-practice/?tenant=%d" % tenant_b.pk).status_code == 404
    client.force_login(msp_user)
    response = client.get("/admin/compliance/compliancepolicy/best-practice/?tenant=%d" % tenant_b.pk)
    assert response.context["tenant"] == tenant_b
    assert rows_of(response)["filevault_off"]["failing"] == 1
    assert [t.pk for t in response.context["tenants"]] == [tenant_a.pk, tenant_b.pk]


def test_best_practice_view_without_policies_explains_the_default(client, tenant_a, admin_a):
    ComputerFactory(tenant=tenant_a)
    evaluate_tenant(tenant_a.pk)
    client.force_login(admin_a)
    response = client.get("/admin/compliance/compliancepolicy/best-practice/")
    assert rows_of(response)["no_policy"]["failing"] == 1
    assert "every Mac is not compliant until a policy is enabled" in response.content.decode()


def test_computer_page_shows_reasons_and_remedies(client, evaluated, admin_a):
    client.force_login(admin_a)
    response = client.get("/admin/devices/computer/%d/change/" % evaluated[2].pk)
    assert response.status_code == 200
    html = response.content.decode()
    assert "FileVault is off." in html
    assert "The password length is not enforced or is shorter than the policy requires." in html
    assert "minimum length 8; policy Baseline: at least 12" in html
    assert "Passcode payload (minimum length)" in html
    assert "re-evaluation is pending" not in html


def test_computer_page_says_when_a_re_evaluation_is_pending(client, evaluated, admin_a):
    Computer.objects.filter(pk=evaluated[0].pk).update(sip="DISABLED")
    CompliancePolicy.objects.filter(name="Baseline").update(require_sip=True)
    client.force_login(admin_a)
    html = client.get("/admin/devices/computer/%d/change/" % evaluated[0].pk).content.decode()
    assert "re-evaluation is pending" in html


@pytest.mark.parametrize("changed,queued", [(["compliance_validity_days"], True), (["support_contact"], False)])
def test_changing_a_tenant_rule_re_evaluates_the_tenant(rf, tenant_a, msp_user, django_capture_on_commit_callbacks,
                                                        changed, queued):
    from types import SimpleNamespace

    from django.contrib import admin

    from portal.admin import TenantAdmin
    from portal.models import Tenant

    request = rf.post("/")
    request.user = msp_user
    tenant_a.compliance_validity_days = 7
    with django_capture_on_commit_callbacks(execute=True):
        TenantAdmin(Tenant, admin.site).save_model(request, tenant_a, SimpleNamespace(changed_data=changed), True)
    expected = [("compliance.tasks.evaluate_tenant_task", (tenant_a.pk,))] if queued else []
    assert [(f, a) for f, a in run_queued_tasks() if f == "compliance.tasks.evaluate_tenant_task"] == expected
