"""JSON responses in the protocol's format, and the request body reader with its size limit."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from pairflow.oauth.errors import OAuthError, PayloadTooLarge
from pairflow.oauth.request import MAX_BODY_BYTES

# RFC 6749 section 5.1: token responses and their errors must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_response(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(content, status_code=status_code, headers={**NO_STORE, **(headers or {})})


def error_response(error: OAuthError) -> JSONResponse:
    return json_response(error.body(), error.status_code, error.headers)


async def read_body(request: Request) -> bytes:
    """The body, refusing anything over ``MAX_BODY_BYTES`` before reading it all."""
    too_large = PayloadTooLarge(f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
