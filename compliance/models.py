"""Compliance policies, reports to Intune and sync runs."""
