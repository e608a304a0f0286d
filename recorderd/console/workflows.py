"""The regulations' workflows in the console: deletion on request, preservation, disclosure requests,
and each form as a PDF (export copies: recorderd/console/exports.py).

As everywhere in the console, the service layer checks, ledgers and acts; these handlers parse forms
(CSRF-checked) and render pages.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from recorderd.console.web import REFUSED, Console, redirect
from recorderd.errors import AccessError
from recorderd.service import records, retention

__all__ = ["Workflows"]


def _date(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip().replace("/", "-"))
    except ValueError:
        raise AccessError(f"{what}: not a date (YYYY-MM-DD): {text!r}") from None


class Workflows:
    def __init__(self, console: Console) -> None:
        self.c = console

    # -- one call: deletion on request, preservation ---------------------------------------------
    async def delete(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        form = await self.c.checked_form(request, ws)
        call_id = request.path_params["call"]
        try:
            asked_by = retention.Requester(
                form.get("requester", ""), form.get("contact", ""), form.get("relation", "本人")
            )
            done = await run_in_threadpool(
                lambda: retention.delete(
                    self.c.svc, who, call_id, request=form.get("request", ""),
                    reason=form.get("reason", ""), requester=asked_by,
                )
            )  # fmt: skip
        except REFUSED as exc:
            return self.c.refused(request, exc)
        if not done.done:
            return self.c.render(request, "error.html", 409, message=done.note)
        return redirect(f"/calls/{call_id}")

    async def preserve(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        form = await self.c.checked_form(request, ws)
        call_id = request.path_params["call"]
        try:
            await run_in_threadpool(
                lambda: retention.preserve_call(
                    self.c.svc, who, call_id, reason=form.get("reason", ""),
                    medium=form.get("medium") or None, reference=form.get("reference") or None,
                )
            )  # fmt: skip
        except REFUSED as exc:
            return self.c.refused(request, exc)
        return redirect(f"/calls/{call_id}")

    # -- disclosure requests ---------------------------------------------------------------------
    async def disclosures(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        try:
            found = await run_in_threadpool(records.list_disclosures, self.c.svc, who)
        except REFUSED as exc:
            return self.c.refused(request, exc)
        return self.c.render(
            request, "disclosures.html", ws=ws, who=who, requests=list(reversed(found)),
            outcomes=records.OUTCOMES, may_open=self.c.svc.may(who, "disclosure.open"),
            documents=records.ID_DOCUMENTS, matches=records.ID_MATCHES,
        )  # fmt: skip

    async def open_disclosure(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        form = await self.c.checked_form(request, ws)
        try:
            first, last = _date(form.get("from", ""), "from"), _date(form.get("to", ""), "to")
            await run_in_threadpool(
                lambda: records.open_disclosure(
                    self.c.svc, who, number=form.get("number", ""), first=first, last=last,
                    requester=form.get("requester", ""), contact=form.get("contact", ""),
                    identity=records.IdentityCheck(
                        form.get("id_document", ""), form.get("id_number", ""),
                        tuple(v for k, v in sorted(form.items()) if k.startswith("matched_")),
                    ),
                )
            )  # fmt: skip
        except REFUSED as exc:
            return self.c.refused(request, exc)
        return redirect("/disclosures")

    async def close_disclosure(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        form = await self.c.checked_form(request, ws)
        rid = request.path_params["id"]
        try:
            await run_in_threadpool(
                records.close_disclosure, self.c.svc, who, rid, form.get("outcome", ""), form.get("note", "")
            )
        except REFUSED as exc:
            return self.c.refused(request, exc)
        return redirect("/disclosures")

    # -- forms as PDF ----------------------------------------------------------------------------
    async def forms(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        return self.c.render(request, "forms.html", ws=ws, who=who, forms=records.FORMS)

    async def form_pdf(self, request: Request) -> Response:
        _ws, who = await self.c.person(request)
        name, q = request.path_params["name"], request.query_params
        try:
            first = _date(q["from"], "from") if q.get("from") else None
            last = _date(q["to"], "to") if q.get("to") else None
            with tempfile.TemporaryDirectory(prefix="recorderd-form-") as tmp:
                out = Path(tmp) / f"{name}.pdf"
                await run_in_threadpool(
                    lambda: records.render_form(
                        self.c.svc, who, name, out, first=first, last=last, request=q.get("request") or None
                    )
                )
                data = out.read_bytes()
        except REFUSED as exc:
            return self.c.refused(request, exc)
        return Response(
            data,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="{name}.pdf"',
                "Cache-Control": "no-store",
            },
        )
