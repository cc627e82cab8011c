"""The one state machine behind both dialects: ezeep pairing codes and RFC 8628 device codes.

    pending --approve--> approved --redeem--> redeemed
       |                    |
       +--deny--> denied    +-- (time) --> expired   (pending codes expire too)

Starting, deciding and polling are each one store call; polling is one conditional
UPDATE that records the poll, applies ``slow_down`` and redeems an approved code at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pairflow import audit
from pairflow.oauth.codes import new_device_code, new_pairing_code, new_user_code
from pairflow.oauth.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    SlowDown,
    TemporarilyUnavailable,
)
from pairflow.oauth.jwt import new_jti
from pairflow.oauth.request import OAuthRequest
from pairflow.oauth.server import AuthorizationServer
from pairflow.store import Client, Conflict, DeviceGrant, NewRefreshToken, User

PAIRING = "pairing"  # ezeep dialect: one code, shown in the auth_url and polled with
DEVICE = "device"  # RFC 8628: a secret device_code to poll with, a short user_code to type


@dataclass(frozen=True)
class StartedGrant:
    code: str
    user_code: str | None
    grant: DeviceGrant


def status(grant: DeviceGrant, now: float) -> str:
    """Where the grant stands for a person looking at it: pending, approved, denied, expired, redeemed."""
    if grant.state in ("pending", "approved") and grant.expires_at <= now:
        return "expired"
    return grant.state


async def start(server: AuthorizationServer, client: Client, kind: str, scope: str, request: OAuthRequest) -> StartedGrant:
    now = server.clock()
    config = server.config
    for _ in range(5):  # user codes have ~34 bits: a rare collision just draws again
        code = new_pairing_code() if kind == PAIRING else new_device_code()
        user_code = new_user_code() if kind == DEVICE else None
        grant = DeviceGrant(
            code_hash=server.hash(code),
            kind=kind,
            user_code_hash=server.hash(user_code) if user_code else None,
            client_id=client.client_id,
            scope=scope,
            state="pending",
            created_at=now,
            expires_at=now + config.code_ttl,
            interval=config.poll_interval,
            last_polled_at=None,
            user_id=None,
            org_id=None,
            decided_at=None,
            redeemed_at=None,
            token_jti=None,
            requester_ip=request.client_ip[:64],
            requester_agent=request.user_agent[:300],
        )
        try:
            await server.store.create_grant(grant)
        except Conflict:
            continue
        return StartedGrant(code, user_code, grant)
    raise TemporarilyUnavailable("Could not draw an unused code; try again.")


async def find(server: AuthorizationServer, *, code: str | None = None, user_code: str | None = None) -> DeviceGrant | None:
    """The grant a person is looking at, by pairing code or by (normalised) user code."""
    if code:
        grant = await server.store.find_grant(code_hash=server.hash(code))
        return grant if grant and grant.kind == PAIRING else None
    if user_code:
        return await server.store.find_grant(user_code_hash=server.hash(user_code))
    return None


async def decide(server: AuthorizationServer, grant: DeviceGrant, user: User, *, approve: bool, ip: str) -> bool:
    """Approve or deny a pending grant for ``user``; False if it was no longer pending."""
    decided = await server.store.decide_grant(
        grant.code_hash, approve=approve, user_id=user.id, org_id=user.org_id, now=server.clock()
    )
    if decided:
        await server.notifier.publish(grant.code_hash)
        event = "grant_approved" if approve else "grant_denied"
        await audit.record(server.store, event, detail=f"{grant.kind} scope={grant.scope!r}", user_id=user.id, client_id=grant.client_id, ip=ip)
    return decided


async def poll(server: AuthorizationServer, client: Client, kind: str, code: str, request: OAuthRequest) -> dict[str, Any]:
    """Answer one token request for a code: tokens, or the RFC 8628 section 3.5 error.

    With ``request.wait`` (RFC 7240 ``Prefer: wait``), a pending answer is held until the
    grant is decided or expires, or the wait is over; only a held answer carries
    ``Preference-Applied``. The held request is one poll, counted when it arrived (so the
    client may poll again the moment it is answered); while it waits it only reads.
    """
    now = server.clock()
    wait = request.wait
    jti = new_jti()  # marks this poll in the grant; if it redeems, it also names the new device session
    code_hash = server.hash(code)
    issued: list[str] = []  # refresh tokens made for this request; the last one is what the redeeming poll stored

    def first_refresh_token() -> NewRefreshToken:
        token, stored = server.new_refresh_token()
        issued.append(token)
        return stored

    grant = await server.store.poll_grant(
        kind, code_hash, client.client_id, jti=jti, now=now, first_refresh_token=first_refresh_token
    )
    if grant is None:
        raise InvalidGrant("Unknown code, or the code was issued to another client.")
    slowed = grant.state == "pending" and grant.token_jti != jti  # the update did not accept this poll: too early
    if wait > 0 and grant.state == "pending" and not slowed and grant.expires_at > now:
        request.answer_headers["Preference-Applied"] = f"wait={wait}"
        grant = await _hold(server, grant, deadline=min(now + wait, grant.expires_at))
        if grant.state == "approved":  # redeem it with the same atomic update
            grant = await server.store.poll_grant(
                kind, code_hash, client.client_id, jti=jti, now=server.clock(), first_refresh_token=first_refresh_token
            ) or grant
        now = server.clock()
    return _answer(server, client, grant, jti, issued, now, slowed=slowed)


async def _hold(server: AuthorizationServer, grant: DeviceGrant, deadline: float) -> DeviceGrant:
    """Wait for a decision on ``grant`` (notified, or seen on a periodic re-read) until ``deadline``."""
    while True:
        remaining = deadline - server.clock()
        if remaining <= 0:
            return grant
        await server.notifier.wait(grant.code_hash, min(remaining, server.config.recheck))
        grant = await server.store.find_grant(code_hash=grant.code_hash) or grant
        if grant.state != "pending":
            return grant


def _answer(
    server: AuthorizationServer,
    client: Client,
    grant: DeviceGrant,
    jti: str,
    issued: list[str],
    now: float,
    *,
    slowed: bool,
) -> dict[str, Any]:
    if grant.state == "redeemed":
        if grant.token_jti != jti:
            raise InvalidGrant("This code has already been exchanged for tokens; codes are single-use.")
        assert grant.user_id is not None and grant.org_id is not None
        return server.token_response(
            client_id=client.client_id, user_id=grant.user_id, org_id=grant.org_id, scope=grant.scope, jti=jti,
            refresh_token=issued[-1], session_id=jti,
        )
    if grant.state == "denied":
        raise AccessDenied("The user denied the request.")
    if grant.expires_at <= now:
        raise ExpiredToken("The code has expired; start again with a new code.")
    if slowed:
        raise SlowDown(f"Polling too fast; wait at least {grant.interval} seconds between requests.", grant.interval)
    raise AuthorizationPending("The user has not yet approved the request; keep polling.")
