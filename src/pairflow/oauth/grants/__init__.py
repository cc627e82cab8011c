"""One module per grant type; ``GRANTS`` maps each ``grant_type`` value to its handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pairflow.oauth.grants import device_code, pairing_code, refresh_token
from pairflow.oauth.request import OAuthRequest
from pairflow.oauth.server import (
    DEVICE_CODE,
    PAIRING_CODE,
    REFRESH_TOKEN,
    AuthorizationServer,
)
from pairflow.store import Client

GrantHandler = Callable[[AuthorizationServer, Client, OAuthRequest], Awaitable[dict[str, Any]]]

GRANTS: dict[str, GrantHandler] = {
    PAIRING_CODE: pairing_code.exchange,
    DEVICE_CODE: device_code.exchange,
    REFRESH_TOKEN: refresh_token.exchange,
}
