"""RFC 8628 section 3.1/3.2: ``POST /oauth/device_authorization``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pairflow.oauth import device_flow
from pairflow.oauth.client_auth import authenticate_client
from pairflow.oauth.codes import format_user_code
from pairflow.oauth.errors import UnauthorizedClient
from pairflow.oauth.request import OAuthRequest
from pairflow.oauth.scopes import resolve_scope
from pairflow.oauth.server import DEVICE_CODE, AuthorizationServer


async def handle(server: AuthorizationServer, request: OAuthRequest) -> dict[str, Any]:
    client = await authenticate_client(server.store, server.hash, request, allow_public=True)
    if not client.may_use_grant(DEVICE_CODE):
        raise UnauthorizedClient("This client is not allowed to use the device authorization grant.")
    scope = resolve_scope(client, request.get("scope"))
    started = await device_flow.start(server, client, device_flow.DEVICE, scope, request)
    assert started.user_code is not None
    user_code = format_user_code(started.user_code)
    verification_uri = server.config.verification_uri
    return {
        "device_code": started.code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": f"{verification_uri}?{urlencode({'user_code': user_code})}",
        "expires_in": server.config.code_ttl,
        "interval": server.config.poll_interval,
    }
