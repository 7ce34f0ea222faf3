"""The inventory upload: ``POST /api/v1/tenants/<slug>/inventory/`` (issue 6, item 4).

The body is stored as an InventoryEvent (source "upload") before anything reads it, then imported
with :func:`devices.importer.import_records`, which answers per record. Nothing a client sends can
make this a 500: unreadable input is a 400 with the reason, and the stored event says what happened.
"""

import io
import logging

from django.conf import settings
from django.utils import timezone
from rest_framework import status
from rest_framework.response import Response

from devices.importer import import_records, iter_records
from devices.models import InventoryEvent

logger = logging.getLogger(__name__)

EVENT_TYPE = "ComputersInventoryUpload"
JSON_TYPES = ("application/json",)


def _is_json(content_type):
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


def _read_body(request, limit):
    """The raw body, or None when it is longer than ``limit`` bytes (read in chunks, never past the limit)."""
    django_request = request._request
    chunks, size = [], 0
    while True:
        chunk = django_request.read(min(65536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(chunks)


def handle_upload(request, tenant):
    """Store, import and answer one upload to ``tenant`` (the caller's role was checked by the view)."""
    if not _is_json(request.content_type):
        return Response(
            {"detail": "Send the records as JSON (Content-Type: application/json)."},
            status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        )
    limit = settings.API_INVENTORY_MAX_BYTES
    body = _read_body(request, limit)
    if body is None:
        return Response(
            {"detail": "The body is larger than %d bytes; send the records in several pages." % limit},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    try:
        text = body.decode("utf-8")
        decode_error = ""
    except UnicodeDecodeError as exc:
        text = body.decode("utf-8", errors="replace")
        decode_error = "the body is not UTF-8 (%s)" % exc.reason

    event = InventoryEvent.objects.create(
        tenant=tenant, source=InventoryEvent.Source.UPLOAD, event_type=EVENT_TYPE, raw_body=text,
    )
    if decode_error:
        _finish(event, InventoryEvent.Status.REJECTED, decode_error)
        return Response({"event": event.pk, "detail": decode_error}, status=status.HTTP_400_BAD_REQUEST)

    result = import_records(
        tenant, iter_records(io.BytesIO(body)), batch_size=settings.IMPORT_BATCH_SIZE, keep_outcomes=True,
        source="upload",  # the changed Macs are announced (devices.signals); compliance evaluates and reports them
        received_at=event.received_at,
    )
    results = [
        {"index": index, "jamf_id": jamf_id, "outcome": outcome, "reason": reason}
        for index, jamf_id, outcome, reason in sorted(result.outcomes)
    ]
    if result.input_error and not results:
        _finish(event, InventoryEvent.Status.REJECTED, result.input_error)
        return Response(
            {"event": event.pk, "detail": "Nothing was imported: %s." % result.input_error},
            status=status.HTTP_400_BAD_REQUEST,
        )

    errors = []
    if result.input_error:
        errors.append("input stopped %s" % result.input_error)
    errors.extend("record %d: %s" % (r.index, r.reason) for r in result.rejected[:50])
    errors.extend(result.notes[:50])
    if result.rejected and not (result.created or result.updated or result.unchanged or result.stale):
        final = InventoryEvent.Status.REJECTED
    else:
        final = InventoryEvent.Status.PROCESSED
    computer_id = result.changed_ids[0] if len(results) == 1 and result.changed_ids else None
    _finish(event, final, "\n".join(errors), computer_id=computer_id)

    return Response(
        {
            "event": event.pk,
            "summary": result.summary(),
            "input_error": result.input_error,
            "notes": result.notes,
            "results": results,
        },
        status=status.HTTP_200_OK,
    )


def _finish(event, status_value, error, computer_id=None):
    event.status = status_value
    event.error = error
    event.processed_at = timezone.now()
    event.computer_id = computer_id
    event.save(update_fields=["status", "error", "processed_at", "computer"])
