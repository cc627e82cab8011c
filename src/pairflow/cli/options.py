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

from pairflow.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


def database_options(command: F) -> F:
    """``--data-dir`` and ``--database``: the same database for ``serve`` and ``admin``."""
    command = click.option(
        "--database",
        envvar="PAIRFLOW_DATABASE_URL",
        metavar="URL",
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
