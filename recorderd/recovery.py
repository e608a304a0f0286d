"""Crash recovery at start-up: close what a previous run left open, delete nothing.

A SIGKILL or power cut leaves rows in ``recording`` and ``.part`` files on disk. The daemon holds
no private key, so it cannot seal a ``.part`` (the final chunk needs the payload key); it records
the ``.part`` and its hash on the row, marked incomplete, and ``recorderctl calls export-audio``
salvages every complete chunk with the key holder's identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from storage.models import INCOMPLETE, RECORDING, Call
from storage.vault import sha256_file

log = structlog.get_logger("recorderd.recovery")


@dataclass
class RecoveryReport:
    closed_rows: list[str] = field(default_factory=list)
    orphan_files: list[Path] = field(default_factory=list)


def recover(sessions: sessionmaker[Session], data_dir: Path) -> RecoveryReport:
    report = RecoveryReport()
    known: set[str] = set()
    with sessions.begin() as session:
        for path in session.scalars(select(Call.audio_path).where(Call.audio_path.is_not(None))):
            if path:
                known.add(path)
                known.add(path + ".part")
        for row in session.scalars(select(Call).where(Call.status == RECORDING)):
            final = data_dir / row.audio_path if row.audio_path else None
            part = final.with_name(final.name + ".part") if final else None
            if final is not None and part is not None and not final.exists() and part.exists():
                row.audio_path = str(part.relative_to(data_dir))
                row.audio_bytes = part.stat().st_size
                row.audio_sha256 = sha256_file(part)
            row.status = INCOMPLETE
            row.failure_reason = "daemon stopped during recording"
            row.notes = "closed at start-up; audio up to the last complete 64 KiB chunk can be salvaged"
            report.closed_rows.append(row.id)
    recordings = data_dir / "recordings"
    if recordings.is_dir():
        for f in recordings.rglob("*"):
            if f.is_file() and str(f.relative_to(data_dir)) not in known:
                report.orphan_files.append(f)
    for call_id in report.closed_rows:
        log.warning("recording_marked_incomplete", call_id=call_id, reason="daemon stopped during recording")
    if report.orphan_files:
        # Never deleted automatically: an empty or replaced catalogue must not become a deletion order.
        log.warning("orphan_recording_files", count=len(report.orphan_files),
                    examples=[str(p) for p in report.orphan_files[:5]])  # fmt: skip
    return report
