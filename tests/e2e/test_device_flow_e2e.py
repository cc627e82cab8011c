"""RFC 8628 against a real `pairflow serve`, with third-party clients and real Chromium.

The device side is Authlib's OAuth2Client (Python) or openid-client (npm, in a Node process),
each used only through its public API; the person's side is Chromium approving at
``verification_uri_complete``, or typing the user code at ``/device``.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import authlib.deprecate  # noqa: F401  its import adds an "always" filter, which ours must come after
import pytest
from playwright.sync_api import expect

with warnings.catch_warnings():
    # Authlib 1.9 prefers the `httpx2` package and warns when it falls back to httpx, which it supports.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError

from tests.conftest import LiveServer
from tests.e2e.conftest import (
    SHARED_POLL_INTERVAL,
    Directory,
    LineReader,
    approve,
    check_api_me,
    check_claims,
    check_confirmation,
    screenshot,
    seed,
    sign_in,
    verify_access_token,
)

pytestmark = pytest.mark.browser

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")
CLIENTS = {
    "printer": ("Office printer", "printing scanning", False),
    "kiosk": ("Lobby kiosk", "printing", True),
}


@pytest.fixture(scope="module")
def directory(shared_server: LiveServer) -> Directory:
    return seed(shared_server, CLIENTS)


def metadata(server: LiveServer) -> dict[str, Any]:
    import httpx

    return httpx.get(f"{server.url}/.well-known/oauth-authorization-server", timeout=5).json()


def check_device_authorization(server: LiveServer, started: dict[str, Any]) -> None:
    assert USER_CODE.match(started["user_code"]), started
    assert started["verification_uri"] == f"{server.url}/device"
    assert started["verification_uri_complete"] == f"{server.url}/device?user_code={started['user_code']}"
    assert started["expires_in"] == 600 and started["interval"] == SHARED_POLL_INTERVAL
    assert len(started["device_code"]) >= 32


def approve_at_complete_uri(page: Any, started: dict[str, Any], directory: Directory, client_name: str, scopes: list[str],
                            shots: bool = False) -> None:
    """The person opens verification_uri_complete, signs in, checks the code and approves."""
    page.goto(started["verification_uri_complete"])
    sign_in(page, directory)
    page.wait_for_url("**/device?user_code=*")
    check_confirmation(page, client_name, scopes, user_code=started["user_code"], shot="device-confirm" if shots else None)
    approve(page)


def approve_by_typing(page: Any, server: LiveServer, started: dict[str, Any], directory: Directory, client_name: str,
                      scopes: list[str]) -> None:
    """The person opens verification_uri and types the code in lower case with a typographic dash."""
    page.goto(started["verification_uri"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Connect a device")
    screenshot(page, "device-entry")
    typed = started["user_code"].lower().replace("-", "\u2013")  # "bcdf–ghjk": an en dash, as phones autocorrect
    page.fill("input[name=user_code]", typed)
    page.get_by_role("button", name="Continue").click()
    sign_in(page, directory)
    page.wait_for_url("**/device?user_code=*")
    check_confirmation(page, client_name, scopes, user_code=started["user_code"])
    approve(page)


# Authlib


def authlib_client(directory: Directory, label: str) -> OAuth2Client:
    info = directory.clients[label]
    if info["client_secret"]:
        return OAuth2Client(info["client_id"], info["client_secret"], token_endpoint_auth_method="client_secret_basic", timeout=10)
    return OAuth2Client(info["client_id"], token_endpoint_auth_method="none", timeout=10)


def authlib_poll(client: OAuth2Client, token_endpoint: str, started: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Poll the token endpoint as RFC 8628 section 3.5 says: wait `interval`, add 5 s on slow_down."""
    interval = float(started["interval"])
    deadline = time.monotonic() + started["expires_in"]
    answers: list[str] = []
    while time.monotonic() < deadline:
        try:
            token = client.fetch_token(token_endpoint, grant_type=DEVICE_CODE, device_code=started["device_code"])
        except OAuthError as error:
            answers.append(error.error)
            if error.error == "slow_down":
                interval += 5
            elif error.error != "authorization_pending":
                raise
        else:
            return dict(token), answers
        time.sleep(interval)
    raise AssertionError(f"no token before the code expired; answers: {answers}")


