"""RFC 8628 section 3.4: ``urn:ietf:params:oauth:grant-type:device_code``."""

from __future__ import annotations

from typing import Any

from pairflow.oauth import device_flow
from pairflow.oauth.request import OAuthRequest
from pairflow.oauth.server import AuthorizationServer
from pairflow.store import Client


async def exchange(server: AuthorizationServer, client: Client, request: OAuthRequest) -> dict[str, Any]:
    code = request.require("device_code", "<device_code from the device authorization response>")
    return await device_flow.poll(server, client, device_flow.DEVICE, code, request)
