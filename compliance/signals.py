"""How compliance reacts to what other apps announce. Connected in ``ComplianceConfig.ready()``.

- devices' ``computers_changed``: evaluate those Macs inside the transaction that changed them, so the
  inventory and its evaluation commit together (a report never pairs new inventory with stale compliance),
  then, once committed, ask for a debounced delivery of the tenant (event-driven: seconds, not a schedule);
- a compliance policy saved or deleted: re-evaluate its tenant once committed;
- a tenant's ``intune_enabled`` switched: provision or deprovision it in Intune once committed.
"""

import logging

from django.db import DatabaseError, transaction

from compliance.evaluation import evaluate_tenant
from compliance.evaluation.store import evaluate_new
from compliance.tasks import provision_task_queue, queue_evaluate_computers, queue_evaluate_tenant, request_delivery

logger = logging.getLogger(__name__)


def evaluate_changed_computers(sender, tenant_id, computer_ids, source="", derived_ids=frozenset(), **kwargs):
    """devices.signals.computers_changed: evaluate the Macs in the sender's transaction, then ask for a delivery.

    A failing evaluation must not undo the inventory (nothing stored is lost): it runs in a savepoint, and on a
    database error the Macs are evaluated again in the background once the change is committed. A check-in
    changes what Intune is told only when it changes the evaluation (LastCheckInTime is not reported on its
    own), so only then does it ask for a delivery.
    """
    # Macs created with the evaluation evaluate_new_computers gave them need none again (still delivered).
    pending = [pk for pk in computer_ids if pk not in derived_ids]
    try:
        with transaction.atomic():
            result = evaluate_tenant(tenant_id, computer_ids=pending) if pending else None
    except DatabaseError:
        logger.exception("evaluating %d computers of tenant %s failed; queued again", len(computer_ids), tenant_id)
        ids = list(computer_ids)
        transaction.on_commit(lambda: queue_evaluate_computers(tenant_id, ids))
        return
    if source != "check_in" or (result and result.changed_computer_ids):
        transaction.on_commit(lambda: request_delivery(tenant_id))


def evaluate_new_computers(sender, tenant_id, computers, **kwargs):
    """devices.signals.computers_creating: the evaluation of Macs about to be created, written with their rows.

    An optimisation: each new Mac is written once, evaluated, instead of written and then updated (on PostgreSQL
    the update rewrites the row and every index entry). ``evaluate_changed_computers`` still runs after the write
    and finds nothing to change.

    Like that evaluation, a failing one must not undo the inventory: it runs in a savepoint, and on a database
    error the Macs are written without it (``derived_ids`` does not name them), so ``evaluate_changed_computers``
    evaluates them after the write, or queues them.
    """
    try:
        with transaction.atomic():
            return evaluate_new(tenant_id, computers)
    except DatabaseError:
        logger.exception("evaluating %d new computers of tenant %s before their write failed; evaluated after it",
                         len(computers), tenant_id)
        return None


def reevaluate_on_policy_change(sender, instance, raw=False, **kwargs):
    """post_save / post_delete of CompliancePolicy: re-evaluate its tenant, once the change is committed."""
    if raw:
        return
    tenant_id = instance.tenant_id
    transaction.on_commit(lambda: queue_evaluate_tenant(tenant_id))


def remember_intune_enabled(sender, instance, raw=False, **kwargs):
    """pre_save of Tenant: note what ``intune_enabled`` was, to see a change after the save."""
    if raw or instance.pk is None:
        instance._intune_enabled_before = None
        return
    instance._intune_enabled_before = (
        type(instance).objects.filter(pk=instance.pk).values_list("intune_enabled", flat=True).first()
    )


def provision_on_change(sender, instance, created, raw=False, **kwargs):
    """post_save of Tenant: queue the provisioning task when the integration was switched on or off."""
    if raw:
        return
    before = getattr(instance, "_intune_enabled_before", None)
    changed = instance.intune_enabled if (created or before is None) else before != instance.intune_enabled
    if not changed:
        return
    tenant_id = instance.pk
    transaction.on_commit(lambda: provision_task_queue(tenant_id))
