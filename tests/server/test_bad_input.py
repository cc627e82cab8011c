"""Malformed requests, starting with the reference document's own examples: clear errors, never a 500."""

from __future__ import annotations

from tests.conftest import App
from tests.server.helpers import (
    DEVICE,
    PAIRING,
    assert_oauth_error,
    basic,
    poll,
    sign_in,
    sign_in_and_approve,
    start,
)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# curl -d "{ 'scope' :'printing', 'mode':'device' }" from device_code_flow.md: sent as a form.
SPEC_PAIR_BODY = """{
           'scope' :'printing',
           'mode':'device'
         }"""
# curl -d 'grant_type':'pairing_code' -d 'scope' :'printing' -d 'pairing_code':'KjUdZTDpiX': the shell drops
# the quotes, curl joins the -d values with '&'.
SPEC_TOKEN_BODY = "grant_type:pairing_code&scope :printing&pairing_code:KjUdZTDpiX"

POST_ENDPOINTS = [
    f"{base}{slash}"
    for base in ("/oauth/pair", "/oauth/access_token", "/access_token", "/oauth/device_authorization", "/oauth/revoke", "/oauth/introspect")
    for slash in ("", "/")
]


async def test_spec_first_example_body_falls_back_to_defaults(app: App) -> None:
    response = await app.http.post("/oauth/pair/", headers={**app.seed.basic(), **FORM}, content=SPEC_PAIR_BODY)
    assert response.status_code == 200, response.text
    started = response.json()
    await sign_in_and_approve(app, started["auth_url"])
    token = await poll(app, PAIRING, started["pairing_code"])
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "printing scanning"  # the client's registered default


async def test_spec_second_example_body_explains_key_value_format(app: App) -> None:
    response = await app.http.post("/access_token/", headers={**app.seed.basic(), **FORM}, content=SPEC_TOKEN_BODY)
    body = assert_oauth_error(response, 400, "invalid_request")
    assert "grant_type" in body["error_description"]
    assert "key=value" in body["error_description"]


async def test_json_object_bodies_are_accepted(app: App) -> None:
    for content_type in ("application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded", None):
        headers = {**app.seed.basic(), **({"Content-Type": content_type} if content_type else {})}
        paired = await app.http.post("/oauth/pair", headers=headers, content=b'{"scope": "scanning", "mode": "device"}')
        assert paired.status_code == 200, (content_type, paired.text)
        code = paired.json()["pairing_code"]
        redeem = f'{{"grant_type": "pairing_code", "pairing_code": "{code}"}}'
        assert_oauth_error(await app.http.post("/oauth/access_token", headers=headers, content=redeem), 400, "authorization_pending")
        await sign_in_and_approve(app, paired.json()["auth_url"])
        app.clock.advance(5)
        token = await app.http.post("/oauth/access_token", headers=headers, content=redeem)
        assert token.status_code == 200, (content_type, token.text)
        assert token.json()["scope"] == "scanning"


MISSING = [
    ("/oauth/access_token", {}, "grant_type"),
    ("/oauth/access_token", {"grant_type": "pairing_code"}, "pairing_code"),
    ("/oauth/access_token", {"grant_type": "pairing_code", "pairing_code": ""}, "pairing_code"),
    ("/oauth/access_token", {"grant_type": DEVICE.grant_type}, "device_code"),
    ("/oauth/access_token", {"grant_type": "refresh_token"}, "refresh_token"),
    ("/oauth/revoke", {}, "token"),
    ("/oauth/introspect", {}, "token"),
]


async def test_missing_parameters_are_named(app: App) -> None:
    for path, data, missing in MISSING:
        body = assert_oauth_error(await app.http.post(path, headers=app.seed.basic(), data=data), 400, "invalid_request")
        assert f"'{missing}'" in body["error_description"], (path, data, body)


