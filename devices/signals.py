"""What the devices app announces. Higher apps react with receivers connected in their ``AppConfig.ready()``.

Devices never imports compliance (docs/architecture.md): it says which Macs changed, with IDs, and whoever
derives state from them reacts. ``computers_changed`` is sent *inside* the transaction that wrote the change, so
a receiver's own writes (compliance's evaluation) commit together with it and no other process ever sees new
inventory beside stale results; work that must wait for the commit (queueing a task) the receiver defers with
``transaction.on_commit``.
"""

from django.dispatch import Signal

from devices.models import Computer

# kwargs: tenant_id (int), computer_ids (list of int), source (str: "import", "upload", "check_in", "webhook",
# "reconcile"): what wrote the change.
computers_changed = Signal()


def announce_computers_changed(tenant_id, computer_ids, source):
    """Send :data:`computers_changed` for these Macs (nothing when the list is empty)."""
    computer_ids = list(computer_ids)
    if computer_ids:
        computers_changed.send(sender=Computer, tenant_id=tenant_id, computer_ids=computer_ids, source=source)
