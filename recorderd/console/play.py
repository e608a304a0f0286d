"""Playback in the browser: the server checks and ledgers (``calls.play_sealed``), then hands out the
person's key copy and the recording's ciphertext; the page decrypts both itself (static/console.js).

Two requests, so the ledger entry is committed before any ciphertext leaves: ``POST …/play`` (purpose,
CSRF token) → the service layer grants and ledgers → a one-time ticket, the key copy, the catalogue's
SHA-256; then ``GET /sealed/<ticket>`` streams the file in 64 KiB pieces.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from recorderd.console.web import REFUSED, Console, CsrfFailed, SignedOut
from recorderd.service import calls

__all__ = ["Playback"]

PIECE = 64 * 1024


def _pieces(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while piece := f.read(PIECE):
            yield piece


class Playback:
    def __init__(self, console: Console) -> None:
        self.c = console

    async def grant(self, request: Request) -> Response:
        try:
            ws, who = await self.c.person(request)
            form = await self.c.checked_form(request, ws)
        except SignedOut:
            return JSONResponse({"error": "signed out"}, status_code=401)
        except CsrfFailed:
            return JSONResponse({"error": "CSRF token missing or wrong"}, status_code=403)
        call_id = request.path_params["call"]
        try:
            sealed = await run_in_threadpool(
                calls.play_sealed, self.c.svc, who, call_id, form.get("purpose", "")
            )
        except REFUSED as exc:
            return self.c.refused(request, exc, json=True)
        ticket = self.c.store.issue(ws, sealed.call_id, sealed.recording)
        return JSONResponse(
            {
                "ticket": ticket,
                "entry": sealed.entry.seq,
                "key_copy": base64.b64encode(sealed.key_copy).decode("ascii"),
                "sha256": sealed.sha256,
                "size": sealed.size,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def sealed(self, request: Request) -> Response:
        try:
            ws = self.c.session(request)
        except SignedOut:
            return Response("signed out", status_code=401)
        ticket = self.c.store.redeem(ws, request.path_params["ticket"])
        if ticket is None:
            return Response("no such ticket (each is good once, for two minutes)", status_code=403)
        try:
            size = ticket.path.stat().st_size
        except OSError:
            return Response("the recording file is missing", status_code=404)
        return StreamingResponse(
            _pieces(ticket.path),
            media_type="application/octet-stream",
            headers={"Cache-Control": "no-store", "Content-Length": str(size)},
        )
