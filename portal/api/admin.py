"""The admin for API tokens (replaces django-rest-knox's).

Knox's admin shows a new token once, but lets any staff user with the model permission mint a
token for any user, asks for a raw expiry date (or none), and lists the digests. Here every staff
user manages their own tokens (MSP staff: anyone's), picks a lifetime up to
``API_TOKEN_MAX_DAYS``, and sees the token once, in the one message after it is created. The
admin works on the ``portal.APIToken`` proxy, so a token is named by its key's first characters
(in the list and in Recent actions), never by its 128-character digest, and sits under "Tenants
and access", not under "Knox".
"""

import datetime

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from knox.models import AuthToken, get_digest_token
from knox.settings import CONSTANTS

from portal import tenancy
from portal.admin_format import badge, short_datetime
from portal.models import APIToken

LIFETIMES = [7, 30, 90, 180, 365]


def _lifetime_choices():
    days = [d for d in LIFETIMES if d <= settings.API_TOKEN_MAX_DAYS] or [settings.API_TOKEN_MAX_DAYS]
    return [(d, _("%(days)d days") % {"days": d}) for d in days]


class TokenCreateForm(forms.ModelForm):
    expires_in_days = forms.TypedChoiceField(label=_("expires in"), coerce=int, choices=_lifetime_choices)

    class Meta:
        model = APIToken
        fields = ["user"]

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.token = None
        default = settings.REST_KNOX["TOKEN_TTL"].days
        if any(d == default for d, _label in _lifetime_choices()):
            self.fields["expires_in_days"].initial = default
        if request is not None and not tenancy.is_msp_staff(request.user):
            self.fields["user"].queryset = get_user_model().objects.filter(pk=request.user.pk)
        self.fields["user"].initial = request.user.pk if request is not None else None

    def save(self, commit=True):
        obj = super().save(commit=False)
        digest, token = get_digest_token()
        obj.digest = digest
        obj.token_key = token[: CONSTANTS.TOKEN_KEY_LENGTH]
        obj.expiry = timezone.now() + datetime.timedelta(days=self.cleaned_data["expires_in_days"])
        self.token = token
        if commit:
            obj.save()
        return obj


class TokenAdmin(admin.ModelAdmin):
    list_display = ["key", "user", "made", "expiry_state"]
    list_display_links = None  # nothing to see or edit on a token's own page: revoke with the delete action
    list_select_related = ["user"]
    search_fields = ["token_key", "user__username"]
    ordering = ["-created"]

    @admin.display(description=_("token"), ordering="token_key")
    def key(self, obj):
        return format_html('<code title="{}">{}…</code>', _("The token's first characters; the rest is stored "
                                                               "only as a hash."), obj.token_key)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if tenancy.is_msp_staff(request.user):
            return queryset
        return queryset.filter(user=request.user)

    @admin.display(description=_("created"), ordering="created")
    def made(self, obj):
        return short_datetime(obj.created)

    @admin.display(description=_("valid until"), ordering="expiry")
    def expiry_state(self, obj):
        """Valid (green) or expired (red), in words, with the date: no ✗ that reads as "broken" on a good token."""
        if obj.expiry is None:
            return badge(_("Never expires"), "warn")
        if obj.expiry <= timezone.now():
            return badge(_("Expired %(when)s") % {"when": short_datetime(obj.expiry)}, "bad")
        return badge(_("Valid until %(when)s") % {"when": short_datetime(obj.expiry)}, "ok")

    # Every active staff user may hold tokens of their own; the API decides what a token may do.
    def _staff(self, request):
        return bool(request.user.is_active and request.user.is_staff)

    def has_module_permission(self, request):
        return self._staff(request)

    def has_view_permission(self, request, obj=None):
        if not self._staff(request):
            return False
        return obj is None or tenancy.is_msp_staff(request.user) or obj.user_id == request.user.pk

    def has_add_permission(self, request):
        return self._staff(request)

    def has_change_permission(self, request, obj=None):
        return False  # a token is created and revoked, never edited

    def has_delete_permission(self, request, obj=None):
        return self.has_view_permission(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        form = TokenCreateForm if obj is None else super().get_form(request, obj, **kwargs)
        if obj is None:

            class RequestForm(form):
                def __init__(self, *args, **kw):
                    super().__init__(*args, request=request, **kw)

            return RequestForm
        return form

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "expires_in_days"]
        return ["token_key", "user", "created", "expiry"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["token_key", "user", "created", "expiry"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            request._portal_new_token = form.token

    def response_add(self, request, obj, post_url_continue=None):
        """One message with the token, instead of Django's "was added" naming it a second time."""
        token = request.__dict__.pop("_portal_new_token", None)
        if token is None:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(request, format_html(
            '{} <code class="new-token">{}</code><br>{} <code>Authorization: Token &lt;{}&gt;</code>',
            _("Your new API token for %(user)s, valid until %(when)s — copy it now; it is stored only as a hash and "
              "will not be shown again:") % {"user": obj.user, "when": short_datetime(obj.expiry)},
            token, _("Send it as the header"), _("token"),
        ), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:%s_%s_changelist" % (self.opts.app_label, self.opts.model_name)))


def register(site=admin.site):
    """Put this admin in place of knox's."""
    if site.is_registered(AuthToken):
        site.unregister(AuthToken)
    site.register(APIToken, TokenAdmin)
