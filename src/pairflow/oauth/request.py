"""Parse an OAuth request body into parameters, deliberately and with clear errors.

Bodies are ``application/x-www-form-urlencoded`` (RFC 6749 section 3.2). JSON objects are
accepted too, because device developers send them. Everything malformed becomes an
``InvalidRequest`` that says what was wrong and what was expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from pairflow.oauth.errors import InvalidRequest

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class OAuthRequest:
    """What an endpoint needs from an HTTP request, and nothing framework-specific."""

    params: dict[str, str]
    authorization: str | None = None
    client_ip: str = ""
    user_agent: str = ""
    # Form fields that had no "=" (e.g. "grant_type:pairing_code"); kept to explain errors.
    malformed_fields: tuple[str, ...] = field(default=())
    # Seconds the client is willing to wait for a decision (RFC 7240 "Prefer: wait"), already capped.
    wait: int = 0
    # Headers the endpoint adds to its answer, success or error (e.g. Preference-Applied).
    answer_headers: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if value else None

    def require(self, name: str, example: str) -> str:
        """The parameter's value, or an ``invalid_request`` that says how to send it."""
        value = self.get(name)
        if value is not None:
            return value
        hint = f"Send it as a form field, e.g. {name}={example}."
        if self.malformed_fields:
            shown = ", ".join(repr(f) for f in self.malformed_fields[:3])
            hint = (
                f"The body must be form-encoded key=value pairs joined by '&' (e.g. {name}={example}); "
                f"these parts have no '=': {shown}."
            )
        raise InvalidRequest(f"Missing required parameter '{name}'. {hint}")


def form_decode(text: str) -> str:
    """``unquote_plus``; most values (codes, ids, grant types) have nothing to decode, and skip it."""
    return unquote_plus(text) if "%" in text or "+" in text else text


def parse_body(body: bytes, content_type: str | None) -> tuple[dict[str, str], tuple[str, ...]]:
    """Return the body's parameters and any form fields that lacked an ``=``."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type.startswith("multipart/"):
        raise InvalidRequest(
            f"{media_type} bodies are not supported; send application/x-www-form-urlencoded (or a JSON object)."
        )
    stripped = body.strip()
    if media_type == "application/json" or (stripped.startswith(b"{") and _is_json_object(stripped)):
        return _parse_json(stripped), ()
    return _parse_form(body)


def _is_json_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise InvalidRequest(f"Parameter '{repeated[0]}' is repeated; each parameter may appear only once.")
    return dict(pairs)


def _parse_json(data: bytes) -> dict[str, str]:
    if not data:
        return {}
    try:
        value = json.loads(data, object_pairs_hook=_unique_keys)
    except UnicodeDecodeError:
        raise InvalidRequest("The body is not valid UTF-8.") from None
    except ValueError as exc:
        raise InvalidRequest(f"The body is not valid JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise InvalidRequest("A JSON body must be an object of string parameters, e.g. {\"grant_type\": \"pairing_code\"}.")
    params: dict[str, str] = {}
    for key, item in value.items():
        # Numbers are accepted as their text (device firmware sends them); anything else is refused.
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise InvalidRequest(f"Parameter '{key}' must be a string.")
        text = str(item)
        if not text.isascii():
            try:
                text.encode()
            except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape
                raise InvalidRequest(f"Parameter '{key}' is not valid Unicode text.") from None
        params[key] = text
    _refuse_nul(params)
    return params


def _parse_form(body: bytes) -> tuple[dict[str, str], tuple[str, ...]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The body is not valid UTF-8.") from None
    params: dict[str, str] = {}
    malformed: list[str] = []
    for part in text.split("&"):
        if not part:
            continue
        if "=" not in part:
            # RFC 6749 section 3.2: unrecognised parameters are ignored; remember it for hints.
            malformed.append(form_decode(part).strip())
            continue
        raw_key, raw_value = part.split("=", 1)
        key = form_decode(raw_key)
        if key in params:
            raise InvalidRequest(f"Parameter '{key}' is repeated; each parameter may appear only once (RFC 6749 section 3.2).")
        params[key] = form_decode(raw_value)
    if "\x00" in text or "%00" in text:
        _refuse_nul(params)
    return params, tuple(malformed)


def _refuse_nul(params: dict[str, str]) -> None:
    """No parameter may hold a NUL character: no identifier or secret has one, and databases refuse it."""
    for key, value in params.items():
        if "\x00" in key or "\x00" in value:
            raise InvalidRequest(f"Parameter '{key.replace(chr(0), '')}' contains a NUL character.")
