"""ezeep's ``pairing_code`` grant: the device redeems the code the person approved."""

from __future__ import annotations

from typing import Any

from pairflow.oauth import device_flow
from pairflow.oauth.request import OAuthRequest
from pairflow.oauth.scopes import resolve_scope
from pairflow.oauth.server import AuthorizationServer
from pairflow.store import Client


async def exchange(server: AuthorizationServer, client: Client, request: OAuthRequest) -> dict[str, Any]:
    code = request.require("pairing_code", "uafdHUwAs7")
    # The granted scope was fixed when pairing began; a scope sent now must still be the client's.
    resolve_scope(client, request.get("scope"))
    return await device_flow.poll(server, client, device_flow.PAIRING, code, request)
