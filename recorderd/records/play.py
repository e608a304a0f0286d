"""Hearing a recording: finding the call, opening the person's key copy, decrypting to a player.

The order (sign in → permission → key copy → ledger entry committed → decrypt) is the service
layer's (recorderd/service/calls.py); these are the steps it calls. The audio goes to a player's
standard input (sox ``play`` or ``aplay``) so no plaintext touches the disk, or to a WAV file when
the profile allows copies.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import numpy as np
import soundfile
from sqlalchemy.orm import Session, sessionmaker

from recorderd.config import Config
from recorderd.config.people import ROLES
from recorderd.errors import AccessError
from recorderd.people.keys import NoKeyCopy
from recorderd.people.users import Actor, Forbidden, People
from recorderd.records.audio import Decrypted, decrypt_recording
from storage.audio import parse_au
from storage.catalog import AmbiguousId, get_call
from storage.models import Call

__all__ = ["deliver", "find_call", "no_one_may_play", "open_key", "wav_bytes"]


def wav_bytes(au: bytes) -> bytes:
    rate, channels, pcm = parse_au(au)
    frames = np.frombuffer(pcm, dtype="<i2")
    frames = frames[: len(frames) - len(frames) % channels].reshape(-1, channels)
    out = io.BytesIO()
    soundfile.write(out, frames, rate, subtype="PCM_16", format="WAV")
    return out.getvalue()


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


def deliver(path: Path, identities: list[str], *, out: Path | None, player: list[str] | None) -> Decrypted:
    """Decrypt ``path`` and hand the WAV to ``player``'s standard input (no plaintext on disk), or
    write it to ``out`` (0600: personal data). Called only after the access is ledgered."""
    dec = decrypt_recording(path, identities)
    data = wav_bytes(dec.au)
    if out is not None:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    else:
        if player is None:
            raise AccessError("no audio player found (sox or alsa-utils)")
        subprocess.run(player, input=data, check=True)
    return dec
