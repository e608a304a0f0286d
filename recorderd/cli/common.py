"""What every ``recorderctl`` command shares: secrets from files, the environment or the terminal."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from recorderd.errors import AccessError

PASSPHRASE_ENV = "RECORDERD_PASSPHRASE"


def read_passphrase(prompt: str = "Passphrase: ", *, file: Path | None = None, confirm: bool = False) -> str:
    """From --passphrase-file, else $RECORDERD_PASSPHRASE (automation), else the terminal."""
    if file is not None:
        return file.read_text(encoding="utf-8").rstrip("\n")
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != first:
        raise AccessError("the two passphrases differ")
    if not first:
        raise AccessError("an empty passphrase is not allowed")
    return first
