"""The one scoping base for every API viewset (conventions: one enforcement point for tenancy).

Like NetBox's ``BaseViewSet.initial()``: before any handler runs, the viewset's queryset is
narrowed through ``portal.tenancy`` to the tenants the caller may see, so an object of another
tenant answers 404 whatever the handler does. The role an action needs is looked up in
``action_roles`` (or the ``required_role`` given to ``@action``); an action nobody named answers
405. Writes run in a transaction and re-check the caller's role on the tenant they touch.
"""

from django.db import transaction
from rest_framework import exceptions, mixins, viewsets

from portal import tenancy
from portal.api.permissions import MSP_STAFF, SELF


class ScopedViewSetMixin:
    """Scope the queryset before any handler; name the role of every action."""

    #: Least role per standard action. Extra actions pass ``required_role=`` to ``@action``.
    read_role = tenancy.VIEWER
    write_role = tenancy.ADMIN
    required_role = None  # set on the view instance by ``@action(required_role=...)``
    #: The path from the model to the owning tenant, for the write re-check.
    tenant_field = "tenant"

    def get_required_role(self):
        if self.required_role is not None:
            return self.required_role
        roles = {
            "list": self.read_role,
            "retrieve": self.read_role,
            "metadata": self.read_role,
            "create": self.write_role,
            "update": self.write_role,
            "partial_update": self.write_role,
            "destroy": self.write_role,
        }
        role = roles.get(self.action)
        if role is None:
            raise exceptions.MethodNotAllowed(self.request.method)
        return role

    # -- scoping -----------------------------------------------------------------------------

    def perform_authentication(self, request):
        try:
            request.user  # noqa: B018 - authenticates
        except exceptions.AuthenticationFailed:
            # Count a wrong token against the client's anonymous budget, so tokens cannot be guessed fast.
            self.check_throttles(request)
            raise

    def initial(self, request, *args, **kwargs):
        self._scoped_queryset = None
        super().initial(request, *args, **kwargs)  # authentication, role, throttles
        self._scoped_queryset = self.scope_queryset(self.queryset.all(), request.user)

    def scope_role(self):
        """The role whose tenants the queryset holds.

        A list (any action on no one object) shows only rows of tenants where the caller holds the
        action's role, the role that reading one of them needs: a viewer of A who is admin of C lists
        only C's client secrets. One object is looked up among the tenants the caller sees at all, so
        a visible tenant's object answers 403 for too low a role and an invisible one's 404.
        """
        role = self.get_required_role()
        if not getattr(self, "detail", False) and role in tenancy.ROLE_RANK:
            return role
        return tenancy.VIEWER

    def scope_queryset(self, queryset, user):
        """The rows ``user`` may see for this action; other rows answer 404."""
        return queryset.for_user(user, self.scope_role())

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular building the schema
            return self.queryset.none()
        if getattr(self, "_scoped_queryset", None) is None:
            raise exceptions.PermissionDenied("The queryset was not scoped.")  # fail closed
        return self._scoped_queryset.all()

    # -- writes --------------------------------------------------------------------------------

    def check_tenant_role(self, tenant_id):
        """403 unless the caller holds the action's role in ``tenant_id`` (which they can already see)."""
        role = self.get_required_role()
        if role == SELF or tenancy.is_msp_staff(self.request.user):
            return
        if role == MSP_STAFF or not tenancy.has_role(self.request.user, tenant_id, role):
            raise exceptions.PermissionDenied("Your role in this tenant does not allow this.")

    def _tenant_id_in(self, serializer):
        tenant = serializer.validated_data.get(self.tenant_field)
        return getattr(tenant, "pk", tenant)

    def perform_create(self, serializer):
        with transaction.atomic():
            tenant_id = self._tenant_id_in(serializer)
            if tenant_id is not None:
                self.check_tenant_role(tenant_id)
            serializer.save()

    def perform_update(self, serializer):
        with transaction.atomic():
            self.check_tenant_role(tenancy.tenant_id_of(serializer.instance))
            serializer.save()

    def perform_destroy(self, instance):
        with transaction.atomic():
            self.check_tenant_role(tenancy.tenant_id_of(instance))
            instance.delete()


class ScopedReadOnlyViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """List and detail of tenant-owned rows."""


class ScopedModelViewSet(ScopedViewSetMixin, viewsets.ModelViewSet):
    """Create, list, detail, update and delete of tenant-owned rows."""

    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]


class ScopedGenericViewSet(ScopedViewSetMixin, viewsets.GenericViewSet):
    """Only the actions a subclass declares."""


__all__ = [
    "ScopedGenericViewSet", "ScopedModelViewSet", "ScopedReadOnlyViewSet", "ScopedViewSetMixin", "mixins",
]
