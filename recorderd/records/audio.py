"""Reading recordings back: decryption to WAV, integrity checks.

Only people who hold a passphrase-protected age identity can hear a recording; the daemon host has
public keys only. Integrity is checked two ways: the SHA-256 of the ciphertext against the catalogue
(no key needed: tells *which file* changed) and authenticated decryption (tells *which chunk*).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from recorderd.config import Config
from recorderd.errors import AccessError
from storage.audio import au_to_wav, parse_au
from storage.integrity import VerifyProblem, verify_catalogue  # re-exported: recorderctl verify
from storage.models import Call
from storage.vault import decrypt_file, salvage

__all__ = [
    "Decrypted",
    "ElsewhereError",
    "VerifyProblem",
    "call_path",
    "decrypt_recording",
    "export_wav",
    "verify_catalogue",
]


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


class ElsewhereError(AccessError):
    """The recording is held by another recorder whose files this one cannot reach."""


def call_path(row: Call, config: Config) -> Path:
    """Where a call's recording file is, seen from this recorder.

    Several recorders share one catalogue; each keeps its own recordings (``calls.node``). Another
    node's are reachable here only through shared storage named in ``[cluster] data_dirs`` (README,
    "Several recorders"); otherwise this says which node holds the file instead of failing on a path.
    """
    if row.audio_path is None:
        raise AccessError(f"call {row.id} has no audio (status {row.status})")
    root = config.node_data_dir(row.node)
    if root is None:
        raise ElsewhereError(
            f"call {row.id}: the recording is held by node {row.node!r}, not reachable from node "
            f"{config.node!r} ([cluster] data_dirs names no directory for it): play it on {row.node!r}, "
            "or mount its data directory here"
        )
    path = root / row.audio_path  # a secondary store's absolute path stays as it is
    if row.node != config.node and not path.parent.is_dir():
        raise ElsewhereError(
            f"call {row.id}: the recording is held by node {row.node!r}; its directory "
            f"{path.parent} is not reachable from node {config.node!r} (shared storage not mounted?)"
        )
    return path
