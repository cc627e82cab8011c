"""The Starlette application: routes, middleware, error handlers and start-up."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from pairflow import assembly
from pairflow.config import Settings
from pairflow.oauth.errors import OAuthError
from pairflow.store import StoreUnavailable
from pairflow.web import api, pages
from pairflow.web.runtime import Runtime
from pairflow.web.security import SecurityHeadersMiddleware

log = logging.getLogger("pairflow.web")
SESSION_MAX_AGE = 12 * 3600


class LazySessionMiddleware:
    """Starlette's signed-cookie sessions, keyed by a secret that is only known after start-up."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app, self.runtime = app, runtime
        self.sessions: SessionMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or api.is_api_path(scope["path"]):  # devices have no sessions
            await self.app(scope, receive, send)
            return
        if self.sessions is None:
            self.sessions = SessionMiddleware(
                self.app,
                secret_key=self.runtime.session_secret,
                session_cookie="pairflow_session",
                max_age=SESSION_MAX_AGE,
                same_site="lax",
                https_only=self.runtime.settings.issuer_url.startswith("https://"),
            )
        await self.sessions(scope, receive, send)


def create_app(settings: Settings) -> api.MachineApi:
    """The ASGI app: ``api.MachineApi`` answers the device endpoints; the Starlette app behind it, the rest."""
    runtime = Runtime(settings)
    https = settings.issuer_url.startswith("https://")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime.store = assembly.open_store(settings)
        await assembly.prepare_store(runtime.store, settings)
        runtime.server = await assembly.build_server(runtime.store, settings)
        runtime.session_secret = await assembly.session_secret(runtime.store)
        # Everything built so far (modules, tables, prepared statements, keys) lives as long as
        # the process: moved out of the collector's reach, it is not re-scanned on every full
        # collection, which otherwise costs the hot paths about a tenth of their time.
        gc.collect()
        gc.freeze()
        yield
        await runtime.server.notifier.close()
        await runtime.store.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if api.is_api_path(request.url.path):  # known API paths never get here: api.MachineApi answers them
            return api.error_response(OAuthError(f"No endpoint at {request.url.path}.", status_code=exc.status_code))
        titles = {403: "Session expired", 404: "Page not found", 405: "Not allowed", 413: "Form too large"}
        return pages.message(request, titles.get(exc.status_code, "Error"), exc.detail, exc.status_code)

    async def store_down(request: Request, exc: Exception) -> Response:
        log.warning("database unavailable: %s", exc.__class__.__name__)
        return pages.unavailable_page(request)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return pages.message(request, "Something went wrong", "Please try again in a moment.", 500)

    app = Starlette(
        routes=[*pages.routes(), Mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static")],
        middleware=[
            Middleware(SecurityHeadersMiddleware, https=https),
            Middleware(LazySessionMiddleware, runtime=runtime),
        ],
        exception_handlers={
            HTTPException: http_error,
            StoreUnavailable: store_down,
            Exception: unexpected,
        },
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return api.MachineApi(app, runtime, https=https)




def app_from_environment() -> api.MachineApi:
    """Uvicorn's factory: each worker process builds its app from PAIRFLOW_* variables."""
    return create_app(Settings.from_env())
