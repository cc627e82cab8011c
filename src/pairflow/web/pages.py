"""The browser pages: sign-in, code entry, confirmation (approve/deny), result, paired devices."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from pairflow import accounts, audit
from pairflow.oauth import device_flow
from pairflow.oauth.codes import format_user_code, normalise_user_code
from pairflow.oauth.request import MAX_BODY_BYTES
from pairflow.store import DeviceGrant, User
from pairflow.web.runtime import runtime_of
from pairflow.web.security import LOCKOUT_SECONDS, csrf_token, csrf_valid

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
templates.env.filters["when"] = lambda ts: datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

CODE_PROBLEMS = {
    "unknown": ("Code not found", "This link or code is not valid. Start again on your device to get a new one."),
    "expired": ("Code expired", "This code has expired. Start again on your device to get a new one."),
    "redeemed": ("Already used", "This code has already been used. Start again on your device to get a new one."),
    "approved": ("Already approved", "This device has already been approved. You can close this window."),
    "denied": ("Request denied", "This request was denied. Start again on your device if that was a mistake."),
}
WRONG_CODE = "That code is not valid. Check the code shown on your device and try again."
LOCKED = "Too many wrong codes. Wait a few minutes, then try again."


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    context.setdefault("user_email", request.session.get("email"))
    return templates.TemplateResponse(request, template, {"csrf": csrf_token(request), **context}, status_code=status_code)


def message(request: Request, title: str, text: str, status_code: int = 200) -> Response:
    return render(request, "message.html", status_code, title=title, text=text)


def locked(response: Response, seconds: int = LOCKOUT_SECONDS) -> Response:
    """A 429 page, telling browsers and scripts when to come back."""
    response.headers["Retry-After"] = str(seconds)
    return response


async def posted_form(request: Request) -> FormData:
    """The posted form, with its CSRF token checked; the same 64 KiB limit as the API, no uploads."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"The form is larger than {MAX_BODY_BYTES // 1024} KiB.")
    form = await request.form(max_files=0, max_fields=20, max_part_size=MAX_BODY_BYTES)
    if not csrf_valid(request, form.get("csrf")):
        raise HTTPException(403, "Your session expired. Go back, reload the page and try again.")
    if any("\x00" in value for value in form.values() if isinstance(value, str)):
        raise HTTPException(400, "The form contains a NUL character; no field may hold one.")
    return form


def safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect to another site."""
    if not target:
        return "/devices"
    # A path must start with one "/": "//host" and "/\\host" are other sites to browsers, which also
    # drop tabs and newlines ("/\t/host"), so no control character is allowed either.
    if not target.startswith("/") or target.startswith("//") or "\\" in target or not target.isprintable():
        return "/devices"
    return target


async def signed_in_user(request: Request) -> User | None:
    user_id = request.session.get("user_id")
    return await runtime_of(request).store.get_user(user_id) if user_id else None


def to_sign_in(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/auth/signin/?{urlencode({'next': target})}", status_code=303)


# Sign-in


async def sign_in(request: Request) -> Response:
    runtime = runtime_of(request)
    if request.method == "GET":
        target = safe_next(request.query_params.get("next"))
        if await signed_in_user(request):
            return RedirectResponse(target, status_code=303)
        return render(request, "signin.html", next=target, email="", error=None)

    form = await posted_form(request)
    target = safe_next(str(form.get("next") or ""))
    email = str(form.get("email") or "").strip()
    keys = (f"ip:{_client_ip(request)}", f"email:{email.lower()}")
    if runtime.sign_in_attempts.locked(*keys):
        return locked(render(request, "signin.html", 429, next=target, email=email,
                             error="Too many attempts. Wait a few minutes, then try again."))
    user = await accounts.check_password(runtime.store, email, str(form.get("password") or ""))
    if user is None:
        runtime.sign_in_attempts.fail(*keys)
        await audit.record(runtime.store, "sign_in_failed", detail=f"email={email[:100]!r}", ip=_client_ip(request))
        return render(request, "signin.html", 401, next=target, email=email, error="Wrong e-mail address or password.")
    await audit.record(runtime.store, "sign_in", user_id=user.id, ip=_client_ip(request))
    request.session.clear()  # a new session on sign-in: no fixation
    request.session.update({"user_id": user.id, "email": user.email})
    return RedirectResponse(target, status_code=303)


async def sign_out(request: Request) -> Response:
    await posted_form(request)
    request.session.clear()
    return RedirectResponse("/auth/signin/", status_code=303)


# Confirmation: the same page for both dialects


def _confirmation(request: Request, grant: DeviceGrant, client_name: str, code_field: str, code: str) -> Response:
    return render(
        request,
        "confirm.html",
        grant=grant,
        client_name=client_name,
        scopes=grant.scope.split(),
        code_field=code_field,
        code=code,
        action=request.url.path,
    )


async def _show_or_explain(request: Request, grant: DeviceGrant | None, code_field: str, code: str) -> Response:
    runtime = runtime_of(request)
    state = "unknown" if grant is None else device_flow.status(grant, runtime.server.clock())
    if grant is None or state != "pending":
        title, text = CODE_PROBLEMS[state]
        return message(request, title, text, 404 if grant is None else 410)
    client = await runtime.store.get_client(grant.client_id)
    return _confirmation(request, grant, client.name if client else grant.client_id, code_field, code)


async def _decide(request: Request, form: FormData, grant: DeviceGrant | None) -> Response:
    runtime = runtime_of(request)
    user = await signed_in_user(request)
    if user is None:
        return to_sign_in(request)
    decision = form.get("decision")
    if decision not in ("approve", "deny"):
        return message(request, "Choose Approve or Deny", "Go back and press Approve or Deny.", 400)
    approve = decision == "approve"
    if grant is not None and await device_flow.decide(runtime.server, grant, user, approve=approve, ip=_client_ip(request)):
        if approve:
            return render(request, "success.html")
        return message(request, "Request denied", "You denied the request. The device was not signed in. You can close this window.")
    # Someone decided first, or the code expired meanwhile: say which.
    current = await runtime.store.find_grant(code_hash=grant.code_hash) if grant else None
    state = device_flow.status(current, runtime.server.clock()) if current else "unknown"
    title, text = CODE_PROBLEMS.get(state, CODE_PROBLEMS["unknown"])
    return message(request, title, text, 409)


async def pairing(request: Request) -> Response:
    """ezeep's ``/oauth/authorize/pairing/?pairing_code=...``."""
    runtime = runtime_of(request)
    if request.method == "GET":
        code = request.query_params.get("pairing_code", "")
        if await signed_in_user(request) is None:
            return to_sign_in(request)
        return await _show_or_explain(request, await device_flow.find(runtime.server, code=code), "pairing_code", code)
    form = await posted_form(request)
    code = str(form.get("pairing_code") or "")
    return await _decide(request, form, await device_flow.find(runtime.server, code=code))


async def device(request: Request) -> Response:
    """RFC 8628 ``verification_uri``: type the code, then confirm."""
    runtime = runtime_of(request)
    keys = _attempt_keys(request)
    if request.method == "POST":
        if runtime.user_code_attempts.locked(*keys):  # the lock holds for the decision form too
            return locked(render(request, "device.html", 429, error=LOCKED, typed=""))
        form = await posted_form(request)
        user_code = normalise_user_code(str(form.get("user_code") or ""))
        grant = await device_flow.find(runtime.server, user_code=user_code) if user_code else None
        if grant is None:  # a forged form: count it like a wrong code typed
            runtime.user_code_attempts.fail(*keys)
        return await _decide(request, form, grant)

    typed = request.query_params.get("user_code")
    if typed is None:
        return render(request, "device.html", error=None, typed="")
    if not typed.strip():  # an empty submit is no guess: it does not count towards the lock
        return render(request, "device.html", 400, error="Enter the code shown on your device.", typed="")
    if runtime.user_code_attempts.locked(*keys):
        return locked(render(request, "device.html", 429, error=LOCKED, typed=typed))
    user_code = normalise_user_code(typed)
    grant = await device_flow.find(runtime.server, user_code=user_code) if user_code else None
    if grant is None or device_flow.status(grant, runtime.server.clock()) != "pending":
        # One message for unknown, expired and used codes: nothing tells a valid code from an invalid one.
        runtime.user_code_attempts.fail(*keys)
        return render(request, "device.html", 400, error=WRONG_CODE, typed=typed)
    if await signed_in_user(request) is None:
        return to_sign_in(request)
    assert user_code is not None
    return await _show_or_explain(request, grant, "user_code", format_user_code(user_code))


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _attempt_keys(request: Request) -> tuple[str, ...]:
    # The session key needs a session id; the CSRF token is one, created on first view.
    return (f"ip:{_client_ip(request)}", f"session:{csrf_token(request)}")


# The signed-in user's devices


async def devices(request: Request) -> Response:
    runtime = runtime_of(request)
    user = await signed_in_user(request)
    if user is None:
        return to_sign_in(request)
    if request.method == "POST":
        form = await posted_form(request)
        if not await runtime.store.revoke_family(str(form.get("family_id") or ""), user_id=user.id):
            return message(request, "Device not found", "That device is not paired with your account any more.", 404)
        await audit.record(runtime.store, "device_unpaired", user_id=user.id, ip=_client_ip(request))
        return RedirectResponse("/devices", status_code=303)
    paired = await runtime.store.list_paired_devices(user.id, runtime.server.clock())
    return render(request, "devices.html", devices=paired)


async def home(request: Request) -> Response:
    return RedirectResponse("/devices", status_code=303)


def routes() -> list[BaseRoute]:
    both = ["GET", "POST"]
    return [
        Route("/", home, methods=["GET"]),
        Route("/auth/signin/", sign_in, methods=both),
        Route("/auth/signin", sign_in, methods=both),
        Route("/auth/signout/", sign_out, methods=["POST"]),
        Route("/oauth/authorize/pairing/", pairing, methods=both),
        Route("/oauth/authorize/pairing", pairing, methods=both),
        Route("/device", device, methods=both),
        Route("/device/", device, methods=both),
        Route("/devices", devices, methods=both),
    ]


def unavailable_page(request: Request) -> Response:
    return message(request, "Temporarily unavailable", "We cannot reach our database right now. Please try again in a moment.", 503)


