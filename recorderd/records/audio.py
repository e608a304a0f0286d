"""Reading recordings back: decryption to WAV, integrity checks.

Only people who hold a passphrase-protected age identity can hear a recording; the daemon host has
public keys only. Integrity is checked two ways: the SHA-256 of the ciphertext against the catalogue
(no key needed: tells *which file* changed) and authenticated decryption (tells *which chunk*).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from recorderd.errors import AccessError
from storage.audio import au_to_wav, parse_au
from storage.catalog import with_audio
from storage.models import Call
from storage.vault import decrypt_file, salvage, sha256_file


@dataclass(frozen=True)
class Decrypted:
    au: bytes
    complete: bool
    note: str | None


def decrypt_recording(path: Path, identities: list[str]) -> Decrypted:
    """The AU payload of a sealed ``.age`` file, or what a crashed ``.part`` still holds."""
    if path.name.endswith(".part"):
        s = salvage(path, identities)
        return Decrypted(
            s.data, False, f"salvaged {s.chunks} complete chunk(s); {s.error or 'no final chunk'}"
        )
    out = io.BytesIO()
    decrypt_file(path, identities, out)
    return Decrypted(out.getvalue(), True, None)


def export_wav(path: Path, identities: list[str], out: Path) -> Decrypted:
    dec = decrypt_recording(path, identities)
    parse_au(dec.au)  # validate before writing anything
    au_to_wav(dec.au, out)
    return dec


@dataclass(frozen=True)
class VerifyProblem:
    call_id: str
    path: str
    problem: str


def verify_catalogue(session: Session, data_dir: Path) -> tuple[int, list[VerifyProblem]]:
    """Re-hash every recording file against the catalogue. Returns (files checked, problems)."""
    checked, problems = 0, []
    for row in with_audio(session):
        assert row.audio_path is not None
        path = data_dir / row.audio_path
        if row.status == "recording":
            continue  # still being written
        checked += 1
        if not path.exists():
            problems.append(VerifyProblem(row.id, str(path), "file missing"))
        elif row.audio_sha256 is None:
            problems.append(VerifyProblem(row.id, str(path), "no hash in catalogue"))
        elif sha256_file(path) != row.audio_sha256:
            problems.append(
                VerifyProblem(row.id, str(path), "SHA-256 differs from the catalogue: file changed")
            )
    return checked, problems


def call_path(row: Call, data_dir: Path) -> Path:
    if row.audio_path is None:
        raise AccessError(f"call {row.id} has no audio (status {row.status})")
    return data_dir / row.audio_path
