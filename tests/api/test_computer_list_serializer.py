"""The list serializer's hand-built dicts must equal DRF's field-by-field output, field for field."""

import datetime

import pytest
from django.db.models import Prefetch
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from devices.api.serializers import ComputerListSerializer
from devices.models import Computer, UserAccount
from tests.factories import ComputerFactory, UserAccountFactory

pytestmark = pytest.mark.django_db


def test_fast_list_representation_equals_the_generic_one(tenant_a):
    when = datetime.datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=datetime.UTC)
    a = ComputerFactory(tenant=tenant_a, inventory_state=2, compliance_status="notCompliant",
                        registration_state="registered", failed_rules=["filevault", "os_version_min"],
                        evaluated_at=when, retired_at=when, company_portal_version="5.2410.0",
                        entra_device_id="aaaa-1", user_email="a@example.com")
    UserAccountFactory(computer=a, username="zed", entra_user_id="u1", entra_device_id="aaaa-1",
                       entra_state="ACTIVATED", registration_state="registered", compliance_status="notCompliant",
                       failed_rules=["password_min_length"])
    UserAccountFactory(computer=a, username="amy")
    ComputerFactory(tenant=tenant_a, inventory_state=None, compliance_status=None, last_check_in=None,
                    last_inventory_update=None, company_portal_version=None)
    request = APIRequestFactory().get("/api/v1/computers/")
    queryset = Computer.objects.order_by("id").select_related("tenant").prefetch_related(
        Prefetch("user_accounts", queryset=UserAccount.objects.order_by("username"))
    )
    fast = ComputerListSerializer(queryset, many=True, context={"request": request}).data
    generic_serializer = ComputerListSerializer(context={"request": request})
    generic = [serializers.ModelSerializer.to_representation(generic_serializer, c) for c in queryset]
    assert [dict(row) for row in fast] == [dict(row) for row in generic]
    assert fast[0]["url"].startswith("http://testserver/api/v1/computers/%d" % a.pk)
    assert [u["username"] for u in fast[0]["user_accounts"]] == ["amy", "zed"]
    assert fast[0]["failed_rules"][0]["code"] == "filevault"
