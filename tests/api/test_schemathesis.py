"""Schemathesis over every operation of /api/schema/ with an MSP admin's token (the CI step of issue 7).

Fails on any 5xx, on a response that does not match the schema, and on an operation that answers
the same without credentials (ignored authentication). Few examples per operation, to stay fast.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from knox.models import AuthToken
from schemathesis.checks import ignored_auth, not_a_server_error, response_schema_conformance

from compliance.models import CompliancePolicy
from devices.models import InventoryEvent
from tests.factories import ClientSecretFactory, ComputerFactory, TenantFactory, UserAccountFactory, UserFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
CURRENT = {}  # the token of the running test (each test has its own database state)


@schema.auth(refresh_interval=None)
class MSPToken:
    """Explicit credentials, so the ignored-auth check knows them and probes without them."""

    def get(self, case, context):
        return CURRENT.get("token", "none")  # asked once while collecting, before any test runs

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = "Token " + data


@pytest.fixture
def keep_connection():
    """Requests go straight to the WSGI handler, whose start and end close old connections (and with them the
    test's transaction on PostgreSQL); Django's test client avoids the same by disconnecting the receiver."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def msp_token(db, settings, keep_connection):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    tenant = TenantFactory(name="Alpha", slug="alpha")
    computer = ComputerFactory(tenant=tenant, failed_rules=["sip_off"], compliance_status="notCompliant")
    UserAccountFactory(computer=computer)
    ClientSecretFactory(tenant=tenant)
    CompliancePolicy.objects.create(tenant=tenant, name="Baseline", require_filevault=True)
    InventoryEvent.objects.create(tenant=tenant, source="upload", raw_body="{}")
    _, token = AuthToken.objects.create(user=UserFactory(username="msp", is_superuser=True))
    CURRENT["token"] = token
    yield token
    CURRENT.clear()


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_every_operation(case, msp_token):
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance, ignored_auth])
