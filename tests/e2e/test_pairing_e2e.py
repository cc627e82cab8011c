"""The ezeep pairing flow end to end: `pairflow login` as a real process against a real
`pairflow serve`, the person's side in real Chromium, then the stored tokens put to use."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.conftest import (
    Directory,
    LineReader,
    approve,
    check_api_me,
    check_claims,
    check_confirmation,
    device_cli,
    screenshot,
    seed,
    sign_in,
    verify_access_token,
)

pytestmark = pytest.mark.browser

CLIENT_NAME, CLIENT_SCOPE = "Office printer", "printing scanning"
EXIT_DENIED = 3  # `pairflow login --help`: "3  the sign-in was denied"


@pytest.fixture
def directory(live_server: LiveServer) -> Directory:
    return seed(live_server, {"printer": (CLIENT_NAME, CLIENT_SCOPE, False)})


@pytest.fixture
def login(live_server: LiveServer, directory: Directory, device_env: dict[str, str]) -> Iterator[Any]:
    """`pairflow login ... --no-browser` running; yields (process, stderr reader, the URL it printed)."""
    client = directory.clients["printer"]
    process = subprocess.Popen(
        [sys.executable, "-m", "pairflow", "login", "--server", live_server.url, "--client-id", client["client_id"],
         "--client-secret", client["client_secret"], "--no-browser"],
        env=device_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    errors = LineReader(process.stderr)
    try:
        url = errors.next_matching(lambda line: re.fullmatch(r"https?://\S+", line.strip()) is not None, 20,
                                   "the sign-in URL on a line by itself").strip()
        yield process, errors, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(5)


def check_auth_url(url: str, server: LiveServer) -> None:
    """ezeep's shape: the sign-in page, told to continue to the pairing confirmation."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == server.url and parts.path == "/auth/signin/"
    query = parse_qs(parts.query)
    assert query["device"] == ["generic"]
    target = urlsplit(query["next"][0])
    assert target.path == "/oauth/authorize/pairing/" and re.fullmatch(r"[A-Za-z0-9]{12}", parse_qs(target.query)["pairing_code"][0])


def stored_entry(device_env: dict[str, str]) -> dict[str, Any]:
    path = Path(device_env["PAIRFLOW_HOME"]) / "tokens.json"
    assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    stored = json.loads(path.read_text())
    assert len(stored["entries"]) == 1, stored
    return stored["entries"][0]


def basic(client: dict[str, Any]) -> dict[str, str]:
    raw = f"{client['client_id']}:{client['client_secret']}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def test_login_approve_then_use_and_refresh(page: Any, live_server: LiveServer, directory: Directory,
                                            device_env: dict[str, str], login: Any) -> None:
    process, errors, url = login
    client = directory.clients["printer"]
    check_auth_url(url, live_server)

    page.goto(url)
    sign_in(page, directory, shot="signin")
    page.wait_for_url("**/oauth/authorize/pairing/?pairing_code=*")
    check_confirmation(page, CLIENT_NAME, CLIENT_SCOPE.split(), shot="pairing-confirm")
    expect(page.locator("main")).to_contain_text(directory.email)
    expect(page.locator("p.code")).to_have_count(0)  # the pairing code is a secret: never shown
    approve(page, shot="success")

    assert process.wait(30) == 0, errors.join()
    done = process.stdout.read()
    assert f"Signed in to {live_server.url} as {directory.email} ({directory.org_name})." in done, done

    # The stored access token, as `pairflow token` hands it out.
    printed = device_cli(device_env, "token")
    assert printed.returncode == 0, printed.stderr
    access_token = printed.stdout.strip()
    claims = verify_access_token(live_server.url, access_token)
    check_claims(claims, issuer=live_server.url, directory=directory, client_id=client["client_id"], scope=CLIENT_SCOPE)
    check_api_me(live_server.url, access_token, directory, client["client_id"], CLIENT_SCOPE)

    status = device_cli(device_env, "status", "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert (shown["server"], shown["client_id"], shown["account"]) == (live_server.url, client["client_id"], directory.email)
    assert shown["organisation"] == directory.org_name and shown["scope"] == CLIENT_SCOPE and shown["can_refresh"] is True
    assert shown["store"]["backend"] == "file"

    # The refresh token from the store works exactly once.
    entry = stored_entry(device_env)
    assert entry["access_token"] == access_token and entry["client_id"] == client["client_id"]
    refresh_token = entry["refresh_token"]
    token_endpoint = f"{live_server.url}/oauth/access_token"
    refreshed = httpx.post(token_endpoint, headers=basic(client), data={"grant_type": "refresh_token", "refresh_token": refresh_token}, timeout=5)
    assert refreshed.status_code == 200, refreshed.text
    fresh = refreshed.json()
    assert fresh["refresh_token"] != refresh_token and fresh["scope"] == CLIENT_SCOPE
    fresh_claims = verify_access_token(live_server.url, fresh["access_token"])
    check_claims(fresh_claims, issuer=live_server.url, directory=directory, client_id=client["client_id"], scope=CLIENT_SCOPE)
    assert fresh_claims["jti"] != claims["jti"]
    check_api_me(live_server.url, fresh["access_token"], directory, client["client_id"], CLIENT_SCOPE)

    reused = httpx.post(token_endpoint, headers=basic(client), data={"grant_type": "refresh_token", "refresh_token": refresh_token}, timeout=5)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant", reused.text


def test_login_denied(page: Any, live_server: LiveServer, directory: Directory, device_env: dict[str, str], login: Any) -> None:
    help_text = device_cli(device_env, "login", "--help").stdout
    assert re.search(rf"^\s*{EXIT_DENIED}\s+the sign-in was denied", help_text, re.M), help_text

    process, errors, url = login
    page.goto(url)
    sign_in(page, directory)
    check_confirmation(page, CLIENT_NAME, CLIENT_SCOPE.split())
    page.get_by_role("button", name="Deny").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Request denied")
    expect(page.locator("main")).to_contain_text("The device was not signed in")
    screenshot(page, "denied")

    assert process.wait(30) == EXIT_DENIED, errors.join()
    assert "denied" in errors.join().lower()
    assert not (Path(device_env["PAIRFLOW_HOME"]) / "tokens.json").exists() or json.loads(
        (Path(device_env["PAIRFLOW_HOME"]) / "tokens.json").read_text())["entries"] == []
    not_signed_in = device_cli(device_env, "token")
    assert not_signed_in.returncode == 8 and not_signed_in.stdout == "", not_signed_in
