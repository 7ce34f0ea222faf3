"""In the demo, each demo tenant's landing page serves its choice."""

import io

import pytest
from django.core.management import call_command

from portal.management.commands.demo_data import TENANTS
from portal.models import Tenant


@pytest.mark.django_db
def test_each_demo_tenant_serves_its_choice(client):
    call_command("demo_data", stdout=io.StringIO())
    expected = {"registration": 200, "access_denied": 403, "custom": 302}
    for slug, _name, _domain, _count, landing_page in TENANTS:
        response = client.get("/r/%s/" % slug)
        assert response.status_code == expected[landing_page], slug
        if landing_page == "custom":
            assert response["Location"] == Tenant.objects.get(slug=slug).landing_custom_url
        assert client.get("/r/%s/remediation/" % slug).status_code == 200
