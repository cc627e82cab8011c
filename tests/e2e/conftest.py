"""End-to-end fixtures: real Chromium (Debian's, driven by Playwright), real `pairflow serve`
processes, directory seeding through the admin CLI, the device CLI's environment, the
openid-client Node project, and independent checks of issued tokens.

Nothing here downloads a browser: Chromium comes from the system (``PAIRFLOW_CHROMIUM`` or
/usr/bin/chromium). Set ``PAIRFLOW_E2E_SCREENSHOTS=/some/dir`` to save PNGs of every page the
tests pass through, for looking at them.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.conftest import (
    PG_ADMIN_URL,
    LiveServer,
    create_pg_database,
    start_server,
    stop_server,
    unavailable,
)

CHROMIUM = os.environ.get("PAIRFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
JS_DIR = Path(__file__).with_name("js")
SCREENSHOTS = os.environ.get("PAIRFLOW_E2E_SCREENSHOTS")
PASSWORD = "correct horse battery staple"
SHARED_POLL_INTERVAL = 1  # seconds; the third-party clients must honour what the server says, not assume 5


# Browser


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Chromium for the e2e package only: Playwright's sync API keeps an asyncio loop running in the
    main thread while it is open, which would break the async tests that run after this package."""
    if not Path(CHROMIUM).exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (no cookies) and one tab; fails fast instead of waiting 30 s."""
    context = browser.new_context(viewport={"width": 1100, "height": 800}, locale="en-GB")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


def screenshot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


# Servers and their directory


@dataclass
class Directory:
    """What the admin CLI created: one organisation, one user and some clients."""

    org_id: str
    org_name: str
    user_id: str
    email: str
    password: str
    clients: dict[str, dict[str, Any]]  # by a short label: the `client create --json` output


def admin_json(server: LiveServer, *args: str, input: str | None = None) -> Any:
    done = server.pairflow("admin", *args, "--json", input=input, check=False)
    assert done.returncode == 0, f"pairflow admin {' '.join(args)} failed: {done.stderr}"
    return json.loads(done.stdout)


def seed(server: LiveServer, clients: dict[str, tuple[str, str, bool]]) -> Directory:
    """Create an organisation, a user and clients (label -> (name, scope, public)) through the admin CLI.

    The clients are created while the organisation and user are: each command is a process.
    """
    def make_clients() -> dict[str, Any]:
        return {label: admin_json(server, "client", "create", "--name", name, "--scope", scope, *(["--public"] if public else []))
                for label, (name, scope, public) in clients.items()}

    with ThreadPoolExecutor(1) as pool:
        made = pool.submit(make_clients)
        org = admin_json(server, "org", "create", "Acme Printing")
        user = admin_json(server, "user", "create", "--email", "alice@example.com", "--org", "Acme Printing",
                          "--password-stdin", input=PASSWORD + "\n")
        made_clients = made.result()
    assert user["org_id"] == org["id"]
    return Directory(org["id"], org["name"], user["id"], user["email"], PASSWORD, made_clients)


@pytest.fixture(scope="module")
def shared_server(db_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One `pairflow serve` for a whole module (fresh database), for tests that only add their own grants.

    It asks devices to poll every second instead of five, which keeps the module fast.
    """
    database_url, drop = create_pg_database(PG_ADMIN_URL) if db_kind == "postgres" else (None, None)
    server = start_server(tmp_path_factory.mktemp("shared") / "data", database_url,
                          extra=("--poll-interval", str(SHARED_POLL_INTERVAL)))
    yield server
    stop_server(server)
    if drop:
        drop()


# The device CLI


