"""The wire protocol, written once without I/O and driven by a sync or an async httpx client.

Each operation is a generator that yields a :class:`Call` (an HTTP request to make) or a
:class:`Sleep`, and is sent back the ``httpx.Response``, the ``httpx.TransportError`` it raised, or
``None`` after a sleep. :func:`run_sync` and :func:`run_async` execute such a flow, so the polling and
refresh rules exist exactly once and the sync and async APIs cannot drift apart.
"""

from __future__ import annotations

import base64
import email.utils
import math
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote_plus

import httpx

from pairflow.client.outcomes import (
    AnswerLost,
    AnswerLostError,
    Authorized,
    Credentials,
    Denied,
    Expired,
    OAuthError,
    Outcome,
    Pending,
    ProtocolError,
    Tokens,
    TransportError,
    TransportFailure,
    error_fields,
)

DEFAULT_INTERVAL = 5.0  # RFC 8628 3.2, and what ezeep's clients assume
SLOW_DOWN_STEP = 5.0  # RFC 8628 3.5
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PAIRING_GRANT = "pairing_code"


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    data: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None  # None: the httpx client's own default


@dataclass(frozen=True)
class Sleep:
    seconds: float


Step = Call | Sleep
Reply = httpx.Response | httpx.TransportError | None
T = TypeVar("T")
Flow = Generator[Step, Reply, T]


@dataclass(frozen=True)
class ServerInfo:
    """Where a server's endpoints are; ``discovered`` is False when it publishes no RFC 8414 metadata."""

    server: str
    token_endpoint: str
    pairing_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    revocation_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    discovered: bool = False

    @classmethod
    def without_metadata(cls, server: str) -> ServerInfo:
        # ezeep's fixed paths. Its /api/me is not assumed: callers fall back to the JWT's claims.
        return cls(
            server=server,
            token_endpoint=f"{server}/oauth/access_token",
            pairing_endpoint=f"{server}/oauth/pair",
            revocation_endpoint=f"{server}/oauth/revoke",
        )

    def uses_pairing(self, standard: bool) -> bool:
        return not standard and (self.pairing_endpoint is not None or not self.discovered)


def normalize_server(server: str) -> str:
    return server.strip().rstrip("/")


def _http_date_or_seconds(value: str, now: float) -> float | None:
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - now
    except (TypeError, ValueError):
        return None


def _positive_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def _json(response: httpx.Response) -> Any | None:
    try:
        return response.json()
    except ValueError:
        return None


def _authenticated(data: dict[str, str], credentials: Credentials) -> tuple[dict[str, str], dict[str, str]]:
    """Form and headers carrying client authentication (RFC 6749 2.3.1): Basic for confidential
    clients, with id and secret form-urlencoded before joining; ``client_id`` in the body otherwise."""
    if credentials.client_secret is None:
        return {**data, "client_id": credentials.client_id}, {}
    pair = f"{quote_plus(credentials.client_id)}:{quote_plus(credentials.client_secret)}"
    return data, {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}


def _post(
    url: str, data: dict[str, str], credentials: Credentials, *, headers: dict[str, str] | None = None, timeout: float | None = None
) -> Call:
    form, auth = _authenticated(data, credentials)
    return Call("POST", url, data=form, headers={"Accept": "application/json", **auth, **(headers or {})}, timeout=timeout)


def _exchange(call: Call, *, consumes: bool) -> Flow[httpx.Response]:
    """One request. ``consumes``: the server may act on it even if we never see the answer."""
    reply = yield call
    if isinstance(reply, httpx.TransportError):
        if consumes and was_sent(reply):
            raise AnswerLostError(f"the answer from {call.url} was lost ({describe(reply)})") from reply
        raise TransportError(f"{call.url}: {describe(reply)}") from reply
    assert reply is not None
    return reply


def was_sent(error: httpx.TransportError) -> bool:
    """Whether the server may have received and acted on the request before ``error`` happened."""
    not_sent = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError, httpx.UnsupportedProtocol)
    return not isinstance(error, not_sent)


def describe(error: httpx.TransportError) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _raise_for_answer(response: httpx.Response) -> Any:
    """The decoded JSON of a 2xx; otherwise the matching error."""
    body = _json(response)
    if response.is_server_error or body is None:
        raise TransportError(f"{response.request.url} answered HTTP {response.status_code} without usable JSON")
    if not response.is_success:
        raise OAuthError(*error_fields(body), status=response.status_code)
    return body


