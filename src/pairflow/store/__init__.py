"""Persistence behind one small interface: records in, records out, atomic transitions.

``Store`` is what the protocol core depends on; ``SqlStore`` (SQLAlchemy Core, SQLite or
PostgreSQL) is the implementation. Every single-use transition (deciding, redeeming,
rotating) is one conditional UPDATE whose result tells whether this caller won.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class StoreUnavailable(Exception):
    """The database cannot be reached; callers answer 503 and retry later."""


class Conflict(Exception):
    """A record with the same unique key exists already."""


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    created_at: float


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password_hash: str
    org_id: str
    created_at: float


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    secret_hash: str | None
    scope: str
    grant_types: str
    created_at: float

    @property
    def is_public(self) -> bool:
        return self.secret_hash is None

    @property
    def allowed_scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    def may_use_grant(self, grant_type: str) -> bool:
        return grant_type in self.grant_types.split()


@dataclass(frozen=True)
class DeviceGrant:
    """A pairing (ezeep) or device authorization (RFC 8628) and where it stands."""

    code_hash: str
    kind: str
    user_code_hash: str | None
    client_id: str
    scope: str
    state: str
    created_at: float
    expires_at: float
    interval: int
    last_polled_at: float | None
    user_id: str | None
    org_id: str | None
    decided_at: float | None
    redeemed_at: float | None
    token_jti: str | None
    requester_ip: str
    requester_agent: str


@dataclass(frozen=True)
class RefreshToken:
    token_hash: str
    family_id: str
    client_id: str
    user_id: str
    org_id: str
    scope: str
    created_at: float
    expires_at: float
    used_at: float | None
    revoked: bool


@dataclass(frozen=True)
class Account:
    """Who an access token speaks for, while its device session is live."""

    user_id: str
    email: str
    org_id: str
    org_name: str


@dataclass(frozen=True)
class NewRefreshToken:
    """A refresh token about to be stored: its keyed hash and expiry; the rest comes from its grant."""

    token_hash: str
    expires_at: float


@dataclass(frozen=True)
class PairedDevice:
    """One live refresh-token family of a user, as the devices page lists it."""

    family_id: str
    client_name: str
    scope: str
    refreshed_at: float
    expires_at: float


@dataclass(frozen=True)
class AuditEvent:
    at: float
    event: str
    detail: str = ""
    user_id: str | None = None
    client_id: str | None = None
    ip: str | None = None


class Store(Protocol):
    async def get_or_create_secret(self, name: str, make: Callable[[], str], now: float) -> str: ...

    # Directory, used by the admin CLI and the sign-in page.
    async def create_org(self, org: Organisation) -> None: ...
    async def get_org_by_name(self, name: str) -> Organisation | None: ...
    async def list_orgs(self) -> list[Organisation]: ...
    async def delete_org(self, org_id: str) -> bool: ...
    async def create_user(self, user: User) -> None: ...
    async def get_user(self, user_id: str) -> User | None: ...
    async def get_user_by_email(self, email: str) -> User | None: ...
    async def list_users(self) -> list[User]: ...
    async def delete_user(self, user_id: str) -> bool: ...
    async def create_client(self, client: Client) -> None: ...
    async def get_client(self, client_id: str) -> Client | None: ...
    async def list_clients(self) -> list[Client]: ...
    async def delete_client(self, client_id: str) -> bool: ...

    # Device grants (both dialects).
    async def create_grant(self, grant: DeviceGrant) -> None: ...
    async def find_grant(self, *, code_hash: str | None = None, user_code_hash: str | None = None) -> DeviceGrant | None: ...
    async def decide_grant(self, code_hash: str, *, approve: bool, user_id: str, org_id: str, now: float) -> bool: ...
    async def poll_grant(
        self, kind: str, code_hash: str, client_id: str, *, jti: str, now: float,
        first_refresh_token: Callable[[], NewRefreshToken],
    ) -> DeviceGrant | None: ...

    # Refresh tokens.
    async def rotate_refresh_token(
        self, token_hash: str, client_id: str, now: float, *, successor: NewRefreshToken, scope: str | None = None
    ) -> RefreshToken | None: ...
    async def find_refresh_token(self, token_hash: str) -> RefreshToken | None: ...
    async def revoke_family(self, family_id: str, user_id: str | None = None) -> int: ...
    async def get_account(self, user_id: str, session_id: str) -> Account | None: ...
    async def list_paired_devices(self, user_id: str, now: float) -> list[PairedDevice]: ...

    # Audit log.
    async def record(self, event: AuditEvent) -> None: ...
    async def list_events(self, limit: int) -> list[AuditEvent]: ...
