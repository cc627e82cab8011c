"""Codes and refresh tokens are single-use, also when many requests race for them."""

from __future__ import annotations

import asyncio

from tests.conftest import App
from tests.server.helpers import (
    PAIRING,
    Dialect,
    approved_tokens,
    assert_oauth_error,
    basic,
    decide_on,
    open_confirmation,
    poll,
    refresh,
    sign_in_and_approve,
    start,
)

RACERS = 30


async def test_concurrent_redemptions_of_one_code_yield_exactly_one_token(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    code = dialect.code_of(started)
    await sign_in_and_approve(app, dialect.browser_url(started))
    responses = await asyncio.gather(*(poll(app, dialect, code) for _ in range(RACERS)))
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, [r.text for r in responses]
    for loser in responses:
        if loser.status_code != 200:
            assert_oauth_error(loser, 400, "invalid_grant")
    me = await app.http.get("/api/me", headers={"Authorization": f"Bearer {winners[0].json()['access_token']}"})
    assert me.status_code == 200


async def test_concurrent_refreshes_of_one_token_yield_exactly_one_token(app: App, dialect: Dialect) -> None:
    tokens = await approved_tokens(app, dialect)
    responses = await asyncio.gather(*(refresh(app, tokens["refresh_token"]) for _ in range(RACERS)))
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, [r.text for r in responses]
    for loser in responses:
        if loser.status_code != 200:
            assert_oauth_error(loser, 400, "invalid_grant")


async def test_refresh_rotates_and_the_new_token_works(app: App, dialect: Dialect) -> None:
    tokens = await approved_tokens(app, dialect)
    first = await refresh(app, tokens["refresh_token"])
    assert first.status_code == 200, first.text
    rotated = first.json()["refresh_token"]
    assert rotated != tokens["refresh_token"]
    second = await refresh(app, rotated)
    assert second.status_code == 200, second.text
    assert second.json()["scope"] == tokens["scope"]


async def test_reusing_a_spent_refresh_token_revokes_its_family(app: App, dialect: Dialect) -> None:
    tokens = await approved_tokens(app, dialect)
    rotated = (await refresh(app, tokens["refresh_token"])).json()["refresh_token"]
    replay = await refresh(app, tokens["refresh_token"])
    assert_oauth_error(replay, 400, "invalid_grant")
    # The legitimate-looking, freshly rotated token is revoked with the rest of the family.
    body = assert_oauth_error(await refresh(app, rotated), 400, "invalid_grant")
    assert "revoked" in body["error_description"]


async def test_refresh_token_of_another_client_is_invalid_grant_and_stays_usable(app: App, dialect: Dialect) -> None:
    tokens = await approved_tokens(app, dialect)
    other = basic(app.seed.other_client_id, app.seed.other_client_secret)
    assert_oauth_error(await refresh(app, tokens["refresh_token"], headers=other), 400, "invalid_grant")
    assert (await refresh(app, tokens["refresh_token"])).status_code == 200


async def test_refresh_cannot_widen_scope(app: App, dialect: Dialect) -> None:
    tokens = await approved_tokens(app, dialect, scope="printing")
    widened = await app.http.post(
        "/oauth/access_token",
        headers=app.seed.basic(),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "scope": "printing scanning"},
    )
    assert_oauth_error(widened, 400, "invalid_scope")
    # A refused request does not spend the token (else the next refresh would look like a replay).
    again = await refresh(app, tokens["refresh_token"])
    assert again.status_code == 200, again.text
    assert again.json()["scope"] == "printing"


async def test_refresh_may_narrow_scope(app: App, dialect: Dialect) -> None:
    tokens = await approved_tokens(app, dialect, scope="printing scanning")
    narrowed = await app.http.post(
        "/oauth/access_token",
        headers=app.seed.basic(),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "scope": "scanning"},
    )
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "scanning"


async def test_redeemed_code_cannot_be_approved_again(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    await sign_in_and_approve(app, dialect.browser_url(started))
    assert (await poll(app, dialect, dialect.code_of(started))).status_code == 200
    page = await open_confirmation(app, dialect.browser_url(started))
    # The pairing link names the problem; /device gives its one generic answer for any dead code.
    if dialect is PAIRING:
        assert page.status_code == 410 and "Already used" in page.text, (page.status_code, page.text)
    else:
        assert page.status_code == 400 and "That code is not valid" in page.text, (page.status_code, page.text)
    assert 'name="decision"' not in page.text


async def test_concurrent_decisions_on_one_code_settle_once(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    confirm = await open_confirmation(app, dialect.browser_url(started))
    decisions = ["approve", "deny"] * 8
    responses = await asyncio.gather(*(decide_on(app.http, confirm, d) for d in decisions))
    settled = [d for d, r in zip(decisions, responses, strict=True) if r.status_code == 200]
    assert len(settled) == 1, [r.status_code for r in responses]
    assert all(r.status_code == 409 for r in responses if r.status_code != 200)
    answer = await poll(app, dialect, dialect.code_of(started))
    if settled[0] == "approve":
        assert answer.status_code == 200, answer.text
    else:
        assert_oauth_error(answer, 400, "access_denied")


async def test_revocation_during_a_rotation_also_revokes_the_successor(app: App, dialect: Dialect, db_kind: str) -> None:
    tokens = await approved_tokens(app, dialect)
    if db_kind == "postgres":
        # Widen the race window: each new refresh token takes 0.5 s to insert, inside the rotation's transaction.
        def slow_inserts(conn) -> None:  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS "
                                 "$$ BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END $$")
            conn.exec_driver_sql("CREATE TRIGGER slow_insert BEFORE INSERT ON refresh_tokens "
                                 "FOR EACH ROW EXECUTE FUNCTION slow_insert()")

        await app.runtime.store.run(slow_inserts)
    rotating = asyncio.ensure_future(refresh(app, tokens["refresh_token"]))
    await asyncio.sleep(0.2)  # the rotation has spent the old token and is inserting its successor
    revoked = await app.http.post("/oauth/revoke", headers=app.seed.basic(), data={"token": tokens["refresh_token"]})
    assert revoked.status_code == 200, revoked.text
    rotated = await rotating
    assert rotated.status_code == 200, rotated.text
    # The successor was committed while the revocation ran: it must be revoked all the same.
    assert "revoked" in assert_oauth_error(await refresh(app, rotated.json()["refresh_token"]), 400, "invalid_grant")["error_description"]
    me = await app.http.get("/api/me", headers={"Authorization": f"Bearer {rotated.json()['access_token']}"})
    assert me.status_code == 401
