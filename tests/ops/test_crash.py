"""`kill -9` a server in the middle of pairings, approvals and redemptions, restart it on the
same database and port: no answered approval is lost, and no code is redeemed twice."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
from pathlib import Path

import httpx

from pairflow.oauth.codes import KeyedHasher
from tests.conftest import start_server, stop_server
from tests.ops.support import (
    TIMEOUT,
    Browser,
    approved,
    pair,
    query,
    redeem,
    refresh,
    resolved_url,
    seed,
)

N = 40
KILL_AFTER = N // 3  # answered approvals before the kill
PARALLEL = 8


def jti_of(access_token: str) -> str:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


async def test_kill_9_mid_load_loses_no_approval_and_doubles_no_redemption(tmp_path: Path, database_url: str | None) -> None:
    data_dir = tmp_path / "data"
    url = resolved_url(data_dir, database_url)
    server = start_server(data_dir, database_url)
    port = int(server.url.rsplit(":", 1)[1])
    try:
        creds = await seed(url)
        ((key,),) = await query(url, "SELECT value FROM server_secrets WHERE name = 'hmac_key'")
        code_hash = KeyedHasher(key.encode())

        approved_before: set[str] = set()
        tokens: dict[str, list[dict]] = {}  # code -> every 200 token response it ever got
        redeem_interrupted: set[str] = set()  # sent, but the answer never came
        interrupted = 0
        enough = asyncio.Event()
        gate = asyncio.Semaphore(PARALLEL)
        limits = httpx.Limits(max_connections=2 * PARALLEL)
        async with httpx.AsyncClient(timeout=TIMEOUT, limits=limits) as http, Browser(creds) as browser:
            await browser.sign_in(server.url)
            codes: list[str] = []  # every pairing whose code the device received

            async def pair_approve_redeem() -> None:
                nonlocal interrupted
                async with gate:
                    try:
                        code = await pair(http, server.url, creds)
                    except httpx.TransportError:
                        interrupted += 1
                        return
                    codes.append(code)
                    try:
                        answer = await browser.approve(server.url, code)
                    except httpx.TransportError:
                        interrupted += 1
                        return
                    if approved(answer):
                        approved_before.add(code)
                        if len(approved_before) >= KILL_AFTER:
                            enough.set()
                    try:
                        token = await redeem(http, server.url, creds, code)
                    except httpx.TransportError:
                        interrupted += 1
                        redeem_interrupted.add(code)
                        return
                    if token.status_code == 200:
                        tokens.setdefault(code, []).append(token.json())

            load = [asyncio.create_task(pair_approve_redeem()) for _ in range(N)]
            await asyncio.wait_for(enough.wait(), 60)
            os.kill(server.process.pid, signal.SIGKILL)
            assert server.process.wait(10) == -signal.SIGKILL
            await asyncio.wait_for(asyncio.gather(*load), 60)
            assert KILL_AFTER <= len(approved_before) < N and interrupted > 0, "the kill did not land mid-load"
            redeemed_before = {code for code in tokens}

            server = start_server(data_dir, database_url, port=port)

            # The database after the crash: every answered approval survived, every answered
            # redemption is recorded with the token it was answered with.
            states = dict(await query(url, "SELECT code_hash, state FROM device_grants"))
            jtis = dict(await query(url, "SELECT code_hash, token_jti FROM device_grants"))
            assert all(code_hash(code) in states for code in codes)
            for code in approved_before:
                assert states[code_hash(code)] in ("approved", "redeemed"), code
            for code in redeemed_before:
                assert states[code_hash(code)] == "redeemed"
                assert jtis[code_hash(code)] == jti_of(tokens[code][0]["access_token"])
            for code in approved_before - redeemed_before:
                if states[code_hash(code)] == "redeemed":  # only a redemption whose answer was lost
                    assert code in redeem_interrupted, code

            # The restarted server carries on: approve what is still pending, redeem everything.
            for code in codes:
                state = states[code_hash(code)]
                if state == "pending":
                    assert approved(await browser.approve(server.url, code))
                first, second = await redeem(http, server.url, creds, code), await redeem(http, server.url, creds, code)
                assert second.status_code == 400 and second.json()["error"] == "invalid_grant", second.text
                if first.status_code == 200:
                    tokens.setdefault(code, []).append(first.json())
                else:
                    assert first.json()["error"] == "invalid_grant" and state == "redeemed", (state, first.text)

            # Nothing redeemed twice; every code redeemed exactly once, or its only answer was lost in the crash.
            assert all(len(answers) == 1 for answers in tokens.values()), {c: len(a) for c, a in tokens.items()}
            lost = set(codes) - set(tokens)
            assert lost <= redeem_interrupted
            states = dict(await query(url, "SELECT code_hash, state FROM device_grants"))
            assert {states[code_hash(code)] for code in codes} == {"redeemed"}
            ((refresh_rows,),) = await query(url, "SELECT count(*) FROM refresh_tokens")
            assert len(tokens) <= refresh_rows <= len(tokens) + len(lost)
            print(f"paired: {len(codes)}, approved before kill: {len(approved_before)}, redeemed before: {len(redeemed_before)}, "
                  f"interrupted: {interrupted}, answers lost: {len(lost)}")

            # Refresh tokens issued before the crash are durable too.
            for code in redeemed_before:
                rotated = await refresh(http, server.url, creds, tokens[code][0]["refresh_token"])
                assert rotated.status_code == 200, rotated.text
    finally:
        stop_server(server)