@pytest.fixture
def device_env(tmp_path: Path) -> dict[str, str]:
    """Environment for `pairflow login/token/status`: a private home, the file token store, no browser."""
    home = tmp_path / "device"
    for sub in ("pairflow", "config", "home"):
        (home / sub).mkdir(parents=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PAIRFLOW_")}
    env.update({
        "PAIRFLOW_HOME": str(home / "pairflow"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "HOME": str(home / "home"),
        "PAIRFLOW_TOKEN_STORE": "file",
        "BROWSER": "true",  # belt and braces next to --no-browser: never start a desktop browser
        "PYTHONUNBUFFERED": "1",
    })
    return env


def device_cli(env: dict[str, str], *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pairflow", *args], env=env, text=True, capture_output=True, timeout=timeout)


# openid-client (npm)


@pytest.fixture(scope="session")
def node_project() -> Path:
    """tests/e2e/js with its pinned packages installed (`npm ci`, only when node_modules is missing)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        unavailable("Node.js and npm are needed for the openid-client tests (apt-get install nodejs npm)")
    if not (JS_DIR / "node_modules" / "openid-client" / "package.json").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=JS_DIR, check=True, timeout=300)
    return JS_DIR


# Token checks, independent of the server's own JOSE library


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64url_int(part: str) -> int:
    return int.from_bytes(b64url_decode(part), "big")


def verify_access_token(server_url: str, token: str) -> dict[str, Any]:
    """Check an access token's RS256 signature against the server's JWKS by hand; return its claims."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    assert header["alg"] == "RS256" and header.get("typ") == "JWT", header
    metadata = httpx.get(f"{server_url}/.well-known/oauth-authorization-server", timeout=5).json()
    assert metadata["jwks_uri"] == f"{server_url}/.well-known/jwks.json"
    jwks = httpx.get(metadata["jwks_uri"], timeout=5).json()
    keys = [k for k in jwks["keys"] if k.get("kid") == header["kid"]]
    assert len(keys) == 1, f"kid {header['kid']!r} is not in the JWKS {jwks}"
    jwk = keys[0]
    assert jwk["kty"] == "RSA" and jwk.get("use", "sig") == "sig" and jwk.get("alg", "RS256") == "RS256", jwk
    assert "d" not in jwk and "p" not in jwk, "the JWKS publishes private key material"
    public_key = rsa.RSAPublicNumbers(b64url_int(jwk["e"]), b64url_int(jwk["n"])).public_key()
    public_key.verify(b64url_decode(signature_b64), f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return json.loads(b64url_decode(payload_b64))


def check_claims(claims: dict[str, Any], *, issuer: str, directory: Directory, client_id: str, scope: str,
                 ttl: int = 3600) -> None:
    now = time.time()
    assert claims["iss"] == issuer
    assert isinstance(claims["iat"], int) and now - 120 <= claims["iat"] <= now + 5
    assert claims["exp"] == claims["iat"] + ttl
    assert claims["sub"] == directory.user_id
    assert claims["org"] == directory.org_id
    assert claims["pty"] == "dev"
    assert claims["client_id"] == client_id
    assert claims["scope"] == scope and claims["scopes"] == scope
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16


def check_api_me(server_url: str, access_token: str, directory: Directory, client_id: str, scope: str) -> None:
    me = httpx.get(f"{server_url}/api/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=5)
    assert me.status_code == 200, me.text
    assert me.json() == {
        "id": directory.user_id,
        "email": directory.email,
        "organisation": {"id": directory.org_id, "name": directory.org_name},
        "scope": scope,
        "client_id": client_id,
    }
    tampered = access_token[:-4] + ("AAAA" if not access_token.endswith("AAAA") else "BBBB")
    rejected = httpx.get(f"{server_url}/api/me", headers={"Authorization": f"Bearer {tampered}"}, timeout=5)
    assert rejected.status_code == 401, rejected.text


# The browser side of a login


def sign_in(page: Any, directory: Directory, shot: str | None = None) -> None:
    """On the sign-in page: fill the form and submit."""
    page.wait_for_url("**/auth/signin/**")
    assert page.title().startswith("Sign in")
    if shot:
        screenshot(page, shot)
    page.fill("input[name=email]", directory.email)
    page.fill("input[name=password]", directory.password)
    page.get_by_role("button", name="Sign in").click()


def check_confirmation(page: Any, client_name: str, scopes: list[str], user_code: str | None = None,
                       shot: str | None = None) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Connect {client_name}?")
    expect(page.locator("main")).to_contain_text(f"{client_name} is asking to sign in to your account")
    expect(page.locator("ul.scopes li")).to_have_text(scopes)
    if user_code is not None:
        expect(page.locator("p.code")).to_have_text(user_code)
    expect(page.get_by_role("button", name="Approve")).to_be_visible()
    expect(page.get_by_role("button", name="Deny")).to_be_visible()
    if shot:
        screenshot(page, shot)


def approve(page: Any, shot: str | None = None) -> None:
    from playwright.sync_api import expect

    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Login Successful")
    assert page.title().startswith("Login Successful")
    if shot:
        screenshot(page, shot)


class LineReader:
    """Collects a subprocess stream's lines on a thread, so a test can wait for one with a timeout."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def next_matching(self, predicate: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"the stream ended before {what}; it said:\n{self.text()}")
            if predicate(line):
                return line
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; so far:\n{self.text()}")

    def text(self) -> str:
        return "".join(self.lines)

    def join(self, timeout: float = 5) -> str:
        """All the text, once the stream has closed (the process exited)."""
        self._thread.join(timeout)
        return self.text()
