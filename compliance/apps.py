from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save, pre_save


class ComplianceConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'compliance'

    def ready(self):
        # Imported here: these modules load models, which exist only once the app registry is ready.
        from compliance import signals
        from compliance.models import CompliancePolicy
        from compliance.schedules import ensure_schedules
        from devices.signals import computers_changed, computers_creating
        from portal.models import Tenant

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="compliance.ensure_schedules")
        computers_changed.connect(signals.evaluate_changed_computers, dispatch_uid="compliance.evaluate_changed")
        computers_creating.connect(signals.evaluate_new_computers, dispatch_uid="compliance.evaluate_new")
        post_save.connect(signals.reevaluate_on_policy_change, sender=CompliancePolicy,
                          dispatch_uid="compliance.policy_saved")
        post_delete.connect(signals.reevaluate_on_policy_change, sender=CompliancePolicy,
                            dispatch_uid="compliance.policy_deleted")
        pre_save.connect(signals.remember_intune_enabled, sender=Tenant, dispatch_uid="compliance.intune_before")
        post_save.connect(signals.provision_on_change, sender=Tenant, dispatch_uid="compliance.intune_provision")
