"""``pairflow serve`` and ``pairflow demo``."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import click
import uvicorn

from pairflow import accounts
from pairflow.assembly import keyed_hasher, open_store, prepare_store
from pairflow.cli.options import F, database_options, fail, run
from pairflow.config import Settings
from pairflow.store import StoreUnavailable
from pairflow.store.migrate import SchemaOutdated


def server_options(command: F) -> F:
    command = click.option("--redis", envvar="PAIRFLOW_REDIS_URL", metavar="URL",
                           help="Redis URL (redis://host:6379/0) to wake held token requests across processes. [env: PAIRFLOW_REDIS_URL]")(command)
    command = click.option("--poll-interval", envvar="PAIRFLOW_POLL_INTERVAL", type=click.IntRange(1, 60), default=5, show_default=True,
                           help="Seconds devices must wait between polls (RFC 8628 interval). [env: PAIRFLOW_POLL_INTERVAL]")(command)
    command = click.option("--code-ttl", envvar="PAIRFLOW_CODE_TTL", type=click.IntRange(30, 86400), default=600, show_default=True,
                           help="Seconds a pairing or device code stays valid. [env: PAIRFLOW_CODE_TTL]")(command)
    command = click.option("--issuer", envvar="PAIRFLOW_ISSUER", metavar="URL",
                           help="Public base URL of this server, used in tokens and links. Default: http://HOST:PORT. [env: PAIRFLOW_ISSUER]")(command)
    command = click.option("--port", envvar="PAIRFLOW_PORT", type=click.IntRange(1, 65535), default=8000, show_default=True, help="[env: PAIRFLOW_PORT]")(command)
    command = click.option("--host", envvar="PAIRFLOW_HOST", default="127.0.0.1", show_default=True, help="[env: PAIRFLOW_HOST]")(command)
    return database_options(command)


def server_settings(
    host: str, port: int, issuer: str | None, data_dir: Path, database: str | None,
    redis: str | None, poll_interval: int, code_ttl: int,
) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database or None,
        redis_url=redis or None,
        issuer=issuer or f"http://{host}:{port}",
        poll_interval=poll_interval,
        code_ttl=code_ttl,
    )


async def _check_schema(config: Settings) -> None:
    store = open_store(config)
    try:
        await prepare_store(store, config)
    finally:
        await store.close()


def _start(config: Settings, host: str, port: int, workers: int = 1) -> None:
    """Check the database, then run uvicorn; worker processes read their settings from the environment."""
    try:
        run(_check_schema(config))
    except SchemaOutdated as exc:
        fail(str(exc))
    except (StoreUnavailable, OSError) as exc:
        fail(f"cannot reach the database: {exc}")
    os.environ.update(
        PAIRFLOW_DATA_DIR=str(config.data_dir),
        PAIRFLOW_ISSUER=config.issuer_url,
        PAIRFLOW_CODE_TTL=str(config.code_ttl),
        PAIRFLOW_POLL_INTERVAL=str(config.poll_interval),
    )
    for name, value in (("PAIRFLOW_DATABASE_URL", config.database_url), ("PAIRFLOW_REDIS_URL", config.redis_url)):
        if value:
            os.environ[name] = value
    click.echo(f"pairflow serving {config.issuer_url} (database: {_redacted(config.resolved_database_url)})", err=True)
    uvicorn.run(
        "pairflow.web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # URLs carry pairing codes; never log them
        log_level="warning",
        server_header=False,
    )


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


@click.command()
@server_options
@click.option("--workers", envvar="PAIRFLOW_WORKERS", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes sharing the port. [env: PAIRFLOW_WORKERS]")
def serve(workers: int, **options: Any) -> None:
    """Run the authorization server (pairing, device flow, token, browser pages).

    The database schema is created on first start; the embedded SQLite database also
    upgrades itself, while a shared database needs `pairflow db upgrade` after an upgrade.
    """
    _start(server_settings(**options), options["host"], options["port"], workers)


def _invocation() -> str:
    """How this pairflow was run, so the printed command works when pasted (e.g. .venv/bin/pairflow)."""
    program = sys.argv[0]
    if program.endswith("__main__.py"):
        return f"{os.path.relpath(sys.executable)} -m pairflow"
    found = shutil.which("pairflow")
    if found and os.path.samefile(found, program):
        return "pairflow"
    relative = os.path.relpath(program)
    return program if relative.startswith("..") else relative


DEMO_ORG, DEMO_EMAIL, DEMO_CLIENT = "Demo Org", "demo@example.com", "Demo device"


async def _create_demo(config: Settings) -> dict[str, str]:
    store = open_store(config)
    try:
        await prepare_store(store, config)
        now = time.time()
        password = secrets.token_urlsafe(12)
        await accounts.create_org(store, DEMO_ORG, now)
        await accounts.create_user(store, DEMO_EMAIL, password, DEMO_ORG, now)
        made = await accounts.create_client(store, await keyed_hasher(store), DEMO_CLIENT, "printing", now)
    finally:
        await store.close()
    assert made.secret is not None
    return {"email": DEMO_EMAIL, "password": password, "client_id": made.client.client_id, "client_secret": made.secret}


@click.command()
@server_options
def demo(**options: Any) -> None:
    """Create a demo organisation, user and client, print them, and start the server.

    Run it again with the same --data-dir and it reuses the same demo credentials.
    """
    config = server_settings(**options)
    saved = config.data_dir / "demo.json"
    if saved.exists():
        credentials = json.loads(saved.read_text())
    else:
        try:
            credentials = run(_create_demo(config))
        except accounts.AccountError as exc:
            fail(f"{exc} This data directory already has data; use an empty one, e.g. --data-dir ./demo-data.")
        except (StoreUnavailable, OSError, SchemaOutdated) as exc:
            fail(str(exc))
        saved.touch(mode=0o600)
        saved.write_text(json.dumps(credentials, indent=2))
    url = config.issuer_url
    click.echo(
        f"""
pairflow demo
  server:         {url}
  sign in as:     {credentials['email']}
  password:       {credentials['password']}
  client_id:      {credentials['client_id']}
  client_secret:  {credentials['client_secret']}

In a second terminal, pair a device:

  {_invocation()} login --server {url} --client-id {credentials['client_id']} --client-secret {credentials['client_secret']}

then open the printed link, sign in with the e-mail and password above, and approve.
Press Ctrl-C to stop the server.
"""
    )
    _start(config, options["host"], options["port"])
