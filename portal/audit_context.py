"""Who is acting, for the audit trail: the request being served, kept for the entries it causes.

``AuditContextMiddleware`` keeps the request in a context variable. When an audit entry is saved,
:func:`fill` reads the person from ``request.user`` *then* (not when the request arrived), so an API
request authenticated by a token inside Django REST framework is attributed to the token's user, and
the token (``request.auth``, a django-rest-knox AuthToken) is named by its key. The address comes from
:func:`portal.client_address.client_ip` (the trusted-proxy setting). Outside a request (a management
command), ``auditlog.context.set_actor`` names the actor; background work has none ("system").
"""

from contextvars import ContextVar

from auditlog.registry import auditlog

from portal import tenancy
from portal.client_address import client_ip

_request = ContextVar("portal_audit_request", default=None)


class AuditContextMiddleware:
    """Keep the current request for the audit entries it causes. After AuthenticationMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def current_request():
    return _request.get()


def fill(entry):
    """Set the actor, the API token and the address of ``entry`` from the current request, where unset."""
    request = _request.get()
    if request is not None:
        user = getattr(request, "user", None)
        if entry.actor_id is None and user is not None and user.is_authenticated:
            entry.actor = user
        auth = getattr(request, "auth", None)
        key = getattr(auth, "token_key", None)
        if key and not entry.api_token_key:
            entry.api_token_key = key
        if not entry.remote_addr:
            entry.remote_addr = client_ip(request)
    if entry.actor is not None:
        entry.actor_username = entry.actor_username or entry.actor.get_username()
        entry.actor_email = entry.actor_email or getattr(entry.actor, "email", None) or None


NOT_SET, SET, ROTATED = "not set", "set", "rotated"


def mask_secret(value):
    """django-auditlog's mask callable for secret fields: whether a value is set, never the value."""
    return SET if value not in (None, "", "None") else NOT_SET


def describe_change(instance, kwargs):
    """The tenant of a changed row, a name for it that holds no secret, and secrets as set / rotated."""
    try:
        kwargs.setdefault("tenant_id", tenancy.tenant_id_of(instance))
    except (TypeError, AttributeError):
        kwargs.setdefault("tenant_id", None)
    if hasattr(instance, "token_key") and hasattr(instance, "digest"):  # a knox API token: never its digest
        kwargs.setdefault("object_repr", "API token %s of %s" % (instance.token_key, instance.user))
        kwargs.setdefault("object_pk", instance.token_key)
    changes = kwargs.get("changes")
    if changes:
        # A new or deleted row's diff also lists reverse relations ("portal.ClientSecret.None"): keep the columns.
        columns = {f.name for f in instance._meta.concrete_fields}
        changes = kwargs["changes"] = {name: value for name, value in changes.items() if name in columns}
    if changes and auditlog.contains(type(instance)):
        for name in auditlog.get_model_fields(type(instance))["mask_fields"]:
            if name in changes and list(changes[name]) == [SET, SET]:
                changes[name] = [SET, ROTATED]  # a changed secret that was set before
    return kwargs
