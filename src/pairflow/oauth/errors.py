"""OAuth errors as exceptions, rendered as RFC 6749 section 5.2 JSON by the web layer."""

from __future__ import annotations


class OAuthError(Exception):
    """An error answered to the client as ``{"error": ..., "error_description": ...}``."""

    error: str = "invalid_request"
    status_code: int = 400

    def __init__(self, description: str, *, status_code: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.description = description
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status_code = 401

    def __init__(self, description: str) -> None:
        super().__init__(description, headers={"WWW-Authenticate": 'Basic realm="pairflow", charset="UTF-8"'})


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class AuthorizationPending(OAuthError):
    error = "authorization_pending"


class SlowDown(OAuthError):
    error = "slow_down"

    def __init__(self, description: str, interval: int) -> None:
        super().__init__(description)
        self.interval = interval

    def body(self) -> dict[str, str | int]:  # type: ignore[override]
        # RFC 8628 leaves the new interval implicit (+5 s); saying it helps clients.
        return {**super().body(), "interval": self.interval}


class AccessDenied(OAuthError):
    error = "access_denied"


class ExpiredToken(OAuthError):
    error = "expired_token"


class InvalidToken(OAuthError):
    """RFC 6750 bearer-token error, for protected resources such as ``/api/me``."""

    error = "invalid_token"
    status_code = 401

    def __init__(self, description: str) -> None:
        super().__init__(
            description,
            headers={"WWW-Authenticate": f'Bearer realm="pairflow", error="invalid_token", error_description="{description}"'},
        )


class ServerError(OAuthError):
    error = "server_error"
    status_code = 500


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status_code = 503


class PayloadTooLarge(OAuthError):
    error = "invalid_request"
    status_code = 413
