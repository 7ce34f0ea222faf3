"""Staff sign-in: lockouts (django-axes), sign in with Microsoft (django-allauth) and MFA. See docs/security.md."""
