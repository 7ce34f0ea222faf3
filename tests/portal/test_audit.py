"""The audit trail (issue 13 item 4): every change and action by a person or an API token leaves an entry
saying who (user, or token and its user), when, which tenant, what (old and new values; secrets only as
set / rotated), and from which address; secret values never reach it.
"""

import datetime
import json

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from compliance.models import CompliancePolicy
from compliance.outbox import queue_reports
from devices.jamf.samples import make_record
from devices.models import Computer
from portal import audit
from portal.client_address import client_ip
from portal.models import AuditEvent, ClientSecret, Membership
from tests.api.conftest import token_client
from tests.compliance import conftest as compliance_fixtures
from tests.compliance.intune_helpers import connect, microsoft
from tests.compliance.sync_helpers import drain, registered_macs
from tests.conftest import member
from tests.factories import ClientSecretFactory, ComputerFactory, UserFactory

pytestmark = pytest.mark.django_db
fast_delivery = compliance_fixtures.fast_delivery
intune_tenant = compliance_fixtures.intune_tenant

SECRET_1 = "Known~Secret~One~0123456789abcdef"
SECRET_2 = "Known~Secret~Two~fedcba9876543210"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def entries(**filters):
    return list(AuditEvent.objects.filter(**filters).order_by("id"))


def only(**filters):
    found = entries(**filters)
    assert len(found) == 1, [(e.event, e.object_repr, e.changes) for e in AuditEvent.objects.all()]
    return found[0]


