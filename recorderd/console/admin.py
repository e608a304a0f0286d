"""The auditor's and the administrator's pages: the ledger (filters, verification state), the status
page (refreshes itself), accounts (list, add, disable, unlock), and releasing a hold.

As everywhere in the console, the service layer decides and ledgers; these handlers parse and render.
Acts that open the acting person's key copy on the server (a new key holder's copy is made from it)
ask for that person's password in the form and sign in again for that one request.
"""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from recorderd.config.people import ROLE_LABELS
from recorderd.console.web import REFUSED, Console, redirect
from recorderd.service import people, records, retention
from recorderd.statusfile import StatusUnavailable, daemon_up, read_status
from storage.files import disk_usage

__all__ = ["Admin"]


class Admin:
    def __init__(self, console: Console) -> None:
        self.c = console

    async def ledger(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        q = request.query_params
        kinds = [k.strip() for k in q.get("kind", "").split(",") if k.strip()] or None
        svc = self.c.svc
        size = self.c.config.console.page_size * 4  # 200 entries a page by default
        before, after = (int(v) if (v := q.get(k, "")).isdigit() else None for k in ("before", "after"))
        try:
            rows = await run_in_threadpool(
                lambda: records.show_ledger(
                    svc, who, kinds=kinds, call=q.get("call") or None, subject=q.get("subject") or None,
                    limit=size + 1, before=before, after=None if before else after,  # one more: beyond?
                )
            )  # fmt: skip
            checkpoints = await run_in_threadpool(
                lambda: records.show_ledger(svc, who, kinds=["checkpoint"], limit=1)
            )
            verified = await run_in_threadpool(records.verify_ledger, svc, who, []) if "verify" in q else None
            report = verified.report if verified is not None else None
        except REFUSED as exc:
            return self.c.refused(request, exc)
        newest = checkpoints[-1] if checkpoints else None
        age = None
        if newest is not None:
            age = svc.clock() - dt.datetime.fromisoformat(newest.at)
        if after is not None and before is None:  # the page towards the newest: the extra one is newest
            newer, older, rows = len(rows) > size, True, rows[:size]
        else:
            newer, older, rows = before is not None, len(rows) > size, rows[-size:]
        keep = {k: v for k, v in q.items() if k in ("kind", "call", "subject") and v}  # filters stay
        pages = {
            "newer": urlencode(keep | {"after": rows[-1].seq}) if newer and rows else None,
            "older": urlencode(keep | {"before": rows[0].seq}) if older and rows else None,
        }
        return self.c.render(
            request, "ledger.html", ws=ws, who=who, q=q, rows=list(reversed(rows)), report=report,
            checkpoint=newest, checkpoint_age_h=None if age is None else age.total_seconds() / 3600,
            pages=pages,
        )  # fmt: skip

    async def status(self, request: Request) -> Response:
        ws, who = await self.c.person(request)  # any signed-in person: the status shows no call
        data_dir = self.c.config.data_dir
        now = self.c.svc.clock()
        st: dict[str, Any] | None
        try:
            st = read_status(data_dir)
            up = daemon_up(st, now, same_host=st.get("host") == socket.gethostname())
        except StatusUnavailable as exc:
            st, up = None, (False, str(exc))
        free, total = disk_usage(data_dir)
        return self.c.render(
            request, "status.html", ws=ws, who=who, st=st or {}, up=up, free=free, total=total, now=now,
            refresh=10,
        )  # fmt: skip

    async def users(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        try:
            found = await run_in_threadpool(people.list_people, self.c.svc, who)
        except REFUSED as exc:
            return self.c.refused(request, exc)
        return self.c.render(request, "users.html", ws=ws, who=who, people=found, roles=ROLE_LABELS)

    async def user_act(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        form = await self.c.checked_form(request, ws)
        act, target = request.path_params["act"], request.path_params["person"]
        svc = self.c.svc
        try:
            if act == "disable":
                await run_in_threadpool(people.disable, svc, who, target)
            elif act == "unlock":
                await run_in_threadpool(people.unlock, svc, who, target)
            elif act == "add":
                # A key-holding role's copy is made from the acting person's own: their password, now.
                me = await run_in_threadpool(svc.sign_in, who.id, form.get("my_password", ""))
                await run_in_threadpool(
                    lambda: people.add_person(
                        svc, me, form.get("person_id", ""), form.get("name", ""), form.get("role", ""),
                        form.get("password", ""), key=None,
                    )
                )  # fmt: skip
            else:
                return self.c.render(request, "error.html", 404, message=f"no such action {act!r}")
        except REFUSED as exc:
            return self.c.refused(request, exc)
        return redirect("/users")

    async def release(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        form = await self.c.checked_form(request, ws)
        call_id = request.path_params["call"]
        try:
            hold_id = int(form.get("hold", ""))
            await run_in_threadpool(
                lambda: retention.release_holds(
                    self.c.svc, who, hold_ids=[hold_id], reason=form.get("reason", "")
                )
            )
        except ValueError:
            return self.c.render(request, "error.html", 400, message="which hold?")
        except REFUSED as exc:
            return self.c.refused(request, exc)
        return redirect(f"/calls/{call_id}")
