"""`pairflow login | token | status | logout` against a scripted server."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import (
    Recorded,
    Reply,
    ScriptedServer,
    error,
    ok,
    pending,
    seed,
    token_body,
)

from pairflow.cli import main
from pairflow.client import FileStore

AUTH_URL = "https://example.test/auth/signin/?next=%2Foauth%2Fauthorize%2Fpairing%2F"
# Header and payload of an unsigned JWT, enough for display: {"sub": "u1", "org": "o9", "scope": "printing"}
JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiAidTEiLCAib3JnIjogIm85IiwgInNjb3BlIjogInByaW50aW5nIn0.sig"


@pytest.fixture
def live_server(home: Path) -> ScriptedServer:
    scripted = ScriptedServer()  # real time: these tests run the CLI as a user would
    yield scripted
    scripted.close()


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def script_login(server: ScriptedServer, *token_replies: Reply, metadata: bool = True) -> None:
    if metadata:
        server.script(
            "/.well-known/oauth-authorization-server",
            ok(
                {
                    "token_endpoint": f"{server.url}/oauth/access_token",
                    "pairing_endpoint": f"{server.url}/oauth/pair",
                    "userinfo_endpoint": f"{server.url}/api/me",
                    "revocation_endpoint": f"{server.url}/oauth/revoke",
                }
            ),
        )
    server.script("/oauth/pair", ok({"pairing_code": "PC", "auth_url": AUTH_URL, "expires_in": 60, "interval": 0.01}))
    server.script("/oauth/access_token", *token_replies)


def login_args(server: ScriptedServer, *extra: str) -> list[str]:
    return ["login", "--server", server.url, "--client-id", "device app", "--client-secret", "s", "--no-browser", *extra]


def test_login_prints_the_url_alone_on_a_line_stores_tokens_and_says_who(live_server: ScriptedServer, home: Path) -> None:
    script_login(live_server, pending(), ok(token_body()))
    live_server.script("/api/me", ok({"email": "ada@example.com", "organisation": {"id": "o1", "name": "Acme"}}))

    result = run(*login_args(live_server, "--scope", "printing", "--qr"))

    assert result.exit_code == 0, result.stderr
    assert AUTH_URL in result.stderr.splitlines()
    assert result.stdout == f"Signed in to {live_server.url} as ada@example.com (Acme).\n"
    assert live_server.calls("/api/me")[0].headers["authorization"] == "Bearer access-1"
    entry = FileStore(home).load(live_server.url, "device app")
    assert entry is not None and entry.tokens.refresh_token == "refresh-1" and entry.client_secret == "s"


def test_login_without_metadata_uses_pairing_and_shows_the_tokens_claims(live_server: ScriptedServer) -> None:
    script_login(live_server, ok({**token_body(), "access_token": JWT}), metadata=False)
    result = run(*login_args(live_server, "--json"))
    assert result.exit_code == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["status"] == "signed_in" and output["account"]["sub"] == "u1" and output["store"] == "file"
    assert live_server.calls("/api/me") == []  # ezeep-style server: no userinfo assumed


def test_standard_flow_shows_the_user_code(live_server: ScriptedServer) -> None:
    live_server.script(
        "/.well-known/oauth-authorization-server",
        ok({"token_endpoint": f"{live_server.url}/oauth/access_token", "device_authorization_endpoint": f"{live_server.url}/device"}),
    )
    complete = "https://v.test/device?user_code=WXYZ-1234"
    live_server.script(
        "/device",
        ok({"device_code": "D", "user_code": "WXYZ-1234", "verification_uri": "https://v.test/device",
            "verification_uri_complete": complete, "expires_in": 60, "interval": 0.01}),
    )
    live_server.script("/oauth/access_token", ok(token_body()))
    result = run(*login_args(live_server))
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert complete in lines and lines.index(complete) < next(i for i, line in enumerate(lines) if "WXYZ-1234" in line and line != complete)


@pytest.mark.parametrize(
    ("reply", "code", "status"),
    [
        (error("access_denied"), 3, "denied"),
        (error("expired_token"), 4, "expired"),
        (error("invalid_client", status=401), 6, "protocol_error"),
        (Reply(drop=True), 7, "answer_lost"),
    ],
)
def test_login_failures_have_distinct_exit_codes(live_server: ScriptedServer, reply: Reply, code: int, status: str) -> None:
    script_login(live_server, reply)
    result = run(*login_args(live_server, "--json"))
    assert result.exit_code == code
    assert json.loads(result.stdout)["status"] == status


def test_unreachable_server_is_a_network_failure(home: Path) -> None:
    dead = ScriptedServer()
    dead.close()
    result = run("login", "--server", dead.url, "--client-id", "x", "--no-browser")
    assert result.exit_code == 5 and "Error:" in result.stderr


def test_token_status_and_logout_use_the_only_stored_login(live_server: ScriptedServer, home: Path) -> None:
    seed(FileStore(home), live_server, expires_at=time.time() + 3600)
    live_server.script("/oauth/revoke", ok({}))

    assert run("token").stdout == "access-0\n"
    status = run("status")
    assert status.exit_code == 0
    assert "ada@example.com" in status.stdout and "Acme" in status.stdout and str(home / "tokens.json") in status.stdout
    assert json.loads(run("status", "--json").stdout)["store"] == {"backend": "file", "location": str(home / "tokens.json")}

    assert run("logout").exit_code == 0
    assert live_server.calls("/oauth/revoke")[0].form == {"token": "refresh-0"}
    assert run("token").exit_code == 8


def test_token_needs_a_choice_when_several_logins_are_stored(live_server: ScriptedServer, home: Path) -> None:
    store = FileStore(home)
    seed(store, live_server, expires_at=time.time() + 3600)
    other = ScriptedServer()
    try:
        seed(store, other, expires_at=time.time() + 3600, access="access-other")
        assert run("token").exit_code == 2
        assert run("token", "--server", other.url + "/").stdout == "access-other\n"
    finally:
        other.close()


def test_concurrent_token_processes_refresh_exactly_once(live_server: ScriptedServer, home: Path) -> None:
    store = FileStore(home)
    seed(store, live_server, expires_at=time.time() - 10)

    def rotate(request: Recorded) -> Reply:
        if request.form.get("refresh_token") != "refresh-0":
            return error("invalid_grant")
        time.sleep(0.3)  # keep the race window open while the others pile up on the lock
        live_server.script("/oauth/access_token", rotate_spent)
        return ok(token_body("access-new", "refresh-new"))

    def rotate_spent(request: Recorded) -> Reply:
        return error("invalid_grant")  # single use: refresh-0 is spent now

    live_server.script("/oauth/access_token", rotate)
    env = {**os.environ, "PAIRFLOW_HOME": str(home), "PAIRFLOW_TOKEN_STORE": "file"}
    command = [sys.executable, "-m", "pairflow", "token", "--server", live_server.url, "--client-id", "device app"]
    problems: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                mode = stat.S_IMODE(store.path.stat().st_mode)
                json.loads(store.path.read_bytes())
            except (OSError, ValueError) as failure:
                problems.append(repr(failure))
            else:
                if mode != 0o600:
                    problems.append(oct(mode))
            time.sleep(0.002)  # leave the GIL to the scripted server's threads

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outputs = [process.communicate(timeout=30) for process in processes]
    finally:
        done.set()
        watcher.join()

    assert [p.returncode for p in processes] == [0] * 4, [err for _, err in outputs]
    assert [out for out, _ in outputs] == ["access-new\n"] * 4
    assert len(live_server.calls("/oauth/access_token")) == 1
    assert problems == []
    entry = store.load(live_server.url, "device app")
    assert entry is not None and entry.tokens.refresh_token == "refresh-new"
