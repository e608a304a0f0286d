"""Hearing a recording: a person, their password, a stated purpose, an entry in the ledger first.

Order matters: sign in → permission → open the person's key copy → ledger entry committed → decrypt.
If the entry cannot be written nothing is decrypted. The audio goes to a player's standard input
(sox ``play`` or ``aplay``) so no plaintext touches the disk, or to a WAV file when asked.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.config.people import ROLES
from recorderd.errors import AccessError
from recorderd.people.keys import NoKeyCopy
from recorderd.people.users import Actor, Forbidden, People
from recorderd.records.audio import call_path, decrypt_recording
from storage import ledger
from storage.audio import parse_au
from storage.catalog import AmbiguousId, get_call
from storage.models import Call

__all__ = ["Played", "default_player", "find_call", "open_key", "play", "wav_bytes"]


@dataclass(frozen=True)
class Played:
    call_id: str
    entry: ledger.Entry
    complete: bool
    note: str | None


def wav_bytes(au: bytes) -> bytes:
    rate, channels, pcm = parse_au(au)
    frames = np.frombuffer(pcm, dtype="<i2")
    frames = frames[: len(frames) - len(frames) % channels].reshape(-1, channels)
    out = io.BytesIO()
    soundfile.write(out, frames, rate, subtype="PCM_16", format="WAV")
    return out.getvalue()


def default_player() -> list[str] | None:
    if shutil.which("play"):
        return ["play", "-q", "-t", "wav", "-"]
    if shutil.which("aplay"):
        return ["aplay", "-q", "-"]
    return None


def find_call(sessions: sessionmaker[Session], id_or_prefix: str) -> Call:
    with sessions() as s:
        try:
            row = get_call(s, id_or_prefix)
        except AmbiguousId as exc:
            raise AccessError(str(exc)) from exc
    if row is None:
        raise AccessError(f"no call {id_or_prefix!r}")
    return row


def open_key(people: People, actor: Actor) -> list[str]:
    """The recording identities from the actor's own key copy."""
    try:
        return people.keyring.unlock(actor.id, actor.password)
    except NoKeyCopy as exc:
        raise Forbidden(
            f"{exc}: ask an administrator to grant one (recorderctl users passwd --reset)"
        ) from exc


def no_one_may_play(config: Config) -> bool:
    return not any("play" in config.people.permissions(r) for r in ROLES)


def play(
    people: People,
    sessions: sessionmaker[Session],
    config: Config,
    actor: Actor,
    call: str,
    purpose: str,
    *,
    out: Path | None = None,
    player: list[str] | None = None,
    identities: list[str] | None = None,
) -> Played:
    """``identities``: from an identity file instead of the key copy (recovery); still ledgered."""
    if not purpose.strip():
        raise AccessError("state the purpose (--purpose)")
    row = find_call(sessions, call)
    try:
        people.require(actor, "play", action="play a raw recording", call_id=row.id)
    except Forbidden as exc:
        if not no_one_may_play(config):
            raise
        hint = "this profile lets no one hear raw recordings; only export copies made on an instruction"
        raise Forbidden(f"{exc} ({hint}: recorderctl export instruct)") from None
    path = call_path(row, config.data_dir)
    if out is None and player is None:
        raise AccessError("no audio player found (sox or alsa-utils): give --out FILE.wav")
    ids = identities if identities is not None else open_key(people, actor)
    how = (
        {"to": "file", "file": str(out)}
        if out is not None
        else {"to": "player", "player": (player or [""])[0]}
    )
    entry = ledger.append_committed(
        sessions, "played", actor.id, call_id=row.id, detail={"purpose": purpose, **how}
    )
    dec = decrypt_recording(path, ids)
    data = wav_bytes(dec.au)
    if out is not None:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)  # personal data
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    else:
        assert player is not None
        subprocess.run(player, input=data, check=True)
    return Played(row.id, entry, dec.complete, dec.note)
