"""PostgreSQL's hot-path pool (asyncpg, beside SQLAlchemy's): options from the URL, and opening it during an outage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from pairflow.store import Client, StoreUnavailable
from pairflow.store.migrate import prepare
from pairflow.store.sql import SqlStore
from tests.conftest import create_pg_database


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database whatever --db says: the hot-path pool exists on PostgreSQL only."""
    url, drop = create_pg_database(postgres_admin_url)
    yield url
    drop()


async def test_options_in_the_database_url_reach_the_hot_path_pool(postgres_url: str) -> None:
    # SQLAlchemy's name for the statement cache (0 for PgBouncer), and an option that pairflow also sets itself.
    store = SqlStore(f"{postgres_url}?prepared_statement_cache_size=0&command_timeout=30")
    try:
        await prepare(store, auto_upgrade=True)
        client = Client(client_id="url-options", name="Printer", secret_hash=None, scope="printing",
                        grant_types="pairing_code", created_at=time.time())
        await store.create_client(client)
        assert await store.get_client("url-options") == client
        await store.ping()
    finally:
        await store.close()


async def test_requests_during_an_outage_share_one_attempt_to_open_the_pool() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # a partitioned database: the connection opens, nothing ever comes back

    listener = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    store = SqlStore(f"postgresql+asyncpg://pairflow@127.0.0.1:{port}/pairflow")
    try:
        answers = await asyncio.gather(*(store.get_client(f"client-{n}") for n in range(5)), return_exceptions=True)
        assert all(isinstance(answer, StoreUnavailable) for answer in answers), answers
        # They waited for one attempt together (and failed together when it timed out), not one after another.
        assert len(accepted) == 1
    finally:
        for writer in accepted:
            writer.close()
        listener.close()
        await store.close()
