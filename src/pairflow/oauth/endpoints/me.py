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
    user = await server.store.get_user(claims["sub"])
    org = await server.store.get_org(user.org_id) if user else None
    if user is None or org is None:
        raise InvalidToken("The access token's user no longer exists.")
    return {
        "id": user.id,
        "email": user.email,
        "organisation": {"id": org.id, "name": org.name},
        "scope": claims.get("scope", ""),
        "client_id": claims.get("client_id"),
    }