def discover(server: str) -> Flow[ServerInfo]:
    """RFC 8414 metadata, or ezeep's fixed endpoints when the server publishes none."""
    response = yield from _exchange(Call("GET", f"{server}/.well-known/oauth-authorization-server"), consumes=False)
    body = _json(response) if response.is_success else None
    if not isinstance(body, dict) or not isinstance(body.get("token_endpoint"), str):
        return ServerInfo.without_metadata(server)

    def endpoint(name: str) -> str | None:
        value = body.get(name)
        return value if isinstance(value, str) and value else None

    return ServerInfo(
        server=server,
        token_endpoint=body["token_endpoint"],
        pairing_endpoint=endpoint("pairing_endpoint"),
        device_authorization_endpoint=endpoint("device_authorization_endpoint"),
        revocation_endpoint=endpoint("revocation_endpoint"),
        userinfo_endpoint=endpoint("userinfo_endpoint"),
        discovered=True,
    )


def start(
    info: ServerInfo,
    credentials: Credentials,
    scope: str | None,
    *,
    standard: bool,
    clock: Callable[[], float],
    default_deadline: float,
) -> Flow[Pending]:
    """Start a pairing (ezeep dialect) or an RFC 8628 device authorization."""
    data = {"scope": scope} if scope else {}
    # Pairing authenticates with a client secret; a public client can only use RFC 8628.
    pairing = info.uses_pairing(standard or credentials.client_secret is None)
    if pairing:
        assert info.pairing_endpoint is not None  # uses_pairing() guarantees it without metadata too
        url, data = info.pairing_endpoint, {"mode": "device", **data}
    elif info.device_authorization_endpoint:
        url = info.device_authorization_endpoint
    else:
        raise OAuthError(None, f"{info.server} does not offer the standard device flow (no device_authorization_endpoint)")
    sent_at = clock()
    body = _raise_for_answer((yield from _exchange(_post(url, data, credentials), consumes=False)))
    if not isinstance(body, dict):
        raise OAuthError(None, f"{url} answered JSON that is not an object")
    expires_in = _positive_number(body.get("expires_in")) or default_deadline
    interval = _positive_number(body.get("interval")) or DEFAULT_INTERVAL
    fields = ("pairing_code", "auth_url") if pairing else ("device_code", "verification_uri")
    if not all(isinstance(body.get(name), str) and body[name] for name in fields):
        raise OAuthError(None, f"{url} answered without {' and '.join(fields)}")
    if pairing:
        return Pending("pairing", body["pairing_code"], body["auth_url"], None, None, interval, sent_at + expires_in, scope)
    complete = body.get("verification_uri_complete")
    user_code = body.get("user_code")
    return Pending(
        dialect="standard",
        code=body["device_code"],
        url=complete if isinstance(complete, str) and complete else body["verification_uri"],
        user_code=user_code if isinstance(user_code, str) else None,
        verification_uri=body["verification_uri"],
        interval=interval,
        expires_at=sent_at + expires_in,
        scope=scope,
    )


def parse_tokens(body: Any, sent_at: float) -> Tokens:
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise OAuthError(None, "the token response has no access_token")
    token_type = body.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise OAuthError(None, f"unsupported token_type {token_type!r} (only Bearer is)")
    expires_in = _positive_number(body.get("expires_in"))
    refresh_token = body.get("refresh_token")
    scope = body.get("scope")
    return Tokens(
        access_token=body["access_token"],
        token_type="Bearer",
        expires_at=sent_at + expires_in if expires_in else None,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        scope=scope if isinstance(scope, str) else None,
    )


def _preference_applied_wait(response: httpx.Response) -> bool:
    applied = response.headers.get("Preference-Applied", "")
    return any(part.strip().lower().startswith("wait") for part in applied.split(","))


