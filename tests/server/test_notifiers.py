"""Wake-ups for held token requests across processes: PostgreSQL LISTEN/NOTIFY and Redis pub/sub."""

from __future__ import annotations

import asyncio
import os

from pairflow.notify import (
    LocalNotifier,
    Notifier,
    PostgresNotifier,
    RedisNotifier,
    notifier_for,
)
from tests.conftest import unavailable

REDIS_URL = os.environ.get("PAIRFLOW_TEST_REDIS", "redis://127.0.0.1:6379/0")


async def _redis_available() -> bool:
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


async def assert_wakes_across(first: Notifier, second: Notifier) -> None:
    """A publish on one instance (another process, in production) wakes a waiter on the other."""
    await first.start()
    await second.start()
    try:
        for _ in range(50):  # the listener connects in the background
            waiter = asyncio.create_task(second.wait("grant-1", 0.2))
            await asyncio.sleep(0.05)
            await first.publish("grant-1")
            if await waiter:
                break
        else:
            raise AssertionError("no wake-up arrived")
        unrelated = asyncio.create_task(second.wait("grant-2", 0.5))
        await asyncio.sleep(0.05)
        await first.publish("grant-1")
        assert not await unrelated, "a publish for another key must not wake this one"
    finally:
        await first.close()
        await second.close()


async def test_local_notifier_wakes_only_its_key() -> None:
    notifier = LocalNotifier()
    waiter = asyncio.create_task(notifier.wait("a", 5))
    other = asyncio.create_task(notifier.wait("b", 0.2))
    await asyncio.sleep(0)
    await notifier.publish("a")
    assert await waiter is True
    assert await other is False
    assert notifier._waiters == {}  # nothing left behind


async def test_postgres_listen_notify_crosses_instances(postgres_admin_url: str) -> None:
    await assert_wakes_across(PostgresNotifier(postgres_admin_url), PostgresNotifier(postgres_admin_url))


async def test_redis_pubsub_crosses_instances() -> None:
    if not await _redis_available():
        unavailable(f"Redis is not reachable at {REDIS_URL}")
    await assert_wakes_across(RedisNotifier(REDIS_URL), RedisNotifier(REDIS_URL))


def test_notifier_choice_follows_configuration() -> None:
    assert type(notifier_for("sqlite:///x.db", None)) is LocalNotifier
    assert isinstance(notifier_for("postgresql+asyncpg://h/db", None), PostgresNotifier)
    assert isinstance(notifier_for("postgresql+asyncpg://h/db", REDIS_URL), RedisNotifier)
