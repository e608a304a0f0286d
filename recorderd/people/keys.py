"""Key copies: each key holder's own copy of the recording identity, encrypted under their password.

A copy is a standard age passphrase file (scrypt), ``<keyring>/<person id>.age``, so ``age -d`` opens it
with that person's password, without our code (recovery, docs/keys.md). Because every holder has an
independent copy of the *same* identity, changing a password or revoking a person rewrites one small
file and re-encrypts no recording; and a person who holds no copy cannot decrypt anything with any
password. The recording host needs none of this: it encrypts to the public recipient only.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

from storage.age import decrypt_passphrase_identity, encrypt_passphrase_identity, recipient_of
from storage.files import fsync_dir, private_dir

__all__ = ["Keyring", "KeyringError", "NoKeyCopy", "identity_text", "load_identities"]

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,32}$")


class KeyringError(Exception):
    """A keyring operation that cannot be done; the message says why."""


class NoKeyCopy(KeyringError):
    """This person holds no copy of the recording key."""


def identity_text(identities: list[str], note: str) -> str:
    """The plaintext of a key copy: comments naming the public keys, then the identities."""
    lines = [f"# recorderd recording key — {note}"]
    lines += [f"# public key: {recipient_of(i)}" for i in identities]
    return "\n".join([*lines, *identities]) + "\n"


class Keyring:
    def __init__(self, directory: Path, *, work_factor: int = 18) -> None:
        self.directory = directory
        self.work_factor = work_factor

    def path(self, person_id: str) -> Path:
        if not _SAFE_ID.fullmatch(person_id):
            raise KeyringError(f"{person_id!r} is not a valid personal ID")
        return self.directory / f"{person_id}.age"

    def holders(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.age"))

    def has(self, person_id: str) -> bool:
        return self.path(person_id).exists()

    def write(self, person_id: str, identities: list[str], password: str) -> Path:
        """Write (or replace) a person's copy atomically: temp file, fsync, rename, fsync the directory."""
        if not identities:
            raise KeyringError("no recording identity to copy")
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = identity_text(identities, f"copy held by {person_id}, written {stamp}")
        data = encrypt_passphrase_identity(text, password, work_factor=self.work_factor)
        private_dir(self.directory)
        final = self.path(person_id)
        tmp = final.with_name(final.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fsync_dir(self.directory)
        return final

    def unlock(self, person_id: str, password: str) -> list[str]:
        """The identities in this person's copy. NoKeyCopy if they hold none; AgeDecryptError if the
        password does not open it."""
        path = self.path(person_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NoKeyCopy(f"{person_id} holds no copy of the recording key") from None
        return decrypt_passphrase_identity(data, password)

    def rekey(self, person_id: str, old_password: str, new_password: str) -> bool:
        """Re-encrypt a copy under a new password. False if the person holds none."""
        try:
            identities = self.unlock(person_id, old_password)
        except NoKeyCopy:
            return False
        self.write(person_id, identities, new_password)
        return True

    def revoke(self, person_id: str) -> bool:
        """Remove a person's copy. Overwritten first: on plain disks that removes the ciphertext too;
        on SSDs and copy-on-write file systems it may not, which is why docs/keys.md asks for the
        keyring on its own small volume that can be wiped whole."""
        path = self.path(person_id)
        if not path.exists():
            return False
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.write(os.urandom(size))
            f.flush()
            os.fsync(f.fileno())
        path.unlink()
        fsync_dir(self.directory)
        return True

    def destroy_all(self) -> list[str]:
        """Contract end (Kawasaki 6-4): remove every copy, after which no recording can be read."""
        gone = [pid for pid in self.holders() if self.revoke(pid)]
        for stray in self.directory.glob("*.tmp") if self.directory.is_dir() else []:
            stray.unlink()
        return gone


def load_identities(identity_file: Path, passphrase: str) -> list[str]:
    """The identities in a passphrase-protected identity file (``recorderctl keys init``)."""
    try:
        data = identity_file.read_bytes()
    except OSError as exc:
        raise KeyringError(f"{identity_file}: cannot read: {exc.strerror}") from exc
    return decrypt_passphrase_identity(data, passphrase)
