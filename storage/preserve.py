"""Preservation: a still-encrypted copy of one recording on a preservation store, and its catalogue.

Osaka Waterworks 6-1/6-2 ("外部保存": unreasonable-demand and unresolved cases, kept 5 years on
external media, with a catalogue, form 4: medium, content, dates) and Saitama's "output data" are
both this: the ciphertext copied byte for byte (the store needs no key and reveals nothing), checked
against the catalogue hash, with one entry in ``preservations`` and one line in ``CATALOGUE.tsv`` on
the medium itself, so a medium found in a drawer says what it holds.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from storage import retention_log
from storage.db import immediate
from storage.erase import copy_durably, unlink_if_present
from storage.files import fsync_dir
from storage.models import RECORDING, Call, Preservation

CATALOGUE = "CATALOGUE.tsv"
_HEADER = (
    "entry\tmedium\tcall_id\tcontent\tpreserved_at_utc\tdestroy_after_utc\tsha256\tpreserved_by\treason\n"
)


class PreserveError(Exception):
    pass


@dataclass(frozen=True)
class Request:
    call_id: str
    medium: str
    content: str  # what the call is, in words (line, direction, local times)
    by: str
    reason: str
    reference: str | None
    policy: str  # the copy's policy (the call's own audio keeps its own)
    expires_at: dt.datetime  # of the copy only: preserving never extends the call's own audio


def live_copies(session: Session, call_id: str) -> list[Preservation]:
    q = select(Preservation).where(Preservation.call_id == call_id, Preservation.destroyed_at.is_(None))
    return list(session.scalars(q.order_by(Preservation.id)))


def preserve(
    sessions: sessionmaker[Session], req: Request, *, data_dir: Path, store_dir: Path, now: dt.datetime
) -> Preservation:
    if not req.by.strip() or not req.reason.strip() or not req.medium.strip():
        raise PreserveError("preservation needs who, why and the medium's label")
    with sessions() as s:
        row = s.get(Call, req.call_id)
        if row is None:
            raise PreserveError(f"no call {req.call_id!r}")
        if row.audio_path is None:
            raise PreserveError(
                f"call {row.id} has no audio (deleted {row.audio_deleted_at or 'never recorded'})"
            )
        if row.status == RECORDING:
            raise PreserveError(f"call {row.id} is still being recorded")
        same = [p for p in live_copies(s, row.id) if p.medium == req.medium]
        if same:
            raise PreserveError(f"call {row.id} is already preserved on {req.medium} (entry {same[0].id})")
        audio_path, sha256 = row.audio_path, row.audio_sha256
    if not store_dir.is_dir():
        raise PreserveError(f"preservation store {store_dir} is not mounted or not a directory")
    dst = store_dir / f"{req.call_id}.age"
    size, digest = copy_durably(data_dir / audio_path, dst)
    if sha256 is not None and digest != sha256:
        unlink_if_present(dst)
        raise PreserveError(
            f"call {req.call_id}: the file differs from its catalogue hash; not preserved "
            "(run recorderctl verify)"
        )
    with immediate(sessions) as s:
        row = s.get(Call, req.call_id)
        if row is None or row.audio_path != audio_path:
            unlink_if_present(dst)
            raise PreserveError(f"call {req.call_id} changed while it was being copied; not preserved")
        entry = Preservation(
            call_id=row.id,
            medium=req.medium,
            path=str(dst),
            sha256=digest,
            bytes=size,
            content=req.content,
            call_started_at=row.started_at,
            call_ended_at=row.ended_at,
            preserved_at=now,
            expires_at=req.expires_at,
            preserved_by=req.by,
            reason=req.reason,
            reference=req.reference,
        )
        s.add(entry)
        s.flush()
        # The copy is a separate object with its own clock; the call's own audio keeps its expiry.
        row.preserved_at = now
        retention_log.append(
            s,
            at=now,
            action="preserve",
            actor=req.by,
            call_id=row.id,
            rule=f"policy {req.policy}",
            reference=req.reference,
            detail={
                "entry": entry.id,
                "medium": req.medium,
                "path": str(dst),
                "sha256": digest,
                "bytes": size,
                "reason": req.reason,
                "copy_expires_at": req.expires_at,
                "audio_expires_at": row.expires_at,
            },
        )
    _catalogue_line(store_dir, entry)
    return entry


def _catalogue_line(store_dir: Path, e: Preservation) -> None:
    path = store_dir / CATALOGUE
    new = not path.exists()
    fields = (
        e.id,
        e.medium,
        e.call_id,
        e.content,
        e.preserved_at.isoformat(),
        e.expires_at.isoformat(),
        e.sha256,
        e.preserved_by,
        e.reason,
    )
    line = "\t".join(str(f).replace("\t", " ").replace("\n", " ") for f in fields) + "\n"
    with path.open("a", encoding="utf-8") as f:
        if new:
            f.write(_HEADER)
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    if new:
        fsync_dir(store_dir)
