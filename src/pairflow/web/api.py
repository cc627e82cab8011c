"""The machine-facing endpoints: parse, call ``pairflow.oauth``, render JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pairflow.oauth.endpoints import (
    device_authorization,
    introspection,
    me,
    metadata,
    pair,
    revocation,
    token,
)
from pairflow.oauth.errors import OAuthError
from pairflow.oauth.request import OAuthRequest, parse_body
from pairflow.oauth.server import AuthorizationServer
from pairflow.web.responses import (
    JSONResponse,
    error_response,
    json_response,
    read_body,
)
from pairflow.web.runtime import runtime_of

Endpoint = Callable[[AuthorizationServer, OAuthRequest], Awaitable[Any]]


def _decoded(header: str) -> str:
    """HTTP headers arrive as Latin-1; devices send UTF-8 (shown to people on the approval page)."""
    try:
        return header.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return header


def preferred_wait(prefer: str | None, cap: int) -> int:
    """Seconds from an RFC 7240 ``Prefer: wait=N`` header, capped; 0 without one."""
    for preference in (prefer or "").split(","):
        name, _, value = preference.split(";", 1)[0].strip().partition("=")
        if name.strip().lower() == "wait" and value.strip().isdigit():
            return min(int(value.strip()), cap)
    return 0


async def _oauth_request(request: Request, wait: int) -> OAuthRequest:
    params, malformed = parse_body(await read_body(request), request.headers.get("content-type"))
    return OAuthRequest(
        params=params,
        authorization=request.headers.get("authorization"),
        client_ip=request.client.host if request.client else "",
        user_agent=_decoded(request.headers.get("user-agent", "")),
        malformed_fields=malformed,
        wait=wait,
    )


def _post_endpoint(endpoint: Endpoint, *, holds: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """``holds``: the endpoint honours ``Prefer: wait`` (the token endpoint's device grants)."""

    async def handle(request: Request) -> Response:
        server = runtime_of(request).server
        wait = preferred_wait(request.headers.get("prefer"), server.config.max_wait) if holds else 0
        applied = {"Preference-Applied": f"wait={wait}"} if wait else {}
        try:
            result = await endpoint(server, await _oauth_request(request, wait))
        except OAuthError as error:
            error.headers.update(applied)
            return error_response(error)
        return json_response(result if result is not None else {}, headers=applied)

    return handle


async def userinfo(request: Request) -> Response:
    try:
        return json_response(await me.handle(runtime_of(request).server, request.headers.get("authorization")))
    except OAuthError as error:
        return error_response(error)


async def jwks(request: Request) -> Response:
    return JSONResponse(runtime_of(request).server.signer.jwks(), headers={"Cache-Control": "public, max-age=300"})


async def server_metadata(request: Request) -> Response:
    runtime = runtime_of(request)
    scopes = sorted({scope for client in await runtime.store.list_clients() for scope in client.allowed_scopes})
    document = metadata.document(runtime.server.config, scopes)
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=60"})


async def health(request: Request) -> Response:
    await runtime_of(request).store.ping()
    return JSONResponse({"status": "ok"})


def _both(path: str) -> tuple[str, str]:
    """ezeep's paths work with and without the trailing slash, with no redirect for POSTs."""
    return path, path + "/"


def routes() -> list[BaseRoute]:
    posts: list[tuple[str, Endpoint]] = [
        ("/oauth/pair", pair.handle),
        ("/oauth/access_token", token.handle),
        ("/access_token", token.handle),  # the path ezeep's own curl example uses
        ("/oauth/device_authorization", device_authorization.handle),
        ("/oauth/revoke", revocation.handle),
        ("/oauth/introspect", introspection.handle),
    ]
    table: list[BaseRoute] = [
        Route(path, _post_endpoint(endpoint, holds=endpoint is token.handle), methods=["POST"])
        for base, endpoint in posts
        for path in _both(base)
    ]
    gets = [
        ("/api/me", userinfo),
        ("/.well-known/jwks.json", jwks),
        ("/.well-known/oauth-authorization-server", server_metadata),
        ("/healthz", health),
    ]
    table += [Route(path, endpoint, methods=["GET"]) for base, endpoint in gets for path in _both(base)]
    return table


API_PREFIXES = ("/oauth/", "/access_token", "/api/", "/.well-known/", "/healthz", "//")
PAGE_PREFIXES = ("/oauth/authorize/",)  # the ezeep confirmation page lives under /oauth/


def is_api_path(path: str) -> bool:
    """Machine-facing paths answer JSON errors and carry no browser session."""
    return path.startswith(API_PREFIXES) and not path.startswith(PAGE_PREFIXES)
