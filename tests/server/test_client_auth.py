"""Client authentication: HTTP Basic as ezeep documents it, client_secret_post, public clients."""

from __future__ import annotations

import base64
import time

from pairflow.oauth.server import DEVICE_GRANT_TYPES
from pairflow.store import Client
from tests.conftest import App
from tests.server.helpers import (
    DEVICE,
    PAIRING,
    assert_oauth_error,
    basic,
    poll,
    sign_in_and_approve,
    start,
)

# Copied from device_code_flow.md's curl examples: not valid Base64 (an '=' in the middle).
SPEC_EXAMPLE_AUTHORIZATION = (
    "Basic QjZ6RGdaaTlZQ3lJS3VmUlhHdDFROFJEOTdqc2RDUU5SV1lGdjl4Szo3d3JIUzFJUHdXS3JJQW5XejRFTkRBM2dHOGVHeVQ0"
    "UmdxUnNaZWhHVTVKTTVCaUlRWUlNZ0g1V0Z3ZU9SaDFIYklqeWRTVThjc3JyZDZXenZS1kfT1NDMTNtU2psZHpGQWtMVUc1a3NUaklE"
    "clpHWTNBWXBsNW1kbzhFZm0wZw=="
)
# The spec's worked example: base64("g34ibgu2fhon:jisow35ysdlalx35s2avnks43223jdhjsdk\n"), made with echo.
SPEC_CLIENT_ID = "g34ibgu2fhon"
SPEC_CLIENT_SECRET = "jisow35ysdlalx35s2avnks43223jdhjsdk"
SPEC_BASIC = "ZzM0aWJndTJmaG9uOmppc293MzV5c2RsYWx4MzVzMmF2bmtzNDMyMjNqZGhqc2RrCg=="


async def register(app: App, client_id: str, secret: str | None, scope: str = "printing") -> None:
    runtime = app.runtime
    await runtime.store.create_client(
        Client(
            client_id=client_id,
            name=f"Client {client_id}",
            secret_hash=runtime.server.hash(secret) if secret is not None else None,
            scope=scope,
            grant_types=DEVICE_GRANT_TYPES,
            created_at=time.time(),
        )
    )


def raw_basic(decoded: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(decoded.encode()).decode()}


async def test_spec_example_authorization_header_is_named_as_invalid_base64(app: App) -> None:
    data = {"grant_type": "pairing_code", "pairing_code": "KjUdZTDpiX", "scope": "printing", "mode": "device"}
    for path in ("/oauth/pair/", "/access_token/", "/oauth/device_authorization"):
        response = await app.http.post(path, headers={"Authorization": SPEC_EXAMPLE_AUTHORIZATION}, data=data)
        body = assert_oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"].startswith("Basic"), path
        assert "Base64" in body["error_description"], path


async def test_spec_worked_example_credentials_with_echo_newline_are_accepted(app: App) -> None:
    await register(app, SPEC_CLIENT_ID, SPEC_CLIENT_SECRET)
    assert base64.b64decode(SPEC_BASIC).endswith(b"\n")
    response = await app.http.post("/oauth/pair", headers={"Authorization": f"Basic {SPEC_BASIC}"}, data={"scope": "printing"})
    assert response.status_code == 200, response.text


async def test_exactly_one_trailing_newline_is_tolerated(app: App) -> None:
    seed = app.seed
    one = await app.http.post("/oauth/pair", headers=raw_basic(f"{seed.client_id}:{seed.client_secret}\n"))
    assert one.status_code == 200, one.text
    two = await app.http.post("/oauth/pair", headers=raw_basic(f"{seed.client_id}:{seed.client_secret}\n\n"))
    assert_oauth_error(two, 401, "invalid_client")
    crlf = await app.http.post("/oauth/pair", headers=raw_basic(f"{seed.client_id}:{seed.client_secret}\r\n"))
    assert_oauth_error(crlf, 401, "invalid_client")


async def test_basic_credentials_are_form_decoded(app: App) -> None:
    """RFC 6749 section 2.3.1: id and secret are form-encoded before Base64."""
    seed = app.seed
    every_char_escaped = lambda value: "".join(f"%{b:02X}" for b in value.encode())  # noqa: E731
    response = await app.http.post(
        "/oauth/pair", headers=raw_basic(f"{every_char_escaped(seed.client_id)}:{every_char_escaped(seed.client_secret)}")
    )
    assert response.status_code == 200, response.text
    # A secret with reserved characters: sent encoded it matches, '+' means a space.
    await register(app, "odd-client", "a:b+c d%é")
    encoded = await app.http.post("/oauth/pair", headers=raw_basic("odd-client:a%3Ab%2Bc+d%25%C3%A9"))
    assert encoded.status_code == 200, encoded.text
    wrong = await app.http.post("/oauth/pair", headers=raw_basic("odd-client:a%3Ab%2Bc%2Bd%25%C3%A9"))
    assert_oauth_error(wrong, 401, "invalid_client")


