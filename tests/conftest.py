"""Shared fixtures: a fresh database per test (SQLite file, or PostgreSQL when selected),
the app in-process with an injectable clock, and real `pairflow serve` processes.

Select the database with ``--db=sqlite|postgres`` or ``PAIRFLOW_TEST_DB``. PostgreSQL tests
use ``PAIRFLOW_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``) as the
admin connection and create a fresh database per test.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

import httpx
import pytest

from pairflow import accounts
from pairflow.assembly import keyed_hasher
from pairflow.config import Settings
from pairflow.web.app import create_app
from pairflow.web.runtime import Runtime

PG_ADMIN_URL = os.environ.get("PAIRFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "correct horse battery"
T = TypeVar("T")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", default=os.environ.get("PAIRFLOW_TEST_DB", "sqlite"), choices=["sqlite", "postgres"],
                     help="database to run the suite against")


def run_async(coroutine_function: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code, on its own thread.

    A thread, because Playwright's sync API keeps an event loop running in the main thread
    during the browser tests, and ``asyncio.run`` refuses to start inside one.
    """
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_function())).result()


def _pg_available() -> bool:
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
        await conn.close()

    try:
        run_async(probe)
        return True
    except Exception:
        return False


def unavailable(message: str) -> NoReturn:
    """A service or tool a test needs is missing: a failure in CI, a skip on a developer machine."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must have it)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def db_kind(request: pytest.FixtureRequest) -> str:
    kind = request.config.getoption("--db")
    if kind == "postgres" and not _pg_available():
        unavailable(f"PostgreSQL is not reachable at {PG_ADMIN_URL}; start it or run with --db=sqlite")
    return kind


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """For tests that need PostgreSQL whatever --db says."""
    if not _pg_available():
        unavailable(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    return PG_ADMIN_URL


def create_pg_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    """A fresh, empty PostgreSQL database; returns its asyncpg URL and a function that drops it."""
    import asyncpg

    name = f"pairflow_test_{uuid.uuid4().hex[:12]}"

    def run(sql: str) -> None:
        async def execute() -> None:
            conn = await asyncpg.connect(admin_url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        run_async(execute)

    run(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)

    def drop() -> None:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{base}/{name}", drop


@pytest.fixture
def database_url(db_kind: str, tmp_path: Path) -> Iterator[str | None]:
    """None means the embedded SQLite default in the test's data directory."""
    if db_kind == "sqlite":
        yield None
        return
    url, drop = create_pg_database(PG_ADMIN_URL)
    yield url
    drop()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, issuer="http://testserver")


class FakeClock:
    """Wall-clock time that tests move by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Seed:
    client_id: str
    client_secret: str
    other_client_id: str
    other_client_secret: str
    public_client_id: str
    email: str
    password: str
    user_id: str
    org_id: str

    def basic(self, client_id: str | None = None, secret: str | None = None) -> dict[str, str]:
        raw = f"{client_id or self.client_id}:{secret or self.client_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@dataclass
class App:
    http: httpx.AsyncClient
    runtime: Runtime
    clock: FakeClock
    seed: Seed


async def seed_directory(runtime: Runtime) -> Seed:
    store, now = runtime.store, time.time()
    hasher = await keyed_hasher(store)
    org = await accounts.create_org(store, "Acme", now)
    user = await accounts.create_user(store, "alice@example.com", PASSWORD, "Acme", now)
    printer = await accounts.create_client(store, hasher, "Office printer", "printing scanning", now)
    other = await accounts.create_client(store, hasher, "Other device", "printing", now)
    public = await accounts.create_client(store, hasher, "Kiosk", "printing", now, public=True)
    assert printer.secret and other.secret
    return Seed(printer.client.client_id, printer.secret, other.client.client_id, other.secret,
                public.client.client_id, user.email, PASSWORD, user.id, org.id)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    """The whole ASGI app in-process (lifespan included), a fake clock and a seeded directory."""
    application = create_app(settings)
    runtime: Runtime = application.runtime
    async with application.app.router.lifespan_context(application.app):
        clock = FakeClock()
        runtime.server.clock = clock
        seed = await seed_directory(runtime)
        transport = httpx.ASGITransport(app=application, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield App(http, runtime, clock, seed)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def pairflow(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a `pairflow` command against this server's database."""
        return subprocess.run([sys.executable, "-m", "pairflow", *args], env=self.env, input=input, text=True,
                              capture_output=True, check=check, timeout=60)


def start_server(data_dir: Path, database_url: str | None, port: int | None = None, extra: tuple[str, ...] = ()) -> LiveServer:
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PAIRFLOW_DATA_DIR": str(data_dir), "PAIRFLOW_ISSUER": url}
    if database_url:
        env["PAIRFLOW_DATABASE_URL"] = database_url
    log = data_dir.parent / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([sys.executable, "-m", "pairflow", "serve", "--port", str(port), *extra],
                               env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pairflow serve exited: {log.read_text()}")
        try:
            # Our process must still be alive: another server may have taken the port meanwhile.
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200 and process.poll() is None:
                return LiveServer(url, env, process, log)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"pairflow serve did not start: {log.read_text()}")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture
def live_server(tmp_path: Path, database_url: str | None) -> Iterator[LiveServer]:
    """A real `pairflow serve` process on a free loopback port, with a fresh database."""
    server = start_server(tmp_path / "data", database_url)
    yield server
    stop_server(server)
