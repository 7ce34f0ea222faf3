"""Dates a Mac or Jamf Pro reports are not trusted to lie in the future (issue 12, item 6).

A check-in or report date further ahead of the time the portal received it than
``settings.JAMF_CLOCK_SKEW_SECONDS`` is stored as the time of receipt: otherwise one bad clock (or a
forged body) would pin a Mac's last check-in years ahead and no real check-in would move it again.
The raw value stays in the stored event (its body, and ``event_timestamp`` for webhooks) and the
event's processing note says what was done.
"""

import datetime

from django.conf import settings


def clamp_to_receipt(when, received_at):
    """``(when, False)``, or ``(received_at, True)`` when ``when`` is too far ahead of ``received_at``."""
    if when is None or received_at is None:
        return when, False
    if when > received_at + datetime.timedelta(seconds=settings.JAMF_CLOCK_SKEW_SECONDS):
        return received_at, True
    return when, False


def clamp_note(field, raw, received_at):
    return "%s %s is ahead of the time of receipt (%s): stored as the time of receipt; the raw value is kept in " \
           "the stored event." % (field, _iso(raw), _iso(received_at))


def _iso(value):
    return value.astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
