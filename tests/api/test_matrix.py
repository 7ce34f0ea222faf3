"""The authorization matrix, generated from the API router: every route, method and action of every
registered viewset, with and without each format suffix it renders (``.json``, ``.api``, ``.csv``) ×
anonymous, viewer / operator / admin of tenant A, admin of tenant B, viewer of A who is admin of B,
and MSP staff, against an object of tenant A. A viewset added to the router without a spec here fails
``test_every_endpoint_has_a_spec``. A list shows exactly the tenants whose rows the caller may read one
by one (the detail's role), never a row of a tenant the caller may not see.
"""

import csv
import datetime
import io
import json
from dataclasses import dataclass, field

import pytest
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from compliance.models import CompliancePolicy, ComplianceReport
from devices.jamf.samples import make_record
from devices.models import InventoryEvent
from portal import audit, tenancy
from portal.api.urls import router
from portal.api.views import optional
from portal.models import SyncRun
from tests.api.conftest import token_client
from tests.conftest import member
from tests.factories import ClientSecretFactory, ComputerFactory, MembershipFactory, TenantFactory, UserFactory

ACTORS = ["anonymous", "viewer_a", "operator_a", "admin_a", "admin_b", "viewer_a_admin_b", "superuser"]
#: Each signed-in actor's role per tenant (MSP staff hold every role everywhere).
HELD = {
    "viewer_a": {"alpha": tenancy.VIEWER},
    "operator_a": {"alpha": tenancy.OPERATOR},
    "admin_a": {"alpha": tenancy.ADMIN},
    "admin_b": {"bravo": tenancy.ADMIN},
    "viewer_a_admin_b": {"alpha": tenancy.VIEWER, "bravo": tenancy.ADMIN},
    "superuser": {"alpha": tenancy.ADMIN, "bravo": tenancy.ADMIN},
}
METHODS = ["get", "post", "put", "patch", "delete"]
MSP, SELF = "msp", "self"


@dataclass
class Spec:
    """What the test knows of an endpoint, independently of the code under test."""

    make: callable  # (world) -> an object of tenant A
    lookup: callable = lambda obj: {"pk": obj.pk}  # noqa: E731
    row_tenant: callable = lambda row: row["tenant"]  # noqa: E731 - the slug of a listed row's tenant
    create: callable = None  # (world) -> body naming tenant A
    update: callable = None  # (world, obj) -> full body
    patch: dict = None
    roles: dict = field(default_factory=dict)  # action -> least role (default: viewer reads, admin writes)
    success: dict = field(default_factory=dict)  # action -> status on success (default by action)
    content_type: dict = field(default_factory=dict)  # action -> request content type
    body: dict = field(default_factory=dict)  # action -> (world) -> body
    owner_scoped: bool = False  # rows belong to a user, not a tenant


def _policy(world):
    return CompliancePolicy.objects.create(tenant=world.tenant_a, name="Baseline", require_filevault=True)


def _token(world):
    instance, _ = AuthToken.objects.create(user=world.users["admin_a"])
    return instance


def _connection_status():
    return 501 if optional("compliance.connection", "test_connection") is None else 200


def _sync_status():
    return 501 if optional("compliance.tasks", "evaluate_and_report_task") is None else 202


def _resend_status():
    return 501 if optional("compliance.sync", "resend") is None else 202


SPECS = {
    "tenant": Spec(
        make=lambda w: w.tenant_a,
        lookup=lambda obj: {"slug": obj.slug},
        row_tenant=lambda row: row["slug"],
        create=lambda w: {"name": "Charlie", "slug": "charlie"},
        update=lambda w, obj: {"name": "Alpha renamed", "slug": obj.slug},
        patch={"support_contact": "help@alpha.example"},
        roles={"create": MSP, "destroy": MSP, "test_connection": tenancy.OPERATOR, "sync": tenancy.OPERATOR,
               "consent_url": tenancy.ADMIN, "inventory": tenancy.OPERATOR},
        success={"test_connection": _connection_status, "sync": _sync_status, "consent_url": 200,
                 "inventory": 200, "destroy": 409},  # tenant A still owns rows: PROTECT answers 409
        content_type={"inventory": "application/json"},
        body={"inventory": lambda w: json.dumps(make_record(900, "alpha"))},
    ),
    "client-secret": Spec(
        make=lambda w: ClientSecretFactory(tenant=w.tenant_a),
        create=lambda w: {"tenant": "alpha", "value": "new~secret", "expires_at": _future()},
        update=lambda w, obj: {"tenant": "alpha", "description": "rotated", "expires_at": _future()},
        patch={"description": "renamed"},
        roles={"list": tenancy.ADMIN, "retrieve": tenancy.ADMIN},
    ),
    "computer": Spec(
        make=lambda w: w.computer_a,
        roles={"retire": tenancy.OPERATOR, "resend": tenancy.OPERATOR},
        success={"retire": 200, "resend": _resend_status},
    ),
    "inventory-event": Spec(
        make=lambda w: InventoryEvent.objects.create(tenant=w.tenant_a, source="upload", raw_body="{}"),
    ),
    "compliance-policy": Spec(
        make=_policy,
        create=lambda w: {"tenant": "alpha", "name": "Encryption", "require_filevault": True},
        update=lambda w, obj: {"tenant": "alpha", "name": "Baseline", "require_sip": True},
        patch={"enabled": False},
    ),
    "compliance-report": Spec(make=lambda w: _report(w.tenant_a, w.computer_a)),
    "sync-run": Spec(make=lambda w: _sync_run(w.tenant_a)),
    "report": Spec(make=lambda w: None),
    "audit-event": Spec(
        make=lambda w: audit.record("sync_now", w.tenant_a),
        roles={"list": tenancy.ADMIN, "retrieve": tenancy.ADMIN},  # the trail is for a tenant's admins
    ),
    "token": Spec(
        make=_token,
        lookup=lambda obj: {"pk": obj.digest},
        row_tenant=None,
        create=lambda w: {"expires_in_days": 7},
        owner_scoped=True,
        roles={action: SELF for action in ("list", "retrieve", "create", "destroy")},
    ),
}


