"""Assemble a running server from settings: store, schema, keys and the protocol core."""

from __future__ import annotations

import time

from pairflow.config import Settings
from pairflow.notify import notifier_for
from pairflow.oauth.codes import KeyedHasher, random_string
from pairflow.oauth.jwt import TokenSigner, new_signing_key_pem
from pairflow.oauth.server import AuthorizationServer, ServerConfig
from pairflow.store import Store
from pairflow.store.migrate import prepare
from pairflow.store.sql import SqlStore


def open_store(settings: Settings) -> SqlStore:
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return SqlStore(settings.resolved_database_url)


async def prepare_store(store: SqlStore, settings: Settings) -> None:
    # The embedded SQLite file belongs to this installation alone, so it upgrades itself;
    # a shared database is upgraded on purpose with `pairflow db upgrade`.
    await prepare(store, auto_upgrade=store.dialect == "sqlite")


async def keyed_hasher(store: Store) -> KeyedHasher:
    """The server-wide HMAC key, created once and shared by every process through the store."""
    key = await store.get_or_create_secret("hmac_key", lambda: random_string(64), time.time())
    return KeyedHasher(key.encode())


async def session_secret(store: Store) -> str:
    return await store.get_or_create_secret("session_key", lambda: random_string(64), time.time())


async def build_server(store: Store, settings: Settings) -> AuthorizationServer:
    pem = await store.get_or_create_secret("signing_key", new_signing_key_pem, time.time())
    config = ServerConfig(
        issuer=settings.issuer_url,
        access_token_ttl=settings.access_token_ttl,
        code_ttl=settings.code_ttl,
        poll_interval=settings.poll_interval,
        refresh_token_ttl=settings.refresh_token_ttl,
        max_wait=settings.max_wait,
    )
    notifier = notifier_for(settings.resolved_database_url, settings.redis_url)
    await notifier.start()
    return AuthorizationServer(config, store, await keyed_hasher(store), TokenSigner(pem, config.issuer), notifier)
