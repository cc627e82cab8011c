"""The browser pages: sign-in, CSRF, confirmation, code problems, security headers, lockout."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from pairflow import accounts
from tests.conftest import App
from tests.server.helpers import (
    DEVICE,
    PAIRING,
    Dialect,
    assert_oauth_error,
    browse,
    client_with_address,
    csrf_of,
    decide_on,
    local,
    open_confirmation,
    poll,
    refresh,
    sign_in,
    sign_in_and_approve,
    start,
)

EVIL_TARGETS = ["//evil.com", "///evil.com", "https://evil.com", "/\\evil.com", "http:evil.com", "/\t/evil.com", "\\\\evil.com", "//evil.com/devices", "evil.com"]


def assert_html(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("text/html")


async def is_signed_in(app: App, http: httpx.AsyncClient | None = None) -> bool:
    """True if this browser has a session: /devices shows the list instead of redirecting to sign-in."""
    response = await (http or app.http).get("/devices")
    return response.status_code == 200


# Sign-in and its redirect target


async def test_sign_in_next_only_goes_to_local_paths(app: App) -> None:
    for number, target in enumerate(EVIL_TARGETS):
        async with client_with_address(app, f"198.51.100.{number + 1}") as browser:  # a fresh browser each
            page = await browser.get("/auth/signin/", params={"next": target})
            assert_html(page, 200)
            assert 'name="next" value="/devices"' in page.text, target
            signed = await browser.post(
                "/auth/signin/", data={"csrf": csrf_of(page), "next": target, "email": app.seed.email, "password": app.seed.password}
            )
            assert signed.status_code == 303
            assert signed.headers["location"] == "/devices", target
            again = await browser.get("/auth/signin/", params={"next": target})  # already signed in: straight on
            assert again.status_code == 303 and again.headers["location"] == "/devices", target


async def test_sign_in_next_keeps_local_paths_with_their_query(app: App) -> None:
    target = "/oauth/authorize/pairing/?pairing_code=abcDEF123"
    signed = await sign_in(app, next=target)
    assert signed.status_code == 303 and signed.headers["location"] == target


async def test_wrong_password_shows_the_sign_in_page_with_an_error(app: App) -> None:
    response = await sign_in(app, password="wrong password")
    assert_html(response, 401)
    assert "Wrong e-mail address or password" in response.text
    assert not await is_signed_in(app)
    unknown = await sign_in(app, email="nobody@example.com")
    assert_html(unknown, 401)
    assert "Wrong e-mail address or password" in unknown.text


async def test_five_wrong_passwords_lock_sign_in(app: App) -> None:
    for _ in range(5):
        assert (await sign_in(app, password="not the password")).status_code == 401
    locked = await sign_in(app)  # even the right password
    assert_html(locked, 429)
    assert "Too many attempts" in locked.text
    assert not await is_signed_in(app)


async def test_session_cookie_is_httponly_and_samesite_lax(app: App) -> None:
    page = await app.http.get("/auth/signin/")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("pairflow_session=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes


async def test_sign_in_starts_a_new_session(app: App) -> None:
    page = await app.http.get("/auth/signin/")
    before = csrf_of(page)
    await app.http.post("/auth/signin/", data={"csrf": before, "next": "/devices", "email": app.seed.email, "password": app.seed.password})
    after = csrf_of(await app.http.get("/devices"))
    assert after != before  # no session fixation: the pre-sign-in session is not carried over


# CSRF


async def test_sign_in_without_valid_csrf_is_refused(app: App) -> None:
    await app.http.get("/auth/signin/")
    for csrf in (None, "", "forged-token"):
        data = {"next": "/devices", "email": app.seed.email, "password": app.seed.password} | ({"csrf": csrf} if csrf is not None else {})
        response = await app.http.post("/auth/signin/", data=data)
        assert_html(response, 403)
        assert not await is_signed_in(app)


async def test_decision_without_valid_csrf_changes_nothing(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    confirm = await open_confirmation(app, dialect.browser_url(started))
    assert_html(confirm, 200)
    field, value = re.search(r'name="(pairing_code|user_code)" value="([^"]+)"', confirm.text).groups()
    action = re.search(r'<form method="post" action="([^"]+)" class="decision">', confirm.text).group(1)
    async with client_with_address(app, "198.51.100.77") as stranger:
        other_session = csrf_of(await stranger.get("/auth/signin/"))
    for csrf in (None, "", "forged-token", other_session):
        form = {field: value, "decision": "approve"} | ({"csrf": csrf} if csrf is not None else {})
        assert_html(await app.http.post(action, data=form), 403)
        assert_oauth_error(await poll(app, dialect, dialect.code_of(started)), 400, "authorization_pending")
        app.clock.advance(5)
    # The genuine form still works afterwards.
    assert (await decide_on(app.http, confirm, "approve")).status_code == 200


async def test_unpair_without_valid_csrf_changes_nothing(app: App) -> None:
    tokens = (await poll_after_approval(app, DEVICE)).json()
    devices = await app.http.get("/devices")
    family = re.search(r'name="family_id" value="([^"]+)"', devices.text).group(1)
    for form in ({"family_id": family}, {"family_id": family, "csrf": "forged"}):
        assert_html(await app.http.post("/devices", data=form), 403)
    refreshed = await refresh(app, tokens["refresh_token"])
    assert refreshed.status_code == 200
    # With the token, unpairing works and ends the device's session.
    done = await app.http.post("/devices", data={"family_id": family, "csrf": csrf_of(devices)})
    assert done.status_code == 303
    assert_oauth_error(await refresh(app, refreshed.json()["refresh_token"]), 400, "invalid_grant")


async def test_sign_out_without_valid_csrf_keeps_the_session(app: App) -> None:
    await sign_in(app)
    assert_html(await app.http.post("/auth/signout/", data={"csrf": "forged"}), 403)
    assert await is_signed_in(app)
    signed_out = await app.http.post("/auth/signout/", data={"csrf": csrf_of(await app.http.get("/devices"))})
    assert signed_out.status_code == 303
    assert not await is_signed_in(app)


async def poll_after_approval(app: App, dialect: Dialect) -> httpx.Response:
    started = await start(app, dialect)
    await sign_in_and_approve(app, dialect.browser_url(started))
    response = await poll(app, dialect, dialect.code_of(started))
    assert response.status_code == 200, response.text
    return response


# Confirmation


async def test_approval_binds_the_signed_in_user(app: App, dialect: Dialect) -> None:
    bob = await accounts.create_user(app.runtime.store, "bob@example.com", "bobs password 1", "Acme", time.time())
    started = await start(app, dialect)
    confirm = await open_confirmation(app, dialect.browser_url(started), email="bob@example.com", password="bobs password 1")
    assert "bob@example.com" in confirm.text
    assert (await decide_on(app.http, confirm, "approve")).status_code == 200
    token = (await poll(app, dialect, dialect.code_of(started))).json()["access_token"]
    keys = KeySet.import_key_set((await app.http.get("/.well-known/jwks.json")).json())
    claims = jwt.decode(token, keys).claims
    assert claims["sub"] == bob.id != app.seed.user_id
    assert claims["org"] == bob.org_id


async def test_confirmation_page_shows_who_asks_for_what_from_where(app: App, dialect: Dialect) -> None:
    agent = "PrinterOS/4.2 <b>firmware</b>"
    response = await app.http.post(dialect.start_path, headers={**app.seed.basic(), "User-Agent": agent}, data={"scope": "printing scanning"})
    started = response.json()
    requested_at = datetime.fromtimestamp(app.clock(), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    app.clock.advance(30)
    confirm = await open_confirmation(app, dialect.browser_url(started))
    assert_html(confirm, 200)
    text = confirm.text
    assert "Office printer" in text
    assert "<li>printing</li>" in text and "<li>scanning</li>" in text
    assert requested_at in text
    assert "203.0.113.7" in text
    assert "PrinterOS/4.2 &lt;b&gt;firmware&lt;/b&gt;" in text  # shown, and escaped
    assert "<b>firmware</b>" not in text
    assert 'value="approve"' in text and 'value="deny"' in text


CODE_PROBLEMS = [
    ("unknown", 404, "Code not found"),
    ("expired", 410, "Code expired"),
    ("redeemed", 410, "Already used"),
    ("denied", 410, "Request denied"),
    ("approved", 410, "Already approved"),
]


async def test_pairing_link_with_a_problem_code_gives_a_clear_page(app: App) -> None:
    for problem, status, title in CODE_PROBLEMS:
        started = await start(app, PAIRING)
        code = started["pairing_code"]
        if problem == "unknown":
            code = "NoSuchCode99"
        elif problem == "expired":
            app.clock.advance(601)
        elif problem in ("redeemed", "approved"):
            await sign_in_and_approve(app, started["auth_url"])
            if problem == "redeemed":
                assert (await poll(app, PAIRING, code)).status_code == 200
        elif problem == "denied":
            await sign_in_and_approve(app, started["auth_url"], decision="deny")
        page = await open_confirmation(app, f"/oauth/authorize/pairing/?pairing_code={code}")  # signs in if needed
        assert_html(page, status)
        assert title in page.text, problem
        assert 'name="decision"' not in page.text


async def test_deciding_twice_gives_a_clear_page(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    confirm = await open_confirmation(app, dialect.browser_url(started))
    assert (await decide_on(app.http, confirm, "deny")).status_code == 200
    second = await decide_on(app.http, confirm, "approve")
    assert_html(second, 409)
    assert "denied" in second.text
    assert_oauth_error(await poll(app, dialect, dialect.code_of(started)), 400, "access_denied")


async def test_decision_needs_a_signed_in_user(app: App, dialect: Dialect) -> None:
    started = await start(app, dialect)
    confirm = await open_confirmation(app, dialect.browser_url(started))
    csrf = csrf_of(confirm)
    await app.http.post("/auth/signout/", data={"csrf": csrf})
    fresh_csrf = csrf_of(await app.http.get("/auth/signin/"))
    field, value = re.search(r'name="(pairing_code|user_code)" value="([^"]+)"', confirm.text).groups()
    action = re.search(r'<form method="post" action="([^"]+)" class="decision">', confirm.text).group(1)
    response = await app.http.post(action, data={"csrf": fresh_csrf, field: value, "decision": "approve"})
    assert response.status_code == 303 and response.headers["location"].startswith("/auth/signin/")
    assert_oauth_error(await poll(app, dialect, dialect.code_of(started)), 400, "authorization_pending")


# Headers on every page


async def every_page(app: App) -> list[httpx.Response]:
    pages = [await app.http.get("/auth/signin/"), await app.http.get("/device"), await app.http.get("/device", params={"user_code": "BBBB-BBBB"})]
    pages.append(await app.http.get("/no-such-page"))
    pages.append(await app.http.get("/oauth/authorize/pairing/", params={"pairing_code": "x"}))  # redirect to sign-in
    started = await start(app, PAIRING)
    confirm = await open_confirmation(app, started["auth_url"])
    pages += [confirm, await app.http.get("/devices"), await app.http.get("/oauth/authorize/pairing/", params={"pairing_code": "nope"})]
    pages.append(await decide_on(app.http, confirm, "approve"))
    pages.append(await app.http.get("/static/style.css"))
    return pages


async def test_security_headers_on_every_page(app: App) -> None:
    for page in await every_page(app):
        where = f"{page.request.method} {page.request.url.path} -> {page.status_code}"
        headers = page.headers
        assert "frame-ancestors 'none'" in headers.get("content-security-policy", ""), where
        assert "default-src 'none'" in headers["content-security-policy"], where
        assert headers.get("x-frame-options") == "DENY", where
        assert headers.get("x-content-type-options") == "nosniff", where
        assert headers.get("referrer-policy") == "no-referrer", where


async def test_security_headers_on_machine_answers_too(app: App) -> None:
    answers = [
        await app.http.post("/oauth/pair", headers=app.seed.basic(), data={"mode": "device"}),
        await app.http.post("/oauth/access_token", data={"grant_type": "pairing_code", "pairing_code": "x"}),
        await app.http.get("/.well-known/jwks.json"),
        await app.http.get("/oauth/nothing"),
    ]
    for answer in answers:
        where = f"{answer.request.url.path} -> {answer.status_code}"
        assert answer.headers.get("x-content-type-options") == "nosniff", where
        assert answer.headers.get("x-frame-options") == "DENY", where
        assert len(answer.headers.get_list("cache-control")) == 1, where  # exactly one, never a second no-store
    assert answers[0].headers["cache-control"] == "no-store" and answers[0].headers["pragma"] == "no-cache"
    assert answers[2].headers["cache-control"] == "public, max-age=300"


async def test_html_pages_are_not_cached(app: App) -> None:
    html_pages = [page for page in await every_page(app) if page.headers.get("content-type", "").startswith("text/html")]
    # sign-in, code entry, wrong code, 404, confirmation, devices, code not found, success (the 303 has no body)
    assert len(html_pages) == 8, [(p.request.url.path, p.status_code) for p in html_pages]
    for page in html_pages:
        assert page.headers.get("cache-control") == "no-store", page.request.url


async def test_page_errors_are_html_not_500(app: App) -> None:
    await sign_in(app)
    for path, params in [
        ("/oauth/authorize/pairing/", {}),
        ("/oauth/authorize/pairing/", {"pairing_code": "\u0000"}),
        ("/oauth/authorize/pairing/", {"pairing_code": "x" * 5000}),
        ("/device", {"user_code": "\u2603" * 100}),
        ("/device", {"user_code": ""}),
    ]:
        response = await app.http.get(path, params=params)
        assert 400 <= response.status_code < 500, (path, params, response.status_code)
        assert response.headers["content-type"].startswith("text/html")
    csrf = csrf_of(await app.http.get("/devices"))
    for path, data, status in [
        ("/oauth/authorize/pairing/", {}, 403),  # no CSRF token
        ("/oauth/authorize/pairing/", {"csrf": csrf}, 400),  # no decision
        ("/device", {"csrf": csrf, "user_code": "zzz", "decision": "approve"}, 409),  # not a code
        ("/devices", {"csrf": csrf, "family_id": "x"}, 404),  # not a paired device
    ]:
        response = await app.http.post(path, data=data)
        assert response.status_code == status, (path, data, response.status_code)
        assert response.headers["content-type"].startswith("text/html")


async def test_devices_page_lists_paired_devices(app: App) -> None:
    await poll_after_approval(app, PAIRING)
    page = await browse(app.http, local("http://testserver/devices"))
    assert_html(page, 200)
    assert "Office printer" in page.text
