"""RFC 8628's verification page, /device: code format, normalisation, one generic error, lockout."""

from __future__ import annotations

import re

import httpx

from tests.conftest import App
from tests.server.helpers import (
    DEVICE,
    assert_oauth_error,
    client_with_address,
    csrf_of,
    decide_on,
    open_confirmation,
    poll,
    sign_in,
    sign_in_and_approve,
    start,
)

ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE = re.compile(rf"[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}")
WRONG_CODE = "That code is not valid. Check the code shown on your device and try again."
ERROR = re.compile(r'<p class="error" role="alert">([^<]*)</p>')


def error_of(page: httpx.Response) -> str | None:
    match = ERROR.search(page.text)
    return match.group(1) if match else None


async def enter(http: httpx.AsyncClient, typed: str) -> httpx.Response:
    return await http.get("/device", params={"user_code": typed})


async def test_user_codes_are_eight_letters_without_vowels_shown_in_two_halves(app: App) -> None:
    codes = [(await start(app, DEVICE))["user_code"] for _ in range(30)]
    for code in codes:
        assert USER_CODE.fullmatch(code), code
    assert len(set(codes)) == len(codes)
    assert len(set("".join(codes).replace("-", ""))) > 12  # the whole alphabet is in use


async def test_code_entry_form(app: App) -> None:
    page = await app.http.get("/device")
    assert page.status_code == 200
    assert 'name="user_code"' in page.text and 'action="/device"' in page.text
    assert error_of(page) is None


VARIANTS = {
    "as-shown": lambda c: c,
    "lower": lambda c: c.lower(),
    "no-dash": lambda c: c.replace("-", ""),
    "space": lambda c: c.replace("-", " "),
    "padded": lambda c: f"  {c.lower()}  ",
    "en-dash": lambda c: c.replace("-", "\u2013"),
    "em-dash": lambda c: c.replace("-", "\u2014"),
    "hyphen": lambda c: c.replace("-", "\u2010"),
    "minus": lambda c: c.replace("-", "\u2212"),
    "spaced-letters": lambda c: " ".join(c.replace("-", "").lower()),
    "extra-dashes": lambda c: c[:2] + "-" + c[2:].replace("-", " - "),
}


async def test_typed_codes_are_normalised(app: App) -> None:
    await sign_in(app)
    for name, variant in VARIANTS.items():
        code = (await start(app, DEVICE))["user_code"]
        page = await enter(app.http, variant(code))
        assert page.status_code == 200, (name, page.text)
        assert f'<p class="code">{code}</p>' in page.text, name  # the confirmation page, with the code to compare


async def test_wrong_codes_all_get_one_generic_message(app: App) -> None:
    await sign_in(app)
    expired = await start(app, DEVICE)
    app.clock.advance(601)
    used = await start(app, DEVICE)
    await sign_in_and_approve(app, used["verification_uri_complete"])
    assert (await poll(app, DEVICE, used["device_code"])).status_code == 200
    denied = await start(app, DEVICE)
    await sign_in_and_approve(app, denied["verification_uri_complete"], decision="deny")
    typed = {"unknown": "BBBB-BBBB", "expired": expired["user_code"], "used": used["user_code"], "denied": denied["user_code"], "malformed": "hello"}
    messages = {}
    for kind, code in typed.items():
        page = await enter(app.http, code)
        assert page.status_code == 400, (kind, page.status_code)
        assert page.headers["content-type"].startswith("text/html")
        assert 'name="decision"' not in page.text
        messages[kind] = error_of(page)
    assert set(messages.values()) == {WRONG_CODE}, messages


async def test_five_wrong_codes_lock_the_session_even_for_a_valid_code(app: App) -> None:
    valid = (await start(app, DEVICE))["user_code"]
    await app.http.get("/device")  # the session exists from the first view
    for i in range(5):  # from five addresses: only the session links them
        async with client_with_address(app, f"198.51.100.{i + 1}", cookies=app.http.cookies) as browser:
            assert (await enter(browser, "BBBB-BBBB")).status_code == 400
    async with client_with_address(app, "198.51.100.50", cookies=app.http.cookies) as browser:
        locked = await enter(browser, valid)
        assert locked.status_code == 429
        assert "Too many wrong codes" in locked.text
    async with client_with_address(app, "198.51.100.51") as stranger:  # another session, another address
        assert (await enter(stranger, valid)).status_code == 303


