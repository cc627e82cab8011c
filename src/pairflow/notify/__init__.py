"""Wake token requests held with ``Prefer: wait`` when their grant is approved or denied.

``LocalNotifier`` wakes waiters in this process. With several server processes the
decision may happen elsewhere, so ``PostgresNotifier`` (LISTEN/NOTIFY) and
``RedisNotifier`` (pub/sub) carry it across; held requests also re-check the store
every few seconds, so a lost notification costs at most one short interval.
A waiter is one future: no thread and no database connection per held request.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

CHANNEL = "pairflow_grants"
CONNECT_TIMEOUT = 5.0  # a stalled database must not hold up the approval that publishes


class Notifier(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, key: str) -> None: ...
    async def wait(self, key: str, timeout: float) -> bool: ...


class LocalNotifier:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        for waiters in self._waiters.values():
            for future in waiters:
                future.cancel()
        self._waiters.clear()

    async def publish(self, key: str) -> None:
        self.wake(key)

    def wake(self, key: str) -> None:
        for future in self._waiters.pop(key, ()):
            if not future.done():
                future.set_result(None)

    async def wait(self, key: str, timeout: float) -> bool:
        """True if ``key`` was published within ``timeout`` seconds."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(key, set())
        waiters.add(future)
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            waiters.discard(future)
            if not waiters and self._waiters.get(key) is waiters:
                del self._waiters[key]


class _RemoteNotifier(LocalNotifier):
    """A local notifier fed by a listener task that reconnects after failures."""

    def __init__(self) -> None:
        super().__init__()
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen_forever())

    async def close(self) -> None:
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        await super().close()

    async def _listen_forever(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(1)  # the store re-check covers what is missed meanwhile

    async def _listen(self) -> None:
        raise NotImplementedError

    async def publish(self, key: str) -> None:
        self.wake(key)
        # Other processes learn it best-effort; a failure here only delays them to the re-check.
        with contextlib.suppress(Exception):
            await self._send(key)

    async def _send(self, key: str) -> None:
        raise NotImplementedError


class PostgresNotifier(_RemoteNotifier):
    def __init__(self, dsn: str) -> None:
        super().__init__()
        self.dsn = dsn
        self._sender: Any = None

    async def _listen(self) -> None:
        import asyncpg

        connection = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT)
        closed = asyncio.get_running_loop().create_future()
        connection.add_termination_listener(lambda _c: closed.done() or closed.set_result(None))
        try:
            await connection.add_listener(CHANNEL, lambda _c, _pid, _channel, payload: self.wake(payload))
            await closed
        finally:
            await connection.close()

    async def _send(self, key: str) -> None:
        import asyncpg

        if self._sender is None or self._sender.is_closed():
            self._sender = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT)
        await self._sender.execute("SELECT pg_notify($1, $2)", CHANNEL, key, timeout=CONNECT_TIMEOUT)

    async def close(self) -> None:
        if self._sender is not None:
            with contextlib.suppress(Exception):
                await self._sender.close()
        await super().close()


class RedisNotifier(_RemoteNotifier):
    def __init__(self, url: str) -> None:
        super().__init__()
        import redis.asyncio as redis

        self._redis = redis.from_url(url)

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    self.wake(message["data"].decode())
        finally:
            await pubsub.aclose()

    async def _send(self, key: str) -> None:
        await self._redis.publish(CHANNEL, key)

    async def close(self) -> None:
        await super().close()
        await self._redis.aclose()


def notifier_for(database_url: str, redis_url: str | None) -> Notifier:
    """Redis when configured, else PostgreSQL's LISTEN/NOTIFY, else this process only."""
    if redis_url:
        return RedisNotifier(redis_url)
    if database_url.startswith("postgresql"):
        return PostgresNotifier(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    return LocalNotifier()
