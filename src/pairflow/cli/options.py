"""Options shared by the server-side commands, each with its PAIRFLOW_* variable."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pairflow.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


def database_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A database URL pairflow can use, or a usage error that says which ones it can."""
    if not value:
        return None
    example = "sqlite:////path/to/pairflow.db or postgresql+asyncpg://user:password@host:5432/pairflow"
    try:
        driver = make_url(value).drivername
    except ArgumentError:
        raise click.BadParameter(f"'{value}' is not a database URL; use {example}.") from None
    if driver == "postgresql+asyncpg" or driver.startswith("sqlite"):
        return value
    if driver.startswith("postgres"):
        raise click.BadParameter(f"PostgreSQL is reached through asyncpg: write postgresql+asyncpg:// instead of {driver}://.")
    raise click.BadParameter(f"pairflow runs on SQLite or PostgreSQL, not {driver}; use {example}.")


def database_options(command: F) -> F:
    """``--data-dir`` and ``--database``: the same database for ``serve`` and ``admin``."""
    command = click.option(
        "--database",
        envvar="PAIRFLOW_DATABASE_URL",
        metavar="URL",
        callback=database_url,
        help="SQLAlchemy URL, e.g. postgresql+asyncpg://host/db. Default: a SQLite file in the data directory. [env: PAIRFLOW_DATABASE_URL]",
    )(command)
    command = click.option(
        "--data-dir",
        envvar="PAIRFLOW_DATA_DIR",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(".pairflow"),
        show_default=True,
        help="Directory for the embedded SQLite database. [env: PAIRFLOW_DATA_DIR]",
    )(command)
    return command


def settings(data_dir: Path, database: str | None, issuer: str | None = None) -> Settings:
    return Settings(data_dir=data_dir, database_url=database or None, issuer=issuer or Settings.issuer)


def run(coroutine: Awaitable[Any]) -> Any:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def emit(as_json: bool, data: Any, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text)


def fail(message: str, code: int = 1) -> None:
    click.secho(f"Error: {message}", fg="red", err=True)
    sys.exit(code)


json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


def async_command(function: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return run(function(*args, **kwargs))

    return wrapper


def store_command(function: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """An admin command: ``--data-dir``/``--database``, ``--json``, run on the event loop."""
    return database_options(json_option(async_command(function)))
