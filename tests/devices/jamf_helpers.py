"""Helpers for the Jamf Pro tests (client, pull, webhooks); the ``jamf`` fixture is in tests/conftest.py."""

import base64

from devices.jamf.client import JamfClient
from simulator.jamf import JamfService, credentials_for

SECRET = "whsec-test-0123456789abcdef"


def connect(tenant, simulator, count=30, **options):
    """Give ``tenant`` a simulated Jamf Pro with ``count`` Macs and API credentials for it."""
    simulator.service(JamfService).configure(tenant.slug, count=count, **options)
    client_id, client_secret = credentials_for(tenant.slug)
    tenant.jamf_url = "%s/jamf/%s" % (simulator.base_url, tenant.slug)
    tenant.jamf_client_id = options.get("client_id") or client_id
    tenant.jamf_client_secret = options.get("client_secret") or client_secret
    tenant.save()
    return tenant


def client_for(tenant, sleeps=None, **kwargs):
    """The tenant's client; its backoff sleeps are recorded instead of slept."""
    sleeps = sleeps if sleeps is not None else []
    return JamfClient.from_tenant(tenant, sleep=sleeps.append, **kwargs)


def with_secret(tenant, secret=SECRET, username="jamf"):
    tenant.webhook_username = username
    tenant.webhook_secret = secret
    tenant.save()
    return tenant


def basic(username, password):
    return "Basic " + base64.b64encode(("%s:%s" % (username, password)).encode()).decode()
