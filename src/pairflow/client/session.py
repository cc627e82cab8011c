"""A stored login that keeps itself fresh: :class:`Session`, and :class:`BearerAuth` for httpx.

Refresh tokens are single-use, so two processes refreshing at once would make one of them lose the
session. Every refresh therefore happens under the store's file lock, held across the re-read, the
request and the write: whoever comes second finds the new tokens already stored and sends nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import httpx

from pairflow.client import protocol
from pairflow.client.outcomes import (
    Credentials,
    NotSignedIn,
    OAuthError,
    PairflowError,
    Tokens,
)
from pairflow.client.protocol import ServerInfo
from pairflow.client.storage import Entry, TokenStore

REFRESH_MARGIN = 60.0  # refresh this long before expiry, so a token never dies in flight


def remember(
    store: TokenStore, info: ServerInfo, credentials: Credentials, tokens: Tokens, account: dict[str, Any] | None
) -> Entry:
    """Store a fresh login, replacing any earlier one for the same server and client."""
    entry = Entry(
        server=info.server,
        client_id=credentials.client_id,
        client_secret=credentials.client_secret,
        token_endpoint=info.token_endpoint,
        revocation_endpoint=info.revocation_endpoint,
        userinfo_endpoint=info.userinfo_endpoint,
        tokens=tokens,
        account=account,
    )
    with store.lock():
        store.save(entry)
    return entry


class Session:
    """The stored tokens of one (server, client_id), refreshed on demand; usable sync and async."""

    def __init__(
        self,
        store: TokenStore,
        server: str,
        client_id: str,
        *,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = REFRESH_MARGIN,
        timeout: float = 15.0,
    ) -> None:
        self.store = store
        self.server = protocol.normalize_server(server)
        self.client_id = client_id
        self.clock = clock
        self.refresh_margin = refresh_margin
        self.timeout = timeout

    def entry(self) -> Entry:
        entry = self.store.load(self.server, self.client_id)
        if entry is None:
            raise NotSignedIn(f"not signed in to {self.server} as client {self.client_id}")
        return entry

    def _usable(self, entry: Entry, rejected: str | None) -> bool:
        if rejected is not None:
            # The server refused this token; any other stored token is newer (another process refreshed).
            return entry.tokens.access_token != rejected
        return not entry.tokens.expires_within(self.refresh_margin, self.clock())

    def _refresh(self, rejected: str | None) -> protocol.Flow[Entry]:
        """Runs with the lock held, so the entry read here is the latest one."""
        entry = self.entry()
        if self._usable(entry, rejected):
            return entry
        used = entry.tokens.refresh_token
        if used is None:
            raise NotSignedIn("the access token expired and there is no refresh token; log in again")
        credentials = Credentials(entry.client_id, entry.client_secret)
        try:
            tokens = yield from protocol.refresh(entry.token_endpoint, credentials, used, clock=self.clock)
        except OAuthError as error:
            if error.error != "invalid_grant":
                raise
            # Someone who does not take our lock (an older client, a copied token file) may have rotated it.
            latest = self.store.load(self.server, self.client_id)
            if latest is not None and latest.tokens.refresh_token != used:
                return latest
            raise NotSignedIn(f"the server ended this session ({error.description}); log in again") from error
        updated = entry.with_tokens(tokens)
        self.store.save(updated)
        return updated

    def token(self, *, rejected: str | None = None) -> str:
        """A fresh access token, refreshing first if it expires within the margin (or was ``rejected``)."""
        entry = self.entry()  # lock-free fast path: the file is replaced atomically, never half-written
        if self._usable(entry, rejected):
            return entry.tokens.access_token
        with self.store.lock(), httpx.Client(timeout=self.timeout) as http:
            return protocol.run_sync(self._refresh(rejected), http, time.sleep).tokens.access_token

    async def atoken(self, *, rejected: str | None = None) -> str:
        entry = self.entry()
        if self._usable(entry, rejected):
            return entry.tokens.access_token
        async with self.store.async_lock(), httpx.AsyncClient(timeout=self.timeout) as http:
            flow = self._refresh(rejected)
            return (await protocol.run_async(flow, http, asyncio.sleep)).tokens.access_token

    def logout(self) -> str | None:
        """Revoke at the server when it has a revocation endpoint, then forget the entry either way.

        Returns why the server was not told, or None if it was.
        """
        entry = self.entry()
        reason = None
        if entry.revocation_endpoint is None:
            reason = "the server has no revocation endpoint"
        else:
            # Revoking the refresh token ends the whole grant (RFC 7009 2.1), so prefer it.
            token = entry.tokens.refresh_token or entry.tokens.access_token
            credentials = Credentials(entry.client_id, entry.client_secret)
            try:
                with httpx.Client(timeout=self.timeout) as http:
                    protocol.run_sync(protocol.revoke(entry.revocation_endpoint, credentials, token), http, time.sleep)
            except PairflowError as error:
                reason = str(error)
        with self.store.lock():
            self.store.delete(self.server, self.client_id)
        return reason


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` from a :class:`Session`; on a 401 refreshes once and retries."""

    requires_request_body = True  # the request may have to be sent twice

    def __init__(self, session: Session) -> None:
        self.session = session

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.session.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self.session.token(rejected=token)}"
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.session.atoken()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {await self.session.atoken(rejected=token)}"
            yield request