def _report(tenant, computer):
    return ComplianceReport.objects.create(
        tenant=tenant, computer=computer, username="ada", compliance_status="compliant", inventory_state=0
    )


def _sync_run(tenant):
    return SyncRun.objects.create(tenant=tenant, kind=SyncRun.Kind.EVALUATE, started_at=timezone.now())


def _future():
    return (timezone.now() + datetime.timedelta(days=90)).isoformat()


class World:
    """Two tenants with a Mac each, the six actors, and the rows of tenant B a list must never show to A."""

    def __init__(self):
        self.tenant_a = TenantFactory(name="Alpha", slug="alpha")
        self.tenant_b = TenantFactory(name="Bravo", slug="bravo")
        self.computer_a = ComputerFactory(tenant=self.tenant_a)
        self.computer_b = ComputerFactory(tenant=self.tenant_b)
        self.users = {
            "viewer_a": member(self.tenant_a, tenancy.VIEWER),
            "operator_a": member(self.tenant_a, tenancy.OPERATOR),
            "admin_a": member(self.tenant_a, tenancy.ADMIN),
            "admin_b": member(self.tenant_b, tenancy.ADMIN),
            "viewer_a_admin_b": member(self.tenant_a, tenancy.VIEWER, username="viewer-a-admin-b"),
            "superuser": UserFactory(username="msp", is_superuser=True),
        }
        MembershipFactory(user=self.users["viewer_a_admin_b"], tenant=self.tenant_b, role=tenancy.ADMIN)
        # Rows of tenant B (and a token of B's admin) for the leak checks.
        ClientSecretFactory(tenant=self.tenant_b)
        CompliancePolicy.objects.create(tenant=self.tenant_b, name="Bravo policy")
        InventoryEvent.objects.create(tenant=self.tenant_b, source="webhook", raw_body="{}")
        AuthToken.objects.create(user=self.users["admin_b"])
        _report(self.tenant_b, self.computer_b)
        _sync_run(self.tenant_b)


@dataclass(frozen=True)
class Case:
    basename: str
    url_name: str
    method: str
    action: str | None  # None: a method the route does not serve
    detail: bool
    format: str | None = None

    def __str__(self):
        suffix = "." + self.format if self.format else ""
        return "%s%s %s %s" % (self.url_name, suffix, self.method.upper(), self.action or "(unsupported)")


def _formats(viewset):
    """The format suffixes a viewset's routes answer to: one per renderer (json, api, csv, ...)."""
    return [renderer.format for renderer in viewset().get_renderers()]


def _cases():
    cases = []
    for prefix, viewset, basename in router.registry:
        formats = _formats(viewset)
        for route in router.get_routes(viewset):
            mapping = router.get_method_map(viewset, route.mapping)
            if not mapping:
                continue
            url_name = route.name.format(basename=basename)
            for method in METHODS:
                cases.append(Case(basename, url_name, method, mapping.get(method), route.detail))
            # The same route with each format suffix (the router adds them all): what it serves.
            for fmt in formats:
                for method in METHODS:
                    if method in mapping:
                        cases.append(Case(basename, url_name, method, mapping[method], route.detail, fmt))
    return cases


CASES = _cases()


def test_every_endpoint_has_a_spec():
    assert {case.basename for case in CASES} <= set(SPECS), "add a Spec for the new endpoint"
    assert len(CASES) > 40


