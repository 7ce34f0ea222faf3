"""Provision or deprovision a tenant in Intune when its ``intune_enabled`` changes (once committed)."""

from django.db import transaction


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
    from compliance.tasks import provision_task_queue

    tenant_id = instance.pk
    transaction.on_commit(lambda: provision_task_queue(tenant_id))
