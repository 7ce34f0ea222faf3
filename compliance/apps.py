from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedules(sender, **kwargs):
    from compliance.schedules import ensure_schedules

    ensure_schedules(**kwargs)


class ComplianceConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'compliance'

    def ready(self):
        post_migrate.connect(_ensure_schedules, sender=self, dispatch_uid="compliance.ensure_schedules")
        from django.db.models.signals import post_save, pre_save

        from compliance import signals
        from portal.models import Tenant

        pre_save.connect(signals.remember_intune_enabled, sender=Tenant, dispatch_uid="compliance.intune_before")
        post_save.connect(signals.provision_on_change, sender=Tenant, dispatch_uid="compliance.intune_provision")
