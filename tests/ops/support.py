"""Helpers for the operations tests: seeding a live server's database, driving the browser
pages over plain HTTP, and a TCP proxy that can cut the server off from PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
from sqlalchemy import make_url, text

from pairflow import accounts
from pairflow.assembly import keyed_hasher
from pairflow.config import Settings
from pairflow.store.sql import SqlStore

EMAIL = "ops@example.com"
PASSWORD = "correct horse battery"
TIMEOUT = httpx.Timeout(20.0)


def resolved_url(data_dir: Path, database_url: str | None) -> str:
    """The SQLAlchemy URL a server with this data dir / database uses."""
    return Settings(data_dir=data_dir, database_url=database_url).resolved_database_url


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    email: str = EMAIL
    password: str = PASSWORD

    def basic(self) -> dict[str, str]:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def seed(url: str) -> Credentials:
    """An organisation, a user and a confidential client, written straight into the database."""
    store = SqlStore(url)
    try:
        now = time.time()
        hasher = await keyed_hasher(store)
        await accounts.create_org(store, "Ops", now)
        await accounts.create_user(store, EMAIL, PASSWORD, "Ops", now)
        made = await accounts.create_client(store, hasher, "Office printer", "printing", now)
    finally:
        await store.close()
    assert made.secret
    return Credentials(made.client.client_id, made.secret)


async def query(url: str, sql: str, **params: object) -> list[tuple]:
    store = SqlStore(url)
    try:
        return await store.run(lambda conn: [tuple(row) for row in conn.execute(text(sql), params).all()])
    finally:
        await store.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


async def pair(http: httpx.AsyncClient, base: str, creds: Credentials) -> str:
    answer = await http.post(f"{base}/oauth/pair", headers=creds.basic(), data={"mode": "device", "scope": "printing"})
    assert answer.status_code == 200, answer.text
    return answer.json()["pairing_code"]


async def redeem(http: httpx.AsyncClient, base: str, creds: Credentials, code: str) -> httpx.Response:
    return await http.post(f"{base}/oauth/access_token", headers=creds.basic(),
                           data={"grant_type": "pairing_code", "pairing_code": code})


async def refresh(http: httpx.AsyncClient, base: str, creds: Credentials, token: str) -> httpx.Response:
    return await http.post(f"{base}/oauth/access_token", headers=creds.basic(),
                           data={"grant_type": "refresh_token", "refresh_token": token})


class Browser:
    """A person's browser: one cookie jar, shared by every server (cookies ignore ports)."""

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds
        self.http = httpx.AsyncClient(timeout=TIMEOUT, limits=httpx.Limits(max_connections=20))

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def sign_in(self, base: str) -> None:
        page = await self.http.get(f"{base}/auth/signin/")
        assert page.status_code == 200, page.text
        signed = await self.http.post(f"{base}/auth/signin/", data={
            "csrf": csrf_of(page.text), "next": "/devices", "email": self.creds.email, "password": self.creds.password})
        assert signed.status_code == 303, signed.text

    async def approve(self, base: str, code: str) -> httpx.Response:
        """Open the confirmation page for a pairing code and press Approve; the final response."""
        path = f"/oauth/authorize/pairing/?{urlencode({'pairing_code': code})}"
        confirm = await self.http.get(base + path)
        assert confirm.status_code == 200, confirm.text
        return await self.http.post(f"{base}/oauth/authorize/pairing/",
                                    data={"csrf": csrf_of(confirm.text), "pairing_code": code, "decision": "approve"})


def approved(response: httpx.Response) -> bool:
    return response.status_code == 200 and "Login Successful" in response.text


async def wait_until(predicate, timeout: float, what: str, step: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll an async predicate until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class TcpProxy:
    """A loopback TCP relay in its own thread and event loop, that can be cut and restored.

    Cut: the listening socket closes (new connections are refused) and every relayed
    connection is aborted. Restore: listen again on the same port. Stall: connections stay
    open but no byte moves (a network partition); resume lets the held bytes through.
    """

    def __init__(self, target_host: str, target_port: int, port: int) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="tcp-proxy", daemon=True)
        self.thread.start()
        self.server: asyncio.AbstractServer | None = None
        self.transports: set[asyncio.BaseTransport] = set()
        self.is_cut = True
        self.flowing = asyncio.Event()
        self.loop.call_soon_threadsafe(self.flowing.set)

    def url_for(self, database_url: str) -> str:
        return make_url(database_url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def _call(self, coroutine):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def restore(self) -> None:
        self._call(self._listen())

    def cut(self) -> None:
        self._call(self._cut())

    def stall(self) -> None:
        self.loop.call_soon_threadsafe(self.flowing.clear)

    def resume(self) -> None:
        self.loop.call_soon_threadsafe(self.flowing.set)

    def close(self) -> None:
        try:
            self._call(self._cut())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)

    async def _listen(self) -> None:
        self.is_cut = False
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        self.is_cut = True
        self.flowing.set()
        if self.server is not None:
            self.server.close()
        for transport in list(self.transports):
            transport.abort()
        self.transports.clear()
        if self.server is not None:
            await asyncio.wait_for(self.server.wait_closed(), 5)
            self.server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.target), 5)
        except (TimeoutError, OSError):
            writer.transport.abort()
            return
        pair_ = {writer.transport, up_writer.transport}
        if self.is_cut:
            for transport in pair_:
                transport.abort()
            return
        self.transports |= pair_

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    await self.flowing.wait()
                    sink.write(data)
                    await sink.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.transports -= pair_
