"""`pairflow db upgrade` from an empty database and from every earlier revision, and what
`pairflow serve` does with a schema older than the code (SQLite: upgrades; PostgreSQL: refuses)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory

from pairflow.store.migrate import _config, head_revision
from tests.conftest import create_pg_database, free_port, start_server, stop_server
from tests.ops.support import query, resolved_url

HEAD = head_revision()
EARLIER = [rev.revision for rev in ScriptDirectory.from_config(_config()).walk_revisions() if rev.revision != HEAD]


def pairflow(data_dir: Path, database_url: str | None, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAIRFLOW_DATA_DIR": str(data_dir)}
    env.pop("PAIRFLOW_DATABASE_URL", None)
    if database_url:
        env["PAIRFLOW_DATABASE_URL"] = database_url
    done = subprocess.run([sys.executable, "-m", "pairflow", *args], env=env, text=True, capture_output=True, timeout=60)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def current(data_dir: Path, database_url: str | None) -> str:
    out = pairflow(data_dir, database_url, "db", "current").stdout
    lines = dict(line.split(":", 1) for line in out.strip().splitlines())
    assert lines["code"].strip() == HEAD
    return lines["database"].strip()


def tables(url: str) -> set[str]:
    if url.startswith("sqlite"):
        rows = asyncio.run(query(url, "SELECT name FROM sqlite_master WHERE type = 'table'"))
    else:
        rows = asyncio.run(query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    return {name for (name,) in rows}


def test_earlier_revisions_exist() -> None:
    # Otherwise the parametrised upgrade paths below would silently shrink to nothing.
    assert EARLIER and HEAD not in EARLIER and "0001" in EARLIER


@pytest.mark.parametrize("start", [None, *EARLIER], ids=lambda r: f"from-{r or 'empty'}")
def test_db_upgrade_to_head(tmp_path: Path, database_url: str | None, start: str | None) -> None:
    data_dir = tmp_path / "data"
    url = resolved_url(data_dir, database_url)
    if database_url is None:
        data_dir.mkdir()
    assert current(data_dir, database_url) == "empty"
    if start is not None:
        done = pairflow(data_dir, database_url, "db", "upgrade", "--revision", start)
        assert f"Schema at revision {start} (was empty)" in done.stdout
        assert current(data_dir, database_url) == start
        assert "audit_events" not in tables(url) and "device_grants" in tables(url)
    done = pairflow(data_dir, database_url, "db", "upgrade")
    assert f"Schema at revision {HEAD} (was {start or 'empty'})" in done.stdout
    assert current(data_dir, database_url) == HEAD
    assert {"audit_events", "device_grants", "refresh_tokens", "users", "clients"} <= tables(url)
    # Running it again is harmless.
    again = pairflow(data_dir, database_url, "db", "upgrade")
    assert f"Schema at revision {HEAD} (was {HEAD})" in again.stdout


def test_serve_refuses_outdated_postgres_schema_until_upgraded(tmp_path: Path, postgres_admin_url: str) -> None:
    url, drop = create_pg_database(postgres_admin_url)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    try:
        pairflow(data_dir, url, "db", "upgrade", "--revision", EARLIER[-1])
        port = free_port()
        env = {**os.environ, "PAIRFLOW_DATA_DIR": str(data_dir), "PAIRFLOW_DATABASE_URL": url}
        refused = subprocess.run([sys.executable, "-m", "pairflow", "serve", "--port", str(port)], env=env,
                                 text=True, capture_output=True, timeout=60)
        assert refused.returncode != 0
        assert "pairflow db upgrade" in refused.stderr and EARLIER[-1] in refused.stderr, refused.stderr
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        assert current(data_dir, url) == EARLIER[-1]  # refused, and left the schema alone

        pairflow(data_dir, url, "db", "upgrade")
        server = start_server(data_dir, url, port=port)
        try:
            assert httpx.get(f"{server.url}/healthz", timeout=5).json() == {"status": "ok"}
        finally:
            stop_server(server)
    finally:
        drop()


def test_serve_upgrades_embedded_sqlite_by_itself(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    pairflow(data_dir, None, "db", "upgrade", "--revision", EARLIER[-1])
    server = start_server(data_dir, None)
    try:
        assert current(data_dir, None) == HEAD
    finally:
        stop_server(server)
