"""``GET /api/me``: a protected resource that proves a device's access token works."""

from __future__ import annotations

from typing import Any

from pairflow.oauth.errors import InvalidToken
from pairflow.oauth.server import AuthorizationServer


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("Send the access token as 'Authorization: Bearer <token>'.")
    return token.strip()


async def handle(server: AuthorizationServer, authorization: str | None) -> dict[str, Any]:
    try:
        claims = server.signer.verify(bearer_token(authorization), server.clock())
    except ValueError as exc:
        raise InvalidToken(f"The access token is invalid: {exc}.") from None
    account = await server.store.get_account(claims["sub"], claims.get("sid", ""))
    if account is None:
        raise InvalidToken("The device was signed out, or its user or client no longer exists; sign in again.")
    return {
        "id": account.user_id,
        "email": account.email,
        "organisation": {"id": account.org_id, "name": account.org_name},
        "scope": claims.get("scope", ""),
        "client_id": claims.get("client_id"),
    }
