"""The device side against a real `pairflow serve`: polling, refresh across processes, logout."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from pairflow.client import Authorized, Credentials, Denied, DeviceClient, FileStore, Session, remember
from tests.conftest import LiveServer, start_server, stop_server

EMAIL = "dev@example.com"


@pytest.fixture
def server(tmp_path: Path, database_url: str | None) -> LiveServer:
    """A real server whose devices may poll every second, with a user and a client."""
    live = start_server(tmp_path / "data", database_url, extra=("--poll-interval", "1", "--code-ttl", "60"))  # a stuck test ends within a minute
    live.pairflow("admin", "org", "create", "Acme")
    live.pairflow("admin", "user", "create", "--email", EMAIL, "--org", "Acme", "--password-stdin", input="long-password\n")
    yield live
    stop_server(live)


def new_client(server: LiveServer) -> Credentials:
    made = json.loads(server.pairflow("admin", "client", "create", "--name", "Printer", "--json").stdout)
    return Credentials(made["client_id"], made["client_secret"])


def approve_soon(server: LiveServer, code: str, after: float) -> threading.Thread:
    """Approve the code with the admin CLI after ``after`` seconds, while the device polls."""
    def run() -> None:
        time.sleep(after)
        server.pairflow("admin", "pairing", "approve", code, "--user", EMAIL)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("standard", [False, True], ids=["pairing", "rfc8628"])
def test_library_waits_through_pending_and_gets_tokens(server: LiveServer, standard: bool) -> None:
    credentials = new_client(server)
    with DeviceClient(server.url, credentials, prefer_wait=None) as client:
        pending = client.start("printing", standard=standard)
        assert pending.interval == 1
        code = pending.user_code if standard else pending.code
        approver = approve_soon(server, code, after=2.5)
        outcome = client.wait(pending)
        approver.join()
        assert isinstance(outcome, Authorized), outcome
        me = client.userinfo(outcome.tokens.access_token)
    assert me["email"] == EMAIL


def pair_approved(server: LiveServer, client: DeviceClient, after: float) -> Authorized:
    """Start a pairing, have it approved ``after`` seconds later, and wait for the tokens."""
    pending = client.start("printing")
    approver = approve_soon(server, pending.code, after=after)
    outcome = client.wait(pending)
    approver.join()
    assert isinstance(outcome, Authorized), outcome
    return outcome


def test_library_with_prefer_wait_is_answered_on_approval(server: LiveServer) -> None:
    with DeviceClient(server.url, new_client(server)) as client:
        pair_approved(server, client, after=1.5)


def test_library_reports_denial(server: LiveServer) -> None:
    credentials = new_client(server)
    with DeviceClient(server.url, credentials, prefer_wait=None) as client:
        pending = client.start("printing")
        deny = threading.Thread(target=lambda: (time.sleep(1.5), _deny_through_pages(server, pending.url)), daemon=True)
        deny.start()
        outcome = client.wait(pending)
        deny.join()
    assert isinstance(outcome, Denied), outcome


def _deny_through_pages(server: LiveServer, auth_url: str) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=False) as browser:
        page = browser.get(auth_url.removeprefix(server.url))
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        nxt = re.search(r'name="next" value="([^"]*)"', page.text).group(1).replace("&amp;", "&")
        signed = browser.post("/auth/signin/", data={"csrf": csrf, "next": nxt, "email": EMAIL, "password": "long-password"})
        assert signed.status_code == 303, signed.text
        confirm = browser.get(signed.headers["location"])
        csrf = re.search(r'name="csrf" value="([^"]+)"', confirm.text).group(1)
        code = re.search(r'name="pairing_code" value="([^"]+)"', confirm.text).group(1)
        denied = browser.post("/oauth/authorize/pairing/", data={"csrf": csrf, "pairing_code": code, "decision": "deny"})
        assert denied.status_code == 200 and "denied" in denied.text, denied.text


def logged_in(server: LiveServer, home: Path) -> tuple[FileStore, Credentials, str]:
    """A stored login whose access token has already expired; returns the refresh token."""
    credentials = new_client(server)
    with DeviceClient(server.url, credentials) as client:
        outcome = pair_approved(server, client, after=0.5)
        store = FileStore(home)
        expired = replace(outcome.tokens, expires_at=time.time() - 10)
        remember(store, client.info, credentials, expired, account={"email": EMAIL})
    return store, credentials, outcome.tokens.refresh_token


def test_token_processes_refresh_once_against_the_real_server(server: LiveServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    store, credentials, old_refresh = logged_in(server, home)
    env = {**os.environ, "PAIRFLOW_HOME": str(home), "PAIRFLOW_TOKEN_STORE": "file"}
    processes = [subprocess.Popen([sys.executable, "-m", "pairflow", "token"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=60) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    tokens = {out.strip() for out, _ in outputs}
    assert len(tokens) == 1, "every process ends with the same fresh token"
    entry = store.load(server.url, credentials.client_id)
    assert entry is not None and entry.tokens.refresh_token != old_refresh
    fresh = tokens.pop()
    assert httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    # The original refresh token is spent; replaying it signs the device out (reuse detection).
    spent = httpx.post(f"{server.url}/oauth/access_token", auth=(credentials.client_id, credentials.client_secret),
                       data={"grant_type": "refresh_token", "refresh_token": old_refresh})
    assert spent.json()["error"] == "invalid_grant"
    assert httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 401


def test_session_refreshes_on_expiry_and_logout_revokes(server: LiveServer, tmp_path: Path) -> None:
    store, credentials, old_refresh = logged_in(server, tmp_path / "home")
    old_access = store.load(server.url, credentials.client_id).tokens.access_token
    session = Session(store, server.url, credentials.client_id)
    fresh = session.token()
    # The stored token had expired: the session refreshed (a new pair) instead of handing out the old one.
    assert fresh != old_access
    refresh_token = store.load(server.url, credentials.client_id).tokens.refresh_token
    assert refresh_token != old_refresh
    assert httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {fresh}"}).json()["email"] == EMAIL
    assert session.logout() is None  # the server was told
    assert store.load(server.url, credentials.client_id) is None
    revoked = httpx.post(f"{server.url}/oauth/access_token", auth=(credentials.client_id, credentials.client_secret),
                         data={"grant_type": "refresh_token", "refresh_token": refresh_token})
    assert revoked.json()["error"] == "invalid_grant"


def test_public_clients_use_the_standard_flow_by_themselves(server: LiveServer) -> None:
    made = json.loads(server.pairflow("admin", "client", "create", "--name", "Kiosk", "--public", "--json").stdout)
    with DeviceClient(server.url, Credentials(made["client_id"])) as client:
        pending = client.start("printing")  # the server offers pairing, but pairing needs a secret
    assert pending.user_code and pending.url.startswith(f"{server.url}/device?user_code=")


@pytest.mark.parametrize(("args", "message"), [
    (["--client-id", ""], "--client-id"),
    (["--client-id", "x", "--server", "not a url"], "not an http(s) URL"),
])
def test_login_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    env = {**os.environ, "PAIRFLOW_HOME": str(tmp_path), "PAIRFLOW_TOKEN_STORE": "file"}
    result = subprocess.run([sys.executable, "-m", "pairflow", "login", "--no-browser", *args], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and message in result.stderr
