"""Admin pieces for the reports to Intune: the per-user history on a computer ("macOS Intune Integration
Logs"), the operator actions with their confirmation page, and a tenant's delivery health.

The ModelAdmins of ComplianceReport and SyncRun live in ``compliance/admin.py``; the computer and tenant
admins (``devices/admin.py``, ``portal/admin.py``) call in here.
"""

import json
from collections import defaultdict
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from compliance.intune.payloads import HOLD_REASONS, hold_reason
from compliance.models import ComplianceReport
from portal import tenancy
from portal.admin_format import badge, compliance_badge, inventory_state_badge

Status = ComplianceReport.Status
HISTORY_PER_USER = 15
CHANGE_URL = "admin:compliance_compliancereport_change"
STATUS_TONES = {
    Status.COMPLETED: "ok", Status.ACCEPTED: "info", Status.PENDING: "quiet",
    Status.FAILED: "bad", Status.SUPERSEDED: "quiet",
}


def status_html(report):
    return badge(report.get_status_display(), STATUS_TONES.get(report.status, "quiet"))


def answer_text(report):
    """Intune's answer, in a few words."""
    if report.kind == ComplianceReport.Kind.DELETE:
        if report.status == Status.FAILED:
            return report.error_detail
        return ", ".join("%s: %s" % (k, v) for k, v in sorted(report.payload.items()) if k in ("entra", "intune"))
    if report.status == Status.FAILED:
        return "%s: %s" % (report.error_code, report.error_detail) if report.error_code else report.error_detail
    if report.status == Status.PENDING and report.error_code:
        return _("retry %(n)d at %(when)s after %(code)s") % {
            "n": report.attempts + 1, "when": timezone.localtime(report.next_attempt_at).strftime("%Y-%m-%d %H:%M:%S")
            if report.next_attempt_at else "-", "code": report.error_code}
    if report.status == Status.COMPLETED:
        return _("Completed")
    if report.status == Status.ACCEPTED:
        return _("Accepted; processing")
    if report.status == Status.SUPERSEDED:
        return report.error_detail or _("A newer report replaced it before it was sent")
    return "-"


def _registered(computer):
    """Whether one of the Mac's users finished Entra registration (only such Macs are reported, design §5)."""
    users = computer.user_accounts.exclude(entra_user_id="")
    if not computer.entra_device_id:
        users = users.exclude(entra_device_id="")
    return users.exists()


def history_html(computer):
    """The computer's reports per user, newest first: what was sent, when, and Intune's answer."""
    rows = list(
        ComplianceReport.objects.filter(computer=computer).defer("payload").order_by("username", "-id")[:500]
    )
    held = hold_reason(computer) if _registered(computer) else None
    note = format_html(
        '<p class="errornote">{} {}</p>', _("Held back from Intune:"), HOLD_REASONS[held]
    ) if held else ""
    if not rows:
        return format_html('{}<p class="help">{}</p>', note, _(
            "Nothing was reported yet: a Mac is reported once a user finished Entra registration and the tenant's "
            "Intune integration is enabled."))
    per_user = defaultdict(list)
    for row in rows:
        if len(per_user[row.username]) < HISTORY_PER_USER:
            per_user[row.username].append(row)
    parts = [note] if note else []
    for username, reports in per_user.items():
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                "<td>{}</td></tr>",
            (
                (
                    format_html('<a href="{}">{}</a>', reverse(CHANGE_URL, args=[r.pk]),
                                r.created_at.strftime("%Y-%m-%d %H:%M:%S")),
                    r.get_reason_display(),
                    inventory_state_badge(r.inventory_state, r.get_inventory_state_display())
                    if r.kind == ComplianceReport.Kind.REPORT else "-",
                    compliance_badge(r.compliance_status, r.get_compliance_status_display())
                    if r.kind == ComplianceReport.Kind.REPORT else "-",
                    status_html(r),
                    r.sent_at.strftime("%Y-%m-%d %H:%M:%S") if r.sent_at else "-",
                    r.attempts,
                    str(r.message_id or "-"),
                    answer_text(r),
                )
                for r in reports
            ),
        )
        parts.append(format_html(
            '<h3 style="margin:1em 0 .3em">{} <span class="help">({} {})</span></h3>'
            '<table style="width:100%"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
            '<th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>',
            username or _("(no user)"), _("Entra user"), reports[0].entra_user_id or "-",
            _("made"), _("why"), _("state"), _("compliance"), _("status"), _("accepted"), _("attempts"),
            _("message ID"), _("Intune's answer"), body,
        ))
    link = "%s?%s" % (reverse("admin:compliance_compliancereport_changelist"), urlencode({"computer": computer.pk}))
    parts.append(format_html('<p><a href="{}">{}</a></p>', link, _("Every report of this computer, with payloads")))
    return format_html_join("", "{}", ((p,) for p in parts))


def payload_html(report):
    return format_html('<pre style="white-space: pre-wrap; max-height: 40em; overflow: auto">{}</pre>',
                       json.dumps(report.payload, indent=2, ensure_ascii=False))


