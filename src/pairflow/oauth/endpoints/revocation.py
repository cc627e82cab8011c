"""RFC 7009: ``POST /oauth/revoke``.

A refresh token revokes its whole family (the device is unpaired). Access tokens are
short-lived self-contained JWTs; revoking one is acknowledged and it lapses at ``exp``.
Unknown tokens are answered 200 too, as the RFC requires.
"""

from __future__ import annotations

from pairflow import audit
from pairflow.oauth.client_auth import authenticate_client
from pairflow.oauth.request import OAuthRequest
from pairflow.oauth.server import AuthorizationServer


async def handle(server: AuthorizationServer, request: OAuthRequest) -> None:
    client = await authenticate_client(server.store, server.hash, request, allow_public=True)
    token = request.require("token", "<refresh_token>")
    known = await server.store.find_refresh_token(server.hash(token))
    if known is not None and known.client_id == client.client_id and await server.store.revoke_family(known.family_id):
        await audit.record(server.store, "session_revoked", detail="by the device (RFC 7009)", user_id=known.user_id,
                           client_id=client.client_id, ip=request.client_ip)
