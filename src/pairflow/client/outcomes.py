"""Value types of the device flow: tokens, a started login, how a wait ended, and errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Credentials:
    """The OAuth client this device authenticates as; no secret means a public client."""

    client_id: str
    client_secret: str | None = None


@dataclass(frozen=True)
class Tokens:
    """A token response; ``expires_at`` is wall-clock seconds, counted from when the request was sent."""

    access_token: str
    token_type: str
    expires_at: float | None
    refresh_token: str | None
    scope: str | None

    def expires_within(self, seconds: float, now: float) -> bool:
        # Without expires_in we cannot refresh proactively; a 401 will tell us instead.
        return self.expires_at is not None and now + seconds >= self.expires_at


@dataclass(frozen=True)
class Pending:
    """A started login the person still has to approve in a browser.

    ``url`` is the page to open (``auth_url`` for pairing, ``verification_uri_complete`` or else
    ``verification_uri`` for RFC 8628). ``user_code`` is ``None`` in the pairing dialect, whose code is
    part of the URL and doubles as the device's polling secret, so it is never shown.
    """

    dialect: str  # "pairing" or "standard"
    code: str  # pairing_code or device_code: what the device polls with
    url: str
    user_code: str | None
    verification_uri: str | None
    interval: float
    expires_at: float
    scope: str | None


# How wait() ends. Only Authorized carries tokens; every other outcome means "no login".


@dataclass(frozen=True)
class Authorized:
    tokens: Tokens


@dataclass(frozen=True)
class Denied:
    description: str


@dataclass(frozen=True)
class Expired:
    description: str


@dataclass(frozen=True)
class Cancelled:
    description: str = "cancelled before the sign-in was approved"


@dataclass(frozen=True)
class TransportFailure:
    """The server stayed unreachable or kept answering garbage (5xx, non-JSON) until we gave up."""

    description: str


@dataclass(frozen=True)
class AnswerLost:
    """A token request reached the server but its answer never came back.

    The server may have issued tokens and consumed the code, so repeating the request could only fail
    (or, with single-use refresh tokens, look like token theft); the person has to start again.
    """

    description: str


@dataclass(frozen=True)
class ProtocolError:
    """The server refused in a way that ends the flow (``invalid_client``, ``invalid_grant``, ...)
    or answered something that is not OAuth."""

    error: str | None
    description: str
    status: int | None = None


Outcome = Authorized | Denied | Expired | Cancelled | TransportFailure | AnswerLost | ProtocolError


class PairflowError(Exception):
    """Base of the errors raised by single requests (start, refresh, revoke, userinfo)."""


class TransportError(PairflowError):
    """The request failed before the server could have acted on it, or the server answered 5xx/garbage."""


class AnswerLostError(PairflowError):
    """The request was sent but its answer was lost; see :class:`AnswerLost`."""


class OAuthError(PairflowError):
    """The server answered with an RFC 6749 error (or a malformed success)."""

    def __init__(self, error: str | None, description: str, status: int | None = None) -> None:
        super().__init__(f"{error}: {description}" if error else description)
        self.error = error
        self.description = description
        self.status = status


class NotSignedIn(PairflowError):
    """Nothing usable is stored: no entry, or the refresh token was rejected. Log in again."""


def error_fields(body: Any) -> tuple[str | None, str]:
    """The RFC 6749 5.2 ``error`` and a human description from a decoded error body."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return None, "the server answered without an OAuth error code"
    error = body["error"]
    description = body.get("error_description")
    return error, description if isinstance(description, str) and description else error
