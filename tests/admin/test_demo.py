"""The demo's dashboard: every demo tenant with its health, and a month of trend behind the chart."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from compliance.models import ComplianceDailySnapshot
from portal.management.commands.demo_data import MSP_USER, TENANTS

pytestmark = pytest.mark.django_db


def test_demo_dashboard_shows_every_tenant_with_the_chart(client):
    call_command("demo_data", stdout=io.StringIO())
    call_command("demo_data", stdout=io.StringIO())  # re-runnable: no duplicate days
    assert ComplianceDailySnapshot.objects.count() == 30 * len(TENANTS)
    client.force_login(get_user_model().objects.get(username=MSP_USER))
    response = client.get("/admin/")
    dashboard = response.context["dashboard"]
    assert sorted(row.tenant.slug for row in dashboard["rows"]) == sorted(t[0] for t in TENANTS)
    assert len(dashboard["chart"].rows) == 30
    first, last = dashboard["chart"].rows[0], dashboard["chart"].rows[-1]
    assert first["percent"] < last["percent"]  # the demo's rollout improves over the month
    assert last["total"] == sum(t[3] for t in TENANTS)
    assert response.content.decode().count("<polyline") == 2 + 2 * len(TENANTS)

    client.force_login(get_user_model().objects.get(username="contoso-admin"))
    rows = client.get("/admin/").context["dashboard"]["rows"]
    assert [row.tenant.slug for row in rows] == ["contoso"]
