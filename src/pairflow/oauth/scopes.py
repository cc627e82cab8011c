"""Scope requests (RFC 6749 section 3.3): space-separated, within what the client may use."""

from __future__ import annotations

from pairflow.oauth.errors import InvalidScope
from pairflow.store import Client


def resolve_scope(client: Client, requested: str | None) -> str:
    """The granted scope string: the request, or the client's registered scope by default."""
    if requested is None or not requested.strip():
        return client.scope
    wanted = requested.split()
    refused = [s for s in wanted if s not in client.allowed_scopes]
    if refused:
        allowed = " ".join(sorted(client.allowed_scopes)) or "(none)"
        raise InvalidScope(f"This client may not request scope {' '.join(refused)!r}; it may use: {allowed}.")
    return " ".join(dict.fromkeys(wanted))


def narrow_scope(granted: str, requested: str | None) -> str:
    """A refresh may ask for less than was granted, never more (RFC 6749 section 6)."""
    if requested is None or not requested.strip():
        return granted
    have = set(granted.split())
    extra = [s for s in requested.split() if s not in have]
    if extra:
        raise InvalidScope(f"Scope {' '.join(extra)!r} was not granted to this refresh token.")
    return " ".join(dict.fromkeys(requested.split()))
