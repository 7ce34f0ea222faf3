"""The Jamf Pro part of the tenant admin: the webhook URL, how to set it up, and secret rotation.

A mixin for ``portal.admin.TenantAdmin``. The webhook secret is generated here, never typed, and
shown exactly once, in the message after the action that created it; afterwards the page only says
that a secret is set.
"""

from auditlog.context import disable_auditlog
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from devices.jamf.webhook import CHECK_IN_EVENTS, INVENTORY_EVENTS
from devices.webhooks import SECRET_HEADER, generate_webhook_secret
from portal import audit, tenancy
from portal.audit_context import ROTATED, SET, mask_secret


def webhook_url(tenant):
    return settings.PORTAL_BASE_URL + reverse("jamf-webhook", args=[tenant.slug])


class JamfTenantAdminMixin:
    actions = ["rotate_webhook_secret"]

    @admin.display(description=_("Jamf Pro webhooks"))
    def jamf_webhook_setup(self, obj):
        if obj is None or not obj.pk:
            return _("Save the tenant first.")
        secret_state = (
            _("A secret is set (it was shown once, when it was generated).") if obj.webhook_secret
            else _("No secret yet: webhooks are refused until one is generated.")
        )
        events = format_html_join(", ", "<code>{}</code>", ((e,) for e in sorted(INVENTORY_EVENTS | CHECK_IN_EVENTS)))
        return format_html(
            "<p><strong>URL</strong>: <code>{url}</code></p>"
            "<p><strong>Secret</strong>: {state} Generate or rotate it with the tenant page's button "
            "\u201cJamf webhooks\u201d, or the action \u201c{action}\u201d in the tenant list.</p>"
            "<p>In Jamf Pro, Settings \u203a Global \u203a Webhooks \u203a New, once per event ({events}):"
            " Webhook URL as above; Authentication type <em>Header Authentication</em> with "
            "<code>{{\"{header}\": \"&lt;secret&gt;\"}}</code> (or <em>Basic Authentication</em>, username "
            "<code>{username}</code> and the secret as password); Content type <em>JSON</em>. "
            "See docs/jamf.md.</p>",
            url=webhook_url(obj), state=secret_state, action=_("Generate a new Jamf webhook secret (shown once)"),
            events=events, header=SECRET_HEADER, username=obj.webhook_username or "jamf",
        )

    def has_rotate_webhook_secret_permission(self, request):
        return self._may(request, None, tenancy.ADMIN)

    @admin.action(description=_("Generate a new Jamf webhook secret (shown once)"),
                  permissions=["rotate_webhook_secret"])
    def rotate_webhook_secret(self, request, queryset):
        from portal.models import Tenant

        allowed = Tenant.objects.for_user(request.user, tenancy.ADMIN)
        for tenant in queryset.filter(pk__in=allowed.values("pk")).order_by("name"):
            secret = generate_webhook_secret()
            before = mask_secret(tenant.webhook_secret)
            changes = {"webhook_secret": [before, ROTATED if tenant.webhook_secret else SET]}
            tenant.webhook_secret = secret
            if not tenant.webhook_username:
                tenant.webhook_username = "jamf"
                changes["webhook_username"] = ["", "jamf"]
            with transaction.atomic(), disable_auditlog():  # one explicit entry instead of the save's
                tenant.save(update_fields=["webhook_secret", "webhook_username", "updated_at"])
                audit.record("generate_webhook_secret", tenant, changes=changes)
            self.message_user(
                request,
                format_html(
                    "{name}: new webhook secret <code>{secret}</code> (header {header}, or Basic user "
                    "<code>{user}</code>). Copy it into Jamf Pro now: it is not shown again, and the old one "
                    "no longer works.",
                    name=tenant.name, secret=secret, header=SECRET_HEADER, user=tenant.webhook_username,
                ),
                messages.WARNING,
            )
