"""A scripted OAuth server on loopback, a fake clock, and an isolated token store for client tests.

The scripted server plays any server, including a misbehaving one: each path answers from a queue of
replies (the last one repeats), and every request is recorded for assertions.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from pairflow.client import Credentials, FileStore, ServerInfo, Tokens, remember


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    at: float  # the fake clock's time when the server saw it (real time if no clock is attached)


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless ``raw`` is set
    raw: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # real seconds before answering
    drop: bool = False  # close the connection without answering


def ok(body: Any, **headers: str) -> Reply:
    return Reply(200, body, headers=headers)


def error(code: str, status: int = 400, **extra: Any) -> Reply:
    return Reply(status, {"error": code, "error_description": f"scripted {code}", **extra})


def pending() -> Reply:
    return error("authorization_pending")


def html(status: int, **headers: str) -> Reply:
    return Reply(status, raw="<html><body><h1>Bad Gateway</h1></body></html>", headers=headers)


def dropped() -> Reply:
    return Reply(drop=True)


def token_body(access: str = "access-1", refresh: str = "refresh-1", expires_in: int = 3600) -> dict[str, Any]:
    return {"access_token": access, "token_type": "Bearer", "expires_in": expires_in, "scope": "printing", "refresh_token": refresh}


Script = Reply | Callable[[Recorded], Reply]


class ScriptedServer:
    def __init__(self, port: int = 0, clock: FakeClock | None = None) -> None:
        self.routes: dict[str, list[Script]] = {}
        self.requests: list[Recorded] = []
        self.clock = clock
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._httpd.server_port

    def script(self, path: str, *replies: Script) -> None:
        self.routes[path] = list(replies)

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            queue = self.routes.get(request.path)
            if not queue:
                return Reply(404, {"error": "not_found"})
            script = queue.pop(0) if len(queue) > 1 else queue[0]
        return script(request) if callable(script) else script

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode())) if length else {}
                at = server.clock.now if server.clock else time.time()
                recorded = Recorded(self.command, self.path.split("?")[0], {k.lower(): v for k, v in self.headers.items()}, form, at)
                reply = server._next(recorded)
                time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = (reply.raw if reply.raw is not None else json.dumps(reply.body)).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/html" if reply.raw is not None else "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

        return Handler


class FakeClock:
    """Wall-clock seconds that only move when the code under test sleeps (or a test advances them)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> Iterator[ScriptedServer]:
    scripted = ScriptedServer(clock=clock)
    yield scripted
    scripted.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated token home, file-backed, as in CI."""
    directory = tmp_path / "pairflow-home"
    monkeypatch.setenv("PAIRFLOW_HOME", str(directory))
    monkeypatch.setenv("PAIRFLOW_TOKEN_STORE", "file")
    for name in ("PAIRFLOW_SERVER", "PAIRFLOW_CLIENT_ID", "PAIRFLOW_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return directory


@pytest.fixture
def store(home: Path) -> FileStore:
    return FileStore(home)


CREDENTIALS = Credentials("device app", "s3cret:+/")  # characters that RFC 6749 2.3.1 form-encoding changes


def seed(store: FileStore, server: ScriptedServer, *, expires_at: float, refresh: str = "refresh-0", access: str = "access-0") -> None:
    """Store a login against ``server`` as if `pairflow login` had run."""
    info = ServerInfo(
        server=server.url,
        token_endpoint=f"{server.url}/oauth/access_token",
        revocation_endpoint=f"{server.url}/oauth/revoke",
        userinfo_endpoint=f"{server.url}/api/me",
        discovered=True,
    )
    tokens = Tokens(access, "Bearer", expires_at, refresh, "printing")
    remember(store, info, CREDENTIALS, tokens, {"email": "ada@example.com", "organisation": {"id": "o1", "name": "Acme"}})
