"""The machine-facing endpoints: parse, call ``pairflow.oauth``, render JSON.

Devices call a fixed set of exact paths with small bodies, and every waiting device polls
every few seconds. ``MachineApi`` is the outermost ASGI app and answers those paths itself:
one dict lookup instead of the router, and no request, response or middleware objects,
which together cost as much as the rest of a poll. Everything else (pages, static files,
unknown paths) passes through to the Starlette app behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pairflow.oauth.endpoints import (
    device_authorization,
    introspection,
    me,
    metadata,
    pair,
    revocation,
    token,
)
from pairflow.oauth.errors import OAuthError, PayloadTooLarge, ServerError, TemporarilyUnavailable
from pairflow.oauth.request import MAX_BODY_BYTES, OAuthRequest, parse_body
from pairflow.store import StoreUnavailable
from pairflow.web.runtime import Runtime
from pairflow.web.security import security_headers

log = logging.getLogger("pairflow.web")

# RFC 6749 section 5.1: token responses and their errors must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True)
class Call:
    """One HTTP request to a machine endpoint: what the handlers read of it."""

    headers: dict[str, str]  # lower-case names
    client_ip: str
    body: bytes


@dataclass(frozen=True)
class Answer:
    content: Any
    status: int = 200
    headers: dict[str, str] | None = None


Handler = Callable[[Runtime, Call], Awaitable[Answer]]
Endpoint = Callable[[Any, OAuthRequest], Awaitable[Any]]


def preferred_wait(prefer: str | None, cap: int) -> int:
    """Seconds from an RFC 7240 ``Prefer: wait=N`` header, capped; 0 without one."""
    for preference in (prefer or "").split(","):
        name, _, value = preference.split(";", 1)[0].strip().partition("=")
        if name.strip().lower() == "wait" and value.strip().isdigit():
            return min(int(value.strip()), cap)
    return 0


def _decoded(header: str) -> str:
    """HTTP headers arrive as Latin-1; devices send UTF-8 (shown to people on the approval page)."""
    try:
        return header.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return header


def _post(endpoint: Endpoint, *, holds: bool = False) -> Handler:
    """``holds``: the endpoint honours ``Prefer: wait`` (the token endpoint's device grants)."""

    async def handle(runtime: Runtime, call: Call) -> Answer:
        server = runtime.server
        wait = preferred_wait(call.headers.get("prefer"), server.config.max_wait) if holds else 0
        params, malformed = parse_body(call.body, call.headers.get("content-type"))
        request = OAuthRequest(
            params=params,
            authorization=call.headers.get("authorization"),
            client_ip=call.client_ip,
            user_agent=_decoded(call.headers.get("user-agent", "")),
            malformed_fields=malformed,
            wait=wait,
        )
        try:
            result = await endpoint(server, request)
        except OAuthError as error:
            error.headers.update(request.answer_headers)
            raise
        return Answer(result if result is not None else {}, headers={**NO_STORE, **request.answer_headers})

    return handle


async def _userinfo(runtime: Runtime, call: Call) -> Answer:
    return Answer(await me.handle(runtime.server, call.headers.get("authorization")), headers=NO_STORE)


async def _jwks(runtime: Runtime, call: Call) -> Answer:
    return Answer(runtime.server.signer.jwks(), headers={"Cache-Control": "public, max-age=300"})


async def _metadata(runtime: Runtime, call: Call) -> Answer:
    scopes = sorted({scope for client in await runtime.store.list_clients() for scope in client.allowed_scopes})
    return Answer(metadata.document(runtime.server.config, scopes), headers={"Cache-Control": "public, max-age=60"})


async def _health(runtime: Runtime, call: Call) -> Answer:
    await runtime.store.ping()
    return Answer({"status": "ok"}, headers=NO_STORE)


def _both(path: str) -> tuple[str, str]:
    """ezeep's paths work with and without the trailing slash, with no redirect for POSTs."""
    return path, path + "/"


def _routes() -> dict[str, tuple[str, Handler]]:
    posts: list[tuple[str, Handler]] = [
        ("/oauth/pair", _post(pair.handle)),
        ("/oauth/access_token", _post(token.handle, holds=True)),
        ("/access_token", _post(token.handle, holds=True)),  # the path ezeep's own curl example uses
        ("/oauth/device_authorization", _post(device_authorization.handle)),
        ("/oauth/revoke", _post(revocation.handle)),
        ("/oauth/introspect", _post(introspection.handle)),
    ]
    gets: list[tuple[str, Handler]] = [
        ("/api/me", _userinfo),
        ("/.well-known/jwks.json", _jwks),
        ("/.well-known/oauth-authorization-server", _metadata),
        ("/healthz", _health),
    ]
    table = {path: ("POST", handler) for base, handler in posts for path in _both(base)}
    table.update({path: ("GET", handler) for base, handler in gets for path in _both(base)})
    return table


ROUTES = _routes()


class MachineApi:
    """Answers the machine endpoints (``ROUTES``); passes every other request (and lifespan) to ``app``."""

    def __init__(self, app: ASGIApp, runtime: Runtime, *, https: bool) -> None:
        self.app, self.runtime = app, runtime
        self.security_headers = security_headers(https=https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        method, handler = route
        head_only = scope["method"] == "HEAD" and method == "GET"
        if scope["method"] != method and not head_only:
            allowed = "GET, HEAD" if method == "GET" else method
            error = OAuthError(f"Method {scope['method']} is not allowed on {scope['path']}.", status_code=405,
                               headers={"Allow": allowed})
            await self._send(send, _error_answer(error))
            return
        headers = _headers(scope)
        try:
            body = await _read_body(receive, headers) if method == "POST" else b""
            answer = await handler(self.runtime, Call(headers, scope["client"][0] if scope.get("client") else "", body))
        except OAuthError as error:
            answer = _error_answer(error)
        except StoreUnavailable as exc:
            log.warning("database unavailable: %s", exc.__class__.__name__)
            answer = _error_answer(TemporarilyUnavailable("The server cannot reach its database; retry shortly.",
                                                          headers={"Retry-After": "2"}))
        except _Disconnected:
            return
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            answer = _error_answer(ServerError("The server hit an unexpected error; it has been logged."))
        await self._send(send, answer, head_only=head_only)

    async def _send(self, send: Send, answer: Answer, *, head_only: bool = False) -> None:
        body = orjson.dumps(answer.content)
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (answer.headers or {}).items()]
        raw += self.security_headers
        await send({"type": "http.response.start", "status": answer.status, "headers": raw})
        await send({"type": "http.response.body", "body": b"" if head_only else body})


class _Disconnected(Exception):
    """The client went away before sending its whole body."""


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value  # RFC 9110 section 5.3
    return headers


async def _read_body(receive: Receive, headers: dict[str, str]) -> bytes:
    """The body, refusing anything over ``MAX_BODY_BYTES`` before reading it all."""
    too_large = PayloadTooLarge(f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB.")
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _error_answer(error: OAuthError) -> Answer:
    return Answer(error.body(), error.status_code, {**NO_STORE, **error.headers})


def error_response(error: OAuthError) -> Response:
    """The same JSON error as a Starlette response, for API paths the Starlette app answers (unknown ones)."""
    answer = _error_answer(error)
    return Response(orjson.dumps(answer.content), answer.status, headers=answer.headers, media_type="application/json")


API_PREFIXES = ("/oauth/", "/access_token", "/api/", "/.well-known/", "/healthz", "//")
PAGE_PREFIXES = ("/oauth/authorize/",)  # the ezeep confirmation page lives under /oauth/


def is_api_path(path: str) -> bool:
    """Machine-facing paths answer JSON errors and carry no browser session."""
    return path.startswith(API_PREFIXES) and not path.startswith(PAGE_PREFIXES)
