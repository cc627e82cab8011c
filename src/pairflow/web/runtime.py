"""What the web layer shares between requests, filled in once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from pairflow.config import Settings
from pairflow.oauth.server import AuthorizationServer
from pairflow.store.sql import SqlStore
from pairflow.web.security import LOCKOUT_SECONDS, RateLimiter


@dataclass
class Runtime:
    settings: Settings
    store: SqlStore = field(init=False)
    server: AuthorizationServer = field(init=False)
    session_secret: str = field(init=False)
    # Wrong user codes: 5 a minute per session and per IP, then a 5-minute lock (RFC 8628 5.1).
    user_code_attempts: RateLimiter = field(default_factory=lambda: RateLimiter(5, 60, LOCKOUT_SECONDS))
    # Wrong passwords: 5 a minute per IP and per account, then a 5-minute lock.
    sign_in_attempts: RateLimiter = field(default_factory=lambda: RateLimiter(5, 60, LOCKOUT_SECONDS))


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime
