"""RFC 6749 section 3.2: ``POST /oauth/access_token``, dispatching on ``grant_type``."""

from __future__ import annotations

from typing import Any

from pairflow.oauth.client_auth import authenticate_client
from pairflow.oauth.errors import UnauthorizedClient, UnsupportedGrantType
from pairflow.oauth.grants import GRANTS
from pairflow.oauth.request import OAuthRequest
from pairflow.oauth.server import AuthorizationServer


async def handle(server: AuthorizationServer, request: OAuthRequest) -> dict[str, Any]:
    grant_type = request.require("grant_type", "pairing_code")
    handler = GRANTS.get(grant_type)
    if handler is None:
        supported = ", ".join(GRANTS)
        raise UnsupportedGrantType(f"Unsupported grant_type '{grant_type}'; this server supports: {supported}.")
    client = await authenticate_client(server.store, server.hash, request, allow_public=True)
    if not client.may_use_grant(grant_type):
        raise UnauthorizedClient(f"This client is not allowed to use the grant type '{grant_type}'.")
    return await handler(server, client, request)
