"""Sign in through the portal's password pages as a browser would post them."""

PASSWORD = "pw-for-tests-1"  # tests/factories.py
PAGES = {
    # page name: (URL, username field)
    "account": ("/accounts/login/?next=/admin/", "login"),  # where /admin/login/ leads
    "api": ("/api/auth/login/?next=/api/v1/", "login"),  # the browsable API's: the same allauth view
}


def sign_in(client, page, username, password, address="198.51.100.7", **extra):
    """POST the page's form; returns the response (302 signed in, 200 form again, 429 locked)."""
    url, field = PAGES[page]
    return client.post(url, {field: username, "password": password}, REMOTE_ADDR=address, **extra)


def signed_in(client):
    return "_auth_user_id" in client.session
