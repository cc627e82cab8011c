"""ezeep's ``POST /oauth/pair``: start a pairing and tell the device where to send the person."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from pairflow.oauth import device_flow
from pairflow.oauth.client_auth import authenticate_client
from pairflow.oauth.errors import InvalidRequest, UnauthorizedClient
from pairflow.oauth.request import OAuthRequest
from pairflow.oauth.scopes import resolve_scope
from pairflow.oauth.server import PAIRING_CODE, AuthorizationServer


def confirmation_path(pairing_code: str) -> str:
    return f"/oauth/authorize/pairing/?{urlencode({'pairing_code': pairing_code})}"


def auth_url(issuer: str, pairing_code: str) -> str:
    # Same shape as ezeep's: the sign-in page, told where to go next and which device kind.
    return f"{issuer}/auth/signin/?next={quote(confirmation_path(pairing_code), safe='')}&device=generic"


async def handle(server: AuthorizationServer, request: OAuthRequest) -> dict[str, Any]:
    client = await authenticate_client(server.store, server.hash, request)
    mode = request.get("mode") or "device"
    if mode != "device":
        raise InvalidRequest(f"Unsupported mode '{mode}'; the only pairing mode is 'device'.")
    if not client.may_use_grant(PAIRING_CODE):
        raise UnauthorizedClient("This client is not allowed to use the pairing flow.")
    scope = resolve_scope(client, request.get("scope"))
    started = await device_flow.start(server, client, device_flow.PAIRING, scope, request)
    return {
        "pairing_code": started.code,
        "auth_url": auth_url(server.config.issuer, started.code),
        "expires_in": server.config.code_ttl,
        "interval": server.config.poll_interval,
    }
