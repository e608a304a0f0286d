"""Crash recovery at start-up: close what a previous run left open, delete nothing.

A SIGKILL or power cut leaves rows in ``recording`` and ``.part`` files on disk. The daemon holds
no private key, so it cannot seal a ``.part`` (the final chunk needs the payload key); it records
the ``.part`` and its hash on the row, marked incomplete, and ``recorderctl calls export-audio``
salvages every complete chunk with the key holder's identity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recorderd.numbers import mask
from storage import ledger
from storage.models import INCOMPLETE, RECORDING, Call
from storage.vault import sha256_file

log = structlog.get_logger("recorderd.recovery")


@dataclass
class RecoveryReport:
    closed_rows: list[str] = field(default_factory=list)
    orphan_files: list[Path] = field(default_factory=list)


def recover(sessions: sessionmaker[Session], data_dir: Path, node: str | None = None) -> RecoveryReport:
    """``node``: only this recorder's rows (others sharing the catalogue may be recording right now)."""
    report = RecoveryReport()
    parties: dict[str, dict[str, str | None]] = {}  # for the log lines: every line about a call names it
    with sessions.begin() as session:
        open_rows = select(Call).where(Call.status == RECORDING)
        if node is not None:
            open_rows = open_rows.where(Call.node == node)
        for row in session.scalars(open_rows):
            final = data_dir / row.audio_path if row.audio_path else None
            part = final.with_name(final.name + ".part") if final else None
            notes = "closed at start-up; audio up to the last complete 64 KiB chunk can be salvaged"
            if final is not None and part is not None and not final.exists() and part.exists():
                row.audio_path = str(part.relative_to(data_dir))
                row.audio_bytes = part.stat().st_size
                row.audio_sha256 = sha256_file(part)
            elif final is not None and final.exists() and row.audio_sha256 is None:
                # Killed between sealing the file and writing the row: the file is whole; hash it so
                # `recorderctl verify` can vouch for it.
                row.audio_bytes = final.stat().st_size
                row.audio_sha256 = sha256_file(final)
                notes = "closed at start-up; the file was sealed but the call's end was not recorded"
            row.status = INCOMPLETE
            row.failure_reason = "daemon stopped during recording"
            row.notes = notes
            report.closed_rows.append(row.id)
            parties[row.id] = {"local": mask(row.local_number), "remote": mask(row.remote_number)}
            detail = {"status": INCOMPLETE, "sha256": row.audio_sha256, "bytes": row.audio_bytes,
                      "recovered": "daemon stopped during recording"}  # fmt: skip
            ledger.append(session, "recording_finalised", "recorderd", call_id=row.id, detail=detail)
    report.orphan_files = orphans(sessions, data_dir)
    for call_id in report.closed_rows:
        log.warning("recording_marked_incomplete", call_id=call_id, **parties[call_id],
                    reason="daemon stopped during recording")  # fmt: skip
    if report.orphan_files:
        # Never deleted automatically: an empty or replaced catalogue must not become a deletion order.
        log.warning("orphan_recording_files", count=len(report.orphan_files),
                    examples=[str(p) for p in report.orphan_files[:5]])  # fmt: skip
    return report


def orphans(sessions: sessionmaker[Session], data_dir: Path, batch: int = 500) -> list[Path]:
    """Files under ``recordings/`` that no call row points at (as ``<id>.age`` or its ``.part``).

    A file is named after its call, so each batch of files is looked up by primary key: memory and
    time follow the files on disk, not the catalogue (a set of every catalogued path was 400 MiB and
    4.6 s at start-up for 1,000,000 calls; docs/PERFORMANCE.md).
    """
    found: list[Path] = []
    pending: list[tuple[Path, str]] = []

    def check() -> None:
        ids = {f.name.split(".", 1)[0] for f, _rel in pending}
        with sessions() as s:
            paths = s.scalars(select(Call.audio_path).where(Call.id.in_(ids), Call.audio_path.is_not(None)))
            known = {k for p in paths if p for k in (p, p + ".part")}
        found.extend(f for f, rel in pending if rel not in known)
        pending.clear()

    recordings = data_dir / "recordings"
    for root, _dirs, files in os.walk(recordings):
        for name in files:
            f = Path(root, name)
            pending.append((f, str(f.relative_to(data_dir))))
            if len(pending) >= batch:
                check()
    if pending:
        check()
    return found
