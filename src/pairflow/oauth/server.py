"""The authorization server: configuration, keys and the grant registry in one object.

Endpoints (``pairflow.oauth.endpoints``) and grants (``pairflow.oauth.grants``) are plain
functions that take this object; the web layer builds one at start-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pairflow.notify import Notifier
from pairflow.oauth.codes import KeyedHasher, new_refresh_token
from pairflow.oauth.jwt import TokenSigner
from pairflow.store import NewRefreshToken, Store

Clock = Callable[[], float]

# ezeep's pairing grant and RFC 8628's device grant, by their grant_type values.
PAIRING_CODE = "pairing_code"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_TOKEN = "refresh_token"
DEVICE_GRANT_TYPES = f"{PAIRING_CODE} {DEVICE_CODE} {REFRESH_TOKEN}"


@dataclass
class ServerConfig:
    issuer: str
    access_token_ttl: int = 3600
    code_ttl: int = 600
    poll_interval: int = 5
    refresh_token_ttl: int = 90 * 24 * 3600
    max_wait: int = 30  # cap on RFC 7240 "Prefer: wait" for held token requests
    # Held requests re-read the store this often, in case a notification was lost (or the
    # decision was made by a process that cannot notify, such as another SQLite worker).
    recheck: float = 5.0

    @property
    def verification_uri(self) -> str:
        return f"{self.issuer}/device"


class AuthorizationServer:
    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        hasher: KeyedHasher,
        signer: TokenSigner,
        notifier: Notifier,
        clock: Clock = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.notifier = notifier
        self.hash = hasher
        self.signer = signer
        self.clock = clock

    def new_refresh_token(self) -> tuple[str, NewRefreshToken]:
        """A refresh token to hand out, and what the store keeps of it."""
        token = new_refresh_token()
        return token, NewRefreshToken(self.hash(token), self.clock() + self.config.refresh_token_ttl)

    def token_response(
        self, *, client_id: str, user_id: str, org_id: str, scope: str, jti: str, refresh_token: str, session_id: str
    ) -> dict[str, Any]:
        """RFC 6749 section 5.1: a signed access token with the refresh token already stored."""
        issued_at = int(self.clock())
        claims = {
            "iss": self.config.issuer,
            "iat": issued_at,
            "exp": issued_at + self.config.access_token_ttl,
            "scopes": scope,  # ezeep's claim name
            "scope": scope,
            "sub": user_id,
            "org": org_id,
            "pty": "dev",
            "client_id": client_id,
            "jti": jti,
            "sid": session_id,  # the device session (refresh-token family): revoking it revokes this token
        }
        return {
            "access_token": self.signer.sign(claims),
            "token_type": "Bearer",
            "expires_in": self.config.access_token_ttl,
            "scope": scope,
            "refresh_token": refresh_token,
        }