def poll(
    info: ServerInfo,
    credentials: Credentials,
    pending: Pending,
    *,
    clock: Callable[[], float],
    max_failures: int,
    timeout: float,
    prefer_wait: int | None,
) -> Flow[Outcome]:
    """Poll the token endpoint until the login is approved, refused or out of time (RFC 8628 3.4-3.5)."""
    if pending.dialect == "pairing":
        data = {"grant_type": PAIRING_GRANT, "pairing_code": pending.code}
    else:
        data = {"grant_type": DEVICE_CODE_GRANT, "device_code": pending.code}
    if pending.scope:
        data["scope"] = pending.scope
    headers = {"Prefer": f"wait={prefer_wait}"} if prefer_wait else {}
    call = _post(info.token_endpoint, data, credentials, headers=headers, timeout=timeout + (prefer_wait or 0))

    interval = pending.interval
    failures = 0
    last_failure: str | None = None
    next_poll = clock() + interval
    while True:
        if next_poll >= pending.expires_at:
            if last_failure:
                return TransportFailure(f"gave up before the code expired: {last_failure}")
            return Expired("the code expired before the sign-in was approved")
        if (delay := next_poll - clock()) > 0:
            yield Sleep(delay)
        sent_at = clock()
        reply = yield call
        now = clock()

        if isinstance(reply, httpx.TransportError):
            if was_sent(reply):
                return AnswerLost(f"the token request was sent but its answer was lost ({describe(reply)})")
            failure, retry_after = describe(reply), None
        else:
            assert reply is not None
            body = _json(reply)
            if reply.is_success and body is not None:
                try:
                    return Authorized(parse_tokens(body, sent_at))
                except OAuthError as error:
                    return ProtocolError(None, error.description, reply.status_code)
            error, description = error_fields(body)
            if reply.is_client_error and error is not None:
                if error == "authorization_pending":
                    failures, last_failure = 0, None
                    # A held request (Prefer: wait) already waited, so poll again at once; the interval
                    # still bounds the rate in case a server claims to hold but answers straight away.
                    next_poll = max(now, sent_at + interval) if _preference_applied_wait(reply) else now + interval
                    continue
                if error == "slow_down":
                    failures, last_failure = 0, None
                    interval = max(interval + SLOW_DOWN_STEP, _positive_number(body.get("interval")) or 0)
                    next_poll = now + interval
                    continue
                if error == "access_denied":
                    return Denied(description)
                if error == "expired_token":
                    return Expired(description)
                return ProtocolError(error, description, reply.status_code)
            if reply.is_client_error and body is not None and reply.status_code != 429:
                return ProtocolError(None, f"HTTP {reply.status_code} without an OAuth error code", reply.status_code)
            # 5xx, 429, or a non-JSON page (a proxy's 502, a captive portal): worth retrying.
            failure = f"HTTP {reply.status_code}" + ("" if body is not None else " with a non-JSON body")
            retry_after = _http_date_or_seconds(reply.headers.get("Retry-After", ""), now)
        failures += 1
        last_failure = failure
        if failures >= max_failures:
            return TransportFailure(f"{failures} failed polls in a row, the last: {failure}")
        next_poll = now + max(interval, retry_after or 0)


def refresh(token_endpoint: str, credentials: Credentials, refresh_token: str, *, clock: Callable[[], float]) -> Flow[Tokens]:
    """Exchange a (single-use) refresh token. A lost answer is never retried: the old token may be spent."""
    sent_at = clock()
    call = _post(token_endpoint, {"grant_type": "refresh_token", "refresh_token": refresh_token}, credentials)
    response = yield from _exchange(call, consumes=True)
    return parse_tokens(_raise_for_answer(response), sent_at)


def revoke(revocation_endpoint: str, credentials: Credentials, token: str) -> Flow[None]:
    """RFC 7009. The server answers 200 even for unknown tokens, so any 2xx is success."""
    response = yield from _exchange(_post(revocation_endpoint, {"token": token}, credentials), consumes=False)
    if not response.is_success:
        _raise_for_answer(response)


def userinfo(userinfo_endpoint: str, access_token: str) -> Flow[dict[str, Any]]:
    call = Call("GET", userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"})
    body = _raise_for_answer((yield from _exchange(call, consumes=False)))
    if not isinstance(body, dict):
        raise OAuthError(None, f"{userinfo_endpoint} answered JSON that is not an object")
    return body


def _build(http: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
    timeout = httpx.USE_CLIENT_DEFAULT if call.timeout is None else call.timeout
    return http.build_request(call.method, call.url, data=call.data, headers=call.headers, timeout=timeout)


def run_sync(flow: Flow[T], http: httpx.Client, sleep: Callable[[float], None]) -> T:
    reply: Reply = None
    try:
        while True:
            step = flow.send(reply)
            if isinstance(step, Sleep):
                sleep(step.seconds)
                reply = None
                continue
            try:
                reply = http.send(_build(http, step))
            except httpx.TransportError as error:
                reply = error
    except StopIteration as done:
        return done.value


async def run_async(flow: Flow[T], http: httpx.AsyncClient, sleep: Callable[[float], Awaitable[None]]) -> T:
    reply: Reply = None
    try:
        while True:
            step = flow.send(reply)
            if isinstance(step, Sleep):
                await sleep(step.seconds)
                reply = None
                continue
            try:
                reply = await http.send(_build(http, step))
            except httpx.TransportError as error:
                reply = error
    except StopIteration as done:
        return done.value
