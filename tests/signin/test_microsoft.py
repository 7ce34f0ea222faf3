"""Sign in with Microsoft (signin/provider.py, signin/adapters.py) against the simulator, over real HTTPS."""

import pytest
from allauth.socialaccount.models import SocialAccount

from tests.factories import UserFactory
from tests.signin.helpers import PASSWORD, sign_in, signed_in
from tests.signin.sso import OTHER_TENANT, TENANT, sign_in_with_microsoft

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return UserFactory(username="alex", email="Alex.Wilber@msp.example", is_superuser=True, is_staff=True)


def test_an_existing_account_signs_in_by_its_upn_and_is_linked(client, simulator, entra, staff):
    entra.register_user(TENANT, "alex.wilber@msp.example", name="Alex Wilber")
    answer = sign_in_with_microsoft(client, simulator, "alex.wilber@msp.example")
    assert answer.status_code == 302 and answer["Location"] == "/admin/"
    assert signed_in(client) and int(client.session["_auth_user_id"]) == staff.pk
    assert client.get("/admin/").status_code == 200
    account = SocialAccount.objects.get(user=staff)
    assert account.provider == "entra" and account.uid == entra.users[(TENANT, "alex.wilber@msp.example")]["oid"]
    # The next time the link is used (the e-mail address may change meanwhile).
    client.logout()
    staff.email = "alex@elsewhere.example"
    staff.save()
    assert sign_in_with_microsoft(client, simulator, "alex.wilber@msp.example").status_code == 302
    assert int(client.session["_auth_user_id"]) == staff.pk


def test_nobody_without_an_account_gets_one(client, simulator, entra, staff):
    entra.register_user(TENANT, "megan@msp.example")
    answer = sign_in_with_microsoft(client, simulator, "megan@msp.example")
    assert answer.status_code == 403 and b"There is no portal account for megan@msp.example" in answer.content
    assert not signed_in(client) and not SocialAccount.objects.exists()
    signup = client.get("/accounts/signup/")
    assert b"Sign Up Closed" in signup.content and b"password1" not in signup.content


@pytest.mark.parametrize(
    "knobs, reason",
    [
        ({"oidc_token_tenant": OTHER_TENANT}, "a token of another Entra tenant (its own issuer)"),
        ({"oidc_claims": {"tid": OTHER_TENANT}}, "another tenant's tid under the right issuer"),
        ({"oidc_bad_signature": True}, "a signature by a key not in the tenant's JWKS"),
        ({"oidc_nonce": "not-the-nonce-we-sent"}, "a nonce this browser was not sent"),
        ({"oidc_claims": {"nonce": None}}, "no nonce"),
        ({"oidc_expired": True}, "an expired token"),
        ({"oidc_claims": {"aud": "another-app"}}, "a token for another application"),
    ],
)
def test_bad_id_tokens_are_refused(client, simulator, entra, staff, knobs, reason):
    entra.register_user(TENANT, "alex.wilber@msp.example")
    simulator.set_faults(**knobs)
    answer = sign_in_with_microsoft(client, simulator, "alex.wilber@msp.example")
    assert answer.status_code in (401, 403) and not answer.has_header("Location"), reason
    assert not signed_in(client), reason
    assert not SocialAccount.objects.exists(), reason
    assert entra.issued, "the simulator issued the token"


def test_a_linked_account_from_another_tenant_is_refused_too(client, simulator, entra, staff):
    entra.register_user(TENANT, "alex.wilber@msp.example")
    assert sign_in_with_microsoft(client, simulator, "alex.wilber@msp.example").status_code == 302
    client.logout()
    simulator.set_faults(oidc_claims={"tid": OTHER_TENANT})
    assert sign_in_with_microsoft(client, simulator, "alex.wilber@msp.example").status_code == 403
    assert not signed_in(client)


def test_a_disabled_account_cannot_sign_in(client, simulator, entra, staff):
    entra.register_user(TENANT, "alex.wilber@msp.example")
    staff.is_active = False
    staff.save()
    assert sign_in_with_microsoft(client, simulator, "alex.wilber@msp.example").status_code in (302, 403)
    assert not signed_in(client)


def test_password_sign_in_can_be_turned_off_for_msp_staff(client, simulator, entra, staff, admin_a, settings):
    settings.PORTAL_STAFF_PASSWORD_LOGIN = False
    entra.register_user(TENANT, "alex.wilber@msp.example")
    assert sign_in(client, "account", "alex", PASSWORD).status_code == 200  # the form again: refused
    assert not signed_in(client)
    assert sign_in(client, "account", admin_a.username, PASSWORD).status_code == 302  # customer admins keep theirs
    client.logout()
    assert sign_in_with_microsoft(client, simulator, "alex.wilber@msp.example").status_code == 302
    assert int(client.session["_auth_user_id"]) == staff.pk


def test_the_sign_in_page_offers_microsoft_only_when_configured(client, db, settings, entra):
    assert b'action="/accounts/entra/login/' in client.get("/accounts/login/").content
    settings.SOCIALACCOUNT_PROVIDERS = {}
    assert b"/accounts/entra/login/" not in client.get("/accounts/login/").content


def test_people_cannot_change_their_e_mail_address_or_link_accounts_themselves(client, admin_a):
    # Sign in with Microsoft matches accounts by e-mail address: only MSP staff set it, in the admin.
    client.force_login(admin_a)
    for page in ("/accounts/email/", "/accounts/3rdparty/", "/accounts/social/connections/"):
        assert client.get(page).status_code == 404, page
        assert client.post(page, {"email": "staff@msp.example", "action_add": ""}).status_code == 404, page
    admin_a.refresh_from_db()
    assert admin_a.email != "staff@msp.example"


def test_linking_through_the_connect_process_is_refused(client, simulator, entra, staff, admin_a):
    entra.register_user(TENANT, "alex.wilber@msp.example")
    client.force_login(admin_a)
    start = client.post("/accounts/entra/login/", {"process": "connect"})
    assert start.status_code == 302
    import urllib.parse

    import requests

    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(start["Location"]).query))
    answer = requests.post(
        start["Location"].split("?")[0],
        data={**query, "upn": "alex.wilber@msp.example"},
        verify=str(simulator.ca_path),
        allow_redirects=False,
        timeout=30,
    )
    back = urllib.parse.urlsplit(answer.headers["Location"])
    assert client.get(back.path + "?" + back.query).status_code == 403
    assert not SocialAccount.objects.exists()
