"""Single-use codes and refresh tokens stay single-use under 50 simultaneous requests spread
over several server processes on one database (`--workers 2` plus a second `pairflow serve`)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, start_server, stop_server
from tests.ops.support import (
    Browser,
    approved,
    pair,
    query,
    redeem,
    refresh,
    resolved_url,
    seed,
)

N = 50


@pytest.fixture
def servers(tmp_path: Path, database_url: str | None) -> Iterator[list[LiveServer]]:
    """Three server processes on one database: two uvicorn workers behind one port, and another server."""
    data_dir = tmp_path / "data"
    first = start_server(data_dir, database_url, extra=("--workers", "2"))
    try:
        second = start_server(data_dir, database_url)
    except BaseException:
        stop_server(first)
        raise
    yield [first, second]
    stop_server(second)
    stop_server(first)


def outcomes(responses: list[httpx.Response]) -> Counter[str]:
    return Counter("ok" if r.status_code == 200 else f"{r.status_code} {r.json().get('error')}" for r in responses)


async def warm_up(http: httpx.AsyncClient, bases: list[str]) -> None:
    """Open N keep-alive connections (spread over the servers) so that the burst that follows
    goes out at once instead of being staggered by connection set-up."""
    answers = await asyncio.gather(*(http.get(f"{bases[i % len(bases)]}/healthz") for i in range(N)))
    assert all(a.status_code == 200 for a in answers)


async def fire(requests) -> list[httpx.Response]:  # type: ignore[no-untyped-def]
    """Send every request at once, each on its own connection."""
    return await asyncio.gather(*requests)


async def test_simultaneous_redemptions_and_refreshes_each_win_once(servers: list[LiveServer], tmp_path: Path,
                                                                    database_url: str | None) -> None:
    url = resolved_url(tmp_path / "data", database_url)
    creds = await seed(url)
    bases = [s.url for s in servers]
    limits = httpx.Limits(max_connections=2 * N, max_keepalive_connections=2 * N)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http, Browser(creds) as browser:
        code = await pair(http, bases[0], creds)
        await browser.sign_in(bases[1])
        assert approved(await browser.approve(bases[1], code))

        await warm_up(http, bases)
        redemptions = await fire(redeem(http, bases[i % 2], creds, code) for i in range(N))
        assert outcomes(redemptions) == {"ok": 1, "400 invalid_grant": N - 1}
        [winner] = [r.json() for r in redemptions if r.status_code == 200]
        (state, jti), = await query(url, "SELECT state, token_jti FROM device_grants")
        assert state == "redeemed" and jti is not None
        assert await query(url, "SELECT count(*) FROM refresh_tokens") == [(1,)]

        await warm_up(http, bases)
        refreshes = await fire(refresh(http, bases[i % 2], creds, winner["refresh_token"]) for i in range(N))
        assert outcomes(refreshes) == {"ok": 1, "400 invalid_grant": N - 1}
        # The one rotation made one new token; the losers presented a spent token, which revokes
        # the family (refresh-token reuse detection), so nothing more than those two rows exists.
        rows = await query(url, "SELECT used_at IS NOT NULL, revoked FROM refresh_tokens ORDER BY created_at")
        assert len(rows) == 2 and rows[0][0] and not rows[1][0], rows
        assert all(revoked for _, revoked in rows), rows  # the replays revoked the family, the new token too