# -- actions with a confirmation page -------------------------------------------------------------


def may_operate(request):
    return tenancy.has_any_membership(request.user, tenancy.OPERATOR)  # MSP staff included


def confirm(modeladmin, request, queryset, action, title, question, objects):
    """The confirmation page of an action; True once the operator confirmed it (the POST carries "post")."""
    if request.POST.get("post") == "yes":
        return True
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "question": question,
        "objects": objects,
        "queryset": queryset,
        "action": action,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "selected": [str(pk) for pk in queryset.values_list("pk", flat=True)],
    }
    return TemplateResponse(request, "admin/compliance/confirm_intune_action.html", context)


def _operable(request, queryset):
    """The selected computers in tenants where the user is at least an operator."""
    from devices.models import Computer

    return queryset.filter(pk__in=Computer.objects.for_user(request.user, tenancy.OPERATOR).values("pk"))


def _by_tenant(queryset):
    groups = defaultdict(list)
    for pk, tenant_id in queryset.values_list("pk", "tenant_id"):
        groups[tenant_id].append(pk)
    return groups


def _queue_delivery(tenant_ids):
    from compliance.tasks import queue_deliver

    for tenant_id in tenant_ids:
        queue_deliver(tenant_id)


def retire_in_intune(modeladmin, request, queryset):
    """Retire the selected Macs: reported to Intune as deactivated (state 1)."""
    from compliance.sync import retire

    queryset = _operable(request, queryset)
    answer = confirm(modeladmin, request, queryset, "retire_in_intune", _("Retire Macs"), _(
        "Retire these Macs? They are marked as no longer managed and reported to Intune as deactivated "
        "(state 1), which makes them non-compliant."), list(queryset.select_related("tenant")))
    if answer is not True:
        return answer
    made = 0
    for tenant_id, ids in _by_tenant(queryset).items():
        made += retire(tenant_id, ids, requested_by=request.user.get_username()).created
    _queue_delivery(_by_tenant(queryset))
    modeladmin.message_user(request, ngettext(
        "Retired; %(n)d report of state 1 queued for Intune.", "Retired; %(n)d reports of state 1 queued for Intune.",
        made) % {"n": made}, messages.SUCCESS)
    return None


retire_in_intune.short_description = _("Retire, and report to Intune as deactivated")
retire_in_intune.allowed_permissions = ("intune_operate",)


def resend_to_intune(modeladmin, request, queryset):
    """Send the selected Macs' current state to Intune again."""
    queryset = _operable(request, queryset)
    answer = confirm(modeladmin, request, queryset, "resend_to_intune", _("Re-send to Intune"), _(
        "Send the current state of these Macs to Intune again, for each registered user?"),
        list(queryset.select_related("tenant")))
    if answer is not True:
        return answer
    do_resend(modeladmin, request, queryset)
    return None


def do_resend(modeladmin, request, computers):
    """Queue fresh reports of ``computers`` (already limited to the operator's tenants) and deliver them."""
    from compliance.sync import resend

    made = 0
    for tenant_id, ids in _by_tenant(computers).items():
        made += resend(tenant_id, ids, requested_by=request.user.get_username()).created
    _queue_delivery(_by_tenant(computers))
    level = messages.SUCCESS if made else messages.WARNING
    modeladmin.message_user(request, ngettext(
        "%(n)d report queued for Intune.", "%(n)d reports queued for Intune.", made) % {"n": made}
        if made else _("Nothing queued: none of these Macs has a user registered with Entra ID, or Intune is "
                       "disabled for its tenant."), level)
    return made


resend_to_intune.short_description = _("Re-send to Intune")
resend_to_intune.allowed_permissions = ("intune_operate",)


def delete_in_entra_and_intune(modeladmin, request, queryset):
    """Delete the selected Macs from Entra ID and Intune (Graph), recorded in their history."""
    from compliance.intune.errors import IntuneError
    from compliance.sync import delete_from_entra_and_intune

    queryset = _operable(request, queryset)
    answer = confirm(modeladmin, request, queryset, "delete_in_entra_and_intune",
                     _("Delete from Entra ID and Intune"), _(
                         "Delete these Macs from Entra ID (Devices › All devices) and from Intune (Devices › All "
                         "devices)? Their users must register again before the Macs are reported again. The Macs "
                         "stay in this portal and in Jamf Pro."), list(queryset.select_related("tenant")))
    if answer is not True:
        return answer
    for computer in queryset.select_related("tenant"):
        try:
            rows = delete_from_entra_and_intune(computer, requested_by=request.user.get_username())
        except IntuneError as exc:
            modeladmin.message_user(request, "%s: %s %s" % (computer, exc.problem.message, exc.problem.advice),
                                    messages.ERROR)
            continue
        if not rows:
            modeladmin.message_user(request, _("%(mac)s has no Entra device ID: nothing to delete.") % {
                "mac": computer}, messages.WARNING)
        for row in rows:
            level = messages.ERROR if row.status == Status.FAILED else messages.SUCCESS
            modeladmin.message_user(request, "%s (%s): %s" % (computer, row.entra_device_id, answer_text(row)), level)
    return None


