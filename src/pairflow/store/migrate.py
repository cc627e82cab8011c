"""Schema migrations with Alembic, run in-process on the store's own engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

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


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(_config(sync), revision))


async def prepare(engine: AsyncEngine, *, auto_upgrade: bool) -> None:
    """Bring the schema up to date at start, or refuse to run on an outdated one.

    An empty database is always initialised. An older schema is upgraded only when
    ``auto_upgrade`` is set (the embedded SQLite default); a shared database must be
    upgraded on purpose, once, with ``pairflow db upgrade``.
    """
    current = await current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None or auto_upgrade:
        await upgrade(engine)
        return
    raise SchemaOutdated(
        f"The database schema is at revision {current}, older than this pairflow ({head}). "
        "Run `pairflow db upgrade` (with the same --database) once, then start the server again."
    )
