"""Related fields that only accept objects of the caller's tenants (anything else is a 400)."""

import re

from rest_framework import serializers

from portal.models import Tenant


def _request_user(field):
    request = field.context.get("request")
    return getattr(request, "user", None)


class ScopedRelatedFieldMixin:
    """Limit the choices to rows the caller may see, through ``portal.tenancy``."""

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.for_user(_request_user(self))


SLUG_RE = re.compile(r"[-a-zA-Z0-9_]+")  # Django's slug characters


class TenantField(ScopedRelatedFieldMixin, serializers.SlugRelatedField):
    """A tenant named by its slug; a tenant the caller may not see is "does not exist" (400)."""

    default_error_messages = {
        "does_not_exist": "No tenant {slug_name}={value} that you may use.",
        "invalid": "Give the tenant's slug.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("slug_field", "slug")
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", Tenant.objects.all())
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if not SLUG_RE.fullmatch(data):
            # No tenant has such a slug; answer without asking the database (PostgreSQL refuses a NUL byte).
            self.fail("does_not_exist", slug_name=self.slug_field, value=data.replace("\x00", "\\x00"))
        return super().to_internal_value(data)


class ScopedPrimaryKeyRelatedField(ScopedRelatedFieldMixin, serializers.PrimaryKeyRelatedField):
    """A tenant-owned row by ID; one of another tenant is "does not exist" (400)."""
