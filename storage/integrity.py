"""Re-hashing the recording files against the catalogue (no key needed: the ciphertext's SHA-256).

Used by ``recorderctl verify`` and by the daemon's scheduled check, which raises an incident when a
file is missing or changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from storage.catalog import with_audio
from storage.vault import sha256_file

MISSING = "file missing"
CHANGED = "SHA-256 differs from the catalogue: file changed"


@dataclass(frozen=True)
class VerifyProblem:
    call_id: str
    path: str
    problem: str


def verify_catalogue(
    session: Session, data_dir: Path, *, node: str | None = None, stop: Callable[[], bool] = lambda: False
) -> tuple[int, list[VerifyProblem]]:
    """Re-hash every recording file against the catalogue. Returns (files checked, problems).

    ``node``: only the files that recorder holds, under ``data_dir`` (its data directory as seen here).
    ``stop``: asked before each file; true ends the walk there (a daemon stopping mid-check: the
    thread doing it cannot be cancelled, and on a large catalogue the walk takes hours). The problems
    found up to then are returned; the files not reached are neither checked nor counted."""
    checked, problems = 0, []
    for row in with_audio(session, node=node):
        if stop():
            break
        path = data_dir / row.audio_path
        if row.status == "recording":
            continue  # still being written
        checked += 1
        if not path.exists():
            problems.append(VerifyProblem(row.id, str(path), MISSING))
        elif row.audio_sha256 is None:
            problems.append(VerifyProblem(row.id, str(path), "no hash in catalogue"))
        elif sha256_file(path) != row.audio_sha256:
            problems.append(VerifyProblem(row.id, str(path), CHANGED))
    return checked, problems
