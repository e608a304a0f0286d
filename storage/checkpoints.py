"""Signed ledger checkpoints kept where the recording host cannot rewrite them alone.

A checkpoint says "the ledger had row N with hash H at time T", signed. Verifying the ledger
against the newest checkpoint names a rollback (rows after N gone) or a rewrite of the tail (row N
no longer hashes to H), which the hash chain alone cannot: whoever can write the database can
recompute every hash. So the daemon takes one on a timer and at shutdown and sends copies away:
retained on MQTT, and into directories on other volumes (a share of another host, a WORM mount).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from storage import ledger, signing
from storage.files import write_exclusive

PREFIX = "ledger-checkpoint-"
MQTT_TOPIC = "ledger/checkpoint"  # under the configured topic prefix; retained


@dataclass(frozen=True)
class Found:
    checkpoint: ledger.Checkpoint
    source: str  # a file path or "mqtt://host:port/topic"

    def age_s(self, now: dt.datetime) -> float:
        return (now - dt.datetime.fromisoformat(self.checkpoint.at.replace("Z", "+00:00"))).total_seconds()


def signing_key(sessions: sessionmaker[Session], path: Path, actor: str) -> Ed25519PrivateKey:
    """The installation's signing key; created on first use, its public half put in the ledger."""
    key, created = signing.load_or_create(path)
    if created:
        public = signing.public_b64(key)
        detail = {"public_key": public, "fingerprint": signing.fingerprint(public)}
        ledger.append_committed(sessions, "signing_key_created", actor, detail=detail)
    return key


def file_name(cp: ledger.Checkpoint) -> str:
    stamp = "".join(c for c in cp.at if c.isalnum())
    return f"{PREFIX}{cp.seq:012d}-{stamp}.json"


def write_file(directory: Path, cp: ledger.Checkpoint) -> Path:
    """One new file per checkpoint (never overwritten: older ones stay as evidence)."""
    path = directory / file_name(cp)
    if not path.exists():
        write_exclusive(path, cp.to_json().encode("utf-8"))
    return path


def read_dir(directory: Path, trusted_key: str | None) -> tuple[list[Found], list[str]]:
    """Every checkpoint file in ``directory`` whose signature holds; and what could not be used."""
    found: list[Found] = []
    problems: list[str] = []
    try:
        paths = sorted(directory.glob(f"{PREFIX}*.json"))
    except OSError as exc:
        return [], [f"{directory}: cannot list: {exc.strerror}"]
    if not directory.is_dir():
        return [], [f"{directory}: not a directory (is the volume mounted?)"]
    for path in paths:
        try:
            found.append(Found(ledger.Checkpoint.from_json(path.read_text("utf-8"), trusted_key), str(path)))
        except (OSError, signing.SigningError) as exc:
            problems.append(f"{path}: {exc}")
    return found, problems


def newest(found: list[Found]) -> Found | None:
    """The checkpoint attesting the longest ledger (then the latest one)."""
    return max(found, key=lambda f: (f.checkpoint.seq, f.checkpoint.at), default=None)
