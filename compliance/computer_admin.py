"""The computer page as MSP staff use it: devices' computer admin plus its Intune parts.

Registered in place of ``devices.admin.ComputerAdmin`` (imported first, so it is registered and can be
replaced): the history of reports per user, the retire / re-send / delete actions and buttons, and the failed
rules explained by a live evaluation. Devices never imports compliance; compliance extends devices' page.
"""

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from compliance.evaluation import explain
from compliance.report_admin import (
    IntuneActionsMixin,
    delete_in_entra_and_intune,
    history_html,
    resend_to_intune,
    retire_in_intune,
)
from devices import admin as devices_admin
from devices.models import Computer
from devices.rules import CODES


class ComputerAdmin(IntuneActionsMixin, devices_admin.ComputerAdmin):
    readonly_fields = [*devices_admin.ComputerAdmin.readonly_fields, "intune_logs"]
    actions = [retire_in_intune, resend_to_intune, delete_in_entra_and_intune]
    fieldsets = [
        *devices_admin.ComputerAdmin.fieldsets,
        (_("macOS Intune Integration Logs"), {"fields": ["intune_logs"]}),
    ]

    @admin.display(description=_("reports to Intune, per user"))
    def intune_logs(self, obj):
        """What was sent to Intune for each user of this Mac, when, and Intune's answer."""
        return history_html(obj)

    @admin.display(description=_("failed rules"))
    def failed_rules_explained(self, obj):
        """The stored failed rules with their sentences and remedies, and what exactly failed (evaluated live)."""
        live = explain(obj)
        details = {}
        for failure in live.failures:
            details.setdefault(failure.code, failure.detail)
        html = devices_admin.failed_rules_html(obj.failed_rules, details)
        if obj.evaluated_at and live.failed_codes != sorted(obj.failed_rules, key=CODES.index):
            html = format_html(
                "{}<p class=\"help\">{}</p>", html,
                _("The inventory or the policies changed since the last evaluation; a re-evaluation is pending."),
            )
        return html


if admin.site.is_registered(Computer):
    admin.site.unregister(Computer)
admin.site.register(Computer, ComputerAdmin)
