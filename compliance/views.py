"""Views of the compliance app outside the admin: the admin-consent callback that Entra ID redirects to."""

import logging

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from compliance import consent

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def consent_callback(request):
    """Entra ID's redirect after admin consent: check the signed state, record the consent, explain errors.

    No sign-in needed: the customer's administrator who consented may have no portal account. The signed,
    single-use state is what authorises the change, and the page reveals nothing beyond the tenant's name.
    """
    outcome = consent.handle_callback(request.GET)
    logger.info("admin consent callback: ok=%s tenant=%s %s", outcome.ok,
                outcome.tenant.slug if outcome.tenant else "-", outcome.title)
    tenant_url = ""
    if outcome.tenant is not None and request.user.is_authenticated and request.user.is_staff:
        tenant_url = reverse("admin:portal_tenant_change", args=[outcome.tenant.pk])
    context = {
        **admin.site.each_context(request),
        "title": outcome.title,
        "outcome": outcome,
        "tenant_url": tenant_url,
    }
    return TemplateResponse(request, "compliance/consent_result.html", context, status=outcome.status)
