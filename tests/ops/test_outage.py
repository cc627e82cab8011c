"""PostgreSQL outage, simulated by cutting a TCP proxy between the server and the database:
API endpoints answer 503 `temporarily_unavailable`, pages show a friendly error, the process
stays up, and once the proxy is restored the same process serves again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import make_url

from tests.conftest import create_pg_database, free_port, start_server, stop_server
from tests.ops.support import (
    TIMEOUT,
    Browser,
    TcpProxy,
    approved,
    csrf_of,
    pair,
    redeem,
    seed,
    wait_until,
)


@pytest.fixture
def pg_url(postgres_admin_url: str) -> Iterator[str]:
    url, drop = create_pg_database(postgres_admin_url)
    yield url
    drop()


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    target = make_url(pg_url)
    relay = TcpProxy(target.host or "127.0.0.1", target.port or 5432, free_port())
    relay.restore()
    yield relay
    relay.close()


def assert_unavailable_json(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers.get("retry-after")


def assert_friendly_page(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Temporarily unavailable" in response.text and "try again" in response.text
    assert "Traceback" not in response.text and "asyncpg" not in response.text and "sqlalchemy" not in response.text.lower()


async def test_database_outage_degrades_and_recovers_without_restart(tmp_path: Path, pg_url: str, proxy: TcpProxy) -> None:
    server = start_server(tmp_path / "data", proxy.url_for(pg_url))
    try:
        creds = await seed(pg_url)
        async with httpx.AsyncClient(timeout=TIMEOUT) as http, Browser(creds) as browser, httpx.AsyncClient(timeout=TIMEOUT) as stranger:
            before = await pair(http, server.url, creds)
            await browser.sign_in(server.url)
            signin_page = await stranger.get(f"{server.url}/auth/signin/")  # no database needed to show it
            assert signin_page.status_code == 200

            proxy.cut()
            started = time.monotonic()
            assert_unavailable_json(await http.get(f"{server.url}/healthz"))
            assert_unavailable_json(await http.post(f"{server.url}/oauth/pair", headers=creds.basic(), data={"mode": "device"}))
            assert_unavailable_json(await redeem(http, server.url, creds, before))
            signed = await stranger.post(f"{server.url}/auth/signin/", data={
                "csrf": csrf_of(signin_page.text), "next": "/devices", "email": creds.email, "password": creds.password})
            assert_friendly_page(signed)
            confirm_path = f"/oauth/authorize/pairing/?{urlencode({'pairing_code': before})}"
            assert_friendly_page(await browser.http.get(server.url + confirm_path))
            assert_friendly_page(await browser.http.get(f"{server.url}/devices"))
            assert time.monotonic() - started < 15, "answers during the outage must come fast, not after long timeouts"
            assert server.process.poll() is None, "the server must stay up through the outage"

            proxy.restore()

            async def healthy() -> bool:
                return (await http.get(f"{server.url}/healthz")).status_code == 200

            await wait_until(healthy, 15, "the server to reach its database again")
            assert server.process.poll() is None
            # The pairing from before the outage, and a new one, both work end to end.
            for code in (before, await pair(http, server.url, creds)):
                assert approved(await browser.approve(server.url, code))
                token = await redeem(http, server.url, creds, code)
                assert token.status_code == 200, token.text
    finally:
        stop_server(server)


async def test_stalled_database_link_gives_503_within_bounds_then_recovers(tmp_path: Path, pg_url: str, proxy: TcpProxy) -> None:
    """A partition (connections open, nothing moves) must not hang requests forever."""
    server = start_server(tmp_path / "data", proxy.url_for(pg_url))
    try:
        creds = await seed(pg_url)
        async with httpx.AsyncClient(timeout=httpx.Timeout(40.0)) as http:
            assert (await http.get(f"{server.url}/healthz")).status_code == 200
            proxy.stall()
            started = time.monotonic()
            health, paired = await asyncio.gather(
                http.get(f"{server.url}/healthz"),
                http.post(f"{server.url}/oauth/pair", headers=creds.basic(), data={"mode": "device"}),
            )
            assert_unavailable_json(health)
            assert_unavailable_json(paired)
            assert time.monotonic() - started < 30
            assert server.process.poll() is None

            proxy.resume()

            async def healthy() -> bool:
                return (await http.get(f"{server.url}/healthz")).status_code == 200

            await wait_until(healthy, 30, "the server to reach its database again")
            code = await pair(http, server.url, creds)
            assert (await redeem(http, server.url, creds, code)).json()["error"] == "authorization_pending"
    finally:
        stop_server(server)
