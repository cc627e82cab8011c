"""ezeep's pairing dialect, shaped exactly like the reference document (device_code_flow.md)."""

from __future__ import annotations

import math
import re
import string
from urllib.parse import parse_qs, quote, urlsplit

from tests.conftest import App
from tests.server.helpers import (
    PAIRING,
    assert_oauth_error,
    poll,
    sign_in_and_approve,
    start,
)


async def test_pair_response_has_the_documented_shape(app: App) -> None:
    response = await app.http.post("/oauth/pair", headers=app.seed.basic(), data={"mode": "device", "scope": "printing"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"pairing_code", "auth_url", "expires_in", "interval"}
    code = body["pairing_code"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", code), code  # URL-safe, no escaping anywhere
    alphabet = 62 if re.fullmatch(r"[A-Za-z0-9]+", code) else 64
    assert len(code) * math.log2(alphabet) >= 60, code
    expected_next = quote(f"/oauth/authorize/pairing/?pairing_code={code}", safe="")
    assert body["auth_url"] == f"http://testserver/auth/signin/?next={expected_next}&device=generic"
    # The spec's own example, character for character, with its code swapped in.
    spec = "https://account.ezeep.com/auth/signin/?next=%2Foauth%2Fauthorize%2Fpairing%2F%3Fpairing_code%3DuafdHUwAs7&device=generic"
    assert body["auth_url"].split("?", 1)[1] == spec.split("?", 1)[1].replace("uafdHUwAs7", code)
    assert body["expires_in"] == 600
    assert body["interval"] == 5


async def test_pairing_codes_are_fresh_and_random(app: App) -> None:
    codes = [(await start(app, PAIRING))["pairing_code"] for _ in range(25)]
    assert len(set(codes)) == len(codes)
    used = set("".join(codes))
    assert used <= set(string.ascii_letters + string.digits + "-_")
    assert len(used) > 30  # drawn from a large alphabet, not a counter or a hex digest


async def test_auth_url_opens_the_sign_in_page_that_leads_to_the_pairing_confirmation(app: App) -> None:
    started = await start(app, PAIRING)
    parts = urlsplit(started["auth_url"])
    assert parts.path == "/auth/signin/"
    query = parse_qs(parts.query)
    assert query["device"] == ["generic"]
    assert query["next"] == [f"/oauth/authorize/pairing/?pairing_code={started['pairing_code']}"]
    page = await app.http.get(f"{parts.path}?{parts.query}")
    assert page.status_code == 200
    assert 'name="password"' in page.text


async def test_every_ezeep_api_path_works_with_and_without_trailing_slash(app: App) -> None:
    for pair_path in ("/oauth/pair", "/oauth/pair/"):
        for token_path in ("/oauth/access_token", "/oauth/access_token/", "/access_token", "/access_token/"):
            paired = await app.http.post(pair_path, headers=app.seed.basic(), data={"mode": "device", "scope": "printing"})
            assert paired.status_code == 200, paired.text  # answered in place: no redirect that would lose the POST
            code = paired.json()["pairing_code"]
            data = {"grant_type": "pairing_code", "scope": "printing", "pairing_code": code}
            assert_oauth_error(await app.http.post(token_path, headers=app.seed.basic(), data=data), 400, "authorization_pending")
            await sign_in_and_approve(app, paired.json()["auth_url"])
            app.clock.advance(5)
            token = await app.http.post(token_path, headers=app.seed.basic(), data=data)
            assert token.status_code == 200, (pair_path, token_path, token.text)
            assert set(token.json()) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
            assert token.json()["token_type"] == "Bearer"
            assert token.json()["expires_in"] == 3600
            assert token.json()["scope"] == "printing"


async def test_ezeep_browser_paths_work_with_and_without_trailing_slash(app: App) -> None:
    started = await start(app, PAIRING)
    for path in ("/auth/signin/", "/auth/signin"):  # the sign-in page itself, answered in place
        response = await app.http.get(path, params={"pairing_code": started["pairing_code"]})
        assert response.status_code == 200 and 'name="password"' in response.text, (path, response.status_code)
    for path in ("/oauth/authorize/pairing/", "/oauth/authorize/pairing"):  # the confirmation: to sign-in first
        response = await app.http.get(path, params={"pairing_code": started["pairing_code"]})
        assert response.status_code == 303, (path, response.status_code)
        assert response.headers["location"].startswith("/auth/signin/?next="), path


async def test_pairing_confirmation_works_without_trailing_slash(app: App) -> None:
    started = await start(app, PAIRING)
    code = started["pairing_code"]
    html = await sign_in_and_approve(app, f"http://testserver/oauth/authorize/pairing?pairing_code={code}")
    assert "Login Successful" in html
    assert (await poll(app, PAIRING, code)).status_code == 200