def _role(spec, action, method="get"):
    return spec.roles.get(action) or (
        tenancy.VIEWER if action in ("list", "retrieve") or method == "get" else tenancy.ADMIN
    )


def _holds(actor, tenant, role):
    held = HELD[actor].get(tenant)
    return held is not None and tenancy.ROLE_RANK[held] >= tenancy.ROLE_RANK[role]


def _expected(spec, case, actor):
    if actor == "anonymous":
        return 401
    if case.action is None:
        return 405
    action = case.action
    role = _role(spec, action, case.method)
    success = spec.success.get(action) or {"create": 201, "destroy": 204}.get(action, 200)
    success = success() if callable(success) else success
    if case.format == "api" and success == 204:
        success = 200  # DRF's browsable API shows a page for a 204
    if role == SELF:
        if case.detail and actor != "admin_a":  # the token belongs to admin A
            return 404
        return success
    if actor == "superuser":
        return success
    if role == MSP:
        return 403
    if case.detail:  # the object of tenant A
        if "alpha" not in HELD[actor]:
            return 404
        return success if _holds(actor, "alpha", role) else 403
    if not any(_holds(actor, tenant, role) for tenant in HELD[actor]):
        return 403
    if action == "create":  # names tenant A
        if "alpha" not in HELD[actor]:
            return 400
        return success if _holds(actor, "alpha", role) else 403
    return success  # a list: of the rows the actor may read one by one (checked below)


def _body(spec, case, world, obj):
    if case.action in spec.body:
        return spec.body[case.action](world)
    if case.action == "create" and spec.create:
        return spec.create(world)
    if case.action == "update" and spec.update:
        return spec.update(world, obj)
    if case.action == "partial_update" and spec.patch:
        return spec.patch
    return {}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_authorization_matrix(api, case, request, db):
    """One route, method and action × every actor; each actor's request is rolled back after it."""
    spec = SPECS[case.basename]
    world = World()
    if case.basename == "tenant" and case.action in ("test_connection", "sync") and _connection_status() != 501:
        request.getfixturevalue("simulator")
    obj = spec.make(world)  # also for lists: they must show it to the right callers
    kwargs = spec.lookup(obj) if case.detail else {}
    if case.format:
        kwargs["format"] = case.format
    url = reverse("api:" + case.url_name, kwargs=kwargs)
    body = _body(spec, case, world, obj)
    content_type = spec.content_type.get(case.action, "application/json")

    failures = []
    for actor in ACTORS:
        cache.clear()
        with transaction.atomic():
            client = APIClient() if actor == "anonymous" else token_client(world.users[actor])
            if case.method == "get":
                response = client.get(url)
            else:
                data = body if isinstance(body, str) else json.dumps(body)
                response = getattr(client, case.method)(url, data=data, content_type=content_type)
            content = b"".join(response.streaming_content) if response.streaming else response.content
            expected = _expected(spec, case, actor)
            if response.status_code != expected:
                failures.append((actor, expected, response.status_code, content[:300]))
            elif response.status_code == 200 and case.method == "get" and not case.detail and case.format != "api":
                _assert_list_scope(spec, case, actor, world, content)
            transaction.set_rollback(True)
    assert not failures, "%s: %s" % (case, failures)


def _assert_list_scope(spec, case, actor, world, content):
    """The tenants of a list's rows are exactly those where the actor may read a row by itself."""
    if case.format == "csv":
        rows = list(csv.DictReader(io.StringIO(content.decode())))
        tenants = {row["tenant"] for row in rows}
    else:
        payload = json.loads(content)
        if case.basename == "report":
            rows = payload["tenants"]
            tenants = {row["tenant"] for row in rows}
        else:
            rows = payload["results"]
            if spec.owner_scoped:
                mine = set(AuthToken.objects.filter(user=world.users[actor]).values_list("digest", flat=True))
                assert {row["id"] for row in rows} <= mine
                return
            tenants = {spec.row_tenant(row) for row in rows}
    detail_role = _role(spec, "retrieve") if _has_retrieve(case.basename) else _role(spec, case.action)
    readable = {tenant for tenant in ("alpha", "bravo") if _holds(actor, tenant, detail_role)}
    if actor == "superuser":
        tenants = tenants - {None}  # audit entries of no tenant (users, tokens): MSP staff only
    # World has rows of both tenants: a check that can fail both ways.
    assert tenants == readable, (str(case), actor, tenants, readable)


def _has_retrieve(basename):
    return any(case.basename == basename and case.action == "retrieve" for case in CASES)


def test_json_renderer_is_the_default():
    # The matrix parses lists as JSON: make sure that is what an API client gets by default.
    assert router.registry and JSONRenderer.format == "json"
