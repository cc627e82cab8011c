"""SQLAlchemy Core tables. Times are UNIX seconds (double precision) so that expiry and
interval arithmetic inside one UPDATE is the same SQL on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

organisations = Table(
    "organisations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("org_id", String(36), ForeignKey("organisations.id", ondelete="RESTRICT"), nullable=False, index=True),
    Column("created_at", Float, nullable=False),
)

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(64)),  # NULL for public clients
    Column("scope", Text, nullable=False),  # space-separated scopes the client may ask for
    Column("grant_types", Text, nullable=False),  # space-separated
    Column("created_at", Float, nullable=False),
)

# One row per pairing (ezeep) or device authorization (RFC 8628): both dialects share
# the state machine pending -> approved | denied -> redeemed, with expiry by time.
device_grants = Table(
    "device_grants",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # "pairing" or "device"
    Column("user_code_hash", String(64), unique=True),  # RFC 8628 only
    Column("client_id", String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("scope", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("interval", Integer, nullable=False),
    Column("last_polled_at", Float),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True),
    Column("org_id", String(36)),
    Column("decided_at", Float),
    Column("redeemed_at", Float),
    # Set by the last accepted poll (so a poller knows it was not slowed down) and, on
    # redemption, by the winner: the jti of the access token the grant was redeemed for.
    Column("token_jti", String(36)),
    Column("requester_ip", String(64), nullable=False),
    Column("requester_agent", String(300), nullable=False),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    # A family is every token rotated from one grant; reuse of a spent token revokes it.
    Column("family_id", String(36), nullable=False, index=True),
    Column("client_id", String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("org_id", String(36), nullable=False),
    Column("scope", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),
    Column("revoked", Boolean, nullable=False, default=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),
    Column("event", String(64), nullable=False),
    Column("user_id", String(36)),
    Column("client_id", String(64)),
    Column("ip", String(64)),
    Column("detail", Text, nullable=False),  # never secrets: no codes, tokens or passwords
)

Index("ix_device_grants_expires_at", device_grants.c.expires_at)
