"""The one place that decides which tenants a user may see and what they may do there.

Every tenant-owned queryset uses :class:`TenantScopedQuerySet` (``.for_user(user, role)``); the
admin and the API scope through it before any handler runs. MSP staff are superusers and see
every tenant; an inactive or anonymous user sees nothing; a member sees their tenants, and a
role decides what they may do: viewer reads, operator reads and runs actions, admin also
changes configuration.
"""

from django.db import models

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
ROLE_CHOICES = [(VIEWER, "Viewer"), (OPERATOR, "Operator"), (ADMIN, "Admin")]
ROLE_RANK = {VIEWER: 1, OPERATOR: 2, ADMIN: 3}


def _roles_at_least(role):
    rank = ROLE_RANK[role]
    return [name for name, value in ROLE_RANK.items() if value >= rank]


def is_msp_staff(user):
    return bool(user and user.is_authenticated and user.is_active and user.is_superuser)


def tenant_ids_for_user(user, role=VIEWER):
    """The IDs of the tenants where ``user`` holds at least ``role``, as a subquery-able queryset.

    Returns ``None`` for MSP staff (no restriction) and an empty list for nobody.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    if user.is_superuser:
        return None
    from portal.models import Membership

    return Membership.objects.filter(user=user, role__in=_roles_at_least(role)).values("tenant_id")


def role_for(user, tenant_id):
    """The user's role in a tenant: ``admin`` for MSP staff, ``None`` when they have none."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    from portal.models import Membership

    return Membership.objects.filter(user=user, tenant_id=tenant_id).values_list("role", flat=True).first()


def tenant_id_of(obj):
    """The ID of the tenant that owns ``obj`` (a Tenant, a row with a tenant, or a row of a computer)."""
    from portal.models import Tenant

    if isinstance(obj, Tenant):
        return obj.pk
    if hasattr(obj, "tenant_id"):
        return obj.tenant_id
    if hasattr(obj, "computer"):
        return obj.computer.tenant_id
    raise TypeError("%s is not tenant-owned" % type(obj).__name__)


def has_role(user, tenant_id, role=VIEWER):
    actual = role_for(user, tenant_id)
    return actual is not None and ROLE_RANK[actual] >= ROLE_RANK[role]


def has_any_membership(user, role=VIEWER):
    ids = tenant_ids_for_user(user, role)
    return ids is None or (not isinstance(ids, list) and ids.exists())


class TenantScopedQuerySet(models.QuerySet):
    """A queryset of tenant-owned rows. ``tenant_field`` is the lookup path to the tenant's ID."""

    tenant_field = "tenant"

    def for_user(self, user, role=VIEWER):
        ids = tenant_ids_for_user(user, role)
        if ids is None:
            return self
        if isinstance(ids, list):
            return self.none()
        return self.filter(**{"%s__in" % self.tenant_field: ids})

    def for_tenant(self, tenant):
        return self.filter(**{self.tenant_field: tenant})


def scoped_queryset(tenant_field):
    """A TenantScopedQuerySet subclass for models whose tenant sits behind ``tenant_field``."""
    return type("TenantScopedQuerySet_%s" % tenant_field.replace("__", "_"), (TenantScopedQuerySet,), {
        "tenant_field": tenant_field,
    })
