"""The REST API under /api/v1/: the scoping base, token authentication, pagination and throttles."""
