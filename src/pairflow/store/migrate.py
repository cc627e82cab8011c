"""Schema migrations with Alembic, run in-process on the store's own engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from pairflow.store.sql import SqlStore

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaOutdated(Exception):
    """The database's schema is older than this code."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(store: SqlStore) -> str | None:
    return await store.run(lambda conn: MigrationContext.configure(conn).get_current_revision())


async def upgrade(store: SqlStore, revision: str = "head") -> None:
    await store.run(lambda conn: command.upgrade(_config(conn), revision))


async def prepare(store: SqlStore, *, auto_upgrade: bool) -> None:
    """Bring the schema up to date at start, or refuse to run on an outdated one.

    An empty database is always initialised. An older schema is upgraded only when
    ``auto_upgrade`` is set (the embedded SQLite default); a shared database must be
    upgraded on purpose, once, with ``pairflow db upgrade``.
    """
    current = await current_revision(store)
    head = head_revision()
    if current == head:
        return
    if current is None or auto_upgrade:
        await upgrade(store)
        return
    raise SchemaOutdated(
        f"The database schema is at revision {current}, older than this pairflow ({head}). "
        "Run `pairflow db upgrade` (with the same --database) once, then start the server again."
    )