def run_authlib(page: Any, server: LiveServer, directory: Directory, label: str, scope: str, typed: bool) -> None:
    info, about = directory.clients[label], metadata(server)
    with authlib_client(directory, label) as client, ThreadPoolExecutor(1) as pool:
        # The device authorization request through the client's own session, authenticated the client's way.
        response = client.request("POST", about["device_authorization_endpoint"], data={"scope": scope},
                                  withhold_token=True, auth=client.client_auth(client.token_endpoint_auth_method))
        assert response.status_code == 200, response.text
        started = response.json()
        check_device_authorization(server, started)
        polling = pool.submit(authlib_poll, client, about["token_endpoint"], started)

        scopes = scope.split()
        if typed:
            approve_by_typing(page, server, started, directory, info["name"], scopes)
        else:
            approve_at_complete_uri(page, started, directory, info["name"], scopes, shots=True)

        token, answers = polling.result(timeout=30)
        # A client that honours the interval is never told to slow down, and saw the wait at least once.
        assert answers and set(answers) == {"authorization_pending"}, answers
        assert token["token_type"] == "Bearer" and token["scope"] == scope and token["expires_in"] == 3600
        assert token["refresh_token"]
        claims = verify_access_token(server.url, token["access_token"])
        check_claims(claims, issuer=server.url, directory=directory, client_id=info["client_id"], scope=scope)
        check_api_me(server.url, token["access_token"], directory, info["client_id"], scope)

        # The client's session now carries the token itself.
        me = client.get(about["userinfo_endpoint"])
        assert me.status_code == 200 and me.json()["id"] == directory.user_id

        # The device code is single-use.
        with pytest.raises(OAuthError) as reused:
            client.fetch_token(about["token_endpoint"], grant_type=DEVICE_CODE, device_code=started["device_code"])
        assert reused.value.error == "invalid_grant"

        # And Authlib's refresh works against the rotating refresh token.
        refreshed = client.refresh_token(about["token_endpoint"], refresh_token=token["refresh_token"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        verify_access_token(server.url, refreshed["access_token"])


def test_authlib_confidential_client_at_verification_uri_complete(page: Any, shared_server: LiveServer, directory: Directory) -> None:
    run_authlib(page, shared_server, directory, "printer", "printing", typed=False)


def test_authlib_public_client_with_typed_user_code(page: Any, shared_server: LiveServer, directory: Directory) -> None:
    run_authlib(page, shared_server, directory, "kiosk", "printing", typed=True)


# openid-client (npm)


@pytest.fixture
def node_flow(node_project: Any) -> Iterator[Any]:
    """Start `node device_flow.mjs ...`; the process is killed at teardown if a test left it running."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], LineReader]:
        process = subprocess.Popen(["node", str(node_project / "device_flow.mjs"), *args], cwd=node_project, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started.append(process)
        return process, LineReader(process.stdout)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(5)


def node_event(reader: LineReader, event: str, timeout: float) -> dict[str, Any]:
    line = reader.next_matching(lambda text: text.startswith("{"), timeout, f"the {event} event")
    body = json.loads(line)
    assert body["event"] == event, body
    return body


@pytest.mark.parametrize("label", ["printer", "kiosk"], ids=["client_secret_basic", "public"])
def test_openid_client_device_flow(page: Any, shared_server: LiveServer, directory: Directory, node_flow: Any, label: str) -> None:
    info = directory.clients[label]
    scope = "printing scanning" if label == "printer" else "printing"
    secret = [info["client_secret"]] if info["client_secret"] else []
    process, out = node_flow(shared_server.url, info["client_id"], *secret, "--scope", scope)

    started = node_event(out, "device_authorization", 15)
    check_device_authorization(shared_server, started)
    assert started["token_endpoint"] == f"{shared_server.url}/oauth/access_token"
    approve_at_complete_uri(page, started, directory, info["name"], scope.split())

    tokens = node_event(out, "tokens", 30)
    assert process.wait(10) == 0, process.stderr.read()
    assert tokens["token_type"].lower() == "bearer" and tokens["scope"] == scope
    assert 3590 <= tokens["expires_in"] <= 3600 and tokens["refresh_token"]
    claims = verify_access_token(shared_server.url, tokens["access_token"])
    check_claims(claims, issuer=shared_server.url, directory=directory, client_id=info["client_id"], scope=scope)
    check_api_me(shared_server.url, tokens["access_token"], directory, info["client_id"], scope)
