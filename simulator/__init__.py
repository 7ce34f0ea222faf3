"""A local HTTPS stand-in for Entra ID, Microsoft Graph, the Intune partner service and Jamf Pro.

Used by `make demo` (``manage.py runsimulator``) and the tests (the ``simulator`` fixture), so the
portal's real clients (msal, requests) talk real HTTPS on loopback. Production code never imports
this package. See ``simulator/core.py`` for the server, routing and fault knobs.
"""
