"""RFC 7240 ``Prefer: wait``: a pending token request is held until the person decides."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import App
from tests.server.helpers import (
    Dialect,
    approved_tokens,
    assert_oauth_error,
    decide_on,
    open_confirmation,
    refresh,
    start,
)


@pytest.fixture(autouse=True)
def quick_recheck(app: App) -> None:
    """Held requests re-read the store every 5 s; here often, because the fake clock only moves when a test says."""
    app.runtime.server.config.recheck = 0.05


async def held_poll(app: App, dialect: Dialect, code: str, wait: int) -> httpx.Response:
    return await app.http.post(
        "/oauth/access_token",
        headers={**app.seed.basic(), "Prefer": f"wait={wait}"},
        data={"grant_type": dialect.grant_type, dialect.code_param: code},
    )


async def wait_until_held(app: App, key_count: int = 1) -> None:
    notifier = app.runtime.server.notifier
    for _ in range(200):
        if len(notifier._waiters) >= key_count:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the token request was not held")


def only_a_notification_can_answer(app: App) -> None:
    """No periodic re-read within the test's timeouts: an answer in time means the decision woke the request."""
    app.runtime.server.config.recheck = 60


async def test_held_request_is_answered_with_tokens_the_moment_the_person_approves(app: App, dialect: Dialect) -> None:
    only_a_notification_can_answer(app)
    started = await start(app, dialect)
    confirm = await open_confirmation(app, dialect.browser_url(started))
    held = asyncio.create_task(held_poll(app, dialect, dialect.code_of(started), 30))
    await wait_until_held(app)
    assert not held.done()
    await decide_on(app.http, confirm, "approve")
    response = await asyncio.wait_for(held, 5)
    assert response.status_code == 200, response.text
    assert response.headers["preference-applied"] == "wait=30"
    assert response.json()["token_type"] == "Bearer"
    # The refresh token handed out is the one stored by the poll that redeemed (not one made while pending).
    refreshed = await refresh(app, response.json()["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text


async def test_held_request_is_answered_access_denied_on_deny(app: App, dialect: Dialect) -> None:
    only_a_notification_can_answer(app)
    started = await start(app, dialect)
    confirm = await open_confirmation(app, dialect.browser_url(started))
    held = asyncio.create_task(held_poll(app, dialect, dialect.code_of(started), 30))
    await wait_until_held(app)
    await decide_on(app.http, confirm, "deny")
    assert_oauth_error(await asyncio.wait_for(held, 5), 400, "access_denied")


async def test_held_request_ends_pending_when_the_wait_is_over(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    held = asyncio.create_task(held_poll(app, dialect, dialect.code_of(started), 10))
    await wait_until_held(app)
    app.clock.advance(10)  # the server's clock says the wait is over; it notices at its next re-check
    response = await asyncio.wait_for(held, 5)
    assert_oauth_error(response, 400, "authorization_pending")
    assert response.headers["preference-applied"] == "wait=10"
    # The held request counted once, when it arrived: polling again now is on time.
    assert_oauth_error(await held_poll(app, dialect, dialect.code_of(started), 0), 400, "authorization_pending")


async def test_held_request_ends_expired_when_the_code_expires(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    app.clock.advance(595)
    held = asyncio.create_task(held_poll(app, dialect, dialect.code_of(started), 30))
    await wait_until_held(app)
    app.clock.advance(6)
    assert_oauth_error(await asyncio.wait_for(held, 5), 400, "expired_token")


async def test_wait_is_capped(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    held = asyncio.create_task(held_poll(app, dialect, dialect.code_of(started), 3600))
    await wait_until_held(app)
    app.clock.advance(30)  # the cap, not the hour asked for, ends the hold
    response = await asyncio.wait_for(held, 5)
    assert_oauth_error(response, 400, "authorization_pending")
    assert response.headers["preference-applied"] == "wait=30"


async def test_answers_that_were_not_held_do_not_claim_the_preference(app: App, dialect: Dialect) -> None:
    # Preference-Applied tells a client its request was held, so it may poll again at once.
    tokens = await approved_tokens(app, dialect)
    refreshed = await refresh(app, tokens["refresh_token"], headers={**app.seed.basic(), "Prefer": "wait=30"})
    assert refreshed.status_code == 200, refreshed.text
    assert "preference-applied" not in refreshed.headers

    started = await start(app, dialect)
    app.clock.advance(1000)  # expired: answered at once
    expired = await asyncio.wait_for(held_poll(app, dialect, dialect.code_of(started), 30), 5)
    assert_oauth_error(expired, 400, "expired_token")
    assert "preference-applied" not in expired.headers


async def test_early_held_request_gets_slow_down_at_once(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    code = dialect.code_of(started)
    assert_oauth_error(await held_poll(app, dialect, code, 0), 400, "authorization_pending")
    app.clock.advance(1)
    response = await asyncio.wait_for(held_poll(app, dialect, code, 30), 5)
    assert_oauth_error(response, 400, "slow_down")
    assert "preference-applied" not in response.headers  # answered at once, not held


async def test_requests_without_the_header_are_never_held(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    response = await asyncio.wait_for(
        app.http.post("/oauth/access_token", headers=app.seed.basic(), data={"grant_type": dialect.grant_type, dialect.code_param: dialect.code_of(started)}),
        2,
    )
    assert_oauth_error(response, 400, "authorization_pending")
    assert "preference-applied" not in response.headers
