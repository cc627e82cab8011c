"""Start a device login and wait for it: :class:`DeviceClient` (sync) and :class:`AsyncDeviceClient`."""

from __future__ import annotations

import asyncio
import base64
import json
import platform
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from pairflow import __version__
from pairflow.client import protocol
from pairflow.client.outcomes import Cancelled, Credentials, Outcome, Pending, Tokens
from pairflow.client.protocol import ServerInfo

DEFAULT_SERVER = "https://account.ezeep.com"
DEFAULT_TIMEOUT = 15.0

# Shown to the person on the approval page, so it should say what is asking.
USER_AGENT = f"pairflow/{__version__} ({platform.system()}; Python {platform.python_version()})"


class _DeviceClientBase:
    """Settings shared by both clients. ``clock`` is wall-clock seconds because token expiry is stored
    and compared across processes; the short polling deadlines use the same clock so tests need one knob."""

    def __init__(
        self,
        server: str,
        credentials: Credentials,
        *,
        clock: Callable[[], float] = time.time,
        default_deadline: float = 600.0,
        max_failures: int = 5,
        timeout: float = DEFAULT_TIMEOUT,
        prefer_wait: int | None = 25,
    ) -> None:
        self.server = protocol.normalize_server(server)
        self.credentials = credentials
        self.clock = clock
        self.default_deadline = default_deadline  # used when the server sends no expires_in (ezeep)
        self.max_failures = max_failures  # consecutive failed polls before giving up
        self.timeout = timeout
        self.prefer_wait = prefer_wait  # RFC 7240 long-poll hint; None to never ask
        self.info: ServerInfo | None = None  # filled by discover()

    def _start(self, info: ServerInfo, scope: str | None, standard: bool) -> protocol.Flow[Pending]:
        return protocol.start(
            info, self.credentials, scope, standard=standard, clock=self.clock, default_deadline=self.default_deadline
        )

    def _poll(self, info: ServerInfo, pending: Pending) -> protocol.Flow[Outcome]:
        return protocol.poll(
            info,
            self.credentials,
            pending,
            clock=self.clock,
            max_failures=self.max_failures,
            timeout=self.timeout,
            prefer_wait=self.prefer_wait,
        )

    def _require_info(self) -> ServerInfo:
        if self.info is None:
            raise RuntimeError("call discover() or start() first")
        return self.info


class DeviceClient(_DeviceClientBase):
    """Sync device login against one server::

        with DeviceClient("https://account.ezeep.com", Credentials(id, secret)) as client:
            pending = client.start("printing")
            print("Open", pending.url)
            outcome = client.wait(pending)

    Single requests raise :class:`~pairflow.client.PairflowError` subclasses; :meth:`wait` returns an
    outcome instead, because every way a login can end is an expected one.
    """

    def __init__(
        self,
        server: str,
        credentials: Credentials,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **settings: Any,
    ) -> None:
        super().__init__(server, credentials, **settings)
        self._owns_http = http is None
        self.http = http or httpx.Client(timeout=self.timeout, headers={"User-Agent": USER_AGENT})
        self.sleep = sleep

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def _run(self, flow: protocol.Flow[Any]) -> Any:
        return protocol.run_sync(flow, self.http, self.sleep)

    def discover(self) -> ServerInfo:
        if self.info is None:
            self.info = self._run(protocol.discover(self.server))
        return self.info

    def start(self, scope: str | None = None, *, standard: bool = False) -> Pending:
        """Start a pairing, or an RFC 8628 device authorization when ``standard`` or the server has no pairing."""
        return self._run(self._start(self.discover(), scope, standard))

    def wait(self, pending: Pending) -> Outcome:
        """Poll until approved, denied, expired or failed; Ctrl-C (KeyboardInterrupt) gives :class:`Cancelled`."""
        try:
            return self._run(self._poll(self._require_info(), pending))
        except KeyboardInterrupt:
            return Cancelled()

    def refresh(self, refresh_token: str) -> Tokens:
        return self._run(protocol.refresh(self.discover().token_endpoint, self.credentials, refresh_token, clock=self.clock))

    def revoke(self, token: str) -> None:
        endpoint = self.discover().revocation_endpoint
        if endpoint is not None:
            self._run(protocol.revoke(endpoint, self.credentials, token))

    def userinfo(self, access_token: str) -> dict[str, Any]:
        """Who the token belongs to: the server's userinfo, or the token's own claims if it has none."""
        endpoint = self.discover().userinfo_endpoint
        if endpoint is None:
            return unverified_claims(access_token)
        return self._run(protocol.userinfo(endpoint, access_token))


class AsyncDeviceClient(_DeviceClientBase):
    """The async twin of :class:`DeviceClient`. Cancel :meth:`wait` by cancelling its task."""

    def __init__(
        self,
        server: str,
        credentials: Credentials,
        *,
        http: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **settings: Any,
    ) -> None:
        super().__init__(server, credentials, **settings)
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(timeout=self.timeout, headers={"User-Agent": USER_AGENT})
        self.sleep = sleep

    async def __aenter__(self) -> AsyncDeviceClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def _run(self, flow: protocol.Flow[Any]) -> Any:
        return await protocol.run_async(flow, self.http, self.sleep)

    async def discover(self) -> ServerInfo:
        if self.info is None:
            self.info = await self._run(protocol.discover(self.server))
        return self.info

    async def start(self, scope: str | None = None, *, standard: bool = False) -> Pending:
        return await self._run(self._start(await self.discover(), scope, standard))

    async def wait(self, pending: Pending) -> Outcome:
        return await self._run(self._poll(self._require_info(), pending))

    async def refresh(self, refresh_token: str) -> Tokens:
        info = await self.discover()
        return await self._run(protocol.refresh(info.token_endpoint, self.credentials, refresh_token, clock=self.clock))

    async def revoke(self, token: str) -> None:
        endpoint = (await self.discover()).revocation_endpoint
        if endpoint is not None:
            await self._run(protocol.revoke(endpoint, self.credentials, token))

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        endpoint = (await self.discover()).userinfo_endpoint
        if endpoint is None:
            return unverified_claims(access_token)
        return await self._run(protocol.userinfo(endpoint, access_token))


def unverified_claims(jwt: str) -> dict[str, Any]:
    """A JWT's payload, NOT verified: only for showing who signed in, never for trusting it."""
    try:
        payload = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}