REPEATED = [
    ("/oauth/access_token", "grant_type=pairing_code&grant_type=pairing_code&pairing_code=abc"),
    ("/oauth/access_token", "grant_type=pairing_code&pairing_code=abc&pairing_code=def"),
    ("/oauth/pair", "scope=printing&scope=scanning"),
    ("/oauth/device_authorization", "scope=printing&scope=printing"),
]


async def test_repeated_parameters_are_invalid_request(app: App) -> None:
    for path, body in REPEATED:
        response = await app.http.post(path, headers={**app.seed.basic(), **FORM}, content=body)
        assert "repeated" in assert_oauth_error(response, 400, "invalid_request")["error_description"], body


async def test_unknown_grant_type_is_unsupported_grant_type(app: App) -> None:
    for grant_type in ("authorization_code", "password", "device_code", "PAIRING_CODE"):
        response = await app.http.post("/oauth/access_token", headers=app.seed.basic(), data={"grant_type": grant_type})
        assert_oauth_error(response, 400, "unsupported_grant_type")


async def test_scope_outside_the_clients_scopes_is_invalid_scope(app: App) -> None:
    seed = app.seed
    other = basic(seed.other_client_id, seed.other_client_secret)  # registered for "printing" only
    for path in ("/oauth/pair", "/oauth/device_authorization"):
        assert_oauth_error(await app.http.post(path, headers=other, data={"scope": "scanning"}), 400, "invalid_scope")
        assert_oauth_error(await app.http.post(path, headers=other, data={"scope": "printing admin"}), 400, "invalid_scope")
        assert (await app.http.post(path, headers=other, data={"scope": "printing"})).status_code == 200
    code = (await start(app, PAIRING, headers=other))["pairing_code"]
    token_request = {"grant_type": "pairing_code", "pairing_code": code, "scope": "scanning"}
    assert_oauth_error(await app.http.post("/oauth/access_token", headers=other, data=token_request), 400, "invalid_scope")


async def test_unsupported_pairing_mode_is_invalid_request(app: App) -> None:
    response = await app.http.post("/oauth/pair", headers=app.seed.basic(), data={"mode": "browser"})
    assert "mode" in assert_oauth_error(response, 400, "invalid_request")["error_description"]


async def test_get_on_post_endpoints_is_405_json(app: App) -> None:
    for path in POST_ENDPOINTS:
        response = await app.http.get(path)
        assert_oauth_error(response, 405, "invalid_request")
        assert "POST" in response.headers.get("allow", ""), path


async def test_post_on_get_endpoints_is_405_json_and_head_works(app: App) -> None:
    for path in ("/api/me", "/healthz", "/.well-known/jwks.json", "/.well-known/oauth-authorization-server/"):
        response = await app.http.post(path, data={"x": "1"})
        assert_oauth_error(response, 405, "invalid_request")
        assert response.headers["allow"] == "GET, HEAD", path
    head = await app.http.head("/healthz")  # load balancers probe with HEAD
    assert head.status_code == 200 and head.content == b"" and head.headers["content-type"] == "application/json"
    assert int(head.headers["content-length"]) == len(b'{"status":"ok"}')


async def test_unknown_api_path_is_404_json(app: App) -> None:
    for path in ("/oauth/nothing", "/api/nothing", "/.well-known/nothing"):
        assert_oauth_error(await app.http.post(path, data={"x": "1"}), 404, "invalid_request")


async def test_oversized_body_is_413_json(app: App) -> None:
    async def chunks():  # no Content-Length: the limit holds while streaming too
        for _ in range(20):
            yield b"a" * 4096

    for path in ("/oauth/pair", "/oauth/access_token", "/access_token/", "/oauth/device_authorization", "/oauth/introspect"):
        big = b"scope=" + b"a" * (64 * 1024)
        assert_oauth_error(await app.http.post(path, headers={**app.seed.basic(), **FORM}, content=big), 413, "invalid_request")
        streamed = await app.http.post(path, headers={**app.seed.basic(), **FORM}, content=chunks())
        assert_oauth_error(streamed, 413, "invalid_request")


