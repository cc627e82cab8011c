"""Store calls that share a transaction (SQLite's group commit) stay independent of each other.

On SQLite, calls queued while the store's thread is busy run together in one transaction,
each in its own SAVEPOINT. A call that fails must undo only itself, and every other call in
the batch must still commit. On PostgreSQL each call is its own transaction; the same
assertions hold there.
"""

from __future__ import annotations

import asyncio
import time

from pairflow.store import Conflict, DeviceGrant
from tests.conftest import App


def grant(app: App, n: int) -> DeviceGrant:
    now = time.time()
    return DeviceGrant(
        code_hash=f"batch-test-{n:03d}", kind="pairing", user_code_hash=None, client_id=app.seed.client_id,
        scope="printing", state="pending", created_at=now, expires_at=now + 600, interval=5, last_polled_at=None,
        user_id=None, org_id=None, decided_at=None, redeemed_at=None, token_jti=None, requester_ip="", requester_agent="",
    )


async def test_a_failing_call_in_a_batch_undoes_only_itself(app: App) -> None:
    store = app.runtime.store
    grants = [grant(app, n) for n in range(20)]
    await store.create_grant(grants[0])

    def partial_then_fail(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("UPDATE device_grants SET scope = 'changed' WHERE code_hash = 'batch-test-000'")
        raise RuntimeError("this call fails after writing")

    # Keep the store busy so that everything below queues up and runs as one batch.
    busy = asyncio.ensure_future(store.run(lambda conn: time.sleep(0.3)))
    await asyncio.sleep(0.05)
    calls = [store.create_grant(g) for g in grants[1:10]]
    calls += [store.create_grant(grants[0]), store.run(partial_then_fail)]  # a duplicate, and a half-done call
    calls += [store.create_grant(g) for g in grants[10:]]
    results = await asyncio.gather(busy, *calls, return_exceptions=True)

    outcomes = results[1:]
    assert isinstance(outcomes[9], Conflict)
    assert isinstance(outcomes[10], RuntimeError)
    assert all(result is None for i, result in enumerate(outcomes) if i not in (9, 10)), outcomes
    for g in grants:  # every other call committed
        assert await store.find_grant(code_hash=g.code_hash) is not None, g.code_hash
    first = await store.find_grant(code_hash="batch-test-000")
    assert first is not None and first.scope == "printing"  # the failing call's write was undone


async def test_results_arrive_for_every_call_under_concurrency(app: App) -> None:
    store = app.runtime.store
    grants = [grant(app, n) for n in range(100, 300)]
    await asyncio.gather(*(store.create_grant(g) for g in grants))
    found = await asyncio.gather(*(store.find_grant(code_hash=g.code_hash) for g in grants))
    assert [f.code_hash if f else None for f in found] == [g.code_hash for g in grants]
