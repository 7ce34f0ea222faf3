"""The Microsoft clouds a tenant can live in: login host, Graph root and Intune API resource.

Design §6 (from Microsoft's national-cloud endpoint tables). ``settings.PORTAL_CLOUD_OVERRIDES``
may point any cloud at other hosts (the simulator in the demo and the tests), for example
``{"global": {"login": "https://127.0.0.1:8443", "graph": "https://127.0.0.1:8443/graph"}}``.
Production code never imports the simulator: it only reads these settings.
"""

from dataclasses import dataclass, replace
from urllib.parse import urlencode

from django.conf import settings

# The Intune service principal's well-known application ID; discovery looks it up in Graph.
INTUNE_APP_ID = "0000000a-0000-0000-c000-000000000000"


@dataclass(frozen=True)
class Cloud:
    key: str
    login: str  # https://<login host>, the msal authority's root
    graph: str  # Graph root without the version, e.g. https://graph.microsoft.com
    graph_resource: str  # the token audience for Graph
    intune_resource: str  # the token audience for the Intune partner service
    overridden: bool = False

    @property
    def graph_scope(self):
        return self.graph_resource.rstrip("/") + "/.default"

    @property
    def intune_scope(self):
        # The Intune resource's scope carries a double slash: "https://api.manage.microsoft.com//.default".
        return self.intune_resource.rstrip("/") + "//.default"

    def authority(self, entra_tenant):
        return "%s/%s" % (self.login.rstrip("/"), entra_tenant)

    def admin_consent_url(self, entra_tenant, client_id, redirect_uri, state=None):
        """Where a tenant's Global Administrator grants the app's permissions (one click; design §6a)."""
        params = {"client_id": client_id, "redirect_uri": redirect_uri}
        if state:
            params["state"] = state
        query = urlencode(params)
        return "%s/adminconsent?%s" % (self.authority(entra_tenant or "organizations"), query)


CLOUDS = {
    "global": Cloud(
        "global",
        login="https://login.microsoftonline.com",
        graph="https://graph.microsoft.com",
        graph_resource="https://graph.microsoft.com",
        intune_resource="https://api.manage.microsoft.com",
    ),
    "usgov": Cloud(
        "usgov",
        login="https://login.microsoftonline.us",
        graph="https://graph.microsoft.us",
        graph_resource="https://graph.microsoft.us",
        intune_resource="https://api.manage.microsoft.us",
    ),
    "usgov_dod": Cloud(
        "usgov_dod",
        login="https://login.microsoftonline.us",
        graph="https://dod-graph.microsoft.us",
        graph_resource="https://dod-graph.microsoft.us",
        intune_resource="https://api.manage.microsoft.us",
    ),
    # 21Vianet: Intune's partner endpoints sit under *.manage.microsoftonline.cn (found by discovery).
    "china": Cloud(
        "china",
        login="https://login.chinacloudapi.cn",
        graph="https://microsoftgraph.chinacloudapi.cn",
        graph_resource="https://microsoftgraph.chinacloudapi.cn",
        intune_resource="https://api.manage.microsoftonline.cn",
    ),
}

# Hosts an operator must allow outbound (port 443), per cloud; docs/connect-a-tenant.md lists them too.
FIREWALL_HOSTS = {
    "global": ["login.microsoftonline.com", "graph.microsoft.com", "*.manage.microsoft.com"],
    "usgov": ["login.microsoftonline.us", "graph.microsoft.us", "*.manage.microsoft.us"],
    "usgov_dod": ["login.microsoftonline.us", "dod-graph.microsoft.us", "*.manage.microsoft.us"],
    "china": ["login.chinacloudapi.cn", "microsoftgraph.chinacloudapi.cn", "*.manage.microsoftonline.cn"],
}


def get_cloud(key):
    """The cloud named ``key``, with any hosts from ``PORTAL_CLOUD_OVERRIDES`` applied."""
    try:
        cloud = CLOUDS[key]
    except KeyError:
        raise ValueError("unknown cloud %r (expected one of %s)" % (key, ", ".join(CLOUDS))) from None
    override = (getattr(settings, "PORTAL_CLOUD_OVERRIDES", None) or {}).get(key) or {}
    changes = {name: str(override[name]).rstrip("/") for name in ("login", "graph") if override.get(name)}
    if not changes:
        return cloud
    return replace(cloud, overridden=True, **changes)
