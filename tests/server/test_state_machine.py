"""The device-grant state machine, through both dialects: pending, denied, expired, redeemed, slow_down."""

from __future__ import annotations

from tests.conftest import App
from tests.server.helpers import (
    DEVICE,
    PAIRING,
    Dialect,
    assert_oauth_error,
    basic,
    open_confirmation,
    poll,
    sign_in_and_approve,
    start,
)

CODE_TTL = 600
INTERVAL = 5


async def test_pending_code_answers_authorization_pending(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    code = dialect.code_of(started)
    for _ in range(3):
        assert_oauth_error(await poll(app, dialect, code), 400, "authorization_pending")
        app.clock.advance(INTERVAL)


async def test_approved_code_is_redeemed_once_then_invalid_grant(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    code = dialect.code_of(started)
    assert "Login Successful" in await sign_in_and_approve(app, dialect.browser_url(started))
    first = await poll(app, dialect, code)
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    for _ in range(2):
        app.clock.advance(INTERVAL)
        body = assert_oauth_error(await poll(app, dialect, code), 400, "invalid_grant")
        assert "single-use" in body["error_description"] or "already" in body["error_description"]


async def test_denied_code_answers_access_denied_on_every_poll(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    code = dialect.code_of(started)
    assert_oauth_error(await poll(app, dialect, code), 400, "authorization_pending")
    html = await sign_in_and_approve(app, dialect.browser_url(started), decision="deny")
    assert "denied" in html.lower()
    app.clock.advance(INTERVAL)
    for _ in range(3):  # on time, early, early: denial is terminal and never slowed
        assert_oauth_error(await poll(app, dialect, code), 400, "access_denied")
    app.clock.advance(CODE_TTL + 1)
    assert_oauth_error(await poll(app, dialect, code), 400, "access_denied")


async def test_pending_code_expires(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    code = dialect.code_of(started)
    assert_oauth_error(await poll(app, dialect, code), 400, "authorization_pending")
    app.clock.advance(CODE_TTL - 1)
    assert_oauth_error(await poll(app, dialect, code), 400, "authorization_pending")
    app.clock.advance(2)
    for _ in range(3):  # terminal: early polls still get expired_token, not slow_down
        assert_oauth_error(await poll(app, dialect, code), 400, "expired_token")


async def test_approved_but_unredeemed_code_expires(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    code = dialect.code_of(started)
    await sign_in_and_approve(app, dialect.browser_url(started))
    app.clock.advance(CODE_TTL + 1)
    assert_oauth_error(await poll(app, dialect, code), 400, "expired_token")
    assert_oauth_error(await poll(app, dialect, code), 400, "expired_token")


async def test_code_cannot_be_approved_after_expiry(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    app.clock.advance(CODE_TTL + 1)
    page = await open_confirmation(app, dialect.browser_url(started))
    if dialect is PAIRING:
        assert page.status_code == 410 and "Code expired" in page.text, (page.status_code, page.text)
    else:
        assert page.status_code == 400 and "That code is not valid" in page.text, (page.status_code, page.text)
    assert 'name="decision"' not in page.text
    assert_oauth_error(await poll(app, dialect, dialect.code_of(started)), 400, "expired_token")


async def test_code_of_another_client_is_invalid_grant_and_leaves_the_owner_alone(app: App, dialect: Dialect) -> None:
    seed = app.seed
    thief = basic(seed.other_client_id, seed.other_client_secret)
    started = await start(app, dialect)
    code = dialect.code_of(started)
    for _ in range(4):  # rapid polls by the wrong client neither slow down nor consume the code
        assert_oauth_error(await poll(app, dialect, code, headers=thief), 400, "invalid_grant")
    assert_oauth_error(await poll(app, dialect, code), 400, "authorization_pending")
    await sign_in_and_approve(app, dialect.browser_url(started))
    app.clock.advance(INTERVAL)
    assert_oauth_error(await poll(app, dialect, code, headers=thief), 400, "invalid_grant")
    token = await poll(app, dialect, code)
    assert token.status_code == 200, token.text


async def test_unknown_code_is_invalid_grant(app: App, dialect: Dialect) -> None:
    assert_oauth_error(await poll(app, dialect, "NoSuchCode12345"), 400, "invalid_grant")


async def test_a_code_only_works_with_its_own_dialects_grant_type(app: App) -> None:
    pairing_code = (await start(app, PAIRING))["pairing_code"]
    device_code = (await start(app, DEVICE))["device_code"]
    assert_oauth_error(await poll(app, DEVICE, pairing_code), 400, "invalid_grant")
    assert_oauth_error(await poll(app, PAIRING, device_code), 400, "invalid_grant")


# slow_down (RFC 8628 section 3.5)


async def test_first_poll_is_never_slowed_down(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)  # the poll comes at once, at the same instant
    assert_oauth_error(await poll(app, dialect, dialect.code_of(started)), 400, "authorization_pending")


async def test_early_poll_is_slowed_down_and_interval_grows_by_five(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    code = dialect.code_of(started)
    assert_oauth_error(await poll(app, dialect, code), 400, "authorization_pending")
    app.clock.advance(1)
    body = assert_oauth_error(await poll(app, dialect, code), 400, "slow_down")
    assert body["interval"] == INTERVAL + 5
    app.clock.advance(1)
    body = assert_oauth_error(await poll(app, dialect, code), 400, "slow_down")
    assert body["interval"] == INTERVAL + 10


async def test_second_poll_at_the_same_instant_is_slowed_down(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    code = dialect.code_of(started)
    assert_oauth_error(await poll(app, dialect, code), 400, "authorization_pending")
    body = assert_oauth_error(await poll(app, dialect, code), 400, "slow_down")
    assert body["interval"] == INTERVAL + 5


async def test_polling_on_time_is_never_slowed_down(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    code = dialect.code_of(started)
    for step in (INTERVAL, INTERVAL, INTERVAL + 0.5, INTERVAL, 7, INTERVAL) * 3:
        assert_oauth_error(await poll(app, dialect, code), 400, "authorization_pending")
        app.clock.advance(step)


async def test_after_slow_down_polling_at_the_new_interval_works(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    code = dialect.code_of(started)
    assert_oauth_error(await poll(app, dialect, code), 400, "authorization_pending")
    app.clock.advance(2)
    interval = assert_oauth_error(await poll(app, dialect, code), 400, "slow_down")["interval"]
    assert interval == 10
    for _ in range(4):
        app.clock.advance(interval)
        assert_oauth_error(await poll(app, dialect, code), 400, "authorization_pending")
    app.clock.advance(INTERVAL)  # the old interval is now too soon
    assert assert_oauth_error(await poll(app, dialect, code), 400, "slow_down")["interval"] == 15
    await sign_in_and_approve(app, dialect.browser_url(started))
    app.clock.advance(15)
    assert (await poll(app, dialect, code)).status_code == 200
