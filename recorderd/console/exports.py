"""Export copies in the console: instruct (→ relay, Toyonaka) → create → provide → dispose, and each
request's forms as PDF.

Create asks for the person's password again (it opens their key copy for this one package, as
``recorderctl export create`` does) and answers with the package as a zip download; the service
layer (recorderd/service/exports.py) refuses an order without a recipient age key, so the download
holds no plaintext audio. The page offers only the steps the service layer says this person may take
on each request now (``exports.next_steps``); it still checks each one when taken.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from recorderd.console.web import REFUSED, Console, redirect
from recorderd.errors import AccessError
from recorderd.service import exports, records

__all__ = ["Exports"]


def _date(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip().replace("/", "-"))
    except ValueError:
        raise AccessError(f"{what}: not a date (YYYY-MM-DD): {text!r}") from None


def _order(form: dict[str, str]) -> records.Order:
    return records.Order(
        calls=form.get("calls", "").split(),
        purpose=form.get("purpose", ""),
        legal_basis=form.get("legal_basis", ""),
        recipient=form.get("recipient", ""),
        duties=form.get("duties", ""),
        due=_date(form.get("due", ""), "due"),
        medium=form.get("medium", ""),
        recipient_key=form.get("recipient_key") or None,
    )


class Exports:
    def __init__(self, console: Console) -> None:
        self.c = console

    async def page(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        try:
            found = await run_in_threadpool(records.list_exports, self.c.svc, who)
        except REFUSED as exc:
            return self.c.refused(request, exc)
        svc = self.c.svc
        may = {op: svc.may(who, op) for op in ("export.instruct", "export.create", "forms.render")}
        return self.c.render(
            request, "exports.html", ws=ws, who=who, requests=list(reversed(found)),
            steps={r.id: exports.next_steps(svc, who, r) for r in found},
            bases=svc.config.exports.legal_bases, may=may, direct=exports.direct_export_allowed(svc),
            forms={name: records.FORMS[name] for name in exports.EXPORT_FORMS}, q=request.query_params,
        )  # fmt: skip

    async def instruct(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        form = await self.c.checked_form(request, ws)
        try:
            await run_in_threadpool(records.instruct_export, self.c.svc, who, _order(form))
        except REFUSED as exc:
            return self.c.refused(request, exc)
        return redirect("/exports")

    async def create(self, request: Request) -> Response:
        """Make the copy (on the instruction in the path, or with the form's details): a zip download."""
        ws, who = await self.c.person(request)
        form = await self.c.checked_form(request, ws)
        instruction = request.path_params.get("id")
        tmp = Path(tempfile.mkdtemp(prefix="recorderd-download-"))  # 0700, removed once sent
        archive = tmp / "export.zip"
        try:
            order = None if instruction else _order(form)
            request_id = await run_in_threadpool(
                lambda: exports.create_export_archive(
                    self.c.svc, who, form.get("password", ""), archive, order=order, instruction=instruction
                )
            )
        except REFUSED as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            return self.c.refused(request, exc)
        return FileResponse(
            archive,
            media_type="application/zip",
            filename=f"{request_id}.zip",
            headers={"Cache-Control": "no-store"},
            background=BackgroundTask(shutil.rmtree, tmp, True),
        )

    def _local(self, text: str, what: str) -> dt.datetime:
        """A datetime-local field (the recorder's zone unless an offset is given)."""
        try:
            at = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            raise AccessError(f"{what}: not a date and time (YYYY-MM-DD HH:MM): {text!r}") from None
        return at if at.tzinfo else at.replace(tzinfo=self.c.config.zone)

    async def follow_up(self, request: Request) -> Response:
        ws, who = await self.c.person(request)
        form = await self.c.checked_form(request, ws)
        rid, step = request.path_params["id"], request.path_params["step"]
        svc = self.c.svc
        try:
            if step == "provide":
                await run_in_threadpool(
                    records.provide_export, svc, who, rid, form.get("to", ""), form.get("medium", "")
                )
            elif step == "dispose":
                await run_in_threadpool(
                    records.dispose_export, svc, who, rid, form.get("how", ""), form.get("note", "")
                )
            elif step == "relay":
                first, last = (self._local(form.get(k, ""), k) for k in ("calls_from", "calls_to"))
                await run_in_threadpool(
                    records.relay_export, svc, who, rid, form.get("handler", "").strip(), first, last
                )
            else:
                return self.c.render(request, "error.html", 404, message=f"no such step {step!r}")
        except REFUSED as exc:
            return self.c.refused(request, exc)
        return redirect("/exports")
