"""Shared helpers for the in-process server tests: both dialects, the browser pages, assertions."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.conftest import App

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
DECISION_FORM = re.compile(r'<form method="post" action="([^"]+)" class="decision">')
CODE_FIELD = re.compile(r'name="(pairing_code|user_code)" value="([^"]+)"')
NEXT_FIELD = re.compile(r'name="next" value="([^"]*)"')


@dataclass(frozen=True)
class Dialect:
    """One of the two protocols over the shared device-grant state machine."""

    name: str
    start_path: str
    grant_type: str
    code_param: str

    def code_of(self, started: dict[str, Any]) -> str:
        return started[self.code_param]

    def browser_url(self, started: dict[str, Any]) -> str:
        """Where the person is sent: ezeep's auth_url, or RFC 8628's verification_uri_complete."""
        return started["auth_url"] if self.name == "pairing" else started["verification_uri_complete"]


PAIRING = Dialect("pairing", "/oauth/pair", "pairing_code", "pairing_code")
DEVICE = Dialect("device", "/oauth/device_authorization", DEVICE_GRANT, "device_code")
DIALECTS = [PAIRING, DEVICE]


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def start(app: App, dialect: Dialect, headers: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    response = await app.http.post(dialect.start_path, headers=headers or app.seed.basic(), data=data)
    assert response.status_code == 200, response.text
    return response.json()


async def poll(app: App, dialect: Dialect, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return await app.http.post(
        "/oauth/access_token", headers=headers or app.seed.basic(), data={"grant_type": dialect.grant_type, dialect.code_param: code}
    )


async def refresh(app: App, refresh_token: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return await app.http.post(
        "/oauth/access_token", headers=headers or app.seed.basic(), data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """An RFC 6749 section 5.2 error: status, JSON, no-store, error and a description."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert response.headers.get("cache-control") == "no-store", response.headers
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body.get("error_description"), str) and body["error_description"], body
    return body


def csrf_of(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


def local(url: str) -> str:
    """The path and query of an absolute URL, for the in-process client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def browse(http: httpx.AsyncClient, url: str) -> httpx.Response:
    """GET, following redirects by hand (the client does not follow them)."""
    response = await http.get(local(url))
    for _ in range(5):
        if response.status_code not in (302, 303, 307):
            break
        response = await http.get(response.headers["location"])
    return response


def is_sign_in_form(page: httpx.Response) -> bool:
    return 'action="/auth/signin/"' in page.text and 'name="password"' in page.text


async def sign_in(
    app: App,
    http: httpx.AsyncClient | None = None,
    *,
    next: str = "/devices",
    email: str | None = None,
    password: str | None = None,
) -> httpx.Response:
    """Submit the sign-in form; returns the POST response (303 on success)."""
    http = http or app.http
    page = await http.get("/auth/signin/", params={"next": next})
    return await http.post(
        "/auth/signin/",
        data={"csrf": csrf_of(page), "next": next, "email": email or app.seed.email, "password": password or app.seed.password},
    )


async def open_confirmation(
    app: App, url: str, http: httpx.AsyncClient | None = None, *, email: str | None = None, password: str | None = None
) -> httpx.Response:
    """Open the link given to the person, signing in on the way if asked; returns the page reached."""
    http = http or app.http
    page = await browse(http, url)
    if is_sign_in_form(page):
        next_match = NEXT_FIELD.search(page.text)
        assert next_match, page.text
        credentials = {"email": email or app.seed.email, "password": password or app.seed.password}
        signed = await http.post(
            "/auth/signin/", data={"csrf": csrf_of(page), "next": html.unescape(next_match.group(1)), **credentials}
        )
        assert signed.status_code == 303, signed.text
        page = await browse(http, signed.headers["location"])
    return page


async def decide_on(http: httpx.AsyncClient, confirm: httpx.Response, decision: str) -> httpx.Response:
    assert confirm.status_code == 200, confirm.text
    action = DECISION_FORM.search(confirm.text)
    code = CODE_FIELD.search(confirm.text)
    assert action and code, confirm.text
    field, value = code.groups()
    return await http.post(html.unescape(action.group(1)), data={"csrf": csrf_of(confirm), field: html.unescape(value), "decision": decision})


async def sign_in_and_approve(app: App, url: str, decision: str = "approve", http: httpx.AsyncClient | None = None) -> str:
    """Drive the browser pages with plain HTTP from the link to the decision; returns the final page's HTML."""
    http = http or app.http
    confirm = await open_confirmation(app, url, http)
    done = await decide_on(http, confirm, decision)
    assert done.status_code == 200, done.text
    return done.text


async def approved_tokens(app: App, dialect: Dialect, headers: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    """Start, approve through the pages, redeem: the token response."""
    started = await start(app, dialect, headers, **data)
    html_text = await sign_in_and_approve(app, dialect.browser_url(started))
    assert "Login Successful" in html_text
    response = await poll(app, dialect, dialect.code_of(started), headers)
    assert response.status_code == 200, response.text
    return response.json()


def client_with_address(app: App, ip: str, cookies: httpx.Cookies | None = None) -> httpx.AsyncClient:
    """Another in-process browser, on another IP address (optionally sharing a session cookie)."""
    application = app.http._transport.app  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=application, client=(ip, 50001))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", cookies=cookies)
