"""Two `pairflow serve` instances on different ports share one PostgreSQL database: a pairing
started on A, approved through B's pages and polled on both behaves as one pairing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import create_pg_database, free_port, start_server, stop_server
from tests.ops.support import Browser, approved, pair, query, redeem, seed

INTERVAL = 5  # the server's default poll interval; there is no option to shorten it


@pytest.fixture
def shared_pg(postgres_admin_url: str) -> Iterator[str]:
    url, drop = create_pg_database(postgres_admin_url)
    yield url
    drop()


async def test_pairing_spans_two_instances(tmp_path: Path, shared_pg: str) -> None:
    url = shared_pg
    a = b = None
    try:
        # Instances behind one public name share one issuer (tokens name it and are checked against it).
        port = free_port()
        issuer = ("--issuer", f"http://127.0.0.1:{port}")
        a = start_server(tmp_path / "a", url, port=port, extra=issuer)
        b = start_server(tmp_path / "b", url, extra=issuer)
        creds = await seed(url)
        async with httpx.AsyncClient(timeout=20) as http, Browser(creds) as browser:
            code = await pair(http, a.url, creds)
            assert code in (await http.get(f"{b.url}/oauth/authorize/pairing/", params={"pairing_code": code})).headers["location"]

            first = await redeem(http, b.url, creds, code)  # first poll, on B: accepted
            assert first.json()["error"] == "authorization_pending", first.text
            await asyncio.sleep(INTERVAL + 0.1)  # the only wait: one interval
            on_time = await redeem(http, a.url, creds, code)  # A counts from B's poll: on time, accepted
            assert on_time.json()["error"] == "authorization_pending", on_time.text
            too_early = await redeem(http, b.url, creds, code)  # B counts from A's poll: too early
            assert too_early.status_code == 400, too_early.text
            assert too_early.json()["error"] == "slow_down" and too_early.json()["interval"] == INTERVAL + 5
            still = await redeem(http, a.url, creds, code)  # and A sees the grown interval
            assert still.json()["error"] == "slow_down" and still.json()["interval"] == INTERVAL + 10

            await browser.sign_in(b.url)
            assert approved(await browser.approve(b.url, code))
            again = await browser.http.get(f"{a.url}/oauth/authorize/pairing/", params={"pairing_code": code})
            assert again.status_code == 410 and "Already approved" in again.text, again.text  # A sees B's decision

            polls = [await redeem(http, server.url, creds, code) for server in (a, b, a, b)]
            assert [p.status_code for p in polls] == [200, 400, 400, 400], [p.text for p in polls]
            assert {p.json()["error"] for p in polls[1:]} == {"invalid_grant"}
            token = polls[0].json()
            me = await http.get(f"{b.url}/api/me", headers={"Authorization": f"Bearer {token['access_token']}"})
            assert me.status_code == 200 and me.json()["email"] == creds.email  # B accepts A's token

        assert await query(url, "SELECT state, interval FROM device_grants") == [("redeemed", INTERVAL + 10)]
        assert await query(url, "SELECT count(*) FROM refresh_tokens") == [(1,)]
    finally:
        for server in (a, b):
            if server is not None:
                stop_server(server)
