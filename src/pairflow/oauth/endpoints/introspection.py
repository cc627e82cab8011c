"""RFC 7662: ``POST /oauth/introspect``, for resource servers holding a client credential."""

from __future__ import annotations

from typing import Any

from pairflow.oauth.client_auth import authenticate_client
from pairflow.oauth.request import OAuthRequest
from pairflow.oauth.server import AuthorizationServer


async def handle(server: AuthorizationServer, request: OAuthRequest) -> dict[str, Any]:
    await authenticate_client(server.store, server.hash, request)
    token = request.require("token", "<access or refresh token>")
    now = server.clock()
    if request.get("token_type_hint") != "refresh_token":
        try:
            claims = server.signer.verify(token, now)
        except ValueError:
            pass
        else:
            live = await server.store.get_account(claims["sub"], claims.get("sid", "")) is not None
            return {"active": True, "token_type": "Bearer", **claims} if live else {"active": False}
    refresh = await server.store.find_refresh_token(server.hash(token))
    if refresh is None or refresh.revoked or refresh.used_at is not None or refresh.expires_at <= now:
        return {"active": False}
    return {
        "active": True,
        "token_type": "refresh_token",
        "client_id": refresh.client_id,
        "scope": refresh.scope,
        "sub": refresh.user_id,
        "org": refresh.org_id,
        "iat": int(refresh.created_at),
        "exp": int(refresh.expires_at),
        "iss": server.config.issuer,
    }
