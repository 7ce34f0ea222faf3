"""Post-processing of the OpenAPI schema (drf-spectacular hook)."""

from portal.api.serializers import TenantSerializer


def admin_only_fields_are_optional(result, generator, request, public):
    """The tenant's secret metadata is left out for viewers and operators: not a required property."""
    tenant = result.get("components", {}).get("schemas", {}).get("Tenant")
    if tenant and "required" in tenant:
        tenant["required"] = [name for name in tenant["required"] if name not in TenantSerializer.ADMIN_ONLY_FIELDS]
    for name in TenantSerializer.ADMIN_ONLY_FIELDS:
        prop = (tenant or {}).get("properties", {}).get(name)
        if prop is not None:
            prop["description"] = (prop.get("description", "") + " Shown to the tenant's admins only.").strip()
    return result