MALFORMED_CREDENTIALS = {
    "missing": {},
    "unknown-client": {"Authorization": "Basic " + base64.b64encode(b"no-such-client:secret").decode()},
    "no-colon": {"Authorization": "Basic " + base64.b64encode(b"no-colon-here").decode()},
    "empty": {"Authorization": "Basic "},
    "bearer": {"Authorization": "Bearer abc"},
    "not-utf8": {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
}


async def test_missing_or_malformed_credentials_are_invalid_client(app: App) -> None:
    for case, headers in MALFORMED_CREDENTIALS.items():
        for path, data in (("/oauth/pair", {}), ("/oauth/access_token", {"grant_type": "pairing_code", "pairing_code": "x"})):
            response = await app.http.post(path, headers=headers, data=data)
            assert_oauth_error(response, 401, "invalid_client")
            assert response.headers["www-authenticate"].startswith("Basic"), case


async def test_wrong_secret_is_invalid_client(app: App) -> None:
    seed = app.seed
    for headers in (basic(seed.client_id, "wrong"), basic(seed.client_id, seed.other_client_secret), basic(seed.other_client_id, seed.client_secret)):
        assert_oauth_error(await app.http.post("/oauth/pair", headers=headers), 401, "invalid_client")
        assert_oauth_error(await app.http.post("/oauth/device_authorization", headers=headers), 401, "invalid_client")


async def test_confidential_client_with_client_secret_post(app: App) -> None:
    seed = app.seed
    creds = {"client_id": seed.client_id, "client_secret": seed.client_secret}
    paired = await app.http.post("/oauth/pair", data={**creds, "scope": "printing"})
    assert paired.status_code == 200, paired.text
    code = paired.json()["pairing_code"]
    token_request = {**creds, "grant_type": "pairing_code", "pairing_code": code}
    assert_oauth_error(await app.http.post("/oauth/access_token", data=token_request), 400, "authorization_pending")
    await sign_in_and_approve(app, paired.json()["auth_url"])
    app.clock.advance(5)
    token = await app.http.post("/oauth/access_token", data=token_request)
    assert token.status_code == 200, token.text
    wrong = await app.http.post("/oauth/pair", data={"client_id": seed.client_id, "client_secret": "nope"})
    assert_oauth_error(wrong, 401, "invalid_client")


async def test_confidential_client_cannot_pose_as_public(app: App) -> None:
    response = await app.http.post("/oauth/device_authorization", data={"client_id": app.seed.client_id})
    assert_oauth_error(response, 401, "invalid_client")


async def test_credentials_in_header_and_body_are_invalid_request(app: App) -> None:
    seed = app.seed
    both = await app.http.post("/oauth/pair", headers=seed.basic(), data={"client_id": seed.client_id, "client_secret": seed.client_secret})
    assert_oauth_error(both, 400, "invalid_request")
    token = await app.http.post(
        "/oauth/access_token",
        headers=seed.basic(),
        data={"client_secret": seed.client_secret, "grant_type": "pairing_code", "pairing_code": "x"},
    )
    assert_oauth_error(token, 400, "invalid_request")
    mismatch = await app.http.post("/oauth/pair", headers=seed.basic(), data={"client_id": seed.other_client_id})
    assert_oauth_error(mismatch, 400, "invalid_request")


async def test_public_client_device_flow_with_client_id_only(app: App) -> None:
    public = {"client_id": app.seed.public_client_id}
    started = await app.http.post("/oauth/device_authorization", data={**public, "scope": "printing"})
    assert started.status_code == 200, started.text
    body = started.json()
    assert set(body) >= {"device_code", "user_code", "verification_uri", "verification_uri_complete", "expires_in", "interval"}
    request = {**public, "grant_type": DEVICE.grant_type, "device_code": body["device_code"]}
    assert_oauth_error(await app.http.post("/oauth/access_token", data=request), 400, "authorization_pending")
    await sign_in_and_approve(app, body["verification_uri_complete"])
    app.clock.advance(5)
    token = await app.http.post("/oauth/access_token", data=request)
    assert token.status_code == 200, token.text
    refreshed = await app.http.post(
        "/oauth/access_token", data={**public, "grant_type": "refresh_token", "refresh_token": token.json()["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text


async def test_public_client_cannot_pair(app: App) -> None:
    response = await app.http.post("/oauth/pair", data={"client_id": app.seed.public_client_id, "scope": "printing"})
    assert_oauth_error(response, 401, "invalid_client")


async def test_public_client_must_not_send_a_secret(app: App) -> None:
    response = await app.http.post("/oauth/device_authorization", headers=basic(app.seed.public_client_id, "made-up"))
    assert_oauth_error(response, 401, "invalid_client")


async def test_public_client_cannot_use_a_confidential_clients_code(app: App) -> None:
    code = (await start(app, DEVICE))["device_code"]
    response = await app.http.post(
        "/oauth/access_token", data={"client_id": app.seed.public_client_id, "grant_type": DEVICE.grant_type, "device_code": code}
    )
    assert_oauth_error(response, 400, "invalid_grant")
    assert_oauth_error(await poll(app, DEVICE, code), 400, "authorization_pending")


async def test_pairing_with_the_other_client_is_scoped_to_it(app: App) -> None:
    other = basic(app.seed.other_client_id, app.seed.other_client_secret)
    started = await start(app, PAIRING, headers=other)
    assert_oauth_error(await poll(app, PAIRING, started["pairing_code"]), 400, "invalid_grant")  # not the seed client's
    assert_oauth_error(await poll(app, PAIRING, started["pairing_code"], headers=other), 400, "authorization_pending")
