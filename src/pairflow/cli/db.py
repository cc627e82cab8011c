"""``pairflow db``: schema migrations."""

from __future__ import annotations

from pathlib import Path

import click
from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError

from pairflow.assembly import open_store
from pairflow.cli.options import async_command, database_options, fail, settings
from pairflow.store.migrate import current_revision, head_revision, upgrade


@click.group()
def db() -> None:
    """Database schema: show the revision, upgrade."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@database_options
@async_command
async def db_upgrade(revision: str, data_dir: Path, database: str | None) -> None:
    """Apply every pending migration (safe to run again; needed once per release on a shared database)."""
    store = open_store(settings(data_dir, database))
    try:
        before = await current_revision(store)
        await upgrade(store, revision)
        after = await current_revision(store)
    except CommandError as exc:
        fail(f"{exc}. `pairflow db current` shows the revisions.")
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot reach the database: {exc}")
    finally:
        await store.close()
    click.echo(f"Schema at revision {after} (was {before or 'empty'}).")


@db.command("current")
@database_options
@async_command
async def db_current(data_dir: Path, database: str | None) -> None:
    """Print the database's schema revision and the code's."""
    store = open_store(settings(data_dir, database))
    try:
        current = await current_revision(store)
    finally:
        await store.close()
    click.echo(f"database: {current or 'empty'}\ncode:     {head_revision()}")
