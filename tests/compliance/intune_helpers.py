"""Helpers shared by the Intune client, connection and simulator tests."""

import datetime
import uuid

from django.utils import timezone

from simulator.microsoft import MicrosoftService
from tests.factories import ClientSecretFactory

SECRET = "alpha-secret-value~0123456789"


def microsoft(sim):
    return sim.service(MicrosoftService)


def connect(sim, tenant, secret=SECRET, **options):
    """Give ``tenant`` a client secret and register the same tenant, app and secret in the simulated Entra ID."""
    ClientSecretFactory(tenant=tenant, value=secret, expires_at=timezone.now() + datetime.timedelta(days=180))
    return microsoft(sim).register(tenant.entra_tenant, tenant.client_id, [secret], **options)


def entities(tenant_id, device_id=None, user_id=None, when="2025-05-01T10:00:00Z", status="compliant", state=0):
    """One Mac's EntityType 1 and 4 records as design §6 describes them."""
    device_id = device_id or str(uuid.uuid4())
    user_id = user_id or str(uuid.uuid4())
    return [
        {
            "EntityType": 1,
            "TenantId": tenant_id,
            "DeviceId": device_id,
            "DeviceName": "Alice's MacBook Pro",
            "UserId": user_id,
            "DeviceManagementState": "managed",
            "LastCheckInTime": when,
            "LastUpdateTime": when,
            "Os": "macOS",
            "OsVersion": "15.1",
            "EasIds": [],
            "State": state,
        },
        {
            "EntityType": 4,
            "TenantId": tenant_id,
            "DeviceId": device_id,
            "UserId": user_id,
            "LastUpdateTime": when,
            "complianceStatus": status,
        },
    ]
