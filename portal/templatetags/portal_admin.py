"""The admin's top navigation: the everyday pages in one row, in place of Django's 300 px sidebar.

Built from the ``available_apps`` Django puts in every admin page's context, so a link shows only
when the user may open that page. Pages not in ``PRIMARY`` stay one click away on the dashboard's
list of apps.
"""

from django import template
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

register = template.Library()

# (app_label, object_name, label) in the order people use them.
PRIMARY = [
    ("portal", "Tenant", _("Tenants")),
    ("devices", "Computer", _("Computers")),
    ("compliance", "ComplianceReport", _("Compliance reports")),
    ("portal", "SyncRun", _("Sync runs")),
    ("compliance", "CompliancePolicy", _("Policies")),
    ("devices", "InventoryEvent", _("Inventory events")),
    ("portal", "APIToken", _("API tokens")),
]
# Shown after the primary links when the user may open them: the audit trail (portal.AuditEvent, issue 13),
# users for MSP staff.
SECONDARY = [
    ("portal", "AuditEvent", _("Audit trail")),
    ("auth", "User", _("Users")),
]


@register.simple_tag(takes_context=True)
def portal_nav(context):
    """[{label, url, current}] for the user's top navigation; empty outside the admin (no available_apps)."""
    apps = context.get("available_apps")
    request = context.get("request")
    if not apps or request is None:
        return []
    urls = {(app["app_label"], model["object_name"]): model.get("admin_url")
            for app in apps for model in app["models"]}
    path = request.path
    index = reverse("admin:index")
    links = [{"label": _("Dashboard"), "url": index, "current": path == index}]
    for app_label, object_name, label in PRIMARY + SECONDARY:
        url = urls.get((app_label, object_name))
        if url:
            links.append({"label": label, "url": url, "current": path.startswith(url)})
    return links
