"""RFC 6749 section 6: single-use, rotating refresh tokens.

Rotation is one conditional UPDATE, so of two racing requests exactly one wins. A spent
token presented again means it leaked or a client lost track: the whole family is revoked
(OAuth 2.0 Security BCP, refresh token rotation).
"""

from __future__ import annotations

from typing import Any

from pairflow import audit
from pairflow.oauth.errors import InvalidGrant
from pairflow.oauth.jwt import new_jti
from pairflow.oauth.request import OAuthRequest
from pairflow.oauth.scopes import narrow_scope
from pairflow.oauth.server import AuthorizationServer
from pairflow.store import Client


async def exchange(server: AuthorizationServer, client: Client, request: OAuthRequest) -> dict[str, Any]:
    token = request.require("refresh_token", "<refresh_token from the last token response>")
    token_hash = server.hash(token)
    narrowed = None
    if request.get("scope"):  # checked before the token is spent, so a refused request costs nothing
        known = await server.store.find_refresh_token(token_hash)
        if known is not None and known.client_id == client.client_id:
            narrowed = narrow_scope(known.scope, request.get("scope"))
    refresh_token, successor = server.new_refresh_token()
    previous = await server.store.rotate_refresh_token(
        token_hash, client.client_id, server.clock(), successor=successor, scope=narrowed
    )
    if previous is None:
        await _explain_failure(server, client, token_hash)
    assert previous is not None
    return server.token_response(
        client_id=client.client_id,
        user_id=previous.user_id,
        org_id=previous.org_id,
        scope=narrowed or previous.scope,
        jti=new_jti(),
        refresh_token=refresh_token,
        session_id=previous.family_id,
    )


async def _explain_failure(server: AuthorizationServer, client: Client, token_hash: str) -> None:
    known = await server.store.find_refresh_token(token_hash)
    if known is None or known.client_id != client.client_id:
        raise InvalidGrant("Unknown refresh token, or it was issued to another client.")
    if known.revoked:
        raise InvalidGrant("This refresh token has been revoked; sign in again.")
    if known.used_at is not None:
        await server.store.revoke_family(known.family_id)
        await audit.record(server.store, "refresh_token_reused", detail="token family revoked", user_id=known.user_id, client_id=client.client_id)
        raise InvalidGrant("This refresh token was already used; refresh tokens are single-use. Sign in again.")
    raise InvalidGrant("This refresh token has expired; sign in again.")
