"""Read one Jamf Pro webhook body: a pure function, used by the receiver and again by the task.

Jamf Pro webhooks are ``{"webhook": {"id", "name", "webhookEvent", "eventTimestamp"}, "event": {...}}``
(design section 7). The computer's fields sit flat in ``event`` for ComputerAdded and
ComputerInventoryCompleted and under ``event.computer`` for ComputerCheckIn and
ComputerPolicyFinished; older senders put ComputerCheckIn flat too, so both shapes are read for
every event. ``eventTimestamp`` is epoch milliseconds, but seconds are seen too. Every field may be
missing; a field of the wrong type is an error that names it.
"""

import datetime
import json
import math
import re
from dataclasses import dataclass, field

# What the portal does with each event it acts on.
CHECK_IN_EVENTS = {"ComputerCheckIn", "ComputerPolicyFinished"}  # the Mac contacted Jamf Pro
INVENTORY_EVENTS = {"ComputerAdded", "ComputerInventoryCompleted"}  # its inventory changed
# Every other event Jamf Pro can send: stored and marked ignored (a webhook set up too broadly).
OTHER_JAMF_EVENTS = {
    "ComputerPatchPolicyCompleted", "ComputerPushCapabilityChanged", "DeviceAddedToDEP", "DeviceRateLimited",
    "JSSShutdown", "JSSStartup", "MobileDeviceCheckIn", "MobileDeviceCommandCompleted", "MobileDeviceEnrolled",
    "MobileDeviceInventoryCompleted", "MobileDevicePushSent", "MobileDeviceUnEnrolled", "PatchSoftwareTitleUpdated",
    "PushSent", "RestAPIOperation", "SCEPChallenge", "SmartGroupComputerMembershipChange",
    "SmartGroupMobileDeviceMembershipChange", "SmartGroupUserMembershipChange",
}
EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
# eventTimestamp values at or above this are milliseconds (as seconds they would be past the year 5000).
MILLISECONDS_FROM = 10**11
# webhook field -> (Computer field, max length)
SUMMARY_FIELDS = {
    "udid": ("udid", 64),
    "serialNumber": ("serial_number", 64),
    "deviceName": ("name", 255),
    "model": ("model", 255),
    "osVersion": ("os_version", 64),
    "osBuild": ("os_build", 64),
    "macAddress": ("mac_address", 32),
    "alternateMacAddress": ("alt_mac_address", 32),
    "username": ("username", 255),
    "emailAddress": ("user_email", 255),
}
TEXT_FIELDS = set(SUMMARY_FIELDS) | {"realName", "phone", "position", "department", "building", "room",
                                      "userDirectoryID", "managementId"}


class WebhookError(ValueError):
    """The body cannot be accepted; the message says why, naming the field."""


@dataclass
class ParsedWebhook:
    event_type: str
    action: str  # "check_in", "inventory" or "ignored"
    timestamp: datetime.datetime | None
    jamf_id: str = ""
    summary: dict = field(default_factory=dict)  # Computer field -> value, only those present and non-empty

    @property
    def udid(self):
        return self.summary.get("udid", "")

    @property
    def serial_number(self):
        return self.summary.get("serial_number", "")


def _type_name(value):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _timestamp(value):
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise WebhookError("webhook.eventTimestamp: expected epoch milliseconds, got %s" % _type_name(value))
    try:
        value = float(value.strip() if isinstance(value, str) else value)
    except OverflowError:
        raise WebhookError("webhook.eventTimestamp: the number is out of range") from None
    except ValueError:
        raise WebhookError("webhook.eventTimestamp: %r is not a number" % str(value)[:40]) from None
    if not math.isfinite(value) or value < 0:
        raise WebhookError("webhook.eventTimestamp: %r is not a time" % (value,))
    seconds = value / 1000 if value >= MILLISECONDS_FROM else value
    try:
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        raise WebhookError("webhook.eventTimestamp: %r is out of range" % (value,)) from None


def _text(data, key, path):
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise WebhookError("%s.%s: expected a string, got %s" % (path, key, _type_name(value)))
    if "\x00" in value:
        raise WebhookError("%s.%s: contains a NUL character" % (path, key))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise WebhookError("%s.%s: contains an unpaired surrogate (\\ud800 to \\udfff)" % (path, key)) from None
    return value.strip()


def _jamf_id(data, path):
    value = data.get("jssID", data.get("id"))
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise WebhookError("%s.jssID: expected an integer, got %s" % (path, _type_name(value)))
    text = str(value).strip()
    if not text.isdigit() or len(text) > 18:
        raise WebhookError("%s.jssID: %r is not a Jamf Pro ID" % (path, text[:40]))
    return str(int(text))


def parse_webhook(body):
    """Parse a webhook body (bytes); returns a :class:`ParsedWebhook` or raises :class:`WebhookError`."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WebhookError("the body is not UTF-8 (byte %d)" % exc.start) from None
    if not text.strip():
        raise WebhookError("the body is empty")
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except WebhookError:
        raise
    except (ValueError, RecursionError) as exc:
        raise WebhookError("the body is not valid JSON: %s" % str(exc)[:200]) from None
    if not isinstance(doc, dict):
        raise WebhookError("expected a JSON object with webhook and event, got %s" % _type_name(doc))
    webhook = doc.get("webhook")
    if not isinstance(webhook, dict):
        raise WebhookError("webhook: expected an object, got %s" % _type_name(webhook))
    event_type = webhook.get("webhookEvent")
    if not isinstance(event_type, str) or not event_type.strip():
        raise WebhookError("webhook.webhookEvent: expected the event's name, got %s" % _type_name(event_type))
    event_type = event_type.strip()
    if not EVENT_NAME.match(event_type):
        raise WebhookError("webhook.webhookEvent: %r is not a Jamf Pro event name" % event_type[:64])
    if event_type in CHECK_IN_EVENTS:
        action = "check_in"
    elif event_type in INVENTORY_EVENTS:
        action = "inventory"
    elif event_type in OTHER_JAMF_EVENTS:
        action = "ignored"
    else:
        raise WebhookError("webhook.webhookEvent: %r is not a Jamf Pro webhook event" % event_type)
    timestamp = _timestamp(webhook.get("eventTimestamp"))

    event = doc.get("event")
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise WebhookError("event: expected an object, got %s" % _type_name(event))
    parsed = ParsedWebhook(event_type=event_type, action=action, timestamp=timestamp)
    if action == "ignored":
        return parsed

    # Either shape for every event: fields under event.computer, else flat in event.
    computer, path = event, "event"
    if "computer" in event and event["computer"] is not None:
        if not isinstance(event["computer"], dict):
            raise WebhookError("event.computer: expected an object, got %s" % _type_name(event["computer"]))
        computer, path = event["computer"], "event.computer"
    parsed.jamf_id = _jamf_id(computer, path)
    for key in TEXT_FIELDS:
        value = _text(computer, key, path)
        if value and key in SUMMARY_FIELDS:
            name, max_length = SUMMARY_FIELDS[key]
            parsed.summary[name] = value[:max_length]
    return parsed


def _reject_constant(name):
    raise WebhookError("the body is not valid JSON: %s is not a JSON value" % name)
