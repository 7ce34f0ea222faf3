"""Sign in with Microsoft against the simulator's Entra sign-in (simulator/oidc.py), driven like a browser."""

import urllib.parse

import requests

TENANT = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"  # the MSP's own Entra tenant
OTHER_TENANT = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"
CLIENT_ID = "3e6c9d42-1f0a-4b8e-9d7c-5a4b3c2d1e0f"
CLIENT_SECRET = "sim-sso-secret"


def sign_in_with_microsoft(client, simulator, upn, next_url="/admin/", tenant=TENANT):
    """Press the button, sign in at the simulated Entra page as ``upn``, follow the redirect back.

    Returns the portal's answer to the callback (302 to ``next_url`` when signed in).
    """
    start = client.post("/accounts/entra/login/", {"next": next_url})
    assert start.status_code == 302, start.content[:500]
    authorize = start["Location"]
    assert authorize.startswith(simulator.base_url + "/oidc/%s/oauth2/v2.0/authorize?" % tenant), authorize
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(authorize).query))
    assert query["nonce"] and query["state"] and query["code_challenge_method"] == "S256"
    answer = requests.post(
        authorize.split("?")[0],
        data={**query, "upn": upn},
        verify=str(simulator.ca_path),
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, answer.text[:500]
    back = urllib.parse.urlsplit(answer.headers["Location"])
    assert back.path == "/accounts/entra/login/callback/"
    return client.get(back.path + "?" + back.query)
