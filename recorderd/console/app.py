"""The console's Starlette application: routes, security headers, and what a refusal looks like."""

from __future__ import annotations

import time
from importlib.resources import files

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recorderd.config import Config
from recorderd.console.admin import Admin
from recorderd.console.exports import Exports
from recorderd.console.pages import Pages
from recorderd.console.play import Playback
from recorderd.console.sessions import SessionStore
from recorderd.console.web import Console, CsrfFailed, SignedOut, redirect
from recorderd.console.workflows import Workflows
from recorderd.service import Service

__all__ = ["CSP", "build_app"]

# Scripts and connections only from the console itself: no inline script, no other origin (city
# networks are closed, and an injected <script> must not run). Inline *styles* are allowed because
# wavesurfer.js styles its shadow DOM with them; they cannot run code. Audio plays from blob: URLs the
# page makes from the audio it decrypted.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' blob:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.headers = [*HEADERS, (b"strict-transport-security", b"max-age=31536000")] if hsts else HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        began = time.perf_counter()

        async def send_with(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Server-Timing: the time to the response's start (bench/console_search.py reads it).
                took = f"app;dur={(time.perf_counter() - began) * 1000:.2f}".encode()
                message["headers"] = [*message.get("headers", []), *self.headers, (b"server-timing", took)]
            await send(message)

        await self.app(scope, receive, send_with)


def build_app(svc: Service, config: Config, *, store: SessionStore | None = None) -> Starlette:
    console = Console(svc, config, store=store)
    pages, playback, admin, flows = Pages(console), Playback(console), Admin(console), Workflows(console)
    export = Exports(console)

    async def signed_out(request: Request, _exc: Exception) -> Response:
        return redirect("/signin")

    async def csrf_failed(request: Request, _exc: Exception) -> Response:
        return console.render(request, "error.html", 403, message_key="csrf_failed")

    async def home(request: Request) -> Response:
        return redirect("/calls")

    routes = [
        Route("/", home),
        Route("/signin", pages.signin_form, methods=["GET"]),
        Route("/signin", pages.signin, methods=["POST"]),
        Route("/password", pages.change_password, methods=["POST"]),
        Route("/signout", pages.signout, methods=["POST"]),
        Route("/language", pages.language, methods=["GET"]),
        Route("/calls", pages.search, methods=["GET"]),
        Route("/calls/{call}", pages.call, methods=["GET"]),
        Route("/calls/{call}/hold", pages.hold, methods=["POST"]),
        Route("/calls/{call}/play", playback.grant, methods=["POST"]),
        Route("/calls/{call}/release", admin.release, methods=["POST"]),
        Route("/calls/{call}/delete", flows.delete, methods=["POST"]),
        Route("/calls/{call}/preserve", flows.preserve, methods=["POST"]),
        Route("/disclosures", flows.disclosures, methods=["GET"]),
        Route("/disclosures/open", flows.open_disclosure, methods=["POST"]),
        Route("/disclosures/{id}/close", flows.close_disclosure, methods=["POST"]),
        Route("/exports", export.page, methods=["GET"]),
        Route("/exports/instruct", export.instruct, methods=["POST"]),
        Route("/exports/create", export.create, methods=["POST"]),
        Route("/exports/{id}/create", export.create, methods=["POST"]),
        Route("/exports/{id}/{step}", export.follow_up, methods=["POST"]),
        Route("/forms", flows.forms, methods=["GET"]),
        Route("/forms/{name}.pdf", flows.form_pdf, methods=["GET"]),
        Route("/ledger", admin.ledger, methods=["GET"]),
        Route("/status", admin.status, methods=["GET"]),
        Route("/users", admin.users, methods=["GET"]),
        Route("/users/{person}/{act}", admin.user_act, methods=["POST"]),
        Route("/sealed/{ticket}", playback.sealed, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(files("recorderd.console") / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders, hsts=config.console.tls_certificate is not None)],
        exception_handlers={SignedOut: signed_out, CsrfFailed: csrf_failed},
    )
    app.state.console = console
    return app
