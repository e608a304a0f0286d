"""Ed25519 signing for ledger checkpoints and export packages.

The installation's signing key proves that a checkpoint or a package came from this recorder: it is
not a recording key and opens no audio. It lives in a PEM file (mode 0600) beside the database; the
public half is recorded in the ledger when the key is created and printed as a fingerprint that a
city can publish, so a verifier anywhere can check a package offline against it.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from storage.files import write_exclusive

__all__ = [
    "SigningError",
    "fingerprint",
    "load_or_create",
    "load_private",
    "public_b64",
    "sign",
    "verify",
]


class SigningError(Exception):
    """A signature that does not verify, or a key that cannot be read."""


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise SigningError(f"{path}: cannot read the signing key: {exc.strerror}") from exc
    except ValueError as exc:
        raise SigningError(f"{path}: not a PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 key")
    return key


def load_or_create(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The key at ``path``, creating it (0600, O_EXCL) if absent. Returns (key, created)."""
    if path.exists():
        return load_private(path), False
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_exclusive(path, pem)
    return key, True


def public_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes_raw()).decode("ascii")


def fingerprint(public_key_b64: str) -> str:
    """Short, human-comparable: SHA-256 of the raw public key, first 16 bytes, grouped."""
    digest = hashlib.sha256(base64.b64decode(public_key_b64)).hexdigest()[:32]
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode("ascii")


def verify(public_key_b64: str, message: bytes, signature_b64: str) -> None:
    """Raise SigningError unless ``signature_b64`` is a valid signature of ``message``."""
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64, validate=True))
        public.verify(base64.b64decode(signature_b64, validate=True), message)
    except (ValueError, InvalidSignature) as exc:
        raise SigningError("signature does not verify") from exc
