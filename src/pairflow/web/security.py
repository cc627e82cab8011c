"""Security headers on every response, CSRF tokens for forms, and rate limits for guessable input."""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(*, https: bool) -> list[tuple[bytes, bytes]]:
    """Browser hardening headers for every answer, pages and API alike."""
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", PAGE_POLICY.encode()),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if https:
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return headers


class SecurityHeadersMiddleware:
    """Adds ``security_headers`` (and ``no-store`` unless the answer sets its own caching) to the pages."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = security_headers(https=https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), *self.headers]
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csrf_token(request: Request) -> str:
    """This session's CSRF token (synchroniser pattern), created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_valid(request: Request, submitted: object) -> bool:
    expected = request.session.get("csrf")
    return bool(expected) and isinstance(submitted, str) and secrets.compare_digest(expected, submitted)


LOCKOUT_SECONDS = 300


class RateLimiter:
    """At most ``limit`` failures per ``window`` seconds per key; then locked for ``lockout`` seconds.

    Kept in process memory: each server process limits on its own, which bounds guessing
    by the number of processes.
    """

    def __init__(self, limit: int, window: float, lockout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.lockout = limit, window, lockout
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def locked(self, *keys: str) -> bool:
        now = self.clock()
        return any(self._locked_until.get(key, 0.0) > now for key in keys)

    def fail(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            times = self._failures.setdefault(key, deque())
            times.append(now)
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                self._locked_until[key] = now + self.lockout
                times.clear()
        if len(self._failures) > 100_000:  # bound memory under a flood of distinct keys
            self._failures.clear()
            self._locked_until = {k: v for k, v in self._locked_until.items() if v > now}
