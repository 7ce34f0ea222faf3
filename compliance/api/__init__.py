"""REST API for compliance policies and the compliance reports (summary and CSV)."""