delete_in_entra_and_intune.short_description = _("Delete from Entra ID and Intune")
delete_in_entra_and_intune.allowed_permissions = ("intune_operate",)


OBJECT_ACTIONS = {
    "resend": resend_to_intune,
    "retire": retire_in_intune,
    "delete": delete_in_entra_and_intune,
}


class IntuneActionsMixin:
    """Adds the Intune operator actions to the computer admin (operators and MSP staff may use them).

    In the list they are bulk actions; on a computer's page they are buttons, each opening the same
    confirmation page for that one Mac (``<id>/intune/<resend|retire|delete>/``).
    """

    def has_intune_operate_permission(self, request):
        return may_operate(request)

    def get_urls(self):
        from django.urls import path

        name = "%s_%s_intune_action" % (self.opts.app_label, self.opts.model_name)
        return [
            path("<path:object_id>/intune/<slug:action>/", self.admin_site.admin_view(self.intune_object_action_view),
                 name=name),
            *super().get_urls(),
        ]

    def intune_object_action_view(self, request, object_id, action):
        """One Mac's retire / re-send / delete: the confirmation page (GET), then the action (its POST)."""
        from django.contrib.admin.utils import unquote
        from django.core.exceptions import PermissionDenied
        from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect

        func = OBJECT_ACTIONS.get(action)
        if func is None:
            raise Http404
        if request.method not in ("GET", "HEAD", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        obj = self.get_object(request, unquote(object_id))  # scoped: another tenant's Mac is a 404
        if obj is None:
            raise Http404
        if not tenancy.has_role(request.user, obj.tenant_id, tenancy.OPERATOR):
            raise PermissionDenied
        change_url = reverse("admin:%s_%s_change" % (self.opts.app_label, self.opts.model_name), args=[obj.pk])
        response = func(self, request, self.model.objects.filter(pk=obj.pk))
        if response is None:
            return HttpResponseRedirect(change_url)
        response.context_data["cancel_url"] = change_url
        return response

    def intune_tools(self, request, obj):
        """The computer page's Intune buttons for ``request.user``: [{key, label, url, title, tone}]; none below
        operator."""
        if not tenancy.has_role(request.user, obj.tenant_id, tenancy.OPERATOR):
            return []
        name = "admin:%s_%s_intune_action" % (self.opts.app_label, self.opts.model_name)
        buttons = [
            ("resend", _("Re-send to Intune"), _("Send this Mac's current state to Intune again, for each "
                                                 "registered user."), "primary"),
            ("retire", _("Retire"), _("Mark the Mac as no longer managed and report it to Intune as deactivated."),
             ""),
            ("delete", _("Delete from Entra ID and Intune"), _(
                "Remove the Mac's device record in the customer's Entra ID and Intune; it stays in this portal and "
                "in Jamf Pro."), "danger"),
        ]
        return [{"key": key, "label": label, "url": reverse(name, args=[obj.pk, key]), "title": title, "tone": tone}
                for key, label, title, tone in buttons]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            context["intune_tools"] = self.intune_tools(request, obj)
            context["report_history_url"] = "%s?%s" % (
                reverse("admin:compliance_compliancereport_changelist"), urlencode({"computer": obj.pk}))
        return super().render_change_form(request, context, add, change, form_url, obj)


# -- tenant health ------------------------------------------------------------------------------------


def _age(delta):
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return _("%(n)d s") % {"n": seconds}
    if seconds < 7200:
        return _("%(n)d min") % {"n": seconds // 60}
    if seconds < 2 * 86400:
        return _("%(n)d h") % {"n": seconds // 3600}
    return _("%(n)d days") % {"n": seconds // 86400}


def health_html(tenant):
    """The tenant's delivery health for its admin page."""
    from compliance.sync import tenant_health

    h = tenant_health([tenant.pk])[tenant.pk]
    reports = reverse("admin:compliance_compliancereport_changelist")
    last = timezone.localtime(h["last_delivery"]).strftime("%Y-%m-%d %H:%M:%S") if h["last_delivery"] else _("never")
    oldest = _age(h["oldest_pending_age"]) if h["oldest_pending_age"] is not None else "-"
    return format_html(
        '<table><tbody>'
        '<tr><th>{}</th><td>{}</td></tr>'
        '<tr><th>{}</th><td><a href="{}?tenant__id__exact={}&amp;status__exact=pending">{}</a></td></tr>'
        '<tr><th>{}</th><td>{}</td></tr>'
        '<tr><th>{}</th><td><a href="{}?tenant__id__exact={}&amp;status__exact=failed">{}</a></td></tr>'
        '<tr><th>{}</th><td><a href="{}?tenant__id__exact={}">{}</a></td></tr>'
        '</tbody></table>',
        _("Last successful delivery"), last,
        _("Pending reports"), reports, tenant.pk, h["pending"],
        _("Oldest pending"), oldest,
        _("Failed reports"), reports, tenant.pk, h["failed"],
        _("Background runs"), reverse("admin:portal_syncrun_changelist"), tenant.pk, _("sync runs"),
    )