async def test_five_wrong_codes_lock_the_address_even_for_a_valid_code(app: App) -> None:
    valid = (await start(app, DEVICE))["user_code"]
    for _ in range(5):  # five fresh sessions from one address
        async with client_with_address(app, "192.0.2.66") as browser:
            assert (await enter(browser, "CCCC-CCCC")).status_code == 400
    async with client_with_address(app, "192.0.2.66") as browser:
        locked = await enter(browser, valid)
        assert locked.status_code == 429
        assert "Too many wrong codes" in locked.text
    async with client_with_address(app, "192.0.2.67") as elsewhere:
        assert (await enter(elsewhere, valid)).status_code == 303


async def test_four_wrong_codes_do_not_lock(app: App) -> None:
    valid = (await start(app, DEVICE))["user_code"]
    for _ in range(4):
        assert (await enter(app.http, "DDDD-DDDD")).status_code == 400
    assert (await enter(app.http, valid)).status_code == 303


async def test_wrong_codes_posted_to_the_decision_form_count_towards_the_lock(app: App) -> None:
    """The form's POST must not be a way around the lock: guessing there is as limited."""
    victim = await start(app, DEVICE)
    await sign_in(app)
    csrf = csrf_of(await app.http.get("/device"))
    for guess in ("BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD", "FFFF-FFFF", "GGGG-GGGG"):
        response = await app.http.post("/device", data={"csrf": csrf, "user_code": guess, "decision": "approve"})
        assert response.status_code == 409 and "Code not found" in response.text, (guess, response.status_code)
    hit = await app.http.post("/device", data={"csrf": csrf, "user_code": victim["user_code"], "decision": "approve"})
    assert hit.status_code == 429
    assert_oauth_error(await poll(app, DEVICE, victim["device_code"]), 400, "authorization_pending")
    assert (await enter(app.http, victim["user_code"])).status_code == 429


async def test_verification_uri_complete_leads_through_sign_in_to_the_confirmation(app: App) -> None:
    started = await start(app, DEVICE)
    first = await app.http.get(started["verification_uri_complete"].removeprefix("http://testserver"))
    assert first.status_code == 303
    assert first.headers["location"].startswith("/auth/signin/?next=")
    confirm = await open_confirmation(app, started["verification_uri_complete"])
    assert confirm.status_code == 200
    assert f'<p class="code">{started["user_code"]}</p>' in confirm.text
    assert "Check that this code matches" in confirm.text
    assert (await decide_on(app.http, confirm, "approve")).status_code == 200
    assert (await poll(app, DEVICE, started["device_code"])).status_code == 200


async def test_dead_codes_in_verification_uri_complete_open_no_sign_in(app: App) -> None:
    for problem in ("expired", "used", "unknown"):
        started = await start(app, DEVICE)
        url = started["verification_uri_complete"].removeprefix("http://testserver")
        if problem == "expired":
            app.clock.advance(601)
        elif problem == "used":
            async with client_with_address(app, "203.0.113.8") as owner:
                await sign_in_and_approve(app, started["verification_uri_complete"], http=owner)
            assert (await poll(app, DEVICE, started["device_code"])).status_code == 200
        else:
            url = "/device?user_code=BBBB-BBBB"
        page = await app.http.get(url)
        assert page.status_code == 400, problem
        assert "location" not in page.headers
        assert error_of(page) == WRONG_CODE
        assert 'name="password"' not in page.text


async def test_typed_input_is_escaped_when_shown_back(app: App) -> None:
    page = await enter(app.http, '"><script>alert(1)</script>')
    assert page.status_code == 400
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text


async def test_a_device_code_is_not_a_pairing_link(app: App) -> None:
    """The secret device_code is for polling only: it must not open a confirmation page."""
    started = await start(app, DEVICE)
    page = await open_confirmation(app, f"/oauth/authorize/pairing/?pairing_code={started['device_code']}")
    assert page.status_code == 404
    assert 'name="decision"' not in page.text
