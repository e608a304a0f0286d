"""The export package format, written and checked without a database (docs/ledger.md).

A package is a directory::

    manifest.json   what was exported, for whom, why; the SHA-256 and size of every other file
    manifest.sig    base64 Ed25519 signature of manifest.json's exact bytes (the key is in the manifest)
    NOTICE.txt      the recipient's duties, in Japanese and English
    ledger.jsonl    the ledger entries about these calls and this export, each verifiable by itself
    audio/<call id>.wav  or  audio/<call id>.wav.age (re-encrypted to the recipient's age key)

One changed byte anywhere fails ``verify``: manifest.json by its signature, manifest.sig by being
the canonical encoding of a valid signature, every other file by its hash in the manifest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage import ledger, signing
from storage.files import write_exclusive

__all__ = ["FORMAT", "PackageInfo", "verify", "write"]

FORMAT = "recorderd-export/1"
_MANIFEST, _SIG = "manifest.json", "manifest.sig"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write(
    out: Path,
    *,
    manifest: dict[str, Any],
    audio: dict[str, bytes],
    notice: str,
    excerpt: list[ledger.Entry],
    key: Ed25519PrivateKey,
) -> str:
    """Write a package into the new directory ``out``; returns the manifest's SHA-256."""
    out.mkdir(parents=True, mode=0o700)  # must not exist: never mix two exports
    files: dict[str, bytes] = {"NOTICE.txt": notice.encode("utf-8")}
    files["ledger.jsonl"] = b"".join(
        json.dumps(e.to_json(), ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n" for e in excerpt
    )
    files |= {f"audio/{name}": data for name, data in audio.items()}
    listing = []
    for rel, data in sorted(files.items()):
        write_exclusive(out / rel, data)
        listing.append({"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
    body = {**manifest, "format": FORMAT, "files": listing, "signing_key": signing.public_b64(key)}
    raw = (json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")
    write_exclusive(out / _MANIFEST, raw)
    write_exclusive(out / _SIG, (signing.sign(key, raw) + "\n").encode("ascii"))
    return hashlib.sha256(raw).hexdigest()


@dataclass
class PackageInfo:
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    files_checked: int = 0


def _signature(text: bytes) -> str | None:
    """The signature if the file is exactly the canonical base64 of 64 bytes plus a newline."""
    try:
        raw = base64.b64decode(text.rstrip(b"\n"), validate=True)
    except (binascii.Error, ValueError):
        return None
    canonical = base64.b64encode(raw) + b"\n"
    return canonical.decode("ascii").rstrip("\n") if canonical == text and len(raw) == 64 else None


def verify(pkg: Path, *, trusted_key: str | None = None) -> PackageInfo:
    """Check a package offline. ``trusted_key``: the base64 public key the city publishes."""
    info = PackageInfo()
    try:
        raw, sig_text = (pkg / _MANIFEST).read_bytes(), (pkg / _SIG).read_bytes()
    except OSError as exc:
        info.problems.append(f"{exc.filename}: cannot read: {exc.strerror}")
        return info
    try:
        manifest = json.loads(raw)
        public = str(manifest["signing_key"])
        info.manifest, info.fingerprint = manifest, signing.fingerprint(public)
    except (ValueError, KeyError, TypeError, binascii.Error):
        info.problems.append(f"{_MANIFEST}: not a readable manifest (changed?)")
        return info
    sig = _signature(sig_text)
    try:
        if sig is None:
            raise signing.SigningError("malformed")
        signing.verify(public, raw, sig)
    except signing.SigningError:
        info.problems.append(f"{_MANIFEST} / {_SIG}: the signature does not verify: one of them changed")
    if trusted_key is not None and public != trusted_key:
        info.problems.append(f"signed by key {info.fingerprint}, not by the key you trust")
    if manifest.get("format") != FORMAT:
        info.problems.append(f"{_MANIFEST}: unknown format {manifest.get('format')!r}")
    info.problems += _check_files(pkg, manifest, info)
    return info


def _check_files(pkg: Path, manifest: dict[str, Any], info: PackageInfo) -> list[str]:
    problems = []
    listed = set()
    for item in manifest.get("files", []):
        rel = str(item["path"])
        listed.add(rel)
        path = pkg / rel
        if ".." in Path(rel).parts or not path.is_file():
            problems.append(f"{rel}: missing")
            continue
        info.files_checked += 1
        if path.stat().st_size != item["bytes"] or _sha256(path) != item["sha256"]:
            problems.append(f"{rel}: SHA-256 differs from the manifest: the file changed")
        elif rel == "ledger.jsonl":
            problems += _check_excerpt(path, manifest)
    present = {str(p.relative_to(pkg)) for p in pkg.rglob("*") if p.is_file()}
    problems += [f"{rel}: not listed in the manifest" for rel in sorted(present - listed - {_MANIFEST, _SIG})]
    return problems


def _check_excerpt(path: Path, manifest: dict[str, Any]) -> list[str]:
    try:
        items = [ledger.entry_from_json(json.loads(line)) for line in path.read_text("utf-8").splitlines()]
    except (ValueError, KeyError, TypeError):
        return ["ledger.jsonl: unreadable"]
    problems = [f"ledger.jsonl: entry {p.seq}: {p.message}" for p in ledger.verify_excerpt(items)]
    want = manifest.get("ledger", {}).get("export_entry", {})
    if not any(e.seq == want.get("seq") and e.hash == want.get("hash") for e in items):
        problems.append("ledger.jsonl: the export's own entry is missing")
    return problems
