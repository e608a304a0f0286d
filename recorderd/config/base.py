"""What every configuration section shares: strict models, the one error type, systemd credentials.

Every section is a ``Strict`` model: ``extra="forbid"`` turns a misspelt key into a start-up error
naming it, and ``frozen`` lets a running daemon hand the same object to every task.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ConfigError", "CredentialName", "HostPort", "Strict", "parse_hostport", "read_credential"]


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


HostPort = Annotated[str, Field(pattern=r"^.+:\d{1,5}$")]
# A systemd credential name (LoadCredential=NAME:...): a file name, never a path.
CredentialName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]+$")]


def read_credential(name: str, key: str) -> str:
    """Read ``$CREDENTIALS_DIRECTORY/<name>``: the secret systemd handed us (LoadCredential=).

    systemd reads the source file as root and exposes a private, read-only copy to the service
    alone, so the secret on disk can stay root-only (0600) and never be readable by our user.
    """
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise ConfigError(
            f"{key} = {name!r}: $CREDENTIALS_DIRECTORY is not set "
            f"(run under systemd with LoadCredential={name}:/path/to/secret)"
        )
    path = Path(directory) / name
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{key} = {name!r}: cannot read {path}: {exc.strerror}") from exc
