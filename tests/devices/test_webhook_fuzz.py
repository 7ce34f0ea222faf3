"""Fuzz the webhook receiver: whatever the body, a clear 4xx or a 202, never a 5xx, never a partial write."""

import json

import pytest
from django.test import Client
from django_q.models import OrmQ
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import tasks
from devices.jamf.webhook import CHECK_IN_EVENTS, INVENTORY_EVENTS, SUMMARY_FIELDS
from devices.models import Computer, InventoryEvent
from tests.devices.jamf_helpers import SECRET, with_secret
from tests.factories import ComputerFactory

EVENTS = sorted(CHECK_IN_EVENTS | INVENTORY_EVENTS) + ["MobileDeviceCheckIn", "Nope", ""]
KEYS = sorted(SUMMARY_FIELDS) + ["jssID", "computer", "realName"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
    st.sampled_from(["1", "7", "0", "-3", "1e400", "\x00", "\ud800", "2024-01-01T00:00:00Z"]),
)
json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=3)),
    max_leaves=8,
)
computer = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)
event = st.one_of(json_values, computer, st.fixed_dictionaries({"computer": st.one_of(computer, json_values)}))
webhook = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"webhookEvent": st.one_of(st.sampled_from(EVENTS), json_values)},
        optional={"eventTimestamp": st.one_of(scalars, st.integers(min_value=0, max_value=2**64),
                                             st.sampled_from([10**400, -(10**400)])), "id": scalars},
    ),
)
documents = st.fixed_dictionaries({}, optional={"webhook": webhook, "event": event})


def encoded(doc):
    return json.dumps(doc).encode()


bodies = st.one_of(
    documents.map(encoded),
    documents.map(encoded).flatmap(lambda b: st.integers(0, len(b)).map(lambda n: b[:n])),  # truncated
    json_values.map(encoded),
    st.binary(max_size=64),
)


@pytest.mark.django_db
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(body=bodies, content_type=st.sampled_from(["application/json", "application/json; charset=utf-8",
                                                  "text/plain", ""]))
def test_no_5xx_and_no_partial_writes(tenant_a, body, content_type):
    with_secret(tenant_a)
    if not Computer.objects.filter(tenant=tenant_a, jamf_id="7").exists():
        ComputerFactory(tenant=tenant_a, jamf_id="7", udid="UDID-7")
    before_events = InventoryEvent.objects.count()
    before_queue = OrmQ.objects.count()
    before_computers = list(Computer.objects.order_by("pk").values())

    response = Client().generic("POST", "/hooks/jamf/alpha/", body, content_type=content_type,
                                HTTP_X_WEBHOOK_SECRET=SECRET)

    assert response.status_code in (202, 400, 415), response.content
    answer = response.json()
    assert InventoryEvent.objects.count() == before_events + 1  # exactly one row, whatever happened
    event = InventoryEvent.objects.latest("pk")
    assert answer.get("id") == event.pk
    assert list(Computer.objects.order_by("pk").values()) == before_computers  # the receiver never writes inventory
    if response.status_code == 202:
        assert event.status in ("pending", "ignored")
        # A pending event has a drain queued (one per tenant every couple of seconds); an ignored one none.
        assert OrmQ.objects.count() in ((before_queue, before_queue + 1) if event.status == "pending" else
                                        (before_queue,))
        assert OrmQ.objects.exists() or event.status == "ignored"
        if event.status == "pending":
            # Processing what was accepted never fails either (no Jamf API set: summaries only).
            assert tasks.process_event(event.pk) in ("processed", "ignored")
    else:
        assert event.status == "rejected" and event.error == answer["error"]
        assert OrmQ.objects.count() == before_queue
