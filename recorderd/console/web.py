"""What every console handler shares: the person of the request, CSRF, rendering, refusals.

``Console`` holds the service layer, the session store and the templates. ``person(request)`` resumes
the signed-in person through ``Service.resume`` on every request (a disabled account or a changed
password ends the session at once). Handlers never check permissions: the service layer refuses, and
``refused`` turns its refusal into a page or a JSON body.
"""

from __future__ import annotations

import secrets
from importlib.resources import files
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from recorderd.config import Config
from recorderd.console.i18n import LANGUAGES, translator
from recorderd.console.sessions import SessionStore, WebSession
from recorderd.service import REFUSALS, Actor, AuthError, Forbidden, Service

__all__ = ["COOKIE", "LANG_COOKIE", "PRE_COOKIE", "REFUSED", "Console", "CsrfFailed", "SignedOut", "redirect"]

COOKIE = "recorderd_session"
PRE_COOKIE = "recorderd_signin"  # the sign-in form's CSRF token (double submit), before any session
LANG_COOKIE = "recorderd_lang"


class SignedOut(Exception):
    """No live session: the handler answers with the sign-in page."""


class Console:
    def __init__(self, svc: Service, config: Config, *, store: SessionStore | None = None) -> None:
        self.svc = svc
        self.config = config
        c = config.console
        self.store = store or SessionStore(idle_s=c.idle_minutes * 60.0, absolute_s=c.absolute_hours * 3600.0)
        loader = FileSystemLoader(str(files("recorderd.console") / "templates"))
        self.env = Environment(loader=loader, autoescape=select_autoescape(["html"]))

    # -- language and rendering ------------------------------------------------------------------
    def lang(self, request: Request) -> str:
        chosen = request.cookies.get(LANG_COOKIE, "")
        return chosen if chosen in LANGUAGES else self.config.console.language

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        lang = self.lang(request)
        who = context.get("who")
        if who is not None:  # the menu offers only what the role may do
            ops = (
                "ledger.show",
                "users.list",
                "calls.search",
                "disclosure.list",
                "export.list",
                "forms.render",
            )
            context["nav"] = {op: self.svc.may(who, op) for op in ops}
        html = self.env.get_template(name).render(
            request=request, t=translator(lang), lang=lang, zone=self.config.zone, **context
        )
        return HTMLResponse(html, status_code=status)

    def cookie(self, response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="strict",
            secure=self.config.console.secure,
            path="/",
        )

    # -- the person of a request -----------------------------------------------------------------
    def session(self, request: Request) -> WebSession:
        ws = self.store.get(request.cookies.get(COOKIE))
        if ws is None:
            raise SignedOut
        return ws

    async def person(self, request: Request) -> tuple[WebSession, Actor]:
        ws = self.session(request)
        try:
            who = await run_in_threadpool(self.svc.resume, ws.person_id, ws.signed_in_at)
        except AuthError:
            self.store.close(ws.token)
            raise SignedOut from None
        return ws, who

    async def checked_form(self, request: Request, ws: WebSession) -> dict[str, str]:
        """The posted form, once its CSRF token (field ``csrf`` or header X-CSRF-Token) is the session's."""
        form = await request.form()
        given = request.headers.get("x-csrf-token") or form.get("csrf")
        if not ws.csrf_ok(given if isinstance(given, str) else None):
            raise CsrfFailed
        return {k: v for k, v in form.items() if isinstance(v, str)}

    def signin_page(self, request: Request, status: int = 200, **context: Any) -> Response:
        token = secrets.token_urlsafe(32)
        response = self.render(request, "signin.html", status, csrf=token, **context)
        self.cookie(response, PRE_COOKIE, token, max_age=1800)
        return response

    def refused(self, request: Request, exc: Exception, *, json: bool = False) -> Response:
        status = 403 if isinstance(exc, Forbidden | AuthError) else 400
        if json:
            return JSONResponse({"error": str(exc)}, status_code=status)
        return self.render(request, "error.html", status, message=str(exc))


class CsrfFailed(Exception):
    """A state change without the session's CSRF token: refused, nothing done."""


REFUSED = REFUSALS


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
