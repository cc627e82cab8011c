"""Access tokens (RS256 JWT, JWKS), /api/me, metadata, revocation and introspection."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from pairflow.oauth.jwt import TokenSigner
from tests.conftest import App
from tests.server.helpers import (
    DEVICE,
    Dialect,
    approved_tokens,
    assert_oauth_error,
    basic,
    refresh,
    start,
)


def b64url_json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def me(app: App, token: str | None, scheme: str = "Bearer"):
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    return await app.http.get("/api/me", headers=headers)


def assert_invalid_token(response) -> None:
    assert_oauth_error(response, 401, "invalid_token")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_access_token_is_rs256_jwt_verifiable_with_the_jwks(app: App, dialect: Dialect) -> None:
    tokens = await approved_tokens(app, dialect, scope="printing")
    token = tokens["access_token"]
    header = b64url_json(token.split(".")[0])
    assert header["alg"] == "RS256"
    assert header["typ"] == "JWT"
    jwks_response = await app.http.get("/.well-known/jwks.json")
    assert jwks_response.status_code == 200
    jwks = jwks_response.json()
    assert [key["kid"] for key in jwks["keys"]] == [header["kid"]]
    public = jwks["keys"][0]
    assert public["kty"] == "RSA" and "d" not in public and "p" not in public  # no private parts published
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    claims = decoded.claims
    assert claims["iss"] == "http://testserver"
    assert isinstance(claims["iat"], int) and abs(claims["iat"] - app.clock()) <= 1
    assert claims["exp"] == claims["iat"] + 3600
    assert claims["scopes"] == "printing" and claims["scope"] == "printing"
    assert claims["sub"] == app.seed.user_id and str(uuid.UUID(claims["sub"])) == claims["sub"]
    assert claims["org"] == app.seed.org_id and str(uuid.UUID(claims["org"])) == claims["org"]
    assert claims["pty"] == "dev"
    assert claims["client_id"] == app.seed.client_id
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16


async def test_every_token_has_a_distinct_jti(app: App, dialect: Dialect) -> None:
    tokens = await approved_tokens(app, dialect)
    refreshed = (await refresh(app, tokens["refresh_token"])).json()
    jtis = {jwt.decode(t, KeySet.import_key_set((await app.http.get("/.well-known/jwks.json")).json())).claims["jti"]
            for t in (tokens["access_token"], refreshed["access_token"])}
    assert len(jtis) == 2


async def test_api_me_accepts_a_valid_token(app: App, dialect: Dialect) -> None:
    tokens = await approved_tokens(app, dialect)
    response = await me(app, tokens["access_token"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == app.seed.user_id
    assert body["email"] == app.seed.email
    assert body["organisation"]["id"] == app.seed.org_id
    assert body["client_id"] == app.seed.client_id
    assert (await app.http.get("/api/me/", headers={"Authorization": f"bearer {tokens['access_token']}"})).status_code == 200


async def test_api_me_rejects_missing_and_malformed_tokens(app: App) -> None:
    assert_invalid_token(await me(app, None))
    assert_invalid_token(await me(app, ""))
    assert_invalid_token(await me(app, "not.a.jwt"))
    assert_invalid_token(await me(app, "abc"))
    tokens = await approved_tokens(app, DEVICE)
    assert_invalid_token(await me(app, tokens["access_token"], scheme="Basic"))
    assert_invalid_token(await me(app, tokens["refresh_token"]))


async def test_api_me_rejects_tampered_tokens(app: App, signing_key_pem: str) -> None:
    tokens = await approved_tokens(app, DEVICE)
    header, payload, signature = tokens["access_token"].split(".")
    claims = b64url_json(payload)
    forged_payload = b64url({**claims, "sub": str(uuid.uuid4())})
    assert_invalid_token(await me(app, f"{header}.{forged_payload}.{signature}"))
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert_invalid_token(await me(app, f"{header}.{payload}.{flipped}"))
    unsigned = b64url({"alg": "none", "typ": "JWT"})
    assert_invalid_token(await me(app, f"{unsigned}.{payload}."))
    # Signed by another key under our kid: the signature does not verify.
    stranger = RSAKey.generate_key(2048, private=True)
    kid = b64url_json(header)["kid"]
    forged = jwt.encode({"alg": "RS256", "kid": kid}, claims, stranger, algorithms=["RS256"])
    assert_invalid_token(await me(app, forged))
    # HS256 keyed with the public key (algorithm confusion) is refused too.
    hs_header = b64url({"alg": "HS256", "typ": "JWT", "kid": kid})
    assert_invalid_token(await me(app, f"{hs_header}.{payload}.{signature}"))
    # Signed with this server's own key (the app's, see conftest), but naming another issuer or another key.
    elsewhere = "http://elsewhere"
    assert_invalid_token(await me(app, TokenSigner(signing_key_pem, elsewhere).sign({**claims, "iss": elsewhere})))
    ours = RSAKey.import_key(signing_key_pem)
    assert_invalid_token(await me(app, jwt.encode({"alg": "RS256", "kid": "another-key"}, claims, ours, algorithms=["RS256"])))
    # The same claims signed the genuine way are accepted, so the refusals above are not about the claims.
    assert (await me(app, jwt.encode({"alg": "RS256", "kid": kid}, claims, ours, algorithms=["RS256"]))).status_code == 200


async def test_api_me_rejects_expired_tokens(app: App) -> None:
    app.clock.now = float(int(app.clock.now))  # a whole second, so that exp is reached exactly (iat is truncated)
    tokens = await approved_tokens(app, DEVICE)
    app.clock.advance(3599)
    assert (await me(app, tokens["access_token"])).status_code == 200
    app.clock.advance(1)  # now == exp: expired (RFC 7519: "on or after")
    assert_invalid_token(await me(app, tokens["access_token"]))


# Metadata (RFC 8414)


async def test_metadata_lists_endpoints_grants_methods_and_scopes(app: App) -> None:
    response = await app.http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    doc = response.json()
    issuer = "http://testserver"
    assert doc["issuer"] == issuer
    assert doc["token_endpoint"] == f"{issuer}/oauth/access_token"
    assert doc["device_authorization_endpoint"] == f"{issuer}/oauth/device_authorization"
    assert doc["pairing_endpoint"] == f"{issuer}/oauth/pair"
    assert doc["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert doc["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert doc["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert set(doc["grant_types_supported"]) == {"pairing_code", "urn:ietf:params:oauth:grant-type:device_code", "refresh_token"}
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post", "none"}
    assert "client_secret_basic" in doc["introspection_endpoint_auth_methods_supported"]
    assert set(doc["scopes_supported"]) == {"printing", "scanning"}
    # Every advertised endpoint exists: an empty POST gets that endpoint's own protocol error, not a 404.
    expected = {
        "token_endpoint": (400, "invalid_request"),  # grant_type is read before the client
        "device_authorization_endpoint": (401, "invalid_client"),
        "pairing_endpoint": (401, "invalid_client"),
        "revocation_endpoint": (401, "invalid_client"),
        "introspection_endpoint": (401, "invalid_client"),
    }
    for key, (status, error) in expected.items():
        assert_oauth_error(await app.http.post(doc[key].removeprefix(issuer)), status, error)
    assert (await app.http.get(doc["jwks_uri"].removeprefix(issuer))).status_code == 200


async def test_device_authorization_response_matches_rfc_8628(app: App) -> None:
    body = await start(app, DEVICE)
    assert set(body) == {"device_code", "user_code", "verification_uri", "verification_uri_complete", "expires_in", "interval"}
    assert body["verification_uri"] == "http://testserver/device"
    assert body["verification_uri_complete"] == f"http://testserver/device?user_code={body['user_code']}"
    assert body["expires_in"] == 600 and body["interval"] == 5
    assert len(body["device_code"]) >= 32


# Revocation (RFC 7009) and introspection (RFC 7662)


async def introspect(app: App, token: str, hint: str | None = None, headers: dict[str, str] | None = None) -> dict:
    data = {"token": token, **({"token_type_hint": hint} if hint else {})}
    response = await app.http.post("/oauth/introspect", headers=headers or app.seed.basic(), data=data)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


async def test_revoking_a_refresh_token_makes_refresh_fail(app: App, dialect: Dialect) -> None:
    tokens = await approved_tokens(app, dialect)
    rotated = (await refresh(app, tokens["refresh_token"])).json()["refresh_token"]
    response = await app.http.post("/oauth/revoke", headers=app.seed.basic(), data={"token": rotated, "token_type_hint": "refresh_token"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = assert_oauth_error(await refresh(app, rotated), 400, "invalid_grant")
    assert "revoked" in body["error_description"]
    assert (await introspect(app, rotated)) == {"active": False}
    events = await app.runtime.store.list_events(5)
    assert [(e.event, e.client_id) for e in events if e.event == "session_revoked"] == [("session_revoked", app.seed.client_id)]


async def test_revocation_by_another_client_or_of_unknown_tokens_is_a_quiet_no_op(app: App) -> None:
    tokens = await approved_tokens(app, DEVICE)
    other = basic(app.seed.other_client_id, app.seed.other_client_secret)
    assert (await app.http.post("/oauth/revoke", headers=other, data={"token": tokens["refresh_token"]})).status_code == 200
    assert (await app.http.post("/oauth/revoke", headers=app.seed.basic(), data={"token": "unknown"})).status_code == 200
    assert (await refresh(app, tokens["refresh_token"])).status_code == 200


async def test_revocation_requires_client_authentication(app: App) -> None:
    tokens = await approved_tokens(app, DEVICE)
    response = await app.http.post("/oauth/revoke", data={"token": tokens["refresh_token"]})
    assert_oauth_error(response, 401, "invalid_client")
    assert (await refresh(app, tokens["refresh_token"])).status_code == 200


async def test_introspection_of_access_tokens(app: App) -> None:
    tokens = await approved_tokens(app, DEVICE)
    active = await introspect(app, tokens["access_token"])
    assert active["active"] is True
    assert active["sub"] == app.seed.user_id and active["client_id"] == app.seed.client_id
    assert active["scope"] == tokens["scope"]
    app.clock.advance(3601)
    assert (await introspect(app, tokens["access_token"])) == {"active": False}
    header, payload, signature = tokens["access_token"].split(".")
    assert (await introspect(app, f"{header}.{payload}.{signature[::-1]}")) == {"active": False}


async def test_introspection_of_refresh_tokens(app: App) -> None:
    tokens = await approved_tokens(app, DEVICE)
    for hint in (None, "refresh_token", "access_token"):
        active = await introspect(app, tokens["refresh_token"], hint)
        assert active["active"] is True and active["sub"] == app.seed.user_id and active["token_type"] == "refresh_token"
    rotated = await refresh(app, tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    assert (await introspect(app, tokens["refresh_token"])) == {"active": False}
    assert (await introspect(app, rotated.json()["refresh_token"]))["active"] is True
    assert (await introspect(app, "no-such-token")) == {"active": False}


@pytest.mark.parametrize("who", ["public", "none"])
async def test_introspection_requires_a_confidential_client(app: App, who: str) -> None:
    data = {"token": "anything"} | ({"client_id": app.seed.public_client_id} if who == "public" else {})
    assert_oauth_error(await app.http.post("/oauth/introspect", data=data), 401, "invalid_client")
