"""REST API for Macs, their users and the inventory events (plus the inventory upload)."""