def assert_no_secret(*secrets):
    """Every column of every audit row, as text: no secret value (nor a half of one) may appear."""
    dump = json.dumps(list(AuditEvent.objects.values()), default=str)
    for secret in secrets:
        assert secret not in dump
        assert secret[len(secret) // 2:] not in dump  # auditlog's default mask keeps the second half
        assert secret[: len(secret) // 2] not in dump


def post_action(client, url, action, pks):
    return client.post(url, {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks], "post": "yes"})


# -- who, when, where, what --------------------------------------------------------------------------


def test_api_change_names_the_token_its_user_the_address_and_old_and_new_values(tenant_a, admin_a):
    client = token_client(admin_a)
    before = timezone.now()
    response = client.patch("/api/v1/tenants/alpha/", {
        "support_contact": "help@alpha.example", "landing_page": "access_denied",
    }, format="json", HTTP_X_FORWARDED_FOR="198.51.100.66")
    assert response.status_code == 200, response.content

    entry = only(event="update", tenant=tenant_a)
    assert entry.actor == admin_a and entry.actor_username == admin_a.username
    assert entry.api_token_key == client.token[:15]
    assert AuthToken.objects.filter(token_key=entry.api_token_key, user=admin_a).exists()
    assert entry.remote_addr == "127.0.0.1"  # no proxy declared: the forgeable header is ignored
    assert entry.timestamp >= before
    assert entry.changes["landing_page"] == ["registration", "access_denied"]
    assert entry.changes["support_contact"] == ["", "help@alpha.example"]
    assert entry.object_repr == "Alpha"


def test_behind_a_declared_proxy_the_address_is_the_one_the_proxy_saw(tenant_a, admin_a, settings):
    settings.PORTAL_TRUSTED_PROXIES = 1
    client = token_client(admin_a)
    client.patch("/api/v1/tenants/alpha/", {"support_contact": "x"}, format="json",
                 HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    assert only(event="update").remote_addr == "203.0.113.9"


@pytest.mark.parametrize("proxies, forwarded, expected", [
    (0, "6.6.6.6", "10.0.0.2"),
    (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),
    (2, "6.6.6.6, 203.0.113.9, 10.0.0.1", "203.0.113.9"),
    (1, "203.0.113.9:5555", "203.0.113.9"),
    (1, "[2001:db8::1]:443", "2001:db8::1"),
    (1, "not-an-address", "10.0.0.2"),
    (1, "", "10.0.0.2"),
])
def test_client_address_honours_the_trusted_proxy_count(settings, proxies, forwarded, expected):
    settings.PORTAL_TRUSTED_PROXIES = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_admin_change_names_the_signed_in_person(client, tenant_a, msp_user):
    from tests.portal.test_admin import tenant_post

    client.force_login(msp_user)
    response = client.post("/admin/portal/tenant/%d/change/" % tenant_a.pk, tenant_post(
        tenant_a, landing_page="custom", landing_custom_url="https://help.alpha.example/mac"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = only(event="update", tenant=tenant_a)
    assert (entry.actor, entry.api_token_key, entry.remote_addr) == (msp_user, "", "127.0.0.1")
    assert entry.changes["landing_page"] == ["registration", "custom"]
    assert entry.changes["landing_custom_url"] == ["", "https://help.alpha.example/mac"]


def test_a_command_names_its_actor_with_auditlogs_set_actor(tenant_a, msp_user):
    from auditlog.context import set_actor

    with set_actor(msp_user):
        tenant_a.support_contact = "ops@msp.example"
        tenant_a.save()
    entry = only(event="update")
    assert (entry.actor, entry.actor_username, entry.remote_addr) == (msp_user, "msp", None)


# -- secrets: set / rotated, never the value -----------------------------------------------------------


def test_tenant_secrets_set_and_rotated_through_the_api_never_logged(tenant_a, admin_a):
    client = token_client(admin_a)
    assert client.patch("/api/v1/tenants/alpha/", {"jamf_client_secret": SECRET_1, "webhook_secret": SECRET_2},
                        format="json").status_code == 200
    assert client.patch("/api/v1/tenants/alpha/", {"jamf_client_secret": SECRET_2},
                        format="json").status_code == 200
    assert client.patch("/api/v1/tenants/alpha/", {"webhook_secret": ""}, format="json").status_code == 200
    first, second, third = entries(event="update", tenant=tenant_a)
    assert first.changes["jamf_client_secret"] == ["not set", "set"]
    assert first.changes["webhook_secret"] == ["not set", "set"]
    assert second.changes == {"jamf_client_secret": ["set", "rotated"]}
    assert third.changes == {"webhook_secret": ["set", "not set"]}
    assert_no_secret(SECRET_1, SECRET_2)


def test_entra_client_secrets_added_rotated_and_removed_never_logged(tenant_a, admin_a):
    client = token_client(admin_a)
    expires = (timezone.now() + datetime.timedelta(days=90)).isoformat()
    response = client.post("/api/v1/client-secrets/", {"tenant": "alpha", "value": SECRET_1, "expires_at": expires,
                                                       "description": "2026 rotation"}, format="json")
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert client.patch("/api/v1/client-secrets/%d/" % pk, {"value": SECRET_2}, format="json").status_code == 200
    assert client.delete("/api/v1/client-secrets/%d/" % pk).status_code == 204

    created, rotated, deleted = entries(tenant=tenant_a, content_type__model="clientsecret")
    assert (created.event, created.changes["value"], created.changes["description"]) == (
        "create", ["not set", "set"], [None, "2026 rotation"])
    assert (rotated.event, rotated.changes) == ("update", {"value": ["set", "rotated"]})
    assert (deleted.event, deleted.changes["value"]) == ("delete", ["set", "not set"])
    assert {e.actor for e in (created, rotated, deleted)} == {admin_a}
    assert_no_secret(SECRET_1, SECRET_2)


def test_secrets_set_in_the_admin_are_recorded_as_set(client, tenant_a, msp_user):
    from tests.portal.test_admin import tenant_post

    client.force_login(msp_user)
    data = tenant_post(tenant_a, jamf_url="https://alpha.jamfcloud.com", jamf_client_id="api-client",
                       jamf_client_secret=SECRET_1, **{
                           "client_secrets-TOTAL_FORMS": 1, "client_secrets-0-value": SECRET_2,
                           "client_secrets-0-description": "new", "client_secrets-0-expires_at_0": "2030-01-01",
                           "client_secrets-0-expires_at_1": "00:00:00"})
    response = client.post("/admin/portal/tenant/%d/change/" % tenant_a.pk, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    tenant_entry = only(content_type__model="tenant", event="update")
    assert tenant_entry.changes["jamf_client_secret"] == ["not set", "set"]
    assert only(content_type__model="clientsecret").changes["value"] == ["not set", "set"]
    assert ClientSecret.objects.get().value == SECRET_2
    assert_no_secret(SECRET_1, SECRET_2)


def test_every_secret_field_of_an_audited_model_is_masked():
    from auditlog.registry import auditlog

    from portal.fields import EncryptedTextField

    models = auditlog.get_models()
    assert {m._meta.label for m in models} >= {"portal.Tenant", "portal.ClientSecret", "portal.Membership",
                                               "compliance.CompliancePolicy", "auth.User", "knox.AuthToken"}
    for model in models:
        masked = set(auditlog.get_model_fields(model)["mask_fields"])
        secret = {f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)}
        assert secret <= masked, model


# -- memberships, roles, users ----------------------------------------------------------------------------


def test_memberships_and_roles_given_changed_and_taken_in_the_admin(client, tenant_a, admin_a):
    colleague = member(tenant_a, "viewer", username="colleague")
    AuditEvent.objects.all().delete()
    client.force_login(admin_a)
    membership = Membership.objects.get(user=colleague)
    url = "/admin/portal/membership/%d/change/" % membership.pk
    response = client.post(url, {"user": colleague.pk, "tenant": tenant_a.pk, "role": "operator"})
    assert response.status_code == 302
    response = client.post("/admin/portal/membership/%d/delete/" % membership.pk, {"post": "yes"})
    assert response.status_code == 302

    changed, removed = entries(content_type__model="membership")
    assert (changed.event, changed.changes, changed.tenant_id, changed.actor) == (
        "update", {"role": ["viewer", "operator"]}, tenant_a.pk, admin_a)
    assert (removed.event, removed.tenant_id, removed.changes["role"]) == ("delete", tenant_a.pk, ["operator", None])


def test_a_membership_given_by_msp_staff(client, tenant_a, msp_user):
    newcomer = UserFactory(username="newcomer")
    client.force_login(msp_user)
    response = client.post("/admin/portal/membership/add/", {"user": newcomer.pk, "tenant": tenant_a.pk,
                                                             "role": "admin"})
    assert response.status_code == 302
    entry = only(content_type__model="membership")
    assert (entry.event, entry.actor, entry.tenant_id) == ("create", msp_user, tenant_a.pk)
    assert entry.changes["role"] == [None, "admin"] and entry.changes["user"] == [None, newcomer.pk]


def test_msp_staff_rights_and_passwords_of_users(client, msp_user):
    person = UserFactory(username="newcomer")
    AuditEvent.objects.all().delete()
    client.force_login(msp_user)
    person.is_superuser = True
    person.set_password(SECRET_1)
    person.save()
    entry = only(content_type__model="user")
    assert entry.changes["is_superuser"] == [False, True]
    assert entry.changes["password"] == ["set", "rotated"]
    assert entry.tenant_id is None
    assert_no_secret(SECRET_1)


# -- compliance policies -----------------------------------------------------------------------------------


def test_compliance_policies_created_changed_and_deleted_through_the_api(tenant_a, admin_a):
    client = token_client(admin_a)
    response = client.post("/api/v1/compliance-policies/", {"tenant": "alpha", "name": "Baseline",
                                                            "min_os_version": "14.7"}, format="json")
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert client.patch("/api/v1/compliance-policies/%d/" % pk, {"require_filevault": True},
                        format="json").status_code == 200
    assert client.delete("/api/v1/compliance-policies/%d/" % pk).status_code == 204
    created, changed, deleted = entries(content_type__model="compliancepolicy")
    assert created.event == "create" and created.changes["min_os_version"] == [None, "14.7"]
    assert changed.changes == {"require_filevault": [False, True]}
    assert deleted.event == "delete" and {created.tenant_id, changed.tenant_id, deleted.tenant_id} == {tenant_a.pk}
    assert not CompliancePolicy.objects.exists()


# -- actions that are not saves -------------------------------------------------------------------------------


def test_retire_and_resend_through_the_api(simulator, intune_tenant, operator_a):
    mac, = registered_macs(intune_tenant, 1)
    client = token_client(operator_a)
    assert client.post("/api/v1/computers/%d/resend/" % mac.pk).status_code == 202
    assert client.post("/api/v1/computers/%d/retire/" % mac.pk).status_code == 200

    resend, retire = entries(action=AuditEvent.Action.PERFORM)
    for entry, event in ((resend, "resend"), (retire, "retire")):
        assert (entry.event, entry.object_id, entry.tenant_id, entry.actor) == (
            event, mac.pk, intune_tenant.pk, operator_a)
        assert entry.api_token_key == client.token[:15] and entry.content_type.model == "computer"
    assert resend.additional_data["reports_queued"] == 1


def test_bulk_retire_and_resend_in_the_admin_leave_an_entry_per_mac(client, simulator, intune_tenant, operator_a):
    macs = registered_macs(intune_tenant, 3)
    client.force_login(operator_a)
    assert post_action(client, "/admin/devices/computer/", "resend_to_intune", [m.pk for m in macs]).status_code == 302
    assert post_action(client, "/admin/devices/computer/", "retire_in_intune", [m.pk for m in macs]).status_code == 302
    for event in ("resend", "retire"):
        found = entries(event=event)
        assert sorted(e.object_id for e in found) == sorted(m.pk for m in macs)
        assert {(e.actor_id, e.tenant_id, e.remote_addr) for e in found} == {
            (operator_a.pk, intune_tenant.pk, "127.0.0.1")}
    assert Computer.objects.filter(retired_at__isnull=False).count() == 3  # done by a bulk update


def test_delete_from_entra_and_intune_in_the_admin(client, simulator, intune_tenant, operator_a):
    mac, = registered_macs(intune_tenant, 1)
    queue_reports(intune_tenant.pk)
    drain(intune_tenant)
    device_id = Computer.objects.get(pk=mac.pk).entra_device_id
    client.force_login(operator_a)
    response = post_action(client, "/admin/devices/computer/", "delete_in_entra_and_intune", [mac.pk])
    assert response.status_code == 302
    assert device_id in microsoft(simulator).tenant(intune_tenant.entra_tenant).deleted_managed
    entry = only(event="delete_from_entra_intune")
    assert (entry.object_id, entry.actor, entry.tenant_id) == (mac.pk, operator_a, intune_tenant.pk)
    assert entry.additional_data == {device_id: "deleted"}


def test_sync_through_the_api_and_the_admin(client, tenant_a, operator_a):
    token = token_client(operator_a)
    assert token.post("/api/v1/tenants/alpha/sync/").status_code == 202
    client.force_login(operator_a)
    assert client.post(reverse("admin:portal_tenant_sync_now", args=[tenant_a.pk])).status_code == 302
    by_api, by_admin = entries(event="sync_now")
    assert by_api.api_token_key == token.token[:15] and by_admin.api_token_key == ""
    assert {by_api.actor, by_admin.actor} == {operator_a} and {by_api.tenant_id, by_admin.tenant_id} == {tenant_a.pk}


def test_provision_and_deprovision_in_the_admin(client, simulator, tenant_a, admin_a):
    connect(simulator, tenant_a)
    AuditEvent.objects.all().delete()
    client.force_login(admin_a)
    assert client.post(reverse("admin:portal_tenant_provision", args=[tenant_a.pk])).status_code == 302
    assert client.post(reverse("admin:portal_tenant_deprovision", args=[tenant_a.pk])).status_code == 302
    assert [e.event for e in entries(action=AuditEvent.Action.PERFORM)] == ["provision", "deprovision"]
    switched = entries(event="update", tenant=tenant_a)
    assert [e.changes for e in switched] == [{"intune_enabled": [False, True]}, {"intune_enabled": [True, False]}]
    assert {e.actor for e in entries(tenant=tenant_a)} == {admin_a}


def test_test_connection_through_the_api_and_the_admin(client, simulator, tenant_a, operator_a):
    connect(simulator, tenant_a)
    AuditEvent.objects.all().delete()
    assert token_client(operator_a).post("/api/v1/tenants/alpha/test-connection/").status_code == 200
    client.force_login(operator_a)
    response = client.post(reverse("admin:portal_tenant_test_connection", args=[tenant_a.pk]))
    assert response.status_code == 200
    by_api, by_admin = entries(event="test_connection")
    assert by_api.additional_data == {"ok": True, "failed_step": ""}
    assert by_api.api_token_key and not by_admin.api_token_key and by_admin.actor == operator_a


def test_test_connection_by_command(simulator, tenant_a):
    connect(simulator, tenant_a)
    call_command("test_connection", "alpha")
    entry = only(event="test_connection")
    assert entry.actor is None and entry.tenant_id == tenant_a.pk  # a command with no set_actor: "system"


def test_webhook_secret_generation_is_one_entry_without_the_secret(client, tenant_a, admin_a):
    client.force_login(admin_a)
    response = client.post(reverse("admin:portal_tenant_jamf_webhooks", args=[tenant_a.pk]), follow=True)
    secret = tenant_a.__class__.objects.get(pk=tenant_a.pk).webhook_secret
    assert secret and secret in response.content.decode()  # shown once, to the person
    response = client.post("/admin/portal/tenant/", {"action": "rotate_webhook_secret",
                                                     ACTION_CHECKBOX_NAME: [str(tenant_a.pk)]})
    second = tenant_a.__class__.objects.get(pk=tenant_a.pk).webhook_secret
    first, rotated = entries(tenant=tenant_a, action=AuditEvent.Action.PERFORM)
    assert (first.event, first.changes["webhook_secret"], first.actor) == (
        "generate_webhook_secret", ["not set", "set"], admin_a)
    assert (rotated.event, rotated.changes) == ("generate_webhook_secret", {"webhook_secret": ["set", "rotated"]})
    assert_no_secret(secret, second)


# -- API tokens -----------------------------------------------------------------------------------------------


def test_api_tokens_created_and_revoked_through_the_api(admin_a):
    client = token_client(admin_a)
    AuditEvent.objects.all().delete()
    response = client.post("/api/v1/tokens/", {"expires_in_days": 7}, format="json")
    assert response.status_code == 201
    created_token = response.json()["token"]
    assert client.delete("/api/v1/tokens/%s/" % response.json()["id"]).status_code == 204
    created, revoked = entries(content_type__model="authtoken")
    key = created_token[:15]
    assert (created.event, created.object_pk, created.actor, created.api_token_key) == (
        "create", key, admin_a, client.token[:15])
    assert created.object_repr == "API token %s of %s" % (key, admin_a.username)
    assert (revoked.event, revoked.object_pk) == ("delete", key)
    assert_no_secret(created_token, response.json()["id"])  # neither the token nor its digest


def test_api_tokens_created_and_revoked_in_the_admin(client, admin_a, settings):
    admin_a.is_staff = True
    admin_a.save()
    AuditEvent.objects.all().delete()
    client.force_login(admin_a)
    response = client.post("/admin/portal/apitoken/add/", {"user": admin_a.pk, "expires_in_days": 30})
    assert response.status_code == 302
    token = AuthToken.objects.get(user=admin_a)
    response = client.post("/admin/portal/apitoken/%s/delete/" % token.pk, {"post": "yes"})
    assert response.status_code == 302
    created, revoked = entries(content_type__model="authtoken")
    assert (created.event, revoked.event, created.actor, revoked.actor) == ("create", "delete", admin_a, admin_a)
    assert created.object_pk == revoked.object_pk == token.token_key
    assert_no_secret(token.digest)


# -- machine data is not audited ----------------------------------------------------------------------------


def test_imports_and_evaluation_write_no_audit_entries(tenant_a):
    from devices.importer import import_records

    import_records(tenant_a, [make_record(n, tenant_a.slug) for n in range(20)])
    ComputerFactory(tenant=tenant_a, jamf_id="9999")
    assert Computer.objects.filter(tenant=tenant_a).count() == 21
    assert not AuditEvent.objects.exclude(content_type__model="tenant").exists()


def test_prune_keeps_the_retention_period(tenant_a, settings):
    ClientSecretFactory(tenant=tenant_a)
    old = audit.record("sync_now", tenant_a)
    AuditEvent.objects.filter(pk=old.pk).update(timestamp=timezone.now() - datetime.timedelta(days=800))
    settings.AUDIT_RETENTION_DAYS = 730
    kept = AuditEvent.objects.count() - 1
    assert audit.prune() == 1
    assert AuditEvent.objects.count() == kept and not AuditEvent.objects.filter(pk=old.pk).exists()
    settings.AUDIT_RETENTION_DAYS = 0
    AuditEvent.objects.update(timestamp=timezone.now() - datetime.timedelta(days=8000))
    assert audit.prune() == 0


def test_deleted_users_stay_named(tenant_a, viewer_a):
    from auditlog.context import set_actor

    leaver = member(tenant_a, "admin", username="leaver")
    with set_actor(leaver):
        Membership.objects.filter(user=viewer_a).get().delete()
    entry = only(event="delete", content_type__model="membership")
    get_user_model().objects.filter(pk=leaver.pk).delete()
    entry.refresh_from_db()
    assert entry.actor is None and entry.actor_username == "leaver"  # the actor's row went; their name stays


# -- reading the trail: the admin and the API ------------------------------------------------------------------


def test_the_admin_shows_each_tenant_admin_their_own_trail_read_only(client, tenant_a, tenant_b, admin_a, viewer_a,
                                                                    msp_user):
    alpha = audit.record("sync_now", tenant_a)
    bravo = audit.record("sync_now", tenant_b)
    client.force_login(admin_a)
    page = client.get("/admin/portal/auditevent/")
    assert page.status_code == 200
    shown = {row.pk for row in page.context["cl"].result_list}
    assert alpha.pk in shown and bravo.pk not in shown
    assert all(row.tenant_id == tenant_a.pk for row in page.context["cl"].result_list)
    assert client.get("/admin/portal/auditevent/%d/change/" % alpha.pk).status_code == 200
    assert client.get("/admin/portal/auditevent/%d/change/" % bravo.pk).status_code == 302  # "does not exist"
    assert client.post("/admin/portal/auditevent/%d/delete/" % alpha.pk, {"post": "yes"}).status_code == 403
    assert client.get("/admin/portal/auditevent/add/").status_code == 403
    client.force_login(viewer_a)
    assert client.get("/admin/portal/auditevent/").status_code == 403
    client.force_login(msp_user)
    shown = {row.pk for row in client.get("/admin/portal/auditevent/").context["cl"].result_list}
    assert {alpha.pk, bravo.pk} <= shown
    detail = client.get("/admin/portal/auditevent/%d/change/" % alpha.pk).content.decode()
    assert "Queued a sync" in detail


def test_the_api_lists_filters_and_pages_the_trail(tenant_a, tenant_b, admin_a, admin_b, msp_user,
                                                  django_assert_max_num_queries):
    client = token_client(admin_a)
    for n in range(5):
        client.patch("/api/v1/tenants/alpha/", {"support_contact": "c%d" % n}, format="json")
    audit.record("sync_now", tenant_b)
    with django_assert_max_num_queries(8):
        page = client.get("/api/v1/audit-events/", {"page_size": 3}).json()
    assert len(page["results"]) == 3 and page["next"]
    rows = page["results"] + client.get(page["next"]).json()["results"]
    assert {row["tenant"] for row in rows} == {"alpha"}
    latest = rows[0]
    assert (latest["actor"], latest["api_token"], latest["remote_addr"], latest["event"], latest["object_type"]) == (
        admin_a.username, client.token[:15], "127.0.0.1", "update", "portal.tenant")
    assert latest["changes"] == {"support_contact": ["c3", "c4"]} and latest["action"] == "update"

    assert client.get("/api/v1/audit-events/", {"actor": "nobody"}).json()["results"] == []
    by_actor = client.get("/api/v1/audit-events/", {"actor": admin_a.username, "event": "update"}).json()["results"]
    assert len(by_actor) == 5
    future = (timezone.now() + datetime.timedelta(hours=1)).isoformat()
    assert client.get("/api/v1/audit-events/", {"timestamp_after": future}).json()["results"] == []
    assert client.get("/api/v1/audit-events/", {"timestamp_after": "yesterday"}).status_code == 400
    staff = token_client(msp_user).get("/api/v1/audit-events/", {"tenant": "bravo"}).json()["results"]
    assert [row["event"] for row in staff][:1] == ["sync_now"] and {row["tenant"] for row in staff} == {"bravo"}
    assert token_client(admin_b).get("/api/v1/audit-events/%d/" % latest["id"]).status_code == 404
    assert client.post("/api/v1/audit-events/", {}, format="json").status_code == 405


def test_the_api_endpoint_is_in_the_schema(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    assert "/api/v1/audit-events/" in schema["paths"] and "/api/v1/audit-events/{id}/" in schema["paths"]
    parameters = {p["name"] for p in schema["paths"]["/api/v1/audit-events/"]["get"]["parameters"]}
    assert {"tenant", "actor", "event", "timestamp_after", "timestamp_before", "cursor", "page_size"} <= parameters
