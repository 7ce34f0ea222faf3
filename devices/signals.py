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
# "reconcile"): what wrote the change; derived_ids (set of int, a subset of computer_ids): Macs created with the
# columns that computers_creating's receivers returned for them, which a receiver that derived them itself need
# not derive again.
computers_changed = Signal()


def announce_computers_changed(tenant_id, computer_ids, source, derived_ids=frozenset()):
    """Send :data:`computers_changed` for these Macs (nothing when the list is empty)."""
    computer_ids = list(computer_ids)
    if computer_ids:
        computers_changed.send(sender=Computer, tenant_id=tenant_id, computer_ids=computer_ids, source=source,
                               derived_ids=frozenset(derived_ids))


# kwargs: tenant_id (int), computers (list of dicts): the Macs the importer is about to create, each dict every
# column the new row will hold (defaults included, "id" not yet known) with its user rows' columns under "users".
# A receiver may return a list in the same order of (computer columns, [user columns, one per user]) to write
# with the rows: the columns it derives from the inventory (compliance: the evaluation), so a new Mac is
# written once instead of written and then updated. computers_changed is still sent after the write, naming
# these Macs in derived_ids.
computers_creating = Signal()


def derive_new_computers(tenant_id, computers):
    """Send :data:`computers_creating`; returns one (computer columns, [user columns]) per computer, merged over
    the receivers' answers (empty dicts where none answered)."""
    derived = [({}, [{} for _ in values.get("users") or ()]) for values in computers]
    if not computers:
        return derived
    for _receiver, response in computers_creating.send(sender=Computer, tenant_id=tenant_id, computers=computers):
        for (computer_columns, user_columns), (more, more_users) in zip(derived, response or (), strict=False):
            computer_columns.update(more)
            for columns, extra in zip(user_columns, more_users, strict=False):
                columns.update(extra)
    return derived
