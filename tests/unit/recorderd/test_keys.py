"""Key copies on a real directory: one identity, many passwords; standard age files."""

from __future__ import annotations

from pathlib import Path

import pyrage
import pytest

from recorderd.people.keys import Keyring, KeyringError, NoKeyCopy
from storage.age import AgeDecryptError, decrypt_bytes, encrypt_bytes, generate_identity


def test_copies_open_with_their_own_password_only(tmp_path: Path) -> None:
    identity, recipient = generate_identity()
    ring = Keyring(tmp_path / "keyring", work_factor=4)
    ring.write("alice", [identity], "alice-password")
    ring.write("bob", [identity], "bob-password")
    assert ring.holders() == ["alice", "bob"]
    assert oct(ring.path("alice").stat().st_mode & 0o777) == "0o600"
    assert ring.unlock("alice", "alice-password") == [identity]
    with pytest.raises(AgeDecryptError, match="wrong passphrase"):
        ring.unlock("alice", "bob-password")
    with pytest.raises(NoKeyCopy):
        ring.unlock("carol", "anything")
    with pytest.raises(KeyringError, match="not a valid personal ID"):
        ring.path("../etc/passwd")
    # A standard age passphrase file: an independent implementation opens it with the password.
    plain = pyrage.passphrase.decrypt(ring.path("bob").read_bytes(), "bob-password").decode()
    assert identity in plain and recipient in plain
    sealed = encrypt_bytes(b"a recording", [recipient])
    assert decrypt_bytes(sealed, ring.unlock("bob", "bob-password")) == b"a recording"


def test_rekey_revoke_and_destroy_everything(tmp_path: Path) -> None:
    identity, recipient = generate_identity()
    ring = Keyring(tmp_path / "keyring", work_factor=4)
    for who in ("a", "b", "c"):
        ring.write(who, [identity], f"{who}-password")
    assert ring.rekey("a", "a-password", "a-new-password")
    assert not ring.rekey("nobody", "x", "y")
    with pytest.raises(AgeDecryptError):
        ring.unlock("a", "a-password")
    assert ring.revoke("b") and not ring.revoke("b")
    assert ring.holders() == ["a", "c"]
    sealed = encrypt_bytes(b"audio", [recipient])
    assert ring.destroy_all() == ["a", "c"]
    assert ring.holders() == [] and list(ring.directory.iterdir()) == []
    for who in ("a", "c"):  # nothing left to decrypt with: every recording is unreadable (Kawasaki 6-4)
        with pytest.raises(NoKeyCopy):
            ring.unlock(who, f"{who}-new-password")
    assert sealed  # still on disk, still ciphertext, now for ever
