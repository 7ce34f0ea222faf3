"""Related fields that only accept objects of the caller's tenants (anything else is a 400)."""

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
        return super().to_internal_value(data)


class ScopedPrimaryKeyRelatedField(ScopedRelatedFieldMixin, serializers.PrimaryKeyRelatedField):
    """A tenant-owned row by ID; one of another tenant is "does not exist" (400)."""
