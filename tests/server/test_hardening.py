"""Inputs a tester found: each answered on purpose, in the protocol's format."""

from __future__ import annotations

import pytest

from tests.conftest import App
from tests.server.helpers import DEVICE, PAIRING, assert_oauth_error, csrf_of, open_confirmation, start


async def test_repeated_keys_in_a_json_body_are_refused(app: App) -> None:
    response = await app.http.post("/oauth/access_token", headers={**app.seed.basic(), "Content-Type": "application/json"},
                                   content=b'{"grant_type": "pairing_code", "grant_type": "refresh_token"}')
    body = assert_oauth_error(response, 400, "invalid_request")
    assert "grant_type" in body["error_description"] and "repeated" in body["error_description"]


async def test_lone_surrogates_in_json_are_refused_not_crashed(app: App) -> None:
    response = await app.http.post("/oauth/access_token", headers={**app.seed.basic(), "Content-Type": "application/json"},
                                   content=b'{"grant_type": "pairing_code", "pairing_code": "\\ud800"}')
    assert_oauth_error(response, 400, "invalid_request")


async def test_multipart_bodies_are_refused_with_the_supported_formats(app: App) -> None:
    response = await app.http.post("/oauth/pair", headers=app.seed.basic(), files={"mode": (None, "device")})
    body = assert_oauth_error(response, 400, "invalid_request")
    assert "multipart/form-data" in body["error_description"] and "x-www-form-urlencoded" in body["error_description"]


@pytest.mark.parametrize("path", ["/oauth/nonexistent", "/oauth/pair/extra"])
async def test_unknown_api_paths_answer_json(app: App, path: str) -> None:
    response = await app.http.post(path, headers=app.seed.basic())
    assert response.status_code == 404 and response.headers["content-type"] == "application/json"
    assert response.json()["error"]


@pytest.mark.parametrize(("path", "status"), [
    ("/healthz/", 200), ("/.well-known/jwks.json/", 200), ("/.well-known/oauth-authorization-server/", 200),
    ("/api/me/", 401),  # without a token: 401 from the endpoint itself, not a 307 or 404
])
async def test_get_endpoints_work_with_a_trailing_slash_without_redirects(app: App, path: str, status: int) -> None:
    response = await app.http.get(path)
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")


async def test_garbage_bearer_tokens_get_a_plain_message(app: App) -> None:
    body = assert_oauth_error(await app.http.get("/api/me", headers={"Authorization": "Bearer garbage"}), 401, "invalid_token")
    assert "Error" not in body["error_description"]  # no exception class names


async def test_unknown_decision_is_refused_and_changes_nothing(app: App) -> None:
    started = await start(app, PAIRING)
    confirm = await open_confirmation(app, PAIRING.browser_url(started))
    response = await app.http.post("/oauth/authorize/pairing/", data={
        "csrf": csrf_of(confirm), "pairing_code": started["pairing_code"], "decision": "bogus"})
    assert response.status_code == 400 and "Approve or Deny" in response.text
    poll = await app.http.post("/oauth/access_token", headers=app.seed.basic(),
                               data={"grant_type": "pairing_code", "pairing_code": started["pairing_code"]})
    assert_oauth_error(poll, 400, "authorization_pending")


async def test_pages_refuse_forms_over_64_kib(app: App) -> None:
    page = await app.http.get("/auth/signin/")
    response = await app.http.post("/auth/signin/", data={"csrf": csrf_of(page), "email": "x" * 70_000, "password": "p"})
    assert response.status_code == 413 and "text/html" in response.headers["content-type"]


async def test_empty_code_entries_do_not_count_towards_the_lock(app: App) -> None:
    for _ in range(6):
        empty = await app.http.get("/device", params={"user_code": "  "})
        assert empty.status_code == 400 and "Enter the code" in empty.text
    started = await start(app, DEVICE)
    valid = await app.http.get("/device", params={"user_code": started["user_code"]})
    assert valid.status_code == 303  # to sign-in: the form is not locked


async def test_full_width_user_codes_are_understood(app: App) -> None:
    started = await start(app, DEVICE)
    full_width = "".join(chr(ord(c) + 0xFEE0) if c != "-" else "－" for c in started["user_code"])
    response = await app.http.get("/device", params={"user_code": full_width})
    assert response.status_code == 303


async def test_locked_code_entry_says_when_to_come_back(app: App) -> None:
    for _ in range(5):
        await app.http.get("/device", params={"user_code": "BBBB-BBBB"})
    response = await app.http.get("/device", params={"user_code": "BBBB-BBBB"})
    assert response.status_code == 429 and response.headers["retry-after"] == "300"


async def test_utf8_user_agents_are_shown_as_sent(app: App) -> None:
    agent = "Drucker Küche/1.0"
    started = await start(app, PAIRING, headers={**app.seed.basic(), "User-Agent": agent.encode()})
    confirm = await open_confirmation(app, PAIRING.browser_url(started))
    assert agent in confirm.text
