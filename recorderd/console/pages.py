"""The console's pages: sign-in (with the forced password change), search, the call page, holds.

Each handler: the person of the request → one call into the service layer → a page. Searches and
looks at a call are ledgered by the service layer, as from recorderctl.
"""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from recorderd.console.web import COOKIE, LANG_COOKIE, PRE_COOKIE, REFUSED, Console, redirect
from recorderd.service import AuthError, PasswordExpired, UserError, calls, people, retention

__all__ = ["Pages"]


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text.strip().replace("/", "-"))
    except ValueError:
        raise UserError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _anchor(text: str | None) -> tuple[dt.datetime, str] | None:
    """A keyset paging anchor from the pager's link: ``<start, ISO 8601>~<call id>``."""
    if not text:
        return None
    at, _sep, call = text.partition("~")
    try:
        when = dt.datetime.fromisoformat(at)
    except ValueError:
        raise UserError(f"not a page of this search: {text!r}") from None
    if when.tzinfo is None or not call:
        raise UserError(f"not a page of this search: {text!r}")
    return when, call


def anchor_of(row: Any) -> str:
    return f"{row.started_at.isoformat()}~{row.id}"


class Pages:
    def __init__(self, console: Console) -> None:
        self.c = console

    # -- signing in and out ----------------------------------------------------------------------
    async def signin_form(self, request: Request) -> Response:
        return self.c.signin_page(request)

    async def signin(self, request: Request) -> Response:
        form = await request.form()
        pre, given = request.cookies.get(PRE_COOKIE, ""), str(form.get("csrf", ""))
        if not pre or not hmac.compare_digest(pre.encode(), given.encode()):
            return self.c.signin_page(request, 403, message_key="csrf_failed")
        person_id, password = str(form.get("person_id", "")).strip(), str(form.get("password", ""))
        try:
            who = await run_in_threadpool(self.c.svc.sign_in, person_id, password)
        except PasswordExpired:
            return self.c.signin_page(request, 200, change=True, person_id=person_id)
        except AuthError as exc:
            return self.c.signin_page(request, 403, message=str(exc), person_id=person_id)
        del password  # not kept: the browser asks again to open the key copy
        ws = self.c.store.open(who.id, self.c.svc.clock())
        response = redirect("/calls")
        self.c.cookie(response, COOKIE, ws.token)
        response.delete_cookie(PRE_COOKIE, path="/")
        return response

    async def change_password(self, request: Request) -> Response:
        form = await request.form()
        pre, given = request.cookies.get(PRE_COOKIE, ""), str(form.get("csrf", ""))
        if not pre or not hmac.compare_digest(pre.encode(), given.encode()):
            return self.c.signin_page(request, 403, message_key="csrf_failed")
        person_id = str(form.get("person_id", "")).strip()
        old, new, again = (str(form.get(k, "")) for k in ("password", "new_password", "new_password_again"))
        if new != again:
            return self.c.signin_page(
                request, 400, change=True, person_id=person_id, message_key="passwords_differ"
            )
        try:
            await run_in_threadpool(people.change_password, self.c.svc, person_id, old, new)
        except REFUSED as exc:
            return self.c.signin_page(request, 400, change=True, person_id=person_id, message=str(exc))
        return self.c.signin_page(request, 200, person_id=person_id, message_key="password_changed")

    async def signout(self, request: Request) -> Response:
        ws = self.c.session(request)
        await self.c.checked_form(request, ws)
        self.c.store.close(ws.token)
        response = redirect("/signin")
        response.delete_cookie(COOKIE, path="/")
        return response

    async def language(self, request: Request) -> Response:
        lang = request.query_params.get("to", "ja")
        # Back to the page it was chosen on, but only on this console (never an open redirect).
        back = urlsplit(request.headers.get("referer", ""))
        here = (
            back.netloc == request.url.netloc and back.path.startswith("/") and not back.path.startswith("//")
        )
        response = redirect(back.path + (f"?{back.query}" if back.query else "") if here else "/")
        self.c.cookie(response, LANG_COOKIE, "en" if lang == "en" else "ja", max_age=365 * 86400)
        return response

    # -- search ----------------------------------------------------------------------------------
    async def search(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        q = request.query_params
        context: dict[str, Any] = {"ws": ws, "who": who, "q": q, "rows": None}
        if "go" in q:
            size = self.c.config.console.page_size
            page = max(1, int(q.get("page", "1"))) if q.get("page", "1").isdigit() else 1
            held = {"yes": True, "no": False}.get(q.get("held", ""))
            try:
                query = calls.Query(
                    first=_date(q.get("from")),
                    last=_date(q.get("to")),
                    number=q.get("number") or None,
                    line=q.get("line") or None,
                    direction=q.get("direction") or None,
                    status=q.get("status") or None,
                    held=held,
                    limit=size + 1,  # one more: is there a page beyond?
                    after=_anchor(q.get("after")),  # keyset paging: no OFFSET over a million calls
                    before=_anchor(q.get("before")),
                )
                rows = await run_in_threadpool(calls.search, self.c.svc, who, query)
            except REFUSED as exc:
                return self.c.render(request, "search.html", 400, message=str(exc), **context)
            if query.before is not None:  # the page before: the extra row is the newest one
                prev, more, rows = len(rows) > size, True, rows[-size:]
            else:
                prev, more, rows = query.after is not None, len(rows) > size, rows[:size]
            page = page if prev else 1
            params = {k: v for k, v in q.items() if k not in ("page", "after", "before")}
            context |= {"rows": rows, "page": page, "more": more and bool(rows), "prev": prev and bool(rows)}
            context |= {"params": params, "anchor": anchor_of}
        return self.c.render(request, "search.html", **context)

    # -- one call --------------------------------------------------------------------------------
    async def call(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        try:
            view = await run_in_threadpool(calls.show, self.c.svc, who, request.path_params["call"])
        except REFUSED as exc:
            return self.c.refused(request, exc)
        svc = self.c.svc
        policy = view.call.retention_policy
        rule = svc.config.retention.policies.get(policy) if policy else None
        ops = ("calls.play_sealed", "holds.add", "holds.release", "calls.delete", "calls.preserve")
        may = {op: svc.may(who, op) for op in ops}
        return self.c.render(
            request,
            "call.html",
            ws=ws,
            who=who,
            view=view,
            row=view.call,
            policy=policy,
            rule=rule,
            may=may,
            idle_ms=self.c.config.console.idle_minutes * 60_000,
            no_one_plays=calls.no_one_may_play_raw(svc),
        )

    async def hold(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        form = await self.c.checked_form(request, ws)
        call_id = request.path_params["call"]
        try:
            await run_in_threadpool(
                lambda: retention.add_holds(
                    self.c.svc,
                    who,
                    calls=[call_id],
                    kind=form.get("kind", "manager_order"),
                    reference=form.get("reference", ""),
                    reason=form.get("reason", ""),
                )
            )
        except REFUSED as exc:
            return self.c.refused(request, exc)
        return redirect(f"/calls/{call_id}")
