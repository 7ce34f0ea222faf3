"""Who may call what: the membership role that each action needs (design section 8).

Viewer reads, operator reads and runs actions, admin also changes configuration; MSP staff
(superusers) may do everything. The viewset says which role an action needs (see
:class:`portal.api.viewsets.ScopedViewSetMixin`); an action it does not name is refused with 405
(fail closed).
"""

from rest_framework.permissions import BasePermission

from portal import tenancy

#: A role only MSP staff hold (creating and deleting tenants).
MSP_STAFF = "msp_staff"
#: Any signed-in user, on rows they own themselves (their API tokens).
SELF = "self"


def _active(user):
    return bool(user and user.is_authenticated and user.is_active)


class TenantRolePermission(BasePermission):
    """Signed in, and holding the action's role in the object's tenant (or in some tenant, for a list or create).

    Rows of tenants the user may not see never reach this check: the viewset's queryset is already
    scoped, so they answer 404.
    """

    message = "Your role in this tenant does not allow this."

    def has_permission(self, request, view):
        if not _active(request.user):
            return False
        if not hasattr(view, "get_required_role"):
            return False  # fail closed: a view outside the scoping base must choose its own permission
        role = view.get_required_role()  # raises MethodNotAllowed for an action it does not know
        if role == SELF or tenancy.is_msp_staff(request.user):
            return True
        if role == MSP_STAFF:
            return False
        if getattr(view, "detail", False):
            return True  # decided per object, once the object (of a visible tenant) is found
        return tenancy.has_any_membership(request.user, role)

    def has_object_permission(self, request, view, obj):
        role = view.get_required_role()
        if role == SELF or tenancy.is_msp_staff(request.user):
            return True
        if role == MSP_STAFF:
            return False
        return tenancy.has_role(request.user, tenancy.tenant_id_of(obj), role)


class IsAuthenticatedUser(BasePermission):
    """Any active signed-in user (for views outside the tenant scoping, such as the API root)."""

    def has_permission(self, request, view):
        return _active(request.user)
