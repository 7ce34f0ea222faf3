from django.apps import AppConfig


class PortalConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "portal"
    verbose_name = "Tenants and access"

    def ready(self):
        from portal import (
            audit,
            checks,  # noqa: F401 - registers the production system checks
        )

        audit.register_models()
