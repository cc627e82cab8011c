"""Starting a login and polling for it, against a scripted (often misbehaving) server on loopback."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from conftest import (
    CREDENTIALS,
    FakeClock,
    Recorded,
    Reply,
    ScriptedServer,
    dropped,
    error,
    html,
    ok,
    pending,
    token_body,
)

from pairflow.client import (
    AnswerLost,
    AsyncDeviceClient,
    Authorized,
    Credentials,
    Denied,
    DeviceClient,
    Expired,
    ProtocolError,
    TransportFailure,
)

TOKEN = "/oauth/access_token"


def pairing(**extra: Any) -> Reply:
    return ok({"pairing_code": "PC-1", "auth_url": "https://example.test/auth/signin/?next=x", **extra})


def client_for(server: ScriptedServer, clock: FakeClock, **settings: Any) -> DeviceClient:
    return DeviceClient(server.url, CREDENTIALS, clock=clock.time, sleep=clock.sleep, **{"prefer_wait": None, **settings})


def login(server: ScriptedServer, clock: FakeClock, *token_replies: Any, start: Reply | None = None, **settings: Any):
    server.script("/oauth/pair", start or pairing(expires_in=600, interval=5))
    server.script(TOKEN, *token_replies)
    with client_for(server, clock, **settings) as client:
        outcome = client.wait(client.start("printing"))
    return outcome


def test_pairing_polls_every_interval_with_basic_auth_until_approved(server: ScriptedServer, clock: FakeClock) -> None:
    started = clock.now
    outcome = login(server, clock, pending(), pending(), ok(token_body()))

    assert isinstance(outcome, Authorized)
    assert outcome.tokens.access_token == "access-1" and outcome.tokens.refresh_token == "refresh-1"
    assert outcome.tokens.expires_at == started + 15 + 3600  # counted from when the winning poll was sent
    assert clock.sleeps == [5, 5, 5]
    pair = server.calls("/oauth/pair")[0]
    assert pair.form == {"mode": "device", "scope": "printing"}
    # RFC 6749 2.3.1: id and secret are form-urlencoded, then joined and base64-encoded.
    assert pair.headers["authorization"] == "Basic " + base64.b64encode(b"device+app:s3cret%3A%2B%2F").decode()
    assert [c.form for c in server.calls(TOKEN)] == [{"grant_type": "pairing_code", "pairing_code": "PC-1", "scope": "printing"}] * 3


def test_metadata_without_pairing_endpoint_selects_the_standard_flow(server: ScriptedServer, clock: FakeClock) -> None:
    server.script(
        "/.well-known/oauth-authorization-server",
        ok({"token_endpoint": f"{server.url}{TOKEN}", "device_authorization_endpoint": f"{server.url}/device"}),
    )
    server.script(
        "/device",
        ok({"device_code": "DC", "user_code": "ABCD-EFGH", "verification_uri": "https://v.test/device", "expires_in": 300}),
    )
    server.script(TOKEN, pending(), ok(token_body()))
    with DeviceClient(server.url, Credentials("public-app"), clock=clock.time, sleep=clock.sleep) as client:
        started = client.start()
        outcome = client.wait(started)

    assert started.dialect == "standard" and started.user_code == "ABCD-EFGH" and started.url == "https://v.test/device"
    assert isinstance(outcome, Authorized)
    # A public client identifies itself in the body and sends no Authorization header.
    assert server.calls("/device")[0].form == {"client_id": "public-app"}
    poll = server.calls(TOKEN)[0]
    assert "authorization" not in poll.headers
    assert poll.form == {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "DC", "client_id": "public-app"}


@pytest.mark.parametrize("interval", [None, 0, "ten", -3])
def test_missing_zero_or_non_numeric_interval_means_five_seconds(server: ScriptedServer, clock: FakeClock, interval: Any) -> None:
    start = pairing() if interval is None else pairing(interval=interval)
    assert isinstance(login(server, clock, pending(), ok(token_body()), start=start), Authorized)
    assert clock.sleeps == [5, 5]


def test_slow_down_adds_five_seconds_or_takes_the_larger_server_interval_and_never_shrinks(
    server: ScriptedServer, clock: FakeClock
) -> None:
    outcome = login(
        server,
        clock,
        error("slow_down", interval=3),  # smaller than ours: ignored, 5 + 5
        error("slow_down", interval=30),  # larger than 10 + 5: taken
        pending(),
        error("slow_down"),  # no interval: 30 + 5
        ok(token_body()),
        start=pairing(interval=5),
    )
    assert isinstance(outcome, Authorized)
    assert clock.sleeps == [5, 10, 30, 30, 35]


def test_never_polls_after_expiry_even_if_the_server_keeps_saying_pending(server: ScriptedServer, clock: FakeClock) -> None:
    deadline = clock.now + 22
    outcome = login(server, clock, pending(), start=pairing(expires_in=22, interval=5))

    assert isinstance(outcome, Expired)
    assert [c.at for c in server.calls(TOKEN)] == [deadline - 17, deadline - 12, deadline - 7, deadline - 2]


def test_without_expires_in_the_configured_deadline_applies(server: ScriptedServer, clock: FakeClock) -> None:
    outcome = login(server, clock, pending(), start=pairing(), default_deadline=12)
    assert isinstance(outcome, Expired)
    assert len(server.calls(TOKEN)) == 2


def test_502_pages_and_5xx_are_retried_honouring_retry_after(server: ScriptedServer, clock: FakeClock) -> None:
    outcome = login(
        server,
        clock,
        html(502),
        Reply(503, {"error": "temporarily_unavailable"}, headers={"Retry-After": "12"}),
        Reply(200, raw="<html>captive portal</html>"),
        ok(token_body()),
    )
    assert isinstance(outcome, Authorized)
    assert clock.sleeps == [5, 5, 12, 5]


def test_consecutive_failures_are_capped(server: ScriptedServer, clock: FakeClock) -> None:
    outcome = login(server, clock, pending(), html(502), max_failures=3)
    assert isinstance(outcome, TransportFailure)
    assert "HTTP 502" in outcome.description
    assert len(server.calls(TOKEN)) == 4


def test_a_pending_answer_resets_the_failure_count(server: ScriptedServer, clock: FakeClock) -> None:
    outcome = login(server, clock, html(502), html(502), pending(), html(502), html(502), ok(token_body()), max_failures=3)
    assert isinstance(outcome, Authorized)


def test_connection_refused_is_retried_until_the_server_is_back(clock: FakeClock) -> None:
    first = ScriptedServer(clock=clock)
    first.script("/oauth/pair", pairing())
    port, url = first.port, first.url
    client = DeviceClient(url, CREDENTIALS, clock=clock.time, prefer_wait=None, sleep=clock.sleep)
    pending_login = client.start()
    first.close()  # the network goes away after the login started
    revived: list[ScriptedServer] = []

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 3:  # two refused polls later, the server is back on the same port
            revived.append(ScriptedServer(port=port, clock=clock))
            revived[0].script(TOKEN, ok(token_body()))

    client.sleep = sleep
    try:
        assert isinstance(client.wait(pending_login), Authorized)
        assert len(revived[0].calls(TOKEN)) == 1
    finally:
        client.close()
        revived[0].close()


def test_dropped_connection_after_sending_is_reported_as_lost_and_not_retried(server: ScriptedServer, clock: FakeClock) -> None:
    outcome = login(server, clock, pending(), dropped(), ok(token_body()))
    assert isinstance(outcome, AnswerLost)
    assert len(server.calls(TOKEN)) == 2


def test_an_answer_slower_than_the_timeout_is_lost_but_a_slow_one_within_it_is_fine(server: ScriptedServer, clock: FakeClock) -> None:
    slow = Reply(200, token_body(), delay=0.3)
    assert isinstance(login(server, clock, pending(), slow, timeout=2), Authorized)
    too_slow = Reply(400, {"error": "authorization_pending"}, delay=0.6)
    outcome = login(server, clock, too_slow, ok(token_body()), timeout=0.2)
    assert isinstance(outcome, AnswerLost) and "ReadTimeout" in outcome.description


@pytest.mark.parametrize(
    ("reply", "kind", "code"),
    [
        (error("access_denied"), Denied, None),
        (error("expired_token"), Expired, None),
        (error("invalid_client", status=401), ProtocolError, "invalid_client"),
        (error("invalid_grant"), ProtocolError, "invalid_grant"),
        (Reply(400, {"detail": "no"}), ProtocolError, None),
        (ok({"token_type": "Bearer"}), ProtocolError, None),
    ],
)
def test_final_answers_end_the_wait(server: ScriptedServer, clock: FakeClock, reply: Reply, kind: type, code: str | None) -> None:
    outcome = login(server, clock, pending(), reply)
    assert isinstance(outcome, kind)
    assert getattr(outcome, "error", None) == code
    assert len(server.calls(TOKEN)) == 2


def test_held_polls_repoll_at_once_but_slow_down_still_waits(server: ScriptedServer, clock: FakeClock) -> None:
    def held(reply: Reply) -> Any:
        def answer(request: Recorded) -> Reply:
            assert request.headers["prefer"] == "wait=25"
            clock.advance(25)  # the server held the request this long
            return Reply(reply.status, reply.body, headers={"Preference-Applied": "wait=25"})

        return answer

    outcome = login(
        server, clock, held(pending()), held(pending()), held(error("slow_down")), held(pending()), ok(token_body()), prefer_wait=25
    )
    assert isinstance(outcome, Authorized)
    assert clock.sleeps == [5, 10]  # the first poll, and after slow_down; held pendings repoll at once


def test_a_server_claiming_to_hold_but_answering_at_once_is_still_paced(server: ScriptedServer, clock: FakeClock) -> None:
    instant = Reply(400, {"error": "authorization_pending"}, headers={"Preference-Applied": "wait=25"})
    assert isinstance(login(server, clock, instant, instant, ok(token_body()), prefer_wait=25), Authorized)
    assert clock.sleeps == [5, 5, 5]


async def test_async_client_follows_the_same_rules(server: ScriptedServer, clock: FakeClock) -> None:
    server.script("/oauth/pair", pairing(interval=5))
    server.script(TOKEN, error("slow_down", interval=2), html(502), pending(), dropped())
    async with AsyncDeviceClient(server.url, CREDENTIALS, clock=clock.time, sleep=clock.asleep, prefer_wait=None) as client:
        outcome = await client.wait(await client.start())
    assert isinstance(outcome, AnswerLost)
    assert clock.sleeps == [5, 10, 10, 10]