async def test_body_just_under_the_limit_is_read(app: App) -> None:
    body = "mode=device&scope=printing&padding=" + "a" * (64 * 1024 - 40)
    response = await app.http.post("/oauth/pair", headers={**app.seed.basic(), **FORM}, content=body)
    assert response.status_code == 200, response.text


GARBAGE_BODIES = [
    ("application/json", b"[1, 2]"),
    ("application/json", b'{"grant_type": {"nested": 1}}'),
    ("application/json", b'{"grant_type": null}'),
    ("application/json", b'{"grant_type": true}'),
    ("application/json", b"{not json"),
    ("application/json", b'"just a string"'),
    ("application/json", b"\xff\xfe"),
    ("application/x-www-form-urlencoded", b"\xff\xfe=\xfd"),
    ("application/x-www-form-urlencoded", b"grant_type=%zz&pairing_code=%"),
    ("application/x-www-form-urlencoded", b"grant_type=pairing_code&pairing_code=a%00b"),
    ("application/x-www-form-urlencoded", b"&&&=&=="),
    ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\npairing_code\r\n--x--'),
    ("text/plain", b"grant_type=pairing_code"),
]


async def test_garbage_bodies_get_protocol_errors_not_500(app: App) -> None:
    for content_type, body in GARBAGE_BODIES:
        for path in ("/oauth/access_token", "/oauth/pair", "/oauth/device_authorization", "/oauth/introspect", "/oauth/revoke"):
            response = await app.http.post(path, headers={**app.seed.basic(), "Content-Type": content_type}, content=body)
            assert response.status_code < 500, (path, body, response.status_code, response.text)
            if response.status_code == 200:  # pair and device_authorization need no parameters at all
                assert path in ("/oauth/pair", "/oauth/device_authorization"), (path, body, response.text)
            else:
                assert 400 <= response.status_code < 500, (path, body, response.status_code)
                assert_oauth_error(response, response.status_code, response.json()["error"])


async def test_garbage_authorization_headers_get_invalid_client(app: App) -> None:
    for authorization in ["Basic", "Basic ====", "Basic a", "basic " + "QQ==" * 10, "Digest x", "Basic \u00e9t\u00e9", "Basic " + "A" * 5000]:
        response = await app.http.post("/oauth/pair", headers={"Authorization": authorization.encode("utf-8")})
        assert_oauth_error(response, 401, "invalid_client")
    not_text = await app.http.post("/oauth/pair", headers={"Authorization": "Basic //46+g=="})  # valid Base64, not UTF-8
    assert "not UTF-8" in assert_oauth_error(not_text, 401, "invalid_client")["error_description"]


async def test_unknown_api_path_is_json_404(app: App) -> None:
    response = await app.http.post("/api/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")


async def test_nul_characters_are_refused_before_any_lookup(app: App) -> None:
    # PostgreSQL refuses NUL in text: it must be a clear client error on every database, never a 500.
    client_id, secret = app.seed.client_id, app.seed.client_secret
    as_form = await app.http.post("/oauth/access_token", headers=FORM,
                                  content=f"grant_type=pairing_code&pairing_code=x&client_id={client_id}%00")
    assert "NUL" in assert_oauth_error(as_form, 400, "invalid_request")["error_description"]
    as_json = await app.http.post("/oauth/pair", headers={**basic(client_id, secret), "Content-Type": "application/json"},
                                  content='{"scope": "print\\u0000ing"}')
    assert "NUL" in assert_oauth_error(as_json, 400, "invalid_request")["error_description"]
    in_basic = await app.http.post("/oauth/pair", headers=basic(f"{client_id}\x00", secret))
    assert "NUL" in assert_oauth_error(in_basic, 401, "invalid_client")["error_description"]
    encoded_in_basic = await app.http.post("/oauth/pair", headers=basic(f"{client_id}%00", secret))
    assert "NUL" in assert_oauth_error(encoded_in_basic, 401, "invalid_client")["error_description"]
    page = await sign_in(app, email=f"{app.seed.email}\x00")
    assert page.status_code == 400 and "NUL" in page.text
